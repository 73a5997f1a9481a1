//! Parsers for option values: durations, signals, `A:B` pairs, percentages.
//!
//! Pure functions on `&str`; each error says what was expected, so the usage
//! line the user sees names the fix.

use std::time::Duration;

/// Parses `500ms`, `10s`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("invalid duration '{text}': expected e.g. 500ms, 10s, 2m");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "us" => 0.000_001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    // A day is far beyond any stop timeout an orchestrator allows.
    if !secs.is_finite() || secs > 86_400.0 {
        return Err(format!("invalid duration '{text}': at most 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

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

/// Parses a signal as a name (`TERM`, `SIGTERM`, `sigterm`, `RTMIN+2`) or a
/// number 1..=64.
pub fn signal(text: &str) -> Result<i32, String> {
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
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, String> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = base + sign * off;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return match rest.strip_prefix('+') {
            Some(off) => rt(libc::SIGRTMIN(), off, 1),
            None if rest.is_empty() => rt(libc::SIGRTMIN(), "", 1),
            None => Err(bad()),
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(off) => rt(libc::SIGRTMAX(), off, -1),
            None if rest.is_empty() => rt(libc::SIGRTMAX(), "", -1),
            None => Err(bad()),
        };
    }
    Err(bad())
}

/// The short name of a signal number (`TERM`), or its number as text.
pub fn signal_name(sig: i32) -> String {
    // IOT and POLL are aliases; the table lists the canonical name first.
    match NAMES.iter().find(|(_, n)| *n == sig) {
        Some((name, _)) => format!("SIG{name}"),
        None if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&sig) => {
            format!("SIGRTMIN+{}", sig - libc::SIGRTMIN())
        }
        None => format!("signal {sig}"),
    }
}

/// Parses a `-r/--rewrite SRC:DST` pair; DST 0 means "drop".
pub fn rewrite_pair(text: &str) -> Result<(i32, i32), String> {
    let (src, dst) = text.split_once(':').ok_or_else(|| {
        format!("invalid rewrite '{text}': expected SRC:DST, e.g. TERM:QUIT or 15:3")
    })?;
    let src = signal(src)?;
    let dst = if dst.trim() == "0" { 0 } else { signal(dst)? };
    if matches!(src, libc::SIGKILL | libc::SIGSTOP) {
        return Err(format!(
            "invalid rewrite '{text}': {} cannot be caught",
            signal_name(src)
        ));
    }
    Ok((src, dst))
}

/// Parses a `-e/--remap-exit FROM:TO` pair; a lone `FROM` means `FROM:0`, as
/// tini's `-e` does.
pub fn remap_pair(text: &str) -> Result<(u8, u8), String> {
    let code = |s: &str| {
        s.trim().parse::<u8>().map_err(|_| {
            format!("invalid exit code remap '{text}': expected FROM:TO with codes 0-255")
        })
    };
    match text.split_once(':') {
        Some((from, to)) => Ok((code(from)?, code(to)?)),
        None => Ok((code(text)?, 0)),
    }
}

/// Parses a percentage in (0, 100].
pub fn percent(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches('%');
    match t.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "invalid percentage '{text}': expected a number above 0 and at most 100"
        )),
    }
}

/// Parses a whole number of at least 1.
pub fn count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!(
            "invalid count '{text}': expected a whole number of at least 1"
        )),
    }
}

/// Parses a boolean environment value.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "invalid boolean '{text}': expected 1/0, true/false, yes/no or on/off"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "", "s", "-1s", "10x", "1.s", ".5s", "1e3", "25h", "ten", "1 0s",
        ] {
            let err = duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(signal("TERM"), Ok(15));
        assert_eq!(signal("SIGTERM"), Ok(15));
        assert_eq!(signal("sigterm"), Ok(15));
        assert_eq!(signal("usr1"), Ok(libc::SIGUSR1));
        assert_eq!(signal("9"), Ok(9));
        assert_eq!(signal("64"), Ok(64));
        assert_eq!(signal("RTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(signal("RTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(signal("SIGRTMAX-1"), Ok(libc::SIGRTMAX() - 1));
        for bad in ["0", "65", "-1", "TERMX", "", "RTMIN+99", "RTMINX"] {
            assert!(signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signal_names_round_trip() {
        for n in 1..=SIG_MAX {
            let name = signal_name(n);
            if n < libc::SIGRTMIN() && !(32..=33).contains(&n) {
                assert_eq!(signal(&name), Ok(n), "{name}");
            }
        }
        assert_eq!(signal_name(9), "SIGKILL");
    }

    #[test]
    fn rewrite_pairs() {
        assert_eq!(rewrite_pair("TERM:QUIT"), Ok((15, 3)));
        assert_eq!(rewrite_pair("15:3"), Ok((15, 3)));
        assert_eq!(rewrite_pair("USR1:0"), Ok((libc::SIGUSR1, 0)));
        assert!(rewrite_pair("TERM").is_err());
        assert!(
            rewrite_pair("KILL:TERM")
                .unwrap_err()
                .contains("cannot be caught")
        );
        assert!(rewrite_pair("TERM:BOGUS").is_err());
    }

    #[test]
    fn remap_pairs() {
        assert_eq!(remap_pair("143:0"), Ok((143, 0)));
        assert_eq!(remap_pair("143"), Ok((143, 0)));
        assert!(remap_pair("256:0").is_err());
        assert!(remap_pair("-1:0").is_err());
        assert!(remap_pair("a:b").is_err());
    }

    #[test]
    fn percents_counts_booleans() {
        assert_eq!(percent("90"), Ok(90.0));
        assert_eq!(percent("12.5%"), Ok(12.5));
        assert!(percent("0").is_err());
        assert!(percent("101").is_err());
        assert_eq!(count("5"), Ok(5));
        assert!(count("0").is_err());
        assert_eq!(boolean("Yes"), Ok(true));
        assert_eq!(boolean("0"), Ok(false));
        assert!(boolean("maybe").is_err());
    }
}
