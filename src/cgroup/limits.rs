//! The limits that apply to ward's cgroup, and where each one comes from.
//!
//! Owns the "which limit wins" decisions: own group, then the smallest visible
//! ancestor, then the host. Reads files (rarely: at start and on refresh) but never
//! writes them. Numbers of the sample are in `sample`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::parse::{self, CpuQuota};
use super::{Cgroups, Group, Roots, Version, fsread};

/// Where a limit was found, so the log can say "64 MiB (own cgroup)".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LimitSource {
    /// Set on ward's own cgroup.
    OwnGroup,
    /// Set on an ancestor. `path` is its directory, or `None` when only the kernel's
    /// hierarchical value (v1 `hierarchical_memory_limit`) revealed it, from an
    /// ancestor this mount does not show.
    Ancestor {
        /// The ancestor's directory.
        path: Option<PathBuf>,
    },
    /// The CPU set of the group (v1/v2 cpuset) allows fewer CPUs than the quota.
    Cpuset {
        /// The cpuset directory.
        path: PathBuf,
    },
    /// No cgroup limit: the machine's (MemTotal, online/affine CPUs, `pid_max`
    /// or `threads-max`).
    Host {
        /// The cgroups above the visible ones are hidden (a cgroup namespace,
        /// or Docker's v1 mount of the container's group alone), so a limit
        /// there (an ECS task's, a Kubernetes pod's) would not show.
        hidden_above: bool,
    },
}

impl LimitSource {
    /// Where the limit comes from, in words: `own cgroup`, `cpuset`, ...
    pub fn words(&self) -> String {
        match self {
            LimitSource::OwnGroup => "own cgroup".into(),
            // The limit holds for the whole subtree: the cgroups beside
            // ward's count against it too, and ward's numbers (its own
            // group's) do not show their share.
            LimitSource::Ancestor { path: Some(p) } => {
                format!(
                    "set on ancestor cgroup {}, shared by every cgroup under it",
                    p.display()
                )
            }
            LimitSource::Ancestor { path: None } => {
                "set on an ancestor cgroup, shared by every cgroup under it".into()
            }
            LimitSource::Cpuset { .. } => "cpuset".into(),
            LimitSource::Host {
                hidden_above: false,
            } => "the host's, no cgroup limit".into(),
            LimitSource::Host { hidden_above: true } => {
                "the host's; no limit on the cgroups in view, and the ones above are hidden".into()
            }
        }
    }

    /// A memory peak set against the host's memory (`limit`), after
    /// `memory peaked at PEAK`: no limit the group met, and where the
    /// cgroups above are hidden, the one it may have met is not known, so
    /// neither is called "the limit". `None` for a cgroup's limit.
    pub fn host_peak_words(&self, limit: u64, ratio: f64) -> Option<String> {
        let (pct, host) = (crate::units::pct(ratio), crate::units::bytes(limit));
        match self {
            LimitSource::Host {
                hidden_above: false,
            } => Some(format!(" of the host's {host} ({pct}; no cgroup limit)")),
            LimitSource::Host { hidden_above: true } => Some(format!(
                " ({pct} of the host's {host}; no limit on the cgroups in view, and any above them is hidden)"
            )),
            _ => None,
        }
    }

    /// No cgroup limit was found: the number is the machine's.
    pub fn is_host(&self) -> bool {
        matches!(self, LimitSource::Host { .. })
    }
}

/// The memory limit in bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Where it comes from.
    pub source: LimitSource,
}

/// The CPU limit in cores (may be fractional).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuLimit {
    /// min(quota, cpuset, host).
    pub cores: f64,
    /// Where the minimum comes from.
    pub source: LimitSource,
    /// The CFS quota in cores (smallest of own group and ancestors), if any.
    pub quota_cores: Option<f64>,
    /// CPUs in the group's cpuset, if known.
    pub cpuset_cpus: Option<u32>,
    /// CPUs the host lets this process use: online CPUs, or fewer if its affinity
    /// mask (which includes the cpuset) is smaller.
    pub host_cpus: Option<u32>,
}

/// A PIDs limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PidsLimit {
    /// Maximum number of tasks.
    pub max: u64,
    /// Where it comes from (host means `pid_max` or `threads-max`).
    pub source: LimitSource,
}

/// All limits; a field is `None` when not even the host value could be
/// read, or when the group's own limit file exists but could not be read
/// (the limit is then unknown, not the host's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Limits {
    /// Memory.
    pub memory: Option<MemoryLimit>,
    /// cgroup v2 `memory.high` (the smallest of the group's and its visible
    /// ancestors'), when below the memory limit: above it the kernel
    /// reclaims and slows the group's allocations rather than killing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high: Option<MemoryLimit>,
    /// CPU.
    pub cpu: Option<CpuLimit>,
    /// PIDs.
    pub pids: Option<PidsLimit>,
    /// Swap the group may fill once its memory is at the limit, in bytes:
    /// the host's swap, less where the group's own swap limit (v1 memsw,
    /// v2 `memory.swap.max`) is smaller. 0: none, so an OOM kill comes at
    /// the memory limit. `None`: unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_room: Option<u64>,
    /// The group's limit files that are there but could not be read, with
    /// the error ("cannot read PATH: Permission denied ...").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// `Some("cannot read PATH: ERROR")` when `path` is there but cannot be
