//! The seam for what PID 1 ward knew when a check failed. Owns only that
//! question; it must never change the verdict or the exit code, only add words.
//!
//! Seed 002's backend failed its load balancer's health check because the task
//! was CPU-starved, and the check's output could not say so. PID 1 ward watches
//! the container's cgroup (throttling, memory pressure) while `ward check` is a
//! separate, short-lived process started by `docker exec` or the kubelet. The
//! plan: when a probe fails, [`context_line`] asks PID 1 ward (for instance
//! over a unix socket it serves) for its recent watch and returns words such
//! as `CPU throttled in 97 % of periods over the last 30 s at 0.1 cores`,
//! which the output line appends after `; `.
//!
//! Today PID 1 ward serves nothing to ask, so this returns `None`: no guess and
//! no fake reading. Whatever replaces it must stay within the probe's budget
//! (ask with a short timeout of its own, and say nothing when there is no
//! answer), and must not run on a healthy probe.

use super::probe::Failure;

/// Extra words about the container for a failed probe, or `None` when ward
/// knows nothing more. Called once, only after a failure.
pub fn context_line(failure: &Failure) -> Option<String> {
    // Every failure kind is a candidate for context (a timeout most of all);
    // nothing is known yet for any of them.
    let _ = failure;
    None
}
