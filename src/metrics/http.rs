//! A tiny HTTP/1.1 server that cannot hurt PID 1: one thread, one `poll`
//! loop over non-blocking listeners and their connections. Owns request
//! parsing, the connection limits and the listen-address syntax; what a
//! request gets back is up to a [`Routes`] per listener. Never touches the
//! reaping thread, signals or child processes.
//!
//! Limits, each so that a misbehaving client costs a bounded amount:
//! - a request head must arrive within [`Limits::head_timeout`] of the
//!   connect (slow-loris), and fit in [`Limits::max_head`] bytes (else 431);
//! - at most [`Limits::max_connections`] are open: a new one beyond that
//!   closes the oldest still sending its head, so an idle flood cannot lock
//!   a scraper out for a whole head timeout;
//! - every response is `Connection: close`, and its write must finish within
//!   the head timeout too;
//! - memory per connection is the head buffer, plus a copy of what is left
//!   of its response when the socket did not take it at once.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::prom;

// ---------------------------------------------------------------- parsing

/// A request method ward distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: a GET without the body.
    Head,
    /// Any other well-formed method token.
    Other,
}

/// A parsed request head, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: Method,
    /// The path of the origin-form target, without the query.
    pub path: &'a str,
    /// The query after `?`, if any.
    pub query: Option<&'a str>,
    /// HTTP/1.x minor version.
    pub minor_version: u8,
    /// Bytes of the buffer the head took, blank line included.
    pub len: usize,
}

/// Why a buffer is not (yet) a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// No blank line yet: read more.
    Incomplete,
    /// Not an HTTP/1.x request head: answer 400.
    Malformed(&'static str),
    /// HTTP/2 preface, HTTP/0.9 or HTTP/2.0 request line: answer 505.
    Version,
}

/// Parses the request head at the start of `buf` (RFC 9112): request line
/// `METHOD SP /target SP HTTP/1.x`, header lines `name: value`, a blank
/// line, each line ending in CRLF or a bare LF (§2.2: a recipient may take
/// LF alone as the line end and ignore a CR before it, as `ward check`'s
/// client does with responses; ward reads no body, so there is nothing to
/// smuggle past it). A bare CR anywhere else is malformed. Pure and total:
/// any bytes give a result, never a panic (`fuzz/fuzz_targets/http_request.rs`). Header
/// values are checked, not kept: ward's routes need none.
///
/// A head that already shows it is not HTTP fails at once, not at the head
/// timeout: a first byte that cannot begin a method (a TLS ClientHello's
/// 0x16 from a scraper set to https), or any complete line that is bad.
pub fn parse_request_head(buf: &[u8]) -> Result<RequestHead<'_>, ParseError> {
    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    let mut at = 0;
    loop {
        match &buf[at..] {
            [b'\n', ..] => at += 1,
            [b'\r', b'\n', ..] => at += 2,
            _ => break,
        }
    }
    match &buf[at..] {
        // Nothing yet, or the CR of an empty line whose LF is on its way.
        [] | [b'\r'] => return Err(ParseError::Incomplete),
        [b, ..] if !is_tchar(*b) => return Err(ParseError::Malformed("not an HTTP request")),
        _ => {}
    }
    // Each line is judged as soon as its line end is in.
    let Some(first) = next_line(buf, &mut at) else {
        return Err(ParseError::Incomplete);
    };
    let (method, path, query, minor_version) = request_line(first)?;
    loop {
        match next_line(buf, &mut at) {
            None => return Err(ParseError::Incomplete),
            Some([]) => break,
            Some(line) => header_line(line)?,
        }
    }
    Ok(RequestHead {
        method,
        path,
        query,
        minor_version,
        len: at,
    })
}

