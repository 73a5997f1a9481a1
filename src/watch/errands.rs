//! Work the reaping thread hands to the watch thread because it reads `/proc`:
//! naming a signal's sender, signalling everything else at shutdown, and the
//! `--orphans terminate` policy. Each errand logs its own event.
//!
//! Owns no state but the orphans already signalled. Never reaps and never
//! decides stop policy: the reaper decides, this carries it out.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::log::{self, Level};
use crate::units::secs;

/// How often adopted orphans are looked for under `--orphans terminate`.
pub const ORPHAN_SCAN_EVERY: Duration = Duration::from_millis(500);

/// Sends `sig` to every other process ward is responsible for; returns how
/// many were signalled (as PID 1: how many existed just before).
pub fn signal_rest(is_pid1: bool, self_pid: i32, sig: i32, proc_root: &Path) -> usize {
    // An unreadable /proc leaves the list empty: as PID 1 kill(-1) still
    // reaches everyone; as a subreaper the grace period's SIGKILL retries.
    let targets = crate::procs::descendants(proc_root, self_pid).unwrap_or_default();
    if is_pid1 {
        // SAFETY: kill(-1) from PID 1 of a namespace reaches every process in
        // it except PID 1 itself.
        unsafe { libc::kill(-1, sig) };
    } else {
        for &pid in &targets {
            // SAFETY: plain kill(2) on a descendant found just now.
            unsafe { libc::kill(pid, sig) };
        }
    }
    targets.len()
}

/// Logs what [`signal_rest`] did, in the words of the shutdown sequence.
pub fn log_rest_signalled(sig: i32, count: usize, grace: Duration) {
    let plural = if count == 1 { "" } else { "es" };
    if sig == libc::SIGKILL {
        log::event(
            Level::Warning,
            "shutdown_kill",
            &format!(
                "{count} process{plural} still running after the {} grace: sent SIGKILL",
                secs(grace)
            ),
            &[("remaining", json!(count))],
        );
    } else {
        log::event(
            Level::Info,
            "shutdown",
            &format!(
                "sent SIGTERM to {count} remaining process{plural}; waiting up to {} (--grace)",
                secs(grace)
            ),
            &[
                ("remaining", json!(count)),
                ("grace_s", json!(grace.as_secs_f64())),
            ],
        );
    }
}

/// `--orphans terminate`: SIGTERM to every child of ward but the main one.
#[derive(Debug)]
pub struct OrphanTerminator {
    self_pid: i32,
    main_pid: i32,
    signalled: Vec<i32>,
    /// When to look next.
    pub next_scan: Instant,
    /// False once the main child is gone (the shutdown takes over).
    pub active: bool,
}

impl OrphanTerminator {
    /// A policy for ward (`self_pid`) whose main child is `main_pid`.
    pub fn new(self_pid: i32, main_pid: i32) -> OrphanTerminator {
        OrphanTerminator {
            self_pid,
            main_pid,
            signalled: Vec::new(),
            next_scan: Instant::now(),
            active: true,
        }
    }

    /// Looks for new orphans and sends each SIGTERM once.
    pub fn scan(&mut self, proc_root: &Path, now: Instant) {
        self.next_scan = now + ORPHAN_SCAN_EVERY;
        let children = crate::procs::children_of(proc_root, self.self_pid).unwrap_or_default();
        // Forget pids that are gone, so a reused pid is signalled again.
        self.signalled.retain(|p| children.contains(p));
        for pid in children {
            if pid == self.main_pid || self.signalled.contains(&pid) {
                continue;
            }
            let name = crate::procs::process_name(proc_root, pid)
                .map(|n| format!("{n} (pid {pid})"))
                .unwrap_or_else(|| format!("pid {pid}"));
            // SAFETY: plain kill(2) on our own (unreaped) child.
            if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
                self.signalled.push(pid);
                log::event(
                    Level::Info,
                    "orphan_terminated",
                    &format!("sent SIGTERM to adopted orphan {name} (--orphans terminate)"),
                    &[("pid", json!(pid))],
                );
            }
        }
    }
}

/// The name of a process for a log line: `sh (pid 42)`, or `pid 42` when
/// it is already gone.
pub fn sender_name(proc_root: &Path, pid: i32) -> Option<String> {
    crate::procs::process_name(proc_root, pid)
}
