//! The event loop: one thread that owns reaping and signal forwarding.
//!
//! Sources are the signalfd, the timers, and the watch's OOM notification fd. Nothing here may block:
//! every fd is non-blocking and every wait is a `poll` with a timeout from the
//! timers.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use super::reap::{self, Remaining};
use super::shutdown;
use super::signals::{self, ChildHandle, Received, SignalSetup};
use super::stop::{STILL_RUNNING_AT, StopState};
use super::timers::{Timer, Timers};
use crate::cli::{Config, OrphanPolicy};
use crate::exit::ChildEnd;
use crate::log::{self, Level};
use crate::report::facts::{RunFacts, StopRequest};
use crate::signame::name as signal_name;
use crate::units::secs;
use crate::watch::{OOM_LOG_DELAY, Watcher};

/// How often adopted orphans are looked for under `--orphans terminate`, on
/// top of every SIGCHLD.
const ORPHAN_SCAN_EVERY: Duration = Duration::from_secs(1);
/// After the final SIGKILL, how long to wait for processes to vanish before
/// ward exits anyway (a process in uninterruptible sleep can't be hurried).
const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The main child runs.
    Running,
    /// The main child is gone; others were sent SIGTERM.
    Draining,
    /// SIGKILL was sent to what was left.
    Killing,
    /// Nothing is left: ward may exit.
    Done,
}

/// The loop's state.
pub struct Supervisor<'a> {
    cfg: &'a Config,
    signals: SignalSetup,
    child: ChildHandle,
    is_pid1: bool,
    self_pid: i32,
    proc_root: PathBuf,
    timers: Timers,
    stop: StopState,
    phase: Phase,
    orphans_signalled: Vec<i32>,
    /// What the run learned; the exit report reads it.
    pub facts: RunFacts,
    /// The watch, unless `--no-watch`.
    pub watch: Option<Watcher>,
}

