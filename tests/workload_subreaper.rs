//! `ward-workload` subcommands that leave orphans, run under a subreaper (this
//! test process) so that the orphans come back to us to be counted and reaped.
//!
//! A file of its own because it makes the whole test process a subreaper and
//! reaps with waitpid(-1), which would steal the children of other tests; the
//! tests here take a lock for the same reason.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static REAPER: Mutex<()> = Mutex::new(());

fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
}

/// Blocks until every child is reaped; returns how many there were.
fn reap_all() -> usize {
    let mut reaped = 0;
    loop {
        // SAFETY: null status is allowed.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r > 0 {
            reaped += 1;
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return reaped;
        }
    }
}

/// PIDs in /proc whose parent is this process.
fn our_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, r)| r.split(' ').collect())
                .unwrap_or_default();
            fields.get(1) == Some(&me.as_str())
        })
        .collect()
}

fn workload() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ward-workload"))
}

#[test]
fn orphans_are_reparented_to_the_subreaper() {
    let _lock = REAPER.lock().unwrap();
    become_subreaper();
    let out = workload()
        .args(["orphans", "50", "--workers", "3"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "orphans=50 fork_failures=0\n"
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(reap_all(), 50);
}

#[test]
fn stragglers_are_orphans_that_outlive_sigterm() {
    let _lock = REAPER.lock().unwrap();
    become_subreaper();
    let start = Instant::now();
    let out = workload()
        .args(["stragglers", "2", "--exit-after", "200"])
        .output()
        .unwrap();
    // output() reads to EOF: the stragglers must not keep our pipe open.
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\n");
    assert_eq!(out.status.code(), Some(0));
    let stragglers = our_children();
    assert_eq!(stragglers.len(), 2, "{stragglers:?}");
    let term = Instant::now();
    for pid in &stragglers {
        // SAFETY: plain kill(2) of a child of ours.
        unsafe { libc::kill(*pid, libc::SIGTERM) };
    }
    assert_eq!(reap_all(), 2);
    assert!(term.elapsed() >= Duration::from_millis(200));
}

#[test]
fn orphans_note_when_each_could_first_be_reaped() {
    let _lock = REAPER.lock().unwrap();
    become_subreaper();
    let path = std::env::temp_dir().join(format!("ward-exits-{}.txt", std::process::id()));
    let out = workload()
        .args(["orphans", "30", "--workers", "2", "--record-exits"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut reaped = std::collections::BTreeSet::new();
    loop {
        // SAFETY: null status is allowed.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r > 0 {
            reaped.insert(r as u32);
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a timespec on the stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // Each orphan twice: its own exit (1) and its parent's (2).
    let mut kinds: std::collections::BTreeMap<u32, Vec<u64>> = Default::default();
    for line in text.lines() {
        let f: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(f.len(), 3, "{line:?}");
        assert!(f[2] > 0 && f[2] <= now, "{line:?} after {now}");
        kinds.entry(f[0] as u32).or_default().push(f[1]);
    }
    assert_eq!(reaped.len(), 30);
    assert_eq!(
        kinds
            .keys()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        reaped
    );
    for (pid, mut k) in kinds {
        k.sort();
        assert_eq!(k, [1, 2], "pid {pid}");
    }
}
