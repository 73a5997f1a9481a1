//! Reaping: `waitpid(-1, WNOHANG)` until nothing has exited, after every
//! SIGCHLD (several SIGCHLDs may have merged into one).
//!
//! Owns nothing but the wait loop; what a reaped pid means is the caller's.

use std::time::Duration;

use crate::exit::ChildEnd;

/// How the reaping passes went: counts for the debug summary at exit.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReapingStats {
    /// Wake-ups on a SIGCHLD.
    pub wakeups: u64,
    /// Reaping passes (each ends with a `waitpid` that found nothing).
    pub passes: u64,
    /// Passes at the end of a burst's window that reaped something.
    pub windows: u64,
    /// Processes reaped other than the main child.
    pub reaped: u64,
    /// The longest window, from the end of the pass before to the end of
    /// the window's own pass: a bound on how long a zombie reaped in a
    /// burst waited for ward (it exited after the pass before).
    pub longest_window: Duration,
    /// Windows longer than `LATE_WINDOW` (in `reaper`) (ward was not scheduled in time).
    pub late_windows: u64,
}

/// Whether any child is left after a reaping pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// Some children still run.
    Children,
    /// ECHILD: no child at all (as PID 1: nothing left in the container).
    NoChildren,
}

/// Decodes a raw wait status.
pub fn decode(status: libc::c_int) -> Option<ChildEnd> {
    if libc::WIFEXITED(status) {
        Some(ChildEnd::Exited(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ChildEnd::Signaled(libc::WTERMSIG(status)))
    } else {
        None
    }
}

/// Whether a raw wait status says the kernel wrote a core dump.
pub fn core_dumped(status: libc::c_int) -> bool {
    libc::WIFSIGNALED(status) && libc::WCOREDUMP(status)
}

/// Reaps every child that has exited, calling `on_reaped` for each with
/// how it ended and whether it dumped core.
pub fn reap_all(mut on_reaped: impl FnMut(i32, ChildEnd, bool)) -> Remaining {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            if let Some(end) = decode(status) {
                on_reaped(pid, end, core_dumped(status));
            }
            continue;
        }
        if pid == 0 {
            return Remaining::Children;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // ECHILD, or anything else: no child can be waited for.
            _ => return Remaining::NoChildren,
        }
    }
}

/// The kernel's report on `pid` for the events `flags` asks (`WSTOPPED`,
/// `WEXITED`), from one `waitid` that neither blocks nor reaps
/// (`WNOHANG | WNOWAIT`); `None` when there is none.
fn peek(pid: i32, flags: libc::c_int) -> Option<libc::siginfo_t> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with a valid siginfo pointer; WNOHANG never blocks and
    // WNOWAIT leaves the child as it was.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            flags | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: the kernel filled the SIGCHLD fields, or left them zero.
    (rc == 0 && unsafe { info.si_pid() } == pid).then_some(info)
}

/// The signal that stopped `pid` (SIGSTOP, SIGTSTP, ...) when it is in a
/// job-control stop now, without reaping it or taking the stop's report.
/// A stopped process acts on no signal but SIGKILL until it gets SIGCONT;
/// a traced one is not "stopped" here.
pub fn stopped_by(pid: i32) -> Option<i32> {
    let info = peek(pid, libc::WSTOPPED)?;
    // SAFETY: a CLD_STOPPED report carries the stopping signal as status.
    (info.si_code == libc::CLD_STOPPED).then(|| unsafe { info.si_status() })
}

/// True when `pid`, a child, has exited and waits to be reaped.
pub fn exited_unreaped(pid: i32) -> bool {
    peek(pid, libc::WEXITED).is_some()
}

/// Waits (blocking) for one specific child; used only for a child known to
/// have exited already (exec failure).
pub fn wait_for(pid: i32) -> Option<ChildEnd> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return decode(status);
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_and_signal() {
        // Linux wait status encoding: code << 8, or the signal number.
        assert_eq!(decode(3 << 8), Some(ChildEnd::Exited(3)));
        assert_eq!(decode(0), Some(ChildEnd::Exited(0)));
        assert_eq!(decode(9), Some(ChildEnd::Signaled(9)));
        assert_eq!(decode(9 | 0x80), Some(ChildEnd::Signaled(9)));
        assert!(core_dumped(11 | 0x80));
        assert!(!core_dumped(11));
        assert!(!core_dumped(0x80 << 8), "an exit code of 128 is no core");
        // Stopped (0x7f) is neither.
        assert_eq!(decode((19 << 8) | 0x7f), None);
    }

    #[test]
    fn a_stopped_child_is_told_by_its_stop_signal_and_left_as_it_was() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert_eq!(stopped_by(pid), None, "running");
        // SAFETY: signals to our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stopped_by(pid).is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stopped_by(pid), Some(libc::SIGSTOP), "asked twice: WNOWAIT");
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stopped_by(pid).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stopped_by(pid), None, "continued");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(stopped_by(pid), None, "gone");
    }
}
