//! Parent/child lookups the init needs: a subreaper's descendants at shutdown,
//! a process's direct children, a pid's name for log lines. Read-only.

use std::path::Path;

use super::stat::parse_stat;
use super::table::{ProcTable, vanished};
use super::{ProcsError, Scope};

/// Every living descendant of `pid` (not `pid` itself), via ppid links, in pid
/// order. A subreaper signals these at shutdown: unlike PID 1, it cannot rely
/// on the namespace dying with it. Zombies are left out: a signal does
/// nothing to them, and a shutdown that counted them would name processes
/// that had already ended as still running.
pub fn descendants(proc_root: &Path, pid: i32) -> Result<Vec<i32>, ProcsError> {
    let mut table = ProcTable::new();
    table.scan(proc_root)?;
    table.select(Scope::DescendantsOf(pid));
    Ok(table
        .selected()
        .filter(|e| !e.is_zombie())
        .map(|e| e.pid)
        .collect())
}

/// The comm of `pid`, or None if it is gone or unreadable.
pub fn process_name(proc_root: &Path, pid: i32) -> Option<String> {
    let bytes = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    parse_stat(&text).ok().map(|s| s.comm.to_string())
}

/// True when `comm`, a process's name as the kernel keeps it (at most 15
/// bytes), is not `command`'s: the process `exec`ed something else.
pub fn renamed(comm: &str, command: &str) -> bool {
    const COMM_MAX: usize = 15;
    !(comm == command || (comm.len() == COMM_MAX && command.starts_with(comm)))
}

/// A process for a log line: `sh (pid 42)`, or `pid 42` without a name
/// (gone, unreadable, or empty).
pub fn named(name: Option<&str>, pid: i32) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} (pid {pid})"),
        None => format!("pid {pid}"),
    }
}

/// The direct children of `pid`, sorted. Empty if `pid` is gone.
///
/// Uses `/proc/PID/task/TID/children` (one file per thread, since a child
/// belongs to the thread that forked it) when the kernel has it
/// (CONFIG_PROC_CHILDREN, Linux 3.5+), else scans every stat for the ppid. The
/// kernel documents the children file as exact only while the children are
/// stopped; a scan has the same race, so both are a snapshot.
pub fn children_of(proc_root: &Path, pid: i32) -> Result<Vec<i32>, ProcsError> {
    let task_dir = proc_root.join(pid.to_string()).join("task");
    if !task_dir.join(pid.to_string()).join("children").exists() {
        if !proc_root.join(pid.to_string()).exists() {
            return Ok(Vec::new());
        }
        let mut table = ProcTable::new();
        table.scan(proc_root)?;
        return Ok(table
            .entries()
            .iter()
            .filter(|e| e.ppid == pid)
            .map(|e| e.pid)
            .collect());
    }
    let io_err = |path: &Path, source| ProcsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let threads = match std::fs::read_dir(&task_dir) {
        Ok(d) => d,
        Err(e) if vanished(&e) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(io_err(&task_dir, e)),
    };
    let mut children = Vec::new();
    for thread in threads {
        let thread = thread.map_err(|e| io_err(&task_dir, e))?;
        let path = thread.path().join("children");
        match std::fs::read_to_string(&path) {
            Ok(text) => children.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            ),
            // The thread exited while we listed them.
            Err(e) if vanished(&e) => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    crate::rank::sort(&mut children, |&c| (crate::rank::signed(c.into()), 0));
    children.dedup();
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_only_when_the_name_is_another_programs() {
        assert!(!renamed("java", "java"));
        assert!(renamed("dd", "entrypoint.sh"));
        assert!(renamed("python3", "sh"));
        // The kernel cuts names at 15 bytes.
        assert!(!renamed("my-application-", "my-application-server"));
        assert!(renamed("my-app", "my-application-server"));
    }
    use crate::procs::fixture::FakeProc;

    #[test]
    fn descendants_follow_ppid_links_and_leave_zombies_out() {
        let t = FakeProc::incidents("descendants");
        // 11, 21-23 and 31 are zombies: ended, beyond any signal.
        assert_eq!(descendants(t.path(), 1).unwrap(), vec![10, 20, 30]);
        assert_eq!(descendants(t.path(), 20).unwrap(), Vec::<i32>::new());
        assert_eq!(descendants(t.path(), 10).unwrap(), vec![20, 30]);
        assert_eq!(descendants(t.path(), 31).unwrap(), Vec::<i32>::new());
        assert_eq!(descendants(t.path(), 999).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn process_name_is_the_comm() {
        let t = FakeProc::incidents("name");
        assert_eq!(process_name(t.path(), 11).as_deref(), Some("zombie (x)"));
        assert_eq!(process_name(t.path(), 999), None);
    }

    #[test]
    fn a_process_whose_main_thread_alone_ended_is_a_descendant() {
        let t = FakeProc::new("main-thread-ended", "100.0 0");
        // Z with two threads: the main thread ended, the other runs (`Zl`).
        t.process(10, "app", 'Z', 1, 2, 100, 0)
            .process(11, "gone", 'Z', 1, 1, 100, 0)
            .process(12, "worker", 'S', 10, 1, 100, 0);
        assert_eq!(descendants(t.path(), 1).unwrap(), vec![10, 12]);
    }

    #[test]
    fn children_by_scan_when_there_is_no_children_file() {
        let t = FakeProc::incidents("children-scan");
        assert_eq!(children_of(t.path(), 10).unwrap(), vec![20, 30]);
        assert_eq!(children_of(t.path(), 999).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn children_from_every_thread_children_file() {
        let t = FakeProc::incidents("children-file");
        // The file is authoritative when present: it may know a child the
        // scan has not seen yet (99), and children of another thread (12).
        t.children(10, 10, "20 99 ").children(10, 12, "30 ");
        assert_eq!(children_of(t.path(), 10).unwrap(), vec![20, 30, 99]);
    }
}
