//! CFS throttling over a sliding window: the share of enforcement periods in
//! which the container was throttled, from successive `cpu.stat` counters.
//!
//! Pure: fed (time, counters) pairs, answers ratios. A container that looks
//! "60% busy" on average can be throttled in most periods; this is the number
//! that shows it.

use std::time::{Duration, Instant};

/// One reading of the cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleReading {
    /// When it was read.
    pub at: Instant,
    /// `nr_periods`.
    pub periods: u64,
    /// `nr_throttled`.
    pub throttled: u64,
    /// CPU usage, microseconds.
    pub usage_usec: u64,
}

/// Readings covering at least the longest window asked for, in room
/// allocated and written when the window is made: a watch that ran for
/// minutes holds no more memory than one that just started (the readings
/// used to grow with ward's age for five minutes, a page or more of
/// anonymous memory that `ward-bench` counted as growth after reaps).
#[derive(Debug)]
pub struct ThrottleWindow {
    /// Oldest first; only the first `len` are readings.
    readings: Box<[ThrottleReading; CAPACITY]>,
    len: usize,
}

impl Default for ThrottleWindow {
    fn default() -> Self {
        let blank = ThrottleReading {
            at: Instant::now(),
            periods: 0,
            throttled: 0,
            usage_usec: 0,
        };
        ThrottleWindow {
            readings: Box::new([blank; CAPACITY]),
            len: 0,
        }
    }
}

/// Ratios over one window.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThrottleRatio {
    /// Throttled periods / periods (0..=1).
    pub ratio: f64,
    /// Periods seen in the window.
    pub periods: u64,
    /// CPU used over the window, in cores.
    pub usage_cores: f64,
    /// Seconds the window actually covers.
    pub span_s: f64,
}

/// Readings older than this are dropped: the longest window asked for is
/// 5 minutes (`ward status`), plus one sample interval of slack.
const KEEP: Duration = Duration::from_secs(310);
/// Readings closer than this to the one before are merged into it (the newer
/// one wins), so a 100 ms `--watch-interval` keeps a reading a second.
const SPACING: Duration = Duration::from_secs(1);
/// Readings older than this (the alerts' window is 30 s, the exit
/// report's 60 s) are kept only [`FAR_SPACING`] apart: the 5-minute
/// window then starts up to 10 s plus one sample interval late, the
/// shorter ones within a second or one interval, as before.
const NEAR: Duration = Duration::from_secs(65);
/// The spacing of readings older than [`NEAR`].
const FAR_SPACING: Duration = Duration::from_secs(10);
/// The most readings kept: 66 within [`NEAR`] at [`SPACING`], 25 more to
/// [`KEEP`] at [`FAR_SPACING`], the newest pair, and room to spare.
const CAPACITY: usize = 96;

/// How much shorter than `window` a ratio's span may be and still cover
/// it, as far as the kept readings tell (at sample intervals of a second
/// or less): half a second within [`NEAR`], [`FAR_SPACING`] more past it.
pub fn span_slack(window: Duration) -> Duration {
    let half = Duration::from_millis(500);
    if window > NEAR {
        FAR_SPACING + half
    } else {
        half
    }
}

impl ThrottleWindow {
    /// Adds a reading; counters that went backwards (a new cgroup) restart
    /// the window.
    pub fn push(&mut self, r: ThrottleReading) {
        if let Some(last) = self.readings().last()
            && (r.periods < last.periods || r.throttled < last.throttled)
        {
            self.len = 0;
        }
        // The newest reading replaces the last one when that one is within
        // SPACING of the reading before it: windows stay exact at their
        // ends and, within NEAR, accurate to a second at their starts.
        let n = self.len;
        if n >= 2
            && self.readings[n - 1]
                .at
                .duration_since(self.readings[n - 2].at)
                < SPACING
        {
            self.len -= 1;
        }
        if self.len == CAPACITY {
            // Not reached with the spacing above; the oldest goes first.
            self.drop_front(1);
        }
        self.readings[self.len] = r;
        self.len += 1;
        let old = self
            .readings()
            .iter()
            .take_while(|f| r.at.duration_since(f.at) > KEEP)
            .count();
        self.drop_front(old);
        // Past NEAR, keep a reading only FAR_SPACING after the one kept
        // before it (the oldest always stays).
        let mut kept = 1;
        for i in 1..self.len {
            let x = self.readings[i];
            let far = r.at.duration_since(x.at) > NEAR;
            if far && x.at.duration_since(self.readings[kept - 1].at) < FAR_SPACING {
                continue;
            }
            self.readings[kept] = x;
            kept += 1;
        }
        self.len = kept;
    }

    /// The readings kept, oldest first.
    fn readings(&self) -> &[ThrottleReading] {
        &self.readings[..self.len]
    }

