//! Reading ward's log lines in tests: the lines of one event key (human
//! format), exactly one of them, their order, the numbers in them, and the
//! JSON events and exit report of `--log-format json`. Pure text in, values
//! out; it starts nothing and reads no files.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Outcome;
use super::docker::Container;

/// Where a failed expectation reports: it panics with `msg` plus everything
/// the run left (output, or a container's logs and state).
pub trait Evidence {
    /// Fails the test with `msg` and the evidence.
    fn fail(&self, msg: &str) -> !;
}

impl Evidence for Outcome {
    fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.dump());
    }
}

impl Evidence for Container<'_> {
    fn fail(&self, msg: &str) -> ! {
        Container::fail(self, msg)
    }
}

/// ward's lines for event `key` in `text` (human format: `ward: [key] `,
/// `ward: warning [key] ` or `ward: error [key] `), in order.
pub fn events<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let heads = ["", "warning ", "error "].map(|level| format!("ward: {level}[{key}] "));
    text.lines()
        .filter(|l| heads.iter().any(|h| l.starts_with(h.as_str())))
        .collect()
}

/// The one line for `key`; fails with the evidence unless there is exactly one.
pub fn one<'a>(on: &impl Evidence, text: &'a str, key: &str) -> &'a str {
    let lines = events(text, key);
    if lines.len() != 1 {
        on.fail(&format!("expected one [{key}] line"));
    }
    lines[0]
}

/// Fails with the evidence unless `line` contains `want`.
pub fn has(on: &impl Evidence, line: &str, want: &str) {
    if !line.contains(want) {
        on.fail(&format!("expected {want:?} in:\n{line}"));
    }
}

/// Index (in `text`) of the first line for `key`, for "this came after that".
pub fn position(text: &str, key: &str) -> Option<usize> {
    let first = *events(text, key).first()?;
    text.lines().position(|l| l == first)
}

impl Outcome {
    /// ward's stderr lines for event `key`, in order.
    pub fn events(&self, key: &str) -> Vec<&str> {
        events(&self.stderr, key)
    }

    /// The one stderr line for `key`; fails with the output unless exactly one.
    pub fn one(&self, key: &str) -> &str {
        one(self, &self.stderr, key)
    }

    /// Fails with the output unless `line` contains `want`.
    pub fn has(&self, line: &str, want: &str) {
        has(self, line, want)
    }

    /// Index of the first stderr line for `key`; fails when there is none.
    pub fn position(&self, key: &str) -> usize {
        position(&self.stderr, key).unwrap_or_else(|| self.fail(&format!("no [{key}] line")))
    }
}

/// The number right before `suffix` (e.g. "93.1" in "93.1% of"); a unit
/// between the number and the suffix belongs in `suffix`.
pub fn number_before(line: &str, suffix: &str) -> f64 {
    let end = line
        .find(suffix)
        .unwrap_or_else(|| panic!("no {suffix:?} in {line}"));
    let head = &line[..end];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    head[start..]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {suffix:?} in {line}"))
}

/// The number right after `prefix`.
pub fn number_after(line: &str, prefix: &str) -> f64 {
    let start = line
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {line}"))
        + prefix.len();
    let tail = &line[start..];
    let end = tail
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(tail.len());
    tail[..end]
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in {line}"))
}

/// `docker run` options that make ward log one JSON object per line.
pub const JSON_LOGS: &[&str] = &["-e", "WARD_LOG_FORMAT=json"];

/// Every JSON line in `text` (the app's own lines are skipped).
pub fn json_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The JSON events named `event`.
pub fn json_named(text: &str, event: &str) -> Vec<Value> {
    json_events(text)
        .into_iter()
        .filter(|v| v["event"] == event)
        .collect()
}

/// The `exit_report` JSON lines of an exited container, with its logs. Logs
/// can lag the exit by a moment, so it looks again for up to two seconds
/// while there is none.
pub fn exit_reports(ctr: &Container) -> (Vec<Value>, String) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let logs = ctr.logs();
        let reports = json_named(&logs, "exit_report");
        if !reports.is_empty() || Instant::now() >= deadline {
            return (reports, logs);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The one `exit_report` line of an exited container; fails with its logs
/// unless there is exactly one.
pub fn exit_report(ctr: &Container) -> Value {
    let (reports, _) = exit_reports(ctr);
    match <[Value; 1]>::try_from(reports) {
        Ok([report]) => report,
        Err(all) => ctr.fail(&format!(
            "expected exactly one exit_report line, found {}",
            all.len()
        )),
    }
}
