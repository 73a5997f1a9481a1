//! Command line and `WARD_*` environment: turns them into one [`Invocation`].
//!
//! Owns option names, defaults and the help text. Every option is defined once,
//! in [`defs::FLAGS`]; argument and environment parsing ([`parse`]), `--help`
//! and the README's options table ([`help`]) are derived from it. Nothing here
//! does I/O beyond reading the environment through the lookup it is given, so
//! every rule is unit tested.

pub mod defs;
mod draft;
pub mod help;
mod parse;
pub mod values;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
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
    /// Unreapable zombies under one parent (`--warn-zombies`); at most
    /// [`defs::MAX_ZOMBIES`], so it fits any process count.
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
    /// The command and its arguments; never empty, and `command[0]` is not empty.
    pub command: Vec<OsString>,
    /// Forward signals to the child's whole process group (`-g`).
    pub signal_group: bool,
    /// Signal rewrites: received -> forwarded; 0 drops the signal.
    pub rewrite: BTreeMap<i32, i32>,
    /// Exit code remaps applied to ward's own exit code.
    pub remap_exit: ExitRemap,
    /// Hold the first SIGTERM this long before forwarding it.
    pub stop_delay: Option<Duration>,
    /// SIGKILL the child this long after a stop signal was forwarded; never zero.
    pub kill_after: Option<Duration>,
    /// Signals that count as a stop request (`--stop-signal`): they start
    /// `kill_after` and the "still running" lines. Never empty, no duplicates.
    pub stop_signals: Vec<i32>,
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
    /// Lower ward's own `oom_score_adj` or raise the child's (`--no-oom-adjust`
    /// turns it off).
    pub oom_adjust: bool,
    /// Address of the Prometheus endpoint (`--metrics`); `None`: off.
    pub metrics: Option<SocketAddr>,
    /// CloudWatch EMF lines on stderr (`--emf`).
    pub emf: bool,
    /// Time between EMF lines.
    pub emf_interval: Duration,
    /// CloudWatch namespace of the EMF lines.
    pub emf_namespace: String,
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
            stop_signals: vec![libc::SIGTERM, libc::SIGINT],
            grace: Duration::from_secs(3),
            orphans: OrphanPolicy::Reap,
            pdeathsig: None,
            log_level: Level::Info,
            log_format: Format::Human,
            watch_interval: Some(Duration::from_secs(5)),
            thresholds: Thresholds::default(),
            report_file: None,
            oom_adjust: true,
            metrics: None,
            emf: false,
            emf_interval: Duration::from_secs(60),
            emf_namespace: crate::metrics::emf::NAMESPACE.into(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Run a command under ward.
    Run(Box<Config>),
    /// `ward status ARGS...`: the arguments after `status`.
    Status(Vec<OsString>),
    /// `ward check ARGS...`: the arguments after `check`.
    Check(Vec<OsString>),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

/// A usage error: one line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Where `WARD_*` values come from: a name in, the raw value out. Values are
/// `OsString` so that one which is not UTF-8 is reported, not lost.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Parses the arguments after argv[0], with `env` as the `WARD_*` source.
///
/// `status` or `check` as the very first argument selects a subcommand, which
/// gets the remaining arguments untouched (and reads no `WARD_*` variable
/// here). Anything else runs a program; `--` always means a program, so
/// `ward -- status` runs one named status.
pub fn parse<I>(args: I, env: EnvLookup) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut args = args.into_iter().peekable();
    let sub = args.peek().and_then(|a| a.to_str()).and_then(|a| match a {
        "status" => Some(Invocation::Status as fn(Vec<OsString>) -> Invocation),
        "check" => Some(Invocation::Check),
        _ => None,
    });
    if let Some(make) = sub {
        args.next();
        return Ok(make(args.collect()));
    }
    parse::run_config(args, env)
}

/// True for a `WARD_*` name no option reads: a misspelt variable
/// (`WARD_KILL_AFTR`) would otherwise be ignored without a word. Not for
/// the names an image's build sets to fetch ward (`WARD_VERSION`,
/// `WARD_SHA256`, ...), which are no option's.
pub fn unknown_variable(name: &[u8]) -> bool {
    const FETCHING: [&[u8]; 6] = [
        b"_VERSION",
        b"_SHA256",
        b"_SHA512",
        b"_CHECKSUM",
        b"_URL",
        b"_HOME",
    ];
    name.starts_with(b"WARD_")
        && !FETCHING.iter().any(|s| name.ends_with(s))
        && !defs::FLAGS
            .iter()
            .any(|f| f.env.name().is_some_and(|v| v.as_bytes() == name))
}

