//! The metrics and status endpoint's request head: any bytes a client on
//! the loopback port sends, through `metrics::http::parse_request_head`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::metrics::http::parse_request_head;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = parse_request_head(data) else {
        return;
    };
    assert!(h.len <= data.len(), "a head longer than its input");
    assert_eq!(data[h.len - 1], b'\n', "a head that does not end a line");
    assert!(
        h.path.starts_with('/'),
        "not an origin-form path: {:?}",
        h.path
    );
    let head = &data[..h.len];
    let within = |s: &str| head.windows(s.len().max(1)).any(|w| w == s.as_bytes());
    assert!(within(h.path), "path not text of the head");
    if let Some(q) = h.query {
        assert!(q.is_empty() || within(q), "query not text of the head");
    }
    // A complete head still parses alike with bytes after it (a body, the
    // next pipelined request).
    let mut more = data[..h.len].to_vec();
    more.extend_from_slice(b"GET / HTTP/1.1\r\n");
    assert_eq!(parse_request_head(&more).map(|m| m.len), Ok(h.len));
});
