//! Deadlines for the event loop: a handful of named one-shot timers whose
//! earliest deadline becomes the poll timeout.

use std::time::{Duration, Instant};

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Forward the SIGTERM held by `--stop-delay`.
    StopDelay,
    /// `--kill-after` ran out: SIGKILL the main child.
    KillAfter,
    /// Log that the child still runs, N seconds after the stop request.
    StillRunning(u32),
    /// `--grace` ran out: SIGKILL what is left.
    Grace,
    /// Give up waiting for SIGKILLed processes to vanish.
    GiveUp,
    /// Stop waiting for the watch thread's last sample before the report.
    FinalWait,
    /// Stop waiting for the watch thread to finish a shutdown errand.
    RestWait,
    /// Stop waiting for the watch thread's last OOM check.
    CheckWait,
    /// Log OOM kills noticed a moment ago (their victims are reaped by now).
    OomReport,
    /// Drop the start-up code's pages from ward's RSS.
    Trim,
}

/// The pending deadlines; at most one per kind.
#[derive(Debug, Default)]
pub struct Timers {
    items: Vec<(Instant, Timer)>,
}

impl Timers {
    /// Sets (or moves) the deadline for `kind`.
    pub fn set(&mut self, kind: Timer, at: Instant) {
        self.cancel(kind);
        self.items.push((at, kind));
    }

    /// Removes the deadline for `kind`, if any.
    pub fn cancel(&mut self, kind: Timer) {
        self.items.retain(|(_, k)| *k != kind);
    }

    /// When `kind` is due, if pending.
    pub fn due_at(&self, kind: Timer) -> Option<Instant> {
        self.items
            .iter()
            .find(|(_, k)| *k == kind)
            .map(|(at, _)| *at)
    }

    /// True when `kind` is pending.
    pub fn is_set(&self, kind: Timer) -> bool {
        self.items.iter().any(|(_, k)| *k == kind)
    }

    /// How long poll may sleep: until the earliest deadline, rounded up to a
    /// whole millisecond so poll never wakes just before it; `None` = forever.
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.items.iter().map(|(at, _)| *at).min().map(|at| {
            let d = at.saturating_duration_since(now);
            let ms = d.as_nanos().div_ceil(1_000_000);
            Duration::from_millis(ms as u64)
        })
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        // A handful of timers: the earliest due one, again and again (ties
        // in the order they were set), costs no copy of std's stable sort.
        let mut due = Vec::new();
        while let Some(i) = (0..self.items.len())
            .filter(|&i| self.items[i].0 <= now)
            .min_by_key(|&i| self.items[i].0)
        {
            due.push(self.items.remove(i).1);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_deadline_wins_and_fires_once() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.poll_timeout(t0), None);
        timers.set(Timer::Grace, t0 + Duration::from_secs(3));
        timers.set(Timer::KillAfter, t0 + Duration::from_millis(1500));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_millis(1500)));
        assert!(timers.take_due(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(
            timers.take_due(t0 + Duration::from_secs(2)),
            vec![Timer::KillAfter]
        );
        assert!(!timers.is_set(Timer::KillAfter));
        assert_eq!(
            timers.take_due(t0 + Duration::from_secs(9)),
            vec![Timer::Grace]
        );
        assert_eq!(timers.poll_timeout(t0), None);
    }

    #[test]
    fn due_timers_come_earliest_first_and_ties_in_the_order_set() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        timers.set(Timer::Grace, ms(30));
        timers.set(Timer::StillRunning(1), ms(10));
        timers.set(Timer::OomReport, ms(20));
        timers.set(Timer::Trim, ms(10));
        timers.set(Timer::GiveUp, ms(99));
        timers.set(Timer::KillAfter, ms(20));
        assert_eq!(
            timers.take_due(ms(50)),
            [
                Timer::StillRunning(1),
                Timer::Trim,
                Timer::OomReport,
                Timer::KillAfter,
                Timer::Grace
            ]
        );
        assert!(timers.is_set(Timer::GiveUp));
        assert_eq!(timers.take_due(ms(99)), [Timer::GiveUp]);
        assert!(timers.take_due(ms(999)).is_empty());
    }

    #[test]
    fn set_replaces_and_cancel_removes() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(Timer::FinalWait, t0 + Duration::from_secs(5));
        timers.set(Timer::FinalWait, t0 + Duration::from_secs(1));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        timers.cancel(Timer::FinalWait);
        assert_eq!(timers.poll_timeout(t0), None);
    }

    #[test]
    fn timeout_rounds_up() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(Timer::Grace, t0 + Duration::from_micros(1500));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_millis(2)));
        assert_eq!(
            timers.poll_timeout(t0 + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
    }
}
