//! Root-only end-to-end tests of the watch on real cgroup v1 hierarchies: ward
//! runs as PID 1 of a fresh PID namespace inside test cgroups with real limits,
//! a workload provokes each kind of trouble for real (OOM kills, CFS throttling,
//! refused forks, unreaped zombies), and the tests read what ward logged.
//!
//! Skipped (with a visible `SKIPPED:` line) when not root or without the v1
//! controllers on a developer machine; a failure under CI=true, which promises
//! both. The cases run one at a time: the machine is small and shared, and a
//! fork storm next to a throttling measurement would blur it.

mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{Outcome, require, require_root, run, ward_pid1, workload};

/// The v1 controllers every case gets a group in.
const CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids"];
/// The most any case may run before its guard kills it.
const GUARD: Duration = Duration::from_secs(60);
/// Every watch event key, for "nothing was watched" checks.
const WATCH_KEYS: &[&str] = &[
    "watching",
    "memory_high",
    "memory_ok",
    "oom_kill",
    "cpu_throttled",
    "cpu_ok",
    "pids_high",
    "pids_ok",
    "fork_failed",
    "zombies_unreaped",
    "zombies_cleared",
    "memory_pressure",
    "cgroup_unavailable",
];

/// Holds the machine for one case at a time (poison-tolerant: one failed case
/// must not fail the others).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Root and the v1 controllers, or a visible skip (a failure in CI).
fn can_run(test: &str) -> bool {
    require_root(test)
        && require(
            "cgroup v1 memory, cpu, cpuacct and pids hierarchies",
            CONTROLLERS.iter().all(|c| {
                Path::new("/sys/fs/cgroup")
                    .join(c)
                    .join("cgroup.procs")
                    .is_file()
            }),
            test,
        )
}

/// One test's cgroups, `ward-test-<case>-<pid>` under each v1 controller.
/// Dropping it kills whatever is still inside and removes the groups, also
/// when the test failed.
struct CgroupV1 {
    /// Controller name and directory, for every controller in
    /// [`CONTROLLERS`]; co-mounted controllers share one directory.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl CgroupV1 {
    /// Creates the groups (a leftover from an earlier crashed run is emptied
    /// and reused, so its counters may not start at 0; every case therefore
    /// removes it first).
    fn new(case: &str) -> CgroupV1 {
        let name = format!("ward-test-{case}-{}", std::process::id());
        let mut dirs: Vec<(&'static str, PathBuf)> = Vec::new();
        let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
        for &c in CONTROLLERS {
            let root = Path::new("/sys/fs/cgroup").join(c);
            // cpu and cpuacct are often one hierarchy (`cpu,cpuacct`, with
            // symlinks): then one directory serves both.
            let real = std::fs::canonicalize(&root).unwrap_or(root.clone());
            let dir = match seen.iter().find(|(r, _)| *r == real) {
                Some((_, d)) => d.clone(),
                None => root.join(&name),
            };
            seen.push((real, dir.clone()));
            dirs.push((c, dir));
        }
        let groups = CgroupV1 { dirs };
        groups.remove();
        for d in groups.unique() {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        groups
    }

    /// Each directory once.
    fn unique(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        for (_, d) in &self.dirs {
            if !out.contains(&d.as_path()) {
                out.push(d);
            }
        }
        out
    }

    /// The group's directory under `controller`.
    fn dir(&self, controller: &str) -> &Path {
        let (_, d) = self
            .dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .unwrap_or_else(|| panic!("{controller} is not one of {CONTROLLERS:?}"));
        d
    }

    /// Writes a control file; panics with the path on failure.
    fn set(&self, controller: &str, file: &str, value: &str) {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value)
            .unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
    }

    /// Reads a control file ("" when missing).
    fn get(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir(controller).join(file)).unwrap_or_default()
    }

    /// A memory limit of `mb` MiB; with swap accounting, memory+swap too, so
    /// an OOM kill cannot be avoided by swapping.
    fn limit_memory(&self, mb: u64) {
        let bytes = (mb << 20).to_string();
        self.set("memory", "memory.limit_in_bytes", &bytes);
        if self
            .dir("memory")
            .join("memory.memsw.limit_in_bytes")
            .exists()
        {
            self.set("memory", "memory.memsw.limit_in_bytes", &bytes);
        }
    }

