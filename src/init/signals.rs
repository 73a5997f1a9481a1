//! Signal plumbing: which signals ward blocks and receives through a signalfd,
//! how a received signal is rewritten, and how it is sent to the child.
//!
//! Owns the signal mask. It never reaps (that is `reap.rs`) and never decides
//! stop policy (that is the event loop).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::sigmask::{self, SIG_MAX, kernel_sigset};

/// Signals that ward leaves unblocked: the two that can't be caught, and the
/// job-control pair it ignores instead (ward must not stop when it touches the
/// terminal from the background; job control belongs to the child).
///
/// Fault signals (SIGSEGV, SIGBUS, ...) are blocked too, unlike tini: a real
/// fault in ward still kills it (the kernel unblocks a forced fault signal),
/// while one *sent* with kill(2), e.g. `docker kill -s SEGV`, is forwarded to
/// the child instead of taking PID 1 down.
const NOT_BLOCKED: &[i32] = &[libc::SIGKILL, libc::SIGSTOP, libc::SIGTTIN, libc::SIGTTOU];

/// Signals whose disposition changes in ward before the child starts: SIGPIPE
/// (ignored by ward as it starts, see `main.rs`), SIGTTIN/SIGTTOU (ignored by
/// ward, see [`NOT_BLOCKED`]), SIGCHLD (set to default by ward: an
/// inherited SIG_IGN would make the kernel reap ward's children itself) and,
/// built against musl, musl's own 33 and 34 (ignored by ward, see
/// [`LIBC_OWN`]). The child gets back what ward inherited for each, as tini
/// and `execvp` users expect: a parent that ignores SIGPIPE meant it for the
/// workload.
#[cfg(target_env = "musl")]
pub const RESTORED: [i32; 6] = [
    libc::SIGPIPE,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGCHLD,
    LIBC_OWN[0],
    LIBC_OWN[1],
];
#[cfg(not(target_env = "musl"))]
pub const RESTORED: [i32; 4] = [libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU, libc::SIGCHLD];

/// musl's own signals that its `pthread_create` unblocks: its first call
/// unblocks 33 and 34 in the calling thread (the reaping thread, as it
/// starts the watch thread, until `sigmask::spawn_blocked` blocks them
/// again right after, and [`SignalInbox::reblock`] once more), and every new
/// thread starts with 33 unblocked (the first with 34 too) until its first
/// line blocks everything. 34 is the SIGRTMIN that `kill -s RTMIN` and
/// Docker's `--stop-signal SIGRTMIN` send; with the default action, one
/// that reached such a thread killed a ward that is not PID 1 (measured:
/// with the watch thread's `clone` held up by strace, `kill -34` at ward
/// ended it, exit 162). So ward ignores both for its whole run
/// ([`SignalInbox::install`]). Blocked, an ignored signal is still queued
/// (the kernel discards only an ignored signal nobody blocks), so the
/// signalfd gets and forwards it as before. What is lost: a 34 that is
/// pending when ward starts, or comes while a thread has it unblocked, is
/// dropped instead of killing ward. Both stretches end before the main child
/// starts: the first thread's start blocks 34 again in the starting
/// thread, then waits for the new one's first act, which blocks everything
/// (`sigmask::spawn_blocked`; measured before that wait: 1 in 100 `kill
/// -34` sent as the child began was lost under load). Unless that start gives up
/// after `sigmask::BLOCKED_WAIT` (said at debug level), or no thread could
/// start before the child (then the log's writer thread, started after it,
/// may be the first). (An empty first thread made before the mask would
/// avoid even that, but takes a task the child needs under a pids limit
/// with none to spare.)
/// glibc's `pthread_create` unblocks only its own 32 and 33, which nobody
/// sends, and needs its handlers for them: with glibc ward leaves them be.
#[cfg(target_env = "musl")]
const LIBC_OWN: [i32; 2] = [33, 34];

/// Per signal in [`RESTORED`]: 0 not yet recorded, 1 inherited SIG_DFL, 2
/// inherited SIG_IGN. A handler cannot be inherited across exec, so these
/// are the only two.
static INHERITED: [AtomicU8; RESTORED.len()] = [const { AtomicU8::new(0) }; RESTORED.len()];

