//! [`MetricsView`]: every number the Prometheus endpoint and the EMF line
//! show, as plain data. Owns the mapping from ward's samples and limits to
//! metric values; reads nothing itself.
//!
//! Every value is an `Option`: `None` means "the kernel (or ward) does not
//! know", and renderers leave such a series out instead of inventing a 0.

use crate::cgroup::{CgroupSample, LimitSource, Limits};
use crate::procs::ProcessCensus;

/// Where a limit in force comes from, as the `source` label of the
/// `ward_*_limit_info` series says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOrigin {
    /// A cgroup limit (ward's own group or an ancestor).
    Cgroup,
    /// The group's cpuset allows fewer CPUs than the quota and the host.
    Cpuset,
    /// No cgroup limit: the machine's (MemTotal, usable CPUs, the smaller
    /// of `pid_max` and `threads-max`).
    Host,
}

impl LimitOrigin {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            LimitOrigin::Cgroup => "cgroup",
            LimitOrigin::Cpuset => "cpuset",
            LimitOrigin::Host => "host",
        }
    }

    /// Collapses the detailed [`LimitSource`] to the few label values: which
    /// ancestor set it would make the label's cardinality unbounded.
    pub fn of(source: &LimitSource) -> LimitOrigin {
        match source {
            LimitSource::OwnGroup | LimitSource::Ancestor { .. } => LimitOrigin::Cgroup,
            LimitSource::Cpuset { .. } => LimitOrigin::Cpuset,
            LimitSource::Host { .. } => LimitOrigin::Host,
        }
    }
}

/// The warnings ward raises (the `key`s of `watch::alerts` that open a
/// warning), each a `ward_warning_active{warning=...}` series. A fixed list,
/// so the label stays low-cardinality and an alert rule can name each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningName {
    /// Working set near the memory limit.
    MemoryHigh,
    /// CPU throttled in many CFS periods.
    CpuThrottled,
    /// Tasks near the pids limit. (Refused forks are an event, not a state:
    /// `ward_fork_failures_total` counts them.)
    PidsHigh,
    /// Zombies held by a parent that does not reap them.
    ZombiesUnreaped,
    /// Memory pressure (PSI) high.
    MemoryPressure,
    /// cgroup v2: usage went over the group's own `memory.high`.
    MemoryThrottled,
}

impl WarningName {
    /// Every warning, in the order the endpoint lists them.
    pub const ALL: [WarningName; 6] = [
        WarningName::MemoryHigh,
        WarningName::CpuThrottled,
        WarningName::PidsHigh,
        WarningName::ZombiesUnreaped,
        WarningName::MemoryPressure,
        WarningName::MemoryThrottled,
    ];

    /// The label value: the same key the log uses for the warning.
    pub fn label(self) -> &'static str {
        match self {
            WarningName::MemoryHigh => "memory_high",
            WarningName::CpuThrottled => "cpu_throttled",
            WarningName::PidsHigh => "pids_high",
            WarningName::ZombiesUnreaped => "zombies_unreaped",
            WarningName::MemoryPressure => "memory_pressure",
            WarningName::MemoryThrottled => "memory_throttled",
        }
    }

    /// The warning whose log key is `key`, if it is one of the list.
    pub fn from_key(key: &str) -> Option<WarningName> {
        WarningName::ALL.into_iter().find(|w| w.label() == key)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which warnings are raised right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActiveWarnings {
    active: [bool; WarningName::ALL.len()],
    /// False until the caller first sets the flags: before that, the state is
    /// unknown and no `ward_warning_active` series is shown.
    known: bool,
}

impl ActiveWarnings {
    /// Marks `w` raised or cleared (and the set as known).
    pub fn set(&mut self, w: WarningName, raised: bool) {
        self.active[w.index()] = raised;
        self.known = true;
    }

    /// Marks the set as known with nothing raised.
    pub fn all_clear() -> ActiveWarnings {
        ActiveWarnings {
            active: [false; WarningName::ALL.len()],
            known: true,
        }
    }

    /// Whether `w` is raised; `None` while the state is unknown.
    pub fn get(&self, w: WarningName) -> Option<bool> {
        self.known.then_some(self.active[w.index()])
    }
}

/// Memory, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryView {
    /// Usage minus inactive file cache (cAdvisor's working set).
    pub working_set: Option<u64>,
    /// Usage including page cache (v2 `memory.current`, v1 `usage_in_bytes`).
    pub usage: Option<u64>,
    /// The limit in force: the cgroup's, or the host's where none is set.
    pub limit: Option<u64>,
    /// Where `limit` comes from.
    pub limit_origin: Option<LimitOrigin>,
    /// Shared memory and tmpfs (`memory.stat` `shmem`): held by no process.
    pub shmem: Option<u64>,
    /// High-water mark (v2 `memory.peak`, v1 `max_usage_in_bytes`).
    pub peak: Option<u64>,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub anon: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub file: Option<u64>,
    /// Whether the `memory_throttled` warning can be raised here: cgroup
    /// v2's `high` count is read, and any `memory.high` in force is the
    /// group's own (an ancestor's crossings are counted there).
    pub high_watched: bool,
}