/// The line at `*at` without its line end (LF, or CRLF), moving `*at` past
/// it; `None` while its LF has not arrived.
fn next_line<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = &buf[*at..];
    let end = rest.iter().position(|&b| b == b'\n')?;
    *at += end + 1;
    let line = &rest[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

type RequestLine<'a> = (Method, &'a str, Option<&'a str>, u8);

fn request_line(line: &[u8]) -> Result<RequestLine<'_>, ParseError> {
    if line.starts_with(b"PRI * HTTP/2") {
        return Err(ParseError::Version);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Malformed("bad method"));
    }
    let minor_version = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") => return Err(ParseError::Version),
        _ => return Err(ParseError::Malformed("bad version")),
    };
    // Origin-form only: ward is not a proxy. Visible ASCII, no '#'.
    if !target.starts_with(b"/")
        || !target
            .iter()
            .all(|&b| (0x21..0x7f).contains(&b) && b != b'#')
    {
        return Err(ParseError::Malformed("bad request target"));
    }
    // Checked ASCII above, so this cannot fail; no unwrap on it all the same.
    let target = std::str::from_utf8(target).map_err(|_| ParseError::Malformed("bad target"))?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok((method, path, query, minor_version))
}

fn header_line(line: &[u8]) -> Result<(), ParseError> {
    if line.starts_with(b" ") || line.starts_with(b"\t") {
        return Err(ParseError::Malformed("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseError::Malformed("header line without colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // No space before the colon (RFC 9112 §5.1: must be rejected).
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Malformed("bad header name"));
    }
    if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(ParseError::Malformed("bad header value"));
    }
    Ok(())
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ---------------------------------------------------------------- addresses

/// Why a `--metrics` address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// No `:PORT`.
    #[error("{0:?}: expected HOST:PORT or :PORT, e.g. :9464 or 127.0.0.1:9464")]
    NoPort(String),
    /// The port is not 0–65535.
    #[error("{0:?}: the port must be a number from 0 to 65535")]
    BadPort(String),
    /// The host is not an IP address.
    #[error("{0:?}: the host must be an IP address (127.0.0.1, [::1]) or localhost")]
    BadHost(String),
}

/// Parses a listen address: `:PORT` (every IPv4 interface, 0.0.0.0: the
/// address Prometheus and the ECS/Kubernetes pod networks scrape, and one that
/// works where IPv6 is disabled), `IPV4:PORT`, `[IPV6]:PORT` (`[::]:PORT` for
/// every interface, IPv4 too where the kernel maps it), `localhost:PORT`.
/// Host names are not resolved: that could block, and a typo should fail.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, AddrError> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| AddrError::NoPort(s.into()))?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::BadPort(s.into()));
    }
    let port: u16 = port.parse().map_err(|_| AddrError::BadPort(s.into()))?;
    let ip: IpAddr = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h if h.starts_with('[') && h.ends_with(']') && h.len() > 2 => h[1..h.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| AddrError::BadHost(s.into()))?,
        h => h
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| AddrError::BadHost(s.into()))?,
    };
    Ok(SocketAddr::new(ip, port))
}

// ---------------------------------------------------------------- routes

/// A response for the server to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Allow`, for 405.
    pub allow: Option<&'static str>,
    /// Body (left out of the wire for HEAD, but counted in Content-Length).
    pub body: String,
}

impl Response {
    /// A short plain-text response.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            allow: None,
            body: body.into(),
        }
    }

    /// Makes this a short plain-text response, keeping the body's buffer
    /// (the server reuses one response for every request).
    pub fn set_text(&mut self, status: u16, body: &str) {
        self.status = status;
        self.content_type = "text/plain; charset=utf-8";
        self.allow = None;
        self.body.clear();
        self.body.push_str(body);
    }
}

