//! Root-only tests on real cgroup v1 hierarchies: a child process placed in a test
//! cgroup with limits, seen through `/proc/<pid>`; and the v1 OOM eventfd firing on
//! a real OOM kill. Skipped (with a message) when not root on a developer machine;
//! they fail when `CI=true`, because CI promises root and cgroup v1.

mod common;

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Instant;

use common::cgroup_v1::{CgroupV1, require_v1};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ward::cgroup::{CgroupSample, Cgroups, LimitSource, Roots, Version};

/// True when the test can run; panics in CI when it cannot.
fn root_with_v1_memory(test: &str) -> bool {
    require_v1(
        "a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory",
        &["memory"],
        test,
    )
}

#[test]
fn root_v1_child_in_real_cgroup_discover_limits_sample() {
    if !root_with_v1_memory("root_v1_child_in_real_cgroup_discover_limits_sample") {
        return;
    }
    let mut g = CgroupV1::new("limits", &["memory", "cpu", "pids"]);
    g.set("memory", "memory.limit_in_bytes", "64M");
    g.set("cpu", "cpu.cfs_period_us", "100000");
    g.set("cpu", "cpu.cfs_quota_us", "25000");
    g.set("pids", "pids.max", "20");
    let pid = g.spawn_holder();

    let cg = Cgroups::discover(&Roots::for_pid(pid)).expect("discover");
    let mem = cg.memory.as_ref().expect("memory group");
    assert_eq!(mem.version, Version::V1);
    assert_eq!(mem.dir, g.dir("memory"));
    assert_eq!(cg.cpu.as_ref().unwrap().dir, g.dir("cpu"));
    assert_eq!(cg.pids.as_ref().unwrap().dir, g.dir("pids"));

    let l = cg.limits();
    let m = l.memory.expect("memory limit");
    assert_eq!((m.bytes, m.source), (64 << 20, LimitSource::OwnGroup));
    let c = l.cpu.expect("cpu limit");
    assert_eq!((c.cores, c.source), (0.25, LimitSource::OwnGroup));
    let p = l.pids.expect("pids limit");
    assert_eq!((p.max, p.source), (20, LimitSource::OwnGroup));

    let mut s = CgroupSample::default();
    cg.sample(&mut String::new(), &mut s);
    assert_eq!(s.pids.current, Some(1));
    assert_eq!(s.pids.max, Some(20));
    // Usage may be 0: v1 leaves pages charged to the old group on move
    // (memory.move_charge_at_immigrate = 0).
    assert!(s.memory.usage.is_some());
    assert_eq!(s.errors, 0);
}

#[test]
fn root_v1_oom_watch_fires_and_oom_kill_count_rises() {
    if !root_with_v1_memory("root_v1_oom_watch_fires_and_oom_kill_count_rises") {
        return;
    }
    let mut g = CgroupV1::new("oom", &["memory"]);
    // With swap accounting the task could swap instead of being killed.
    g.limit_memory("32M");
    let holder = g.spawn_holder();
    let cg = Cgroups::discover(&Roots::for_pid(holder)).expect("discover");
    let watch = cg.oom_notifier().expect("oom watch");
    let mut buf = String::new();
    let before = cg
        .oom_kill_count(&mut buf)
        .expect("oom_kill in memory.oom_control");

    let procs = g.dir("memory").join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && exec perl -e '$x = \"a\" x (100*1024*1024); print length $x'",
        procs.display()
    );
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .status()
        .expect("run perl");
    assert_eq!(
        status.signal(),
        Some(9),
        "perl should be OOM-killed, got {status:?}"
    );

    let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::from(10_000u16)).expect("poll");
    assert_eq!(
        n,
        1,
        "OOM eventfd not readable {:?} after start",
        started.elapsed()
    );
    assert!(watch.drain() >= 1);
    assert_eq!(watch.drain(), 0, "drain clears readiness");
    assert_eq!(cg.oom_kill_count(&mut buf), Some(before + 1));
}
