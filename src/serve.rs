//! The serving thread: answers the metrics endpoint (`--metrics`) and
//! `ward status` from what the board shows, never from the reaping thread.
//!
//! Owns which listeners exist; the HTTP mechanics are in
//! [`crate::metrics::http`], the words and numbers in `metrics` and `status`.
//! It reads only the [`Board`]: no `/proc`, no cgroup files, no locks the
//! reaping thread takes.

use std::sync::Arc;

use crate::cli::Config;
use serde_json::json;

use crate::log::{self, Level};
use crate::metrics::http::{Limits, Listener, MetricsRoutes, Server, ServerHandle};
use crate::metrics::prom;
use crate::watch::board::Board;

/// How long the serving thread waits after its last connection before it
/// drops ward's code pages from the RSS again (a Prometheus scrapes every
/// 15-60 s; a burst of `ward status` calls pays the faults once).
const TRIM_WHEN_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the serving thread now when `--metrics` asks for it (`ward
/// status` is served on it too): the endpoint must be there before a fork
/// storm can take the container's last pids. Without `--metrics`, `None`:
/// the watch thread starts `ward status` a moment after the child
/// ([`start_status`]). `None` also when nothing could be bound or the thread
/// could not start (with a warning logged).
pub fn start(cfg: &Config, board: &Arc<Board>) -> Option<ServerHandle> {
    let addr = cfg.metrics?;
    let mut server = Server::new(Limits::default());
    server.trim_when_idle(TRIM_WHEN_IDLE);
    let mut listeners = 0usize;

    // ---- `ward status`: the abstract socket of this PID namespace.
    listeners += listen_status(&mut server, board);
    // ---- end of `ward status`.

    // --- the Prometheus endpoint (--metrics) ---------------------------
    listeners += usize::from(listen_metrics(&mut server, addr, board));
    // --- end of the Prometheus endpoint ---------------------------------

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

/// Starts the serving thread for `ward status` alone (no `--metrics`).
/// `Ok(None)`: the socket could not be bound (said in the log; trying
/// again would not help). `Err`: the thread could not start (a pids limit
/// reached, say), which a later try may get past.
pub fn start_status(board: &Arc<Board>) -> std::io::Result<Option<ServerHandle>> {
    let mut server = Server::new(Limits::default());
    server.trim_when_idle(TRIM_WHEN_IDLE);
    if listen_status(&mut server, board) == 0 {
        return Ok(None);
    }
    server.spawn().map(Some)
}

/// Adds the `ward status` listener; 1 when it listens, 0 when not. A ward
/// that is not PID 1 may find the name taken by another ward of the same
/// PID namespace (nested wards, tests run side by side): that one answers,
/// so this is said at debug level only, once (the watch thread tries again
/// every few seconds). For PID 1 it is a warning.
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
            static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            // SAFETY: getpid cannot fail.
            let pid1 = unsafe { libc::getpid() } == 1;
            let level = if pid1 { Level::Warning } else { Level::Debug };
            if !pid1 && SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                return 0;
            }
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

/// Binds `--metrics`' TCP listener and routes `GET /metrics` to a render of
/// the board. A bind failure (port taken, address not on this host) costs
/// the endpoint only: one warning, and ward goes on reaping.
fn listen_metrics(server: &mut Server, addr: std::net::SocketAddr, board: &Arc<Board>) -> bool {
    let bound = Listener::bind_tcp(addr).and_then(|l| {
        let at = l.local_addr().unwrap_or(addr);
        let board = board.clone();
        // The view is copied out under the board's lock and rendered after,
        // so the watch thread never waits for a slow render.
        let render = move |out: &mut String| prom::render(&board.metrics_view(), out);
        server
            .listen(l, Box::new(MetricsRoutes::new(render)))
            .map(|()| at)
    });
    match bound {
        Ok(at) => {
            log::event(
                Level::Info,
                "metrics",
                &format!("serving Prometheus metrics at http://{at}/metrics"),
                &[("address", json!(at.to_string()))],
            );
            true
        }
        Err(e) => {
            log::event(
                Level::Warning,
                "metrics_unavailable",
                &format!(
                    "cannot listen on {addr} for --metrics ({e}): no metrics endpoint; reaping goes on"
                ),
                &[("address", json!(addr.to_string()))],
            );
            false
        }
    }
}
