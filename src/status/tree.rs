//! The process tree `ward status` shows: read from `/proc` by the client
//! itself (thin I/O), shaped by a pure [`build`]: live processes in tree
//! order, and zombies grouped under the live parent that fails to reap them.
//! Reads only; never signals or waits.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::procs::stat::parse_stat;
use crate::rank;

/// One process as read from `/proc`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcInfo {
    /// Process ID.
    pub pid: i32,
    /// Parent PID (0: outside the namespace, or PID 1).
    pub ppid: i32,
    /// State letter.
    pub state: char,
    /// comm.
    pub comm: String,
    /// Start time after boot, clock ticks.
    pub starttime: u64,
    /// Resident set, pages.
    pub rss_pages: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// The command line, arguments joined by spaces (empty for zombies and
    /// kernel threads).
    pub cmdline: String,
}

/// A live process in the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcRow {
    /// Process ID.
    pub pid: i32,
    /// Parent PID.
    pub ppid: i32,
    /// State letter (`S`, `R`, `D`, ...).
    pub state: String,
    /// Seconds since it started.
    pub age_s: u64,
    /// Resident set, bytes.
    pub rss_bytes: u64,
    /// CPU time used, seconds.
    pub cpu_s: f64,
    /// Command line, or `[comm]` when it has none.
    pub command: String,
    /// Depth in the tree (0 for a root).
    pub depth: u32,
}

/// Zombies of one parent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZombieGroup {
    /// The parent's pid.
    pub parent_pid: i32,
    /// The parent's comm, when it is in the table.
    pub parent_name: Option<String>,
    /// How many zombies it holds.
    pub count: u32,
    /// Their names, distinct, at most 3.
    pub names: Vec<String>,
    /// Seconds since the oldest was started (an upper bound on its time as a
    /// zombie: the kernel does not record when a process exited).
    pub oldest_age_s: u64,
    /// True when the parent is ward itself: it will reap them.
    pub reapable: bool,
    /// How many of them a second look, [`SECOND_LOOK`] later, still found
    /// unreaped; `count` when no second look was taken (ward's own, which
    /// it reaps). A zombie seen once may be one its parent was about to
    /// wait for.
    pub seen_twice: u32,
    /// Each zombie's pid and start time, for the second look.
    #[serde(skip)]
    pub ids: Vec<(i32, u64)>,
}

/// How long `ward status` waits before it looks again at zombies whose
/// parent is not ward: a parent that reaps its children takes them within
/// it, one that never waits leaves them.
pub const SECOND_LOOK: std::time::Duration = std::time::Duration::from_millis(200);

/// The whole tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tree {
    /// Live processes in tree order (parents before children, by pid).
    pub processes: Vec<ProcRow>,
    /// Zombies by parent, most first.
    pub zombies: Vec<ZombieGroup>,
}

impl Tree {
    /// Zombies no init can reap: their parent lives and did not wait for
    /// them between two looks.
    pub fn unreaped(&self) -> u32 {
        self.zombies
            .iter()
            .filter(|g| !g.reapable)
            .map(|g| g.seen_twice)
            .sum()
    }

    /// True when some zombie's parent is not ward: only a second look tells
    /// one its parent is about to reap from one it never will.
    pub fn wants_second_look(&self) -> bool {
        self.zombies.iter().any(|g| !g.reapable)
    }

    /// Counts, for each group ward does not reap, the zombies `still` says
    /// are still there (the same pid and start time, still a zombie).
    pub fn second_look(&mut self, mut still: impl FnMut(i32, u64) -> bool) {
        for g in self.zombies.iter_mut().filter(|g| !g.reapable) {
            g.seen_twice = g.ids.iter().filter(|(pid, st)| still(*pid, *st)).count() as u32;
        }
    }
}