/// read (a file the kernel does not provide is no error).
fn unreadable(buf: &mut String, path: &Path) -> Option<String> {
    match fsread::read_into(buf, path) {
        Err(e) if !fsread::is_absent(&e) => Some(format!("cannot read {}: {e}", path.display())),
        _ => None,
    }
}

impl Cgroups {
    /// The memory this cgroup and its ancestors let it use, in bytes (`None`:
    /// no cgroup limit), read from as few files as tell it: what the child's
    /// `oom_score_adj` raise is sized for before exec, where every file read
    /// delays the child. v1's `hierarchical_memory_limit` is already the
    /// smallest over all ancestors, so one file; v2 has no such file, so its
    /// visible levels. Where the limit comes from waits for the first look.
    pub fn memory_bound(&self) -> Option<u64> {
        self.memory_bound_with(&mut String::with_capacity(2048))
    }

    /// As [`Cgroups::memory_bound`], reading through `buf` (the watch's,
    /// so that no buffer of its own is taken and freed before exec).
    pub fn memory_bound_with(&self, buf: &mut String) -> Option<u64> {
        let g = self.memory.as_ref()?;
        if g.version == Version::V1
            && let Some(h) = fsread::read_opt_in(buf, &g.dir, "memory.stat")
                .and_then(|()| parse::flat_key(buf, "hierarchical_memory_limit"))
        {
            return parse::v1_limit_value(h);
        }
        memory_limit(g, buf, &mut false).map(|(bytes, _)| bytes)
    }
}

/// How far a group's memory peak can pass a limit set on an ancestor: the
/// kernel counts a charge in the group before the ancestor refuses it, and
/// keeps that as the group's peak. A charge is at most 64 pages.
const CHARGE_OVERSHOOT: u64 = 64 * 4096;

/// The peak to set against `limit`: the limit itself when the kernel's peak
/// passes it by no more than one charge (it was reached), `None` when it
/// passes it by more (a peak from before the limit was lowered).
pub fn peak_within(peak: u64, limit: u64) -> Option<u64> {
    if peak <= limit {
        Some(peak)
    } else {
        (peak - limit <= CHARGE_OVERSHOOT).then_some(limit)
    }
}

/// Which of the group's own limits the walks read, from its own file (read,
/// or not there) or, for v1 memory, from `memory.stat`'s
/// `hierarchical_memory_limit`, which takes the group's own limit in: for
/// those [`own_files_unreadable`] need not open the file again (where the
/// limits came out as the host's, the first look read `cpu.cfs_quota_us`
/// and `pids.max` twice each).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct OwnRead {
    memory: bool,
    cpu: bool,
    pids: bool,
}

/// Reads all limits.
pub(crate) fn read(cg: &Cgroups, roots: &Roots, buf: &mut String) -> Limits {
    let mut own = OwnRead::default();
    let (memory, host_swap) = read_memory(cg, roots, buf, &mut own.memory);
    let swap_room = host_swap.map(|h| swap_room(cg.memory.as_ref(), buf, h));

    let quota = cg
        .cpu
        .as_ref()
        .and_then(|g| cpu_quota(g, buf, &mut own.cpu));
    let cpuset = cg
        .cpuset
        .as_ref()
        .and_then(|g| cpuset_count(g, buf).map(|n| (n, g)));
    let (online, host_cpus) = host_cpus(roots, buf);
    let cpu = cpu_limit(quota, cpuset, online, host_cpus);

    let pids = cg.pids.as_ref().and_then(|g| {
        smallest(g, buf, |b, dir| {
            read_level(b, g, dir, "pids.max", &mut own.pids)?;
            parse::max_or_u64(b)?
        })
    });
    let pid_max = host_tasks(roots, buf);
    let pids = match (pids, pid_max) {
        (Some((max, source)), Some(h)) if max < h => Some(PidsLimit { max, source }),
        (Some((max, source)), None) => Some(PidsLimit { max, source }),
        (_, Some(h)) => Some(PidsLimit {
            max: h,
            source: LimitSource::Host {
                hidden_above: false,
            },
        }),
        (None, None) => None,
    };
    let memory_high = cg
        .memory
        .as_ref()
        .filter(|g| g.version == Version::V2)
        .and_then(|g| {
            smallest(g, buf, |b, dir| {
                fsread::read_opt_in(b, dir, "memory.high")?;
                parse::max_or_u64(b)?
            })
        })
        .filter(|(high, _)| memory.as_ref().is_none_or(|m| *high < m.bytes))
        .map(|(bytes, source)| MemoryLimit { bytes, source });
    let mut limits = Limits {
        memory,
        memory_high,
        cpu,
        pids,
        swap_room,
        unreadable: Vec::new(),
    };
    own_files_unreadable(cg, &mut limits, buf, own);
    // v1's hierarchical_memory_limit sees every ancestor: a memory limit
    // there is never hidden.
    let memory_v2 = cg.memory.as_ref().filter(|g| g.version == Version::V2);
    mark_hidden(limits.memory.as_mut().map(|m| &mut m.source), memory_v2);
    mark_hidden(limits.cpu.as_mut().map(|c| &mut c.source), cg.cpu.as_ref());
    mark_hidden(
        limits.pids.as_mut().map(|p| &mut p.source),
        cg.pids.as_ref(),
    );
    limits
}

