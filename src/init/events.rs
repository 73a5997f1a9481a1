//! The words of the reaping thread's events: one function per event key, so
//! the loop only says *what* happened and the wording lives in one place.
//!
//! Owns no state and decides nothing; each function formats and hands one
//! line to the log (which never blocks).

use std::time::Duration;

use serde_json::json;

use crate::exit::ChildEnd;
use crate::log::{self, Level};
use crate::report::facts::{core_words, main_words};
use crate::signame::name as signal_name;
use crate::units::secs;

/// Who sent a signal, in words, from its `si_pid` (0: outside ward's namespace).
pub fn sender_words(from_pid: i32, name: Option<&str>, is_pid1: bool) -> String {
    match (from_pid, name) {
        (0, _) if is_pid1 => {
            "outside the container (the runtime or orchestrator, e.g. docker stop)".into()
        }
        (0, _) => "the kernel or outside ward's PID namespace".into(),
        (pid, name) => crate::procs::named(name, pid),
    }
}

/// `main_name_unread` (debug): the main process's `comm` could not be
/// opened (another namespace's `/proc`, no fd left); said once.
pub fn main_name_unread(e: &std::io::Error) {
    log::event(
        Level::Debug,
        "main_name_unread",
        &format!(
            "cannot open the main process's comm ({e}): it is named as started, or as the watch's census last saw it"
        ),
        &[],
    );
}

/// `stop_requested`: the first stop signal arrived.
pub fn stop_requested(signo: i32, from_pid: i32, from: &str) {
    log::event(
        Level::Info,
        "stop_requested",
        &format!("received {} from {from}", signal_name(signo)),
        &[
            ("signal", json!(signal_name(signo))),
            ("from_pid", json!(from_pid)),
            ("from", json!(from)),
        ],
    );
}

/// `stop_delayed`: a SIGTERM is held by `--stop-delay`; `int_too` when a
/// SIGINT (a stop signal) would end the hold as well.
pub fn stop_delayed(signo: i32, delay: Duration, int_too: bool) {
    log::event(
        Level::Info,
        "stop_delayed",
        &format!(
            "holding {} for {} (--stop-delay) before forwarding it; a second SIGTERM{} sends it at once",
            signal_name(signo),
            secs(delay),
            if int_too { ", or a SIGINT," } else { "" }
        ),
        &[("delay_s", json!(delay.as_secs_f64()))],
    );
}

/// `signal_dropped`: `--rewrite SIG:0`. `again`: one was said before; this
/// one is at debug level, so a process that signals ward in a loop cannot
/// flood the log.
pub fn signal_dropped(signo: i32, again: bool) {
    let level = if again { Level::Debug } else { Level::Info };
    if !log::enabled(level) {
        return;
    }
    let name = signal_name(signo);
    log::event(
        level,
        "signal_dropped",
        &format!(
            "{name} dropped (--rewrite {}:0){}",
            name.strip_prefix("SIG").unwrap_or(&name),
            if again {
                ""
            } else {
                "; later ones of it are logged at debug level"
            }
        ),
        &[("signal", json!(name))],
    );
}

/// `signal_ignored`: a signal after the main process ended.
/// `again`: one was said before; this one is at debug level, so a process
/// that signals ward in a loop cannot flood the log.
pub fn signal_ignored(signo: i32, cuts_grace: bool, again: bool) {
    let level = if again { Level::Debug } else { Level::Info };
    if !log::enabled(level) {
        return;
    }
    log::event(
        level,
        "signal_ignored",
        &format!(
            "{} received after the main process ended; not forwarded{}",
            signal_name(signo),
            if cuts_grace {
                ": a stop, so what is left gets SIGKILL now, not at the end of --grace"
            } else {
                ""
            }
        ),
        &[("signal", json!(signal_name(signo)))],
    );
}

/// `reaping_summary` (debug): how the reaping passes went, at exit. The
/// longest window bounds how long a zombie waited for ward during a burst.
pub fn reaping_summary(r: &super::reap::ReapingStats) {
    if log::enabled(Level::Debug) {
        let longest_us = r.longest_window.as_micros() as u64;
        log::event(
            Level::Debug,
            "reaping_summary",
            &format!(
                "reaped {} processes in {} passes ({} SIGCHLD wake-ups, {} burst windows, {} longer than 5 ms); longest window {longest_us} µs",
                r.reaped, r.passes, r.wakeups, r.windows, r.late_windows
            ),
            &[
                ("reaped", json!(r.reaped)),
                ("passes", json!(r.passes)),
                ("wakeups", json!(r.wakeups)),
                ("windows", json!(r.windows)),
                ("late_windows", json!(r.late_windows)),
                ("longest_window_us", json!(longest_us)),
            ],
        );
    }
}

