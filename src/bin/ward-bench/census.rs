//! Signal latency while ward's process census runs: each init as PID 1 of
//! `sh -c 'ward-workload hold N --churn K & exec ward-workload signal-echo'`,
//! ward with `--watch-interval 200ms`, SIGUSR1 paced from the host for a fixed
//! time; ward's watch thread (`ward-watch`) is polled meanwhile to count the
//! censuses and tell which signals were sent while one ran. Also ward's
//! stripped size and idle VmRSS, the other two figures its watch must keep.
//! Each init's own hop (host kill to its own send) comes from the kernel's
//! trace (`hop.rs`) when tracefs is there.
//!
//! Measures and reports only; it owns no other benchmark's figures.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::hop::{self, Anchor, Hop, Tracer};
use crate::inits::elf_facts;
use crate::plan::{Ctx, progress};
use crate::procfs::parse_schedstat;
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit, percentile};

/// ward's watch interval here (the figure).
pub const INTERVAL: &str = "200ms";
/// How often the watch thread's CPU is read.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// Polls without CPU growth that end a burst (schedstat lags up to a tick).
const QUIET_POLLS: u32 = 3;
/// A burst of watch-thread CPU at least this long is a census: a sample
/// without one reads only cgroup files (about 0.2 ms), a census reads every
/// `/proc/PID/stat` (about 15 µs each, so 15 ms at 1,000 processes).
const CENSUS_MIN: Duration = Duration::from_millis(2);
/// Bursts closer than this are one: on a loaded machine a census is
/// preempted for longer than [`QUIET_POLLS`] polls, which would split it
/// (samples are 200 ms apart, so two samples never merge).
const MERGE_GAP: Duration = Duration::from_millis(50);
/// The longest one round trip may take before the run counts as failed.
const LOST_AFTER: Duration = Duration::from_secs(2);
/// Time to fork the held processes.
const HOLD_TIMEOUT: Duration = Duration::from_secs(120);

/// One burst of watch-thread CPU, with the wall-clock window it was seen in.
#[derive(Debug, Clone, Copy)]
struct Burst {
    from: Instant,
    to: Instant,
    cpu: Duration,
}

/// What one container's run gave.
struct Run {
    /// Sorted round trips, µs.
    rtt: Vec<f64>,
    /// Round trips of signals sent while a census ran (ward only), µs.
    during: Vec<f64>,
    /// Bursts long enough to be censuses (ward only).
    censuses: Vec<Burst>,
    /// The watch thread's CPU over the measurement (ward only).
    watch_cpu: Option<Duration>,
    /// The init's own hops and notes on the trace, when traced; an error
    /// when tracing broke during the run.
    hops: Option<Result<HopRun, String>>,
}

/// One run's hops.
struct HopRun {
    /// Sorted, µs.
    us: Vec<f64>,
    /// Hops of signals sent while a census ran (ward only), µs.
    during: Vec<f64>,
    /// Where the init ran its sends, and the round trips of each kind.
    woken: Option<crate::signals::Woken>,
    /// Gaps in the trace worth a note.
    notes: Vec<String>,
}

/// The hops of signals whose host kill fell inside a census window.
fn hops_during(hops: &[Hop], censuses: &[Burst], anchor: &Anchor) -> Vec<f64> {
    let windows: Vec<(u64, u64)> = censuses
        .iter()
        .map(|b| (anchor.mono_ns(b.from), anchor.mono_ns(b.to)))
        .collect();
    hops.iter()
        .filter(|h| {
            windows
                .iter()
                .any(|&(a, b)| h.sent_ns >= a && h.sent_ns <= b)
        })
        .map(|h| h.ns as f64 / 1e3)
        .collect()
}

/// The thread of `pid` whose `comm` is `name`.
fn thread_named(pid: i32, name: &str) -> Option<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim_end() == name).then_some(tid)
        })
}

