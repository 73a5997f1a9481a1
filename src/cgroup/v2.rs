//! cgroup v2 file names and formats for the sample.
//!
//! Owns which cgroup2 files a sample reads and how each fills [`CgroupSample`].
//! Formats: Documentation/admin-guide/cgroup-v2.rst.

use std::path::PathBuf;

use super::Cgroups;
use super::parse;
use super::pids;
use super::sample::CgroupSample;

/// A v2 file the sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V2File {
    MemCurrent,
    MemPeak,
    MemStat,
    MemEvents,
    CpuStat,
    /// The throttling fields of an ancestor's `cpu.stat`, whose quota is in force.
    CpuThrottle,
    PidsCurrent,
    PidsMax,
    PidsEvents,
}

/// The cgroup2 files of the resolved groups.
pub(crate) fn files(r: &Cgroups) -> Vec<(V2File, PathBuf)> {
    let mut files = Vec::new();
    let mut add = |g: &Option<super::Group>, list: &[(V2File, &str)]| {
        if let Some(g) = g {
            for (f, name) in list {
                files.push((*f, g.dir.join(name)));
            }
        }
    };
    add(
        &r.memory,
        &[
            (V2File::MemCurrent, "memory.current"),
            (V2File::MemPeak, "memory.peak"),
            (V2File::MemStat, "memory.stat"),
            (V2File::MemEvents, "memory.events"),
        ],
    );
    // cpu.stat's usage fields exist even without the cpu controller enabled.
    add(&r.cpuacct, &[(V2File::CpuStat, "cpu.stat")]);
    add(
        &r.pids,
        &[
            (V2File::PidsCurrent, "pids.current"),
            (V2File::PidsMax, "pids.max"),
            (V2File::PidsEvents, "pids.events"),
        ],
    );
    // Throttling where the quota in force is, read after ward's own.
    if let Some(dir) = r.cpu.as_ref().and_then(super::limits::throttled_at) {
        files.push((V2File::CpuThrottle, dir.join("cpu.stat")));
    }
    files
}

/// Fills `out` from one v2 file; false when it did not parse.
pub(crate) fn apply(f: V2File, text: &str, out: &mut CgroupSample) -> bool {
    let m = &mut out.memory;
    match f {
        V2File::MemCurrent => {
            m.usage = parse::single_u64(text);
            m.usage.is_some()
        }
        V2File::MemPeak => {
            m.peak = parse::single_u64(text);
            m.peak.is_some()
        }
        V2File::MemStat => {
            parse::flat_keyed(text, |k, v| match k {
                "inactive_file" => m.inactive_file = Some(v),
                "anon" => m.anon = Some(v),
                "file" => m.file = Some(v),
                "shmem" => m.shmem = Some(v),
                "unevictable" => m.unevictable = Some(v),
                _ => {}
            });
            m.inactive_file.is_some()
        }
        V2File::MemEvents => {
            let e = &mut m.events;
            parse::flat_keyed(text, |k, v| match k {
                "high" => e.high = Some(v),
                "max" => e.max = Some(v),
                "oom" => e.oom = Some(v),
                "oom_kill" => e.oom_kill = Some(v),
                _ => {}
            });
            e.max.is_some()
        }
        V2File::CpuStat => {
            let c = &mut out.cpu;
            parse::flat_keyed(text, |k, v| match k {
                "usage_usec" => c.usage_usec = Some(v),
                "nr_periods" => c.nr_periods = Some(v),
                "nr_throttled" => c.nr_throttled = Some(v),
                "throttled_usec" => c.throttled_usec = Some(v),
                _ => {}
            });
            c.usage_usec.is_some()
        }
        V2File::CpuThrottle => {
            let c = &mut out.cpu;
            parse::flat_keyed(text, |k, v| match k {
                "nr_periods" => c.nr_periods = Some(v),
                "nr_throttled" => c.nr_throttled = Some(v),
                "throttled_usec" => c.throttled_usec = Some(v),
                _ => {}
            });
            c.nr_periods.is_some()
        }
        V2File::PidsCurrent => pids::apply_current(text, &mut out.pids),
        V2File::PidsMax => pids::apply_max(text, &mut out.pids),
        V2File::PidsEvents => pids::apply_events(text, &mut out.pids),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stat_fills_where_memory_is() {
        // `file_mapped` and `anon_thp` must not be taken for `file`/`anon`.
        let text = "anon 1048576\nfile 33554432\nkernel 262144\nanon_thp 0\n\
                    file_mapped 8192\nshmem 31457280\ninactive_file 4096\nunevictable 1376256\n";
        let mut s = CgroupSample::default();
        assert!(apply(V2File::MemStat, text, &mut s));
        assert_eq!(s.memory.anon, Some(1048576));
        assert_eq!(s.memory.file, Some(33554432));
        assert_eq!(s.memory.shmem, Some(31457280));
        assert_eq!(s.memory.inactive_file, Some(4096));
        assert_eq!(s.memory.unevictable, Some(1376256));
    }
}
