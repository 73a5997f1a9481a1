//! A census of the processes in scope: counts, zombies and who fails to reap
//! them, top memory users. Built from a [`ProcTable`] scan; decides nothing
//! about what to do with the numbers.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;

use super::name::ProcName;
use super::table::{ProcEntry, ProcTable};
use super::{ProcsError, Scope};

/// How many zombie parents and RSS leaders a census reports.
const MAX_UNREAPED_PARENTS: usize = 5;
const MAX_TOP_RSS: usize = 3;
/// Room for this many unreaped zombies' ids is made at the first census,
/// and below it never given back: a burst's few then grow no list.
const KEEP_UNREAPED_IDS: usize = 16;

/// An unreaped zombie: (parent, start time, pid).
pub type UnreapedId = (i32, u64, i32);

/// Copies `src` into `dst`'s room, with the room `src` has: a copy of a
/// list whose room was made ahead (or given back) grows (or shrinks) with
/// it, at once, not when it first fills.
fn copy_with_room<T: Clone>(dst: &mut Vec<T>, src: &Vec<T>) {
    // The room first, while `dst` is empty: one block made, nothing moved.
    if dst.capacity() != src.capacity() {
        dst.clear();
        if dst.capacity() < src.capacity() {
            dst.reserve_exact(src.capacity());
        } else {
            dst.shrink_to(src.capacity());
        }
    }
    dst.clone_from(src);
}

/// Processes in scope at one moment.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessCensus {
    /// Processes (thread groups).
    pub processes: u32,
    /// Threads, summed over processes.
    pub threads: u64,
    /// Zombies of any parent.
    pub zombies_total: u32,
    /// Zombies whose parent is ward: ward will reap them.
    pub zombies_reapable: u32,
    /// Live parents other than ward that hold zombies, most zombies first, at
    /// most 5. No init can reap these; only the parent (or its exit) can.
    pub unreaped: Vec<ZombieParent>,
    /// Zombies held by parents other than ward, over all such parents.
    pub unreaped_total: u32,
    /// The 3 processes with the largest resident set, largest first.
    pub top_rss: Vec<ProcRss>,
    /// Stat files that could not be read or parsed (vanished processes are
    /// not counted).
    pub unreadable: u32,
    /// Of the zombies in `unreaped_total`, the ones the census before this
    /// one saw too (set by the
    /// sampler, [`UnreapedSeen`]): zombies left unreaped, not caught in
    /// the instant before a `wait()`.
    #[serde(skip)]
    pub unreaped_kept: u32,
    /// The parent holding the most of `unreaped_kept`, with that count.
    #[serde(skip)]
    pub worst_kept: Option<ZombieParent>,
}

/// A live process that does not reap its exited children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZombieParent {
    /// The parent's pid.
    pub pid: i32,
    /// The parent's comm, if it was in the scan.
    pub name: Option<ProcName>,
    /// How many zombies it holds.
    pub zombies: u32,
    /// Seconds since the oldest of them was started. The kernel does not record
    /// when a process exited, so this is an upper bound on its time as a zombie.
    pub oldest_zombie_age_s: u64,
}

/// The unreaped zombies of one census (their ids from [`census_into`]),
/// kept to compare with the next. A
/// zombie counts as left unreaped only when two censuses in a row see it,
/// the same process (pid and start time), under its parent: one look can
/// catch a child in the instant between its death and its parent's
/// `wait()` (an OOM victim, seen by the look ward takes right after the
/// kill, under a shell already waiting for it), and a busy parent that
/// does wait has a different such child at each look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnreapedSeen {
    /// As [`census_into`] fills them: sorted by the whole triple.
    ids: Vec<UnreapedId>,
}

impl Clone for ProcessCensus {
    fn clone(&self) -> ProcessCensus {
        let mut c = ProcessCensus::default();
        c.clone_from(self);
        c
    }

