//! The OOM victim census: which processes were alive at the watch's last
//! look (candidates, with their start time and `oom_score`), and, when the
//! cgroup's OOM kill counter rises, which of them are gone and which
//! survived. Pure: the watch thread feeds it census tables; it reads nothing.
//!
//! Why a census: `/dev/kmsg` is not readable in a default container, and a
//! worker killed by the OOM killer is reaped by its own parent, not by ward,
//! so the only trace of the victim is its absence.

use crate::procs::ProcTable;

use serde::Serialize;

/// A process the OOM killer most likely took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OomVictim {
    /// Its pid (in ward's namespace).
    pub pid: i32,
    /// Its name, when ward could tell.
    pub name: Option<String>,
    /// True only with evidence that excludes other senders (see
    /// [`super::victims::evidence::PROVEN`]); a SIGKILL near the rise is not.
    pub certain: bool,
    /// What names it, in words (one of [`super::victims::evidence`]).
    pub evidence: &'static str,
    /// Its `/proc/PID/oom_score` at the last look, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score: Option<u32>,
}

/// At most this many candidates are kept (the largest by RSS first): the
/// OOM killer picks by size, so the smallest of thousands never matter.
pub const MAX_CANDIDATES: usize = 512;

/// Words for each kind of evidence naming a victim.
pub mod evidence {
    /// The census saw it, it is gone after the rise, and exactly as many
    /// processes vanished as the counter rose; ward reaped it with SIGKILL.
    pub const PROVEN: &str =
        "reaped by ward with SIGKILL, and the only process gone when the OOM kill count rose";
    /// [`PROVEN`] for a rise of several kills (a cascade, a
    /// `memory.oom.group` kill): each is one of as many gone as killed.
    pub const PROVEN_ALL: &str = "reaped by ward with SIGKILL, and the OOM kill count rose by as many as processes were gone";
    /// Gone from the census when the counter rose (its own parent reaped
    /// it). Nothing says how it ended, and the victim may be one the census
    /// never saw: the words say both.
    pub const GONE: &str = "gone from ward's census when the OOM kill count rose, though it may have exited by itself (a process started and killed between two looks is never seen)";
    /// Gone, but more processes vanished than kills: the largest `oom_score`.
    pub const LARGEST_GONE: &str =
        "the largest oom_score among the processes gone when the OOM kill count rose";
    /// A zombie killed by SIGKILL found right after the rise.
    pub const SIGKILL_ZOMBIE: &str =
        "a zombie killed by SIGKILL right after the OOM kill count rose";
    /// Reaped by ward with SIGKILL near the rise, not seen alive after it.
    pub const REAPED_NEAR: &str =
        "reaped by ward with SIGKILL within 2 s of the OOM kill count rising";
}

/// A process alive at the last look.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    /// Its pid.
    pub pid: i32,
    /// `starttime` from stat: tells a reused pid from the same process.
    pub starttime: u64,
    /// Its comm.
    pub name: crate::procs::ProcName,
    /// RSS in pages, for ranking.
    pub rss_pages: u64,
    /// `/proc/PID/oom_score` when read (the largest few only).
    pub oom_score: Option<u32>,
}

/// Below this many the candidates' room is never given back.
const KEEP_CANDIDATES: usize = 16;

