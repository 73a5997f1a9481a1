#!/usr/bin/env bash
# Capture cgroup v2 fixture trees on a real kernel under qemu, for the parser
# tests. Replaces tests/fixtures/cgroup/v2-qemu/ and v2-qemu-cgroupns/.
#
# Usage: tests/vm/capture-v2-fixtures.sh   (as root: run-vm.sh needs mknod,
#        and Debian's kernel image may be root-only)
#
# Cases, each a tree of proc/self/cgroup, proc/self/mountinfo, proc/meminfo,
# proc/sys/kernel/pid_max, sys/devices/system/cpu/online and
# sys/fs/cgroup/<path>/<file> for the group and its ancestors:
#   v2-qemu/t1            process in /t1 (memory.max 32M, pids.max 50,
#                         cpu.max "10000 100000"), after an OOM kill and
#                         CPU throttling there, so the counters are non-zero
#   v2-qemu/root          process in the root group
#   v2-qemu-cgroupns/remounted   process in /t1 after `unshare -C -m` and a
#                         fresh cgroup2 mount: what a container sees
#                         (/proc/self/cgroup "0::/", mount root "/", the
#                         files of /t1 at /sys/fs/cgroup)
#   v2-qemu-cgroupns/inherited-mount   process in /t1 after `unshare -C`
#                         only: "0::/" but the old mount, whose root
#                         mountinfo shows as "/.."
# busybox unshare has no -C, so util-linux's unshare goes in as a host binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
fixtures=$repo/tests/fixtures/cgroup
unshare_bin=$(command -v unshare || true)
[ -n "$unshare_bin" ] || { echo "capture: util-linux unshare not found" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ward-capture.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/scenario.sh" <<'SCENARIO'
set -e
cat >/tmp/capture.sh <<'LIB'
cap_files="cgroup.controllers cgroup.subtree_control memory.current memory.max
memory.high memory.peak memory.stat memory.events memory.events.local
memory.swap.current memory.pressure cpu.stat cpu.max cpu.weight cpu.pressure
cpuset.cpus.effective pids.current pids.max pids.events io.pressure cgroup.procs
cgroup.events"
# capture DEST DIR...: the calling process's view into DEST, with the files
# of each cgroup DIR (absolute path) under DEST/DIR.
capture() {
    dest=$1
    shift
    mkdir -p "$dest/proc/self"
    cat /proc/self/cgroup >"$dest/proc/self/cgroup"
    cat /proc/self/mountinfo >"$dest/proc/self/mountinfo"
    cat /proc/meminfo >"$dest/proc/meminfo"
    # The host fallbacks for the pids and cpu limits: without them the
    # fixture test would read the machine it runs on.
    mkdir -p "$dest/proc/sys/kernel" "$dest/sys/devices/system/cpu"
    cat /proc/sys/kernel/pid_max >"$dest/proc/sys/kernel/pid_max"
    cat /sys/devices/system/cpu/online >"$dest/sys/devices/system/cpu/online"
    for d in "$@"; do
        mkdir -p "$dest$d"
        for f in $cap_files; do
            if [ -e "$d/$f" ]; then cat "$d/$f" >"$dest$d/$f"; fi
        done
    done
}
LIB
. /tmp/capture.sh

cg=/sys/fs/cgroup/t1
mkdir "$cg"
echo 32M >"$cg/memory.max"
echo 50 >"$cg/pids.max"
echo "10000 100000" >"$cg/cpu.max"

# Non-zero counters: an OOM kill (CPU quota lifted meanwhile, see
# vm_cgroup_v2.rs) and a second of throttled spinning.
stamp() { read -r up _ </proc/uptime; echo "capture: $1 at uptime $up"; }
stamp start
echo max >"$cg/cpu.max"
sh -c 'echo 0 >/sys/fs/cgroup/t1/cgroup.procs; head -c 104857600 /dev/zero | tail >/dev/null' || true
stamp "oom done"
echo "10000 100000" >"$cg/cpu.max"
sh -c 'echo 0 >/sys/fs/cgroup/t1/cgroup.procs; exec timeout 1 sh -c "while :; do :; done"' || true
stamp "throttling done"
# Something resident in t1 while it is captured.
sh -c 'echo 0 >/sys/fs/cgroup/t1/cgroup.procs; exec sleep 1000' &
sleeper=$!

out=/tmp/cap
sh -c ". /tmp/capture.sh; echo 0 >$cg/cgroup.procs; capture $out/v2-qemu/t1 $cg /sys/fs/cgroup"
capture "$out/v2-qemu/root" /sys/fs/cgroup
sh -c ". /tmp/capture.sh; echo 0 >$cg/cgroup.procs
    exec /host/bin/unshare -C sh -c '. /tmp/capture.sh
        capture $out/v2-qemu-cgroupns/inherited-mount $cg /sys/fs/cgroup'"
# A new mount namespace (private propagation, util-linux's default) so the
# fresh cgroup2 mount does not cover /sys/fs/cgroup for the rest of the VM.
# Mounting cgroup2 straight over the old mount fails with EBUSY, hence umount.
sh -c ". /tmp/capture.sh; echo 0 >$cg/cgroup.procs
    exec /host/bin/unshare -C -m sh -c '. /tmp/capture.sh
        umount /sys/fs/cgroup
        mount -t cgroup2 cgroup2 /sys/fs/cgroup
        capture $out/v2-qemu-cgroupns/remounted /sys/fs/cgroup'"
kill "$sleeper"
stamp "captured"
vm_emit_tar fixtures "$out"
SCENARIO

log=$work/run.log
"$here/run-vm.sh" --host-bin "$unshare_bin" "$work/scenario.sh" | tee "$log"

mkdir -p "$work/out"
sed -n '/^WARD-VM-BLOB-BEGIN fixtures$/,/^WARD-VM-BLOB-END fixtures$/p' "$log" |
    sed '1d;$d' | grep -v '^WARD-VM-ALIVE' | base64 -d | tar -xz -C "$work/out"
[ -s "$work/out/v2-qemu/t1/proc/self/cgroup" ] || { echo "capture: no t1 case in the blob" >&2; exit 1; }

kernel=$(sed -n 's/^WARD-VM-INFO kernel=//p' "$log" | tail -n 1)
qemu_cmd=$(sed -n 's/^WARD-VM-HOST qemu_cmd=//p' "$log" | tail -n 1)
controllers=$(sed -n 's/^WARD-VM-INFO cgroup.controllers=//p' "$log" | tail -n 1)
subtree=$(sed -n 's/^WARD-VM-INFO cgroup.subtree_control=//p' "$log" | tail -n 1)
psi=$(sed -n 's/^WARD-VM-INFO psi=//p' "$log" | tail -n 1)
for set in v2-qemu v2-qemu-cgroupns; do
    rm -rf "${fixtures:?}/$set"
    mkdir -p "$fixtures/$set"
    cp -r "$work/out/$set/." "$fixtures/$set/"
    cat >"$fixtures/$set/NOTES.md" <<NOTES
# $set: cgroup v2 files captured on a real kernel

Captured $(date -u +%Y-%m-%d) by \`tests/vm/capture-v2-fixtures.sh\` (see its header
for what each case is), booting Debian's kernel $kernel under qemu:

    $qemu_cmd

Cases, from the script's header:

$(sed -n '/^# Cases,/,/^# busybox unshare/{/^# Cases,/d;/^# busybox/d;s/^# /    /p}' "$here/capture-v2-fixtures.sh")

Root cgroup.controllers: $controllers; enabled in cgroup.subtree_control: $subtree.
PSI (/proc/pressure, with psi=1): $psi. No swap in the VM. 512M RAM, 2 vCPUs.
Files are copied with \`cat\` from inside the VM by a process in the case's cgroup
(in t1 throttled to 10% CPU, which makes a capture take ~40 s of guest time);
files a group lacks (the root has no memory.max, memory.current, ...) are absent.
NOTES
done
echo "capture: wrote $fixtures/v2-qemu and $fixtures/v2-qemu-cgroupns"
