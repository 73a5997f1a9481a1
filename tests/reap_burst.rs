//! Reaping in bursts (needs root: ward runs as PID 1 of a fresh PID
//! namespace). During an orphan storm ward reaps once per short window
//! instead of once per SIGCHLD; this checks that nothing is lost by it:
//! every orphan is reaped and counted, and the main child's code passes.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(120);

fn sh(script: &str) -> String {
    script.replace("WL", workload())
}

/// The numbers in `reaping_summary`'s text: reaped, passes, wake-ups,
/// windows.
fn summary(stderr: &str) -> (u64, u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("[reaping_summary]"))
        .unwrap_or_else(|| panic!("no reaping_summary line in:\n{stderr}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // "reaped N processes in P passes (W SIGCHLD wake-ups, B burst windows, ...".
    (nums[0], nums[1], nums[2], nums[3])
}

#[test]
fn storm_reaped_in_windows_counts_every_orphan_and_keeps_the_exit_code() {
    if !require_root("storm_reaped_in_windows") {
        return;
    }
    let script = sh("WL orphans 5000 --workers 2; exit 7");
    let out = run(
        ward_pid1(["--log-level", "debug", "--", "/bin/sh", "-c", &script]),
        T,
    );
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stdout.contains("orphans=5000 fork_failures=0"));
    let (reaped, passes, wakeups, windows) = summary(&out.stderr);
    assert_eq!(reaped, 5000, "every orphan reaped and counted");
    // The storm took the burst path: fewer passes than orphans.
    assert!(
        windows > 0,
        "no burst window in a storm: {wakeups} wake-ups"
    );
    assert!(passes < reaped, "{passes} passes for {reaped} orphans");
}

/// The reaping thread's slice in a burst (`src/sched.rs`): the kernel's
/// smallest.
const BURST_SLICE_NS: u64 = 100_000;

#[test]
fn the_reaper_takes_the_short_slice_for_a_storm_and_gives_it_back() {
    let test = "the_reaper_takes_the_short_slice_for_a_storm_and_gives_it_back";
    if !require_root(test) {
        return;
    }
    let script = sh("WL orphans 20000 --workers 2; sleep 30");
    let p = Proc::start(ward_pid1(["--", "/bin/sh", "-c", &script]), T);
    let ward = p.pid1_as("ward");
    if !require(
        "se.slice in /proc/PID/task/TID/sched (Linux 6.12+)",
        slice_ns(ward, ward).is_some(),
        test,
    ) {
        return;
    }
    // Sample the reaping thread's slice (its tid is ward's pid) while the
    // storm runs, from a thread of the test's own.
    let over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let over = over.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !over.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(s) = slice_ns(ward, ward) {
                    seen.insert(s);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            seen
        })
    };
    p.wait_line(|l| l.starts_with("orphans=20000"));
    over.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = sampler.join().unwrap();
    assert!(
        seen.contains(&BURST_SLICE_NS),
        "the reaper never had the short slice during the storm: {seen:?}"
    );
    // The storm is over: the next window found nothing and ended the burst.
    std::thread::sleep(Duration::from_millis(300));
    let child = children(ward)[0];
    let (reaper, default) = (slice_ns(ward, ward), slice_ns(child, child));
    assert!(default.is_some() && default != Some(BURST_SLICE_NS));
    assert_eq!(reaper, default, "the reaper's slice after the storm");
}
