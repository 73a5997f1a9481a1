//! The [`Snapshot`]: everything ward knows about the container at one moment,
//! filled in one place, the [`Sampler`]: its first look, then a cgroup
//! sample with a census when one is due. The warnings, the exit report, the
//! metrics endpoint and `ward status` all read it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::throttle::{ThrottleRatio, ThrottleReading, ThrottleWindow};
use crate::cgroup::{CgroupSample, Cgroups, Layout, Limits};
use crate::procs::{ProcTable, ProcessCensus, Scope};

/// Limits are re-read this often (they can be changed on a live container).
const LIMITS_EVERY: Duration = Duration::from_secs(15);
/// A full process census runs at least this often. A child that becomes a
/// zombie moves no task count (it counts until reaped), so this is how soon
/// a parent that stops waiting is seen: a minute was too long for a person
/// looking at `ward status`, whose own list showed the zombies already. A
/// census of a few processes costs tens of µs.
const CENSUS_EVERY: Duration = Duration::from_secs(15);
/// The least time between the two looks that must both see a zombie for
/// it to count as left unreaped: the shortest watch interval. (A parent
/// that waits takes its exited child within microseconds to milliseconds.)
const KEPT_GAP: Duration = Duration::from_millis(100);
/// ...and never more often than this many times its own last cost, so that
/// even with thousands of processes the census stays near 1% of one core
/// at worst. Reading `/proc/PID/stat` costs the kernel ~15 µs per process.
const CENSUS_COST_FACTOR: u32 = 100;

/// Ratios relative to the container's own limits: what dashboards lack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Ratios {
    /// Working set / memory limit.
    pub memory_ratio: Option<f64>,
    /// `pids.current` / effective pids limit.
    pub pids_ratio: Option<f64>,
    /// Throttling over the last 30 s.
    pub throttle_30s: Option<ThrottleRatio>,
    /// Throttling over the last 60 s.
    pub throttle_60s: Option<ThrottleRatio>,
    /// Throttling over the last 5 minutes (`ward status`).
    pub throttle_300s: Option<ThrottleRatio>,
}

/// One look at the container.
#[derive(Debug, Default, Serialize)]
pub struct Snapshot {
    /// Seconds since ward started.
    pub uptime_s: f64,
    /// Which cgroup setup ward found (`None` when it found none).
    pub layout: Option<Layout>,
    /// The limits in force and where each comes from.
    pub limits: Limits,
    /// Raw cgroup numbers.
    pub cgroup: CgroupSample,
    /// The latest process census (may be older than this snapshot: see
    /// `census_age_s`).
    pub procs: Option<ProcessCensus>,
    /// Seconds since the census was taken.
    pub census_age_s: f64,
    /// Ratios to the limits.
    pub ratios: Ratios,
    /// Samples taken so far.
    pub samples: u64,
    /// Reads that failed unexpectedly, over the whole run.
    pub read_errors: u64,
}

impl Clone for Snapshot {
    fn clone(&self) -> Snapshot {
        let mut s = Snapshot::default();
        s.clone_from(self);
        s
    }

    /// Into the census's lists' room: the board's copy is refreshed
    /// every sample ([`crate::procs::ProcessCensus`]'s `clone_from`). Every
    /// field is named, so a new one cannot be missed.
    fn clone_from(&mut self, source: &Snapshot) {
        let Snapshot {
            uptime_s,
            layout,
            limits,
            cgroup,
            procs,
            census_age_s,
            ratios,
            samples,
            read_errors,
        } = source;
        self.uptime_s = *uptime_s;
        self.layout = *layout;
        // Limits' derived `clone_from` makes them anew (an ancestor's or a
        // cpuset's path): copied only when they changed, every 15 s at most.
        if self.limits != *limits {
            self.limits.clone_from(limits);
        }
        self.cgroup = *cgroup;
        self.procs.clone_from(procs);
        self.census_age_s = *census_age_s;
        self.ratios = *ratios;
        self.samples = *samples;
        self.read_errors = *read_errors;
    }
}

