#!/usr/bin/env bash
# Boot a scenario script on a real kernel under qemu (TCG) with cgroup v2 mounted.
#
# Usage: tests/vm/run-vm.sh [options] SCENARIO
#   --bin PATH        static binary to put in /bin (repeatable; e.g. ward, ward-workload)
#   --host-bin PATH   dynamic host binary to put in /host/bin, with the libraries
#                     ldd lists (repeatable; e.g. /usr/bin/unshare for `unshare -C`,
#                     which busybox lacks)
#   --console FILE    also write the serial console here (default: a temp file)
#   --timeout SECS    hard limit for the whole VM run (default: $WARD_VM_TIMEOUT or 180)
#   --kernel PATH     kernel image (default: $WARD_VM_KERNEL or newest /boot/vmlinuz-*)
#   --keep DIR        keep the staging tree and initramfs in DIR (for debugging)
#
# The console goes to stdout as it arrives ('\r' stripped). The scenario runs as
# `sh` with the helpers of vm-lib.sh already sourced (vm_case, vm_emit_tar, ...).
# Exit status: the scenario's own exit code, read from the `WARD-VM-EXIT=<code>`
# marker; 124 when the VM hit the timeout; 125 when the VM ended without the
# marker (kernel panic, init died); 2 for a usage or environment error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
    echo "run-vm: $*" >&2
    exit 2
}

bins=()
host_bins=()
console=""
timeout_secs=${WARD_VM_TIMEOUT:-180}
kernel=${WARD_VM_KERNEL:-}
keep=""
scenario=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bins+=("$2"); shift 2 ;;
    --host-bin) host_bins+=("$2"); shift 2 ;;
    --console) console=$2; shift 2 ;;
    --timeout) timeout_secs=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$scenario" ] || die "only one scenario"; scenario=$1; shift ;;
    esac
done
[ -n "$scenario" ] || die "usage: run-vm.sh [--bin PATH]... SCENARIO (see --help)"
[ -r "$scenario" ] || die "scenario $scenario not readable"

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: apt-get install qemu-system-x86"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found: apt-get install busybox-static"
# A dynamically linked busybox would need its libraries in the initramfs.
# (The checks with `file` are skipped where it is not installed.)
if command -v file >/dev/null && file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked'; then
    die "$busybox is dynamically linked: apt-get install busybox-static"
fi
command -v cpio >/dev/null || die "cpio not found: apt-get install cpio"

if [ -z "$kernel" ]; then
    # Newest by version order, so 6.1.0-10 sorts after 6.1.0-9.
    kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$kernel" ] || die "no kernel in /boot/vmlinuz-*: apt-get install linux-image-amd64 (or set WARD_VM_KERNEL)"
fi
[ -e "$kernel" ] || die "kernel $kernel does not exist"
# Debian installs vmlinuz mode 0600 on some releases: say so rather than let qemu fail.
[ -r "$kernel" ] || die "kernel $kernel is not readable by $(id -un) (it is often root-only: run as root or chmod a+r)"

if [ -n "$keep" ]; then
    work=$keep
    rm -rf "$work"
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/ward-vm.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,host/bin,lib}
[ -n "$console" ] || console=$work/console.log

cp "$busybox" "$root/bin/busybox"
for b in "${bins[@]}"; do
    [ -x "$b" ] || die "binary $b is not an executable file"
    if command -v file >/dev/null && file -L "$b" 2>/dev/null | grep -q 'dynamically linked'; then
        die "binary $b is dynamically linked; the VM has no libc (build with +crt-static)"
    fi
    cp "$b" "$root/bin/$(basename "$b")"
done
for b in "${host_bins[@]}"; do
    [ -x "$b" ] || die "host binary $b is not an executable file"
    cp "$b" "$root/host/bin/$(basename "$b")"
    # Copy each library (and the loader) to the same absolute path inside.
    for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
done
cp "$here/vm-lib.sh" "$root/etc/vm-lib.sh"
cp "$scenario" "$root/scenario.sh"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
# Without /dev/console in the initramfs the kernel starts /init with no
# stdin/stdout/stderr ("Warning: unable to open an initial console").
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
    echo "run-vm: cannot mknod /dev/console (not root?); /init reopens it after devtmpfs" >&2

initrd=$work/initramfs.cpio.gz
(cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet | gzip -1 >"$initrd")

cmdline="console=ttyS0 quiet panic=-1 psi=1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
qemu_cmd=(qemu-system-x86_64 -accel tcg -m 512M -smp 2 -nographic -no-reboot
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline")
echo "WARD-VM-HOST qemu_cmd=${qemu_cmd[*]}"
start=$(date +%s.%N)
set +e
# stdin from /dev/null: -nographic would otherwise put a calling terminal in raw mode.
timeout --kill-after=10 "$timeout_secs" "${qemu_cmd[@]}" </dev/null 2>&1 |
    while IFS= read -r line || [ -n "$line" ]; do
        # Stripped here, not by tr, which would buffer and spoil the timing.
        line=${line%$'\r'}
        case "$line" in
        WARD-VM-SCENARIO-START*) date +%s.%N >"$work/scenario-start" ;;
        esac
        # When the guest last spoke (no fork: bash's own clock); qemu's own
        # "terminating on signal" is not the guest.
        case "$line" in
        qemu-system-*) ;;
        *) printf '%s\n' "$EPOCHSECONDS" >"$work/last-line" ;;
        esac
        printf '%s\n' "$line"
    done | tee "$console"
qemu_rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
elapsed() { awk -v a="$start" -v b="$1" 'BEGIN { printf "%.1f", b - a }'; }
boot="none"
[ -s "$work/scenario-start" ] && boot=$(elapsed "$(cat "$work/scenario-start")")
# Host wall-clock seconds from qemu start to the scenario starting, and to
# qemu's exit; and how long the console had been silent when qemu exited
# (the guest's heartbeat, WARD-VM-ALIVE, comes every 20 s).
silent=none
[ -s "$work/last-line" ] && silent=$((${end%.*} - $(cat "$work/last-line")))
echo "WARD-VM-HOST boot_seconds=$boot total_seconds=$(elapsed "$end") silent_seconds=$silent qemu_rc=$qemu_rc kernel=$kernel"

if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    echo "run-vm: VM did not finish within ${timeout_secs}s (console: $console)" >&2
    exit 124
fi
code=$(sed -n 's/^WARD-VM-EXIT=\([0-9][0-9]*\)$/\1/p' "$console" | tail -n 1)
if [ -z "$code" ]; then
    echo "run-vm: VM ended without a WARD-VM-EXIT marker (qemu exit $qemu_rc)" >&2
    exit 125
fi
exit "$code"
