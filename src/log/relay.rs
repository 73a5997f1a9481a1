//! A writer thread for a stderr that is a regular file or a block device.
//! Such writes never wait for a reader, but they do wait for the filesystem
//! (one frozen with `fsfreeze`, a hung NFS or FUSE server), in a sleep no
//! signal ends. The reaping thread must never be the one waiting, so lines go
//! through a pipe of ward's own to this thread, which alone writes to fd 2.
//!
//! Owns the pipe, the thread and the counts the sink reads back. The thread
//! writes whole lines only (a pipe read may end mid-line), so a ward line
//! never has the child's output in the middle of it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::queue::PIPE_BUF;

/// How long one write to the file may take before `ward status` calls
/// stderr stalled: a healthy disk takes microseconds.
const STALL_AFTER: Duration = Duration::from_secs(1);

/// The writer thread's stack: it holds one buffer of two `PIPE_BUF`s and
/// calls nothing deep.
const STACK_BYTES: usize = 64 * 1024;

/// What the writer thread tells the sink, without a lock.
#[derive(Debug)]
struct Counts {
    /// Bytes the sink put into the pipe.
    taken: AtomicU64,
    /// Bytes the thread wrote to the file, or lost to a failed write.
    done: AtomicU64,
    /// Lines lost to failed writes and not yet counted by the sink.
    lost_lines: AtomicU64,
    /// The last write to the file failed.
    failed: AtomicBool,
    /// While a write is under way: milliseconds since `base`, plus one.
    busy_since: AtomicU64,
    base: Instant,
}

/// The sink's end: the pipe's write side (non-blocking, close-on-exec) and
/// the counts. The thread lives as long as ward; dropping a `Relay` closes
/// the pipe, and the thread ends once it has written what was in it.
#[derive(Debug)]
pub struct Relay {
    pipe: OwnedFd,
    counts: Arc<Counts>,
}

impl Relay {
    /// Starts the writer thread for `fd`. The thread starts with every
    /// signal blocked, so none meant for ward is ever taken by it, and the
    /// caller's mask is then set back exactly: this runs after the child
    /// starts, past `SignalInbox::reblock`, and glibc's thread creation
    /// leaves its own signals 32 and 33 unblocked in the caller (musl's
    /// does that to 33 and 34 at its first call only, normally the watch
    /// thread's). It never waits for the new thread, not even as musl's
    /// first (no watch thread): it may run on the reaping thread, inside
    /// the sink's lock, after the child runs, where a wait would keep no 34
    /// from the new thread anyway.
    pub fn start(fd: RawFd) -> io::Result<Relay> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fresh fds, owned right below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fds nobody else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on an fd we own; only this description is changed.
        if unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let counts = Arc::new(Counts {
            taken: AtomicU64::new(0),
            done: AtomicU64::new(0),
            lost_lines: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            busy_since: AtomicU64::new(0),
            base: Instant::now(),
        });
        let theirs = counts.clone();
        let all: Vec<i32> = (1..=crate::sigmask::SIG_MAX).collect();
        let old = crate::sigmask::block(&crate::sigmask::kernel_sigset(&all))?;
        let spawned = std::thread::Builder::new()
            .name("ward-log".into())
            .stack_size(STACK_BYTES)
            .spawn(move || pass_on(read, fd, &theirs));
        crate::sigmask::set(&old)?;
        spawned?;
        Ok(Relay {
            pipe: write,
            counts,
        })
    }

    /// One write into the pipe that never waits: `WouldBlock` when it is full.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: write of a live buffer to an fd we own.
        let n = unsafe { libc::write(self.pipe.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.counts.taken.fetch_add(n as u64, Ordering::Release);
        Ok(n as usize)
    }

    /// The pipe's write side, to poll for room.
    pub fn poll_fd(&self) -> RawFd {
        self.pipe.as_raw_fd()
    }

    /// Bytes in the pipe or in the thread's hands, not yet in the file.
    pub fn held(&self) -> u64 {
        let done = self.counts.done.load(Ordering::Acquire);
        self.counts
            .taken
            .load(Ordering::Acquire)
            .saturating_sub(done)
    }

    /// Lines lost to failed writes since the last call.
    pub fn take_lost(&self) -> u64 {
        self.counts.lost_lines.swap(0, Ordering::AcqRel)
    }

    /// Lines lost to failed writes that [`Relay::take_lost`] has not taken.
    pub fn lost(&self) -> u64 {
        self.counts.lost_lines.load(Ordering::Acquire)
    }

    /// The last write to the file failed.
    pub fn failed(&self) -> bool {
        self.counts.failed.load(Ordering::Acquire)
    }

    /// Since when one write has been under way, once that is longer than
    /// [`STALL_AFTER`].
    pub fn stalled_since(&self, now: Instant) -> Option<Instant> {
        let ms = self.counts.busy_since.load(Ordering::Acquire);
        let since = self.counts.base + Duration::from_millis(ms.checked_sub(1)?);
        (now.saturating_duration_since(since) >= STALL_AFTER).then_some(since)
    }

    /// A second handle on the pipe and the counts, for the way out at exit
    /// that takes no lock ([`super::sink`]'s `write_past_the_lock`). Valid
    /// while the `Relay` lives, which is as long as ward.
    pub fn exit_handle(&self) -> ExitHandle {
        ExitHandle {
            pipe: self.pipe.as_raw_fd(),
            counts: self.counts.clone(),
        }
    }
}

