# Helpers sourced before every scenario (busybox sh). Everything a test reads
# back from the console is a line starting with WARD-VM-.

VM_FAILED=0

# vm_case NAME CMD [ARGS...]: run CMD in a subshell and report
# `WARD-VM-CASE NAME pass` or `WARD-VM-CASE NAME fail rc=N`.
# NAME must not contain spaces.
# A case still running after $VM_STALL_SECS (default 60) gets its processes
# described on the console (see vm_stall_report): the run's own timeout would
# otherwise leave only "did not finish". The report changes no verdict.
vm_case() {
    _name=$1
    shift
    echo "WARD-VM-CASE-START $_name"
    # Started from a subshell that exits at once: the watchdog is nobody's
    # job here, so a scenario's bare `wait` never waits for it.
    (vm_stall_watch "$_name" & echo $! >/tmp/vm-stall-watch.pid)
    ("$@")
    _rc=$?
    kill "$(cat /tmp/vm-stall-watch.pid)" 2>/dev/null
    if [ "$_rc" = 0 ]; then
        echo "WARD-VM-CASE $_name pass"
    else
        echo "WARD-VM-CASE $_name fail rc=$_rc"
        VM_FAILED=$((VM_FAILED + 1))
    fi
    return 0
}

# vm_stall_watch NAME: after $VM_STALL_SECS, vm_stall_report, then a heartbeat
# every 30 s until killed, so that a guest that still runs can be told from
# one that stopped altogether.
vm_stall_watch() {
    sleep "${VM_STALL_SECS:-60}"
    read -r _up _ </proc/uptime
    echo "WARD-VM-STALL case=$1 uptime=$_up: the case has run ${VM_STALL_SECS:-60} s"
    vm_stall_report
    while sleep 30; do
        read -r _up _ </proc/uptime
        echo "WARD-VM-STALL case=$1 uptime=$_up: still running"
    done
}

# vm_stall_report: every process's state, wait channel and kernel stack,
# then the kernel's own view (blocked tasks, what each CPU is running).
vm_stall_report() {
    for _d in /proc/[0-9]*; do
        _st=$(sed -n 's/^State:[[:space:]]*//p' "$_d/status" 2>/dev/null)
        _cmd=$(tr '\0' ' ' <"$_d/cmdline" 2>/dev/null)
        # Kernel threads (no command line) only when running or blocked.
        [ -n "$_cmd" ] || case "$_st" in R* | D*) ;; *) continue ;; esac
        echo "WARD-VM-STALL pid=${_d#/proc/} comm=$(cat "$_d/comm" 2>/dev/null)" \
            "state=$_st wchan=$(cat "$_d/wchan" 2>/dev/null) cmdline=$_cmd"
        sed 's/^/WARD-VM-STALL   /' "$_d/stack" 2>/dev/null
    done
    echo 1 >/proc/sys/kernel/sysrq
    dmesg -n 8
    echo w >/proc/sysrq-trigger
    echo l >/proc/sysrq-trigger
    dmesg -n 4
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
