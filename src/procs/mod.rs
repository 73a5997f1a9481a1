//! Process census from `/proc`: who is running, zombies and who fails to reap
//! them, the biggest memory users.
//!
//! Reads only `/proc` (under a root path, so tests use fixture trees); never
//! signals or waits for processes: that is the init's job.
//! - [`stat`]: pure parser of `/proc/PID/stat`.
//! - [`table`]: reads every `PID/stat` into a reusable [`ProcTable`].
//! - [`census`]: turns a table into a [`ProcessCensus`].
//! - [`tree`]: parent/child lookups the init needs (descendants, children, names).
//! - [`name`]: a process name kept inline ([`ProcName`]).

pub mod census;
#[cfg(test)]
pub(crate) mod fixture;
pub mod name;
pub mod stat;
pub mod table;
pub mod tree;

use std::path::PathBuf;

pub use census::{
    LastPid, ProcRss, ProcessCensus, UnreapedId, UnreapedSeen, ZombieParent, census, census_into,
};
pub use name::ProcName;
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

/// A process's `comm`, opened once: each later read is one `pread` of the
/// open file, with no lookup in `/proc`, and names the process the file
/// was opened for: once that one is reaped a read fails, whoever has its
/// pid by then. One small read that takes no lock of the process's
/// memory, so the reaping thread may use it.
#[derive(Debug)]
pub struct Comm(std::fs::File);

impl Comm {
    /// Opens `PROC/PID/comm` when `proc_root` is this namespace's
    /// ([`is_own`]).
    pub fn open(proc_root: &std::path::Path, self_pid: i32, pid: i32) -> std::io::Result<Comm> {
        if !is_own(proc_root, self_pid) {
            return Err(std::io::Error::other(format!(
                "{} is not this PID namespace's /proc",
                proc_root.display()
            )));
        }
        std::fs::File::open(proc_root.join(pid.to_string()).join("comm")).map(Comm)
    }

    /// The descriptor's number (how close the open files came to their
    /// limit).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd as _;
        self.0.as_raw_fd()
    }

    /// What the process is called now; `None` once it is reaped (or when
    /// the name is empty).
    pub fn read(&self) -> Option<String> {
        use std::os::unix::fs::FileExt as _;
        // The kernel's comm is at most 15 bytes and a newline.
        let mut buf = [0u8; 64];
        let n = self.0.read_at(&mut buf, 0).ok()?;
        let name = String::from_utf8_lossy(&buf[..n]);
        let name = name.strip_suffix('\n').unwrap_or(&name);
        (!name.is_empty()).then(|| name.to_string())
    }
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

#[cfg(test)]
mod comm_tests {
    use super::*;

    /// Opened while the child is `sh`, read after it `exec`s `sleep`: the
    /// name it has now. Once it is reaped the file reads nothing, and a
    /// `/proc` of another namespace (here a directory without `self`)
    /// opens nothing.
    #[test]
    fn names_the_process_it_was_opened_for_as_it_is_now() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read _; exec sleep 30"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let proc_root = std::path::Path::new(DEFAULT_PROC_ROOT);
        let me = std::process::id() as i32;
        let comm = Comm::open(proc_root, me, pid).expect("own /proc");
        // Opened as soon as it is forked: it may not be `sh` yet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let wait_for = |name: &str| {
            while comm.read().as_deref() != Some(name) {
                assert!(std::time::Instant::now() < deadline, "{:?}", comm.read());
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        wait_for("sh");
        // Let it exec, and wait until it has.
        drop(child.stdin.take());
        wait_for("sleep");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(comm.read(), None, "a reaped process still named");
        let elsewhere = std::env::temp_dir().join(format!("ward-comm-{me}"));
        std::fs::create_dir_all(elsewhere.join(pid.to_string())).unwrap();
        std::fs::write(elsewhere.join(pid.to_string()).join("comm"), "other\n").unwrap();
        assert!(Comm::open(&elsewhere, me, pid).is_err());
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }
}
