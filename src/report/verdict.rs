//! Why the container died: the cause, decided from the facts the event loop
//! recorded. Pure: facts in, verdict out, so every rule has a unit test.

use serde::Serialize;

use super::facts::{OOM_ATTRIBUTION_WINDOW, RunFacts, WardKill};
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
    /// ward forwarded a signal to it as SIGKILL (`-r X:KILL`) that was not
    /// a stop request.
    KilledByWard,
    /// It could not be executed.
    ExecFailed,
}

/// How sure ward is of the OOM part of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OomEvidence {
    /// Proven: the census saw the main child gone when the counter rose, as
    /// many processes gone as kills counted, and ward reaped it with SIGKILL.
    Certain,
    /// The counter rose within 2 s of the death and nothing names another
    /// victim: timing, which never proves who sent a SIGKILL.
    Likely,
    /// The counter rose near the death, but every kill of that rise is
    /// named for another process, or the main child was seen alive after it.
    Excluded,
    /// The counter did not rise: ruled out.
    RuledOut,
    /// ward's group's counter did not rise, but the ancestor whose limit is
    /// in force counted kills beside it (cgroup v2): the main process, had it
    /// moved itself there, may have been one. Nothing is ruled out.
    Beside,
    /// The counter could not be read (no memory controller visible, or its
    /// read after the death failed).
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
            // ward's own SIGKILL first: it is the one sender ward knows.
            match f.ward_killed_main().map(|k| k.why) {
                Some(WardKill::KillAfter) => {
                    return Verdict {
                        cause: Cause::StopTimeout,
                        oom: None,
                    };
                }
                Some(WardKill::Forwarded) if stopped => {
                    return Verdict {
                        cause: Cause::Stopped,
                        oom: None,
                    };
                }
                Some(WardKill::Forwarded) => {
                    return Verdict {
                        cause: Cause::KilledByWard,
                        oom: None,
                    };
                }
                Some(WardKill::Shutdown) | None => {}
            }
            let oom = oom_evidence(f);
            let cause = match oom {
                OomEvidence::Certain | OomEvidence::Likely => Cause::OomKilled,
                OomEvidence::Excluded
                | OomEvidence::RuledOut
                | OomEvidence::Beside
                | OomEvidence::Unknown => Cause::Killed,
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

/// Did the OOM killer take the main child? Certain only when a recorded
/// kill proves it ([`OomEvidence::Certain`]); likely when a rise within the
/// window names it or leaves a kill unnamed that it could be; excluded when
/// every near rise names others or saw it alive after; ruled out when the
/// counter was read at the start and after the death and never rose near it.
fn oom_evidence(f: &RunFacts) -> OomEvidence {
    let main = f.main_pid;
    let named = |certain: bool| {
        f.oom_kills
            .iter()
            .flat_map(|o| o.victims.iter())
            .any(|v| v.pid == main && v.certain == certain)
    };
    if named(true) {
        return OomEvidence::Certain;
    }
    if named(false) {
        return OomEvidence::Likely;
    }
    let Some(died) = f.main_ended else {
        return OomEvidence::Unknown;
    };
    let near: Vec<_> = f
        .oom_kills
        .iter()
        .filter(|o| o.at <= died + OOM_ATTRIBUTION_WINDOW && died <= o.at + OOM_ATTRIBUTION_WINDOW)
        .collect();
    if near.is_empty() {
        // A failed last read first: ward's own kills would pass for ones
        // beside it.
        return if f.oom_count_base.is_none() || !f.observed.oom_counted_last {
            OomEvidence::Unknown
        } else if f.observed.oom_kills_beside.is_some() {
            OomEvidence::Beside
        } else if f.oom_count_base.is_some() && f.observed.oom_counted_last {
            OomEvidence::RuledOut
        } else {
            OomEvidence::Unknown
        };
    }
    let open = near
        .iter()
        .any(|o| (o.victims.len() as u64) < o.kills && !o.survivors.contains(&main));
    if open {
        OomEvidence::Likely
    } else {
        OomEvidence::Excluded
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::report::facts::StopRequest;
    use crate::watch::OomVictim;
    use crate::watch::victims::RiseFindings;

    fn facts(end: ChildEnd) -> RunFacts {
        let mut f = RunFacts::new("app".into());
        f.main_pid = 7;
        f.main_end = Some(end);
        f.main_ended = Some(Instant::now());
        f.oom_count_base = Some(0);
        f.observed.oom_counted_last = true;
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
            held: false,
            stopped_by: None,
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
        f.note_ward_sigkill(WardKill::KillAfter, true, Instant::now());
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::StopTimeout,
                oom: None
            }
        );
    }

    fn findings(gone: &[i32], survivors: &[i32]) -> RiseFindings {
        RiseFindings {
            gone: gone
                .iter()
                .map(|&pid| OomVictim {
                    pid,
                    name: None,
                    certain: false,
                    evidence: crate::watch::victims::evidence::GONE,
                    oom_score: None,
                })
                .collect(),
            survivors: survivors.to_vec(),
            since: None,
            candidates_at: None,
        }
    }

    #[test]
    fn census_and_reap_prove_the_oom_kill() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t, findings(&[7], &[]));
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
    fn timing_alone_is_most_likely_not_certain() {
        // Issue 10 item 2: a SIGKILL reap next to a counter rise.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t - Duration::from_millis(500), RiseFindings::default());
        f.note_sigkilled(7, t);
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::OomKilled,
                oom: Some(OomEvidence::Likely)
            }
        );
    }

    #[test]
    fn self_kill_after_a_worker_oom_is_killed() {
        // The worker (pid 5) is gone at the rise, the shell alive; the
        // shell's own kill -9 half a second later is not the OOM killer's.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t - Duration::from_millis(500), findings(&[5], &[7]));
        f.note_sigkilled(7, t);
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Killed,
                oom: Some(OomEvidence::Excluded)
            }
        );
        // Unnamed, but the main child was seen alive after the rise.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        let t = f.main_ended.unwrap();
        f.note_oom(1, t - Duration::from_millis(500), findings(&[], &[7]));
        f.note_sigkilled(7, t);
        assert_eq!(decide(&f).oom, Some(OomEvidence::Excluded));
    }

    #[test]
    fn wards_forwarded_sigkill_is_wards() {
        // Issue 10 item 3: `-r TERM:KILL` and a SIGTERM.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        stop(&mut f, true);
        let t = f.main_ended.unwrap();
        f.note_ward_sigkill(WardKill::Forwarded, true, t - Duration::from_millis(2));
        f.note_sigkilled(7, t);
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Stopped,
                oom: None
            }
        );
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        f.note_ward_sigkill(WardKill::Forwarded, true, t);
        assert_eq!(decide(&f).cause, Cause::KilledByWard);
        // A shutdown SIGKILL to the rest says nothing about the main child.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        f.note_ward_sigkill(WardKill::Shutdown, false, t);
        assert_eq!(decide(&f).cause, Cause::Killed);
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
        f.note_oom(1, t - Duration::from_secs(30), RiseFindings::default());
        assert_eq!(decide(&f).cause, Cause::Killed);
    }

    /// Kills the ancestor holding the limit counted beside ward's group: a
    /// main process that moved itself there may have been one, so nothing is
    /// ruled out, and none is taken for this container's.
    #[test]
    fn kills_beside_wards_group_rule_nothing_out_and_prove_nothing() {
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        f.observed.oom_kills_beside = Some(("/sys/fs/cgroup/pod".into(), 1));
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Killed,
                oom: Some(OomEvidence::Beside)
            }
        );
        // ward's own count not read at the end: its own kills could be
        // among those "beside"; nothing is known.
        f.observed.oom_counted_last = false;
        assert_eq!(decide(&f).oom, Some(OomEvidence::Unknown));
    }

    #[test]
    fn a_failed_last_read_of_the_counter_rules_nothing_out() {
        // The count was read at the start, but the last look could not read
        // it: a rise at the death would have gone unseen.
        let mut f = facts(ChildEnd::Signaled(libc::SIGKILL));
        f.observed.oom_counted_last = false;
        assert_eq!(
            decide(&f),
            Verdict {
                cause: Cause::Killed,
                oom: Some(OomEvidence::Unknown)
            }
        );
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
        f.note_oom(1, t - Duration::from_millis(100), RiseFindings::default());
        assert_eq!(decide(&f).cause, Cause::Exited);
    }

    #[test]
    fn exec_failure() {
        let mut f = RunFacts::new("nope".into());
        f.exec_errno = Some(libc::ENOENT);
        assert_eq!(decide(&f).cause, Cause::ExecFailed);
    }
}
