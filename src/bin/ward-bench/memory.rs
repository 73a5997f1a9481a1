//! Memory: each init's RSS and PSS (`/proc/PID/smaps_rollup`) while idle, and
//! again after it reaped many orphans (it must not grow).
//!
//! All inits are started at once and left idle together for the settle time
//! (so ward's watch has sampled at least once), then storm one at a time.

use crate::orphans::StormContainer;
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// The memory benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let n = ctx.plan.memory_reaps;
    let mut s = Section::new(
        &format!("Memory: idle, and after {n} reaps"),
        ctx.inits.iter().map(|i| i.name.clone()).collect(),
    );
    s.intro.push(format!(
        "Each init idles {} s as PID 1 of `sh -c '... read go; ward-workload orphans {n} --workers 2; read done'` \
         (all inits at once), then reaps the storm (one init at a time). RSS and PSS are the \
         init's own `/proc/PID/smaps_rollup`. PSS splits the shared pages of dynamically \
         linked inits (libc) with every other process mapping them. *Anonymous* is the \
         anonymous part of the RSS (heap, stacks, written data), where a leak would show; \
         ward's code pages come and go (it drops them after each sample and reaping \
         brings some back), so its RSS after a storm mostly measures code. One run per init.",
        ctx.plan.memory_settle.as_secs()
    ));
    let mut rss0 = Figure::new("idle RSS", Unit::KiB, Compare::Ratio);
    let mut pss0 = Figure::new("idle PSS", Unit::KiB, Compare::Ratio);
    let mut rss1 = Figure::new("RSS after reaps", Unit::KiB, Compare::Ratio);
    let mut pss1 = Figure::new("PSS after reaps", Unit::KiB, Compare::Ratio);
    let mut growth = Figure::new("RSS growth", Unit::KiB, Compare::No);
    let mut anon0 = Figure::new("idle anonymous", Unit::KiB, Compare::Ratio);
    let mut anon_growth = Figure::new("anonymous growth", Unit::KiB, Compare::No);
    progress(&format!(
        "memory: starting {} idle inits for {} s",
        ctx.inits.len(),
        ctx.plan.memory_settle.as_secs()
    ));
    let mut started = Vec::new();
    for init in &ctx.inits {
        match StormContainer::start(ctx, init, n, 2) {
            Ok(c) => started.push((init, c)),
            Err(e) => s.fail(format!("{}: start: {e}", init.name)),
        }
    }
    std::thread::sleep(ctx.plan.memory_settle);
    for (init, c) in started {
        let Some(idle) = ctx.proc.memory(c.pid) else {
            s.notes
                .push(format!("{}: cannot read smaps_rollup", init.name));
            continue;
        };
        rss0.add(0, &init.name, idle.rss_kib as f64);
        pss0.add(0, &init.name, idle.pss_kib as f64);
        anon0.add(0, &init.name, idle.anon_kib as f64);
        progress(&format!("memory: {} reaps {n} orphans", init.name));
        match c.storm(&ctx.proc) {
            Ok(r) => {
                if let Some(after) = r.memory_after {
                    rss1.add(0, &init.name, after.rss_kib as f64);
                    pss1.add(0, &init.name, after.pss_kib as f64);
                    growth.add(0, &init.name, after.rss_kib as f64 - idle.rss_kib as f64);
                    anon_growth.add(0, &init.name, after.anon_kib as f64 - idle.anon_kib as f64);
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
    s.figures = vec![rss0, pss0, rss1, pss1, growth, anon0, anon_growth];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}
