//! Command line and `WARD_*` environment: turns them into one [`Config`].
//!
//! Owns option names, defaults and the help text. It does no I/O beyond reading
//! the environment map it is given, so every rule here is unit tested.

pub mod values;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::ExitRemap;
use crate::log::{Format, Level};

/// What to do with processes re-parented to ward while the main child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanPolicy {
    /// Reap them when they exit (tini's behaviour).
    Reap,
    /// Send them SIGTERM as soon as they are adopted.
    Terminate,
}

/// Warning thresholds for the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Working set as a percentage of the memory limit (`--warn-memory`).
    pub memory_pct: f64,
    /// Percentage of CFS periods throttled over 30 s (`--warn-throttle`).
    pub throttle_pct: f64,
    /// `pids.current` as a percentage of `pids.max` (`--warn-pids`).
    pub pids_pct: f64,
    /// Unreapable zombies under one parent (`--warn-zombies`).
    pub zombies: u64,
    /// PSI memory `some avg10` percentage (`--warn-memory-pressure`).
    pub memory_pressure_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            memory_pct: 90.0,
            throttle_pct: 20.0,
            pids_pct: 80.0,
            zombies: 10,
            memory_pressure_pct: 10.0,
        }
    }
}

/// Everything `ward [OPTIONS] -- COMMAND` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The command and its arguments; never empty.
    pub command: Vec<OsString>,
    /// Forward signals to the child's whole process group (`-g`).
    pub signal_group: bool,
    /// Signal rewrites: received -> forwarded; 0 drops the signal.
    pub rewrite: BTreeMap<i32, i32>,
    /// Exit code remaps applied to ward's own exit code.
    pub remap_exit: ExitRemap,
    /// Hold the first SIGTERM this long before forwarding it.
    pub stop_delay: Option<Duration>,
    /// SIGKILL the child this long after a stop signal was forwarded.
    pub kill_after: Option<Duration>,
    /// How long other processes get after SIGTERM once the main child is gone.
    pub grace: Duration,
    /// What to do with adopted orphans.
    pub orphans: OrphanPolicy,
    /// Signal ward asks to receive when its parent dies (not as PID 1).
    pub pdeathsig: Option<i32>,
    /// Log threshold.
    pub log_level: Level,
    /// Log format.
    pub log_format: Format,
    /// Watch interval; `None` when watching is off.
    pub watch_interval: Option<Duration>,
    /// Warning thresholds.
    pub thresholds: Thresholds,
    /// Where to write the JSON exit report.
    pub report_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            command: Vec::new(),
            signal_group: false,
            rewrite: BTreeMap::new(),
            remap_exit: ExitRemap::default(),
            stop_delay: None,
            kill_after: None,
            grace: Duration::from_secs(3),
            orphans: OrphanPolicy::Reap,
            pdeathsig: None,
            log_level: Level::Info,
            log_format: Format::Human,
            watch_interval: Some(Duration::from_secs(5)),
            thresholds: Thresholds::default(),
            report_file: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Run a command under ward.
    Run(Box<Config>),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

/// The help text; the README's flag table mirrors it (a test checks).
pub const HELP: &str = "\
ward: a PID 1 for containers that reaps, forwards signals, watches the
container's limits and says why it died.

Usage: ward [OPTIONS] [--] COMMAND [ARGS...]

Signals and exit codes:
  -g, --signal-group          forward signals to the child's process group [WARD_SIGNAL_GROUP]
  -r, --rewrite SRC:DST       rewrite a signal before forwarding; DST 0 drops it (repeatable) [WARD_REWRITE]
  -e, --remap-exit FROM:TO    exit with TO when the code would be FROM; FROM alone means FROM:0 (repeatable) [WARD_REMAP_EXIT]
  -p, --pdeathsig SIG         signal ward gets when its parent dies (not as PID 1) [WARD_PDEATHSIG]
  -s, --subreaper             accepted for tini compatibility; ward is a subreaper whenever it is not PID 1