impl Snapshot {
    /// The pids limit in force: the smaller of the own group's `pids.max` as
    /// this sample read it and the limit found for ward's place (own group,
    /// ancestors, host), which an ancestor's smaller limit sets.
    pub fn pids_max(&self) -> Option<u64> {
        let found = self.limits.pids.as_ref().map(|p| p.max);
        match (self.cgroup.pids.max, found) {
            (Some(own), Some(found)) => Some(own.min(found)),
            (own, found) => own.or(found),
        }
    }

    /// The limit that refused forks, after "the pids limit": ` of 24`; a
    /// limit ward does not see (only a cgroup's refuses a fork, so with the
    /// host's number in view it is set above the cgroups ward can read: a
    /// pod's, under a cgroup namespace) is said to be one, with no number.
    pub fn refusing_limit_words(&self) -> String {
        let host = self
            .limits
            .pids
            .as_ref()
            .is_some_and(|p| p.source.is_host());
        match self.pids_max() {
            Some(_) if host && self.cgroup.pids.max.is_none() => {
                " (set on a cgroup above the ones ward can read, so its number is unknown)".into()
            }
            Some(m) => format!(" of {m}"),
            None => String::new(),
        }
    }
}

/// The one filler of [`Snapshot`]s: owns the cgroup handles, the reusable
/// buffers and the sliding windows.
pub struct Sampler {
    cgroups: Option<Cgroups>,
    proc_root: PathBuf,
    self_pid: i32,
    scope: Scope,
    buf: String,
    table: ProcTable,
    started: Instant,
    limits_at: Option<Instant>,
    census_at: Option<Instant>,
    /// When the census `Snapshot::procs` holds was taken (a failed one
    /// keeps the one before, and its age).
    procs_at: Option<Instant>,
    /// Censuses that succeeded: which one `Snapshot::procs` holds.
    censuses: u64,
    /// Censuses in a row that saw zombies under live parents: at 1, the
    /// next sample looks again, since a zombie counts as left unreaped
    /// only when two looks saw it (`UnreapedSeen`).
    unreaped_streak: u8,
    /// The last census's unreaped zombies, (parent, start time, pid), as
    /// [`crate::procs::census_into`] fills them: compared with
    /// `unreaped_seen`, then kept in its place (this list then empty, its
    /// room the earlier one's) or left for the next census to refill. Not
    /// in the census, whose copies go to the board and the reaping thread.
    unreaped_ids: Vec<crate::procs::UnreapedId>,
    /// The unreaped zombies of the last census at least [`KEPT_GAP`]
    /// older than its successor, and when it was taken: the look the next
    /// one compares with.
    unreaped_seen: (crate::procs::UnreapedSeen, Option<Instant>),
    /// What the last comparison found kept, carried by censuses taken
    /// closer together than [`KEPT_GAP`] (the looks right after an OOM
    /// kill, 30 ms apart).
    unreaped_kept: (u32, Option<crate::procs::ZombieParent>),
    census_cost: Duration,
    census_tasks: Option<u64>,
    throttle: ThrottleWindow,
    /// `proc_root` is the procfs of ward's PID namespace
    /// ([`crate::procs::is_own`]); without it no census is taken.
    own_proc: bool,
}

impl Sampler {
    /// A sampler for ward's own cgroup (`None` when none could be found) and
    /// its processes under `proc_root`.
    pub fn new(
        cgroups: Option<Cgroups>,
        proc_root: PathBuf,
        self_pid: i32,
        is_pid1: bool,
    ) -> Sampler {
        let own_proc = crate::procs::is_own(&proc_root, self_pid);
        Sampler {
            cgroups,
            proc_root,
            self_pid,
            scope: if is_pid1 {
                Scope::All
            } else {
                Scope::DescendantsOf(self_pid)
            },
            buf: String::with_capacity(4096),
            table: ProcTable::default(),
            started: Instant::now(),
            limits_at: None,
            census_at: None,
            procs_at: None,
            censuses: 0,
            unreaped_streak: 0,
            unreaped_ids: Vec::new(),
            unreaped_seen: Default::default(),
            unreaped_kept: Default::default(),
            census_cost: Duration::ZERO,
            census_tasks: None,
            throttle: ThrottleWindow::default(),
            own_proc,
        }
    }