/// A variable of tini's or dumb-init's, which someone moving to ward may
/// have left in the image: what ward does instead, in words. It would be
/// ignored without a word otherwise (tini's `-g` as `TINI_KILL_PROCESS_GROUP`
/// is then silently lost).
pub fn peer_variable(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"TINI_KILL_PROCESS_GROUP" => "tini's -g: use -g or WARD_SIGNAL_GROUP",
        b"TINI_SUBREAPER" => "tini's: ward is a subreaper whenever it is not PID 1",
        b"TINI_VERBOSITY" => "tini's: use --log-level or WARD_LOG_LEVEL",
        b"DUMB_INIT_SETSID" => {
            "dumb-init's: ward signals only its child (as =0 asks); the whole group with -g or WARD_SIGNAL_GROUP"
        }
        b"DUMB_INIT_DEBUG" => "dumb-init's: use --log-level debug",
        // Any other (`TINI_VERSION`, a Dockerfile's for fetching tini) is
        // neither's to read.
        _ => return None,
    })
}

/// An option of tini's or dumb-init's that ward does not take: what ward
/// does instead, in words, for the usage error.
pub fn peer_option(arg: &lexopt::Arg<'_>) -> Option<&'static str> {
    use lexopt::Arg::{Long, Short};
    Some(match arg {
        Short('w') => {
            "tini's -w: ward counts the orphans it reaps in reaping_summary, at --log-level debug"
        }
        Short('c') | Long("single-child") => {
            "dumb-init's: ward signals only its child already; leave it out"
        }
        _ => return None,
    })
}

/// The entries of the C `environ` block, in order, as bytes (`NAME=value`).
/// Call it before any thread exists, so that nothing changes the block
/// meanwhile.
fn environ_entries(mut each: impl FnMut(&[u8])) {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is a null-terminated array of C strings, unchanged
    // while no other thread runs (see above).
    unsafe {
        let mut at = environ;
        while !at.is_null() && !(*at).is_null() {
            each(std::ffi::CStr::from_ptr(*at).to_bytes());
            at = at.add(1);
        }
    }
}

/// This process's `WARD_*` variables, name and value, in the block's order:
/// one pass over `environ` where the option table's two dozen lookups by
/// `getenv` each compared every variable with the name (about 35,000
/// instructions before the child starts, in a 35-variable environment).
/// Call it before any thread exists.
pub fn ward_variables_now() -> Vec<(Vec<u8>, OsString)> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut out = Vec::new();
    environ_entries(|entry| {
        if let Some((name, value)) = ward_entry(entry) {
            out.push((
                name.to_vec(),
                std::ffi::OsStr::from_bytes(value).to_os_string(),
            ));
        }
    });
    out
}

/// `WARD_X=value` split at its first `=`; `None` for any other variable.
fn ward_entry(entry: &[u8]) -> Option<(&[u8], &[u8])> {
    if !entry.starts_with(b"WARD_") {
        return None;
    }
    let eq = entry.iter().position(|&b| b == b'=')?;
    Some((&entry[..eq], &entry[eq + 1..]))
}

/// `name`'s value among `vars` ([`ward_variables_now`]), the first as
/// `getenv` would; any name not `WARD_*` is asked of the environment.
pub fn variable(vars: &[(Vec<u8>, OsString)], name: &str) -> Option<OsString> {
    if !name.starts_with("WARD_") {
        return std::env::var_os(name);
    }
    vars.iter()
        .find(|(n, _)| n.as_slice() == name.as_bytes())
        .map(|(_, v)| v.clone())
}

