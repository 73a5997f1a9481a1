//! `ward check TARGET`: a health probe for images without curl, for Docker
//! `HEALTHCHECK`, ECS `healthCheck` and Kubernetes exec probes. Owns its own
//! options, output line and exit codes; it never touches PID 1 ward's state,
//! starts no process and runs no shell.
//!
//! Exit codes: 0 healthy, 1 for everything else, bad usage included. Docker
//! reserves 2 for health checks ("do not use"), so unlike the rest of ward a
//! usage error here is 1, never 2.

pub mod context;
pub mod http;
mod outcome;
pub mod probe;
pub mod target;

use std::ffi::OsString;
use std::io::Write;
use std::time::{Duration, Instant};

use probe::{Failure, Healthy, Probe};
use target::Expect;

/// Exit code of a healthy probe.
pub const HEALTHY: u8 = 0;
/// Exit code of an unhealthy probe and of every other failure, bad usage
/// included: never 2, which Docker reserves.
pub const UNHEALTHY: u8 = 1;

/// Default budget: under ECS's 5 s and Docker's 30 s health check timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// `ward check --help`.
pub const HELP: &str = "\
Usage: ward check TARGET [OPTIONS]

Health probe for Docker HEALTHCHECK, ECS healthCheck and Kubernetes exec probes.
Prints one line on stdout; exits 0 when healthy, 1 otherwise (never 2).

Targets:
  http://HOST[:PORT][/PATH]    GET over HTTP/1.1; healthy on 200-399
  tcp://HOST:PORT              healthy when a TCP connection opens
  unix:///SOCKET[:/PATH]       GET over a unix socket (the socket path ends at
                               the first ':/'; PATH defaults to /)
  HOST: an IP address (127.0.0.1, [::1]) or localhost (127.0.0.1 then ::1);
  other host names are not resolved. No https.

Options:
      --timeout DURATION    budget for connect + request + response headers
                            (default 2s; e.g. 500ms, 3s)
      --expect CODES        healthy status codes: 204 or 200-299 (default 200-399)
  -H, --header NAME:VALUE   add a request header (repeatable)
  -q, --quiet               print nothing when healthy
  -h, --help                this help
";

/// What the command line asked for.
#[derive(Debug)]
enum Command {
    Help,
    Probe {
        probe: Box<Probe>,
        /// The target as typed, for the output line.
        text: String,
        quiet: bool,
    },
}

/// Runs `ward check` with the arguments after `check`; returns the exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    let started = Instant::now();
    let (probe, text, quiet) = match parse_args(args) {
        Ok(Command::Help) => {
            say(HELP.as_bytes());
            return HEALTHY;
        }
        Ok(Command::Probe { probe, text, quiet }) => (probe, text, quiet),
        Err(why) => {
            // stderr like every usage error, but exit 1: see the module doc.
            let _ = std::io::stderr().write_all(usage_line(&why).as_bytes());
            return UNHEALTHY;
        }
    };
    // Asked before the probe, read only on failure: see `context`. Its time
    // counts against the probe's budget (which runs from `started`).
    let question = context::ask(probe.timeout / 10);
    let result = probe::run(&probe, started);
    let extra = match &result {
        Ok(_) => None,
        Err(failure) => {
            // A quarter of the budget (but time for ward's look at a full
            // stderr) at most: a ward that is stopped or busy must not turn
            // an instant failure into the probe runner's own timeout,
            // which records no reason at all.
            let left = probe.timeout.saturating_sub(started.elapsed());
            let cap = (probe.timeout / 4).max(crate::log::FULL_AFTER + Duration::from_millis(100));
            context::context_line(failure, question, left.min(cap))
        }
    };
    let code = if result.is_ok() { HEALTHY } else { UNHEALTHY };
    if !(quiet && result.is_ok()) {
        say(output_line(&text, &result, extra.as_deref()).as_bytes());
    }
    code
}

/// Writes to stdout, ignoring errors: a closed stdout must not turn a verdict
/// into a panic (`println!` panics on EPIPE).
fn say(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// The usage error line. What the user typed may hold a newline; it is
/// escaped so the error stays one line.
pub fn usage_line(why: &str) -> String {
    format!("ward check: {} (see ward check --help)\n", one_line(why))
}

/// `text` with control characters escaped as ward's log escapes them
/// (`\n`, `\x1b`), other text as is.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    crate::log::push_escaped(&mut out, text);
    out
}

/// The one output line: `ward check: TARGET healthy: 200 OK in 3.2 ms`, or
/// `... unhealthy: REASON[; CONTEXT]`, newline included.
pub fn output_line(
    target: &str,
    result: &Result<Healthy, Failure>,
    context: Option<&str>,
) -> String {
    match (result, context) {
        (Ok(healthy), _) => format!("ward check: {} healthy: {healthy}\n", one_line(target)),
        (Err(failure), None) => format!(
            "ward check: {} unhealthy: {}\n",
            one_line(target),
            one_line(&failure.to_string())
        ),
        (Err(failure), Some(more)) => format!(
            "ward check: {} unhealthy: {}; {}\n",
            one_line(target),
            one_line(&failure.to_string()),
            one_line(more)
        ),
    }
}

