//! The benchmark's own cpu cgroup. A container runtime runs each container
//! in a cgroup of its own; a shell on a host runs in the root cpu group,
//! where the kernel's sched autogroup (on by default in Debian's kernels)
//! gives every session a CPU share of its own. There, an init whose child
//! calls `setsid` (dumb-init's, by default) has that child scheduled apart
//! from the init and the harness, and its wake-ups come sooner: measured,
//! the signal round trip p50 was 38.7 µs for dumb-init against 47–54 for
//! ward, tini-static and catatonit outside a cgroup, and 48.8 against
//! 48.6–55.3 inside one (the same five, interleaved). Autogroup never
//! applies inside a cgroup, so ward-bench moves itself, and with it
//! everything it starts, into one before it measures, as a runtime would.

use std::path::{Path, PathBuf};

/// A cpu cgroup ward-bench entered; it leaves and removes it when dropped.
pub struct CpuGroup {
    dir: PathBuf,
    /// The `cgroup.procs` it came from.
    back: PathBuf,
}

/// Where ward-bench runs, for the report.
pub enum Placement {
    /// In a cpu cgroup it made.
    Entered(CpuGroup),
    /// Already in a cpu cgroup other than the root (`/path`).
    Already(String),
    /// Left in the root group: why.
    Root(String),
}

impl Placement {
    /// One sentence for the report's header.
    pub fn words(&self) -> String {
        match self {
            Placement::Entered(g) => format!(
                "ward-bench and every init ran in a cpu cgroup of its own (`{}`), as a container \
                 runtime runs a container: sched autogroup, which applies outside cgroups only, \
                 would otherwise schedule a child that calls `setsid` (dumb-init's) apart from \
                 the rest.",
                g.dir.display()
            ),
            Placement::Already(p) => {
                format!(
                    "ward-bench ran in the cpu cgroup `{p}`, where sched autogroup does not apply."
                )
            }
            Placement::Root(why) => format!(
                "ward-bench ran in the root cpu group ({why}): sched autogroup applied, which \
                 schedules a child that calls `setsid` (dumb-init's) apart from the rest."
            ),
        }
    }
}

/// The cpu controller's line of `/proc/self/cgroup`: its mount and the
/// group's path. cgroup v1's `N:cpu,cpuacct:/path` first, else v2's `0::/path`.
fn cpu_group(proc_cgroup: &str) -> Option<(PathBuf, String)> {
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        if controllers.split(',').any(|c| c == "cpu") {
            return Some((
                PathBuf::from(format!("/sys/fs/cgroup/{controllers}")),
                path.to_string(),
            ));
        }
    }
    let v2 = proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    Path::new("/sys/fs/cgroup/cgroup.controllers")
        .is_file()
        .then(|| (PathBuf::from("/sys/fs/cgroup"), v2.to_string()))
}

/// True when the cgroup v2 group at `dir` has the cpu controller: only
/// then is a task in it out of the root cpu group (and of autogroup).
fn v2_has_cpu(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "cpu"))
}

/// Moves ward-bench into a new cpu cgroup when it runs in the root one.
pub fn enter() -> Placement {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some((mount, path)) = cpu_group(&own) else {
        return Placement::Root("no cpu controller found in /proc/self/cgroup".into());
    };
    let v2 = mount == Path::new("/sys/fs/cgroup");
    if path != "/" {
        let dir = mount.join(path.trim_start_matches('/'));
        if v2 && !v2_has_cpu(&dir) {
            return Placement::Root(format!("its cgroup {path} has no cpu controller"));
        }
        return Placement::Already(path);
    }
    // The v1 mount may be named `cpu,cpuacct` with `cpu` a link to it.
    let mount = if mount.is_dir() {
        mount
    } else {
        PathBuf::from("/sys/fs/cgroup/cpu")
    };
    if v2 {
        // A child of the root has the cpu controller only once the root
        // hands it down.
        if let Err(e) = std::fs::write(mount.join("cgroup.subtree_control"), "+cpu") {
            return Placement::Root(format!("cannot enable the cpu controller: {e}"));
        }
    }
    // One name, so that a run killed before its clean-up (a panic aborts:
    // no Drop) leaves no more than one group, which the next run takes.
    let dir = mount.join("ward-bench");
    let _ = std::fs::remove_dir(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Placement::Root(format!("cannot make {}: {e}", dir.display()));
    }
    let me = std::process::id().to_string();
    if let Err(e) = std::fs::write(dir.join("cgroup.procs"), &me) {
        let _ = std::fs::remove_dir(&dir);
        return Placement::Root(format!("cannot enter {}: {e}", dir.display()));
    }
    if v2 && !v2_has_cpu(&dir) {
        let _ = std::fs::write(mount.join("cgroup.procs"), &me);
        let _ = std::fs::remove_dir(&dir);
        return Placement::Root(format!("{} has no cpu controller", dir.display()));
    }
    Placement::Entered(CpuGroup {
        dir,
        back: mount.join("cgroup.procs"),
    })
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.back, std::process::id().to_string());
        // A process the last measurement left may take a moment to go.
        for _ in 0..20 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_is_found_in_v1_and_v2_files() {
        let v1 = "4:memory:/x\n2:cpu,cpuacct:/\n0::/\n";
        assert_eq!(
            cpu_group(v1),
            Some((PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"), "/".to_string()))
        );
        let v1 = "1:cpu:/docker/abc\n2:cpuacct:/\n";
        assert_eq!(
            cpu_group(v1),
            Some((
                PathBuf::from("/sys/fs/cgroup/cpu"),
                "/docker/abc".to_string()
            ))
        );
        // cpuacct alone is not cpu, and no v2 line: none.
        assert_eq!(cpu_group("2:cpuacct:/\n"), None);
    }
}
