//! The watch's cost (ward only): CPU per watch sample with N processes in the
//! container, and ward's total CPU while idle at the default interval.
//!
//! Per sample: ward as PID 1 of `ward-workload forks N --hold 60` with
//! `--watch-interval 100ms`, ward's CPU over a number of intervals, minus the
//! same with `--no-watch`, divided by the intervals. Idle: ward with its
//! defaults and with `--no-watch` in front of a sleeping child, for the whole
//! run of the harness (at least the planned idle time); the machine is busy
//! with the other benchmarks meanwhile, which costs an idle ward nothing but
//! may stretch its wake-ups.

use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// How long forked sleepers are given to settle before measuring.
const SETTLE: Duration = Duration::from_millis(300);

/// ward's CPU over `ctx.plan.watch_samples` intervals with `n` processes.
fn cpu_over_intervals(ctx: &Ctx, n: u64, watch: bool) -> Result<(Duration, Duration), String> {
    let interval = format!("{}ms", ctx.plan.watch_interval.as_millis());
    let opts: Vec<&str> = if watch {
        vec!["--watch-interval", &interval]
    } else {
        vec!["--no-watch"]
    };
    // Sleepers outlive the measurement; dropping the container kills them all.
    let n_arg = n.to_string();
    let cmd = ctx.workload(&["forks", &n_arg, "--hold", "60"]);
    let mut c = Container::start(&ctx.ward().argv(&opts), &cmd)?;
    let line = c.read_line(Duration::from_secs(60))?;
    if line != format!("forked={n} failed=0") {
        return Err(format!("workload said {line:?}"));
    }
    let pid = c.init_pid()?;
    std::thread::sleep(SETTLE);
    let cpu0 = ctx.proc.cpu_ns(pid).ok_or("ward gone")?;
    let t0 = Instant::now();
    std::thread::sleep(ctx.plan.watch_interval * ctx.plan.watch_samples);
    let cpu1 = ctx.proc.cpu_ns(pid).ok_or("ward gone")?;
    Ok((Duration::from_nanos(cpu1 - cpu0), t0.elapsed()))
}

/// CPU per watch sample at each size.
pub fn per_sample(ctx: &Ctx) -> Section {
    let plan = &ctx.plan;
    let rows: Vec<String> = plan
        .watch_sizes
        .iter()
        .map(|n| format!("{n} processes"))
        .collect();
    let mut s = Section::new("Watch cost per sample (ward only)", rows);
    s.intro.push(format!(
        "ward `--watch-interval {} ms` as PID 1 of `ward-workload forks N --hold 60`; ward's CPU \
         over {} intervals, minus the same run with `--no-watch`, divided by the intervals \
         (elapsed time / interval). {} round(s) per size; the two runs of a round are \
         back to back.",
        plan.watch_interval.as_millis(),
        plan.watch_samples,
        plan.watch_rounds
    ));
    let mut per = Figure::new("CPU per sample", Unit::Ms, Compare::No);
    let mut with = Figure::new("ward CPU, watching", Unit::Ms, Compare::No);
    let mut without = Figure::new("ward CPU, --no-watch", Unit::Ms, Compare::No);
    for round in 0..plan.watch_rounds {
        for (&n, row) in plan.watch_sizes.iter().zip(&s.rows.clone()) {
            progress(&format!(
                "watch cost round {}/{}: {n} processes",
                round + 1,
                plan.watch_rounds
            ));
            let r = cpu_over_intervals(ctx, n, true)
                .and_then(|w| Ok((w, cpu_over_intervals(ctx, n, false)?)));
            match r {
                Ok(((cpu_w, elapsed), (cpu_n, elapsed_n))) => {
                    // Scale the baseline to the watched run's duration.
                    let base =
                        cpu_n.as_secs_f64() * elapsed.as_secs_f64() / elapsed_n.as_secs_f64();
                    let samples = elapsed.as_secs_f64() / plan.watch_interval.as_secs_f64();
                    per.add(round, row, (cpu_w.as_secs_f64() - base) * 1e3 / samples);
                    with.add(round, row, cpu_w.as_secs_f64() * 1e3);
                    without.add(round, row, cpu_n.as_secs_f64() * 1e3);
                }
                Err(e) => s.fail(format!("{row} round {}: {e}", round + 1)),
            }
        }
    }
    s.figures = vec![per, with, without];
    s
}

/// Two idle wards (default watch, and `--no-watch`) running in the background.
pub struct IdleWatch {
    runs: Vec<(String, Container, i32, u64)>,
    started: Instant,
    failures: Vec<String>,
}

/// Row names.
const IDLE_DEFAULT: &str = "ward (default interval)";
const IDLE_OFF: &str = "ward --no-watch";

impl IdleWatch {
    /// Starts both and notes their CPU so far.
    pub fn start(ctx: &Ctx) -> IdleWatch {
        let mut runs = Vec::new();
        let mut failures = Vec::new();
        for (name, opts) in [(IDLE_DEFAULT, &[][..]), (IDLE_OFF, &["--no-watch"][..])] {
            let cmd = ctx.shell("echo ready; exec {w} sleep 100000");
            let r = Container::start(&ctx.ward().argv(opts), &cmd).and_then(|mut c| {
                c.expect_line("ready", START_TIMEOUT)?;
                let pid = c.init_pid()?;
                let cpu = ctx.proc.cpu_ns(pid).ok_or("ward gone")?;
                Ok((c, pid, cpu))
            });
            match r {
                Ok((c, pid, cpu)) => runs.push((name.to_string(), c, pid, cpu)),
                Err(e) => failures.push(format!("{name}: start: {e}")),
            }
        }
        IdleWatch {
            runs,
            started: Instant::now(),
            failures,
        }
    }

    /// Waits until at least `ctx.plan.idle` has passed, then reports.
    pub fn finish(self, ctx: &Ctx) -> Section {
        let left = ctx.plan.idle.saturating_sub(self.started.elapsed());
        if !left.is_zero() {
            progress(&format!("idle watch: {} s left", left.as_secs()));
            std::thread::sleep(left);
        }
        let mut s = Section::new(
            "Idle watching (ward only)",
            vec![IDLE_DEFAULT.into(), IDLE_OFF.into()],
        );
        for f in self.failures {
            s.fail(f);
        }
        let elapsed = self.started.elapsed();
        s.intro.push(format!(
            "ward with its default watch interval, and with `--no-watch`, as PID 1 of a sleeping \
             child, started before the other benchmarks and read after them: {:.0} s \
             (at least {} s planned). CPU is ward's own schedstat time.",
            elapsed.as_secs_f64(),
            ctx.plan.idle.as_secs()
        ));
        let mut total = Figure::new("ward CPU", Unit::Ms, Compare::No);
        let mut share = Figure::new("share of one core", Unit::Pct, Compare::No);
        for (name, c, pid, cpu0) in self.runs {
            match ctx.proc.cpu_ns(pid) {
                Some(cpu1) => {
                    let cpu = Duration::from_nanos(cpu1 - cpu0).as_secs_f64();
                    total.add(0, &name, cpu * 1e3);
                    share.add(0, &name, cpu / elapsed.as_secs_f64() * 100.0);
                }
                None => s.fail(format!("{name}: ward exited early")),
            }
            drop(c);
        }
        s.figures = vec![total, share];
        s
    }
}