    /// The cgroup handles, if any.
    pub fn cgroups(&self) -> Option<&Cgroups> {
        self.cgroups.as_ref()
    }

    /// Fills `snap` with the cgroup's numbers only, without a census (a
    /// sample's census comes after, from [`Sampler::census_if_due`], once
    /// the caller has decided one may run).
    pub fn take_cgroup_only(&mut self, now: Instant, snap: &mut Snapshot) {
        snap.uptime_s = now.duration_since(self.started).as_secs_f64();
        snap.samples += 1;
        if let Some(cg) = &self.cgroups {
            snap.layout = Some(cg.layout);
            if self
                .limits_at
                .is_none_or(|t| now.duration_since(t) >= LIMITS_EVERY)
            {
                snap.limits = cg.limits_with(&mut self.buf);
                self.limits_at = Some(now);
            }
            cg.sample(&mut self.buf, &mut snap.cgroup);
            snap.read_errors += u64::from(snap.cgroup.errors);
        }
        self.push_throttle(now, snap);
        snap.ratios = self.ratios(snap);
        self.census_age(now, snap);
    }

    /// What the watch reads as the child starts, since nothing the child
    /// does changes it: the files a sample reads opened (discovery left
    /// them closed) and the limits, which samples then re-read only every
    /// `LIMITS_EVERY`.
    pub fn prepare_first(&mut self, now: Instant, snap: &mut Snapshot) {
        if let Some(cg) = &mut self.cgroups {
            cg.open_sample_files();
            snap.layout = Some(cg.layout);
            snap.limits = cg.limits_with(&mut self.buf);
            self.limits_at = Some(now);
        }
    }

    /// The limits are read again at the next sample when they are older
    /// than `age`: after an OOM kill (at any age) and for the last sample,
    /// whose numbers the report gives (a `docker update` or an in-place
    /// resize changes them live).
    pub fn limits_if_older(&mut self, now: Instant, age: Duration) {
        if self.limits_at.is_some_and(|t| now.duration_since(t) >= age) {
            self.limits_at = None;
        }
    }

    /// A sample's census, after a [`Sampler::take_cgroup_only`] of the same
    /// moment: the caller decides in between whether a census may run at all
    /// (it may grow ward's heap, and ward's memory is the container's).
    pub fn census_if_due(&mut self, now: Instant, snap: &mut Snapshot) {
        if self.census_due(now, snap.cgroup.pids.current) {
            self.census(now, snap);
        }
        self.census_age(now, snap);
    }

    /// Sets `snap.census_age_s` to the age at `now` of the census
    /// `snap.procs` holds (0 without one).
    pub fn census_age(&self, now: Instant, snap: &mut Snapshot) {
        snap.census_age_s = self
            .procs_at
            .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
    }

    /// Adds the throttling counters of `snap` to the sliding window.
    fn push_throttle(&mut self, now: Instant, snap: &Snapshot) {
        let cpu = snap.cgroup.cpu;
        if let (Some(periods), Some(throttled)) = (cpu.nr_periods, cpu.nr_throttled) {
            self.throttle.push(ThrottleReading {
                at: now,
                periods,
                throttled,
                usage_usec: cpu.usage_usec.unwrap_or(0),
            });
        }
    }

    /// Marks in `c` the unreaped zombies the look before saw too, if that
    /// look was at least [`KEPT_GAP`] before: two looks 30 ms apart can both
    /// catch an OOM victim under a shell about to wait() for it.
    fn mark_kept(&mut self, now: Instant, c: &mut crate::procs::ProcessCensus) {
        let since = self
            .unreaped_seen
            .1
            .map(|t| now.saturating_duration_since(t));
        if since.is_none_or(|d| d >= KEPT_GAP) {
            if since.is_some() {
                self.unreaped_kept = self.unreaped_seen.0.persisting(&self.unreaped_ids, c);
            }
            self.unreaped_seen.0.keep(&mut self.unreaped_ids);
            self.unreaped_seen.1 = Some(now);
        }
        (c.unreaped_kept, c.worst_kept) = self.unreaped_kept;
    }