Stopping:
      --stop-delay DURATION   hold the first SIGTERM this long before forwarding it [WARD_STOP_DELAY]
      --kill-after DURATION   SIGKILL the child this long after a stop signal [WARD_KILL_AFTER]
      --grace DURATION        time left processes get after SIGTERM once the child exits (default 3s) [WARD_GRACE]
      --orphans reap|terminate  what to do with adopted orphans (default reap) [WARD_ORPHANS]

Watching:
      --watch-interval DURATION  how often to sample cgroup and /proc (default 5s) [WARD_WATCH_INTERVAL]
      --no-watch              do not watch (WARD_WATCH=0)
      --warn-memory PCT       working set as % of the memory limit (default 90) [WARD_WARN_MEMORY]
      --warn-throttle PCT     % of CPU periods throttled over 30s (default 20) [WARD_WARN_THROTTLE]
      --warn-pids PCT         pids.current as % of pids.max (default 80) [WARD_WARN_PIDS]
      --warn-zombies N        unreapable zombies under one parent (default 10) [WARD_WARN_ZOMBIES]
      --warn-memory-pressure PCT  PSI memory some avg10 (default 10) [WARD_WARN_MEMORY_PRESSURE]

Reporting:
      --report-file PATH      write the JSON exit report here, at most 4 KiB [WARD_REPORT_FILE]
      --log-format human|json one event per line on stderr (default human) [WARD_LOG_FORMAT]
      --log-level LEVEL       error, warning, info or debug (default info) [WARD_LOG_LEVEL]
  -v, --verbose               more log (repeatable)
  -q, --quiet                 less log (repeatable)
  -h, --help                  print this help
  -V, --version               print the version

DURATION is 500ms, 10s, 2m or a number of seconds; SIG is a name (TERM,
SIGUSR1, RTMIN+1) or a number. Flags override WARD_* variables.
";

/// A usage error: one line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the arguments after argv[0], with `env` as the `WARD_*` source.
pub fn parse<I>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut cfg = Config::default();
    apply_env(&mut cfg, env).map_err(UsageError)?;
    apply_args(&mut cfg, args)
}