/// Polls `/proc/PID/task/TID/schedstat` until `stop`; the bursts of CPU seen.
fn poll_bursts(path: String, stop: Arc<AtomicBool>) -> (Vec<Burst>, Duration) {
    let cpu = || {
        std::fs::read_to_string(&path)
            .ok()
            .as_deref()
            .and_then(parse_schedstat)
    };
    let Some(first) = cpu() else {
        return (Vec::new(), Duration::ZERO);
    };
    let (mut last, mut burst, mut quiet) = (first, 0u64, 0u32);
    let (mut from, mut to) = (Instant::now(), Instant::now());
    let mut prev_poll = Instant::now();
    let mut bursts = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL_EVERY);
        let Some(now_cpu) = cpu() else { break };
        let now = Instant::now();
        if now_cpu > last {
            if burst == 0 {
                from = prev_poll;
            }
            burst += now_cpu - last;
            to = now;
            quiet = 0;
        } else if burst > 0 {
            quiet += 1;
            if quiet >= QUIET_POLLS {
                bursts.push(Burst {
                    from,
                    to,
                    cpu: Duration::from_nanos(burst),
                });
                burst = 0;
            }
        }
        last = now_cpu;
        prev_poll = now;
    }
    if burst > 0 {
        bursts.push(Burst {
            from,
            to,
            cpu: Duration::from_nanos(burst),
        });
    }
    (bursts, Duration::from_nanos(last - first))
}

/// Joins bursts less than [`MERGE_GAP`] apart.
fn merge(bursts: Vec<Burst>) -> Vec<Burst> {
    let mut out: Vec<Burst> = Vec::with_capacity(bursts.len());
    for b in bursts {
        match out.last_mut() {
            Some(last) if b.from.saturating_duration_since(last.to) < MERGE_GAP => {
                last.to = b.to;
                last.cpu += b.cpu;
            }
            _ => out.push(b),
        }
    }
    out
}

/// One container: hold the processes, pace signals for the planned time.
fn measure(
    ctx: &Ctx,
    name: &str,
    init_argv: &[OsString],
    is_ward: bool,
    tracer: Option<&Tracer>,
) -> Result<Run, String> {
    let plan = &ctx.plan;
    let script = format!(
        "{{w}} hold {} --churn {} --every 1000 & exec {{w}} signal-echo",
        plan.census_procs,
        plan.census_procs / 8
    );
    let mut c = Container::start(init_argv, &ctx.shell(&script))?;
    // `ready` (signal-echo) and `held=...` (hold) come in either order.
    let deadline = Instant::now() + HOLD_TIMEOUT;
    let (mut ready, mut held) = (false, false);
    while !(ready && held) {
        let line = c.read_line(deadline.saturating_duration_since(Instant::now()))?;
        if line == "ready" {
            ready = true;
        } else if line.starts_with("held=") {
            if line != format!("held={} failed=0", plan.census_procs) {
                return Err(format!("workload said {line:?}"));
            }
            held = true;
        } else {
            return Err(format!("unexpected line {line:?}"));
        }
    }
    let pid = c.init_pid()?;
    let poller = if is_ward {
        let tid = thread_named(pid, "ward-watch").ok_or("ward has no ward-watch thread")?;
        let stop = Arc::new(AtomicBool::new(false));
        let path = format!("/proc/{pid}/task/{tid}/schedstat");
        let s = stop.clone();
        Some((stop, std::thread::spawn(move || poll_bursts(path, s))))
    } else {
        None
    };
    let traced = tracer.map(|t| t.start(pid));
    let anchor = Anchor::now();
    let mut sent = Vec::new();
    let t_end = Instant::now() + plan.census_duration;
    let mut i = 0usize;
    let result = loop {
        if Instant::now() >= t_end {
            break Ok(());
        }
        let t0 = Instant::now();
        // SAFETY: kill(2) on the container's init, alive (stdout still open).
        if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
            break Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        if let Err(e) = c.read_byte(LOST_AFTER) {
            break Err(format!("signal {i}: {e}"));
        }
        sent.push((t0, t0.elapsed().as_secs_f64() * 1e6));
        i += 1;
        std::thread::sleep(plan.census_pace);
    };
    let (bursts, watch_cpu) = match poller {
        Some((stop, h)) => {
            stop.store(true, Ordering::Relaxed);
            let (b, cpu) = h.join().map_err(|_| "poller thread panicked")?;
            (b, Some(cpu))
        }
        None => (Vec::new(), None),
    };
    result?;
    let hops = tracer
        .zip(traced)
        .map(|(t, started)| started.and_then(|()| hop::collect(t, pid, name)));
    drop(c);
    let censuses: Vec<Burst> = merge(bursts)
        .into_iter()
        .filter(|b| b.cpu >= CENSUS_MIN)
        .collect();
    let during: Vec<f64> = sent
        .iter()
        .filter(|(t, _)| censuses.iter().any(|b| *t >= b.from && *t <= b.to))
        .map(|&(_, us)| us)
        .collect();
    let mut rtt: Vec<f64> = sent.into_iter().map(|(_, us)| us).collect();
    let hops = hops.map(|r| {
        r.map(|(hops, mut notes)| {
            notes.extend(crate::signals::unpaired(name, hops.len(), rtt.len()));
            HopRun {
                us: hop::sorted_us(&hops),
                during: hops_during(&hops, &censuses, &anchor),
                woken: crate::signals::woken(&hops, &rtt),
                notes,
            }
        })
    });
    rtt.sort_by(f64::total_cmp);
    Ok(Run {
        rtt,
        during,
        censuses,
        watch_cpu,
        hops,
    })
}

