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

/// How many processes a shutdown signal went to, and for a SIGKILL the
/// first [`NAMED_AT_MOST`] of them by name: the ones that ignored SIGTERM.
#[derive(Debug, Default)]
pub struct Rest {
    pub count: usize,
    /// (pid, comm), the comm empty when it could not be read.
    pub named: Vec<(i32, String)>,
}

/// How many of the processes a shutdown SIGKILL went to are named.
pub const NAMED_AT_MOST: usize = 5;

/// Sends `sig` to every other process ward is responsible for; says how
/// many were signalled (as PID 1: how many existed just before) and, for a
/// SIGKILL, names the first few, read before the signal. Any other signal
/// is followed by SIGCONT.
pub fn signal_rest(is_pid1: bool, self_pid: i32, sig: i32, proc_root: &Path) -> Rest {
    // An unreadable /proc leaves the list empty, said in a warning: as PID 1
    // kill(-1) still reaches everyone; as a subreaper nobody is signalled
    // (the grace period's SIGKILL tries again).
    let targets = listed(proc_root, self_pid, false).unwrap_or_else(|e| {
        log::event(
            Level::Warning,
            "shutdown_unlisted",
            &format!(
                "cannot list the remaining processes in /proc ({e}): {}",
                if is_pid1 {
                    "signalling them all with kill(-1)"
                } else {
                    "none can be signalled"
                }
            ),
            &[],
        );
        Vec::new()
    });
    let named = if sig == libc::SIGKILL {
        targets
            .iter()
            .take(NAMED_AT_MOST)
            .map(|&pid| {
                let name = crate::procs::process_name(proc_root, pid).unwrap_or_default();
                (pid, name)
            })
            .collect()
    } else {
        Vec::new()
    };
    // A process stopped (SIGSTOP, Ctrl-Z) acts on no signal but SIGKILL
    // until it is continued: SIGCONT after the SIGTERM, or it would sit out
    // the whole grace.
    let sigs: &[i32] = if sig == libc::SIGKILL {
        &[sig]
    } else {
        &[sig, libc::SIGCONT]
    };
    for &s in sigs {
        if is_pid1 {
            // SAFETY: kill(-1) from PID 1 of a namespace reaches every process
            // in it except PID 1 itself.
            unsafe { libc::kill(-1, s) };
        } else {
            for &pid in &targets {
                // SAFETY: plain kill(2) on a descendant found just now.
                unsafe { libc::kill(pid, s) };
            }
        }
    }
    Rest {
        count: targets.len(),
        named,
    }
}

/// Ward's descendants (`children_only`: its children) as `/proc` lists
/// them, once it is sure that `/proc` is its own PID namespace's: its `self`
/// names ward's pid. An unmounted `/proc` lists nobody, and one of another
/// namespace lists other processes under the pids ward would signal.
fn listed(proc_root: &Path, self_pid: i32, children_only: bool) -> Result<Vec<i32>, String> {
    if !crate::procs::is_own(proc_root, self_pid) {
        return Err("its self is not ward".into());
    }
    let list = if children_only {
        crate::procs::children_of(proc_root, self_pid)
    } else {
        crate::procs::descendants(proc_root, self_pid)
    };
    list.map_err(|e| e.to_string())
}

/// The processes a shutdown SIGKILL went to, in words: `worker (pid 12),
/// sleep (pid 14) and 3 more`; empty when none could be listed.
pub fn rest_words(rest: &Rest) -> String {
    let mut words: Vec<String> = rest
        .named
        .iter()
        .map(|(pid, name)| crate::procs::named(Some(name), *pid))
        .collect();
    let more = rest.count.saturating_sub(words.len());
    if more > 0 && !words.is_empty() {
        words.push(format!("{more} more"));
    }
    crate::units::and_list(&words)
}

/// Logs what [`signal_rest`] did, in the words of the shutdown sequence;
/// `grace` is `None` when a stop signal cut it short. True when it warned
/// (SIGKILL went to processes still there).
pub fn log_rest_signalled(sig: i32, rest: &Rest, grace: Option<Duration>) -> bool {
    let count = rest.count;
    let plural = if count == 1 { "" } else { "es" };
    let when = match grace {
        Some(g) => format!("after the {} grace", secs(g)),
        None => "when a stop signal cut --grace short".into(),
    };
    if sig == libc::SIGKILL && count == 0 {
        // Nothing was killed (a --grace 0, or the last ones exiting as it
        // ran out): no warning that reads as trouble.
        log::event(
            Level::Info,
            "shutdown",
            &format!("none left to SIGKILL {when}: the rest were gone or exiting"),
            &[("remaining", json!(0))],
        );
        return false;
    }
    if sig == libc::SIGKILL {
        let who = rest_words(rest);
        let to = if who.is_empty() {
            String::new()
        } else {
            format!(" to {who}")
        };
        let named: Vec<_> = rest
            .named
            .iter()
            .map(|(pid, name)| json!({ "pid": pid, "name": name }))
            .collect();
        log::event(
            Level::Warning,
            "shutdown_kill",
            &format!("{count} process{plural} still running {when}: sent SIGKILL{to}"),
            &[("remaining", json!(count)), ("processes", json!(named))],
        );
        true
    } else {
        // Children the reaper counted were already zombies or exiting.
        let msg = if count == 0 {
            "none left to signal: the rest were gone or exiting".into()
        } else {
            format!(
                "sent SIGTERM to {count} remaining process{plural}; waiting up to {} (--grace)",
                secs(grace.unwrap_or_default())
            )
        };
        log::event(
            Level::Info,
            "shutdown",
            &msg,
            &[
                ("remaining", json!(count)),
                ("grace_s", json!(grace.unwrap_or_default().as_secs_f64())),
            ],
        );
        false
    }
}

