//! Where ward's lines go: a way to write to whatever fd 2 is without ever
//! waiting for its reader, and the one bounded queue in front of it. Owns the
//! sink's own fd (close-on-exec, never closed) and the queue's lock. Must not
//! change fd 2's flags, wrap it in an owning type, or close it: the child
//! inherits fd 2 and expects it blocking.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use super::queue::{Flow, LineQueue, PIPE_BUF, next_chunk};
use super::relay::{ExitHandle, Relay};

/// Bytes of lines that may wait for a stalled stderr: 64 KiB, allocated once
/// at start. A stalled reader costs this much and no more.
pub const QUEUE_BYTES: usize = 64 * 1024;

/// How ward writes to the file behind fd 2 without blocking.
#[derive(Debug)]
pub enum Target {
    /// A description of ward's own for fd 2's file (a pipe, FIFO, terminal or
    /// character device), opened through `/proc/self/fd/2` with O_NONBLOCK.
    /// File status flags belong to the description, so fd 2's stays blocking.
    Reopened(OwnedFd),
    /// fd 2 is a socket (journald, some log shippers): reopening fails with
    /// ENXIO, but `send(MSG_DONTWAIT)` is non-blocking for one call without
    /// touching the shared flags.
    Socket(RawFd),
    /// fd 2 is a regular file or block device: writes never wait for a
    /// reader, and a second description would have its own offset and write
    /// over the child's output (unless O_APPEND), so write to fd 2 itself.
    /// Such a write still waits for the filesystem (frozen, a hung NFS), so
    /// once the child is near ([`start_file_writer`]) this becomes a
    /// [`Target::Relayed`]; `Shared` is left only when no writer thread
    /// could be had.
    Shared(RawFd),
    /// A `Shared` target behind ward's writer thread: lines go into a pipe
    /// without waiting, and the thread alone waits for the file.
    Relayed(Relay),
    /// Last resort when no non-blocking path could be had (no /proc, a pipe
    /// whose reader is gone, no permission to reopen): `poll` with timeout 0
    /// for POLLOUT, then one write of at most PIPE_BUF, which a pipe with
    /// room takes without waiting. A terminal stopped with Ctrl-S between the
    /// poll and the write can still hold ward; nothing better exists without
    /// changing fd 2's flags.
    PollFirst(RawFd),
    /// fd 2 is closed: there is nowhere to write.
    Closed,
}

impl Target {
    /// Picks the way to write to `fd` (2 in ward; any fd in tests).
    pub fn open(fd: RawFd) -> Target {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills the buffer on success; we read it only then.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
            return Target::Closed;
        }
        // SAFETY: fstat succeeded.
        let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
        match mode {
            libc::S_IFREG | libc::S_IFBLK => Target::Shared(fd),
            libc::S_IFSOCK => Target::Socket(fd),
            _ => match reopen_nonblocking(fd) {
                Ok(own) => Target::Reopened(own),
                Err(_) => Target::PollFirst(fd),
            },
        }
    }

    /// One write that never waits: `WouldBlock` when the reader is behind.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY (all arms): write/send/poll on a live buffer and an fd we
        // only borrow; none of them keep a pointer past the call.
        let n = match self {
            Target::Reopened(fd) => unsafe {
                libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len())
            },
            Target::Socket(fd) => unsafe {
                libc::send(
                    *fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            },
            Target::Shared(fd) => unsafe { libc::write(*fd, buf.as_ptr().cast(), buf.len()) },
            Target::Relayed(relay) => return relay.write(buf),
            Target::PollFirst(fd) => {
                let mut p = libc::pollfd {
                    fd: *fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ready = unsafe { libc::poll(&mut p, 1, 0) };
                if ready < 0 {
                    return Err(io::Error::last_os_error());
                }
                // POLLERR/POLLHUP: let the write report what is wrong.
                if ready == 0 || p.revents == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let len = buf.len().min(PIPE_BUF);
                unsafe { libc::write(*fd, buf.as_ptr().cast(), len) }
            }
            Target::Closed => return Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// The fd to poll for POLLOUT, if there is one.
    pub fn poll_fd(&self) -> Option<RawFd> {
        match self {
            Target::Reopened(fd) => Some(fd.as_raw_fd()),
            Target::Socket(fd) | Target::Shared(fd) | Target::PollFirst(fd) => Some(*fd),
            Target::Relayed(relay) => Some(relay.poll_fd()),
            Target::Closed => None,
        }
    }
}

/// Opens `/proc/self/fd/FD` write-only, non-blocking, close-on-exec (the
/// child must not inherit it) and without becoming ward's controlling
/// terminal if it is one.
fn reopen_nonblocking(fd: RawFd) -> io::Result<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).map_err(io::Error::other)?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: open on a NUL-terminated path; the fd is owned right below.
    let new = unsafe { libc::open(path.as_ptr(), flags) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The process's one sink: the target and the lines waiting for it.
struct Sink {
    target: Target,
    queue: LineQueue,
    /// The target failed for good (EPIPE, EBADF, EIO). Until a new line comes
    /// there is nothing to poll for: an fd in error would make `poll` return
    /// at once, and the loop would spin.
    broken: bool,
    /// Since when lines have waited (stderr took no more): `ward status`
    /// says so, as whatever else writes there is blocked too.
    waiting_since: Option<Instant>,
}

/// What waits for stderr: see [`backlog`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Bytes of whole lines waiting.
    pub bytes: usize,
    /// Lines dropped (the queue was full) and not yet reported in the log.
    pub dropped: u64,
    /// Since when lines have waited.
    pub since: Instant,
    /// The last write failed (a closed pipe, no space): lines are lost,
    /// not waiting, and nothing else is held up.
    pub failed: bool,
    /// stderr is a file: what holds the lines is its filesystem, not a
    /// reader.
    pub file: bool,
    /// None of ward's lines wait, but stderr took no writes for
    /// [`FULL_AFTER`]: nobody reads it, and whatever writes there (the
    /// application) is blocked. Since when is not known.
    pub full_now: bool,
}