    /// The cgroup's OOM kill counter (`memory.oom_control` field `oom_kill`).
    fn oom_kills(&self) -> u64 {
        self.get("memory", "memory.oom_control")
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Moves `cmd`'s process into every group before it execs, so ward and
    /// all it starts are inside from the first instruction.
    fn wrap(&self, cmd: &mut Command) {
        let procs: Vec<CString> = self
            .unique()
            .into_iter()
            .map(|d| CString::new(d.join("cgroup.procs").to_str().unwrap()).unwrap())
            .collect();
        // SAFETY: only open/write/close on paths prepared before fork; the
        // closure allocates nothing and touches no locks.
        unsafe {
            cmd.pre_exec(move || {
                for p in &procs {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                    let err = std::io::Error::last_os_error();
                    libc::close(fd);
                    if !ok {
                        return Err(err);
                    }
                }
                Ok(())
            });
        }
    }

    /// Kills what is left inside and removes the groups (bounded: ~2 s).
    fn remove(&self) {
        for d in self.unique() {
            for _ in 0..200 {
                if !d.exists() || std::fs::remove_dir(d).is_ok() {
                    break;
                }
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for pid in procs
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: plain kill(2) on a process inside this test's group.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for CgroupV1 {
    fn drop(&mut self) {
        self.remove();
        for d in self.unique() {
            if d.exists() {
                // Not a panic: this may run while a failed test unwinds.
                eprintln!("warning: could not remove test cgroup {}", d.display());
            }
        }
    }
}

/// `ward ARGS` as PID 1 of a new PID namespace inside `groups`, to completion.
fn ward_in(groups: &CgroupV1, args: &[&str]) -> Outcome {
    let mut cmd = ward_pid1(args);
    groups.wrap(&mut cmd);
    run(cmd, GUARD)
}

/// `sh -c SCRIPT` with `$W` standing for the workload binary.
fn script(s: &str) -> String {
    s.replace("$W", workload())
}

/// ward's lines for event `key` (human format), in order.
fn events<'a>(out: &'a Outcome, key: &str) -> Vec<&'a str> {
    let warning = format!("ward: warning [{key}] ");
    let info = format!("ward: [{key}] ");
    out.stderr
        .lines()
        .filter(|l| l.starts_with(&warning) || l.starts_with(&info))
        .collect()
}

/// The one line for `key`; fails (with all output) unless there is exactly one.
fn one<'a>(out: &'a Outcome, key: &str) -> &'a str {
    let lines = events(out, key);
    assert_eq!(lines.len(), 1, "expected one [{key}] line\n{}", dump(out));
    lines[0]
}

/// Index of the first line for `key` in stderr, for "this came after that".
fn position(out: &Outcome, key: &str) -> usize {
    let first = events(out, key)[0];
    out.stderr.lines().position(|l| l == first).unwrap()
}

/// Everything the run left, for failure messages.
fn dump(out: &Outcome) -> String {
    format!(
        "--- exit {} after {:?}\n--- stdout:\n{}--- stderr:\n{}",
        out.code, out.elapsed, out.stdout, out.stderr
    )
}

/// Fails with the output unless `line` contains `want`.
fn has(out: &Outcome, line: &str, want: &str) {
    assert!(
        line.contains(want),
        "expected {want:?} in:\n{line}\n{}",
        dump(out)
    );
}

/// The number right before `suffix` (e.g. "93.1" in "93.1% of"), with an
/// optional unit between the number and the suffix already part of `suffix`.
fn number_before(line: &str, suffix: &str) -> f64 {
    let end = line
        .find(suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} in {line}"));
    let head = &line[..end];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    head[start..]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {suffix:?} in {line}"))
}

/// The number right after `prefix`.
fn number_after(line: &str, prefix: &str) -> f64 {
    let start = line
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {line}"))
        + prefix.len();
    let tail = &line[start..];
    let end = tail
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(tail.len());
    tail[..end]
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in {line}"))
}