/// See [`Relay::exit_handle`].
#[derive(Debug)]
pub struct ExitHandle {
    pipe: RawFd,
    counts: Arc<Counts>,
}

impl ExitHandle {
    /// As [`Relay::write`].
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: write of a live buffer to the relay's pipe, which the
        // sink's `Relay` keeps open for ward's life.
        let n = unsafe { libc::write(self.pipe, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.counts.taken.fetch_add(n as u64, Ordering::Release);
        Ok(n as usize)
    }

    /// Waits until the writer thread has written what is in the pipe, or
    /// `within` has passed: ward's exit would end it with lines unwritten.
    pub fn drain(&self, within: Duration) {
        let until = Instant::now() + within;
        while self.counts.taken.load(Ordering::Acquire) > self.counts.done.load(Ordering::Acquire)
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The writer thread: reads the pipe (blocking) and writes whole lines to
/// `fd` (blocking), until the pipe's write side is closed.
fn pass_on(read: OwnedFd, fd: RawFd, counts: &Counts) {
    // The libc starts a thread with some of its own signals unblocked
    // (glibc 32 and 33, musl 33, and 34 too in its first): block them too,
    // so every signal is the reaping thread's.
    let _ = crate::sigmask::block_all();
    let mut buf = [0u8; 2 * PIPE_BUF];
    let mut have = 0;
    loop {
        let room = &mut buf[have..];
        // SAFETY: read into the free part of a live buffer.
        let n = unsafe { libc::read(read.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
        if n == 0 {
            return;
        }
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        have += n as usize;
        let cut = match buf[..have].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            // A line longer than the buffer goes in pieces.
            None if have == buf.len() => have,
            None => continue,
        };
        let ms = counts.base.elapsed().as_millis() as u64;
        counts.busy_since.store(ms + 1, Ordering::Release);
        let written = write_all(fd, &buf[..cut]);
        counts.busy_since.store(0, Ordering::Release);
        let failed = written < cut;
        if failed {
            // A drop notice lost here takes its count with it.
            let lost: u64 = buf[written..cut]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(super::lines_stood_for)
                .sum();
            counts.lost_lines.fetch_add(lost.max(1), Ordering::AcqRel);
        }
        counts.failed.store(failed, Ordering::Release);
        counts.done.fetch_add(cut as u64, Ordering::AcqRel);
        buf.copy_within(cut..have, 0);
        have -= cut;
    }
}

/// Writes `bytes` to `fd`, waiting as long as the file does; returns how many
/// were written (fewer only on an error other than EINTR).
fn write_all(fd: RawFd, bytes: &[u8]) -> usize {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // SAFETY: write of a live buffer to an fd ward never closes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            at += n as usize;
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return at;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(r: &Relay) -> bool {
        for _ in 0..500 {
            if r.held() == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn whole_lines_reach_the_file_between_the_childs_writes() {
        let path = std::env::temp_dir().join(format!("ward-relay-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let fd = file.as_raw_fd();
        let r = Relay::start(fd).unwrap();
        // SAFETY: writes of live buffers to a file we own.
        unsafe { libc::write(fd, b"child 1\n".as_ptr().cast(), 8) };
        // Half a line first: the thread must not write it alone.
        assert_eq!(r.write(b"ward ").unwrap(), 5);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(r.held(), 5, "half a line was written out");
        assert_eq!(r.write(b"line\n").unwrap(), 5);
        assert!(drained(&r));
        unsafe { libc::write(fd, b"child 2\n".as_ptr().cast(), 8) };
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "child 1\nward line\nchild 2\n"
        );
        assert!(!r.failed());
        assert_eq!(r.take_lost(), 0);
        assert_eq!(r.stalled_since(Instant::now()), None);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn failed_writes_are_counted_as_lost_lines() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let r = Relay::start(full.as_raw_fd()).unwrap();
        r.write(
            b"one\nward: warning [log_dropped] 40 log lines lost: writing to stderr failed\ntwo\n",
        )
        .unwrap();
        assert!(drained(&r));
        assert!(r.failed());
        assert_eq!(r.lost(), 42, "a lost notice stands for its 40");
        assert_eq!(r.take_lost(), 42);
        assert_eq!(r.take_lost(), 0);
    }

    #[test]
    fn a_long_line_goes_in_pieces_and_whole() {
        let path = std::env::temp_dir().join(format!("ward-relay-long-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let r = Relay::start(file.as_raw_fd()).unwrap();
        let mut line = vec![b'x'; 3 * PIPE_BUF];
        line.push(b'\n');
        let mut at = 0;
        while at < line.len() {
            match r.write(&line[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(drained(&r));
        assert_eq!(std::fs::read(&path).unwrap(), line);
        let _ = std::fs::remove_file(&path);
    }
}
