//! Start-up, traced: where `unshare ... INIT -- true`'s time goes, in four
//! stretches told apart by the kernel's own process events (tracefs
//! `sched_process_fork`, `sched_process_exec`, `sched_process_exit`):
//!
//! - *start*: the init's exec to `true`'s (what the init does before its
//!   child runs);
//! - *`true`*: `true`'s exec to its exit;
//! - *end*: `true`'s exit to the start of the exit of the init's last
//!   thread (the init's wake-up, its report, its exit);
//! - *teardown*: from there to `unshare`'s exit (the kernel freeing the
//!   init's address space and files, and waking `unshare`).
//!
//! Rounds of their own after the untraced ones, as the traced storms are:
//! these events cost a little at every exec and exit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use crate::container::time_run;
use crate::hop::{self, Tracer};
use crate::plan::{Ctx, progress};
use crate::report::Section;
use crate::stats::{Compare, Figure, Unit};

/// Row name of ward without its watch, traced beside the inits.
const WARD_NO_WATCH: &str = "ward --no-watch";

/// The three events, under a tracing instance.
const EVENTS: [&str; 3] = [
    "events/sched/sched_process_fork",
    "events/sched/sched_process_exec",
    "events/sched/sched_process_exit",
];

/// What one event line says.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `pid` forked `child` (a process or a thread).
    Fork {
        /// The new task.
        child: u32,
    },
    /// `pid` exec'd `filename`.
    Exec {
        /// The file as exec was given it.
        filename: String,
    },
    /// `pid` began its exit.
    Exit,
}

/// One event line of the `trace` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The task the event is about (`pid=` of the fields).
    pub pid: u32,
    /// `CLOCK_MONOTONIC`, ns.
    pub ts_ns: u64,
    /// What happened.
    pub kind: Kind,
}

/// Parses one line:
///
/// `  ward-watch-20637   (  20636) [001] ..... 54894.601738: sched_process_exit: comm=ward-watch pid=20637 prio=120 group_dead=true`
///
/// The recording task's name may hold spaces, dashes and brackets, so the
/// head is read from the right; in the fields only `pid=`, `child_pid=`
/// and `filename=` are read (a `comm=` may hold spaces too).
pub fn parse_line(line: &str) -> Option<Event> {
    let (head, rest) = line.split_once(": sched_process_")?;
    let (event, fields) = rest.split_once(": ")?;
    let (head, ts) = head.trim_end().rsplit_once(char::is_whitespace)?;
    let ts_ns = hop::parse_timestamp(ts)?;
    // The recording task's name and `(tgid)` are not needed: the fields
    // say whom the event is about.
    head.rfind('[')?;
    let field = |key: &str| -> Option<&str> {
        let at = fields.rfind(&format!(" {key}="))?;
        fields[at + key.len() + 2..].split_whitespace().next()
    };
    let (pid, kind) = match event {
        "fork" => {
            let child = field("child_pid")?.parse().ok()?;
            // ` pid=` of the parent: the last one before ` child_comm=`.
            let parent = &fields[..fields.find(" child_comm=")?];
            let at = parent.rfind("pid=")?;
            (parent[at + 4..].trim().parse().ok()?, Kind::Fork { child })
        }
        "exec" => {
            let filename = fields.strip_prefix("filename=")?;
            let filename = &filename[..filename.rfind(" pid=")?];
            let pid = field("pid")?.parse().ok()?;
            (
                pid,
                Kind::Exec {
                    filename: filename.to_string(),
                },
            )
        }
        "exit" => (field("pid")?.parse().ok()?, Kind::Exit),
        _ => return None,
    };
    Some(Event { pid, ts_ns, kind })
}

/// The four stretches of one run, in ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phases {
    /// The init's exec to `true`'s.
    pub start: u64,
    /// `true`'s exec to its exit.
    pub run: u64,
    /// `true`'s exit to the init's last thread's.
    pub end: u64,
    /// The init's last thread's exit to `unshare`'s.
    pub teardown: u64,
}