/// Fills `out` with the candidates from a census table: every live
/// (non-zombie) selected process, the largest [`MAX_CANDIDATES`] by RSS,
/// largest first (equal ones by pid). Reuses `out`'s room, made for
/// [`KEEP_CANDIDATES`] at the first fill (names are inline): the refresh
/// follows every census, and a new list (and a name per process) each time
/// made malloc map a page and give it back on a 15 s cycle in an idle
/// ward, and a list grown in a burst of processes left the heap larger.
pub fn fill_candidates(out: &mut Vec<Candidate>, table: &ProcTable, self_pid: i32) {
    out.reserve(KEEP_CANDIDATES.saturating_sub(out.len()));
    use crate::rank::{desc, heapsort_by_key, sift_down, sift_up};
    // Least first: the largest RSS, then the lowest pid. `out[..n]` is a
    // max-heap on it while filling: the one to drop first at `out[0]`.
    let rank = |c: &Candidate| (desc(c.rss_pages), c.pid);
    let mut n = 0;
    for e in table
        .selected()
        .filter(|e| !e.is_zombie() && e.pid != self_pid)
    {
        let slot = if n < MAX_CANDIDATES {
            if n == out.len() {
                out.push(Candidate::default());
            }
            n += 1;
            n - 1
        } else if (desc(e.rss_pages), e.pid) < rank(&out[0]) {
            0
        } else {
            continue;
        };
        let c = &mut out[slot];
        c.pid = e.pid;
        c.starttime = e.starttime;
        c.rss_pages = e.rss_pages;
        c.oom_score = None;
        c.name.set(table.name(e));
        if n == MAX_CANDIDATES && slot == 0 {
            sift_down(&mut out[..n], 0, n, &rank);
        } else {
            sift_up(&mut out[..n], slot, &rank);
        }
    }
    out.truncate(n);
    crate::procs::table::fit(out, n, KEEP_CANDIDATES);
    heapsort_by_key(out, rank);
}

/// At most this many zombies are remembered from a look (16 bytes each).
pub const MAX_KNOWN_ZOMBIES: usize = 256;

/// Below this many the known zombies' room is never given back.
const KEEP_ZOMBIE_IDS: usize = 16;

/// The zombies at the watch's last look, by pid and start time: a zombie
/// killed by SIGKILL that is not among them died since, and is the OOM
/// victim's likeliest trace; one that is was dead before (a `kill -9`ed
/// process its parent never waited for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownZombies {
    ids: Vec<(i32, u64)>,
    /// False when there were more than [`MAX_KNOWN_ZOMBIES`]: a zombie
    /// not listed may then be an old one.
    complete: bool,
}

impl KnownZombies {
    /// The selected zombies of `table`.
    pub fn of(table: &ProcTable) -> KnownZombies {
        let mut known = KnownZombies::default();
        known.refill(table);
        known
    }

    /// Replaces the list with the selected zombies of `table`, in the room
    /// it has: every census refills it.
    pub fn refill(&mut self, table: &ProcTable) {
        self.ids.clear();
        // Room made once: a burst's few zombies then grow nothing.
        self.ids.reserve(KEEP_ZOMBIE_IDS);
        self.complete = true;
        for e in table.selected().filter(|e| e.is_zombie()) {
            if self.ids.len() == MAX_KNOWN_ZOMBIES {
                self.complete = false;
                break;
            }
            self.ids.push((e.pid, e.starttime));
        }
        let n = self.ids.len();
        crate::procs::table::fit(&mut self.ids, n, KEEP_ZOMBIE_IDS);
    }

    /// False when there were too many zombies at the look to list them all.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// True when this zombie is known to have died since the look.
    pub fn is_new(&self, pid: i32, starttime: u64) -> bool {
        self.complete && !self.ids.contains(&(pid, starttime))
    }
}

/// Puts `zombie`, a process found dead of SIGKILL since the last look, in
/// front of `findings.gone` (replacing its entry there as a candidate that
/// vanished, whose cause of death was unknown), and out of the survivors.
pub fn put_first(findings: &mut RiseFindings, mut zombie: OomVictim) {
    zombie.evidence = evidence::SIGKILL_ZOMBIE;
    if let Some(i) = findings.gone.iter().position(|g| g.pid == zombie.pid) {
        let known = findings.gone.remove(i);
        zombie.name = known.name.or(zombie.name);
        zombie.oom_score = known.oom_score.or(zombie.oom_score);
    }
    findings.survivors.retain(|p| *p != zombie.pid);
    findings.gone.insert(0, zombie);
}

/// True when `c` is still alive in `table` (same pid and start time, not a zombie).
pub fn alive_in(table: &ProcTable, c: &Candidate) -> bool {
    table
        .get(c.pid)
        .is_some_and(|e| e.starttime == c.starttime && !e.is_zombie())
}