    /// Into the lists' room (the names in them are inline): the board's
    /// copy is refreshed every sample. Every field is named, so a new one
    /// cannot be missed.
    fn clone_from(&mut self, source: &ProcessCensus) {
        let ProcessCensus {
            processes,
            threads,
            zombies_total,
            zombies_reapable,
            unreaped,
            unreaped_total,
            top_rss,
            unreadable,
            unreaped_kept,
            worst_kept,
        } = source;
        self.processes = *processes;
        self.threads = *threads;
        self.zombies_total = *zombies_total;
        self.zombies_reapable = *zombies_reapable;
        copy_with_room(&mut self.unreaped, unreaped);
        self.unreaped_total = *unreaped_total;
        copy_with_room(&mut self.top_rss, top_rss);
        self.unreadable = *unreadable;
        self.unreaped_kept = *unreaped_kept;
        self.worst_kept.clone_from(worst_kept);
    }
}

impl UnreapedSeen {
    /// A census's ids, as [`census_into`] filled them.
    pub fn of(ids: &[UnreapedId]) -> UnreapedSeen {
        UnreapedSeen { ids: ids.to_vec() }
    }

    /// Keeps `ids`, a census's just compared, as the look the next one is
    /// compared with, and hands the earlier ones' room back in `ids`,
    /// emptied, for the next census to fill: the two lists trade places,
    /// so a flood of zombies is held twice (the census's and the one
    /// before), never copied.
    pub fn keep(&mut self, ids: &mut Vec<UnreapedId>) {
        std::mem::swap(&mut self.ids, ids);
        ids.clear();
        // The first time, the room the census makes for itself: made with
        // the first look, not the second.
        ids.reserve(KEEP_UNREAPED_IDS);
    }

    /// The zombies both this earlier census and the census `now` (whose
    /// ids are `now_ids`) saw, and the parent that held the most of them:
    /// (pid, name, count, its oldest zombie's age in seconds from `now`).
    pub fn persisting(
        &self,
        now_ids: &[UnreapedId],
        now: &ProcessCensus,
    ) -> (u32, Option<ZombieParent>) {
        let mut total = 0;
        let mut worst: Option<ZombieParent> = None;
        for group in now_ids.chunk_by(|a, b| a.0 == b.0) {
            let held = group
                .iter()
                .filter(|id| self.ids.binary_search(id).is_ok())
                .count() as u32;
            if held == 0 {
                continue;
            }
            total += held;
            if worst.as_ref().is_none_or(|w| held > w.zombies) {
                let parent = now.unreaped.iter().find(|p| p.pid == group[0].0);
                worst = Some(ZombieParent {
                    pid: group[0].0,
                    name: parent.and_then(|p| p.name),
                    zombies: held,
                    oldest_zombie_age_s: parent.map_or(0, |p| p.oldest_zombie_age_s),
                });
            }
        }
        (total, worst)
    }
}

/// A process and its resident memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProcRss {
    /// Process ID.
    pub pid: i32,
    /// Its comm.
    pub name: ProcName,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Scans `proc_root` into `table` and counts the processes in `scope`.
/// `self_pid` is ward's pid as seen in that `/proc`: zombies it parents are
/// reapable, all others are someone else's failure to reap.
pub fn census(
    proc_root: &Path,
    self_pid: i32,
    scope: Scope,
    table: &mut ProcTable,
) -> Result<ProcessCensus, ProcsError> {
    let mut c = ProcessCensus::default();
    census_into(proc_root, self_pid, scope, table, &mut c, &mut Vec::new())?;
    Ok(c)
}

