//! Stop latency: SIGTERM to the init while its main child (which exits on
//! SIGTERM) has left stragglers behind that exit 100 ms after *they* get
//! SIGTERM. Measures when the init exits and whether each straggler was sent
//! SIGTERM before the namespace teardown SIGKILLed it.
//!
//! Whether a straggler got SIGTERM is read from `/proc/PID/syscall`: it waits
//! in rt_sigtimedwait for SIGTERM, then sleeps in (clock_)nanosleep for its
//! 100 ms, so seeing it in nanosleep means SIGTERM reached it.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::inits::Init;
use crate::plan::{Ctx, progress};
use crate::procfs::{SYS_CLOCK_NANOSLEEP, SYS_NANOSLEEP, descendants};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// The longest the harness waits for an init to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often stragglers are looked at while the init winds down.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// What one stop did.
struct StopResult {
    /// SIGTERM to the init's exit (its pidfd readable).
    init_exit: Duration,
    /// SIGTERM to `unshare`'s exit: the namespace is empty.
    all_gone: Duration,
    /// Stragglers seen sleeping out their delay, i.e. sent SIGTERM.
    got_term: usize,
    /// Stragglers found at the start.
    stragglers: usize,
}

fn pidfd_open(pid: i32) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_open(2) with no flags; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd this function owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether the process behind `fd` has exited, waiting at most `timeout`.
fn exited(fd: &OwnedFd, timeout: Duration) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) > 0 }
}

fn measure(ctx: &Ctx, init: &Init) -> Result<StopResult, String> {
    let plan = &ctx.plan;
    let script = format!(
        "{{w}} stragglers {} --exit-after {}; exec {{w}} signals --exit-on TERM",
        plan.stragglers, plan.straggler_ms
    );
    let mut c = Container::start(&init.argv(&[]), &ctx.shell(&script))?;
    c.expect_line("ready", START_TIMEOUT)?;
    c.expect_line("ready", START_TIMEOUT)?;
    let pid = c.init_pid()?;
    let stragglers: Vec<i32> = descendants(&ctx.proc.table(), pid)
        .iter()
        .map(|p| p.pid)
        .filter(|&p| {
            ctx.proc
                .cmdline(p)
                .is_some_and(|c| c.contains(" stragglers "))
        })
        .collect();
    let pidfd = pidfd_open(pid)?;
    let mut got_term = vec![false; stragglers.len()];
    let t0 = Instant::now();
    c.signal_init(libc::SIGTERM)?;
    let init_exit = loop {
        if exited(&pidfd, POLL_EVERY) {
            break t0.elapsed();
        }
        if t0.elapsed() > STOP_TIMEOUT {
            return Err(format!("still running {STOP_TIMEOUT:?} after SIGTERM"));
        }
        for (i, &p) in stragglers.iter().enumerate() {
            if matches!(
                ctx.proc.syscall(p),
                Some(SYS_NANOSLEEP | SYS_CLOCK_NANOSLEEP)
            ) {
                got_term[i] = true;
            }
        }
    };
    c.wait(STOP_TIMEOUT)?;
    Ok(StopResult {
        init_exit,
        all_gone: t0.elapsed(),
        got_term: got_term.iter().filter(|&&g| g).count(),
        stragglers: stragglers.len(),
    })
}

/// The stop benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let plan = &ctx.plan;
    let mut s = Section::new(
        "Stop latency with stragglers",
        ctx.inits.iter().map(|i| i.name.clone()).collect(),
    );
    s.intro.push(format!(
        "`INIT -- sh -c 'ward-workload stragglers {n} --exit-after {ms}; exec ward-workload signals --exit-on TERM'`: \
         {n} stragglers (double-forked, own session, re-parented to the init) that exit {ms} ms after \
         they receive SIGTERM, and a main child that exits on SIGTERM. The host sends SIGTERM \
         to the init and times its exit (pidfd) and the end of the namespace (`unshare` exits). \
         *Stragglers sent SIGTERM* counts those seen sleeping out their {ms} ms; the others \
         were SIGKILLed by the kernel when PID 1 exited. {} rounds.",
        plan.stop_rounds,
        n = plan.stragglers,
        ms = plan.straggler_ms
    ));
    let mut exit = Figure::new("init exit after SIGTERM", Unit::Ms, Compare::No);
    let mut gone = Figure::new("namespace empty", Unit::Ms, Compare::No);
    let mut term = Figure::new("stragglers sent SIGTERM", Unit::Count, Compare::No);
    for round in 0..plan.stop_rounds {
        for init in ctx.rotation(round) {
            progress(&format!(
                "stop round {}/{}: {}",
                round + 1,
                plan.stop_rounds,
                init.name
            ));
            match measure(ctx, init) {
                Ok(r) => {
                    exit.add(round, &init.name, r.init_exit.as_secs_f64() * 1e3);
                    gone.add(round, &init.name, r.all_gone.as_secs_f64() * 1e3);
                    term.add(round, &init.name, r.got_term as f64);
                    if r.stragglers != plan.stragglers as usize {
                        s.notes.push(format!(
                            "{} round {}: found {} stragglers, expected {}",
                            init.name,
                            round + 1,
                            r.stragglers,
                            plan.stragglers
                        ));
                    }
                }
                Err(e) => s.fail(format!("{} round {}: {e}", init.name, round + 1)),
            }
        }
    }
    s.figures = vec![exit, gone, term];
    s
}