/// What one listener serves. Runs on the server thread, so it may keep
/// buffers between requests; it must not block for long (every other
/// connection waits meanwhile).
pub trait Routes: Send {
    /// Fills `resp` for a well-formed request head.
    fn respond(&mut self, head: &RequestHead<'_>, resp: &mut Response);
}

/// `GET /metrics` (and HEAD) answered with a body the callback renders at
/// each scrape; 404 elsewhere, 405 for other methods on `/metrics`.
pub struct MetricsRoutes<F> {
    render: F,
}

impl<F: FnMut(&mut String) + Send> MetricsRoutes<F> {
    /// Routes that call `render` to produce the Prometheus text.
    pub fn new(render: F) -> MetricsRoutes<F> {
        MetricsRoutes { render }
    }
}

impl<F: FnMut(&mut String) + Send> Routes for MetricsRoutes<F> {
    fn respond(&mut self, head: &RequestHead<'_>, resp: &mut Response) {
        if head.path != "/metrics" {
            resp.set_text(404, "not found: ward serves /metrics\n");
            return;
        }
        if head.method == Method::Other {
            resp.set_text(405, "method not allowed: use GET\n");
            resp.allow = Some("GET, HEAD");
            return;
        }
        resp.status = 200;
        resp.content_type = prom::CONTENT_TYPE;
        resp.allow = None;
        resp.body.clear();
        (self.render)(&mut resp.body);
    }
}

// ---------------------------------------------------------------- server

/// The server's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time from connect to a complete request head; also the most a
    /// response may take to write.
    pub head_timeout: Duration,
    /// Largest request head accepted (431 beyond).
    pub max_head: usize,
    /// Most connections open at once, over all listeners.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_timeout: Duration::from_secs(5),
            max_head: 8 * 1024,
            max_connections: 64,
        }
    }
}

/// A listening socket, TCP or unix.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix stream socket.
    Unix(UnixListener),
}

impl Listener {
    /// Binds a non-blocking TCP listener.
    pub fn bind_tcp(addr: SocketAddr) -> io::Result<Listener> {
        let l = TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        Ok(Listener::Tcp(l))
    }

    /// The TCP address bound (to learn a port 0 choice).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l) => l.set_nonblocking(true),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        // std accepts with SOCK_CLOEXEC: the child never inherits these.
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(true),
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

#[derive(PartialEq, Eq)]
enum Phase {
    /// Reading the request head.
    Head,
    /// Writing `out[sent..]`.
    Write,
    /// Response sent and write side shut: reading until the client closes, so
    /// unread request bytes do not turn our close into a reset that could
    /// destroy the response in flight.
    Drain,
}

struct Conn {
    stream: Stream,
    route: usize,
    phase: Phase,
    buf: Vec<u8>,
    /// What the socket did not take of the response at once (usually
    /// nothing: a scrape's answer fits its send buffer).
    out: Vec<u8>,
    sent: usize,
    opened: Instant,
    deadline: Instant,
}

/// How long a connection may linger in [`Phase::Drain`].
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// After an accept error (EMFILE...), the listener rests this long instead of
/// spinning on a readiness the loop cannot consume.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Counters of what the server did, for tests and `ward status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Responses completely written.
    pub responses: u64,
    /// Connections closed at the head timeout.
    pub timed_out: u64,
    /// Connections closed to make room under the connection cap.
    pub evicted: u64,
}

/// The size the response body's buffer is made at and kept: ward's
/// metrics text is about 4 KiB.
const BODY_KEPT: usize = 8 * 1024;

/// The loop's buffers, reused by every request.
struct Scratch {
    /// The response being built (its body keeps its buffer).
    resp: Response,
    /// Its status line and headers.
    head: Vec<u8>,
    /// Where reads land first.
    chunk: [u8; 4096],
}

impl Scratch {
    /// The body's buffer is made once at [`BODY_KEPT`], not grown through
    /// a chain of reallocations at the first scrape.
    fn new() -> Scratch {
        let mut resp = Response::text(200, "");
        resp.body = String::with_capacity(BODY_KEPT);
        Scratch {
            resp,
            head: Vec::with_capacity(256),
            chunk: [0; 4096],
        }
    }
}

/// A server not yet started: listeners, each with its routes.
pub struct Server {
    listeners: Vec<(Listener, Box<dyn Routes>)>,
    limits: Limits,
    trim_when_idle: Option<Duration>,
}

/// When the loop drops ward's code pages again: `after` the last activity
/// (a connection open or accepted), once no connection is left; `None`
/// when nothing was served since the last trim or trimming is off.
fn idle_trim_at(
    last_activity: Option<Instant>,
    open_conns: usize,
    after: Option<Duration>,
) -> Option<Instant> {
    if open_conns > 0 {
        return None;
    }
    Some(last_activity? + after?)
}