/// As [`census`], into `out`, whose lists' room is reused: the watch
/// takes a census every sample, and a new one each time made malloc map a
/// page and give it back on a 15 s cycle in an idle ward. `ids` gets each
/// zombie counted in `unreaped_total` as (parent, start time, pid), sorted
/// by the whole triple, to tell the same zombie in the next census
/// ([`UnreapedSeen`]); they are not part of the census, so the copies of
/// it that the watch hands out do not hold a flood's ids again. On an
/// error `out` and `ids` are left as they were.
pub fn census_into(
    proc_root: &Path,
    self_pid: i32,
    scope: Scope,
    table: &mut ProcTable,
    out: &mut ProcessCensus,
    ids: &mut Vec<UnreapedId>,
) -> Result<(), ProcsError> {
    table.scan(proc_root)?;
    table.select(scope);
    // Only the age of a zombie someone else fails to reap needs the clock,
    // and most censuses find none: no /proc/uptime read for them.
    let uptime_ticks = if table
        .selected()
        .any(|e| e.is_zombie() && e.ppid != self_pid)
    {
        read_uptime_ticks(proc_root, clock_ticks())?
    } else {
        0
    };
    count_into(table, self_pid, uptime_ticks, page_size(), out, ids);
    Ok(())
}

/// The counting part of [`census`], on a table already scanned and selected.
fn count_into(
    table: &ProcTable,
    self_pid: i32,
    uptime_ticks: u64,
    page_size: u64,
    c: &mut ProcessCensus,
    unreaped: &mut Vec<UnreapedId>,
) {
    // Every field starts over but the lists, whose room is refilled in
    // place: a census during a burst of processes made and freed a block
    // per list and per name, and left the heap larger than before it.
    let mut top_rss = std::mem::take(&mut c.top_rss);
    let mut parents = std::mem::take(&mut c.unreaped);
    *c = ProcessCensus {
        unreadable: table.unreadable(),
        ..Default::default()
    };
    // (ppid, starttime, pid) of zombies that ward cannot reap. Empty in a
    // healthy container.
    unreaped.clear();
    unreaped.reserve(KEEP_UNREAPED_IDS);
    parents.clear();
    parents.reserve(MAX_UNREAPED_PARENTS);
    top_rss.clear();
    top_rss.reserve(MAX_TOP_RSS);
    let mut top: [Option<&ProcEntry>; MAX_TOP_RSS] = [None; MAX_TOP_RSS];
    for e in table.selected() {
        c.processes += 1;
        c.threads += u64::from(e.threads);
        if e.is_zombie() {
            c.zombies_total += 1;
            if e.ppid == self_pid {
                c.zombies_reapable += 1;
            } else {
                unreaped.push((e.ppid, e.starttime, e.pid));
            }
            continue;
        }
        // Keep the top few by (rss desc, pid asc); insertion into a tiny array.
        if let Some(slot) = top
            .iter()
            .position(|t| t.is_none_or(|t| e.rss_pages > t.rss_pages))
        {
            top[slot..].rotate_right(1);
            top[slot] = Some(e);
        }
    }
    c.unreaped_total = unreaped.len() as u32;
    // Sorted by the whole triple (`UnreapedSeen` searches it); pids are
    // unique, so in place is the same order as a stable sort's.
    crate::rank::heapsort_by_key(unreaped, |&(ppid, start, pid)| {
        (crate::rank::signed(ppid.into()), start, pid)
    });
    // The parents holding the most, equal counts in pid order: the groups
    // come in pid order, and one only displaces a parent with fewer.
    let mut worst: [Option<&[UnreapedId]>; MAX_UNREAPED_PARENTS] = [None; MAX_UNREAPED_PARENTS];
    for group in unreaped.chunk_by(|a, b| a.0 == b.0) {
        if let Some(slot) = worst
            .iter()
            .position(|w| w.is_none_or(|w| group.len() > w.len()))
        {
            worst[slot..].rotate_right(1);
            worst[slot] = Some(group);
        }
    }
    parents.extend(worst.iter().flatten().map(|group| {
        let oldest = group.iter().map(|z| z.1).min().unwrap_or(0);
        ZombieParent {
            pid: group[0].0,
            name: table.get(group[0].0).map(|p| ProcName::new(table.name(p))),
            zombies: group.len() as u32,
            oldest_zombie_age_s: uptime_ticks.saturating_sub(oldest) / clock_ticks(),
        }
    }));
    c.unreaped = parents;
    // After a flood of them, their room is given back.
    let n = unreaped.len();
    super::table::fit(unreaped, n, KEEP_UNREAPED_IDS);
    top_rss.extend(top.iter().flatten().map(|e| ProcRss {
        pid: e.pid,
        name: ProcName::new(table.name(e)),
        rss_bytes: e.rss_pages * page_size,
    }));
    c.top_rss = top_rss;
}

