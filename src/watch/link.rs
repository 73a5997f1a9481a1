//! The two ends of the channel between the reaping thread and the watch
//! thread: what each may ask of or tell the other, and how each wakes the
//! other: a pipe for the watch thread's `poll`, and a signal
//! ([`crate::sigmask::WAKE_SIGNAL`], sent with `tgkill`) for the reaping
//! thread, which waits for signals alone.
//!
//! Owns the message types and the wake-ups only. Sending never blocks: the
//! queues are unbounded `mpsc` channels (their length is bounded by what the
//! reaper asks, a handful of requests per run, and by the watch's interval),
//! the pipe write is non-blocking, and a signal is never waited for.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Instant;

use super::Snapshot;
use crate::sigmask::WAKE_SIGNAL;

/// What the reaping thread asks of the watch thread. Every request is work
/// that reads `/proc` or cgroup files, or waits on them.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The main child runs as `pid`: say what ward watches, start the
    /// orphan policy and the samples. The first request the thread acts on.
    MainStarted {
        /// The main child's pid.
        pid: i32,
        /// A pidfd of the main child (the reaper's, duplicated): readable
        /// the moment the child exits, so the final look starts then, not
        /// one hop later when [`Request::MainExited`] arrives.
        exit_fd: Option<ExitFd>,
    },
    /// Name the sender of a stop signal (a pid inside the container).
    NameSender {
        /// The sender's pid.
        pid: i32,
    },
    /// The main child is gone: stop the orphan policy, take one last sample
    /// and OOM count for the report, and send [`Observation::Final`].
    MainExited,
    /// Send `signal` to every other process ward is responsible for (PID 1:
    /// the namespace; subreaper: its descendants) and say how many.
    SignalRest {
        /// The signal.
        signal: i32,
        /// A stop signal cut `--grace` short (a SIGKILL before its end).
        cut_short: bool,
    },
    /// The reaper named the victim of the OOM kill that took the counter
    /// to `count` (it reaped it with SIGKILL): post it on the board.
    OomNamed {
        /// The counter value of that kill.
        count: u64,
        /// Who it was.
        victim: OomVictim,
    },
    /// A process died of SIGKILL, or the last one is gone after the main
    /// child: read the OOM kill counter now ([`Observation::OomChecked`]
    /// answers).
    CheckOom {
        /// The last one, before the report: the samples that went on after
        /// the main child's end stop here, and the answer carries the
        /// report's numbers. Not a SIGKILL's during `--grace`, after which
        /// the samples go on.
        last: bool,
    },
    /// Stop the thread.
    Quit,
}

pub use super::victims::OomVictim;

/// A pidfd handed to the watch thread. Shared (the request is `Clone`) and
/// equal when it is the same descriptor.
#[derive(Debug, Clone)]
pub struct ExitFd(Arc<OwnedFd>);

impl ExitFd {
    /// Wraps a pidfd the watch thread may poll.
    pub fn new(fd: OwnedFd) -> ExitFd {
        ExitFd(Arc::new(fd))
    }

    /// The descriptor, for `poll`.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PartialEq for ExitFd {
    fn eq(&self, other: &ExitFd) -> bool {
        self.raw() == other.raw()
    }
}

/// What the watch knew when it noticed an OOM kill, for the `oom_kill` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OomContext {
    /// The memory limit in force, in bytes.
    pub limit_bytes: Option<u64>,
    /// Where that limit comes from.
    pub limit_source: Option<crate::cgroup::LimitSource>,
    /// The cgroup's peak usage (or the largest working set ward saw).
    pub peak_bytes: Option<u64>,
    /// The largest processes right after the kill, largest first.
    pub largest: Vec<crate::procs::ProcRss>,
    /// Usage right after the kill (page cache included).
    pub usage_bytes: Option<u64>,
    /// Anonymous memory then.
    pub anon_bytes: Option<u64>,
    /// Page cache then (shmem/tmpfs included).
    pub file_bytes: Option<u64>,
    /// Shared memory and tmpfs then.
    pub shmem_bytes: Option<u64>,
    /// ward did not look at the processes (the group stayed full of memory
    /// the kernel cannot reclaim): nothing was learnt about the victim.
    pub not_looked: bool,
}

