//! Orphan reaping: `ward-workload orphans N [--workers W]` under each init;
//! the init's own CPU per orphan, the storm's wall time, the most zombies seen,
//! the zombies left 10 ms after the storm, and how long zombies waited: every
//! zombie's wait, traced in storms of their own (`reap_wait.rs`), ward's own
//! bound from its stderr, and what the host saw for every init
//! (`zombie_wait.rs`).
//!
//! The init's CPU is its own `schedstat` read from the host while it is still
//! alive, before and after the storm: `getrusage(RUSAGE_CHILDREN)` of unshare
//! would also count the storm itself, which dwarfs the init's share.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::hop::{self, Tracer};
use crate::inits::Init;
use crate::plan::{Ctx, progress};
use crate::procfs::{Memory, Proc};
use crate::reap_wait;
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};
use crate::zombie_wait::{self, LATE, ProcessId, WardReaping, ZombieSightings};

/// How often the host counts the container's zombies during a storm. A count
/// reads the stat files of the container's own /proc (a handful of processes
/// at any moment), which costs well under 0.1 ms; sampling more often would
/// steal more CPU from the storm on a 2-core machine.
pub const ZOMBIE_SAMPLE_EVERY: Duration = Duration::from_millis(2);
/// How long after the storm's last fork the leftovers are counted.
pub const LEFTOVER_AFTER: Duration = Duration::from_millis(10);
/// The longest a storm may take.
const STORM_TIMEOUT: Duration = Duration::from_secs(300);
/// ward's options in a storm: its `reaping_summary` line is debug-level, and
/// JSON is the form a program reads. Debug adds no line while the storm runs
/// (nothing on the reaping path logs; the debug lines are at start and
/// exit, outside the CPU reading), so the cost measured is the default's.
pub const WARD_OPTIONS: &[&str] = &["--log-level", "debug", "--log-format", "json"];

/// A container whose command waits for `go`, runs one orphan storm, then waits
/// for `done` before it exits.
pub struct StormContainer {
    /// The container.
    pub c: Container,
    /// The init's host pid.
    pub pid: i32,
    /// Where ward's stderr goes (ward only).
    log: Option<StderrFile>,
}

/// A file in the temp dir for one container's stderr, removed when dropped.
struct StderrFile(PathBuf);

impl StderrFile {
    fn create() -> Result<(StderrFile, Stdio), String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "ward-bench-{}-{}.stderr",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok((StderrFile(path), Stdio::from(file)))
    }

    fn read(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.0)
            .map_err(|e| format!("cannot read {}: {e}", self.0.display()))
    }
}

impl Drop for StderrFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What one storm measured.
#[derive(Debug, Clone)]
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
    /// Its anonymous memory per mapping then (`/proc/PID/smaps`).
    pub anon_after: Option<Vec<crate::procfs::AnonMapping>>,
    /// The longest any zombie of PID 1 was seen waiting, from the host.
    pub longest_seen: Duration,
    /// Zombies of PID 1 seen waiting longer than [`LATE`].
    pub seen_late: u64,
    /// ward's own account (ward only).
    pub ward: Option<WardReaping>,
}

/// How [`StormContainer::start_in_storms`] runs: the orphans in `storms`
/// storms `pause` apart (one report line for all); a ward (any row
/// running ward's binary) gets `ward_extra` after its usual options; with
/// `group` (a `cgroup.procs` file), the init runs in that cgroup.
#[derive(Default)]
pub struct Storms<'a> {
    pub storms: u64,
    pub pause: Duration,
    pub ward_extra: &'a [&'a str],
    pub group: Option<&'a std::path::Path>,
    /// Where the workload writes its exit notes (`--record-exits`).
    pub record_exits: Option<&'a std::path::Path>,
}

