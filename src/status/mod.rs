//! `ward status`: the doctor for images without `ps`. Owns its options,
//! what it gathers and its exit codes; it asks PID 1 ward for its history
//! over [`channel`] and reads `/proc` and the cgroup itself, never changing
//! anything. PID 1 ward's side is only [`serve_routes`], run by the serving
//! thread.
//!
//! - [`channel`]: the abstract socket and the bounded fetch;
//! - [`doc`]: the documents (served and printed) and the schema number;
//! - [`read`]: the served document read back from its JSON text;
//! - [`tree`]: the process tree, zombies grouped under their parent;
//! - [`screen`]: the words for a person.

pub mod channel;
pub mod doc;
pub mod read;
pub mod screen;
pub mod tree;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::http::{Method, RequestHead, Response, Routes};
use crate::watch::board::Board;
use doc::{ContainerDoc, LiveDoc, SCHEMA};
use tree::Tree;

/// Exit code when something could be read.
pub const OK: u8 = 0;
/// Exit code when nothing could: no ward, no `/proc`, no cgroup.
pub const NOTHING_READ: u8 = 1;

/// How long the client waits for PID 1 ward.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// The path PID 1 ward serves the document on.
pub const PATH: &str = "/status";

/// `ward status --help`.
pub const HELP: &str = "\
Usage: ward status [--json]

What the container is doing, for images without ps, top or curl:
limits and usage side by side (memory working set and its breakdown, CPU
quota and throttling over 1 and 5 minutes, pids, pressure), the process tree
with zombies under the parent that fails to reap them, and PID 1 ward's
warnings, OOM kills and stop state. Run it inside the container:
  docker exec CONTAINER /ward status
  kubectl exec POD -- /ward status

When PID 1 is not ward or does not answer within 1 s, it reads /proc and
the cgroup itself and says that history is unavailable.

Options:
      --json    one JSON document (field \"schema\" gives its version)
  -h, --help    this help

Exit codes: 0, or 1 when nothing at all could be read; 2 for bad usage.
";

/// The whole `ward status` document (`--json`), and what the screen renders.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusDoc {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `ward` when a ward of this PID namespace answered, `proc` when
    /// everything was read directly.
    pub source: String,
    /// Why there is no history, when there is none.
    pub history_unavailable: Option<String>,
    /// What ward served (its `container` moved to [`StatusDoc::container`]).
    pub live: Option<LiveDoc>,
    /// Limits and usage.
    pub container: Option<ContainerDoc>,
    /// Where [`StatusDoc::container`] came from, when there is one.
    pub container_source: Option<ContainerSource>,
    /// The process tree.
    pub tree: Option<Tree>,
    /// What could not be read.
    pub errors: Vec<String>,
    /// The ward that answered is in another cgroup than this `ward
    /// status`: in a PID namespace containers share, another container's.
    pub ward_in_another_cgroup: bool,
}

/// Where the limits and usage shown came from. Not [`StatusDoc::source`]:
/// a ward run with `--no-watch` answers (`source` is `ward`) but has no
/// sample, so the client reads the cgroup itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerSource {
    /// ward's latest sample.
    Ward,
    /// Read by this `ward status` itself, once, now (no history).
    ReadNow,
}

/// Runs `ward status` with the arguments after `status`; returns the exit code.
pub fn main(args: Vec<OsString>) -> u8 {
    let json = match parse_args(args) {
        Ok(Some(json)) => json,
        Ok(None) => {
            say(HELP);
            return OK;
        }
        Err(why) => {
            let _ = std::io::stderr()
                .write_all(format!("ward status: {why} (see ward status --help)\n").as_bytes());
            return crate::exit::USAGE;
        }
    };
    let proc_root = Path::new(crate::procs::DEFAULT_PROC_ROOT);
    let doc = gather(proc_root);
    let nothing = doc.live.is_none() && doc.container.is_none() && doc.tree.is_none();
    if json {
        say(&(doc::to_json(&doc) + "\n"));
    } else {
        say(&screen::render(&doc));
    }
    if nothing { NOTHING_READ } else { OK }
}

/// `Some(json?)`, or `None` for help.
fn parse_args(args: Vec<OsString>) -> Result<Option<bool>, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut json = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("json") => json = true,
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Some(json))
}