impl Sink {
    fn stderr() -> Sink {
        Sink {
            target: Target::open(libc::STDERR_FILENO),
            queue: LineQueue::with_capacity(QUEUE_BYTES),
            broken: false,
            waiting_since: None,
        }
    }

    fn write_out(&mut self) {
        if let Some(lost) = self.relay().map(Relay::take_lost).filter(|&n| n > 0) {
            self.queue.count_lost(lost);
        }
        let target = &self.target;
        let flow = self
            .queue
            .write_out(&mut |b| target.write(b), &super::dropped_notice);
        self.broken = matches!(flow, Flow::Failed);
        if self.queue.is_empty() && self.queue.dropped() == 0 {
            self.waiting_since = None;
        } else if self.waiting_since.is_none() {
            self.waiting_since = Some(Instant::now());
        }
    }

    fn relay(&self) -> Option<&Relay> {
        match &self.target {
            Target::Relayed(relay) => Some(relay),
            _ => None,
        }
    }

    /// The writer thread still holds lines the file has not taken.
    fn relay_holds(&self) -> bool {
        self.relay().is_some_and(|r| r.held() > 0)
    }

    fn pending_fd(&self) -> Option<RawFd> {
        if self.broken || self.queue.is_empty() {
            return None;
        }
        self.target.poll_fd()
    }
}

/// Guarded by a mutex held only to copy a line and make non-blocking writes.
/// Other threads wait for it; the reaping thread never does ([`HeldBack`]).
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// The most bytes of lines the reaping thread holds back while another
/// thread has the sink; lines past it are counted, as a full queue's are.
const HELD_BACK_BYTES: usize = 16 * 1024;

/// What the reaping thread keeps of its own while another thread holds the
/// sink. A thread holds it for microseconds, but one starved of CPU, in
/// reclaim near a memory limit, or stopped by a debugger holds it that much
/// longer, and PID 1 must not stop reaping for it. The reaping thread tries
/// the lock again on its next line, on its next turn of the loop, and every
/// [`HELD_BACK_RETRY`] while lines are held back.
struct HeldBack {
    /// Whole lines, in order; it grows at the first lines held back and
    /// keeps its room (at most about [`HELD_BACK_BYTES`]) after.
    lines: Vec<u8>,
    /// Lines that did not fit.
    dropped: u64,
    /// The file writer's start waits for the lock too.
    start_writer: bool,
    /// The lock was busy at the thread's last try: lines another thread
    /// queued may wait for stderr with nobody polling for it, so the loop
    /// comes round again soon.
    lock_busy: bool,
    /// A line that must not be lost (the exit report), kept apart from the
    /// bounded lines: handed over after them and their drop notice, and
    /// into the queue by [`LineQueue::push_must`].
    must: Vec<u8>,
}

