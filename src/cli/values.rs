//! Parsers for option values: durations, `A:B` pairs, percentages (signal
//! names are in [`crate::signame`]).
//!
//! Pure functions on `&str`; each error says what was expected, so the usage
//! line the user sees names the fix.

use std::time::Duration;

use crate::signame::{name as signal_name, parse as signal};

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
    let too_long = || format!("invalid duration '{text}': at most 24h");
    let value = match crate::units::decimal(num) {
        Some(v) => v,
        // Digits and one point that still do not fit: far too long.
        None if num.matches('.').count() <= 1 => return Err(too_long()),
        None => return Err(bad()),
    };
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
        return Err(too_long());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Why ward can never receive `sig`, or `None` when it can. A signal ward
/// never receives can be neither rewritten nor count as a stop request.
pub fn never_received(sig: i32) -> Option<&'static str> {
    match sig {
        libc::SIGKILL | libc::SIGSTOP => Some("cannot be caught"),
        // ward reaps on SIGCHLD; it is never forwarded.
        libc::SIGCHLD => Some("is ward's own (it reaps on it) and is never forwarded"),
        // ward ignores these so that a background child's terminal access does
        // not stop PID 1; an ignored signal is discarded by the kernel.
        libc::SIGTTIN | libc::SIGTTOU => {
            Some("is ignored by ward (job control belongs to the child), so it never arrives")
        }
        _ => None,
    }
}

/// Parses a `-r/--rewrite SRC:DST` pair; DST 0 means "drop".
pub fn rewrite_pair(text: &str) -> Result<(i32, i32), String> {
    let (src, dst) = text.split_once(':').ok_or_else(|| {
        format!("invalid rewrite '{text}': expected SRC:DST, e.g. TERM:QUIT or 15:3")
    })?;
    let src = signal(src)?;
    let dst = if dst.trim() == "0" { 0 } else { signal(dst)? };
    if let Some(why) = never_received(src) {
        return Err(format!(
            "invalid rewrite '{text}': {} {why}",
            signal_name(src)
        ));
    }
    // A SIGCHLD tells the child one of its own children changed state; sent
    // in place of another signal it would be a lie the child may act on.
    if dst == libc::SIGCHLD {
        return Err(format!(
            "invalid rewrite '{text}': the child would take SIGCHLD as news about its own children; use DST 0 to drop a signal"
        ));
    }
    Ok((src, dst))
}

/// Parses one `--stop-signal SIG`: a signal ward can receive.
pub fn stop_signal(text: &str) -> Result<i32, String> {
    received(text, "stop signal")
}

/// Parses `-p/--pdeathsig SIG`: a signal ward can receive and forward, or
/// KILL, which ends ward itself (as tini's `-p SIGKILL` ends tini). STOP
/// would stop ward for good; CHLD, TTIN and TTOU would never be forwarded.
pub fn pdeathsig(text: &str) -> Result<i32, String> {
    match signal(text)? {
        libc::SIGKILL => Ok(libc::SIGKILL),
        _ => received(text, "parent-death signal"),
    }
}

/// `text` as a signal ward can receive; `what` names it in the error.
fn received(text: &str, what: &str) -> Result<i32, String> {
    let sig = signal(text)?;
    match never_received(sig) {
        Some(why) => Err(format!(
            "invalid {what} '{text}': {} {why}",
            signal_name(sig)
        )),
        None => Ok(sig),
    }
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
    match crate::units::decimal(t) {
        Some(v) if v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "invalid percentage '{text}': expected a number above 0 and at most 100"
        )),
    }
}