/// ward's file size, stripped (a stripped copy is measured if it is not).
fn stripped_size(path: &std::path::Path) -> Result<(u64, bool), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let facts = elf_facts(&bytes).ok_or("not ELF64")?;
    if !facts.has_symtab {
        return Ok((bytes.len() as u64, true));
    }
    let tmp = std::env::temp_dir().join(format!("ward-bench-strip-{}", std::process::id()));
    let st = std::process::Command::new("strip")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .status()
        .map_err(|e| format!("strip: {e}"))?;
    let len = std::fs::metadata(&tmp).map(|m| m.len());
    let _ = std::fs::remove_file(&tmp);
    if !st.success() {
        return Err(format!("strip failed: {st}"));
    }
    Ok((len.map_err(|e| format!("stripped copy: {e}"))?, false))
}

/// `VmRSS:` of `/proc/PID/status`, KiB.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix("VmRSS:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// The benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let plan = &ctx.plan;
    let ward = ctx.ward().name.clone();
    let rows: Vec<String> = ctx.inits.iter().map(|i| i.name.clone()).collect();
    let mut s = Section::new(
        &format!(
            "Signal latency during a process census: {} processes",
            plan.census_procs
        ),
        rows,
    );
    let churn = plan.census_procs / 8;
    s.intro.push(format!(
        "`INIT -- sh -c 'ward-workload hold {n} --churn {churn} --every 1000 & exec ward-workload \
         signal-echo'`: {n} sleeping processes in the namespace (in a session of their own), \
         {churn} of them killed and reaped one second and forked again the next, so the task \
         count keeps moving by more than 10 % and ward's census stays due (it still runs at \
         most once per 100 × its last cost). ward runs with `--watch-interval {INTERVAL}`; the \
         peers have no census and are here for context. For {} s per init, one SIGUSR1 every \
         {} ms, each after the previous echo arrived; round trip timed as in *Signal \
         forwarding latency*. ward's watch thread (`ward-watch`) is read every {} ms from the \
         host: bursts of its CPU less than {} ms apart are joined (a census preempted on this \
         busy machine comes in pieces), and a joined burst of at least {} ms is a census (a \
         sample without one costs about 0.2 ms); *signals during a census* were sent inside such a burst's window \
         (as seen from the host, give or take one poll). {} round(s).",
        plan.census_duration.as_secs(),
        plan.census_pace.as_millis(),
        POLL_EVERY.as_millis(),
        MERGE_GAP.as_millis(),
        CENSUS_MIN.as_millis(),
        plan.census_rounds,
        n = plan.census_procs,
    ));
    let tracer = Tracer::open(std::path::Path::new(hop::TRACEFS));
    s.intro.push(match &tracer {
        Ok(_) => format!("{} {}", hop::INTRO, crate::signals::WOKEN_INTRO),
        Err(why) => format!("The init's own hop is not measured (–): {why}."),
    });
    let tracer = tracer.ok();
    let mut p50 = Figure::new("round trip p50", Unit::Us, Compare::Ratio);
    let mut p99 = Figure::new("round trip p99", Unit::Us, Compare::Ratio);
    let mut max = Figure::new("round trip max", Unit::Ms, Compare::No);
    let mut hop_p50 = Figure::new("hop p50", Unit::Us, Compare::Ratio);
    let mut hop_p99 = Figure::new("hop p99", Unit::Us, Compare::Ratio);
    let mut hop_max = Figure::new("hop max", Unit::Ms, Compare::No);
    let mut signals = Figure::new("signals", Unit::Count, Compare::No);
    let mut censuses = Figure::new("censuses", Unit::Count, Compare::No);
    let mut census_ms = Figure::new("largest census CPU", Unit::Ms, Compare::No);
    let mut watch_cpu = Figure::new("watch thread CPU", Unit::Ms, Compare::No);
    let mut during = Figure::new("signals during a census", Unit::Count, Compare::No);
    let mut during_max = Figure::new("round trip max during a census", Unit::Ms, Compare::No);
    let mut hop_during_max = Figure::new("hop max during a census", Unit::Ms, Compare::No);
    let mut same_cpu = Figure::new("woken on the sender's CPU", Unit::Pct, Compare::No);
    let mut there = Figure::new("round trip p50 there", Unit::Us, Compare::No);
    let mut elsewhere = Figure::new("round trip p50 elsewhere", Unit::Us, Compare::No);
    // ward idle beside the measurement, for its VmRSS with watching on.
    let idle = Container::start(
        &ctx.ward().argv(&[]),
        &ctx.shell("echo ready; exec {w} sleep 100000"),
    )
    .and_then(|mut c| {
        c.expect_line("ready", START_TIMEOUT)?;
        Ok((c.init_pid()?, Instant::now(), c))
    });
    for round in 0..plan.census_rounds {
        for init in ctx.rotation(round) {
            let is_ward = init.name == ward;
            let opts: &[&str] = if is_ward {
                &["--watch-interval", INTERVAL]
            } else {
                &[]
            };
            progress(&format!(
                "census signals round {}/{}: {} ({} processes, {} s)",
                round + 1,
                plan.census_rounds,
                init.name,
                plan.census_procs,
                plan.census_duration.as_secs()
            ));
            match measure(ctx, &init.name, &init.argv(opts), is_ward, tracer.as_ref()) {
                Ok(r) => {
                    let name = &init.name;
                    match &r.hops {
                        Some(Ok(h)) => {
                            let at = |p| percentile(&h.us, p).unwrap_or(f64::NAN);
                            hop_p50.add(round, name, at(50.0));
                            hop_p99.add(round, name, at(99.0));
                            hop_max.add(round, name, at(100.0) / 1e3);
                            if is_ward && let Some(m) = h.during.iter().copied().reduce(f64::max) {
                                hop_during_max.add(round, name, m / 1e3);
                            }
                            if let Some(w) = &h.woken {
                                same_cpu.add(round, name, w.same_cpu_pct);
                                there.add(round, name, w.there_p50.unwrap_or(f64::NAN));
                                elsewhere.add(round, name, w.elsewhere_p50.unwrap_or(f64::NAN));
                            }
                            s.notes.extend(h.notes.iter().cloned());
                        }
                        Some(Err(e)) => s.fail(format!("{name} round {}: hop: {e}", round + 1)),
                        None => {}
                    }
                    p50.add(round, name, percentile(&r.rtt, 50.0).unwrap_or(f64::NAN));
                    p99.add(round, name, percentile(&r.rtt, 99.0).unwrap_or(f64::NAN));
                    max.add(round, name, r.rtt.last().map_or(f64::NAN, |v| v / 1e3));
                    signals.add(round, name, r.rtt.len() as f64);
                    if let Some(cpu) = r.watch_cpu {
                        censuses.add(round, name, r.censuses.len() as f64);
                        if let Some(b) = r.censuses.iter().map(|b| b.cpu).max() {
                            census_ms.add(round, name, b.as_secs_f64() * 1e3);
                        }
                        watch_cpu.add(round, name, cpu.as_secs_f64() * 1e3);
                        during.add(round, name, r.during.len() as f64);
                        if let Some(m) = r.during.iter().copied().reduce(f64::max) {
                            during_max.add(round, name, m / 1e3);
                        }
                        if r.censuses.is_empty() {
                            s.notes.push(format!(
                                "{name} round {}: no census seen; the latency above is \
                                 not under a census",
                                round + 1
                            ));
                        }
                    }
                }
                Err(e) => s.fail(format!("{} round {}: {e}", init.name, round + 1)),
            }
        }
    }
    s.figures = vec![
        hop_p50,
        hop_p99,
        hop_max,
        p50,
        p99,
        max,
        signals,
        censuses,
        census_ms,
        watch_cpu,
        during,
        hop_during_max,
        during_max,
        same_cpu,
        there,
        elsewhere,
    ];
    s.compare_from = Some(ward.clone());
    match stripped_size(&ctx.ward().path) {
        Ok((len, as_built)) => s.notes.push(format!(
            "ward binary, stripped: {:.0} KiB ({} bytes; {}; bar ≤ 1536 KiB)",
            len as f64 / 1024.0,
            len,
            if as_built {
                "as built: its release link strips it (build.rs)"
            } else {
                "a `strip`ped copy of the release build"
            }
        )),
        Err(e) => s.fail(format!("ward binary size: {e}")),
    }
    match idle {
        Ok((pid, started, c)) => {
            let left = plan.memory_settle.saturating_sub(started.elapsed());
            std::thread::sleep(left);
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
            match status.as_deref().and_then(parse_vmrss) {
                Some(kib) => s.notes.push(format!(
                    "ward idle VmRSS as PID 1 with watching on (default interval, `INIT -- sh -c \
                     'exec ward-workload sleep ...'`, read after {:.0} s): {kib} KiB (bar ≤ 1024 KiB)",
                    started.elapsed().as_secs_f64()
                )),
                None => s.fail(format!("ward idle VmRSS: cannot read /proc/{pid}/status")),
            }
            drop(c);
        }
        Err(e) => s.fail(format!("ward idle VmRSS: start: {e}")),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_one_census_are_joined() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let b = |from: u64, to: u64, cpu: u64| Burst {
            from: t + ms(from),
            to: t + ms(to),
            cpu: ms(cpu),
        };
        let m = merge(vec![
            b(0, 10, 8),
            b(30, 60, 20),
            b(200, 201, 1),
            b(400, 470, 60),
        ]);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].to, m[0].cpu), (t + ms(60), ms(28)));
        assert_eq!(m[1].cpu, ms(1));
        assert_eq!(m[2].from, t + ms(400));
    }

    #[test]
    fn vmrss_from_status() {
        let text = "Name:\tward\nVmPeak:\t    2000 kB\nVmRSS:\t    1232 kB\nRssAnon:\t 300 kB\n";
        assert_eq!(parse_vmrss(text), Some(1232));
        assert_eq!(parse_vmrss("Name:\tward\n"), None);
    }
}