/// `/proc/uptime`'s first field (seconds since boot) in clock ticks, the unit
/// of stat's starttime.
fn read_uptime_ticks(proc_root: &Path, ticks_per_s: u64) -> Result<u64, ProcsError> {
    // The path on the stack: a census in a burst of processes with zombies
    // under other parents reads it, and allocates nothing else.
    let mut buf = [0u8; 128];
    let read = crate::cgroup::in_dir(proc_root, &["uptime"], |path| {
        std::fs::File::open(path).and_then(|mut f| f.read(&mut buf))
    });
    let path = || proc_root.join("uptime");
    let n = read.map_err(|source| ProcsError::Io {
        path: path(),
        source,
    })?;
    let malformed = || ProcsError::Malformed {
        path: path(),
        what: "expected 'SECONDS.FRACTION IDLE'",
    };
    let text = std::str::from_utf8(&buf[..n]).map_err(|_| malformed())?;
    let secs: f64 = text
        .split_whitespace()
        .next()
        .and_then(crate::units::decimal)
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(malformed)?;
    Ok((secs * ticks_per_s as f64) as u64)
}

/// The last pid handed out in the reader's PID namespace
/// (`sys/kernel/ns_last_pid`, Linux 3.3+), opened once and read again with
/// one `pread`: the open, a sysctl lookup, costs several times the read.
pub struct LastPid(Option<std::fs::File>);

impl LastPid {
    /// Opens the file; a missing or unreadable one reads as `None`.
    pub fn open(proc_root: &Path) -> LastPid {
        LastPid(std::fs::File::open(proc_root.join("sys/kernel/ns_last_pid")).ok())
    }

    /// The pid now; `None` when the file could not be opened or read.
    pub fn read(&self) -> Option<i32> {
        let mut buf = [0u8; 32];
        let n = self.0.as_ref()?.read_at(&mut buf, 0).ok()?;
        parse_last_pid(&buf[..n])
    }
}

/// Parses `ns_last_pid`: one decimal pid and a newline.
fn parse_last_pid(bytes: &[u8]) -> Option<i32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Clock ticks per second (USER_HZ), the unit of stat's times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // USER_HZ is 100 on every Linux architecture ward targets.
    if t > 0 { t as u64 } else { 100 }
}

