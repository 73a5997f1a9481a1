//! ward's threads as the kernel sees them: the watch thread and the serving
//! thread run the batch policy with the default slice (their wake-ups never
//! preempt the reaping thread or the application; a long slice starved them
//! in a busy group), the reaping thread keeps the normal
//! policy and, outside a burst of exits, the default slice, and the child
//! starts with the policy ward inherited, not the watch thread's. The
//! watch thread's census gives up its CPU as it reads.
//! Needs no root: ward runs as a subreaper, with its threads as when it is
//! PID 1.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `sched_setscheduler(2)`'s policy numbers.
const SCHED_OTHER: u32 = 0;
const SCHED_BATCH: u32 = 3;

/// The scheduling policy of task `tid` of process `pid`: field 41 of its
/// `stat`, counted after the command name (which may hold spaces).
fn policy(pid: i32, tid: i32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    // Fields from the third (state) on: the policy is the 41st field.
    after_comm.split(' ').nth(41 - 3).unwrap().parse().unwrap()
}

/// The threads of `pid`, by name.
fn threads(pid: i32) -> Vec<(String, i32)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|e| {
            let tid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
            Some((comm.trim_end().to_string(), tid))
        })
        .collect()
}

/// Waits (10 s at most) for `pid`'s thread `name` to run the batch policy;
/// returns its tid. The threads name and place themselves as they start.
fn batch_thread(pid: i32, name: &str) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((_, tid)) = threads(pid).into_iter().find(|(n, _)| n == name)
            && policy(pid, tid) == SCHED_BATCH
        {
            return tid;
        }
        assert!(
            Instant::now() < until,
            "no batch {name} thread after 10 s: threads {:?}",
            threads(pid)
                .iter()
                .map(|&(ref n, t)| (n.clone(), policy(pid, t)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_watch_thread_is_batch_and_the_reaper_and_the_child_are_not() {
    let p = Proc::start(
        ward_plain(["--", workload(), "sleep", "60"]),
        Duration::from_secs(30),
    );
    let pid = p.pid();
    let watch = batch_thread(pid, "ward-watch");
    assert_ne!(watch, pid);
    let until = Instant::now() + Duration::from_secs(10);
    let child = loop {
        if let Some(&c) = children(pid).first() {
            break c;
        }
        assert!(Instant::now() < until, "no child after 10 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(policy(pid, pid), SCHED_OTHER, "the reaping thread");
    assert_eq!(policy(child, child), SCHED_OTHER, "the child");
    let slices = (
        slice_ns(pid, watch),
        slice_ns(pid, pid),
        slice_ns(child, child),
    );
    let test = "the_watch_thread_is_batch_and_the_reaper_and_the_child_are_not";
    if let (Some(watch), Some(reaper), Some(child)) = slices {
        // The default slice: the kernel ranks a thread by a deadline one
        // slice past its start, so the longest (100 ms) put the watch
        // behind every busy thread of a group short of CPU for seconds.
        assert_eq!(watch, reaper, "the watch thread's slice");
        // Idle, no burst: the reaper's wake-ups must not preempt whoever
        // signals it, so it keeps the kernel's default, as the child does.
        assert_eq!(reaper, child, "the reaping thread's slice");
    } else {
        require(
            "se.slice in /proc/PID/task/TID/sched (Linux 6.12+)",
            false,
            test,
        );
    }
}

#[test]
fn the_serving_thread_started_before_the_child_is_batch_too() {
    // With --metrics the serving thread starts on the reaping thread,
    // before the child, so it cannot inherit the watch thread's policy.
    let p = Proc::start(
        ward_plain(["--metrics", "127.0.0.1:0", "--", workload(), "sleep", "60"]),
        Duration::from_secs(30),
    );
    let pid = p.pid();
    let http = batch_thread(pid, "ward-http");
    assert_eq!(policy(pid, pid), SCHED_OTHER, "the reaping thread");
    match (slice_ns(pid, http), slice_ns(pid, pid)) {
        (Some(slice), Some(reaper)) => assert_eq!(slice, reaper, "the serving thread's slice"),
        _ => {
            require(
                "se.slice in /proc/PID/task/TID/sched (Linux 6.12+)",
                false,
                "the_serving_thread_started_before_the_child_is_batch_too",
            );
        }
    }
}

/// The watch thread's census gives up its CPU as it reads (`sched_yield`
/// every 32 processes): the kernel preempts a running thread only at its
/// tick, and a thread of the application woken onto the census's CPU
/// waited behind it for up to 4 ms (ward-bench `census-signals`). Counted
/// with strace on the thread that names itself `ward-watch`; before, it
/// never yielded.
#[test]
fn the_census_gives_up_its_cpu_as_it_reads() {
    let test = "the_census_gives_up_its_cpu_as_it_reads";
    // strace installed, and allowed to trace (no seccomp or LSM refusal).
    let have = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=none", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("strace (Debian's strace), allowed to ptrace", have, test) {
        return;
    }
    let log = std::env::temp_dir().join(format!("ward-census-yield-{}.txt", std::process::id()));
    let mut cmd = std::process::Command::new("strace");
    without_ward_variables(&mut cmd);
    cmd.args([
        "-f",
        "-qq",
        "-e",
        "trace=sched_yield,prctl,getdents64",
        "-o",
    ])
    .arg(&log)
    .args([ward(), "--watch-interval", "100ms", "--"])
    .args([workload(), "forks", "300", "--hold", "2"]);
    let out = Proc::start(cmd, Duration::from_secs(60)).wait();
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(out.code, 0, "{}", out.dump());
    // "TID prctl(PR_SET_NAME, "ward-watch") = 0", then "TID sched_yield() = 0".
    let watch = trace
        .lines()
        .find(|l| l.contains("PR_SET_NAME, \"ward-watch\""))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no ward-watch thread in the trace:\n{trace}"));
    // Only the yields inside a scan of /proc: after a getdents64 that
    // listed entries and before the one that found the end (ward has a
    // yield elsewhere, waiting out a code trim on another thread).
    // Per scan of /proc: the entries its getdents64 calls listed, and the
    // yields between the first of them and the one that found the end.
    let mut scans: Vec<(usize, usize)> = Vec::new();
    let mut in_scan = false;
    for l in trace
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(watch))
    {
        // A call another thread's line split shows as "getdents64(...
        // <unfinished ...>", then "<... getdents64 resumed> ...) = N".
        if l.contains("getdents64") && !l.contains("<unfinished") {
            let ended = l.trim_end().ends_with("= 0");
            if !ended && !in_scan {
                scans.push((0, 0));
            }
            in_scan = !ended;
            // "/* 327 entries */"
            let listed = l
                .split("/* ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            if let Some(scan) = scans.last_mut() {
                scan.0 += listed;
            }
        } else if in_scan && l.contains("sched_yield(") {
            scans.last_mut().unwrap().1 += 1;
        }
    }
    assert!(!scans.is_empty(), "no scan of /proc in the trace:\n{trace}");
    for &(entries, yields) in &scans {
        // One yield per 32 processes read: /proc also lists about 60
        // entries that are not processes ("self", "sys", ...).
        assert!(
            yields * 32 <= entries && (yields + 1) * 32 + 100 > entries,
            "a scan of {entries} entries yielded {yields} times: {scans:?}"
        );
    }
    // ward, its 300 children and the host's processes: at least one scan
    // saw more than 96 processes.
    assert!(
        scans.iter().any(|&(_, yields)| yields >= 3),
        "scans (entries, yields): {scans:?}; trace:\n{trace}"
    );
}
