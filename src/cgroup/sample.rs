//! The periodic usage sample of ward's cgroup: memory, CPU, PIDs and pressure.
//!
//! Plain data types only. Which files fill them is in `sample_files`, and the
//! per-version file formats in `v1`, `v2` and `pids`.

use serde::Serialize;

use super::parse::Pressure;

/// Memory events (v2 `memory.events`; v1 only has `oom_kill`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEvents {
    /// Times usage went over `memory.high` (reclaim throttling).
    pub high: Option<u64>,
    /// Times usage hit `memory.max` (allocation had to reclaim or fail).
    pub max: Option<u64>,
    /// Times the group hit OOM.
    pub oom: Option<u64>,
    /// Processes killed by the OOM killer.
    pub oom_kill: Option<u64>,
}

/// Memory usage in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MemorySample {
    /// v2 `memory.current` / v1 `memory.usage_in_bytes` (includes page cache).
    pub usage: Option<u64>,
    /// `usage - inactive_file`, clamped at 0: what kubelet/cAdvisor call working set.
    pub working_set: Option<u64>,
    /// Inactive page cache (v2 `inactive_file`, v1 `total_inactive_file`).
    pub inactive_file: Option<u64>,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`): freed when its owner dies.
    pub anon: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`), shmem and tmpfs included.
    pub file: Option<u64>,
    /// Shared memory and tmpfs (v2 `shmem`, v1 `total_shmem`): held by no
    /// process, so killing processes does not free it.
    pub shmem: Option<u64>,
    /// High-water mark (v2 `memory.peak`, 5.19+; v1 `memory.max_usage_in_bytes`).
    pub peak: Option<u64>,
    /// v1 `memory.failcnt`: times the limit was hit.
    pub failcnt: Option<u64>,
    /// Event counters.
    pub events: MemoryEvents,
}

/// CPU time and CFS throttling, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuSample {
    /// Total CPU time used (v2 `usage_usec`; v1 `cpuacct.usage` / 1000).
    pub usage_usec: Option<u64>,
    /// CFS periods with runnable tasks.
    pub nr_periods: Option<u64>,
    /// Of those, periods in which the group was throttled.
    pub nr_throttled: Option<u64>,
    /// Total time throttled (v1 `throttled_time` / 1000).
    pub throttled_usec: Option<u64>,
}

/// Task counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PidsSample {
    /// `pids.current`.
    pub current: Option<u64>,
    /// `pids.max` on the own group; `None` when `max` (see limits for ancestors).
    pub max: Option<u64>,
    /// `pids.events` `max`: forks refused because the limit was hit.
    pub events_max: Option<u64>,
}

/// Pressure stall information of ward's own cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PsiSample {
    /// `cpu.pressure`.
    pub cpu: Option<Pressure>,
    /// `memory.pressure`.
    pub memory: Option<Pressure>,
    /// `io.pressure`.
    pub io: Option<Pressure>,
}

/// One sample. Fields are `None` when the kernel does not provide them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CgroupSample {
    /// Memory.
    pub memory: MemorySample,
    /// CPU.
    pub cpu: CpuSample,
    /// PIDs.
    pub pids: PidsSample,
    /// Pressure; `None` when ward's own group has no PSI files (v1, or hybrid with
    /// ward at the cgroup2 root, where PSI would be the whole machine's).
    pub psi: Option<PsiSample>,
    /// Reads in this sample that failed unexpectedly (not "file absent") or did not
    /// parse. The caller adds these up and logs the first.
    pub errors: u32,
}
