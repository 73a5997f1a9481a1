//! Runs discovery, limits and one sample against every captured fixture tree under
//! `tests/fixtures/cgroup/`. Each tree is a fake filesystem root (see NOTES.md).
//! General invariants are checked for every tree; an optional `expected.json`
//! holds values that must match (a subset of the serialized output, with the
//! fixture's own path stripped from every path). New captures (e.g. the v2-qemu
//! one) are picked up automatically.

use std::fs;
use std::path::Path;

use serde_json::Value;
use ward::cgroup::{CgroupSample, Cgroups, Roots};

mod common;

use common::fixtures::{copy_tree, fixture_dirs, fixtures_root};

/// `v2-qemu/t1` for a case of a capture set, `v1-docker-default` otherwise.
fn fixture_name(dir: &Path) -> String {
    let rel = dir.strip_prefix(fixtures_root()).unwrap_or(dir);
    rel.to_string_lossy().into_owned()
}

/// Serializes `v` and strips the fixture path so expectations are portable.
fn portable(v: &impl serde::Serialize, dir: &Path) -> Value {
    let text = serde_json::to_string(v).unwrap();
    let prefix = format!("{}/", dir.display());
    serde_json::from_str(&text.replace(&prefix, "")).unwrap()
}

/// Checks that every value in `expected` is in `actual` at the same place.
fn subset(expected: &Value, actual: &Value, at: &str, errs: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a.get(k).unwrap_or(&Value::Null);
                subset(ev, av, &format!("{at}.{k}"), errs);
            }
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64().zip(a.as_f64()).is_some() => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            if (e - a).abs() > 1e-9 * e.abs().max(1.0) {
                errs.push(format!("{at}: expected {e}, got {a}"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => errs.push(format!("{at}: expected {e}, got {a}")),
    }
}

#[test]
fn every_fixture_discovers_limits_and_samples() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 8, "fixtures missing: {dirs:?}");
    let mut errs = Vec::new();
    for dir in &dirs {
        let name = fixture_name(dir);
        let roots = Roots::under(dir);
        let cg = match Cgroups::discover(&roots) {
            Ok(cg) => cg,
            Err(e) => {
                errs.push(format!("{name}: discover: {e}"));
                continue;
            }
        };
        let limits = cg.limits();
        let mut buf = String::new();
        let mut s = CgroupSample::default();
        cg.sample(&mut buf, &mut s);
        let oom_kills = cg.oom_kill_count(&mut buf);

        let expected_file = dir.join("expected.json");
        let expected: Option<Value> = expected_file.is_file().then(|| {
            serde_json::from_str(&fs::read_to_string(&expected_file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()))
        });

        // Invariants every real setup satisfies, unless expected.json pins the
        // value to null: ward in the root cgroup has no memory.current or
        // memory.events to read (the subset check then asserts the null).
        let mut check = |ok: bool, pointer: &str, what: &str| {
            let waived = expected
                .as_ref()
                .and_then(|e| e.pointer(pointer))
                .is_some_and(Value::is_null);
            if !ok && !waived {
                errs.push(format!("{name}: {what}"));
            }
        };
        check(cg.memory.is_some(), "/discover/memory", "no memory group");
        check(
            limits.memory.as_ref().is_some_and(|m| m.bytes > 0),
            "/limits/memory",
            "no memory limit",
        );
        check(
            limits.cpu.as_ref().is_some_and(|c| c.cores > 0.0),
            "/limits/cpu",
            "no cpu limit",
        );
        check(limits.pids.is_some(), "/limits/pids", "no pids limit");
        check(
            s.memory.usage.is_some(),
            "/sample/memory/usage",
            "no memory usage",
        );
        check(
            s.cpu.usage_usec.is_some(),
            "/sample/cpu/usage_usec",
            "no cpu usage",
        );
        check(oom_kills.is_some(), "/oom_kill_count", "no oom_kill count");
        check(
            s.errors == 0,
            "/sample/errors",
            &format!("{} sample errors", s.errors),
        );

        if let Some(e) = &expected {
            let actual = serde_json::json!({
                "discover": portable(&cg, dir),
                "limits": portable(&limits, dir),
                "sample": portable(&s, dir),
                "oom_kill_count": oom_kills,
            });
            subset(e, &actual, &name, &mut errs);
        } else {
            eprintln!("{name}: no expected.json, checked invariants only");
        }
    }
    assert!(errs.is_empty(), "fixture mismatches:\n{}", errs.join("\n"));
}

#[test]
fn sample_reuses_the_buffer() {
    let dir = fixtures_root().join("v2-handmade-container");
    let cg = Cgroups::discover(&Roots::under(&dir)).unwrap();
    let mut buf = String::with_capacity(4096);
    let mut s = CgroupSample::default();
    cg.sample(&mut buf, &mut s);
    let cap = buf.capacity();
    for _ in 0..10 {
        cg.sample(&mut buf, &mut s);
    }
    assert_eq!(buf.capacity(), cap);
    assert_eq!(s.memory.working_set, Some(4 << 20));
}

#[test]
fn missing_files_are_none_not_errors() {
    // The nested v2 fixture has no memory.peak (kernels before 5.19).
    let dir = fixtures_root().join("v2-handmade-nested");
    let cg = Cgroups::discover(&Roots::under(&dir)).unwrap();
    let mut s = CgroupSample::default();
    cg.sample(&mut String::new(), &mut s);
    assert_eq!(s.memory.peak, None);
    assert_eq!(s.errors, 0);
}

#[test]
fn missing_proc_is_a_read_error_with_its_path() {
    let roots = Roots::under(Path::new("/nonexistent-ward-fixture"));
    let e = Cgroups::discover(&roots).unwrap_err();
    assert!(
        e.to_string()
            .contains("/nonexistent-ward-fixture/proc/self/cgroup"),
        "{e}"
    );
}

#[test]
fn v2_oom_watch_is_readable_after_memory_events_changes() {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;

    let tmp = std::env::temp_dir().join(format!("ward-oomwatch-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    copy_tree(&fixtures_root().join("v2-handmade-container"), &tmp);
    let cg = Cgroups::discover(&Roots::under(&tmp)).unwrap();
    let watch = cg.oom_notifier().expect("inotify watch");
    let readable = |ms: u16| {
        let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
    };
    assert!(!readable(0));
    let events = tmp.join("sys/fs/cgroup/memory.events");
    fs::write(
        &events,
        "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n",
    )
    .unwrap();
    assert!(readable(1000));
    assert_eq!(watch.drain(), 1);
    assert!(!readable(0));
    assert_eq!(cg.oom_kill_count(&mut String::new()), Some(2));
    fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn real_machine_sample_cost() {
    use std::io::Write as _;
    // Measures this machine's real cgroups; nothing to measure without them.
    let Ok(cg) = Cgroups::discover(&Roots::default()) else {
        return;
    };
    let mut buf = String::with_capacity(4096);
    let mut s = CgroupSample::default();
    cg.sample(&mut buf, &mut s);
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        cg.sample(&mut buf, &mut s);
    }
    let per = t.elapsed() / n;
    let _ = writeln!(
        std::io::stderr(),
        "real_machine_sample_cost: {per:?} per sample ({:?})",
        cg.layout
    );
    // Generous bound for a debug build on a shared 2-core machine; typical is far lower.
    assert!(
        per < std::time::Duration::from_millis(2),
        "{per:?} per sample"
    );
}
