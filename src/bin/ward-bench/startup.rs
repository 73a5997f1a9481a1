//! Start-up overhead: `unshare ... INIT -- true` against `unshare ... true`,
//! both as PID 1 of a fresh PID namespace, interleaved run by run so drifting
//! load hits every init alike.

use std::ffi::OsString;

use crate::container::{time_run, time_run_with_stderr};
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// Row name of plain `true`.
pub const PLAIN: &str = "plain true";
/// Row name of ward with its stderr a regular file: its lines then go
/// through its writer thread, whose wait at exit this row times.
pub const WARD_TO_FILE: &str = "ward, stderr a file";

/// The start-up benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let runs = ctx.plan.startup_runs;
    let mut rows: Vec<String> = ctx.inits.iter().map(|i| i.name.clone()).collect();
    rows.push(WARD_TO_FILE.into());
    rows.push(PLAIN.into());
    let mut s = Section::new("Start-up overhead", rows);
    s.intro.push(format!(
        "Wall time of `unshare --pid --fork --mount-proc --kill-child INIT -- true`, {runs} runs \
         per init, interleaved (every init once per round, rotating order), against the same \
         `unshare` running `true` as PID 1 itself. *Overhead* is the init's time minus plain \
         `true` in the same round. Most of the wall time is `unshare` (namespace, /proc mount). \
         *CPU* is the user and system time of the whole run (`unshare`, the init and `true`, \
         from `wait4`'s rusage), and *page faults* its minor faults: the init's own are its row \
         minus plain `true`'s. CPU moves less with the shared machine's load than wall time does, \
         and shows work the other CPU hid from the wall time. Every init's stderr \
         is `/dev/null` but in *{WARD_TO_FILE}*, where ward's goes to a regular file (appended \
         to), as with `2>>file`: ward's lines (a warning, the exit report) then go through its \
         writer thread, and its exit waits for that thread to write them."
    ));
    let log = std::env::temp_dir().join(format!("ward-bench-startup-{}.log", std::process::id()));
    let dropped = crate::inits::read_in_alike(&ctx.inits);
    if dropped.is_empty() {
        s.intro.push(
            "Each init's own binary is written out and dropped from the page cache (as far as the \
             kernel drops it) before the first round, so that every one is read in again by its \
             first exec here (a dynamic init's libc stays cached): where a binary's cached pages \
             came from matters (on the benchmark VM, the same bytes freshly written, as by a build \
             or a copy, started `INIT -- true` up to 81 µs sooner than when read in by exec, in \
             4,000 shuffled rounds). That first round also reads them from disk; the medians \
             leave it out, the ranges do not."
                .into(),
        );
    } else {
        s.notes.push(format!(
            "Not dropped from the page cache, so read as cached before: {}.",
            dropped.join(", ")
        ));
    }
    let mut wall = Figure::new("wall", Unit::Ms, Compare::Difference);
    let mut overhead = Figure::new("overhead", Unit::Ms, Compare::No);
    let mut cpu = Figure::new("CPU", Unit::Ms, Compare::Difference);
    let mut faults = Figure::new("page faults", Unit::Count, Compare::Difference);
    progress(&format!("start-up: {runs} rounds"));
    for round in 0..runs {
        let mut order: Vec<(String, Vec<OsString>)> = ctx
            .rotation(round)
            .into_iter()
            .map(|i| {
                let mut argv = i.argv(&[]);
                argv.push("true".into());
                (i.name.clone(), argv)
            })
            .collect();
        let mut to_file = ctx.ward().argv(&[]);
        to_file.push("true".into());
        order.insert(round % (order.len() + 1), (WARD_TO_FILE.into(), to_file));
        order.insert(
            round % (order.len() + 1),
            (PLAIN.into(), vec!["true".into()]),
        );
        for (name, argv) in order {
            let timed = if name == WARD_TO_FILE {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .map_err(|e| format!("cannot open {}: {e}", log.display()))
                    .and_then(|f| time_run_with_stderr(&argv, f.into()))
            } else {
                time_run(&argv)
            };
            match timed {
                Ok(t) => {
                    wall.add(round, &name, t.wall.as_secs_f64() * 1e3);
                    cpu.add(round, &name, t.cpu.as_secs_f64() * 1e3);
                    faults.add(round, &name, t.minor_faults as f64);
                }
                // Past ten, count without filling the report.
                Err(e) if s.failures < 10 => s.fail(format!("{name} run {}: {e}", round + 1)),
                Err(_) => s.failures += 1,
            }
        }
    }
    let _ = std::fs::remove_file(&log);
    let names = ctx.inits.iter().map(|i| i.name.as_str());
    for name in names.chain([WARD_TO_FILE]) {
        for (round, (a, b)) in wall.round_pairs(name, PLAIN) {
            overhead.add(round, name, a - b);
        }
    }
    s.figures = vec![wall, overhead, cpu, faults];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}