/// The stretches of the run whose `unshare` was `unshare`, from the events
/// of the whole machine (other processes' are left out by the tree):
/// `unshare` forks the init, the init (one of its threads) forks the
/// process that execs `true`. `None` when a piece is missing or out of
/// order.
pub fn phases(events: &[Event], unshare: u32) -> Option<Phases> {
    let forked_by = |parents: &dyn Fn(u32) -> bool| -> Vec<u32> {
        events
            .iter()
            .filter_map(|e| match e.kind {
                Kind::Fork { child } if parents(e.pid) => Some(child),
                _ => None,
            })
            .collect()
    };
    let exec_of = |pid: u32| {
        events
            .iter()
            .find(|e| e.pid == pid && matches!(e.kind, Kind::Exec { .. }))
    };
    let exit_of = |pid: u32| events.iter().find(|e| e.pid == pid && e.kind == Kind::Exit);
    let init = *forked_by(&|p| p == unshare).first()?;
    let init_exec = exec_of(init)?.ts_ns;
    // The init's threads: what it (or one of them) forked that never
    // exec'd. Not the `(tgid)` column: the kernel fills that in when the
    // file is read, from a table a later process with the same pid
    // overwrites.
    let mut threads = vec![init];
    for e in events {
        if let Kind::Fork { child } = e.kind
            && threads.contains(&e.pid)
            && exec_of(child).is_none()
        {
            threads.push(child);
        }
    }
    let init_exit = events
        .iter()
        .filter(|e| e.kind == Kind::Exit && threads.contains(&e.pid))
        .map(|e| e.ts_ns)
        .max()?;
    let child = forked_by(&|p| threads.contains(&p))
        .into_iter()
        .find(|&c| {
            exec_of(c).is_some_and(|e| match &e.kind {
                Kind::Exec { filename } => filename.ends_with("true"),
                _ => false,
            })
        })?;
    let true_exec = exec_of(child)?.ts_ns;
    let true_exit = exit_of(child)?.ts_ns;
    let unshare_exit = exit_of(unshare)?.ts_ns;
    Some(Phases {
        start: true_exec.checked_sub(init_exec)?,
        run: true_exit.checked_sub(true_exec)?,
        end: init_exit.checked_sub(true_exit)?,
        teardown: unshare_exit.checked_sub(init_exit)?,
    })
}

/// The events of the run whose `unshare` was `unshare`, looking from index
/// `from` on: from the fork that made it to its exit. The runs follow one
/// another, so a pid used again later in the trace (or earlier, by a run
/// before) is not taken for this one.
pub fn run_events(events: &[Event], from: usize, unshare: u32) -> Option<std::ops::Range<usize>> {
    let rest = events.get(from..)?;
    let start = rest
        .iter()
        .position(|e| e.kind == (Kind::Fork { child: unshare }))?;
    let len = rest[start..]
        .iter()
        .position(|e| e.pid == unshare && e.kind == Kind::Exit)?;
    Some(from + start..from + start + len + 1)
}