/// Shapes the processes into a tree. `ward_pid` is ward's pid when it is in
/// this namespace (its zombies are reapable); `skip` (the `ward status`
/// process itself) is left out.
pub fn build(
    procs: &[ProcInfo],
    uptime_ticks: u64,
    ticks_per_s: u64,
    page_size: u64,
    ward_pid: Option<i32>,
    skip: i32,
) -> Tree {
    let tps = ticks_per_s.max(1);
    let age = |start: u64| uptime_ticks.saturating_sub(start) / tps;
    let mut live: Vec<&ProcInfo> = procs
        .iter()
        .filter(|p| p.state != 'Z' && p.pid != skip)
        .collect();
    rank::sort(&mut live, |p| (rank::signed(p.pid.into()), 0));
    let is_live = |pid: i32| live.binary_search_by_key(&pid, |p| p.pid).is_ok();

    let mut tree = Tree::default();
    // Roots: processes whose parent is not in the table (PID 1, processes
    // entered with `docker exec`, whose parent is outside the namespace).
    let mut stack: Vec<(&ProcInfo, u32)> = live
        .iter()
        .rev()
        .filter(|p| !is_live(p.ppid) || p.ppid == p.pid)
        .map(|p| (*p, 0))
        .collect();
    // Live processes by parent, so finding children costs a binary search
    // rather than a pass over thousands of processes.
    let mut by_ppid: Vec<&ProcInfo> = live.clone();
    rank::sort(&mut by_ppid, |p| {
        (rank::signed(p.ppid.into()), rank::signed(p.pid.into()))
    });
    let mut seen = vec![false; live.len()];
    while let Some((p, depth)) = stack.pop() {
        let Ok(i) = live.binary_search_by_key(&p.pid, |q| q.pid) else {
            continue;
        };
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        tree.processes.push(ProcRow {
            pid: p.pid,
            ppid: p.ppid,
            state: p.state.to_string(),
            age_s: age(p.starttime),
            rss_bytes: p.rss_pages * page_size,
            cpu_s: p.cpu_ticks as f64 / tps as f64,
            command: command_words(&p.comm, &p.cmdline),
            depth,
        });
        let from = by_ppid.partition_point(|c| c.ppid < p.pid);
        let to = by_ppid.partition_point(|c| c.ppid <= p.pid);
        stack.extend(
            by_ppid[from..to]
                .iter()
                .rev()
                .filter(|c| c.pid != p.pid)
                .map(|c| (*c, depth + 1)),
        );
    }

    let mut zombies: Vec<&ProcInfo> = procs.iter().filter(|p| p.state == 'Z').collect();
    rank::sort(&mut zombies, |z| {
        (rank::signed(z.ppid.into()), rank::signed(z.pid.into()))
    });
    for group in zombies.chunk_by(|a, b| a.ppid == b.ppid) {
        let parent = group[0].ppid;
        let mut names: Vec<String> = Vec::new();
        for z in group {
            if names.len() < 3 && !names.contains(&z.comm) {
                names.push(z.comm.clone());
            }
        }
        tree.zombies.push(ZombieGroup {
            parent_pid: parent,
            parent_name: procs
                .iter()
                .find(|p| p.pid == parent)
                .map(|p| p.comm.clone()),
            count: group.len() as u32,
            names,
            oldest_age_s: group.iter().map(|z| age(z.starttime)).max().unwrap_or(0),
            reapable: Some(parent) == ward_pid,
            seen_twice: group.len() as u32,
            ids: group.iter().map(|z| (z.pid, z.starttime)).collect(),
        });
    }
    rank::sort(&mut tree.zombies, |g| {
        (
            rank::desc(g.count.into()),
            rank::signed(g.parent_pid.into()),
        )
    });
    tree
}

/// Every process under `proc_root`, and the uptime in clock ticks. Processes
/// that vanish mid-read are skipped.
pub fn read(proc_root: &Path, ticks_per_s: u64) -> std::io::Result<(Vec<ProcInfo>, u64)> {
    let uptime = std::fs::read_to_string(proc_root.join("uptime"))?;
    let uptime_s: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(crate::units::decimal)
        .ok_or_else(|| {
            std::io::Error::other(format!("{}/uptime: malformed", proc_root.display()))
        })?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let dir = entry.path();
        // Bytes, not a String: comm is whatever the process wrote to
        // /proc/self/comm, UTF-8 or not, and a process must not vanish from
        // the list for its name (as `procs::table` reads it).
        let Ok(stat_bytes) = std::fs::read(dir.join("stat")) else {
            continue;
        };
        let stat_text = String::from_utf8_lossy(&stat_bytes);
        let Ok(stat) = parse_stat(&stat_text) else {
            continue;
        };
        out.push(ProcInfo {
            pid,
            ppid: stat.ppid,
            state: stat.state,
            comm: stat.comm.to_string(),
            starttime: stat.starttime,
            rss_pages: stat.rss,
            cpu_ticks: stat.utime + stat.stime,
            cmdline: read_cmdline(&dir.join("cmdline")),
        });
    }
    Ok((out, (uptime_s * ticks_per_s as f64) as u64))
}

