//! ward's threads as the kernel sees them: the watch thread runs the batch
//! policy (its wake-ups never preempt the reaping thread or the
//! application), the reaping thread keeps the normal one, and the child
//! starts with the policy ward inherited, not the watch thread's. Needs no
//! root: ward runs as a subreaper, with its threads as when it is PID 1.

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

#[test]
fn the_watch_thread_is_batch_and_the_reaper_and_the_child_are_not() {
    let p = Proc::start(
        ward_plain(["--", workload(), "sleep", "60"]),
        Duration::from_secs(30),
    );
    let pid = p.pid();
    // The watch thread names itself when it starts; wait until the child
    // runs, when both of ward's threads are up.
    let until = Instant::now() + Duration::from_secs(10);
    let (watch, child) = loop {
        let watch = threads(pid).into_iter().find(|(n, _)| n == "ward-watch");
        let child = children(pid).first().copied();
        if let (Some((_, tid)), Some(child)) = (watch, child)
            && policy(pid, tid) == SCHED_BATCH
        {
            break (tid, child);
        }
        assert!(
            Instant::now() < until,
            "no batch watch thread after 10 s: threads {:?}",
            threads(pid)
                .iter()
                .map(|&(ref n, t)| (n.clone(), policy(pid, t)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(watch, pid);
    assert_eq!(policy(pid, pid), SCHED_OTHER, "the reaping thread");
    assert_eq!(policy(child, child), SCHED_OTHER, "the child");
}
