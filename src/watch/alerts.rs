//! Warnings with hysteresis: each fires when a threshold is crossed and again
//! only after recovery, never every tick. Pure: snapshot in, warnings out.

use serde_json::{Value, json};

use super::snapshot::Snapshot;
use crate::cli::Thresholds;
use crate::log::Level;
use crate::units::{Fixed, bytes, cores, pct};

/// One line for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Level.
    pub level: Level,
    /// Stable event key.
    pub key: &'static str,
    /// Human text.
    pub msg: String,
    /// Machine-readable fields.
    pub fields: Vec<(&'static str, Value)>,
}

/// Which alerts are raised, and what was last reported.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlertState {
    memory_high: bool,
    cpu_throttled: bool,
    pids_high: bool,
    pressure_high: bool,
    zombies_reported: Option<u32>,
    fork_failures: Option<u64>,
    /// The refusals counted before ward's watch began: the cgroup's
    /// history, left out of the counts said (as `ward_fork_failures_total`
    /// leaves them out).
    fork_failures_base: Option<u64>,
    /// memory.events `high` at the last sample, and whether
    /// `memory_throttled` is raised.
    memory_high_events: Option<u64>,
    memory_throttled: bool,
    /// While `memory_throttled` is raised: the uptime of the first sample
    /// since its last crossing that found none.
    memory_high_quiet_since: Option<f64>,
    /// When (ward's uptime, s) an OOM kill was last found: memory fell
    /// because of it, and `memory_ok` waits [`OOM_KILL_HOLD_S`] for the
    /// `oom_kill` line (which the reaping thread writes once it has named
    /// the victim, up to 150 ms later).
    oom_kill_at: Option<f64>,
}

/// How long `memory_throttled` waits without a new crossing before it
/// clears: a group held at memory.high stalls in reclaim for up to 2 s at
/// a time, so samples 0.5 s apart found none every other time, and the
/// warning rose and cleared with each.
const THROTTLE_QUIET_S: f64 = 10.0;

/// How long after an OOM kill is found `memory_ok` waits (seconds): the
/// recovery the kill caused comes after the kill's line, even with a
/// `--watch-interval` of 100 ms on a busy machine.
const OOM_KILL_HOLD_S: f64 = 1.0;

impl AlertState {
    /// True when the memory alert is raised (a census with names helps).
    pub fn near_trouble(&self, snap: &Snapshot, th: &Thresholds) -> bool {
        let near = |r: Option<f64>, t: f64| r.is_some_and(|r| r * 100.0 >= t * 0.95);
        (!self.memory_high && near(snap.ratios.memory_ratio, th.memory_pct))
            || (!self.pids_high && near(snap.ratios.pids_ratio, th.pids_pct))
    }

    /// The warning keys raised now (not yet back to ok), for the board.
    pub fn active(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.memory_high {
            out.push("memory_high");
        }
        if self.memory_throttled {
            out.push("memory_throttled");
        }
        if self.cpu_throttled {
            out.push("cpu_throttled");
        }
        if self.pids_high {
            out.push("pids_high");
        }
        if self.pressure_high {
            out.push("memory_pressure");
        }
        if self.zombies_reported.is_some() {
            out.push("zombies_unreaped");
        }
        out
    }

    /// Takes the fork refusals counted before the child started as the
    /// baseline: refusals before ward are history, everything after news.
    pub fn baseline(&mut self, fork_refusals: Option<u64>) {
        self.fork_failures = fork_refusals;
        self.fork_failures_base = fork_refusals;
    }

    /// The memory.events `high` count at the first look, as the child
    /// starts: crossings after it are this run's, the first interval's too.
    pub fn baseline_memory_high(&mut self, high: Option<u64>) {
        self.memory_high_events = high;
    }

    /// An OOM kill was found at `uptime_s`: `memory_high` does not clear
    /// for [`OOM_KILL_HOLD_S`] (see `oom_kill_at`).
    pub fn oom_kill_found(&mut self, uptime_s: f64) {
        self.oom_kill_at = Some(uptime_s);
    }

    /// Compares a snapshot with the thresholds and returns what to log.
    pub fn evaluate(&mut self, snap: &Snapshot, th: &Thresholds) -> Vec<Warning> {
        let mut out = Vec::new();
        self.memory(snap, th, &mut out);
        self.memory_throttled(snap, &mut out);
        self.cpu(snap, th, &mut out);
        self.pids(snap, th, &mut out);
        self.forks(snap, &mut out);
        self.zombies(snap, th, &mut out);
        self.pressure(snap, th, &mut out);
        out
    }

