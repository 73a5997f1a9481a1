//! Finds the directory of ward's own cgroup for each controller.
//!
//! Owns the mapping from a `/proc/<pid>/cgroup` path plus a mountinfo line to a
//! directory. It reads no cgroup files besides checking that the directory exists
//! (and `cgroup.controllers` on v2).
//!
//! The rule (as in OpenJDK's CgroupV1Controller, .NET's cgroup.cpp and youki):
//! both the path in `/proc/<pid>/cgroup` and a cgroupfs mount's root are relative
//! to the reader's cgroup namespace root, so the directory is the mount point plus
//! the path with the mount root stripped. Cases this covers:
//! - host or `--cgroupns=private`: mount root `/`, path used as is;
//! - Docker on v1 with host cgroupns: mount root `/docker/<id>` and path
//!   `/docker/<id>`: the mount point itself;
//! - `unshare -C` then moved to a sibling: mount root `/..`, path `/../x`: `/x`;
//! - path under `/..` that the mount does not cover (process outside the namespace
//!   root and the mount root is `/`): fall back to the mount point, marked.
//!
//! On a v2 host the common cases need no mountinfo ([`v2_direct`]): a
//! container's own cgroup namespace, or a host's process, with cgroup2 at
//! `/sys/fs/cgroup`, proven by the group's `cgroup.procs` listing the process.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse::{MountInfo, ProcCgroup, v1_mount_has};
use super::{Cgroups, Layout, Roots, fsread};

/// Which cgroup version a group's files follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// Legacy per-controller files (`memory.limit_in_bytes`, ...).
    V1,
    /// Unified files (`memory.max`, ...).
    V2,
}

/// How well the directory found matches the process's real cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The directory is the process's own cgroup.
    Exact,
    /// The process's cgroup is outside what the mount shows (a path under `/..`):
    /// the mount point is used instead, which is the nearest visible ancestor.
    OutsideMount,
    /// The path is not below the mount root for another reason (the process moved
    /// after the mount was made) or the directory does not exist: mount point used.
    Fallback,
}

/// One resolved cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// File names follow this version.
    pub version: Version,
    /// The directory holding the controller files (under [`Roots`]).
    pub dir: PathBuf,
    /// The mount point (under [`Roots`]); ancestors are walked up to here.
    pub mount_point: PathBuf,
    /// The path from `/proc/<pid>/cgroup`, as the kernel printed it.
    pub cgroup_path: String,
    /// How `dir` was found.
    pub placement: Placement,
    /// The mount is read-only (normal in containers; ward only reads).
    pub read_only: bool,
}

impl Group {
    /// `dir` and its ancestors up to and including the mount point, nearest first.
    pub fn levels(&self) -> impl Iterator<Item = &Path> {
        let stop = self.mount_point.as_path();
        let mut next = Some(self.dir.as_path());
        std::iter::from_fn(move || {
            let cur = next?;
            next = if cur == stop || !cur.starts_with(stop) {
                None
            } else {
                cur.parent()
            };
            Some(cur)
        })
    }
}

/// Strips `mount_root` from `cgroup_path`, component by component. Returns the
/// relative rest and whether the path was below the root.
pub fn relative_to_mount<'a>(mount_root: &str, cgroup_path: &'a str) -> (Vec<&'a str>, Placement) {
    let root: Vec<&str> = mount_root.split('/').filter(|c| !c.is_empty()).collect();
    let path: Vec<&'a str> = cgroup_path.split('/').filter(|c| !c.is_empty()).collect();
    if path.len() >= root.len() && path.iter().zip(&root).all(|(a, b)| a == b) {
        let rest = path[root.len()..].to_vec();
        if !rest.contains(&"..") {
            return (rest, Placement::Exact);
        }
    }
    if path.contains(&"..") {
        (Vec::new(), Placement::OutsideMount)
    } else {
        (Vec::new(), Placement::Fallback)
    }
}

/// Resolves the group for one mount and one `/proc/<pid>/cgroup` line.
fn group_for(roots: &Roots, version: Version, m: &MountInfo<'_>, line: &ProcCgroup<'_>) -> Group {
    let mount_point = roots.rebase_mount_point(&m.mount_point);
    let (rest, mut placement) = relative_to_mount(&m.root, line.path);
    let mut dir = mount_point.clone();
    for c in rest {
        dir.push(c);
    }
    // The mount point itself needs no look (a stat each, before the child
    // starts: one per controller, all of them in a container).
    if dir != mount_point && !dir.is_dir() {
        dir = mount_point.clone();
        placement = Placement::Fallback;
    }
    Group {
        version,
        dir,
        mount_point,
        cgroup_path: line.path.to_owned(),
        placement,
        read_only: m.mount_options.split(',').any(|o| o == "ro"),
    }
}

