//! Facts about the run, recorded on the reaping thread the moment they are
//! known (its own events, and what the watch thread tells it).
//!
//! Plain data: the reaper writes it, the exit report reads it. Nothing here
//! does I/O.

use std::time::{Instant, SystemTime};

use crate::exit::ChildEnd;
use crate::watch::{ObservedPeaks, OomVictim};

/// A stop request as ward received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    /// The signal received (before any rewrite).
    pub signal: i32,
    /// Sender pid in ward's namespace; 0 = from outside it.
    pub from_pid: i32,
    /// Who sent it, in words.
    pub from: String,
    /// When it arrived.
    pub received: Instant,
    /// Wall-clock time of arrival.
    pub received_wall: SystemTime,
    /// When a stop signal was forwarded to the child.
    pub forwarded: Option<Instant>,
}

/// A process ward reaped after the kernel or someone killed it with SIGKILL.
#[derive(Debug, Clone, PartialEq)]
pub struct KilledChild {
    /// Its pid.
    pub pid: i32,
    /// When ward reaped it.
    pub at: Instant,
}

/// One rise of the cgroup's OOM kill counter.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    /// When ward noticed.
    pub at: Instant,
    /// How many kills this rise stands for.
    pub kills: u64,
    /// The counter after the rise.
    pub count: u64,
    /// The victim, when known.
    pub victim: Option<OomVictim>,
}

/// Everything the loop learned during the run.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// When the child was started.
    pub started: Instant,
    /// Wall-clock start.
    pub started_wall: SystemTime,
    /// The main child's pid (0 before it started).
    pub main_pid: i32,
    /// argv[0]'s basename: never the arguments, which can hold secrets.
    pub command: String,
    /// How the main child ended.
    pub main_end: Option<ChildEnd>,
    /// When it ended.
    pub main_ended: Option<Instant>,
    /// exec failed with this errno.
    pub exec_errno: Option<i32>,
    /// The first stop request.
    pub stop: Option<StopRequest>,
    /// When ward sent SIGKILL because `--kill-after` ran out.
    pub killed_by_ward: Option<Instant>,
    /// Processes reaped other than the main child.
    pub reaped_orphans: u64,
    /// Recently reaped processes that died of SIGKILL (bounded).
    pub sigkilled: Vec<KilledChild>,
    /// The cgroup OOM kill counter when ward started (`None`: unknown).
    pub oom_count_base: Option<u64>,
    /// OOM kills noticed during the run (bounded; `oom_kills_total` counts all).
    pub oom_kills: Vec<OomKill>,
    /// OOM kills during the run.
    pub oom_kills_total: u64,
    /// Warnings raised: (key, seconds since start) (bounded).
    pub warnings: Vec<(&'static str, f64)>,
    /// Peaks and first readings from the watch thread.
    pub observed: ObservedPeaks,
}

/// At most this many warnings are remembered for the report.
pub const MAX_WARNINGS: usize = 32;
/// A SIGKILL reaped this soon after an OOM counter rise names its victim.
pub const OOM_ATTRIBUTION_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many SIGKILLed children are remembered.
pub const MAX_SIGKILLED: usize = 16;

impl RunFacts {
    /// A record for a run starting now.
    pub fn new(command: String) -> RunFacts {
        RunFacts {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            main_pid: 0,
            command,
            main_end: None,
            main_ended: None,
            exec_errno: None,
            stop: None,
            killed_by_ward: None,
            reaped_orphans: 0,
            sigkilled: Vec::new(),
            oom_count_base: None,
            oom_kills: Vec::new(),
            oom_kills_total: 0,
            warnings: Vec::new(),
            observed: ObservedPeaks::default(),
        }
    }

    /// Remembers a SIGKILLed child, dropping the oldest past the bound; if an
    /// OOM kill was noticed just before without a known victim, this is it.
    pub fn note_sigkilled(&mut self, pid: i32, at: Instant) {
        if self.sigkilled.len() == MAX_SIGKILLED {
            self.sigkilled.remove(0);
        }
        self.sigkilled.push(KilledChild { pid, at });
        let name = (pid == self.main_pid).then(|| self.command.clone());
        if let Some(oom) = self.oom_kills.iter_mut().rev().find(|o| {
            at >= o.at
                && at - o.at <= OOM_ATTRIBUTION_WINDOW
                && !o.victim.as_ref().is_some_and(|v| v.certain)
        }) {
            oom.victim = Some(OomVictim {
                pid,
                name,
                certain: true,
            });
        }
    }

