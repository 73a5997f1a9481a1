//! Who gets signalled when the main child is gone: as PID 1, everything in the
//! namespace (`kill(-1)`); as a subreaper, only ward's own descendants, found
//! from /proc parentage, never unrelated processes of the host.

use std::path::Path;

/// Sends `sig` to every other process ward is responsible for; returns how
/// many were signalled (as PID 1: how many existed just before).
pub fn signal_rest(is_pid1: bool, self_pid: i32, sig: i32, proc_root: &Path) -> usize {
    if is_pid1 {
        let n = all_pids(proc_root)
            .iter()
            .filter(|&&p| p != self_pid)
            .count();
        // SAFETY: kill(-1) from PID 1 of a namespace reaches every process in
        // it except PID 1 itself.
        unsafe { libc::kill(-1, sig) };
        n
    } else {
        let targets = descendants(proc_root, self_pid);
        for &pid in &targets {
            // SAFETY: plain kill(2) on a descendant found just now.
            unsafe { libc::kill(pid, sig) };
        }
        targets.len()
    }
}

/// Every numeric entry of the proc root.
pub fn all_pids(proc_root: &Path) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// The parent pid from the text of `/proc/PID/stat` (field 4, after the last
/// `)` since the command name may contain spaces and parentheses).
pub fn ppid_from_stat(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Every living descendant of `root_pid`, by following parent links.
pub fn descendants(proc_root: &Path, root_pid: i32) -> Vec<i32> {
    let mut links: Vec<(i32, i32)> = Vec::new();
    let mut buf = String::new();
    for pid in all_pids(proc_root) {
        buf.clear();
        let path = proc_root.join(pid.to_string()).join("stat");
        // A process that vanished mid-scan is simply no longer there.
        let Ok(mut f) = std::fs::File::open(path) else {
            continue;
        };
        if std::io::Read::read_to_string(&mut f, &mut buf).is_err() {
            continue;
        }
        if let Some(ppid) = ppid_from_stat(&buf) {
            links.push((pid, ppid));
        }
    }
    let mut found = vec![root_pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            links
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(ppid_from_stat("42 (a) b) S 7 42 42 0"), Some(7));
        assert_eq!(ppid_from_stat("1 (init) S 0 1 1"), Some(0));
        assert_eq!(ppid_from_stat("garbage"), None);
    }

    #[test]
    fn descendants_follow_parent_links() {
        let dir = std::env::temp_dir().join(format!("ward-desc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, ppid) in [(10, 1), (11, 10), (12, 11), (13, 1), (14, 12), (15, 99)] {
            std::fs::create_dir_all(dir.join(pid.to_string())).unwrap();
            std::fs::write(
                dir.join(pid.to_string()).join("stat"),
                format!("{pid} (p {pid}) S {ppid} 0 0 0"),
            )
            .unwrap();
        }
        let mut got = descendants(&dir, 10);
        got.sort();
        assert_eq!(got, vec![11, 12, 14]);
        assert!(descendants(&dir, 15).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
