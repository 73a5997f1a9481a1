//! The watch's cost (ward only): CPU per watch sample with N processes in the
//! container, and ward's total CPU while idle at the default interval.
//!
//! Per sample: ward as PID 1 of `ward-workload forks N --hold 120` with
//! `--watch-interval 100ms`, ward's CPU over a number of intervals, minus the
//! same with `--no-watch`, divided by the intervals; ward's CPU is also read
//! every few ms to see each sample's own cost (they are not all alike). Idle: ward with its
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
/// How often ward's CPU is read while measuring, to split it into samples.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// Polls without CPU growth that end one burst of work (schedstat of a
/// running task lags up to a scheduler tick, so one quiet poll is not enough).
const QUIET_POLLS: u32 = 3;

/// ward's CPU over a measuring window, and the bursts it came in.
struct WindowCpu {
    total: Duration,
    elapsed: Duration,
    /// CPU of each burst of work: with nothing else to do, one watch sample each.
    bursts: Vec<Duration>,
}

/// Reads `pid`'s CPU every [`POLL_EVERY`] for `window`.
fn watch_cpu(ctx: &Ctx, pid: i32, window: Duration) -> Result<WindowCpu, String> {
    let cpu = || ctx.proc.cpu_ns(pid).ok_or("ward gone");
    let first = cpu()?;
    let t0 = Instant::now();
    let (mut last, mut burst, mut quiet) = (first, 0u64, 0u32);
    let mut bursts = Vec::new();
    while t0.elapsed() < window {
        std::thread::sleep(POLL_EVERY);
        let now = cpu()?;
        if now > last {
            burst += now - last;
            quiet = 0;
        } else if burst > 0 {
            quiet += 1;
            if quiet >= QUIET_POLLS {
                bursts.push(Duration::from_nanos(burst));
                burst = 0;
            }
        }
        last = now;
    }
    if burst > 0 {
        bursts.push(Duration::from_nanos(burst));
    }
    Ok(WindowCpu {
        total: Duration::from_nanos(last - first),
        elapsed: t0.elapsed(),
        bursts,
    })
}

/// ward's CPU over `ctx.plan.watch_samples` intervals with `n` processes.
fn cpu_over_intervals(ctx: &Ctx, n: u64, watch: bool) -> Result<WindowCpu, String> {
    let interval = format!("{}ms", ctx.plan.watch_interval.as_millis());
    let opts: Vec<&str> = if watch {
        vec!["--watch-interval", &interval]
    } else {
        vec!["--no-watch"]
    };
    // Sleepers outlive the measurement; dropping the container kills them all.
    let n_arg = n.to_string();
    let cmd = ctx.workload(&["forks", &n_arg, "--hold", "120"]);
    let mut c = Container::start(&ctx.ward().argv(&opts), &cmd)?;
    let line = c.read_line(Duration::from_secs(60))?;
    if line != format!("forked={n} failed=0") {
        return Err(format!("workload said {line:?}"));
    }
    let pid = c.init_pid()?;
    std::thread::sleep(SETTLE);
    watch_cpu(ctx, pid, ctx.plan.watch_interval * ctx.plan.watch_samples)
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
        "ward `--watch-interval {} ms` as PID 1 of `ward-workload forks N --hold 120` (N sleeping \
         children); ward's CPU over {} intervals, read from the host every {} ms. *Mean per \
         sample* is that CPU minus the same run with `--no-watch`, divided by the intervals \
         (elapsed / interval). With nothing else to do, ward's CPU comes in one burst per \
         sample: *typical* is the median burst, *largest* the biggest one (a sample that took \
         a full process census: ward reads every `/proc/PID/stat`, but at most about once per \
         100 × the last census's cost, and otherwise only its cgroup files). {} round(s) per \
         size, the two runs of a round back to back.",
        plan.watch_interval.as_millis(),
        plan.watch_samples,
        POLL_EVERY.as_millis(),
        plan.watch_rounds
    ));
    let mut per = Figure::new("mean per sample", Unit::Ms, Compare::No);
    let mut typical = Figure::new("typical sample", Unit::Ms, Compare::No);
    let mut largest = Figure::new("largest sample", Unit::Ms, Compare::No);
    let mut count = Figure::new("bursts seen", Unit::Count, Compare::No);
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
                Ok((w, off)) => {
                    // Scale the baseline to the watched run's duration.
                    let base = off.total.as_secs_f64() * w.elapsed.as_secs_f64()
                        / off.elapsed.as_secs_f64();
                    let samples = w.elapsed.as_secs_f64() / plan.watch_interval.as_secs_f64();
                    per.add(round, row, (w.total.as_secs_f64() - base) * 1e3 / samples);
                    let ms: Vec<f64> = w.bursts.iter().map(|b| b.as_secs_f64() * 1e3).collect();
                    if let Some(m) = crate::stats::Summary::of(&ms) {
                        typical.add(round, row, m.median);
                        largest.add(round, row, m.max);
                    }
                    count.add(round, row, ms.len() as f64);
                    without.add(round, row, off.total.as_secs_f64() * 1e3);
                }
                Err(e) => s.fail(format!("{row} round {}: {e}", round + 1)),
            }
        }
    }
    s.figures = vec![per, typical, largest, count, without];
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