/// What the census says about one rise of the counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiseFindings {
    /// Candidates gone since the last look, as victims (not yet chosen).
    pub gone: Vec<OomVictim>,
    /// Pids alive at the look after the rise: never victims of this rise.
    pub survivors: Vec<i32>,
    /// The counter's read before, when a read (a sample, the final look)
    /// found the rise with no OOM notification since: the kill came
    /// between the two reads, not when ward noticed. `None`: notified.
    pub since: Option<std::time::Instant>,
    /// When the census of the candidates (`gone`'s source) was taken: one
    /// that ended by itself after it is no victim, however long before the
    /// rise (a main process that exited 0 before a kill during `--grace`).
    pub candidates_at: Option<std::time::Instant>,
}

/// Splits `before` into the gone and the survivors, by `alive`.
pub fn compare(before: &[Candidate], alive: impl Fn(&Candidate) -> bool) -> RiseFindings {
    let mut f = RiseFindings::default();
    for c in before {
        if alive(c) {
            f.survivors.push(c.pid);
        } else {
            f.gone.push(OomVictim {
                pid: c.pid,
                name: Some(c.name.to_string()),
                certain: false,
                evidence: evidence::GONE,
                oom_score: c.oom_score,
            });
        }
    }
    f
}

/// Of `gone`, the `kills` the OOM killer most likely took: all of them when
/// no more vanished than were killed, else those found dead of SIGKILL
/// first, then the largest `oom_score` (then RSS order, which `gone` is
/// in), because that is how the kernel chooses.
pub fn choose(mut gone: Vec<OomVictim>, kills: u64) -> Vec<OomVictim> {
    let kills = kills as usize;
    if gone.len() <= kills {
        return gone;
    }
    // Stable: equal (or unknown) scores keep RSS order.
    crate::rank::sort(&mut gone, |v| {
        (
            u64::from(v.evidence != evidence::SIGKILL_ZOMBIE),
            crate::rank::desc(v.oom_score.unwrap_or(0).into()),
        )
    });
    gone.truncate(kills);
    for v in &mut gone {
        if v.evidence != evidence::SIGKILL_ZOMBIE {
            v.evidence = evidence::LARGEST_GONE;
        }
    }
    gone
}

