//! Stop policy: what to do with a signal given `--stop-delay`, and when a stop
//! counts as requested and as forwarded. Pure decisions, no I/O.

use std::time::Duration;

use super::signals::Disposition;

/// Seconds after a stop request at which ward says the child still runs.
pub const STILL_RUNNING_AT: [u32; 5] = [1, 5, 10, 20, 30];

/// Where the stop sequence stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopState {
    /// The signals that mean "stop" (`--stop-signal`; TERM and INT by
    /// default). SIGQUIT is not one by default: to a JVM it means "dump
    /// your threads", and a stop timer must not SIGKILL a thread dump.
    pub stop_signals: Vec<i32>,
    /// A stop signal has been received.
    pub requested: bool,
    /// A SIGTERM is being held by `--stop-delay`: what to send for it
    /// (SIGTERM, or what `--rewrite` makes of it).
    pub holding: Option<i32>,
    /// A stop signal has been forwarded to the child.
    pub forwarded: bool,
}

/// What to do with one received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Send this to the child now (`None`: send nothing now).
    pub send: Option<i32>,
    /// This is the first stop request: record it, start the "still running" clock.
    pub first_request: bool,
    /// Start holding: forward SIGTERM after the delay.
    pub hold: Option<Duration>,
    /// A held SIGTERM is released by this signal (cancel the delay timer).
    pub release_hold: bool,
    /// Send this first, before `send`: the held SIGTERM, released by a
    /// SIGINT (a second SIGTERM takes its place instead).
    pub send_held: Option<i32>,
    /// This send forwards a stop: arm `--kill-after` if not yet armed.
    pub stop_forwarded: bool,
}

impl Default for StopState {
    fn default() -> Self {
        StopState::new(vec![libc::SIGTERM, libc::SIGINT])
    }
}

impl StopState {
    /// A stop sequence in which `stop_signals` count as stop requests.
    pub fn new(stop_signals: Vec<i32>) -> StopState {
        StopState {
            stop_signals,
            requested: false,
            holding: None,
            forwarded: false,
        }
    }

    /// True when `sig` counts as a stop request.
    pub fn is_stop_signal(&self, sig: i32) -> bool {
        self.stop_signals.contains(&sig)
    }

    /// Decides what to do with `signo` (already rewritten into `disp`).
    pub fn on_signal(
        &mut self,
        signo: i32,
        disp: Disposition,
        stop_delay: Option<Duration>,
    ) -> Decision {
        let fwd = match disp {
            Disposition::Forward(s) => Some(s),
            Disposition::Drop => None,
        };
        let is_stop = self.is_stop_signal(signo) || fwd.is_some_and(|s| self.is_stop_signal(s));
        let mut d = Decision {
            send: fwd,
            first_request: is_stop && !self.requested,
            hold: None,
            release_hold: false,
            send_held: None,
            stop_forwarded: false,
        };
        if is_stop {
            self.requested = true;
        }
        if signo == libc::SIGTERM
            && is_stop
            && let Some(out) = fwd
            && let Some(delay) = stop_delay.filter(|_| self.holding.is_none() && !self.forwarded)
        {
            self.holding = Some(out);
            d.send = None;
            d.hold = Some(delay);
            return d;
        }
        if is_stop
            && matches!(signo, libc::SIGTERM | libc::SIGINT)
            && let Some(held) = self.holding.take()
        {
            // A second SIGTERM, or SIGINT: the operator means it, go now.
            // A SIGINT does not cancel the SIGTERM: it goes too, first, as
            // it came first. (A SIGINT that is no stop signal passes on its
            // own; the held SIGTERM keeps its timer.)
            d.release_hold = true;
            if signo != libc::SIGTERM {
                d.send_held = Some(held);
                self.forwarded = true;
                d.stop_forwarded = true;
            }
        }
        if is_stop && d.send.is_some() {
            self.forwarded = true;
            d.stop_forwarded = true;
        }
        d
    }

    /// The `--stop-delay` ran out: the held SIGTERM is forwarded; returns
    /// what to send for it (`None`: nothing was held any more).
    pub fn release(&mut self) -> Option<i32> {
        let held = self.holding.take();
        if held.is_some() {
            self.forwarded = true;
        }
        held
    }
}

