//! cgroup v1 file names and formats for the sample.
//!
//! Owns which v1 files a sample reads and how each fills [`CgroupSample`]. Units are
//! converted here (v1 reports CPU time in nanoseconds).

use std::path::PathBuf;

use super::parse;
use super::pids;
use super::resolve::Resolved;
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
pub(crate) fn files(r: &Resolved) -> Vec<(V1File, PathBuf)> {
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
    add(&r.cpu, &[(V1File::CpuStat, "cpu.stat")]);
    add(
        &r.pids,
        &[
            (V1File::PidsCurrent, "pids.current"),
            (V1File::PidsMax, "pids.max"),
            (V1File::PidsEvents, "pids.events"),
        ],
    );
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
            m.inactive_file = parse::flat_key(text, "total_inactive_file");
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
