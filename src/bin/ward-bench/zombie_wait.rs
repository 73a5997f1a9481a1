//! How long a zombie waited for its init during an orphan storm, two ways:
//! ward's own bound, parsed from its `reaping_summary` line, and a bound any
//! init gets from the host's samples of the container's /proc.
//!
//! Pure: parses text and folds samples. Reads no file and starts nothing
//! (`orphans.rs` runs the storm and hands the text and samples in).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

/// The bar (issue 13): no zombie waits longer than this for ward.
pub const LATE: Duration = Duration::from_millis(5);

/// ward's own account of its reaping, from the `reaping_summary` event it
/// logs at exit (debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WardReaping {
    /// Processes reaped other than the main child.
    pub reaped: u64,
    /// Reaping passes at the end of a burst's window.
    pub windows: u64,
    /// Windows longer than 5 ms.
    pub late_windows: u64,
    /// The longest window: a zombie reaped at a window's end exited after
    /// the pass before, so this bounds how long it waited.
    pub longest_window: Duration,
}

/// One line of ward's stderr in `--log-format json`, if it is the
/// `reaping_summary` event with every field this needs. The JSON form is
/// read rather than the human text: its field names are the stable part.
pub fn parse_reaping_summary(line: &str) -> Option<WardReaping> {
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    if v.get("event")?.as_str()? != "reaping_summary" {
        return None;
    }
    let n = |key: &str| v.get(key).and_then(Value::as_u64);
    Some(WardReaping {
        reaped: n("reaped")?,
        windows: n("windows")?,
        late_windows: n("late_windows")?,
        longest_window: Duration::from_micros(n("longest_window_us")?),
    })
}

/// The last `reaping_summary` in a whole stderr capture.
pub fn find_reaping_summary(log: &str) -> Option<WardReaping> {
    log.lines().rev().find_map(parse_reaping_summary)
}

/// One process, named so that pid reuse cannot pass for the same zombie:
/// its pid in the container and its start time in ticks.
pub type ProcessId = (i32, Option<u64>);

/// Folds the host's samples of the container into how long zombies of PID 1
/// were seen waiting.
///
/// A zombie whose parent is PID 1 is waiting for the init and for nothing
/// else (before its own parent exits it is that parent's, not the init's).
/// Seen so in a sample that ended at `a` and again in a later one that
/// started at `b`, it existed, unreaped, for at least `b - a`. That is a
/// lower bound, never an estimate: a zombie reaped within one sampling
/// interval is never seen twice and counts as 0, and the time before the
/// first sighting and after the last is not counted. A zombie cannot stop
/// being one, so a sample that misses it means it was reaped.
#[derive(Debug, Default)]
pub struct ZombieSightings {
    /// Zombies of PID 1 in the last sample: when that zombie's first
    /// sighting ended, and whether it was already counted as late.
    open: HashMap<ProcessId, (Duration, bool)>,
    /// The longest any zombie was seen waiting.
    pub longest: Duration,
    /// Zombies seen waiting longer than [`LATE`].
    pub late: u64,
    /// Samples folded in.
    pub samples: u64,
}

