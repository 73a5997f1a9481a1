//! Why the container died: the cause, decided from the facts the event loop
//! recorded. Pure: facts in, verdict out, so every rule has a unit test.

use serde::Serialize;

use super::facts::{OOM_ATTRIBUTION_WINDOW, RunFacts};
use crate::exit::ChildEnd;

/// The cause of ward's exit, as written in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The main process ended by itself with a code.
    Exited,
    /// It ended after a stop signal was forwarded to it.
    Stopped,
    /// ward SIGKILLed it after `--kill-after`.
    StopTimeout,
    /// The kernel OOM killer killed it.
    OomKilled,
    /// A signal that was neither the OOM killer's nor ward's killed it.
    Killed,
    /// It could not be executed.
    ExecFailed,
}

/// How sure ward is of the OOM part of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OomEvidence {
    /// ward reaped the main child with SIGKILL right after the counter rose.
    Certain,
    /// The counter rose at or just before the death, victim not named.
    Likely,
    /// The counter did not rise: ruled out.
    RuledOut,
    /// The counter could not be read (no memory controller visible).
    Unknown,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The cause.
    pub cause: Cause,
    /// For SIGKILL deaths: what is known about the OOM killer's part.
    pub oom: Option<OomEvidence>,
}

/// Decides the cause of the main child's end.
pub fn decide(f: &RunFacts) -> Verdict {
    if f.exec_errno.is_some() {
        return Verdict {
            cause: Cause::ExecFailed,
            oom: None,
        };
    }
    let stopped = f.stop.as_ref().is_some_and(|s| s.forwarded.is_some());
    match f.main_end {
        Some(ChildEnd::Signaled(libc::SIGKILL)) => {
            if f.killed_by_ward.is_some() {
                return Verdict {
                    cause: Cause::StopTimeout,
                    oom: None,
                };
            }
            let oom = oom_evidence(f);
            let cause = match oom {
                OomEvidence::Certain | OomEvidence::Likely => Cause::OomKilled,
                OomEvidence::RuledOut | OomEvidence::Unknown => Cause::Killed,
            };
            Verdict {
                cause,
                oom: Some(oom),
            }
        }
        Some(ChildEnd::Signaled(_)) if stopped => Verdict {
            cause: Cause::Stopped,
            oom: None,
        },
        Some(ChildEnd::Signaled(_)) => Verdict {
            cause: Cause::Killed,
            oom: None,
        },
        Some(ChildEnd::Exited(_)) if stopped => Verdict {
            cause: Cause::Stopped,
            oom: None,
        },
        Some(ChildEnd::Exited(_)) | None => Verdict {
            cause: Cause::Exited,
            oom: None,
        },
    }
}

/// Did the OOM killer take the main child? Certain when a recorded OOM kill
/// names it; likely when the counter rose within the attribution window
/// before its death; ruled out when the counter was readable and never rose
/// near it.
fn oom_evidence(f: &RunFacts) -> OomEvidence {
    if f.oom_kills.iter().any(|o| {
        o.victim
            .as_ref()
            .is_some_and(|v| v.certain && v.pid == f.main_pid)
    }) {
        return OomEvidence::Certain;
    }
    let died = f.main_ended;
    let near = f.oom_kills.iter().any(|o| match died {
        Some(d) => o.at <= d + OOM_ATTRIBUTION_WINDOW && d <= o.at + OOM_ATTRIBUTION_WINDOW,
        None => false,
    });
    if near {
        OomEvidence::Likely
    } else if f.oom_count_base.is_some() {
        OomEvidence::RuledOut
    } else {
        OomEvidence::Unknown
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::report::facts::StopRequest;
    use crate::watch::OomVictim;

    fn facts(end: ChildEnd) -> RunFacts {
        let mut f = RunFacts::new("app".into());
        f.main_pid = 7;
        f.main_end = Some(end);
        f.main_ended = Some(Instant::now());
        f.oom_count_base = Some(0);
        f
    }

    fn stop(f: &mut RunFacts, forwarded: bool) {
        let now = Instant::now();
        f.stop = Some(StopRequest {
            signal: libc::SIGTERM,
            from_pid: 0,
            from: "outside".into(),
            received: now,
            received_wall: SystemTime::now(),
            forwarded: forwarded.then_some(now),
        });
    }

    #[test]
    fn plain_exits() {
        for code in [0, 1, 3] {
            assert_eq!(decide(&facts(ChildEnd::Exited(code))).cause, Cause::Exited);
        }
    }

    #[test]
    fn exit_after_forwarded_stop_is_stopped() {
        let mut f = facts(ChildEnd::Exited(0));
        stop(&mut f, true);
        assert_eq!(decide(&f).cause, Cause::Stopped);
        let mut f = facts(ChildEnd::Signaled(libc::SIGTERM));
        stop(&mut f, true);
        assert_eq!(decide(&f).cause, Cause::Stopped);
    }

    #[test]
    fn exit_while_stop_is_held_is_exited() {
        let mut f = facts(ChildEnd::Exited(0));
        stop(&mut f, false);
        assert_eq!(decide(&f).cause, Cause::Exited);
    }

    #[test]
    fn ward_kill_after_is_stop_timeout() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        stop(&mut f, true);
        f.killed_by_ward = Some(Instant::now());
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::StopTimeout,
                oom: None
            }
        );
    }

    #[test]
    fn sigkill_with_oom_naming_main_is_certain() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t, None);
        f.note_sigkilled(7, t);
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::OomKilled,
                oom: Some(OomEvidence::Certain)
            }
        );
    }

    #[test]
    fn sigkill_with_oom_rise_at_death_is_likely() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        let other = OomVictim {
            pid: 99,
            name: None,
            certain: false,
        };
        f.note_oom(1, t - Duration::from_millis(500), Some(other));
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::OomKilled,
                oom: Some(OomEvidence::Likely)
            }
        );
    }

    #[test]
    fn sigkill_without_rise_rules_oom_out() {
        let f = facts(ChildEnd::Signaled(libc::SIGKILL));
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Killed,
                oom: Some(OomEvidence::RuledOut)
            }
        );
        // An OOM kill long before the death is a different story.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t - Duration::from_secs(30), None);
        assert_eq!(decide(&f).cause, Cause::Killed);
    }

    #[test]
    fn sigkill_without_counter_is_unknown() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        f.oom_count_base = None;
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Killed,
                oom: Some(OomEvidence::Unknown)
            }
        );
    }

    #[test]
    fn other_signals_are_killed() {
        assert_eq!(
            decide(&facts(ChildEnd::Signaled(libc::SIGSEGV))).cause,
            Cause::Killed
        );
    }

    #[test]
    fn shell_exits_after_worker_oom_is_exited() {
        let mut f = facts(ChildEnd::Exited(3));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t - Duration::from_millis(100), None);
        assert_eq!(decide(&f).cause, Cause::Exited);
    }

    #[test]
    fn exec_failure() {
        let mut f = RunFacts::new("nope".into());
        f.exec_errno = Some(libc::ENOENT);
        assert_eq!(decide(&f).cause, Cause::ExecFailed);
    }
}
