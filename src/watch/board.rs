//! The board: what ward knows, posted for readers that are neither the
//! reaping thread nor the watch thread (the metrics endpoint, `ward status`).
//!
//! Two parts with two rules. The watch thread posts [`Posted`] behind a
//! mutex after each sample; readers lock it briefly to copy or render. The
//! reaping thread never locks anything here: its numbers are atomics
//! ([`ReaperCounters`]) that it stores and readers load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

use super::link::{ObservedPeaks, OomContext, OomVictim};
use super::snapshot::Snapshot;
use crate::metrics::MetricsView;
use crate::metrics::view::{ActiveWarnings, WarningName};

/// At most this many OOM kills and warnings are kept on the board; counts
/// cover all of them.
pub const BOARD_KEEPS: usize = 32;

/// One OOM kill as the board shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKillPosted {
    /// The cgroup's counter after the kill.
    pub count: u64,
    /// Seconds since ward started.
    pub at_s: f64,
    /// The victim, once named (by the reaper's reap, or the watch's guess).
    pub victim: Option<OomVictim>,
    /// Numbers at the time.
    pub context: OomContext,
}

/// A warning as the board shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningPosted {
    /// Its event key.
    pub key: &'static str,
    /// Seconds since ward started.
    pub at_s: f64,
    /// Its words.
    pub msg: String,
}

/// What the watch thread posts.
#[derive(Debug, Clone, Default)]
pub struct Posted {
    /// The latest snapshot (`None` before the first sample or with `--no-watch`).
    pub snapshot: Option<Snapshot>,
    /// When it was taken.
    pub sampled_at: Option<Instant>,
    /// Peaks over the run.
    pub peaks: ObservedPeaks,
    /// Warning keys raised now (not yet back to ok).
    pub active: Vec<&'static str>,
    /// The latest warnings, oldest first (at most [`BOARD_KEEPS`]).
    pub warnings: Vec<WarningPosted>,
    /// Every warning so far, including those no longer kept.
    pub warnings_total: u64,
    /// The latest OOM kills, oldest first (at most [`BOARD_KEEPS`]).
    pub oom_kills: Vec<OomKillPosted>,
    /// Every OOM kill since ward started.
    pub oom_kills_total: u64,
    /// ward's code locked in memory under a memory limit (`Some(false)`:
    /// refused); `None` with no limit to lock against.
    pub code_locked: Option<bool>,
}

/// Numbers the reaping thread keeps: atomics, so it never waits for a reader.
#[derive(Debug, Default)]
pub struct ReaperCounters {
    /// Signals forwarded to the child (or its group).
    pub signals_forwarded: AtomicU64,
    /// Processes reaped other than the main child.
    pub orphans_reaped: AtomicU64,
    /// The main child's pid (0 before it started).
    pub main_pid: AtomicI32,
    /// The first stop signal received (0: none yet).
    pub stop_signal: AtomicI32,
    /// When it arrived, in ms since ward started (meaningful when
    /// `stop_signal` is not 0).
    pub stop_at_ms: AtomicU64,
    /// How the main child ended ([`MainEnd::encode`]; 0: it runs).
    pub main_end: AtomicI32,
    /// When, in ms since ward started.
    pub main_end_at_ms: AtomicU64,
    /// Warnings the reaping thread raised (`still_running`, `kill_after`,
    /// `shutdown_kill`, `shutdown_stuck`): in the log and the report, not
    /// in the watch's list.
    pub stop_warnings: AtomicU64,
    /// What ward does next by itself ([`Next`] as u32; 0: nothing).
    pub next: std::sync::atomic::AtomicU32,
    /// When, in ms since ward started.
    pub next_at_ms: AtomicU64,
}

/// How the main child ended, in one `i32` for the board: its exit code + 1,
/// or minus the signal that killed it.
pub struct MainEnd;

impl MainEnd {
    /// The board's number for `end`.
    pub fn encode(end: crate::exit::ChildEnd) -> i32 {
        match end {
            crate::exit::ChildEnd::Exited(c) => c + 1,
            crate::exit::ChildEnd::Signaled(s) => -s,
        }
    }

    /// Back from the board's number; `None` while it runs.
    pub fn decode(n: i32) -> Option<crate::exit::ChildEnd> {
        match n {
            0 => None,
            n if n > 0 => Some(crate::exit::ChildEnd::Exited(n - 1)),
            n => Some(crate::exit::ChildEnd::Signaled(-n)),
        }
    }
}

/// What ward will do by itself at a deadline, for `ward status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Next {
    /// Forward the SIGTERM `--stop-delay` holds.
    ForwardHeld = 1,
    /// SIGKILL the main child (`--kill-after`).
    KillMain = 2,
    /// SIGKILL what is left after the main child (`--grace`).
    KillRest = 3,
}