#[test]
fn root_v1_memory_high_names_the_hog_then_memory_ok_after_it_exits() {
    if !can_run("root_v1_memory_high_names_the_hog_then_memory_ok_after_it_exits") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("memhigh");
    cg.limit_memory(64);
    // 58 MiB plus ward and sh (~1.5 MiB) is ~93% of 64 MiB: over the 90%
    // threshold, far enough under the limit not to be OOM-killed. The shell
    // outlives the hog so that ward samples the recovery.
    let s = script("$W hog 58 --hold 3; sleep 2");
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", "sh", "-c", &s]);
    assert_eq!(out.code, 0, "{}", dump(&out));
    assert!(out.stdout.contains("ready"), "{}", dump(&out));

    let high = one(&out, "memory_high");
    has(&out, high, "ward: warning [memory_high] working set ");
    has(&out, high, "of the 64.0 MiB memory limit (own cgroup)");
    has(&out, high, "largest: ward-workload (pid ");
    let pct = number_before(high, "% of the 64.0 MiB");
    assert!((90.0..100.0).contains(&pct), "{pct}%: {high}");
    // The hog is named with its own size, at least the 58 MiB it touched.
    let hog = &high[high.find("largest: ward-workload (pid ").unwrap()..];
    let hog_mib = number_after(hog, ") ");
    assert!(hog_mib >= 58.0, "hog size {hog_mib} MiB: {high}");

    let ok = one(&out, "memory_ok");
    has(&out, ok, "ward: [memory_ok] working set back to ");
    has(&out, ok, "of 64.0 MiB)");
    assert!(number_after(ok, "back to ") < 80.0, "{ok}");
    assert!(
        position(&out, "memory_ok") > position(&out, "memory_high"),
        "{}",
        dump(&out)
    );
    assert!(events(&out, "oom_kill").is_empty(), "{}", dump(&out));
    assert_eq!(cg.oom_kills(), 0, "the hog must not have been OOM-killed");
}

#[test]
fn root_v1_oom_kill_of_the_main_child_is_named_and_exits_137() {
    if !can_run("root_v1_oom_kill_of_the_main_child_is_named_and_exits_137") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("oommain");
    cg.limit_memory(32);
    let w = workload();
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", w, "hog", "100"]);
    assert_eq!(out.code, 137, "{}", dump(&out));
    assert!(cg.oom_kills() >= 1, "the kernel should have OOM-killed");

    let oom = one(&out, "oom_kill");
    // ward is pid 1 of the namespace and its child pid 2. A SIGKILL reaped
    // near the counter's rise is "most likely" unless the census proves it
    // (issue 10: timing is not proof), so either wording names pid 2.
    has(&out, oom, "the kernel OOM killer ");
    has(&out, oom, "killed ward-workload (pid 2)");
    has(&out, oom, "of the 32.0 MiB limit (own cgroup)");
    has(&out, oom, "(1 OOM kill since ward started)");
    // A fresh group's high-water mark cannot pass its limit.
    let peak = number_before(oom, " MiB of the 32.0 MiB limit");
    assert!(peak > 16.0 && peak <= 32.0, "peak {peak} MiB: {oom}");
    has(&out, one(&out, "child_exited"), "killed by SIGKILL");
    let w = one(&out, "watching");
    has(&out, w, "memory 32.0 MiB (own cgroup)");
}

#[test]
fn root_v1_oom_kill_of_a_grandchild_is_logged_and_the_shell_code_passes() {
    if !can_run("root_v1_oom_kill_of_a_grandchild_is_logged_and_the_shell_code_passes") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("oomgrand");
    cg.limit_memory(32);
    let s = script("$W hog 100; exit 3");
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", "sh", "-c", &s]);
    assert_eq!(out.code, 3, "{}", dump(&out));
    assert!(cg.oom_kills() >= 1, "the kernel should have OOM-killed");

    let oom = one(&out, "oom_kill");
    has(&out, oom, "ward: warning [oom_kill] the kernel OOM killer ");
    has(&out, oom, "of the 32.0 MiB limit (own cgroup)");
    has(&out, oom, "(1 OOM kill since ward started)");
    // The hog was the shell's child, not ward's: ward may catch it as a
    // SIGKILLed zombie before the shell reaps it ("most likely"), or not at
    // all; it must never claim certainty about a process it did not reap.
    assert!(
        oom.contains("most likely killed ward-workload (pid ")
            || oom.contains("a process in the container that was not ward's child"),
        "{}",
        dump(&out)
    );
    assert!(
        !oom.contains("OOM killer killed ward-workload"),
        "{}",
        dump(&out)
    );
    has(&out, one(&out, "child_exited"), "exited with code 3");
}

