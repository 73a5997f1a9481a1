# Helpers sourced before every scenario (busybox sh). Everything a test reads
# back from the console is a line starting with WARD-VM-.

VM_FAILED=0

# vm_case NAME CMD [ARGS...]: run CMD in a subshell and report
# `WARD-VM-CASE NAME pass` or `WARD-VM-CASE NAME fail rc=N`.
# NAME must not contain spaces.
vm_case() {
    _name=$1
    shift
    echo "WARD-VM-CASE-START $_name"
    ("$@")
    _rc=$?
    if [ "$_rc" = 0 ]; then
        echo "WARD-VM-CASE $_name pass"
    else
        echo "WARD-VM-CASE $_name fail rc=$_rc"
        VM_FAILED=$((VM_FAILED + 1))
    fi
    return 0
}

# vm_finish: summary line; exit 1 if any case failed.
vm_finish() {
    echo "WARD-VM-CASES failed=$VM_FAILED"
    [ "$VM_FAILED" = 0 ]
    exit $?
}

# vm_expect_eq WHAT ACTUAL EXPECTED: fail (return 1) with a message if they differ.
vm_expect_eq() {
    if [ "$2" = "$3" ]; then
        return 0
    fi
    echo "WARD-VM-MISMATCH $1: got '$2', expected '$3'"
    return 1
}

# vm_emit_tar NAME DIR: send DIR as a gzipped tar, base64, between
# WARD-VM-BLOB-BEGIN NAME and WARD-VM-BLOB-END NAME lines. Kernel messages
# are held back meanwhile: an OOM report would otherwise land mid-blob.
vm_emit_tar() {
    dmesg -n 1
    echo "WARD-VM-BLOB-BEGIN $1"
    tar -C "$2" -cf - . | gzip -c | base64
    echo "WARD-VM-BLOB-END $1"
    dmesg -n 4
}

# vm_group NAME [FILE=VALUE]...: the cgroup /sys/fs/cgroup/NAME (made if
# missing, left in $_g) with these control files written; a write the kernel
# refuses prints WARD-VM-SETUP, so a case that needed it fails visibly.
vm_group() {
    _g=/sys/fs/cgroup/$1
    shift
    mkdir -p "$_g"
    for kv in "$@"; do
        echo "${kv#*=}" >"$_g/${kv%%=*}" || echo "WARD-VM-SETUP cannot write $_g/${kv%%=*}"
    done
}

# vm_cgroup_enter DIR: move the calling shell into cgroup DIR.
vm_cgroup_enter() {
    echo $$ >"$1/cgroup.procs"
}
