//! The captured cgroup fixture trees under `tests/fixtures/cgroup/`: where
//! they are, and a copy a test may change.

use std::fs;
use std::path::{Path, PathBuf};

/// The directory holding every captured tree.
pub fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup")
}

/// Every fixture tree: a directory with `proc/self/cgroup`, either right under
/// the fixtures root or one level down in a capture set such as `v2-qemu/`,
/// whose cases (`v2-qemu/t1`, `v2-qemu/root`) are trees of their own.
pub fn fixture_dirs() -> Vec<PathBuf> {
    let is_tree = |p: &Path| p.join("proc/self/cgroup").is_file();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        fs::read_dir(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect()
    };
    let mut dirs = Vec::new();
    for dir in subdirs(&fixtures_root()) {
        if is_tree(&dir) {
            dirs.push(dir);
        } else {
            dirs.extend(subdirs(&dir).into_iter().filter(|d| is_tree(d)));
        }
    }
    dirs.sort();
    dirs
}

/// Copies the tree at `from` to `to` (files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}
