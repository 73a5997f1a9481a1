//! The watch: sample the container's cgroup and processes every interval,
//! notice OOM kills the moment they happen, and warn before trouble.
//!
//! - `snapshot.rs`: the [`Snapshot`] type and its one filler, [`Sampler`].
//! - `throttle.rs`: CFS throttling over a sliding window.
//! - `alerts.rs`: thresholds with hysteresis, and the words of each warning.
//!
//! Runs on the event loop's thread, driven by its timer and the OOM fd; it
//! never blocks (cgroup and /proc reads are memory-backed) and never fails
//! the init: a read error is counted and logged once.

pub mod alerts;
pub mod snapshot;
pub mod throttle;

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

pub use snapshot::{Derived, Sampler, Snapshot};

use crate::cgroup::{Cgroups, OomWatch, Roots};
use crate::cli::Thresholds;
use crate::log::{self, Level};
use crate::report::facts::{OomVictim, RunFacts};
use crate::units::{bytes, cores};
use alerts::AlertState;

/// The watch's state, owned by the event loop.
pub struct Watcher {
    sampler: Sampler,
    snap: Snapshot,
    alerts: AlertState,
    thresholds: Thresholds,
    interval: Duration,
    oom: Option<OomWatch>,
    oom_count: Option<u64>,
    oom_logged: usize,
    buf: String,
    errors_logged: bool,
}

/// How long an OOM kill noticed through the notification fd waits for its
/// victim's SIGCHLD before it is logged.
pub const OOM_LOG_DELAY: Duration = Duration::from_millis(150);