    fn memory(&mut self, snap: &Snapshot, th: &Thresholds, out: &mut Vec<Warning>) {
        let (Some(ratio), Some(limit)) = (snap.ratios.memory_ratio, &snap.limits.memory) else {
            return;
        };
        let pct_now = ratio * 100.0;
        let mem = &snap.cgroup.memory;
        let ws = mem.working_set.or(mem.usage).unwrap_or(0);
        // Made only for a line written: every sample passes here.
        let fields = || {
            vec![
                ("working_set_bytes", json!(ws)),
                ("limit_bytes", json!(limit.bytes)),
                ("ratio", json!(ratio)),
                ("usage_bytes", json!(mem.usage)),
                ("shmem_bytes", json!(mem.shmem)),
            ]
        };
        if !self.memory_high && pct_now >= th.memory_pct {
            self.memory_high = true;
            let largest_now = largest(snap);
            let largest = words_of(largest_now);
            // A census not taken at this sample (skipped: ward's look
            // would be charged to a group full of memory it cannot
            // reclaim): said as of then, however recent.
            let age = crate::units::Fixed(snap.census_age_s, 1);
            let top = match (largest.is_empty(), snap.census_age_s > 0.0) {
                (true, _) => String::new(),
                (false, false) => format!("; largest: {}", largest.join(", ")),
                (false, true) => format!(
                    "; largest at the census {age} s ago: {}",
                    largest.join(", ")
                ),
            };
            let usage = mem
                .usage
                .map(|u| format!("; usage incl. cache {}", bytes(u)))
                .unwrap_or_default();
            let whereabouts = mem
                .breakdown()
                .map(|b| format!("; {}", b.words()))
                .unwrap_or_default();
            // Memory mostly file cache (not tmpfs) is reclaimed at the
            // limit, and no OOM kill need come: said only when the file
            // cache itself is most of the limit. What memory.stat does not
            // name is not file cache: its counts are flushed lazily and lag
            // the usage by tens of MiB while a group fills fast (anonymous
            // 9.2 MiB and file cache 0 B at a usage of 31.9 MiB, seen under
            // load), and kernel memory is not dropped like a cache. With
            // swap the group may fill, the kernel swaps at the limit (the
            // container slows down) before its OOM killer acts.
            let at_limit = match (mem.breakdown(), snap.limits.swap_room.filter(|&r| r > 0)) {
                (Some(b), _) if b.file.saturating_sub(b.shmem.unwrap_or(0)) >= limit.bytes / 2 => {
                    "the kernel first reclaims file cache, most of this".into()
                }
                (_, Some(room)) => format!(
                    "the kernel swaps out up to {} more, then its OOM killer ends a process",
                    bytes(room)
                ),
                _ => "the kernel OOM killer ends a process".into(),
            };
            out.push(Warning {
                level: Level::Warning,
                key: "memory_high",
                msg: format!(
                    "working set {} is {} of the {} memory limit ({}){usage}{whereabouts}{top}; at the limit {at_limit}",
                    bytes(ws),
                    pct(ratio),
                    bytes(limit.bytes),
                    limit.source.words()
                ),
                fields: [
                    fields(),
                    breakdown_fields(mem.breakdown()),
                    vec![
                        ("largest", json!(largest_now)),
                        (
                            "census_age_s",
                            json!(snap
                                .procs
                                .as_ref()
                                .map(|_| (snap.census_age_s * 10.0).round() / 10.0)),
                        ),
                    ],
                ]
                .concat(),
            });
        } else if self.memory_high
            && pct_now < clear_below(th.memory_pct, 10.0)
            && self
                .oom_kill_at
                .is_none_or(|at| snap.uptime_s >= at + OOM_KILL_HOLD_S)
        {
            self.memory_high = false;
            out.push(Warning {
                level: Level::Info,
                key: "memory_ok",
                msg: format!(
                    "working set back to {} ({} of {})",
                    pct(ratio),
                    bytes(ws),
                    bytes(limit.bytes)
                ),
                fields: fields(),
            });
        }
    }

    /// cgroup v2: usage went over `memory.high` since the last sample (its
    /// `high` event count rose): the kernel reclaimed and slowed the
    /// group's allocations. Raised at the first such sample, cleared at the
    /// first without; the count before ward's first look is history.
    fn memory_throttled(&mut self, snap: &Snapshot, out: &mut Vec<Warning>) {
        const QUIET_FOR: f64 = THROTTLE_QUIET_S;
        let Some(now) = snap
            .cgroup
            .memory
            .events
            .high
            .filter(|_| high_watched(snap))
        else {
            return;
        };
        let Some(before) = self.memory_high_events.replace(now) else {
            return;
        };
        let rose = now.saturating_sub(before);
        if rose > 0 {
            self.memory_high_quiet_since = None;
        } else if self.memory_throttled {
            self.memory_high_quiet_since.get_or_insert(snap.uptime_s);
        }
        let quiet = self
            .memory_high_quiet_since
            .is_some_and(|t| snap.uptime_s - t >= QUIET_FOR);
        if rose > 0 && !self.memory_throttled {
            self.memory_throttled = true;
            let mem = &snap.cgroup.memory;
            let ws = mem.working_set.or(mem.usage);
            let high = snap
                .limits
                .memory_high
                .as_ref()
                .map(|h| format!(" ({}, {})", bytes(h.bytes), h.source.words()))
                .unwrap_or_default();
            out.push(Warning {
                level: Level::Warning,
                key: "memory_throttled",
                msg: format!(
                    "memory went over memory.high{high} {rose} time{} since the last sample{}: the kernel reclaims and slows every allocation in the group, so processes stall instead of being killed",
                    if rose == 1 { "" } else { "s" },
                    ws.map(|w| format!(" (working set now {})", bytes(w)))
                        .unwrap_or_default()
                ),
                fields: vec![
                    ("high_events", json!(rose)),
                    ("high_bytes", json!(snap.limits.memory_high.as_ref().map(|h| h.bytes))),
                    ("working_set_bytes", json!(ws)),
                ],
            });
        } else if quiet && self.memory_throttled {
            self.memory_throttled = false;
            self.memory_high_quiet_since = None;
            out.push(Warning {
                level: Level::Info,
                key: "memory_throttled_ok",
                msg: format!("no new crossing of memory.high for {QUIET_FOR} s"),
                fields: Vec::new(),
            });
        }
    }