/// CPU time and CFS throttling; times in microseconds, as the kernel counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuView {
    /// Total CPU time used.
    pub usage_usec: Option<u64>,
    /// The CPU limit in force, in cores.
    pub limit_cores: Option<f64>,
    /// Where `limit_cores` comes from.
    pub limit_origin: Option<LimitOrigin>,
    /// CFS periods with runnable tasks.
    pub cfs_periods: Option<u64>,
    /// Of those, periods in which the group was throttled.
    pub cfs_throttled_periods: Option<u64>,
    /// Total time throttled.
    pub cfs_throttled_usec: Option<u64>,
}

/// Tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidsView {
    /// `pids.current`.
    pub current: Option<u64>,
    /// The pids limit in force (cgroup's, or the host's: the smaller of
    /// `pid_max` and `threads-max`).
    pub limit: Option<u64>,
    /// Where `limit` comes from.
    pub limit_origin: Option<LimitOrigin>,
}

/// Pressure stall totals of one resource, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PressureTotals {
    /// "some" total: time at least one task waited for the resource.
    pub waiting_usec: Option<u64>,
    /// "full" total: time all non-idle tasks stalled at once.
    pub stalled_usec: Option<u64>,
}

/// Pressure stall information; each `None` where the kernel has no PSI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PressureView {
    /// `cpu.pressure`.
    pub cpu: PressureTotals,
    /// `memory.pressure`.
    pub memory: PressureTotals,
    /// `io.pressure`.
    pub io: PressureTotals,
}

/// Every value the metrics renderers show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsView {
    /// ward's version, for `ward_build_info`.
    pub version: &'static str,
    /// When ward started, in milliseconds since the Unix epoch.
    pub start_time_ms: Option<u64>,
    /// Memory.
    pub memory: MemoryView,
    /// CPU.
    pub cpu: CpuView,
    /// Tasks.
    pub pids: PidsView,
    /// Forks refused at the pids limit (`pids.events` `max`).
    pub fork_failures: Option<u64>,
    /// Processes of the cgroup killed by the OOM killer (`oom_kill`).
    pub oom_kills: Option<u64>,
    /// Zombies now (latest census).
    pub zombies: Option<u64>,
    /// Processes ward reaped other than its main child.
    pub orphans_reaped: Option<u64>,
    /// Signals ward forwarded to its child.
    pub signals_forwarded: Option<u64>,
    /// Pressure stall totals.
    pub pressure: PressureView,
    /// Which warnings are raised.
    pub warnings: ActiveWarnings,
    /// Under a memory limit: whether ward's code is locked in memory
    /// (`None` without a limit, where ward does not lock it).
    pub code_locked: Option<bool>,
}

impl MetricsView {
    /// An empty view (everything unknown) for this build of ward.
    pub fn new() -> MetricsView {
        MetricsView {
            version: env!("CARGO_PKG_VERSION"),
            ..MetricsView::default()
        }
    }

    /// Copies the cgroup's numbers and the limits in force. Fields the
    /// sample does not carry (shmem, anon, file) are left as they are.
    pub fn set_cgroup(&mut self, s: &CgroupSample, limits: &Limits) {
        let m = &s.memory;
        self.memory.working_set = m.working_set;
        self.memory.usage = m.usage;
        self.memory.peak = m.peak;
        self.memory.limit = limits.memory.as_ref().map(|l| l.bytes);
        self.memory.limit_origin = limits.memory.as_ref().map(|l| LimitOrigin::of(&l.source));
        self.oom_kills = m.events.oom_kill;

        self.cpu.usage_usec = s.cpu.usage_usec;
        self.cpu.cfs_periods = s.cpu.nr_periods;
        self.cpu.cfs_throttled_periods = s.cpu.nr_throttled;
        self.cpu.cfs_throttled_usec = s.cpu.throttled_usec;
        self.cpu.limit_cores = limits.cpu.as_ref().map(|l| l.cores);
        self.cpu.limit_origin = limits.cpu.as_ref().map(|l| LimitOrigin::of(&l.source));

        self.pids.current = s.pids.current;
        self.pids.limit = limits.pids.as_ref().map(|l| l.max);
        self.pids.limit_origin = limits.pids.as_ref().map(|l| LimitOrigin::of(&l.source));
        self.fork_failures = s.pids.events_max;

        let totals = |p: Option<crate::cgroup::parse::Pressure>| PressureTotals {
            waiting_usec: p.and_then(|p| p.some).map(|l| l.total_usec),
            stalled_usec: p.and_then(|p| p.full).map(|l| l.total_usec),
        };
        let psi = s.psi.unwrap_or_default();
        self.pressure = PressureView {
            cpu: totals(psi.cpu),
            memory: totals(psi.memory),
            io: totals(psi.io),
        };
    }