/// Says of a host limit whether the cgroups above `g`'s mount are hidden.
fn mark_hidden(source: Option<&mut LimitSource>, g: Option<&Group>) {
    if let (Some(LimitSource::Host { hidden_above }), Some(g)) = (source, g) {
        *hidden_above = hides_above(g);
    }
}

/// The top of `g`'s mount is not its hierarchy's root: a cgroup namespace,
/// or Docker's v1 mount of the container's group alone. A v1 hierarchy's
/// root alone has `release_agent`; a v2 group other than the root has
/// `cgroup.events`.
fn hides_above(g: &Group) -> bool {
    match g.version {
        Version::V1 => !fsread::in_dir(&g.mount_point, &["release_agent"], Path::exists),
        Version::V2 => fsread::in_dir(&g.mount_point, &["cgroup.events"], Path::exists),
    }
}

/// Where a limit came out as the host's (or none), the group's own file
/// for it may be there but unreadable (permissions, a security module):
/// the limit is then unknown, and saying "the host's" would be wrong.
/// Costs a read only in that case, and only of a file the walk did not
/// read already (`own`).
fn own_files_unreadable(cg: &Cgroups, limits: &mut Limits, buf: &mut String, own: OwnRead) {
    let host = |s: Option<&LimitSource>| s.is_none_or(LimitSource::is_host);
    let memory = !own.memory && host(limits.memory.as_ref().map(|m| &m.source));
    let cpu = !own.cpu && host(limits.cpu.as_ref().map(|c| &c.source));
    let pids = !own.pids && host(limits.pids.as_ref().map(|p| &p.source));
    let mut unreadable_at = |check: bool, g: &Option<Group>, v1: &str, v2: &str| {
        let g = g.as_ref().filter(|_| check)?;
        let file = if g.version == Version::V2 { v2 } else { v1 };
        let e = fsread::in_dir(&g.dir, &[file], |path| unreadable(buf, path))?;
        limits.unreadable.push(e);
        Some(())
    };
    if unreadable_at(memory, &cg.memory, "memory.limit_in_bytes", "memory.max").is_some() {
        limits.memory = None;
    }
    if unreadable_at(cpu, &cg.cpu, "cpu.cfs_quota_us", "cpu.max").is_some() {
        limits.cpu = None;
    }
    if unreadable_at(pids, &cg.pids, "pids.max", "pids.max").is_some() {
        limits.pids = None;
    }
}

/// The most tasks the host allows: `pid_max`, or `threads-max` when that is
/// smaller. From Linux 6.14 a PID namespace has a `pid_max` of its own (a new
/// one reads 4194304) while its parents' smaller ones still bound it, and
/// those cannot be read from inside; `threads-max` is the machine's.
fn host_tasks(roots: &Roots, buf: &mut String) -> Option<u64> {
    let mut read = |name: &str| {
        fsread::read_opt_in(buf, &roots.proc, name).and_then(|()| parse::single_u64(buf))
    };
    let pid_max = read("sys/kernel/pid_max");
    let threads_max = read("sys/kernel/threads-max");
    match (pid_max, threads_max) {
        (Some(p), Some(t)) => Some(p.min(t)),
        (p, t) => p.or(t),
    }
}

/// Reads `name` in `dir` (as [`fsread::read_opt_in`]) for a walk over
/// `g`'s levels, noting in `own` when that was `g`'s own file and it was
/// read or is not there: either way there is nothing unreadable to say.
fn read_level(buf: &mut String, g: &Group, dir: &Path, name: &str, own: &mut bool) -> Option<()> {
    let read = fsread::in_dir(dir, &[name], |path| fsread::read_into(buf, path));
    if dir == g.dir && read.as_ref().map_or_else(fsread::is_absent, |()| true) {
        *own = true;
    }
    read.ok()
}

