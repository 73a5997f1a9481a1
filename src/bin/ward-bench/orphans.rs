//! Orphan reaping: `ward-workload orphans N [--workers W]` under each init;
//! the init's own CPU per orphan, the storm's wall time, the most zombies seen
//! and the zombies left 10 ms after the storm.
//!
//! The init's CPU is its own `schedstat` read from the host while it is still
//! alive, before and after the storm: `getrusage(RUSAGE_CHILDREN)` of unshare
//! would also count the storm itself, which dwarfs the init's share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::inits::Init;
use crate::plan::{Ctx, progress};
use crate::procfs::{Memory, Proc};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// How often the host counts the container's zombies during a storm. A count
/// reads the stat files of the container's own /proc (a handful of processes
/// at any moment), which costs well under 0.1 ms; sampling more often would
/// steal more CPU from the storm on a 2-core machine.
pub const ZOMBIE_SAMPLE_EVERY: Duration = Duration::from_millis(2);
/// How long after the storm's last fork the leftovers are counted.
pub const LEFTOVER_AFTER: Duration = Duration::from_millis(10);
/// The longest a storm may take.
const STORM_TIMEOUT: Duration = Duration::from_secs(300);

/// A container whose command waits for `go`, runs one orphan storm, then waits
/// for `done` before it exits.
pub struct StormContainer {
    /// The container.
    pub c: Container,
    /// The init's host pid.
    pub pid: i32,
}

/// What one storm measured.
#[derive(Debug, Clone, Copy)]
pub struct StormResult {
    /// Orphans made (as the workload reports).
    pub orphans: u64,
    /// Fork failures (as the workload reports).
    pub fork_failures: u64,
    /// Init CPU during the storm.
    pub init_cpu: Duration,
    /// From `go` to the workload's report.
    pub wall: Duration,
    /// Most zombies seen in one sample.
    pub max_zombies: usize,
    /// Zombies 10 ms after the storm.
    pub zombies_left: usize,
    /// The init's memory after the storm.
    pub memory_after: Option<Memory>,
}

impl StormContainer {
    /// Starts `init` with the storm script and waits until it is ready.
    pub fn start(ctx: &Ctx, init: &Init, orphans: u64, workers: u64) -> Result<Self, String> {
        let script =
            format!("echo ready; read go; {{w}} orphans {orphans} --workers {workers}; read done");
        let mut c = Container::start(&init.argv(&[]), &ctx.shell(&script))?;
        c.expect_line("ready", START_TIMEOUT)?;
        let pid = c.init_pid()?;
        Ok(StormContainer { c, pid })
    }

    /// Runs the storm and lets the container exit.
    pub fn storm(mut self, proc: &Proc) -> Result<StormResult, String> {
        let cpu0 = proc.cpu_ns(self.pid).ok_or("init gone before the storm")?;
        let sampler = ZombieSampler::start(self.pid);
        self.c.send("go\n")?;
        let t0 = Instant::now();
        let line = self.c.read_line(STORM_TIMEOUT);
        let wall = t0.elapsed();
        let max_zombies = sampler.stop();
        let line = line?;
        let (orphans, fork_failures) =
            parse_report(&line).ok_or_else(|| format!("unexpected workload output {line:?}"))?;
        std::thread::sleep(LEFTOVER_AFTER);
        let zombies_left = Proc::seen_by(self.pid).container_zombies();
        let cpu1 = proc.cpu_ns(self.pid).ok_or("init gone after the storm")?;
        let memory_after = proc.memory(self.pid);
        self.c.send("done\n")?;
        self.c.wait(Duration::from_secs(10))?;
        Ok(StormResult {
            orphans,
            fork_failures,
            init_cpu: Duration::from_nanos(cpu1.saturating_sub(cpu0)),
            wall,
            max_zombies,
            zombies_left,
            memory_after,
        })
    }
}

/// `orphans=N fork_failures=F`.
pub fn parse_report(line: &str) -> Option<(u64, u64)> {
    let mut it = line.split_ascii_whitespace();
    let n = it.next()?.strip_prefix("orphans=")?.parse().ok()?;
    let f = it.next()?.strip_prefix("fork_failures=")?.parse().ok()?;
    Some((n, f))
}

/// Counts the zombies below the init every few ms on a thread of its own.
struct ZombieSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<usize>,
}

impl ZombieSampler {
    fn start(init: i32) -> ZombieSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let proc = Proc::seen_by(init);
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(proc.container_zombies());
                std::thread::sleep(ZOMBIE_SAMPLE_EVERY);
            }
            max
        });
        ZombieSampler { stop, handle }
    }

    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// The reaping benchmark with `workers` parallel storm workers.
pub fn run(ctx: &Ctx, workers: u64) -> Section {
    let n = ctx.plan.orphans;
    let title = format!(
        "Orphan reaping: {n} orphans, {workers} storm worker{}",
        if workers == 1 { "" } else { "s" }
    );
    let mut s = Section::new(&title, ctx.inits.iter().map(|i| i.name.clone()).collect());
    s.intro.push(format!(
        "`INIT -- sh -c 'echo ready; read go; ward-workload orphans {n} --workers {workers}; read done'`, \
         {} rounds, inits in rotating order. *CPU per orphan* is the init's own CPU time \
         (sum of `/proc/PID/task/*/schedstat`, read from the host while the init is alive) \
         from `go` until 10 ms after the storm, divided by the orphans. *Wall* is from `go` to \
         the workload's report. *Most zombies* is the largest count of zombies in the container \
         in samples taken every {} ms from the host (through the init's own /proc, \
         `/proc/PID/root/proc`); *left* is the count 10 ms after the storm.",
        ctx.plan.rounds,
        ZOMBIE_SAMPLE_EVERY.as_millis()
    ));
    let mut cpu = Figure::new("CPU per orphan", Unit::Us, Compare::Ratio);
    let mut wall = Figure::new("wall", Unit::S, Compare::Ratio);
    let mut most = Figure::new("most zombies", Unit::Count, Compare::No);
    let mut left = Figure::new("zombies left", Unit::Count, Compare::No);
    for round in 0..ctx.plan.rounds {
        for init in ctx.rotation(round) {
            progress(&format!(
                "orphans x{n} workers={workers} round {}/{}: {}",
                round + 1,
                ctx.plan.rounds,
                init.name
            ));
            let r = StormContainer::start(ctx, init, n, workers).and_then(|c| c.storm(&ctx.proc));
            match r {
                Ok(r) => {
                    if r.fork_failures > 0 {
                        s.notes.push(format!(
                            "{} round {}: {} fork failures",
                            init.name,
                            round + 1,
                            r.fork_failures
                        ));
                    }
                    let per = r.init_cpu.as_secs_f64() * 1e6 / r.orphans.max(1) as f64;
                    cpu.add(round, &init.name, per);
                    wall.add(round, &init.name, r.wall.as_secs_f64());
                    most.add(round, &init.name, r.max_zombies as f64);
                    left.add(round, &init.name, r.zombies_left as f64);
                }
                Err(e) => s.fail(format!("{} round {}: {e}", init.name, round + 1)),
            }
        }
    }
    s.figures = vec![cpu, wall, most, left];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_workload_report() {
        assert_eq!(
            parse_report("orphans=20000 fork_failures=0"),
            Some((20000, 0))
        );
        assert_eq!(parse_report("ready"), None);
    }
}