/// `trim_failed` (debug): ward's code pages stay resident.
pub fn trim_failed(e: &std::io::Error) {
    log::event(
        Level::Debug,
        "trim_failed",
        &format!("cannot drop unused code pages from ward's RSS: {e}"),
        &[],
    );
}

/// `slice_refused` (debug, once): the kernel (or a seccomp filter) refused
/// the reaping thread's short scheduler slice for a burst of exits; ward
/// works the same, only later to wake in a fork storm.
pub fn slice_refused(e: &std::io::Error) {
    log::event(
        Level::Debug,
        "slice_refused",
        &format!("cannot ask for a short scheduler slice for the reaping thread: {e}"),
        &[],
    );
}

/// What a forward was about, for its log line.
pub struct Forward<'a> {
    /// The signal ward received.
    pub received: i32,
    /// The signal it sent (after `--rewrite`).
    pub sent: i32,
    /// `-g`: to the process group.
    pub group: bool,
    /// The main command's name.
    pub command: &'a str,
    /// The program it runs now, when it `exec`ed another.
    pub now: Option<&'a str>,
    /// Its pid.
    pub pid: i32,
    /// The first stop signal forwarded (logged at info level; the others,
    /// and every other signal, at debug).
    pub is_stop: bool,
}

/// `signal_forwarded` / `signal_forward_failed`. A failure is a warning: the
/// child may be unreachable, and nobody reads debug lines at 3 a.m.
pub fn forwarded(f: &Forward<'_>, result: &std::io::Result<()>) {
    let level = match (result, f.is_stop) {
        (Err(_), _) => Level::Warning,
        (Ok(()), true) => Level::Info,
        (Ok(()), false) => Level::Debug,
    };
    // The hot path: at the default level a plain forward logs nothing, so
    // nothing is formatted (the benchmark showed the formatting cost more
    // than the forwarding itself).
    if !log::enabled(level) {
        return;
    }
    let what = if f.received == f.sent {
        signal_name(f.sent)
    } else {
        format!(
            "{} (rewritten from {})",
            signal_name(f.sent),
            signal_name(f.received)
        )
    };
    let mut fields = vec![
        ("signal", json!(signal_name(f.sent))),
        ("pid", json!(f.pid)),
    ];
    if f.received != f.sent {
        fields.push(("received", json!(signal_name(f.received))));
    }
    if f.group {
        fields.push(("group", json!(true)));
    }
    match result {
        Ok(()) => log::event(
            level,
            "signal_forwarded",
            &format!(
                "forwarded {what} to {} {}",
                if f.group {
                    "the process group of"
                } else {
                    "main process"
                },
                main_words(f.command, f.now, f.pid)
            ),
            &fields,
        ),
        Err(e) => log::event(
            level,
            "signal_forward_failed",
            &format!(
                "could not forward {what} to {}: {e}",
                main_words(f.command, f.now, f.pid)
            ),
            &fields,
        ),
    }
}

/// `signal_fallback`: the pidfd could not send; kill(2) is used from now on.
pub fn signal_fallback(pid: i32, why: &std::io::Error) {
    log::event(
        Level::Warning,
        "signal_fallback",
        &format!(
            "pidfd_send_signal failed ({why}): signals go to pid {pid} with kill(2) from now on (safe: ward has not reaped it)"
        ),
        &[("pid", json!(pid)), ("errno", json!(why.raw_os_error()))],
    );
}

/// `signal_group_left`: with `-g`, the main process moved to another
/// process group, and signals go to it and to what is left of its old one.
pub fn group_left(named: &str, pid: i32) {
    log::event(
        Level::Warning,
        "signal_group_left",
        &format!(
            "{named} left its process group (setpgid): -g signals go to it and to what is left of that group, not to its new group"
        ),
        &[("pid", json!(pid))],
    );
}