/// The memory limit: the cgroup's, or the host's RAM when that is smaller
/// or no cgroup sets one; and the host's swap. `own`: set when the group's
/// own limit was read (its limit file, or on v1 `memory.stat`'s
/// `hierarchical_memory_limit`, which takes in the group's own limit).
fn read_memory(
    cg: &Cgroups,
    roots: &Roots,
    buf: &mut String,
    own: &mut bool,
) -> (Option<MemoryLimit>, Option<u64>) {
    let (host_mem, host_swap) = match fsread::read_opt_in(buf, &roots.proc, "meminfo") {
        Some(()) => (
            parse::meminfo_bytes(buf, "MemTotal"),
            parse::meminfo_bytes(buf, "SwapTotal"),
        ),
        None => (None, None),
    };
    let memory = cg.memory.as_ref().and_then(|g| memory_limit(g, buf, own));
    (pick_with_host(memory, host_mem), host_swap)
}

/// How much of the host's `swap` bytes the group may fill past its memory
/// limit. Without a swap limit of its own (no swap accounting, or `max`)
/// all of it: the kernel swaps before it OOM-kills.
fn swap_room(g: Option<&Group>, buf: &mut String, swap: u64) -> u64 {
    let Some(g) = g.filter(|_| swap > 0) else {
        return swap;
    };
    let limit = match g.version {
        Version::V2 => smallest(g, buf, |b, dir| {
            fsread::read_opt_in(b, dir, "memory.swap.max")?;
            parse::max_or_u64(b)?
        })
        .map(|(v, _)| v),
        // memsw is memory plus swap; both hierarchical, every ancestor's.
        Version::V1 => fsread::read_opt_in(buf, &g.dir, "memory.stat").and_then(|()| {
            let memsw = parse::v1_limit_value(parse::flat_key(buf, "hierarchical_memsw_limit")?)?;
            let mem = parse::flat_key(buf, "hierarchical_memory_limit")?;
            Some(memsw.saturating_sub(mem))
        }),
    };
    limit.map_or(swap, |l| l.min(swap))
}

/// A cgroup limit above the host's memory is no limit in practice: report the host.
fn pick_with_host(cg: Option<(u64, LimitSource)>, host: Option<u64>) -> Option<MemoryLimit> {
    match (cg, host) {
        (Some((bytes, source)), Some(h)) if bytes <= h => Some(MemoryLimit { bytes, source }),
        (Some((bytes, source)), None) => Some(MemoryLimit { bytes, source }),
        (_, Some(h)) => Some(MemoryLimit {
            bytes: h,
            source: LimitSource::Host {
                hidden_above: false,
            },
        }),
        (None, None) => None,
    }
}

/// The smallest value `read` finds on `g.dir` and its visible ancestors.
fn smallest(
    g: &Group,
    buf: &mut String,
    mut read: impl FnMut(&mut String, &Path) -> Option<u64>,
) -> Option<(u64, LimitSource)> {
    let mut best: Option<(u64, usize, &Path)> = None;
    for (i, dir) in g.levels().enumerate() {
        let Some(v) = read(buf, dir) else { continue };
        if best.is_none_or(|(b, _, _)| v < b) {
            best = Some((v, i, dir));
        }
    }
    best.map(|(v, i, dir)| (v, level_source(i, dir)))
}

/// Where a limit found on the `i`th of a group's levels comes from (0 is
/// the group's own). Made once the smallest is known: an ancestor's
/// source holds its path, a heap block.
fn level_source(i: usize, dir: &Path) -> LimitSource {
    if i == 0 {
        LimitSource::OwnGroup
    } else {
        LimitSource::Ancestor {
            path: Some(dir.to_owned()),
        }
    }
}

fn memory_limit(g: &Group, buf: &mut String, own: &mut bool) -> Option<(u64, LimitSource)> {
    match g.version {
        Version::V2 => smallest(g, buf, |b, dir| {
            read_level(b, g, dir, "memory.max", own)?;
            parse::max_or_u64(b)?
        }),
        Version::V1 => {
            // hierarchical_memory_limit is the kernel's min over all ancestors, even
            // those outside this mount (Docker mounts only the container's group).
            let hier = fsread::read_opt_in(buf, &g.dir, "memory.stat")
                .and_then(|()| parse::flat_key(buf, "hierarchical_memory_limit"));
            // It takes in the group's own limit: that is read.
            *own = hier.is_some();
            // Unlimited there means no level sets one: nothing to walk for
            // (a file per level, in the first look as the child starts).
            let hier = match hier {
                Some(h) => Some(parse::v1_limit_value(h)?),
                None => None,
            };
            let walked = smallest(g, buf, |b, dir| {
                read_level(b, g, dir, "memory.limit_in_bytes", own)?;
                parse::v1_memory_limit(b)?
            });
            match (walked, hier) {
                (Some((w, s)), Some(h)) if w <= h => Some((w, s)),
                (_, Some(h)) => Some((h, LimitSource::Ancestor { path: None })),
                (w, None) => w,
            }
        }
    }
}

