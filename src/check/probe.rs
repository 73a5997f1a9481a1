//! One `ward check` probe: connect, exchange, judge, all within one
//! deadline. Owns the outcome types ([`Healthy`], [`Failure`]) and their words;
//! the HTTP bytes are [`super::http`]'s, the printing is [`super`]'s.
//!
//! Every step that can wait is bounded by what is left of the budget: TCP
//! connects with `connect_timeout`, unix connects with `SO_SNDTIMEO` set
//! before `connect` (the kernel waits on a full listen backlog that long),
//! reads and writes with socket timeouts. Nothing is resolved (see
//! [`super::target::Host`]), so no step can wait outside the budget. No
//! thread, no child process, no shell.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::http;
pub use super::outcome::{Deadline, Failure, Healthy, Phase, budget, latency_words};
use super::target::{Expect, Host, Target};
use crate::unix_connect::{self, UnixAddr};

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where.
    pub target: Target,
    /// Healthy statuses.
    pub expect: Expect,
    /// True when `--expect` was given (then a mismatch names it).
    pub expect_given: bool,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// The whole budget: connect + request + response head.
    pub timeout: Duration,
}

/// Runs the probe. `start` is when the budget began.
pub fn run(probe: &Probe, start: Instant) -> Result<Healthy, Failure> {
    let deadline = Deadline::new(start, probe.timeout);
    let request = |path: &str| {
        let host = probe.target.host_header().unwrap_or_default();
        http::request(path, &host, &probe.headers)
    };
    let head = match &probe.target {
        Target::Tcp { host, port } => {
            connect_tcp(host, *port, &deadline)?;
            return Ok(Healthy {
                status: None,
                latency: start.elapsed(),
            });
        }
        Target::Http { host, port, path } => {
            let mut stream = connect_tcp(host, *port, &deadline)?;
            http::exchange(&mut stream, &request(path), &deadline)?
        }
        Target::Unix { socket, path } => {
            let mut stream = connect_unix(socket, &deadline)?;
            http::exchange(&mut stream, &request(path), &deadline)?
        }
    };
    let latency = start.elapsed();
    if probe.expect.accepts(head.code) {
        Ok(Healthy {
            status: Some((head.code, head.reason)),
            latency,
        })
    } else {
        Err(Failure::Status {
            code: head.code,
            reason: head.reason,
            latency,
            expected: probe.expect_given.then_some(probe.expect),
        })
    }
}

/// Connects to the first address of `host` that accepts, within the budget.
fn connect_tcp(host: &Host, port: u16, deadline: &Deadline) -> Result<TcpStream, Failure> {
    let addresses = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        // Both loopbacks, as /etc/hosts lists them: a server may listen on
        // only one of them.
        Host::Localhost => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ],
    };
    let mut first = None;
    for addr in addresses {
        let left = deadline.left(Phase::Connecting)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(deadline.timeout(Phase::Connecting));
            }
            // The first error is the one to report: for `localhost`, "refused"
            // on 127.0.0.1 says more than ::1's "cannot assign requested
            // address" in a container without IPv6.
            Err(e) => first = first.or(Some(e)),
        }
    }
    // `addresses` is never empty, so `first` is set when no connect succeeded.
    Err(Failure::Connect(first.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::AddrNotAvailable, "no address")
    })))
}

/// Connects to a unix stream socket within the budget (see
/// [`unix_connect::connect`] for how a connect is bounded at all).
fn connect_unix(path: &Path, deadline: &Deadline) -> Result<UnixStream, Failure> {
    let left = deadline.left(Phase::Connecting)?;
    unix_connect::connect(UnixAddr::Path(path), left, 0).map_err(|e| match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => deadline.timeout(Phase::Connecting),
        _ => Failure::Connect(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(latency_words(Duration::from_micros(3210)), "3.2 ms");
        assert_eq!(latency_words(Duration::from_micros(80)), "0.1 ms");
        assert_eq!(latency_words(Duration::from_millis(1270)), "1.27 s");
        assert_eq!(budget(Duration::from_secs(2)), "2.0 s");
        assert_eq!(budget(Duration::from_millis(500)), "500 ms");
        let timeout = Failure::Timeout {
            after: Duration::from_secs(2),
            phase: Phase::Waiting,
        };
        assert_eq!(
            timeout.to_string(),
            "timeout after 2.0 s waiting for the response"
        );
        let refused = Failure::Connect(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.to_string(), "connection refused");
        let status = Failure::Status {
            code: 404,
            reason: "Not Found".into(),
            latency: Duration::from_micros(1100),
            expected: None,
        };
        assert_eq!(status.to_string(), "404 Not Found in 1.1 ms");
        let status = Failure::Status {
            code: 301,
            reason: String::new(),
            latency: Duration::from_micros(1100),
            expected: Some(Expect {
                low: 200,
                high: 299,
            }),
        };
        assert_eq!(status.to_string(), "301 in 1.1 ms (expected 200-299)");
        let healthy = Healthy {
            status: None,
            latency: Duration::from_micros(250),
        };
        assert_eq!(healthy.to_string(), "connected in 0.3 ms");
        let other = Failure::Connect(io::Error::from_raw_os_error(libc::ENETUNREACH));
        let words = if cfg!(target_env = "musl") {
            "network unreachable"
        } else {
            "network is unreachable"
        };
        assert_eq!(other.to_string(), words);
    }
}
