//! A census taken in a burst of processes allocates nothing once the
//! watch is warm: the table's room for a few dozen processes is made at
//! the first scan, the census's lists (the largest processes, the parents
//! that hold zombies) and the zombies' ids beside it are refilled in their
//! own room, and the names in them are inline (a name that is not UTF-8
//! made text in the table's kept room). Before, a census in an orphan
//! storm grew the table, made a list and a name per parent that held
//! zombies, and the board's copy and the OOM candidates did the same:
//! after five storms of 20,000 orphans an idle ward's heap was a page
//! larger than before them (ward-bench, *Memory*). One test in its own
//! binary, with an allocator that counts blocks and the bytes held.

use std::path::Path;

use ward::procs::{ProcTable, ProcessCensus, Scope, UnreapedId, UnreapedSeen, census_into};
use ward::watch::victims::{Candidate, KnownZombies, fill_candidates};

mod alloc_count;

use alloc_count::{Counting, all_allocs, live_bytes};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Writes `PID/stat` for one process under `root`; `comm` need not be
/// UTF-8, as a task's is not always.
fn process(root: &Path, pid: i32, comm: &[u8], state: char, ppid: i32, start: u64, rss: u64) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(
        format!(
            ") {state} {ppid} {pid} {pid} 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 \
             1 0 {start} 1000000 {rss} 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
             17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
        .as_bytes(),
    );
    std::fs::write(dir.join("stat"), line).unwrap();
}

/// The watch's state that a census refills, as the watch thread keeps it.
struct Kept {
    scope: Scope,
    table: ProcTable,
    census: ProcessCensus,
    board: ProcessCensus,
    ids: Vec<UnreapedId>,
    seen: UnreapedSeen,
    /// What the last look found left unreaped (zombies two looks saw).
    held: u32,
    candidates: Vec<Candidate>,
    zombies: KnownZombies,
}

impl Kept {
    fn new(scope: Scope) -> Kept {
        Kept {
            scope,
            table: ProcTable::default(),
            census: ProcessCensus::default(),
            board: ProcessCensus::default(),
            ids: Vec::new(),
            seen: UnreapedSeen::default(),
            held: 0,
            candidates: Vec::new(),
            zombies: KnownZombies::default(),
        }
    }

    /// One look: the census, the zombies two looks saw (the ids then kept
    /// as the sampler keeps them), the board's copy, the OOM candidates.
    /// Returns the blocks it made.
    fn look(&mut self, root: &Path) -> usize {
        let before = all_allocs();
        let ids = &mut self.ids;
        census_into(root, 1, self.scope, &mut self.table, &mut self.census, ids).unwrap();
        self.held = self.seen.persisting(&self.ids, &self.census).0;
        self.seen.keep(&mut self.ids);
        self.board.clone_from(&self.census);
        fill_candidates(&mut self.candidates, &self.table, 1);
        self.zombies.refill(&self.table);
        all_allocs() - before
    }
}

/// The bytes a new copy of `c` holds (as the board's and the reaping
/// thread's copies do).
fn copy_bytes(c: &ProcessCensus) -> usize {
    let before = live_bytes();
    let mut copy = ProcessCensus::default();
    copy.clone_from(c);
    let held = live_bytes() - before;
    drop(copy);
    held
}

/// Removes the processes with these pids from the tree.
fn gone(root: &Path, pids: impl IntoIterator<Item = i32>) {
    for pid in pids {
        std::fs::remove_dir_all(root.join(pid.to_string())).unwrap();
    }
}

