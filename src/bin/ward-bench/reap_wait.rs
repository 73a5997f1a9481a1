//! How long each zombie of a storm waited for the init, exactly, for every
//! init alike: the workload notes when each orphan could first be reaped
//! (`ward-workload orphans --record-exits`: the later of its own exit and
//! its parent's, `CLOCK_MONOTONIC`, just before each `_exit`), and a tracing
//! instance records the init's `wait4` returns (`raw_syscalls:sys_exit`,
//! clock `mono`, the pid reaped). A wait runs from the note to the reap, so
//! it also counts the exit's own teardown: an upper bound per zombie.

use std::collections::BTreeMap;

/// The traced event, under the tracing instance.
pub const WAIT4_EVENT: &str = "events/raw_syscalls/sys_exit";

/// The filter that keeps `init`'s `wait4` calls that reaped a pid. Every
/// init here reaps from its main thread (`common_pid` is a thread's pid):
/// true of the single-threaded peers and of ward, whose reaper is its main
/// thread.
pub fn filter(init: i32) -> String {
    format!(
        "id == {} && ret > 0 && common_pid == {init}",
        libc::SYS_wait4
    )
}

/// A trace line's `secs.micros` timestamp in nanoseconds.
fn timestamp_ns(t: &str) -> Option<u64> {
    let (secs, frac) = t.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10u64.pow(9 - frac.len() as u32);
    Some(secs.parse::<u64>().ok()? * 1_000_000_000 + frac.parse::<u64>().ok()? * scale)
}

/// The pids `wait4` returned in `trace` (the instance's text), each with
/// the times it was reaped, in order (a pid comes back in a long storm).
pub fn parse_reaps(trace: &str) -> BTreeMap<u32, Vec<u64>> {
    let marker = format!(": sys_exit: NR {} = ", libc::SYS_wait4);
    let mut reaps: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        let Some((head, ret)) = line.split_once(marker.as_str()) else {
            continue;
        };
        let (Some(t), Ok(pid)) = (
            head.rsplit(' ').next().and_then(timestamp_ns),
            ret.trim().parse::<u32>(),
        ) else {
            continue;
        };
        reaps.entry(pid).or_default().push(t);
    }
    for v in reaps.values_mut() {
        v.sort_unstable();
    }
    reaps
}

/// The workload's notes (`pid kind nanoseconds` lines): for each pid, the
/// times noted, in order.
pub fn parse_records(text: &str) -> Result<BTreeMap<u32, Vec<u64>>, String> {
    let mut notes: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(pid), Some(_kind), Some(t), None) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(format!("unexpected exit record {line:?}"));
        };
        let (Ok(pid), Ok(t)) = (pid.parse::<u32>(), t.parse::<u64>()) else {
            return Err(format!("unexpected exit record {line:?}"));
        };
        notes.entry(pid).or_default().push(t);
    }
    for v in notes.values_mut() {
        v.sort_unstable();
    }
    Ok(notes)
}

/// One storm's zombie waits.
#[derive(Debug, Clone, PartialEq)]
pub struct Waits {
    /// The longest wait, in ms.
    pub longest_ms: f64,
    /// Waits longer than `late_ms`.
    pub late: u64,
    /// Zombies both noted and seen reaped.
    pub matched: u64,
    /// Zombies noted but not seen reaped by the init (the trace lost them,
    /// or another process reaped them).
    pub unmatched: u64,
}