/// `--orphans terminate`: SIGTERM to every child of ward but the main one.
#[derive(Debug)]
pub struct OrphanTerminator {
    self_pid: i32,
    main_pid: i32,
    signalled: Vec<i32>,
    /// `/proc` could not be listed, and that was said (once).
    unlisted: bool,
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
            unlisted: false,
            next_scan: Instant::now(),
            active: true,
        }
    }

    /// Looks for new orphans and sends each SIGTERM once.
    pub fn scan(&mut self, proc_root: &Path, now: Instant) {
        self.next_scan = now + ORPHAN_SCAN_EVERY;
        let children = match listed(proc_root, self.self_pid, true) {
            Ok(c) => c,
            Err(e) => {
                if !std::mem::replace(&mut self.unlisted, true) {
                    log::event(
                        Level::Warning,
                        "orphans_unlisted",
                        &format!(
                            "--orphans terminate: cannot list ward's children in /proc ({e}); orphans stay until it can"
                        ),
                        &[],
                    );
                }
                return;
            }
        };
        // Forget pids that are gone, so a reused pid is signalled again.
        self.signalled.retain(|p| children.contains(p));
        for pid in children {
            if pid == self.main_pid || self.signalled.contains(&pid) {
                continue;
            }
            let name =
                crate::procs::named(crate::procs::process_name(proc_root, pid).as_deref(), pid);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `--grace 0` (or the last ones exiting as it ran out): a SIGKILL
    /// that found no one is no warning; "0 processes still running ...:
    /// sent SIGKILL" read as trouble.
    #[test]
    fn a_shutdown_sigkill_that_found_no_one_is_no_warning() {
        let none = Rest {
            count: 0,
            named: Vec::new(),
        };
        let one = Rest {
            count: 1,
            named: vec![(12, "sleep".into())],
        };
        let grace = Some(Duration::ZERO);
        assert!(!log_rest_signalled(libc::SIGKILL, &none, grace));
        assert!(log_rest_signalled(libc::SIGKILL, &one, grace));
        assert!(!log_rest_signalled(libc::SIGTERM, &one, grace));
    }

    fn rest(count: usize, named: &[(i32, &str)]) -> Rest {
        Rest {
            count,
            named: named.iter().map(|&(p, n)| (p, n.to_string())).collect(),
        }
    }

    #[test]
    fn the_killed_are_named_the_rest_counted() {
        assert_eq!(rest_words(&rest(1, &[(12, "worker")])), "worker (pid 12)");
        assert_eq!(
            rest_words(&rest(2, &[(12, "worker"), (14, "")])),
            "worker (pid 12) and pid 14"
        );
        let five = [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")];
        assert_eq!(
            rest_words(&rest(8, &five)),
            "a (pid 1), b (pid 2), c (pid 3), d (pid 4), e (pid 5) and 3 more"
        );
        // /proc listed nobody (kill(-1) still went out): no names, no "more".
        assert_eq!(rest_words(&rest(0, &[])), "");
    }

    #[test]
    fn only_a_sigkill_names_them() {
        // A /proc tree whose one process has a pid above the kernel's
        // largest (2^22), so the signals really sent reach nobody.
        const PID: i32 = 4_194_399;
        let dir = std::env::temp_dir().join(format!("ward-rest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let task = |pid: i32| dir.join(format!("{pid}/task/{pid}"));
        std::fs::create_dir_all(task(1)).unwrap();
        std::fs::create_dir_all(task(PID)).unwrap();
        std::os::unix::fs::symlink("1", dir.join("self")).unwrap();
        std::fs::write(task(1).join("children"), format!("{PID} ")).unwrap();
        std::fs::write(task(PID).join("children"), "").unwrap();
        std::fs::write(
            dir.join(format!("{PID}/stat")),
            format!(
                "{PID} (stubborn) S 1 {PID} {PID} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 \
                 100 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 \
                 0 0 0 0 0 0 0 0 0 0 0"
            ),
        )
        .unwrap();
        let term = signal_rest(false, 1, libc::SIGTERM, &dir);
        let kill = signal_rest(false, 1, libc::SIGKILL, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((term.count, term.named.len()), (1, 0));
        assert_eq!(kill.count, 1);
        assert_eq!(rest_words(&kill), format!("stubborn (pid {PID})"));
    }
}