/// True when `pid` is still the zombie that started at `starttime` (not
/// reaped, and its pid not taken by another process since).
pub fn still_zombie(proc_root: &Path, pid: i32, starttime: u64) -> bool {
    let Ok(bytes) = std::fs::read(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    parse_stat(&String::from_utf8_lossy(&bytes))
        .is_ok_and(|s| s.state == 'Z' && s.starttime == starttime)
}

/// What the list shows for a process: its command line, led by `[name]`
/// when the name the kernel and ward's warnings use is not the program's
/// (busybox runs `sort` in a forked `sh -c ...` without an exec), so the
/// process a warning names can be found. `[name]` alone without a command
/// line (kernel threads, zombies).
fn command_words(comm: &str, cmdline: &str) -> String {
    if cmdline.is_empty() {
        return format!("[{comm}]");
    }
    let first = cmdline.split(' ').next().unwrap_or(cmdline);
    let program = first.rsplit('/').next().unwrap_or(first);
    // comm is cut at 15 bytes; a process may add words to its title
    // (`nginx: worker process`).
    if program.starts_with(comm) || (comm.starts_with(program) && !program.is_empty()) {
        cmdline.to_string()
    } else {
        format!("[{comm}] {cmdline}")
    }
}

/// At most this much of a command line is shown.
const CMDLINE_MAX: u64 = 512;

/// The command line with NULs as spaces, control characters escaped, cut
/// at [`CMDLINE_MAX`] bytes; empty when unreadable.
fn read_cmdline(path: &Path) -> String {
    let mut buf = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(CMDLINE_MAX).read_to_end(&mut buf));
    if read.is_err() {
        return String::new();
    }
    cmdline_words(&buf, CMDLINE_MAX as usize)
}

