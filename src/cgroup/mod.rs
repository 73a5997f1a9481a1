//! ward's view of its own cgroup: where it is, what its limits are, how close it is.
//!
//! Owns discovery ([`Cgroups::discover`]), limit resolution ([`Cgroups::limits`]),
//! the cheap periodic sample ([`Cgroups::sample`]) and OOM notification
//! ([`Cgroups::oom_notifier`]). It only ever reads cgroup files (except registering a v1
//! OOM eventfd) and never creates, moves or configures cgroups. Every file path is
//! built from a [`Roots`], so tests run on fixture trees captured from real kernels.
//!
//! Layout: [`parse`] (pure text parsers), [`detect`] (v1 / v2 / hybrid),
//! [`resolve`] (own directory per controller), `limits`, `sample` with its `v1` and
//! `v2` file readers, and [`oom`].

pub mod detect;
pub mod limits;
pub mod oom;
pub mod parse;
pub mod resolve;
pub mod sample;

mod fsread;
mod pids;
mod sample_files;
mod v1;
mod v2;

pub(crate) use fsread::in_dir;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use limits::{CpuLimit, LimitSource, Limits, MemoryLimit, PidsLimit};
pub use oom::OomNotifier;
pub use resolve::{Group, Placement, Version};
pub use sample::{
    CgroupSample, CpuSample, MemoryBreakdown, MemoryEvents, MemorySample, PidsSample, PsiSample,
};

/// Errors from discovery and OOM registration. Sampling never fails: it counts.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file ward needs could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// mountinfo lists no cgroup or cgroup2 filesystem.
    #[error("no cgroup filesystem is mounted (according to {path})")]
    NotMounted {
        /// The mountinfo file that was read.
        path: PathBuf,
    },
    /// ward's cgroup has no memory controller to watch for OOM.
    #[error("no memory controller found for OOM notification")]
    NoMemoryController,
    /// Setting up the OOM notification fd failed.
    #[error("cannot set up OOM notification on {path}: {source}")]
    OomNotifier {
        /// The cgroup file involved.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How the cgroup filesystems are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Legacy: one cgroup v1 hierarchy per controller (or group of controllers).
    V1,
    /// Unified: a single cgroup2 hierarchy.
    V2,
    /// v1 controllers plus a controller-less cgroup2 (usually at `/sys/fs/cgroup/unified`).
    Hybrid,
}

/// Which process's `/proc/<pid>/{cgroup,mountinfo,status}` describe "us".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessRef {
    /// `/proc/self`.
    #[default]
    SelfProcess,
    /// `/proc/<pid>`, e.g. a child placed in a test cgroup.
    Pid(u32),
}

/// Where `/proc` and the cgroup and CPU sysfs directories are. Defaults to the real
/// ones; tests point them at a fixture tree with [`Roots::under`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// procfs, default `/proc`.
    pub proc: PathBuf,
    /// Where `/sys/fs/cgroup` is. Mount points that mountinfo reports under
    /// `/sys/fs/cgroup` are re-based here; other mount points are used as they are.
    pub sys_cgroup: PathBuf,
    /// Where `/sys/devices/system/cpu` is (for `online`).
    pub sys_cpu: PathBuf,
    /// The process whose view is taken.
    pub process: ProcessRef,
}

impl Default for Roots {
    fn default() -> Roots {
        Roots {
            proc: PathBuf::from("/proc"),
            sys_cgroup: PathBuf::from(SYS_FS_CGROUP),
            sys_cpu: PathBuf::from("/sys/devices/system/cpu"),
            process: ProcessRef::SelfProcess,
        }
    }
}

const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

impl Roots {
    /// Roots of a fake filesystem tree: `dir/proc`, `dir/sys/fs/cgroup`, ...
    pub fn under(dir: &Path) -> Roots {
        Roots {
            proc: dir.join("proc"),
            sys_cgroup: dir.join("sys/fs/cgroup"),
            sys_cpu: dir.join("sys/devices/system/cpu"),
            process: ProcessRef::SelfProcess,
        }
    }

    /// The real roots, seen from process `pid`.
    pub fn for_pid(pid: u32) -> Roots {
        Roots {
            process: ProcessRef::Pid(pid),
            ..Roots::default()
        }
    }

    /// `/proc/self` or `/proc/<pid>` under [`Roots::proc`].
    pub fn process_dir(&self) -> PathBuf {
        match self.process {
            ProcessRef::SelfProcess => self.proc.join("self"),
            ProcessRef::Pid(pid) => self.proc.join(pid.to_string()),
        }
    }

    /// Calls `f` with the path of the file `name` in [`Roots::process_dir`],
    /// for ward's own process put together on the stack
    /// ([`fsread::in_dir`]), as the limits are read every 15 s.
    pub(crate) fn in_process_dir<R>(&self, name: &str, f: impl FnOnce(&Path) -> R) -> R {
        match self.process {
            ProcessRef::SelfProcess => fsread::in_dir(&self.proc, &["self", name], f),
            ProcessRef::Pid(_) => f(&self.process_dir().join(name)),
        }
    }