/// The quota at `dir`, one of `g`'s levels (`own` as in [`read_level`]).
fn quota_at(g: &Group, buf: &mut String, dir: &Path, own: &mut bool) -> Option<CpuQuota> {
    match g.version {
        Version::V2 => {
            read_level(buf, g, dir, "cpu.max", own)?;
            parse::cpu_max(buf)
        }
        Version::V1 => {
            read_level(buf, g, dir, "cpu.cfs_quota_us", own)?;
            // -1, no quota: the period does not matter.
            let quota_usec = Some(parse::v1_cfs_quota(buf)??);
            fsread::read_opt_in(buf, dir, "cpu.cfs_period_us")?;
            let period_usec = parse::single_u64(buf)?;
            Some(CpuQuota {
                quota_usec,
                period_usec,
            })
        }
    }
}

/// Smallest quota in cores over own group and visible ancestors; `own`
/// is set when the group's own quota file was read or is not there.
fn cpu_quota(g: &Group, buf: &mut String, own: &mut bool) -> Option<(f64, LimitSource)> {
    let mut best: Option<(f64, usize, &Path)> = None;
    for (i, dir) in g.levels().enumerate() {
        let Some(cores) = quota_at(g, buf, dir, own).and_then(|q| q.cores()) else {
            continue;
        };
        if best.is_none_or(|(b, _, _)| cores < b) {
            best = Some((cores, i, dir));
        }
    }
    best.map(|(cores, i, dir)| (cores, level_source(i, dir)))
}

/// The directory whose `cpu.stat` counts the throttling that matters: the
/// ancestor's whose quota is the smallest, when it is not ward's own group
/// (a child without a quota of its own counts no periods at all, while its
/// processes are throttled at the ancestor's: ECS puts the task's quota on
/// `/ecs/<task>` above the containers). `None`: ward's own.
pub(crate) fn throttled_at(g: &Group) -> Option<PathBuf> {
    let mut buf = String::new();
    match cpu_quota(g, &mut buf, &mut false)? {
        (_, LimitSource::Ancestor { path: Some(dir) }) => Some(dir),
        _ => None,
    }
}

/// CPUs in the group's effective cpuset. The effective set already reflects the
/// ancestors, so no walk is needed.
fn cpuset_count(g: &Group, buf: &mut String) -> Option<u32> {
    let files: &[&str] = match g.version {
        Version::V2 => &["cpuset.cpus.effective"],
        Version::V1 => &["cpuset.effective_cpus", "cpuset.cpus"],
    };
    for f in files {
        if fsread::read_opt_in(buf, &g.dir, f).is_some()
            && let Some(n) = parse::cpu_list_count(buf)
            && n > 0
        {
            return Some(n);
        }
    }
    None
}

/// Online CPUs, and the smaller of that and this process's affinity mask
/// (`Cpus_allowed_list`, which is what sched_getaffinity returns). Falls back to
/// ward's own affinity when neither file is readable.
fn host_cpus(roots: &Roots, buf: &mut String) -> (Option<u32>, Option<u32>) {
    let online = fsread::read_opt_in(buf, &roots.sys_cpu, "online")
        .and_then(|()| parse::cpu_list_count(buf))
        .filter(|&n| n > 0);
    let allowed = roots
        .in_process_dir("status", |path| fsread::read_opt(buf, path))
        .and_then(|()| {
            parse::status_field(buf, "Cpus_allowed_list").and_then(parse::cpu_list_count)
        })
        .filter(|&n| n > 0);
    let usable = match (online, allowed) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => affinity_cpus(),
    };
    (online, usable)
}

/// CPUs in this thread's affinity mask, the last resort when neither
/// `/sys` nor `/proc` could be read. Not `available_parallelism`: it also
/// reads cgroup quotas (ward reads its own) and its mountinfo scan costs
/// 5 KiB in the binary.
fn affinity_cpus() -> Option<u32> {
    // SAFETY: cpu_set_t is plain bits; sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    // SAFETY: CPU_COUNT only reads the set filled in above.
    (rc == 0)
        .then(|| unsafe { libc::CPU_COUNT(&set) } as u32)
        .filter(|&n| n > 0)
}

