//! What the harness reads from the host's `/proc` about an init and its
//! container: CPU time, memory, the process tree, the syscall a task sleeps in.
//!
//! Parsers take `&str` and are unit tested; [`Proc`] is the thin I/O layer,
//! rooted at a path so tests could point it elsewhere. Nothing here signals or
//! changes a process.

use std::collections::HashMap;
use std::path::PathBuf;

/// x86_64 syscall numbers a sleeping straggler can be in (`/proc/PID/syscall`).
pub const SYS_NANOSLEEP: i64 = 35;
/// glibc's `nanosleep` is `clock_nanosleep` underneath.
pub const SYS_CLOCK_NANOSLEEP: i64 = 230;

/// One line of the process table: `/proc/PID/stat` fields the harness needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine {
    /// Process id (in the host's namespace).
    pub pid: i32,
    /// State letter: R, S, D, Z, ...
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Start time in clock ticks after boot (field 22): with the pid, it
    /// names one process even across pid reuse. `None` on a short line.
    pub start_ticks: Option<u64>,
}

/// Resident and proportional set size, in KiB (`smaps_rollup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `Rss:`
    pub rss_kib: u64,
    /// `Pss:`
    pub pss_kib: u64,
    /// `Anonymous:` (heap, stacks, written data): what a leak grows. Code
    /// pages come and go (ward drops them after each sample), so growth
    /// in RSS alone says little.
    pub anon_kib: u64,
}

/// `/proc/PID/schedstat`: the first field is the time spent on CPU, in ns
/// (Documentation/scheduler/sched-stats.rst), exact rather than tick-based.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// `/proc/PID/stat`; the command name may hold spaces and parentheses, so the
/// fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Option<StatLine> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    // Fields 5 to 21 come between ppid and starttime.
    let start_ticks = rest.nth(17).and_then(|f| f.parse().ok());
    Some(StatLine {
        pid,
        state,
        ppid,
        start_ticks,
    })
}

/// `/proc/PID/smaps_rollup` (Linux 4.14+).
pub fn parse_smaps_rollup(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let v = l.strip_prefix(name)?.trim().strip_suffix("kB")?;
            v.trim().parse::<u64>().ok()
        })
    };
    Some(Memory {
        rss_kib: field("Rss:")?,
        pss_kib: field("Pss:")?,
        anon_kib: field("Anonymous:").unwrap_or(0),
    })
}

/// One mapping of `/proc/PID/smaps` and its `Anonymous:` KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonMapping {
    pub start: u64,
    pub end: u64,
    /// `[heap]`, `[stack]`, a file; empty for a thread's stack or another
    /// anonymous `mmap`.
    pub name: String,
    pub kib: u64,
}

/// The `Anonymous:` KiB of each mapping in `/proc/PID/smaps`.
pub fn parse_smaps_anon(text: &str) -> Vec<AnonMapping> {
    let mut out: Vec<AnonMapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let first = fields.next().unwrap_or("");
        if first == "Anonymous:" {
            let kib = fields.next().and_then(|v| v.parse().ok());
            if let (Some(last), Some(kib)) = (out.last_mut(), kib) {
                last.kib = kib;
            }
        } else if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let name = fields.nth(4).unwrap_or("").to_string();
            out.push(AnonMapping {
                start,
                end,
                name,
                kib: 0,
            });
        }
    }
    out
}

/// Where anonymous memory grew from `before` to `after` (two
/// [`parse_smaps_anon`] readings): "START NAME +N KiB" for each mapping
/// that has more than the mappings it overlaps had. Matched by overlap, not
/// by start: musl's malloc maps new groups just below its last, and the
/// kernel merges them, so a mapping can grow downwards (new start, same
/// end) as well as upwards (the `[heap]`); a new one counts whole.
pub fn anon_grown(before: &[AnonMapping], after: &[AnonMapping]) -> Vec<String> {
    after
        .iter()
        .filter_map(|m| {
            let was: u64 = before
                .iter()
                .filter(|b| b.start < m.end && m.start < b.end)
                .map(|b| b.kib)
                .sum();
            let grew = m.kib.saturating_sub(was);
            (grew > 0).then(|| {
                format!("{:x} {}", m.start, m.name).trim_end().to_string()
                    + &format!(" +{grew} KiB")
            })
        })
        .collect()
}

