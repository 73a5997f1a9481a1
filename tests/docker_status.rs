//! Docker end-to-end tests of `ward status` and of `ward check`'s context
//! line, in the `FROM scratch` test image (ward as PID 1, busybox for the
//! workload only: `ward status` itself needs no shell and no ps).
//!
//! Needs a Docker engine: skipped with `SKIPPED: docker not available` on a
//! developer machine without one, a failure under CI=true.

mod common;

use std::time::{Duration, Instant};

use common::docker;

const T: Duration = Duration::from_secs(60);

#[test]
fn docker_status_names_the_non_reaping_parent_and_the_limits() {
    let Some(docker) = docker::docker() else {
        return;
    };
    let ctr = docker.run(
        &[
            "--memory",
            "64m",
            "--pids-limit",
            "50",
            "-e",
            "WARD_WATCH_INTERVAL=500ms",
        ],
        &[
            "/bin/sh",
            "-c",
            "for i in 1 2 3 4 5; do sleep 0 & done; exec sleep 300",
        ],
    );
    let until = Instant::now() + T;
    let text = loop {
        let text = ctr.exec(&["/ward", "status"], T);
        // ward's answer (not the fallback's), with the zombies in it.
        let answered = text.contains("ward 0.1.0, PID 1, up ");
        if (answered && text.contains("5 zombies")) || Instant::now() > until {
            break text;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for want in [
        "ward 0.1.0, PID 1, up ",
        "of 64.0 MiB (",
        "limit: own cgroup",
        " of 50 (",
        "5 zombies [sleep] NOT REAPED by their parent",
        "hint: sleep (pid ",
    ] {
        ctr.check(
            text.contains(want),
            &format!("missing {want:?} in:\n{text}"),
        );
    }
    // `docker exec` runs in the container's cgroup, ward's own.
    ctr.check(!text.contains("NOTE: this ward"), &text);
    let json = ctr.exec(&["/ward", "status", "--json"], T);
    let v: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| ctr.fail(&format!("--json does not parse ({e}): {json}")));
    ctr.check(v["schema"] == 1 && v["source"] == "ward", &json);
    ctr.check(
        v["container"]["limits"]["memory_bytes"]["value"].as_f64() == Some(64.0 * 1024.0 * 1024.0),
        &format!("memory limit: {json}"),
    );
    ctr.check(
        v["container"]["limits"]["pids"]["value"].as_f64() == Some(50.0),
        &format!("pids limit: {json}"),
    );
    ctr.check(
        v["tree"]["zombies"][0]["count"] == 5 && v["tree"]["zombies"][0]["parent_name"] == "sleep",
        &format!("zombies: {json}"),
    );
}

#[test]
fn docker_failing_check_of_a_cpu_starved_container_mentions_the_throttling() {
    let Some(docker) = docker::docker() else {
        return;
    };
    // A busy loop at 0.1 cores, and nothing listening on the checked port
    // (the server is down): the check fails, and ward has seen throttling.
    let ctr = docker.run(
        &[
            "--cpus",
            "0.1",
            "--network",
            "none",
            "-e",
            "WARD_WATCH_INTERVAL=1s",
        ],
        &["/bin/sh", "-c", "while :; do :; done"],
    );
    let until = Instant::now() + T;
    let line = loop {
        let (ok, line) = ctr.exec_any(
            &[
                "/ward",
                "check",
                "--timeout",
                "3s",
                "http://127.0.0.1:8080/",
            ],
            T,
        );
        ctr.check(!ok, &format!("the check should fail: {line}"));
        if line.contains("CPU throttled") || Instant::now() > until {
            break line;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    ctr.check(
        line.starts_with(
            "ward check: http://127.0.0.1:8080/ unhealthy: connection refused; CPU throttled in ",
        ) && line.contains(" % of periods over the last ")
            && line.contains(" s at 0.1 cores"),
        &format!("no throttling in the failing check's line: {line}"),
    );
}
