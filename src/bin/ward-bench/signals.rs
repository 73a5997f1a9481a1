//! Signal forwarding latency: from `kill(init, SIGUSR1)` on the host to the
//! byte `ward-workload signal-echo` writes as soon as sigtimedwait hands it the
//! forwarded signal. Both ends are timed by the harness on CLOCK_MONOTONIC
//! (`Instant`), so this is a round trip: kill, forward, wake-up, write, read.
//!
//! A reference row runs `signal-echo` itself as PID 1 (no init), which gives
//! the round trip's floor on this machine.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit, percentile};

/// Row name of the no-init reference.
pub const DIRECT: &str = "no init (reference)";
/// Signals sent before measuring (page faults, first wake-ups).
const WARM_UP: usize = 20;
/// The longest one round trip may take before the run counts as failed.
const LOST_AFTER: Duration = Duration::from_secs(2);

/// Sorted round trips in µs for one container.
fn measure(init_argv: &[OsString], ctx: &Ctx, n: usize) -> Result<Vec<f64>, String> {
    let mut c = Container::start(init_argv, &ctx.workload(&["signal-echo"]))?;
    c.expect_line("ready", START_TIMEOUT)?;
    let pid = c.init_pid()?;
    let mut rtt = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        let t0 = Instant::now();
        // SAFETY: kill(2) on the container's init, alive (stdout still open).
        if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        c.read_byte(LOST_AFTER)
            .map_err(|e| format!("signal {i}: {e}"))?;
        if i >= WARM_UP {
            rtt.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    c.signal_init(libc::SIGTERM)?;
    c.wait(Duration::from_secs(10))?;
    rtt.sort_by(f64::total_cmp);
    Ok(rtt)
}

/// The latency benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let n = ctx.plan.signals;
    let mut rows: Vec<String> = ctx.inits.iter().map(|i| i.name.clone()).collect();
    rows.push(DIRECT.into());
    let mut s = Section::new("Signal forwarding latency", rows);
    s.intro.push(format!(
        "`INIT -- ward-workload signal-echo`; {n} × SIGUSR1 sent to the init, one at a time, \
         each after the previous echo arrived ({WARM_UP} more first, not counted); {} rounds. \
         Round trip from `kill(2)` to reading the echo byte, both timed on the host with \
         CLOCK_MONOTONIC. p50 and p99 are per run, then summarised over the rounds. The \
         reference row runs `signal-echo` as PID 1 itself: the floor of this round trip.",
        ctx.plan.rounds
    ));
    let mut p50 = Figure::new("p50", Unit::Us, Compare::Ratio);
    let mut p99 = Figure::new("p99", Unit::Us, Compare::Ratio);
    let mut max = Figure::new("max", Unit::Us, Compare::No);
    for round in 0..ctx.plan.rounds {
        let mut runs: Vec<(String, Vec<OsString>)> = ctx
            .rotation(round)
            .into_iter()
            .map(|i| (i.name.clone(), i.argv(&[])))
            .collect();
        runs.push((DIRECT.into(), Vec::new()));
        for (name, argv) in runs {
            progress(&format!(
                "signals x{n} round {}/{}: {name}",
                round + 1,
                ctx.plan.rounds
            ));
            match measure(&argv, ctx, n) {
                Ok(v) => {
                    p50.add(round, &name, percentile(&v, 50.0).unwrap_or(f64::NAN));
                    p99.add(round, &name, percentile(&v, 99.0).unwrap_or(f64::NAN));
                    max.add(round, &name, v.last().copied().unwrap_or(f64::NAN));
                }
                Err(e) => s.fail(format!("{name} round {}: {e}", round + 1)),
            }
        }
    }
    s.figures = vec![p50, p99, max];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}
