//! A memory cgroup with a limit, for the row of ward under a memory limit
//! (where it locks its code): cgroup v1's memory hierarchy, or v2's
//! unified one. Removed when dropped, once its processes are gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// v1's memory hierarchy and v2's unified one, as mounted on the host.
const V1_MEMORY: &str = "/sys/fs/cgroup/memory";
const V2_ROOT: &str = "/sys/fs/cgroup";

/// One group, made by [`MemGroup::create`].
pub struct MemGroup {
    dir: PathBuf,
}

impl MemGroup {
    /// A fresh group `name` limited to `bytes` (without swap).
    pub fn create(name: &str, bytes: u64) -> Result<MemGroup, String> {
        let v1 = Path::new(V1_MEMORY).join("memory.limit_in_bytes");
        let (root, limit_file) = if Path::new(V1_MEMORY).join("cgroup.procs").exists() {
            (Path::new(V1_MEMORY), "memory.limit_in_bytes")
        } else {
            let controllers = std::fs::read_to_string(
                Path::new(V2_ROOT).join("cgroup.controllers"),
            )
            .map_err(|e| format!("no v1 memory hierarchy ({}) and no v2: {e}", v1.display()))?;
            if !controllers.split_whitespace().any(|c| c == "memory") {
                return Err("cgroup v2 without the memory controller".into());
            }
            write(
                &Path::new(V2_ROOT).join("cgroup.subtree_control"),
                "+memory",
            )?;
            (Path::new(V2_ROOT), "memory.max")
        };
        let dir = root.join(name);
        if dir.exists() {
            // Left by an interrupted run: empty, or removal fails below.
            let _ = std::fs::remove_dir(&dir);
        }
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let group = MemGroup { dir };
        write(&group.dir.join(limit_file), &bytes.to_string())?;
        Ok(group)
    }

    /// The file a process writes "0" to, to join the group.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for MemGroup {
    fn drop(&mut self) {
        // The last processes may take a moment to leave.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {value} to {}: {e}", path.display()))
}
