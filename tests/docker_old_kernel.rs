//! ward on the seeds' platforms: kernel 4.14 had no `pidfd_open`,
//! `pidfd_send_signal`, `clone3`, `close_range`, `openat2` or `faccessat2`,
//! and no `MADV_POPULATE_WRITE`. A seccomp profile of the test's own answers
//! ENOSYS for the calls and EINVAL for the advice, as an old kernel would,
//! and the container runs as non-root with a read-only root, no capabilities
//! and that kernel's 64 KiB memlock limit: a storm is reaped, `docker stop`
//! is forwarded and reported, ward writes no error line, and its heap, made
//! resident by locking and unlocking it, is left unlocked.
//!
//! Needs a Docker engine (skipped outside CI without one, a failure in CI).

mod common;

use std::time::Duration;

use common::docker::{self, Container};

/// Syscalls newer than Linux 4.14 that ward, glibc or Rust's std may use.
const NEWER_THAN_4_14: &[&str] = &[
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "clone3",
    "close_range",
    "openat2",
    "faccessat2",
];

/// `madvise(.., .., MADV_POPULATE_WRITE)` (Linux 5.14) answered with EINVAL
/// (22), as an older kernel answers advice it does not know.
const POPULATE_REFUSED: &str = "{\"names\":[\"madvise\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":22,\"args\":[{\"index\":2,\"value\":23,\"op\":\"SCMP_CMP_EQ\"}]}";

/// A seccomp profile that allows everything but `enosys`, which answer ENOSYS
/// (38), the way a kernel without them does, and the `extra` rules.
fn profile(enosys: &[&str], extra: &[&str]) -> tempfile_path::TempProfile {
    let names: Vec<String> = enosys.iter().map(|n| format!("\"{n}\"")).collect();
    let mut rules = vec![format!(
        "{{\"names\":[{}],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38}}",
        names.join(",")
    )];
    rules.extend(extra.iter().map(|r| r.to_string()));
    let json = format!(
        "{{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{}]}}",
        rules.join(",")
    );
    tempfile_path::TempProfile::new(&json)
}

mod tempfile_path {
    /// A seccomp profile file, removed on drop.
    pub struct TempProfile {
        pub path: std::path::PathBuf,
    }

    impl TempProfile {
        pub fn new(json: &str) -> TempProfile {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("ward-test-seccomp-{}-{n}.json", std::process::id()));
            std::fs::write(&path, json).expect("write seccomp profile");
            TempProfile { path }
        }
    }

    impl Drop for TempProfile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// ward's lines at warning level or above, other than the ones a stop is
/// expected to produce.
fn unexpected_trouble(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.starts_with("ward: warning") || l.starts_with("ward: error"))
        .collect()
}

/// Waits until the workload says it installed its handlers.
fn ready(ctr: &Container) -> String {
    ctr.wait_for_log("ready", Duration::from_secs(60))
}

/// Only `pidfd_send_signal` is missing (a pidfd_open that works, a send that
/// a filter refuses): forwarding must fall back to kill(2) while the child is
/// unreaped, and say so once. Before, the forward failed silently (logged at
/// debug) and `docker stop` ended in SIGKILL after its timeout.
#[test]
fn docker_stop_is_forwarded_when_pidfd_send_signal_fails() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let seccomp = profile(&["pidfd_send_signal"], &[]);
    let opt = format!("seccomp={}", seccomp.path.display());
    let ctr = docker.run(
        &["--security-opt", &opt],
        &["ward-workload", "signals", "--exit-on", "TERM"],
    );
    ready(&ctr);
    ctr.stop(5);
    let exit = ctr.exit();
    let logs = ctr.logs();
    // The workload exits 0 on SIGTERM; Docker's SIGKILL after the timeout
    // would make it 137.
    ctr.check(
        exit.code == 0,
        &format!("SIGTERM should have reached the child (exit 0), got {exit:?}"),
    );
    ctr.check(
        logs.contains("[exit_report]") && logs.contains("stopped"),
        "the report should say the child was stopped",
    );
    let fallbacks = logs.matches("[signal_fallback]").count();
    ctr.check(
        fallbacks == 1,
        &format!("expected one signal_fallback warning, got {fallbacks}"),
    );
}

/// The seeds' kernel, emulated: every syscall newer than 4.14 answers ENOSYS,
/// `MADV_POPULATE_WRITE` EINVAL, ward runs as uid 1000 with no capabilities
/// and a 64 KiB memlock limit on a read-only root. A storm is reaped,
/// `docker stop` is forwarded and reported, no warning or error, and none of
/// ward's memory stays locked (its heap was locked and unlocked in pieces).
#[test]
fn docker_on_a_4_14_like_kernel_as_non_root_reaps_and_stops() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let seccomp = profile(NEWER_THAN_4_14, &[POPULATE_REFUSED]);
    let opt = format!("seccomp={}", seccomp.path.display());
    let ctr = docker.run(
        &[
            "--security-opt",
            &opt,
            "--user",
            "1000:1000",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--pids-limit",
            "2000",
            "--ulimit",
            "memlock=65536",
            // A sample, and the heap made resident, every half second.
            "-e",
            "WARD_WATCH_INTERVAL=500ms",
        ],
        &[
            "/bin/sh",
            "-c",
            "ward-workload orphans 1000; exec ward-workload signals --exit-on TERM",
        ],
    );
    let logs = ctr.wait_for_log("ready", Duration::from_secs(120));
    ctr.check(
        logs.contains("orphans=1000 fork_failures=0"),
        "the storm should have made 1000 orphans",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let census = loop {
        let c = ctr.census();
        if c.zombies == 0 || std::time::Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    ctr.check(census.zombies == 0, &format!("zombies left: {census}"));
    let pid = ctr.inspect("{{.State.Pid}}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .unwrap_or_else(|e| ctr.fail(&format!("ward's status (pid {pid}): {e}")));
    let locked = status.lines().find(|l| l.starts_with("VmLck:"));
    ctr.check(
        locked.is_some_and(|l| l.split_whitespace().nth(1) == Some("0")),
        &format!("ward's memory should be left unlocked, got {locked:?}"),
    );
    ctr.stop(5);
    let exit = ctr.exit();
    let logs = ctr.logs();
    ctr.check(
        exit.code == 0,
        &format!("expected exit 0 after SIGTERM, got {exit:?}"),
    );
    ctr.check(
        logs.contains("[stop_requested]") && logs.contains("[exit_report]"),
        "expected the stop request and the report",
    );
    let trouble = unexpected_trouble(&logs);
    ctr.check(
        trouble.is_empty(),
        &format!("no warning or error expected, got: {trouble:#?}"),
    );
}
