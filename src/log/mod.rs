//! ward's log: one event per line on stderr, human text or JSON, and never a
//! wait on whoever reads it.
//!
//! Owns the log level and format and the API the rest of ward calls. It never
//! writes to stdout (that belongs to the child) and never touches fd 2's
//! flags or closes it.
//!
//! - `render.rs`: one event to one line of text (pure).
//! - `queue.rs`: the bounded queue, drop counting, whole-line chunks (pure).
//! - `sink.rs`: the non-blocking way to stderr and the shared queue.
//! - `relay.rs`: the writer thread for a stderr that is a file.
//!
//! A stderr nobody reads (a full pipe, a stalled log driver, a terminal paused
//! with Ctrl-S) must never stop PID 1 from reaping or forwarding signals: a
//! line stderr does not take at once waits in a 64 KiB queue; lines beyond that
//! are dropped and counted, and the count is written as a `log_dropped`
//! warning where they went missing once stderr takes lines again.
//!
//! For the event loop: while [`pending_fd`] is `Some(fd)`, poll `fd` for
//! POLLOUT and call [`flush_ready`] when it fires; call [`flush`] with a short
//! deadline before exiting.

mod queue;
mod relay;
mod render;
mod sink;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

pub use render::{push_escaped, render, rfc3339};
pub use sink::{Backlog, FULL_AFTER, QUEUE_BYTES, backlog};

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

/// `thread_start_slow`: ward's first thread had not blocked its signals
/// [`crate::sigmask::BLOCKED_WAIT`] after it was started, and ward went on
/// without it (see [`crate::sigmask::spawn_blocked`]).
pub fn thread_start_slow(thread: &str) {
    event(
        Level::Debug,
        "thread_start_slow",
        &format!(
            "the {thread} thread, the first of ward's, had not blocked its signals {} s after it was started; ward went on without it: a SIGRTMIN (34) that reaches that thread first is lost",
            crate::sigmask::BLOCKED_WAIT.as_secs()
        ),
        &[],
    );
}

/// Writes one event: `key` is the stable event name, `msg` the human text,
/// `fields` extra machine-readable values (JSON format only). Never waits:
/// the line is queued and one non-blocking write is tried; it is dropped (and
/// counted) only when the queue is full.
pub fn event(level: Level, key: &str, msg: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let line = render(format(), level, key, msg, fields, SystemTime::now());
    sink::push(line.as_bytes());
}

/// Writes the exit report's event: whatever the level (`-q` and
/// `--log-level error` turn down the noise, not the one line that says why
/// the container ended), and on a stderr stalled with a full queue in
/// place of the latest lines queued before it, which are counted as
/// dropped.
pub fn report_event(level: Level, key: &str, msg: &str, fields: &[(&str, Value)]) {
    let line = render(format(), level, key, msg, fields, SystemTime::now());
    sink::push_must(line.as_bytes());
}