/// `/proc/PID/syscall`: the number of the syscall a blocked task is in;
/// `None` when it runs ("running") or is gone.
pub fn parse_syscall(text: &str) -> Option<i64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// Every process below `root` in `table` (not `root` itself).
pub fn descendants(table: &[StatLine], root: i32) -> Vec<StatLine> {
    let mut children: HashMap<i32, Vec<&StatLine>> = HashMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            // A pid cannot be its own ancestor; guards against a torn read.
            if c.pid != root && out.len() < table.len() {
                out.push(**c);
                todo.push(c.pid);
            }
        }
    }
    out
}

/// The host's `/proc`.
#[derive(Debug, Clone)]
pub struct Proc {
    root: PathBuf,
}

impl Default for Proc {
    fn default() -> Self {
        Proc {
            root: PathBuf::from("/proc"),
        }
    }
}

impl Proc {
    /// The /proc that `pid` sees, through its root (`/proc/PID/root/proc`):
    /// for an init started by `unshare --mount-proc` that is its namespace's
    /// own /proc, listing only the container's processes, with pids as the
    /// container numbers them (the init is 1). Far cheaper to scan than the
    /// host's whole table while a storm runs.
    pub fn seen_by(pid: i32) -> Proc {
        Proc {
            root: PathBuf::from(format!("/proc/{pid}/root/proc")),
        }
    }

    /// Zombies in a container's /proc (from [`Proc::seen_by`]): every process
    /// there but PID 1 descends from PID 1.
    pub fn container_zombies(&self) -> usize {
        self.table()
            .iter()
            .filter(|p| p.pid != 1 && p.state == 'Z')
            .count()
    }