/// The [`unknown_variable`]s and [`peer_variable`]s of this process's
/// environment, in its order, each with its hint (a peer's); read from the
/// C `environ` block: std's iterator copies every variable and costs 2 KiB
/// of binary. Call it before any thread exists, so that nothing changes
/// the block meanwhile.
pub fn unknown_variables_now() -> Vec<(String, Option<&'static str>)> {
    let mut out = Vec::new();
    environ_entries(|entry| {
        let name = entry.split(|&b| b == b'=').next().unwrap_or(entry);
        let peer = peer_variable(name);
        if unknown_variable(name) || peer.is_some() {
            out.push((String::from_utf8_lossy(name).into_owned(), peer));
        }
    });
    out
}

/// The variables of [`unknown_variables_now`] in words, comma-separated,
/// each peer's hint in parentheses after its name.
pub fn unknown_variables_words(vars: &[(String, Option<&'static str>)]) -> String {
    let mut out = String::new();
    for (name, hint) in vars {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(name);
        if let Some(hint) = hint {
            out.push_str(" (");
            out.push_str(hint);
            out.push(')');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn ward_variables_are_split_at_the_first_equals_sign() {
        assert_eq!(
            ward_entry(b"WARD_REWRITE=15:2=3"),
            Some((&b"WARD_REWRITE"[..], &b"15:2=3"[..]))
        );
        assert_eq!(
            ward_entry(b"WARD_WATCH="),
            Some((&b"WARD_WATCH"[..], &b""[..]))
        );
        assert_eq!(ward_entry(b"PATH=/bin"), None);
        assert_eq!(ward_entry(b"XWARD_WATCH=0"), None);
        assert_eq!(ward_entry(b"WARD_NOEQUALS"), None);
    }

    #[test]
    fn a_variable_is_the_first_of_its_name_as_getenv_has_it() {
        let vars = vec![
            (b"WARD_GRACE".to_vec(), OsString::from("3s")),
            (b"WARD_GRACE_X".to_vec(), OsString::from("no")),
            (b"WARD_GRACE".to_vec(), OsString::from("9s")),
        ];
        assert_eq!(variable(&vars, "WARD_GRACE"), Some("3s".into()));
        assert_eq!(variable(&vars, "WARD_WATCH"), None);
        assert_eq!(variable(&[], "WARD_GRACE"), None);
        // Not ward's: asked of the environment itself.
        assert_eq!(variable(&vars, "PATH"), std::env::var_os("PATH"));
    }

    #[test]
    fn unknown_ward_variables_are_named_and_others_left_alone() {
        for known in ["WARD_KILL_AFTER", "WARD_WATCH", "WARD_LOG_FORMAT"] {
            assert!(!unknown_variable(known.as_bytes()), "{known}");
        }
        for other in [
            "PATH",
            "WARDEN",
            "ward_grace",
            "WARD_VERSION",
            "WARD_SHA256",
            "WARD_HOME",
        ] {
            assert!(!unknown_variable(other.as_bytes()), "{other}");
        }
        for typo in ["WARD_KILL_AFTR", "WARD_", "WARD_GRACE_"] {
            assert!(unknown_variable(typo.as_bytes()), "{typo}");
        }
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(&str, OsString)> = env.iter().map(|(k, v)| (*k, v.into())).collect();
        run_os(args.iter().map(OsString::from).collect(), &env)
    }

    fn run_os(args: Vec<OsString>, env: &[(&str, OsString)]) -> Result<Config, String> {
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        match parse(args, &lookup) {
            Ok(Invocation::Run(cfg)) => Ok(*cfg),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.0),
        }
    }

    fn invocation(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from), &|_: &str| None)
    }

    fn not_utf8() -> OsString {
        OsString::from_vec(b"3\xffs".to_vec())
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
    fn metrics_and_emf() {
        let cfg = run(&["app"], &[]).unwrap();
        assert_eq!((cfg.metrics, cfg.emf), (None, false));
        assert_eq!(cfg.emf_interval, Duration::from_secs(60));
        let cfg = run(
            &["--metrics", ":9464", "--emf-interval", "2m", "app"],
            &[("WARD_EMF", "1"), ("WARD_EMF_NAMESPACE", "shop")],
        )
        .unwrap();
        assert_eq!(cfg.metrics, Some("0.0.0.0:9464".parse().unwrap()));
        assert!(cfg.emf);
        assert_eq!(cfg.emf_interval, Duration::from_secs(120));
        assert_eq!(cfg.emf_namespace, "shop");
        let cfg = run(&["app"], &[("WARD_METRICS", "[::1]:9100")]).unwrap();
        assert_eq!(cfg.metrics, Some("[::1]:9100".parse().unwrap()));
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
                &["-w", "app"],
                &[],
                "invalid option '-w' (tini's -w: ward counts the orphans it reaps in reaping_summary, at --log-level debug); see 'ward --help'",
            ),
            (
                &["--single-child", "app"],
                &[],
                "(dumb-init's: ward signals only its child already; leave it out)",
            ),
            (&["-c", "app"], &[], "(dumb-init's: ward signals only"),
            (
                &["--grace", "soon", "app"],
                &[],
                "--grace: invalid duration 'soon'",
            ),
            (&["-r", "TERM", "app"], &[], "--rewrite: invalid rewrite"),
            (&["-p", "NOPE", "app"], &[], "--pdeathsig: invalid signal"),
            (&["--orphans", "kill", "app"], &[], "invalid orphan policy"),
            (&["--watch-interval", "10ms", "app"], &[], "at least 100ms"),
            (
                &["--metrics", "9464", "app"],
                &[],
                "--metrics: invalid metrics address",
            ),
            (&["app"], &[("WARD_METRICS", "host:1")], "WARD_METRICS"),
            (&["--emf-interval", "500ms", "app"], &[], "at least 1s"),
            (
                &["--emf-namespace", "a\"b", "app"],
                &[],
                "invalid EMF namespace",
            ),
            (&["--warn-memory", "0", "app"], &[], "invalid percentage"),
            (&["--warn-zombies", "0", "app"], &[], "invalid count"),
            (&["-g=yes", "app"], &[], "-g"),
            (&["--kill-after", "0", "app"], &[], "must be above 0"),
            (&["--", ""], &[], "empty command name"),
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
        assert_eq!(invocation(&["-h"]), Ok(Invocation::Help));
        assert_eq!(invocation(&["--version"]), Ok(Invocation::Version));
        assert_eq!(invocation(&["-g", "--help", "app"]), Ok(Invocation::Help));
    }

    #[test]
    fn a_bad_variable_neither_blocks_help_nor_outlives_its_option() {
        let bad = |env: &[(&str, &str)], args: &[&str]| {
            let env: Vec<(&str, OsString)> = env.iter().map(|(k, v)| (*k, v.into())).collect();
            let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
            parse(args.iter().map(OsString::from), &lookup)
        };
        // Before, the variable's error came first, whatever the arguments.
        let grace = [("WARD_GRACE", "bad"), ("WARD_SIGNAL_GROUP", "maybe")];
        assert_eq!(bad(&grace, &["--help"]), Ok(Invocation::Help));
        assert_eq!(bad(&grace, &["-V"]), Ok(Invocation::Version));
        let Ok(Invocation::Run(cfg)) = bad(&grace, &["--grace", "1s", "-g", "app"]) else {
            panic!("the options replace both bad variables");
        };
        assert_eq!(cfg.grace, Duration::from_secs(1));
        assert!(cfg.signal_group);
        // Only the option given lifts its own variable's error.
        let err = bad(&grace, &["--grace", "1s", "app"]).unwrap_err().0;
        assert!(err.starts_with("WARD_SIGNAL_GROUP:"), "{err}");
        // A list's option adds to its variable, which is still read.
        let err = bad(&[("WARD_REWRITE", "TERM")], &["-r", "HUP:0", "app"])
            .unwrap_err()
            .0;
        assert!(err.starts_with("WARD_REWRITE: invalid rewrite"), "{err}");
        // An error in the arguments comes before one in a variable.
        let err = bad(&grace, &["--grace", "x", "app"]).unwrap_err().0;
        assert!(err.starts_with("--grace: invalid duration"), "{err}");
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

    #[test]
    fn subcommands_only_as_the_very_first_argument() {
        let os = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(invocation(&["status"]), Ok(Invocation::Status(vec![])));
        assert_eq!(
            invocation(&["status", "--json", "--", "x"]),
            Ok(Invocation::Status(os(&["--json", "--", "x"])))
        );
        assert_eq!(
            invocation(&["check", "-h"]),
            Ok(Invocation::Check(os(&["-h"])))
        );
        // A subcommand reads no WARD_* variable here, so a bad one cannot
        // stop `ward status` from looking at a running ward.
        let bad = |_: &str| Some(OsString::from("bogus"));
        assert!(matches!(
            parse(os(&["check"]), &bad),
            Ok(Invocation::Check(_))
        ));
        // `--` and options before it always mean a program.
        assert_eq!(
            run(&["--", "status"], &[]).unwrap().command,
            os(&["status"])
        );
        assert_eq!(run(&["-g", "check"], &[]).unwrap().command, os(&["check"]));
        assert_eq!(run(&["statuses"], &[]).unwrap().command, os(&["statuses"]));
        assert_eq!(
            run(&["app", "status"], &[]).unwrap().command,
            os(&["app", "status"])
        );
    }

    #[test]
    fn stop_signals_default_replace_and_accumulate() {
        let sigs = |args: &[&str], env: &[(&str, &str)]| run(args, env).unwrap().stop_signals;
        assert_eq!(sigs(&["app"], &[]), vec![libc::SIGTERM, libc::SIGINT]);
        assert_eq!(
            sigs(&["--stop-signal", "QUIT", "app"], &[]),
            vec![libc::SIGQUIT]
        );
        assert_eq!(
            sigs(&["--stop-signal", "QUIT", "--stop-signal=USR1", "app"], &[]),
            vec![libc::SIGQUIT, libc::SIGUSR1]
        );
        assert_eq!(
            sigs(&["app"], &[("WARD_STOP_SIGNAL", "HUP, TERM,")]),
            vec![libc::SIGHUP, libc::SIGTERM]
        );
        // Flags win: a flag's list replaces the variable's.
        assert_eq!(
            sigs(
                &["--stop-signal", "USR2", "app"],
                &[("WARD_STOP_SIGNAL", "HUP")]
            ),
            vec![libc::SIGUSR2]
        );
        assert_eq!(
            sigs(
                &["--stop-signal", "TERM", "--stop-signal", "15", "app"],
                &[]
            ),
            vec![libc::SIGTERM]
        );
        for bad in ["KILL", "STOP", "CHLD", "9"] {
            let err = run(&["--stop-signal", bad, "app"], &[]).unwrap_err();
            assert!(
                err.starts_with("--stop-signal: invalid stop signal"),
                "{err}"
            );
            let err = run(&["app"], &[("WARD_STOP_SIGNAL", bad)]).unwrap_err();
            assert!(
                err.starts_with("WARD_STOP_SIGNAL: invalid stop signal"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error() {
        let err = run_os(vec!["app".into()], &[("WARD_GRACE", not_utf8())]).unwrap_err();
        assert_eq!(err, "WARD_GRACE: value is not UTF-8");
        let err = run_os(vec!["app".into()], &[("WARD_WATCH", not_utf8())]).unwrap_err();
        assert_eq!(err, "WARD_WATCH: value is not UTF-8");
        let err = run_os(vec!["app".into()], &[("WARD_REWRITE", not_utf8())]).unwrap_err();
        assert_eq!(err, "WARD_REWRITE: value is not UTF-8");
        let err = run_os(vec!["--grace".into(), not_utf8(), "app".into()], &[]).unwrap_err();
        assert_eq!(err, "--grace: value is not UTF-8");
        // A path is bytes: the report file may have any name.
        let cfg = run_os(vec!["app".into()], &[("WARD_REPORT_FILE", not_utf8())]).unwrap();
        assert_eq!(cfg.report_file, Some(PathBuf::from(not_utf8())));
    }

    #[test]
    fn an_empty_command_name_is_an_error() {
        assert_eq!(run(&["--", ""], &[]).unwrap_err(), "empty command name");
        assert_eq!(run(&["", "x"], &[]).unwrap_err(), "empty command name");
        // Only the name: empty arguments are the command's business.
        assert_eq!(run(&["app", ""], &[]).unwrap().command.len(), 2);
    }

    #[test]
    fn kill_after_must_be_above_zero() {
        for zero in ["0", "0s", "0ms"] {
            let err = run(&["--kill-after", zero, "app"], &[]).unwrap_err();
            assert!(err.starts_with("--kill-after: "), "{err}");
            assert!(err.contains("must be above 0"), "{err}");
            let err = run(&["app"], &[("WARD_KILL_AFTER", zero)]).unwrap_err();
            assert!(err.starts_with("WARD_KILL_AFTER: "), "{err}");
        }
        let cfg = run(&["--kill-after", "1ms", "app"], &[]).unwrap();
        assert_eq!(cfg.kill_after, Some(Duration::from_millis(1)));
    }

    #[test]
    fn rewrites_of_signals_ward_never_receives_are_refused() {
        for src in ["KILL", "STOP", "CHLD", "TTIN", "TTOU"] {
            let err = run(&["-r", &format!("{src}:TERM"), "app"], &[]).unwrap_err();
            assert!(err.starts_with("--rewrite: invalid rewrite"), "{err}");
            assert!(err.contains(&format!("SIG{src} ")), "{err}");
            let env = [("WARD_REWRITE", format!("HUP:0,{src}:0"))];
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let err = run(&["app"], &env).unwrap_err();
            assert!(err.starts_with("WARD_REWRITE: invalid rewrite"), "{err}");
        }
        let err = run(&["-r", "USR1:CHLD", "app"], &[]).unwrap_err();
        assert!(err.contains("SIGCHLD"), "{err}");
    }

    /// Two different pairs for one FROM or SRC in one source: which counts
    /// was silent (the last). The same pair twice is fine, and the command
    /// line still overrides the variable.
    #[test]
    fn contradicting_pairs_in_one_source_are_refused() {
        let err = run(&["-e", "1:0", "-e", "1:3", "app"], &[]).unwrap_err();
        assert_eq!(
            err,
            "--remap-exit: '1:3' contradicts an earlier pair for the same FROM; give each once"
        );
        let err = run(&["app"], &[("WARD_REMAP_EXIT", "1:3,1:4")]).unwrap_err();
        assert!(
            err.starts_with("WARD_REMAP_EXIT: '1:4' contradicts"),
            "{err}"
        );
        let err = run(&["-r", "TERM:KILL", "-r", "TERM:QUIT", "app"], &[]).unwrap_err();
        assert!(
            err.starts_with("--rewrite: 'TERM:QUIT' contradicts"),
            "{err}"
        );
        let cfg = run(
            &[
                "-e", "143", "-e", "143:0", "-r", "HUP:0", "-r", "HUP:0", "app",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(cfg.remap_exit.apply(143), 0);
        let cfg = run(&["-e", "1:0", "app"], &[("WARD_REMAP_EXIT", "1:3")]).unwrap();
        assert_eq!(cfg.remap_exit.apply(1), 0);
    }

    #[test]
    fn warn_zombies_fits_what_the_watch_compares_it_with() {
        // The watch compares per-parent zombie counts as u32; 2^32 would
        // become 0 there and warn on the first zombie.
        for big in ["4294967296", "4194305", "18446744073709551615"] {
            let err = run(&["--warn-zombies", big, "app"], &[]).unwrap_err();
            assert!(err.starts_with("--warn-zombies: invalid count"), "{err}");
            assert!(run(&["app"], &[("WARD_WARN_ZOMBIES", big)]).is_err());
        }
        let max = defs::MAX_ZOMBIES.to_string();
        let cfg = run(&["--warn-zombies", &max, "app"], &[]).unwrap();
        assert_eq!(cfg.thresholds.zombies, defs::MAX_ZOMBIES);
        assert!(u32::try_from(cfg.thresholds.zombies).is_ok());
    }

    #[test]
    fn watch_variables_and_flags() {
        let iv = |args: &[&str], env: &[(&str, &str)]| run(args, env).unwrap().watch_interval;
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(iv(&["app"], &[("WARD_WATCH", "0")]), None);
        assert_eq!(iv(&["app"], &[("WARD_WATCH", "1")]), s(5));
        assert_eq!(
            iv(
                &["app"],
                &[("WARD_WATCH", "0"), ("WARD_WATCH_INTERVAL", "2s")]
            ),
            None
        );
        assert_eq!(iv(&["app"], &[("WARD_WATCH_INTERVAL", "2s")]), s(2));
        // Flags win over variables, both ways.
        assert_eq!(
            iv(&["--watch-interval", "2s", "app"], &[("WARD_WATCH", "0")]),
            s(2)
        );
        assert_eq!(iv(&["--no-watch", "app"], &[("WARD_WATCH", "1")]), None);
    }
}