/// True when `--stop-delay` can hold a SIGTERM: it is a stop request (it,
/// or what `--rewrite` makes of it, is a stop signal) and is forwarded.
pub fn stop_delay_holds(
    stop_signals: &[i32],
    rewrite: &std::collections::BTreeMap<i32, i32>,
) -> bool {
    match super::signals::rewrite(rewrite, libc::SIGTERM) {
        Disposition::Forward(s) => {
            stop_signals.contains(&libc::SIGTERM) || stop_signals.contains(&s)
        }
        Disposition::Drop => false,
    }
}

/// The stop signals `--rewrite` drops: none of them is ever forwarded, so
/// `--kill-after` never starts for them (a `docker stop` sends SIGTERM).
pub fn dropped_stops(
    stop_signals: &[i32],
    rewrite: &std::collections::BTreeMap<i32, i32>,
) -> Vec<i32> {
    stop_signals
        .iter()
        .copied()
        .filter(|&s| super::signals::rewrite(rewrite, s) == Disposition::Drop)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    const TERM: i32 = libc::SIGTERM;
    const INT: i32 = libc::SIGINT;
    const QUIT: i32 = libc::SIGQUIT;
    const USR1: i32 = libc::SIGUSR1;
    const HUP: i32 = libc::SIGHUP;

    #[test]
    fn a_stop_delay_holds_only_a_forwarded_stop_request() {
        let none = std::collections::BTreeMap::new();
        assert!(stop_delay_holds(&[TERM, INT], &none));
        assert!(!stop_delay_holds(&[INT], &none));
        assert!(!stop_delay_holds(&[TERM, INT], &[(TERM, 0)].into()));
        // Rewritten into a stop signal, or a stop signal rewritten.
        assert!(stop_delay_holds(&[QUIT], &[(TERM, QUIT)].into()));
        assert!(stop_delay_holds(&[TERM], &[(TERM, USR1)].into()));
        assert!(!stop_delay_holds(&[INT], &[(TERM, USR1)].into()));
    }

    #[test]
    fn term_without_delay_is_forwarded_and_is_a_stop() {
        let mut s = StopState::default();
        let d = s.on_signal(TERM, Disposition::Forward(TERM), None);
        assert_eq!(d.send, Some(TERM));
        assert!(d.first_request && d.stop_forwarded);
        let d = s.on_signal(TERM, Disposition::Forward(TERM), None);
        assert!(!d.first_request && d.stop_forwarded);
    }

    #[test]
    fn non_stop_signals_pass_without_arming_anything() {
        let mut s = StopState::default();
        let d = s.on_signal(
            USR1,
            Disposition::Forward(USR1),
            Some(Duration::from_secs(5)),
        );
        assert_eq!(d.send, Some(USR1));
        assert!(!d.first_request && !d.stop_forwarded && d.hold.is_none());
        assert!(!s.requested);
    }

    #[test]
    fn delay_holds_first_term_then_second_term_goes_at_once() {
        let mut s = StopState::default();
        let delay = Some(Duration::from_secs(5));
        let d = s.on_signal(TERM, Disposition::Forward(TERM), delay);
        assert_eq!(d.send, None);
        assert_eq!(d.hold, delay);
        assert!(d.first_request && !d.stop_forwarded);
        let d = s.on_signal(TERM, Disposition::Forward(TERM), delay);
        assert_eq!(d.send, Some(TERM));
        assert!(d.release_hold && d.stop_forwarded && !d.first_request);
        assert!(s.holding.is_none() && s.forwarded);
    }

    #[test]
    fn term_is_held_only_when_it_is_a_stop_signal() {
        // `--stop-signal QUIT --stop-delay 5s`: a SIGTERM is no stop, so it
        // passes at once and arms nothing.
        let mut s = StopState::new(vec![QUIT]);
        let delay = Some(Duration::from_secs(5));
        let d = s.on_signal(TERM, Disposition::Forward(TERM), delay);
        assert_eq!(d.send, Some(TERM));
        assert!(d.hold.is_none() && !d.stop_forwarded && !d.first_request);
        assert!(s.holding.is_none());
        // QUIT, the stop signal, is forwarded at once (only SIGTERM is held).
        let d = s.on_signal(QUIT, Disposition::Forward(QUIT), delay);
        assert_eq!(d.send, Some(QUIT));
        assert!(d.first_request && d.stop_forwarded);
    }

    #[test]
    fn a_sigint_that_is_no_stop_leaves_the_held_term_held() {
        let mut s = StopState::new(vec![TERM]);
        let delay = Some(Duration::from_secs(5));
        s.on_signal(TERM, Disposition::Forward(TERM), delay);
        let d = s.on_signal(INT, Disposition::Forward(INT), delay);
        assert_eq!(d.send, Some(INT));
        assert!(!d.release_hold && !d.stop_forwarded);
        assert!(s.holding.is_some() && !s.forwarded);
        // The timer's end still forwards the held SIGTERM.
        assert_eq!(s.release(), Some(TERM));
    }

    #[test]
    fn sigint_releases_a_held_term_and_both_go_term_first() {
        let mut s = StopState::default();
        let delay = Some(Duration::from_secs(5));
        s.on_signal(TERM, Disposition::Forward(TERM), delay);
        let d = s.on_signal(INT, Disposition::Forward(INT), delay);
        assert_eq!((d.send_held, d.send), (Some(TERM), Some(INT)));
        assert!(d.release_hold && d.stop_forwarded);
        // Nothing is left for the timer to send.
        assert_eq!(s.release(), None);
    }

    #[test]
    fn a_held_term_goes_as_rewritten_even_when_the_releasing_sigint_is_dropped() {
        let mut s = StopState::default();
        let delay = Some(Duration::from_secs(5));
        s.on_signal(TERM, Disposition::Forward(QUIT), delay);
        let d = s.on_signal(INT, Disposition::Drop, delay);
        assert_eq!((d.send_held, d.send), (Some(QUIT), None));
        assert!(d.release_hold && d.stop_forwarded && s.forwarded);
    }

    #[test]
    fn a_second_term_takes_the_held_ones_place() {
        let mut s = StopState::default();
        let delay = Some(Duration::from_secs(5));
        s.on_signal(TERM, Disposition::Forward(TERM), delay);
        let d = s.on_signal(TERM, Disposition::Forward(TERM), delay);
        assert_eq!((d.send_held, d.send), (None, Some(TERM)));
        assert!(d.release_hold && d.stop_forwarded);
    }

    #[test]
    fn delay_expiry_forwards_the_held_term_once() {
        let mut s = StopState::default();
        s.on_signal(
            TERM,
            Disposition::Forward(TERM),
            Some(Duration::from_secs(1)),
        );
        assert_eq!(s.release(), Some(TERM));
        assert!(s.forwarded);
        assert_eq!(s.release(), None);
    }

    #[test]
    fn rewritten_stop_counts_both_ways() {
        let mut s = StopState::default();
        // TERM rewritten to QUIT is still a stop.
        let d = s.on_signal(TERM, Disposition::Forward(QUIT), None);
        assert!(d.first_request && d.stop_forwarded);
        // HUP rewritten to TERM becomes a stop.
        let mut s = StopState::default();
        let d = s.on_signal(HUP, Disposition::Forward(TERM), None);
        assert!(d.first_request && d.stop_forwarded);
    }

    #[test]
    fn quit_is_no_stop_by_default_and_winch_can_be_one() {
        // A JVM thread dump (SIGQUIT) must not start --kill-after.
        let mut s = StopState::default();
        let d = s.on_signal(QUIT, Disposition::Forward(QUIT), None);
        assert_eq!(d.send, Some(QUIT));
        assert!(!d.first_request && !d.stop_forwarded);
        // httpd's STOPSIGNAL is WINCH: `--stop-signal WINCH`.
        let mut s = StopState::new(vec![libc::SIGWINCH]);
        let d = s.on_signal(libc::SIGWINCH, Disposition::Forward(libc::SIGWINCH), None);
        assert!(d.first_request && d.stop_forwarded);
        let d = s.on_signal(TERM, Disposition::Forward(TERM), None);
        assert!(!d.first_request && !d.stop_forwarded, "TERM is not listed");
    }

    #[test]
    fn stop_signals_rewritten_to_nothing_are_named() {
        let mut rewrite = std::collections::BTreeMap::new();
        assert!(dropped_stops(&[TERM, INT], &rewrite).is_empty());
        rewrite.insert(TERM, 0);
        rewrite.insert(USR1, 0);
        rewrite.insert(INT, QUIT);
        assert_eq!(dropped_stops(&[TERM, INT], &rewrite), [TERM]);
    }

    #[test]
    fn dropped_term_is_requested_but_not_forwarded() {
        let mut s = StopState::default();
        let d = s.on_signal(TERM, Disposition::Drop, Some(Duration::from_secs(3)));
        assert_eq!(d.send, None);
        assert!(d.first_request && !d.stop_forwarded && d.hold.is_none());
    }
}