fn apply_env(cfg: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let ctx = |name: &'static str| move |e: String| format!("{name}: {e}");
    if let Some(v) = get("WARD_SIGNAL_GROUP") {
        cfg.signal_group = values::boolean(&v).map_err(ctx("WARD_SIGNAL_GROUP"))?;
    }
    if let Some(v) = get("WARD_REWRITE") {
        for item in v.split(',').filter(|s| !s.trim().is_empty()) {
            let (s, d) = values::rewrite_pair(item).map_err(ctx("WARD_REWRITE"))?;
            cfg.rewrite.insert(s, d);
        }
    }
    if let Some(v) = get("WARD_REMAP_EXIT") {
        for item in v.split(',').filter(|s| !s.trim().is_empty()) {
            let (f, t) = values::remap_pair(item).map_err(ctx("WARD_REMAP_EXIT"))?;
            cfg.remap_exit.insert(f, t);
        }
    }
    if let Some(v) = get("WARD_PDEATHSIG") {
        cfg.pdeathsig = Some(crate::signame::parse(&v).map_err(ctx("WARD_PDEATHSIG"))?);
    }
    if let Some(v) = get("WARD_STOP_DELAY") {
        cfg.stop_delay = Some(values::duration(&v).map_err(ctx("WARD_STOP_DELAY"))?);
    }
    if let Some(v) = get("WARD_KILL_AFTER") {
        cfg.kill_after = Some(values::duration(&v).map_err(ctx("WARD_KILL_AFTER"))?);
    }
    if let Some(v) = get("WARD_GRACE") {
        cfg.grace = values::duration(&v).map_err(ctx("WARD_GRACE"))?;
    }
    if let Some(v) = get("WARD_ORPHANS") {
        cfg.orphans = orphan_policy(&v).map_err(ctx("WARD_ORPHANS"))?;
    }
    if let Some(v) = get("WARD_WATCH")
        && !values::boolean(&v).map_err(ctx("WARD_WATCH"))?
    {
        cfg.watch_interval = None;
    }
    if let Some(v) = get("WARD_WATCH_INTERVAL") {
        let d = watch_interval(&v).map_err(ctx("WARD_WATCH_INTERVAL"))?;
        if cfg.watch_interval.is_some() {
            cfg.watch_interval = Some(d);
        }
    }
    if let Some(v) = get("WARD_WARN_MEMORY") {
        cfg.thresholds.memory_pct = values::percent(&v).map_err(ctx("WARD_WARN_MEMORY"))?;
    }
    if let Some(v) = get("WARD_WARN_THROTTLE") {
        cfg.thresholds.throttle_pct = values::percent(&v).map_err(ctx("WARD_WARN_THROTTLE"))?;
    }
    if let Some(v) = get("WARD_WARN_PIDS") {
        cfg.thresholds.pids_pct = values::percent(&v).map_err(ctx("WARD_WARN_PIDS"))?;
    }
    if let Some(v) = get("WARD_WARN_ZOMBIES") {
        cfg.thresholds.zombies = values::count(&v).map_err(ctx("WARD_WARN_ZOMBIES"))?;
    }
    if let Some(v) = get("WARD_WARN_MEMORY_PRESSURE") {
        cfg.thresholds.memory_pressure_pct =
            values::percent(&v).map_err(ctx("WARD_WARN_MEMORY_PRESSURE"))?;
    }
    if let Some(v) = get("WARD_REPORT_FILE") {
        cfg.report_file = Some(PathBuf::from(v));
    }
    if let Some(v) = get("WARD_LOG_FORMAT") {
        cfg.log_format = log_format(&v).map_err(ctx("WARD_LOG_FORMAT"))?;
    }
    if let Some(v) = get("WARD_LOG_LEVEL") {
        cfg.log_level = log_level(&v).map_err(ctx("WARD_LOG_LEVEL"))?;
    }
    Ok(())
}

