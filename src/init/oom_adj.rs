//! Keeping the OOM killer off ward: ward's own `oom_score_adj` (-1000 where it
//! may) or, where it may not, the value its child gets before exec, so the
//! kernel prefers any process of the container over ward.
//!
//! Owns the decision and the writes to ward's own `oom_score_adj`; the child's
//! write happens in `spawn.rs` from bytes prepared here. Never touches any
//! other process, and never lowers a value it was not allowed to lower.

use std::path::Path;

/// ward's RSS plus page tables, with room to grow, that the child's raise
/// must outweigh. ward's release build runs in about 0.6 MiB as PID 1, and
/// in about 1.5 MiB under a memory limit, where its code is locked (see
/// `trim`); the census of a large process table and the log queue can grow
/// it, so the budget is more than twice that.
pub const WARD_BUDGET_BYTES: u64 = 4 << 20;

/// The kernel's bounds for `oom_score_adj` (include/uapi/linux/oom.h).
const ADJ_MIN: i32 = -1000;
const ADJ_MAX: i32 = 1000;

/// What ward did about the OOM killer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OomShield {
    /// ward's own value is now -1000; the child gets `child_adj` (what ward
    /// inherited) back.
    Protected {
        /// The value ward inherited, restored in the child.
        child_adj: i32,
    },
    /// ward may not lower its own value: the child gets `child_adj`, which is
    /// ward's plus `margin`.
    ChildRaised {
        /// ward's own (inherited, unchanged) value.
        ward_adj: i32,
        /// The child's value.
        child_adj: i32,
        /// The raise, worth [`WARD_BUDGET_BYTES`] against `total_bytes`.
        margin: i32,
        /// The memory the margin was sized for (the container's limit).
        total_bytes: u64,
        /// Why lowering failed.
        why: String,
    },
    /// `--no-oom-adjust`, or `/proc/self/oom_score_adj` unreadable: nothing
    /// changed.
    Untouched {
        /// Why, in words (for the start line).
        why: String,
    },
}

impl OomShield {
    /// The value the child must write before exec, if it differs from what
    /// it inherits from ward at fork.
    pub fn child_write(&self) -> Option<i32> {
        match self {
            OomShield::Protected { child_adj } if *child_adj > ADJ_MIN => Some(*child_adj),
            OomShield::ChildRaised {
                ward_adj,
                child_adj,
                ..
            } if child_adj > ward_adj => Some(*child_adj),
            _ => None,
        }
    }
}

/// The smallest raise that puts a child with no memory of its own ahead of
/// ward in an OOM of `total_bytes`. The kernel's badness (mm/oom_kill.c,
/// `oom_badness`) is RSS + swap + page tables in pages plus
/// `oom_score_adj * (totalpages / 1000)`, so a raise of `m` is worth
/// `m * (total_pages / 1000)` pages; it must exceed ward's budget.
pub fn margin(budget_bytes: u64, total_bytes: u64) -> i32 {
    let span = (ADJ_MAX - ADJ_MIN) as u64;
    let page = 4096;
    let per_unit = total_bytes / page / 1000;
    if per_unit == 0 {
        // Under 1000 pages the kernel's adjustment rounds to nothing.
        return span as i32;
    }
    let budget_pages = budget_bytes.div_ceil(page);
    (budget_pages / per_unit + 1).min(span) as i32
}

/// The child's value: ward's plus the margin, within the kernel's bounds.
pub fn raised(ward_adj: i32, margin: i32) -> i32 {
    ward_adj.saturating_add(margin).clamp(ADJ_MIN, ADJ_MAX)
}

/// Parses `oom_score_adj` ("-1000".."1000", newline-terminated).
pub fn parse_adj(text: &str) -> Option<i32> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|v| (ADJ_MIN..=ADJ_MAX).contains(v))
}

