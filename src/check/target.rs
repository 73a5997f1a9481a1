//! `ward check` targets and option values: pure parsing of what the user typed
//! into what to connect to and what counts as healthy. No I/O, no resolution.
//!
//! Syntax (documented in the README):
//! - `http://HOST[:PORT][/PATH]`: HTTP/1.1 GET; PORT defaults to 80.
//! - `tcp://HOST:PORT`: healthy when a connection opens.
//! - `unix:///SOCKET[:/PATH]`: HTTP/1.1 GET over a unix socket; the socket
//!   path ends at the first `:/`, PATH defaults to `/`.
//!
//! HOST is an IPv4 literal, an IPv6 literal in brackets or `localhost`
//! (127.0.0.1 then ::1). Other names are refused rather than resolved: a
//! health check probes its own container, `getaddrinfo` cannot be bounded by
//! the timeout without a thread to abandon, and the static resolver added
//! 128 KiB (9 %) to the release binary.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An address literal: nothing to resolve.
    Ip(IpAddr),
    /// `localhost`: loopback, taken as 127.0.0.1 then ::1 without a resolver.
    Localhost,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Localhost => f.write_str("localhost"),
        }
    }
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// HTTP GET over TCP.
    Http {
        /// Server host.
        host: Host,
        /// Server port.
        port: u16,
        /// Request target: path and query, always starting with `/`.
        path: String,
    },
    /// A TCP connect, nothing sent.
    Tcp {
        /// Server host.
        host: Host,
        /// Server port.
        port: u16,
    },
    /// HTTP GET over a unix stream socket.
    Unix {
        /// The socket's path, absolute.
        socket: PathBuf,
        /// Request target: path and query, always starting with `/`.
        path: String,
    },
}

impl Target {
    /// The `Host` header value, or `None` for a plain TCP connect.
    pub fn host_header(&self) -> Option<String> {
        match self {
            Target::Http { host, port: 80, .. } => Some(host.to_string()),
            Target::Http { host, port, .. } => Some(format!("{host}:{port}")),
            // A unix socket has no host name; HTTP/1.1 still needs the header.
            Target::Unix { .. } => Some("localhost".into()),
            Target::Tcp { .. } => None,
        }
    }
}

/// Parses a target (see the module doc for the syntax).
pub fn parse(text: &str) -> Result<Target, String> {
    let (scheme, rest) = text.split_once("://").ok_or_else(|| {
        format!(
            "invalid target '{text}': expected http://HOST:PORT/PATH, tcp://HOST:PORT or unix:///SOCKET:/PATH"
        )
    })?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {
            let (authority, path) = split_authority(rest);
            let (host, port) = host_port(text, authority, Some(80))?;
            Ok(Target::Http {
                host,
                port,
                path: request_path(text, path)?,
            })
        }
        "tcp" => {
            let (authority, path) = split_authority(rest);
            if !(path.is_empty() || path == "/") {
                return Err(format!(
                    "invalid target '{text}': a tcp:// target has no path (use http:// to send a request)"
                ));
            }
            let (host, port) = host_port(text, authority, None)?;
            Ok(Target::Tcp { host, port })
        }
        "unix" => {
            // The first `:/` ends the socket path: a URL in the query string
            // (`?next=http://...`) holds `:/` too, a socket path almost never.
            let (socket, path) = match rest.find(":/") {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, ""),
            };
            if !socket.starts_with('/') || socket.len() < 2 {
                return Err(format!(
                    "invalid target '{text}': expected unix:///ABSOLUTE/PATH.sock, optionally followed by :/HTTP/PATH"
                ));
            }
            Ok(Target::Unix {
                socket: PathBuf::from(socket),
                path: request_path(text, path)?,
            })
        }
        "https" => Err(format!(
            "invalid target '{text}': https is not supported; probe the plain HTTP port inside the container, or use tcp://HOST:PORT"
        )),
        other => Err(format!(
            "invalid target '{text}': unknown scheme '{other}' (expected http, tcp or unix)"
        )),
    }
}

/// Splits `host:port/path?query#fragment` after the scheme into the authority
/// and the rest (path, query; the fragment is never sent).
fn split_authority(rest: &str) -> (&str, &str) {
    let rest = rest.split('#').next().unwrap_or("");
    match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    }
}