/// How often the reaping thread tries the lock again while it holds lines
/// back.
pub const HELD_BACK_RETRY: Duration = Duration::from_millis(10);

impl HeldBack {
    fn push(&mut self, line: &[u8]) {
        if self.dropped == 0 && self.lines.len() + line.len() <= HELD_BACK_BYTES {
            self.lines.extend_from_slice(line);
        } else {
            // Kept in order: once one is dropped, the rest are too until
            // the lines held back are out, so the count sits where they
            // went missing.
            self.dropped += 1;
        }
    }

    /// A line that must not be lost (the exit report): kept whatever the
    /// bound (one such line a run), to go after the lines held before it
    /// and their drop notice.
    fn push_must(&mut self, line: &[u8]) {
        self.must.extend_from_slice(line);
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.dropped == 0 && !self.start_writer && self.must.is_empty()
    }

    /// The thread's loop should come round within [`HELD_BACK_RETRY`].
    fn wants_retry(&self) -> bool {
        !self.is_empty() || self.lock_busy
    }

    /// Hands everything held back to the sink, in order, before the line
    /// that got the lock.
    fn hand_over(&mut self, sink: &mut Sink) {
        if self.is_empty() {
            return;
        }
        if self.start_writer {
            self.start_writer = false;
            sink.start_file_writer();
        }
        for line in self.lines.split_inclusive(|&b| b == b'\n') {
            sink.queue.push(line, &super::dropped_notice);
        }
        self.lines.clear();
        if self.dropped > 0 {
            let notice = super::held_back_notice(self.dropped);
            sink.queue.push_notice(notice.as_bytes(), self.dropped);
            self.dropped = 0;
        }
        if !self.must.is_empty() {
            sink.queue.push_must(&self.must, &super::dropped_notice);
            self.must.clear();
        }
    }

    /// At exit, when the lock never came: the lines held back (the exit
    /// report among them) go out past it, after a notice that lines queued
    /// before may be missing (the queue, the reaping thread's earlier lines
    /// among them, is the other thread's to write, and is lost with it).
    /// Into the file writer's pipe when there is one (in order behind its
    /// lines, and no wait for the file), else to fd 2 by a way of its own
    /// that never waits for a reader.
    fn write_past_the_lock(&mut self) {
        if self.lines.is_empty() && self.dropped == 0 && self.must.is_empty() {
            // Nothing of this thread's to write: what waits in the queue
            // is lost as at any exit whose stderr did not drain in time.
            return;
        }
        let mut pending = super::lock_held_notice().into_bytes();
        pending.append(&mut self.lines);
        if self.dropped > 0 {
            pending.extend_from_slice(super::held_back_notice(self.dropped).as_bytes());
            self.dropped = 0;
        }
        pending.append(&mut self.must);
        let relay = EXIT_RELAY.get();
        let target = Target::open(libc::STDERR_FILENO);
        if relay.is_none() && matches!(target, Target::Shared(_)) {
            // A file with no writer thread (it could not be had): a write
            // there may wait for its filesystem, which PID 1 must not.
            return;
        }
        let mut rest = &pending[..];
        while !rest.is_empty() {
            let chunk = next_chunk(rest);
            let wrote = match relay {
                Some(r) => r.write(chunk),
                None => target.write(chunk),
            };
            match wrote {
                Ok(n) if n > 0 => rest = &rest[n..],
                _ => break,
            }
        }
        if let Some(r) = relay {
            r.drain(EXIT_DRAIN);
        }
    }
}

/// The file writer's pipe and counts, once it runs: the way out at exit
/// when the lock never came (in order behind the writer's lines, and no
/// wait for the file on the reaping thread).
static EXIT_RELAY: OnceLock<ExitHandle> = OnceLock::new();

/// How long the way out at exit waits for the file writer to write what it
/// was handed.
const EXIT_DRAIN: Duration = Duration::from_millis(500);

thread_local! {
    /// Set on the reaping thread ([`never_wait_here`]).
    static NEVER_WAITS: Cell<bool> = const { Cell::new(false) };
    /// The reaping thread's lines while another thread holds the sink.
    static HELD_BACK: RefCell<HeldBack> = const {
        RefCell::new(HeldBack { lines: Vec::new(), dropped: 0, start_writer: false, lock_busy: false, must: Vec::new() })
    };
}

