//! Facts about the run, recorded by the event loop the moment they are known.
//!
//! Plain data: the event loop writes it, the exit report reads it. Nothing here
//! does I/O.

use std::time::{Instant, SystemTime};

use crate::exit::ChildEnd;

/// A stop request as ward received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    /// The signal received (before any rewrite).
    pub signal: i32,
    /// Sender pid in ward's namespace; 0 = from outside it.
    pub from_pid: i32,
    /// Who sent it, in words.
    pub from: String,
    /// When it arrived.
    pub received: Instant,
    /// Wall-clock time of arrival.
    pub received_wall: SystemTime,
    /// When a stop signal was forwarded to the child.
    pub forwarded: Option<Instant>,
}

/// A process ward reaped after the kernel or someone killed it with SIGKILL.
#[derive(Debug, Clone, PartialEq)]
pub struct KilledChild {
    /// Its pid.
    pub pid: i32,
    /// When ward reaped it.
    pub at: Instant,
}

/// Everything the loop learned during the run.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// When the child was started.
    pub started: Instant,
    /// Wall-clock start.
    pub started_wall: SystemTime,
    /// The main child's pid (0 before it started).
    pub main_pid: i32,
    /// argv[0]'s basename: never the arguments, which can hold secrets.
    pub command: String,
    /// How the main child ended.
    pub main_end: Option<ChildEnd>,
    /// When it ended.
    pub main_ended: Option<Instant>,
    /// exec failed with this errno.
    pub exec_errno: Option<i32>,
    /// The first stop request.
    pub stop: Option<StopRequest>,
    /// When ward sent SIGKILL because `--kill-after` ran out.
    pub killed_by_ward: Option<Instant>,
    /// Processes reaped other than the main child.
    pub reaped_orphans: u64,
    /// Recently reaped processes that died of SIGKILL (bounded).
    pub sigkilled: Vec<KilledChild>,
}

/// At most this many SIGKILLed children are remembered.
pub const MAX_SIGKILLED: usize = 16;

impl RunFacts {
    /// A record for a run starting now.
    pub fn new(command: String) -> RunFacts {
        RunFacts {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            main_pid: 0,
            command,
            main_end: None,
            main_ended: None,
            exec_errno: None,
            stop: None,
            killed_by_ward: None,
            reaped_orphans: 0,
            sigkilled: Vec::new(),
        }
    }

    /// Remembers a SIGKILLed child, dropping the oldest past the bound.
    pub fn note_sigkilled(&mut self, pid: i32, at: Instant) {
        if self.sigkilled.len() == MAX_SIGKILLED {
            self.sigkilled.remove(0);
        }
        self.sigkilled.push(KilledChild { pid, at });
    }
}

/// The basename of argv[0], for logs and reports.
pub fn command_name(argv0: &std::ffi::OsStr) -> String {
    let s = argv0.to_string_lossy();
    s.rsplit('/').next().unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_name_is_basename_only() {
        assert_eq!(command_name("/usr/bin/java".as_ref()), "java");
        assert_eq!(command_name("app".as_ref()), "app");
    }

    #[test]
    fn sigkilled_is_bounded() {
        let mut f = RunFacts::new("x".into());
        let now = Instant::now();
        for pid in 0..40 {
            f.note_sigkilled(pid, now);
        }
        assert_eq!(f.sigkilled.len(), MAX_SIGKILLED);
        assert_eq!(f.sigkilled[0].pid, 40 - MAX_SIGKILLED as i32);
    }
}
