//! `/proc/self/mountinfo`: `cgroup::parse::mountinfo` (with
//! `unescape_mount_path` and `v1_mount_has`), `cgroup_mountinfo` (the same
//! text's cgroup lines, found without parsing the others), the layout decision
//! `cgroup::detect::layout_from_mounts` and `Roots::rebase_mount_point`. Mount
//! points and roots hold whatever paths the host's admin or a container runtime
//! chose, escaped by the kernel.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ward::cgroup::Roots;
use ward::cgroup::detect::layout_from_mounts;
use ward::cgroup::parse::{cgroup_mountinfo, mountinfo, unescape_mount_path, v1_mount_has};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // ward reads mountinfo with read_to_string: non-UTF-8 never gets here.
        return;
    };
    let mounts: Vec<_> = mountinfo(text).collect();
    let roots = Roots::under(Path::new("/fuzz-root"));
    for m in &mounts {
        for field in [m.mount_options, m.fstype, m.super_options] {
            assert!(text.contains(field));
        }
        let _ = v1_mount_has(m.super_options, "memory");
        let rebased = roots.rebase_mount_point(&m.mount_point);
        if m.mount_point.starts_with("/sys/fs/cgroup/") || m.mount_point == "/sys/fs/cgroup" {
            // A fixture tree must never be escaped: ward would read the host's files.
            assert!(
                rebased.starts_with(&roots.sys_cgroup),
                "{:?} rebased outside the root: {rebased:?}",
                m.mount_point
            );
        }
    }
    let _ = layout_from_mounts(&mounts);
    let cgroup: Vec<_> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .cloned()
        .collect();
    assert_eq!(cgroup_mountinfo(text).collect::<Vec<_>>(), cgroup);

    // Unescaping only ever shrinks a path (four bytes \ooo become one byte, or
    // one U+FFFD for an invalid byte), and leaves an unescaped path alone.
    let unescaped = unescape_mount_path(text);
    assert!(unescaped.len() <= text.len());
    if !text.contains('\\') {
        assert_eq!(unescaped, text);
    }
});