/// Records the inherited dispositions before anything changes them (ward's
/// `main` sets SIGPIPE to SIG_IGN first thing; so would std's runtime start
/// in another binary): the libc runs `.init_array` entries before `main`, in
/// static binaries too.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_AT_LOAD: extern "C" fn() = record_inherited;

extern "C" fn record_inherited() {
    for (slot, &sig) in INHERITED.iter().zip(RESTORED.iter()) {
        let ignored = rt_sigaction(sig, None).is_some_and(|old| old.handler == libc::SIG_IGN);
        slot.store(if ignored { 2 } else { 1 }, Ordering::Relaxed);
    }
}

/// `struct sigaction` as x86_64's `rt_sigaction` takes it (musl's
/// `sigaction` refuses 32 to 34, glibc's 32 and 33).
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The raw `rt_sigaction`: sets `new` (if any), returns the old action.
/// Async-signal safe (a system call), for the child between `vfork` and
/// exec.
fn rt_sigaction(sig: i32, new: Option<&KernelSigaction>) -> Option<KernelSigaction> {
    let mut old = KernelSigaction::default();
    let new = new.map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    // SAFETY: valid structs of the kernel's layout (or NULL: only read);
    // SIG_IGN or SIG_DFL runs no handler, so no restorer is needed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new,
            &mut old as *mut KernelSigaction,
            sigmask::KERNEL_SIGSET_BYTES,
        )
    };
    (rc == 0).then_some(old)
}

/// Sets `sig`'s disposition to SIG_DFL or SIG_IGN (no handler), by the raw
/// system call. Async-signal safe.
pub fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    let _ = rt_sigaction(
        sig,
        Some(&KernelSigaction {
            handler,
            ..KernelSigaction::default()
        }),
    );
}

/// The dispositions the child must get back, one per signal in [`RESTORED`]
/// (`SIG_DFL` or `SIG_IGN`). Falls back to SIG_DFL if the load-time record
/// did not run.
pub fn inherited_dispositions() -> [libc::sighandler_t; RESTORED.len()] {
    // Reading the function pointer keeps the `.init_array` entry linked in
    // whatever codegen unit the linker is given.
    std::hint::black_box(&RECORD_AT_LOAD);
    let mut out = [libc::SIG_DFL; RESTORED.len()];
    for (o, slot) in out.iter_mut().zip(INHERITED.iter()) {
        if slot.load(Ordering::Relaxed) == 2 {
            *o = libc::SIG_IGN;
        }
    }
    out
}

/// The signal state ward installs at start, and what the child must get back.
pub struct SignalInbox {
    /// The mask ward had before blocking; restored in the child before exec.
    pub original_mask: libc::sigset_t,
    /// Every blocked signal but SIGCHLD.
    fd: OwnedFd,
    /// SIGCHLD alone: during a burst of exits the loop leaves this fd out of
    /// its poll and reaps on a short timer instead, while other signals
    /// still wake it at once.
    chld_fd: OwnedFd,
    /// Every blocked signal, for [`SignalInbox::wait`].
    wait_all: libc::sigset_t,
    /// The same without SIGCHLD, for a wait inside a burst of exits.
    wait_no_chld: libc::sigset_t,
    batch: Vec<libc::signalfd_siginfo>,
    next: usize,
    filled: usize,
    short: bool,
}

/// One signal as read from the signalfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Signal number.
    pub signo: i32,
    /// Sender's pid as seen in ward's PID namespace; 0 when the sender is
    /// outside it (the container runtime, `docker stop`, the kernel).
    pub from_pid: i32,
    /// `si_code` (SI_USER, SI_KERNEL, ...).
    pub code: i32,
}

/// How many queued signals one read takes (an orphan storm queues SIGCHLDs).
const BATCH: usize = 32;