    fn read(&self, pid: i32, file: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(pid.to_string()).join(file)).ok()
    }

    /// CPU time of every live thread of `pid`, in ns; `None` once it is gone.
    pub fn cpu_ns(&self, pid: i32) -> Option<u64> {
        let dir = self.root.join(pid.to_string()).join("task");
        let mut total = 0;
        let mut any = false;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let text = std::fs::read_to_string(entry.path().join("schedstat")).ok();
            if let Some(ns) = text.as_deref().and_then(parse_schedstat) {
                total += ns;
                any = true;
            }
        }
        any.then_some(total)
    }

    /// Anonymous memory of each mapping of `pid` ([`parse_smaps_anon`]).
    pub fn anon_by_mapping(&self, pid: i32) -> Option<Vec<AnonMapping>> {
        Some(parse_smaps_anon(&self.read(pid, "smaps")?))
    }

    /// RSS and PSS of `pid`.
    pub fn memory(&self, pid: i32) -> Option<Memory> {
        parse_smaps_rollup(&self.read(pid, "smaps_rollup")?)
    }

    /// One process's stat line.
    pub fn stat(&self, pid: i32) -> Option<StatLine> {
        parse_stat(&self.read(pid, "stat")?)
    }

    /// The syscall `pid` is blocked in.
    pub fn syscall(&self, pid: i32) -> Option<i64> {
        parse_syscall(&self.read(pid, "syscall")?)
    }

    /// The command line, arguments joined by spaces.
    pub fn cmdline(&self, pid: i32) -> Option<String> {
        let raw = self.read(pid, "cmdline")?;
        Some(raw.trim_end_matches('\0').replace('\0', " "))
    }

    /// The whole process table. Processes that vanish mid-scan are skipped.
    /// (The kernel here lacks CONFIG_PROC_CHILDREN, so there is no cheaper
    /// way to find a process's children than reading every stat file.)
    pub fn table(&self) -> Vec<StatLine> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| self.stat(pid))
            .collect()
    }

    /// The children of `pid` (from a full scan).
    pub fn children(&self, pid: i32) -> Vec<i32> {
        self.table()
            .into_iter()
            .filter(|p| p.ppid == pid)
            .map(|p| p.pid)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_first_field_is_ns_on_cpu() {
        assert_eq!(parse_schedstat("143312146 5975407 369\n"), Some(143312146));
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn stat_with_odd_command_names() {
        let s = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0";
        assert_eq!(
            parse_stat(s),
            Some(StatLine {
                pid: 1234,
                state: 'S',
                ppid: 1,
                start_ticks: None
            })
        );
        // A zombie's whole line, read on this machine's 6.18 kernel:
        // starttime (field 22) is 1129688.
        let real = "9877 (sleep) Z 9875 9870 731 0 -1 4227084 128 0 0 0 0 0 0 0 20 0 1 0 \
                    1129688 0 0 18446744073709551615 0 0 0 0 0 0 0 6 0 1 0 0 17 0 0 0 0 0 0 0 0 0 \
                    0 0 0 0 0";
        assert_eq!(
            parse_stat(real),
            Some(StatLine {
                pid: 9877,
                state: 'Z',
                ppid: 9875,
                start_ticks: Some(1129688)
            })
        );
        assert_eq!(parse_stat("77 (sh) Z 9 0").map(|s| s.state), Some('Z'));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn smaps_anonymous_per_mapping_and_what_grew() {
        let before = "\
5555a000-5555b000 rw-p 00000000 00:00 0                          [heap]
Size:                  4 kB
Anonymous:            88 kB
7f00a000-7f01a000 rw-p 00000000 00:00 0 
Anonymous:             8 kB
7f02b000-7f02c000 r--p 00000000 fe:00 123                        /ward
Anonymous:             0 kB
";
        let b = parse_smaps_anon(before);
        let m = |start, end, name: &str, kib| AnonMapping {
            start,
            end,
            name: name.to_string(),
            kib,
        };
        assert_eq!(
            b,
            [
                m(0x5555a000, 0x5555b000, "[heap]", 88),
                m(0x7f00a000, 0x7f01a000, "", 8),
                m(0x7f02b000, 0x7f02c000, "/ward", 0),
            ]
        );
        // The heap grows upwards, a malloc mapping downwards (merged with
        // a new one below it), and a new mapping counts whole.
        let after = before
            .replace("88 kB", "92 kB")
            .replace("5555b000", "5555c000")
            .replace("7f00a000", "7f009000")
            .replace("8 kB", "12 kB")
            + "7f03a000-7f03b000 rw-p 00000000 00:00 0 \nAnonymous:             4 kB\n";
        assert_eq!(
            anon_grown(&b, &parse_smaps_anon(&after)),
            [
                "5555a000 [heap] +4 KiB",
                "7f009000 +4 KiB",
                "7f03a000 +4 KiB"
            ]
        );
        assert!(anon_grown(&b, &b).is_empty());
    }

    #[test]
    fn smaps_rollup_rss_and_pss() {
        let text = "\
00400000-7ffd8b5f5000 ---p 00000000 00:00 0                      [rollup]
Rss:                 812 kB
Pss:                 301 kB
Pss_Dirty:            96 kB
Shared_Clean:        700 kB
Anonymous:           152 kB
";
        assert_eq!(
            parse_smaps_rollup(text),
            Some(Memory {
                rss_kib: 812,
                pss_kib: 301,
                anon_kib: 152
            })
        );
        assert_eq!(parse_smaps_rollup("Rss: 1 kB\n"), None);
    }

    #[test]
    fn syscall_number_or_running() {
        assert_eq!(
            parse_syscall("230 0x1 0x0 0x7ffc 0x0 0x0 0x0 0x7ffc 0x4a1b\n"),
            Some(SYS_CLOCK_NANOSLEEP)
        );
        assert_eq!(parse_syscall("running\n"), None);
    }

    #[test]
    fn descendants_and_zombies() {
        let p = |pid, state, ppid| StatLine {
            pid,
            state,
            ppid,
            start_ticks: None,
        };
        let table = [
            p(1, 'S', 0),
            p(10, 'S', 1),
            p(11, 'S', 10),
            p(12, 'Z', 10),
            p(13, 'Z', 11),
            p(20, 'Z', 1),
        ];
        let mut d: Vec<i32> = descendants(&table, 10).iter().map(|s| s.pid).collect();
        d.sort();
        assert_eq!(d, vec![11, 12, 13]);
        assert_eq!(descendants(&table, 1).len(), 5);
    }

    #[test]
    fn container_zombies_from_a_fake_proc() {
        let dir = std::env::temp_dir().join(format!("ward-bench-proc-{}", std::process::id()));
        for (pid, stat) in [
            ("1", "1 (ward) S 0 1 1"),
            ("2", "2 (sh) S 1 2 2"),
            ("7", "7 (ward-workload) Z 1 7 7"),
            ("8", "8 (x) Z 2 7 7"),
        ] {
            std::fs::create_dir_all(dir.join(pid)).unwrap();
            std::fs::write(dir.join(pid).join("stat"), stat).unwrap();
        }
        std::fs::create_dir_all(dir.join("self")).unwrap();
        let proc = Proc { root: dir.clone() };
        assert_eq!(proc.container_zombies(), 2);
        assert_eq!(proc.children(1).len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
