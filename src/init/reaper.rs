//! The reaping thread's loop: the one place that waits. It owns the
//! signal wait, `waitpid`, forwarding, the timers and the run's facts; it hands
//! everything that reads `/proc` or cgroup files to the watch thread and
//! hears back through [`crate::watch::link`].
//!
//! The loop dispatches each event to a pure decision ([`super::stop`],
//! [`super::shutdown`]) and then carries the decision out; the words of each
//! event are in [`super::events`]. Nothing here may block but the wait
//! itself: a `sigtimedwait` (every wake-up, the watch thread's included, is
//! a signal) with a timeout from the timers, or, while log lines wait for
//! stderr, a `poll` on the signalfds and stderr. Every fd is non-blocking.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::events::{self, Forward};
use super::reap::{self, ReapingStats, Remaining};
use super::shutdown::{Phase, Shutdown, Step};
use super::signals::{self, ChildHandle, Received, SignalInbox};
use super::stop::{STILL_RUNNING_AT, StopState};
use super::timers::{Timer, Timers};
use crate::cli::Config;
use crate::exit::ChildEnd;
use crate::report::facts::{Forwarded, RunFacts, StopRequest, WardKill};
use crate::watch::board::{Board, MainEnd, Next};
use crate::watch::link::{ReaperEnd, ThreadWake};
use crate::watch::{Observation, OomContext, Request, Snapshot};

/// After the final SIGKILL, how long to wait for processes to vanish before
/// ward exits anyway (a process in uninterruptible sleep can't be hurried).
const GIVE_UP_AFTER: Duration = Duration::from_secs(2);
/// How long an OOM kill noticed by the watch waits for its victim's SIGCHLD
/// before it is logged, so the line can name the victim.
const OOM_LOG_DELAY: Duration = Duration::from_millis(150);
/// How long the report waits for the watch thread's last sample. A census
/// of thousands of processes takes about 100 ms; past this the report is
/// written with what ward has.
const FINAL_WAIT: Duration = Duration::from_secs(1);
/// A stop signal this soon after the main child's exit came with it (an
/// orchestrator that signals every process at once, a main process that
/// signals PID 1 as it exits): it does not cut `--grace` short.
const STOP_WITH_EXIT: Duration = Duration::from_millis(100);
/// How long ward waits, at most, for the watch thread to finish a shutdown
/// errand (walking /proc and signalling) before exiting without its line.
const ERRAND_WAIT: Duration = Duration::from_secs(2);
/// During a burst of exits (an orphan storm), how long ward lets zombies
/// gather before one reaping pass takes them all. The peers wake once per
/// SIGCHLD and pay a poll or read plus an empty `waitpid` each time; a
/// window pays those once for every zombie in it. A zombie waits at most
/// about this long (plus scheduling) before ward reaps it.
const REAP_WINDOW: Duration = Duration::from_millis(1);
/// A window longer than this is counted as late in the summary.
const LATE_WINDOW: Duration = Duration::from_millis(5);
/// How many descriptors below the open-files limit the main child's `comm`,
/// opened as it starts (`Reaper::open_main_comm_early`), must leave free, or
/// it is closed again and opened at the first need: ward keeps about 25
/// files open, and the watch opens its own as the child starts too.
const COMM_EARLY_ROOM: u64 = 32;

/// When ward drops its start-up code's pages from its RSS ([`super::trim`]):
/// late enough that a container that lives for a moment (`ward -- true`)
/// never pays for it, early enough that every RSS reading of a running
/// container sees the trimmed figure.
const TRIM_AFTER: Duration = Duration::from_secs(1);
/// Two SIGCHLD wake-ups this close together make a burst. An exit now and
/// then is reaped the moment its SIGCHLD arrives, as before.
const BURST_GAP: Duration = Duration::from_millis(1);

/// The reaping thread's state.
pub struct Reaper<'a> {
    cfg: &'a Config,
    inbox: SignalInbox,
    child: ChildHandle,
    is_pid1: bool,
    self_pid: i32,
    timers: Timers,
    stop: StopState,
    shutdown: Shutdown,
    watch: Option<ReaperEnd>,
    /// The watch thread's last word arrived (or will not).
    final_seen: bool,
    /// The watch's samples went on past the main child's end (processes
    /// may be left): the last OOM check ends them before the report.
    watch_sampling: bool,
    /// That check was sent.
    last_check_sent: bool,
    /// A `SignalRest` errand is out, for this signal: its line must be
    /// written before ward exits, so the reaper waits (bounded) for the
    /// watch thread to say it is done, and signals the rest itself if not.
    rest_pending: Option<i32>,
    /// A stop signal cut `--grace` short: the SIGKILL line says so.
    grace_cut: bool,
    /// When `--grace` began.
    drain_began: Option<Instant>,
    /// The OOM kill counter is being read once more before the report: the
    /// processes left after the main child may have been OOM-killed since
    /// the final look (its own parent reaped the victim, or ward did, with
    /// the notice still on its way).
    check_pending: bool,
    /// OOM kills noticed but not logged yet: (counter value, context).
    oom_unlogged: Vec<(u64, OomContext)>,
    batch: Vec<Received>,
    /// The watch thread's observations as one wake-up finds them (kept,
    /// empty, between wake-ups).
    observed: Vec<Observation>,
    /// In a burst of exits: when the next reaping pass is due. Meanwhile
    /// the SIGCHLD fd is left out of the poll.
    reap_window: Option<Instant>,
    /// When the last reaping pass ended (a zombie reaped in the next pass
    /// exited after it).
    last_pass: Instant,
    /// The kernel refused the burst's short slice once: said, not again.
    slice_refused: bool,
    /// How the reaping passes went, for the debug summary at exit.
    pub reaping: ReapingStats,
    /// What the run learned; the exit report reads it.
    pub facts: RunFacts,
    /// The watch thread's last snapshot, for the report.
    pub snapshot: Option<Box<Snapshot>>,
    /// Counters for the metrics endpoint and `ward status` (atomics only).
    board: Arc<Board>,
    /// The main child's `comm`: opened as the child starts when the
    /// open-files limit leaves room ([`COMM_EARLY_ROOM`]), else at the
    /// first need (its exit or a stop), so that under a tight limit the
    /// watch's files come first. `Err(())`: that open failed (another
    /// namespace's `/proc`, no fd left), said once, not retried.
    main_comm: Option<Result<crate::procs::Comm, ()>>,
    /// What the main child was called as it died, read before the pass
    /// that reaped it.
    main_name_at_exit: Option<String>,
    /// Its name read at the first stop request, for when none was read at
    /// its exit (it exited during a pass, after the pass's look).
    main_name_at_stop: Option<String>,
    /// What [`Reaper::post_next`] last stored: (`Next` as u32, ms).
    next_posted: (u32, u64),
    /// A `signal_ignored` line was written (later ones at debug level).
    ignored_said: bool,
    /// Signals (bit `signo - 1`) a `signal_dropped` line was written for:
    /// later drops of the same signal go at debug level.
    dropped_said: u64,
}

