//! Applies the `WARD_*` variables, then the arguments, through the flag table
//! to one [`Config`]; flags win over variables.
//!
//! Owns the order of sources and the rules between options (`--no-watch` over
//! `--watch-interval`, `-v`/`-q` counting, a list given anew replacing the
//! default, the command). Names no option: those are in `defs.rs`.

use std::ffi::OsString;
use std::time::Duration;

use lexopt::Arg;

use super::defs::{self, Apply, Env, FLAGS, Flag};
use super::{Config, EnvLookup, Invocation, UsageError, values};
use crate::log::Level;

/// A [`Config`] being built, with what the table's appliers need beyond it.
pub struct Draft {
    pub(super) cfg: Config,
    /// `-v` minus `-q`.
    pub(super) verbosity: i32,
    /// `--no-watch` (or `WARD_WATCH=0`) in the current source.
    pub(super) no_watch: bool,
    /// `--watch-interval` in the current source.
    pub(super) interval: Option<Duration>,
    /// A `--stop-signal` was given in the current source.
    stop_signals_given: bool,
}

impl Draft {
    pub(super) fn new() -> Draft {
        Draft {
            cfg: Config::default(),
            verbosity: 0,
            no_watch: false,
            interval: None,
            stop_signals_given: false,
        }
    }

    /// The first stop signal of a source replaces the list so far (the
    /// default, or the variable's); later ones add to it.
    pub(super) fn add_stop_signal(&mut self, sig: i32) {
        if !self.stop_signals_given {
            self.cfg.stop_signals.clear();
            self.stop_signals_given = true;
        }
        if !self.cfg.stop_signals.contains(&sig) {
            self.cfg.stop_signals.push(sig);
        }
    }

    /// Settles what one source (environment, arguments) said. Within a
    /// source `--no-watch` beats an interval in any order; a later source
    /// overrides an earlier one, so `--watch-interval` turns watching back on
    /// after `WARD_WATCH=0`.
    pub(super) fn end_source(&mut self) {
        if self.no_watch {
            self.cfg.watch_interval = None;
        } else if let Some(t) = self.interval {
            self.cfg.watch_interval = Some(t);
        }
        self.no_watch = false;
        self.interval = None;
        self.stop_signals_given = false;
    }

    fn finish(mut self) -> Result<Invocation, UsageError> {
        match self.cfg.command.first() {
            None => {
                return Err(UsageError(
                    "no command given: usage is ward [OPTIONS] [--] COMMAND [ARGS...]".into(),
                ));
            }
            // exec("") fails with ENOENT; saying so now beats a confusing 127.
            Some(name) if name.is_empty() => {
                return Err(UsageError("empty command name".into()));
            }
            Some(_) => {}
        }
        if self.verbosity != 0 {
            let n = (self.cfg.log_level as i32 + self.verbosity).clamp(0, Level::Debug as i32);
            self.cfg.log_level = match n {
                0 => Level::Error,
                1 => Level::Warning,
                2 => Level::Info,
                _ => Level::Debug,
            };
        }
        Ok(Invocation::Run(Box::new(self.cfg)))
    }
}

/// `ward [OPTIONS] [--] COMMAND...`: the environment, then the arguments.
pub(super) fn run_config<I>(args: I, env: EnvLookup) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut draft = Draft::new();
    from_env(&mut draft, env).map_err(UsageError)?;
    draft.end_source();
    if let Some(action) = from_args(&mut draft, args)? {
        return Ok(action);
    }
    draft.end_source();
    draft.finish()
}

fn from_env(d: &mut Draft, env: EnvLookup) -> Result<(), String> {
    for flag in FLAGS {
        let Some(name) = flag.env.name() else {
            continue;
        };
        let Some(raw) = env(name) else {
            continue;
        };
        // `WARD_X=` in a Dockerfile or compose file means "not set".
        if raw.to_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let in_var = |e: String| format!("{name}: {e}");
        let text = |raw: OsString| {
            raw.into_string()
                .map_err(|_| format!("{name}: value is not UTF-8"))
        };
        match flag.apply {
            Apply::Raw(apply) => apply(d, raw),
            Apply::Text(apply) if flag.repeats => {
                for item in text(raw)?.split(',').filter(|s| !s.trim().is_empty()) {
                    apply(d, item).map_err(in_var)?;
                }
            }
            Apply::Text(apply) => apply(d, &text(raw)?).map_err(in_var)?,
            Apply::Switch(apply) => {
                let on = values::boolean(&text(raw)?).map_err(in_var)?;
                if on == matches!(flag.env, Env::Var(_)) {
                    apply(d);
                }
            }
            Apply::Help | Apply::Version => {}
        }
    }
    Ok(())
}

/// Applies the options; `Some` when one of them ends parsing (help, version).
fn from_args<I>(d: &mut Draft, args: I) -> Result<Option<Invocation>, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let lexopt_err = |e: lexopt::Error| UsageError(e.to_string());
    while let Some(arg) = parser.next().map_err(lexopt_err)? {
        let flag = match arg {
            Arg::Value(first) => {
                // The first operand is the command; everything after it,
                // options included, belongs to the command.
                d.cfg.command.push(first);
                d.cfg.command.extend(parser.raw_args().map_err(lexopt_err)?);
                break;
            }
            other => match lookup(&other) {
                Some(flag) => flag,
                None => {
                    return Err(UsageError(format!(
                        "{}; see 'ward --help'",
                        other.unexpected()
                    )));
                }
            },
        };
        let in_flag = |e: String| UsageError(format!("--{}: {e}", flag.long));
        match flag.apply {
            Apply::Help => return Ok(Some(Invocation::Help)),
            Apply::Version => return Ok(Some(Invocation::Version)),
            Apply::Switch(apply) => apply(d),
            Apply::Text(apply) => {
                let raw = parser.value().map_err(lexopt_err)?;
                let text = raw
                    .into_string()
                    .map_err(|_| in_flag("value is not UTF-8".into()))?;
                apply(d, &text).map_err(in_flag)?;
            }
            Apply::Raw(apply) => apply(d, parser.value().map_err(lexopt_err)?),
        }
    }
    Ok(None)
}

fn lookup(arg: &Arg) -> Option<&'static Flag> {
    match arg {
        Arg::Short(c) => defs::by_short(*c),
        Arg::Long(name) => defs::by_long(name),
        Arg::Value(_) => None,
    }
}
