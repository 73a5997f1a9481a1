//! Real cgroup v1 groups for root tests: `ward-test-<case>-<pid>` under the
//! chosen controllers of /sys/fs/cgroup, with limits, a way to start a process
//! inside, and removal on drop (killing what is left). Touches only the groups
//! it created.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// Where the v1 hierarchies are mounted.
pub const V1_ROOT: &str = "/sys/fs/cgroup";

/// True when every controller in `controllers` has a v1 hierarchy mounted.
pub fn has_v1(controllers: &[&str]) -> bool {
    controllers
        .iter()
        .all(|c| Path::new(V1_ROOT).join(c).join("cgroup.procs").is_file())
}

/// Root and these v1 controllers, or a visible skip (a failure in CI).
pub fn require_v1(what: &str, controllers: &[&str], test: &str) -> bool {
    super::require_root(test) && super::require(what, has_v1(controllers), test)
}

/// One test's group under several v1 controllers. Dropping it kills whatever
/// is still inside and removes the groups, also when the test failed.
pub struct CgroupV1 {
    /// Controller name and directory; co-mounted controllers (`cpu,cpuacct`)
    /// share one directory.
    dirs: Vec<(String, PathBuf)>,
    /// Processes the test started with [`CgroupV1::spawn_holder`].
    holders: Vec<Child>,
}

impl CgroupV1 {
    /// Creates `ward-test-<case>-<pid>` under each controller. A leftover
    /// from an earlier crashed run is emptied and removed first, so counters
    /// start at 0.
    pub fn new(case: &str, controllers: &[&str]) -> CgroupV1 {
        let name = format!("ward-test-{case}-{}", std::process::id());
        let mut dirs: Vec<(String, PathBuf)> = Vec::new();
        let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
        for &c in controllers {
            let root = Path::new(V1_ROOT).join(c);
            // cpu and cpuacct are often one hierarchy (`cpu,cpuacct`, with
            // symlinks): then one directory serves both.
            let real = std::fs::canonicalize(&root).unwrap_or(root.clone());
            let dir = match seen.iter().find(|(r, _)| *r == real) {
                Some((_, d)) => d.clone(),
                None => root.join(&name),
            };
            seen.push((real, dir.clone()));
            dirs.push((c.to_string(), dir));
        }
        let groups = CgroupV1 {
            dirs,
            holders: Vec::new(),
        };
        groups.remove();
        for d in groups.unique() {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        groups
    }

    /// A group `name` inside this one under every controller (dropped
    /// before it, as any value declared after it is).
    pub fn child(&self, name: &str) -> CgroupV1 {
        let dirs: Vec<(String, PathBuf)> = self
            .dirs
            .iter()
            .map(|(c, d)| (c.clone(), d.join(name)))
            .collect();
        let groups = CgroupV1 {
            dirs,
            holders: Vec::new(),
        };
        for d in groups.unique() {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        groups
    }

    /// Each directory once.
    fn unique(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for (_, d) in &self.dirs {
            if !out.contains(&d.as_path()) {
                out.push(d);
            }
        }
        out
    }

    /// The group's directory under `controller`.
    pub fn dir(&self, controller: &str) -> &Path {
        let (_, d) = self
            .dirs
            .iter()
            .find(|(c, _)| c == controller)
            .unwrap_or_else(|| panic!("{controller} is not one of this group's controllers"));
        d
    }

    /// Writes a control file; panics with the path on failure.
    pub fn set(&self, controller: &str, file: &str, value: &str) {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
    }

    /// Reads a control file ("" when missing).
    pub fn get(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir(controller).join(file)).unwrap_or_default()
    }

    /// A memory limit of `value` (bytes, or with a K/M/G suffix); with swap
    /// accounting, memory+swap too, so an OOM kill cannot be avoided by
    /// swapping.
    pub fn limit_memory(&self, value: &str) {
        self.set("memory", "memory.limit_in_bytes", value);
        if self
            .dir("memory")
            .join("memory.memsw.limit_in_bytes")
            .exists()
        {
            self.set("memory", "memory.memsw.limit_in_bytes", value);
        }
    }

    /// A memory limit of `mib` MiB, as [`CgroupV1::limit_memory`].
    pub fn limit_memory_mib(&self, mib: u64) {
        self.limit_memory(&(mib << 20).to_string());
    }

    /// The group's OOM kill counter (`memory.oom_control` field `oom_kill`).
    pub fn oom_kills(&self) -> u64 {
        self.get("memory", "memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Moves `cmd`'s process into every group before it execs, so it and all
    /// it starts are inside from the first instruction.
    pub fn wrap(&self, cmd: &mut Command) {
        let procs: Vec<CString> = self
            .unique()
            .into_iter()
            .map(|d| CString::new(d.join("cgroup.procs").to_str().unwrap()).unwrap())
            .collect();
        // SAFETY: only open/write/close on paths prepared before fork; the
        // closure allocates nothing and touches no locks.
        unsafe {
            cmd.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if !ok {
                        return Err(err);
                    }
                }
                Ok(())
            });
        }
    }

    /// Starts `sleep 60` and moves it into every group; it is killed on drop.
    pub fn spawn_holder(&mut self) -> u32 {
        let child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        self.holders.push(child);
        for d in self.unique() {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("move {pid} into {}: {e}", d.display()));
        }
        pid
    }

    /// Kills what is left inside and removes the groups (bounded: ~2 s).
    fn remove(&self) {
        for d in self.unique() {
            for _ in 0..200 {
                if !d.exists() || std::fs::remove_dir(d).is_ok() {
                    break;
                }
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: plain kill(2) on a process inside this test's group.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for CgroupV1 {
    fn drop(&mut self) {
        for c in &mut self.holders {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.remove();
        for d in self.unique() {
            if d.exists() {
                // Not a panic: this may run while a failed test unwinds.
                eprintln!("warning: could not remove test cgroup {}", d.display());
            }
        }
    }
}