/// Decides and applies: lowers ward's own value to -1000 if the kernel lets
/// it (CAP_SYS_RESOURCE), otherwise sizes the child's raise for the smaller
/// of `cgroup_bound` (the container's memory limit, `None` without one) and
/// the host's RAM and swap.
pub fn shield(proc_root: &Path, cgroup_bound: impl FnOnce() -> Option<u64>) -> OomShield {
    use std::io::Read as _;
    use std::os::unix::fs::FileExt as _;
    let path = proc_root.join("self/oom_score_adj");
    // One open for the read and the write (this runs before the child
    // starts); read-only where writing is refused at open.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map(|f| (f, None))
        .or_else(|e| std::fs::File::open(&path).map(|f| (f, Some(e))));
    let mut text = [0u8; 16];
    let read = opened.and_then(|(mut f, open_error)| {
        // The kernel hands the whole value over in one read.
        let n = f.read(&mut text)?;
        Ok((f, open_error, n))
    });
    let (file, open_error, n) = match read {
        Ok(r) => r,
        Err(e) => {
            return OomShield::Untouched {
                why: format!("cannot read {}: {e}", path.display()),
            };
        }
    };
    let t = String::from_utf8_lossy(&text[..n]);
    let Some(inherited) = parse_adj(&t) else {
        return OomShield::Untouched {
            why: format!("{} holds {:?}", path.display(), t.trim()),
        };
    };
    let written = match open_error {
        Some(e) => Err(e),
        None => file.write_at(b"-1000", 0).map(|_| ()),
    };
    let why = match written {
        Ok(()) => {
            return OomShield::Protected {
                child_adj: inherited,
            };
        }
        // The usual case in a container (Docker grants no
        // CAP_SYS_RESOURCE), said without an error's words: it is no fault.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "ward may not lower its own oom_score_adj (no CAP_SYS_RESOURCE)".to_string()
        }
        Err(e) => format!("cannot lower {}: {e}", path.display()),
    };
    // Only here (ward could not lower its own): the cgroup's memory bound
    // is read before the child starts just for this.
    let total_bytes = weighed_total(cgroup_bound(), host_memory());
    let margin = margin(WARD_BUDGET_BYTES, total_bytes);
    OomShield::ChildRaised {
        ward_adj: inherited,
        child_adj: raised(inherited, margin),
        margin,
        total_bytes,
        why,
    }
}

/// What the kernel weighs `oom_score_adj` against: the cgroup's limit in
/// an OOM of the cgroup, RAM and swap (`host`, 0 when unknown) in one of
/// the host; the smaller, so the raise holds in both.
fn weighed_total(cgroup_bound: Option<u64>, host: u64) -> u64 {
    match cgroup_bound {
        Some(b) if host == 0 || b < host => b,
        _ => host,
    }
}

/// RAM plus swap, what the kernel weighs `oom_score_adj` against in a
/// host-wide OOM (0: unknown).
fn host_memory() -> u64 {
    // SAFETY: sysinfo fills the struct we pass.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return 0;
    }
    let unit = u64::from(info.mem_unit.max(1));
    (info.totalram as u64)
        .saturating_add(info.totalswap as u64)
        .saturating_mul(unit)
}

