//! Fake `/proc` trees for unit tests: a temp dir with `PID/stat` files.

use std::path::{Path, PathBuf};

/// A temp dir removed on drop.
pub struct FakeProc {
    root: PathBuf,
}

impl FakeProc {
    /// An empty tree with `/proc/uptime` saying `uptime_s`, and `self`
    /// naming pid 1: the procfs of the PID namespace ward is PID 1 of.
    pub fn new(name: &str, uptime_s: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ward-procs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("uptime"), format!("{uptime_s} 12345.67\n")).unwrap();
        std::os::unix::fs::symlink("1", root.join("self")).unwrap();
        FakeProc { root }
    }

    /// The incidents in one tree: ward (1) with an app (10) whose worker (20)
    /// never waits for its children, a reapable orphan zombie (11), a
    /// zabbix-like parent (30) with one zombie, a process outside ward's
    /// tree (40, ppid 0), and what a scan must skip: an unparsable stat (60),
    /// a pid directory without one (50), non-pid entries. Shared by the
    /// census and tree tests.
    pub fn incidents(name: &str) -> FakeProc {
        let t = FakeProc::new(name, "1000.00");
        t.process(1, "ward", 'S', 0, 2, 10, 100)
            .process(10, "app", 'S', 1, 4, 20, 5000)
            .process(11, "zombie (x)", 'Z', 1, 1, 30, 0)
            .process(20, "python", 'S', 10, 1, 40, 2000)
            .process(21, "python", 'Z', 20, 1, 70_000, 0)
            .process(22, "python", 'Z', 20, 1, 50_000, 0)
            .process(23, "python", 'Z', 20, 1, 60_000, 0)
            .process(30, "zabbix_server", 'S', 10, 1, 50, 10)
            .process(31, "sh", 'Z', 30, 1, 99_000, 0)
            .process(40, "other", 'S', 0, 1, 5, 9000)
            .raw(60, "60 (broken")
            .dir("50") // vanished: directory but no stat
            .dir("sys/kernel");
        t
    }

    /// The root to pass as the proc root.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Adds a process with a stat line built from the fields the census uses.
    // One call per process reads as a table row in the tests; a builder
    // would spread each row over several lines.
    #[allow(clippy::too_many_arguments)]
    pub fn process(
        &self,
        pid: i32,
        comm: &str,
        state: char,
        ppid: i32,
        threads: u32,
        start: u64,
        rss: u64,
    ) -> &Self {
        self.raw(
            pid,
            &format!(
                "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 \
                 {threads} 0 {start} 1000000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
                 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            ),
        )
    }

    /// Adds `PID/stat` with exactly this text.
    pub fn raw(&self, pid: i32, stat: &str) -> &Self {
        let dir = self.root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stat"), stat).unwrap();
        self
    }

    /// Adds `PID/task/TID/children`.
    pub fn children(&self, pid: i32, tid: i32, children: &str) -> &Self {
        let dir = self.root.join(format!("{pid}/task/{tid}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("children"), children).unwrap();
        self
    }

    /// Adds any other file or directory (`self`, `sys`, ...).
    pub fn dir(&self, rel: &str) -> &Self {
        std::fs::create_dir_all(self.root.join(rel)).unwrap();
        self
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
