//! cgroup v1 file names and formats for the sample.
//!
//! Owns which v1 files a sample reads and how each fills [`CgroupSample`]. Units are
//! converted here (v1 reports CPU time in nanoseconds).

use std::path::PathBuf;

use super::parse;
use super::resolve::Resolved;
use super::sample::{self, CgroupSample, Probe};

/// A v1 file the sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum File {
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

/// Adds the v1 files of the resolved groups to `files`.
pub(crate) fn plan(r: &Resolved, files: &mut Vec<(Probe, PathBuf)>) {
    let mut add = |g: &Option<super::Group>, list: &[(File, &str)]| {
        if let Some(g) = g {
            for (f, name) in list {
                files.push((Probe::V1(*f), g.dir.join(name)));
            }
        }
    };
    add(
        &r.memory,
        &[
            (File::MemUsage, "memory.usage_in_bytes"),
            (File::MemMaxUsage, "memory.max_usage_in_bytes"),
            (File::MemFailcnt, "memory.failcnt"),
            (File::MemStat, "memory.stat"),
            (File::OomControl, "memory.oom_control"),
        ],
    );
    add(&r.cpuacct, &[(File::CpuacctUsage, "cpuacct.usage")]);
    add(&r.cpu, &[(File::CpuStat, "cpu.stat")]);
    add(
        &r.pids,
        &[
            (File::PidsCurrent, "pids.current"),
            (File::PidsMax, "pids.max"),
            (File::PidsEvents, "pids.events"),
        ],
    );
}

/// Fills `out` from one v1 file; false when it did not parse.
pub(crate) fn apply(f: File, text: &str, out: &mut CgroupSample) -> bool {
    let m = &mut out.memory;
    match f {
        File::MemUsage => {
            m.usage = parse::single_u64(text);
            m.usage.is_some()
        }
        File::MemMaxUsage => {
            m.peak = parse::single_u64(text);
            m.peak.is_some()
        }
        File::MemFailcnt => {
            m.failcnt = parse::single_u64(text);
            m.failcnt.is_some()
        }
        File::MemStat => {
            // total_* are hierarchical, matching usage_in_bytes which counts children.
            m.inactive_file = parse::flat_key(text, "total_inactive_file");
            m.inactive_file.is_some()
        }
        File::OomControl => {
            // oom_kill appeared in 4.13; older kernels only have the first two lines.
            m.events.oom_kill = parse::flat_key(text, "oom_kill");
            parse::flat_key(text, "under_oom").is_some()
        }
        File::CpuacctUsage => {
            out.cpu.usage_usec = parse::single_u64(text).map(|ns| ns / 1000);
            out.cpu.usage_usec.is_some()
        }
        File::CpuStat => {
            let c = &mut out.cpu;
            parse::flat_keyed(text, |k, v| match k {
                "nr_periods" => c.nr_periods = Some(v),
                "nr_throttled" => c.nr_throttled = Some(v),
                "throttled_time" => c.throttled_usec = Some(v / 1000),
                _ => {}
            });
            c.nr_periods.is_some()
        }
        File::PidsCurrent => sample::apply_pids_current(text, out),
        File::PidsMax => sample::apply_pids_max(text, out),
        File::PidsEvents => sample::apply_pids_events(text, out),
    }
}