/// `/proc/PID/oom_score`'s value.
pub fn parse_oom_score(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// `PID/oom_score` under `proc_root`, read with no heap block: with memory
/// past half the `--warn-memory` share of its limit (45 % by default, a
/// container's everyday state) the largest candidates' scores are read
/// every sample.
pub fn read_oom_score(proc_root: &std::path::Path, pid: i32) -> Option<u32> {
    use std::io::{Read as _, Write as _};
    let mut digits = [0u8; 12];
    let len = {
        let mut w = &mut digits[..];
        write!(w, "{pid}").ok()?;
        12 - w.len()
    };
    let pid = std::str::from_utf8(&digits[..len]).ok()?;
    let mut text = [0u8; 16];
    let n = crate::cgroup::in_dir(proc_root, &[pid, "oom_score"], |path| {
        std::fs::File::open(path).and_then(|mut f| f.read(&mut text))
    })
    .ok()?;
    parse_oom_score(std::str::from_utf8(&text[..n]).ok()?)
}

/// `PF_EXITING` in stat's `flags` (include/linux/sched.h): the task is in
/// `do_exit`, its pending SIGKILL already taken.
const PF_EXITING: u64 = 0x4;

/// True when this `/proc/PID/stat` text shows a task already exiting.
pub fn stat_exiting(stat: &str) -> bool {
    // Fields after the comm's closing paren: state is 3, flags is 9.
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    stat[close + 1..]
        .split_ascii_whitespace()
        .nth(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_EXITING != 0)
}

/// True when this `/proc/PID/status` text shows a SIGKILL pending (for the
/// thread or the process): the OOM killer queues it before it counts the
/// kill, so a victim looks like this until it starts to exit.
pub fn status_sigkill_pending(status: &str) -> bool {
    let bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        let v = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"));
        v.and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .is_some_and(|m| m & bit != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(pid: i32, start: u64, name: &str, score: Option<u32>) -> Candidate {
        Candidate {
            pid,
            starttime: start,
            name: name.into(),
            rss_pages: 100 - pid as u64,
            oom_score: score,
        }
    }

    #[test]
    fn the_gone_are_named_and_the_living_never() {
        let before = [
            cand(2, 10, "sh", Some(5)),
            cand(3, 11, "worker", Some(900)),
            cand(4, 12, "tail", Some(3)),
        ];
        // pid 3 vanished; pid 4 was reused by another process (new start time).
        let f = compare(&before, |c| c.pid == 2 || (c.pid == 4 && c.starttime == 99));
        assert_eq!(f.survivors, vec![2]);
        let names: Vec<_> = f.gone.iter().map(|v| v.name.clone().unwrap()).collect();
        assert_eq!(names, ["worker", "tail"]);
        assert!(f.gone.iter().all(|v| !v.certain));
    }

    #[test]
    fn more_gone_than_kills_picks_the_largest_oom_score() {
        let gone = compare(
            &[cand(3, 1, "small", Some(10)), cand(4, 1, "big", Some(800))],
            |_| false,
        )
        .gone;
        let chosen = choose(gone.clone(), 1);
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].name.as_deref(), Some("big"));
        assert_eq!(chosen[0].evidence, evidence::LARGEST_GONE);
        assert_eq!(choose(gone, 2).len(), 2);
    }

    /// A process that exited on its own since the last look is gone too;
    /// the one found dead of SIGKILL is the one named (it was the other
    /// way round: "most likely killed sleep", which had exited normally).
    #[test]
    fn a_zombie_dead_of_sigkill_comes_before_a_process_merely_gone() {
        let mut f = compare(&[cand(5, 1, "sleep", Some(600))], |_| false);
        let hog = OomVictim {
            pid: 9,
            name: Some("hog".into()),
            certain: false,
            evidence: evidence::GONE,
            oom_score: None,
        };
        f.survivors = vec![2, 9];
        put_first(&mut f, hog);
        assert_eq!(f.survivors, [2]);
        let chosen = choose(f.gone.clone(), 1);
        assert_eq!(chosen[0].name.as_deref(), Some("hog"));
        assert_eq!(chosen[0].evidence, evidence::SIGKILL_ZOMBIE);
        assert_eq!(choose(f.gone.clone(), 2).len(), 2);
        // A candidate that turned into such a zombie keeps its score and name.
        let mut g = compare(&[cand(7, 1, "java", Some(990))], |_| false);
        let z = OomVictim {
            pid: 7,
            name: None,
            certain: false,
            evidence: evidence::GONE,
            oom_score: None,
        };
        put_first(&mut g, z);
        assert_eq!(g.gone.len(), 1);
        assert_eq!(g.gone[0].name.as_deref(), Some("java"));
        assert_eq!(g.gone[0].oom_score, Some(990));
        assert_eq!(g.gone[0].evidence, evidence::SIGKILL_ZOMBIE);
    }

    #[test]
    fn zombies_known_at_the_look_are_not_new_and_too_many_make_none_new() {
        let t = crate::procs::fixture::FakeProc::new("known-zombies", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1)
            .process(10, "app", 'S', 1, 1, 0, 1)
            .process(11, "old", 'Z', 10, 1, 0, 1);
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        table.select(crate::procs::Scope::DescendantsOf(1));
        let known = KnownZombies::of(&table);
        let start = |pid| table.get(pid).unwrap().starttime;
        assert!(!known.is_new(11, start(11)));
        assert!(known.is_new(12, 5));
        assert!(
            known.is_new(11, start(11) + 1),
            "a reused pid is another process"
        );
        let full = KnownZombies {
            ids: vec![(1, 1); MAX_KNOWN_ZOMBIES],
            complete: false,
        };
        assert!(!full.is_new(12, 5));
    }

    #[test]
    fn a_dying_process_is_no_survivor() {
        let exiting = "8 (sh) R 1 8 8 0 -1 4194308 0 0 0 0 0 0";
        let running = "8 (sh) S 1 8 8 0 -1 4194560 0 0 0 0 0 0";
        assert!(stat_exiting(exiting));
        assert!(!stat_exiting(running));
        let pending = "Name:\tsh\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n";
        let none = "Name:\tsh\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n";
        assert!(status_sigkill_pending(pending));
        assert!(!status_sigkill_pending(none));
    }

    #[test]
    fn oom_score_parses() {
        assert_eq!(parse_oom_score("667\n"), Some(667));
        assert_eq!(parse_oom_score(""), None);
    }

    /// The candidates as a plain sort finds them: every live selected
    /// process but ward, largest RSS first, equal ones by pid, cut at
    /// [`MAX_CANDIDATES`].
    fn sorted_candidates(table: &ProcTable, self_pid: i32) -> Vec<(i32, u64, String)> {
        let mut all: Vec<(i32, u64, String)> = table
            .selected()
            .filter(|e| !e.is_zombie() && e.pid != self_pid)
            .map(|e| (e.pid, e.rss_pages, table.name(e).to_string()))
            .collect();
        all.sort_by_key(|&(pid, rss, _)| (std::cmp::Reverse(rss), pid));
        all.truncate(MAX_CANDIDATES);
        all
    }

    /// (pid, RSS, name) of each candidate, in order.
    fn listed(out: &[Candidate]) -> Vec<(i32, u64, String)> {
        out.iter()
            .map(|c| (c.pid, c.rss_pages, c.name.to_string()))
            .collect()
    }

    #[test]
    fn candidates_are_the_largest_and_are_refilled_in_place() {
        let t = crate::procs::fixture::FakeProc::new("fill-candidates", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1 << 20);
        // More than are kept, with many equal sizes, in no size order; a
        // zombie and a thread group whose leader alone ended.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for pid in 2..(MAX_CANDIDATES as i32 + 90) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = format!("p{}", x % 1000);
            t.process(pid, &name, 'S', 1, 1, pid as u64, x % 40);
        }
        t.process(900, "dead", 'Z', 1, 1, 0, 0);
        t.process(901, "leaderless", 'Z', 1, 3, 0, 39);
        let mut table = ProcTable::new();
        table.scan(t.path()).unwrap();
        table.select(crate::procs::Scope::DescendantsOf(1));
        let mut out = Vec::new();
        fill_candidates(&mut out, &table, 1);
        let got = listed(&out);
        assert_eq!(got, sorted_candidates(&table, 1));
        assert!(got.iter().any(|c| c.0 == 901), "a live thread group is one");
        assert_eq!(out.len(), MAX_CANDIDATES);

        // Fewer processes: the same list refilled.
        for pid in 20..(MAX_CANDIDATES as i32 + 90) {
            std::fs::remove_dir_all(t.path().join(pid.to_string())).unwrap();
        }
        t.process(7, "renamed-longer", 'S', 1, 1, 7, 1000);
        out[0].oom_score = Some(5);
        table.scan(t.path()).unwrap();
        table.select(crate::procs::Scope::DescendantsOf(1));
        fill_candidates(&mut out, &table, 1);
        let got = listed(&out);
        assert_eq!(got, sorted_candidates(&table, 1));
        assert_eq!(got[0], (7, 1000, "renamed-longer".to_string()));
        assert!(
            out.iter().all(|c| c.oom_score.is_none()),
            "scores are the refresh's to read"
        );
        assert_eq!(out.len(), 19, "pids 2 to 19 and 901");
        assert!(
            out.capacity() < MAX_CANDIDATES,
            "the room of 512 is given back"
        );
        // And none at all.
        table.select(crate::procs::Scope::DescendantsOf(999));
        fill_candidates(&mut out, &table, 1);
        assert!(out.is_empty());
    }

    #[test]
    fn oom_score_is_read_from_the_process_dir() {
        let t = crate::procs::fixture::FakeProc::new("oom-score", "100.0");
        t.process(4242, "app", 'S', 1, 1, 0, 1);
        std::fs::write(t.path().join("4242/oom_score"), "667\n").unwrap();
        assert_eq!(read_oom_score(t.path(), 4242), Some(667));
        assert_eq!(read_oom_score(t.path(), 4243), None, "no such process");
        std::fs::write(t.path().join("4242/oom_score"), "x\n").unwrap();
        assert_eq!(read_oom_score(t.path(), 4242), None);
    }
}
