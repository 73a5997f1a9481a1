//! The metrics HTTP server on loopback: status codes and headers, a
//! slow-loris client cut off at the head timeout while others are served,
//! and a flood of idle connections and requests that neither starts a thread
//! nor keeps a fresh scrape from being answered.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ward::metrics::http::{
    Limits, Listener, Method, MetricsRoutes, RequestHead, Response, Routes, Server, ServerHandle,
};
use ward::metrics::prom;
use ward::metrics::view::MetricsView;

/// Tests here count the server's threads: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server threads of this process, by name: the test harness starts
/// and ends threads of its own while a test runs (seen in CI: 3 threads,
/// then 4, in the middle of the request storm), so all threads are no
/// measure of the server's.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "ward-http")
        .count()
}

/// A server on 127.0.0.1 rendering a view with a zombie count that says
/// how many scrapes it rendered.
fn start(limits: Limits) -> (ServerHandle, SocketAddr, Arc<AtomicU64>) {
    let scrapes = Arc::new(AtomicU64::new(0));
    let counter = scrapes.clone();
    let mut server = Server::new(limits);
    let l = Listener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let routes = MetricsRoutes::new(move |out: &mut String| {
        let mut v = MetricsView::new();
        v.zombies = Some(counter.fetch_add(1, Ordering::SeqCst) + 1);
        prom::render(&v, out);
    });
    server.listen(l, Box::new(routes)).unwrap();
    (server.spawn().unwrap(), addr, scrapes)
}

/// Sends `raw` and reads the whole answer (the server closes after it).
fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn status_codes_and_headers() {
    let _g = serial();
    let (server, addr, scrapes) = start(Limits::default());

    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(
        header(&r, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(header(&r, "connection"), Some("close"));
    let len: usize = header(&r, "content-length").unwrap().parse().unwrap();
    assert_eq!(len, body(&r).len());
    assert!(body(&r).contains("\nward_zombies 1\n"), "{r}");

    // HEAD: same headers, no body.
    let r = exchange(addr, b"HEAD /metrics HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(status(&r), 200);
    assert!(
        header(&r, "content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    assert_eq!(body(&r), "");

    let r = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), 404, "{r}");
    let r = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    )
    .unwrap();
    assert_eq!(status(&r), 405, "{r}");
    assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
    let r = exchange(addr, b"HELLO\r\n\r\n").unwrap();
    assert_eq!(status(&r), 400, "{r}");
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap();
    assert_eq!(status(&r), 400, "{r}");
    let r = exchange(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    assert_eq!(status(&r), 505, "{r}");

    // A head larger than 8 KiB: 431 and close, never buffered whole.
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    match exchange(addr, &big) {
        Ok(r) => assert_eq!(status(&r), 431, "{r}"),
        // The server may close while we still send: a reset is a clean refusal.
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "{e}"
        ),
    }

    // The request sent and the write side shut at once is still answered.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert_eq!(status(&r), 200);

    // Rendered once per GET/HEAD scrape, never for errors.
    assert_eq!(scrapes.load(Ordering::SeqCst), 3);
    let stats = server.stop();
    assert_eq!(stats.responses, 9, "{stats:?}");
}

/// Sends `raw` and, the write side left open as a scraper that waits for
/// its answer does, reads the answer: what it says and how long it took.
fn answer_without_hang_up(addr: SocketAddr, raw: &[u8]) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t0 = Instant::now();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

#[test]
fn a_head_not_http_or_with_bare_lf_is_answered_at_once() {
    let _g = serial();
    let limits = Limits::default();
    let (server, addr, _) = start(limits);
    let soon = limits.head_timeout / 2;
    // Bare LF line ends (RFC 9112 §2.2 lets a recipient accept them, and
    // `ward check`'s client does): served, not held to the head timeout.
    let (r, took) = answer_without_hang_up(addr, b"GET /metrics HTTP/1.1\nHost: x\n\n");
    assert_eq!(status(&r), 200, "{r}");
    assert!(took < soon, "bare-LF head answered after {took:?}");
    // The start of a TLS ClientHello (a scraper set to https): 400 at once.
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let (r, took) = answer_without_hang_up(addr, hello);
    assert_eq!(status(&r), 400, "{r}");
    assert!(body(&r).contains("not an HTTP request"), "{r}");
    assert!(took < soon, "ClientHello answered after {took:?}");
    let stats = server.stop();
    assert_eq!(stats.timed_out, 0, "{stats:?}");
}

#[test]
fn slow_loris_is_cut_off_while_others_are_served() {
    let _g = serial();
    let limits = Limits::default();
    let (server, addr, _) = start(limits);
    let slow = std::thread::spawn(move || {
        let req = b"GET /metrics HTTP/1.1\r\nHost: slow.example\r\nUser-Agent: loris\r\n\r\n";
        let mut s = TcpStream::connect(addr).unwrap();
        // Reading with a 1 s timeout is the pause between bytes.
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 256];
        for (i, b) in req.iter().enumerate() {
            if s.write_all(std::slice::from_ref(b)).is_err() {
                return (i, t0.elapsed(), String::new());
            }
            match s.read(&mut buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Ok(n) => {
                    return (
                        i + 1,
                        t0.elapsed(),
                        String::from_utf8_lossy(&buf[..n]).into(),
                    );
                }
                Err(_) => return (i + 1, t0.elapsed(), String::new()),
            }
        }
        (req.len(), t0.elapsed(), String::new())
    });
    std::thread::sleep(Duration::from_millis(1500));
    // The slow client holds a connection; a scrape is answered regardless.
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), 200);
    let (sent, took, said) = slow.join().unwrap();
    // Cut off after about the head timeout: far fewer bytes than the request.
    assert!(
        sent < 20,
        "slow client sent {sent} bytes over {took:?} before the cut"
    );
    assert!(took >= limits.head_timeout, "cut after {took:?}");
    assert!(said.is_empty() || status(&said) == 408, "{said}");
    let stats = server.stop();
    assert_eq!(stats.timed_out, 1, "{stats:?}");
}