    fn cpu(&mut self, snap: &Snapshot, th: &Thresholds, out: &mut Vec<Warning>) {
        /// Average use at this share of the quota or more is not moderate.
        const NEAR_CPU_LIMIT: f64 = 0.9;
        /// A share of fewer periods, over less time, is one burst's: a
        /// sub-second first window read "100% over the last 0 s" for a
        /// container using a tenth of its quota.
        const LEAST_PERIODS: u64 = 10;
        const LEAST_SPAN_S: f64 = 1.0;
        let Some(t) = snap.ratios.throttle_30s else {
            return;
        };
        // Raising waits for enough periods; clearing does not (a group
        // that went quiet counts few).
        let enough = t.periods >= LEAST_PERIODS && t.span_s >= LEAST_SPAN_S;
        let pct_now = t.ratio * 100.0;
        let limit = snap.limits.cpu.as_ref();
        let fields = || {
            vec![
                ("throttled_ratio", json!(t.ratio)),
                ("window_s", json!(t.span_s)),
                ("usage_cores", json!(t.usage_cores)),
                ("limit_cores", json!(limit.map(|l| l.cores))),
            ]
        };
        if !self.cpu_throttled && enough && pct_now >= th.throttle_pct {
            self.cpu_throttled = true;
            let limit_words = limit
                .map(|l| format!("limit {} ({})", cores(l.cores), l.source.words()))
                .unwrap_or_else(|| "limit unknown".into());
            // Using most of the quota, nothing looks moderate: the group
            // wants more CPU than it may have.
            let near_limit = limit.is_some_and(|l| t.usage_cores >= l.cores * NEAR_CPU_LIMIT);
            let then = if near_limit {
                "the container wants more CPU than its limit; latency and health checks suffer first"
            } else {
                "latency and health checks suffer first, even while average CPU looks moderate"
            };
            out.push(Warning {
                level: Level::Warning,
                key: "cpu_throttled",
                msg: format!(
                    "CPU throttled in {} of scheduler periods over the last {} s ({limit_words}, using {} on average): {then}",
                    pct(t.ratio),
                    Fixed(t.span_s, 0),
                    cores(t.usage_cores)
                ),
                fields: fields(),
            });
        } else if self.cpu_throttled && pct_now < th.throttle_pct / 2.0 {
            self.cpu_throttled = false;
            out.push(Warning {
                level: Level::Info,
                key: "cpu_ok",
                msg: format!(
                    "CPU throttling down to {} of periods over the last {} s",
                    pct(t.ratio),
                    Fixed(t.span_s, 0)
                ),
                fields: fields(),
            });
        }
    }

    fn pids(&mut self, snap: &Snapshot, th: &Thresholds, out: &mut Vec<Warning>) {
        let (Some(ratio), Some(cur)) = (snap.ratios.pids_ratio, snap.cgroup.pids.current) else {
            return;
        };
        let max = snap.pids_max().unwrap_or(0);
        let fields = || {
            vec![
                ("current", json!(cur)),
                ("max", json!(max)),
                ("ratio", json!(ratio)),
            ]
        };
        if !self.pids_high && ratio * 100.0 >= th.pids_pct {
            self.pids_high = true;
            let src = snap
                .limits
                .pids
                .as_ref()
                .map(|p| p.source.words())
                .unwrap_or_default();
            let zombies = snap
                .procs
                .as_ref()
                .filter(|c| c.zombies_total > 0)
                .map(|c| match c.zombies_total {
                    1 => "; 1 of them is a zombie".to_string(),
                    n => format!("; {n} of them are zombies"),
                })
                .unwrap_or_default();
            out.push(Warning {
                level: Level::Warning,
                key: "pids_high",
                msg: format!(
                    "{cur} of {max} tasks in use ({}, pids limit: {src}){zombies}; at the limit fork() and thread creation fail with 'Resource temporarily unavailable'",
                    pct(ratio)
                ),
                fields: fields(),
            });
        } else if self.pids_high && ratio * 100.0 < clear_below(th.pids_pct, 10.0) {
            self.pids_high = false;
            out.push(Warning {
                level: Level::Info,
                key: "pids_ok",
                msg: format!("{cur} of {max} tasks in use ({})", pct(ratio)),
                fields: fields(),
            });
        }
    }

    fn forks(&mut self, snap: &Snapshot, out: &mut Vec<Warning>) {
        let Some(now) = snap.cgroup.pids.events_max else {
            return;
        };
        let before = self.fork_failures.replace(now);
        // Without a baseline (see `baseline`) the first reading is one. After
        // that, every rise is reported once, with its size.
        let base = *self.fork_failures_base.get_or_insert(before.unwrap_or(now));
        if let Some(before) = before.filter(|b| now > *b) {
            let limit = snap.refusing_limit_words();
            let since_start = now.saturating_sub(base);
            let history = if base > 0 {
                format!(", {now} in the cgroup's life")
            } else {
                String::new()
            };
            out.push(Warning {
                level: Level::Warning,
                key: "fork_failed",
                msg: format!(
                    "the kernel refused {} fork{} since the last sample: the pids limit{} is reached ({since_start} since ward started{history}); programs see 'Resource temporarily unavailable'",
                    now - before,
                    if now - before == 1 { "" } else { "s" },
                    limit
                ),
                fields: vec![
                    ("refused", json!(now - before)),
                    ("since_start", json!(since_start)),
                    ("total", json!(now)),
                ],
            });
        }
    }