fn parse_args(args: Vec<OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut target: Option<String> = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut expect = None;
    let mut headers = Vec::new();
    let mut quiet = false;
    let text = |v: OsString, what: &str| {
        v.into_string()
            .map_err(|v| format!("{what} '{}' is not UTF-8", v.to_string_lossy()))
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('q') | Long("quiet") => quiet = true,
            Long("timeout") => {
                let v = text(parser.value().map_err(|e| e.to_string())?, "--timeout")?;
                timeout = crate::cli::values::duration(&v)?;
                if timeout.is_zero() {
                    return Err(format!("invalid --timeout '{v}': must be above 0"));
                }
            }
            Long("expect") => {
                let v = text(parser.value().map_err(|e| e.to_string())?, "--expect")?;
                expect = Some(target::expect(&v)?);
            }
            Short('H') | Long("header") => {
                let v = text(parser.value().map_err(|e| e.to_string())?, "--header")?;
                headers.push(target::header(&v)?);
            }
            Value(v) if target.is_none() => target = Some(text(v, "target")?),
            Value(v) => {
                return Err(format!(
                    "one target only; '{}' is a second one",
                    v.to_string_lossy()
                ));
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let text = target.ok_or("no target given, e.g. ward check http://127.0.0.1:8080/health")?;
    let parsed = target::parse(&text)?;
    if matches!(parsed, target::Target::Tcp { .. }) && (expect.is_some() || !headers.is_empty()) {
        return Err(
            "--expect and --header apply to http:// and unix:// targets, not tcp://".into(),
        );
    }
    Ok(Command::Probe {
        probe: Box::new(Probe {
            target: parsed,
            expect: expect.unwrap_or(Expect::DEFAULT),
            expect_given: expect.is_some(),
            headers,
            timeout,
        }),
        text,
        quiet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn probe(list: &[&str]) -> (Probe, String, bool) {
        match parse_args(args(list)) {
            Ok(Command::Probe { probe, text, quiet }) => (*probe, text, quiet),
            other => panic!("{list:?}: {other:?}"),
        }
    }

    #[test]
    fn options() {
        let (p, text, quiet) = probe(&["http://127.0.0.1:8080/health"]);
        assert_eq!(text, "http://127.0.0.1:8080/health");
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.expect, Expect::DEFAULT);
        assert!(!p.expect_given && !quiet && p.headers.is_empty());

        let (p, _, quiet) = probe(&[
            "--timeout",
            "500ms",
            "http://[::1]:8080/",
            "--expect=204",
            "-H",
            "X-A:1",
            "--header",
            "X-B: 2",
            "-q",
        ]);
        assert_eq!(p.timeout, Duration::from_millis(500));
        assert_eq!(
            p.expect,
            Expect {
                low: 204,
                high: 204
            }
        );
        assert!(p.expect_given && quiet);
        assert_eq!(
            p.headers,
            vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())]
        );
        assert!(matches!(parse_args(args(&["--help"])), Ok(Command::Help)));
        assert!(matches!(
            parse_args(args(&["tcp://127.0.0.1:1", "-h"])),
            Ok(Command::Help)
        ));
    }

    #[test]
    fn usage_errors_are_one_line() {
        for (list, why) in [
            (&[][..], "no target"),
            (
                &["http://127.0.0.1/", "tcp://127.0.0.1:1"],
                "one target only",
            ),
            (&["--timeout", "0", "http://127.0.0.1/"], "must be above 0"),
            (
                &["--timeout", "soon", "http://127.0.0.1/"],
                "invalid duration",
            ),
            (&["--timeout"], "missing argument"),
            (&["--expect", "2xx", "http://127.0.0.1/"], "--expect"),
            (&["--bogus", "http://127.0.0.1/"], "--bogus"),
            (&["https://127.0.0.1/"], "https is not supported"),
            (&["--expect", "204", "tcp://127.0.0.1:1"], "not tcp://"),
        ] {
            let Err(err) = parse_args(args(list)) else {
                panic!("{list:?} parsed");
            };
            assert!(err.contains(why), "{list:?}: {err}");
        }
        let line = usage_line("invalid target 'http://127.0.0.1/a\r\nX: y'");
        assert_eq!(
            line,
            "ward check: invalid target 'http://127.0.0.1/a\\r\\nX: y' (see ward check --help)\n"
        );
    }

    #[test]
    fn output_lines() {
        let target = "http://127.0.0.1:8080/health";
        let ok = Ok(Healthy {
            status: Some((200, "OK".into())),
            latency: Duration::from_micros(3200),
        });
        assert_eq!(
            output_line(target, &ok, None),
            "ward check: http://127.0.0.1:8080/health healthy: 200 OK in 3.2 ms\n"
        );
        let timeout = Err(Failure::Timeout {
            after: Duration::from_secs(2),
            phase: probe::Phase::Waiting,
        });
        assert_eq!(
            output_line(target, &timeout, None),
            "ward check: http://127.0.0.1:8080/health unhealthy: timeout after 2.0 s waiting for the response\n"
        );
        // The seam for PID 1's context: its words follow the reason.
        assert_eq!(
            output_line(
                target,
                &timeout,
                Some("CPU throttled in 97 % of periods over the last 30 s at 0.1 cores")
            ),
            "ward check: http://127.0.0.1:8080/health unhealthy: timeout after 2.0 s waiting for the response; \
             CPU throttled in 97 % of periods over the last 30 s at 0.1 cores\n"
        );
    }

    #[test]
    fn exit_codes_never_use_dockers_reserved_2() {
        assert_eq!(HEALTHY, 0);
        assert_eq!(UNHEALTHY, 1);
    }
}