    /// Forgets the oldest `count` readings.
    fn drop_front(&mut self, count: usize) {
        if count > 0 {
            self.readings.copy_within(count..self.len, 0);
            self.len -= count;
        }
    }

    /// The ratio over (up to) the last `window`; `None` until two readings
    /// exist or when no period elapsed (no CFS quota, or idle).
    pub fn over(&self, window: Duration) -> Option<ThrottleRatio> {
        let last = self.readings().last()?;
        let first = self
            .readings()
            .iter()
            .find(|r| last.at.duration_since(r.at) <= window)
            .filter(|r| r.at < last.at)?;
        let periods = last.periods - first.periods;
        let span = last.at.duration_since(first.at).as_secs_f64();
        if periods == 0 || span <= 0.0 {
            return None;
        }
        Some(ThrottleRatio {
            ratio: (last.throttled - first.throttled) as f64 / periods as f64,
            periods,
            usage_cores: last.usage_usec.saturating_sub(first.usage_usec) as f64 / 1e6 / span,
            span_s: span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t0: Instant, s: u64, periods: u64, throttled: u64, usage_usec: u64) -> ThrottleReading {
        ThrottleReading {
            at: t0 + Duration::from_secs(s),
            periods,
            throttled,
            usage_usec,
        }
    }

    #[test]
    fn ratio_over_the_window_only() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        assert_eq!(w.over(Duration::from_secs(30)), None);
        // 0-30 s: idle-ish, no throttling; 30-60 s: throttled in 80% of periods.
        w.push(r(t0, 0, 0, 0, 0));
        w.push(r(t0, 30, 300, 0, 3_000_000));
        w.push(r(t0, 60, 600, 240, 6_000_000));
        let last30 = w.over(Duration::from_secs(30)).unwrap();
        assert!((last30.ratio - 0.8).abs() < 1e-9);
        assert!((last30.usage_cores - 0.1).abs() < 1e-9);
        let last60 = w.over(Duration::from_secs(60)).unwrap();
        assert!((last60.ratio - 0.4).abs() < 1e-9);
    }

    #[test]
    fn no_periods_means_no_ratio() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        w.push(r(t0, 0, 10, 1, 0));
        w.push(r(t0, 5, 10, 1, 0));
        assert_eq!(w.over(Duration::from_secs(30)), None);
    }

    #[test]
    fn counters_going_back_restart() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        w.push(r(t0, 0, 100, 50, 0));
        w.push(r(t0, 5, 10, 0, 0));
        assert_eq!(w.over(Duration::from_secs(30)), None);
    }

    #[test]
    fn old_readings_are_dropped() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        for s in 0..100 {
            w.push(r(t0, s * 5, s * 50, s * 10, 0));
        }
        assert!(w.len <= 63, "{}", w.len);
        assert!(w.over(Duration::from_secs(300)).is_some());
    }

    #[test]
    fn fast_sampling_keeps_readings_a_second_apart() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        // 100 ms samples for 10 minutes, throttled in every period.
        for i in 0..6000u64 {
            w.push(ThrottleReading {
                at: t0 + Duration::from_millis(i * 100),
                periods: i,
                throttled: i,
                usage_usec: i * 10_000,
            });
        }
        // 66 a second apart, then 25 ten seconds apart.
        assert!(w.len <= 93, "{}", w.len);
        let five = w.over(Duration::from_secs(300)).unwrap();
        assert!((five.span_s - 300.0).abs() <= 10.0, "{}", five.span_s);
        assert_eq!(five.ratio, 1.0);
        let last30 = w.over(Duration::from_secs(30)).unwrap();
        assert!((last30.span_s - 30.0).abs() <= 1.0, "{}", last30.span_s);
        assert!((last30.usage_cores - 0.1).abs() < 0.01);
        let last60 = w.over(Duration::from_secs(60)).unwrap();
        assert!((last60.span_s - 60.0).abs() <= 1.0, "{}", last60.span_s);
    }

    #[test]
    fn the_window_holds_no_more_memory_after_an_hour_than_at_its_start() {
        let t0 = Instant::now();
        let mut w = ThrottleWindow::default();
        let mut most = 0;
        // Every 100 ms for an hour, at odd offsets.
        for i in 0..36_000u64 {
            w.push(ThrottleReading {
                at: t0 + Duration::from_millis(i * 100 + i % 7),
                periods: i,
                throttled: i / 2,
                usage_usec: i * 10_000,
            });
            most = most.max(w.len);
        }
        assert!(most <= 93, "{most} readings at once");
        let five = w.over(Duration::from_secs(300)).unwrap();
        assert!((five.ratio - 0.5).abs() < 0.01, "{}", five.ratio);
        assert!(w.readings().is_sorted_by_key(|r| r.at));
    }
}