    /// The pid [`Roots::process_dir`] describes, as this process's PID
    /// namespace numbers it (what a `cgroup.procs` it reads lists).
    pub fn pid(&self) -> u32 {
        match self.process {
            // SAFETY: getpid cannot fail.
            ProcessRef::SelfProcess => unsafe { libc::getpid() }.unsigned_abs(),
            ProcessRef::Pid(pid) => pid,
        }
    }

    /// Maps a mount point from mountinfo to a path under these roots.
    pub fn rebase_mount_point(&self, mount_point: &str) -> PathBuf {
        match mount_point.strip_prefix(SYS_FS_CGROUP) {
            Some("") => self.sys_cgroup.clone(),
            // All leading slashes: `join` with an absolute path would replace the root.
            Some(rest) if rest.starts_with('/') => {
                self.sys_cgroup.join(rest.trim_start_matches('/'))
            }
            _ => PathBuf::from(mount_point),
        }
    }
}

/// ward's own cgroup directories, one per controller it reads. Holds the sample's
/// open files, hence not `Clone`.
#[derive(Debug, Serialize)]
pub struct Cgroups {
    /// How cgroups are mounted.
    pub layout: Layout,
    /// The memory controller's directory.
    pub memory: Option<Group>,
    /// The cpu controller's directory (CFS quota, throttling).
    pub cpu: Option<Group>,
    /// The cpuacct controller's directory (v1; on v2 the same as `cpu`).
    pub cpuacct: Option<Group>,
    /// The cpuset controller's directory.
    pub cpuset: Option<Group>,
    /// The pids controller's directory.
    pub pids: Option<Group>,
    /// The cgroup2 directory (v2 and hybrid).
    pub unified: Option<Group>,
    #[serde(skip)]
    roots: Roots,
    #[serde(skip)]
    files: sample_files::SampleFiles,
}

impl Cgroups {
    /// Finds ward's (or `roots.process`'s) cgroups from `/proc/<pid>/cgroup` and
    /// `/proc/<pid>/mountinfo`. Missing controllers are `None`, not errors.
    pub fn discover(roots: &Roots) -> Result<Cgroups, CgroupError> {
        let mut cg = Cgroups::discover_unopened(roots)?;
        cg.open_sample_files();
        Ok(cg)
    }

    /// As [`Cgroups::discover`], but the files a sample reads are not opened
    /// yet ([`Cgroups::open_sample_files`]): before the child starts ward
    /// needs the directories and two counters, not the ten open files.
    pub fn discover_unopened(roots: &Roots) -> Result<Cgroups, CgroupError> {
        Cgroups::discover_unopened_in(roots, &mut String::new())
    }

    /// As [`Cgroups::discover_unopened`], reading `/proc/self/cgroup` (and
    /// mountinfo, unless the v2 shortcut finds the group) through `buf`,
    /// which it leaves empty with the room it asked for: the watch keeps
    /// that buffer for its samples, so the room is not freed only to be
    /// taken again (musl unmaps such a block when it is freed: the frees at
    /// discovery's end took 22 µs before the child, timed inside ward on
    /// the benchmark VM). The pages the text filled stay resident, one in
    /// a container; a mountinfo past that room is not kept.
    pub fn discover_unopened_in(roots: &Roots, buf: &mut String) -> Result<Cgroups, CgroupError> {
        let pdir = roots.process_dir();
        let cgroup_path = pdir.join("cgroup");
        let mountinfo_path = pdir.join("mountinfo");
        buf.clear();
        // Room for both files, a busy host's mountinfo included, so that
        // one read takes each: from an empty buffer std probes with 32
        // bytes and doubles, eight reads for 2 KiB.
        buf.reserve(fsread::DISCOVERY_READ);
        fsread::read_appended(buf, &cgroup_path)?;
        let split = buf.len();
        // A v2 host's file holds one line, and only such a file can spare
        // the mountinfo read; no vector to find out (one was another page
        // mapped and unmapped before the child).
        let only = {
            let mut lines = parse::proc_cgroup(buf);
            match (lines.next(), lines.next()) {
                (Some(line), None) => Some(line),
                _ => None,
            }
        };
        let direct = only
            .and_then(|line| resolve::v2_direct(roots, &[line], roots.pid(), detect::mount_fs))
            .map(|u| Cgroups::v2_only(roots, u));
        let found = match direct {
            Some(cg) => cg,
            None => {
                fsread::read_appended(buf, &mountinfo_path)?;
                let (cgroup_text, mountinfo_text) = buf.split_at(split);
                let lines: Vec<_> = parse::proc_cgroup(cgroup_text).collect();
                let mounts: Vec<_> = parse::cgroup_mountinfo(mountinfo_text).collect();
                let layout =
                    detect::layout_from_mounts(&mounts).ok_or(CgroupError::NotMounted {
                        path: mountinfo_path,
                    })?;
                Cgroups::resolve(roots, layout, &mounts, &lines)
            }
        };
        buf.clear();
        if buf.capacity() > fsread::DISCOVERY_READ {
            buf.shrink_to(fsread::DISCOVERY_READ);
        }
        Ok(found)
    }