#[test]
fn idle_flood_and_request_storm_start_no_thread() {
    let _g = serial();
    let before = threads();
    let (server, addr, _) = start(Limits::default());
    // The thread names itself once it runs: wait for that (bounded).
    let named_by = Instant::now() + Duration::from_secs(10);
    while threads() == before && Instant::now() < named_by {
        std::thread::sleep(Duration::from_millis(1));
    }
    let with_server = threads();
    assert_eq!(with_server, before + 1, "the server is one thread");

    // 400 connections that never send a byte: most exceed the cap of 64.
    let idle: Vec<TcpStream> = (0..400)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();

    // 2,000 requests from the same thread: each answered, or refused cleanly.
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..2000 {
        match exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n") {
            Ok(r) if status(&r) == 200 => answered += 1,
            Ok(r) if r.is_empty() => refused += 1,
            Ok(r) => panic!("unexpected answer: {r}"),
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::BrokenPipe
                            | ErrorKind::ConnectionAborted
                    ),
                    "{e}"
                );
                refused += 1;
            }
        }
        assert_eq!(threads(), with_server);
    }
    assert_eq!(answered + refused, 2000);
    // Evicting idle connections, not new ones, keeps scrapes answered.
    assert_eq!(answered, 2000, "{refused} refused");

    // With the idle connections still open, a fresh scrape is answered.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    assert_eq!(status(&r), 200);
    assert_eq!(threads(), with_server);

    // The idle connections were closed by the server (evicted), not kept.
    let mut closed = 0;
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut b = [0u8; 1];
        if matches!(c.read(&mut b), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert!(closed >= 400 - 64, "{closed} idle connections closed");
    let stats = server.stop();
    assert!(stats.evicted >= 400 - 64, "{stats:?}");
    assert_eq!(threads(), before);
}