impl ZombieSightings {
    /// One sample, read from `started` to `ended` (both measured from the
    /// same origin), that found `zombies` (zombies whose parent is PID 1).
    pub fn observe(&mut self, started: Duration, ended: Duration, zombies: &[ProcessId]) {
        self.samples += 1;
        let mut now = HashMap::with_capacity(zombies.len());
        for id in zombies {
            let (first_ended, mut counted) = self.open.get(id).copied().unwrap_or((ended, false));
            let seen_for = started.saturating_sub(first_ended);
            self.longest = self.longest.max(seen_for);
            if seen_for > LATE && !counted {
                self.late += 1;
                counted = true;
            }
            now.insert(*id, (first_ended, counted));
        }
        self.open = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as ward 0.1.0 writes them with `--log-level debug --log-format json`.
    const SUMMARY: &str = r#"{"event":"reaping_summary","late_windows":9,"level":"debug","longest_window_us":21104,"msg":"reaped 20000 processes in 7700 passes (5100 SIGCHLD wake-ups, 7600 burst windows, 9 longer than 5 ms); longest window 21104 µs","passes":7700,"reaped":20000,"ts":"2026-12-01T14:43:52.101Z","wakeups":5100,"windows":7600}"#;
    const IDLE: &str = r#"{"event":"reaping_summary","late_windows":0,"level":"debug","longest_window_us":0,"msg":"reaped 0 processes in 2 passes (1 SIGCHLD wake-ups, 0 burst windows, 0 longer than 5 ms); longest window 0 µs","passes":2,"reaped":0,"ts":"2026-12-01T14:43:52.101Z","wakeups":1,"windows":0}"#;
    const EXITED: &str = r#"{"code":0,"command":"sh","event":"child_exited","level":"info","msg":"main process sh (pid 4) exited with code 0","pid":4,"ts":"2026-12-01T14:43:52.100Z"}"#;

    #[test]
    fn parses_the_summary_line() {
        assert_eq!(
            parse_reaping_summary(SUMMARY),
            Some(WardReaping {
                reaped: 20000,
                windows: 7600,
                late_windows: 9,
                longest_window: Duration::from_micros(21104),
            })
        );
        assert_eq!(
            parse_reaping_summary(IDLE).map(|r| (r.windows, r.longest_window)),
            Some((0, Duration::ZERO))
        );
    }

    #[test]
    fn other_lines_and_broken_ones_are_not_a_summary() {
        assert_eq!(parse_reaping_summary(EXITED), None);
        assert_eq!(parse_reaping_summary(""), None);
        // The human form is for people; the bench asks for JSON.
        assert_eq!(
            parse_reaping_summary(
                "ward: debug [reaping_summary] reaped 0 processes in 2 passes (1 SIGCHLD wake-ups, 0 burst windows, 0 longer than 5 ms); longest window 0 µs"
            ),
            None
        );
        // A field missing (an older ward) or of the wrong type: no figure
        // rather than a zero.
        let without = SUMMARY.replace(r#""late_windows":9,"#, "");
        assert_eq!(parse_reaping_summary(&without), None);
        let negative = SUMMARY.replace(r#""longest_window_us":21104"#, r#""longest_window_us":-1"#);
        assert_eq!(parse_reaping_summary(&negative), None);
        // Cut short (the log queue was full when ward exited).
        assert_eq!(parse_reaping_summary(&SUMMARY[..80]), None);
    }

    #[test]
    fn finds_the_summary_among_other_lines() {
        let log = format!("{EXITED}\n{SUMMARY}\n{{\"event\":\"exit_report\"}}\n");
        assert_eq!(find_reaping_summary(&log).map(|r| r.late_windows), Some(9));
        assert_eq!(find_reaping_summary(EXITED), None);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_zombie_seen_in_one_sample_counts_as_nothing() {
        let mut s = ZombieSightings::default();
        s.observe(ms(0), ms(1), &[(7, Some(100))]);
        s.observe(ms(2), ms(3), &[]);
        assert_eq!(s.longest, Duration::ZERO);
        assert_eq!((s.late, s.samples), (0, 2));
    }

    #[test]
    fn waits_count_from_the_end_of_the_first_sighting_to_the_start_of_the_last() {
        let mut s = ZombieSightings::default();
        s.observe(ms(0), ms(1), &[(7, Some(100))]);
        s.observe(ms(3), ms(4), &[(7, Some(100)), (8, Some(100))]);
        s.observe(ms(9), ms(10), &[(7, Some(100)), (8, Some(100))]);
        // 7: seen from 1 ms to 9 ms; 8: from 4 ms to 9 ms, not over 5 ms.
        assert_eq!(s.longest, ms(8));
        assert_eq!(s.late, 1);
        // Still there later: counted once.
        s.observe(ms(20), ms(21), &[(7, Some(100))]);
        assert_eq!(s.longest, ms(19));
        assert_eq!(s.late, 1);
    }

    #[test]
    fn a_reused_pid_is_a_new_zombie() {
        let mut s = ZombieSightings::default();
        s.observe(ms(0), ms(1), &[(7, Some(100))]);
        // Same pid, another process (another start time).
        s.observe(ms(9), ms(10), &[(7, Some(101))]);
        assert_eq!(s.longest, Duration::ZERO);
        // Missed by one sample: it was reaped; the same pid later is new.
        s.observe(ms(11), ms(12), &[]);
        s.observe(ms(13), ms(14), &[(7, Some(101))]);
        s.observe(ms(15), ms(16), &[(7, Some(101))]);
        assert_eq!(s.longest, ms(1));
        assert_eq!(s.late, 0);
    }
}
