//! Signal forwarding latency: from `kill(init, SIGUSR1)` on the host to the
//! byte `ward-workload signal-echo` writes as soon as sigtimedwait hands it the
//! forwarded signal. Both ends are timed by the harness on CLOCK_MONOTONIC
//! (`Instant`), so this is a round trip: kill, forward, wake-up, write, read.
//!
//! A reference row runs `signal-echo` itself as PID 1 (no init), which gives
//! the round trip's floor on this machine. Each init's own hop (host kill to
//! its own send) comes from the kernel's trace (`hop.rs`) when tracefs is
//! there; the reference row has no hop.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use crate::container::{Container, START_TIMEOUT};
use crate::hop::{self, Hop, Tracer};
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit, percentile};

/// Row name of the no-init reference.
pub const DIRECT: &str = "no init (reference)";
/// Signals sent before measuring (page faults, first wake-ups).
const WARM_UP: usize = 20;
/// How long each container runs before its first signal: past every init's
/// start-up work (ward's first looks, its serving thread at 50 ms and its
/// trim at 1 s), as in a container that has been up a while. Measured from
/// the echo's `ready`, ward's round trips were 3-9 µs slower than the
/// peers' in the first ~60 ms and level after it (docs/benchmarks-analysis.md).
const SETTLE: Duration = Duration::from_millis(1200);
/// The longest one round trip may take before the run counts as failed.
const LOST_AFTER: Duration = Duration::from_secs(2);

/// What one container gave.
struct Run {
    /// Sorted round trips, µs.
    rtt: Vec<f64>,
    /// Sorted hops, µs, where the kernel woke the init, and notes on the
    /// trace; when traced.
    hops: Option<HopsOrWhyNot>,
}

/// Sorted hops in µs, where the init was woken, and notes on the trace; or
/// why tracing broke.
type HopsOrWhyNot = Result<(Vec<f64>, Option<Woken>, Vec<String>), String>;

/// Where the init ran its send for each signal (where the kernel woke it,
/// unless it moved in the microseconds before sending), and the round
/// trips of each kind. On a VM whose idle vCPUs halt, an init woken on the CPU that
/// ran the host's kill(2) saves one vCPU wake-up, and the round trips
/// gather in two modes; the p50 falls near the gap between them.
#[derive(Debug, PartialEq)]
pub struct Woken {
    /// Share of signals whose send ran on the sender's CPU, %.
    pub same_cpu_pct: f64,
    /// Round trip p50 of those signals, µs; `None` when the round trips
    /// and the hops do not pair one to one, or there were none.
    pub there_p50: Option<f64>,
    /// Round trip p50 of the others, µs; as `there_p50`.
    pub elsewhere_p50: Option<f64>,
}

/// What the placement columns are, for the intro.
pub const WOKEN_INTRO: &str = "*woken on the sender's CPU*: the share of signals the init sent on \
     from the CPU the host's kill(2) ran on (the CPU of each `signal_generate` event): the \
     kernel woke the init there rather than on another, idle CPU (or moved it there before it \
     sent); which one it picks is the kernel's and the host's choice, not the init's. *round \
     trip p50 there* and *elsewhere*: the round trip p50 of each kind of signal (left out of a \
     round, with a note, when the trace lost a hop and the two could not be paired). On a VM \
     whose idle vCPUs halt, waking another vCPU can cost tens of microseconds, so round trips \
     gather in two modes and the p50 moves with the share.";

/// The start of the microsecond `ns` falls in. The trace prints whole µs,
/// so a kill in the same µs as the clock read before it reads as earlier
/// than that read; counted from the start of the µs it is not lost (the
/// last warm-up kill came a round trip, tens of µs, before).
fn start_of_us(ns: u64) -> u64 {
    ns / 1000 * 1000
}

/// The note for a run whose hops and round trips do not pair one to one
/// ([`woken`] then leaves its round trips unsplit).
pub fn unpaired(name: &str, hops: usize, rtts: usize) -> Option<String> {
    (hops != rtts).then(|| {
        format!(
            "{name}: {hops} hop(s) traced for {rtts} round trip(s): that run's round trips are \
             not split by where the init was woken."
        )
    })
}

