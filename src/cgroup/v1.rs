//! cgroup v1 file names and formats for the sample.
//!
//! Owns which v1 files a sample reads and how each fills [`CgroupSample`]. Units are
//! converted here (v1 reports CPU time in nanoseconds).

use std::path::PathBuf;

use super::Cgroups;
use super::parse;
use super::pids;
use super::sample::CgroupSample;

/// A v1 file the sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V1File {
    MemUsage,
    MemMaxUsage,
    MemFailcnt,
    MemStat,
    OomControl,
    CpuacctUsage,
    CpuStat,
    PidsCurrent,
    PidsMax,
    PidsEvents,
}

/// The v1 files of the resolved groups.
pub(crate) fn files(r: &Cgroups) -> Vec<(V1File, PathBuf)> {
    let mut files = Vec::new();
    let mut add = |g: &Option<super::Group>, list: &[(V1File, &str)]| {
        if let Some(g) = g {
            for (f, name) in list {
                files.push((*f, g.dir.join(name)));
            }
        }
    };
    add(
        &r.memory,
        &[
            (V1File::MemUsage, "memory.usage_in_bytes"),
            (V1File::MemMaxUsage, "memory.max_usage_in_bytes"),
            (V1File::MemFailcnt, "memory.failcnt"),
            (V1File::MemStat, "memory.stat"),
            (V1File::OomControl, "memory.oom_control"),
        ],
    );
    add(&r.cpuacct, &[(V1File::CpuacctUsage, "cpuacct.usage")]);
    add(
        &r.pids,
        &[
            (V1File::PidsCurrent, "pids.current"),
            (V1File::PidsMax, "pids.max"),
            (V1File::PidsEvents, "pids.events"),
        ],
    );
    // Throttling where the quota in force is (usage is cpuacct's).
    if let Some(g) = &r.cpu {
        let dir = super::limits::throttled_at(g).unwrap_or_else(|| g.dir.clone());
        files.push((V1File::CpuStat, dir.join("cpu.stat")));
    }
    files
}

/// Fills `out` from one v1 file; false when it did not parse.
pub(crate) fn apply(f: V1File, text: &str, out: &mut CgroupSample) -> bool {
    let m = &mut out.memory;
    match f {
        V1File::MemUsage => {
            m.usage = parse::single_u64(text);
            m.usage.is_some()
        }
        V1File::MemMaxUsage => {
            m.peak = parse::single_u64(text);
            m.peak.is_some()
        }
        V1File::MemFailcnt => {
            m.failcnt = parse::single_u64(text);
            m.failcnt.is_some()
        }
        V1File::MemStat => {
            // total_* are hierarchical, matching usage_in_bytes which counts children.
            parse::flat_keyed(text, |k, v| match k {
                "total_inactive_file" => m.inactive_file = Some(v),
                "total_rss" => m.anon = Some(v),
                "total_cache" => m.file = Some(v),
                "total_shmem" => m.shmem = Some(v),
                "total_unevictable" => m.unevictable = Some(v),
                _ => {}
            });
            m.inactive_file.is_some()
        }
        V1File::OomControl => {
            // oom_kill appeared in 4.13; older kernels only have the first two lines.
            m.events.oom_kill = parse::flat_key(text, "oom_kill");
            parse::flat_key(text, "under_oom").is_some()
        }
        V1File::CpuacctUsage => {
            out.cpu.usage_usec = parse::single_u64(text).map(|ns| ns / 1000);
            out.cpu.usage_usec.is_some()
        }
        V1File::CpuStat => {
            let c = &mut out.cpu;
            parse::flat_keyed(text, |k, v| match k {
                "nr_periods" => c.nr_periods = Some(v),
                "nr_throttled" => c.nr_throttled = Some(v),
                "throttled_time" => c.throttled_usec = Some(v / 1000),
                _ => {}
            });
            c.nr_periods.is_some()
        }
        V1File::PidsCurrent => pids::apply_current(text, &mut out.pids),
        V1File::PidsMax => pids::apply_max(text, &mut out.pids),
        V1File::PidsEvents => pids::apply_events(text, &mut out.pids),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat_fills_where_memory_is() {
        // Own-group keys first, hierarchical total_* after (as in 6.x).
        let text = "cache 100\nrss 200\nshmem 50\ninactive_file 7\n\
                    total_cache 33554432\ntotal_rss 1048576\ntotal_shmem 31457280\n\
                    total_inactive_file 4096\ntotal_unevictable 1376256\n";
        let mut s = CgroupSample::default();
        assert!(apply(V1File::MemStat, text, &mut s));
        assert_eq!(s.memory.file, Some(33554432));
        assert_eq!(s.memory.anon, Some(1048576));
        assert_eq!(s.memory.shmem, Some(31457280));
        assert_eq!(s.memory.inactive_file, Some(4096));
        assert_eq!(s.memory.unevictable, Some(1376256));
    }

    #[test]
    fn memory_stat_without_shmem_leaves_it_unknown() {
        // Kernels before total_shmem existed.
        let text = "total_cache 10\ntotal_rss 20\ntotal_inactive_file 5\n";
        let mut s = CgroupSample::default();
        assert!(apply(V1File::MemStat, text, &mut s));
        assert_eq!(s.memory.shmem, None);
        assert_eq!(s.memory.anon, Some(20));
    }
}
