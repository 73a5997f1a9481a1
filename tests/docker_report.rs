//! Docker end-to-end tests of the exit report: for each way a container ends
//! (OOM kill, a worker's OOM kill under a shell, `docker stop`, a stop timeout
//! with and without `--kill-after`, plain exits, a fork storm at the pids
//! limit, CPU throttling, a missing command) ward's verdict in `docker logs`
//! and in `--report-file` is checked, and so is Docker's own verdict
//! (`State.ExitCode`, `State.OOMKilled`): the two must never disagree.
//!
//! Needs a Docker engine: skipped with `SKIPPED: docker not available` on a
//! developer machine without one, a failure under CI=true. Every failure message
//! carries the container's `docker logs` and state.

mod common;

use std::time::Duration;

use common::TempDir;
use common::docker::{self, Container, Docker, EXITS_7_ON_TERM, Exit, MEMORY_32M};
use common::events::{JSON_LOGS, exit_report, json_named};
use serde_json::Value;

/// How long a short scenario may take; generous for a small shared machine.
const SHORT: Duration = Duration::from_secs(60);

/// The 32 MiB limit of the OOM scenarios, as the kernel and ward count it.
const LIMIT_32M: u64 = 32 << 20;

/// `docker run` options followed by `JSON_LOGS`.
fn with_json<'a>(options: &[&'a str]) -> Vec<&'a str> {
    let mut all = options.to_vec();
    all.extend_from_slice(JSON_LOGS);
    all
}

/// Docker and ward tell the same story: the same exit code, and Docker's
/// `OOMKilled` (set when any process in the cgroup was OOM-killed) exactly
/// when ward counted an OOM kill.
fn check_agreement(ctr: &Container, report: &Value, exit: Exit) {
    ctr.check(
        report["exit_code"].as_i64() == Some(exit.code),
        &format!(
            "ward's report says exit {} but Docker's State.ExitCode is {}",
            report["exit_code"], exit.code
        ),
    );
    let ward_oom = report["oom_kills"]["count"].as_u64().unwrap_or(0) > 0;
    ctr.check(
        ward_oom == exit.oom_killed,
        &format!(
            "Docker's State.OOMKilled is {} but ward counted {} OOM kills",
            exit.oom_killed, report["oom_kills"]["count"]
        ),
    );
}

/// ward's exit report of an ended container, checked to agree with Docker's.
fn agreed_report(ctr: &Container, exit: Exit) -> Value {
    let report = exit_report(ctr);
    check_agreement(ctr, &report, exit);
    report
}

/// Runs a container with JSON logs to its end (within [`SHORT`]): its exit
/// and ward's report, checked to agree with Docker's.
fn ended<'d>(docker: &'d Docker, options: &[&str], cmd: &[&str]) -> (Container<'d>, Exit, Value) {
    let ctr = docker.run(&with_json(options), cmd);
    let exit = ctr.wait(SHORT);
    let report = agreed_report(&ctr, exit);
    (ctr, exit, report)
}

/// With JSON logs and `--kill-after 2s`, an app that ignores SIGTERM, up.
fn ignoring_term_with_kill_after(docker: &Docker) -> Container<'_> {
    docker.run_ready(
        &with_json(&["-e", "WARD_KILL_AFTER=2s"]),
        &["ward-workload", "ignore-term"],
    )
}

/// The container of a failing exec with `--report-file /out/report.json` in
/// the temp dir `name`, ended.
fn exec_failure<'d>(docker: &'d Docker, name: &str, cmd: &str) -> (TempDir, Container<'d>, Exit) {
    let dir = TempDir::new(name);
    let volume = volume(&dir);
    let options = ["-v", &volume, "-e", "WARD_REPORT_FILE=/out/report.json"];
    let ctr = docker.run(&options, &[cmd]);
    let exit = ctr.wait(SHORT);
    (dir, ctr, exit)
}

/// A field as f64, failing with the report when it is missing or not a number.
fn num(ctr: &Container, report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| ctr.fail(&format!("report field {pointer} is not a number: {report}")))
}

/// The report's sentence: `summary` in the file, `msg` on the JSON log line
/// (which leaves `summary` out rather than say it twice).
fn summary(report: &Value) -> Option<&str> {
    report["summary"].as_str().or(report["msg"].as_str())
}

/// `HOST:/out` for `docker run -v`.
fn volume(dir: &TempDir) -> String {
    format!("{}:/out", dir.path().display())
}

