//! The outcome of a `ward check` probe and its words: [`Healthy`],
//! [`Failure`] (with the [`Phase`] a timeout names) and the [`Deadline`] every
//! step is bounded by. Plain types, shared by `probe` and `http`.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::target::Expect;
use crate::units::Fixed;

pub const MAX_HEAD: usize = 64 * 1024;

/// What the probe was doing; a timeout names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the connection.
    Connecting,
    /// Writing the request.
    Sending,
    /// Connected and sent; no status line yet.
    Waiting,
    /// Status line read; headers not complete yet.
    Headers,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connecting => "connecting",
            Phase::Sending => "sending the request",
            Phase::Waiting => "waiting for the response",
            Phase::Headers => "reading the response headers",
        })
    }
}

/// Why a probe failed. Its `Display` is the reason in the output line.
#[derive(Debug)]
pub enum Failure {
    /// The budget ran out in this phase.
    Timeout {
        /// The whole budget (`--timeout`).
        after: Duration,
        /// What the probe was doing.
        phase: Phase,
    },
    /// The connection could not be opened.
    Connect(io::Error),
    /// Reading or writing failed (other than by timeout).
    Io {
        /// What the probe was doing.
        phase: Phase,
        /// The error.
        error: io::Error,
    },
    /// The server closed the connection before the response head was complete.
    Closed(Phase),
    /// The response is not HTTP, or its status line or headers are malformed.
    Malformed(String),
    /// The status line and headers did not end within [`MAX_HEAD`] bytes.
    HeadTooLong,
    /// A well-formed response whose status is not an expected one.
    Status {
        /// The status code.
        code: u16,
        /// The reason phrase as sent.
        reason: String,
        /// From the start of the probe to the complete head.
        latency: Duration,
        /// `Some` when the user set `--expect`, to be named in the reason.
        expected: Option<Expect>,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout { after, phase } => {
                write!(f, "timeout after {} {phase}", budget(*after))
            }
            Failure::Connect(e) => f.write_str(&io_words(e)),
            Failure::Io { phase, error } => write!(f, "{} while {phase}", io_words(error)),
            Failure::Closed(Phase::Headers) => {
                f.write_str("connection closed in the middle of the response headers")
            }
            Failure::Closed(_) => f.write_str("connection closed without a response"),
            Failure::Malformed(why) => f.write_str(why),
            Failure::HeadTooLong => write!(
                f,
                "response status line and headers longer than {} KiB",
                MAX_HEAD / 1024
            ),
            Failure::Status {
                code,
                reason,
                latency,
                expected,
            } => {
                write!(f, "{}", status_words(*code, reason))?;
                write!(f, " in {}", latency_words(*latency))?;
                match expected {
                    Some(e) => write!(f, " (expected {e})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A passed probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// The status code and reason; `None` for a TCP connect.
    pub status: Option<(u16, String)>,
    /// From the start of the probe to the verdict.
    pub latency: Duration,
}

impl fmt::Display for Healthy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.status {
            Some((code, reason)) => write!(f, "{}", status_words(*code, reason))?,
            None => f.write_str("connected")?,
        }
        write!(f, " in {}", latency_words(self.latency))
    }
}

/// `200 OK`, or `204` when the server sent no reason phrase.
fn status_words(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        code.to_string()
    } else {
        format!("{code} {reason}")
    }
}

/// Latency as people read it: `0.3 ms`, `812.4 ms`, `1.27 s`.
pub fn latency_words(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", Fixed(d.as_secs_f64() * 1000.0, 1))
    } else {
        format!("{} s", Fixed(d.as_secs_f64(), 2))
    }
}

/// The budget as given: `2.0 s`, `500 ms`.
pub fn budget(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", Fixed(d.as_secs_f64(), 1))
    }
}

/// An io error in lower-case words without the `(os error N)` tail.
fn io_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        io::ErrorKind::BrokenPipe => "connection closed by peer (broken pipe)".into(),
        io::ErrorKind::NotFound => "no such socket".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let text = e.to_string();
            let text = match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            // strerror's words are ASCII (ward never calls setlocale), so
            // the ASCII rule suffices and keeps std's 12 KiB Unicode case
            // tables out of the binary.
            let mut text = text;
            if let Some(first) = text.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            text
        }
    }
}

/// The moment the budget ends, and the budget itself for the words.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the budget ends.
    pub at: Instant,
    /// The whole budget.
    pub budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from `start`.
    pub fn new(start: Instant, budget: Duration) -> Deadline {
        Deadline {
            at: start + budget,
            budget,
        }
    }

    /// What is left, or a timeout in `phase` when nothing is. Never zero,
    /// since std takes a zero socket timeout as an error.
    pub fn left(&self, phase: Phase) -> Result<Duration, Failure> {
        match self.at.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.timeout(phase)),
        }
    }

    /// The timeout failure for `phase`.
    pub fn timeout(&self, phase: Phase) -> Failure {
        Failure::Timeout {
            after: self.budget,
            phase,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_words_lower_the_first_letter_and_drop_the_os_error_tail() {
        let e = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        // The libc's own words (strerror), first letter lowered: musl's
        // for the shipped build, glibc's for the host target.
        let words = if cfg!(target_env = "musl") {
            "host is unreachable"
        } else {
            "no route to host"
        };
        assert_eq!(io_words(&e), words);
        // Only ASCII is lowered; a non-ASCII first letter is left as it is.
        assert_eq!(io_words(&io::Error::other("Élan")), "Élan");
    }
}