    fn zombies(&mut self, snap: &Snapshot, th: &Thresholds, out: &mut Vec<Warning>) {
        let Some(census) = &snap.procs else { return };
        let limit = th.zombies as u32;
        // Only zombies two censuses in a row saw (`UnreapedSeen`): a busy
        // parent that does wait() has new ones at every look.
        let worst = census.worst_kept.as_ref();
        match (worst, self.zombies_reported) {
            (Some(w), last) if w.zombies >= limit && last.is_none_or(|l| w.zombies >= l * 2) => {
                self.zombies_reported = Some(w.zombies);
                let name = w.name.as_deref().unwrap_or("");
                let parent = crate::procs::named(Some(name), w.pid);
                let who = if name.is_empty() { "the parent" } else { name };
                let (these, es) = match w.zombies {
                    1 => ("this", ""),
                    _ => ("these", "es"),
                };
                let all = census.unreaped_kept;
                let all_s = if all == 1 { "" } else { "s" };
                out.push(Warning {
                    level: Level::Warning,
                    key: "zombies_unreaped",
                    msg: format!(
                        "{} zombie process{es} whose parent {parent} is alive and not calling wait() (oldest started {} s ago; {all} unreaped zombie{all_s} in all): no init can reap {these}; {who} must wait() for its children, or exit so that ward adopts and reaps them",
                        w.zombies, w.oldest_zombie_age_s,
                    ),
                    fields: vec![
                        ("parent_pid", json!(w.pid)),
                        ("parent", json!(name)),
                        ("zombies", json!(w.zombies)),
                        ("oldest_age_s", json!(w.oldest_zombie_age_s)),
                        ("unreaped_total", json!(census.unreaped_kept)),
                    ],
                });
            }
            (_, Some(_)) if census.unreaped_kept < limit.div_ceil(2) => {
                self.zombies_reported = None;
                out.push(Warning {
                    level: Level::Info,
                    key: "zombies_cleared",
                    msg: format!("unreaped zombies down to {}", census.unreaped_kept),
                    fields: vec![("unreaped_total", json!(census.unreaped_kept))],
                });
            }
            _ => {}
        }
    }

    fn pressure(&mut self, snap: &Snapshot, th: &Thresholds, out: &mut Vec<Warning>) {
        let Some(avg10) = snap
            .cgroup
            .psi
            .and_then(|p| p.memory)
            .and_then(|m| m.some)
            .map(|l| l.avg10)
        else {
            return;
        };
        let fields = || vec![("some_avg10", json!(avg10))];
        if !self.pressure_high && avg10 >= th.memory_pressure_pct {
            self.pressure_high = true;
            out.push(Warning {
                level: Level::Warning,
                key: "memory_pressure",
                msg: format!(
                    "memory pressure: tasks stalled waiting for memory {}% of the last 10 s (PSI some avg10): reclaim is slowing the container before any OOM kill",
                    Fixed(avg10, 1)
                ),
                fields: fields(),
            });
        } else if self.pressure_high && avg10 < th.memory_pressure_pct / 2.0 {
            self.pressure_high = false;
            out.push(Warning {
                level: Level::Info,
                key: "memory_pressure_ok",
                msg: format!(
                    "memory pressure down to {}% (PSI some avg10)",
                    Fixed(avg10, 1)
                ),
                fields: fields(),
            });
        }
    }
}

/// The memory breakdown's parts as JSON fields (`anon_bytes`,
/// `file_bytes`, `kernel_bytes`), as its words give them.
pub(super) fn breakdown_fields(
    b: Option<crate::cgroup::MemoryBreakdown>,
) -> Vec<(&'static str, serde_json::Value)> {
    // Always the three keys, `null` when unknown, as `oom_kill` has them.
    vec![
        ("anon_bytes", json!(b.map(|b| b.anon))),
        ("file_bytes", json!(b.map(|b| b.file))),
        ("kernel_bytes", json!(b.and_then(|b| b.kernel))),
    ]
}

/// The level under which a raised alert clears: `margin` points under the
/// threshold, but never less than half of it.
fn clear_below(threshold: f64, margin: f64) -> f64 {
    (threshold - margin).max(threshold / 2.0)
}

/// The census's largest processes by RSS, largest first; empty without a
/// census. The memory_high warning and the OOM kill line both name them
/// ([`words_of`]), and give them in the JSON `largest` field.
pub(super) fn largest(snap: &Snapshot) -> &[crate::procs::ProcRss] {
    snap.procs.as_ref().map_or(&[], |c| &c.top_rss)
}

/// Processes as `name (pid N) SIZE`.
pub(super) fn words_of(procs: &[crate::procs::ProcRss]) -> Vec<String> {
    procs
        .iter()
        .map(|p| format!("{} (pid {}) {}", p.name, p.pid, bytes(p.rss_bytes)))
        .collect()
}

