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
    /// Pages no reclaim can take (v2 `unevictable`, v1
    /// `total_unevictable`): `mlock`ed, ward's own code among them. Page
    /// cache by `file`, yet not reclaimable.
    #[serde(skip)]
    pub unevictable: Option<u64>,
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

/// Where a group's memory is: anonymous, file cache, shmem/tmpfs (part of the
/// file cache, held by no process) and the rest of the usage (kernel: slab,
/// page tables, sockets), from one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBreakdown {
    /// Anonymous memory (process heaps and stacks).
    pub anon: u64,
    /// Page cache, shmem/tmpfs included.
    pub file: u64,
    /// Shared memory and tmpfs, when the kernel says.
    pub shmem: Option<u64>,
    /// Usage not in `anon` or `file`, when usage is known.
    pub kernel: Option<u64>,
    /// True when shmem/tmpfs holds more than half the usage: memory no
    /// process owns, which killing processes does not free.
    pub tmpfs_dominates: bool,
}

impl MemorySample {
    /// The breakdown, when the kernel gave anon and file.
    pub fn breakdown(&self) -> Option<MemoryBreakdown> {
        Some(MemoryBreakdown::new(
            self.anon?, self.file?, self.shmem, self.usage,
        ))
    }
}

impl MemoryBreakdown {
    /// From the parts of `memory.stat` and the usage.
    pub fn new(anon: u64, file: u64, shmem: Option<u64>, usage: Option<u64>) -> MemoryBreakdown {
        MemoryBreakdown {
            anon,
            file,
            shmem,
            kernel: usage.map(|u| u.saturating_sub(anon.saturating_add(file))),
            tmpfs_dominates: matches!((shmem, usage), (Some(s), Some(u)) if u > 0 && s > u / 2),
        }
    }

    /// In words, for log lines and the report: `anonymous 1.0 MiB, file
    /// cache 31.0 MiB (shmem/tmpfs 30.0 MiB), kernel 0 B; held by
    /// tmpfs/shared memory: killing processes does not free it`.
    pub fn words(&self) -> String {
        use crate::units::bytes;
        let mut w = format!(
            "anonymous {}, file cache {}",
            bytes(self.anon),
            bytes(self.file)
        );
        if let Some(s) = self.shmem {
            w.push_str(&format!(" (shmem/tmpfs {})", bytes(s)));
        }
        if let Some(k) = self.kernel {
            w.push_str(&format!(", kernel {}", bytes(k)));
        }
        if self.tmpfs_dominates {
            w.push_str("; held by tmpfs/shared memory: killing processes does not free it");
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn breakdown_names_where_the_memory_is() {
        let m = MemorySample {
            usage: Some(33 * MIB),
            anon: Some(MIB),
            file: Some(31 * MIB),
            shmem: Some(30 * MIB),
            ..MemorySample::default()
        };
        let b = m.breakdown().unwrap();
        assert_eq!(b.kernel, Some(MIB));
        assert!(b.tmpfs_dominates);
        assert_eq!(
            b.words(),
            "anonymous 1.0 MiB, file cache 31.0 MiB (shmem/tmpfs 30.0 MiB), kernel 1.0 MiB; held by tmpfs/shared memory: killing processes does not free it"
        );
        let small = MemoryBreakdown::new(20 * MIB, MIB, Some(MIB), Some(22 * MIB));
        assert!(!small.tmpfs_dominates);
        assert!(!small.words().contains("held by"));
        // Usage below anon + file (v1 counts differ by a page or two): no
        // negative kernel share.
        assert_eq!(
            MemoryBreakdown::new(MIB, MIB, None, Some(MIB)).kernel,
            Some(0)
        );
        assert_eq!(MemorySample::default().breakdown(), None);
    }
}