    /// Copies the census's counts.
    pub fn set_census(&mut self, c: &ProcessCensus) {
        self.zombies = Some(u64::from(c.zombies_total));
    }

    /// Working set over the memory limit (0–1), the share dashboards lack.
    pub fn memory_ratio(&self) -> Option<f64> {
        ratio(
            self.memory.working_set.or(self.memory.usage)?,
            self.memory.limit?,
        )
    }

    /// Tasks over the pids limit (0–1).
    pub fn pids_ratio(&self) -> Option<f64> {
        ratio(self.pids.current?, self.pids.limit?)
    }
}

/// `num / den`, unknown when the denominator is 0.
pub(crate) fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse::{Pressure, PsiLine};
    use crate::cgroup::{
        CpuLimit, CpuSample, MemoryEvents, MemoryLimit, MemorySample, PidsLimit, PidsSample,
        PsiSample,
    };

    #[test]
    fn cgroup_sample_maps_field_for_field() {
        let s = CgroupSample {
            memory: MemorySample {
                usage: Some(300),
                working_set: Some(200),
                peak: Some(400),
                events: MemoryEvents {
                    oom_kill: Some(2),
                    ..Default::default()
                },
                ..Default::default()
            },
            cpu: CpuSample {
                usage_usec: Some(5_000_000),
                nr_periods: Some(100),
                nr_throttled: Some(30),
                throttled_usec: Some(1_500_000),
            },
            pids: PidsSample {
                current: Some(7),
                max: Some(100),
                events_max: Some(3),
            },
            psi: Some(PsiSample {
                memory: Some(Pressure {
                    some: Some(PsiLine {
                        total_usec: 11,
                        ..Default::default()
                    }),
                    full: Some(PsiLine {
                        total_usec: 5,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            errors: 0,
        };
        let limits = Limits {
            memory: Some(MemoryLimit {
                bytes: 1000,
                source: LimitSource::Ancestor { path: None },
            }),
            memory_high: None,
            cpu: Some(CpuLimit {
                cores: 2.0,
                source: LimitSource::Host {
                    hidden_above: false,
                },
                quota_cores: None,
                cpuset_cpus: None,
                host_cpus: Some(2),
            }),
            pids: Some(PidsLimit {
                max: 100,
                source: LimitSource::OwnGroup,
            }),
            swap_room: None,
            unreadable: Vec::new(),
        };
        let mut v = MetricsView::new();
        v.set_cgroup(&s, &limits);
        assert_eq!(v.memory.working_set, Some(200));
        assert_eq!(v.memory.limit, Some(1000));
        assert_eq!(v.memory.limit_origin, Some(LimitOrigin::Cgroup));
        assert_eq!(v.cpu.limit_origin, Some(LimitOrigin::Host));
        assert_eq!(v.cpu.cfs_throttled_usec, Some(1_500_000));
        assert_eq!(v.pids.limit, Some(100));
        assert_eq!(v.fork_failures, Some(3));
        assert_eq!(v.oom_kills, Some(2));
        assert_eq!(v.pressure.memory.waiting_usec, Some(11));
        assert_eq!(v.pressure.memory.stalled_usec, Some(5));
        assert_eq!(v.pressure.cpu, PressureTotals::default());
        assert_eq!(v.memory_ratio(), Some(0.2));
        assert_eq!(v.pids_ratio(), Some(0.07));
    }

    #[test]
    fn warnings_unknown_until_set() {
        let mut w = ActiveWarnings::default();
        assert_eq!(w.get(WarningName::PidsHigh), None);
        w.set(WarningName::PidsHigh, true);
        assert_eq!(w.get(WarningName::PidsHigh), Some(true));
        assert_eq!(w.get(WarningName::MemoryHigh), Some(false));
        assert_eq!(
            WarningName::from_key("zombies_unreaped"),
            Some(WarningName::ZombiesUnreaped)
        );
        // An event, never raised for a while: no series would ever be 1.
        assert_eq!(WarningName::from_key("fork_failed"), None);
        assert_eq!(WarningName::from_key("memory_ok"), None);
    }

    #[test]
    fn ratio_of_zero_limit_is_unknown() {
        assert_eq!(ratio(5, 0), None);
    }
}