/// Whether `memory_throttled` can be raised for `snap`: cgroup v2's `high`
/// count is read, and any `memory.high` in force is ward's group's own.
/// The kernel counts a crossing where the mark is and above it, so an
/// ancestor's mark (said in the `watching` line) is left to PSI.
pub fn high_watched(snap: &Snapshot) -> bool {
    snap.cgroup.memory.events.high.is_some()
        && snap
            .limits
            .memory_high
            .as_ref()
            .is_none_or(|h| h.source == crate::cgroup::LimitSource::OwnGroup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::LimitSource;
    use crate::cgroup::{CpuLimit, Limits, MemoryLimit, PidsLimit};
    use crate::procs::{ProcessCensus, ZombieParent};
    use crate::watch::throttle::ThrottleRatio;

    fn snap_mem(ws: u64, limit: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.cgroup.memory.working_set = Some(ws);
        s.limits = Limits {
            memory: Some(MemoryLimit {
                bytes: limit,
                source: LimitSource::OwnGroup,
            }),
            ..Limits::default()
        };
        s.ratios.memory_ratio = Some(ws as f64 / limit as f64);
        s
    }

    /// Where the group may swap, the kernel swaps at the limit before it
    /// OOM-kills: the warning must not promise an OOM kill there.
    #[test]
    fn memory_high_says_the_kernel_swaps_where_the_group_may() {
        let th = Thresholds::default();
        let said = |room| {
            let mut s = snap_mem(95, 100);
            s.limits.swap_room = room;
            AlertState::default().evaluate(&s, &th).remove(0).msg
        };
        for room in [None, Some(0)] {
            let w = said(room);
            assert!(
                w.ends_with("; at the limit the kernel OOM killer ends a process"),
                "{w}"
            );
        }
        let w = said(Some(64 << 20));
        assert!(
            w.ends_with("; at the limit the kernel swaps out up to 64.0 MiB more, then its OOM killer ends a process"),
            "{w}"
        );
    }

    /// A working set that is mostly file cache (a file read twice: active)
    /// is reclaimed at the limit; before, the warning promised an OOM kill
    /// for a container that then ran fine.
    #[test]
    fn memory_high_of_file_cache_says_it_is_reclaimed_first() {
        let th = Thresholds::default();
        let said = |anon: u64, shmem: u64| {
            let mut s = snap_mem(95, 100);
            let m = &mut s.cgroup.memory;
            (m.anon, m.file, m.shmem) = (Some(anon), Some(95 - anon), Some(shmem));
            AlertState::default().evaluate(&s, &th).remove(0).msg
        };
        let w = said(1, 0);
        assert!(
            w.ends_with("; at the limit the kernel first reclaims file cache, most of this"),
            "{w}"
        );
        // Anonymous memory, or tmpfs (file cache that cannot be dropped),
        // past half the limit: the OOM killer, as before.
        for (anon, shmem) in [(60, 0), (1, 60)] {
            let w = said(anon, shmem);
            assert!(w.ends_with("the kernel OOM killer ends a process"), "{w}");
        }
        // Neither anonymous memory nor file cache past half: what the
        // stats do not name (counts that lag a fast-filling group, or
        // kernel memory) is not a cache to reclaim. Before, this said
        // "first reclaims file cache" with no file cache at all.
        let mut s = snap_mem(95, 100);
        let m = &mut s.cgroup.memory;
        (m.anon, m.file, m.shmem) = (Some(29), Some(0), Some(0));
        s.limits.swap_room = Some(16);
        let w = AlertState::default().evaluate(&s, &th).remove(0).msg;
        assert!(
            w.ends_with("; at the limit the kernel swaps out up to 16 B more, then its OOM killer ends a process"),
            "{w}"
        );
    }

    /// What the words give, the JSON gives: the breakdown's parts and the
    /// largest processes, each a name, a pid and bytes.
    #[test]
    fn memory_high_gives_its_breakdown_and_largest_as_fields() {
        let mut s = snap_mem(95, 100);
        let m = &mut s.cgroup.memory;
        (m.anon, m.file, m.shmem, m.usage) = (Some(60), Some(30), Some(0), Some(97));
        s.procs = Some(ProcessCensus {
            top_rss: vec![crate::procs::ProcRss {
                pid: 9,
                name: "hog".into(),
                rss_bytes: 50,
            }],
            ..ProcessCensus::default()
        });
        let w = AlertState::default()
            .evaluate(&s, &Thresholds::default())
            .remove(0);
        assert!(w.msg.contains("largest: hog (pid 9) 50 B"), "{}", w.msg);
        let field = |k: &str| field_of(&w, k);
        assert_eq!(field("anon_bytes"), Some(json!(60)));
        assert_eq!(field("file_bytes"), Some(json!(30)));
        assert_eq!(field("kernel_bytes"), Some(json!(7)));
        assert_eq!(
            field("largest"),
            Some(json!([{"pid": 9, "name": "hog", "rss_bytes": 50}]))
        );
        assert_eq!(field("census_age_s"), Some(json!(0.0)));
        // A census skipped since (the group full of memory the kernel
        // cannot reclaim): the largest are said as of when they were seen,
        // not as now (the review saw "largest: hog 16.9 MiB" beside
        // "anonymous 30.3 MiB").
        s.census_age_s = 0.5;
        let w = AlertState::default()
            .evaluate(&s, &Thresholds::default())
            .remove(0);
        assert!(
            w.msg.contains("; largest at the census 0.5 s ago: "),
            "{}",
            w.msg
        );
        s.census_age_s = 4.84;
        let w = AlertState::default()
            .evaluate(&s, &Thresholds::default())
            .remove(0);
        assert!(
            w.msg
                .contains("; largest at the census 4.8 s ago: hog (pid 9) 50 B"),
            "{}",
            w.msg
        );
        let field = |k: &str| field_of(&w, k);
        assert_eq!(field("census_age_s"), Some(json!(4.8)));
    }

    /// Memory that fell because of an OOM kill is not said to be back
    /// before the kill is (the review saw `memory_ok` ahead of `oom_kill`
    /// after every main-process OOM, and with samples 100 ms apart after
    /// holding it one sample): it clears a second after the kill is found.
    #[test]
    fn memory_ok_waits_for_the_sample_after_an_oom_kill() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let at = |t: f64, ws: u64| {
            let mut s = snap_mem(ws, 100);
            s.uptime_s = t;
            s
        };
        assert_eq!(keys(&a.evaluate(&at(1.0, 95), &th)), ["memory_high"]);
        a.oom_kill_found(1.05);
        // Samples 100 ms apart (`--watch-interval 100ms`): a second's wait.
        for t in [1.1, 1.2, 1.5, 2.0] {
            assert!(a.evaluate(&at(t, 4), &th).is_empty(), "at {t} s");
        }
        assert_eq!(keys(&a.evaluate(&at(2.1, 4), &th)), ["memory_ok"]);
    }

    /// The JSON field `k` of `w`.
    fn field_of(w: &Warning, k: &str) -> Option<serde_json::Value> {
        w.fields
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
    }

    fn keys(w: &[Warning]) -> Vec<&'static str> {
        w.iter().map(|w| w.key).collect()
    }

    #[test]
    fn memory_fires_once_and_clears_with_hysteresis() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        assert!(a.evaluate(&snap_mem(50, 100), &th).is_empty());
        let w = a.evaluate(&snap_mem(92, 100), &th);
        assert_eq!(keys(&w), ["memory_high"]);
        assert!(
            w[0].msg
                .contains("92.0% of the 100 B memory limit (own cgroup)"),
            "{}",
            w[0].msg
        );
        // Still high, or dipping to 85%: no repeat, no clear.
        assert!(a.evaluate(&snap_mem(95, 100), &th).is_empty());
        assert!(a.evaluate(&snap_mem(85, 100), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&snap_mem(79, 100), &th)), ["memory_ok"]);
        assert!(a.evaluate(&snap_mem(79, 100), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&snap_mem(91, 100), &th)), ["memory_high"]);
    }

    #[test]
    fn memory_threshold_is_configurable() {
        let th = Thresholds {
            memory_pct: 50.0,
            ..Thresholds::default()
        };
        let mut a = AlertState::default();
        assert_eq!(keys(&a.evaluate(&snap_mem(55, 100), &th)), ["memory_high"]);
        assert!(a.evaluate(&snap_mem(45, 100), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&snap_mem(24, 100), &th)), ["memory_ok"]);
    }

    fn snap_throttle(ratio: f64) -> Snapshot {
        let mut s = Snapshot::default();
        s.ratios.throttle_30s = Some(ThrottleRatio {
            ratio,
            periods: 300,
            usage_cores: 0.1,
            span_s: 30.0,
        });
        s
    }

    #[test]
    fn cpu_throttled_fires_and_clears() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        assert!(a.evaluate(&snap_throttle(0.1), &th).is_empty());
        let w = a.evaluate(&snap_throttle(0.8), &th);
        assert_eq!(keys(&w), ["cpu_throttled"]);
        assert!(
            w[0].msg.contains("80.0% of scheduler periods"),
            "{}",
            w[0].msg
        );
        assert!(a.evaluate(&snap_throttle(0.15), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&snap_throttle(0.05), &th)), ["cpu_ok"]);
    }

    #[test]
    fn cpu_throttled_waits_for_a_second_and_ten_periods() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let mut short = snap_throttle(1.0);
        short.ratios.throttle_30s.as_mut().unwrap().span_s = 0.5;
        assert!(a.evaluate(&short, &th).is_empty(), "half a second");
        let mut few = snap_throttle(1.0);
        few.ratios.throttle_30s.as_mut().unwrap().periods = 4;
        assert!(a.evaluate(&few, &th).is_empty(), "four periods");
        assert_eq!(
            keys(&a.evaluate(&snap_throttle(1.0), &th)),
            ["cpu_throttled"]
        );
        // A group gone quiet (few periods) clears it.
        let mut quiet = snap_throttle(0.0);
        quiet.ratios.throttle_30s.as_mut().unwrap().periods = 3;
        assert_eq!(keys(&a.evaluate(&quiet, &th)), ["cpu_ok"]);
    }

    #[test]
    fn cpu_throttled_at_the_limit_is_not_called_moderate() {
        let th = Thresholds::default();
        let with_limit = |cores: f64| {
            let mut s = snap_throttle(0.8);
            s.limits.cpu = Some(CpuLimit {
                cores,
                source: LimitSource::OwnGroup,
                quota_cores: Some(cores),
                cpuset_cpus: None,
                host_cpus: None,
            });
            s
        };
        // 0.1 cores used of 0.1: all of it.
        let w = AlertState::default().evaluate(&with_limit(0.1), &th);
        assert!(
            w[0].msg.ends_with("(limit 0.1 cores (own cgroup), using 0.1 cores on average): the container wants more CPU than its limit; latency and health checks suffer first"),
            "{}",
            w[0].msg
        );
        // 0.1 of 1: bursts between quiet spells, a moderate average.
        let w = AlertState::default().evaluate(&with_limit(1.0), &th);
        assert!(
            w[0].msg.ends_with("even while average CPU looks moderate"),
            "{}",
            w[0].msg
        );
    }

    fn snap_pids(cur: u64, max: u64, refused: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.cgroup.pids.current = Some(cur);
        s.cgroup.pids.max = Some(max);
        s.cgroup.pids.events_max = Some(refused);
        s.limits.pids = Some(PidsLimit {
            max,
            source: LimitSource::OwnGroup,
        });
        s.ratios.pids_ratio = Some(cur as f64 / max as f64);
        s
    }

    #[test]
    fn pids_and_fork_failures() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        // Refusals before ward's first look are the baseline, not news.
        assert!(a.evaluate(&snap_pids(10, 100, 7), &th).is_empty());
        assert_eq!(
            keys(&a.evaluate(&snap_pids(85, 100, 7), &th)),
            ["pids_high"]
        );
        let w = a.evaluate(&snap_pids(100, 100, 12), &th);
        assert_eq!(keys(&w), ["fork_failed"]);
        assert!(w[0].msg.contains("refused 5 forks"), "{}", w[0].msg);
        // The count since ward started, as ward_fork_failures_total has it;
        // the cgroup's 7 before are history.
        assert!(
            w[0].msg
                .contains("(5 since ward started, 12 in the cgroup's life)"),
            "{}",
            w[0].msg
        );
        assert_eq!(w[0].fields[1], ("since_start", json!(5)));
        assert!(a.evaluate(&snap_pids(100, 100, 12), &th).is_empty());
        let w = a.evaluate(&snap_pids(100, 100, 15), &th);
        assert!(
            w[0].msg
                .contains("refused 3 forks since the last sample: the pids limit of 100 is reached (8 since ward started, 15 in"),
            "{}",
            w[0].msg
        );
        assert_eq!(keys(&a.evaluate(&snap_pids(60, 100, 12), &th)), ["pids_ok"]);
    }

    #[test]
    fn an_ancestors_smaller_pids_limit_is_the_one_said() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let ancestor = |cur, refused| {
            let mut s = snap_pids(cur, 1000, refused);
            s.limits.pids = Some(PidsLimit {
                max: 40,
                source: LimitSource::Ancestor { path: None },
            });
            assert_eq!(s.pids_max(), Some(40));
            // As the sampler's ratios take it.
            s.ratios.pids_ratio = Some(cur as f64 / 40.0);
            s
        };
        a.baseline(Some(0));
        let w = a.evaluate(&ancestor(39, 0), &th);
        assert_eq!(keys(&w), ["pids_high"]);
        assert!(w[0].msg.contains("of 40"), "{}", w[0].msg);
        let w = a.evaluate(&ancestor(40, 3), &th);
        assert_eq!(keys(&w), ["fork_failed"]);
        assert!(w[0].msg.contains("limit of 40"), "{}", w[0].msg);
        // No history before ward: the one count.
        assert!(
            w[0].msg.contains("is reached (3 since ward started);"),
            "{}",
            w[0].msg
        );
    }

    /// cgroup v2 `memory.high`: a rise of its `high` events raises
    /// `memory_throttled` once; a sample without one clears it; the count
    /// before the first look is history.
    #[test]
    fn memory_throttled_at_memory_high_rises_and_clears() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let snap = |high| {
            let mut s = Snapshot::default();
            s.cgroup.memory.events.high = Some(high);
            s.cgroup.memory.working_set = Some(17 << 20);
            s.limits.memory_high = Some(crate::cgroup::MemoryLimit {
                bytes: 16 << 20,
                source: LimitSource::OwnGroup,
            });
            s
        };
        assert!(a.evaluate(&snap(204), &th).is_empty(), "history");
        assert!(a.evaluate(&snap(204), &th).is_empty());
        let w = a.evaluate(&snap(222), &th);
        assert_eq!(keys(&w), ["memory_throttled"]);
        assert!(
            w[0].msg.contains(
                "memory went over memory.high (16.0 MiB, own cgroup) 18 times since the last sample (working set now 17.0 MiB)"
            ),
            "{}",
            w[0].msg
        );
        assert_eq!(a.active(), ["memory_throttled"]);
        assert!(a.evaluate(&snap(230), &th).is_empty(), "raised once");
        // Cleared only after 10 s without a crossing: a group held at the
        // mark stalls in reclaim between crossings.
        let at = |high, t| {
            let mut s = snap(high);
            s.uptime_s = t;
            s
        };
        assert!(a.evaluate(&at(230, 1.0), &th).is_empty(), "quiet 0 s");
        assert!(a.evaluate(&at(230, 9.0), &th).is_empty(), "quiet 8 s");
        assert!(a.evaluate(&at(231, 9.5), &th).is_empty(), "a crossing");
        assert!(
            a.evaluate(&at(231, 19.0), &th).is_empty(),
            "quiet again from 19 s"
        );
        assert_eq!(a.active(), ["memory_throttled"]);
        let w = a.evaluate(&at(231, 29.0), &th);
        assert_eq!(keys(&w), ["memory_throttled_ok"]);
        assert_eq!(w[0].msg, "no new crossing of memory.high for 10 s");
        assert!(a.active().is_empty());
        // The baseline from the first look: the first interval counts.
        let mut a = AlertState::default();
        a.baseline_memory_high(Some(204));
        assert_eq!(keys(&a.evaluate(&snap(210), &th)), ["memory_throttled"]);
        // An ancestor's mark: ward's own count does not see its crossings,
        // so none is said from it.
        let mut a = AlertState::default();
        let above = |high| {
            let mut s = snap(high);
            s.limits.memory_high.as_mut().unwrap().source = LimitSource::Ancestor { path: None };
            s
        };
        assert!(a.evaluate(&above(0), &th).is_empty());
        assert!(a.evaluate(&above(9), &th).is_empty());
        // The metric's series follows the same rule: where the warning can
        // never be raised, no 0 that would read as "fine".
        assert!(high_watched(&snap(0)));
        assert!(!high_watched(&above(0)));
        assert!(!high_watched(&Snapshot::default()), "v1: no high count");
        let mut no_mark = snap(0);
        no_mark.limits.memory_high = None;
        assert!(high_watched(&no_mark));
    }

    /// Forks refused while the only limit in view is the host's: the one
    /// that refused is above the cgroups ward can read, and its number is
    /// not the host's (seen in a VM: "the pids limit of 3560 is reached"
    /// at 25 tasks).
    #[test]
    fn refusals_at_a_limit_ward_cannot_see_give_no_number() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let hidden = |refused| {
            let mut s = snap_pids(25, 3560, refused);
            s.cgroup.pids.max = None;
            s.limits.pids = Some(PidsLimit {
                max: 3560,
                source: LimitSource::Host { hidden_above: true },
            });
            s
        };
        a.baseline(Some(0));
        let w = a.evaluate(&hidden(12), &th);
        assert_eq!(keys(&w), ["fork_failed"]);
        assert!(
            w[0].msg.contains(
                "the pids limit (set on a cgroup above the ones ward can read, so its number is unknown) is reached"
            ),
            "{}",
            w[0].msg
        );
        assert!(!w[0].msg.contains("3560"), "{}", w[0].msg);
    }

    fn snap_zombies(parent_zombies: u32) -> Snapshot {
        let mut s = Snapshot::default();
        let mut c = ProcessCensus::default();
        if parent_zombies > 0 {
            c.unreaped = vec![ZombieParent {
                pid: 12,
                name: Some("zabbix_server".into()),
                zombies: parent_zombies,
                oldest_zombie_age_s: 30,
            }];
        }
        c.unreaped_total = parent_zombies;
        c.zombies_total = parent_zombies;
        // Seen by the census before too, as the sampler marks them.
        c.unreaped_kept = parent_zombies;
        c.worst_kept = c.unreaped.first().cloned();
        s.procs = Some(c);
        s
    }

    /// Zombies one census saw and the one before did not (a busy parent
    /// that does wait()) raise nothing, however many.
    #[test]
    fn zombies_seen_once_raise_no_warning() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let mut s = snap_zombies(40);
        let c = s.procs.as_mut().unwrap();
        (c.unreaped_kept, c.worst_kept) = (0, None);
        assert!(a.evaluate(&s, &th).is_empty());
        let w = a.evaluate(&snap_zombies(40), &th);
        assert_eq!(keys(&w), ["zombies_unreaped"]);
        // The oldest's age, said in the words, is a field too.
        assert!(w[0].msg.contains("oldest started 30 s ago"), "{}", w[0].msg);
        assert!(
            w[0].fields.contains(&("oldest_age_s", json!(30))),
            "{:?}",
            w[0].fields
        );
    }

    #[test]
    fn refusals_right_after_the_baseline_are_news() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        a.baseline(snap_pids(1, 100, 7).cgroup.pids.events_max);
        let w = a.evaluate(&snap_pids(100, 100, 9), &th);
        assert_eq!(keys(&w), ["pids_high", "fork_failed"]);
        assert!(w[1].msg.contains("refused 2 forks"), "{}", w[1].msg);
    }

    #[test]
    fn one_zombie_and_one_of_the_tasks_are_singular() {
        let th = Thresholds {
            zombies: 1,
            ..Thresholds::default()
        };
        let mut a = AlertState::default();
        let mut snap = snap_zombies(1);
        let c = snap.procs.as_mut().unwrap();
        c.unreaped[0].name = None;
        c.worst_kept.as_mut().unwrap().name = None;
        let w = a.evaluate(&snap, &th);
        assert_eq!(keys(&w), ["zombies_unreaped"]);
        assert!(
            w[0].msg
                .starts_with("1 zombie process whose parent pid 12 is alive")
                && w[0].msg.contains(
                    "; 1 unreaped zombie in all): no init can reap this; the parent must wait()"
                ),
            "{}",
            w[0].msg
        );
        let mut pids = snap_pids(95, 100, 0);
        pids.procs = snap_zombies(1).procs;
        let w = a.evaluate(&pids, &th);
        assert!(
            w.iter()
                .any(|w| w.key == "pids_high" && w.msg.contains("; 1 of them is a zombie;")),
            "{w:?}"
        );
    }

    #[test]
    fn zombies_name_the_parent_and_repeat_only_when_doubling() {
        let th = Thresholds::default();
        let mut a = AlertState::default();
        assert!(a.evaluate(&snap_zombies(5), &th).is_empty());
        let w = a.evaluate(&snap_zombies(12), &th);
        assert_eq!(keys(&w), ["zombies_unreaped"]);
        assert!(
            w[0].msg.contains("parent zabbix_server (pid 12)"),
            "{}",
            w[0].msg
        );
        assert!(w[0].msg.contains("must wait()"), "{}", w[0].msg);
        assert!(a.evaluate(&snap_zombies(20), &th).is_empty());
        assert_eq!(
            keys(&a.evaluate(&snap_zombies(24), &th)),
            ["zombies_unreaped"]
        );
        assert_eq!(
            keys(&a.evaluate(&snap_zombies(2), &th)),
            ["zombies_cleared"]
        );
        assert!(a.evaluate(&snap_zombies(0), &th).is_empty());
    }

    #[test]
    fn pressure_fires_and_clears() {
        use crate::cgroup::PsiSample;
        use crate::cgroup::parse::{Pressure, PsiLine};
        let th = Thresholds::default();
        let mut a = AlertState::default();
        let with = |avg10: f64| {
            let mut s = Snapshot::default();
            s.cgroup.psi = Some(PsiSample {
                memory: Some(Pressure {
                    some: Some(PsiLine {
                        avg10,
                        ..PsiLine::default()
                    }),
                    full: None,
                }),
                ..PsiSample::default()
            });
            s
        };
        assert!(a.evaluate(&with(2.0), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&with(25.0), &th)), ["memory_pressure"]);
        assert!(a.evaluate(&with(8.0), &th).is_empty());
        assert_eq!(keys(&a.evaluate(&with(1.0), &th)), ["memory_pressure_ok"]);
    }

    #[test]
    fn nothing_without_data() {
        let mut a = AlertState::default();
        assert!(
            a.evaluate(&Snapshot::default(), &Thresholds::default())
                .is_empty()
        );
    }
}
