//! The local channel between PID 1 ward and `ward status` / `ward check`: an
//! abstract unix socket named after the PID namespace. Owns the name, the
//! listening socket and the client's bounded fetch; never what is said on it.
//!
//! Why abstract: root filesystems are often read-only, and a scratch image
//! has no `/run`. Why the PID namespace's inode in the name: abstract names
//! live in the *network* namespace, which several containers share under
//! `docker run --network host`; their PID namespaces differ, and the client,
//! run by `docker exec` or `kubectl exec`, joins the container's.

use std::io::{self, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::unix_connect::{self, UnixAddr};

/// The abstract name (without the leading NUL) for the PID namespace whose
/// `nsfs` inode is `pidns`.
pub fn socket_name(pidns: u64) -> String {
    format!("ward-status-{pidns}")
}

/// The inode of this process's PID namespace, from `PROC/self/ns/pid`.
pub fn pidns_inode(proc_root: &Path) -> io::Result<u64> {
    std::fs::metadata(proc_root.join("self/ns/pid")).map(|m| m.ino())
}

/// The socket PID 1 ward listens on, for its own PID namespace. Fails with
/// `AddrInUse` when another ward of the namespace already serves it.
pub fn listen(proc_root: &Path) -> io::Result<UnixListener> {
    let name = socket_name(pidns_inode(proc_root)?);
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixListener::bind_addr(&addr)
}

/// Why the live part could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// This PID namespace's id could not be read, so no socket was tried.
    #[error("cannot tell this PID namespace's ward socket: {} ({source})", .path.display())]
    NoNamespace {
        /// `/proc/self/ns/pid` under the proc root.
        path: std::path::PathBuf,
        /// The error reading it.
        source: io::Error,
    },
    /// No ward listens in this PID namespace.
    #[error("no ward answers on @{name} ({source})")]
    Unreachable {
        /// The abstract socket's name.
        name: String,
        /// connect's error.
        source: io::Error,
    },
    /// The budget ran out.
    #[error("ward did not answer within {}", crate::units::secs(*.0))]
    Timeout(Duration),
    /// The answer was not a 200 with a body.
    #[error("ward's answer was not understood: {0}")]
    BadAnswer(String),
    /// Reading or writing failed.
    #[error("talking to ward failed: {0}")]
    Io(#[from] io::Error),
}

/// The largest answer read; the document is a few KiB.
const MAX_ANSWER: usize = 1024 * 1024;

/// A request sent, its answer not yet read. `ward check` sends it before
/// its probe and reads it only if the probe fails (see `check::context`).
pub struct Pending {
    stream: UnixStream,
}

impl Pending {
    /// Connects to this namespace's ward and sends `GET path`, all within
    /// `budget`; a socket that refuses is tried again `retries` times
    /// ([`unix_connect::RETRY_EVERY`] apart).
    pub fn send(
        proc_root: &Path,
        path: &str,
        budget: Duration,
        retries: u32,
    ) -> Result<Pending, FetchError> {
        let start = Instant::now();
        let name =
            pidns_inode(proc_root)
                .map(socket_name)
                .map_err(|source| FetchError::NoNamespace {
                    path: proc_root.join("self/ns/pid"),
                    source,
                })?;
        let stream =
            connect_abstract(&name, budget, retries).map_err(|source| match source.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FetchError::Timeout(budget),
                _ => FetchError::Unreachable { name, source },
            })?;
        let left = budget.saturating_sub(start.elapsed()).max(MIN_WAIT);
        stream.set_write_timeout(Some(left))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n\r\n");
        (&stream)
            .write_all(request.as_bytes())
            .map_err(timeout_or(budget))?;
        Ok(Pending { stream })
    }

    /// Reads the whole answer and returns its body, waiting at most `budget`
    /// (zero: only what has already arrived).
    pub fn answer(self, budget: Duration) -> Result<String, FetchError> {
        let deadline = Instant::now() + budget;
        let mut stream = self.stream;
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut chunk = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                stream.set_nonblocking(true)?;
            } else {
                stream.set_read_timeout(Some(left))?;
            }
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > MAX_ANSWER {
                        return Err(FetchError::BadAnswer("longer than 1 MiB".into()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(timeout_or(budget)(e)),
            }
        }
        body_of(&buf).map(str::to_string)
    }
}