fn cpu_limit(
    quota: Option<(f64, LimitSource)>,
    cpuset: Option<(u32, &Group)>,
    online: Option<u32>,
    host: Option<u32>,
) -> Option<CpuLimit> {
    /// Which sets the limit, decided before its source is made (a
    /// quota's or a cpuset's holds a path, a heap block).
    enum Setter {
        Quota,
        Cpuset,
        Host,
    }
    let quota_cores = quota.as_ref().map(|(q, _)| *q);
    // A cpuset spanning every online CPU restricts nothing: name the host instead.
    let cpuset_cores = cpuset
        .filter(|(n, _)| online.is_none_or(|o| *n < o))
        .map(|(n, _)| f64::from(n));
    let mut best: Option<(f64, Setter)> = None;
    for (cores, setter) in [
        (quota_cores, Setter::Quota),
        (cpuset_cores, Setter::Cpuset),
        (host.map(f64::from), Setter::Host),
    ] {
        if let Some(c) = cores
            && best.as_ref().is_none_or(|(b, _)| c < *b)
        {
            best = Some((c, setter));
        }
    }
    let (cores, setter) = best?;
    let source = match setter {
        Setter::Quota => quota?.1,
        Setter::Cpuset => LimitSource::Cpuset {
            path: cpuset?.1.dir.clone(),
        },
        Setter::Host => LimitSource::Host {
            hidden_above: false,
        },
    };
    Some(CpuLimit {
        cores,
        source,
        quota_cores,
        cpuset_cpus: cpuset.map(|(n, _)| n),
        host_cpus: host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_task_bound_is_the_smaller_of_pid_max_and_threads_max() {
        let dir = std::env::temp_dir().join(format!("ward-host-tasks-{}", std::process::id()));
        let kernel = dir.join("sys/kernel");
        std::fs::create_dir_all(&kernel).unwrap();
        let roots = Roots {
            proc: dir.clone(),
            ..Roots::default()
        };
        let mut buf = String::new();
        // A PID namespace of Linux 6.14 or later: its own pid_max.
        std::fs::write(kernel.join("pid_max"), "4194304\n").unwrap();
        std::fs::write(kernel.join("threads-max"), "192739\n").unwrap();
        assert_eq!(host_tasks(&roots, &mut buf), Some(192_739));
        std::fs::write(kernel.join("pid_max"), "32768\n").unwrap();
        assert_eq!(host_tasks(&roots, &mut buf), Some(32_768));
        std::fs::remove_file(kernel.join("threads-max")).unwrap();
        assert_eq!(host_tasks(&roots, &mut buf), Some(32_768));
        std::fs::remove_file(kernel.join("pid_max")).unwrap();
        assert_eq!(host_tasks(&roots, &mut buf), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A group at `dir` under the mount at `mount` (both made by the test).
    fn group_at(version: Version, dir: &Path, mount: &Path) -> Group {
        Group {
            version,
            dir: dir.to_owned(),
            mount_point: mount.to_owned(),
            cgroup_path: "/".into(),
            placement: crate::cgroup::resolve::Placement::Exact,
            read_only: false,
        }
    }

    /// Swap past the memory limit: the host's, unless the group's swap
    /// limit (v2 `memory.swap.max` on it or an ancestor, v1 memsw less
    /// memory) is smaller.
    #[test]
    fn swap_room_is_the_hosts_swap_or_the_groups_smaller_limit() {
        let root = std::env::temp_dir().join(format!("ward-swap-room-{}", std::process::id()));
        let own = root.join("task/ctr");
        std::fs::create_dir_all(&own).unwrap();
        let group = |version| group_at(version, &own, &root);
        let mut buf = String::new();
        let (v1, v2) = (group(Version::V1), group(Version::V2));
        assert_eq!(swap_room(Some(&v2), &mut buf, 0), 0, "no swap on the host");
        assert_eq!(swap_room(None, &mut buf, 1 << 30), 1 << 30);
        // No swap accounting: the files are absent and the group may swap.
        assert_eq!(swap_room(Some(&v2), &mut buf, 1 << 30), 1 << 30);
        assert_eq!(swap_room(Some(&v1), &mut buf, 1 << 30), 1 << 30);
        std::fs::write(own.join("memory.swap.max"), "max\n").unwrap();
        std::fs::write(root.join("task/memory.swap.max"), "67108864\n").unwrap();
        assert_eq!(swap_room(Some(&v2), &mut buf, 1 << 30), 64 << 20);
        std::fs::write(own.join("memory.swap.max"), "0\n").unwrap();
        assert_eq!(swap_room(Some(&v2), &mut buf, 1 << 30), 0);
        // v1: Docker's --memory 32m --memory-swap 96m.
        let stat = |memsw: u64| {
            format!(
                "cache 0\nhierarchical_memory_limit 33554432\nhierarchical_memsw_limit {memsw}\n"
            )
        };
        std::fs::write(own.join("memory.stat"), stat(96 << 20)).unwrap();
        assert_eq!(swap_room(Some(&v1), &mut buf, 1 << 30), 64 << 20);
        assert_eq!(
            swap_room(Some(&v1), &mut buf, 16 << 20),
            16 << 20,
            "less swap on the host"
        );
        std::fs::write(own.join("memory.stat"), stat(9223372036854771712)).unwrap();
        assert_eq!(
            swap_room(Some(&v1), &mut buf, 1 << 30),
            1 << 30,
            "memsw unlimited"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A host limit says whether the cgroups above the mount are hidden:
    /// ECS's task limit sits above a v1 container's mount, and a cgroup
    /// namespace hides everything above the container's group.
    #[test]
    fn a_host_limit_says_whether_the_cgroups_above_are_hidden() {
        let top = std::env::temp_dir().join(format!("ward-hidden-above-{}", std::process::id()));
        std::fs::create_dir_all(&top).unwrap();
        let group = |version| group_at(version, &top, &top);
        let said = |g: &Group| {
            let mut s = LimitSource::Host {
                hidden_above: false,
            };
            mark_hidden(Some(&mut s), Some(g));
            s.words()
        };
        let hidden = "the host's; no limit on the cgroups in view, and the ones above are hidden";
        let none = "the host's, no cgroup limit";
        // v1: only a hierarchy's root has release_agent.
        assert_eq!(said(&group(Version::V1)), hidden);
        std::fs::write(top.join("release_agent"), "").unwrap();
        assert_eq!(said(&group(Version::V1)), none);
        // v2: the root alone has no cgroup.events.
        assert_eq!(said(&group(Version::V2)), none);
        std::fs::write(top.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert_eq!(said(&group(Version::V2)), hidden);
        // A limit found on a cgroup is left as it is.
        let mut own = LimitSource::OwnGroup;
        mark_hidden(Some(&mut own), Some(&group(Version::V2)));
        assert_eq!(own, LimitSource::OwnGroup);
        std::fs::remove_dir_all(&top).unwrap();
    }

    /// How many times each file in the directories `watch` watches was
    /// opened (inotify's `IN_OPEN`; a failed open is not one).
    fn opens(watch: &nix::sys::inotify::Inotify) -> std::collections::BTreeMap<String, u32> {
        let mut counts = std::collections::BTreeMap::new();
        // Non-blocking: EAGAIN once every event is read.
        while let Ok(events) = watch.read_events() {
            for e in events {
                let name = e.name.map(|n| n.to_string_lossy().into_owned());
                *counts.entry(name.unwrap_or_default()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Where the limits come out as the host's, the check for an
    /// unreadable limit file opens only what the walks did not: they read
    /// `cpu.cfs_quota_us` and `pids.max`, and on v1 `memory.stat`'s
    /// `hierarchical_memory_limit` takes in `memory.limit_in_bytes`.
    #[test]
    fn a_limits_read_opens_each_own_limit_file_at_most_once() {
        let top = std::env::temp_dir().join(format!("ward-own-reads-{}", std::process::id()));
        let roots = Roots::under(&top);
        let (memory, cpu, pids) = (
            roots.sys_cgroup.join("memory"),
            roots.sys_cgroup.join("cpu"),
            roots.sys_cgroup.join("pids"),
        );
        for d in [&memory, &cpu, &pids, &roots.proc, &roots.sys_cpu] {
            std::fs::create_dir_all(d).unwrap();
        }
        let unlimited = "9223372036854771712\n";
        std::fs::write(memory.join("memory.limit_in_bytes"), unlimited).unwrap();
        std::fs::write(
            memory.join("memory.stat"),
            format!("cache 0\nhierarchical_memory_limit {unlimited}"),
        )
        .unwrap();
        std::fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        std::fs::write(cpu.join("cpu.cfs_period_us"), "100000\n").unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        std::fs::write(roots.proc.join("meminfo"), "MemTotal: 1048576 kB\n").unwrap();
        std::fs::create_dir_all(roots.proc.join("sys/kernel")).unwrap();
        std::fs::write(roots.proc.join("sys/kernel/pid_max"), "32768\n").unwrap();
        std::fs::write(roots.sys_cpu.join("online"), "0-1\n").unwrap();
        let mut cg = Cgroups::without_groups(crate::cgroup::Layout::V1, &roots);
        cg.memory = Some(group_at(Version::V1, &memory, &memory));
        cg.cpu = Some(group_at(Version::V1, &cpu, &cpu));
        cg.pids = Some(group_at(Version::V1, &pids, &pids));
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).and_then(|w| {
            for d in [&memory, &cpu, &pids] {
                w.add_watch(d.as_path(), AddWatchFlags::IN_OPEN)?;
            }
            Ok(w)
        });
        let limits = read(&cg, &roots, &mut String::new());
        let opened = watch.as_ref().map(opens);
        std::fs::remove_dir_all(&top).unwrap();
        // Loud, not skipped: inotify is no privilege (a machine out of
        // inotify instances says so here).
        let opened = opened.unwrap_or_else(|e| panic!("inotify: {e}"));
        assert!(limits.unreadable.is_empty(), "{:?}", limits.unreadable);
        let host = |s: Option<&LimitSource>| s.is_some_and(LimitSource::is_host);
        assert!(
            host(limits.memory.as_ref().map(|m| &m.source)),
            "{limits:?}"
        );
        assert!(host(limits.pids.as_ref().map(|p| &p.source)), "{limits:?}");
        let once = |name: &str| opened.get(name).copied().unwrap_or(0);
        assert_eq!(once("cpu.cfs_quota_us"), 1, "{opened:?}");
        assert_eq!(once("pids.max"), 1, "{opened:?}");
        assert_eq!(once("memory.stat"), 1, "{opened:?}");
        assert_eq!(once("memory.limit_in_bytes"), 0, "{opened:?}");
    }

    /// An own limit file that is there but cannot be read (a directory in
    /// its place: EISDIR, for root too) is still said, and its limit is
    /// unknown, though the walk read that level already.
    #[test]
    fn an_own_limit_file_that_cannot_be_read_is_still_said() {
        let top = std::env::temp_dir().join(format!("ward-own-unreadable-{}", std::process::id()));
        let roots = Roots::under(&top);
        let own = roots.sys_cgroup.join("ctr");
        for d in [&own, &roots.proc, &roots.sys_cpu] {
            std::fs::create_dir_all(d).unwrap();
        }
        for file in ["memory.max", "cpu.max", "pids.max"] {
            std::fs::create_dir_all(own.join(file)).unwrap();
        }
        std::fs::write(roots.proc.join("meminfo"), "MemTotal: 1048576 kB\n").unwrap();
        std::fs::write(roots.sys_cpu.join("online"), "0-1\n").unwrap();
        let mut cg = Cgroups::without_groups(crate::cgroup::Layout::V2, &roots);
        let g = group_at(Version::V2, &own, &roots.sys_cgroup);
        (cg.memory, cg.cpu, cg.pids) = (Some(g.clone()), Some(g.clone()), Some(g));
        let limits = read(&cg, &roots, &mut String::new());
        std::fs::remove_dir_all(&top).unwrap();
        assert_eq!(limits.unreadable.len(), 3, "{limits:?}");
        for (said, file) in limits
            .unreadable
            .iter()
            .zip(["memory.max", "cpu.max", "pids.max"])
        {
            assert!(said.contains(file), "{said}");
        }
        assert_eq!(
            (&limits.memory, &limits.cpu, &limits.pids),
            (&None, &None, &None)
        );
    }

    /// v2: the quota in force on an ancestor makes its `cpu.stat` the one
    /// that counts throttling; the own group's quota, or none, leaves it.
    #[test]
    fn throttling_is_read_where_the_smallest_quota_is() {
        let root = std::env::temp_dir().join(format!("ward-throttled-at-{}", std::process::id()));
        let (up, own) = (root.join("task"), root.join("task/ctr"));
        std::fs::create_dir_all(&own).unwrap();
        let g = group_at(Version::V2, &own, &root);
        std::fs::write(own.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(up.join("cpu.max"), "50000 100000\n").unwrap();
        assert_eq!(throttled_at(&g), Some(up.clone()));
        std::fs::write(own.join("cpu.max"), "20000 100000\n").unwrap();
        assert_eq!(throttled_at(&g), None, "ward's own quota is smaller");
        std::fs::write(up.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(own.join("cpu.max"), "max 100000\n").unwrap();
        assert_eq!(throttled_at(&g), None, "no quota anywhere");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_peak_one_charge_past_an_ancestors_limit_is_the_limit() {
        const MIB: u64 = 1 << 20;
        assert_eq!(peak_within(3 * MIB, 64 * MIB), Some(3 * MIB));
        assert_eq!(peak_within(64 * MIB, 64 * MIB), Some(64 * MIB));
        // Seen: 67,358,720 in a child group under a 64 MiB parent.
        assert_eq!(peak_within(67_358_720, 64 * MIB), Some(64 * MIB));
        assert_eq!(peak_within(64 * MIB + 256 * 1024, 64 * MIB), Some(64 * MIB));
        // More than a charge over: from before the limit was lowered.
        assert_eq!(peak_within(64 * MIB + 256 * 1024 + 1, 64 * MIB), None);
        assert_eq!(peak_within(500 * MIB, 64 * MIB), None);
    }

    #[test]
    fn affinity_counts_the_cpus_this_process_may_use() {
        let n = affinity_cpus().expect("sched_getaffinity on self") as usize;
        // std's count is the affinity mask, lowered by any cgroup quota.
        let std_count = std::thread::available_parallelism().unwrap().get();
        assert!(
            n >= std_count && n <= libc::CPU_SETSIZE as usize,
            "{n} vs {std_count}"
        );
    }

    #[test]
    fn memory_limit_above_host_is_host() {
        let l = pick_with_host(Some((1 << 40, LimitSource::OwnGroup)), Some(1 << 30)).unwrap();
        assert!(l.source.is_host());
        let l = pick_with_host(Some((1 << 20, LimitSource::OwnGroup)), Some(1 << 30)).unwrap();
        assert_eq!((l.bytes, l.source), (1 << 20, LimitSource::OwnGroup));
        assert!(pick_with_host(None, None).is_none());
    }

    #[test]
    fn cpu_limit_takes_smallest_and_prefers_quota_on_ties() {
        let l = cpu_limit(Some((2.0, LimitSource::OwnGroup)), None, Some(2), Some(2)).unwrap();
        assert_eq!((l.cores, l.source), (2.0, LimitSource::OwnGroup));
        let l = cpu_limit(None, None, Some(8), Some(8)).unwrap();
        assert_eq!(l.cores, 8.0);
        assert!(l.source.is_host());
        let l = cpu_limit(Some((0.5, LimitSource::OwnGroup)), None, Some(8), Some(8)).unwrap();
        assert_eq!(l.cores, 0.5);
        assert_eq!(l.quota_cores, Some(0.5));
    }
}