/// Makes the calling thread (the reaping thread) one that never waits for
/// the sink's lock: what it logs while another thread holds it is held back
/// and handed over at its next chance.
pub fn never_wait_here() {
    NEVER_WAITS.set(true);
}

/// True when the calling thread holds lines back, so its loop should wake
/// within [`HELD_BACK_RETRY`] to hand them over.
pub fn held_back() -> bool {
    NEVER_WAITS.get() && HELD_BACK.with_borrow(HeldBack::wants_retry)
}

/// Locks the sink, setting it up on first use; `None` when the calling
/// thread never waits and another thread holds it. A thread that panicked
/// while holding it left the queue consistent (no step leaves it
/// half-updated), so a poisoned lock is taken over, never a reason to panic.
fn locked() -> Option<MutexGuard<'static, Option<Sink>>> {
    let never_waits = NEVER_WAITS.get();
    let mut guard = if never_waits {
        let tried = SINK.try_lock();
        let busy = matches!(tried, Err(TryLockError::WouldBlock));
        HELD_BACK.with_borrow_mut(|h| h.lock_busy = busy);
        match tried {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        }
    } else {
        SINK.lock().unwrap_or_else(PoisonError::into_inner)
    };
    let sink = guard.get_or_insert_with(Sink::stderr);
    if never_waits {
        HELD_BACK.with_borrow_mut(|h| h.hand_over(sink));
    }
    Some(guard)
}

/// Runs `f` on the sink; `None` (and `f` not run) when the calling thread
/// never waits and another thread holds it.
fn with_sink<R>(f: impl FnOnce(&mut Sink) -> R) -> Option<R> {
    let mut guard = locked()?;
    // `locked` just filled it.
    let sink = guard.as_mut().expect("sink set up by locked()");
    Some(f(sink))
}

/// Sets the sink up now (idempotent).
pub fn init() {
    drop(locked());
}

impl Sink {
    fn start_file_writer(&mut self) {
        if let Target::Shared(fd) = self.target
            && let Ok(relay) = Relay::start(fd)
        {
            let _ = EXIT_RELAY.set(relay.exit_handle());
            self.target = Target::Relayed(relay);
        }
    }
}

/// Puts a stderr that is a file behind the writer thread ([`Relay`]); a
/// no-op for any other stderr. Left as it was when the thread or its pipe
/// cannot be had (a pids or open-files limit): lines then go to the file
/// directly, as they did before.
pub fn start_file_writer() {
    if with_sink(Sink::start_file_writer).is_none() {
        HELD_BACK.with_borrow_mut(|h| h.start_writer = true);
    }
}

/// Queues one rendered line and writes what stderr takes now.
pub fn push(line: &[u8]) {
    push_line(line, false);
}

/// Queues a line that must not be lost, the exit report: on a queue
/// stalled full, the latest lines queued before it give way (counted, and
/// said in front of it; see [`LineQueue::push_must`]).
pub fn push_must(line: &[u8]) {
    push_line(line, true);
}

fn push_line(line: &[u8], must: bool) {
    let pushed = with_sink(|s| {
        // Make room first, then queue, then write: order is kept and the
        // common case (nothing waiting) is one write.
        s.broken = false;
        s.write_out();
        if must {
            s.queue.push_must(line, &super::dropped_notice);
        } else {
            s.queue.push(line, &super::dropped_notice);
        }
        s.write_out();
    });
    if pushed.is_none() {
        HELD_BACK.with_borrow_mut(|h| {
            if must {
                h.push_must(line);
            } else {
                h.push(line);
            }
        });
    }
}

/// The addresses of the queue's room past its first [`PIPE_BUF`] bytes:
/// lines up to that long are written and gone at once (one write to a
/// stderr that takes them), so the rest fills only while stderr stalls.
pub fn queue_spare() -> std::ops::Range<usize> {
    with_sink(|s| s.queue.spare(PIPE_BUF)).unwrap_or(0..0)
}