/// Writes `line` as it is, without ward's prefix or JSON envelope, through
/// the same non-blocking queue as every event: for lines another program
/// parses whole, such as CloudWatch's EMF objects. Written whatever the
/// level, since it was asked for explicitly. A newline inside would split
/// the line in two halves that parse as nothing, so CR and LF become spaces
/// (a JSON serializer never emits them raw; this only guards the rule).
pub fn raw_line(line: &str) {
    let mut out = String::with_capacity(line.len() + 1);
    out.extend(
        line.chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
    out.push('\n');
    sink::push(out.as_bytes());
}

/// Sets up the non-blocking way to stderr and allocates the queue. Call once
/// at start, before the first line (the first line would do it otherwise).
pub fn init_sink() {
    sink::init();
}

/// Makes the calling thread, the reaping thread, one that never waits for
/// the log's lock: its lines while another thread holds it are kept back
/// (bounded) and written at its next chance. Call once, on that thread.
pub fn never_wait_here() {
    sink::never_wait_here();
}

/// When the calling thread keeps lines back: how soon its loop should come
/// round to hand them over.
pub fn retry_in() -> Option<Duration> {
    sink::held_back().then_some(sink::HELD_BACK_RETRY)
}

/// Gives a stderr that is a file its own writer thread, so that a
/// filesystem that stops taking writes holds that thread only. Call once
/// the signal mask is set and the few fds ward cannot do without are open:
/// the thread and its pipe come after them, and their lack is no failure.
pub fn start_file_writer() {
    sink::start_file_writer();
}

/// The addresses of the log queue's room that only a stalled stderr fills
/// (see `trim::keep_heap_resident`, which leaves it as it is).
pub fn queue_spare() -> std::ops::Range<usize> {
    sink::queue_spare()
}

/// The fd to poll for POLLOUT while lines wait to be written; `None` when
/// nothing waits (or stderr failed for good: polling it would spin).
pub fn pending_fd() -> Option<RawFd> {
    sink::pending_fd()
}

/// Writes what stderr takes now, without waiting. For the event loop when
/// [`pending_fd`] polls writable.
pub fn flush_ready() {
    sink::flush_ready();
}

/// At exit: writes until nothing waits or `deadline` has passed, then
/// returns, so ward exits with the right code even if stderr never drains.
pub fn flush(deadline: Duration) {
    sink::flush(deadline);
}

/// The `log_dropped` line: how many lines were lost to a stderr that was not
/// being read. Always written, whatever the level: the lost lines were not
/// filtered out, they were wanted.
fn dropped_notice(count: u64, failed: bool) -> String {
    let msg = format!(
        "{count} log {} {}",
        if count == 1 { "line" } else { "lines" },
        if failed {
            "lost: writing to stderr failed (a closed pipe, a full disk)"
        } else {
            "dropped: stderr was not being read"
        }
    );
    render(
        format(),
        Level::Warning,
        "log_dropped",
        &msg,
        &[("dropped", json!(count)), ("write_failed", json!(failed))],
        SystemTime::now(),
    )
}

/// The `log_dropped` line for lines the reaping thread held back and could
/// not keep (past its bound) while another of ward's threads held the log:
/// stderr itself was fine.
fn held_back_notice(count: u64) -> String {
    let msg = format!(
        "{count} log {} dropped: the log was held by another of ward's threads",
        if count == 1 { "line" } else { "lines" },
    );
    render(
        format(),
        Level::Warning,
        "log_dropped",
        &msg,
        &[
            ("dropped", json!(count)),
            ("write_failed", json!(false)),
            ("held", json!(true)),
        ],
        SystemTime::now(),
    )
}

/// The line ahead of what the reaping thread writes past the log's lock at
/// exit: what was queued before it is another thread's to write, and may
/// never come.
fn lock_held_notice() -> String {
    render(
        format(),
        Level::Warning,
        "log_held",
        "the log was held by another of ward's threads at exit: lines queued before this one may be missing",
        &[],
        SystemTime::now(),
    )
}

/// How many lines `line` (one of ward's, newline excluded) stands for when
/// it is lost: a `log_dropped` notice its count, which would otherwise be
/// lost with it, and any other line one. For the file writer, which sees
/// lines only as bytes.
fn lines_stood_for(line: &[u8]) -> u64 {
    let count = line
        .strip_prefix(b"ward: warning [log_dropped] ".as_slice())
        .or_else(|| line.strip_prefix(b"{\"dropped\":".as_slice()))
        .and_then(|rest| {
            let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&rest[..n]).ok()?.parse().ok()
        });
    count.unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_notice_stands_for_its_count_in_both_formats() {
        for format in [Format::Human, Format::Json] {
            let line = render(
                format,
                Level::Warning,
                "log_dropped",
                "44 log lines lost: writing to stderr failed",
                &[("dropped", json!(44)), ("write_failed", json!(true))],
                std::time::UNIX_EPOCH,
            );
            assert_eq!(lines_stood_for(line.trim_end().as_bytes()), 44, "{line}");
        }
        let other = render(
            Format::Human,
            Level::Info,
            "child_exited",
            "[log_dropped] 44",
            &[],
            std::time::UNIX_EPOCH,
        );
        assert_eq!(lines_stood_for(other.trim_end().as_bytes()), 1, "{other}");
        assert_eq!(lines_stood_for(b"ward: x"), 1);
    }

    #[test]
    fn the_dropped_notice_in_both_formats() {
        // Format is global; render directly rather than flip it under other tests.
        let human = render(
            Format::Human,
            Level::Warning,
            "log_dropped",
            "3 log lines dropped: stderr was not being read",
            &[("dropped", json!(3))],
            std::time::UNIX_EPOCH,
        );
        assert_eq!(
            human,
            "ward: warning [log_dropped] 3 log lines dropped: stderr was not being read\n"
        );
        let line = dropped_notice(1, false);
        assert!(line.ends_with('\n'));
        assert!(
            line.contains("1 log line dropped: stderr was not being read"),
            "{line}"
        );
    }
}
