//! A scrape of the metrics endpoint makes no buffer of a response's size
//! on the heap: the server answers from the buffers it keeps, and copies
//! only what a socket did not take at once. Before, every response was
//! copied into a buffer made for it. One test in its own binary, with an
//! allocator that counts: no other test thread allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use ward::metrics::http::serve_metrics;

/// Allocations (and reallocations to) this size or more are counted: a
/// response is about 4 KiB; a request head's buffer is a few hundred bytes.
const LARGE: usize = 1024;

static LARGE_ALLOCS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call goes to the system allocator unchanged; the counter
// is an atomic and allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as allocated above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= LARGE {
            LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= LARGE {
            LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as allocated above, with the caller's new size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

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
    let before = LARGE_ALLOCS.load(Ordering::Relaxed);
    for _ in 0..20 {
        assert_eq!(scrape(addr, &mut buf), (status, length));
    }
    let made = LARGE_ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        made, 0,
        "20 scrapes made {made} heap buffers of {LARGE} bytes or more"
    );
}