impl StormContainer {
    /// Starts `init` with the storm script, run as [`Storms`] says, and
    /// waits until it is ready.
    pub fn start_in_storms(
        ctx: &Ctx,
        init: &Init,
        orphans: u64,
        workers: u64,
        opts: &Storms,
    ) -> Result<Self, String> {
        let storms = if opts.storms > 1 {
            format!(
                " --rounds {} --pause-ms {}",
                opts.storms,
                opts.pause.as_millis()
            )
        } else {
            String::new()
        };
        let record = match opts.record_exits {
            Some(path) => format!(" --record-exits '{}'", path.display()),
            None => String::new(),
        };
        let script = format!(
            "echo ready; read go; {{w}} orphans {orphans} --workers {workers}{storms}{record}; read done"
        );
        let ward = init.path == ctx.ward().path;
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(procs) = opts.group {
            // Joins the group, then execs the init: the init's pid is the
            // shell's.
            argv.extend(["sh", "-c", "echo 0 > \"$0\" && exec \"$@\""].map(OsString::from));
            argv.push(procs.as_os_str().to_owned());
        }
        if ward {
            let options: Vec<&str> = WARD_OPTIONS
                .iter()
                .chain(opts.ward_extra)
                .copied()
                .collect();
            argv.extend(init.argv(&options));
        } else {
            argv.extend(init.argv(&[]));
        }
        let (mut c, log) = if ward {
            let (log, stderr) = StderrFile::create()?;
            let c = Container::start_with_stderr(&argv, &ctx.shell(&script), stderr)?;
            (c, Some(log))
        } else {
            (Container::start(&argv, &ctx.shell(&script))?, None)
        };
        c.expect_line("ready", START_TIMEOUT)?;
        let pid = c.init_pid()?;
        Ok(StormContainer { c, pid, log })
    }

    /// Runs the storm and lets the container exit.
    pub fn storm(self, proc: &Proc) -> Result<StormResult, String> {
        self.storm_then(proc, || Ok(()))
    }

    /// As [`StormContainer::storm`], with `before_reading` run after the
    /// storm, just before the init's memory is read.
    pub fn storm_then(
        mut self,
        proc: &Proc,
        before_reading: impl FnOnce() -> Result<(), String>,
    ) -> Result<StormResult, String> {
        let cpu0 = proc.cpu_ns(self.pid).ok_or("init gone before the storm")?;
        let sampler = ZombieSampler::start(self.pid);
        self.c.send("go\n")?;
        let t0 = Instant::now();
        let line = self.c.read_line(STORM_TIMEOUT);
        let wall = t0.elapsed();
        let (max_zombies, sightings) = sampler.stop();
        let line = line?;
        let (orphans, fork_failures) =
            parse_report(&line).ok_or_else(|| format!("unexpected workload output {line:?}"))?;
        std::thread::sleep(LEFTOVER_AFTER);
        let zombies_left = Proc::seen_by(self.pid).container_zombies();
        let cpu1 = proc.cpu_ns(self.pid).ok_or("init gone after the storm")?;
        before_reading()?;
        let memory_after = proc.memory(self.pid);
        let anon_after = proc.anon_by_mapping(self.pid);
        self.c.send("done\n")?;
        self.c.wait(Duration::from_secs(10))?;
        let ward = match &self.log {
            Some(log) => Some(
                zombie_wait::find_reaping_summary(&log.read()?)
                    .ok_or("no reaping_summary line on ward's stderr")?,
            ),
            None => None,
        };
        Ok(StormResult {
            orphans,
            fork_failures,
            init_cpu: Duration::from_nanos(cpu1.saturating_sub(cpu0)),
            wall,
            max_zombies,
            zombies_left,
            memory_after,
            anon_after,
            longest_seen: sightings.longest,
            seen_late: sightings.late,
            ward,
        })
    }
}

/// A text column's cells: per init, one value per round.
type PerRound = BTreeMap<String, Vec<String>>;

/// Each init's values joined, for a text column.
fn per_round(v: PerRound) -> BTreeMap<String, String> {
    v.into_iter()
        .map(|(init, v)| (init, v.join(", ")))
        .collect()
}

/// The figure of the longest zombie wait, traced.
pub const TRACED: &str = "zombie wait traced";

