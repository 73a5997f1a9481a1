//! The HTTP/1.1 side of `ward check`: the request bytes, a pure parser for the
//! response's status line and headers, and the exchange on an open stream with
//! every read and write bounded by the deadline. It owns no connecting (that
//! is [`super::probe`]) and never reads a response body.

use std::io::{self, Read, Write};

use super::outcome::{Deadline, Failure, Phase};

/// Most bytes of a response ward reads: the status line and headers must fit.
/// Only the status code matters, so a bound keeps a broken server from making
/// the probe allocate without limit.
pub use super::outcome::MAX_HEAD;

/// The request: `GET PATH HTTP/1.1` with `Host`, `User-Agent`, `Accept`,
/// `Connection: close`, then the user's headers (a user's `Host` or
/// `User-Agent` replaces ward's).
pub fn request(path: &str, host: &str, headers: &[(String, String)]) -> Vec<u8> {
    let user_has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !user_has("host") {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    if !user_has("user-agent") {
        req.push_str(&format!(
            "User-Agent: ward-check/{}\r\n",
            env!("CARGO_PKG_VERSION")
        ));
    }
    if !user_has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    // The server closes after answering, so a server that ignores the request
    // body framing still cannot keep the probe waiting for more.
    req.push_str("Connection: close\r\n");
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A response's status line, once the whole header block has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code, 100–599.
    pub code: u16,
    /// The reason phrase as sent (may be empty), made printable.
    pub reason: String,
    /// Bytes the status line and headers took, blank line included.
    pub len: usize,
}

/// What the bytes so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A well-formed beginning; more bytes are needed.
    Partial,
    /// The complete head.
    Complete(Head),
}

/// Parses the start of a response. `Err` says what is malformed; bare `\n`
/// line ends are accepted, as most clients do.
pub fn parse_head(buf: &[u8]) -> Result<Parsed, String> {
    const PREFIX: &[u8] = b"HTTP/";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        // Judged at once: a server speaking another protocol (a TLS port, an
        // SSH banner) may never send a line end.
        return Err(format!("not an HTTP response: {}", shown(first_line(buf))));
    }
    let Some(status_end) = buf.iter().position(|&b| b == b'\n') else {
        return Ok(Parsed::Partial);
    };
    let status = trim_cr(&buf[..status_end]);
    let (code, reason) = status_line(status)?;
    let mut at = status_end + 1;
    loop {
        let Some(end) = buf[at..].iter().position(|&b| b == b'\n') else {
            return Ok(Parsed::Partial);
        };
        let line = trim_cr(&buf[at..at + end]);
        at += end + 1;
        if line.is_empty() {
            return Ok(Parsed::Complete(Head {
                code,
                reason,
                len: at,
            }));
        }
        header_line(line)?;
    }
}

/// `HTTP/1.1 200 OK` -> (200, "OK"). Version and code are ASCII and
/// checked as bytes; the reason phrase may hold obs-text (RFC 9112 4:
/// `reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )`, bytes 0x80-0xFF,
/// e.g. a Latin-1 "Réussi"), which curl and the kubelet accept, so it is
/// converted lossily rather than failing a healthy answer.
fn status_line(line: &[u8]) -> Result<(u16, String), String> {
    let bad = || format!("malformed status line {}", shown(line));
    fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let sp = bytes.iter().position(|&b| b == b' ')?;
        Some((&bytes[..sp], &bytes[sp + 1..]))
    }
    let (version, rest) = split(line).ok_or_else(bad)?;
    let digits = version.strip_prefix(b"HTTP/").ok_or_else(bad)?;
    if !matches!(digits, [a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit()) {
        return Err(bad());
    }
    let (code, reason) = split(rest).unwrap_or((rest, b""));
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code = code.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=599).contains(&code) {
        return Err(bad());
    }
    let reason = String::from_utf8_lossy(reason);
    Ok((code, printable(reason.trim(), 80)))
}

