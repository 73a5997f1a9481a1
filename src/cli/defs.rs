//! The flag table: every option of `ward` defined once, with its short name,
//! `WARD_*` variable, value name, default as shown, section, help line and the
//! code that applies a value to the [`Config`](super::Config) being built.
//!
//! Owns what the options are, not how text is read: `parse.rs` walks the
//! arguments and the environment with this table, `help.rs` renders `--help`
//! and the README table from it. Nothing here does I/O.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::OrphanPolicy;
use super::draft::Draft;
use super::values;
use crate::log::{Format, Level};

/// One option.
pub struct Flag {
    /// Long name without the dashes: `signal-group`.
    pub long: &'static str,
    /// Short name: `g` for `-g`.
    pub short: Option<char>,
    /// The environment variable that sets it too, if any.
    pub env: Env,
    /// Name of its value in help (`DURATION`, `SIG`, `PCT`); `None` for a switch.
    pub value: Option<&'static str>,
    /// What giving the option does.
    pub apply: Apply,
    /// May be given more than once (a list variable is comma-separated).
    pub repeats: bool,
    /// The default as users are told it.
    pub default: Shown,
    /// Where `--help` lists it.
    pub section: Section,
    /// One line of help, shown by `--help` and in the README.
    pub help: &'static str,
    /// More detail for the README's table only ("" for none).
    pub details: &'static str,
}

/// How an option relates to an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    /// Command line only.
    None,
    /// `WARD_X` holds the value; for a switch, a true boolean turns it on.
    Var(&'static str),
    /// A switch that a false boolean turns on: `WARD_WATCH=0` is `--no-watch`.
    Negated(&'static str),
}

impl Env {
    /// The variable's name, if any.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Env::None => None,
            Env::Var(n) | Env::Negated(n) => Some(n),
        }
    }
}

/// What giving an option does.
#[derive(Clone, Copy)]
pub enum Apply {
    /// A switch without a value.
    Switch(fn(&mut Draft)),
    /// A value that must be UTF-8 text.
    Text(fn(&mut Draft, &str) -> Result<(), String>),
    /// A value taken as raw bytes (a path).
    Raw(fn(&mut Draft, OsString)),
    /// Stop parsing and print help.
    Help,
    /// Stop parsing and print the version.
    Version,
}

/// A default as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A value the option accepts (a list is comma-separated, as in its
    /// variable); a unit test checks that giving it changes nothing.
    Value(&'static str),
    /// Words for a default no value spells: "off", "none".
    Words(&'static str),
    /// Nothing to say (a switch that is off, an action).
    Blank,
}

/// The groups `--help` lists options in, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Forwarding and exit codes.
    Signals,
    /// The stop sequence.
    Stopping,
    /// Sampling and warnings.
    Watching,
    /// The Prometheus endpoint and CloudWatch EMF lines.
    Metrics,
    /// Log and report.
    Reporting,
    /// Help, version.
    General,
}

impl Section {
    /// Every section, in help order.
    pub const ALL: [Section; 6] = [
        Section::Signals,
        Section::Stopping,
        Section::Watching,
        Section::Metrics,
        Section::Reporting,
        Section::General,
    ];

    /// The heading in `--help`.
    pub fn title(self) -> &'static str {
        match self {
            Section::Signals => "Signals and exit codes",
            Section::Stopping => "Stopping",
            Section::Watching => "Watching",
            Section::Metrics => "Metrics",
            Section::Reporting => "Reporting",
            Section::General => "General",
        }
    }
}

/// The most zombies one parent can have: Linux's PID_MAX_LIMIT on 64-bit
/// (include/linux/threads.h). Bounding `--warn-zombies` here keeps every
/// narrower count type the watch compares it with (u32) exact.
pub const MAX_ZOMBIES: u64 = 4 * 1024 * 1024;

