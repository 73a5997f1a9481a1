//! Signal names and numbers: `TERM` <-> 15, `RTMIN+1`, for flags, logs and reports.
//!
//! Pure functions, no I/O; every module that names a signal uses these.

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The kernel's highest signal number on Linux (SIGRTMAX).
pub const SIG_MAX: i32 = 64;

/// The lowest real-time signal as `kill -s RTMIN`, Docker's `--stop-signal
/// SIGRTMIN` and glibc programs number it: 34. The kernel's real-time
/// signals start at 32; glibc keeps 32 and 33 for itself, musl (which ward
/// is built against) 32 to 34, so `libc::SIGRTMIN()` in ward would say 35
/// and ward's names would disagree with the rest of the container's.
pub const RT_MIN: i32 = 34;

/// Parses a signal as a name (`TERM`, `SIGTERM`, `sigterm`, `RTMIN+2`) or a
/// number 1..=64.
pub fn parse(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let bad =
        || format!("invalid signal '{text}': expected a name like TERM or a number 1-{SIG_MAX}");
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=SIG_MAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(nm, _)| *nm == name) {
        return Ok(n);
    }
    let rt = |base: i32, off: &str, sign: i32| -> Result<i32, String> {
        // Digits only: `parse` would take a sign too (`RTMIN++1`).
        if !off.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let off: u8 = off.parse().map_err(|_| bad())?;
        let n = base + sign * i32::from(off);
        if (RT_MIN..=SIG_MAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return match rest.strip_prefix('+') {
            Some(off) => rt(RT_MIN, off, 1),
            None if rest.is_empty() => rt(RT_MIN, "0", 1),
            None => Err(bad()),
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(off) => rt(SIG_MAX, off, -1),
            None if rest.is_empty() => rt(SIG_MAX, "0", -1),
            None => Err(bad()),
        };
    }
    Err(bad())
}

/// The short name of a signal number (`TERM`), or its number as text.
pub fn name(sig: i32) -> String {
    // IOT and POLL are aliases; the table lists the canonical name first.
    match NAMES.iter().find(|(_, n)| *n == sig) {
        Some((name, _)) => format!("SIG{name}"),
        None if (RT_MIN..=SIG_MAX).contains(&sig) => {
            format!("SIGRTMIN+{}", sig - RT_MIN)
        }
        None => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("sigterm"), Ok(15));
        assert_eq!(parse("usr1"), Ok(libc::SIGUSR1));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("64"), Ok(64));
        // As kill(1) and Docker number them, whatever the libc says.
        assert_eq!(parse("RTMIN"), Ok(34));
        assert_eq!(parse("RTMIN+2"), Ok(36));
        assert_eq!(parse("SIGRTMAX-1"), Ok(63));
        // A sign or nothing after RTMIN+ / RTMAX-, and offsets too large to
        // add (which overflowed before), are refused.
        let more = ["RTMIN++1", "RTMIN+", "RTMAX-+2", "RTMAX--1", "RTMIN+-1"];
        let huge = ["RTMIN+2147483647", "RTMAX-2147483648", "RTMIN+256"];
        for bad in ["0", "65", "-1", "TERMX", "", "RTMIN+99", "RTMINX"]
            .into_iter()
            .chain(more)
            .chain(huge)
        {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=SIG_MAX {
            let name = name(n);
            if n < RT_MIN && !(32..=33).contains(&n) {
                assert_eq!(parse(&name), Ok(n), "{name}");
            }
        }
        assert_eq!(name(9), "SIGKILL");
        // kill(1)'s numbering, not the libc's (musl's SIGRTMIN is 35).
        assert_eq!(name(35), "SIGRTMIN+1");
        assert_eq!(parse(&name(40)), Ok(40));
    }
}