impl Next {
    /// From the board's number; `None` for 0 or unknown.
    pub fn from_u32(n: u32) -> Option<Next> {
        match n {
            1 => Some(Next::ForwardHeld),
            2 => Some(Next::KillMain),
            3 => Some(Next::KillRest),
            _ => None,
        }
    }

    /// In words, for `ward status`.
    pub fn words(self) -> &'static str {
        match self {
            Next::ForwardHeld => "the held SIGTERM is forwarded (--stop-delay)",
            Next::KillMain => "SIGKILL to the main process (--kill-after)",
            Next::KillRest => "SIGKILL to what is left (--grace)",
        }
    }
}

/// The board itself, shared as `Arc<Board>`.
#[derive(Debug)]
pub struct Board {
    /// When ward started.
    pub started: Instant,
    /// The same moment on the wall clock, in milliseconds since the Unix
    /// epoch (`ward_start_time_seconds`).
    pub started_unix_ms: u64,
    /// The watch thread's part.
    pub posted: Mutex<Posted>,
    /// The reaping thread's part.
    pub reaper: ReaperCounters,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            started: Instant::now(),
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            posted: Mutex::new(Posted::default()),
            reaper: ReaperCounters::default(),
        }
    }
}

impl Board {
    /// Runs `f` on the posted part. A reader that panicked while holding
    /// the lock leaves data that is still worth showing: poison is ignored.
    pub fn with_posted<R>(&self, f: impl FnOnce(&mut Posted) -> R) -> R {
        let mut g = match self.posted.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    /// A copy of the posted part.
    pub fn posted(&self) -> Posted {
        self.with_posted(|p| p.clone())
    }

    /// Seconds since ward started, for `at_s` fields.
    pub fn since_start(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.started).as_secs_f64()
    }

    /// Every number the metrics endpoint and the EMF line show, as of now:
    /// the posted part copied under the lock (briefly: no I/O while held),
    /// the reaper's atomics loaded.
    pub fn metrics_view(&self) -> MetricsView {
        let reaper = ReaperNumbers {
            signals_forwarded: self.reaper.signals_forwarded.load(Ordering::Relaxed),
            orphans_reaped: self.reaper.orphans_reaped.load(Ordering::Relaxed),
        };
        let mut v = self.with_posted(|p| metrics_view(p, reaper));
        v.start_time_ms = Some(self.started_unix_ms).filter(|&ms| ms > 0);
        v
    }

    /// Counts one forwarded signal (reaping thread; never blocks).
    pub fn count_forwarded(&self) {
        self.reaper
            .signals_forwarded
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The reaping thread's counters, loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaperNumbers {
    /// Signals forwarded to the child.
    pub signals_forwarded: u64,
    /// Processes reaped other than the main child.
    pub orphans_reaped: u64,
}

/// Maps what is posted to the metric values (pure). Counters count from
/// ward's start, as the exit report does: fork failures are `pids.events
/// max` minus the baseline taken before the child started, OOM kills the
/// rises ward saw. A value ward does not know stays `None` and its series
/// is left out.
pub fn metrics_view(p: &Posted, reaper: ReaperNumbers) -> MetricsView {
    let mut v = MetricsView::new();
    v.signals_forwarded = Some(reaper.signals_forwarded);
    v.orphans_reaped = Some(reaper.orphans_reaped);
    v.code_locked = p.code_locked;
    let Some(snap) = &p.snapshot else {
        // --no-watch, or before the first sample: the reaper's numbers only.
        return v;
    };
    v.set_cgroup(&snap.cgroup, &snap.limits);
    // Where the memory is: tmpfs/shmem is held by no process.
    v.memory.anon = snap.cgroup.memory.anon;
    v.memory.file = snap.cgroup.memory.file;
    v.memory.shmem = snap.cgroup.memory.shmem;
    v.memory.high_watched = crate::watch::alerts::high_watched(snap);
    if let Some(c) = &snap.procs {
        v.set_census(c);
    }
    v.fork_failures = snap
        .cgroup
        .pids
        .events_max
        .map(|now| now.saturating_sub(p.peaks.fork_failures_base.unwrap_or(0)));
    // The cgroup's own counter also holds kills from before ward started;
    // shown only where the kernel has one at all.
    v.oom_kills = v.oom_kills.map(|_| p.oom_kills_total);
    let mut w = ActiveWarnings::all_clear();
    for key in &p.active {
        if let Some(name) = WarningName::from_key(key) {
            w.set(name, true);
        }
    }
    v.warnings = w;
    v
}

impl Posted {
    /// Adds a warning, keeping the latest [`BOARD_KEEPS`].
    pub fn push_warning(&mut self, w: WarningPosted) {
        if self.warnings.len() == BOARD_KEEPS {
            self.warnings.remove(0);
        }
        self.warnings.push(w);
        self.warnings_total += 1;
    }

