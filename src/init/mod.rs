//! The init proper: become a reaper, start the child, run the event loop, and
//! turn the child's end into ward's exit code.
//!
//! - `signals.rs`: the mask, the signal wait and signalfds, forwarding to the child (pidfd).
//! - `spawn.rs`: PATH lookup, a vfork-style clone and exec, terminal hand-over, exec errors.
//! - `oom_adj.rs`: ward's own `oom_score_adj`, or the child's raise.
//! - `reap.rs`: the `waitpid` loop.
//! - `stop.rs`: `--stop-delay` / `--kill-after` decisions (pure).
//! - `shutdown.rs`: the phases once the main child is gone (pure).
//! - `timers.rs`: deadlines that become the wait's timeout.
//! - `events.rs`: the words of every event the reaping thread logs.
//! - `reaper.rs`: the reaping thread's loop that ties them together.
//!
//! Three threads in all: this one reaps, forwards and keeps time; the watch
//! thread ([`crate::watch`]) does everything that reads `/proc` or cgroups;
//! the serving thread ([`crate::serve`]) answers from the board (started
//! here with `--metrics`, else by the watch thread once the child runs).
//! When stderr is a file, the log's own writer thread is a fourth.

pub mod events;
pub mod oom_adj;
pub mod reap;
pub mod reaper;
pub mod shutdown;
pub mod signals;
pub mod spawn;
pub mod stop;
pub mod timers;

use std::sync::Arc;

use serde_json::json;

use crate::cli::{Config, OrphanPolicy};
use crate::exit::{self, ChildEnd};
use crate::log::{self, Level};
use crate::report::facts::{RunFacts, command_name};
use crate::report::{self, summary, verdict};
use crate::signame::name as signal_name;
use crate::watch::board::Board;
use crate::watch::{Observer, Request, Snapshot, WatchPlan, link};
use reaper::Reaper;
use signals::{ChildHandle, SignalInbox};
use spawn::{ChildSetup, Started};

/// How long ward keeps writing queued log lines at exit before it exits
/// anyway: a stderr nobody reads must not keep the container alive.
const LOG_FLUSH_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(1);

