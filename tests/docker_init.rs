//! Docker end-to-end tests of the core init: ward as a `FROM scratch` image's
//! ENTRYPOINT reaps orphans, forwards `docker stop`/`docker kill`, survives a
//! `--pids-limit` storm and passes the exit code on.
//!
//! Needs a Docker engine: skipped with `SKIPPED: docker not available` on a
//! developer machine without one, a failure under CI=true. Every failure message
//! carries the container's `docker logs`.

mod common;

use std::time::Duration;

use common::docker::{self, Container, EXITS_7_ON_TERM, ProcCensus};

/// Orphans in the zombie storm; the Zabbix incident saw 4035 zombies.
const STORM: usize = 5000;

/// Polls the container's `/proc` until `done` holds, or returns the last census
/// after `timeout`: reaping and dying take a moment after the storm reports.
fn census_until(
    ctr: &Container,
    timeout: Duration,
    done: impl Fn(&ProcCensus) -> bool,
) -> ProcCensus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let census = ctr.census();
        if done(&census) || std::time::Instant::now() > deadline {
            return census;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn docker_zombie_storm_leaves_no_zombies_under_ward() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let script = format!("ward-workload orphans {STORM}; sleep 60");
    let ctr = docker.run(&[], &["/bin/sh", "-c", &script]);
    let logs = ctr.wait_for_log("orphans=", Duration::from_secs(180));
    ctr.check(
        logs.contains(&format!("orphans={STORM} fork_failures=0")),
        &format!("the storm did not create {STORM} orphans"),
    );
    let census = census_until(&ctr, Duration::from_secs(15), |c| c.zombies == 0);
    eprintln!("under ward after the storm: {census}");
    ctr.check(
        census.zombies == 0,
        &format!("zombies left under ward after a storm of {STORM} orphans: {census}"),
    );
}

/// The control: the same storm under a PID 1 that never reaps piles up zombies,
/// so the test above can fail.
#[test]
fn docker_zombie_storm_piles_up_without_ward() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    // sh backgrounds the storm, then becomes `ward-workload sleep`: a PID 1
    // that adopts every orphan and never waits for one.
    let script = format!("ward-workload orphans {STORM} & exec ward-workload sleep 60");
    let ctr = docker.run(&["--entrypoint", "/bin/busybox"], &["sh", "-c", &script]);
    ctr.wait_for_log("orphans=", Duration::from_secs(180));
    let census = census_until(&ctr, Duration::from_secs(15), |c| c.zombies >= STORM);
    eprintln!("without ward after the storm: {census}");
    ctr.check(
        census.zombies >= STORM * 9 / 10,
        &format!("expected thousands of zombies under a non-reaping PID 1: {census}"),
    );
    ctr.check(
        census.zombies_by_parent.get(&1).copied().unwrap_or(0) >= STORM * 9 / 10,
        &format!("the zombies should be PID 1's: {census}"),
    );
}

#[test]
fn docker_stop_delivers_sigterm_and_passes_the_app_code() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run_ready(&[], EXITS_7_ON_TERM);
    let (took, exit) = ctr.stop_and_exit(10);
    eprintln!("docker stop took {took:?} of its 10 s timeout");
    ctr.check(
        exit.code == 7,
        &format!("expected the app's exit code 7 after docker stop, got {exit:?}"),
    );
    ctr.check(
        ctr.logs().contains("signal 15"),
        "the app did not log `signal 15`",
    );
    ctr.check_stop_was_prompt(took);
}

#[test]
fn docker_kill_usr1_reaches_the_app() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run_ready(&[], &["ward-workload", "signals"]);
    ctr.kill("USR1");
    ctr.wait_for_log("signal 10", Duration::from_secs(10));
    ctr.check(
        ctr.inspect("{{.State.Running}}") == "true",
        "SIGUSR1 should reach the app, not stop the container",
    );
}

/// Orphans in the `--pids-limit 64` storm: far more than the limit, so only a
/// PID 1 that keeps reaping lets it finish.
const LIMITED_STORM: &str = "3000";

#[test]
fn docker_pids_limit_storm_completes_without_fork_failures() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(
        &["--pids-limit", "64"],
        &["ward-workload", "orphans", LIMITED_STORM, "--workers", "4"],
    );
    let exit = ctr.wait(Duration::from_secs(180));
    let logs = ctr.logs();
    ctr.check(
        logs.contains(&format!("orphans={LIMITED_STORM} fork_failures=0")),
        "the storm hit fork failures under --pids-limit 64",
    );
    ctr.check(exit.code == 0, &format!("expected exit 0, got {exit:?}"));
}

/// The control: under a PID 1 that never reaps, the same storm runs out of PIDs.
#[test]
fn docker_pids_limit_storm_fails_without_ward() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let script =
        format!("ward-workload orphans {LIMITED_STORM} --workers 4 & exec ward-workload sleep 60");
    let ctr = docker.run(
        &["--pids-limit", "64", "--entrypoint", "/bin/busybox"],
        &["sh", "-c", &script],
    );
    let logs = ctr.wait_for_log("orphans=", Duration::from_secs(180));
    ctr.check(
        !logs.contains("fork_failures=0"),
        "a non-reaping PID 1 under --pids-limit 64 should make forks fail",
    );
}

#[test]
fn docker_exit_code_passes_through() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(&[], &["ward-workload", "exit", "3"]);
    let exit = ctr.wait(Duration::from_secs(30));
    ctr.check(exit.code == 3, &format!("expected exit 3, got {exit:?}"));
}

#[test]
fn docker_death_by_sigkill_becomes_137() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(&[], &["ward-workload", "die", "KILL"]);
    let exit = ctr.wait(Duration::from_secs(30));
    ctr.check(exit.code == 137, &format!("expected 128+9, got {exit:?}"));
    // 137 with OOMKilled=false: the app was killed, not the memory limit.
    ctr.check(!exit.oom_killed, "no memory limit was set, yet OOMKilled");
}

#[test]
fn docker_missing_command_gives_127_and_one_ward_line() {
    let Some(docker) = docker::docker() else {
        return;
    };
    let ctr = docker.run(&[], &["/no/such/command"]);
    let exit = ctr.wait(Duration::from_secs(30));
    ctr.check(exit.code == 127, &format!("expected 127, got {exit:?}"));
    let logs = ctr.logs();
    let ward_lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("ward:")).collect();
    ctr.check(
        ward_lines.len() == 1,
        &format!("expected one `ward:` line, got {}", ward_lines.len()),
    );
    ctr.check(
        ward_lines[0].contains("/no/such/command"),
        "the `ward:` line should name the missing command",
    );
}

#[test]
fn census_parses_proc_stat_lines() {
    let text = "\
1 (ward) S 0 1 1 0 -1 4194560 0 0
7 (sh) S 1 7 1 0 -1 4194560 0 0
812 (ward-workload) Z 1 811 1 0 -1 4227084 0 0
813 (odd) name) Z 7 811 1 0 -1 4227084 0 0
";
    let census = ProcCensus::parse(text);
    assert_eq!(census.processes, 4);
    assert_eq!(census.zombies, 2);
    assert_eq!(census.zombies_by_parent.get(&1), Some(&1));
    assert_eq!(census.zombies_by_parent.get(&7), Some(&1));
}
