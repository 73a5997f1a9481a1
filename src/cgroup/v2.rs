//! cgroup v2 file names and formats for the sample.
//!
//! Owns which cgroup2 files a sample reads and how each fills [`CgroupSample`].
//! Formats: Documentation/admin-guide/cgroup-v2.rst.

use std::path::PathBuf;

use super::parse;
use super::resolve::Resolved;
use super::sample::{self, CgroupSample, Probe};

/// A v2 file the sample reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum File {
    MemCurrent,
    MemPeak,
    MemStat,
    MemEvents,
    CpuStat,
    PidsCurrent,
    PidsMax,
    PidsEvents,
}

/// Adds the v2 files of the resolved groups to `files`.
pub(crate) fn plan(r: &Resolved, files: &mut Vec<(Probe, PathBuf)>) {
    let mut add = |g: &Option<super::Group>, list: &[(File, &str)]| {
        if let Some(g) = g {
            for (f, name) in list {
                files.push((Probe::V2(*f), g.dir.join(name)));
            }
        }
    };
    add(
        &r.memory,
        &[
            (File::MemCurrent, "memory.current"),
            (File::MemPeak, "memory.peak"),
            (File::MemStat, "memory.stat"),
            (File::MemEvents, "memory.events"),
        ],
    );
    // cpu.stat's usage fields exist even without the cpu controller enabled.
    add(&r.cpuacct, &[(File::CpuStat, "cpu.stat")]);
    add(
        &r.pids,
        &[
            (File::PidsCurrent, "pids.current"),
            (File::PidsMax, "pids.max"),
            (File::PidsEvents, "pids.events"),
        ],
    );
}

/// Fills `out` from one v2 file; false when it did not parse.
pub(crate) fn apply(f: File, text: &str, out: &mut CgroupSample) -> bool {
    let m = &mut out.memory;
    match f {
        File::MemCurrent => {
            m.usage = parse::single_u64(text);
            m.usage.is_some()
        }
        File::MemPeak => {
            m.peak = parse::single_u64(text);
            m.peak.is_some()
        }
        File::MemStat => {
            m.inactive_file = parse::flat_key(text, "inactive_file");
            m.inactive_file.is_some()
        }
        File::MemEvents => {
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
        File::CpuStat => {
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
        File::PidsCurrent => sample::apply_pids_current(text, out),
        File::PidsMax => sample::apply_pids_max(text, out),
        File::PidsEvents => sample::apply_pids_events(text, out),
    }
}
