//! The shortcuts ward takes before exec give what the full reads give, on
//! every captured fixture tree under `tests/fixtures/cgroup/`: the memory
//! limit read alone (sizing the child's `oom_score_adj` raise) equals the
//! one in all the limits, and the OOM kill count a sample carries equals
//! the one `oom_kill_count` reads (the baseline before the child starts).

use std::fs;
use std::path::{Path, PathBuf};

use ward::cgroup::{CgroupSample, Cgroups, Roots};

/// Every fixture tree (a directory with `proc/self/cgroup`), also one level
/// down in a capture set such as `v2-qemu/`.
fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup");
    let is_tree = |p: &Path| p.join("proc/self/cgroup").is_file();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        fs::read_dir(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect()
    };
    let mut dirs = Vec::new();
    for dir in subdirs(&root) {
        if is_tree(&dir) {
            dirs.push(dir);
        } else {
            dirs.extend(subdirs(&dir).into_iter().filter(|d| is_tree(d)));
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn memory_limit_alone_and_sampled_oom_count_match_the_full_reads() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 8, "fixtures missing: {dirs:?}");
    let mut compared_counts = 0;
    for dir in &dirs {
        let Ok(cg) = Cgroups::discover(&Roots::under(dir)) else {
            continue;
        };
        assert_eq!(
            cg.memory_limit(),
            cg.limits().memory,
            "{}: memory limit",
            dir.display()
        );
        let mut buf = String::new();
        let mut s = CgroupSample::default();
        cg.sample(&mut buf, &mut s);
        let read = cg.oom_kill_count(&mut buf);
        assert_eq!(
            s.memory.events.oom_kill,
            read,
            "{}: OOM kill count",
            dir.display()
        );
        compared_counts += usize::from(read.is_some());
    }
    assert!(
        compared_counts >= 4,
        "too few fixtures with an OOM kill count"
    );
}