/// The request target for a path (and query) from the URL: `/` when empty,
/// refused when it holds bytes that would break the request line.
fn request_path(text: &str, path: &str) -> Result<String, String> {
    let path = path.split('#').next().unwrap_or("");
    if let Some(bad) = path.chars().find(|c| c.is_ascii_control() || *c == ' ') {
        return Err(format!(
            "invalid target '{text}': the path holds {bad:?}; percent-encode it (e.g. %20 for a space)"
        ));
    }
    Ok(match path {
        "" => "/".into(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.into(),
    })
}

/// Parses `HOST[:PORT]`, `[V6][:PORT]`; `default` is the port when none is given.
fn host_port(text: &str, authority: &str, default: Option<u16>) -> Result<(Host, u16), String> {
    let bad = |why: &str| format!("invalid target '{text}': {why}");
    if authority.contains('@') {
        return Err(bad(
            "credentials in the URL are not supported; send them with --header Authorization:...",
        ));
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' in an IPv6 address"))?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| bad(&format!("'{ip}' is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':PORT' after the IPv6 address"))?,
            ),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        if name.contains(':') {
            return Err(bad(
                "an IPv6 address needs brackets, e.g. http://[::1]:8080/",
            ));
        }
        (host(name).map_err(|why| bad(&why))?, port)
    };
    let port = match (port, default) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad(&format!("'{p}' is not a port (1-65535)"))),
        },
        (None, Some(d)) => d,
        (None, None) => return Err(bad("a port is needed, e.g. tcp://127.0.0.1:5432")),
    };
    Ok((host, port))
}

/// Classifies a host that is not in brackets.
fn host(name: &str) -> Result<Host, String> {
    if name.is_empty() {
        return Err("no host".into());
    }
    if name.eq_ignore_ascii_case("localhost") {
        return Ok(Host::Localhost);
    }
    if let Ok(ip) = name.parse::<std::net::Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !name.chars().all(ok) {
        return Err(format!("'{name}' is not a host name"));
    }
    // All digits and dots but not an IPv4 address (`1.2.3`, `999.1.1.1`):
    // a typo of an address, so say that rather than "host name".
    if name.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("'{name}' is not an IPv4 address"));
    }
    Err(format!(
        "'{name}' is a host name; ward check connects to IP addresses and localhost only \
         (a health check probes its own container; use 127.0.0.1, [::1] or localhost)"
    ))
}

/// Which status codes count as healthy (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// Lowest healthy code.
    pub low: u16,
    /// Highest healthy code.
    pub high: u16,
}

impl Expect {
    /// 200–399, as Kubernetes' HTTP probe counts success.
    pub const DEFAULT: Expect = Expect {
        low: 200,
        high: 399,
    };

