//! The watch's re-read of the limits (every 15 s) reads the files through
//! the buffer its samples keep, and makes no buffer of its own. Before,
//! each re-read made a 2 KiB string and dropped it. One test in its own
//! binary, with an allocator that counts: no other test thread allocates
//! meanwhile.

use std::time::{Duration, Instant};

use ward::cgroup::{Cgroups, Limits, Roots};
use ward::watch::{Sampler, Snapshot};

mod common;

use common::fixtures::fixture_dirs;

// Counted: blocks of 1 KiB or more; the paths and words a re-read makes
// are well under it.
mod alloc_count;

use alloc_count::{Counting, LARGE, large_allocs};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn a_sample_that_rereads_the_limits_makes_no_large_buffer() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 8, "fixtures missing: {dirs:?}");
    let mut counted = Vec::new();
    for dir in &dirs {
        let roots = Roots::under(dir);
        let cg = Cgroups::discover(&roots)
            .unwrap_or_else(|e| panic!("{}: discover: {e}", dir.display()));
        let mut sampler = Sampler::new(Some(cg), dir.join("proc"), 1, true);
        let mut snap = Snapshot::default();
        let start = Instant::now();
        sampler.prepare_first(start, &mut snap);
        // Once warm: the first sample may size the buffers it keeps. Not
        // yet due to re-read the limits.
        snap.limits = Limits::default();
        sampler.take_cgroup_only(start + Duration::from_secs(1), &mut snap);
        assert_eq!(snap.limits, Limits::default(), "{}", dir.display());
        let before = large_allocs();
        // Past the 15 s: this sample re-reads the limits.
        sampler.take_cgroup_only(start + Duration::from_secs(16), &mut snap);
        let n = large_allocs() - before;
        assert!(
            snap.limits.memory.is_some(),
            "{}: the sample at 16 s did not re-read the limits",
            dir.display()
        );
        counted.push((dir.display().to_string(), n));
    }
    let large: Vec<_> = counted.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        large.is_empty(),
        "blocks of {LARGE} bytes or more made by a sample with a limits re-read: {large:?}"
    );
}
