//! Process census from `/proc`: who is running, zombies and who fails to reap
//! them, the biggest memory users.
//!
//! Reads only `/proc` (under a root path, so tests use fixture trees); never
//! signals or waits for processes: that is the init's job.
//! - [`stat`]: pure parser of `/proc/PID/stat`.
//! - [`table`]: reads every `PID/stat` into a reusable [`ProcTable`].
//! - [`census`]: turns a table into a [`ProcessCensus`].
//! - [`tree`]: parent/child lookups the init needs (descendants, children, names).

pub mod census;
#[cfg(test)]
pub(crate) mod fixture;
pub mod stat;
pub mod table;
pub mod tree;

use std::path::PathBuf;

pub use census::{LastPid, ProcRss, ProcessCensus, UnreapedSeen, ZombieParent, census};
pub use table::{ProcEntry, ProcTable};
pub use tree::{children_of, descendants, named, process_name, renamed};

/// Where procfs is mounted in a real system.
pub const DEFAULT_PROC_ROOT: &str = "/proc";

/// True when `proc_root` is the procfs of ward's own PID namespace: its
/// `self` names `self_pid`. An unmounted one has no `self`, and one of
/// another namespace (`unshare --pid --fork` without `--mount-proc`) lists
/// other processes under the pids ward knows, the host's pid 3 as the main
/// process.
pub fn is_own(proc_root: &std::path::Path, self_pid: i32) -> bool {
    std::fs::read_link(proc_root.join("self"))
        .is_ok_and(|l| l.as_os_str() == self_pid.to_string().as_str())
}

/// What process `pid` is called now (`PROC/PID/comm`), when `proc_root` is
/// this namespace's ([`is_own`]); `None` when either cannot be read. One
/// small read that takes no lock of the process's memory, so the reaping
/// thread may use it, for a child it has not reaped yet.
pub fn comm_now(proc_root: &std::path::Path, self_pid: i32, pid: i32) -> Option<String> {
    if !is_own(proc_root, self_pid) {
        return None;
    }
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("comm")).ok()?;
    let name = String::from_utf8_lossy(&bytes);
    let name = name.strip_suffix('\n').unwrap_or(&name);
    (!name.is_empty()).then(|| name.to_string())
}

/// Which processes a census counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every process in `/proc` (ward is PID 1 of the namespace), ward included.
    All,
    /// Only the descendants of this pid, by ppid links, the pid itself excluded
    /// (ward is a subreaper in a namespace it shares with others).
    DescendantsOf(i32),
}

/// Failure to read `/proc` as a whole. A process vanishing mid-read is not an
/// error: it is skipped.
#[derive(Debug, thiserror::Error)]
pub enum ProcsError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but did not hold what the kernel writes there.
    #[error("{path}: malformed: {what}")]
    Malformed {
        /// What was being read.
        path: PathBuf,
        /// What was wrong.
        what: &'static str,
    },
}
