//! How big each measurement is in short and full mode, and the context every
//! benchmark gets (inits, workload, /proc).
//!
//! Owns the sizes; the benchmarks own how they measure.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::inits::Init;
use crate::procfs::Proc;

/// Short (CI: keeps the harness from rotting) or full (the published table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A few minutes at most; sizes scaled down.
    Short,
    /// The sizes the issue asks for.
    Full,
}

/// Sizes and repetitions.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which mode.
    pub mode: Mode,
    /// Rounds of the orphan, signal and stop benchmarks (every init once per round).
    pub rounds: usize,
    /// Orphans per storm.
    pub orphans: u64,
    /// Orphans reaped before the second memory reading.
    pub memory_reaps: u64,
    /// In this many storms, [`Plan::memory_settle`] apart: what an init
    /// keeps from one burst shows after the next.
    pub memory_storms: u64,
    /// Idle time before the first memory reading (ward's default watch
    /// interval is 5 s: let at least one sample happen).
    pub memory_settle: Duration,
    /// Signals per latency run.
    pub signals: usize,
    /// Start-up runs per init.
    pub startup_runs: usize,
    /// Traced start-up runs per init, after the timed ones.
    pub startup_traced_runs: usize,
    /// Process counts for the watch cost.
    pub watch_sizes: Vec<u64>,
    /// Watch interval for the watch cost.
    pub watch_interval: Duration,
    /// Intervals measured per watch-cost run.
    pub watch_samples: u32,
    /// Watch-cost rounds per size.
    pub watch_rounds: usize,
    /// Idle watching at the default interval.
    pub idle: Duration,
    /// Stop-latency rounds.
    pub stop_rounds: usize,
    /// Stragglers in the stop benchmark and how long they take after SIGTERM.
    pub stragglers: u32,
    /// Milliseconds a straggler takes to exit after SIGTERM.
    pub straggler_ms: u64,
    /// Processes held while signals are timed during ward's census.
    pub census_procs: u64,
    /// How long signals are sent to each init in that benchmark.
    pub census_duration: Duration,
    /// The pause between one echo and the next signal.
    pub census_pace: Duration,
    /// Rounds of that benchmark.
    pub census_rounds: usize,
}

impl Plan {
    /// The sizes for `mode`.
    pub fn new(mode: Mode) -> Plan {
        match mode {
            Mode::Full => Plan {
                mode,
                rounds: 5,
                orphans: 20_000,
                memory_reaps: 100_000,
                memory_storms: 5,
                memory_settle: Duration::from_secs(6),
                signals: 1_000,
                startup_runs: 300,
                startup_traced_runs: 100,
                watch_sizes: vec![10, 1_000, 4_000],
                watch_interval: Duration::from_millis(100),
                watch_samples: 100,
                watch_rounds: 2,
                idle: Duration::from_secs(600),
                stop_rounds: 5,
                stragglers: 10,
                straggler_ms: 100,
                census_procs: 4_000,
                census_duration: Duration::from_secs(60),
                census_pace: Duration::from_millis(2),
                census_rounds: 1,
            },
            Mode::Short => Plan {
                mode,
                rounds: 3,
                orphans: 3_000,
                memory_reaps: 10_000,
                memory_storms: 2,
                memory_settle: Duration::from_secs(6),
                signals: 300,
                startup_runs: 30,
                startup_traced_runs: 10,
                watch_sizes: vec![10, 1_000, 4_000],
                watch_interval: Duration::from_millis(100),
                watch_samples: 30,
                watch_rounds: 1,
                idle: Duration::from_secs(30),
                stop_rounds: 3,
                stragglers: 10,
                straggler_ms: 100,
                census_procs: 1_000,
                census_duration: Duration::from_secs(8),
                census_pace: Duration::from_millis(4),
                census_rounds: 1,
            },
        }
    }
}

/// What every benchmark gets.
pub struct Ctx {
    /// Sizes.
    pub plan: Plan,
    /// ward first, then the peers found.
    pub inits: Vec<Init>,
    /// `ward-workload`.
    pub workload: PathBuf,
    /// The host's /proc.
    pub proc: Proc,
}

impl Ctx {
    /// The inits in the order for `round`: rotated, so no init always runs
    /// first on a machine whose load drifts (each is first in one round of
    /// every `inits.len()`; the neighbours stay the same).
    pub fn rotation(&self, round: usize) -> Vec<&Init> {
        let n = self.inits.len();
        (0..n).map(|i| &self.inits[(i + round) % n]).collect()
    }

    /// ward.
    pub fn ward(&self) -> &Init {
        &self.inits[0]
    }

    /// `ward-workload ARGS...` as a command.
    pub fn workload(&self, args: &[&str]) -> Vec<OsString> {
        let mut v = vec![self.workload.clone().into_os_string()];
        v.extend(args.iter().map(OsString::from));
        v
    }

    /// `sh -c SCRIPT` where `{w}` in `script` stands for the workload path.
    pub fn shell(&self, script: &str) -> Vec<OsString> {
        let w = shell_quote(&self.workload.to_string_lossy());
        vec!["sh".into(), "-c".into(), script.replace("{w}", &w).into()]
    }
}

/// `s` single-quoted for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Progress on stderr (stdout gets the report).
pub fn progress(msg: &str) {
    eprintln!("ward-bench: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