/// The report file a container wrote to `/out/report.json`: at most 4 KiB and
/// valid JSON.
fn report_file(ctr: &Container, dir: &TempDir) -> Value {
    let path = dir.path().join("report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| ctr.fail(&format!("no report file at {path:?}: {e}")));
    ctr.check(
        text.len() <= 4096,
        &format!("report file is {} bytes, over 4 KiB", text.len()),
    );
    serde_json::from_str(&text)
        .unwrap_or_else(|e| ctr.fail(&format!("report file is not JSON ({e}): {text}")))
}

// ---------------------------------------------------------------------------
// Memory

#[test]
fn docker_oom_killed_main_process() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let (ctr, exit, r) = ended(&docker, MEMORY_32M, &docker::HOG_100_DELAYED);
    ctr.check(
        exit.code == 137 && exit.oom_killed,
        &format!("Docker should see 137 and OOMKilled: {exit:?}"),
    );
    ctr.check(r["cause"] == "oom_killed", "cause should be oom_killed");
    ctr.check(
        r["oom_evidence"] == "certain" || r["oom_evidence"] == "likely",
        "oom_evidence should be certain or likely",
    );
    ctr.check(
        r["main"]["signal"] == "SIGKILL" && r["main"]["command"] == "ward-workload",
        "main should be ward-workload, killed by SIGKILL",
    );
    ctr.check(
        r["memory"]["limit_bytes"].as_u64() == Some(LIMIT_32M),
        "memory.limit_bytes should be 32 MiB",
    );
    ctr.check(
        r["memory"]["limit_source"] == "own cgroup",
        "the limit comes from the container's own cgroup",
    );
    let ratio = num(&ctr, &r, "/memory/peak_ratio");
    ctr.check(
        ratio >= 0.9,
        &format!("peak_ratio {ratio} should be near 1"),
    );
    ctr.check(
        r["oom_kills"]["count"].as_u64() >= Some(1),
        "oom_kills.count should be at least 1",
    );
    if r["oom_evidence"] == "certain" {
        let victim = &r["oom_kills"]["victims"][0];
        ctr.check(
            victim["pid"] == r["main"]["pid"] && victim["name"] == "ward-workload",
            "a certain verdict should name the main process as the victim",
        );
    }
    ctr.check(
        !json_named(&ctr.logs(), "oom_kill").is_empty(),
        "an oom_kill warning should be streamed before the report",
    );
}

/// The other half of "Exited (137)": a SIGKILL that is not the OOM killer's.
/// With a memory limit the OOM counter is readable, so ward can rule it out,
/// and Docker agrees (OOMKilled false).
#[test]
fn docker_sigkill_that_is_not_oom_is_killed() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let (ctr, exit, r) = ended(&docker, MEMORY_32M, &["ward-workload", "die", "KILL"]);
    ctr.check(
        exit.code == 137 && !exit.oom_killed,
        &format!("Docker should see 137 without OOMKilled: {exit:?}"),
    );
    ctr.check(r["cause"] == "killed", "cause should be killed");
    ctr.check(
        r["oom_evidence"] == "ruled_out",
        "the OOM counter did not rise: ruled out",
    );
    ctr.check(
        r["main"]["signal"] == "SIGKILL",
        "main should die of SIGKILL",
    );
}

/// The same death read by a person: the human exit_report line. The peak
/// is the limit the hog hit: once, under load, ward's first look came after
/// the kill and took the hog's peak for an earlier run's ("peaked at
/// 1016.0 KiB"); the baseline is now read before the child starts.
#[test]
fn docker_oom_killed_main_process_human_line() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(MEMORY_32M, &docker::HOG_100_DELAYED);
    let exit = ctr.wait(SHORT);
    ctr.check(
        exit.code == 137 && exit.oom_killed,
        &format!("Docker should see 137 and OOMKilled: {exit:?}"),
    );
    let logs = ctr.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("ward: [exit_report] "))
        .collect();
    ctr.check(lines.len() == 1, "expected one human exit_report line");
    let line = lines[0];
    ctr.check(
        line.starts_with("ward: [exit_report] exit 137: main process ward-workload (pid ")
            && line.contains("killed by")
            && line.contains("OOM killer")
            && line.contains("memory peaked at 32.0 MiB of the 32.0 MiB limit (100.0%)"),
        &format!("unexpected human report: {line}"),
    );
}