/// `/proc/PID/cmdline` bytes as one line, its arguments joined by spaces;
/// other control characters are kept for the screen to escape (the JSON
/// carries them as they are). Pure.
pub fn cmdline_words(bytes: &[u8], max: usize) -> String {
    let cut = bytes.len() >= max;
    let text = String::from_utf8_lossy(bytes);
    let mut out = text.trim_end_matches('\0').replace('\0', " ");
    if cut {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_is_not_the_programs_leads_its_command_line() {
        assert_eq!(command_words("app", "/app --port 8080"), "/app --port 8080");
        assert_eq!(
            command_words("nginx", "nginx: worker process"),
            "nginx: worker process"
        );
        assert_eq!(
            command_words("ward-workload-l", "/x/ward-workload-long zombies 5"),
            "/x/ward-workload-long zombies 5"
        );
        // busybox's sort in the shell it forked from.
        assert_eq!(
            command_words("sort", "sh -c (head -c 80) | sort"),
            "[sort] sh -c (head -c 80) | sort"
        );
        assert_eq!(command_words("kthreadd", ""), "[kthreadd]");
    }

    fn p(pid: i32, ppid: i32, state: char, comm: &str, cmd: &str) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            state,
            comm: comm.into(),
            starttime: 100 * pid as u64,
            rss_pages: 10,
            cpu_ticks: 250,
            cmdline: cmd.into(),
        }
    }

    #[test]
    fn tree_order_and_zombies_grouped_by_parent() {
        let procs = vec![
            p(1, 0, 'S', "ward", "/ward -- /app"),
            p(7, 1, 'S', "app", "/app --port 8080"),
            p(9, 7, 'S', "worker", "worker 1"),
            p(8, 1, 'S', "sidecar", ""),
            p(20, 9, 'Z', "sh", ""),
            p(21, 9, 'Z', "sh", ""),
            p(22, 9, 'Z', "curl", ""),
            p(30, 1, 'Z', "gone", ""),
            p(40, 0, 'R', "ward", "/ward status"),
            p(41, 0, 'S', "sh", "sh"),
        ];
        let t = build(&procs, 100 * 100, 100, 4096, Some(1), 40);
        let order: Vec<(i32, u32)> = t.processes.iter().map(|r| (r.pid, r.depth)).collect();
        assert_eq!(order, vec![(1, 0), (7, 1), (9, 2), (8, 1), (41, 0)]);
        assert_eq!(t.processes[1].command, "/app --port 8080");
        assert_eq!(t.processes[3].command, "[sidecar]");
        assert_eq!(t.processes[0].rss_bytes, 40960);
        assert_eq!(t.processes[0].cpu_s, 2.5);
        assert_eq!(t.processes[1].age_s, 93);
        assert_eq!(t.zombies.len(), 2);
        let g = &t.zombies[0];
        assert_eq!(
            (g.parent_pid, g.parent_name.as_deref(), g.count, g.reapable),
            (9, Some("worker"), 3, false)
        );
        assert_eq!(g.names, vec!["sh", "curl"]);
        assert_eq!(g.oldest_age_s, 80);
        assert!(t.zombies[1].reapable);
        assert_eq!(t.unreaped(), 3);
    }

    #[test]
    fn the_second_look_counts_only_the_same_zombies_still_there() {
        let procs = vec![
            p(1, 0, 'S', "ward", "/ward -- /app"),
            p(9, 1, 'S', "worker", "worker 1"),
            p(20, 9, 'Z', "sh", ""),
            p(21, 9, 'Z', "sh", ""),
            p(22, 9, 'Z', "sh", ""),
            p(30, 1, 'Z', "gone", ""),
        ];
        let mut t = build(&procs, 100 * 100, 100, 4096, Some(1), 0);
        assert!(t.wants_second_look());
        let mut asked = Vec::new();
        // 20 is still there; 21 was reaped; 22's pid went to a new zombie.
        t.second_look(|pid, start| {
            asked.push(pid);
            pid == 20 && start == 2000
        });
        assert_eq!(
            asked,
            vec![20, 21, 22],
            "ward's own zombies are not looked at"
        );
        assert_eq!(t.zombies[0].seen_twice, 1);
        assert_eq!(t.zombies[1].seen_twice, 1, "ward's own: counted as seen");
        assert_eq!(t.unreaped(), 1);
        let only_wards = build(
            &procs[..1]
                .iter()
                .chain(&procs[5..])
                .cloned()
                .collect::<Vec<_>>(),
            0,
            100,
            4096,
            Some(1),
            0,
        );
        assert!(!only_wards.wants_second_look());
    }

    #[test]
    fn a_ppid_loop_does_not_hang() {
        let procs = vec![p(5, 6, 'S', "a", "a"), p(6, 5, 'S', "b", "b")];
        // Neither is a root; nothing is shown rather than looping.
        let t = build(&procs, 0, 100, 4096, None, 0);
        assert!(t.processes.len() <= 2);
    }

    #[test]
    fn cmdline_in_one_line() {
        assert_eq!(
            cmdline_words(b"/app\0--port\08080\0", 512),
            "/app --port 8080"
        );
        assert_eq!(cmdline_words(b"evil\x1b[2J\0", 512), "evil\u{1b}[2J");
        assert_eq!(cmdline_words(b"abcd", 4), "abcd...");
        assert_eq!(cmdline_words(b"", 512), "");
    }

    #[test]
    fn a_name_that_is_not_utf8_keeps_its_process_in_the_list() {
        let dir = std::env::temp_dir().join(format!("ward-status-latin1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("uptime"), "50.00 10.00\n").unwrap();
        // "café" in Latin-1 (0xe9), as a process may name itself, and a
        // zombie whose name is a lone 0xff.
        for (pid, comm, state) in [(1, &b"caf\xe9"[..], b'S'), (9, b"\xff", b'Z')] {
            std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
            let mut stat = format!("{pid} (").into_bytes();
            stat.extend_from_slice(comm);
            stat.extend_from_slice(b") ");
            stat.push(state);
            stat.extend_from_slice(
                b" 1 1 1 0 -1 4194560 10 0 0 0 3 2 0 0 20 0 1 0 100 1000000 200 \
                  18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
            );
            std::fs::write(dir.join(format!("{pid}/stat")), stat).unwrap();
        }
        let (mut procs, _) = read(&dir, 100).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        procs.sort_by_key(|p| p.pid);
        let seen: Vec<(i32, char, &str)> = procs
            .iter()
            .map(|p| (p.pid, p.state, p.comm.as_str()))
            .collect();
        assert_eq!(seen, vec![(1, 'S', "caf\u{fffd}"), (9, 'Z', "\u{fffd}")]);
        let t = build(&procs, 5000, 100, 4096, None, 0);
        assert_eq!(t.processes[0].command, "[caf\u{fffd}]");
        assert_eq!(t.zombies[0].count, 1);
    }

    #[test]
    fn reads_a_fake_proc() {
        let dir = std::env::temp_dir().join(format!("ward-status-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::create_dir_all(dir.join("self")).unwrap();
        std::fs::write(dir.join("uptime"), "50.00 10.00\n").unwrap();
        std::fs::write(
            dir.join("1/stat"),
            "1 (ward) S 0 1 1 0 -1 4194560 10 0 0 0 3 2 0 0 20 0 1 0 100 1000000 200 \
             18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(dir.join("1/cmdline"), b"/ward\0--\0/app\0").unwrap();
        let (procs, uptime) = read(&dir, 100).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(uptime, 5000);
        assert_eq!(procs.len(), 1);
        assert_eq!(
            (
                procs[0].cpu_ticks,
                procs[0].rss_pages,
                procs[0].cmdline.as_str()
            ),
            (5, 200, "/ward -- /app")
        );
    }
}
