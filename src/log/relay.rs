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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
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
    /// Bumped after each write to the file and at the thread's end: the
    /// futex word a thread waiting for the lines to be written sleeps on.
    progress: AtomicU32,
    /// Threads asleep on `progress`, or about to be (counted before the
    /// futex compares): the writer makes the wake-up call only when there
    /// is one.
    waiters: AtomicU32,
    /// The thread has ended: nothing more will be written.
    ended: AtomicBool,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            taken: AtomicU64::new(0),
            done: AtomicU64::new(0),
            lost_lines: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            busy_since: AtomicU64::new(0),
            base: Instant::now(),
            progress: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            ended: AtomicBool::new(false),
        }
    }

    /// Bytes in the pipe or in the thread's hands, not yet in the file.
    fn held(&self) -> u64 {
        let done = self.done.load(Ordering::Acquire);
        self.taken.load(Ordering::Acquire).saturating_sub(done)
    }

    /// Wakes whoever waits in [`Counts::wait_written`]; called by the
    /// writer thread after each write and as it ends.
    fn progressed(&self) {
        self.progress.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&self.progress);
        }
    }

    /// Sleeps until the thread has written everything taken so far, or has
    /// ended, or `within` has passed; true when everything was written.
    /// Woken by the thread's own progress, so a wait ends as the last line
    /// lands in the file, not at the next turn of a fixed sleep.
    fn wait_written(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            // Read before the checks: a write after them changes it, and
            // the futex then does not sleep.
            let seen = self.progress.load(Ordering::SeqCst);
            if self.held() == 0 {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if self.ended.load(Ordering::Acquire) || left.is_zero() {
                return false;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            futex_wait(&self.progress, seen, left);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Sleeps while `word` holds `expected`, `within` at most (a wake-up, a
/// signal or a spurious return ends it early; callers check again). Where
/// the call itself is refused (a seccomp profile, say), sleeps a
/// millisecond instead, so that no caller's loop spins.
fn futex_wait(word: &AtomicU32, expected: u32, within: Duration) {
    let ts = libc::timespec {
        tv_sec: within.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: within.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a futex word that lives as long as the call (it is borrowed),
    // and a relative timeout on the stack; FUTEX_WAIT only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        )
    };
    if rc != 0
        && !matches!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT)
        )
    {
        std::thread::sleep(within.min(Duration::from_millis(1)));
    }
}

/// Wakes every thread asleep in [`futex_wait`] on `word`.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a live word of this process; it reads nothing.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
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
        let counts = Arc::new(Counts::new());
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
        self.counts.held()
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

    /// Waits until the writer thread has written what is in the pipe (true),
    /// or has ended, or `within` has passed: ward's exit would end it with
    /// lines unwritten. Takes no lock: a thread holding the sink's may call it.
    pub fn drain(&self, within: Duration) -> bool {
        self.counts.wait_written(within)
    }
}

/// The writer thread: reads the pipe (blocking) and writes whole lines to
/// `fd` (blocking), until the pipe's write side is closed or a read fails;
/// then says it has ended, waking whoever waits for its lines.
fn pass_on(read: OwnedFd, fd: RawFd, counts: &Counts) {
    write_lines(read, fd, counts);
    counts.ended.store(true, Ordering::Release);
    counts.progressed();
}

/// [`pass_on`]'s loop, until the pipe ends or fails.
fn write_lines(read: OwnedFd, fd: RawFd, counts: &Counts) {
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
        counts.progressed();
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

    /// A pipe of one page whose write side is full: a write to it waits
    /// until the read side is read. Returns the pipe and its size.
    fn full_pipe() -> (OwnedFd, OwnedFd, usize) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fresh fds, owned right below.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh fds nobody else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a pipe we own.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        assert!(size > 0, "F_SETPIPE_SZ: {}", io::Error::last_os_error());
        let fill = vec![b'.'; size as usize];
        // SAFETY: write of a live buffer; the pipe takes exactly its size.
        let n = unsafe { libc::write(write.as_raw_fd(), fill.as_ptr().cast(), fill.len()) };
        assert_eq!(n, size as isize);
        (read, write, size as usize)
    }

    /// Reads everything the pipe holds until `want` bytes came.
    fn read_out(read: &OwnedFd, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while got.len() < want {
            // SAFETY: read into a live buffer from a pipe we own.
            let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n > 0, "read: {}", io::Error::last_os_error());
            got.extend_from_slice(&buf[..n as usize]);
        }
        got
    }

    /// A wait that must end by a wake-up, not by its deadline: this long
    /// (a lost wake-up holds a test this long, then fails it).
    const WAKE_DEADLINE: Duration = Duration::from_secs(60);

    /// Whether a wait that began at `t0` ended well before
    /// [`WAKE_DEADLINE`]: by a wake-up (or a check), not by running out.
    fn ended_early(t0: Instant) -> bool {
        t0.elapsed() < WAKE_DEADLINE / 2
    }

    #[test]
    fn the_wait_at_exit_lasts_until_the_lines_are_written_and_no_longer() {
        let (read, write, size) = full_pipe();
        let r = Relay::start(write.as_raw_fd()).unwrap();
        r.write(b"ward: the last line\n").unwrap();
        let exit = r.exit_handle();
        let waiter = std::thread::spawn(move || {
            let t0 = Instant::now();
            (exit.drain(WAKE_DEADLINE), ended_early(t0))
        });
        // The writer thread is stuck in its write: the wait goes on.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !waiter.is_finished(),
            "the wait ended with the line unwritten"
        );
        assert_eq!(r.held(), 20);
        // The file takes it: the writer's wake-up ends the wait.
        let got = read_out(&read, size + 20);
        assert!(got.ends_with(b"ward: the last line\n"));
        let (written, early) = waiter.join().unwrap();
        assert!(written, "the wait said the line was not written");
        assert!(early, "the wait ran to its deadline: no wake-up came");
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn the_wait_at_exit_gives_up_at_its_deadline() {
        let (read, write, size) = full_pipe();
        let r = Relay::start(write.as_raw_fd()).unwrap();
        r.write(b"stuck\n").unwrap();
        assert!(!r.exit_handle().drain(Duration::from_millis(50)));
        assert_eq!(r.held(), 6);
        read_out(&read, size + 6);
        let t0 = Instant::now();
        assert!(r.exit_handle().drain(WAKE_DEADLINE));
        assert!(ended_early(t0), "no wake-up came");
    }

    #[test]
    fn the_wait_ends_at_once_when_the_writer_is_gone() {
        let c = Counts::new();
        c.taken.store(10, Ordering::Release);
        assert!(!c.wait_written(Duration::ZERO));
        c.ended.store(true, Ordering::Release);
        let t0 = Instant::now();
        assert!(!c.wait_written(WAKE_DEADLINE));
        assert!(ended_early(t0), "the wait for an ended writer slept");
        c.done.store(10, Ordering::Release);
        assert!(c.wait_written(WAKE_DEADLINE));
    }

    #[test]
    fn a_writer_that_ends_wakes_the_wait() {
        let c = Arc::new(Counts::new());
        c.taken.store(10, Ordering::Release);
        let theirs = c.clone();
        let waiter = std::thread::spawn(move || {
            let t0 = Instant::now();
            (theirs.wait_written(WAKE_DEADLINE), ended_early(t0))
        });
        std::thread::sleep(Duration::from_millis(100));
        // As the writer thread does at its end.
        c.ended.store(true, Ordering::Release);
        c.progressed();
        let (written, early) = waiter.join().unwrap();
        assert!(!written);
        assert!(early, "the writer's end did not wake the wait");
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