impl SignalInbox {
    /// Blocks every catchable signal but the faults (including the real-time
    /// ones glibc keeps for itself), ignores SIGTTIN/SIGTTOU, and opens a
    /// non-blocking signalfd for the blocked set.
    pub fn install() -> std::io::Result<SignalInbox> {
        let wanted: Vec<i32> = (1..=SIG_MAX).filter(|s| !NOT_BLOCKED.contains(s)).collect();
        let set = kernel_sigset(&wanted);
        // The raw syscall, because the libc's sigprocmask silently leaves
        // out its own real-time signals (musl's 32 to 34, glibc's 32 and
        // 33): unblocked, their default action would kill ward, and 34 is
        // kill(1)'s SIGRTMIN, which ward must forward. ward never cancels
        // threads, calls setuid or setrlimit with threads running (musl
        // runs those in every thread by signal 34) or creates timers, so it
        // does not need them.
        let old = sigmask::block(&set)?;
        // SAFETY: SIG_IGN for job-control signals, SIG_DFL for SIGCHLD
        // (blocked, so it queues for the signalfd instead of being discarded
        // as an inherited SIG_IGN would); no handler function runs. What ward
        // inherited was recorded at load time and goes back to the child.
        unsafe {
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
            libc::signal(libc::SIGTTOU, libc::SIG_IGN);
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        }
        // musl's own, ignored for the whole run before any thread starts
        // (see `LIBC_OWN`); queued all the same, since they are blocked.
        #[cfg(target_env = "musl")]
        for sig in LIBC_OWN {
            set_disposition(sig, libc::SIG_IGN);
        }
        let others: Vec<i32> = wanted
            .iter()
            .copied()
            .filter(|&s| s != libc::SIGCHLD)
            .collect();
        let fd = open_signalfd(&kernel_sigset(&others))?;
        let chld_fd = open_signalfd(&kernel_sigset(&[libc::SIGCHLD]))?;
        Ok(SignalInbox {
            original_mask: old,
            fd,
            chld_fd,
            wait_all: set,
            wait_no_chld: kernel_sigset(&others),
            // SAFETY: signalfd_siginfo is plain data.
            batch: vec![unsafe { std::mem::zeroed() }; BATCH],
            next: 0,
            filled: 0,
            short: false,
        })
    }

    /// Blocks ward's set again in the calling thread. glibc's
    /// `pthread_create` hands the creating thread back a mask with 32 and 33
    /// unblocked (measured: SigBlk in /proc after the watch thread started),
    /// so the reaping thread calls this right after starting it. (musl's
    /// does the same to 33 and 34 at its first call only: see `LIBC_OWN`.)
    pub fn reblock(&self) -> std::io::Result<()> {
        // The set `install` blocked (every signal but `NOT_BLOCKED`).
        sigmask::block(&self.wait_all).map(|_| ())
    }