/// Pairs the notes with the reaps, pid by pid in time order: a reap takes
/// the notes since the pid's reap before it, and the zombie could be
/// reaped from the latest of them (a pid used again later in the storm
/// starts afresh). Reaps with no note before them (the init's other
/// children) are left out.
pub fn waits(
    notes: &BTreeMap<u32, Vec<u64>>,
    reaps: &BTreeMap<u32, Vec<u64>>,
    late_ms: f64,
) -> Waits {
    let mut w = Waits {
        longest_ms: 0.0,
        late: 0,
        matched: 0,
        unmatched: 0,
    };
    for (pid, times) in notes {
        let reaped = reaps.get(pid).map_or(&[][..], Vec::as_slice);
        let mut next = 0;
        for r in reaped {
            let start = next;
            while next < times.len() && times[next] <= *r {
                next += 1;
            }
            if next == start {
                continue;
            }
            let ms = (r - times[next - 1]) as f64 / 1e6;
            w.matched += 1;
            w.longest_ms = w.longest_ms.max(ms);
            if ms > late_ms {
                w.late += 1;
            }
        }
        // Notes no reap came after: one zombie for the two notes of one.
        if next < times.len() {
            w.unmatched += 1;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pids_reaped_and_when() {
        let trace = "# tracer: nop\n\
            #\n\
            \x20       ward-4044    (   4044) [001] d..2. 42509.184350: sys_exit: NR 61 = 1234\n\
            \x20       ward-4044    (   4044) [000] d..2. 42509.184351: sys_exit: NR 61 = 1235\n\
            \x20       ward-4044    (   4044) [000] d..2. 42509.2: sys_exit: NR 61 = 1235\n\
            \x20       ward-4044    (   4044) [000] d..2. 42509.184352: sys_exit: NR 0 = 5\n\
            \x20       ward-4044    (   4044) [000] d..2. 42509.184353: sys_exit: NR 61 = x\n";
        let r = parse_reaps(trace);
        assert_eq!(r.len(), 2);
        assert_eq!(r[&1234], [42_509_184_350_000]);
        assert_eq!(r[&1235], [42_509_184_351_000, 42_509_200_000_000]);
    }

    #[test]
    fn notes_are_read_in_time_order() {
        let notes = parse_records("7 1 3000\n7 2 1000\n8 1 5000\n").unwrap();
        assert_eq!(notes[&7], [1000, 3000]);
        assert_eq!(notes[&8], [5000]);
        assert!(parse_records("7 2\n").is_err());
        assert!(parse_records("7 2 x\n").is_err());
    }

    #[test]
    fn waits_run_from_the_later_exit_to_the_reap() {
        let ms = 1_000_000;
        let notes = BTreeMap::from([(7, vec![ms, 2 * ms]), (8, vec![2 * ms]), (9, vec![3 * ms])]);
        let reaps = BTreeMap::from([(7, vec![8 * ms]), (8, vec![3 * ms]), (1, vec![4 * ms])]);
        let w = waits(&notes, &reaps, 5.0);
        assert_eq!((w.matched, w.unmatched, w.late), (2, 1, 1));
        assert!((w.longest_ms - 6.0).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn a_pid_used_again_is_a_new_zombie() {
        let ms = 1_000_000;
        // Pid 7 exits (notes at 1 and 2 ms), is reaped at 3 ms, comes back,
        // exits again (10 and 11 ms) and is reaped at 12 ms.
        let notes = BTreeMap::from([(7, vec![ms, 2 * ms, 10 * ms, 11 * ms])]);
        let reaps = BTreeMap::from([(7, vec![3 * ms, 12 * ms])]);
        let w = waits(&notes, &reaps, 5.0);
        assert_eq!((w.matched, w.unmatched, w.late), (2, 0, 0));
        assert!((w.longest_ms - 1.0).abs() < 1e-9, "{w:?}");
        // Its second life not reaped: one zombie unmatched.
        let reaps = BTreeMap::from([(7, vec![3 * ms])]);
        let w = waits(&notes, &reaps, 5.0);
        assert_eq!((w.matched, w.unmatched), (1, 1));
    }

    #[test]
    fn the_filter_keeps_the_inits_reaps() {
        assert_eq!(
            filter(42),
            format!("id == {} && ret > 0 && common_pid == 42", libc::SYS_wait4)
        );
    }
}