/// Idle, a storm, idle again, then a flood of zombies and idle: the looks
/// as the watch takes them, with ward as PID 1 (every process) or as a
/// subreaper (its descendants, found through the table's index by parent).
fn storm(scope: Scope, tag: &str) {
    let root = std::env::temp_dir().join(format!("ward-census-alloc-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("uptime"), "1000.00 12345.67\n").unwrap();
    // Idle: ward, the shell it started, and the app.
    process(&root, 1, b"ward", 'S', 0, 10, 100);
    process(&root, 2, b"sh", 'S', 1, 20, 200);
    process(&root, 3, b"app", 'S', 2, 30, 3000);
    // A name that is not UTF-8 (Latin-1): its stat line is made text in
    // the table's kept room.
    process(&root, 4, b"caf\xe9", 'S', 2, 35, 100);
    let mut kept = Kept::new(scope);
    // A subreaper's census counts its descendants, not itself.
    let ward = u32::from(scope == Scope::All);
    // Warm: the first look makes the room the others keep.
    kept.look(&root);
    assert_eq!(kept.census.processes, 3 + ward);
    assert_eq!(kept.look(&root), 0, "{tag}: an idle look, warm");
    let idle_copy = copy_bytes(&kept.census);

    // A storm, as ward-bench's orphans workload makes one: two workers
    // whose children are zombies until they wait for them, orphans
    // reparented to ward, and names longer than the idle ones.
    for w in 0..2 {
        let worker = 10 + w * 10;
        process(&root, worker, b"ward-workload", 'S', 3, 40, 500 + w as u64);
        for c in 1..=3 {
            process(
                &root,
                worker + c,
                b"ward-workload",
                'Z',
                worker,
                50 + c as u64,
                0,
            );
        }
    }
    for z in 40..44 {
        process(&root, z, b"orphan-grandchild", 'Z', 1, 60, 0);
    }
    process(&root, 44, b"\xff\xfeworker", 'S', 3, 65, 100);
    let made = kept.look(&root);
    assert_eq!(kept.census.processes, 16 + ward);
    assert_eq!(kept.census.unreaped_total, 6);
    assert_eq!(kept.census.unreaped.len(), 2);
    assert_eq!(
        kept.census.unreaped[0].name.as_deref(),
        Some("ward-workload")
    );
    assert_eq!(kept.census.zombies_reapable, 4);
    assert_eq!(kept.board, kept.census);
    assert_eq!(kept.candidates.len(), 6, "{:?}", kept.candidates);
    assert!(
        kept.candidates
            .iter()
            .any(|c| c.name == "\u{fffd}\u{fffd}worker")
    );
    assert_eq!(
        made, 0,
        "{tag}: blocks made by a census in a burst of processes"
    );

    // The next look sees the same zombies under the workers: left
    // unreaped, with the census's and the board's lists refilled again.
    assert_eq!(kept.held, 0, "{tag}: zombies seen once");
    assert_eq!(kept.look(&root), 0, "{tag}: a second look in the burst");
    assert_eq!(kept.held, 6, "{tag}: zombies two looks saw");

    // Over: back to idle, with nothing left to grow.
    gone(&root, [10, 11, 12, 13, 20, 21, 22, 23, 40, 41, 42, 43, 44]);
    assert_eq!(kept.look(&root), 0, "{tag}: the look after the burst");
    assert_eq!(kept.census.processes, 3 + ward);
    assert!(kept.census.unreaped.is_empty());
    assert_eq!(kept.board, kept.census);

    // A flood of zombies under one parent grows the lists (that is what
    // their room is for) and the looks after it give the room back.
    process(&root, 10, b"leaky", 'S', 3, 40, 500);
    for z in 100..200 {
        process(&root, z, b"leaked", 'Z', 10, 70, 0);
    }
    kept.look(&root);
    assert_eq!(kept.census.unreaped_total, 100);
    // The flood is held twice, the look's ids and the one's before, which
    // trade places (the second look makes the second list's room); the
    // census and its copy on the board hold none of it (the board's copy
    // held it a third time, 16 bytes a zombie).
    kept.look(&root);
    assert_eq!(kept.held, 100);
    let before = live_bytes();
    kept.look(&root);
    assert_eq!(kept.held, 100);
    assert_eq!(
        live_bytes(),
        before,
        "{tag}: bytes a third look in a flood added"
    );
    assert_eq!(
        copy_bytes(&kept.census),
        idle_copy,
        "{tag}: bytes a copy of a census holds in a flood of 100 zombies, against idle"
    );
    // Over: each of the next two looks gives back one list's room, and
    // the look after them makes nothing.
    gone(&root, std::iter::once(10).chain(100..200));
    kept.look(&root);
    kept.look(&root);
    assert_eq!(kept.census.processes, 3 + ward);
    assert_eq!(kept.look(&root), 0, "{tag}: a look once a flood was over");
    assert_eq!(kept.board, kept.census);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_census_in_a_burst_of_processes_allocates_nothing() {
    storm(Scope::All, "pid1");
    storm(Scope::DescendantsOf(1), "subreaper");
}
