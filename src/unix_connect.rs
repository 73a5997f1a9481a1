//! Connecting a unix stream socket within a time limit: `ward check`'s unix
//! targets and the `ward status` channel's abstract socket. Owns only the
//! connect; what is said on the socket, and what a failure means, is the
//! caller's. Imports nothing of ward, so both callers can use it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Where a unix stream socket listens.
#[derive(Debug, Clone, Copy)]
pub enum UnixAddr<'a> {
    /// A socket file.
    Path(&'a Path),
    /// A Linux abstract name, without its leading NUL.
    Abstract(&'a str),
}

/// Connects to `addr`, waiting at most `limit` (at least 1 ms).
///
/// std's `UnixStream::connect` cannot take a timeout, and a listener whose
/// backlog is full makes `connect` wait; the kernel bounds that wait by the
/// socket's send timeout (`unix_stream_connect` uses `sock_sndtimeo`), so it
/// is set before connecting and a timeout comes back as `EAGAIN`
/// ([`io::ErrorKind::WouldBlock`]). An address that does not fit a
/// `sockaddr_un` is [`io::ErrorKind::InvalidInput`]; other errors are
/// connect(2)'s own. `EINTR` is retried, and `ECONNREFUSED` (nothing listens
/// yet) `retries` times, [`RETRY_EVERY`] apart.
pub fn connect(addr: UnixAddr<'_>, limit: Duration, retries: u32) -> io::Result<UnixStream> {
    let (sockaddr, len) = sockaddr_un(addr)?;
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket that nothing else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(limit.max(Duration::from_millis(1))))?;
    let mut retries = retries;
    loop {
        // SAFETY: sockaddr is a valid sockaddr_un of at least `len` bytes.
        let rc = unsafe {
            libc::connect(
                stream.as_raw_fd(),
                (&raw const sockaddr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc == 0 {
            return Ok(stream);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ECONNREFUSED) if retries > 0 => {
                retries -= 1;
                std::thread::sleep(RETRY_EVERY);
            }
            _ => return Err(e),
        }
    }
}

/// How long a socket that refused is left before it is tried again.
pub const RETRY_EVERY: Duration = Duration::from_millis(50);

/// The `sockaddr_un` of `addr` and the length to pass with it.
fn sockaddr_un(addr: UnixAddr<'_>) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: a zeroed sockaddr_un is a valid (empty) address.
    let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let room = sa.sun_path.len();
    let too_long = |what: &str, most: usize| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} longer than {most} bytes"),
        )
    };
    let len = match addr {
        UnixAddr::Path(path) => {
            let bytes = path.as_os_str().as_bytes();
            // One byte stays zero: the path must be NUL-terminated.
            if bytes.len() >= room || bytes.contains(&0) {
                return Err(too_long("socket path", room - 1));
            }
            copy(&mut sa.sun_path, bytes);
            std::mem::size_of::<libc::sockaddr_un>()
        }
        UnixAddr::Abstract(name) => {
            let bytes = name.as_bytes();
            if bytes.len() + 1 > room {
                return Err(too_long("abstract socket name", room - 1));
            }
            // sun_path[0] stays 0: an abstract name, of exactly this length.
            copy(&mut sa.sun_path[1..], bytes);
            std::mem::size_of::<libc::sa_family_t>() + 1 + bytes.len()
        }
    };
    Ok((sa, len as libc::socklen_t))
}

fn copy(dst: &mut [libc::c_char], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as libc::c_char;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_do_not_fit_are_invalid_input() {
        let long = "x".repeat(200);
        for addr in [
            UnixAddr::Path(Path::new(&long)),
            UnixAddr::Path(Path::new("a\0b")),
            UnixAddr::Abstract(&long),
        ] {
            let e = connect(addr, Duration::from_secs(1), 0).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{addr:?}");
        }
    }

    #[test]
    fn a_socket_file_and_an_abstract_name_connect() {
        let path = std::env::temp_dir().join(format!("ward-unix-connect-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _file = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(connect(UnixAddr::Path(&path), Duration::from_secs(1), 0).is_ok());
        let _ = std::fs::remove_file(&path);
        let gone = connect(UnixAddr::Path(&path), Duration::from_secs(1), 0);
        assert_eq!(gone.unwrap_err().kind(), io::ErrorKind::NotFound);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("ward-unix-connect-test-{}", std::process::id());
        let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _abstract = std::os::unix::net::UnixListener::bind_addr(&sa).unwrap();
        assert!(connect(UnixAddr::Abstract(&name), Duration::from_secs(1), 0).is_ok());
    }

    #[test]
    fn a_name_nobody_listens_on_yet_is_tried_again() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ward-unix-connect-late-{}", std::process::id());
        let addr = UnixAddr::Abstract(&name);
        let refused = connect(addr, Duration::from_secs(1), 0).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let refused = connect(addr, Duration::from_secs(1), 2).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // Bound three retries in: the same socket connects then.
        let bound = name.clone();
        let late = std::thread::spawn(move || {
            std::thread::sleep(RETRY_EVERY * 3);
            let sa = std::os::unix::net::SocketAddr::from_abstract_name(bound.as_bytes()).unwrap();
            std::os::unix::net::UnixListener::bind_addr(&sa).unwrap()
        });
        let stream = connect(addr, Duration::from_secs(1), 100);
        let _listener = late.join().unwrap();
        assert!(stream.is_ok(), "{stream:?}");
    }
}