/// glibc's malloc, when ward is built against it (the host target, for
/// fuzzing): one arena and fixed thresholds. musl's malloc, that of the
/// shipped binary, has no arenas, no thread caches and no thresholds to set.
#[cfg(target_env = "gnu")]
fn malloc_tunables() {
    // One malloc arena for all of ward's threads. glibc gives each new
    // thread that allocates an arena of its own (a 64 MiB reservation, and
    // its own touched heap pages in the RSS); ward's threads allocate little
    // and rarely at once, and small allocations come from each thread's
    // cache without the arena's lock.
    // SAFETY: mallopt only sets a tunable; called before any thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // Fixed, not glibc's sliding thresholds: freeing one large block (a
    // census of thousands of processes makes a few of ~170 KiB) raises
    // both for good, after which such blocks come from the heap and its
    // top is never trimmed. Measured, 3,000 processes come and gone:
    // anonymous 624-1000 KiB left after, 652 KiB with these (idle: 216).
    // SAFETY: as above.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(target_env = "gnu"))]
fn malloc_tunables() {}

/// Runs `cfg.command` under ward and returns ward's exit code.
pub fn run(cfg: Config) -> u8 {
    malloc_tunables();
    // Before the watch thread exists: read from the environment block.
    let unknown = crate::cli::unknown_variables_now();
    log::configure(cfg.log_level, cfg.log_format);
    // This thread reaps: it never waits for the log's lock, which the
    // watch and serving threads take too.
    log::never_wait_here();
    // Before the first line: a stderr nobody reads must not block even that.
    log::init_sink();
    let code = supervise(cfg, &unknown);
    log::flush(LOG_FLUSH_AT_EXIT);
    code
}

/// For an error of too many open files: what the limit is (a `ulimit -n`
/// of 4 or 5 leaves ward no room for its signalfds).
fn fd_limit_words(e: &std::io::Error) -> String {
    if e.raw_os_error() != Some(libc::EMFILE) {
        return String::new();
    }
    open_files_limit().map_or(String::new(), |limit| {
        format!("; the open-files limit (ulimit -n) is {limit}, and ward needs at least 6")
    })
}

/// The soft open-files limit (`ulimit -n`); `None` when unreadable.
fn open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a struct on the stack.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Everything between the sink's set-up and the final flush.
fn supervise(cfg: Config, unknown: &[(String, Option<&'static str>)]) -> u8 {
    // SAFETY: getpid cannot fail.
    let is_pid1 = unsafe { libc::getpid() } == 1;
    let pdeath_parent = become_reaper(is_pid1, &cfg);

    // Signals are blocked before any of ward's threads exists, so the watch
    // thread inherits the mask and every signal comes to the signalfd (but
    // for a 34 in the stretch before the child `signals::LIBC_OWN` describes).
    let inbox = match SignalInbox::install() {
        Ok(s) => s,
        Err(e) => {
            log::event(
                Level::Error,
                "internal",
                &format!("cannot set up signal handling: {e}{}", fd_limit_words(&e)),
                &[],
            );
            return exit::INTERNAL;
        }
    };
    let mut facts = RunFacts::new(command_name(&cfg.command[0]));
    facts.pid1 = is_pid1;
    facts.group_signals = cfg.signal_group;
    facts.pdeath_parent = pdeath_parent;
    // Before the child starts: the OOM kill and fork refusal counters read
    // now are the baselines, so nothing the child does is mistaken for
    // history (the rest waits for the watch thread's first look).
    let board = Arc::new(Board::default());
    let mut observer = Observer::prepare(
        WatchPlan {
            command: facts.command.clone(),
            interval: cfg.watch_interval,
            thresholds: cfg.thresholds.clone(),
            is_pid1,
            terminate_orphans: cfg.orphans == OrphanPolicy::Terminate,
            grace: cfg.grace,
            emf: cfg.emf.then(|| crate::watch::EmfPlan {
                interval: cfg.emf_interval,
                namespace: cfg.emf_namespace.clone(),
                ecs_metadata: std::env::var(crate::metrics::ecs::METADATA_ENV)
                    .ok()
                    .filter(|v| !v.is_empty()),
            }),
        },
        board.clone(),
    );
    if cfg.metrics.is_none() {
        observer.serve_status_later(Box::new(crate::serve::start_status));
    }
    facts.oom_count_base = observer.oom_count_base();
    let oom_adj = if cfg.oom_adjust {
        let proc_root = crate::cgroup::Roots::default().proc;
        let shield = oom_adj::shield(&proc_root, || observer.memory_bound());
        let write = shield
            .child_write()
            .and_then(|adj| spawn::OomWrite::new(&proc_root, adj));
        (Some(shield), write)
    } else {
        log::event(
            Level::Debug,
            "oom_adjust_off",
            "--no-oom-adjust: every oom_score_adj stays as inherited",
            &[],
        );
        (None, None)
    };
    let (shield, oom_adj) = oom_adj;
    // The threads start before the child: a child that forks up to its pids
    // limit at once would otherwise leave ward without them. The libc's
    // first has blocked every signal when its start returns
    // (`sigmask::spawn_blocked`), and this thread blocks musl's own again
    // after it (and before the next, which inherits its mask): so no thread
    // of ward's discards a 34 sent once the child runs (but for the cases
    // `signals::LIBC_OWN` names).
    let mut link = start_watch(observer);
    reblock(&inbox);
    // With --metrics the serving thread starts now; without, the watch
    // thread starts `ward status` once the child runs (or, without a watch
    // thread, it starts now).
    let serving = crate::serve::start(&cfg, &board).or_else(|| match (&cfg.metrics, &link) {
        (None, None) => crate::serve::start_status(&board).ok().flatten(),
        _ => None,
    });
    reblock(&inbox);
    let setup = ChildSetup {
        mask: inbox.original_mask,
        dispositions: signals::inherited_dispositions(),
        take_terminal: spawn::owns_terminal(),
        oom_adj,
    };
    let started = match spawn::spawn(&cfg.command, &setup) {
        Ok(s) => s,
        Err(e) => {
            log::event(Level::Error, "spawn_failed", &e.to_string(), &[]);
            if let Some(l) = &mut link {
                l.send(Request::Quit);
            }
            // Still one exit report, as after a failed exec.
            let (errno, what) = e.errno_and_words();
            facts.exec_errno = Some(errno);
            facts.exec_what = Some(what);
            finish(&cfg, &facts, None, exit::INTERNAL, exit::INTERNAL);
            return exit::INTERNAL;
        }
    };
    // After the child, the last of ward's fds and threads: under a tight
    // open-files or pids limit it is the one left out, never the child
    // (lines then go to the file directly, as before it).
    log::start_file_writer();
    let pid = match started {
        Started::Running(pid) => pid,
        Started::ExecFailed { pid, errno } => {
            reap::wait_for(pid);
            if setup.take_terminal {
                spawn::give_terminal_back(pid);
            }
            let (code, what) = spawn::exec_failure(errno);
            // One line, the exit report: every ward exit ends with exactly
            // one `exit_report` event carrying a cause.
            facts.main_pid = pid;
            facts.exec_errno = Some(errno);
            facts.exec_what = Some(what);
            if errno == libc::ENOENT {
                facts.exec_detail = spawn::missing_runner(cfg.command[0].as_os_str());
            }
            if let Some(l) = &mut link {
                l.send(Request::Quit);
            }
            finish(&cfg, &facts, None, code, code);
            return code;
        }
    };
    facts.main_pid = pid;
    board
        .reaper
        .main_pid
        .store(pid, std::sync::atomic::Ordering::Relaxed);
    // Said once the child runs: an exec failure stays a one-line answer.
    if let Some(shield) = &shield {
        let refused = setup.oom_adj.as_ref().and_then(spawn::OomWrite::failure);
        log_shield(shield, refused);
    }
    if !unknown.is_empty() {
        log::event(
            Level::Warning,
            "unknown_variable",
            &format!(
                "ignored, no option reads it: {}",
                crate::cli::unknown_variables_words(unknown)
            ),
            &[(
                "variables",
                unknown
                    .iter()
                    .map(|(name, hint)| json!({"name": name, "hint": hint}))
                    .collect(),
            )],
        );
    }
    if cfg.kill_after.is_some() {
        warn_dropped_stops(&cfg);
    }
    if cfg.stop_delay.is_some() {
        warn_idle_stop_delay(&cfg);
    }
    if let Some(path) = &cfg.report_file {
        report::check_file(path);
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
    if let Some(l) = &mut link {
        l.send(Request::MainStarted {
            pid,
            exit_fd: child.exit_fd().map(link::ExitFd::new),
        });
    }
    let mut reaper = Reaper::new(&cfg, inbox, child, is_pid1, facts, link, board);
    let end = reaper.run();
    if setup.take_terminal {
        spawn::give_terminal_back(pid);
    }
    // The loop only ends after the main child was reaped.
    let raw = end.map_or(exit::INTERNAL, ChildEnd::shell_code);
    let code = cfg.remap_exit.apply(raw);
    finish(&cfg, &reaper.facts, reaper.snapshot.as_deref(), raw, code);
    // Not stopped: woken now, the serving thread would only compete with
    // ward's exit, which ends it anyway.
    std::mem::forget(serving);
    // Nor the reaper dropped: ward exits next, and the exit closes its
    // files and frees its memory at once, where the drop closed the two
    // signalfds and the main process's `comm` and unmapped a heap page
    // first, four system calls between the report and the exit. Nothing
    // of it does more when dropped (the watch thread's link writes
    // nothing as it goes).
    std::mem::forget(reaper);
    code
}

/// `--kill-after` with a stop signal `--rewrite` drops: for that signal it
/// can never start (nothing is forwarded), which nothing else would say.
fn warn_dropped_stops(cfg: &Config) {
    let dropped = stop::dropped_stops(&cfg.stop_signals, &cfg.rewrite);
    if dropped.is_empty() {
        return;
    }
    let names: Vec<String> = dropped.iter().map(|&s| signal_name(s)).collect();
    let (a, it) = if names.len() == 1 {
        ("a stop signal: it is", "it")
    } else {
        ("stop signals: they are", "them")
    };
    log::event(
        Level::Warning,
        "stop_dropped",
        &format!(
            "--rewrite drops {}, {a} never forwarded, so --kill-after never starts for {it} (docker stop sends SIGTERM)",
            crate::units::and_list(&names)
        ),
        &[],
    );
}

/// `--stop-delay` holds only a SIGTERM that is a stop request and is
/// forwarded; with neither, it would hold nothing, and say nothing.
fn warn_idle_stop_delay(cfg: &Config) {
    if stop::stop_delay_holds(&cfg.stop_signals, &cfg.rewrite) {
        return;
    }
    log::event(
        Level::Warning,
        "stop_delay_unused",
        "--stop-delay holds only a SIGTERM that is a stop signal (--stop-signal) and is forwarded (not dropped by --rewrite); here it holds nothing",
        &[],
    );
}

/// The start line about the OOM killer; `refused`: why the child could
/// not write its value, so that it runs with ward's.
fn log_shield(shield: &oom_adj::OomShield, refused: Option<std::io::Error>) {
    use oom_adj::OomShield;
    if let Some(e) = refused {
        return log_child_write_refused(shield, &e);
    }
    match shield {
        OomShield::Protected { child_adj } => log::event(
            Level::Info,
            "oom_protected",
            &format!(
                "oom_score_adj set to -1000: the OOM killer takes any other process before ward; the child starts at {child_adj} as inherited"
            ),
            &[
                ("oom_score_adj", json!(-1000)),
                ("child_oom_score_adj", json!(child_adj)),
            ],
        ),
        OomShield::ChildRaised {
            ward_adj,
            child_adj,
            margin,
            total_bytes,
            why,
        } => log::event(
            Level::Info,
            "oom_child_preferred",
            &format!(
                "{why}: the child starts at oom_score_adj {child_adj}, ward's {ward_adj} + {margin} (worth {} of {}), so an OOM kill takes it before ward; --no-oom-adjust turns this off",
                crate::units::bytes(oom_adj::WARD_BUDGET_BYTES),
                crate::units::bytes(*total_bytes),
            ),
            &[
                ("oom_score_adj", json!(ward_adj)),
                ("child_oom_score_adj", json!(child_adj)),
            ],
        ),
        OomShield::Untouched { why } => log::event(
            Level::Warning,
            "oom_unprotected",
            &format!("{why}: oom_score_adj left as inherited, the OOM killer may take ward first"),
            &[],
        ),
    }
}

/// The start line when the child could not write its `oom_score_adj`
/// (say a read-only /proc): it runs with ward's value, which the decision
/// did not mean it to.
fn log_child_write_refused(shield: &oom_adj::OomShield, e: &std::io::Error) {
    use oom_adj::OomShield;
    let (own, words) = match shield {
        OomShield::Protected { child_adj } => (
            -1000,
            format!(
                "oom_score_adj set to -1000, but the child could not set its own back to {child_adj} before exec: {e}; it starts at -1000 too, where the OOM killer never takes it"
            ),
        ),
        OomShield::ChildRaised {
            ward_adj,
            child_adj,
            why,
            ..
        } => (
            *ward_adj,
            format!(
                "{why}, and the child could not raise its own to {child_adj} before exec: {e}; it starts at ward's {ward_adj}, and the OOM killer may take ward first"
            ),
        ),
        OomShield::Untouched { .. } => return,
    };
    log::event(
        Level::Warning,
        "oom_child_unchanged",
        &words,
        &[
            ("oom_score_adj", json!(own)),
            ("child_oom_score_adj", json!(own)),
        ],
    );
}

/// Blocks the libc's own signals again in the reaping thread after a thread
/// start (see `SignalInbox::reblock`); a failure is said, not fatal.
fn reblock(inbox: &SignalInbox) {
    if let Err(e) = inbox.reblock() {
        log::event(
            Level::Warning,
            "signal_mask",
            &format!(
                "cannot block the libc's own signals (32 to 34) again after starting ward's threads: {e}"
            ),
            &[],
        );
    }
}

/// Starts the watch thread; without it ward still reaps and forwards, and
/// says so.
fn start_watch(observer: Observer) -> Option<link::ReaperEnd> {
    let started = link::pair()
        .and_then(|(reaper_end, watch_end)| observer.spawn(watch_end).map(|_detached| reaper_end));
    match started {
        Ok(end) => Some(end),
        Err(e) => {
            log::event(
                Level::Warning,
                "watch_unavailable",
                &format!("cannot start the watch thread ({e}): reaping and forwarding only"),
                &[],
            );
            None
        }
    }
}

/// Decides why the run ended and writes the exit report.
fn finish(cfg: &Config, facts: &RunFacts, snapshot: Option<&Snapshot>, raw: u8, code: u8) {
    let argv0 = cfg.command[0].to_string_lossy();
    let inputs = summary::ReportInputs {
        facts,
        snapshot,
        verdict: verdict::decide(facts),
        raw_code: raw,
        exit_code: code,
        kill_after: cfg.kill_after,
        argv0: &argv0,
        throttle_ratio: cfg.thresholds.throttle_pct / 100.0,
        now: std::time::Instant::now(),
    };
    report::write(&inputs, cfg.report_file.as_deref());
}

/// As PID 1 the kernel re-parents orphans to ward already; otherwise ask to be
/// a child subreaper so the child's orphans come to ward, not the host's init.
/// `--pdeathsig` either way: PID 1 of a PID namespace has a parent outside
/// it (unshare, the runtime's shim), as tini's `-p` assumes. Returns the
/// parent whose death sends `--pdeathsig`, when set.
fn become_reaper(is_pid1: bool, cfg: &Config) -> Option<i32> {
    if !is_pid1 {
        become_subreaper();
    }
    let sig = cfg.pdeathsig?;
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
        return None;
    }
    // SAFETY: getppid cannot fail.
    Some(unsafe { libc::getppid() })
}

fn become_subreaper() {
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
}