/// [`Woken`] from the counted hops and round trips, both in sending order.
/// They pair by position only when there are as many of each (a signal
/// whose hop the trace lost would shift every pair after it).
pub fn woken(hops: &[Hop], rtt_in_order: &[f64]) -> Option<Woken> {
    if hops.is_empty() {
        return None;
    }
    let same = hops.iter().filter(|h| h.same_cpu).count();
    let (mut there, mut elsewhere) = (Vec::new(), Vec::new());
    if hops.len() == rtt_in_order.len() {
        for (h, &r) in hops.iter().zip(rtt_in_order) {
            if h.same_cpu {
                there.push(r);
            } else {
                elsewhere.push(r);
            }
        }
    }
    let p50 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(&v, 50.0)
    };
    Some(Woken {
        same_cpu_pct: same as f64 * 100.0 / hops.len() as f64,
        there_p50: p50(there),
        elsewhere_p50: p50(elsewhere),
    })
}

/// One container: `n` round trips after the warm-up, and the hops of the
/// same signals when `tracer` is given.
fn measure(
    name: &str,
    init_argv: &[OsString],
    ctx: &Ctx,
    n: usize,
    tracer: Option<&Tracer>,
) -> Result<Run, String> {
    let mut c = Container::start(init_argv, &ctx.workload(&["signal-echo"]))?;
    c.expect_line("ready", START_TIMEOUT)?;
    let pid = c.init_pid()?;
    std::thread::sleep(SETTLE);
    let traced = tracer.map(|t| t.start(pid));
    let mut counted_from = 0;
    let mut rtt = Vec::with_capacity(n);
    for i in 0..WARM_UP + n {
        if i == WARM_UP {
            // The warm-up's hops are left out as its round trips are.
            counted_from = start_of_us(hop::mono_now_ns());
        }
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
    let hops = tracer.zip(traced).map(|(t, started)| {
        let (hops, mut notes) = started.and_then(|()| hop::collect(t, pid, name))?;
        let counted: Vec<_> = hops
            .into_iter()
            .filter(|h| h.sent_ns >= counted_from)
            .collect();
        notes.extend(unpaired(name, counted.len(), rtt.len()));
        Ok((hop::sorted_us(&counted), woken(&counted, &rtt), notes))
    });
    c.signal_init(libc::SIGTERM)?;
    c.wait(Duration::from_secs(10))?;
    rtt.sort_by(f64::total_cmp);
    Ok(Run { rtt, hops })
}

/// The latency benchmark.
pub fn run(ctx: &Ctx) -> Section {
    let n = ctx.plan.signals;
    let mut rows: Vec<String> = ctx.inits.iter().map(|i| i.name.clone()).collect();
    rows.push(DIRECT.into());
    let mut s = Section::new("Signal forwarding latency", rows);
    s.intro.push(format!(
        "`INIT -- ward-workload signal-echo`; {n} × SIGUSR1 sent to the init, one at a time, \
         each after the previous echo arrived ({WARM_UP} more first, not counted), from {} s \
         after the echo's `ready` (every init's start-up work over); {} rounds. \
         Round trip from `kill(2)` to reading the echo byte, both timed on the host with \
         CLOCK_MONOTONIC. p50 and p99 are per run, then summarised over the rounds. The \
         reference row runs `signal-echo` as PID 1 itself: the floor of this round trip.",
        SETTLE.as_secs_f64(),
        ctx.plan.rounds
    ));
    // As for the start-up row: ward drops its code pages after each sample
    // and faults them back in from the page cache, where a freshly built
    // binary's pages differ from those exec read in (not established to
    // move this row; a sitting of the row alone suggested it).
    let dropped = crate::inits::read_in_alike(&ctx.inits);
    if dropped.is_empty() {
        s.intro.push(
            "Each init's own binary is dropped from the page cache first, as for the start-up \
             row, so that every one runs from pages its own exec read in."
                .into(),
        );
    } else {
        s.notes.push(format!(
            "Not dropped from the page cache, so read as cached before: {}.",
            dropped.join(", ")
        ));
    }
    let tracer = Tracer::open(std::path::Path::new(hop::TRACEFS));
    s.intro.push(match &tracer {
        Ok(_) => format!("{} {WOKEN_INTRO}", hop::INTRO),
        Err(why) => format!("The init's own hop is not measured (–): {why}."),
    });
    let tracer = tracer.ok();
    let mut hop_p50 = Figure::new("hop p50", Unit::Us, Compare::Ratio);
    let mut hop_p99 = Figure::new("hop p99", Unit::Us, Compare::Ratio);
    let mut hop_max = Figure::new("hop max", Unit::Us, Compare::No);
    let mut p50 = Figure::new("round trip p50", Unit::Us, Compare::Ratio);
    let mut p99 = Figure::new("round trip p99", Unit::Us, Compare::Ratio);
    let mut max = Figure::new("round trip max", Unit::Us, Compare::No);
    let mut same_cpu = Figure::new("woken on the sender's CPU", Unit::Pct, Compare::No);
    let mut there = Figure::new("round trip p50 there", Unit::Us, Compare::No);
    let mut elsewhere = Figure::new("round trip p50 elsewhere", Unit::Us, Compare::No);
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
            // The reference has no init, so no hop to trace.
            let traced = if argv.is_empty() {
                None
            } else {
                tracer.as_ref()
            };
            match measure(&name, &argv, ctx, n, traced) {
                Ok(r) => {
                    let v = &r.rtt;
                    p50.add(round, &name, percentile(v, 50.0).unwrap_or(f64::NAN));
                    p99.add(round, &name, percentile(v, 99.0).unwrap_or(f64::NAN));
                    max.add(round, &name, v.last().copied().unwrap_or(f64::NAN));
                    match r.hops {
                        Some(Ok((h, w, notes))) => {
                            let at = |p| percentile(&h, p).unwrap_or(f64::NAN);
                            hop_p50.add(round, &name, at(50.0));
                            hop_p99.add(round, &name, at(99.0));
                            hop_max.add(round, &name, at(100.0));
                            if let Some(w) = w {
                                same_cpu.add(round, &name, w.same_cpu_pct);
                                there.add(round, &name, w.there_p50.unwrap_or(f64::NAN));
                                elsewhere.add(round, &name, w.elsewhere_p50.unwrap_or(f64::NAN));
                            }
                            s.notes.extend(notes);
                        }
                        Some(Err(e)) => s.fail(format!("{name} round {}: hop: {e}", round + 1)),
                        None => {}
                    }
                }
                Err(e) => s.fail(format!("{name} round {}: {e}", round + 1)),
            }
        }
    }
    s.figures = vec![
        hop_p50, hop_p99, hop_max, p50, p99, max, same_cpu, there, elsewhere,
    ];
    s.compare_from = Some(ctx.ward().name.clone());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(same_cpu: bool) -> Hop {
        Hop {
            sent_ns: 0,
            ns: 10_000,
            same_cpu,
        }
    }

    #[test]
    fn round_trips_split_by_where_the_init_was_woken() {
        let hops = [hop(true), hop(false), hop(true), hop(true), hop(false)];
        let rtt = [30.0, 60.0, 40.0, 35.0, 70.0];
        assert_eq!(
            woken(&hops, &rtt),
            Some(Woken {
                same_cpu_pct: 60.0,
                there_p50: Some(35.0),
                elsewhere_p50: percentile(&[60.0, 70.0], 50.0),
            })
        );
    }

    #[test]
    fn a_kill_in_the_same_microsecond_as_the_count_starts_is_counted() {
        // Read at 5.000300 ms; the kill's event at 5.000700, printed 5.000.
        let from = start_of_us(5_000_300);
        assert!(5_000_000 >= from);
        assert!(4_999_000 < from);
    }

    #[test]
    fn unpaired_round_trips_give_the_share_alone() {
        // One hop lost from the trace: positions no longer pair.
        let w = woken(&[hop(true), hop(false)], &[30.0, 60.0, 40.0]).unwrap();
        assert_eq!(
            (w.same_cpu_pct, w.there_p50, w.elsewhere_p50),
            (50.0, None, None)
        );
        assert_eq!(woken(&[], &[]), None);
        // Every signal on one kind: the other has no p50.
        let w = woken(&[hop(false), hop(false)], &[50.0, 52.0]).unwrap();
        assert_eq!((w.same_cpu_pct, w.there_p50), (0.0, None));
        assert!(w.elsewhere_p50.is_some());
    }
}