    /// Sleeps until a blocked signal is pending (or `timeout` passes) and
    /// takes it: one `rt_sigtimedwait`, where a `poll` on the signalfd and a
    /// `read` would be two. `with_chld` false leaves SIGCHLD pending (a burst
    /// of exits is reaped on a timer instead). `None` on timeout or EINTR.
    ///
    /// Signals come one per call, lowest number first, so a caller that must
    /// reap before acting on a signal checks for exits itself.
    pub fn wait(
        &mut self,
        with_chld: bool,
        timeout: Option<std::time::Duration>,
    ) -> Option<Received> {
        let set = if with_chld {
            &self.wait_all
        } else {
            &self.wait_no_chld
        };
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as _,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: siginfo_t is plain data the kernel fills.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid set, info and (optional) timeout pointers; the raw
        // syscall because the set holds 32 and 33, which glibc's wrapper may
        // not pass on.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                set as *const libc::sigset_t,
                &mut info as *mut libc::siginfo_t,
                ts_ptr,
                sigmask::KERNEL_SIGSET_BYTES,
            )
        };
        if rc <= 0 {
            return None;
        }
        Some(Received {
            signo: rc as i32,
            // SAFETY: si_pid is where the kernel puts the sender of a
            // kill/tgkill/sigqueue and of SIGCHLD; 0 for a kernel signal.
            from_pid: unsafe { info.si_pid() },
            code: info.si_code,
        })
    }

    /// Returns the next pending signal, or `None` when the last read came up
    /// short. A short read means the queue was empty at that moment; a signal
    /// arriving after it makes the fd readable again, so the next poll wakes
    /// for it. That saves a read that would only say EAGAIN on every wake-up.
    pub fn read(&mut self) -> Option<Received> {
        if self.next >= self.filled {
            if self.short {
                self.short = false;
                return None;
            }
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: the kernel writes whole signalfd_siginfo records into
            // our buffer of BATCH records.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.batch.as_mut_ptr().cast(),
                    BATCH * size,
                )
            };
            self.next = 0;
            self.filled = if n > 0 { n as usize / size } else { 0 };
            if self.filled == 0 {
                return None;
            }
            self.short = self.filled < BATCH;
        }
        let info = &self.batch[self.next];
        self.next += 1;
        Some(Received {
            signo: info.ssi_signo as i32,
            from_pid: info.ssi_pid as i32,
            code: info.ssi_code,
        })
    }

    /// The fd to poll for every signal but SIGCHLD.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The fd to poll for SIGCHLD.
    pub fn chld_fd(&self) -> BorrowedFd<'_> {
        self.chld_fd.as_fd()
    }

    /// Takes the pending SIGCHLD, if any, so the SIGCHLD fd stops polling
    /// readable. SIGCHLD is a standard signal: the kernel keeps at most one
    /// pending, so one read of one record empties it. The caller reaps
    /// after this, never before: an exit after the reap would otherwise
    /// leave a zombie with its SIGCHLD already taken.
    pub fn take_sigchld(&mut self) {
        // SAFETY: signalfd_siginfo is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        // SAFETY: the kernel writes at most one record into `info`; a
        // non-blocking fd returns EAGAIN when nothing is pending, which
        // needs no handling.
        unsafe {
            libc::read(
                self.chld_fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        };
    }
}

