//! A scrape of the metrics endpoint makes no buffer of a response's size
//! on the heap: the server answers from the buffers it keeps, and copies
//! only what a socket did not take at once. Before, every response was
//! copied into a buffer made for it. One test in its own binary, with an
//! allocator that counts: no other test thread allocates meanwhile.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use ward::metrics::http::serve_metrics;

// Counted: blocks of 1 KiB or more; a response is about 4 KiB, a request
// head's buffer a few hundred bytes.
mod alloc_count;

use alloc_count::{Counting, LARGE, large_allocs};

#[global_allocator]
static ALLOC: Counting = Counting;

/// A metrics text of about the size of ward's: 80 series.
fn render(out: &mut String) {
    use std::fmt::Write as _;
    for i in 0..80 {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "ward_test_series_total{{n=\"{i:02}\"}} {}", 1000 + i);
    }
}

/// One scrape, into a buffer on the stack (the client allocates nothing):
/// the status code and the body's length.
fn scrape(addr: SocketAddr, buf: &mut [u8; 16 * 1024]) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.53.0\r\n\r\n")
        .expect("send the request");
    let mut n = 0;
    loop {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read the response: {e}"),
        }
        assert!(n < buf.len(), "response larger than the client's buffer");
    }
    let text = std::str::from_utf8(&buf[..n]).expect("a text response");
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body_at = text.find("\r\n\r\n").expect("the end of the head") + 4;
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    assert_eq!(n - body_at, length, "body cut short");
    assert!(text[body_at..].ends_with("ward_test_series_total{n=\"79\"} 1079\n"));
    (status, length)
}

#[test]
fn a_scrape_copies_no_response_to_the_heap() {
    let (_handle, addr) =
        serve_metrics("127.0.0.1:0".parse().unwrap(), render).expect("start the server");
    let mut buf = [0u8; 16 * 1024];
    // The first scrapes find the server's kept buffers in place already.
    let (status, length) = scrape(addr, &mut buf);
    assert_eq!(status, 200);
    assert!(
        length > 2 * LARGE,
        "the text ({length} bytes) is not the size of ward's"
    );
    let before = large_allocs();
    for _ in 0..20 {
        assert_eq!(scrape(addr, &mut buf), (status, length));
    }
    let made = large_allocs() - before;
    assert_eq!(
        made, 0,
        "20 scrapes made {made} heap buffers of {LARGE} bytes or more"
    );
}