/// Bytes per page, the unit of stat's rss.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::fixture::FakeProc;

    /// Age in seconds at the tree's uptime of 1000 s.
    fn age(start_ticks: u64) -> u64 {
        (1000 * clock_ticks() - start_ticks) / clock_ticks()
    }

    #[test]
    fn census_of_everything_as_pid_1() {
        let t = FakeProc::incidents("all");
        let c = census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap();
        let page = page_size();
        assert_eq!(c.processes, 10);
        assert_eq!(c.threads, 2 + 4 + 1 + 1 + 3 + 1 + 1 + 1);
        assert_eq!(
            (c.zombies_total, c.zombies_reapable, c.unreaped_total),
            (5, 1, 4)
        );
        assert_eq!(
            c.unreaped,
            vec![
                ZombieParent {
                    pid: 20,
                    name: Some("python".into()),
                    zombies: 3,
                    oldest_zombie_age_s: age(50_000),
                },
                ZombieParent {
                    pid: 30,
                    name: Some("zabbix_server".into()),
                    zombies: 1,
                    oldest_zombie_age_s: age(99_000),
                },
            ]
        );
        let top: Vec<_> = c
            .top_rss
            .iter()
            .map(|p| (p.pid, p.name.as_str(), p.rss_bytes))
            .collect();
        assert_eq!(
            top,
            vec![
                (40, "other", 9000 * page),
                (10, "app", 5000 * page),
                (20, "python", 2000 * page)
            ]
        );
        assert_eq!(c.unreadable, 1);
    }

    #[test]
    fn census_of_descendants_as_subreaper() {
        let t = FakeProc::incidents("desc");
        let c = census(t.path(), 1, Scope::DescendantsOf(1), &mut ProcTable::new()).unwrap();
        // Neither ward itself nor 40 (not its descendant).
        assert_eq!(c.processes, 8);
        assert_eq!(
            (c.zombies_total, c.zombies_reapable, c.unreaped_total),
            (5, 1, 4)
        );
        let top: Vec<_> = c.top_rss.iter().map(|p| p.pid).collect();
        assert_eq!(top, vec![10, 20, 30]);
        // A subtree: only 30 and its zombie.
        let c = census(t.path(), 1, Scope::DescendantsOf(30), &mut ProcTable::new()).unwrap();
        assert_eq!((c.processes, c.zombies_total, c.unreaped_total), (1, 1, 1));
        assert!(c.top_rss.is_empty());
    }

    /// A census of the whole tree, with its unreaped zombies' ids.
    fn with_ids(t: &FakeProc) -> (ProcessCensus, Vec<UnreapedId>) {
        let (mut c, mut ids) = (ProcessCensus::default(), Vec::new());
        let table = &mut ProcTable::new();
        census_into(t.path(), 1, Scope::All, table, &mut c, &mut ids).unwrap();
        (c, ids)
    }

    #[test]
    fn only_zombies_two_censuses_saw_are_left_unreaped() {
        // A census of a tree with these zombies (pid, parent, start) under
        // live parents, and its ids.
        let census = |zombies: &[(i32, i32, u64)]| {
            let t = FakeProc::new("kept", "1000.0");
            t.process(1, "ward", 'S', 0, 1, 0, 1);
            for (pid, name) in [(3, "sh"), (10, "a"), (11, "b"), (12, "c")] {
                t.process(pid, name, 'S', 1, 1, 0, 1);
            }
            for &(pid, ppid, start) in zombies {
                t.process(pid, "z", 'Z', ppid, 1, start, 0);
            }
            with_ids(&t)
        };
        let seen = |look: &(ProcessCensus, Vec<UnreapedId>)| UnreapedSeen::of(&look.1);
        let held = |before: &UnreapedSeen, now: &(ProcessCensus, Vec<UnreapedId>)| {
            before.persisting(&now.1, &now.0)
        };
        // The shell's OOM-killed child, caught once before its wait().
        let once = seen(&census(&[(20, 3, 100)]));
        assert_eq!(held(&once, &census(&[])), (0, None));
        assert_eq!(
            held(&UnreapedSeen::default(), &census(&[(20, 3, 100)])),
            (0, None)
        );
        // A busy parent that does wait(): another zombie at each look, even
        // under the same pid (reused) with another start time.
        assert_eq!(held(&once, &census(&[(21, 3, 150)])).0, 0);
        assert_eq!(held(&once, &census(&[(20, 3, 150)])).0, 0);
        // Held through both: counted.
        let (n, worst) = held(&once, &census(&[(20, 3, 100), (21, 3, 150)]));
        assert_eq!(n, 1);
        let w = worst.unwrap();
        assert_eq!((w.pid, w.name.as_deref(), w.zombies), (3, Some("sh"), 1));
        // Several parents: each zombie is matched, the worst parent named.
        let before = seen(&census(&[
            (30, 10, 1),
            (31, 10, 2),
            (32, 10, 3),
            (40, 11, 1),
            (41, 11, 2),
        ]));
        let now = census(&[
            (30, 10, 1),
            (31, 10, 2),
            (40, 11, 1),
            (41, 11, 2),
            (42, 11, 3),
            (50, 12, 5),
        ]);
        let (n, worst) = held(&before, &now);
        assert_eq!(n, 4);
        let w = worst.unwrap();
        assert_eq!((w.pid, w.zombies), (10, 2));
        // Kept in place of the earlier look: the lists trade places, and
        // the next look compares with `now`.
        let mut kept = before;
        let mut ids = now.1.clone();
        kept.keep(&mut ids);
        assert_eq!(kept, UnreapedSeen::of(&now.1));
        assert_eq!(held(&kept, &now).0, 6);
        assert!(ids.is_empty() && ids.capacity() >= KEEP_UNREAPED_IDS);
    }

    #[test]
    fn unreaped_keeps_the_five_worst_parents() {
        let t = FakeProc::new("five", "10.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1);
        let mut pid = 100;
        for parent in 0..7 {
            let ppid = 10 + parent;
            t.process(ppid, &format!("p{parent}"), 'S', 1, 1, 0, 1);
            // Parent k holds k+1 zombies.
            for _ in 0..=parent {
                t.process(pid, "z", 'Z', ppid, 1, 0, 0);
                pid += 1;
            }
        }
        let c = census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap();
        let worst: Vec<_> = c.unreaped.iter().map(|p| (p.pid, p.zombies)).collect();
        assert_eq!(worst, vec![(16, 7), (15, 6), (14, 5), (13, 4), (12, 3)]);
        assert_eq!(c.unreaped_total, 28);
        assert_eq!(c.unreaped[0].oldest_zombie_age_s, 10);
    }

    #[test]
    fn equal_counts_keep_pid_order_across_the_cut() {
        let t = FakeProc::new("ties", "10.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1);
        let mut pid = 100;
        // By ascending parent pid: 3, 5, 3, 5, 1, 3, 5 zombies.
        for (parent, n) in [3, 5, 3, 5, 1, 3, 5].into_iter().enumerate() {
            let ppid = 10 + parent as i32;
            t.process(ppid, &format!("p{parent}"), 'S', 1, 1, 0, 1);
            for _ in 0..n {
                t.process(pid, "z", 'Z', ppid, 1, 0, 0);
                pid += 1;
            }
        }
        let (c, ids) = with_ids(&t);
        let worst: Vec<_> = c.unreaped.iter().map(|p| (p.pid, p.zombies)).collect();
        assert_eq!(worst, vec![(11, 5), (13, 5), (16, 5), (10, 3), (12, 3)]);
        assert_eq!(c.unreaped_total, 25);
        // The ids, as `UnreapedSeen` searches them: by parent, then start
        // time, then pid.
        assert_eq!(ids.len(), 25);
        assert!(ids.is_sorted());
    }

    #[test]
    fn the_room_a_flood_of_zombies_took_is_given_back() {
        let t = FakeProc::new("flood", "10.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1);
        t.process(10, "leaky", 'S', 1, 1, 0, 1);
        for pid in 100..300 {
            t.process(pid, "z", 'Z', 10, 1, 0, 0);
        }
        let (mut table, mut c) = (ProcTable::new(), ProcessCensus::default());
        let mut ids = Vec::new();
        census_into(t.path(), 1, Scope::All, &mut table, &mut c, &mut ids).unwrap();
        assert_eq!(c.unreaped_total, 200);
        assert!(ids.capacity() >= 200);
        let mut board = ProcessCensus::default();
        board.clone_from(&c);
        assert_eq!(board, c);
        for pid in 100..300 {
            std::fs::remove_dir_all(t.path().join(pid.to_string())).unwrap();
        }
        census_into(t.path(), 1, Scope::All, &mut table, &mut c, &mut ids).unwrap();
        assert_eq!(c.unreaped_total, 0);
        assert_eq!(ids.capacity(), KEEP_UNREAPED_IDS);
        board.clone_from(&c);
        assert_eq!(board, c);
    }

    #[test]
    fn a_reused_table_gives_the_same_answer() {
        let t = FakeProc::incidents("reuse");
        let mut table = ProcTable::new();
        let first = census(t.path(), 1, Scope::All, &mut table).unwrap();
        let _ = census(t.path(), 1, Scope::DescendantsOf(30), &mut table).unwrap();
        assert_eq!(census(t.path(), 1, Scope::All, &mut table).unwrap(), first);
    }

    #[test]
    fn last_pid_is_read_from_its_file() {
        assert_eq!(parse_last_pid(b"4\n"), Some(4));
        assert_eq!(parse_last_pid(b"x\n"), None);
        let t = FakeProc::new("lastpid", "1.00");
        assert_eq!(LastPid::open(t.path()).read(), None);
        std::fs::create_dir_all(t.path().join("sys/kernel")).unwrap();
        let file = t.path().join("sys/kernel/ns_last_pid");
        std::fs::write(&file, "37\n").unwrap();
        let kept = LastPid::open(t.path());
        assert_eq!(kept.read(), Some(37));
        // Read again through the same open file, from its start.
        std::fs::write(&file, "4051\n").unwrap();
        assert_eq!(kept.read(), Some(4051));
    }

    #[test]
    fn missing_proc_or_uptime_is_an_error() {
        let t = FakeProc::new("broken", "garbage");
        // No zombie to age: the clock is not read, so its garbage is no error.
        t.process(1, "ward", 'S', 0, 1, 10, 100)
            .process(2, "app", 'S', 1, 1, 20, 100)
            .process(3, "reapable", 'Z', 1, 1, 30, 0);
        let c = census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap();
        assert_eq!((c.processes, c.zombies_reapable), (3, 1));
        // A zombie its parent fails to reap needs its age, and so the clock.
        t.process(4, "lost", 'Z', 2, 1, 40, 0);
        let err = census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap_err();
        assert!(matches!(err, ProcsError::Malformed { .. }), "{err}");
        let gone = t.path().join("nope");
        let err = census(&gone, 1, Scope::All, &mut ProcTable::new()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn a_census_into_the_last_one_is_a_new_census_and_a_failed_one_keeps_it() {
        let busy = FakeProc::incidents("into-busy");
        let quiet = FakeProc::new("into-quiet", "100.0");
        quiet.process(1, "ward", 'S', 0, 1, 10, 100).process(
            2,
            "app-with-a-long-name",
            'S',
            1,
            1,
            20,
            300,
        );
        let fresh = |t: &FakeProc| census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap();
        let mut table = ProcTable::new();
        let (mut c, mut ids) = (ProcessCensus::default(), Vec::new());
        for t in [&busy, &quiet, &busy, &quiet] {
            census_into(t.path(), 1, Scope::All, &mut table, &mut c, &mut ids).unwrap();
            assert_eq!(c, fresh(t));
            // The board's copy, refreshed in place, is the census too.
            let mut copy = fresh(if std::ptr::eq(t, &busy) {
                &quiet
            } else {
                &busy
            });
            copy.clone_from(&c);
            assert_eq!(copy, c);
            assert_eq!(c.clone(), c);
        }
        let (kept, kept_ids) = (c.clone(), ids.clone());
        let nope = busy.path().join("nope");
        let err = census_into(&nope, 1, Scope::All, &mut table, &mut c, &mut ids);
        assert!(err.is_err());
        assert_eq!(c, kept, "a failed census changed the last one");
        assert_eq!(ids, kept_ids, "a failed census changed the last one's ids");
    }

    #[test]
    fn serializes_for_the_log_and_metrics() {
        let t = FakeProc::incidents("json");
        let c = census(t.path(), 1, Scope::All, &mut ProcTable::new()).unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["zombies_reapable"], 1);
        assert_eq!(v["unreaped"][0]["name"], "python");
        assert_eq!(v["unreaped"][0]["zombies"], 3);
        assert_eq!(v["top_rss"][0]["pid"], 40);
    }
}