impl<'a> Reaper<'a> {
    /// A reaper for a running main child; `watch` is the link to the watch
    /// thread (`None` when it could not be started).
    pub fn new(
        cfg: &'a Config,
        inbox: SignalInbox,
        child: ChildHandle,
        is_pid1: bool,
        facts: RunFacts,
        watch: Option<ReaperEnd>,
        board: Arc<Board>,
    ) -> Reaper<'a> {
        let final_seen = watch.is_none();
        Reaper {
            main_comm: None,
            cfg,
            inbox,
            child,
            is_pid1,
            // SAFETY: getpid cannot fail.
            self_pid: unsafe { libc::getpid() },
            timers: Timers::default(),
            stop: StopState::new(cfg.stop_signals.clone()),
            shutdown: Shutdown::default(),
            watch,
            final_seen,
            watch_sampling: false,
            last_check_sent: false,
            rest_pending: None,
            grace_cut: false,
            drain_began: None,
            check_pending: false,
            oom_unlogged: Vec::new(),
            batch: Vec::with_capacity(64),
            observed: Vec::with_capacity(4),
            reap_window: None,
            last_pass: Instant::now(),
            slice_refused: false,
            reaping: ReapingStats::default(),
            facts,
            snapshot: None,
            board,
            main_name_at_exit: None,
            main_name_at_stop: None,
            next_posted: (0, 0),
            ignored_said: false,
            dropped_said: 0,
        }
    }

    /// Runs until nothing is left; returns how the main child ended.
    pub fn run(&mut self) -> Option<ChildEnd> {
        self.timers.set(Timer::Trim, Instant::now() + TRIM_AFTER);
        // The child may have died before the signalfd was first read.
        self.on_sigchld();
        self.open_main_comm_early();
        loop {
            self.end_watch_samples();
            if self.finished() {
                break;
            }
            let now = Instant::now();
            let mut timeout = self.timers.poll_timeout(now);
            if let Some(at) = self.reap_window {
                // Rounded up like the timers: poll never wakes just before.
                let ms = at
                    .saturating_duration_since(now)
                    .as_nanos()
                    .div_ceil(1_000_000);
                let d = Duration::from_millis(ms as u64);
                timeout = Some(timeout.map_or(d, |t| t.min(d)));
            }
            // Asked before retry_in: it hands over what was kept back.
            let log_fd = crate::log::pending_fd();
            // Lines kept back while another thread held the log, or lines
            // queued with nobody polling for stderr while it did.
            if let Some(d) = crate::log::retry_in() {
                timeout = Some(timeout.map_or(d, |t| t.min(d)));
            }
            match log_fd {
                // The usual wait: one syscall that sleeps and hands over a
                // signal. The watch thread's wake-up is a signal too.
                None => self.wait_for_signal(timeout),
                // Lines stderr did not take yet: poll for room as well,
                // never wait for it.
                Some(log_fd) => self.poll_with_log(timeout, log_fd),
            }
            for timer in self.timers.take_due(Instant::now()) {
                self.on_timer(timer);
            }
            self.post_next();
        }
        // A kill the last OOM check found is logged before the report.
        self.log_oom_kills();
        events::reaping_summary(&self.reaping);
        // No Quit for the watch thread: it has sent its final sample, and
        // the samples it went on with after it (processes were left) ended
        // with the last OOM check; woken now, it would only compete with
        // the exit report for a CPU. ward's exit ends it.
        self.facts.main_end
    }

    /// Puts on the board what ward does next by itself and when (the
    /// earliest of the held SIGTERM, `--kill-after` and `--grace`), for
    /// `ward status`; only a change is stored.
    fn post_next(&mut self) {
        let next = [
            (Timer::StopDelay, Next::ForwardHeld),
            (Timer::KillAfter, Next::KillMain),
            (Timer::Grace, Next::KillRest),
        ]
        .into_iter()
        .filter_map(|(t, n)| self.timers.due_at(t).map(|at| (at, n)))
        .min_by_key(|(at, _)| *at)
        .map_or((0, 0), |(at, n)| {
            let ms = at.saturating_duration_since(self.board.started).as_millis();
            (n as u32, ms as u64)
        });
        if next != self.next_posted {
            self.next_posted = next;
            let r = &self.board.reaper;
            r.next_at_ms.store(next.1, Ordering::Relaxed);
            r.next.store(next.0, Ordering::Relaxed);
        }
    }

    /// Nothing is left, and the watch's samples went on past the main
    /// child's end: the last OOM check ends them (and brings the numbers
    /// for the report), so no line of the watch's comes after the report.
    /// The grace's end sends it as the last process is reaped; this is for
    /// a main child that left nothing (its children came and went).
    fn end_watch_samples(&mut self) {
        if self.watch_sampling
            && self.final_seen
            && !self.last_check_sent
            && self.shutdown.phase() == Phase::Done
        {
            self.last_oom_check();
        }
    }

    /// Done when nothing is left and the watch has said its last word
    /// (the final sample, and the line of a shutdown errand in flight).
    fn finished(&self) -> bool {
        self.shutdown.phase() == Phase::Done
            && self.final_seen
            && self.rest_pending.is_none()
            && !self.check_pending
    }

    /// Waits for one signal (SIGCHLD left out during a burst) and acts on
    /// it; at the end of a burst's window, reaps.
    fn wait_for_signal(&mut self, timeout: Option<Duration>) {
        let got = self.inbox.wait(self.reap_window.is_none(), timeout);
        match got {
            Some(sig) if sig.signo == libc::SIGCHLD => self.on_sigchld_wake(true),
            Some(sig) => {
                // Reap first, then decide what the signal means: a main
                // child that exited before a SIGTERM was handled exited by
                // itself, whatever order the two arrived in. The wait hands
                // over the lowest-numbered signal first (SIGTERM before
                // SIGCHLD), so look for exits here: in a burst, the window's
                // pass; otherwise before a stop signal (the one decision the
                // order changes; a plain forward pays nothing for it).
                if self.reap_window.is_some() || self.may_stop(sig.signo) {
                    self.reap_before_deciding();
                }
                self.on_signal(sig);
            }
            None => {
                if let Some(at) = self.reap_window
                    && Instant::now() >= at
                {
                    self.on_reap_window();
                }
            }
        }
    }

    /// Before the reaping pass that takes the exited main child: what it
    /// is called now names it in the lines and the report. A script that
    /// `exec`s its app between two of the watch's looks is that app by
    /// now, not the shell the last look saw.
    fn name_main_at_exit(&mut self) {
        if let Some(name) = self.name_main_now() {
            self.main_name_at_exit = Some(name);
        }
    }

    /// Reads the main process's name now (one `pread` of its `comm`, which
    /// takes no lock of its memory; the file is open from the child's start,
    /// or opened at the first call) into the facts the lines use.
    fn name_main_now(&mut self) -> Option<String> {
        // Once reaped, it has no name to read (the file then fails).
        if self.facts.main_end.is_some() {
            return None;
        }
        let Ok(comm) = self.main_comm() else {
            return None;
        };
        let name = comm.read()?;
        self.facts.observed.main_name = Some(name.clone());
        Some(name)
    }

    /// The main child's `comm`, opened at the first call.
    fn main_comm(&mut self) -> &Result<crate::procs::Comm, ()> {
        if self.main_comm.is_none() {
            let comm = self.open_comm().map_err(|e| events::main_name_unread(&e));
            self.main_comm = Some(comm);
        }
        self.main_comm.get_or_insert(Err(()))
    }

    /// Opens the main child's `comm` in this namespace's `/proc`.
    fn open_comm(&self) -> std::io::Result<crate::procs::Comm> {
        let proc_root = std::path::Path::new(crate::procs::DEFAULT_PROC_ROOT);
        crate::procs::Comm::open(proc_root, self.self_pid, self.child.pid)
    }

    /// Opens the main child's `comm` as it starts, while this thread would
    /// only wait: its exit then reads one `pread` instead of a `/proc`
    /// lookup (about 20 µs, measured) on the report's way. A descriptor
    /// less than [`COMM_EARLY_ROOM`] below the open-files limit is closed
    /// again, and a failed open is not kept: then it is opened at the first
    /// need, after the watch's files, as under a tight limit before.
    fn open_main_comm_early(&mut self) {
        if self.main_comm.is_some() || self.facts.main_end.is_some() {
            return;
        }
        let Ok(comm) = self.open_comm() else {
            return;
        };
        let fd = u64::try_from(comm.fd()).unwrap_or(u64::MAX);
        if fd.saturating_add(COMM_EARLY_ROOM) < super::open_files_limit().unwrap_or(0) {
            self.main_comm = Some(Ok(comm));
        }
    }

    /// True when `signo`, as received or as rewritten, counts as a stop.
    fn may_stop(&self, signo: i32) -> bool {
        self.stop.is_stop_signal(signo)
            || matches!(
                signals::rewrite(&self.cfg.rewrite, signo),
                signals::Disposition::Forward(s) if self.stop.is_stop_signal(s)
            )
    }

    /// The wait while log lines are queued: `poll` on the signalfds and on
    /// stderr for room, then read every signal that came as one batch.
    fn poll_with_log(&mut self, timeout: Option<Duration>, log_fd: i32) {
        let timeout = match timeout {
            Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
            None => -1,
        };
        let chld_fd = match self.reap_window {
            Some(_) => -1,
            None => self.inbox.chld_fd().as_raw_fd(),
        };
        let mut fds = [
            pollfd(chld_fd),
            pollfd(self.inbox.as_fd().as_raw_fd()),
            libc::pollfd {
                fd: log_fd,
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of three pollfds (a negative fd is ignored).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // poll on valid fds does not fail otherwise; never spin.
            std::thread::sleep(Duration::from_millis(10));
        }
        // Reap first, as in `wait_for_signal`.
        if fds[0].revents != 0 || rc < 0 {
            self.on_sigchld_wake(false);
        } else if let Some(at) = self.reap_window
            && (Instant::now() >= at || fds[1].revents != 0)
        {
            self.on_reap_window();
        }
        // Level-triggered: a wake-up with no signal pending reads nothing.
        if fds[1].revents != 0 || rc < 0 {
            self.on_signals();
        }
        // Reaped and forwarded first; then whatever the log can take.
        if fds[2].revents != 0 {
            crate::log::flush_ready();
        }
    }

    /// Looks for exits before a decision that depends on whether the main
    /// child still runs: in a burst, the window's pass; otherwise one pass,
    /// taking the SIGCHLD it answers.
    fn reap_before_deciding(&mut self) {
        if self.reap_window.is_some() {
            self.on_reap_window();
        } else {
            self.inbox.take_sigchld();
            self.on_sigchld();
        }
    }

    /// A SIGCHLD woke the loop: take it, then reap. The second such wake-up
    /// in a short time starts a burst: from then on, reaping runs once per
    /// [`REAP_WINDOW`] until a pass finds nothing.
    /// `taken`: the wait already took the SIGCHLD.
    fn on_sigchld_wake(&mut self, taken: bool) {
        let since_last = self.last_pass.elapsed();
        if !taken {
            self.inbox.take_sigchld();
        }
        self.reaping.wakeups += 1;
        let (reaped, left) = self.on_sigchld();
        if reaped > 0 && since_last < BURST_GAP && left == Remaining::Children {
            self.reap_window = Some(self.last_pass + REAP_WINDOW);
            self.burst_slice(true);
        }
    }

    /// The burst's window is over (or another signal needs the zombies
    /// reaped first): one pass takes every zombie that gathered. A window
    /// that found none ends the burst, after taking the SIGCHLD left pending
    /// and looking once more (an exit between the pass and the take would
    /// otherwise wait for the next SIGCHLD).
    fn on_reap_window(&mut self) {
        let window_start = self.last_pass;
        let (mut reaped, mut left) = self.on_sigchld();
        if reaped > 0 {
            // A zombie reaped by this pass exited after the last one ended:
            // from there to the end of this pass bounds how long it waited.
            let waited = self.last_pass.saturating_duration_since(window_start);
            self.reaping.windows += 1;
            self.reaping.longest_window = self.reaping.longest_window.max(waited);
            if waited > LATE_WINDOW {
                self.reaping.late_windows += 1;
            }
        }
        if reaped == 0 && left == Remaining::Children {
            self.inbox.take_sigchld();
            (reaped, left) = self.on_sigchld();
        }
        self.reap_window =
            (reaped > 0 && left == Remaining::Children).then(|| self.last_pass + REAP_WINDOW);
        if self.reap_window.is_none() {
            self.burst_slice(false);
        }
    }

    /// A burst's start asks for the short slice, its end gives it back: in
    /// a fork storm the reaper wakes on CPUs busy with the storm's
    /// processes, and only a shorter slice than theirs lets it run first.
    /// Outside a burst it keeps the kernel's default, so a signal's wake-up
    /// does not preempt its sender. A refusal is logged once.
    fn burst_slice(&mut self, short: bool) {
        if let Err(e) = crate::sched::request_short_slice(short)
            && !std::mem::replace(&mut self.slice_refused, true)
        {
            events::slice_refused(&e);
        }
    }

    /// Every signal but SIGCHLD the signalfd holds, in one batch.
    fn on_signals(&mut self) {
        self.batch.clear();
        while let Some(sig) = self.inbox.read() {
            self.batch.push(sig);
        }
        for i in 0..self.batch.len() {
            let sig = self.batch[i];
            self.on_signal(sig);
        }
    }

    fn on_signal(&mut self, sig: Received) {
        if ThreadWake::is_wake(sig.signo, sig.from_pid, sig.code, self.self_pid) {
            self.on_observations();
            return;
        }
        if sig.signo == crate::sigmask::WAKE_SIGNAL
            && self.on_observations()
            && sig.from_pid == 0
            && sig.code == libc::SI_USER
        {
            // The wake-up without its details: the kernel drops them when
            // the user's queued signals are at RLIMIT_SIGPENDING, and the
            // watch had posted something. Not forwarded: the child would
            // get a SIGURG nobody sent. (Any other SIGURG is someone
            // else's, forwarded below; one that came while a wake-up was
            // pending merged with it, so the channel is read anyway.)
            return;
        }
        if sig.signo == libc::SIGPIPE && sig.from_pid == self.self_pid {
            // ward's own write to a closed stderr: not meant for the child.
            return;
        }
        if self.shutdown.phase() != Phase::Running {
            // A stop while the rest drain: the orchestrator's clock runs, and
            // the exit report must come out before its SIGKILL.
            let cut = self.shutdown.phase() == Phase::Draining
                && self.stop.is_stop_signal(sig.signo)
                && self
                    .drain_began
                    .is_some_and(|d| d.elapsed() >= STOP_WITH_EXIT);
            events::signal_ignored(sig.signo, cut, self.ignored_said && !cut);
            self.ignored_said = true;
            if cut {
                self.grace_cut = true;
                self.timers.cancel(Timer::Grace);
                let steps = self.shutdown.grace_over();
                self.carry_out(&steps, Instant::now());
            }
            return;
        }
        let disp = signals::rewrite(&self.cfg.rewrite, sig.signo);
        let d = self.stop.on_signal(sig.signo, disp, self.cfg.stop_delay);
        let now = Instant::now();
        if d.first_request {
            self.record_stop_request(sig, now);
        }
        if let Some(delay) = d.hold {
            self.timers.set(Timer::StopDelay, now + delay);
            let int_too = self.stop.is_stop_signal(libc::SIGINT);
            events::stop_delayed(sig.signo, delay, int_too);
        }
        if d.release_hold {
            self.timers.cancel(Timer::StopDelay);
        }
        if let Some(held) = d.send_held {
            self.forward_held(held);
        }
        match d.send {
            Some(out) => self.forward(sig.signo, out, sig.from_pid, d.stop_forwarded),
            None if d.hold.is_none() => {
                let bit = 1u64 << ((sig.signo - 1) & 63);
                events::signal_dropped(sig.signo, self.dropped_said & bit != 0);
                self.dropped_said |= bit;
            }
            None => {}
        }
    }

    fn record_stop_request(&mut self, sig: Received, now: Instant) {
        // What the main process is now, before the stop's lines name it: an
        // entrypoint script that `exec`ed its app is no longer `sh`, and
        // "sh still running after SIGTERM" sends the reader after a shell
        // that does not pass signals on. The census may be seconds old.
        self.main_name_at_stop = self.name_main_now();
        let own = sig.from_pid != 0 && sig.from_pid == self.child.pid;
        // The kernel reparents ward before it sends the signal: a parent
        // still ward's parent sent it on purpose.
        let pdeath = self.cfg.pdeathsig == Some(sig.signo)
            && sig.from_pid != 0
            && self.facts.pdeath_parent == Some(sig.from_pid)
            // SAFETY: getppid cannot fail.
            && unsafe { libc::getppid() } != sig.from_pid;
        let from = if own {
            format!("the main process itself (pid {})", sig.from_pid)
        } else if pdeath {
            format!("ward's parent (pid {}) dying (--pdeathsig)", sig.from_pid)
        } else {
            events::sender_words(sig.from_pid, None, self.is_pid1)
        };
        events::stop_requested(sig.signo, sig.from_pid, &from);
        if sig.from_pid != 0
            && !own
            && !pdeath
            && let Some(w) = &mut self.watch
        {
            // The sender's name is in /proc: the watch thread reads it, and
            // the report gets it.
            w.send(Request::NameSender { pid: sig.from_pid });
        }
        let at_ms = now
            .saturating_duration_since(self.board.started)
            .as_millis() as u64;
        self.board.reaper.stop_at_ms.store(at_ms, Ordering::Relaxed);
        self.board
            .reaper
            .stop_signal
            .store(sig.signo, Ordering::Relaxed);
        self.facts.stop = Some(StopRequest {
            signal: sig.signo,
            from_pid: sig.from_pid,
            from,
            received: now,
            received_wall: SystemTime::now(),
            forwarded: None,
            held: false,
            stopped_by: None,
        });
    }

    /// A warning of the stop or shutdown: for the report, and counted on the
    /// board for `ward status`.
    fn stop_warning(&mut self, key: &'static str) {
        self.facts.note_warning(key);
        self.board
            .reaper
            .stop_warnings
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Forwards the SIGTERM `--stop-delay` held (as `out`, after any
    /// rewrite); the first stop's lines then say how long it was held.
    fn forward_held(&mut self, out: i32) {
        let from = match self.facts.stop.as_mut() {
            Some(s) => {
                s.held |= s.forwarded.is_none();
                s.from_pid
            }
            None => 0,
        };
        self.forward(libc::SIGTERM, out, from, true);
    }

    fn forward(&mut self, received: i32, out: i32, from_pid: i32, is_stop: bool) {
        let result = self.send_to_child(out);
        if result.is_ok() {
            self.board.count_forwarded();
        }
        // Only the first stop forwarded is said at info level: a process
        // that sends ward SIGTERM in a loop must not flood the log.
        let first_stop = is_stop
            && self
                .facts
                .stop
                .as_ref()
                .is_none_or(|s| s.forwarded.is_none());
        events::forwarded(
            &Forward {
                received,
                sent: out,
                group: self.cfg.signal_group && !self.child.sent_alone(),
                command: &self.facts.command,
                now: self.facts.main_now(),
                pid: self.child.pid,
                is_stop: first_stop,
            },
            &result,
        );
        if result.is_err() {
            // Not delivered: no stop was forwarded, so no "still running"
            // clock and no `--kill-after` (its SIGKILL would take the same
            // path); the warning above says so, and the report too.
            return;
        }
        let now = Instant::now();
        self.facts.note_forwarded(Forwarded {
            sent: out,
            received,
            from_pid,
            at: now,
        });
        if out == libc::SIGKILL {
            self.facts.note_ward_sigkill(WardKill::Forwarded, true, now);
        }
        if is_stop {
            let first = match self.facts.stop.as_mut() {
                Some(stop) if stop.forwarded.is_none() => {
                    stop.forwarded = Some(now);
                    true
                }
                _ => false,
            };
            if first {
                // "Still running" counts from the forward, not from the
                // arrival: `--stop-delay` may hold the signal for a while.
                for s in STILL_RUNNING_AT {
                    // One timer kind per second-mark; each fires once.
                    self.timers.set(
                        Timer::StillRunning(s),
                        now + Duration::from_secs(u64::from(s)),
                    );
                }
            }
            if let Some(after) = self.cfg.kill_after
                && !self.timers.is_set(Timer::KillAfter)
                && self.facts.killed_by_ward.is_none()
            {
                self.timers.set(Timer::KillAfter, now + after);
            }
        }
    }

    /// Sends `sig` to the main child (or its group with `-g`); says once
    /// when the pidfd failed and kill(2) took over.
    fn send_to_child(&mut self, sig: i32) -> std::io::Result<()> {
        let result = self.child.send(sig, self.cfg.signal_group);
        if let Some(e) = self.child.take_pidfd_failure() {
            events::signal_fallback(self.child.pid, &e);
        }
        if self.child.take_left_group() {
            events::group_left(&self.facts.main_named(), self.child.pid);
        }
        result
    }

    /// One reaping pass; returns how many it reaped and whether children
    /// are left.
    fn on_sigchld(&mut self) -> (u64, Remaining) {
        // Before every pass, whichever wait led here (a merged SIGCHLD, the
        // poll while lines wait for stderr, a burst's window, the watch's
        // word): the main child, exited and unreaped, is reaped by this
        // pass, and this is the name it died with, which its lines, an OOM
        // victim and the report give. (Asked first: under a tight open-files
        // limit its `comm` is opened only then, not an fd for the whole
        // run.) A main child that
        // exits during the pass, after this look, is reaped by it unnamed
        // (the pass takes any zombie, `waitpid(-1)`): seen in 1 of 40 runs
        // with 20,000 orphans reaped beside it; it is then named as at a
        // stop, or as the watch's census last saw it.
        if self.facts.main_end.is_none() && reap::exited_unreaped(self.child.pid) {
            self.name_main_at_exit();
        }
        let main_pid = self.child.pid;
        let mut main_end = None;
        let mut main_core = false;
        let mut orphans = 0u64;
        let now = Instant::now();
        let facts = &mut self.facts;
        let mut sigkilled = false;
        let left = reap::reap_all(|pid, end, core| {
            if pid == main_pid {
                main_end = Some(end);
                main_core = core;
            } else {
                orphans += 1;
            }
            if end == ChildEnd::Signaled(libc::SIGKILL) {
                facts.note_sigkilled(pid, now);
                sigkilled = true;
            } else {
                facts.note_exited(pid, now);
            }
        });
        if sigkilled
            && main_end.is_none()
            && let Some(w) = &mut self.watch
        {
            // A SIGKILL may be the OOM killer's. Where there is no OOM
            // notification (Docker's read-only v1 cgroupfs), the watch looks
            // at the counter now rather than at its next sample. (At the main
            // child's exit the final sample looks anyway.)
            w.send(Request::CheckOom { last: false });
        }
        self.last_pass = Instant::now();
        self.reaping.passes += 1;
        self.reaping.reaped += orphans;
        if orphans > 0 {
            self.facts.reaped_orphans += orphans;
            self.board
                .reaper
                .orphans_reaped
                .store(self.facts.reaped_orphans, Ordering::Relaxed);
        }
        let reaped = orphans + u64::from(main_end.is_some());
        match main_end {
            Some(end) => {
                self.child.set_reaped();
                self.facts.main_core_dumped = main_core;
                self.on_main_exit(end, now, left);
            }
            None => {
                let before = self.shutdown.phase();
                self.shutdown.reaped(left);
                if before != Phase::Done && self.shutdown.phase() == Phase::Done {
                    self.last_oom_check();
                }
            }
        }
        (reaped, left)
    }

    fn on_main_exit(&mut self, end: ChildEnd, now: Instant, left: Remaining) {
        self.facts.main_end = Some(end);
        self.facts.main_ended = Some(now);
        let r = &self.board.reaper;
        let at_ms = now
            .saturating_duration_since(self.board.started)
            .as_millis();
        r.main_end_at_ms.store(at_ms as u64, Ordering::Relaxed);
        r.main_end.store(MainEnd::encode(end), Ordering::Relaxed);
        for t in [Timer::StopDelay, Timer::KillAfter] {
            self.timers.cancel(t);
        }
        for s in STILL_RUNNING_AT {
            self.timers.cancel(Timer::StillRunning(s));
        }
        let after_stop = self
            .facts
            .stop
            .as_ref()
            .map(|s| (now.duration_since(s.received), s.signal));
        let named = self.facts.main_named();
        events::child_exited(
            &self.facts.command,
            &named,
            self.child.pid,
            (end, self.facts.main_core_dumped),
            after_stop,
        );
        // The report waits (bounded) for the watch's fresh numbers.
        if !self.final_seen {
            let asked = self
                .watch
                .as_mut()
                .is_some_and(|w| w.send(Request::MainExited));
            if asked {
                self.timers.set(Timer::FinalWait, now + FINAL_WAIT);
            } else {
                self.final_seen = true;
            }
        }
        let steps = self.shutdown.main_exited(left);
        self.carry_out(&steps, now);
    }

    /// Carries out the shutdown machine's steps.
    fn carry_out(&mut self, steps: &[Step], now: Instant) {
        for step in steps {
            match *step {
                Step::SignalRest(sig) => self.signal_rest(sig),
                Step::ArmGrace => {
                    self.drain_began = Some(now);
                    self.timers.set(Timer::Grace, now + self.cfg.grace);
                }
                Step::ArmGiveUp => self.timers.set(Timer::GiveUp, now + GIVE_UP_AFTER),
                Step::ReportStuck => {
                    self.stop_warning("shutdown_stuck");
                    events::shutdown_stuck(GIVE_UP_AFTER);
                }
            }
        }
    }

    /// Whether the main child is held in a job-control stop (one `waitid`
    /// that neither blocks nor reaps), kept for the report.
    fn note_stopped(&mut self) -> Option<i32> {
        let stopped = super::reap::stopped_by(self.child.pid);
        if let Some(stop) = &mut self.facts.stop
            && stopped.is_some()
        {
            stop.stopped_by = stopped;
        }
        stopped
    }

    /// Finding "the rest" reads /proc: the watch thread does it. Without the
    /// watch thread, ward does it here rather than not at all.
    fn signal_rest(&mut self, sig: i32) {
        if sig == libc::SIGKILL {
            self.facts
                .note_ward_sigkill(WardKill::Shutdown, false, Instant::now());
        }
        let sent = self.watch.as_mut().is_some_and(|w| {
            w.send(Request::SignalRest {
                signal: sig,
                cut_short: self.grace_cut,
            })
        });
        if sent {
            self.rest_pending = Some(sig);
            self.timers
                .set(Timer::RestWait, Instant::now() + ERRAND_WAIT);
        } else {
            self.signal_rest_here(sig);
        }
    }

    /// The rest signalled by the reaping thread itself: without a watch
    /// thread, or when it did not answer (starved of CPU, or stopped).
    fn signal_rest_here(&mut self, sig: i32) {
        let rest = crate::watch::errands::signal_rest(
            self.is_pid1,
            self.self_pid,
            sig,
            std::path::Path::new(crate::procs::DEFAULT_PROC_ROOT),
        );
        let grace = (!self.grace_cut).then_some(self.cfg.grace);
        if crate::watch::errands::log_rest_signalled(sig, &rest, grace) {
            self.stop_warning("shutdown_kill");
        }
    }

    /// The last process after the main child is gone: one more look at the
    /// OOM kill counter before the report, answered within [`ERRAND_WAIT`]
    /// or not waited for. (An OOM kill during `--grace` was missing from
    /// the report: the final look had come before it, and ward exited
    /// before the notice was handled.)
    fn last_oom_check(&mut self) {
        self.last_check_sent = true;
        let sent = self
            .watch
            .as_mut()
            .is_some_and(|w| w.send(Request::CheckOom { last: true }));
        if sent {
            self.check_pending = true;
            self.timers
                .set(Timer::CheckWait, Instant::now() + ERRAND_WAIT);
        }
    }

    /// Handles what the watch thread posted; true when there was any (its
    /// unannounced [`Observation::Started`] aside).
    fn on_observations(&mut self) -> bool {
        let Some(w) = &mut self.watch else {
            return false;
        };
        // Those waiting now, each with its wake-up (`Started` aside, which
        // comes without one, and first): one posted while these
        // are handled waits for its own (handled here, its wake-up would
        // find nothing, and one that came without its details would then
        // be taken for someone else's SIGURG and forwarded). Gathered in
        // a vector kept for the run: a new one each time took a heap page
        // of musl's, mapped and unmapped, on the report's way.
        let mut got = std::mem::take(&mut self.observed);
        while let Some(o) = w.try_recv() {
            got.push(o);
        }
        let lost = w.is_closed();
        // `Started` comes with no wake-up: it makes no SIGURG ward's own.
        let any = got.iter().any(|o| !matches!(o, Observation::Started));
        for o in got.drain(..) {
            self.on_observation(o);
        }
        self.observed = got;
        if lost {
            self.check_pending = false;
            if let Some(sig) = self.rest_pending.take() {
                self.signal_rest_here(sig);
            }
        }
        if lost && !self.final_seen {
            events::watch_lost("is gone: the report uses the numbers ward had");
            self.final_seen = true;
            self.timers.cancel(Timer::FinalWait);
        }
        if lost {
            self.watch = None;
        }
        any
    }

    fn on_observation(&mut self, o: Observation) {
        match o {
            Observation::OomKill {
                count,
                at,
                findings,
                context,
            } => {
                self.facts.note_oom(count, at, findings);
                self.facts.note_warning("oom_kill");
                self.oom_unlogged.push((count, context));
                if !self.timers.is_set(Timer::OomReport) {
                    self.timers
                        .set(Timer::OomReport, Instant::now() + OOM_LOG_DELAY);
                }
            }
            Observation::Started => {}
            Observation::Warning { key } => self.facts.note_warning(key),
            Observation::MainName { name } => self.facts.observed.main_name = Some(name),
            Observation::SenderName { pid, name } => {
                if let Some(stop) = &mut self.facts.stop
                    && stop.from_pid == pid
                {
                    stop.from = events::sender_words(pid, name.as_deref(), self.is_pid1);
                }
            }
            Observation::OomChecked {
                last,
                snapshot,
                peaks,
            } => {
                // Only the last check's answer ends the wait for it: a
                // SIGKILL's earlier one may come in between.
                if last && self.check_pending {
                    self.check_pending = false;
                    self.timers.cancel(Timer::CheckWait);
                }
                if snapshot.is_some() {
                    self.snapshot = snapshot;
                }
                if let Some(p) = peaks {
                    // The main process's name stays the reaping thread's
                    // (as it died), not the census's.
                    let name = self.facts.observed.main_name.take();
                    self.facts.observed = *p;
                    self.facts.observed.main_name = name;
                }
            }
            Observation::RestSignalled { .. } => {
                // The watch thread logged it; a SIGKILL pass may have freed
                // everything already.
                self.rest_pending = None;
                self.timers.cancel(Timer::RestWait);
                self.on_sigchld();
            }
            Observation::Final {
                snapshot,
                peaks,
                sampling_on,
            } => {
                self.final_seen = true;
                self.watch_sampling = sampling_on;
                self.timers.cancel(Timer::FinalWait);
                // The watch saw the main child's exit on its pidfd and may
                // be here first (a burst's window holds SIGCHLD back): reap
                // now, so the exit is handled and an OOM victim named
                // before the kills below are logged.
                if self.facts.main_end.is_none() {
                    self.on_sigchld();
                }
                self.snapshot = snapshot;
                self.facts.observed = peaks;
                // The reaping thread's own reads are newer than the watch's
                // last census: at the exit, else at the stop (the lines
                // before the report named it so).
                if let Some(name) = self
                    .main_name_at_exit
                    .clone()
                    .or_else(|| self.main_name_at_stop.clone())
                {
                    self.facts.observed.main_name = Some(name);
                }
                // OOM kills noticed in that last look are logged before the
                // report, not after.
                self.log_oom_kills();
            }
        }
    }

    /// Logs every OOM kill noticed and not logged yet, with the victim the
    /// reaps have named by now.
    fn log_oom_kills(&mut self) {
        for (count, ctx) in std::mem::take(&mut self.oom_unlogged) {
            let victim = self
                .facts
                .oom_kills
                .iter()
                .find(|o| o.count == count)
                .and_then(|o| o.victims.first());
            crate::watch::log_oom_kill(victim, &ctx, count, self.facts.oom_kills_total);
            let unnamed = victim.is_none();
            if let (Some(v), Some(w)) = (victim.filter(|v| v.certain).cloned(), &mut self.watch) {
                w.send(Request::OomNamed { count, victim: v });
            }
            if unnamed {
                self.facts.note_said_unnamed(count);
            }
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        let now = Instant::now();
        match timer {
            Timer::StopDelay => {
                self.reap_before_deciding();
                if let Some(out) = self.stop.release()
                    && self.child.alive()
                {
                    self.forward_held(out);
                }
            }
            Timer::KillAfter => {
                // Reap first, as before a stop signal: a main child that
                // died (in a burst, its SIGCHLD not taken yet) must not be
                // "killed" by ward, nor its death put down to this SIGKILL.
                self.reap_before_deciding();
                if self.child.alive() {
                    let after = self.cfg.kill_after.unwrap_or_default();
                    let stopped = self.note_stopped();
                    self.stop_warning("kill_after");
                    let held = self.facts.stop.as_ref().and_then(|s| s.held_for());
                    events::kill_after(
                        &self.facts.main_named(),
                        self.child.pid,
                        after,
                        stopped,
                        held,
                    );
                    let sent = self.send_to_child(libc::SIGKILL);
                    if sent.is_ok() {
                        self.facts.note_ward_sigkill(WardKill::KillAfter, true, now);
                    } else {
                        events::forwarded(
                            &Forward {
                                received: libc::SIGKILL,
                                sent: libc::SIGKILL,
                                group: self.cfg.signal_group && !self.child.sent_alone(),
                                command: &self.facts.command,
                                now: self.facts.main_now(),
                                pid: self.child.pid,
                                is_stop: true,
                            },
                            &sent,
                        );
                    }
                }
            }
            Timer::StillRunning(s) => {
                if self.child.alive() {
                    let (sig, held) = self
                        .facts
                        .stop
                        .as_ref()
                        .map_or((libc::SIGTERM, None), |st| (st.signal, st.held_for()));
                    let stopped = self.note_stopped();
                    self.stop_warning("still_running");
                    events::still_running(
                        &self.facts.main_named(),
                        self.child.pid,
                        s,
                        sig,
                        stopped,
                        held,
                    );
                }
            }
            Timer::Grace => {
                let steps = self.shutdown.grace_over();
                self.carry_out(&steps, now);
            }
            Timer::GiveUp => {
                let steps = self.shutdown.give_up();
                self.carry_out(&steps, now);
            }
            Timer::OomReport => self.log_oom_kills(),
            Timer::Trim => {
                if let Err(e) = crate::trim::trim_read_only_segments() {
                    events::trim_failed(&e);
                }
            }
            Timer::CheckWait => self.check_pending = false,
            Timer::RestWait => {
                if let Some(sig) = self.rest_pending.take() {
                    events::watch_lost(
                        "did not answer a shutdown errand within 2 s (gone, or starved of CPU): ward signals the rest itself",
                    );
                    self.signal_rest_here(sig);
                }
            }
            Timer::FinalWait => {
                if !self.final_seen {
                    events::watch_lost(
                        "gave no last sample within 1 s of the main process's exit (gone, or starved of CPU): the report uses the numbers ward had",
                    );
                    self.final_seen = true;
                }
            }
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