/// The traced rounds: `ctx.plan.startup_traced_runs` per init, rotating.
pub fn run(ctx: &Ctx) -> Section {
    let runs = ctx.plan.startup_traced_runs;
    let mut rows: Vec<String> = ctx.inits.iter().map(|i| i.name.clone()).collect();
    rows.push(WARD_NO_WATCH.into());
    let mut s = Section::new("Start-up, traced: where the time goes", rows);
    s.intro.push(format!(
        "{runs} more runs per init of the start-up row's `unshare ... INIT -- true`, apart from \
         the timed ones and after them, with the kernel's process events recorded (tracefs \
         `sched_process_fork`, `sched_process_exec` and `sched_process_exit`, clock `mono`). \
         *start*: the init's exec to `true`'s exec (what the init does before its child runs); \
         *true*: `true`'s exec to its exit; *end*: `true`'s exit to the start of the exit of \
         the init's last thread (its wake-up, its exit report, its own exit); *teardown*: from \
         there to `unshare`'s exit (the kernel freeing the init's memory and files, then \
         waking `unshare`, on a kernel that records the exit before it frees the address \
         space, as the benchmark VM's 6.18 does). Medians per stretch, so they need not add \
         up to the start-up row's wall time. *{WARD_NO_WATCH}* is ward with no cgroup read \
         and no watch thread: ward − it, per stretch, is what watching costs there."
    ));
    let tracer = match Tracer::open_for_all(Path::new(hop::TRACEFS), &EVENTS) {
        Ok(t) => t,
        Err(why) => {
            s.notes.push(format!("Not traced: {why}."));
            return s;
        }
    };
    let mut figures: BTreeMap<&str, Figure> = ["start", "true", "end", "teardown"]
        .into_iter()
        .map(|n| (n, Figure::new(n, Unit::Us, Compare::Difference)))
        .collect();
    // One trace for every round: turning the events on and off costs
    // the kernel a code patch and an RCU grace period each time, whose
    // after-effects slowed the run that followed (starts of 1-3 ms).
    progress(&format!("start-up traced: {runs} rounds"));
    if let Err(e) = tracer.start_filtered("0") {
        s.notes.push(format!("Not traced: {e}."));
        return s;
    }
    let mut runs_done: Vec<(usize, String, u32)> = Vec::new();
    for round in 0..runs {
        let mut order: Vec<(String, Vec<OsString>)> = ctx
            .rotation(round)
            .into_iter()
            .map(|i| (i.name.clone(), i.argv(&[])))
            .collect();
        order.insert(
            round % (order.len() + 1),
            (WARD_NO_WATCH.into(), ctx.ward().argv(&["--no-watch"])),
        );
        for (name, mut argv) in order {
            argv.push("true".into());
            match time_run(&argv) {
                Ok(t) => runs_done.push((round, name, t.pid)),
                Err(e) if s.failures < 10 => {
                    s.fail(format!("{name} traced run {}: {e}", round + 1));
                }
                Err(_) => s.failures += 1,
            }
        }
    }
    let text = match tracer.finish() {
        Ok(t) => t,
        Err(e) => {
            s.notes.push(format!("Not traced: {e}."));
            return s;
        }
    };
    let missing = hop::missing_in(&text);
    if missing > 0 {
        s.notes.push(format!(
            "The trace lost {missing} event(s) (a full buffer): a run that lost one of its own \
             is left out, and one that lost its last thread's exit reads a shorter *end*."
        ));
    }
    let events: Vec<Event> = text.lines().filter_map(parse_line).collect();
    let mut unread = 0usize;
    let mut from = 0;
    for (round, name, pid) in runs_done {
        let Some(run) = run_events(&events, from, pid) else {
            unread += 1;
            continue;
        };
        from = run.end;
        let Some(p) = phases(&events[run], pid) else {
            unread += 1;
            continue;
        };
        let us = |ns: u64| ns as f64 / 1e3;
        for (figure, v) in [
            ("start", p.start),
            ("true", p.run),
            ("end", p.end),
            ("teardown", p.teardown),
        ] {
            if let Some(f) = figures.get_mut(figure) {
                f.add(round, &name, us(v));
            }
        }
    }
    if unread > 0 {
        s.notes.push(format!(
            "{unread} traced run(s) left out: an event was missing from the trace (lost to a \
             full buffer, or a process the tree did not show)."
        ));
    }
    s.figures = ["start", "true", "end", "teardown"]
        .into_iter()
        .filter_map(|n| figures.remove(n))
        .collect();
    s.compare_from = Some(ctx.ward().name.clone());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real trace of `unshare ... ward -- /bin/true` (the test machine,
    /// with `bash` forking `unshare` first).
    const WARD_RUN: &str = "\
            bash-20632   (  20632) [000] ..... 54894.596693: sched_process_fork: comm=bash pid=20632 child_comm=bash child_pid=20635
         unshare-20635   (  20635) [000] ..... 54894.597528: sched_process_exec: filename=/usr/bin/unshare pid=20635 old_pid=20635
         unshare-20635   (  20635) [001] ..... 54894.599066: sched_process_fork: comm=unshare pid=20635 child_comm=unshare child_pid=20636
        ward-new-20636   (  20636) [000] ..... 54894.599455: sched_process_exec: filename=/tmp/ward-new pid=20636 old_pid=20636
        ward-new-20636   (  20636) [001] ..... 54894.600727: sched_process_fork: comm=ward-new pid=20636 child_comm=ward-new child_pid=20637
        ward-new-20636   (  20636) [001] ..... 54894.600873: sched_process_fork: comm=ward-new pid=20636 child_comm=ward-new child_pid=20638
            true-20638   (  20638) [000] ..... 54894.601038: sched_process_exec: filename=/bin/true pid=20638 old_pid=20638
            true-20638   (  20638) [000] ..... 54894.601504: sched_process_exit: comm=true pid=20638 prio=120 group_dead=true
        ward-new-20636   (  20636) [001] ..... 54894.601719: sched_process_exit: comm=ward-new pid=20636 prio=120 group_dead=false
      ward-watch-20637   (  20636) [001] ..... 54894.601738: sched_process_exit: comm=ward-watch pid=20637 prio=120 group_dead=true
         unshare-20635   (  20635) [000] ..... 54894.601958: sched_process_exit: comm=unshare pid=20635 prio=120 group_dead=true
";

    fn events(text: &str) -> Vec<Event> {
        text.lines().filter_map(parse_line).collect()
    }

    #[test]
    fn reads_each_kind_of_line() {
        let e = events(WARD_RUN);
        assert_eq!(e.len(), 11);
        assert_eq!(
            e[2],
            Event {
                pid: 20635,
                ts_ns: 54_894_599_066_000,
                kind: Kind::Fork { child: 20636 },
            }
        );
        assert_eq!(
            e[3].kind,
            Kind::Exec {
                filename: "/tmp/ward-new".into()
            }
        );
        // A thread's exit: its own pid.
        assert_eq!((e[9].pid, &e[9].kind), (20637, &Kind::Exit));
        // Names with spaces and dashes, and an unknown tgid.
        let odd = "  my task-x-7 (-------) [001] ..... 10.000001: sched_process_exit: comm=my task-x pid=7 prio=120 group_dead=true";
        let e = parse_line(odd).unwrap();
        assert_eq!((e.pid, e.ts_ns), (7, 10_000_001_000));
        assert!(parse_line("# tracer: nop").is_none());
        assert!(parse_line("  bash-1 (1) [000] ..... 1.0: signal_generate: sig=10").is_none());
    }

    #[test]
    fn the_four_stretches_of_a_run() {
        let p = phases(&events(WARD_RUN), 20635).unwrap();
        assert_eq!(
            p,
            Phases {
                // 599.455 -> 601.038 ms
                start: 1_583_000,
                run: 466_000,
                // to the watch thread's exit, the last of ward's threads
                end: 234_000,
                teardown: 220_000,
            }
        );
    }

    #[test]
    fn a_run_with_a_piece_missing_is_not_read() {
        let all = events(WARD_RUN);
        // Not this run's unshare.
        assert!(phases(&all, 20632).is_none());
        for gone in [
            "exec: filename=/bin/true",
            "exit: comm=unshare",
            "fork: comm=unshare",
        ] {
            let cut: Vec<Event> = WARD_RUN
                .lines()
                .filter(|l| !l.contains(gone))
                .filter_map(parse_line)
                .collect();
            assert!(phases(&cut, 20635).is_none(), "without {gone}");
        }
    }

    #[test]
    fn each_run_is_cut_from_the_trace_by_its_own_fork_and_exit() {
        // Two runs in one trace, the second with the first's pids again.
        let two = format!("{WARD_RUN}{}", WARD_RUN.replace("54894.", "54895."));
        let e = events(&two);
        let first = run_events(&e, 0, 20635).unwrap();
        assert_eq!(first, 0..11);
        let second = run_events(&e, first.end, 20635).unwrap();
        assert_eq!(second, 11..22);
        let p = phases(&e[second.clone()], 20635).unwrap();
        assert_eq!(p, phases(&events(WARD_RUN), 20635).unwrap());
        assert!(run_events(&e, second.end, 20635).is_none());
        assert!(run_events(&e, 99, 20635).is_none());
    }

    #[test]
    fn the_inits_threads_come_from_its_forks_not_the_tgid_column() {
        // The kernel fills `(tgid)` in as the file is read: a later process
        // with the watch thread's pid shows another group there.
        let relabelled = WARD_RUN.replace(
            "ward-watch-20637   (  20636)",
            "ward-watch-20637   (  31000)",
        );
        assert_eq!(
            phases(&events(&relabelled), 20635),
            phases(&events(WARD_RUN), 20635)
        );
        // Without the thread's fork, its exit is not the init's: the end
        // is the main thread's exit.
        let unforked: Vec<Event> = WARD_RUN
            .lines()
            .filter(|l| !l.contains("child_pid=20637"))
            .filter_map(parse_line)
            .collect();
        assert_eq!(phases(&unforked, 20635).unwrap().end, 215_000);
    }

    #[test]
    fn another_processs_events_do_not_count() {
        // A stranger's exec of true and exit in the middle of the run.
        let mut text = WARD_RUN.to_string();
        text.push_str(
            "            true-30001   (  30001) [001] ..... 54894.600000: sched_process_exec: filename=/bin/true pid=30001 old_pid=30001\n\
                        true-30001   (  30001) [001] ..... 54894.600100: sched_process_exit: comm=true pid=30001 prio=120 group_dead=true\n",
        );
        let mut e = events(&text);
        e.sort_by_key(|e| e.ts_ns);
        assert_eq!(phases(&e, 20635), phases(&events(WARD_RUN), 20635));
    }
}