    /// Adds an OOM kill, keeping the latest [`BOARD_KEEPS`].
    pub fn push_oom_kill(&mut self, k: OomKillPosted, kills: u64) {
        if self.oom_kills.len() == BOARD_KEEPS {
            self.oom_kills.remove(0);
        }
        self.oom_kills.push(k);
        self.oom_kills_total += kills;
    }

    /// Names the victim of the OOM kill that took the counter to `count`.
    pub fn name_victim(&mut self, count: u64, victim: OomVictim) {
        if let Some(k) = self.oom_kills.iter_mut().find(|k| k.count == count) {
            k.victim = Some(victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CgroupSample, LimitSource, Limits, MemoryEvents, MemoryLimit, PidsSample};

    #[test]
    fn nothing_posted_shows_the_reapers_numbers_only() {
        let v = metrics_view(
            &Posted::default(),
            ReaperNumbers {
                signals_forwarded: 3,
                orphans_reaped: 5000,
            },
        );
        assert_eq!(v.signals_forwarded, Some(3));
        assert_eq!(v.orphans_reaped, Some(5000));
        assert_eq!(v.memory.usage, None);
        assert_eq!(v.warnings.get(WarningName::MemoryHigh), None);
        assert_eq!(v.zombies, None);
        assert_eq!(v.code_locked, None);
    }

    #[test]
    fn counters_count_from_wards_start() {
        let mut p = Posted {
            snapshot: Some(Snapshot {
                cgroup: CgroupSample {
                    memory: crate::cgroup::MemorySample {
                        usage: Some(60 << 20),
                        working_set: Some(58 << 20),
                        events: MemoryEvents {
                            oom_kill: Some(7),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    pids: PidsSample {
                        current: Some(4),
                        max: Some(100),
                        events_max: Some(12),
                    },
                    ..Default::default()
                },
                limits: Limits {
                    memory: Some(MemoryLimit {
                        bytes: 64 << 20,
                        source: LimitSource::OwnGroup,
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            active: vec!["memory_high", "log_dropped"],
            oom_kills_total: 2,
            code_locked: Some(false),
            ..Default::default()
        };
        p.peaks.fork_failures_base = Some(10);
        let v = metrics_view(&p, ReaperNumbers::default());
        assert_eq!(v.fork_failures, Some(2), "12 now, 10 before the child");
        assert_eq!(v.oom_kills, Some(2), "kills ward saw, not the cgroup's 7");
        assert_eq!(v.memory.limit, Some(64 << 20));
        assert_eq!(v.memory.working_set, Some(58 << 20));
        assert_eq!(v.warnings.get(WarningName::MemoryHigh), Some(true));
        assert_eq!(v.warnings.get(WarningName::PidsHigh), Some(false));
        assert_eq!(v.zombies, None, "no census yet");
        assert_eq!(v.signals_forwarded, Some(0));
        assert_eq!(v.code_locked, Some(false), "the lock was refused");
        p.snapshot.as_mut().unwrap().cgroup.memory.events.oom_kill = None;
        assert_eq!(metrics_view(&p, ReaperNumbers::default()).oom_kills, None);
    }

    #[test]
    fn lists_keep_the_latest_and_count_all() {
        let mut p = Posted::default();
        for i in 0..40 {
            p.push_warning(WarningPosted {
                key: "memory_high",
                at_s: f64::from(i),
                msg: String::new(),
            });
            p.push_oom_kill(
                OomKillPosted {
                    count: i as u64 + 1,
                    at_s: 0.0,
                    victim: None,
                    context: OomContext::default(),
                },
                1,
            );
        }
        assert_eq!(p.warnings.len(), BOARD_KEEPS);
        assert_eq!(p.warnings_total, 40);
        assert_eq!(p.warnings.last().unwrap().at_s, 39.0);
        assert_eq!(p.warnings[0].at_s, 8.0);
        assert_eq!(p.oom_kills_total, 40);
        p.name_victim(
            40,
            OomVictim {
                pid: 7,
                name: Some("java".into()),
                certain: true,
                evidence: crate::watch::victims::evidence::PROVEN,
                oom_score: None,
            },
        );
        assert_eq!(p.oom_kills.last().unwrap().victim.as_ref().unwrap().pid, 7);
        p.name_victim(
            1,
            OomVictim {
                pid: 1,
                name: None,
                certain: false,
                evidence: crate::watch::victims::evidence::GONE,
                oom_score: None,
            },
        );
    }
}