impl<'a> Supervisor<'a> {
    /// A supervisor for a running main child.
    pub fn new(
        cfg: &'a Config,
        signals: SignalSetup,
        child: ChildHandle,
        is_pid1: bool,
        facts: RunFacts,
        watch: Option<Watcher>,
    ) -> Supervisor<'a> {
        let mut timers = Timers::default();
        if cfg.orphans == OrphanPolicy::Terminate {
            timers.set(Timer::OrphanScan, Instant::now() + ORPHAN_SCAN_EVERY);
        }
        if let Some(w) = &watch {
            timers.set(Timer::Watch, Instant::now() + w.interval());
        }
        Supervisor {
            cfg,
            signals,
            child,
            is_pid1,
            // SAFETY: getpid cannot fail.
            self_pid: unsafe { libc::getpid() },
            proc_root: PathBuf::from("/proc"),
            timers,
            stop: StopState::default(),
            phase: Phase::Running,
            orphans_signalled: Vec::new(),
            facts,
            watch,
        }
    }

    /// Runs until nothing is left; returns how the main child ended.
    pub fn run(&mut self) -> Option<ChildEnd> {
        // The child may have died before the signalfd was first read.
        self.on_sigchld();
        let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(2);
        while self.phase != Phase::Done {
            let now = Instant::now();
            let timeout = match self.timers.poll_timeout(now) {
                Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
                None => -1,
            };
            pollfds.clear();
            pollfds.push(pollfd(self.signals.as_fd().as_raw_fd()));
            let oom_fd = self.watch.as_ref().and_then(Watcher::oom_fd);
            pollfds.extend(oom_fd.map(pollfd));
            // SAFETY: pollfds is a valid array of pollfd of the given length.
            let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as _, timeout) };
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                // poll on valid fds does not fail otherwise; never spin.
                std::thread::sleep(Duration::from_millis(10));
            }
            // The OOM fd first: an OOM kill is recorded before the SIGCHLD of
            // its victim is handled in the same wake-up.
            if pollfds.get(1).is_some_and(|p| p.revents != 0)
                && let Some(w) = &mut self.watch
                && w.on_oom_ready(&mut self.facts)
                && !self.timers.is_set(Timer::OomReport)
            {
                self.timers
                    .set(Timer::OomReport, Instant::now() + OOM_LOG_DELAY);
            }
            let mut sigchld = false;
            // Level-triggered: a timer wake-up with no signal pending reads nothing.
            let signalled = pollfds[0].revents != 0 || rc < 0;
            while let Some(sig) = signalled.then(|| self.signals.read()).flatten() {
                if sig.signo == libc::SIGCHLD {
                    sigchld = true;
                } else {
                    self.on_signal(sig);
                }
            }
            if sigchld {
                self.on_sigchld();
            }
            for timer in self.timers.take_due(Instant::now()) {
                self.on_timer(timer);
            }
        }
        self.facts.main_end
    }

    fn on_signal(&mut self, sig: Received) {
        if sig.signo == libc::SIGPIPE && sig.from_pid == self.self_pid {
            // Ward's own write to a closed stderr: not meant for the child.
            return;
        }
        if self.phase != Phase::Running {
            log::event(
                Level::Debug,
                "signal_ignored",
                &format!(
                    "{} received after the main process ended; not forwarded",
                    signal_name(sig.signo)
                ),
                &[("signal", json!(sig.signo))],
            );
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
            log::event(
                Level::Info,
                "stop_delayed",
                &format!(
                    "holding {} for {} (--stop-delay) before forwarding it; a second SIGTERM or SIGINT goes at once",
                    signal_name(sig.signo),
                    secs(delay)
                ),
                &[("delay_s", json!(delay.as_secs_f64()))],
            );
        }
        if d.release_hold {
            self.timers.cancel(Timer::StopDelay);
        }
        match d.send {
            Some(out) => self.forward(sig.signo, out, d.stop_forwarded),
            None if d.hold.is_none() => log::event(
                Level::Info,
                "signal_dropped",
                &format!(
                    "{} dropped (--rewrite {}:0)",
                    signal_name(sig.signo),
                    sig.signo
                ),
                &[("signal", json!(sig.signo))],
            ),
            None => {}
        }
    }

    fn record_stop_request(&mut self, sig: Received, now: Instant) {
        let from = self.sender(sig.from_pid);
        log::event(
            Level::Info,
            "stop_requested",
            &format!("received {} from {from}", signal_name(sig.signo)),
            &[
                ("signal", json!(signal_name(sig.signo))),
                ("from_pid", json!(sig.from_pid)),
                ("from", json!(from)),
            ],
        );
        self.facts.stop = Some(StopRequest {
            signal: sig.signo,
            from_pid: sig.from_pid,
            from,
            received: now,
            received_wall: SystemTime::now(),
            forwarded: None,
        });
        for s in STILL_RUNNING_AT {
            // One timer kind per second-mark; each fires once.
            self.timers.set(
                Timer::StillRunning(s),
                now + Duration::from_secs(u64::from(s)),
            );
        }
    }

    /// Who sent a signal, in words.
    fn sender(&self, pid: i32) -> String {
        if pid == 0 {
            return if self.is_pid1 {
                "outside the container (the runtime or orchestrator, e.g. docker stop)".into()
            } else {
                "the kernel or outside ward's PID namespace".into()
            };
        }
        match crate::procs::process_name(&self.proc_root, pid) {
            Some(name) => format!("{name} (pid {pid})"),
            None => format!("pid {pid}"),
        }
    }

    fn forward(&mut self, received: i32, out: i32, is_stop: bool) {
        let result = self.child.send(out, self.cfg.signal_group);
        let level = match (&result, is_stop) {
            (Ok(()), true) => Level::Info,
            _ => Level::Debug,
        };
        // The hot path: at the default level a plain forward logs nothing, so
        // nothing is formatted (the benchmark showed the formatting cost more
        // than the forwarding itself).
        if log::enabled(level) {
            let what = if received == out {
                signal_name(out)
            } else {
                format!(
                    "{} (rewritten from {})",
                    signal_name(out),
                    signal_name(received)
                )
            };
            match result {
                Ok(()) => log::event(
                    level,
                    "signal_forwarded",
                    &format!(
                        "forwarded {what} to {} {} (pid {})",
                        if self.cfg.signal_group {
                            "the process group of"
                        } else {
                            "main process"
                        },
                        self.facts.command,
                        self.child.pid
                    ),
                    &[
                        ("signal", json!(signal_name(out))),
                        ("pid", json!(self.child.pid)),
                    ],
                ),
                Err(e) => log::event(
                    level,
                    "signal_forward_failed",
                    &format!("could not forward {what}: {e}"),
                    &[],
                ),
            }
        }
        if is_stop {
            let now = Instant::now();
            if let Some(stop) = &mut self.facts.stop {
                stop.forwarded.get_or_insert(now);
            }
            if let Some(after) = self.cfg.kill_after
                && !self.timers.is_set(Timer::KillAfter)
                && self.facts.killed_by_ward.is_none()
            {
                self.timers.set(Timer::KillAfter, now + after);
            }
        }
    }

    fn on_sigchld(&mut self) {
        let main_pid = self.child.pid;
        let mut main_end = None;
        let mut orphans = 0u64;
        let now = Instant::now();
        let facts = &mut self.facts;
        let signalled = &mut self.orphans_signalled;
        let remaining = reap::reap_all(|pid, end| {
            if pid == main_pid {
                main_end = Some(end);
            } else {
                orphans += 1;
                if let Some(i) = signalled.iter().position(|&p| p == pid) {
                    signalled.swap_remove(i);
                }
            }
            if end == ChildEnd::Signaled(libc::SIGKILL) {
                facts.note_sigkilled(pid, now);
            }
        });
        self.facts.reaped_orphans += orphans;
        if let Some(end) = main_end {
            self.child.set_reaped();
            self.on_main_exit(end, now);
        }
        match (self.phase, remaining) {
            (Phase::Running, _) if self.cfg.orphans == OrphanPolicy::Terminate => {
                self.terminate_orphans();
            }
            (Phase::Draining | Phase::Killing, Remaining::None) => {
                log::event(Level::Debug, "shutdown_done", "no process left", &[]);
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    fn on_main_exit(&mut self, end: ChildEnd, now: Instant) {
        self.facts.main_end = Some(end);
        self.facts.main_ended = Some(now);
        if let Some(w) = &mut self.watch {
            // Fresh OOM count and memory numbers before anything is decided.
            w.at_main_exit(&mut self.facts);
        }
        for t in [
            Timer::StopDelay,
            Timer::KillAfter,
            Timer::OrphanScan,
            Timer::Watch,
        ] {
            self.timers.cancel(t);
        }
        for s in STILL_RUNNING_AT {
            self.timers.cancel(Timer::StillRunning(s));
        }
        let how = match end {
            ChildEnd::Exited(code) => format!("exited with code {code}"),
            ChildEnd::Signaled(sig) => format!("was killed by {}", signal_name(sig)),
        };
        let after_stop = match &self.facts.stop {
            Some(stop) => format!(
                ", {} after {} was received",
                secs(now.duration_since(stop.received)),
                signal_name(stop.signal)
            ),
            None => String::new(),
        };
        let mut fields = vec![
            ("pid", json!(self.child.pid)),
            ("command", json!(self.facts.command)),
        ];
        match end {
            ChildEnd::Exited(c) => fields.push(("code", json!(c))),
            ChildEnd::Signaled(s) => fields.push(("signal", json!(signal_name(s)))),
        }
        log::event(
            Level::Info,
            "child_exited",
            &format!(
                "main process {} (pid {}) {how}{after_stop}",
                self.facts.command, self.child.pid
            ),
            &fields,
        );
        self.start_drain(now);
    }

    /// Main child gone: SIGTERM everything else, or finish at once if nothing
    /// is left.
    fn start_drain(&mut self, now: Instant) {
        let remaining = reap::reap_all(|pid, end| {
            self.facts.reaped_orphans += 1;
            if end == ChildEnd::Signaled(libc::SIGKILL) {
                self.facts.note_sigkilled(pid, now);
            }
        });
        if remaining == Remaining::None {
            self.phase = Phase::Done;
            return;
        }
        let n = shutdown::signal_rest(self.is_pid1, self.self_pid, libc::SIGTERM, &self.proc_root);
        log::event(
            Level::Info,
            "shutdown",
            &format!(
                "sent SIGTERM to {n} remaining process{}; waiting up to {} (--grace)",
                if n == 1 { "" } else { "es" },
                secs(self.cfg.grace)
            ),
            &[
                ("remaining", json!(n)),
                ("grace_s", json!(self.cfg.grace.as_secs_f64())),
            ],
        );
        self.phase = Phase::Draining;
        self.timers.set(Timer::Grace, now + self.cfg.grace);
    }

    fn on_timer(&mut self, timer: Timer) {
        let now = Instant::now();
        match timer {
            Timer::StopDelay => {
                if self.stop.release() && self.child.alive() {
                    self.forward(libc::SIGTERM, signals_out(self.cfg, libc::SIGTERM), true);
                }
            }
            Timer::KillAfter => {
                if self.child.alive() {
                    let after = self.cfg.kill_after.unwrap_or_default();
                    self.facts.note_warning("kill_after");
                    log::event(
                        Level::Warning,
                        "kill_after",
                        &format!(
                            "main process {} (pid {}) still running {} after the stop signal was forwarded: sending SIGKILL (--kill-after)",
                            self.facts.command,
                            self.child.pid,
                            secs(after)
                        ),
                        &[
                            ("pid", json!(self.child.pid)),
                            ("kill_after_s", json!(after.as_secs_f64())),
                        ],
                    );
                    self.facts.killed_by_ward = Some(now);
                    let _ = self.child.send(libc::SIGKILL, self.cfg.signal_group);
                }
            }
            Timer::StillRunning(s) => {
                if self.child.alive() {
                    let sig = self
                        .facts
                        .stop
                        .as_ref()
                        .map(|st| st.signal)
                        .unwrap_or(libc::SIGTERM);
                    self.facts.note_warning("still_running");
                    log::event(
                        Level::Warning,
                        "still_running",
                        &format!(
                            "main process {} (pid {}) still running {s} s after {}",
                            self.facts.command,
                            self.child.pid,
                            signal_name(sig)
                        ),
                        &[("after_s", json!(s)), ("pid", json!(self.child.pid))],
                    );
                }
            }
            Timer::Grace => {
                if self.phase == Phase::Draining {
                    let n = shutdown::signal_rest(
                        self.is_pid1,
                        self.self_pid,
                        libc::SIGKILL,
                        &self.proc_root,
                    );
                    self.facts.note_warning("shutdown_kill");
                    log::event(
                        Level::Warning,
                        "shutdown_kill",
                        &format!(
                            "{n} process{} still running after the {} grace: sent SIGKILL",
                            if n == 1 { "" } else { "es" },
                            secs(self.cfg.grace)
                        ),
                        &[("remaining", json!(n))],
                    );
                    self.phase = Phase::Killing;
                    self.timers.set(Timer::GiveUp, now + GIVE_UP_AFTER);
                    // Anything already gone is reaped without waiting for
                    // the next SIGCHLD.
                    self.on_sigchld();
                }
            }
            Timer::GiveUp => {
                if self.phase == Phase::Killing {
                    self.facts.note_warning("shutdown_stuck");
                    log::event(
                        Level::Error,
                        "shutdown_stuck",
                        &format!(
                            "processes still present {} after SIGKILL (uninterruptible sleep?); exiting anyway",
                            secs(GIVE_UP_AFTER)
                        ),
                        &[],
                    );
                    self.phase = Phase::Done;
                }
            }
            Timer::OrphanScan => {
                if self.phase == Phase::Running {
                    self.terminate_orphans();
                    self.timers.set(Timer::OrphanScan, now + ORPHAN_SCAN_EVERY);
                }
            }
            Timer::OomReport => {
                if let Some(w) = &mut self.watch {
                    w.log_oom_kills(&self.facts);
                }
            }
            Timer::Watch => {
                if let Some(w) = &mut self.watch {
                    w.tick(now, &mut self.facts);
                    self.timers.set(Timer::Watch, Instant::now() + w.interval());
                }
            }
        }
    }

    /// `--orphans terminate`: SIGTERM every child that is not the main one.
    fn terminate_orphans(&mut self) {
        let children =
            crate::procs::children_of(&self.proc_root, self.self_pid).unwrap_or_default();
        for pid in children {
            if pid == self.child.pid || self.orphans_signalled.contains(&pid) {
                continue;
            }
            let name = self.sender(pid);
            // SAFETY: plain kill(2) on our own (unreaped) child.
            if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
                self.orphans_signalled.push(pid);
                log::event(
                    Level::Info,
                    "orphan_terminated",
                    &format!("sent SIGTERM to adopted orphan {name} (--orphans terminate)"),
                    &[("pid", json!(pid))],
                );
            }
        }
    }
}

fn signals_out(cfg: &Config, sig: i32) -> i32 {
    match signals::rewrite(&cfg.rewrite, sig) {
        signals::Disposition::Forward(s) => s,
        signals::Disposition::Drop => sig,
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