/// Docker's OOMKilled is true even though the main process (a shell) survived
/// and exited 3 on its own: ward must say both things.
#[test]
fn docker_worker_oom_under_a_shell_that_exits_3() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let cmd = [
        "/bin/sh",
        "-c",
        "ward-workload hog 100 --delay-ms 500; exit 3",
    ];
    let (ctr, exit, r) = ended(&docker, MEMORY_32M, &cmd);
    ctr.check(
        exit.code == 3 && exit.oom_killed,
        &format!("Docker should see exit 3 and OOMKilled: {exit:?}"),
    );
    ctr.check(r["cause"] == "exited", "cause should be exited");
    ctr.check(
        r["main"]["code"] == 3 && r["main"]["command"] == "sh",
        "main should be sh with code 3",
    );
    ctr.check(
        r["oom_kills"]["count"].as_u64() >= Some(1),
        "oom_kills.count should be at least 1",
    );
    ctr.check(
        summary(&r).is_some_and(|s| s.contains("Docker reports such a container as OOMKilled")),
        "the summary should explain Docker's OOMKilled",
    );
}

// ---------------------------------------------------------------------------
// Stopping

#[test]
fn docker_stop_with_an_app_that_exits_on_sigterm() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run_ready(JSON_LOGS, EXITS_7_ON_TERM);
    let (took, exit) = ctr.stop_and_exit(10);
    let r = agreed_report(&ctr, exit);
    ctr.check(
        exit.code == 7 && !exit.oom_killed,
        &format!("expected 7: {exit:?}"),
    );
    ctr.check(r["cause"] == "stopped", "cause should be stopped");
    ctr.check(r["main"]["code"] == 7, "main.code should be 7");
    let stop = &r["stop"];
    ctr.check(
        stop["signal"] == "SIGTERM" && stop["from_pid"] == 0,
        "stop should be SIGTERM from pid 0",
    );
    ctr.check(
        stop["from"].as_str().is_some_and(|f| f.contains("outside")),
        "stop.from should say the signal came from outside",
    );
    ctr.check(
        stop["killed_by_ward"] == false,
        "ward did not kill anything here",
    );
    let exited_after = num(&ctr, &r, "/stop/exited_after_s");
    ctr.check(
        exited_after < 5.0,
        &format!("the app exits on SIGTERM, yet exited_after_s is {exited_after}"),
    );
    ctr.check_stop_was_prompt(took);
}

/// An app that keeps SIGTERM's default action dies of it: still `stopped`,
/// and 128+15 for Docker.
#[test]
fn docker_stop_with_an_app_that_dies_of_sigterm() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(JSON_LOGS, &["ward-workload", "sleep", "60"]);
    ctr.wait_for_log("\"event\":\"watching\"", Duration::from_secs(30));
    let (took, exit) = ctr.stop_and_exit(10);
    let r = agreed_report(&ctr, exit);
    ctr.check(
        exit.code == 143 && !exit.oom_killed,
        &format!("expected 143: {exit:?}"),
    );
    ctr.check(r["cause"] == "stopped", "cause should be stopped");
    ctr.check(
        r["main"]["signal"] == "SIGTERM",
        "main should die of SIGTERM",
    );
    ctr.check(
        r["stop"]["from_pid"] == 0 && r["stop"]["killed_by_ward"] == false,
        "stop should be from outside, without ward's SIGKILL",
    );
    ctr.check_stop_was_prompt(took);
}

/// Without `--kill-after` an app that ignores SIGTERM outlives Docker's grace
/// and Docker SIGKILLs ward itself: no report is possible, but what ward
/// streamed before that must be in the log.
#[test]
fn docker_stop_timeout_without_kill_after_leaves_the_streamed_facts() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run_ready(JSON_LOGS, &["ward-workload", "ignore-term"]);
    let (took, exit) = ctr.stop_and_exit(5);
    ctr.check(
        exit.code == 137 && !exit.oom_killed,
        &format!("Docker should SIGKILL ward after 5 s: {exit:?}"),
    );
    ctr.check(
        took >= Duration::from_millis(4500),
        &format!("docker stop took only {took:?}; the app should have ignored SIGTERM"),
    );
    let logs = ctr.logs();
    let stops = json_named(&logs, "stop_requested");
    ctr.check(
        stops.len() == 1 && stops[0]["from_pid"] == 0 && stops[0]["signal"] == "SIGTERM",
        "expected one stop_requested for SIGTERM from outside",
    );
    ctr.check(
        !json_named(&logs, "signal_forwarded").is_empty(),
        "the SIGTERM should have been forwarded",
    );
    // Docker's SIGKILL lands at 5 s, so the 5 s warning races it; 1 s cannot.
    let still = json_named(&logs, "still_running");
    ctr.check(
        still.iter().any(|e| e["after_s"] == 1),
        "expected the still_running warning at 1 s",
    );
    ctr.check(
        json_named(&logs, "exit_report").is_empty(),
        "ward was SIGKILLed by Docker: it cannot have written an exit report",
    );
}

