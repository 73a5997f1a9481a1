//! The shortcuts ward takes before exec give what the full reads give, on
//! every captured fixture tree under `tests/fixtures/cgroup/`: the memory
//! bound read alone (sizing the child's `oom_score_adj` raise) has the
//! bytes of the limit in all the limits; the OOM kill and fork refusal counts a sample
//! carries equal the ones `oom_kill_count` and `fork_refusals` read, and
//! its memory peak the one `memory_peak` reads (the baselines before the
//! child starts); and the watch's first look, on a
//! discovery that opened no files, leaves the snapshot a full first sample
//! would; and discovery through the watch's buffer finds what a discovery
//! with buffers of its own finds.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::fixtures::{copy_tree, fixture_dirs};
use ward::cgroup::{CgroupSample, Cgroups, LimitSource, MemoryLimit, Roots};
use ward::watch::{Sampler, Snapshot};

#[test]
fn memory_limit_alone_and_sampled_counts_match_the_full_reads() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 8, "fixtures missing: {dirs:?}");
    let mut compared_counts = 0;
    let mut compared_refusals = 0;
    let mut compared_peaks = 0;
    let mut compared_bounds = 0;
    for dir in &dirs {
        let Ok(cg) = Cgroups::discover(&Roots::under(dir)) else {
            continue;
        };
        // The bound alone against the limit with its source: the same
        // bytes where a cgroup sets the limit; where the host's RAM is the
        // limit, no bound or one above it.
        let bound = cg.memory_bound();
        match cg.limits().memory {
            Some(MemoryLimit {
                bytes,
                source:
                    LimitSource::Host {
                        hidden_above: false,
                    },
            }) => assert!(
                bound.is_none_or(|b| b >= bytes),
                "{}: memory bound {bound:?} under the host's {bytes}",
                dir.display()
            ),
            limit => {
                assert_eq!(
                    bound,
                    limit.map(|m| m.bytes),
                    "{}: memory bound",
                    dir.display()
                );
                compared_bounds += usize::from(bound.is_some());
            }
        }
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
        let refusals = cg.fork_refusals(&mut buf);
        assert_eq!(
            s.pids.events_max,
            refusals,
            "{}: fork refusals",
            dir.display()
        );
        compared_refusals += usize::from(refusals.is_some());
        let peak = cg.memory_peak(&mut buf);
        assert_eq!(s.memory.peak, peak, "{}: memory peak", dir.display());
        compared_peaks += usize::from(peak.is_some());
    }
    assert!(compared_peaks >= 4, "too few fixtures with a memory peak");
    assert!(
        compared_bounds >= 4,
        "too few fixtures with a cgroup memory limit"
    );
    assert!(
        compared_counts >= 4,
        "too few fixtures with an OOM kill count"
    );
    assert!(
        compared_refusals >= 4,
        "too few fixtures with a fork refusal count"
    );
}

/// Adds 100 periods, 50 of them throttled, to every `cpu.stat` under `dir`.
fn throttle_more(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            throttle_more(&p);
        } else if p.file_name().is_some_and(|n| n == "cpu.stat") {
            let text = fs::read_to_string(&p).unwrap();
            let bumped: String = text
                .lines()
                .map(|l| match l.split_once(' ') {
                    Some(("nr_periods", v)) => {
                        format!("nr_periods {}\n", v.parse::<u64>().unwrap() + 100)
                    }
                    Some(("nr_throttled", v)) => {
                        format!("nr_throttled {}\n", v.parse::<u64>().unwrap() + 50)
                    }
                    _ => format!("{l}\n"),
                })
                .collect();
            // Rewritten in place: the sampler's open fd sees the new text.
            fs::write(&p, bumped).unwrap();
        }
    }
}