    /// Opens the files a sample reads (kept open, re-read from offset 0).
    /// Until then [`Cgroups::sample`] reads nothing.
    pub fn open_sample_files(&mut self) {
        self.files = sample_files::SampleFiles::new(self.layout, self);
    }

    /// No controller found yet, and no files to sample.
    fn without_groups(layout: Layout, roots: &Roots) -> Cgroups {
        Cgroups {
            layout,
            memory: None,
            cpu: None,
            cpuacct: None,
            cpuset: None,
            pids: None,
            unified: None,
            roots: roots.clone(),
            files: sample_files::SampleFiles::default(),
        }
    }

    /// Reads the effective limits (memory, CPU, PIDs) and where each comes from.
    /// Meant for start-up and an occasional refresh, not every sample.
    pub fn limits(&self) -> Limits {
        self.limits_with(&mut String::with_capacity(2048))
    }

    /// As [`Cgroups::limits`], reading the files through `buf`: the watch
    /// re-reads the limits every 15 s with the buffer its samples use.
    pub fn limits_with(&self, buf: &mut String) -> Limits {
        limits::read(self, &self.roots, buf)
    }

    /// Reads current usage into `out`, reusing `buf`. Never fails: unreadable files
    /// leave their fields `None`, and unexpected errors are counted in `out.errors`.
    pub fn sample(&self, buf: &mut String, out: &mut CgroupSample) {
        self.files.run(buf, out);
    }

    /// How many processes the kernel OOM killer has killed in ward's memory cgroup
    /// (v1 `memory.oom_control` / v2 `memory.events` `oom_kill`; kernel 4.13+).
    pub fn oom_kill_count(&self, buf: &mut String) -> Option<u64> {
        let m = self.memory.as_ref()?;
        let file = match m.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        fsread::read_into(buf, &m.dir.join(file)).ok()?;
        parse::flat_key(buf, "oom_kill")
    }

    /// cgroup v2: the OOM kills `dir`'s `memory.events` counted (its whole
    /// subtree's, since 5.2); `None` on v1 or when unreadable.
    pub fn oom_kill_count_at(&self, dir: &Path, buf: &mut String) -> Option<u64> {
        self.memory.as_ref().filter(|m| m.version == Version::V2)?;
        fsread::read_into(buf, &dir.join("memory.events")).ok()?;
        parse::flat_key(buf, "oom_kill")
    }

    /// The memory cgroup's high-water mark so far (v1
    /// `memory.max_usage_in_bytes`, v2 `memory.peak`, 5.19+).
    pub fn memory_peak(&self, buf: &mut String) -> Option<u64> {
        let m = self.memory.as_ref()?;
        let file = match m.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        fsread::read_into(buf, &m.dir.join(file)).ok()?;
        parse::single_u64(buf)
    }

    /// Forks the pids controller refused at its limit so far (`pids.events`,
    /// key `max`; the same file on v1 and v2).
    pub fn fork_refusals(&self, buf: &mut String) -> Option<u64> {
        let p = self.pids.as_ref()?;
        fsread::read_into(buf, &p.dir.join("pids.events")).ok()?;
        parse::flat_key(buf, "max")
    }

    /// A pollable fd that becomes readable when the memory cgroup hits OOM (v1
    /// eventfd on `memory.oom_control`) or its `memory.events` changes (v2 inotify).
    pub fn oom_notifier(&self) -> Result<OomNotifier, CgroupError> {
        let m = self
            .memory
            .as_ref()
            .ok_or(CgroupError::NoMemoryController)?;
        match m.version {
            Version::V1 => OomNotifier::v1(&m.dir),
            Version::V2 => OomNotifier::v2(&m.dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebased_mount_points_stay_under_the_root() {
        let roots = Roots::under(Path::new("/fixture"));
        let cg = Path::new("/fixture/sys/fs/cgroup");
        assert_eq!(roots.rebase_mount_point("/sys/fs/cgroup"), cg);
        assert_eq!(
            roots.rebase_mount_point("/sys/fs/cgroup/memory"),
            cg.join("memory")
        );
        assert_eq!(roots.rebase_mount_point("/run/cg"), Path::new("/run/cg"));
        assert_eq!(
            roots.rebase_mount_point("/sys/fs/cgroupx"),
            Path::new("/sys/fs/cgroupx")
        );
        // Found by fuzz/fuzz_targets/mountinfo.rs: a doubled slash made the rest
        // absolute, and `join` then replaced the root with it ("/memory").
        assert_eq!(
            roots.rebase_mount_point("/sys/fs/cgroup//memory"),
            cg.join("memory")
        );
    }
}