/// A second listener with its own routes: the shape `ward status` will use.
struct StatusRoutes;

impl Routes for StatusRoutes {
    fn respond(&mut self, head: &RequestHead<'_>, resp: &mut Response) {
        *resp = match (head.method, head.path) {
            (Method::Get, "/status") => Response::text(200, "ok\n"),
            _ => Response::text(404, "no\n"),
        };
    }
}

#[test]
fn two_listeners_each_with_its_routes() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("ward-metrics-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("status.sock");
    let mut server = Server::new(Limits::default());
    let tcp = Listener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = tcp.local_addr().unwrap();
    server
        .listen(
            tcp,
            Box::new(MetricsRoutes::new(|s: &mut String| s.push_str("x 1\n"))),
        )
        .unwrap();
    server
        .listen(
            Listener::Unix(UnixListener::bind(&sock).unwrap()),
            Box::new(StatusRoutes),
        )
        .unwrap();
    let handle = server.spawn().unwrap();

    let mut u = UnixStream::connect(&sock).unwrap();
    u.write_all(b"GET /status HTTP/1.1\r\n\r\n").unwrap();
    let mut r = String::new();
    u.read_to_string(&mut r).unwrap();
    assert_eq!((status(&r), body(&r)), (200, "ok\n"));

    let r = exchange(addr, b"GET /status HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), 404);
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(body(&r), "x 1\n");
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_metrics_in_one_call() {
    let _g = serial();
    let (handle, addr) =
        ward::metrics::http::serve_metrics("127.0.0.1:0".parse().unwrap(), |out: &mut String| {
            prom::render(&MetricsView::new(), out)
        })
        .unwrap();
    assert_ne!(addr.port(), 0);
    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert!(body(&r).contains("ward_build_info{version=\""), "{r}");
    // Dropping the handle stops the server: the port is refused afterwards.
    drop(handle);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "server still listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A response the socket cannot take at once (18 MB, more than loopback's
/// send and receive buffers hold, to a client that does not read yet) is finished from the connection's copy, while another
/// scrape renders a different text into the server's one body buffer:
/// each client gets its own text, whole.
#[test]
fn an_answer_left_half_sent_is_not_overwritten_by_the_next() {
    const LINES: usize = 500_000;
    let _g = serial();
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    // Room for an 18 MB render and its transfer on a loaded machine: the
    // write must finish within the head timeout.
    let mut server = Server::new(Limits {
        head_timeout: Duration::from_secs(60),
        ..Limits::default()
    });
    let l = Listener::bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    let routes = MetricsRoutes::new(move |out: &mut String| {
        use std::fmt::Write as _;
        let k = counter.fetch_add(1, Ordering::SeqCst) + 1;
        for line in 0..LINES {
            let _ = writeln!(out, "scrape {k} line {line:06} {}", "x".repeat(14));
        }
    });
    server.listen(l, Box::new(routes)).unwrap();
    let server = server.spawn().unwrap();
    let req = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(req).unwrap();
    // Until the first render is done, and the socket is full.
    let t0 = Instant::now();
    while n.load(Ordering::SeqCst) < 1 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let other = exchange(addr, req).unwrap();
    let mut first = Vec::new();
    slow.read_to_end(&mut first).unwrap();
    let first = String::from_utf8(first).unwrap();
    for (resp, k) in [(&first, 1), (&other, 2)] {
        assert_eq!(status(resp), 200);
        let b = body(resp);
        assert_eq!(
            header(resp, "Content-Length"),
            Some(b.len().to_string().as_str())
        );
        assert_eq!(b.lines().count(), LINES, "scrape {k}: lines missing");
        let own = format!("scrape {k} line ");
        assert!(
            b.lines().enumerate().all(|(i, l)| l.starts_with(&own) && l[own.len()..].starts_with(&format!("{i:06}"))),
            "scrape {k}: a line of another scrape, or out of order"
        );
    }
    // Joined, so the next test counts no thread of this one.
    server.stop();
}