/// What waits for stderr now, `None` when nothing does. For the serving
/// thread (`ward status`), never the reaping thread.
pub fn backlog() -> Option<Backlog> {
    let found = with_sink(|s| {
        let relay = s.relay();
        let now = Instant::now();
        // The writer thread's failures leave nothing waiting: the pipe
        // takes every line. They are said from the failure on.
        let failing = relay.is_some_and(Relay::failed);
        let stalled = relay
            .and_then(|r| r.stalled_since(now))
            .or(failing.then_some(now));
        let since = match (s.waiting_since, stalled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(since) = since else {
            // Nothing of ward's waits; a reader may be gone all the same.
            let idle = match &s.target {
                Target::Reopened(_) | Target::Socket(_) | Target::PollFirst(_) if !s.broken => {
                    s.target.poll_fd()
                }
                _ => None,
            };
            return Err(idle);
        };
        Ok(Backlog {
            bytes: s.queue.pending().len() + relay.map_or(0, |r| r.held() as usize),
            dropped: s.queue.dropped() + relay.map_or(0, Relay::lost),
            since,
            failed: s.broken || failing,
            file: matches!(s.target, Target::Relayed(_) | Target::Shared(_)),
            full_now: false,
        })
    })?;
    match found {
        Ok(backlog) => Some(backlog),
        // Outside the lock: the sink's fds are never closed.
        Err(idle) => idle.filter(|&fd| full_lately(fd)).map(|_| Backlog {
            bytes: 0,
            dropped: 0,
            since: Instant::now(),
            failed: false,
            file: false,
            full_now: true,
        }),
    }
}

/// How long [`backlog`] waits for room in a stderr that none of ward's
/// lines wait for before it says the stderr is full: a busy reader makes
/// room within it, and `ward status` pays it only when there is none.
pub const FULL_AFTER: Duration = Duration::from_millis(250);

/// How long one finding of [`takes_no_writes`] stands: requests to the
/// serving thread come one at a time, and a stderr that stays full must
/// not cost each of them [`FULL_AFTER`] (a second `ward status`, or the
/// question of every `ward check`, would then find no answer in time).
const FULL_KEPT: Duration = Duration::from_secs(1);

/// The last finding of [`takes_no_writes`] and when it was made; only the
/// serving thread asks.
static FULL_SEEN: Mutex<Option<(Instant, bool)>> = Mutex::new(None);

/// [`takes_no_writes`] within [`FULL_AFTER`], or its finding of the last
/// [`FULL_KEPT`].
fn full_lately(fd: RawFd) -> bool {
    let mut seen = FULL_SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((at, full)) = *seen
        && at.elapsed() < FULL_KEPT
    {
        return full;
    }
    let full = takes_no_writes(fd, FULL_AFTER);
    *seen = Some((Instant::now(), full));
    full
}

/// True when `fd` shows no room for a write within `within` (and no error:
/// a reader that is gone is a failed write, said when ward next writes).
fn takes_no_writes(fd: RawFd, within: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = within.as_millis() as libc::c_int;
    // SAFETY: poll on one pollfd on the stack.
    let ready = unsafe { libc::poll(&mut p, 1, ms) };
    ready == 0
}

/// The fd to poll for POLLOUT while lines wait (`None` too while another
/// thread holds the sink: that thread writes them).
pub fn pending_fd() -> Option<RawFd> {
    with_sink(|s| s.pending_fd()).flatten()
}

/// Writes what stderr takes now.
pub fn flush_ready() {
    with_sink(|s| {
        if !s.broken {
            s.write_out();
        }
    });
}

/// Writes until nothing waits (the writer thread's lines included) or
/// `within` has passed, polling (outside the lock) for stderr to take more,
/// or asleep until the writer thread has written its lines (it wakes the
/// wait; a writer that ended ends it).
/// A thread that never waits for the lock tries it every few milliseconds,
/// and when `within` passes without it, writes its own lines past it.
pub fn flush(within: Duration) {
    let until = Instant::now() + within;
    loop {
        let state = with_sink(|s| {
            // One more try at exit even after a failure; a second failure
            // leaves nothing to poll for and ends the wait.
            s.broken = false;
            s.write_out();
            (s.pending_fd(), s.relay_holds())
        });
        let left = until.saturating_duration_since(Instant::now());
        let Some((fd, relaying)) = state else {
            if left.is_zero() {
                HELD_BACK.with_borrow_mut(HeldBack::write_past_the_lock);
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(5)));
            continue;
        };
        if left.is_zero() {
            return;
        }
        let Some(fd) = fd else {
            if !relaying {
                return;
            }
            // The writer thread has the lines: wait for it to write them,
            // woken as it does (outside the lock, which it never takes).
            // Not all written by the deadline, or never will be (the
            // thread ended): nothing more to wait for.
            match EXIT_RELAY.get() {
                Some(r) if !r.drain(left) => return,
                Some(_) => {}
                None => std::thread::sleep(left.min(Duration::from_millis(5))),
            }
            continue;
        };
        let ms = left.as_millis().clamp(1, 100) as libc::c_int;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: poll on one pollfd on the stack. EINTR or a timeout just
        // goes round again.
        unsafe { libc::poll(&mut p, 1, ms) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fresh fds, owned right below.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn blocking(fd: RawFd) -> bool {
        // SAFETY: F_GETFL on a live fd.
        unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK == 0 }
    }

    /// Writes until the target would block; returns the bytes taken. Bounded,
    /// so a target that blocked would hang here only, and one that never
    /// fills fails the assertion.
    fn fill(t: &Target) -> usize {
        let line = [b'x'; 100];
        let mut total = 0;
        for _ in 0..100_000 {
            match t.write(&line) {
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                Err(e) => panic!("write failed: {e}"),
            }
        }
        panic!("never filled");
    }

    #[test]
    fn a_pipe_is_reopened_non_blocking_and_fd_stays_blocking() {
        let (r, w) = pipe();
        let t = Target::open(w.as_raw_fd());
        assert!(matches!(t, Target::Reopened(_)), "{t:?}");
        let taken = fill(&t);
        assert!(taken >= 4096);
        assert!(
            blocking(w.as_raw_fd()),
            "the shared description was changed"
        );
        let mut buf = [0u8; 100];
        // SAFETY: read into a live buffer.
        let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), 100) };
        assert_eq!(n, 100);
        assert_eq!(buf, [b'x'; 100]);
        // The sink's own fd is not inherited across exec.
        let own = t.poll_fd().unwrap();
        // SAFETY: F_GETFD on a live fd.
        assert_ne!(
            unsafe { libc::fcntl(own, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
    }

    /// A sink writing to `w`, with the queue's usual room.
    fn sink_on(w: &OwnedFd) -> Sink {
        Sink {
            target: Target::open(w.as_raw_fd()),
            queue: LineQueue::with_capacity(QUEUE_BYTES),
            broken: false,
            waiting_since: None,
        }
    }

    fn new_held_back() -> HeldBack {
        HeldBack {
            lines: Vec::new(),
            dropped: 0,
            start_writer: false,
            lock_busy: false,
            must: Vec::new(),
        }
    }

    #[test]
    fn lines_held_back_go_out_first_in_order_with_the_count_of_those_past_the_bound() {
        let mut held = new_held_back();
        let line = [b"x".repeat(1023).as_slice(), b"\n"].concat();
        for _ in 0..HELD_BACK_BYTES / line.len() {
            held.push(&line);
        }
        assert_eq!(held.lines.len(), HELD_BACK_BYTES);
        held.push(b"past the bound\n");
        // Once one is dropped, later ones are too, though they would fit:
        // the count stays where the gap is.
        held.lines.truncate(HELD_BACK_BYTES - 2 * line.len());
        held.push(b"short\n");
        assert_eq!(held.dropped, 2);

        let (r, w) = pipe();
        let mut sink = sink_on(&w);
        held.hand_over(&mut sink);
        assert!(held.is_empty());
        sink.queue
            .push(b"the line that got the lock\n", &crate::log::dropped_notice);
        sink.write_out();
        drop(sink);
        drop(w);
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut got).unwrap();
        let got = String::from_utf8(got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), HELD_BACK_BYTES / line.len() - 2 + 2, "{got}");
        assert!(lines[..lines.len() - 2].iter().all(|l| l.len() == 1023));
        assert!(
            lines[lines.len() - 2].contains(
                "[log_dropped] 2 log lines dropped: the log was held by another of ward's threads"
            ),
            "{got}"
        );
        assert_eq!(lines[lines.len() - 1], "the line that got the lock");
    }

    /// The exit report held back while another thread had the lock goes
    /// out after the lines held before it and their drop count, and into a
    /// full queue by taking the room of the latest lines. It went before
    /// the count, and a full queue dropped it.
    #[test]
    fn a_report_held_back_comes_last_and_gets_room() {
        let mut held = new_held_back();
        let line = [b"x".repeat(1023).as_slice(), b"\n"].concat();
        for _ in 0..=HELD_BACK_BYTES / line.len() {
            held.push(&line);
        }
        assert_eq!(held.dropped, 1);
        held.push_must(b"REPORT\n");
        let (r, w) = pipe();
        let mut sink = sink_on(&w);
        // The queue full of another thread's lines, stderr not taking any.
        while sink.queue.dropped() == 0 {
            sink.queue.push(&line, &crate::log::dropped_notice);
        }
        held.hand_over(&mut sink);
        assert!(held.is_empty());
        // What waits for stderr, in order.
        let got = String::from_utf8(sink.queue.pending().to_vec()).unwrap();
        drop((r, w));
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.last(), Some(&"REPORT"), "{}", &got[got.len() - 300..]);
        assert!(
            lines[lines.len() - 2].contains("[log_dropped]"),
            "{}",
            lines[lines.len() - 2]
        );
    }

    /// While another thread holds the sink, the reaping thread cannot see
    /// whether lines wait for stderr: its loop comes round again soon
    /// rather than sleep until something else wakes it.
    #[test]
    fn a_busy_lock_makes_the_thread_that_never_waits_come_round_again() {
        let (held, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (held_tx, held_rx) = held;
        let (release_tx, release_rx) = release;
        let holder = std::thread::spawn(move || {
            let guard = SINK.lock();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
            drop(guard);
        });
        never_wait_here();
        held_rx.recv().unwrap();
        assert_eq!(pending_fd(), None);
        assert!(super::held_back(), "no retry while the lock was busy");
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        let _ = pending_fd();
        assert!(!super::held_back(), "a retry with nothing to do");
    }

    #[test]
    fn a_socket_is_written_with_send_dontwait() {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills two fresh fds, owned right below.
        assert_eq!(
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                )
            },
            0
        );
        let (_a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let t = Target::open(b.as_raw_fd());
        assert!(matches!(t, Target::Socket(_)), "{t:?}");
        assert!(fill(&t) > 0);
        assert!(blocking(b.as_raw_fd()));
    }

    #[test]
    fn a_regular_file_shares_fd_2s_offset() {
        let path = std::env::temp_dir().join(format!("ward-sink-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let fd = file.as_raw_fd();
        let t = Target::open(fd);
        assert!(matches!(t, Target::Shared(_)), "{t:?}");
        // SAFETY: writes of live buffers to a file we own.
        unsafe { libc::write(fd, b"child 1\n".as_ptr().cast(), 8) };
        t.write(b"ward\n").unwrap();
        unsafe { libc::write(fd, b"child 2\n".as_ptr().cast(), 8) };
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "child 1\nward\nchild 2\n"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_closed_fd_reports_ebadf_and_has_nothing_to_poll() {
        let t = Target::open(999_999);
        assert!(matches!(t, Target::Closed));
        assert_eq!(
            t.write(b"x\n").unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        assert_eq!(t.poll_fd(), None);
    }

    #[test]
    fn poll_first_never_blocks_on_a_full_pipe() {
        let (r, w) = pipe();
        let t = Target::PollFirst(w.as_raw_fd());
        assert!(fill(&t) >= 4096);
        assert!(blocking(w.as_raw_fd()));
        drop(r);
        // Reader gone: an error, not a hang and not WouldBlock forever.
        let e = t.write(b"x\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE));
    }

    #[test]
    fn a_fifo_without_reader_falls_back_to_poll_first() {
        let path = std::env::temp_dir().join(format!("ward-sink-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo/open on a NUL-terminated path; fds owned below.
        let (held, w) = unsafe {
            assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0);
            let held = libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            let w = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            (OwnedFd::from_raw_fd(held), OwnedFd::from_raw_fd(w))
        };
        drop(held);
        // A named FIFO opened for writing, non-blocking, with no reader:
        // ENXIO. (Anonymous pipes reopen fine and fail at write with EPIPE.)
        let t = Target::open(w.as_raw_fd());
        let _ = std::fs::remove_file(&path);
        assert!(matches!(t, Target::PollFirst(_)), "{t:?}");
        assert_eq!(
            t.write(b"x\n").unwrap_err().raw_os_error(),
            Some(libc::EPIPE)
        );
    }
}