/// Parses a whole number from 1 to `max`.
pub fn count(text: &str, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(v) if (1..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid count '{text}': expected a whole number from 1 to {max}"
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

/// A CloudWatch namespace: 1–255 characters of letters, digits, spaces and
/// `.-_/#:` (CloudWatch's rule), not starting with `AWS/` (reserved for
/// AWS's own services), so a typo fails here rather than as a line
/// CloudWatch silently ignores.
pub fn emf_namespace(text: &str) -> Result<String, String> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.len() <= 255
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c));
    if !ok {
        return Err(format!(
            "invalid EMF namespace '{text}': 1-255 letters, digits, spaces or . - _ / # :"
        ));
    }
    // CloudWatch rejects every metric of such a line, and says so nowhere
    // ward or its user would look.
    if t.starts_with(RESERVED_NAMESPACE_PREFIX) {
        return Err(format!(
            "invalid EMF namespace '{text}': CloudWatch reserves namespaces starting with {RESERVED_NAMESPACE_PREFIX} for AWS services"
        ));
    }
    Ok(t.to_string())
}

/// CloudWatch's namespaces for AWS's own services (PutMetricData: "You
/// cannot specify a namespace that begins with AWS/").
const RESERVED_NAMESPACE_PREFIX: &str = "AWS/";

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
        // Too long is too long, whether or not the digits fit a u64.
        for long in [
            "25h",
            "18446744073709551615s",
            "18446744073709551616s",
            "99999999999999999999",
        ] {
            assert!(
                duration(long).unwrap_err().ends_with("at most 24h"),
                "{long}"
            );
        }
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
        for src in ["KILL", "STOP", "CHLD", "TTIN", "TTOU"] {
            let err = rewrite_pair(&format!("{src}:TERM")).unwrap_err();
            assert!(err.contains(&format!("SIG{src} ")), "{err}");
        }
        assert!(rewrite_pair("CHLD:0").is_err());
        assert!(rewrite_pair("TERM:CHLD").unwrap_err().contains("SIGCHLD"));
        // Stopping or killing in place of a signal is the user's call.
        assert_eq!(
            rewrite_pair("TSTP:STOP"),
            Ok((libc::SIGTSTP, libc::SIGSTOP))
        );
    }

    #[test]
    fn stop_signals() {
        assert_eq!(stop_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(stop_signal("usr2"), Ok(libc::SIGUSR2));
        for bad in ["KILL", "STOP", "CHLD", "TTIN", "TTOU"] {
            let err = stop_signal(bad).unwrap_err();
            assert!(err.starts_with("invalid stop signal"), "{err}");
        }
        assert!(stop_signal("NOPE").is_err());
    }

    #[test]
    fn pdeathsigs() {
        assert_eq!(pdeathsig("TERM"), Ok(libc::SIGTERM));
        assert_eq!(pdeathsig("SIGKILL"), Ok(libc::SIGKILL));
        for bad in ["STOP", "CHLD", "TTIN", "TTOU"] {
            let err = pdeathsig(bad).unwrap_err();
            assert!(err.starts_with("invalid parent-death signal"), "{err}");
        }
        assert!(pdeathsig("NOPE").is_err());
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
        assert_eq!(count("5", 10), Ok(5));
        assert_eq!(count("10", 10), Ok(10));
        assert!(count("0", 10).is_err());
        assert!(count("11", 10).is_err());
        assert!(count("18446744073709551616", u64::MAX).is_err());
        assert_eq!(boolean("Yes"), Ok(true));
        assert_eq!(boolean("0"), Ok(false));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn emf_namespaces() {
        assert_eq!(emf_namespace(" ward/prod "), Ok("ward/prod".into()));
        assert!(emf_namespace("").is_err());
        assert!(emf_namespace("a\"b").is_err());
        assert!(emf_namespace(&"x".repeat(256)).is_err());
        // Reserved for AWS's services: CloudWatch would drop every line.
        for reserved in ["AWS/ECS", " AWS/ward", "AWS/"] {
            let err = emf_namespace(reserved).unwrap_err();
            assert!(
                err.contains("reserves namespaces starting with AWS/"),
                "{err}"
            );
        }
        // Only the exact prefix is reserved.
        assert_eq!(emf_namespace("AWSward"), Ok("AWSward".into()));
        assert_eq!(emf_namespace("ward/AWS/x"), Ok("ward/AWS/x".into()));
    }
}
