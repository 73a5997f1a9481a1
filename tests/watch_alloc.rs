//! A warm watch that finds nothing wrong allocates nothing: its samples
//! read into the buffers they keep, refill the census, the OOM candidates
//! and the board's copy in place. Before, each sample made about ten small
//! blocks and freed them, and malloc mapped a page and gave it back on a
//! 15 s cycle: an idle ward's anonymous memory went up and down 4 KiB, and
//! a reading after a burst of reaps could take that for growth. One test
//! in its own binary, with an allocator that counts: while the test
//! thread sleeps, the watch thread is the only one that runs.
//!
//! The counted window is 16 s: a census comes every sample only where no
//! `pids.current` is in view, elsewhere every 15 s or when the task count
//! moves, and the limits are read again every 15 s. Not ward as PID 1: its
//! census reads the host's whole `/proc` (its table sized by the first
//! one, at least 256 processes and 4 KiB of names), so a host whose
//! process count grows past that in the window would make it allocate.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward::cli::Thresholds;
use ward::watch::board::Board;
use ward::watch::{Observer, Request, WatchPlan, link};

mod alloc_count;

use alloc_count::{Counting, all_allocs};

#[global_allocator]
static ALLOC: Counting = Counting;

/// The counted time: past the 15 s after which a census and the limits'
/// re-read are due whatever happens.
const WINDOW: Duration = Duration::from_secs(16);

/// Samples the board shows so far.
fn samples(board: &Board) -> u64 {
    board.with_posted(|p| p.snapshot.as_ref().map_or(0, |s| s.samples))
}

#[test]
fn a_warm_watch_with_nothing_wrong_allocates_nothing() {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let board = Arc::new(Board::default());
    let plan = WatchPlan {
        interval: Some(Duration::from_millis(100)),
        // Nothing near a threshold on whatever host runs this (the host's
        // memory is the limit where no cgroup sets one): warning lines and
        // the OOM candidates' scores are for a container in trouble.
        thresholds: Thresholds {
            memory_pct: 1000.0,
            throttle_pct: 1000.0,
            pids_pct: 1000.0,
            zombies: 1000,
            memory_pressure_pct: 1000.0,
        },
        is_pid1: false,
        terminate_orphans: false,
        grace: Duration::from_secs(1),
        emf: None,
        command: "sleep".into(),
    };
    let observer = Observer::prepare(plan, Arc::clone(&board));
    let (mut reaper, watch) = link::pair().unwrap();
    let pid = child.id() as i32;
    assert!(reaper.send(Request::MainStarted { pid, exit_fd: None }));
    let thread = observer.spawn(watch).unwrap();
    // Warm: the first samples size the buffers they keep.
    let deadline = Instant::now() + Duration::from_secs(30);
    while samples(&board) < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (n0, a0) = (samples(&board), all_allocs());
    std::thread::sleep(WINDOW);
    let (n1, a1) = (samples(&board), all_allocs());
    let (census, age) = board.with_posted(|p| {
        let s = p.snapshot.as_ref();
        (s.and_then(|s| s.procs.clone()), s.map(|s| s.census_age_s))
    });
    reaper.send(Request::Quit);
    thread.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(n0 >= 10, "the watch took {n0} samples in 30 s");
    assert!(n1 - n0 >= 20, "{} samples in {WINDOW:?}", n1 - n0);
    // A census ran in the counted window and saw the child: the counted
    // samples did the work.
    let census = census.expect("no census on the board");
    assert!(
        age.is_some_and(|a| a < WINDOW.as_secs_f64()),
        "no census in the counted {WINDOW:?}: the last is {age:?} s old"
    );
    assert!(
        census.top_rss.iter().any(|p| p.pid == pid),
        "the census did not see the child: {census:?}"
    );
    assert_eq!(
        a1 - a0,
        0,
        "blocks made by {} warm samples with nothing wrong",
        n1 - n0
    );
}