/// One storm with the workload's exit notes in `records` and the init's
/// reaps traced: how long its zombies waited.
fn traced_storm(
    ctx: &Ctx,
    init: &Init,
    n: u64,
    workers: u64,
    tracer: &Tracer,
    records: &Path,
) -> Result<reap_wait::Waits, String> {
    let _ = std::fs::remove_file(records);
    let opts = Storms {
        record_exits: Some(records),
        ..Storms::default()
    };
    let c = StormContainer::start_in_storms(ctx, init, n, workers, &opts)?;
    tracer.start_filtered(&reap_wait::filter(c.pid))?;
    let r = c.storm(&ctx.proc);
    let trace = tracer.finish()?;
    r?;
    let notes =
        std::fs::read_to_string(records).map_err(|e| format!("{}: {e}", records.display()))?;
    let ready = reap_wait::parse_records(&notes)?;
    let reaps = reap_wait::parse_reaps(&trace);
    Ok(reap_wait::waits(&ready, &reaps, LATE.as_secs_f64() * 1e3))
}

/// `orphans=N fork_failures=F`.
pub fn parse_report(line: &str) -> Option<(u64, u64)> {
    let mut it = line.split_ascii_whitespace();
    let n = it.next()?.strip_prefix("orphans=")?.parse().ok()?;
    let f = it.next()?.strip_prefix("fork_failures=")?.parse().ok()?;
    Some((n, f))
}

/// Counts the zombies below the init every few ms on a thread of its own,
/// and follows each zombie of PID 1 from sample to sample.
struct ZombieSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, ZombieSightings)>,
}