/// Every option, in the order `--help` and the README list them.
pub static FLAGS: &[Flag] = &[
    Flag {
        long: "signal-group",
        short: Some('g'),
        env: Env::Var("WARD_SIGNAL_GROUP"),
        value: None,
        apply: Apply::Switch(|d| d.cfg.signal_group = true),
        repeats: false,
        default: Shown::Words("off"),
        section: Section::Signals,
        help: "forward signals to the child's whole process group",
        details: "tini's `-g`",
    },
    Flag {
        long: "rewrite",
        short: Some('r'),
        env: Env::Var("WARD_REWRITE"),
        value: Some("SRC:DST"),
        apply: Apply::Text(|d, v| {
            let (src, dst) = values::rewrite_pair(v)?;
            d.check_pair(src, d.cfg.rewrite.get(&src).copied(), &dst, v)?;
            d.cfg.rewrite.insert(src, dst);
            Ok(())
        }),
        repeats: true,
        default: Shown::Words("none"),
        section: Section::Signals,
        help: "rewrite a signal before forwarding it; DST 0 drops it",
        details: "SRC cannot be KILL, STOP (uncatchable), CHLD (ward's own) or TTIN/TTOU (ignored by ward); DST cannot be CHLD",
    },
    Flag {
        long: "remap-exit",
        short: Some('e'),
        env: Env::Var("WARD_REMAP_EXIT"),
        value: Some("FROM:TO"),
        apply: Apply::Text(|d, v| {
            let (from, to) = values::remap_pair(v)?;
            let had = Some(d.cfg.remap_exit.apply(from));
            d.check_pair(256 + i32::from(from), had, &to, v)?;
            d.cfg.remap_exit.insert(from, to);
            Ok(())
        }),
        repeats: true,
        default: Shown::Words("none"),
        section: Section::Signals,
        help: "exit with TO when the code would be FROM; FROM alone means FROM:0",
        details: "`-e 143` means `143:0`, as in tini",
    },
    Flag {
        long: "pdeathsig",
        short: Some('p'),
        env: Env::Var("WARD_PDEATHSIG"),
        value: Some("SIG"),
        apply: Apply::Text(|d, v| {
            d.cfg.pdeathsig = Some(values::pdeathsig(v)?);
            Ok(())
        }),
        repeats: false,
        default: Shown::Words("none"),
        section: Section::Signals,
        help: "signal ward gets (and forwards) when its parent dies, as PID 1 too (the parent is then outside the container); KILL ends ward at once, with no exit report",
        details: "the stop line says the parent died when ward is not PID 1; as PID 1 the sender is outside and reads as any signal from there",
    },
    Flag {
        long: "subreaper",
        short: Some('s'),
        env: Env::None,
        value: None,
        apply: Apply::Switch(|_| {}),
        repeats: false,
        default: Shown::Blank,
        section: Section::Signals,
        help: "accepted for tini compatibility; ward is a subreaper whenever it is not PID 1",
        details: "",
    },
    Flag {
        long: "stop-signal",
        short: None,
        env: Env::Var("WARD_STOP_SIGNAL"),
        value: Some("SIG"),
        apply: Apply::Text(|d, v| {
            let sig = values::stop_signal(v)?;
            d.add_stop_signal(sig);
            Ok(())
        }),
        repeats: true,
        default: Shown::Value("TERM,INT"),
        section: Section::Stopping,
        help: "signals that count as a stop request: they start --kill-after and the 'still running' lines",
        details: "a given list replaces the default; KILL, STOP, CHLD, TTIN and TTOU never reach ward and are refused",
    },
    Flag {
        long: "stop-delay",
        short: None,
        env: Env::Var("WARD_STOP_DELAY"),
        value: Some("DURATION"),
        apply: Apply::Text(|d, v| {
            d.cfg.stop_delay = Some(values::duration(v)?);
            Ok(())
        }),
        repeats: false,
        default: Shown::Words("none"),
        section: Section::Stopping,
        help: "hold the first SIGTERM this long before forwarding it",
        details: "lets a load balancer drain; a second SIGTERM ends the hold, and a SIGINT that is a stop signal (by default) sends the held SIGTERM and itself at once; only when SIGTERM is a stop signal (`--stop-signal QUIT` alone leaves nothing to hold, and ward warns `stop_delay_unused`)",
    },
    Flag {
        long: "kill-after",
        short: None,
        env: Env::Var("WARD_KILL_AFTER"),
        value: Some("DURATION"),
        apply: Apply::Text(|d, v| {
            let t = values::duration(v)?;
            // Zero would SIGKILL the child in the same instant it is asked to
            // stop: that is a typo, not a policy.
            if t.is_zero() {
                return Err(format!(
                    "invalid duration '{v}': must be above 0 (leave it unset for no SIGKILL)"
                ));
            }
            d.cfg.kill_after = Some(t);
            Ok(())
        }),
        repeats: false,
        default: Shown::Words("off"),
        section: Section::Stopping,
        help: "SIGKILL the child this long after a stop request (--stop-signal) was forwarded",
        details: "set it a few seconds below the orchestrator's stop timeout",
    },
    Flag {
        long: "grace",
        short: None,
        env: Env::Var("WARD_GRACE"),
        value: Some("DURATION"),
        apply: Apply::Text(|d, v| {
            d.cfg.grace = values::duration(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("3s"),
        section: Section::Stopping,
        help: "once the main child exits, other processes get SIGTERM and this long before SIGKILL",
        details: "ward exits as soon as none is left",
    },
    Flag {
        long: "orphans",
        short: None,
        env: Env::Var("WARD_ORPHANS"),
        value: Some("reap|terminate"),
        apply: Apply::Text(|d, v| {
            d.cfg.orphans = match v.trim() {
                "reap" => OrphanPolicy::Reap,
                "terminate" => OrphanPolicy::Terminate,
                _ => {
                    return Err(format!(
                        "invalid orphan policy '{v}': expected reap or terminate"
                    ));
                }
            };
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("reap"),
        section: Section::Stopping,
        help: "what to do with orphans adopted while the main child runs",
        details: "`terminate` sends them SIGTERM",
    },
    Flag {
        long: "watch-interval",
        short: None,
        env: Env::Var("WARD_WATCH_INTERVAL"),
        value: Some("DURATION"),
        apply: Apply::Text(|d, v| {
            let t = values::duration(v)?;
            // Below 100 ms the watch would cost more than the trouble it looks for.
            if t < Duration::from_millis(100) {
                return Err(format!("invalid watch interval '{v}': at least 100ms"));
            }
            d.interval = Some(t);
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("5s"),
        section: Section::Watching,
        help: "how often to sample the cgroup and /proc; at least 100ms",
        details: "",
    },
    Flag {
        long: "no-watch",
        short: None,
        env: Env::Negated("WARD_WATCH"),
        value: None,
        apply: Apply::Switch(|d| d.no_watch = true),
        repeats: false,
        default: Shown::Words("watching on"),
        section: Section::Watching,
        help: "do not watch: no sampling, no warnings",
        details: "no cgroup is read, so the child's oom_score_adj raise is sized for the host's memory; `--emf` then writes nothing (it warns `emf_unavailable`) and `--metrics` serves only `ward_build_info`, `ward_start_time_seconds` and the reaped and forwarded counters",
    },
    Flag {
        long: "warn-memory",
        short: None,
        env: Env::Var("WARD_WARN_MEMORY"),
        value: Some("PCT"),
        apply: Apply::Text(|d, v| {
            d.cfg.thresholds.memory_pct = values::percent(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("90"),
        section: Section::Watching,
        help: "memory_high when the working set reaches this % of the memory limit",
        details: "",
    },
    Flag {
        long: "warn-throttle",
        short: None,
        env: Env::Var("WARD_WARN_THROTTLE"),
        value: Some("PCT"),
        apply: Apply::Text(|d, v| {
            d.cfg.thresholds.throttle_pct = values::percent(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("20"),
        section: Section::Watching,
        help: "cpu_throttled when this % of CPU periods over 30s were throttled",
        details: "",
    },
    Flag {
        long: "warn-pids",
        short: None,
        env: Env::Var("WARD_WARN_PIDS"),
        value: Some("PCT"),
        apply: Apply::Text(|d, v| {
            d.cfg.thresholds.pids_pct = values::percent(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("80"),
        section: Section::Watching,
        help: "pids_high when pids.current reaches this % of the pids limit",
        details: "",
    },
    Flag {
        long: "warn-zombies",
        short: None,
        env: Env::Var("WARD_WARN_ZOMBIES"),
        value: Some("N"),
        apply: Apply::Text(|d, v| {
            d.cfg.thresholds.zombies = values::count(v, MAX_ZOMBIES)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("10"),
        section: Section::Watching,
        help: "zombies_unreaped when this many zombies wait under one live parent",
        details: "at most 4194304, the most processes Linux allows",
    },
    Flag {
        long: "warn-memory-pressure",
        short: None,
        env: Env::Var("WARD_WARN_MEMORY_PRESSURE"),
        value: Some("PCT"),
        apply: Apply::Text(|d, v| {
            d.cfg.thresholds.memory_pressure_pct = values::percent(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("10"),
        section: Section::Watching,
        help: "memory_pressure when PSI memory 'some avg10' reaches this %",
        details: "cgroup v2 only",
    },
    Flag {
        long: "no-oom-adjust",
        short: None,
        env: Env::Negated("WARD_OOM_ADJUST"),
        value: None,
        apply: Apply::Switch(|d| d.cfg.oom_adjust = false),
        repeats: false,
        default: Shown::Words("adjusting on"),
        section: Section::Watching,
        help: "leave oom_score_adj alone: neither ward's -1000 nor the child's raise",
        details: "see What ward survives",
    },
    Flag {
        long: "metrics",
        short: None,
        env: Env::Var("WARD_METRICS"),
        value: Some("ADDR"),
        apply: Apply::Text(|d, v| {
            let addr = crate::metrics::http::parse_listen_addr(v.trim())
                .map_err(|e| format!("invalid metrics address {e}"))?;
            d.cfg.metrics = Some(addr);
            Ok(())
        }),
        repeats: false,
        default: Shown::Words("off"),
        section: Section::Metrics,
        help: "serve Prometheus metrics at http://ADDR/metrics",
        details: "`:9464` is every IPv4 interface, `127.0.0.1:9464` loopback only, `[::1]:9464` IPv6; host names are not resolved",
    },
    Flag {
        long: "emf",
        short: None,
        env: Env::Var("WARD_EMF"),
        value: None,
        apply: Apply::Switch(|d| d.cfg.emf = true),
        repeats: false,
        default: Shown::Words("off"),
        section: Section::Metrics,
        help: "write a CloudWatch Embedded Metric Format line to stderr every --emf-interval",
        details: "a bare JSON object per line, which CloudWatch Logs (awslogs) turns into metrics; on ECS the dimensions come from the task metadata endpoint",
    },
    Flag {
        long: "emf-interval",
        short: None,
        env: Env::Var("WARD_EMF_INTERVAL"),
        value: Some("DURATION"),
        apply: Apply::Text(|d, v| {
            let t = values::duration(v)?;
            // CloudWatch's finest ordinary resolution is a minute; a line per
            // second is already more log than metric.
            if t < Duration::from_secs(1) {
                return Err(format!("invalid EMF interval '{v}': at least 1s"));
            }
            d.cfg.emf_interval = t;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("60s"),
        section: Section::Metrics,
        help: "time between EMF lines; at least 1s",
        details: "",
    },
    Flag {
        long: "emf-namespace",
        short: None,
        env: Env::Var("WARD_EMF_NAMESPACE"),
        value: Some("NAME"),
        apply: Apply::Text(|d, v| {
            d.cfg.emf_namespace = values::emf_namespace(v)?;
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("ward"),
        section: Section::Metrics,
        help: "CloudWatch namespace of the EMF metrics; not AWS/..., which CloudWatch reserves",
        details: "",
    },
    Flag {
        long: "report-file",
        short: None,
        env: Env::Var("WARD_REPORT_FILE"),
        value: Some("PATH"),
        apply: Apply::Raw(|d, v| d.cfg.report_file = Some(PathBuf::from(v))),
        repeats: false,
        default: Shown::Words("none"),
        section: Section::Reporting,
        help: "write the JSON exit report here, at most 4 KiB",
        details: "fits a Kubernetes termination message; checked at start",
    },
    Flag {
        long: "log-format",
        short: None,
        env: Env::Var("WARD_LOG_FORMAT"),
        value: Some("human|json"),
        apply: Apply::Text(|d, v| {
            d.cfg.log_format = match v.trim() {
                "human" | "text" => Format::Human,
                "json" => Format::Json,
                _ => return Err(format!("invalid log format '{v}': expected human or json")),
            };
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("human"),
        section: Section::Reporting,
        help: "one event per line on stderr, as text or JSON",
        details: "",
    },
    Flag {
        long: "log-level",
        short: None,
        env: Env::Var("WARD_LOG_LEVEL"),
        value: Some("LEVEL"),
        apply: Apply::Text(|d, v| {
            d.cfg.log_level = match v.trim().to_ascii_lowercase().as_str() {
                "error" => Level::Error,
                "warning" | "warn" => Level::Warning,
                "info" => Level::Info,
                "debug" => Level::Debug,
                _ => {
                    return Err(format!(
                        "invalid log level '{v}': expected error, warning, info or debug"
                    ));
                }
            };
            Ok(())
        }),
        repeats: false,
        default: Shown::Value("info"),
        section: Section::Reporting,
        help: "error, warning, info or debug",
        details: "the exit report is written at every level",
    },
    Flag {
        long: "verbose",
        short: Some('v'),
        env: Env::None,
        value: None,
        apply: Apply::Switch(|d| d.verbosity += 1),
        repeats: true,
        default: Shown::Blank,
        section: Section::Reporting,
        help: "one log level more",
        details: "",
    },
    Flag {
        long: "quiet",
        short: Some('q'),
        env: Env::None,
        value: None,
        apply: Apply::Switch(|d| d.verbosity -= 1),
        repeats: true,
        default: Shown::Blank,
        section: Section::Reporting,
        help: "one log level less",
        details: "",
    },
    Flag {
        long: "help",
        short: Some('h'),
        env: Env::None,
        value: None,
        apply: Apply::Help,
        repeats: false,
        default: Shown::Blank,
        section: Section::General,
        help: "print this help",
        details: "",
    },
    Flag {
        long: "version",
        short: Some('V'),
        env: Env::None,
        value: None,
        apply: Apply::Version,
        repeats: false,
        default: Shown::Blank,
        section: Section::General,
        help: "print the version",
        details: "",
    },
];

/// The option named `--long`.
pub fn by_long(long: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.long == long)
}

/// The option named `-c`.
pub fn by_short(c: char) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.short == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Config;
    use std::collections::BTreeSet;

    #[test]
    fn every_flag_has_a_bit_in_the_parsers_given_mask() {
        // `parse::run_config` marks the options given in a u64, bit i for
        // FLAGS[i]: a 65th flag would shift past it.
        assert!(FLAGS.len() <= 64, "{} flags", FLAGS.len());
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut longs = BTreeSet::new();
        let mut shorts = BTreeSet::new();
        let mut vars = BTreeSet::new();
        for f in FLAGS {
            assert!(longs.insert(f.long), "--{} twice", f.long);
            assert!(
                f.long.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "--{}",
                f.long
            );
            if let Some(c) = f.short {
                assert!(shorts.insert(c), "-{c} twice");
            }
            if let Some(v) = f.env.name() {
                assert!(v.starts_with("WARD_"), "{v}");
                assert!(vars.insert(v), "{v} twice");
            }
            assert!(!f.help.is_empty() && !f.help.contains('\n'), "--{}", f.long);
        }
    }

    #[test]
    fn value_names_match_what_the_option_takes() {
        for f in FLAGS {
            let takes_value = matches!(f.apply, Apply::Text(_) | Apply::Raw(_));
            assert_eq!(f.value.is_some(), takes_value, "--{}", f.long);
            if matches!(f.env, Env::Negated(_)) {
                assert!(matches!(f.apply, Apply::Switch(_)), "--{}", f.long);
            }
            if matches!(f.apply, Apply::Help | Apply::Version) {
                assert_eq!(f.env, Env::None, "--{}", f.long);
            }
        }
    }

    #[test]
    fn shown_defaults_are_the_real_defaults() {
        let mut checked = 0;
        for f in FLAGS {
            let (Shown::Value(text), Apply::Text(apply)) = (f.default, f.apply) else {
                continue;
            };
            let mut d = Draft::new();
            for item in text.split(',') {
                apply(&mut d, item).unwrap();
            }
            d.end_source();
            assert_eq!(d.cfg, Config::default(), "--{} {text}", f.long);
            checked += 1;
        }
        assert!(checked >= 10, "{checked}");
    }
}