fn apply_args<I>(cfg: &mut Config, args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut verbosity: i32 = 0;
    let mut watch_off = false;
    let mut interval: Option<Duration> = None;
    let err = |e: lexopt::Error| UsageError(e.to_string());
    let val = |p: &mut lexopt::Parser, flag: &str| -> Result<String, UsageError> {
        let v = p.value().map_err(|e| UsageError(e.to_string()))?;
        v.into_string()
            .map_err(|v| UsageError(format!("invalid value {v:?} for {flag}: not UTF-8")))
    };
    fn with_flag(flag: &'static str) -> impl Fn(String) -> UsageError {
        move |e| UsageError(format!("{flag}: {e}"))
    }
    while let Some(arg) = parser.next().map_err(err)? {
        match arg {
            Short('h') | Long("help") => return Ok(Invocation::Help),
            Short('V') | Long("version") => return Ok(Invocation::Version),
            Short('g') | Long("signal-group") => cfg.signal_group = true,
            Short('s') | Long("subreaper") => {}
            Short('r') | Long("rewrite") => {
                let v = val(&mut parser, "--rewrite")?;
                let (s, d) = values::rewrite_pair(&v).map_err(with_flag("--rewrite"))?;
                cfg.rewrite.insert(s, d);
            }
            Short('e') | Long("remap-exit") => {
                let v = val(&mut parser, "--remap-exit")?;
                let (f, t) = values::remap_pair(&v).map_err(with_flag("--remap-exit"))?;
                cfg.remap_exit.insert(f, t);
            }
            Short('p') | Long("pdeathsig") => {
                let v = val(&mut parser, "--pdeathsig")?;
                cfg.pdeathsig = Some(crate::signame::parse(&v).map_err(with_flag("--pdeathsig"))?);
            }
            Long("stop-delay") => {
                let v = val(&mut parser, "--stop-delay")?;
                cfg.stop_delay = Some(values::duration(&v).map_err(with_flag("--stop-delay"))?);
            }
            Long("kill-after") => {
                let v = val(&mut parser, "--kill-after")?;
                cfg.kill_after = Some(values::duration(&v).map_err(with_flag("--kill-after"))?);
            }
            Long("grace") => {
                let v = val(&mut parser, "--grace")?;
                cfg.grace = values::duration(&v).map_err(with_flag("--grace"))?;
            }
            Long("orphans") => {
                let v = val(&mut parser, "--orphans")?;
                cfg.orphans = orphan_policy(&v).map_err(with_flag("--orphans"))?;
            }
            Long("watch-interval") => {
                let v = val(&mut parser, "--watch-interval")?;
                interval = Some(watch_interval(&v).map_err(with_flag("--watch-interval"))?);
            }
            Long("no-watch") => watch_off = true,
            Long("warn-memory") => {
                let v = val(&mut parser, "--warn-memory")?;
                cfg.thresholds.memory_pct =
                    values::percent(&v).map_err(with_flag("--warn-memory"))?;
            }
            Long("warn-throttle") => {
                let v = val(&mut parser, "--warn-throttle")?;
                cfg.thresholds.throttle_pct =
                    values::percent(&v).map_err(with_flag("--warn-throttle"))?;
            }
            Long("warn-pids") => {
                let v = val(&mut parser, "--warn-pids")?;
                cfg.thresholds.pids_pct = values::percent(&v).map_err(with_flag("--warn-pids"))?;
            }
            Long("warn-zombies") => {
                let v = val(&mut parser, "--warn-zombies")?;
                cfg.thresholds.zombies = values::count(&v).map_err(with_flag("--warn-zombies"))?;
            }
            Long("warn-memory-pressure") => {
                let v = val(&mut parser, "--warn-memory-pressure")?;
                cfg.thresholds.memory_pressure_pct =
                    values::percent(&v).map_err(with_flag("--warn-memory-pressure"))?;
            }
            Long("report-file") => {
                let v = parser.value().map_err(err)?;
                cfg.report_file = Some(PathBuf::from(v));
            }
            Long("log-format") => {
                let v = val(&mut parser, "--log-format")?;
                cfg.log_format = log_format(&v).map_err(with_flag("--log-format"))?;
            }
            Long("log-level") => {
                let v = val(&mut parser, "--log-level")?;
                cfg.log_level = log_level(&v).map_err(with_flag("--log-level"))?;
            }
            Short('v') | Long("verbose") => verbosity += 1,
            Short('q') | Long("quiet") => verbosity -= 1,
            Value(first) => {
                cfg.command.push(first);
                cfg.command.extend(parser.raw_args().map_err(err)?);
                break;
            }
            _ => {
                return Err(UsageError(format!(
                    "{}; see 'ward --help'",
                    arg.unexpected()
                )));
            }
        }
    }
    if cfg.command.is_empty() {
        return Err(UsageError(
            "no command given: usage is ward [OPTIONS] -- COMMAND [ARGS...]".into(),
        ));
    }
    if watch_off {
        cfg.watch_interval = None;
    } else if let Some(d) = interval {
        cfg.watch_interval = Some(d);
    }
    if verbosity != 0 {
        let n = (cfg.log_level as i32 + verbosity).clamp(0, Level::Debug as i32);
        cfg.log_level = match n {
            0 => Level::Error,
            1 => Level::Warning,
            2 => Level::Info,
            _ => Level::Debug,
        };
    }
    Ok(Invocation::Run(Box::new(cfg.clone())))
}