/// The running server's thread. Dropping it stops the server (the wake pipe
/// closes); [`ServerHandle::stop`] also waits for the thread.
pub struct ServerHandle {
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<ServerStats>>,
}

impl ServerHandle {
    /// Stops the server and returns its counters.
    pub fn stop(mut self) -> ServerStats {
        drop(self.wake.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        drop(self.wake.take());
    }
}

impl Server {
    /// A server with the given limits and no listeners yet.
    pub fn new(limits: Limits) -> Server {
        Server {
            listeners: Vec::new(),
            limits,
            trim_when_idle: None,
        }
    }

    /// Once the server has been idle for `after` since its last connection,
    /// the thread drops ward's code pages from the RSS again
    /// ([`crate::trim`]): a scrape maps in the code that renders the metrics
    /// (measured: idle RSS 1080 KiB just after a scrape, against 564 KiB
    /// for ward without the endpoint), and between scrapes none of it runs.
    /// Once per idle spell, so a scraper that keeps coming pays nothing more.
    pub fn trim_when_idle(&mut self, after: Duration) {
        self.trim_when_idle = Some(after);
    }

    /// Adds a listener with what it serves.
    pub fn listen(&mut self, l: Listener, routes: Box<dyn Routes>) -> io::Result<()> {
        l.set_nonblocking()?;
        self.listeners.push((l, routes));
        Ok(())
    }

