//! The shutdown sequence once the main child is gone: SIGTERM to the rest,
//! `--grace`, SIGKILL, a last wait, done. A pure state machine: events in,
//! steps out; the reaper carries the steps out (the signalling itself runs
//! on the watch thread, since finding the rest reads `/proc`).

use super::reap::Remaining;

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The main child runs.
    Running,
    /// The main child is gone; the rest were sent SIGTERM.
    Draining,
    /// SIGKILL was sent to what was left.
    Killing,
    /// Nothing is left (or ward gave up waiting): ward may exit.
    Done,
}

/// What the reaper must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send this signal to every other process ward is responsible for.
    SignalRest(i32),
    /// Start the `--grace` timer.
    ArmGrace,
    /// Start the last wait after SIGKILL.
    ArmGiveUp,
    /// Say that processes survived SIGKILL.
    ReportStuck,
}

/// The shutdown state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    phase: Phase,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            phase: Phase::Running,
        }
    }
}

impl Shutdown {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The main child was reaped; `left` says whether other children remain.
    pub fn main_exited(&mut self, left: Remaining) -> Vec<Step> {
        if self.phase != Phase::Running {
            return Vec::new();
        }
        match left {
            Remaining::NoChildren => {
                self.phase = Phase::Done;
                Vec::new()
            }
            Remaining::Children => {
                self.phase = Phase::Draining;
                vec![Step::SignalRest(libc::SIGTERM), Step::ArmGrace]
            }
        }
    }

    /// A reaping pass after the main child's end found `left`.
    pub fn reaped(&mut self, left: Remaining) {
        if matches!(self.phase, Phase::Draining | Phase::Killing) && left == Remaining::NoChildren {
            self.phase = Phase::Done;
        }
    }

    /// `--grace` ran out.
    pub fn grace_over(&mut self) -> Vec<Step> {
        if self.phase != Phase::Draining {
            return Vec::new();
        }
        self.phase = Phase::Killing;
        vec![Step::SignalRest(libc::SIGKILL), Step::ArmGiveUp]
    }

    /// The last wait after SIGKILL ran out.
    pub fn give_up(&mut self) -> Vec<Step> {
        if self.phase != Phase::Killing {
            return Vec::new();
        }
        self.phase = Phase::Done;
        vec![Step::ReportStuck]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_left_means_done_at_once() {
        let mut s = Shutdown::default();
        assert!(s.main_exited(Remaining::NoChildren).is_empty());
        assert_eq!(s.phase(), Phase::Done);
    }

    #[test]
    fn term_grace_kill_give_up() {
        let mut s = Shutdown::default();
        assert_eq!(
            s.main_exited(Remaining::Children),
            vec![Step::SignalRest(libc::SIGTERM), Step::ArmGrace]
        );
        assert_eq!(s.phase(), Phase::Draining);
        s.reaped(Remaining::Children);
        assert_eq!(s.phase(), Phase::Draining);
        assert_eq!(
            s.grace_over(),
            vec![Step::SignalRest(libc::SIGKILL), Step::ArmGiveUp]
        );
        assert_eq!(s.phase(), Phase::Killing);
        assert!(s.grace_over().is_empty(), "the grace fires once");
        assert_eq!(s.give_up(), vec![Step::ReportStuck]);
        assert_eq!(s.phase(), Phase::Done);
    }

    #[test]
    fn the_rest_leaving_ends_the_drain_early() {
        let mut s = Shutdown::default();
        s.main_exited(Remaining::Children);
        s.reaped(Remaining::NoChildren);
        assert_eq!(s.phase(), Phase::Done);
        assert!(s.grace_over().is_empty());
        assert!(s.give_up().is_empty());
    }

    #[test]
    fn reaping_before_the_main_exit_changes_nothing() {
        let mut s = Shutdown::default();
        s.reaped(Remaining::NoChildren);
        assert_eq!(s.phase(), Phase::Running);
        assert!(s.grace_over().is_empty());
        assert!(s.main_exited(Remaining::Children).len() == 2);
        assert!(s.main_exited(Remaining::Children).is_empty(), "once");
    }
}
