//! Which cgroup setup the machine uses: v1, v2 or hybrid.
//!
//! Decided from mountinfo (what discovery and tests use) or, for the real root, from
//! statfs magic numbers. Does not resolve paths; see `resolve`.

use std::path::Path;

use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};

use super::Layout;
use super::parse::MountInfo;
use super::resolve::MountFs;

/// The v1 controllers that make a v1 mount count toward [`Layout::V1`]. A lone
/// `name=systemd` hierarchy next to a cgroup2 mount is systemd's bookkeeping, not
/// a resource controller.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// Layout from parsed mountinfo lines; `None` when no cgroup filesystem is mounted.
pub fn layout_from_mounts(mounts: &[MountInfo<'_>]) -> Option<Layout> {
    let v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
    let v1_controllers = mounts.iter().any(|m| {
        m.fstype == "cgroup"
            && m.super_options
                .split(',')
                .any(|o| V1_CONTROLLERS.contains(&o))
    });
    let v1_any = mounts.iter().any(|m| m.fstype == "cgroup");
    match (v1_controllers, v2) {
        (true, true) => Some(Layout::Hybrid),
        (true, false) => Some(Layout::V1),
        (false, true) => Some(Layout::V2),
        (false, false) if v1_any => Some(Layout::V1),
        (false, false) => None,
    }
}

/// Layout from the filesystem types at `sys_cgroup` and `sys_cgroup/unified`, as
/// systemd and runc do. `None` when `sys_cgroup` is not a cgroup-ish filesystem.
pub fn layout_from_statfs(sys_cgroup: &Path) -> Option<Layout> {
    let t = statfs(sys_cgroup).ok()?.filesystem_type();
    if t == CGROUP2_SUPER_MAGIC {
        return Some(Layout::V2);
    }
    if t == TMPFS_MAGIC {
        let unified = statfs(&sys_cgroup.join("unified")).map(|s| s.filesystem_type());
        return Some(if unified == Ok(CGROUP2_SUPER_MAGIC) {
            Layout::Hybrid
        } else {
            Layout::V1
        });
    }
    (t == CGROUP_SUPER_MAGIC).then_some(Layout::V1)
}

/// What `statfs` says of `dir` for [`super::resolve::v2_direct`]; `None` when
/// it fails.
pub fn mount_fs(dir: &Path) -> Option<MountFs> {
    let s = statfs(dir).ok()?;
    Some(MountFs {
        cgroup2: s.filesystem_type() == CGROUP2_SUPER_MAGIC,
        read_only: s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::parse::mountinfo;

    fn layout(text: &str) -> Option<Layout> {
        layout_from_mounts(&mountinfo(text).collect::<Vec<_>>())
    }

    #[test]
    fn detects_each_layout() {
        let v2 = "29 26 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(layout(v2), Some(Layout::V2));
        let v1 = "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
                  35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        assert_eq!(layout(v1), Some(Layout::V1));
        let hybrid = format!("{v1}\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw");
        assert_eq!(layout(&hybrid), Some(Layout::Hybrid));
        // systemd's name=systemd hierarchy next to a full cgroup2 tree is still v2.
        let v2_named = format!("{v2}\n40 31 0:37 / /run/x rw - cgroup cgroup rw,name=systemd");
        assert_eq!(layout(&v2_named), Some(Layout::V2));
        assert_eq!(layout("1 0 0:1 / / rw - ext4 /dev/vda rw"), None);
    }

    #[test]
    fn statfs_on_this_machine_does_not_panic() {
        // Whatever this machine has; only checks the call is harmless.
        let _ = layout_from_statfs(Path::new("/sys/fs/cgroup"));
        assert_eq!(layout_from_statfs(Path::new("/nonexistent-ward")), None);
    }
}