    /// True when `code` counts as healthy.
    pub fn accepts(self, code: u16) -> bool {
        (self.low..=self.high).contains(&code)
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// Parses `--expect 204` or `--expect 200-299`.
pub fn expect(text: &str) -> Result<Expect, String> {
    let bad = || {
        format!("invalid --expect '{text}': expected a status code or a range, e.g. 204 or 200-299")
    };
    let code = |s: &str| match s.trim().parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(bad()),
    };
    let (low, high) = match text.split_once('-') {
        Some((a, b)) => (code(a)?, code(b)?),
        None => (code(text)?, code(text)?),
    };
    if low > high {
        return Err(bad());
    }
    Ok(Expect { low, high })
}

/// Parses `--header NAME:VALUE` (curl's `Name: value` too).
pub fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("invalid --header '{text}': expected NAME:VALUE"))?;
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "invalid --header '{text}': '{name}' is not a header name"
        ));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(format!(
            "invalid --header '{text}': the value holds a control character"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn http(host: Host, port: u16, path: &str) -> Target {
        Target::Http {
            host,
            port,
            path: path.into(),
        }
    }

    const LOOP4: Host = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[test]
    fn http_targets() {
        assert_eq!(
            parse("http://127.0.0.1:8080/health"),
            Ok(http(LOOP4, 8080, "/health"))
        );
        assert_eq!(parse("http://127.0.0.1"), Ok(http(LOOP4, 80, "/")));
        assert_eq!(parse("HTTP://127.0.0.1:80/"), Ok(http(LOOP4, 80, "/")));
        assert_eq!(
            parse("http://127.0.0.1:8080?ready=1"),
            Ok(http(LOOP4, 8080, "/?ready=1"))
        );
        assert_eq!(
            parse("http://127.0.0.1:8080/a/b?x=http://y#frag"),
            Ok(http(LOOP4, 8080, "/a/b?x=http://y"))
        );
        assert_eq!(
            parse("http://[::1]:8080/"),
            Ok(http(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 8080, "/"))
        );
        assert_eq!(
            parse("http://[::1]/x"),
            Ok(http(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), 80, "/x"))
        );
        assert_eq!(
            parse("http://LocalHost:9000/"),
            Ok(http(Host::Localhost, 9000, "/"))
        );
    }

    #[test]
    fn host_headers() {
        let h = |t: &str| parse(t).unwrap().host_header();
        assert_eq!(h("http://127.0.0.1:8080/"), Some("127.0.0.1:8080".into()));
        assert_eq!(h("http://localhost/"), Some("localhost".into()));
        assert_eq!(h("http://[::1]:81/"), Some("[::1]:81".into()));
        assert_eq!(h("unix:///run/a.sock"), Some("localhost".into()));
        assert_eq!(h("tcp://127.0.0.1:5432"), None);
    }

    #[test]
    fn tcp_and_unix_targets() {
        assert_eq!(
            parse("tcp://127.0.0.1:5432"),
            Ok(Target::Tcp {
                host: LOOP4,
                port: 5432
            })
        );
        assert_eq!(
            parse("tcp://[::1]:5432/"),
            Ok(Target::Tcp {
                host: Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                port: 5432
            })
        );
        assert_eq!(
            parse("unix:///run/app.sock"),
            Ok(Target::Unix {
                socket: "/run/app.sock".into(),
                path: "/".into()
            })
        );
        assert_eq!(
            parse("unix:///run/app.sock:/health?deep=1"),
            Ok(Target::Unix {
                socket: "/run/app.sock".into(),
                path: "/health?deep=1".into()
            })
        );
        assert_eq!(
            parse("unix:///run/a:b.sock:/x"),
            Ok(Target::Unix {
                socket: "/run/a:b.sock".into(),
                path: "/x".into()
            })
        );
    }

    #[test]
    fn bad_targets_say_why() {
        for (text, why) in [
            ("127.0.0.1:8080", "expected http://"),
            ("https://127.0.0.1/", "https is not supported"),
            ("ftp://127.0.0.1/", "unknown scheme 'ftp'"),
            ("tcp://127.0.0.1", "a port is needed"),
            ("tcp://127.0.0.1:1/x", "no path"),
            ("http://127.0.0.1:0/", "'0' is not a port"),
            ("http://127.0.0.1:65536/", "'65536' is not a port"),
            ("http://127.0.0.1:/", "'' is not a port"),
            ("http://:80/", "no host"),
            ("http:///x", "no host"),
            ("http://::1:80/", "needs brackets"),
            ("http://[::1/", "unclosed"),
            ("http://[::g]:80/", "not an IPv6 address"),
            ("http://[::1]80/", "expected ':PORT'"),
            ("http://a b/", "not a host name"),
            ("http://999.1.1.1/", "not an IPv4 address"),
            ("http://api.internal:9000/", "'api.internal' is a host name"),
            ("tcp://db:5432", "IP addresses and localhost only"),
            ("http://u:p@127.0.0.1/", "credentials"),
            ("http://127.0.0.1/a b", "percent-encode"),
            ("http://127.0.0.1/a\r\nX: y", "percent-encode"),
            ("unix://run/a.sock", "ABSOLUTE"),
            ("unix:///", "ABSOLUTE"),
            ("unix://:/x", "ABSOLUTE"),
        ] {
            let err = parse(text).unwrap_err();
            // One line even so: `check::one_line` escapes what the user typed.
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn expect_values() {
        assert_eq!(
            expect("204"),
            Ok(Expect {
                low: 204,
                high: 204
            })
        );
        assert_eq!(
            expect("200-299"),
            Ok(Expect {
                low: 200,
                high: 299
            })
        );
        assert!(Expect::DEFAULT.accepts(200));
        assert!(Expect::DEFAULT.accepts(399));
        assert!(!Expect::DEFAULT.accepts(400));
        assert!(!Expect::DEFAULT.accepts(199));
        assert_eq!(expect("200-299").unwrap().to_string(), "200-299");
        assert_eq!(expect("204").unwrap().to_string(), "204");
        for bad in [
            "",
            "2xx",
            "299-200",
            "99",
            "600",
            "200-",
            "-200",
            "200-299-300",
        ] {
            assert!(expect(bad).unwrap_err().contains("--expect"), "{bad}");
        }
    }

    #[test]
    fn header_values() {
        assert_eq!(
            header("X-Probe:ward"),
            Ok(("X-Probe".into(), "ward".into()))
        );
        assert_eq!(
            header("Authorization: Bearer a:b"),
            Ok(("Authorization".into(), "Bearer a:b".into()))
        );
        assert_eq!(header("X-Empty:"), Ok(("X-Empty".into(), "".into())));
        for bad in ["novalue", ":v", "X Y:v", "X:a\r\nEvil: 1", "X:\0"] {
            assert!(header(bad).unwrap_err().contains("--header"), "{bad}");
        }
    }
}