fn orphan_policy(v: &str) -> Result<OrphanPolicy, String> {
    match v.trim() {
        "reap" => Ok(OrphanPolicy::Reap),
        "terminate" => Ok(OrphanPolicy::Terminate),
        _ => Err(format!(
            "invalid orphan policy '{v}': expected reap or terminate"
        )),
    }
}

fn watch_interval(v: &str) -> Result<Duration, String> {
    let d = values::duration(v)?;
    // Below 100 ms the watch would cost more than the trouble it looks for.
    if d < Duration::from_millis(100) {
        return Err(format!("invalid watch interval '{v}': at least 100ms"));
    }
    Ok(d)
}

fn log_format(v: &str) -> Result<Format, String> {
    match v.trim() {
        "human" | "text" => Ok(Format::Human),
        "json" => Ok(Format::Json),
        _ => Err(format!("invalid log format '{v}': expected human or json")),
    }
}

fn log_level(v: &str) -> Result<Level, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(Level::Error),
        "warning" | "warn" => Ok(Level::Warning),
        "info" => Ok(Level::Info),
        "debug" => Ok(Level::Debug),
        _ => Err(format!(
            "invalid log level '{v}': expected error, warning, info or debug"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(args.iter().map(OsString::from), &lookup) {
            Ok(Invocation::Run(cfg)) => Ok(*cfg),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn defaults() {
        let cfg = run(&["--", "app", "-x"], &[]).unwrap();
        assert_eq!(
            cfg.command,
            vec![OsString::from("app"), OsString::from("-x")]
        );
        assert_eq!(cfg.grace, Duration::from_secs(3));
        assert_eq!(cfg.watch_interval, Some(Duration::from_secs(5)));
        assert_eq!(cfg.orphans, OrphanPolicy::Reap);
        assert!(!cfg.signal_group);
    }

    #[test]
    fn command_options_belong_to_the_command() {
        let cfg = run(&["-g", "app", "-g", "--grace", "1"], &[]).unwrap();
        assert!(cfg.signal_group);
        assert_eq!(cfg.command.len(), 4);
        assert_eq!(cfg.grace, Duration::from_secs(3));
    }

    #[test]
    fn all_flags() {
        let cfg = run(
            &[
                "-g",
                "-r",
                "TERM:QUIT",
                "--rewrite=USR1:0",
                "-e",
                "143",
                "-e",
                "3:4",
                "-p",
                "KILL",
                "--stop-delay",
                "2s",
                "--kill-after",
                "5s",
                "--grace",
                "500ms",
                "--orphans",
                "terminate",
                "--watch-interval",
                "1s",
                "--warn-memory",
                "85",
                "--warn-throttle",
                "30",
                "--warn-pids",
                "70",
                "--warn-zombies",
                "5",
                "--warn-memory-pressure",
                "20",
                "--report-file",
                "/tmp/r.json",
                "--log-format",
                "json",
                "-vv",
                "--",
                "app",
            ],
            &[],
        )
        .unwrap();
        assert!(cfg.signal_group);
        assert_eq!(cfg.rewrite.get(&15), Some(&3));
        assert_eq!(cfg.rewrite.get(&libc::SIGUSR1), Some(&0));
        assert_eq!(cfg.remap_exit.apply(143), 0);
        assert_eq!(cfg.remap_exit.apply(3), 4);
        assert_eq!(cfg.pdeathsig, Some(9));
        assert_eq!(cfg.stop_delay, Some(Duration::from_secs(2)));
        assert_eq!(cfg.kill_after, Some(Duration::from_secs(5)));
        assert_eq!(cfg.grace, Duration::from_millis(500));
        assert_eq!(cfg.orphans, OrphanPolicy::Terminate);
        assert_eq!(cfg.watch_interval, Some(Duration::from_secs(1)));
        assert_eq!(cfg.thresholds.memory_pct, 85.0);
        assert_eq!(cfg.thresholds.zombies, 5);
        assert_eq!(cfg.report_file, Some(PathBuf::from("/tmp/r.json")));
        assert_eq!(cfg.log_format, Format::Json);
        assert_eq!(cfg.log_level, Level::Debug);
    }

    #[test]
    fn env_is_read_and_flags_win() {
        let env = [
            ("WARD_GRACE", "7s"),
            ("WARD_SIGNAL_GROUP", "true"),
            ("WARD_REWRITE", "TERM:QUIT,HUP:0"),
            ("WARD_REMAP_EXIT", "143:0"),
            ("WARD_KILL_AFTER", "8s"),
            ("WARD_LOG_FORMAT", "json"),
            ("WARD_WATCH", "0"),
            ("WARD_LOG_LEVEL", "warning"),
        ];
        let cfg = run(&["app"], &env).unwrap();
        assert_eq!(cfg.grace, Duration::from_secs(7));
        assert!(cfg.signal_group);
        assert_eq!(cfg.rewrite.get(&libc::SIGHUP), Some(&0));
        assert_eq!(cfg.remap_exit.apply(143), 0);
        assert_eq!(cfg.kill_after, Some(Duration::from_secs(8)));
        assert_eq!(cfg.log_format, Format::Json);
        assert_eq!(cfg.watch_interval, None);
        assert_eq!(cfg.log_level, Level::Warning);
        let cfg = run(&["--grace", "1s", "--log-format", "human", "app"], &env).unwrap();
        assert_eq!(cfg.grace, Duration::from_secs(1));
        assert_eq!(cfg.log_format, Format::Human);
    }

    #[test]
    fn empty_env_values_are_unset() {
        let cfg = run(&["app"], &[("WARD_GRACE", "")]).unwrap();
        assert_eq!(cfg.grace, Duration::from_secs(3));
    }

    #[test]
    fn bad_input_gives_one_clear_line() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&[], &[], "no command given"),
            (&["--"], &[], "no command given"),
            (&["--bogus", "app"], &[], "--bogus"),
            (
                &["--grace", "soon", "app"],
                &[],
                "--grace: invalid duration 'soon'",
            ),
            (&["-r", "TERM", "app"], &[], "--rewrite: invalid rewrite"),
            (&["-p", "NOPE", "app"], &[], "--pdeathsig: invalid signal"),
            (&["--orphans", "kill", "app"], &[], "invalid orphan policy"),
            (&["--watch-interval", "10ms", "app"], &[], "at least 100ms"),
            (&["--warn-memory", "0", "app"], &[], "invalid percentage"),
            (&["--grace"], &[], "--grace"),
            (
                &["app"],
                &[("WARD_GRACE", "x")],
                "WARD_GRACE: invalid duration",
            ),
            (
                &["app"],
                &[("WARD_SIGNAL_GROUP", "maybe")],
                "WARD_SIGNAL_GROUP",
            ),
        ];
        for (args, env, want) in cases {
            let err = run(args, env).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: multi-line error");
        }
    }

    #[test]
    fn help_and_version() {
        let lookup = |_: &str| None;
        let p = |a: &[&str]| parse(a.iter().map(OsString::from), &lookup).unwrap();
        assert_eq!(p(&["-h"]), Invocation::Help);
        assert_eq!(p(&["--version"]), Invocation::Version);
    }

    #[test]
    fn verbosity_moves_the_level() {
        assert_eq!(run(&["-q", "app"], &[]).unwrap().log_level, Level::Warning);
        assert_eq!(run(&["-qqqq", "app"], &[]).unwrap().log_level, Level::Error);
        assert_eq!(run(&["-v", "app"], &[]).unwrap().log_level, Level::Debug);
    }

    #[test]
    fn no_watch_wins_over_interval() {
        let cfg = run(&["--watch-interval", "2s", "--no-watch", "app"], &[]).unwrap();
        assert_eq!(cfg.watch_interval, None);
    }
}
