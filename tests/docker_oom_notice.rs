//! Docker mounts the v1 cgroupfs read-only: no OOM eventfd. ward must still
//! say "oom_kill" as it happens, not at its next sample: every SIGKILL it
//! reaps makes the watch thread look at the OOM counter at once.
//!
//! Needs a Docker engine (skipped outside CI without one, a failure in CI).

mod common;

use std::time::Duration;

use common::docker::{self, MEMORY_32M};

/// An orphan (adopted and reaped by ward) is OOM-killed while the main
/// process lives on; with a 60 s watch interval the line must still come
/// within seconds.
#[test]
fn docker_oom_kill_of_an_orphan_is_said_at_once_without_an_eventfd() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let ctr = docker.run(
        &[MEMORY_32M, &["-e", "WARD_WATCH_INTERVAL=60s"]].concat(),
        &[
            "/bin/sh",
            "-c",
            // The inner shell backgrounds the hog and exits: the hog is
            // ward's (adopted) child when the OOM killer takes it.
            "sh -c 'ward-workload hog 100 &'; echo started; exec ward-workload sleep 50",
        ],
    );
    ctr.wait_for_log("started", Duration::from_secs(30));
    let started = std::time::Instant::now();
    let logs = ctr.wait_for_log("[oom_kill]", Duration::from_secs(20));
    let waited = started.elapsed();
    ctr.check(
        logs.contains("[watching]") && !logs.contains("OOM kills noticed as they happen"),
        "this test is about a container without an OOM eventfd",
    );
    // The guard: without the nudge the line comes with the 60 s sample.
    ctr.check(
        waited < Duration::from_secs(20),
        &format!("oom_kill came only after {waited:?}"),
    );
}