impl ZombieSampler {
    fn start(init: i32) -> ZombieSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let proc = Proc::seen_by(init);
            let origin = Instant::now();
            let mut max = 0;
            let mut sightings = ZombieSightings::default();
            let mut waiting: Vec<ProcessId> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let started = origin.elapsed();
                let table = proc.table();
                let ended = origin.elapsed();
                let zombies = table.iter().filter(|p| p.pid != 1 && p.state == 'Z');
                max = max.max(zombies.clone().count());
                waiting.clear();
                waiting.extend(
                    zombies
                        .filter(|p| p.ppid == 1)
                        .map(|p| (p.pid, p.start_ticks)),
                );
                sightings.observe(started, ended, &waiting);
                std::thread::sleep(ZOMBIE_SAMPLE_EVERY);
            }
            (max, sightings)
        });
        ZombieSampler { stop, handle }
    }

    fn stop(self) -> (usize, ZombieSightings) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
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
    s.intro.push(format!(
        "How long a zombie waited for the init, three ways. *{TRACED}* is the longest \
         wait of any zombie of a storm, for every zombie and every init alike, from as many \
         storms again, run after those above with the workload's `--record-exits` (tracing \
         slows every system call a little, so the other figures come from untraced storms): \
         the workload notes when each orphan could first be reaped (the later of its own \
         exit and its parent's, `CLOCK_MONOTONIC`, just before each `_exit`), and a tracing \
         instance of ward-bench's own records the init's `wait4` returns \
         (`raw_syscalls:sys_exit`, clock `mono`, the pid reaped); each reap is paired with \
         its pid's notes since that pid's reap before (pids come back in a long storm). A wait \
         runs from the note to the reap, so it also counts the exit's own teardown (an upper \
         bound per zombie); a storm with a zombie left unpaired is left out, with a note. \
         *traced > {late} ms* counts such waits per storm. *Zombie wait seen* is the \
         longest any zombie whose parent was PID 1 (an orphan waiting for the init and \
         nothing else) stayed in those samples, from the end of the sample that first \
         saw it to the start of the last one that did: a lower bound, for every init \
         alike (a zombie reaped within one interval is never seen twice and counts as \
         0); *seen > {late} ms* counts such zombies per round. *ward's bound* is ward's own \
         longest reaping window, from its `reaping_summary` line at exit (ward runs with \
         `{opts}`, which logs nothing more while the storm runs): a zombie reaped at a \
         window's end exited after the pass before, so it waited at most that long \
         (plus the pass itself). It covers the zombies reaped in bursts, the storm's \
         bulk; one reaped on a SIGCHLD wake-up waits for ward's thread to get a core, \
         as with every init, which only the host's figure sees. *windows > {late} ms* is \
         ward's count of such windows out of all, per round.",
        late = LATE.as_millis(),
        opts = WARD_OPTIONS.join(" ")
    ));
    let mut cpu = Figure::new("CPU per orphan", Unit::Us, Compare::Ratio);
    let mut wall = Figure::new("wall", Unit::S, Compare::Ratio);
    let mut most = Figure::new("most zombies", Unit::Count, Compare::No);
    let mut left = Figure::new("zombies left", Unit::Count, Compare::No);
    let mut seen = Figure::new("zombie wait seen", Unit::Ms, Compare::No);
    let mut bound = Figure::new("ward's bound", Unit::Ms, Compare::No);
    let mut traced = Figure::new(TRACED, Unit::Ms, Compare::No);
    let mut traced_late: PerRound = BTreeMap::new();
    let mut seen_late: PerRound = BTreeMap::new();
    let mut late_windows: Vec<String> = Vec::new();
    let tracer = Tracer::open_for(Path::new(hop::TRACEFS), reap_wait::WAIT4_EVENT);
    if let Err(e) = &tracer {
        s.notes.push(format!("zombie waits not traced: {e}"));
    }
    let records = std::env::temp_dir().join(format!("ward-bench-exits-{}.txt", std::process::id()));
    let say_storm = |what: &str, round: usize, init: &Init| {
        progress(&format!(
            "orphans x{n} workers={workers} {what} {}/{}: {}",
            round + 1,
            ctx.plan.rounds,
            init.name
        ));
    };
    for round in 0..ctx.plan.rounds {
        for init in ctx.rotation(round) {
            say_storm("round", round, init);
            let r = StormContainer::start_in_storms(ctx, init, n, workers, &Storms::default())
                .and_then(|c| c.storm(&ctx.proc));
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
                    seen.add(round, &init.name, r.longest_seen.as_secs_f64() * 1e3);
                    seen_late
                        .entry(init.name.clone())
                        .or_default()
                        .push(r.seen_late.to_string());
                    if let Some(w) = r.ward {
                        bound.add(round, &init.name, w.longest_window.as_secs_f64() * 1e3);
                        late_windows.push(format!("{}/{}", w.late_windows, w.windows));
                    }
                }
                Err(e) => s.fail(format!("{} round {}: {e}", init.name, round + 1)),
            }
        }
    }
    // The traced storms come after, apart: tracing a system call slows
    // every process's calls a little, and the CPU and wall figures above
    // compare inits that make different numbers of them.
    if let Ok(tracer) = &tracer {
        for round in 0..ctx.plan.rounds {
            for init in ctx.rotation(round) {
                say_storm("traced round", round, init);
                let label = format!("{} traced round {}", init.name, round + 1);
                match traced_storm(ctx, init, n, workers, tracer, &records) {
                    Ok(w) if w.matched > 0 && w.unmatched == 0 => {
                        traced.add(round, &init.name, w.longest_ms);
                        traced_late
                            .entry(init.name.clone())
                            .or_default()
                            .push(w.late.to_string());
                    }
                    // Left out, not counted as no wait: the longest may be
                    // among the zombies the trace did not pair.
                    Ok(w) => s.notes.push(format!(
                        "{label}: {} of {} zombies not paired with a reap in the trace; left out",
                        w.unmatched,
                        w.unmatched + w.matched
                    )),
                    Err(e) => s.notes.push(format!("{label}: {e}")),
                }
            }
        }
    }
    let _ = std::fs::remove_file(&records);
    s.figures = vec![cpu, wall, most, left, traced, seen, bound];
    let late = LATE.as_millis();
    if !traced_late.is_empty() {
        s.text_columns
            .push((format!("traced > {late} ms"), per_round(traced_late)));
    }
    s.text_columns
        .push((format!("seen > {late} ms"), per_round(seen_late)));
    if !late_windows.is_empty() {
        s.text_columns.push((
            format!("windows > {late} ms"),
            BTreeMap::from([(ctx.ward().name.clone(), late_windows.join(", "))]),
        ));
    }
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