    /// Takes a process census now, whatever the schedule says (a warning is
    /// about to name processes).
    pub fn census(&mut self, now: Instant, snap: &mut Snapshot) {
        let t0 = cpu_time();
        if !self.own_proc {
            // Not this namespace's /proc: its processes are not ward's.
            snap.read_errors += 1;
            return;
        }
        // Into the last census's room (its lists): a failed one leaves it
        // as it was.
        let had = snap.procs.is_some();
        let c = snap.procs.get_or_insert_with(Default::default);
        let (root, pid, scope) = (&self.proc_root, self.self_pid, self.scope);
        let ids = &mut self.unreaped_ids;
        match crate::procs::census_into(root, pid, scope, &mut self.table, c, ids) {
            Ok(()) => {
                self.unreaped_streak = match c.unreaped_total {
                    0 => 0,
                    _ => self.unreaped_streak.saturating_add(1),
                };
                self.mark_kept(now, c);
                self.censuses += 1;
                self.procs_at = Some(now);
            }
            Err(_) => {
                if !had {
                    snap.procs = None;
                }
                snap.read_errors += 1;
            }
        }
        self.census_cost = cpu_time().saturating_sub(t0);
        self.census_at = Some(now);
        self.census_tasks = snap.cgroup.pids.current;
        // A failed census leaves the last one in `snap.procs`, aging.
        self.census_age(now, snap);
    }

    /// How many censuses have succeeded: a new number means `snap.procs`
    /// is a new census.
    pub fn censuses(&self) -> u64 {
        self.censuses
    }

    /// The table of the last census.
    pub fn table(&self) -> &ProcTable {
        &self.table
    }

    /// ward's own pid as the census sees it.
    pub fn self_pid(&self) -> i32 {
        self.self_pid
    }

    /// The proc root the census reads.
    pub fn proc_root(&self) -> &std::path::Path {
        &self.proc_root
    }

    /// A census is due at start, every [`CENSUS_EVERY`], or when the
    /// task count moved; never sooner than its cost allows.
    fn census_due(&self, now: Instant, tasks: Option<u64>) -> bool {
        let Some(last) = self.census_at else {
            return true;
        };
        let since = now.duration_since(last);
        if since < self.census_cost * CENSUS_COST_FACTOR {
            return false;
        }
        let moved = match (tasks, self.census_tasks) {
            (Some(now), Some(then)) => now.abs_diff(then) >= (then / 10).max(5),
            // Without a pids controller there is no cheap count: look every time.
            _ => true,
        };
        moved || since >= CENSUS_EVERY || self.unreaped_streak == 1
    }

    fn ratios(&self, snap: &Snapshot) -> Ratios {
        let mem = &snap.cgroup.memory;
        let memory_ratio = match (mem.working_set.or(mem.usage), &snap.limits.memory) {
            (Some(ws), Some(limit)) if limit.bytes > 0 => Some(ws as f64 / limit.bytes as f64),
            _ => None,
        };
        let pids_max = snap.pids_max();
        let pids_ratio = match (snap.cgroup.pids.current, pids_max) {
            (Some(cur), Some(max)) if max > 0 => Some(cur as f64 / max as f64),
            _ => None,
        };
        Ratios {
            memory_ratio,
            pids_ratio,
            throttle_30s: self.throttle.over(Duration::from_secs(30)),
            throttle_60s: self.throttle.over(Duration::from_secs(60)),
            throttle_300s: self.throttle.over(Duration::from_secs(300)),
        }
    }
}