impl OomContext {
    /// Where the memory was right after the kill (the line's words and its
    /// `kernel_bytes`), when anon and file cache were read.
    pub fn breakdown(&self) -> Option<crate::cgroup::MemoryBreakdown> {
        Some(crate::cgroup::MemoryBreakdown::new(
            self.anon_bytes?,
            self.file_bytes?,
            self.shmem_bytes,
            self.usage_bytes,
        ))
    }
}

/// Peaks and first readings the watch keeps for the exit report.
#[derive(Debug, Default, PartialEq)]
pub struct ObservedPeaks {
    /// Largest working set seen (or usage, where working set is unknown).
    pub memory_peak_seen: Option<u64>,
    /// The kernel's memory peak before the child started: a reused cgroup
    /// keeps the peak of an earlier run, which is not this run's.
    pub memory_peak_base: Option<u64>,
    /// Largest `pids.current` seen.
    pub pids_peak: Option<u64>,
    /// `pids.events max` at the first sample (refusals before ward).
    pub fork_failures_base: Option<u64>,
    /// Most unreaped zombies seen at once.
    pub unreaped_peak: u32,
    /// The main process's name (comm) at the last census that saw it alive:
    /// not the command ward started when a script `exec`s its app.
    pub main_name: Option<String>,
    /// The parent that failed to reap the most, at that peak: (pid, name, count).
    pub worst_parent: Option<(i32, Option<crate::procs::ProcName>, u32)>,
    /// First throttling counters: (periods, throttled, throttled_usec).
    pub throttle_first: Option<(u64, u64, u64)>,
    /// The last look read the OOM kill counter: after the main child's
    /// death, a rise it caused would have been seen. False when that read
    /// failed, so no verdict rules an OOM kill out on an older count.
    pub oom_counted_last: bool,
    /// cgroup v2, the memory limit on an ancestor: that ancestor and the OOM
    /// kills its `memory.events` counted during the run beyond ward's own
    /// group's (kills beside ward's group, under the same limit: a main
    /// process that moved itself into a group beside ward's dies there).
    pub oom_kills_beside: Option<(String, u64)>,
}

impl Clone for ObservedPeaks {
    fn clone(&self) -> ObservedPeaks {
        let mut p = ObservedPeaks::default();
        p.clone_from(self);
        p
    }

    /// Into the names' room: the board's copy is refreshed every sample.
    /// Every field is named, so a new one cannot be missed.
    fn clone_from(&mut self, source: &ObservedPeaks) {
        let ObservedPeaks {
            memory_peak_seen,
            memory_peak_base,
            pids_peak,
            fork_failures_base,
            unreaped_peak,
            main_name,
            worst_parent,
            throttle_first,
            oom_counted_last,
            oom_kills_beside,
        } = source;
        self.memory_peak_seen = *memory_peak_seen;
        self.memory_peak_base = *memory_peak_base;
        self.pids_peak = *pids_peak;
        self.fork_failures_base = *fork_failures_base;
        self.unreaped_peak = *unreaped_peak;
        self.main_name.clone_from(main_name);
        self.worst_parent = *worst_parent;
        self.throttle_first = *throttle_first;
        self.oom_counted_last = *oom_counted_last;
        if self.oom_kills_beside != *oom_kills_beside {
            self.oom_kills_beside.clone_from(oom_kills_beside);
        }
    }
}

