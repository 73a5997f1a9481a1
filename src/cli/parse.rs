//! Applies the `WARD_*` variables, then the arguments, through the flag table
//! to one [`Config`]; flags win over variables.
//!
//! Owns the order of sources and the rules between options (`--no-watch` over
//! `--watch-interval`, `-v`/`-q` counting, a list given anew replacing the
//! default, the command). Names no option: those are in `defs.rs`.

use std::ffi::OsString;

use lexopt::Arg;

use super::defs::{self, Apply, Env, FLAGS, Flag};
use super::draft::Draft;
use super::{EnvLookup, Invocation, UsageError, values};

/// `ward [OPTIONS] [--] COMMAND...`: the environment, then the arguments.
pub(super) fn run_config<I>(args: I, env: EnvLookup) -> Result<Invocation, UsageError>
where
    I: IntoIterator<Item = OsString>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    // The options alone first: `--help` and `--version` answer whatever the
    // variables hold, and a variable whose option is given is not read (a
    // bad value there is no error). A list's variable is always read: its
    // option adds to it.
    let mut given: u64 = 0;
    if let Some(action) = from_args(&mut Draft::new(), args.clone(), &mut given)? {
        return Ok(action);
    }
    let mut draft = Draft::new();
    for (i, flag) in FLAGS.iter().enumerate() {
        if given & 1 << i == 0 {
            env_one(&mut draft, env, flag).map_err(UsageError)?;
        }
    }
    draft.end_source();
    from_args(&mut draft, args, &mut given)?;
    draft.end_source();
    draft.finish()
}

fn env_one(d: &mut Draft, env: EnvLookup, flag: &'static Flag) -> Result<(), String> {
    let Some(name) = flag.env.name() else {
        return Ok(());
    };
    let Some(raw) = env(name) else {
        return Ok(());
    };
    // `WARD_X=` in a Dockerfile or compose file means "not set".
    if raw.to_str().is_some_and(|s| s.trim().is_empty()) {
        return Ok(());
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
    Ok(())
}

/// Applies the options; `Some` when one of them ends parsing (help, version).
/// Each option given that is not a list sets its bit (its index in
/// `FLAGS`) in `given`.
fn from_args<I>(d: &mut Draft, args: I, given: &mut u64) -> Result<Option<Invocation>, UsageError>
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
                    let hint = super::peer_option(&other)
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    return Err(UsageError(format!(
                        "{}{hint}; see 'ward --help'",
                        other.unexpected()
                    )));
                }
            },
        };
        if !flag.repeats
            && let Some(i) = FLAGS.iter().position(|f| std::ptr::eq(f, flag))
        {
            *given |= 1 << i;
        }
        let in_flag = |e: String| UsageError(format!("--{}: {e}", flag.long));
        match flag.apply {
            Apply::Help => return Ok(Some(Invocation::Help)),
            Apply::Version => return Ok(Some(Invocation::Version)),
            Apply::Switch(apply) => apply(d),
            Apply::Text(apply) => {
                let raw = option_value(&mut parser, flag.long).map_err(lexopt_err)?;
                let text = raw
                    .into_string()
                    .map_err(|_| in_flag("value is not UTF-8".into()))?;
                apply(d, &text).map_err(in_flag)?;
            }
            Apply::Raw(apply) => {
                let raw = option_value(&mut parser, flag.long).map_err(lexopt_err)?;
                if raw.is_empty() {
                    // The variable set empty means unset; the flag has no such use.
                    return Err(in_flag("empty path".into()));
                }
                apply(d, raw)
            }
        }
    }
    Ok(None)
}

/// An option's value; never one that starts with `--` (`--report-file --
/// app` took `--` for the path and ran app).
fn option_value(parser: &mut lexopt::Parser, long: &str) -> Result<OsString, lexopt::Error> {
    match parser.value()? {
        v if v.as_encoded_bytes().starts_with(b"--") => Err(lexopt::Error::MissingValue {
            option: Some(format!("--{long}")),
        }),
        v => Ok(v),
    }
}

fn lookup(arg: &Arg) -> Option<&'static Flag> {
    match arg {
        Arg::Short(c) => defs::by_short(*c),
        Arg::Long(name) => defs::by_long(name),
        Arg::Value(_) => None,
    }
}
