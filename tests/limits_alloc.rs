//! The watch's re-read of the limits (every 15 s) reads the files through
//! the buffer its samples keep, and makes no buffer of its own. Before,
//! each re-read made a 2 KiB string and dropped it, and a path for every
//! file it read: on an idle ward, malloc mapped a page and gave it back on
//! a 15 s cycle. One test in its own binary, with an allocator that
//! counts: no other test thread allocates meanwhile.

use std::time::{Duration, Instant};

use ward::cgroup::{Cgroups, LimitSource, Limits, Roots};
use ward::watch::{Sampler, Snapshot};

mod common;

use common::fixtures::fixture_dirs;

mod alloc_count;

use alloc_count::{Counting, LARGE, all_allocs, large_allocs};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn a_sample_that_rereads_the_limits_makes_no_block_but_the_paths_it_keeps() {
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
        let (before, all_before) = (large_allocs(), all_allocs());
        // Past the 15 s: this sample re-reads the limits.
        sampler.take_cgroup_only(start + Duration::from_secs(16), &mut snap);
        let n = large_allocs() - before;
        let all = all_allocs() - all_before;
        assert!(
            snap.limits.memory.is_some(),
            "{}: the sample at 16 s did not re-read the limits",
            dir.display()
        );
        counted.push((dir.display().to_string(), n));
        // The one block a re-read may make: the path of an ancestor or a
        // cpuset that sets a limit, which the limit's source holds. And an
        // unreadable file's words.
        let held = held_paths(&snap.limits);
        if snap.limits.unreadable.is_empty() {
            assert_eq!(
                all,
                held,
                "{}: blocks made by a sample with a limits re-read, against the {held} paths the limits hold",
                dir.display()
            );
        }
    }
    let large: Vec<_> = counted.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        large.is_empty(),
        "blocks of {LARGE} bytes or more made by a sample with a limits re-read: {large:?}"
    );
}

/// The limits' sources that hold a path (a heap block each).
fn held_paths(l: &Limits) -> usize {
    let sources = [
        l.memory.as_ref().map(|m| &m.source),
        l.memory_high.as_ref().map(|m| &m.source),
        l.cpu.as_ref().map(|c| &c.source),
        l.pids.as_ref().map(|p| &p.source),
    ];
    sources
        .into_iter()
        .flatten()
        .filter(|s| {
            matches!(
                s,
                LimitSource::Ancestor { path: Some(_) } | LimitSource::Cpuset { .. }
            )
        })
        .count()
}