/// Asks ward, reads `/proc`, and reads the cgroup when ward did not answer.
pub fn gather(proc_root: &Path) -> StatusDoc {
    let mut doc = StatusDoc {
        schema: SCHEMA,
        ..Default::default()
    };
    // A socket that refuses is asked again for ASK_TIMEOUT: ward serves
    // `ward status` a moment after its child starts, and `docker exec` right
    // after `docker run` can come sooner.
    let retries = (ASK_TIMEOUT.as_millis() / crate::unix_connect::RETRY_EVERY.as_millis()) as u32;
    match channel::fetch(proc_root, PATH, ASK_TIMEOUT, retries) {
        Ok(body) => match LiveDoc::from_json(&body) {
            Ok(mut live) => {
                doc.container = live.container.take();
                doc.container_source = doc.container.as_ref().map(|_| ContainerSource::Ward);
                doc.source = "ward".into();
                doc.live = Some(live);
            }
            Err(e) => doc.history_unavailable = Some(format!("ward's answer did not parse: {e}")),
        },
        Err(e) => doc.history_unavailable = Some(e.to_string()),
    }
    // ward with --no-watch answers without limits: read them here too.
    if doc.container.is_none() {
        if doc.live.is_none() {
            doc.source = "proc".into();
        }
        match read_container() {
            Ok((c, unreadable)) => {
                doc.container = Some(c);
                doc.container_source = Some(ContainerSource::ReadNow);
                doc.errors.extend(unreadable);
            }
            Err(e) => doc.errors.push(e),
        }
    }
    let ward_pid = doc.live.as_ref().map(|l| l.ward.pid);
    if let Some(pid) = ward_pid {
        let cgroup = |who: &str| std::fs::read(proc_root.join(who).join("cgroup")).ok();
        doc.ward_in_another_cgroup = matches!(
            (cgroup(&pid.to_string()), cgroup("self")),
            (Some(ward), Some(own)) if ward != own
        );
    }
    // SAFETY: getpid cannot fail.
    let self_pid = unsafe { libc::getpid() };
    let ticks = crate::procs::census::clock_ticks();
    match tree::read(proc_root, ticks) {
        Ok((procs, uptime)) => {
            let mut t = tree::build(
                &procs,
                uptime,
                ticks,
                crate::procs::census::page_size(),
                ward_pid,
                self_pid,
            );
            if t.wants_second_look() {
                std::thread::sleep(tree::SECOND_LOOK);
                t.second_look(|pid, start| tree::still_zombie(proc_root, pid, start));
            }
            doc.tree = Some(t);
        }
        Err(e) => doc
            .errors
            .push(format!("cannot read {}: {e}", proc_root.display())),
    }
    doc
}

/// The cgroup's limits and one sample, read here (no history), and the
/// limit files that could not be read.
/// The container's limits and usage read now, without ward: for `ward
/// status` when ward did not answer, and `ward check`'s words then.
pub fn read_container() -> Result<(ContainerDoc, Vec<String>), String> {
    let roots = crate::cgroup::Roots::default();
    let cg = crate::cgroup::Cgroups::discover(&roots).map_err(|e| e.to_string())?;
    let limits = cg.limits();
    let mut sample = crate::cgroup::CgroupSample::default();
    cg.sample(&mut String::new(), &mut sample);
    // This process is in the group it read (`discover` follows its own
    // /proc/self/cgroup), one task, and left out as the process list leaves
    // it out: `docker exec` into a group at its pids limit would read
    // "41 of 40" otherwise.
    sample.pids.current = sample.pids.current.map(|n| n.saturating_sub(1));
    let c = doc::container_from_sample(
        Some(doc::layout_words(cg.layout)),
        &limits,
        &sample,
        None,
        None,
    );
    Ok((c, limits.unreadable))
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What PID 1 ward answers on its status socket: `GET /status` with the
/// [`LiveDoc`] from the board. Bounded work per request: a copy of the
/// board under its lock, rendering outside it.
pub struct StatusRoutes {
    board: Arc<Board>,
    self_pid: i32,
}

/// The routes for the serving thread.
pub fn serve_routes(board: Arc<Board>) -> StatusRoutes {
    StatusRoutes {
        board,
        // SAFETY: getpid cannot fail.
        self_pid: unsafe { libc::getpid() },
    }
}

impl Routes for StatusRoutes {
    fn respond(&mut self, head: &RequestHead<'_>, resp: &mut Response) {
        if head.path != PATH {
            resp.set_text(404, "not found: ward serves /status here\n");
            return;
        }
        if head.method == Method::Other {
            resp.set_text(405, "method not allowed: use GET\n");
            resp.allow = Some("GET, HEAD");
            return;
        }
        let live = LiveDoc::from_board(&self.board, self.self_pid);
        resp.status = 200;
        resp.content_type = "application/json";
        resp.allow = None;
        // Copied into the server's body buffer, which it keeps.
        resp.body.clear();
        resp.body.push_str(&doc::to_json(&live));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(parse_args(args(&[])), Ok(Some(false)));
        assert_eq!(parse_args(args(&["--json"])), Ok(Some(true)));
        assert_eq!(parse_args(args(&["-h"])), Ok(None));
        assert!(parse_args(args(&["--jsn"])).unwrap_err().contains("--jsn"));
        assert!(parse_args(args(&["extra"])).is_err());
    }

    #[test]
    fn routes_serve_the_board() {
        let mut r = serve_routes(Arc::new(Board::default()));
        let head = |path: &'static str, method| RequestHead {
            method,
            path,
            query: None,
            minor_version: 1,
            len: 0,
        };
        let mut resp = Response::text(500, "");
        r.respond(&head("/status", Method::Get), &mut resp);
        assert_eq!(resp.status, 200);
        let live = LiveDoc::from_json(&resp.body).unwrap();
        assert_eq!(live.schema, SCHEMA);
        assert_eq!(live.container, None);
        r.respond(&head("/metrics", Method::Get), &mut resp);
        assert_eq!(resp.status, 404);
        r.respond(&head("/status", Method::Other), &mut resp);
        assert_eq!(resp.status, 405);
    }
}