#[test]
fn first_look_on_the_baseline_equals_a_full_first_sample() {
    // As the child starts, the watch opens the sample files discovery left
    // closed and reads the limits; its first look then reads the counters.
    // Together they must leave the same snapshot
    // as a full cgroup sample would, throttling window included (a short
    // run's throttle ratio needs the first reading in the window).
    let mut throttle_seen = 0;
    for (i, dir) in fixture_dirs().iter().enumerate() {
        let tmp = std::env::temp_dir().join(format!("ward-firstlook-{}-{i}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        copy_tree(dir, &tmp);
        let roots = Roots::under(&tmp);
        let (Ok(a), Ok(b)) = (
            Cgroups::discover_unopened(&roots),
            Cgroups::discover(&roots),
        ) else {
            let _ = fs::remove_dir_all(&tmp);
            continue;
        };
        let t0 = Instant::now();
        let mut snap_a = Snapshot::default();
        // Before its files are opened a discovery samples nothing.
        a.sample(&mut String::new(), &mut snap_a.cgroup);
        assert_eq!(snap_a.cgroup, CgroupSample::default(), "{}", dir.display());
        let mut first_look = Sampler::new(Some(a), roots.proc.clone(), 1, true);
        // As the child starts: files and limits, no sample yet.
        first_look.prepare_first(t0, &mut snap_a);
        assert_eq!(snap_a.samples, 0, "{}", dir.display());
        assert_eq!(snap_a.cgroup, CgroupSample::default(), "{}", dir.display());
        let limits_as_the_child_starts = snap_a.limits.clone();
        first_look.take_cgroup_only(t0, &mut snap_a);
        let mut snap_b = Snapshot::default();
        let mut full = Sampler::new(Some(b), roots.proc.clone(), 1, true);
        full.take_cgroup_only(t0, &mut snap_b);
        let name = dir.display();
        assert_eq!(limits_as_the_child_starts, snap_b.limits, "{name}");
        assert_eq!(snap_a.limits, snap_b.limits, "{name}");
        assert_eq!(snap_a.cgroup, snap_b.cgroup, "{name}");
        assert_eq!(snap_a.ratios, snap_b.ratios, "{name}");
        assert_eq!(
            (snap_a.samples, snap_a.read_errors),
            (1, snap_b.read_errors),
            "{name}"
        );

        throttle_more(&tmp);
        let t1 = t0 + Duration::from_secs(10);
        first_look.take_cgroup_only(t1, &mut snap_a);
        full.take_cgroup_only(t1, &mut snap_b);
        assert_eq!(snap_a.ratios, snap_b.ratios, "{name}");
        throttle_seen += usize::from(snap_a.ratios.throttle_30s.is_some());
        let _ = fs::remove_dir_all(&tmp);
    }
    assert!(throttle_seen >= 2, "too few fixtures with a throttle ratio");
}

#[test]
fn v1_limits_follow_the_kernels_hierarchical_limit_and_walk_no_level_without_one() {
    // An ancestor's memory.limit_in_bytes that the kernel does not apply to
    // this group (v1 with use_hierarchy 0: hierarchical_memory_limit stays
    // unlimited) is no limit, and with none to place the levels are not
    // read at all: each would be a file more in the watch's first look.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup/v1-hybrid-host");
    let tmp = std::env::temp_dir().join(format!("ward-hier-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    copy_tree(&src, &tmp);
    let parent = tmp.join("sys/fs/cgroup/memory/process_api");
    fs::write(parent.join("memory.limit_in_bytes"), "67108864\n").unwrap();
    let roots = Roots::under(&tmp);
    let cg = Cgroups::discover(&roots).unwrap();
    let memory = cg.limits().memory.expect("the host's memory at least");
    assert!(memory.source.is_host(), "{memory:?}");
    assert_eq!(cg.memory_bound(), None);

    // Where the kernel does apply a limit, the walk names its level.
    let own = parent.join("8ad4fa1c6f443c32db202c79f2ca8d52");
    let stat = fs::read_to_string(own.join("memory.stat")).unwrap();
    let stat = stat.replace(
        "hierarchical_memory_limit 9223372036854771712",
        "hierarchical_memory_limit 67108864",
    );
    fs::write(own.join("memory.stat"), stat).unwrap();
    let memory = cg.limits().memory.unwrap();
    assert_eq!(memory.bytes, 67108864);
    assert_eq!(
        memory.source,
        LimitSource::Ancestor {
            path: Some(roots.sys_cgroup.join("memory/process_api"))
        }
    );
    assert_eq!(cg.memory_bound(), Some(67108864));
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn v2_without_mountinfo_finds_what_mountinfo_finds_or_declines() {
    // On every captured v2 tree, the group found without mountinfo (cgroup2
    // said to be at /sys/fs/cgroup, the process listed in the group's
    // cgroup.procs) is the one mountinfo resolves, or there is none and
    // mountinfo decides: never another directory. The listing is put where
    // mountinfo says the process is, so a candidate that only exists
    // (a cgroup namespace over the host's mount: path `/`, mount root `/..`)
    // is turned down.
    use ward::cgroup::Placement;
    use ward::cgroup::parse::proc_cgroup;
    use ward::cgroup::resolve::{MountFs, v2_direct};
    let (mut agreed, mut declined) = (0, 0);
    for (i, dir) in fixture_dirs().iter().enumerate() {
        let tmp = std::env::temp_dir().join(format!("ward-v2direct-{}-{i}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        copy_tree(dir, &tmp);
        let roots = Roots::under(&tmp);
        let name = dir.display();
        let text = fs::read_to_string(tmp.join("proc/self/cgroup")).unwrap();
        let lines: Vec<_> = proc_cgroup(&text).collect();
        let pure_v2 = lines.len() == 1 && lines[0].is_unified();
        if !pure_v2 {
            // v1 and hybrid never ask the filesystem.
            let direct = v2_direct(&roots, &lines, roots.pid(), |_: &Path| -> Option<MountFs> {
                panic!("{name}: statfs asked for a tree that is not v2 only")
            });
            assert!(direct.is_none(), "{name}");
            let _ = fs::remove_dir_all(&tmp);
            continue;
        }
        let truth = Cgroups::discover(&roots)
            .ok()
            .and_then(|cg| cg.unified.clone())
            .unwrap_or_else(|| panic!("{name}: no cgroup2 group from mountinfo"));
        // statfs's flags say what mountinfo's options say.
        let said_cgroup2 = |_: &Path| {
            Some(MountFs {
                cgroup2: true,
                read_only: truth.read_only,
            })
        };
        // Nobody listed: no group, whatever exists.
        let procs = truth.dir.join("cgroup.procs");
        let _ = fs::remove_file(&procs);
        assert_eq!(
            v2_direct(&roots, &lines, roots.pid(), said_cgroup2),
            None,
            "{name}"
        );
        if truth.placement != Placement::Exact {
            // The process's group is not below this mount (mountinfo falls
            // back to the mount point, whose listing is others'): none.
            fs::write(&procs, "7\n12\n").unwrap();
            assert_eq!(
                v2_direct(&roots, &lines, roots.pid(), said_cgroup2),
                None,
                "{name}"
            );
            declined += 1;
            let _ = fs::remove_dir_all(&tmp);
            continue;
        }
        fs::write(&procs, format!("7\n{}\n12\n", roots.pid())).unwrap();
        // Not cgroup2 there (a fixture tree, a v1 host): no group.
        let not_cgroup2 = |_: &Path| {
            Some(MountFs {
                cgroup2: false,
                read_only: false,
            })
        };
        assert_eq!(
            v2_direct(&roots, &lines, roots.pid(), not_cgroup2),
            None,
            "{name}"
        );
        assert_eq!(
            v2_direct(&roots, &lines, roots.pid(), |_: &Path| None),
            None,
            "{name}"
        );
        match v2_direct(&roots, &lines, roots.pid(), said_cgroup2) {
            Some(g) => {
                assert_eq!(
                    (&g.dir, &g.mount_point, &g.cgroup_path, g.placement),
                    (
                        &truth.dir,
                        &truth.mount_point,
                        &truth.cgroup_path,
                        truth.placement
                    ),
                    "{name}"
                );
                // And the discovery built on it reads the same groups.
                let direct = Cgroups::v2_only(&roots, g);
                let full = Cgroups::discover(&roots).unwrap();
                assert_eq!(
                    serde_json::to_value(&direct).unwrap(),
                    serde_json::to_value(&full).unwrap(),
                    "{name}"
                );
                agreed += 1;
            }
            None => {
                // Only where the listed directory is not below the mount
                // point by the process's own path.
                assert_ne!(
                    truth.dir,
                    roots.sys_cgroup.join(lines[0].path.trim_start_matches('/')),
                    "{name}: declined a plain case"
                );
                declined += 1;
            }
        }
        let _ = fs::remove_dir_all(&tmp);
    }
    assert!(
        agreed >= 3 && declined >= 1,
        "agreed {agreed}, declined {declined}"
    );
}

#[test]
fn discovery_through_the_watchs_buffer_finds_the_same_groups_and_keeps_the_room() {
    // Before the child starts, discovery reads into the buffer the watch
    // then keeps for its samples (a buffer of its own, freed at once, was
    // a block musl mapped and unmapped before exec), and the memory bound
    // reads through it too. On every fixture tree, whatever the buffer
    // held and however much room it had: the same groups and the same
    // bound as a discovery with a buffer of its own, the buffer left empty
    // with 16 KiB of room (a larger one given back), the same failures.
    let mut compared = 0;
    for dir in &fixture_dirs() {
        let roots = Roots::under(dir);
        let name = dir.display();
        let own = Cgroups::discover_unopened(&roots);
        for mut buf in [
            String::new(),
            "stale text of an earlier read\n".repeat(40),
            String::with_capacity(64 * 1024),
        ] {
            let kept = Cgroups::discover_unopened_in(&roots, &mut buf);
            match (&own, &kept) {
                (Ok(own), Ok(kept)) => {
                    assert_eq!(
                        serde_json::to_string(own).unwrap(),
                        serde_json::to_string(kept).unwrap(),
                        "{name}"
                    );
                    assert!(buf.is_empty(), "{name}: {buf:?}");
                    assert_eq!(buf.capacity(), 16 * 1024, "{name}");
                    assert_eq!(
                        own.memory_bound(),
                        kept.memory_bound_with(&mut buf),
                        "{name}"
                    );
                    assert_eq!(
                        buf.capacity(),
                        16 * 1024,
                        "{name}: the bound grew the buffer"
                    );
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
                (a, b) => panic!("{name}: {a:?} against {b:?}"),
            }
        }
        compared += usize::from(own.is_ok());
    }
    assert!(compared >= 8, "too few fixtures discovered: {compared}");
}