    /// Records a rise of the OOM kill counter to `count`; the victim is a
    /// child ward reaped with SIGKILL just before, else `guess`.
    pub fn note_oom(&mut self, count: u64, at: Instant, guess: Option<OomVictim>) {
        let before = self
            .oom_kills
            .last()
            .map(|o| o.count)
            .or(self.oom_count_base)
            .unwrap_or(0);
        let kills = count.saturating_sub(before).max(1);
        self.oom_kills_total += kills;
        let reaped = self
            .sigkilled
            .iter()
            .rev()
            // Either order: the watch thread notices the counter and the
            // reaping thread reaps the victim independently, and the
            // observation can reach the reaper after the reap though the
            // notice came first.
            .find(|k| {
                let gap = if k.at <= at { at - k.at } else { k.at - at };
                gap <= OOM_ATTRIBUTION_WINDOW
            })
            .map(|k| OomVictim {
                pid: k.pid,
                name: (k.pid == self.main_pid).then(|| self.command.clone()),
                certain: true,
            });
        if self.oom_kills.len() == MAX_SIGKILLED {
            self.oom_kills.remove(0);
        }
        self.oom_kills.push(OomKill {
            at,
            kills,
            count,
            victim: reaped.or(guess),
        });
    }

    /// Remembers that a warning was raised.
    pub fn note_warning(&mut self, key: &'static str) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings
                .push((key, self.started.elapsed().as_secs_f64()));
        }
    }
}

/// The basename of argv[0], for logs and reports.
pub fn command_name(argv0: &std::ffi::OsStr) -> String {
    let s = argv0.to_string_lossy();
    s.rsplit('/').next().unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_name_is_basename_only() {
        assert_eq!(command_name("/usr/bin/java".as_ref()), "java");
        assert_eq!(command_name("app".as_ref()), "app");
    }

    #[test]
    fn oom_victim_is_the_sigkill_reaped_around_the_rise() {
        let mut f = RunFacts::new("java".into());
        f.main_pid = 7;
        f.oom_count_base = Some(0);
        let t = Instant::now();
        // Counter first, SIGCHLD after: the later reap names the victim.
        f.note_oom(1, t, None);
        f.note_sigkilled(7, t + std::time::Duration::from_millis(5));
        let v = f.oom_kills[0].victim.clone().unwrap();
        assert_eq!(
            (v.pid, v.name.as_deref(), v.certain),
            (7, Some("java"), true)
        );
        // Noticed before the reap, told after it (two threads).
        let mut g = RunFacts::new("java".into());
        g.main_pid = 7;
        g.oom_count_base = Some(0);
        g.note_sigkilled(7, t + std::time::Duration::from_millis(20));
        g.note_oom(1, t, None);
        assert_eq!(g.oom_kills[0].victim.as_ref().map(|v| v.pid), Some(7));
        // SIGCHLD first, counter after.
        f.note_sigkilled(9, t + std::time::Duration::from_secs(10));
        f.note_oom(3, t + std::time::Duration::from_millis(10_050), None);
        assert_eq!(f.oom_kills[1].kills, 2);
        assert_eq!(f.oom_kills[1].victim.as_ref().unwrap().pid, 9);
        assert_eq!(f.oom_kills_total, 3);
        // A SIGKILL long after is not an OOM victim.
        f.note_oom(4, t + std::time::Duration::from_secs(60), None);
        f.note_sigkilled(11, t + std::time::Duration::from_secs(70));
        assert!(f.oom_kills[2].victim.is_none());
    }

    #[test]
    fn sigkilled_is_bounded() {
        let mut f = RunFacts::new("x".into());
        let now = Instant::now();
        for pid in 0..40 {
            f.note_sigkilled(pid, now);
        }
        assert_eq!(f.sigkilled.len(), MAX_SIGKILLED);
        assert_eq!(f.sigkilled[0].pid, 40 - MAX_SIGKILLED as i32);
    }
}