impl Watcher {
    /// Finds ward's cgroup and takes a first sample (the baselines); call
    /// [`Watcher::announce`] once the child runs.
    /// Never fails: without a cgroup it still watches processes.
    pub fn start(
        interval: Duration,
        thresholds: Thresholds,
        is_pid1: bool,
        facts: &mut RunFacts,
    ) -> Watcher {
        let roots = Roots::default();
        let cgroups = match Cgroups::discover(&roots) {
            Ok(cg) => match misplaced(&cg) {
                None => Some(cg),
                Some(what) => {
                    // Reading the mount root instead would present another
                    // group's numbers (often the host's) as the container's.
                    log::event(
                        Level::Warning,
                        "cgroup_unavailable",
                        &format!(
                            "ward's own {what} cgroup is not visible in the cgroup mount (a cgroup namespace over the host's mount?): watching processes only"
                        ),
                        &[],
                    );
                    None
                }
            },
            Err(e) => {
                log::event(
                    Level::Warning,
                    "cgroup_unavailable",
                    &format!("cannot find ward's cgroup ({e}): watching processes only"),
                    &[],
                );
                None
            }
        };
        let mut buf = String::new();
        let oom_count = cgroups.as_ref().and_then(|cg| cg.oom_kill_count(&mut buf));
        facts.oom_count_base = oom_count;
        let oom = match cgroups.as_ref().map(Cgroups::oom_watch) {
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                log::event(
                    Level::Debug,
                    "oom_watch_unavailable",
                    &format!(
                        "no OOM notification ({e}): OOM kills are noticed at each sample instead"
                    ),
                    &[],
                );
                None
            }
            None => None,
        };
        // SAFETY: getpid cannot fail.
        let self_pid = unsafe { libc::getpid() };
        let sampler = Sampler::new(cgroups, PathBuf::from(&roots.proc), self_pid, is_pid1);
        let mut w = Watcher {
            sampler,
            snap: Snapshot::default(),
            alerts: AlertState::default(),
            thresholds,
            interval,
            oom,
            oom_count,
            oom_logged: 0,
            buf,
            errors_logged: false,
        };
        w.sampler.take_baseline(Instant::now(), &mut w.snap);
        w.alerts.baseline(&w.snap);
        w.record(facts);
        w
    }

    /// How often to sample.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snap
    }

    /// The OOM notification fd to poll, if the kernel gave one.
    pub fn oom_fd(&self) -> Option<RawFd> {
        self.oom.as_ref().map(|w| w.as_fd().as_raw_fd())
    }

    /// The OOM fd is readable: clear it and look at the counter now. Returns
    /// true when an OOM kill was recorded; the caller logs it with
    /// [`Watcher::log_oom_kills`] after [`OOM_LOG_DELAY`], once the victim's
    /// SIGCHLD has had time to name it.
    pub fn on_oom_ready(&mut self, facts: &mut RunFacts) -> bool {
        if let Some(w) = &self.oom {
            w.drain();
        }
        self.check_oom(facts)
    }

    /// One interval has passed: sample, warn, record.
    pub fn tick(&mut self, now: Instant, facts: &mut RunFacts) {
        self.sampler.take(now, &mut self.snap);
        if self.snap.census_age_s > 0.0 && self.alerts.near_trouble(&self.snap, &self.thresholds) {
            // About to warn: the warning names processes, so they must be
            // today's, not the last census's.
            self.sampler.census(now, &mut self.snap);
        }
        self.check_oom(facts);
        self.log_oom_kills(facts);
        for w in self.alerts.evaluate(&self.snap, &self.thresholds) {
            if w.level == Level::Warning {
                facts.note_warning(w.key);
            }
            log::event(w.level, w.key, &w.msg, &w.fields);
        }
        self.record(facts);
        if self.snap.read_errors > 0 && !self.errors_logged {
            self.errors_logged = true;
            log::event(
                Level::Warning,
                "watch_read_error",
                "some cgroup or /proc files could not be read; the affected numbers are left out (logged once)",
                &[("errors", json!(self.snap.read_errors))],
            );
        }
    }

    /// The main child ended: look at the OOM counter and memory one last time
    /// so the exit report decides on fresh numbers.
    pub fn at_main_exit(&mut self, facts: &mut RunFacts) {
        self.tick(Instant::now(), facts);
    }

    /// Reads the OOM kill counter; records a rise in the facts. Returns true
    /// when there is something new to log.
    fn check_oom(&mut self, facts: &mut RunFacts) -> bool {
        let Some(cg) = self.sampler.cgroups() else {
            return false;
        };
        let Some(count) = cg.oom_kill_count(&mut self.buf) else {
            return false;
        };
        let before = self.oom_count.replace(count);
        if before.is_none_or(|b| count <= b) {
            return false;
        }
        facts.note_oom(
            count,
            Instant::now(),
            sigkilled_zombie(self.sampler.proc_root()),
        );
        facts.note_warning("oom_kill");
        true
    }

    /// Logs every recorded OOM kill not logged yet.
    pub fn log_oom_kills(&mut self, facts: &RunFacts) {
        // Entries past the bound were dropped from the front; log what is left.
        let start = self.oom_logged.min(facts.oom_kills.len());
        let unlogged = facts.oom_kills.len().saturating_sub(start);
        if unlogged == 0 {
            return;
        }
        self.oom_logged = facts.oom_kills.len();
        let census = if facts.oom_kills[start..].iter().any(|o| o.victim.is_none()) {
            // The victim was not ward's child and is already gone: say what
            // is largest now, which is what to look at.
            self.sampler.census(Instant::now(), &mut self.snap);
            self.snap.procs.as_ref().map(|c| {
                c.top_rss
                    .iter()
                    .map(|p| format!("{} (pid {}) {}", p.name, p.pid, bytes(p.rss_bytes)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        } else {
            None
        };
        for oom in &facts.oom_kills[start..] {
            let who = match &oom.victim {
                Some(v) if v.certain => format!(
                    "killed {} (pid {})",
                    v.name.as_deref().unwrap_or("a process"),
                    v.pid
                ),
                Some(v) => format!(
                    "most likely killed {} (pid {}): a zombie killed by SIGKILL right after the OOM",
                    v.name.as_deref().unwrap_or("a process"),
                    v.pid
                ),
                None => format!(
                    "killed a process in the container that was not ward's child (its parent reaped it){}",
                    census
                        .as_deref()
                        .filter(|c| !c.is_empty())
                        .map(|c| format!("; largest now: {c}"))
                        .unwrap_or_default()
                ),
            };
            let mem = &self.snap.cgroup.memory;
            let limit = self.snap.limits.memory.as_ref();
            let peak = mem.peak.filter(|p| limit.is_none_or(|l| *p <= l.bytes));
            let numbers = match (peak.or(facts.watch.memory_peak_seen), limit) {
                (Some(peak), Some(l)) => format!(
                    "; memory peaked at {} of the {} limit ({})",
                    bytes(peak),
                    bytes(l.bytes),
                    l.source.words()
                ),
                _ => String::new(),
            };
            log::event(
                Level::Warning,
                "oom_kill",
                &format!(
                    "the kernel OOM killer {who}{numbers} ({} OOM kill{} since ward started)",
                    facts.oom_kills_total,
                    if facts.oom_kills_total == 1 { "" } else { "s" }
                ),
                &[
                    ("oom_kills", json!(facts.oom_kills_total)),
                    ("oom_kills_cgroup", json!(oom.count)),
                    ("victim", json!(oom.victim)),
                    ("limit_bytes", json!(limit.map(|l| l.bytes))),
                    ("peak_bytes", json!(mem.peak)),
                ],
            );
        }
    }

    /// Keeps the peaks the exit report needs.
    fn record(&self, facts: &mut RunFacts) {
        let t = &mut facts.watch;
        let s = &self.snap;
        if let Some(ws) = s.cgroup.memory.working_set.or(s.cgroup.memory.usage) {
            t.memory_peak_seen = Some(t.memory_peak_seen.unwrap_or(0).max(ws));
        }
        if let Some(cur) = s.cgroup.pids.current {
            t.pids_peak = Some(t.pids_peak.unwrap_or(0).max(cur));
        }
        if t.fork_failures_base.is_none() {
            t.fork_failures_base = s.cgroup.pids.events_max;
        }
        if let Some(c) = &s.procs
            && c.unreaped_total > t.unreaped_peak
        {
            t.unreaped_peak = c.unreaped_total;
            t.worst_parent = c
                .unreaped
                .first()
                .map(|z| (z.pid, z.name.clone(), z.zombies));
        }
        let cpu = s.cgroup.cpu;
        if t.throttle_first.is_none()
            && let (Some(p), Some(th)) = (cpu.nr_periods, cpu.nr_throttled)
        {
            t.throttle_first = Some((p, th, cpu.throttled_usec.unwrap_or(0)));
        }
    }

    /// One line once the child runs: what the container may use, and where
    /// each limit comes from.
    pub fn announce(&self) {
        let l = &self.snap.limits;
        let mem = l
            .memory
            .as_ref()
            .map(|m| format!("memory {} ({})", bytes(m.bytes), m.source.words()))
            .unwrap_or_else(|| "memory limit unknown".into());
        let cpu = l
            .cpu
            .as_ref()
            .map(|c| format!("cpu {} cores ({})", cores(c.cores), c.source.words()))
            .unwrap_or_else(|| "cpu limit unknown".into());
        let pids = l
            .pids
            .as_ref()
            .map(|p| format!("pids {} ({})", p.max, p.source.words()))
            .unwrap_or_else(|| "pids limit unknown".into());
        let layout = match self.snap.layout {
            Some(layout) => format!("cgroup {layout:?}").to_lowercase(),
            None => "no cgroup".into(),
        };
        log::event(
            Level::Info,
            "watching",
            &format!(
                "limits: {mem}, {cpu}, {pids}; {layout}; sampling every {}{}",
                crate::units::secs(self.interval),
                if self.oom.is_some() {
                    ", OOM kills noticed as they happen"
                } else {
                    ""
                }
            ),
            &[
                ("limits", json!(l)),
                ("interval_s", json!(self.interval.as_secs_f64())),
            ],
        );
    }
}

/// The first controller whose directory is not ward's own group, if any.
fn misplaced(cg: &Cgroups) -> Option<&'static str> {
    let groups = [
        ("memory", &cg.memory),
        ("cpu", &cg.cpu),
        ("pids", &cg.pids),
        ("cgroup2", &cg.unified),
    ];
    groups
        .into_iter()
        .find(|(_, g)| {
            g.as_ref()
                .is_some_and(|g| g.placement != crate::cgroup::Placement::Exact)
        })
        .map(|(name, _)| name)
}

/// A zombie killed by SIGKILL, from `/proc/PID/stat`'s last field, the
/// wait status (Linux 3.5+). Scans every process: only run on an OOM kill.
fn sigkilled_zombie(proc_root: &Path) -> Option<OomVictim> {
    let dir = std::fs::read_dir(proc_root).ok()?;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(name) = sigkilled_zombie_name(&stat) {
            return Some(OomVictim {
                pid,
                name: Some(name),
                certain: false,
            });
        }
    }
    None
}

/// The command name if this `/proc/PID/stat` text is a zombie whose wait
/// status is "killed by SIGKILL".
pub fn sigkilled_zombie_name(stat: &str) -> Option<String> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    // `get`, not indexing: text with a '(' only after the last ')' is no stat
    // line, and must not panic PID 1.
    let name = stat.get(open + 1..close)?;
    let rest = stat.get(close + 1..)?;
    if rest.split_ascii_whitespace().next()? != "Z" {
        return None;
    }
    let status: i32 = rest.split_ascii_whitespace().last()?.parse().ok()?;
    (status & 0x7f == libc::SIGKILL).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombie_exit_status_names_a_sigkill_victim() {
        // Fields after comm: state ... and the wait status last (field 52).
        let tail = " 0".repeat(47);
        let killed = format!("42 (my hog) Z 7 42 7 0 -1 4194560{tail} 9");
        assert_eq!(sigkilled_zombie_name(&killed).as_deref(), Some("my hog"));
        let exited = format!("42 (hog) Z 7 42 7 0 -1 4194560{tail} 256");
        assert_eq!(sigkilled_zombie_name(&exited), None);
        let running = format!("42 (hog) S 7 42 7 0 -1 4194560{tail} 0");
        assert_eq!(sigkilled_zombie_name(&running), None);
    }

    #[test]
    fn zombie_name_with_paren_after_the_last_close_is_no_victim() {
        // Found by fuzz/fuzz_targets/proc_stat.rs: a '(' after the last ')' made
        // the comm slice run backwards and panicked.
        let line = "0040000 0 0 9 45 157440eg) Z 7 77 7 0(-1 0  0 0 0 9\n";
        assert_eq!(sigkilled_zombie_name(line), None);
    }
}