#[test]
fn root_v1_cpu_throttled_under_a_tenth_of_a_core() {
    if !can_run("root_v1_cpu_throttled_under_a_tenth_of_a_core") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("throttle");
    cg.set("cpu", "cpu.cfs_period_us", "100000");
    cg.set("cpu", "cpu.cfs_quota_us", "10000");
    let w = workload();
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", w, "busy", "4"]);
    assert_eq!(out.code, 0, "{}", dump(&out));

    has(&out, one(&out, "watching"), "cpu 0.1 cores (own cgroup)");
    let th = one(&out, "cpu_throttled");
    has(&out, th, "ward: warning [cpu_throttled] CPU throttled in ");
    has(&out, th, "(limit 0.1 cores (own cgroup), using ");
    let pct = number_before(th, "% of scheduler periods");
    assert!((20.0..=100.0).contains(&pct), "{pct}%: {th}");
    // Usage averages out at the quota, never above it (plus rounding).
    let used = number_after(th, "using ");
    assert!(used <= 0.2, "using {used} cores under a 0.1 quota: {th}");
}

#[test]
fn root_v1_pids_high_and_fork_failed_at_pids_max() {
    if !can_run("root_v1_pids_high_and_fork_failed_at_pids_max") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("pids");
    cg.set("pids", "pids.max", "50");
    // The storm starts after ward's first tick: refusals before it are taken
    // as the baseline and never reported (see the ignored test below).
    let s = script("sleep 1.5; $W forks 80 --hold 2; sleep 1");
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", "sh", "-c", &s]);
    assert_eq!(out.code, 0, "{}", dump(&out));
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("forked="))
        .unwrap_or_else(|| panic!("no forked= line\n{}", dump(&out)));
    let failed = number_after(summary, "failed=") as u64;
    assert!(
        failed > 0,
        "pids.max 50 should refuse some of 80 forks: {summary}"
    );

    has(&out, one(&out, "watching"), "pids 50 (own cgroup)");
    let high = one(&out, "pids_high");
    has(&out, high, "of 50 tasks in use (");
    has(&out, high, "pids limit from own cgroup");
    assert!(number_after(high, "pids_high] ") >= 40.0, "{high}");

    let refused = events(&out, "fork_failed");
    assert!(!refused.is_empty(), "no [fork_failed]\n{}", dump(&out));
    let mut total = 0;
    for line in &refused {
        has(&out, line, "the pids limit of 50 is reached");
        total += number_after(line, "refused ") as u64;
    }
    // Every refusal the workload saw is accounted for, none invented.
    assert_eq!(total, failed, "{}", dump(&out));
    let pids_events = cg.get("pids", "pids.events");
    assert!(
        pids_events.contains(&format!("max {failed}")),
        "{pids_events}"
    );

    has(&out, one(&out, "pids_ok"), "of 50 tasks in use");
    assert!(position(&out, "pids_ok") > position(&out, "pids_high"));
}

/// Fork refusals within the first `--watch-interval` are reported: the
/// baseline is taken before the child starts (this once failed).
#[test]
fn root_v1_fork_failures_in_the_first_interval_are_reported() {
    if !can_run("root_v1_fork_failures_in_the_first_interval_are_reported") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("pidsfirst");
    cg.set("pids", "pids.max", "50");
    let w = workload();
    let out = ward_in(
        &cg,
        &[
            "--watch-interval",
            "500ms",
            "--",
            w,
            "forks",
            "80",
            "--hold",
            "2",
        ],
    );
    assert_eq!(out.code, 0, "{}", dump(&out));
    assert!(!events(&out, "fork_failed").is_empty(), "{}", dump(&out));
}

#[test]
fn root_v1_zombies_unreaped_names_the_parent_then_clears() {
    if !can_run("root_v1_zombies_unreaped_names_the_parent_then_clears") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("zombies");
    let s = script("$W zombies 15 --hold 3; sleep 2");
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", "sh", "-c", &s]);
    assert_eq!(out.code, 0, "{}", dump(&out));

    let z = one(&out, "zombies_unreaped");
    has(
        &out,
        z,
        "ward: warning [zombies_unreaped] 15 zombie processes whose parent ward-workload (pid ",
    );
    has(&out, z, "is alive and not calling wait()");
    has(&out, z, "15 unreaped zombies in all");
    has(&out, z, "ward-workload must wait() for its children");
    // The parent is the workload (the shell's child), never ward itself.
    let parent = number_after(z, "ward-workload (pid ") as i32;
    assert!(parent > 2, "parent pid {parent}: {z}");

    let cleared = one(&out, "zombies_cleared");
    has(&out, cleared, "unreaped zombies down to 0");
    assert!(position(&out, "zombies_cleared") > position(&out, "zombies_unreaped"));
}

