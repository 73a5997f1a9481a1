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
}

/// The board itself, shared as `Arc<Board>`.
#[derive(Debug)]
pub struct Board {
    /// When ward started.
    pub started: Instant,
    /// The watch thread's part.
    pub posted: Mutex<Posted>,
    /// The reaping thread's part.
    pub reaper: ReaperCounters,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            started: Instant::now(),
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

    /// Counts one forwarded signal (reaping thread; never blocks).
    pub fn count_forwarded(&self) {
        self.reaper
            .signals_forwarded
            .fetch_add(1, Ordering::Relaxed);
    }
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
