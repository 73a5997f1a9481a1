//! The whole command line plus `WARD_*` variables: `cli::parse`.
//!
//! Input format: NUL-separated items (NUL is the one byte neither an argument
//! nor a variable can hold). An item `WARD_NAME=value` is a variable, anything
//! else an argument, in order; arguments may be any bytes, not only UTF-8.
#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use ward::cli::{self, Invocation};
use ward::log::{self, Format, Level};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Splits the input into arguments and variables (values of any bytes).
fn split(data: &[u8]) -> (Vec<OsString>, BTreeMap<String, OsString>) {
    let mut args = Vec::new();
    let mut env = BTreeMap::new();
    for item in data.split(|&b| b == 0) {
        if item.starts_with(b"WARD_")
            && let Some(eq) = item.iter().position(|&b| b == b'=')
        {
            let name = String::from_utf8_lossy(&item[..eq]).into_owned();
            env.insert(name, OsString::from_vec(item[eq + 1..].to_vec()));
        } else {
            args.push(OsString::from_vec(item.to_vec()));
        }
    }
    (args, env)
}

/// Calls `cli::parse` with `env` as the variable source. The only place that
/// knows the source's signature.
fn parse(
    args: Vec<OsString>,
    env: &BTreeMap<String, OsString>,
) -> Result<Invocation, cli::UsageError> {
    let source = |name: &str| env.get(name).cloned();
    cli::parse(args, &source)
}

fuzz_target!(|data: &[u8]| {
    let (args, env) = split(data);
    match parse(args, &env) {
        Ok(Invocation::Run(cfg)) => {
            assert!(!cfg.command.is_empty());
            for d in [
                Some(cfg.grace),
                cfg.stop_delay,
                cfg.kill_after,
                cfg.watch_interval,
            ]
            .into_iter()
            .flatten()
            {
                assert!(d <= DAY, "{d:?}");
            }
            if let Some(i) = cfg.watch_interval {
                assert!(i >= Duration::from_millis(100), "watch interval {i:?}");
            }
            let t = &cfg.thresholds;
            for p in [
                t.memory_pct,
                t.throttle_pct,
                t.pids_pct,
                t.memory_pressure_pct,
            ] {
                assert!(p > 0.0 && p <= 100.0, "threshold {p}");
            }
            assert!(t.zombies >= 1);
            for (&src, &dst) in &cfg.rewrite {
                assert!(
                    (1..=64).contains(&src) && src != libc::SIGKILL && src != libc::SIGSTOP,
                    "rewrite {src}"
                );
                assert!(dst == 0 || (1..=64).contains(&dst), "rewrite to {dst}");
            }
            if let Some(s) = cfg.pdeathsig {
                assert!((1..=64).contains(&s));
            }
        }
        Ok(Invocation::Help | Invocation::Version) => {}
        Ok(Invocation::Status(_) | Invocation::Check(_)) => {}
        Err(e) => {
            // Bad input gets one line, whatever bytes it held, in both formats.
            assert!(!e.0.is_empty());
            for format in [Format::Human, Format::Json] {
                let line = log::render(format, Level::Error, "usage", &e.0, &[], UNIX_EPOCH);
                assert_eq!(line.matches('\n').count(), 1, "{line:?}");
                assert!(line.ends_with('\n'));
            }
        }
    }
});