/// A header line must be `name:value`, or an obsolete folded continuation.
fn header_line(line: &[u8]) -> Result<(), String> {
    if line[0] == b' ' || line[0] == b'\t' {
        return Ok(());
    }
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 && !line[..colon].iter().any(u8::is_ascii_whitespace) => Ok(()),
        _ => Err(format!("malformed header line {}", shown(line))),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn first_line(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    trim_cr(&buf[..end])
}

/// Bytes from the network, quoted for one log line: at most 60 characters,
/// control characters escaped, so a broken server cannot split or flood the
/// probe's output.
fn shown(bytes: &[u8]) -> String {
    format!("\"{}\"", printable(&String::from_utf8_lossy(bytes), 60))
}

/// `text` without control characters and cut to `max` characters.
fn printable(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    let mut out = String::with_capacity(cut.len());
    crate::log::push_escaped(&mut out, &cut);
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Socket timeouts, set before each read or write to what is left of the budget.
pub trait Timeouts {
    /// Sets both the read and the write timeout.
    fn set_timeouts(&self, left: std::time::Duration) -> io::Result<()>;
}

impl Timeouts for std::net::TcpStream {
    fn set_timeouts(&self, left: std::time::Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

impl Timeouts for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, left: std::time::Duration) -> io::Result<()> {
        self.set_read_timeout(Some(left))?;
        self.set_write_timeout(Some(left))
    }
}

/// Sends the request and reads until the final response's head is complete.
/// Interim 1xx responses (103 Early Hints) are skipped; 101 is final.
pub fn exchange<S: Read + Write + Timeouts>(
    stream: &mut S,
    request: &[u8],
    deadline: &Deadline,
) -> Result<Head, Failure> {
    let io_failure = |phase: Phase, e: io::Error| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => deadline.timeout(phase),
        _ => Failure::Io { phase, error: e },
    };
    let left = deadline.left(Phase::Sending)?;
    stream
        .set_timeouts(left)
        .map_err(|e| io_failure(Phase::Sending, e))?;
    // The request is small and the socket buffer takes it in one write, so one
    // timeout for all of it is enough.
    stream
        .write_all(request)
        .map_err(|e| io_failure(Phase::Sending, e))?;

    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let phase = if buf.contains(&b'\n') {
            Phase::Headers
        } else {
            Phase::Waiting
        };
        match parse_head(&buf).map_err(Failure::Malformed)? {
            Parsed::Complete(head) if (100..200).contains(&head.code) && head.code != 101 => {
                buf.drain(..head.len);
                continue;
            }
            Parsed::Complete(head) => return Ok(head),
            Parsed::Partial if buf.len() >= MAX_HEAD => return Err(Failure::HeadTooLong),
            Parsed::Partial => {}
        }
        // Asked before every read, so a server that trickles bytes cannot
        // stretch the budget.
        let left = deadline.left(phase)?;
        stream
            .set_timeouts(left)
            .map_err(|e| io_failure(phase, e))?;
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return Err(Failure::Closed(phase)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(phase, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(code: u16, reason: &str, len: usize) -> Result<Parsed, String> {
        Ok(Parsed::Complete(Head {
            code,
            reason: reason.into(),
            len,
        }))
    }

    #[test]
    fn request_bytes() {
        let req = request(
            "/health?x=1",
            "127.0.0.1:8080",
            &[("X-Probe".into(), "1".into())],
        );
        let text = String::from_utf8(req).unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            text,
            format!(
                "GET /health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: ward-check/{version}\r\n\
                 Accept: */*\r\nConnection: close\r\nX-Probe: 1\r\n\r\n"
            )
        );
    }

    #[test]
    fn user_headers_replace_ward_defaults() {
        let req = request(
            "/",
            "127.0.0.1",
            &[
                ("host".into(), "api.example".into()),
                ("User-Agent".into(), "kube-probe/1.30".into()),
                ("Connection".into(), "keep-alive".into()),
            ],
        );
        let text = String::from_utf8(req).unwrap();
        assert_eq!(
            text,
            "GET / HTTP/1.1\r\nAccept: */*\r\nConnection: close\r\nhost: api.example\r\n\
             User-Agent: kube-probe/1.30\r\n\r\n"
        );
    }

    #[test]
    fn complete_heads() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parse_head(ok), head(200, "OK", ok.len() - 2));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert_eq!(parse_head(chunked), head(200, "OK", chunked.len() - 6));
        assert_eq!(
            parse_head(b"HTTP/1.0 404 Not Found\n\n"),
            head(404, "Not Found", 24)
        );
        assert_eq!(parse_head(b"HTTP/1.1 204\r\n\r\n"), head(204, "", 16));
        assert_eq!(parse_head(b"HTTP/1.1 204 \r\n\r\n"), head(204, "", 17));
        let folded = b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n Folded\r\n\r\n";
        assert_eq!(
            parse_head(folded),
            head(301, "Moved Permanently", folded.len())
        );
    }

    #[test]
    fn partial_heads() {
        for part in [
            &b""[..],
            b"H",
            b"HTTP/",
            b"HTTP/1.1 200",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nServer: x\r\n",
            b"HTTP/1.1 200 OK\r\nServer: x\r\n\r",
        ] {
            assert_eq!(parse_head(part), Ok(Parsed::Partial), "{part:?}");
        }
    }

    #[test]
    fn malformed_heads_say_what() {
        for (bytes, why) in [
            (
                &b"SSH-2.0-OpenSSH_9.2"[..],
                "not an HTTP response: \"SSH-2.0-OpenSSH_9.2\"",
            ),
            (b"\x16\x03\x01\x00", "not an HTTP response"),
            (b"hello\r\n", "not an HTTP response: \"hello\""),
            (b"HTTP/1.1 OK\r\n", "malformed status line \"HTTP/1.1 OK\""),
            (b"HTTP/1.1 20 OK\r\n", "malformed status line"),
            (b"HTTP/1.1 2000 OK\r\n", "malformed status line"),
            (b"HTTP/1.1 700 Odd\r\n", "malformed status line"),
            (b"HTTP/1.1 099 Odd\r\n", "malformed status line"),
            (b"HTTP/x 200 OK\r\n", "malformed status line"),
            (b"HTTP/1.1\r\n", "malformed status line"),
            (
                b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                "malformed header line \"no colon here\"",
            ),
            (
                b"HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
                "malformed header line",
            ),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                "malformed header line",
            ),
        ] {
            let err = parse_head(bytes).unwrap_err();
            assert!(err.contains(why), "{bytes:?}: {err}");
        }
    }

    #[test]
    fn a_reason_phrase_that_is_not_utf8_is_no_malformed_line() {
        // obs-text: "Réussi" in Latin-1 (0xe9), and a lone 0xff.
        let latin1 = b"HTTP/1.1 200 R\xe9ussi\r\nServer: x\r\n\r\n";
        assert_eq!(parse_head(latin1), head(200, "R\u{fffd}ussi", latin1.len()));
        let ff = b"HTTP/1.0 503 \xff\r\n\r\n";
        assert_eq!(parse_head(ff), head(503, "\u{fffd}", ff.len()));
        // Control characters among them are still escaped.
        let both = b"HTTP/1.1 200 \xe9\x1b[2J\r\n\r\n";
        assert_eq!(parse_head(both), head(200, "\u{fffd}\\x1b[2J", both.len()));
        // What is not the reason must still be ASCII.
        for bad in [
            &b"HTTP/1.\xe9 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 2\xe90 OK\r\n\r\n",
            b"HTTP/1.1 \xe9\r\n\r\n",
        ] {
            let err = parse_head(bad).unwrap_err();
            assert!(err.contains("malformed status line"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn network_text_is_made_printable_and_short() {
        let line = b"HTTP/1.1 200 \x1b[31mred\x07\r\n\r\n";
        assert_eq!(parse_head(line), head(200, "\\x1b[31mred\\x07", line.len()));
        let long = format!("{}\r\n", "x".repeat(500));
        let err = parse_head(long.as_bytes()).unwrap_err();
        assert!(err.len() < 100 && err.ends_with("…\""), "{err}");
    }
}
