//! The periodic usage sample: memory, CPU, PIDs and pressure of ward's cgroup.
//!
//! Owns the sample types and the precomputed list of files to read ([`Plan`]),
//! built once at discovery so a sample allocates nothing: paths are ready, text
//! goes into the caller's buffer, numbers into the caller's [`CgroupSample`].
//! The per-version file formats are in `v1` and `v2`.

use std::fs::File;
use std::path::PathBuf;

use serde::Serialize;

use super::parse::{self, Pressure};
use super::resolve::{Placement, Resolved};
use super::{Layout, fsread, v1, v2};

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

/// Which file a plan entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    V1(v1::File),
    V2(v2::File),
    Psi(PsiKind),
}

/// Which PSI resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PsiKind {
    Cpu,
    Memory,
    Io,
}

/// One file of the plan: kept open when it could be opened at discovery.
#[derive(Debug)]
struct Entry {
    probe: Probe,
    path: PathBuf,
    file: Option<File>,
}

/// The files one sample reads, fixed at discovery. Files are opened once (close-on-
/// exec, so the child never inherits them) and re-read from offset 0; a file absent
/// at discovery (e.g. `memory.peak` before 5.19) is left out for good, since a
/// group's interface files do not appear later.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    entries: Vec<Entry>,
    psi: bool,
}

impl Plan {
    /// Chooses the files for a layout and resolved groups.
    pub(crate) fn new(layout: Layout, r: &Resolved) -> Plan {
        let mut files = Vec::new();
        match layout {
            Layout::V1 | Layout::Hybrid => v1::plan(r, &mut files),
            Layout::V2 => v2::plan(r, &mut files),
        }
        // Under hybrid, the cgroup2 tree has no controllers but does have PSI files.
        // At its root they describe the whole machine, so use them only when ward
        // sits in a group of its own there.
        let psi_dir = r.unified.as_ref().filter(|u| match layout {
            Layout::V2 => true,
            Layout::Hybrid => u.placement == Placement::Exact && u.cgroup_path != "/",
            Layout::V1 => false,
        });
        let psi = psi_dir.is_some();
        if let Some(u) = psi_dir {
            files.push((Probe::Psi(PsiKind::Cpu), u.dir.join("cpu.pressure")));
            files.push((Probe::Psi(PsiKind::Memory), u.dir.join("memory.pressure")));
            files.push((Probe::Psi(PsiKind::Io), u.dir.join("io.pressure")));
        }
        let entries = files
            .into_iter()
            .filter_map(|(probe, path)| match File::open(&path) {
                Ok(f) => Some(Entry {
                    probe,
                    path,
                    file: Some(f),
                }),
                Err(e) if fsread::is_absent(&e) => None,
                // Kept by path: retried, and counted, on every sample.
                Err(_) => Some(Entry {
                    probe,
                    path,
                    file: None,
                }),
            })
            .collect();
        Plan { entries, psi }
    }

    /// Takes one sample.
    pub(crate) fn run(&self, buf: &mut String, out: &mut CgroupSample) {
        *out = CgroupSample::default();
        if self.psi {
            out.psi = Some(PsiSample::default());
        }
        for e in &self.entries {
            let read = match &e.file {
                Some(f) => fsread::reread_into(buf, f),
                None => fsread::read_into(buf, &e.path),
            };
            match read {
                Ok(()) => {
                    if !apply(e.probe, buf, out) {
                        out.errors += 1;
                    }
                }
                Err(e) if fsread::is_absent(&e) || fsread::is_unsupported(&e) => {}
                Err(_) => out.errors += 1,
            }
        }
        let m = &mut out.memory;
        m.working_set = match (m.usage, m.inactive_file) {
            (Some(u), Some(i)) => Some(u.saturating_sub(i)),
            _ => None,
        };
    }
}

/// Parses one file's text into `out`; false when it did not parse.
fn apply(probe: Probe, text: &str, out: &mut CgroupSample) -> bool {
    match probe {
        Probe::V1(f) => v1::apply(f, text, out),
        Probe::V2(f) => v2::apply(f, text, out),
        Probe::Psi(kind) => {
            let Some(p) = parse::pressure(text) else {
                return false;
            };
            let psi = out.psi.get_or_insert_with(PsiSample::default);
            match kind {
                PsiKind::Cpu => psi.cpu = Some(p),
                PsiKind::Memory => psi.memory = Some(p),
                PsiKind::Io => psi.io = Some(p),
            }
            true
        }
    }
}

/// `pids.current`, `pids.max`, `pids.events`: the same on v1 and v2.
pub(crate) fn apply_pids_current(text: &str, out: &mut CgroupSample) -> bool {
    out.pids.current = parse::single_u64(text);
    out.pids.current.is_some()
}

/// See [`apply_pids_current`].
pub(crate) fn apply_pids_max(text: &str, out: &mut CgroupSample) -> bool {
    match parse::max_or_u64(text) {
        Some(v) => {
            out.pids.max = v;
            true
        }
        None => false,
    }
}

/// See [`apply_pids_current`].
pub(crate) fn apply_pids_events(text: &str, out: &mut CgroupSample) -> bool {
    out.pids.events_max = parse::flat_key(text, "max");
    out.pids.events_max.is_some()
}