#[test]
fn docker_stop_timeout_with_kill_after_is_reported() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = ignoring_term_with_kill_after(&docker);
    let (took, exit) = ctr.stop_and_exit(20);
    let r = agreed_report(&ctr, exit);
    ctr.check(
        took < Duration::from_secs(15),
        &format!("docker stop took {took:?}: --kill-after 2s should end it well before 20 s"),
    );
    ctr.check(
        exit.code == 137 && !exit.oom_killed,
        &format!("expected 137 without OOM: {exit:?}"),
    );
    ctr.check(r["cause"] == "stop_timeout", "cause should be stop_timeout");
    ctr.check(
        r["oom_evidence"].is_null(),
        "ward's own SIGKILL needs no OOM evidence",
    );
    ctr.check(
        r["main"]["signal"] == "SIGKILL",
        "main should die of SIGKILL",
    );
    ctr.check(
        r["stop"]["killed_by_ward"] == true && r["stop"]["from_pid"] == 0,
        "stop should be from outside and end in ward's SIGKILL",
    );
    let after = num(&ctr, &r, "/stop/exited_after_s");
    ctr.check(
        (1.9..10.0).contains(&after),
        &format!("exited_after_s {after} should be about the 2 s of --kill-after"),
    );
    let logs = ctr.logs();
    ctr.check(
        !json_named(&logs, "kill_after").is_empty(),
        "expected the kill_after warning",
    );
    ctr.check(
        json_named(&logs, "still_running")
            .iter()
            .any(|e| e["after_s"] == 1),
        "expected the still_running warning at 1 s",
    );
}

// ---------------------------------------------------------------------------
// Plain exits

#[test]
fn docker_plain_exits_are_exited() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    for code in [0, 1] {
        let code_s = code.to_string();
        let (ctr, exit, r) = ended(&docker, &[], &["ward-workload", "exit", &code_s]);
        ctr.check(
            exit.code == code && !exit.oom_killed,
            &format!("expected exit {code}: {exit:?}"),
        );
        ctr.check(r["cause"] == "exited", "cause should be exited");
        ctr.check(
            r["main"]["code"] == code && r["main"]["signal"].is_null(),
            "main.code should be the app's",
        );
        ctr.check(r["stop"].is_null(), "nobody asked this container to stop");
        ctr.check(
            r["oom_evidence"].is_null(),
            "no SIGKILL, so no OOM evidence",
        );
    }
}

#[test]
fn docker_report_file_matches_the_stderr_report() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let dir = TempDir::new("report-normal");
    let volume = volume(&dir);
    let ctr = docker.run(
        &with_json(&["-v", &volume, "-e", "WARD_REPORT_FILE=/out/report.json"]),
        &["ward-workload", "exit", "1"],
    );
    let exit = ctr.wait(SHORT);
    let line = exit_report(&ctr);
    let file = report_file(&ctr, &dir);
    check_agreement(&ctr, &file, exit);
    for key in [
        "cause",
        "exit_code",
        "main",
        "oom_kills",
        "stop",
        "started_at",
    ] {
        ctr.check(
            file[key] == line[key],
            &format!(
                "report file and stderr disagree on {key}: {} vs {}",
                file[key], line[key]
            ),
        );
    }
    ctr.check(
        file["cause"] == "exited" && file["exit_code"] == 1,
        "the file should say exited, 1",
    );
    ctr.check(
        file["summary"] == line["msg"],
        "the file's summary should be the line's message",
    );
}

// ---------------------------------------------------------------------------
// PIDs and CPU

#[test]
fn docker_fork_storm_at_the_pids_limit_counts_refused_forks() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let (ctr, exit, r) = ended(
        &docker,
        &["--pids-limit", "40", "-e", "WARD_WATCH_INTERVAL=500ms"],
        &["ward-workload", "forks", "80", "--hold", "2"],
    );
    ctr.check(exit.code == 0, &format!("expected exit 0: {exit:?}"));
    ctr.check(r["cause"] == "exited", "cause should be exited");
    // What the workload itself saw refused.
    let logs = ctr.logs();
    let failed: u64 = logs
        .lines()
        .find_map(|l| l.strip_prefix("forked="))
        .and_then(|l| l.split_once(" failed="))
        .and_then(|(_, f)| f.trim().parse().ok())
        .unwrap_or_else(|| ctr.fail("the workload did not print forked=N failed=M"));
    ctr.check(failed > 0, "the storm should have hit the limit");
    let counted = num(&ctr, &r, "/pids/fork_failures") as u64;
    // Not `==`: ward reads its baseline of pids.events at its first sample,
    // after the child started, so refusals before that are not counted.
    ctr.check(
        counted > 0 && counted <= failed,
        &format!("pids.fork_failures {counted} should be in 1..={failed}"),
    );
    ctr.check(r["pids"]["max"] == 40, "pids.max should be 40");
    let peak = num(&ctr, &r, "/pids/peak");
    ctr.check(
        (30.0..=40.0).contains(&peak),
        &format!("pids.peak {peak} should be near the limit of 40"),
    );
    ctr.check(
        summary(&r).is_some_and(|s| s.contains("refused at the pids limit of 40")),
        "the summary should name the refused forks",
    );
}

