//! ward's log: one event per line on stderr, human text or JSON.
//!
//! Owns the log level and format. It never writes to stdout (that belongs to the
//! child) and never closes fd 2. Each line goes out in a single `write`, so lines
//! from ward and the child do not interleave mid-line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How important an event is; `-v`/`-q` move the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// ward or the container is failing.
    Error = 0,
    /// Trouble is coming, or something was refused.
    Warning = 1,
    /// Lifecycle facts: child started, stop requested, child exited, summary.
    Info = 2,
    /// Details for debugging ward itself.
    Debug = 3,
}

impl Level {
    /// The lowercase name used in both formats.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    fn from_u8(n: u8) -> Level {
        match n {
            0 => Level::Error,
            1 => Level::Warning,
            2 => Level::Info,
            _ => Level::Debug,
        }
    }
}

/// The line format chosen with `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `ward: warning [memory_high] text`
    Human,
    /// One JSON object per line with `ts`, `level`, `event`, `msg` and fields.
    Json,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static FORMAT: AtomicU8 = AtomicU8::new(0);

/// Sets the threshold and format for the rest of the process.
pub fn configure(level: Level, format: Format) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    FORMAT.store(matches!(format, Format::Json) as u8, Ordering::Relaxed);
}

/// The format in force.
pub fn format() -> Format {
    if FORMAT.load(Ordering::Relaxed) == 1 {
        Format::Json
    } else {
        Format::Human
    }
}

/// True when events at `level` are written.
pub fn enabled(level: Level) -> bool {
    level <= Level::from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Writes one event: `key` is the stable event name, `msg` the human text,
/// `fields` extra machine-readable values (JSON format only).
pub fn event(level: Level, key: &str, msg: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let line = render(format(), level, key, msg, fields, SystemTime::now());
    write_stderr(line.as_bytes());
}

/// Writes raw bytes (a pre-rendered line) to stderr, ignoring failure: a log
/// that cannot be written must never take PID 1 down.
pub fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// Renders one line, newline included. Separate from I/O so it can be tested.
pub fn render(
    format: Format,
    level: Level,
    key: &str,
    msg: &str,
    fields: &[(&str, Value)],
    now: SystemTime,
) -> String {
    match format {
        Format::Human => {
            let mut line = String::with_capacity(msg.len() + key.len() + 24);
            line.push_str("ward: ");
            if level != Level::Info {
                line.push_str(level.as_str());
                line.push(' ');
            }
            let _ = write!(line, "[{key}] ");
            // One event, one line: a newline inside a message (an argv[0] with
            // a newline in it, say) must not split it.
            for ch in msg.chars() {
                line.push(if ch == '\n' || ch == '\r' { ' ' } else { ch });
            }
            line.push('\n');
            line
        }
        Format::Json => {
            let mut obj = serde_json::Map::with_capacity(fields.len() + 4);
            obj.insert("ts".into(), Value::String(rfc3339(now)));
            obj.insert("level".into(), Value::String(level.as_str().into()));
            obj.insert("event".into(), Value::String(key.into()));
            obj.insert("msg".into(), Value::String(msg.into()));
            for (name, value) in fields {
                obj.insert((*name).into(), value.clone());
            }
            let mut line = Value::Object(obj).to_string();
            line.push('\n');
            line
        }
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds, without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn human_line_has_prefix_level_and_key() {
        let line = render(
            Format::Human,
            Level::Warning,
            "memory_high",
            "at 92%",
            &[],
            UNIX_EPOCH,
        );
        assert_eq!(line, "ward: warning [memory_high] at 92%\n");
        let info = render(
            Format::Human,
            Level::Info,
            "child_exited",
            "done",
            &[],
            UNIX_EPOCH,
        );
        assert_eq!(info, "ward: [child_exited] done\n");
    }

    #[test]
    fn human_line_never_splits() {
        let line = render(Format::Human, Level::Info, "k", "a\nb\rc", &[], UNIX_EPOCH);
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn json_line_is_one_object_with_fields() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = render(
            Format::Json,
            Level::Info,
            "child_exited",
            "line\nbreak",
            &[("code", Value::from(3))],
            t,
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["event"], "child_exited");
        assert_eq!(v["level"], "info");
        assert_eq!(v["code"], 3);
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
