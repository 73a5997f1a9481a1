//! A [`Config`] being built from one source after another (environment,
//! then arguments), with the little state the flag table's appliers need.

use std::time::Duration;

use super::{Config, Invocation, UsageError};
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
    /// The `-r` sources (signals) and `-e` sources (codes, + 256) given in
    /// the current source, to refuse a second, different pair for one.
    pairs_given: Vec<i32>,
}

impl Draft {
    pub(super) fn new() -> Draft {
        Draft {
            cfg: Config::default(),
            verbosity: 0,
            no_watch: false,
            interval: None,
            stop_signals_given: false,
            pairs_given: Vec::new(),
        }
    }

    /// A `-r`/`-e` pair for `key` (a signal, or an exit code + 256): a
    /// second one in the same source must say the same as the first, which
    /// `had` holds (the map's value before this pair), or which one counts
    /// would be silent. A later source overrides an earlier one.
    pub(super) fn check_pair<T: PartialEq>(
        &mut self,
        key: i32,
        had: Option<T>,
        new: &T,
        text: &str,
    ) -> Result<(), String> {
        if self.pairs_given.contains(&key) {
            if had.as_ref() != Some(new) {
                return Err(format!(
                    "'{text}' contradicts an earlier pair for the same {}; give each once",
                    if key >= 256 { "FROM" } else { "SRC" }
                ));
            }
        } else {
            self.pairs_given.push(key);
        }
        Ok(())
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
        self.pairs_given.clear();
    }

    pub(super) fn finish(mut self) -> Result<Invocation, UsageError> {
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