#[test]
fn root_v1_watching_line_shows_own_limits_and_no_watch_is_silent() {
    if !can_run("root_v1_watching_line_shows_own_limits_and_no_watch_is_silent") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("watching");
    cg.limit_memory(64);
    cg.set("cpu", "cpu.cfs_period_us", "100000");
    cg.set("cpu", "cpu.cfs_quota_us", "50000");
    cg.set("pids", "pids.max", "50");
    let w = workload();
    let out = ward_in(&cg, &["--watch-interval", "500ms", "--", w, "exit", "0"]);
    assert_eq!(out.code, 0, "{}", dump(&out));
    let line = one(&out, "watching");
    assert!(line.starts_with("ward: [watching] limits: "), "{line}");
    has(&out, line, "memory 64.0 MiB (own cgroup)");
    has(&out, line, "cpu 0.5 cores (own cgroup)");
    has(&out, line, "pids 50 (own cgroup)");
    has(&out, line, "sampling every 500 ms");
    has(&out, line, "OOM kills noticed as they happen");

    // The same group, with trouble that would warn twice over: nothing.
    let s = script("$W hog 58 --hold 1.5; $W zombies 15 --hold 1.5");
    let out = ward_in(&cg, &["--no-watch", "--", "sh", "-c", &s]);
    assert_eq!(out.code, 0, "{}", dump(&out));
    for key in WATCH_KEYS {
        assert!(
            events(&out, key).is_empty(),
            "[{key}] with --no-watch\n{}",
            dump(&out)
        );
    }
}

#[test]
fn root_v1_json_watch_events_parse_and_carry_their_numbers() {
    if !can_run("root_v1_json_watch_events_parse_and_carry_their_numbers") {
        return;
    }
    let _serial = serial();
    let cg = CgroupV1::new("json");
    cg.limit_memory(64);
    cg.set("pids", "pids.max", "50");
    let s = script("$W hog 58 --hold 2; $W zombies 15 --hold 2; sleep 1.5");
    let out = ward_in(
        &cg,
        &[
            "--log-format",
            "json",
            "--watch-interval",
            "500ms",
            "--",
            "sh",
            "-c",
            &s,
        ],
    );
    assert_eq!(out.code, 0, "{}", dump(&out));
    let mut seen = Vec::new();
    for line in out.stderr.lines() {
        // The workload writes nothing to stderr here: every line is ward's.
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{}", dump(&out)));
        let event = v["event"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"event\": {line}"))
            .to_string();
        assert!(v["msg"].is_string(), "no \"msg\": {line}");
        match event.as_str() {
            "watching" => {
                assert_eq!(v["interval_s"], 0.5, "{line}");
                assert!(v["limits"].is_object(), "{line}");
            }
            "memory_high" => {
                assert_eq!(v["level"], "warning", "{line}");
                assert_eq!(v["limit_bytes"], 64u64 << 20, "{line}");
                let ratio = v["ratio"].as_f64().unwrap();
                assert!((0.9..1.0).contains(&ratio), "{line}");
                assert!(
                    v["working_set_bytes"].as_u64().unwrap() >= 58 << 20,
                    "{line}"
                );
            }
            "memory_ok" => assert!(v["ratio"].as_f64().unwrap() < 0.8, "{line}"),
            "zombies_unreaped" => {
                assert_eq!(v["level"], "warning", "{line}");
                assert_eq!(v["zombies"], 15, "{line}");
                assert_eq!(v["parent"], "ward-workload", "{line}");
                assert!(v["parent_pid"].as_i64().unwrap() > 2, "{line}");
            }
            "zombies_cleared" => assert_eq!(v["unreaped_total"], 0, "{line}"),
            _ => {}
        }
        seen.push(event);
    }
    for want in [
        "watching",
        "memory_high",
        "memory_ok",
        "zombies_unreaped",
        "zombies_cleared",
    ] {
        assert!(
            seen.iter().filter(|e| *e == want).count() == 1,
            "expected one {want} event\n{}",
            dump(&out)
        );
    }
}
