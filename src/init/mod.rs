//! The init proper: start the child, run the event loop, shut down.

use crate::cli::Config;

/// Runs `cfg.command` under ward and returns ward's exit code.
pub fn run(_cfg: Config) -> u8 {
    crate::exit::INTERNAL
}