/// Connects, sends `GET path` and returns the body, all within `budget`
/// once connected ([`Pending::send`] for `retries`).
pub fn fetch(
    proc_root: &Path,
    path: &str,
    budget: Duration,
    retries: u32,
) -> Result<String, FetchError> {
    let start = Instant::now();
    let pending = Pending::send(proc_root, path, budget, retries)?;
    // A timeout names the whole budget, not what was left of it.
    pending
        .answer(budget.saturating_sub(start.elapsed()))
        .map_err(|e| match e {
            FetchError::Timeout(_) => FetchError::Timeout(budget),
            e => e,
        })
}

/// A socket timeout of zero means "none" to the kernel: never set one.
const MIN_WAIT: Duration = Duration::from_millis(1);

fn timeout_or(budget: Duration) -> impl Fn(io::Error) -> FetchError {
    move |e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FetchError::Timeout(budget),
        _ => FetchError::Io(e),
    }
}

/// The body of a complete `HTTP/1.x 200` answer. Pure.
pub fn body_of(answer: &[u8]) -> Result<&str, FetchError> {
    let bad = |why: &str| FetchError::BadAnswer(why.to_string());
    let text = std::str::from_utf8(answer).map_err(|_| bad("not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let status = head.lines().next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    if code != "200" {
        return Err(FetchError::BadAnswer(format!("status {}", status.trim())));
    }
    let length = head.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(n) if n != body.len() => Err(FetchError::BadAnswer(format!(
            "body of {} bytes, Content-Length {n}",
            body.len()
        ))),
        _ => Ok(body),
    }
}

/// Connects to the abstract socket `name` within `budget`, trying again
/// `retries` times while it refuses (nothing listens yet).
fn connect_abstract(name: &str, budget: Duration, retries: u32) -> io::Result<UnixStream> {
    unix_connect::connect(UnixAddr::Abstract(name), budget.max(MIN_WAIT), retries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_its_budget_in_words() {
        let e = FetchError::Timeout(Duration::from_millis(500));
        assert_eq!(e.to_string(), "ward did not answer within 500 ms");
        let e = FetchError::Timeout(Duration::from_secs(2));
        assert_eq!(e.to_string(), "ward did not answer within 2 s");
    }

    /// Without `/proc` (or with another one mounted) no socket is tried:
    /// the error said "no ward answers on @ward-status-0", a name never
    /// tried, instead of what could not be read.
    #[test]
    fn an_unreadable_namespace_is_said_with_its_path_not_a_socket() {
        let dir = std::env::temp_dir().join(format!("ward-nons-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = match Pending::send(&dir, "/status", Duration::from_millis(100), 0) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a request went out without a namespace"),
        };
        let _ = std::fs::remove_dir(&dir);
        assert!(
            e.starts_with(&format!(
                "cannot tell this PID namespace's ward socket: {}/self/ns/pid (",
                dir.display()
            )),
            "{e}"
        );
        assert!(!e.contains("ward-status-0"), "{e}");
    }

    #[test]
    fn name_carries_the_namespace() {
        assert_eq!(socket_name(4026531836), "ward-status-4026531836");
    }

    #[test]
    fn body_of_a_200() {
        let ok =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(body_of(ok).unwrap(), "{}");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}";
        assert!(
            body_of(short)
                .unwrap_err()
                .to_string()
                .contains("Content-Length 5")
        );
        let nf = b"HTTP/1.1 404 Not Found\r\n\r\nnope";
        assert!(
            body_of(nf)
                .unwrap_err()
                .to_string()
                .contains("404 Not Found")
        );
        assert!(body_of(b"SSH-2.0\r\n\r\n").is_err());
        assert!(body_of(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn fetch_over_a_real_abstract_socket() {
        // A listener under a made-up name stands in for ward.
        let name = format!("ward-status-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = UnixListener::bind_addr(&addr).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut head = [0u8; 256];
            let n = s.read(&mut head).unwrap();
            assert!(head[..n].starts_with(b"GET /status HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
                .unwrap();
        });
        let stream = connect_abstract(&name, Duration::from_secs(1), 0).unwrap();
        (&stream)
            .write_all(b"GET /status HTTP/1.1\r\nHost: ward\r\n\r\n")
            .unwrap();
        let body = Pending { stream }.answer(Duration::from_secs(1)).unwrap();
        assert_eq!(body, "{\"a\":1}");
        server.join().unwrap();
        let name = "ward-status-nobody-here";
        let gone = connect_abstract(name, Duration::from_secs(1), 0);
        assert_eq!(
            gone.unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused,
            "an abstract name nobody binds is refused at once"
        );
    }
}
