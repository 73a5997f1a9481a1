//! The fixed list of files one sample reads, built once at discovery.
//!
//! Owns opening the files and re-reading them from offset 0 so a sample
//! allocates nothing: paths are ready, text goes into the caller's buffer,
//! numbers into the caller's [`CgroupSample`]. The formats of each file are in
//! `v1`, `v2` and `pids`; this module only dispatches to them.

use std::fs::File;
use std::path::PathBuf;

use super::Cgroups;
use super::parse;
use super::resolve::Placement;
use super::sample::{CgroupSample, PsiSample};
use super::{Layout, fsread, v1, v2};

/// Which kind of file an entry of [`SampleFiles`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    V1(v1::V1File),
    V2(v2::V2File),
    Psi(PsiKind),
}

/// Which PSI resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PsiKind {
    Cpu,
    Memory,
    Io,
}

/// One file of the list: kept open when it could be opened at discovery.
#[derive(Debug)]
struct Entry {
    kind: FileKind,
    path: PathBuf,
    file: Option<File>,
}

/// The files one sample reads, fixed at discovery. Files are opened once (close-on-
/// exec, so the child never inherits them) and re-read from offset 0; a file absent
/// at discovery (e.g. `memory.peak` before 5.19) is left out for good, since a
/// group's interface files do not appear later.
#[derive(Debug, Default)]
pub(crate) struct SampleFiles {
    entries: Vec<Entry>,
    psi: bool,
}

impl SampleFiles {
    /// Chooses the files for a layout and resolved groups.
    pub(crate) fn new(layout: Layout, r: &Cgroups) -> SampleFiles {
        let mut files = Vec::new();
        match layout {
            Layout::V1 | Layout::Hybrid => files.extend(
                v1::files(r)
                    .into_iter()
                    .map(|(f, path)| (FileKind::V1(f), path)),
            ),
            Layout::V2 => files.extend(
                v2::files(r)
                    .into_iter()
                    .map(|(f, path)| (FileKind::V2(f), path)),
            ),
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
            files.push((FileKind::Psi(PsiKind::Cpu), u.dir.join("cpu.pressure")));
            files.push((
                FileKind::Psi(PsiKind::Memory),
                u.dir.join("memory.pressure"),
            ));
            files.push((FileKind::Psi(PsiKind::Io), u.dir.join("io.pressure")));
        }
        let entries = files
            .into_iter()
            .filter_map(|(kind, path)| match File::open(&path) {
                Ok(f) => Some(Entry {
                    kind,
                    path,
                    file: Some(f),
                }),
                Err(e) if fsread::is_absent(&e) => None,
                // Kept by path: retried, and counted, on every sample.
                Err(_) => Some(Entry {
                    kind,
                    path,
                    file: None,
                }),
            })
            .collect();
        SampleFiles { entries, psi }
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
                    if !apply(e.kind, buf, out) {
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
fn apply(kind: FileKind, text: &str, out: &mut CgroupSample) -> bool {
    match kind {
        FileKind::V1(f) => v1::apply(f, text, out),
        FileKind::V2(f) => v2::apply(f, text, out),
        FileKind::Psi(kind) => {
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
