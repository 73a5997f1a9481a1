//! Memory: each init's RSS and PSS (`/proc/PID/smaps_rollup`) while idle, and
//! again after it reaped many orphans (it must not grow).
//!
//! All inits are started at once and left idle together for the settle time
//! (so ward's watch has sampled at least once), then storm one at a time.

use crate::inits::Init;
use crate::memgroup::MemGroup;
use crate::orphans::{StormContainer, Storms};
use crate::plan::{Ctx, progress};
use crate::procfs::anon_grown;
use std::io::{Read as _, Write as _};
use std::time::Duration;

/// The row of ward with its Prometheus endpoint on (scraped once before
/// each reading, as a Prometheus would between them).
pub const WARD_METRICS: &str = "ward --metrics";
/// The row of ward in a memory cgroup with a limit, where it keeps its
/// code locked in memory.
pub const WARD_LIMITED: &str = "ward, memory limit";
/// That row's limit: far above what the storms take.
const LIMIT_BYTES: u64 = 256 << 20;
/// From that scrape to the reading: a Prometheus scrapes every 15-60 s,
/// so most readings of a scraped ward fall seconds after the last scrape.
const AFTER_SCRAPE: Duration = Duration::from_secs(2);
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// The memory benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let n = ctx.plan.memory_reaps;
    let storms = ctx.plan.memory_storms;
    let pause = ctx.plan.memory_settle;
    let rows = rows(ctx);
    let mut s = Section::new(
        &format!("Memory: idle, and after {n} reaps"),
        rows.iter().map(|(i, _)| i.name.clone()).collect(),
    );
    s.intro.push(format!(
        "Each init idles {} s as PID 1 of `sh -c '... read go; ward-workload orphans {n} --workers 2 \
         --rounds {storms} --pause-ms {}; read done'` (all inits at once), then reaps the orphans \
         (one init at a time) in {storms} storms with an idle pause as long as the first between \
         them: whatever an init keeps from one burst shows after the next. RSS and PSS are the \
         init's own `/proc/PID/smaps_rollup`. PSS splits the shared pages of dynamically \
         linked inits (libc) with every other process mapping them. *Anonymous* is the \
         anonymous part of the RSS (heap, stacks, written data), where a leak would show; \
         ward's code pages come and go (it drops them after each sample and reaping \
         brings some back), so its RSS after a storm mostly measures code. *{WARD_METRICS}* is \
         ward with its Prometheus endpoint on a loopback port, scraped once (`GET /metrics`) \
         {} s before each reading (a Prometheus scrapes every 15-60 s); *RSS just after a \
         scrape* is read the moment its answer is in. *{WARD_LIMITED}* is ward in a memory \
         cgroup limited to {} MiB, where it keeps its code locked in memory (its code pages \
         then stay in its RSS: a page read back in at the limit after an OOM kill would set \
         off another). One run per init.",
        ctx.plan.memory_settle.as_secs(),
        pause.as_millis(),
        AFTER_SCRAPE.as_secs(),
        LIMIT_BYTES >> 20
    ));
    let mut rss0 = Figure::new("idle RSS", Unit::KiB, Compare::Ratio);
    let mut pss0 = Figure::new("idle PSS", Unit::KiB, Compare::Ratio);
    let mut rss1 = Figure::new("RSS after reaps", Unit::KiB, Compare::Ratio);
    let mut pss1 = Figure::new("PSS after reaps", Unit::KiB, Compare::Ratio);
    let mut growth = Figure::new("RSS growth", Unit::KiB, Compare::No);
    let mut anon0 = Figure::new("idle anonymous", Unit::KiB, Compare::Ratio);
    let mut anon_growth = Figure::new("anonymous growth", Unit::KiB, Compare::No);
    let mut scraped = Figure::new("RSS just after a scrape", Unit::KiB, Compare::No);
    progress(&format!(
        "memory: starting {} idle inits for {} s",
        rows.len(),
        ctx.plan.memory_settle.as_secs()
    ));
    let group = match MemGroup::create(&format!("ward-bench-{}", std::process::id()), LIMIT_BYTES) {
        Ok(g) => Some(g),
        Err(e) => {
            s.notes
                .push(format!("{WARD_LIMITED}: no memory cgroup: {e}"));
            None
        }
    };
    let mut started = Vec::new();
    for (init, port) in rows {
        let addr = port.map(|p| format!("127.0.0.1:{p}"));
        let extra: Vec<&str> = addr
            .iter()
            .flat_map(|a| ["--metrics", a.as_str()])
            .collect();
        let procs = group.as_ref().map(MemGroup::procs);
        let opts = Storms {
            storms,
            pause,
            ward_extra: &extra,
            group: procs.as_deref().filter(|_| init.name == WARD_LIMITED),
            record_exits: None,
        };
        if opts.group.is_none() && init.name == WARD_LIMITED {
            continue;
        }
        match StormContainer::start_in_storms(ctx, &init, n, 2, &opts) {
            Ok(c) => started.push((init, port, c)),
            Err(e) => s.fail(format!("{}: start: {e}", init.name)),
        }
    }
    std::thread::sleep(ctx.plan.memory_settle);
    for (init, port, c) in started {
        if let Some(port) = port {
            match scrape(port) {
                Ok(()) => {
                    if let Some(m) = ctx.proc.memory(c.pid) {
                        scraped.add(0, &init.name, m.rss_kib as f64);
                    }
                    std::thread::sleep(AFTER_SCRAPE);
                }
                Err(e) => s.fail(format!(
                    "{}: scrape before the idle reading: {e}",
                    init.name
                )),
            }
        }
        let Some(idle) = ctx.proc.memory(c.pid) else {
            s.notes
                .push(format!("{}: cannot read smaps_rollup", init.name));
            continue;
        };
        rss0.add(0, &init.name, idle.rss_kib as f64);
        pss0.add(0, &init.name, idle.pss_kib as f64);
        anon0.add(0, &init.name, idle.anon_kib as f64);
        let anon_idle = ctx.proc.anon_by_mapping(c.pid);
        progress(&format!("memory: {} reaps {n} orphans", init.name));
        let before_reading = || match port.map(scrape) {
            Some(Err(e)) => Err(e),
            Some(Ok(())) => {
                std::thread::sleep(AFTER_SCRAPE);
                Ok(())
            }
            None => Ok(()),
        };
        match c.storm_then(&ctx.proc, before_reading) {
            Ok(r) => {
                if let Some(after) = r.memory_after {
                    rss1.add(0, &init.name, after.rss_kib as f64);
                    pss1.add(0, &init.name, after.pss_kib as f64);
                    growth.add(0, &init.name, after.rss_kib as f64 - idle.rss_kib as f64);
                    anon_growth.add(0, &init.name, after.anon_kib as f64 - idle.anon_kib as f64);
                }
                // Where it grew, so a page can be told from a leak.
                if let (Some(before), Some(after)) = (&anon_idle, &r.anon_after) {
                    let grown = anon_grown(before, after);
                    if !grown.is_empty() {
                        s.notes.push(format!(
                            "{}: anonymous memory grew in {}",
                            init.name,
                            grown.join(", ")
                        ));
                    }
                }
                if r.zombies_left > 0 || r.fork_failures > 0 {
                    s.notes.push(format!(
                        "{}: {} zombies left, {} fork failures",
                        init.name, r.zombies_left, r.fork_failures
                    ));
                }
            }
            Err(e) => s.fail(format!("{}: storm: {e}", init.name)),
        }
    }
    s.figures = vec![rss0, pss0, rss1, pss1, growth, anon0, anon_growth, scraped];
    // Every container is gone by now: the group can go.
    drop(group);
    s.compare_from = Some(ctx.ward().name.clone());
    s
}

/// The inits of the run, ward once more with its metrics endpoint on a
/// free loopback port (the port is the second field), and ward under a
/// memory limit.
fn rows(ctx: &Ctx) -> Vec<(Init, Option<u16>)> {
    let mut rows: Vec<(Init, Option<u16>)> = ctx.inits.iter().map(|i| (i.clone(), None)).collect();
    // A port the kernel just handed out and took back: free a moment later.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port());
    if let Ok(port) = port {
        let mut metrics = ctx.ward().clone();
        metrics.name = WARD_METRICS.into();
        rows.insert(1, (metrics, Some(port)));
    }
    let mut limited = ctx.ward().clone();
    limited.name = WARD_LIMITED.into();
    rows.insert(1, (limited, None));
    rows
}

/// One `GET /metrics` from ward's endpoint on `port`, read to the end.
fn scrape(port: u16) -> Result<(), String> {
    let timeout = Duration::from_secs(5);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    c.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut body = Vec::new();
    c.read_to_end(&mut body)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    if body.starts_with(b"HTTP/1.") && body.windows(5).any(|w| w == b"ward_") {
        Ok(())
    } else {
        Err(format!(
            "{addr} answered {} bytes without ward's metrics",
            body.len()
        ))
    }
}