/// Picks the best of several groups (bind mounts of the same hierarchy): an exact
/// match first, then one under `/sys/fs/cgroup`.
fn best(mut candidates: Vec<Group>, roots: &Roots) -> Option<Group> {
    // The usual case, one mount per hierarchy: nothing to order (the sort
    // allocates twice; discovery runs before the child starts).
    if candidates.len() < 2 {
        return candidates.pop();
    }
    crate::rank::sort(&mut candidates, |g| {
        (
            u64::from(g.placement != Placement::Exact),
            u64::from(!g.mount_point.starts_with(&roots.sys_cgroup)),
        )
    });
    candidates.into_iter().next()
}

/// The v1 group for `controller`, if a hierarchy carries it and it is mounted.
pub fn v1(
    roots: &Roots,
    mounts: &[MountInfo<'_>],
    lines: &[ProcCgroup<'_>],
    controller: &str,
) -> Option<Group> {
    let line = lines
        .iter()
        .find(|l| !l.is_unified() && l.has(controller))?;
    let found = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" && v1_mount_has(m.super_options, controller))
        .map(|m| group_for(roots, Version::V1, m, line))
        .collect();
    best(found, roots)
}

/// What `statfs` says of the directory where cgroup2 would be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountFs {
    /// The filesystem there is cgroup2.
    pub cgroup2: bool,
    /// It is mounted read-only.
    pub read_only: bool,
}

/// The cgroup2 group found without mountinfo: the process's
/// `/proc/<pid>/cgroup` holds the unified line alone (a v2 host), the
/// filesystem at `roots.sys_cgroup` is cgroup2 (`fs`, asked only then),
/// and the directory the line's path names below it lists `pid` in its
/// `cgroup.procs`. The listing proves the directory is the process's own
/// group whatever the mount's root; any other case (a bind mount of a
/// subtree, a path under `/..`, the mount elsewhere) is `None`, and
/// mountinfo decides. mountinfo is the costliest read before the child
/// (the kernel writes every mount's line afresh: 74 µs of discovery's
/// 130 on the benchmark VM).
pub fn v2_direct(
    roots: &Roots,
    lines: &[ProcCgroup<'_>],
    pid: u32,
    fs: impl FnOnce(&Path) -> Option<MountFs>,
) -> Option<Group> {
    let [line] = lines else { return None };
    if !line.is_unified() {
        return None;
    }
    let fs = fs(&roots.sys_cgroup).filter(|f| f.cgroup2)?;
    let (rest, placement) = relative_to_mount("/", line.path);
    if placement != Placement::Exact {
        return None;
    }
    let mut dir = roots.sys_cgroup.clone();
    for c in rest {
        dir.push(c);
    }
    let mut buf = String::new();
    fsread::read_opt(&mut buf, &dir.join("cgroup.procs"))?;
    let me = pid.to_string();
    if !buf.lines().any(|l| l == me) {
        return None;
    }
    Some(Group {
        version: Version::V2,
        dir,
        mount_point: roots.sys_cgroup.clone(),
        cgroup_path: line.path.to_owned(),
        placement,
        read_only: fs.read_only,
    })
}

/// The cgroup2 group, if cgroup2 is mounted and the process has a `0::` line.
pub fn v2(roots: &Roots, mounts: &[MountInfo<'_>], lines: &[ProcCgroup<'_>]) -> Option<Group> {
    let line = lines.iter().find(|l| l.is_unified())?;
    let found = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .map(|m| group_for(roots, Version::V2, m, line))
        .collect();
    best(found, roots)
}

/// Whether `acct`, the v1 cpuacct group, may stand for ward's CPU time
/// next to the group `cpu` limits: not when it is an ancestor of it (the
/// two always share a path where they are mounted together, as Docker and
/// systemd do). Mounted apart, a process may sit in a child of `cpu` with
/// a quota and in the root of `cpuacct`, whose usage is the whole host's:
/// said as the container's, it read "using 1.37 cores" against a quota of
/// 0.05. Its usage is then unknown instead. A `cpuacct` group below or
/// beside `cpu`'s still counts ward's own processes.
fn same_group(cpu: Option<&Group>, acct: &Group) -> bool {
    let Some(cpu) = cpu else { return true };
    let parts = |p: &str| {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (c, a) = (parts(&cpu.cgroup_path), parts(&acct.cgroup_path));
    !(a.len() < c.len() && c.starts_with(&a))
}

impl Cgroups {
    /// Resolves every controller ward reads into [`Cgroups`]; the sample's
    /// files are the caller's to choose from them.
    pub(crate) fn resolve(
        roots: &Roots,
        layout: Layout,
        mounts: &[MountInfo<'_>],
        lines: &[ProcCgroup<'_>],
    ) -> Cgroups {
        let mut cg = Cgroups::without_groups(layout, roots);
        let unified = v2(roots, mounts, lines);
        match layout {
            Layout::V1 | Layout::Hybrid => {
                cg.memory = v1(roots, mounts, lines, "memory");
                cg.cpu = v1(roots, mounts, lines, "cpu");
                cg.cpuacct = v1(roots, mounts, lines, "cpuacct")
                    .filter(|acct| same_group(cg.cpu.as_ref(), acct));
                cg.cpuset = v1(roots, mounts, lines, "cpuset");
                cg.pids = v1(roots, mounts, lines, "pids");
                cg.unified = unified;
            }
            Layout::V2 => {
                if let Some(u) = unified {
                    cg.take_unified(u);
                }
            }
        }
        cg
    }

    /// [`Layout::V2`] with its one group (from [`v2_direct`]): each
    /// controller the group has enabled reads there.
    pub fn v2_only(roots: &Roots, u: Group) -> Cgroups {
        let mut cg = Cgroups::without_groups(Layout::V2, roots);
        cg.take_unified(u);
        cg
    }

    fn take_unified(&mut self, u: Group) {
        // cgroup.controllers lists what is enabled for this group; without a
        // readable file (very old kernels, odd fixtures) assume all are.
        let mut buf = String::new();
        let enabled = fsread::read_opt(&mut buf, &u.dir.join("cgroup.controllers")).map(|()| {
            buf.split_ascii_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        let has = |c: &str| enabled.as_ref().is_none_or(|e| e.iter().any(|x| x == c));
        let pick = |c: &str| has(c).then(|| u.clone());
        self.memory = pick("memory");
        self.cpu = pick("cpu");
        // v2 always accounts CPU time in cpu.stat, even without the cpu controller.
        self.cpuacct = Some(u.clone());
        self.cpuset = pick("cpuset");
        self.pids = pick("pids");
        self.unified = Some(u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_mount_root() {
        let (r, p) = relative_to_mount("/", "/system.slice/app.service");
        assert_eq!(
            (r, p),
            (vec!["system.slice", "app.service"], Placement::Exact)
        );
        let (r, p) = relative_to_mount("/docker/abc", "/docker/abc");
        assert_eq!((r.len(), p), (0, Placement::Exact));
        let (r, p) = relative_to_mount("/docker/abc", "/docker/abc/sub");
        assert_eq!((r, p), (vec!["sub"], Placement::Exact));
        // Component-wise: /docker/ab is not a prefix of /docker/abc.
        assert_eq!(
            relative_to_mount("/docker/ab", "/docker/abc").1,
            Placement::Fallback
        );
        let (r, p) = relative_to_mount("/..", "/../wardfx-b");
        assert_eq!((r, p), (vec!["wardfx-b"], Placement::Exact));
        assert_eq!(relative_to_mount("/", "/../..").1, Placement::OutsideMount);
        assert_eq!(relative_to_mount("/", "/..").1, Placement::OutsideMount);
        assert_eq!(relative_to_mount("/", "/").1, Placement::Exact);
        assert_eq!(relative_to_mount("/docker/x", "/").1, Placement::Fallback);
    }

    #[test]
    fn cpu_time_of_another_group_than_the_quotas_is_not_read() {
        let dir = std::env::temp_dir().join(format!("ward-resolve-acct-{}", std::process::id()));
        for d in ["sys/fs/cgroup/cpu/box", "sys/fs/cgroup/cpuacct/box"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let roots = Roots::under(&dir);
        let mountinfo = "30 24 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                         31 24 0:28 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n";
        let mounts: Vec<_> = super::super::parse::cgroup_mountinfo(mountinfo).collect();
        let resolve = |proc_cgroup: &str| {
            let lines: Vec<_> = super::super::parse::proc_cgroup(proc_cgroup).collect();
            Cgroups::resolve(&roots, Layout::V1, &mounts, &lines)
        };
        // In a child of cpu (the quota) and the root of cpuacct (the host).
        let cg = resolve("3:cpu:/box\n2:cpuacct:/\n");
        assert_eq!(
            cg.cpu.as_ref().map(|g| g.cgroup_path.as_str()),
            Some("/box")
        );
        assert!(cg.cpuacct.is_none(), "{:?}", cg.cpuacct);
        // The same group in both: its own CPU time.
        let cg = resolve("3:cpu:/box\n2:cpuacct:/box\n");
        assert_eq!(
            cg.cpuacct.as_ref().map(|g| g.cgroup_path.as_str()),
            Some("/box")
        );
        // cpuacct below cpu's group (no quota at the root): its own still.
        let cg = resolve("3:cpu:/\n2:cpuacct:/box\n");
        assert_eq!(
            cg.cpuacct.as_ref().map(|g| g.cgroup_path.as_str()),
            Some("/box")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn levels_walk_to_mount_point() {
        let g = Group {
            version: Version::V2,
            dir: PathBuf::from("/r/sys/fs/cgroup/a/b"),
            mount_point: PathBuf::from("/r/sys/fs/cgroup"),
            cgroup_path: "/a/b".into(),
            placement: Placement::Exact,
            read_only: false,
        };
        let l: Vec<_> = g.levels().collect();
        assert_eq!(
            l,
            vec![
                Path::new("/r/sys/fs/cgroup/a/b"),
                Path::new("/r/sys/fs/cgroup/a"),
                Path::new("/r/sys/fs/cgroup")
            ]
        );
    }
}