/// What the watch thread tells the reaping thread.
#[derive(Debug, Clone)]
pub enum Observation {
    /// The cgroup's OOM kill counter rose to `count`.
    OomKill {
        /// The counter after the rise.
        count: u64,
        /// When the watch noticed.
        at: Instant,
        /// The census's findings: who is gone, who survived.
        findings: super::victims::RiseFindings,
        /// Numbers for the log line.
        context: OomContext,
    },
    /// A warning was logged (for the report's list).
    Warning {
        /// Its event key.
        key: &'static str,
    },
    /// The main process's name changed (it `exec`ed another program).
    MainName {
        /// Its name now.
        name: String,
    },
    /// The name of a stop signal's sender.
    SenderName {
        /// Its pid.
        pid: i32,
        /// Its name (`None`: gone before it could be read).
        name: Option<String>,
    },
    /// [`Request::SignalRest`] was carried out: this many were signalled.
    RestSignalled {
        /// The signal.
        signal: i32,
        /// How many processes got it.
        count: usize,
    },
    /// [`Request::CheckOom`] was carried out (a rise, if any, came first).
    OomChecked {
        /// The answer to the last check ([`Request::CheckOom`]'s `last`).
        last: bool,
        /// The numbers just read, at the last check: the report
        /// takes them instead (an OOM kill since then raised the peak).
        snapshot: Option<Box<Snapshot>>,
        /// The peaks with it: the samples go on through `--grace`, and a
        /// process left then may peak above what the main process saw.
        peaks: Option<Box<ObservedPeaks>>,
    },
    /// The watch thread is up: sent once as it starts, with no wake-up,
    /// and dropped by the reaper. A channel allocates its first block of
    /// slots (31 observations, 8 KiB) at its first message: without this
    /// one that was often the [`Observation::Final`] a short job's report
    /// waits for, and the allocation (a fresh mapping of musl's, and its
    /// page faults) came between the child's exit and the report.
    Started,
    /// The answer to [`Request::MainExited`].
    Final {
        /// The last snapshot (`None` with `--no-watch`).
        snapshot: Option<Box<Snapshot>>,
        /// Peaks over the run.
        peaks: ObservedPeaks,
        /// The samples go on (processes may be left): the last
        /// [`Request::CheckOom`] ends them, before the report.
        sampling_on: bool,
    },
}

/// A non-blocking pipe used only to wake a `poll`. A pipe, not an eventfd:
/// a pipe's writer wakes the reader as a synchronous wake-up (`WF_SYNC`,
/// "the waker is about to sleep"), so the scheduler may queue the watch
/// thread on the reaper's CPU, which the reaper is about to leave, instead
/// of behind the child on the other one (an eventfd's wake-up is not
/// synchronous).
#[derive(Debug)]
pub struct Wake {
    read: OwnedFd,
    write: OwnedFd,
}