/// The child's value as the bytes to write, prepared before fork.
pub fn adj_bytes(adj: i32) -> ([u8; 8], usize) {
    let text = adj.to_string();
    let mut out = [0u8; 8];
    let n = text.len().min(8);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_raise_is_sized_for_the_smaller_of_the_limit_and_the_host() {
        assert_eq!(weighed_total(Some(256 * MIB), 4096 * MIB), 256 * MIB);
        // A limit above RAM and swap is no limit in practice.
        assert_eq!(weighed_total(Some(8192 * MIB), 4096 * MIB), 4096 * MIB);
        assert_eq!(weighed_total(None, 4096 * MIB), 4096 * MIB);
        // sysinfo failed: the limit alone, else nothing to size for.
        assert_eq!(weighed_total(Some(256 * MIB), 0), 256 * MIB);
        assert_eq!(weighed_total(None, 0), 0);
    }

    #[test]
    fn margin_outweighs_the_budget_against_the_limit() {
        // 32 MiB is 8192 pages: a unit of adj is worth 8 pages, and ward's
        // 1024 pages need 128 units; one more puts the child ahead.
        assert_eq!(margin(4 * MIB, 32 * MIB), 129);
        assert_eq!(margin(4 * MIB, 48 * MIB), 86);
        assert_eq!(margin(4 * MIB, 1024 * MIB), 4);
        // A big host: the smallest raise there is.
        assert_eq!(margin(4 * MIB, 64 * 1024 * MIB), 1);
        // A limit below the budget: as far as the kernel goes.
        assert_eq!(margin(4 * MIB, 2 * MIB), 2000);
        assert_eq!(margin(4 * MIB, 0), 2000);
    }

    #[test]
    fn margin_is_worth_more_than_the_budget() {
        // In the kernel's own arithmetic: pages, totalpages / 1000 first.
        for total in [5 * MIB, 32 * MIB, 100 * MIB + 7, 4096 * MIB] {
            let m = margin(4 * MIB, total) as u64;
            assert!(m * (total / 4096 / 1000) > 1024, "{total}: {m}");
        }
    }

    #[test]
    fn raise_stays_within_the_kernel_bounds() {
        assert_eq!(raised(0, 126), 126);
        assert_eq!(raised(900, 126), 1000);
        assert_eq!(raised(-1000, 2000), 1000);
        assert_eq!(raised(-500, 1), -499);
    }

    #[test]
    fn parses_the_proc_file() {
        assert_eq!(parse_adj("0\n"), Some(0));
        assert_eq!(parse_adj("-1000\n"), Some(-1000));
        assert_eq!(parse_adj("1000"), Some(1000));
        assert_eq!(parse_adj("1001\n"), None);
        assert_eq!(parse_adj(""), None);
    }

    #[test]
    fn child_writes_only_what_differs_from_the_inherited_value() {
        assert_eq!(OomShield::Protected { child_adj: 0 }.child_write(), Some(0));
        assert_eq!(
            OomShield::Protected { child_adj: -1000 }.child_write(),
            None
        );
        let raised = |ward_adj, child_adj| OomShield::ChildRaised {
            ward_adj,
            child_adj,
            margin: child_adj - ward_adj,
            total_bytes: 0,
            why: String::new(),
        };
        assert_eq!(raised(0, 126).child_write(), Some(126));
        assert_eq!(raised(1000, 1000).child_write(), None);
        assert_eq!(
            OomShield::Untouched { why: String::new() }.child_write(),
            None
        );
    }

    #[test]
    fn bytes_hold_the_decimal_value() {
        let (b, n) = adj_bytes(-1000);
        assert_eq!(&b[..n], b"-1000");
        let (b, n) = adj_bytes(126);
        assert_eq!(&b[..n], b"126");
    }

    /// `shield` on a captured `/proc`: the value read, written over, and
    /// the two ways it gives up.
    #[test]
    fn shield_reads_and_lowers_through_one_file() {
        let root = std::env::temp_dir().join(format!("ward-oom-adj-{}", std::process::id()));
        let file = root.join("self/oom_score_adj");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();

        std::fs::write(&file, "300\n").unwrap();
        let got = shield(&root, || {
            panic!("the limit is read only when lowering fails")
        });
        assert_eq!(got, OomShield::Protected { child_adj: 300 });
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "-1000");

        std::fs::write(&file, "lots\n").unwrap();
        let got = shield(&root, || None);
        assert!(
            matches!(&got, OomShield::Untouched { why } if why.contains("holds \"lots\"")),
            "{got:?}"
        );

        std::fs::remove_file(&file).unwrap();
        let got = shield(&root, || None);
        assert!(
            matches!(&got, OomShield::Untouched { why } if why.starts_with("cannot read ")),
            "{got:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