/// CPU time ward's own thread has used (for the census's cost).
fn cpu_time() -> Duration {
    // SAFETY: clock_gettime with a valid timespec pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::fixture::FakeProc;

    /// A zombie two looks 30 ms apart both see (an OOM victim under a shell
    /// about to wait() for it, seen by the looks after the kill) is not
    /// left unreaped; seen again a sample later, it is.
    #[test]
    fn kept_zombies_need_two_looks_a_gap_apart() {
        let t = FakeProc::new("kept-gap", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1)
            .process(3, "sh", 'S', 1, 1, 0, 1)
            .process(7, "victim", 'Z', 3, 1, 50, 0);
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        let mut snap = Snapshot::default();
        let t0 = Instant::now();
        let kept = |sampler: &mut Sampler, snap: &mut Snapshot, at| {
            sampler.census(at, snap);
            snap.procs.as_ref().map(|c| c.unreaped_kept)
        };
        assert_eq!(kept(&mut sampler, &mut snap, t0), Some(0));
        assert_eq!(
            kept(&mut sampler, &mut snap, t0 + Duration::from_millis(30)),
            Some(0)
        );
        assert_eq!(
            kept(&mut sampler, &mut snap, t0 + Duration::from_millis(60)),
            Some(0)
        );
        assert_eq!(
            kept(&mut sampler, &mut snap, t0 + Duration::from_millis(150)),
            Some(1)
        );
        // Carried by a look soon after, gone once a look a gap later misses it.
        assert_eq!(
            kept(&mut sampler, &mut snap, t0 + Duration::from_millis(170)),
            Some(1)
        );
        std::fs::remove_dir_all(t.path().join("7")).unwrap();
        assert_eq!(
            kept(&mut sampler, &mut snap, t0 + Duration::from_millis(300)),
            Some(0)
        );
    }

    /// The census's age is the age of the one `snap.procs` holds: it grows
    /// while none is taken (a skipped one), and a census that fails leaves
    /// the last one, still aging, not made new (a `memory_high` line named
    /// its largest processes as just seen).
    #[test]
    fn the_census_age_is_the_held_census_age() {
        let t = FakeProc::new("census-age", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1)
            .process(3, "app", 'S', 1, 1, 0, 1);
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        let mut snap = Snapshot::default();
        let t0 = Instant::now();
        sampler.census(t0, &mut snap);
        assert!(snap.procs.is_some());
        assert_eq!(snap.census_age_s, 0.0);
        sampler.census_age(t0 + Duration::from_secs(2), &mut snap);
        assert_eq!(snap.census_age_s, 2.0);
        // The whole /proc gone: the census fails.
        std::fs::remove_dir_all(t.path()).unwrap();
        let before = snap.read_errors;
        sampler.census(t0 + Duration::from_secs(3), &mut snap);
        assert_eq!(snap.read_errors, before + 1);
        assert!(snap.procs.is_some());
        assert_eq!(snap.census_age_s, 3.0);
    }

    #[test]
    fn a_failed_first_census_leaves_no_census_and_a_copy_in_place_is_the_snapshot() {
        let gone = FakeProc::new("census-first-fails", "100.0");
        let mut sampler = Sampler::new(None, gone.path().to_path_buf(), 1, true);
        std::fs::remove_dir_all(gone.path()).unwrap();
        let mut snap = Snapshot::default();
        sampler.census(Instant::now(), &mut snap);
        assert_eq!(snap.read_errors, 1, "the census did not fail");
        assert!(snap.procs.is_none(), "an empty census from a failed one");
        // A snapshot with a census, limits and numbers, copied in place
        // over one without and over an older one: the same snapshot.
        let t = FakeProc::new("census-copied", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1)
            .process(3, "app", 'S', 1, 1, 0, 1);
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        let mut full = Snapshot::default();
        sampler.census(Instant::now(), &mut full);
        full.limits.memory = Some(crate::cgroup::MemoryLimit {
            bytes: 1 << 30,
            source: crate::cgroup::LimitSource::Ancestor {
                path: Some("/sys/fs/cgroup/memory/task".into()),
            },
        });
        full.samples = 7;
        full.read_errors = 2;
        full.uptime_s = 12.5;
        full.layout = Some(crate::cgroup::Layout::V1);
        full.cgroup.memory.usage = Some(3 << 20);
        full.cgroup.pids.current = Some(4);
        full.ratios.memory_ratio = Some(0.25);
        full.census_age_s = 1.5;
        let json = |s: &Snapshot| serde_json::to_value(s).unwrap();
        let mut copy = Snapshot::default();
        copy.clone_from(&full);
        assert_eq!(json(&copy), json(&full));
        let mut older = Snapshot::default();
        sampler.census(Instant::now(), &mut older);
        older.procs.as_mut().unwrap().top_rss[0].name = "older-and-longer".into();
        older.limits.memory = Some(crate::cgroup::MemoryLimit {
            bytes: 1 << 20,
            source: crate::cgroup::LimitSource::OwnGroup,
        });
        older.samples = 1;
        older.clone_from(&full);
        assert_eq!(json(&older), json(&full));
        // Limits unchanged since the last copy (the re-read comes every
        // 15 s): the ancestor's path is kept, not made anew.
        let held = |s: &Snapshot| match &s.limits.memory.as_ref().unwrap().source {
            crate::cgroup::LimitSource::Ancestor { path: Some(p) } => {
                p.as_os_str().as_encoded_bytes().as_ptr()
            }
            other => panic!("{other:?}"),
        };
        let at = held(&older);
        older.clone_from(&full);
        assert_eq!(held(&older), at, "unchanged limits copied anew");
        let mut emptied = full.clone();
        emptied.clone_from(&Snapshot::default());
        assert_eq!(json(&emptied), json(&Snapshot::default()));
    }

    /// A /proc whose `self` is not ward (another PID namespace's, as under
    /// `unshare --pid --fork` without `--mount-proc`) gives no census: its
    /// processes are not ward's. Before, the report named the host's pid 3
    /// (a kernel thread) as the main process.
    #[test]
    fn no_census_of_another_namespaces_proc() {
        let t = FakeProc::new("foreign", "100.0");
        t.process(1, "systemd", 'S', 0, 1, 0, 1).process(
            3,
            "pool_workqueue_release",
            'S',
            2,
            1,
            0,
            0,
        );
        std::fs::remove_file(t.path().join("self")).unwrap();
        std::os::unix::fs::symlink("4242", t.path().join("self")).unwrap();
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        let mut snap = Snapshot::default();
        sampler.census(Instant::now(), &mut snap);
        assert!(snap.procs.is_none());
        assert_eq!(snap.read_errors, 1, "said, as an unreadable /proc is");
        // The same tree as ward's own: counted.
        std::fs::remove_file(t.path().join("self")).unwrap();
        std::os::unix::fs::symlink("1", t.path().join("self")).unwrap();
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        sampler.census(Instant::now(), &mut snap);
        assert_eq!(snap.procs.map(|c| c.processes), Some(2));
    }

    /// Censuses taken by `census_if_due` at 1 s steps with the task count
    /// unchanged (so neither a moved count nor the minute makes one due).
    fn censuses_over(t: &FakeProc, looks: u32) -> u64 {
        let mut sampler = Sampler::new(None, t.path().to_path_buf(), 1, true);
        let mut snap = Snapshot::default();
        snap.cgroup.pids.current = Some(10);
        let start = Instant::now();
        for i in 0..looks {
            sampler.census_if_due(start + Duration::from_secs(u64::from(i)), &mut snap);
        }
        sampler.censuses()
    }

    #[test]
    fn zombies_under_a_live_parent_are_looked_at_once_more() {
        // The incidents hold zombies under live parents (20, 30): the first
        // census saw them, the second confirms, then CENSUS_EVERY again.
        let t = FakeProc::incidents("confirm");
        assert_eq!(censuses_over(&t, 5), 2);
        // Without any: one census until CENSUS_EVERY is up.
        let calm = FakeProc::new("calm", "100.00");
        calm.process(1, "ward", 'S', 0, 2, 10, 100)
            .process(10, "app", 'S', 1, 1, 20, 5000);
        assert_eq!(censuses_over(&calm, 5), 1);
    }

    #[test]
    fn zombies_of_a_steady_task_count_are_looked_for_every_15_s() {
        // Children turning into zombies move no task count: only the
        // census's own clock finds them. At 1 s steps, 0..=30 s: at 0, 15
        // and 30.
        let calm = FakeProc::new("steady", "100.00");
        calm.process(1, "ward", 'S', 0, 2, 10, 100)
            .process(10, "app", 'S', 1, 1, 20, 5000);
        assert_eq!(censuses_over(&calm, 15), 1);
        assert_eq!(censuses_over(&calm, 16), 2);
        assert_eq!(censuses_over(&calm, 31), 3);
    }
}
