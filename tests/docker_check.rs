//! Docker end-to-end test of `ward check` as a real `HEALTHCHECK` (exec form,
//! no shell) in a `FROM scratch` image: the container goes `healthy` while
//! busybox httpd serves, and `unhealthy` once it is killed.
//!
//! The container runs with `--network none`: its loopback is its own, so the
//! fixed port baked into the HEALTHCHECK line cannot collide with anything on
//! the shared host and no traffic leaves the container.
//!
//! Needs a Docker engine: skipped with `SKIPPED: docker not available` on a
//! developer machine without one, a failure under CI=true.

mod common;

use std::time::Duration;

use common::docker::{self, Container};

/// Waits (60 s at most) for health `status`, then returns the health log,
/// checked to hold ward check's line `ward check: SAYS`.
fn health_log_after(ctr: &Container, status: &str, says: &str) -> String {
    ctr.wait_health(status, Duration::from_secs(60));
    let log = ctr.inspect("{{json .State.Health.Log}}");
    ctr.check(
        log.contains(&format!("ward check: {says}")),
        &format!("no {status} line from ward check in the health log: {log}"),
    );
    log
}

#[test]
fn docker_healthcheck_goes_healthy_then_unhealthy_when_the_server_dies() {
    let Some(docker) = docker::docker() else {
        return;
    };
    let image = docker.derived_image(
        "HEALTHCHECK --interval=1s --timeout=5s --retries=2 \
         CMD [\"/ward\", \"check\", \"http://127.0.0.1:8080/\"]",
    );
    let script = "/bin/busybox mkdir -p /www; echo ok > /www/index.html; \
                  /bin/busybox httpd -f -p 127.0.0.1:8080 -h /www & echo $! > /tmp/httpd.pid; \
                  exec sleep 300";
    let ctr = docker.run_image(&image, &["--network", "none"], &["/bin/sh", "-c", script]);

    let log = health_log_after(
        &ctr,
        "healthy",
        "http://127.0.0.1:8080/ healthy: 200 OK in ",
    );
    ctr.check(
        log.contains("\"ExitCode\":0"),
        &format!("no exit 0 in the health log: {log}"),
    );

    ctr.exec(
        &["/bin/sh", "-c", "kill $(cat /tmp/httpd.pid)"],
        Duration::from_secs(30),
    );
    let log = health_log_after(
        &ctr,
        "unhealthy",
        "http://127.0.0.1:8080/ unhealthy: connection refused",
    );
    ctr.check(
        log.contains("\"ExitCode\":1") && !log.contains("\"ExitCode\":2"),
        &format!("unhealthy probes must exit 1, never 2: {log}"),
    );
}