/// A non-blocking, close-on-exec signalfd for `set`.
fn open_signalfd(set: &libc::sigset_t) -> std::io::Result<OwnedFd> {
    // SAFETY: signalfd with a valid set; returns a new fd or -1.
    let raw = unsafe { libc::signalfd(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: raw is a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// What to do with a received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Send this signal to the child.
    Forward(i32),
    /// `--rewrite SIG:0`: drop it.
    Drop,
}

/// Applies `--rewrite` to a received signal.
pub fn rewrite(map: &BTreeMap<i32, i32>, signo: i32) -> Disposition {
    match map.get(&signo).copied().unwrap_or(signo) {
        0 => Disposition::Drop,
        sig => Disposition::Forward(sig),
    }
}

/// The main child, addressed through a pidfd where the kernel has them (5.3+).
///
/// ward is the child's parent and only ward reaps it, so its PID cannot be
/// reused before ward calls wait; the pidfd makes that guarantee explicit and
/// covers the window after the reap.
pub struct ChildHandle {
    /// The child's pid.
    pub pid: i32,
    pidfd: Option<OwnedFd>,
    reaped: bool,
    /// Why `pidfd_send_signal` failed, once, for one warning; after that
    /// ward uses kill(2).
    pidfd_failure: Option<std::io::Error>,
    /// The last `-g` send went to the child alone too: it had moved to
    /// another group, or its group was empty.
    alone: bool,
    /// That was said once.
    alone_said: bool,
}

impl ChildHandle {
    /// Opens a pidfd for a freshly forked child (falls back to the bare pid).
    pub fn new(pid: i32) -> ChildHandle {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (fd >= 0).then(|| {
            // pidfd_open(2) always sets close-on-exec.
            let raw = fd as RawFd;
            // SAFETY: raw is a valid, owned, open fd.
            unsafe { OwnedFd::from_raw_fd(raw) }
        });
        ChildHandle {
            pid,
            pidfd,
            reaped: false,
            pidfd_failure: None,
            alone: false,
            alone_said: false,
        }
    }

    /// A second descriptor of the child's pidfd (for the watch thread,
    /// which polls it to see the exit); `None` without a pidfd.
    pub fn exit_fd(&self) -> Option<OwnedFd> {
        self.pidfd.as_ref()?.try_clone().ok()
    }

    /// Marks the child as reaped: no signal is sent to its pid after this.
    pub fn set_reaped(&mut self) {
        self.reaped = true;
        self.pidfd = None;
    }

    /// True until the child has been reaped.
    pub fn alive(&self) -> bool {
        !self.reaped
    }

    /// Sends `sig` to the child, or to its process group when `group`.
    ///
    /// A child that has moved to another group (`setpgid`), seen just before
    /// the send, gets the signal alone too, as without `group`, after what
    /// is left of its old group ([`ChildHandle::sent_alone`], and
    /// [`ChildHandle::take_left_group`] once for a warning); so does one
    /// whose group turns out empty (a zombie would still count). One that
    /// leaves on the group's signal gets it once. A child that leaves of its
    /// own accord between the look and the send, while others stay in its
    /// group, misses it, but for a SIGKILL, which the child gets alone too
    /// (a second one changes nothing).
    ///
    /// Through the pidfd where there is one. A `pidfd_send_signal` that fails
    /// for any reason but ESRCH (ENOSYS on an old kernel, or a seccomp filter
    /// that knows `pidfd_open` but not the send) falls back to kill(2), which
    /// is safe while the child is unreaped; the failure is kept for one
    /// warning ([`ChildHandle::take_pidfd_failure`]) and the pidfd dropped.
    pub fn send(&mut self, sig: i32, group: bool) -> std::io::Result<()> {
        if self.reaped {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        self.alone = false;
        if group {
            // Where the child is, looked at before the send: a child that
            // leaves its group on this very signal got it from the group's,
            // and a look after would send it a second one.
            // SAFETY: getpgid on the unreaped child.
            let in_group = unsafe { libc::getpgid(self.pid) } == self.pid;
            // SAFETY: plain kill(2) on the unreaped child's group.
            if unsafe { libc::kill(-self.pid, sig) } == 0 {
                if in_group {
                    if sig == libc::SIGKILL {
                        // Plain kill(2), its result not looked at: this
                        // one must not decide about the pidfd.
                        // SAFETY: kill(2) on the unreaped child.
                        unsafe { libc::kill(self.pid, sig) };
                    }
                    return Ok(());
                }
                // It left the group, which still holds others (a zombie
                // counts): they got it, and so must it.
            } else {
                let err = std::io::Error::last_os_error();
                // Not in it: what became of its old group does not keep
                // the signal from the child.
                if in_group && err.raw_os_error() != Some(libc::ESRCH) {
                    return Err(err);
                }
            }
            self.alone = true;
        }
        self.send_alone(sig)
    }

    /// Sends `sig` to the child alone: through the pidfd, or kill(2).
    fn send_alone(&mut self, sig: i32) -> std::io::Result<()> {
        if let Some(fd) = &self.pidfd {
            // SAFETY: pidfd_send_signal(fd, sig, NULL, 0).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                return Err(err);
            }
            self.pidfd = None;
            self.pidfd_failure = Some(err);
        }
        // SAFETY: plain kill(2) on the unreaped child: its pid cannot have
        // been reused before ward reaps it.
        if unsafe { libc::kill(self.pid, sig) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// The last `-g` send went to the child alone too because it had left
    /// its group, or the group was empty (not the extra SIGKILL to a child
    /// seen in its group).
    pub fn sent_alone(&self) -> bool {
        self.alone
    }

    /// [`ChildHandle::sent_alone`], true only the first time.
    pub fn take_left_group(&mut self) -> bool {
        let first = self.alone && !self.alone_said;
        self.alone_said |= self.alone;
        first
    }

    /// Why the pidfd could not be used, the first time only.
    pub fn take_pidfd_failure(&mut self) -> Option<std::io::Error> {
        self.pidfd_failure.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_forwards_drops_and_passes() {
        let mut map = BTreeMap::new();
        map.insert(libc::SIGTERM, libc::SIGQUIT);
        map.insert(libc::SIGUSR1, 0);
        assert_eq!(
            rewrite(&map, libc::SIGTERM),
            Disposition::Forward(libc::SIGQUIT)
        );
        assert_eq!(rewrite(&map, libc::SIGUSR1), Disposition::Drop);
        assert_eq!(
            rewrite(&map, libc::SIGHUP),
            Disposition::Forward(libc::SIGHUP)
        );
    }
}