    /// Starts the one server thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let builder = std::thread::Builder::new()
            .name("ward-http".into())
            // The loop keeps its buffers on the heap; a small stack is plenty.
            .stack_size(256 * 1024);
        // Every signal blocked first, so all of them stay pending for
        // ward's signalfd (see `spawn_blocked`).
        let (thread, blocked) = crate::sigmask::spawn_blocked(builder, move || {
            // Its frees go back to the heap, not to a cache of its own
            // that a burst of requests would leave full.
            crate::trim::end_thread_malloc_cache();
            // Like the watch thread, batch: a request never preempts the
            // reaper or the application. Asked for here, since with
            // `--metrics` the reaping thread starts this one, before the
            // watch thread could pass its policy on. A refusal is the
            // watch thread's to log: the same kernel or filter refuses
            // both.
            let _ = crate::sched::request_background();
            self.run(wake_rx)
        })?;
        if !blocked {
            crate::log::thread_start_slow("HTTP");
        }
        Ok(ServerHandle {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Serves until `wake` becomes readable or closes.
    fn run(mut self, wake: UnixStream) -> ServerStats {
        let n_listen = self.listeners.len();
        let max = self.limits.max_connections.max(1);
        let mut conns: Vec<Conn> = Vec::with_capacity(max);
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(1 + n_listen + max);
        let mut paused_until: Vec<Option<Instant>> = vec![None; n_listen];
        let mut scratch = Scratch::new();
        let mut stats = ServerStats::default();
        let mut last_activity: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let trim_at = idle_trim_at(last_activity, conns.len(), self.trim_when_idle);
            if trim_at.is_some_and(|t| now >= t) {
                let _ = crate::trim::trim_read_only_segments();
                last_activity = None;
            }
            let trim_at = trim_at.filter(|&t| now < t);
            fds.clear();
            fds.push(pollfd(wake.as_raw_fd(), libc::POLLIN));
            for (i, (l, _)) in self.listeners.iter().enumerate() {
                let paused = paused_until[i].is_some_and(|t| now < t);
                // A negative fd is skipped by poll but keeps the indices.
                fds.push(pollfd(if paused { -1 } else { l.fd() }, libc::POLLIN));
            }
            for c in &conns {
                let ev = if c.phase == Phase::Write {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                fds.push(pollfd(c.stream.fd(), ev));
            }
            let next = conns
                .iter()
                .map(|c| c.deadline)
                .chain(paused_until.iter().flatten().copied())
                .chain(trim_at)
                .min();
            let timeout_ms = match next {
                None => -1,
                Some(t) => {
                    let d = t.saturating_duration_since(now);
                    // Round up, so the loop does not wake just before a deadline.
                    (d.as_millis() as i64 + 1).min(60_000) as i32
                }
            };
            // SAFETY: fds is a valid, initialised array of fds.len() pollfds.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // poll itself failing (EINVAL, ENOMEM) is not worth a spin.
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
            if fds[0].revents != 0 {
                return stats;
            }
            let now = Instant::now();

            // Connections first (their revents line up with `conns` now).
            let mut i = 0;
            let mut fd_i = 1 + n_listen;
            while i < conns.len() {
                let rev = fds[fd_i].revents;
                fd_i += 1;
                let keep = if rev != 0 {
                    self.service(&mut conns[i], rev, now, &mut scratch, &mut stats)
                } else {
                    true
                };
                let keep = keep
                    && {
                        if now >= conns[i].deadline {
                            if conns[i].phase == Phase::Head {
                                stats.timed_out += 1;
                                // Best effort, never waited for.
                                let _ = conns[i].stream.write(
                                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                            );
                            }
                            false
                        } else {
                            true
                        }
                    };
                if keep {
                    i += 1;
                } else {
                    // Order does not matter; swap_remove keeps this O(1).
                    conns.swap_remove(i);
                    // The swapped-in connection's revents were at the end.
                    if i < conns.len() {
                        let last = fds.len() - 1;
                        fds.swap(fd_i - 1, last);
                        fds.pop();
                        fd_i -= 1;
                    }
                }
            }

            // Then new connections.
            for li in 0..n_listen {
                if fds[1 + li].revents == 0 {
                    continue;
                }
                for _ in 0..max {
                    let stream = match self.listeners[li].0.accept() {
                        Ok(s) => s,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        Err(_) => {
                            paused_until[li] = Some(now + ACCEPT_BACKOFF);
                            break;
                        }
                    };
                    if stream.set_nonblocking().is_err() {
                        continue;
                    }
                    stats.accepted += 1;
                    if conns.len() >= max {
                        evict_oldest(&mut conns, &mut stats);
                    }
                    let mut c = Conn {
                        stream,
                        route: li,
                        phase: Phase::Head,
                        buf: Vec::new(),
                        out: Vec::new(),
                        sent: 0,
                        opened: now,
                        deadline: now + self.limits.head_timeout,
                    };
                    // The request is usually already here: answer it now.
                    let rev = libc::POLLIN;
                    if self.service(&mut c, rev, now, &mut scratch, &mut stats) {
                        conns.push(c);
                    }
                }
            }
            for p in paused_until.iter_mut() {
                if p.is_some_and(|t| now >= t) {
                    *p = None;
                }
            }
            if !conns.is_empty() || fds[1..=n_listen].iter().any(|f| f.revents != 0) {
                last_activity = Some(now);
            }
        }
    }

    /// Advances one connection; false when it is done and must be closed.
    fn service(
        &mut self,
        c: &mut Conn,
        revents: libc::c_short,
        now: Instant,
        scratch: &mut Scratch,
        stats: &mut ServerStats,
    ) -> bool {
        match c.phase {
            Phase::Head => {
                // A client may send its request and shut its write side at
                // once: EOF after bytes still gets an answer.
                let mut eof = revents & (libc::POLLHUP | libc::POLLERR) != 0;
                let chunk = &mut scratch.chunk;
                loop {
                    let room = self.limits.max_head + 1 - c.buf.len().min(self.limits.max_head);
                    let want = room.min(chunk.len());
                    match c.stream.read(&mut chunk[..want]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return false,
                    }
                    if c.buf.len() > self.limits.max_head {
                        break;
                    }
                }
                let resp = &mut scratch.resp;
                let mut head_only = false;
                let limited = &c.buf[..c.buf.len().min(self.limits.max_head)];
                match parse_request_head(limited) {
                    Err(ParseError::Incomplete) if c.buf.len() > self.limits.max_head => {
                        resp.set_text(431, "request head too large\n");
                    }
                    Err(ParseError::Incomplete) => {
                        // Hang-up before a whole head: nothing to answer.
                        return !eof;
                    }
                    Err(ParseError::Malformed(why)) => {
                        use std::fmt::Write as _;
                        resp.set_text(400, "");
                        // Writing to a String cannot fail.
                        let _ = writeln!(resp.body, "bad request: {why}");
                    }
                    Err(ParseError::Version) => {
                        resp.set_text(505, "ward speaks HTTP/1.1\n");
                    }
                    Ok(head) => {
                        let routes = &mut self.listeners[c.route].1;
                        routes.respond(&head, resp);
                        head_only = head.method == Method::Head;
                    }
                }
                // The head buffer is done with: give it back.
                c.buf = Vec::new();
                c.phase = Phase::Write;
                c.deadline = now.max(c.opened) + self.limits.head_timeout;
                scratch.head.clear();
                serialize_head(&scratch.resp, &mut scratch.head);
                let body = if head_only {
                    &[][..]
                } else {
                    scratch.resp.body.as_bytes()
                };
                self.send(c, &scratch.head, body, now, stats)
            }
            Phase::Write => self.write_some(c, now, stats),
            Phase::Drain => loop {
                match c.stream.read(&mut scratch.chunk) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            },
        }
    }

    /// Writes a response straight from the loop's buffers. Only what the
    /// socket does not take now is copied, to the connection, for
    /// [`Server::write_some`] to finish: a scrape's answer (about 4 KiB)
    /// usually goes at once, and then no buffer is made for it. (A copy
    /// made at every scrape was cut from wherever the heap had room at that
    /// moment, one more block moving about among the watch thread's.)
    fn send(
        &self,
        c: &mut Conn,
        head: &[u8],
        body: &[u8],
        now: Instant,
        stats: &mut ServerStats,
    ) -> bool {
        let total = head.len() + body.len();
        let mut sent = 0;
        // What is left of the head and of the body once `sent` bytes went
        // (`get` and not indexing: `sent` never passes `total`, and if it
        // did, nothing is left rather than a panic).
        let rest = |sent: usize| match head.get(sent..) {
            Some(h) if !h.is_empty() => (h, body),
            _ => (
                &[][..],
                body.get(sent.saturating_sub(head.len())..).unwrap_or(&[]),
            ),
        };
        while sent < total {
            let (h, b) = rest(sent);
            match c
                .stream
                .write_vectored(&[io::IoSlice::new(h), io::IoSlice::new(b)])
            {
                Ok(0) => return false,
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        c.out.clear();
        let (h, b) = rest(sent);
        c.out.extend_from_slice(h);
        c.out.extend_from_slice(b);
        c.sent = 0;
        self.write_some(c, now, stats)
    }

    fn write_some(&self, c: &mut Conn, now: Instant, stats: &mut ServerStats) -> bool {
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => return false,
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        stats.responses += 1;
        c.out = Vec::new();
        c.stream.shutdown_write();
        c.phase = Phase::Drain;
        c.deadline = now + DRAIN_TIMEOUT;
        true
    }
}

/// The usual set-up in one call: `GET /metrics` on `addr`, the body from
/// `render` at each scrape, default limits, one thread. Returns the handle
/// (dropping it stops the server) and the address bound.
pub fn serve_metrics<F>(addr: SocketAddr, render: F) -> io::Result<(ServerHandle, SocketAddr)>
where
    F: FnMut(&mut String) + Send + 'static,
{
    let l = Listener::bind_tcp(addr)?;
    let bound = l.local_addr().unwrap_or(addr);
    let mut server = Server::new(Limits::default());
    server.listen(l, Box::new(MetricsRoutes::new(render)))?;
    Ok((server.spawn()?, bound))
}

/// Under the cap: closes the connection that has waited longest for its head
/// (an idle or slow client); if every one is busy writing, the oldest of all.
fn evict_oldest(conns: &mut Vec<Conn>, stats: &mut ServerStats) {
    let pick = |phase: Option<&Phase>| {
        conns
            .iter()
            .enumerate()
            .filter(|(_, c)| phase.is_none_or(|p| c.phase == *p))
            .min_by_key(|(_, c)| c.opened)
            .map(|(i, _)| i)
    };
    let victim = pick(Some(&Phase::Drain))
        .or_else(|| pick(Some(&Phase::Head)))
        .or_else(|| pick(None));
    if let Some(i) = victim {
        conns.swap_remove(i);
        stats.evicted += 1;
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes the status line and the headers, up to the blank line.
pub fn serialize_head(resp: &Response, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    if let Some(allow) = resp.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> RequestHead<'_> {
        parse_request_head(s.as_bytes()).unwrap()
    }

    #[test]
    fn idle_trim_comes_once_the_last_connection_is_gone() {
        let t0 = Instant::now();
        let after = Some(Duration::from_secs(1));
        // Served, nobody left: a second after the last activity.
        assert_eq!(
            idle_trim_at(Some(t0), 0, after),
            Some(t0 + Duration::from_secs(1))
        );
        // A connection still open: not yet.
        assert_eq!(idle_trim_at(Some(t0), 1, after), None);
        // Nothing served since the last trim, or trimming off: never.
        assert_eq!(idle_trim_at(None, 0, after), None);
        assert_eq!(idle_trim_at(Some(t0), 0, None), None);
    }

    #[test]
    fn parses_a_prometheus_scrape() {
        let req = "GET /metrics HTTP/1.1\r\nHost: 10.0.0.5:9464\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
        let h = ok(req);
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path, "/metrics");
        assert_eq!(h.query, None);
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.len, req.len());
    }

    #[test]
    fn head_query_http10_and_leading_blank_line() {
        let h = ok("\r\nHEAD /metrics?x=1 HTTP/1.0\r\n\r\nBODY");
        assert_eq!(
            (h.method, h.path, h.query, h.minor_version),
            (Method::Head, "/metrics", Some("x=1"), 0)
        );
        assert_eq!(h.len, 2 + 28 + 2);
        assert_eq!(ok("DELETE / HTTP/1.1\r\n\r\n").method, Method::Other);
    }

    #[test]
    fn incomplete_until_blank_line() {
        assert_eq!(parse_request_head(b""), Err(ParseError::Incomplete));
        assert_eq!(
            parse_request_head(b"GET /metr"),
            Err(ParseError::Incomplete)
        );
        assert_eq!(
            parse_request_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n"),
            Err(ParseError::Incomplete)
        );
        assert_eq!(parse_request_head(b"\r\n\r\n"), Err(ParseError::Incomplete));
    }

    #[test]
    fn malformed_heads() {
        let bad: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET http://x/metrics HTTP/1.1\r\n\r\n",
            b"GET /met rics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 x\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics FTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nA: b\rB: c\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nA: b\0\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ];
        for b in bad {
            assert!(
                matches!(parse_request_head(b), Err(ParseError::Malformed(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(b),
                parse_request_head(b)
            );
        }
        // A bad request line is known bad before the head ends.
        assert!(matches!(
            parse_request_head(b"GARBAGE\r\nmore"),
            Err(ParseError::Malformed(_))
        ));
        // So is a bad header line, and a head that cannot begin a method:
        // a TLS ClientHello (a scraper set to https) or a stray CR.
        let early: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nNoColon\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x16",
            b"\r\n\x16",
            b"\rGET",
            b" GET / HTTP/1.1",
        ];
        for b in early {
            assert!(
                matches!(parse_request_head(b), Err(ParseError::Malformed(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(b),
                parse_request_head(b)
            );
        }
        // But a CR that may be the start of an empty line waits for more.
        assert_eq!(parse_request_head(b"\r"), Err(ParseError::Incomplete));
        assert_eq!(parse_request_head(b"\r\n\r"), Err(ParseError::Incomplete));
    }

    #[test]
    fn bare_lf_line_ends_are_accepted() {
        // RFC 9112 §2.2: a recipient may take LF alone as the line end.
        let req = "GET /metrics?a=b HTTP/1.1\nHost: x\n\nBODY";
        let h = ok(req);
        assert_eq!(
            (h.method, h.path, h.query, h.minor_version),
            (Method::Get, "/metrics", Some("a=b"), 1)
        );
        assert_eq!(h.len, req.len() - 4);
        // Mixed with CRLF, and after leading empty lines of either kind.
        let req = "\n\r\nHEAD / HTTP/1.0\r\nA: b\nB: c\r\n\n";
        let h = ok(req);
        assert_eq!((h.method, h.len), (Method::Head, req.len()));
        assert_eq!(
            parse_request_head(b"GET / HTTP/1.1\nHost: x\n"),
            Err(ParseError::Incomplete)
        );
        assert_eq!(parse_request_head(b"\n\n"), Err(ParseError::Incomplete));
    }

    #[test]
    fn other_http_versions() {
        assert_eq!(
            parse_request_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Err(ParseError::Version)
        );
        assert_eq!(
            parse_request_head(b"GET / HTTP/2.0\r\n\r\n"),
            Err(ParseError::Version)
        );
    }

    /// A poor man's fuzz run (the fuzz target calls the same function): any
    /// bytes, including mutations of a valid head, give a result, never a
    /// panic, and a parsed head never claims more bytes than it was given.
    #[test]
    fn any_bytes_give_a_result() {
        let valid = b"GET /metrics?a=b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        let alphabet = b"GET /HTP1.\r\n: \t?#\0\xff";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = Vec::with_capacity(128);
        for i in 0..200_000 {
            buf.clear();
            if i % 2 == 0 {
                buf.extend_from_slice(valid);
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % buf.len();
                    buf[at] = alphabet[(next() as usize) % alphabet.len()];
                }
                buf.truncate(1 + (next() as usize) % buf.len());
            } else {
                for _ in 0..next() % 64 {
                    buf.push(alphabet[(next() as usize) % alphabet.len()]);
                }
            }
            if let Ok(h) = parse_request_head(&buf) {
                assert!(h.len <= buf.len());
                assert!(h.path.starts_with('/'));
            }
        }
    }

    #[test]
    fn listen_addresses() {
        let p = |s| parse_listen_addr(s);
        assert_eq!(p(":9464").unwrap(), "0.0.0.0:9464".parse().unwrap());
        assert_eq!(
            p("127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(p("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
        assert_eq!(p("[::]:80").unwrap(), "[::]:80".parse().unwrap());
        assert_eq!(p("localhost:1").unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(p("9464"), Err(AddrError::NoPort("9464".into())));
        assert!(matches!(p(":"), Err(AddrError::BadPort(_))));
        assert!(matches!(p(":65536"), Err(AddrError::BadPort(_))));
        assert!(matches!(p(":+80"), Err(AddrError::BadPort(_))));
        assert!(matches!(p("::1:9464"), Err(AddrError::BadHost(_))));
        assert!(matches!(p("example.com:9464"), Err(AddrError::BadHost(_))));
        assert!(matches!(p("[]:9464"), Err(AddrError::BadHost(_))));
        assert!(matches!(p("[1.2.3.4]:9464"), Err(AddrError::BadHost(_))));
    }

    fn route(req: &str) -> Response {
        let mut r = MetricsRoutes::new(|s: &mut String| s.push_str("ward_zombies 0\n"));
        let mut resp = Response::text(500, "");
        r.respond(&ok(req), &mut resp);
        resp
    }

    #[test]
    fn metrics_routes() {
        let r = route("GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(
            (r.status, r.content_type, r.body.as_str()),
            (200, prom::CONTENT_TYPE, "ward_zombies 0\n")
        );
        assert_eq!(route("HEAD /metrics HTTP/1.1\r\n\r\n").status, 200);
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n").status, 404);
        assert_eq!(route("GET /metrics/ HTTP/1.1\r\n\r\n").status, 404);
        let r = route("POST /metrics HTTP/1.1\r\n\r\n");
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
    }

    #[test]
    fn serialized_head() {
        let mut out = Vec::new();
        let mut r = Response::text(404, "nope\n");
        serialize_head(&r, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        r.set_text(405, "no\n");
        r.allow = Some("GET, HEAD");
        serialize_head(&r, &mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("Content-Length: 3\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n")
        );
    }

    #[test]
    fn set_text_keeps_the_body_buffer() {
        let mut r = Scratch::new().resp;
        let kept = r.body.capacity();
        assert!(kept >= BODY_KEPT);
        r.set_text(404, "not here\n");
        assert_eq!((r.status, r.body.as_str()), (404, "not here\n"));
        assert_eq!(r.body.capacity(), kept);
    }
}
