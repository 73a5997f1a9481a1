//! The serving thread: answers the metrics endpoint (`--metrics`) and
//! `ward status` from what the board shows, never from the reaping thread.
//!
//! Owns which listeners exist; the HTTP mechanics are in
//! [`crate::metrics::http`], the words and numbers in `metrics` and `status`.
//! It reads only the [`Board`]: no `/proc`, no cgroup files, no locks the
//! reaping thread takes.

use std::sync::Arc;

use crate::cli::Config;
use crate::metrics::http::{Limits, Listener, Server, ServerHandle};
use crate::watch::board::Board;

/// Starts the serving thread when anything is to be served; `None` (with a
/// warning already logged) when nothing is or it could not start.
pub fn start(_cfg: &Config, board: &Arc<Board>) -> Option<ServerHandle> {
    let mut server = Server::new(Limits::default());
    let mut listeners = 0usize;

    // ---- `ward status`: the abstract socket of this PID namespace.
    listeners += listen_status(&mut server, board);
    // ---- end of `ward status`.

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

/// Adds the `ward status` listener; 1 when it listens, 0 when not. A ward
/// that is not PID 1 may find the name taken by another ward of the same
/// PID namespace (nested wards, tests run side by side): that one answers,
/// so this is said at debug level only. For PID 1 it is a warning.
fn listen_status(server: &mut Server, board: &Arc<Board>) -> usize {
    use crate::log::{Level, event};
    let proc_root = std::path::Path::new(crate::procs::DEFAULT_PROC_ROOT);
    let listened = crate::status::channel::listen(proc_root).and_then(|l| {
        server.listen(
            Listener::Unix(l),
            Box::new(crate::status::serve_routes(board.clone())),
        )
    });
    match listened {
        Ok(()) => 1,
        Err(e) => {
            // SAFETY: getpid cannot fail.
            let pid1 = unsafe { libc::getpid() } == 1;
            let level = if pid1 { Level::Warning } else { Level::Debug };
            event(
                level,
                "status_unavailable",
                &format!("ward status cannot reach this ward: cannot listen on its socket ({e})"),
                &[],
            );
            0
        }
    }
}