impl Wake {
    /// A new pipe (close-on-exec, non-blocking at both ends).
    pub fn new() -> std::io::Result<Wake> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two fds or returns -1.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both are new fds we own.
        Ok(Wake {
            read: unsafe { OwnedFd::from_raw_fd(fds[0]) },
            write: unsafe { OwnedFd::from_raw_fd(fds[1]) },
        })
    }

    /// Makes the read end readable. Never blocks: a full pipe (64 KiB of
    /// pending wake-ups) answers EAGAIN, and it is readable then anyway.
    pub fn wake(&self) {
        // SAFETY: writes 1 byte from a valid buffer.
        unsafe { libc::write(self.write.as_raw_fd(), b"w".as_ptr().cast(), 1) };
    }

    /// Clears readiness: takes up to 64 pending wake-ups at once (more
    /// leave the pipe readable, and the next `poll` comes back at once).
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer; EAGAIN when not readable.
        unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    }

    /// The raw fd, for `poll`.
    pub fn raw(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Wakes one thread of this process with [`WAKE_SIGNAL`]: the reaping
/// thread waits in `sigtimedwait` (one syscall that sleeps and hands over a
/// signal), so a signal is the one wake-up it sees without a `poll`.
///
/// Sent with `tgkill`, the signal is pending for that thread alone: it never
/// merges with a `WAKE_SIGNAL` someone sends the container (that one is
/// pending for the process and is forwarded like any other), and the reaper
/// tells the two apart by sender and code (see [`ThreadWake::is_wake`]).
#[derive(Debug, Clone, Copy)]
pub struct ThreadWake {
    tgid: i32,
    tid: i32,
}

impl ThreadWake {
    /// Wakes the calling thread, when another thread calls [`ThreadWake::wake`].
    pub fn this_thread() -> ThreadWake {
        // SAFETY: getpid and gettid cannot fail. gettid by its syscall:
        // glibc's wrapper is not in every static link (measured: a call
        // through a null address).
        unsafe {
            ThreadWake {
                tgid: libc::getpid(),
                tid: libc::syscall(libc::SYS_gettid) as i32,
            }
        }
    }

    /// Makes [`WAKE_SIGNAL`] pending for the thread. Never blocks; a wake-up
    /// already pending absorbs this one (a standard signal is kept once),
    /// which is all a wake-up needs.
    pub fn wake(&self) {
        // SAFETY: tgkill on our own process's thread; a thread that is gone
        // answers ESRCH, which needs no handling.
        unsafe { libc::syscall(libc::SYS_tgkill, self.tgid, self.tid, WAKE_SIGNAL) };
    }

    /// True when a signal received by the woken thread is this wake-up: the
    /// wake signal, sent by `tgkill` from inside this process. Nobody else
    /// can send with this process's pid as the sender.
    pub fn is_wake(signo: i32, from_pid: i32, code: i32, self_pid: i32) -> bool {
        signo == WAKE_SIGNAL && from_pid == self_pid && code == libc::SI_TKILL
    }
}

/// The reaping thread's end: send requests, receive observations.
#[derive(Debug)]
pub struct ReaperEnd {
    requests: Sender<Request>,
    wake_watch: std::sync::Arc<Wake>,
    observations: Receiver<Observation>,
    closed: bool,
}

/// The watch thread's end: receive requests, send observations.
#[derive(Debug)]
pub struct WatchEnd {
    requests: Receiver<Request>,
    /// Readable when requests are waiting; the watch thread polls it.
    pub wake: std::sync::Arc<Wake>,
    observations: Sender<Observation>,
    wake_reaper: ThreadWake,
}

/// A connected pair of ends. Called on the reaping thread: observations
/// wake the thread that made the pair.
pub fn pair() -> std::io::Result<(ReaperEnd, WatchEnd)> {
    let (req_tx, req_rx) = channel();
    let (obs_tx, obs_rx) = channel();
    let to_watch = std::sync::Arc::new(Wake::new()?);
    let to_reaper = ThreadWake::this_thread();
    Ok((
        ReaperEnd {
            requests: req_tx,
            wake_watch: to_watch.clone(),
            observations: obs_rx,
            closed: false,
        },
        WatchEnd {
            requests: req_rx,
            wake: to_watch,
            observations: obs_tx,
            wake_reaper: to_reaper,
        },
    ))
}

impl ReaperEnd {
    /// Sends a request; false when the watch thread is gone.
    pub fn send(&mut self, r: Request) -> bool {
        if self.closed {
            return false;
        }
        if self.requests.send(r).is_err() {
            self.closed = true;
            return false;
        }
        self.wake_watch.wake();
        true
    }

    /// The next observation, if one is waiting. The wake-up signal was taken
    /// before this is called, so an observation sent after the last
    /// `try_recv` leaves a new one pending (but `Started`, sent without).
    pub fn try_recv(&mut self) -> Option<Observation> {
        match self.observations.try_recv() {
            Ok(o) => Some(o),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.closed = true;
                None
            }
        }
    }

    /// True once the watch thread has gone away.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl WatchEnd {
    /// Tells the reaper something; a reaper that is gone is not an error.
    pub fn tell(&self, o: Observation) {
        if self.observations.send(o).is_ok() {
            self.wake_reaper.wake();
        }
    }

    /// Sends [`Observation::Started`] without waking the reaper (it takes it
    /// with the next observation that does).
    pub fn say_started(&self) {
        let _ = self.observations.send(Observation::Started);
    }

    /// The next request, if any; `Some(Request::Quit)` once the reaper is gone.
    pub fn try_recv(&self) -> Option<Request> {
        match self.requests.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Request::Quit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    /// Takes a pending signal of `set` without waiting.
    fn take_signal(set: &libc::sigset_t) -> Option<(i32, i32, i32)> {
        // SAFETY: siginfo_t is plain data; a zero timeout never waits.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // The raw syscall, as ward's wait: glibc's wrapper reports SI_TKILL
        // as SI_USER.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                set as *const libc::sigset_t,
                &mut info as *mut libc::siginfo_t,
                &zero as *const libc::timespec,
                crate::sigmask::KERNEL_SIGSET_BYTES,
            )
        } as i32;
        // SAFETY: si_pid is valid for a signal sent by kill or tgkill.
        (rc > 0).then(|| (rc, unsafe { info.si_pid() }, info.si_code))
    }

    #[test]
    fn an_outside_sender_is_no_wake_up() {
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        assert!(!ThreadWake::is_wake(WAKE_SIGNAL, 0, libc::SI_USER, me));
        assert!(!ThreadWake::is_wake(
            WAKE_SIGNAL,
            me + 1,
            libc::SI_TKILL,
            me
        ));
        assert!(!ThreadWake::is_wake(WAKE_SIGNAL, me, libc::SI_USER, me));
        assert!(!ThreadWake::is_wake(libc::SIGUSR1, me, libc::SI_TKILL, me));
        assert!(ThreadWake::is_wake(WAKE_SIGNAL, me, libc::SI_TKILL, me));
    }

    /// `Started` goes into the channel without a wake-up (nothing pending
    /// for the reaper's wait) and comes out first, before what follows.
    #[test]
    fn started_is_sent_without_a_wake_up() {
        let (mut reaper, watch) = pair().unwrap();
        let wake = crate::sigmask::kernel_sigset(&[WAKE_SIGNAL]);
        crate::sigmask::block(&wake).unwrap();
        while take_signal(&wake).is_some() {}
        watch.say_started();
        assert!(take_signal(&wake).is_none(), "no wake-up for Started");
        watch.tell(Observation::Warning { key: "memory_high" });
        assert!(take_signal(&wake).is_some());
        assert!(matches!(reaper.try_recv(), Some(Observation::Started)));
        assert!(matches!(
            reaper.try_recv(),
            Some(Observation::Warning { key: "memory_high" })
        ));
        assert!(reaper.try_recv().is_none());
    }

    #[test]
    fn messages_wake_the_other_side() {
        let (mut reaper, watch) = pair().unwrap();
        assert!(!readable(watch.wake.raw()));
        assert!(reaper.send(Request::MainExited));
        assert!(readable(watch.wake.raw()));
        watch.wake.clear();
        assert!(!readable(watch.wake.raw()));
        assert_eq!(watch.try_recv(), Some(Request::MainExited));
        assert_eq!(watch.try_recv(), None);

        // The reaper's side: the pair was made on this thread, so the wake
        // signal is pending here (blocked first, as ward blocks it).
        let wake = crate::sigmask::kernel_sigset(&[WAKE_SIGNAL]);
        crate::sigmask::block(&wake).unwrap();
        watch.tell(Observation::Warning { key: "memory_high" });
        let (signo, from_pid, code) = take_signal(&wake).expect("a wake-up is pending");
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        assert!(ThreadWake::is_wake(signo, from_pid, code, me));
        assert!(take_signal(&wake).is_none(), "one wake-up, taken once");
        assert!(matches!(
            reaper.try_recv(),
            Some(Observation::Warning { key: "memory_high" })
        ));
        assert!(reaper.try_recv().is_none());
    }

    #[test]
    fn wake_ups_never_block_however_many_pile_up() {
        // A pipe holds 64 KiB: past that a blocking write would wait for
        // the watch thread, and the reaper must never wait for it.
        let wake = Arc::new(Wake::new().unwrap());
        let (done_tx, done_rx) = channel();
        let waker = wake.clone();
        std::thread::spawn(move || {
            for _ in 0..200_000 {
                waker.wake();
            }
            let _ = done_tx.send(());
        });
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .is_ok(),
            "a wake-up blocked on a full pipe"
        );
        assert!(readable(wake.raw()));
        // Each clear takes a batch; the pipe empties in bounded steps.
        let mut clears = 0;
        while readable(wake.raw()) {
            wake.clear();
            clears += 1;
            assert!(clears <= 200_000, "clear() never emptied the pipe");
        }
        wake.wake();
        assert!(readable(wake.raw()), "a wake-up after the pile-up");
    }

    #[test]
    fn a_vanished_side_is_no_error() {
        let (mut reaper, watch) = pair().unwrap();
        drop(watch);
        assert!(!reaper.send(Request::Quit));
        assert!(reaper.is_closed());
        let (reaper, watch) = pair().unwrap();
        drop(reaper);
        assert_eq!(watch.try_recv(), Some(Request::Quit));
        watch.tell(Observation::Warning { key: "x" });
    }
}