#[test]
fn docker_busy_loop_under_cpus_is_throttled() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let (ctr, exit, r) = ended(
        &docker,
        &["--cpus", "0.1", "-e", "WARD_WATCH_INTERVAL=500ms"],
        &["ward-workload", "busy", "4"],
    );
    ctr.check(exit.code == 0, &format!("expected exit 0: {exit:?}"));
    ctr.check(r["cause"] == "exited", "cause should be exited");
    // Docker's own record of the limit: NanoCpus 1e8 = 0.1 cores.
    let nano = ctr.inspect("{{.HostConfig.NanoCpus}}");
    ctr.check(nano == "100000000", &format!("NanoCpus is {nano}"));
    let limit = num(&ctr, &r, "/cpu/limit_cores");
    ctr.check(
        (limit - 0.1).abs() < 1e-6,
        &format!("cpu.limit_cores {limit} should be Docker's 0.1"),
    );
    let ratio = num(&ctr, &r, "/cpu/throttled_ratio");
    ctr.check(
        ratio > 0.7,
        &format!("a busy loop at 0.1 cores should be throttled in most periods: {ratio}"),
    );
    let throttled = num(&ctr, &r, "/cpu/throttled_s");
    ctr.check(
        throttled > 1.0,
        &format!("about 3.6 s of 4 should be throttled, got {throttled} s"),
    );
}

// ---------------------------------------------------------------------------
// Exec failure

#[test]
fn docker_missing_command_reports_exec_failed() {
    let Some(docker) = docker::docker() else {
        return;
    };
    let (dir, ctr, exit) = exec_failure(&docker, "report-exec", "/no/such/command");
    ctr.check(
        exit.code == 127 && !exit.oom_killed,
        &format!("expected 127: {exit:?}"),
    );
    let logs = ctr.logs();
    let ward_lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("ward:")).collect();
    ctr.check(
        ward_lines.len() == 1 && ward_lines[0].contains("/no/such/command"),
        &format!(
            "expected one `ward:` line naming the command, got {}",
            ward_lines.len()
        ),
    );
    let r = report_file(&ctr, &dir);
    check_agreement(&ctr, &r, exit);
    ctr.check(r["cause"] == "exec_failed", "cause should be exec_failed");
    ctr.check(
        summary(&r).is_some_and(|s| s.contains("/no/such/command")),
        "the summary should name the command",
    );
}

/// A path that exists but cannot be executed: 126, not 127.
#[test]
fn docker_unexecutable_command_reports_exec_failed_126() {
    let Some(docker) = docker::docker() else {
        return;
    };
    // A directory: execve fails with EACCES.
    let (dir, ctr, exit) = exec_failure(&docker, "report-exec126", "/etc");
    ctr.check(exit.code == 126, &format!("expected 126: {exit:?}"));
    let logs = ctr.logs();
    ctr.check(
        logs.lines().filter(|l| l.starts_with("ward:")).count() == 1,
        "expected one `ward:` line",
    );
    let r = report_file(&ctr, &dir);
    check_agreement(&ctr, &r, exit);
    ctr.check(r["cause"] == "exec_failed", "cause should be exec_failed");
}

/// The report's `warnings` list the stop-path warnings ward streamed
/// (`still_running`, `kill_after`) too (this once failed).
#[test]
fn docker_stop_warnings_are_listed_in_the_report() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = ignoring_term_with_kill_after(&docker);
    ctr.stop(20);
    let r = exit_report(&ctr);
    let listed: Vec<&str> = r["warnings"]
        .as_array()
        .map(|a| a.iter().filter_map(|w| w["event"].as_str()).collect())
        .unwrap_or_default();
    for streamed in ["still_running", "kill_after"] {
        ctr.check(
            listed.contains(&streamed),
            &format!("{streamed} was logged as a warning but the report lists {listed:?}"),
        );
    }
}