/// `child_exited`: the main process ended.
pub fn child_exited(
    command: &str,
    named: &str,
    pid: i32,
    (end, core): (ChildEnd, bool),
    after_stop: Option<(Duration, i32)>,
) {
    let how = match end {
        ChildEnd::Exited(code) => format!("exited with code {code}"),
        ChildEnd::Signaled(sig) => {
            format!("was killed by {}{}", signal_name(sig), core_words(core))
        }
    };
    let after = match after_stop {
        Some((d, sig)) => format!(", {} after {} was received", secs(d), signal_name(sig)),
        None => String::new(),
    };
    let mut fields = vec![("pid", json!(pid)), ("command", json!(command))];
    match end {
        ChildEnd::Exited(c) => fields.push(("code", json!(c))),
        ChildEnd::Signaled(s) => fields.push(("signal", json!(signal_name(s)))),
    }
    if core {
        fields.push(("core_dumped", json!(true)));
    }
    if let Some((d, sig)) = after_stop {
        fields.push(("stop_signal", json!(signal_name(sig))));
        fields.push(("after_stop_s", json!(d.as_secs_f64())));
    }
    log::event(
        Level::Info,
        "child_exited",
        &format!("main process {named} {how}{after}"),
        &fields,
    );
}

/// `kill_after`: `--kill-after` ran out; ward sends SIGKILL.
pub fn kill_after(
    named: &str,
    pid: i32,
    after: Duration,
    stopped: Option<i32>,
    held: Option<Duration>,
) {
    let delayed = held_words(held);
    let stopped_words = if stopped.is_some() {
        " (stopped: it could not act on it)"
    } else {
        ""
    };
    log::event(
        Level::Warning,
        "kill_after",
        &format!(
            "main process {named} still running {} after the stop signal was forwarded{delayed}{stopped_words}: sending SIGKILL (--kill-after)",
            secs(after)
        ),
        &stop_fields(
            vec![
                ("pid", json!(pid)),
                ("kill_after_s", json!(after.as_secs_f64())),
            ],
            stopped,
            held,
        ),
    );
}

/// A stop warning's fields, and what its words say besides: the signal
/// that stopped the process, how long `--stop-delay` held the stop.
fn stop_fields(
    mut fields: Vec<(&'static str, serde_json::Value)>,
    stopped: Option<i32>,
    held: Option<Duration>,
) -> Vec<(&'static str, serde_json::Value)> {
    if let Some(s) = stopped {
        fields.push(("stopped_by", json!(signal_name(s))));
    }
    if let Some(d) = held {
        fields.push(("held_s", json!(d.as_secs_f64())));
    }
    fields
}

/// `still_running`: N seconds after a stop signal was forwarded; says so
/// when the process is stopped (SIGSTOP, SIGTSTP, ...), which is why.
/// How long `--stop-delay` held the stop, in a line that counts from its
/// forward.
fn held_words(held: Option<Duration>) -> String {
    held.map(|d| format!(", which --stop-delay held {} after it came", secs(d)))
        .unwrap_or_default()
}

pub fn still_running(
    named: &str,
    pid: i32,
    after_s: u32,
    signo: i32,
    stopped: Option<i32>,
    held: Option<Duration>,
) {
    let sent = match held {
        Some(_) => format!("{} was forwarded{}", signal_name(signo), held_words(held)),
        None => signal_name(signo).to_string(),
    };
    let why = stopped
        .map(|s| {
            format!(
                ": it is stopped by {} and acts on no signal but SIGKILL until it gets SIGCONT (ward forwards one: docker kill --signal CONT)",
                signal_name(s)
            )
        })
        .unwrap_or_default();
    log::event(
        Level::Warning,
        "still_running",
        &format!("main process {named} still running {after_s} s after {sent}{why}"),
        &stop_fields(
            vec![
                ("after_s", json!(after_s)),
                ("pid", json!(pid)),
                ("signal", json!(signal_name(signo))),
            ],
            stopped,
            held,
        ),
    );
}

/// `shutdown_stuck`: processes survive SIGKILL; ward exits anyway.
pub fn shutdown_stuck(waited: Duration) {
    log::event(
        Level::Error,
        "shutdown_stuck",
        &format!(
            "processes still present {} after SIGKILL (uninterruptible sleep?); exiting anyway",
            secs(waited)
        ),
        &[],
    );
}

/// `watch_lost`: the watch thread stopped answering; ward carries on without it.
pub fn watch_lost(what: &str) {
    log::event(
        Level::Warning,
        "watch_lost",
        &format!("the watch thread {what}"),
        &[],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_in_words() {
        assert!(sender_words(0, None, true).contains("outside the container"));
        assert!(sender_words(0, None, false).contains("outside ward's PID namespace"));
        assert_eq!(sender_words(42, Some("sh"), true), "sh (pid 42)");
        assert_eq!(sender_words(42, None, true), "pid 42");
    }
}
