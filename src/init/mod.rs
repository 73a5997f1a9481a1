//! The init proper: become a reaper, start the child, run the event loop, and
//! turn the child's end into ward's exit code.
//!
//! - `signals.rs`: the mask, the signalfd, forwarding to the child (pidfd).
//! - `spawn.rs`: PATH lookup, fork/exec, terminal hand-over, exec errors.
//! - `reap.rs`: the `waitpid` loop.
//! - `stop.rs`: `--stop-delay` / `--kill-after` decisions.
//! - `shutdown.rs`: who gets SIGTERM/SIGKILL once the main child is gone.
//! - `timers.rs`: deadlines that become the poll timeout.
//! - `event_loop.rs`: the one thread that ties them together.

pub mod event_loop;
pub mod reap;
pub mod shutdown;
pub mod signals;
pub mod spawn;
pub mod stop;
pub mod timers;

use serde_json::json;

use crate::cli::Config;
use crate::exit::{self, ChildEnd};
use crate::log::{self, Level};
use crate::report::facts::{RunFacts, command_name};
use crate::report::{self, summary, verdict};
use crate::signame::name as signal_name;
use crate::watch::{Snapshot, Watcher};
use event_loop::Supervisor;
use signals::{ChildHandle, SignalSetup};
use spawn::{ChildSetup, Started};

/// How long ward keeps writing queued log lines at exit before it exits
/// anyway: a stderr nobody reads must not keep the container alive.
const LOG_FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `cfg.command` under ward and returns ward's exit code.
pub fn run(cfg: Config) -> u8 {
    log::configure(cfg.log_level, cfg.log_format);
    // Before the first line: a stderr nobody reads must not block even that.
    log::init_sink();
    let code = supervise(cfg);
    log::flush(LOG_FLUSH_AT_EXIT);
    code
}

/// Everything between the sink's set-up and the final flush.
fn supervise(cfg: Config) -> u8 {
    // SAFETY: getpid cannot fail.
    let is_pid1 = unsafe { libc::getpid() } == 1;
    become_reaper(is_pid1, &cfg);

    let signals = match SignalSetup::install() {
        Ok(s) => s,
        Err(e) => {
            log::event(
                Level::Error,
                "internal",
                &format!("cannot set up signal handling: {e}"),
                &[],
            );
            return exit::INTERNAL;
        }
    };
    let mut facts = RunFacts::new(command_name(&cfg.command[0]));
    // Before the child starts: the OOM kill, fork refusal and throttling
    // counters read now are the baselines, so nothing the child does is
    // mistaken for history.
    let watch = cfg
        .watch_interval
        .map(|every| Watcher::start(every, cfg.thresholds.clone(), is_pid1, &mut facts));
    let setup = ChildSetup {
        mask: signals.original_mask,
        take_terminal: spawn::owns_terminal(),
    };
    let started = match spawn::spawn(&cfg.command, &setup) {
        Ok(s) => s,
        Err(e) => {
            log::event(Level::Error, "spawn_failed", &e.to_string(), &[]);
            return exit::INTERNAL;
        }
    };
    let pid = match started {
        Started::Running(pid) => pid,
        Started::ExecFailed { pid, errno } => {
            reap::wait_for(pid);
            let (code, what) = spawn::exec_failure(errno);
            let err = std::io::Error::from_raw_os_error(errno);
            log::event(
                Level::Error,
                "exec_failed",
                &format!(
                    "cannot run {:?}: {what}: {err}; exiting {code}",
                    cfg.command[0].to_string_lossy()
                ),
                &[("errno", json!(errno)), ("exit_code", json!(code))],
            );
            facts.main_pid = pid;
            facts.exec_errno = Some(errno);
            finish(&cfg, &facts, None, code, code);
            return code;
        }
    };
    facts.main_pid = pid;
    if let Some(w) = &watch {
        w.announce();
    }
    log::event(
        Level::Debug,
        "child_started",
        &format!(
            "started {} as pid {pid}{}",
            facts.command,
            if setup.take_terminal {
                " in the terminal's foreground"
            } else {
                ""
            }
        ),
        &[("pid", json!(pid))],
    );

    let child = ChildHandle::new(pid);
    let mut sup = Supervisor::new(&cfg, signals, child, is_pid1, facts, watch);
    let end = sup.run();
    // The loop only ends after the main child was reaped.
    let raw = end.map_or(exit::INTERNAL, ChildEnd::shell_code);
    let code = cfg.remap_exit.apply(raw);
    finish(
        &cfg,
        &sup.facts,
        sup.watch.as_ref().map(Watcher::snapshot),
        raw,
        code,
    );
    code
}

/// Decides why the run ended and writes the exit report.
fn finish(cfg: &Config, facts: &RunFacts, snapshot: Option<&Snapshot>, raw: u8, code: u8) {
    let argv0 = cfg.command[0].to_string_lossy();
    let report = summary::build(&summary::Inputs {
        facts,
        snapshot,
        verdict: verdict::decide(facts),
        raw_code: raw,
        exit_code: code,
        kill_after: cfg.kill_after,
        argv0: &argv0,
        now: std::time::Instant::now(),
    });
    report::emit(
        &report,
        cfg.report_file.as_deref(),
        facts.exec_errno.is_some(),
    );
}

/// As PID 1 the kernel re-parents orphans to ward already; otherwise ask to be
/// a child subreaper so the child's orphans come to ward, not the host's init.
fn become_reaper(is_pid1: bool, cfg: &Config) {
    if is_pid1 {
        if let Some(sig) = cfg.pdeathsig {
            log::event(
                Level::Warning,
                "pdeathsig_ignored",
                &format!(
                    "--pdeathsig {} ignored: ward is PID 1 and has no parent to lose",
                    signal_name(sig)
                ),
                &[],
            );
        }
        return;
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        log::event(
            Level::Debug,
            "subreaper",
            "not PID 1: registered as child subreaper, orphans of the child come to ward",
            &[],
        );
    } else {
        log::event(
            Level::Warning,
            "subreaper_failed",
            &format!(
                "not PID 1 and cannot become a child subreaper ({}): orphans will not be reaped by ward",
                std::io::Error::last_os_error()
            ),
            &[],
        );
    }
    if let Some(sig) = cfg.pdeathsig {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
            log::event(
                Level::Warning,
                "pdeathsig_failed",
                &format!(
                    "cannot set --pdeathsig: {}",
                    std::io::Error::last_os_error()
                ),
                &[],
            );
        }
    }
}
