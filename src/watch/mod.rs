//! The watch: a thread of its own that samples the container's cgroup and
//! processes every interval, notices OOM kills the moment they happen, warns
//! before trouble, and runs the reaping thread's errands that read `/proc`.
//!
//! - `snapshot.rs`: the [`Snapshot`] type and its one filler, [`Sampler`].
//! - `throttle.rs`: CFS throttling over a sliding window.
//! - `alerts.rs`: thresholds with hysteresis, and the words of each warning.
//! - `link.rs`: the messages between the reaping thread and this one.
//! - `errands.rs`: naming senders, signalling at shutdown, `--orphans terminate`.
//! - `victims.rs`: the OOM victim census (who is gone, who survived a rise).
//! - `resident.rs`: when ward's code is locked in memory, and its lines.
//!
//! Everything that reads `/proc` or cgroup files runs here, never on the
//! reaping thread: a census of thousands of processes may take 100 ms, and a
//! signal or a zombie must never wait for it. Errors never fail the init: a
//! read error is counted and logged once.

pub mod alerts;
pub mod board;
pub mod errands;
pub mod link;
pub mod resident;
pub mod snapshot;
pub mod throttle;
pub mod victims;

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

pub use link::{Observation, ObservedPeaks, OomContext, OomVictim, Request};
pub use snapshot::{Ratios, Sampler, Snapshot};

use crate::cgroup::{Cgroups, OomNotifier, Roots};
use crate::cli::Thresholds;
use crate::log::{self, Level};
use crate::metrics::ecs::{self, AfterFailure, LookupSchedule};
use crate::metrics::emf::{EmfContext, EmfInterval, render_emf};
use crate::metrics::http::ServerHandle;
use crate::units::{bytes, cores, secs};
use alerts::AlertState;
use board::{Board, OomKillPosted, WarningPosted};
use errands::OrphanTerminator;
use link::WatchEnd;

/// Candidates are refreshed every interval once memory is at this share of
/// the `memory_high` threshold.
const CANDIDATES_FROM: f64 = 0.5;
/// After a rise, look for the gone this long at most, this often.
const RISE_LOOK_FOR: Duration = Duration::from_millis(300);
const RISE_LOOK_EVERY: Duration = Duration::from_millis(30);
/// At most this many processes are checked as survivors of a rise.
const SURVIVOR_CHECKS: usize = 256;
/// How many of the largest candidates get their `oom_score` read.
const SCORED_CANDIDATES: usize = 8;

/// Without `--metrics`, `ward status` is served from this long after the
/// main child started: its thread and socket can wait, and a job that is
/// over by then never pays for them.
const STATUS_AFTER: Duration = Duration::from_millis(50);

/// Under a cgroup pids limit, the serving thread starts only with at least
/// this many tasks to spare: a thread the limit refuses would be counted
/// among the container's refused forks, which are the application's news.
pub const STATUS_HEADROOM: u64 = 8;
/// Under a cgroup memory limit, the serving thread starts only with at
/// least this much left that the kernel cannot reclaim (its stacks and
/// buffers take far less): ward's memory is the container's, and a charge
/// to a full group was seen to make the kernel OOM-kill the application's
/// shell (a new thread; 'ward-watch invoked oom-killer' 6.9 ms after a kill).
pub const MEMORY_HEADROOM: u64 = 4 << 20;
/// The same for a look at `/proc` (a census: a kernel buffer per file
/// opened, one at a time, a little heap): smaller, so that a `memory_high`
/// warning at 90 % of a 32 MiB limit still names the largest processes
/// (with 4 MiB it could not: `docker_memory_32m_memory_high_then_oom_kill_
/// of_a_grandchild`).
const CENSUS_HEADROOM: u64 = 1 << 20;
/// Right after an OOM kill, wait this long at most for the victim's memory
/// to be freed (normally a few milliseconds) before looking at `/proc`...
const ROOM_WAIT: Duration = Duration::from_millis(150);
/// ...reading the cgroup's already-open files this often.
const ROOM_POLL: Duration = Duration::from_millis(2);
/// After the serving thread could not start, or its socket was another
/// ward's, try again this often.
const STATUS_RETRY: Duration = Duration::from_secs(5);

/// Starts the thread that answers `ward status` (given by the init, which
/// knows the serving side; the watch only decides when).
pub type StatusStarter =
    Box<dyn FnMut(&Arc<Board>) -> std::io::Result<Option<ServerHandle>> + Send>;

/// The sampling interval while memory is near its limit.
const NEAR_LIMIT_INTERVAL: Duration = Duration::from_millis(500);

/// What the watch thread is told at start.
#[derive(Debug, Clone)]
pub struct WatchPlan {
    /// Sample this often; `None` with `--no-watch` (errands only).
    pub interval: Option<Duration>,
    /// Warning thresholds.
    pub thresholds: Thresholds,
    /// ward is PID 1 of its namespace.
    pub is_pid1: bool,
    /// `--orphans terminate`.
    pub terminate_orphans: bool,
    /// `--grace`, for the words of the shutdown lines.
    pub grace: Duration,
    /// `--emf`: CloudWatch EMF lines on stderr.
    pub emf: Option<EmfPlan>,
    /// The main command's name (argv[0]'s basename): the reaping thread is
    /// told the main process's name only once it differs (an `exec`).
    pub command: String,
}

/// What `--emf` asks of the watch thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfPlan {
    /// Time between lines (`--emf-interval`).
    pub interval: Duration,
    /// CloudWatch namespace (`--emf-namespace`).
    pub namespace: String,
    /// `ECS_CONTAINER_METADATA_URI_V4`, read at start (not in the thread:
    /// the environment is the main thread's to read).
    pub ecs_metadata: Option<String>,
}

/// The EMF line's state: when the next is due, the counters at the last
/// one, and the dimensions (from the ECS task metadata once a lookup
/// succeeds: tried after the first sample, then again with later lines).
struct EmfWriter {
    plan: EmfPlan,
    next: Instant,
    interval: EmfInterval,
    context: EmfContext,
    /// While the ECS identity is still to be read.
    lookup: Option<LookupSchedule>,
}

impl EmfWriter {
    fn new(plan: &EmfPlan, now: Instant) -> EmfWriter {
        let mut context = EmfContext::bare();
        context.namespace.clone_from(&plan.namespace);
        EmfWriter {
            plan: plan.clone(),
            next: now + plan.interval,
            interval: EmfInterval::default(),
            context,
            lookup: plan.ecs_metadata.as_ref().map(|_| LookupSchedule::new(now)),
        }
    }

    /// Asks the ECS task metadata endpoint who the container is, when a try
    /// is due (see [`LookupSchedule`]): up to two requests of
    /// [`ecs::FETCH_TIMEOUT`], which this thread waits for and the reaping
    /// thread never does. Says the first failure, and then once whether a
    /// later try succeeded or the tries ran out; a failure costs only the
    /// dimensions.
    fn look_up_identity_if_due(&mut self) {
        let (Some(url), Some(schedule)) = (&self.plan.ecs_metadata, &mut self.lookup) else {
            return;
        };
        if !schedule.due(Instant::now()) {
            return;
        }
        const DIMS: &str = "ClusterName, TaskDefinitionFamily or ContainerName";
        match ecs::fetch_identity(url, ecs::FETCH_TIMEOUT) {
            Ok(id) => {
                let tries = schedule.failures() + 1;
                self.context = EmfContext::from_ecs(&id);
                self.context.namespace.clone_from(&self.plan.namespace);
                self.lookup = None;
                if tries > 1 {
                    log::event(
                        Level::Info,
                        "ecs_metadata_read",
                        &format!(
                            "read the ECS task metadata at try {tries}: EMF lines now carry their dimensions"
                        ),
                        &[("tries", json!(tries))],
                    );
                }
            }
            Err(e) => {
                let first = schedule.failures() == 0;
                match schedule.failed(Instant::now()) {
                    AfterFailure::RetryAt(_) if first => log::event(
                        Level::Warning,
                        "ecs_metadata_retrying",
                        &format!(
                            "cannot read the ECS task metadata ({e}): EMF lines carry no {DIMS} until a later try succeeds ({} more, the next in {})",
                            ecs::RETRY_AFTER.len(),
                            secs(ecs::RETRY_AFTER[0])
                        ),
                        &[],
                    ),
                    AfterFailure::RetryAt(_) => {}
                    AfterFailure::GiveUp => {
                        let tries = schedule.failures();
                        self.lookup = None;
                        log::event(
                            Level::Warning,
                            "ecs_metadata_unavailable",
                            &format!(
                                "cannot read the ECS task metadata after {tries} tries ({e}): EMF lines carry no {DIMS}"
                            ),
                            &[("tries", json!(tries))],
                        );
                    }
                }
            }
        }
    }
}

/// Sampling state: present unless `--no-watch`.
struct Sampling {
    sampler: Sampler,
    snap: Snapshot,
    alerts: AlertState,
    thresholds: Thresholds,
    interval: Duration,
    next: Instant,
    active: bool,
    oom: Option<OomNotifier>,
    oom_count: Option<u64>,
    /// When the counter was last read, and when an OOM notification last
    /// came: a rise a read finds with no notification since the read
    /// before happened somewhere between the two reads.
    count_read_at: Option<Instant>,
    notified_at: Option<Instant>,
    peaks: ObservedPeaks,
    buf: String,
    errors_logged: bool,
    /// Processes alive at the last census: the OOM victim candidates.
    candidates: Vec<victims::Candidate>,
    /// When that census was taken: a candidate that ended by itself since
    /// is no victim of a later rise.
    candidates_at: Option<Instant>,
    /// The main child is gone (the final look was taken): a census names
    /// it no more, since its pid may be another process's by then.
    main_gone: bool,
    /// The zombies at the look that made the candidates.
    known_zombies: victims::KnownZombies,
    /// A look at `/proc` skipped for want of memory was said (once a run).
    no_room_said: bool,
    /// The OOM counter's next look after a notification that found no
    /// kill counted yet.
    oom_recheck: Option<OomRecheck>,
    /// cgroup v2 with the memory limit on an ancestor: (its directory, its
    /// OOM kill count, ward's own count) at the first look, so the final
    /// look can tell the kills beside ward's group.
    beside_base: Option<(std::path::PathBuf, u64, u64)>,
    /// ward's code locked (`Some(true)`), or the lock refused and said
    /// (`Some(false)`); `None` until a memory limit asks for it (once a run).
    code_locked: Option<bool>,
    /// [`WatchPlan::command`].
    command: String,
}

/// When to read the OOM counter again after a notification that came
/// before its kill was counted, and how many times it was read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OomRecheck {
    at: Instant,
    done: usize,
}

impl OomRecheck {
    /// The delays after the notification: the kill is normally counted
    /// within a millisecond or two; a slow one gets a few more looks.
    const AFTER: [Duration; 4] = [
        Duration::from_millis(2),
        Duration::from_millis(10),
        Duration::from_millis(50),
        Duration::from_millis(200),
    ];

    /// The next look after `done` rechecks; `None` once all were made.
    fn after(now: Instant, done: usize) -> Option<OomRecheck> {
        Self::AFTER
            .get(done)
            .map(|d| OomRecheck { at: now + *d, done })
    }
}

/// The watch thread's state. Built on the main thread before the child
/// starts (discovery and the baseline counters), then moved to its thread.
pub struct Observer {
    plan: WatchPlan,
    proc_root: PathBuf,
    self_pid: i32,
    sampling: Option<Sampling>,
    orphans: Option<OrphanTerminator>,
    emf: Option<EmfWriter>,
    board: Arc<Board>,
    /// The final look went to the reaper.
    final_sent: bool,
    /// `ward status`, to be started (`serve_status_later`).
    status: Option<StatusLater>,
    /// The main child, once it runs.
    main_pid: Option<i32>,
    /// `ns_last_pid`, opened as the child starts when ward is PID 1 and
    /// samples: the final look's test for ward alone with its dead child.
    last_pid: Option<crate::procs::LastPid>,
}

/// The serving thread for `ward status` the watch starts, and when.
struct StatusLater {
    start: StatusStarter,
    /// When to (try to) start it; `None` before the child runs and once
    /// done.
    due: Option<Instant>,
    /// Kept, never dropped: dropping stops the thread.
    handle: Option<ServerHandle>,
    /// Waiting for pids to spare was said (once).
    wait_said: bool,
    /// A failed start was said (once).
    failure_said: bool,
}

/// Puts the serving thread's start off by [`STATUS_RETRY`]; says why the
/// first time for each reason.
fn put_off(
    due: &mut Option<Instant>,
    said: &mut bool,
    now: Instant,
    level: Level,
    key: &'static str,
    why: String,
) {
    if !*said {
        *said = true;
        let msg = format!("{why}; trying again every {}", secs(STATUS_RETRY));
        log::event(level, key, &msg, &[]);
    }
    *due = Some(now + STATUS_RETRY);
}

impl Observer {
    /// Finds ward's cgroup, arms the OOM notification and reads the OOM and
    /// fork-refusal counters: the baselines that must precede the child so
    /// nothing it does is mistaken for history. Never fails: without a
    /// cgroup it still watches processes.
    pub fn prepare(plan: WatchPlan, board: Arc<Board>) -> Observer {
        Observer::prepare_under(plan, board, Roots::default())
    }

    /// [`Observer::prepare`] on other roots: a fixture tree in tests.
    fn prepare_under(plan: WatchPlan, board: Arc<Board>, roots: Roots) -> Observer {
        // SAFETY: getpid cannot fail.
        let self_pid = unsafe { libc::getpid() };
        let proc_root = PathBuf::from(&roots.proc);
        let sampling = plan.interval.map(|interval| {
            // Discovery's buffer, kept for the samples (see
            // `Cgroups::discover_unopened_in`).
            let mut buf = String::new();
            let cgroups = discover(&roots, &mut buf);
            // Before the child starts, only what an event in the child's
            // first milliseconds would need: the OOM notification (an OOM
            // kill then must wake the watch, or its victim is only "most
            // likely"), the two counters that turn into verdicts, OOM
            // kills and fork refusals, so neither is mistaken for history,
            // and the memory peak, which a child that fills its limit at
            // once passes before that look. The sample files, the limits
            // and the throttling baseline wait for the watch thread's first
            // look.
            let oom = match cgroups.as_ref().map(Cgroups::oom_notifier) {
                Some(Ok(n)) => Some(n),
                Some(Err(e)) => {
                    log::event(
                        Level::Debug,
                        "oom_watch_unavailable",
                        &format!(
                            "no OOM notification ({e}): OOM kills are noticed at each sample instead"
                        ),
                        &[],
                    );
                    None
                }
                None => None,
            };
            let mut snap = Snapshot::default();
            // Read after the notification was armed: a kill from now on
            // both wakes the watch and raises the count.
            let (oom_count, fork_refusals, peak) = match &cgroups {
                Some(cg) => {
                    snap.layout = Some(cg.layout);
                    let count = oom
                        .as_ref()
                        .and_then(|n| n.kill_count(&mut buf))
                        .or_else(|| cg.oom_kill_count(&mut buf));
                    (
                        count,
                        cg.fork_refusals(&mut buf),
                        cg.memory_peak(&mut buf),
                    )
                }
                None => (None, None, None),
            };
            let sampler = Sampler::new(cgroups, proc_root.clone(), self_pid, plan.is_pid1);
            let mut s = Sampling {
                sampler,
                snap,
                alerts: AlertState::default(),
                thresholds: plan.thresholds.clone(),
                interval,
                next: Instant::now() + interval,
                active: true,
                oom,
                oom_count,
                count_read_at: oom_count.map(|_| Instant::now()),
                notified_at: None,
                // A reused cgroup keeps the peak of an earlier run: from
                // here on a higher one is this run's. Read before the child
                // starts, not at the first look: a child that fills its
                // limit in its first milliseconds peaks before that look
                // (seen under load: "peaked at 1016.0 KiB" after an OOM
                // kill at 32 MiB).
                peaks: ObservedPeaks {
                    memory_peak_base: peak,
                    ..ObservedPeaks::default()
                },
                buf,
                errors_logged: false,
                candidates: Vec::new(),
                candidates_at: None,
                main_gone: false,
                known_zombies: victims::KnownZombies::default(),
                no_room_said: false,
                code_locked: None,
                oom_recheck: None,
                beside_base: None,
                command: plan.command.clone(),
            };
            s.alerts.baseline(fork_refusals);
            s.peaks.fork_failures_base = fork_refusals;
            s
        });
        let emf = match (&plan.emf, &sampling) {
            (Some(p), Some(_)) => Some(EmfWriter::new(p, Instant::now())),
            (Some(_), None) => {
                log::event(
                    Level::Warning,
                    "emf_unavailable",
                    "--emf needs watching, which --no-watch turned off: no EMF lines",
                    &[],
                );
                None
            }
            (None, _) => None,
        };
        let observer = Observer {
            plan,
            proc_root,
            self_pid,
            sampling,
            orphans: None,
            emf,
            board,
            final_sent: false,
            status: None,
            main_pid: None,
            last_pid: None,
        };
        observer.post();
        observer
    }

    /// The memory the cgroup lets ward's processes use, in bytes (`None`: no
    /// cgroup limit, unreadable, or not watching), for a caller that cannot
    /// wait for the watch thread's first look (which reads all the limits and
    /// where each comes from, after exec).
    pub fn memory_bound(&mut self) -> Option<u64> {
        let s = self.sampling.as_mut()?;
        s.sampler.cgroups()?.memory_bound_with(&mut s.buf)
    }

    /// Serve `ward status` a moment after the main child starts
    /// ([`STATUS_AFTER`]), on a thread `start` starts.
    pub fn serve_status_later(&mut self, start: StatusStarter) {
        self.status = Some(StatusLater {
            start,
            due: None,
            handle: None,
            wait_said: false,
            failure_said: false,
        });
    }

    /// Starts `ward status` when due; a thread that could not start is
    /// tried again later.
    fn start_status_if_due(&mut self, now: Instant) {
        let due = self.status.as_ref().and_then(|st| st.due);
        if due.is_none_or(|d| d > now) {
            return;
        }
        let tight = self.sampling.as_mut().is_some_and(|s| {
            // Fresh numbers, read from the files the first look opened (no
            // new kernel buffers): a thread charged to a memory cgroup at
            // its limit sets off the OOM killer, which then takes one of
            // the application's processes.
            s.sampler.take_cgroup_only(now, &mut s.snap);
            pids_tight(s.snap.limits.pids.as_ref(), s.snap.cgroup.pids.current)
                || memory_tight(
                    s.snap.limits.memory.as_ref(),
                    unreclaimable(&s.snap.cgroup.memory),
                    MEMORY_HEADROOM,
                )
        });
        let Some(st) = self.status.as_mut() else {
            return;
        };
        if tight {
            let why = format!(
                "ward status waits: fewer than {STATUS_HEADROOM} tasks or {} of memory left under the container's limits",
                bytes(MEMORY_HEADROOM)
            );
            put_off(
                &mut st.due,
                &mut st.wait_said,
                now,
                Level::Debug,
                "status_waits",
                why,
            );
            return;
        }
        match (st.start)(&self.board) {
            Ok(Some(handle)) => {
                st.handle = Some(handle);
                st.due = None;
            }
            // The socket is taken: by another ward of this PID namespace
            // (wards side by side, none PID 1: a pod that shares its PID
            // namespace). That one answers; once it is gone, this one
            // takes over at its next try. Was never tried again, and the
            // namespace had no `ward status` from then on.
            Ok(None) if !self.plan.is_pid1 => st.due = Some(now + STATUS_RETRY),
            Ok(None) => st.due = None,
            Err(e) => {
                let why = format!("cannot start the serving thread for ward status ({e})");
                put_off(
                    &mut st.due,
                    &mut st.failure_said,
                    now,
                    Level::Warning,
                    "serve_unavailable",
                    why,
                );
            }
        }
    }

    /// The cgroup's OOM kill counter at start (`None`: unreadable or not watching).
    pub fn oom_count_base(&self) -> Option<u64> {
        self.sampling.as_ref().and_then(|s| s.oom_count)
    }

    /// The watch thread's first look, as the child starts: the limits and
    /// the sample files, the line saying what the container may use, and
    /// the first sample (the cgroup's counters, no census) on the board.
    /// The OOM notification, the OOM and fork-refusal counts and the
    /// memory peak were read before the child started.
    ///
    /// At once, not a while into the child's run: the reaper wakes this
    /// thread as it goes to sleep itself (see [`link::Wake`]), so the look
    /// runs on the reaper's CPU while the child starts on the other. It
    /// also brings the sampling code's pages in then, not at the child's
    /// end: `ward -- true` interleaved against the look 20 ms into the run
    /// (a job over sooner sampled once, by the final look), both woken
    /// through the pipe: −0.06 and −0.07 ms; level with a first look
    /// skipped for a child already over.
    fn first_look(&mut self) {
        let Some(s) = self.sampling.as_mut() else {
            return;
        };
        let now = Instant::now();
        s.sampler.prepare_first(now, &mut s.snap);
        s.note_limit_above();
        s.announce();
        s.sampler.take_cgroup_only(now, &mut s.snap);
        s.alerts
            .baseline_memory_high(s.snap.cgroup.memory.events.high);
        s.record();
        s.keep_code_resident();
        self.post();
        self.emf_baseline();
    }

    /// Counters of the first EMF line count from the first look (posted).
    fn emf_baseline(&mut self) {
        let baseline = self.board.metrics_view();
        if let Some(e) = &mut self.emf {
            e.interval = EmfInterval::starting_at(&baseline, Instant::now());
        }
    }

    /// Starts the thread, before the main child: a child that forks up to
    /// its pids limit at once must not keep ward from starting its threads
    /// (measured: EAGAIN for both threads under a fork storm). The thread says
    /// nothing until [`Request::MainStarted`] arrives (but its unannounced
    /// [`Observation::Started`]). ward forks only the
    /// main child after this, through its async-signal-safe path.
    ///
    /// The thread blocks every signal first; as ward's first thread, its
    /// start returns once it has ([`crate::sigmask::spawn_blocked`]), so the
    /// child starts after that.
    pub fn spawn(self, end: WatchEnd) -> std::io::Result<std::thread::JoinHandle<()>> {
        let builder = std::thread::Builder::new()
            .name("ward-watch".into())
            // The census and the samplers keep their buffers on the heap; a
            // small stack keeps the thread's cost in RSS and in pids.max low.
            .stack_size(256 * 1024);
        let (handle, blocked) = crate::sigmask::spawn_blocked(builder, move || self.run(end))?;
        if !blocked {
            log::thread_start_slow("watch");
        }
        Ok(handle)
    }

    /// Waits for the main child's pid and exit fd (errands may come first);
    /// `None` when ward quits without one (exec failed).
    fn wait_for_main(&mut self, end: &WatchEnd) -> Option<(i32, Option<link::ExitFd>)> {
        loop {
            let mut fds = [pollfd(end.wake.raw())];
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
            end.wake.clear();
            while let Some(request) = end.try_recv() {
                match request {
                    Request::MainStarted { pid, exit_fd } => return Some((pid, exit_fd)),
                    Request::Quit => return None,
                    other => self.on_request(other, end),
                }
            }
        }
    }

    /// The thread's loop: wait for a request, an OOM notification or the next
    /// sample, whichever comes first.
    fn run(mut self, end: WatchEnd) {
        // Every signal is blocked already (`spawn`), so all of them stay
        // pending for the reaping thread's signalfd.
        crate::trim::end_thread_malloc_cache();
        // Now, while the reaper starts the child: the channel's first block.
        end.say_started();
        if let Err(e) = crate::sched::request_background() {
            log::event(
                Level::Debug,
                "batch_refused",
                &format!("the watch thread keeps the normal scheduler policy: {e}"),
                &[],
            );
        }
        let Some((main_pid, mut main_exit)) = self.wait_for_main(&end) else {
            return;
        };
        self.main_pid = Some(main_pid);
        if let Some(st) = &mut self.status {
            st.due = Some(Instant::now() + STATUS_AFTER);
        }
        if self.plan.terminate_orphans {
            self.orphans = Some(OrphanTerminator::new(self.self_pid, main_pid));
        }
        if self.plan.is_pid1 && self.sampling.is_some() {
            self.last_pid = Some(crate::procs::LastPid::open(&self.proc_root));
        }
        self.first_look();
        // After the first sample, not before it: the lookup may take two
        // ecs::FETCH_TIMEOUTs.
        if let Some(e) = &mut self.emf {
            e.look_up_identity_if_due();
        }
        // Requests queued behind MainStarted (a child that exits at once
        // sends MainExited right after it) had their wake-up consumed with
        // it: answer them now, or the report waits out its FINAL_WAIT.
        while let Some(request) = end.try_recv() {
            if request == Request::Quit {
                return;
            }
            self.on_request(request, &end);
        }
        loop {
            let now = Instant::now();
            let sampling = self.sampling.as_ref();
            let deadline = [
                sampling
                    .filter(|s| s.active)
                    .map(|s| self.emf.as_ref().map_or(s.next, |e| s.next.min(e.next))),
                self.orphans
                    .as_ref()
                    .filter(|o| o.active)
                    .map(|o| o.next_scan),
                self.status.as_ref().and_then(|st| st.due),
                sampling.and_then(|s| s.oom_recheck).map(|r| r.at),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = deadline.map_or(-1, |d| {
                let ms = d
                    .saturating_duration_since(now)
                    .as_nanos()
                    .div_ceil(1_000_000);
                ms.min(i32::MAX as u128) as i32
            });
            let mut fds = [
                pollfd(end.wake.raw()),
                pollfd(
                    self.sampling
                        .as_ref()
                        .and_then(|s| s.oom.as_ref())
                        .map_or(-1, |n| n.as_fd().as_raw_fd()),
                ),
                pollfd(main_exit.as_ref().map_or(-1, link::ExitFd::raw)),
                // Lines waiting for stderr (this thread's, say a warning
                // that met a full pipe): the reaping thread polls for them
                // only once something wakes it, which in a quiet container
                // can be never.
                libc::pollfd {
                    fd: log::pending_fd().unwrap_or(-1),
                    events: libc::POLLOUT,
                    revents: 0,
                },
            ];
            // SAFETY: a valid array of four pollfds (a negative fd is ignored).
            unsafe { libc::poll(fds.as_mut_ptr(), 4, timeout) };
            if fds[3].revents != 0 {
                log::flush_ready();
            }
            if fds[1].revents != 0 {
                self.on_oom_ready(&end);
            } else {
                self.oom_recheck_when_due(Instant::now(), &end);
            }
            if fds[2].revents != 0 {
                // The main child exited: the final look now, while the
                // reaper reaps, not after its MainExited arrives.
                main_exit = None;
                self.final_look(&end);
            }
            end.wake.clear();
            while let Some(request) = end.try_recv() {
                if request == Request::Quit {
                    return;
                }
                self.on_request(request, &end);
            }
            let now = Instant::now();
            self.start_status_if_due(now);
            if let Some(o) = self
                .orphans
                .as_mut()
                .filter(|o| o.active && o.next_scan <= now)
            {
                o.scan(&self.proc_root, now);
            }
            let mut sampled = false;
            if let Some(s) = self.sampling.as_mut().filter(|s| s.active && s.next <= now) {
                s.tick(now, &end, &self.board, true);
                s.keep_code_resident();
                s.next = Instant::now() + s.next_interval();
                self.post();
                sampled = true;
            }
            if self.emf.as_ref().is_some_and(|e| e.next <= Instant::now())
                && self.sampling.as_ref().is_some_and(|s| s.active)
            {
                self.write_emf(true);
            }
            if sampled {
                // A sample maps most of ward's code back in (the kernel maps
                // 64 KiB around each fault); between samples ward runs
                // almost none of it. Dropping it again costs the next sample
                // a few dozen minor faults and keeps ward's RSS, which the
                // OOM killer ranks by, at what the idle loop uses.
                // First the heap, whose code then goes with the rest.
                let _ = crate::trim::keep_heap_resident(log::queue_spare());
                let _ = crate::trim::trim_read_only_segments();
            }
        }
    }

    /// The main child is gone: stop the orphan policy, take one last look
    /// for the report and send it. Once: the child's exit fd and the
    /// reaper's [`Request::MainExited`] both ask for it, whichever first.
    fn final_look(&mut self, end: &WatchEnd) {
        if self.final_sent {
            return;
        }
        self.final_sent = true;
        if let Some(o) = &mut self.orphans {
            o.active = false;
        }
        // ward alone with its dead main child: a census would find nothing
        // the report uses (no other process, so no zombie of another
        // parent) and costs the report ~0.1 ms.
        let alone = alone_with_main(
            self.plan.is_pid1,
            self.main_pid,
            self.status.as_ref().is_some_and(|st| st.handle.is_some()),
            self.last_pid.as_ref().and_then(crate::procs::LastPid::read),
        );
        // A job over within STATUS_AFTER never gets the serving thread.
        if let Some(st) = &mut self.status {
            st.due = None;
        }
        let (snapshot, peaks, sampling_on) = match &mut self.sampling {
            Some(s) => {
                // Fresh OOM count and memory numbers before the report
                // decides anything. Limits a few seconds old are read
                // again (a short job's are fresh).
                let now = Instant::now();
                s.sampler.limits_if_older(now, Duration::from_secs(2));
                s.tick(now, end, &self.board, !alone);
                s.count_kills_beside();
                s.main_gone = true;
                // Alone, nothing is left to watch. Otherwise what is left
                // runs on through `--grace`: the samples go on, so the
                // metrics, `ward status` and EMF stay live and a kill then
                // is seen; the last OOM check ends them (`Request::CheckOom`).
                s.active = !alone;
                (Some(Box::new(s.snap.clone())), s.peaks.clone(), s.active)
            }
            None => (None, ObservedPeaks::default(), false),
        };
        self.post();
        // The last (shorter) interval too: an OOM kill that ended the
        // container belongs on the dashboard.
        self.write_emf(false);
        end.tell(Observation::Final {
            snapshot,
            peaks,
            sampling_on,
        });
    }

    /// Writes one EMF line from fresh cgroup numbers (`fresh`: a quick
    /// cgroup-only sample first, as the last tick may be a whole watch
    /// interval old) and schedules the next.
    fn write_emf(&mut self, fresh: bool) {
        let Some(e) = &mut self.emf else { return };
        // A periodic line first retries a failed ECS lookup when due (before
        // the sample, which it may delay); the closing line never waits
        // for it, nor does the report behind it.
        if fresh {
            e.look_up_identity_if_due();
        }
        // A closing line soon after the last one (or the start) carries only
        // what it counts (see `keep_when_short`).
        let last = e.next.checked_sub(e.plan.interval);
        let short = !fresh && last.is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if fresh && let Some(s) = &mut self.sampling {
            s.sampler.take_cgroup_only(Instant::now(), &mut s.snap);
            s.record();
        }
        e.next = Instant::now() + e.plan.interval;
        self.post();
        let Some(e) = &mut self.emf else { return };
        let view = self.board.metrics_view();
        // The interval on the monotonic clock; the wall clock only stamps
        // the line (an NTP step must not drop or skew CpuUtilization).
        let mut values = e.interval.step(&view, Instant::now());
        if short && !values.keep_when_short() {
            return;
        }
        log::raw_line(&render_emf(&values, &e.context, epoch_ms()));
    }

    fn on_oom_ready(&mut self, end: &WatchEnd) {
        if let Some(s) = &mut self.sampling {
            if let Some(n) = &s.oom {
                n.drain();
            }
            s.notified_at = Some(Instant::now());
            let rose = s.check_oom(end, &self.board);
            // cgroup v1 signals the OOM as it begins, before the kill is
            // counted: without a look again soon, the kill waits for the
            // next sample (measured: 470 ms, by when the shell had reaped
            // the victim, which then went unnamed).
            s.oom_recheck = if rose {
                None
            } else {
                OomRecheck::after(Instant::now(), 0)
            };
        }
        self.post();
    }

    /// The counter again, while an OOM notification that found no kill
    /// counted yet has rechecks left.
    fn oom_recheck_when_due(&mut self, now: Instant, end: &WatchEnd) {
        let Some(s) = self.sampling.as_mut().filter(|s| s.active) else {
            return;
        };
        let Some(r) = s.oom_recheck.filter(|r| r.at <= now) else {
            return;
        };
        let rose = s.check_oom(end, &self.board);
        s.oom_recheck = if rose {
            None
        } else {
            OomRecheck::after(now, r.done + 1)
        };
        self.post();
    }

    /// Posts the latest numbers on the board for the metrics endpoint and
    /// `ward status`.
    fn post(&self) {
        let Some(s) = &self.sampling else { return };
        // Into the last post's room: a copy made and freed every sample
        // made malloc map a page and give it back on a 15 s cycle.
        self.board.with_posted(|p| {
            match &mut p.snapshot {
                Some(posted) => posted.clone_from(&s.snap),
                none => *none = Some(s.snap.clone()),
            }
            p.sampled_at = Some(Instant::now());
            p.peaks.clone_from(&s.peaks);
            p.active = s.alerts.active();
            p.code_locked = s.code_locked;
        });
    }

    fn on_request(&mut self, request: Request, end: &WatchEnd) {
        match request {
            Request::NameSender { pid } => end.tell(Observation::SenderName {
                pid,
                name: errands::sender_name(&self.proc_root, pid),
            }),
            Request::MainExited => self.final_look(end),
            Request::SignalRest { signal, cut_short } => {
                let rest =
                    errands::signal_rest(self.plan.is_pid1, self.self_pid, signal, &self.proc_root);
                let grace = (!cut_short).then_some(self.plan.grace);
                if errands::log_rest_signalled(signal, &rest, grace) {
                    end.tell(Observation::Warning {
                        key: "shutdown_kill",
                    });
                }
                end.tell(Observation::RestSignalled {
                    signal,
                    count: rest.count,
                });
            }
            Request::OomNamed { count, victim } => {
                self.board.with_posted(|p| p.name_victim(count, victim));
            }
            Request::CheckOom { last } => {
                if let Some(s) = &mut self.sampling
                    && s.check_oom(end, &self.board)
                {
                    s.oom_recheck = None;
                }
                self.post();
                // The last check (nothing is left): the samples that went on
                // through `--grace` end here, with the EMF line of their
                // interval, and the report takes the numbers and peaks as
                // they are now. (A SIGKILL's check during `--grace` was
                // taken for it, and the samples stopped with a process left.)
                if last && self.sampling.as_ref().is_some_and(|s| s.active) {
                    self.write_emf(false);
                    if let Some(s) = &mut self.sampling {
                        s.active = false;
                    }
                }
                let (snapshot, peaks) = match &self.sampling {
                    Some(s) if last && self.final_sent => (
                        Some(Box::new(s.snap.clone())),
                        Some(Box::new(s.peaks.clone())),
                    ),
                    _ => (None, None),
                };
                end.tell(Observation::OomChecked {
                    last,
                    snapshot,
                    peaks,
                });
            }
            Request::MainStarted { .. } | Request::Quit => {}
        }
    }
}

impl Sampling {
    /// cgroup v2, the memory limit in force on an ancestor: its OOM kill
    /// count now, the baseline of the kills beside ward's group.
    fn note_limit_above(&mut self) {
        let Some(crate::cgroup::LimitSource::Ancestor { path: Some(dir) }) =
            self.snap.limits.memory.as_ref().map(|m| &m.source)
        else {
            return;
        };
        let Some(cg) = self.sampler.cgroups() else {
            return;
        };
        // ward's own count read fresh with it: a kill in its group since
        // the count before the child must not hide one beside it.
        let own = cg.oom_kill_count(&mut self.buf).unwrap_or(0);
        if let Some(n) = cg.oom_kill_count_at(dir, &mut self.buf) {
            self.beside_base = Some((dir.clone(), n, own));
        }
    }

    /// At the final look: the kills the ancestor counted beyond ward's own
    /// group's since the first look. They are not this container's (a
    /// sibling's, or the main process's after it moved itself out); the
    /// verdict only stops ruling an OOM kill out for them.
    fn count_kills_beside(&mut self) {
        let Some((dir, base, own_base)) = &self.beside_base else {
            return;
        };
        let Some(cg) = self.sampler.cgroups() else {
            return;
        };
        // The ancestor's first, ward's own after: a kill between the two
        // reads is then missed, never made up.
        let Some(now) = cg.oom_kill_count_at(dir, &mut self.buf) else {
            return;
        };
        let Some(own_now) = cg.oom_kill_count(&mut self.buf) else {
            return;
        };
        let own = own_now.saturating_sub(*own_base);
        let beside = now.saturating_sub(*base).saturating_sub(own);
        if beside > 0 {
            self.peaks.oom_kills_beside = Some((dir.display().to_string(), beside));
        }
    }

    /// One interval has passed: sample, warn, record. `census`: false
    /// when it could find nothing (the final look with ward alone).
    fn tick(&mut self, now: Instant, end: &WatchEnd, board: &Board, census: bool) {
        self.sampler.take_cgroup_only(now, &mut self.snap);
        // A census allocates (kernel buffers for each /proc file, ward's
        // heap when its lists grow), charged to the container: not in a group full of memory
        // the kernel cannot reclaim. It resumes when there is room.
        let census = census && self.room_to_look("the periodic census");
        if census {
            self.sampler.census_if_due(now, &mut self.snap);
        } else {
            // Skipped: the last census ages, and what names processes from
            // it (the `memory_high` line's largest) must say how old it is.
            self.sampler.census_age(now, &mut self.snap);
        }
        if census
            && self.snap.census_age_s > 0.0
            && self.alerts.near_trouble(&self.snap, &self.thresholds)
        {
            // About to warn: the warning names processes, so they must be
            // today's, not the last census's.
            self.sampler.census(now, &mut self.snap);
        }
        let high = self
            .snap
            .ratios
            .memory_ratio
            .is_some_and(|r| r * 100.0 >= self.thresholds.memory_pct * CANDIDATES_FROM);
        if census && high && self.snap.census_age_s > 0.0 {
            // Memory is high: keep the OOM candidates fresh every interval,
            // so the victim of a kill is among them.
            self.sampler.census(now, &mut self.snap);
        }
        let fresh = self.snap.census_age_s == 0.0;
        // The sample just read the counter's file: no second open of it.
        let sampled = Some(self.snap.cgroup.memory.events.oom_kill)
            .filter(|_| self.snap.cgroup.errors == 0)
            .flatten();
        let _ = self.check_oom_counted(end, board, sampled);
        if fresh {
            self.refresh_candidates(high);
        }
        if fresh && !self.main_gone {
            let main = board
                .reaper
                .main_pid
                .load(std::sync::atomic::Ordering::Relaxed);
            if let Some(name) = self.note_main_name(main)
                && crate::procs::renamed(&name, &self.command)
            {
                // The reaping thread's lines name it from now on too. Not
                // for the name it was started with: that would wake the
                // reaping thread as the child starts, for nothing.
                end.tell(Observation::MainName { name });
            }
        }
        for w in self.alerts.evaluate(&self.snap, &self.thresholds) {
            log::event(w.level, w.key, &w.msg, &w.fields);
            if w.level == Level::Warning {
                end.tell(Observation::Warning { key: w.key });
                let at_s = board.since_start(now);
                board.with_posted(|p| {
                    p.push_warning(WarningPosted {
                        key: w.key,
                        at_s,
                        msg: w.msg,
                    })
                });
            }
        }
        self.record();
        if self.snap.read_errors > 0 && !self.errors_logged {
            self.errors_logged = true;
            log::event(
                Level::Warning,
                "watch_read_error",
                "some cgroup or /proc files could not be read; the affected numbers are left out (logged once)",
                &[("errors", json!(self.snap.read_errors))],
            );
        }
    }

    /// Under a cgroup memory limit, locks ward's code, once (see
    /// [`crate::trim`]); a refusal is said once and not tried again. The
    /// limit may come later (`docker update`): every sample asks.
    fn keep_code_resident(&mut self) {
        if self.code_locked.is_some() || !resident::wanted(self.snap.limits.memory.as_ref()) {
            return;
        }
        self.code_locked = Some(match crate::trim::lock_code() {
            Ok(0) => true,
            Ok(n) => {
                resident::log_locked(n);
                true
            }
            Err(r) => {
                resident::log_refused(&r);
                false
            }
        });
    }

    /// The time to the next sample: the interval, or at most 500 ms while
    /// memory is near the limit (from 95 % of `--warn-memory`), so a doomed
    /// container's last numbers are fresh where no OOM notification exists
    /// (Docker's read-only v1 cgroupfs).
    fn next_interval(&self) -> Duration {
        let near = self
            .snap
            .ratios
            .memory_ratio
            .is_some_and(|r| r * 100.0 >= self.thresholds.memory_pct * 0.95);
        if near {
            self.interval.min(NEAR_LIMIT_INTERVAL)
        } else {
            self.interval
        }
    }

    /// Reads the OOM kill counter; tells the reaper about a rise, with a
    /// guess at the victim and the numbers for the log line. True when it
    /// rose.
    fn check_oom(&mut self, end: &WatchEnd, board: &Board) -> bool {
        // From the sample's already-open files: opening the counter's file
        // anew costs a kernel buffer, charged to a group that may be full.
        self.sampler
            .take_cgroup_only(Instant::now(), &mut self.snap);
        let sampled = Some(self.snap.cgroup.memory.events.oom_kill)
            .filter(|_| self.snap.cgroup.errors == 0)
            .flatten();
        self.check_oom_counted(end, board, sampled)
    }

    /// [`Sampling::check_oom`] with the counter's value when a sample has
    /// just read it (`None`: read it now).
    fn check_oom_counted(&mut self, end: &WatchEnd, board: &Board, sampled: Option<u64>) -> bool {
        let Some(cg) = self.sampler.cgroups() else {
            return false;
        };
        let count = sampled.or_else(|| cg.oom_kill_count(&mut self.buf));
        self.peaks.oom_counted_last = count.is_some();
        let Some(count) = count else {
            return false;
        };
        let at = Instant::now();
        let read_before = self.count_read_at.replace(at);
        let before = self.oom_count.replace(count);
        if before.is_none_or(|b| count <= b) {
            return false;
        }
        // Memory falls with the kill: `memory_ok` waits for the sample
        // after the next, whichever way the rise was noticed.
        self.alerts.oom_kill_found(self.snap.uptime_s);
        let notified = self
            .notified_at
            .is_some_and(|n| read_before.is_none_or(|r| n >= r));
        let kills = before.map_or(1, |b| count - b);
        // No room at the bound: the victim goes unnamed rather than the
        // look set off a second kill (`room_to_look` says so, once).
        let looked = self.wait_for_room(at) || self.room_to_look("the look for the OOM victim");
        let mut findings = if looked {
            self.rise_findings(kills)
        } else {
            // The last census's processes are not today's: a later rise
            // must not find this one's victim gone and name it.
            self.candidates.clear();
            victims::RiseFindings::default()
        };
        findings.since = read_before.filter(|_| !notified);
        // Fresh memory numbers (the peak) and, with room for the reads'
        // buffers, limits for the line; the census above says what is
        // largest now.
        if looked {
            self.sampler.limits_if_older(at, Duration::ZERO);
        }
        self.sampler.take_cgroup_only(at, &mut self.snap);
        let largest = if looked {
            alerts::largest(&self.snap).to_vec()
        } else {
            Vec::new()
        };
        let limit = self.snap.limits.memory.as_ref();
        let peak = self
            .snap
            .cgroup
            .memory
            .peak
            .and_then(|p| limit.map_or(Some(p), |l| crate::cgroup::limits::peak_within(p, l.bytes)))
            .or(self.peaks.memory_peak_seen);
        let context = OomContext {
            limit_bytes: limit.map(|l| l.bytes),
            limit_source: limit.map(|l| l.source.clone()),
            peak_bytes: peak,
            largest,
            usage_bytes: self.snap.cgroup.memory.usage,
            anon_bytes: self.snap.cgroup.memory.anon,
            file_bytes: self.snap.cgroup.memory.file,
            shmem_bytes: self.snap.cgroup.memory.shmem,
            not_looked: !looked,
        };
        let guess = victims::choose(findings.gone.clone(), kills)
            .into_iter()
            .next();
        board.with_posted(|p| {
            p.push_oom_kill(
                OomKillPosted {
                    count,
                    at_s: board.since_start(at),
                    victim: guess.clone(),
                    context: context.clone(),
                },
                kills,
            )
        });
        end.tell(Observation::OomKill {
            count,
            at,
            findings,
            context,
        });
        true
    }

    /// Right after an OOM kill: waits (at most [`ROOM_WAIT`], polling the
    /// already-open cgroup files) until the victim's memory is freed and
    /// there is room for a look at `/proc`. False when the group stays full
    /// (tmpfs, or a victim slow to exit); nothing is said here.
    fn wait_for_room(&mut self, started: Instant) -> bool {
        // Both callers have just sampled (the counter came from it): look
        // at that sample first, read again only while waiting.
        while !self.room() {
            if started.elapsed() >= ROOM_WAIT {
                return false;
            }
            std::thread::sleep(ROOM_POLL);
            self.sampler
                .take_cgroup_only(Instant::now(), &mut self.snap);
        }
        true
    }

    /// True when the latest sample leaves room for a look at `/proc`;
    /// otherwise says once a run that `what` was skipped, with the numbers.
    fn room_to_look(&mut self, what: &str) -> bool {
        if self.room() {
            return true;
        }
        if !self.no_room_said {
            self.no_room_said = true;
            let m = &self.snap.cgroup.memory;
            let limit = self.snap.limits.memory.as_ref().map(|l| l.bytes);
            log_no_room(what, limit, unreclaimable(m), m);
        }
        false
    }

    /// The latest sample leaves room under the memory limit for what a
    /// look at `/proc` takes (see [`memory_tight`]).
    fn room(&self) -> bool {
        let m = &self.snap.cgroup.memory;
        !memory_tight(
            self.snap.limits.memory.as_ref(),
            unreclaimable(m),
            CENSUS_HEADROOM,
        )
    }

    /// Which candidates are gone after a rise of `kills`, and who survived.
    /// The victim may still be exiting: look again for a short while
    /// (this thread only; the reaper never waits for it) until as many are
    /// gone as were killed. A process alive at the last look is never named.
    fn rise_findings(&mut self, kills: u64) -> victims::RiseFindings {
        let started = Instant::now();
        let mut findings;
        let mut first: Option<(Vec<i32>, Vec<i32>)> = None;
        loop {
            self.sampler.census(Instant::now(), &mut self.snap);
            let table = self.sampler.table();
            findings = victims::compare(&self.candidates, |c| victims::alive_in(table, c));
            if first.is_none() {
                // Survivors from the first look after the rise: the kernel
                // queues the victim's SIGKILL before it counts the kill, so
                // a process alive then, with no SIGKILL pending and not
                // exiting, was not this rise's victim. The others are dying.
                first = Some(self.first_look_survivors());
            }
            // A dying process (maybe started since the last look, so no
            // candidate) may be the victim: wait for it too, though others
            // are gone (one may have exited on its own).
            let dying = first.as_ref().is_some_and(|(_, dying)| {
                let table = self.sampler.table();
                dying
                    .iter()
                    .any(|&pid| table.get(pid).is_some_and(|e| !e.is_zombie()))
            });
            if (findings.gone.len() as u64 >= kills && !dying) || started.elapsed() >= RISE_LOOK_FOR
            {
                break;
            }
            std::thread::sleep(RISE_LOOK_EVERY);
        }
        findings.survivors = first.map(|(survivors, _)| survivors).unwrap_or_default();
        findings.candidates_at = self.candidates_at;
        let enough = findings.gone.len() as u64 >= kills;
        for z in sigkilled_zombies(
            self.sampler.proc_root(),
            self.sampler.table(),
            &self.known_zombies,
            !enough,
        ) {
            // Dead of SIGKILL since the last look: the likeliest victim,
            // before any process merely gone (it may have exited on its own).
            victims::put_first(&mut findings, z);
        }
        // The next rise compares with the processes alive now.
        self.refresh_candidates(false);
        findings
    }

    /// Live processes of the last census that are neither exiting nor
    /// holding a pending SIGKILL, and those that are (two small reads each,
    /// bounded).
    fn first_look_survivors(&self) -> (Vec<i32>, Vec<i32>) {
        let me = self.sampler.self_pid();
        let root = self.sampler.proc_root();
        let mut survivors = Vec::new();
        let mut dying = Vec::new();
        for e in self
            .sampler
            .table()
            .selected()
            .filter(|e| !e.is_zombie() && e.pid != me)
            .take(SURVIVOR_CHECKS)
        {
            let dir = root.join(e.pid.to_string());
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            // Unreadable (gone meanwhile) is no survivor either.
            if stat.is_empty() || status.is_empty() {
                continue;
            }
            if victims::stat_exiting(&stat) || victims::status_sigkill_pending(&status) {
                dying.push(e.pid);
            } else {
                survivors.push(e.pid);
            }
        }
        (survivors, dying)
    }

    /// Candidates from the last census; with `scores`, the largest few get
    /// their `oom_score` read (a few small reads, only when memory is high).
    fn refresh_candidates(&mut self, scores: bool) {
        let c = &mut self.candidates;
        victims::fill_candidates(c, self.sampler.table(), self.sampler.self_pid());
        if scores {
            let root = self.sampler.proc_root();
            for cand in c.iter_mut().take(SCORED_CANDIDATES) {
                cand.oom_score = victims::read_oom_score(root, cand.pid);
            }
        }
        self.candidates_at = Some(Instant::now());
        self.known_zombies.refill(self.sampler.table());
    }

    /// What the main process is called now, by the census just taken: a
    /// script that `exec`s its app is that app from then on, and the report
    /// names it so (the kernel's OOM line does too).
    /// Returns the new name when it changed.
    fn note_main_name(&mut self, main: i32) -> Option<String> {
        let table = self.sampler.table();
        let entry = table.get(main).filter(|e| !e.is_zombie())?;
        let name = table.name(entry);
        // Between its clone and its exec the child is still called what
        // ward is: no name of its own yet.
        let own = table.get(self.sampler.self_pid()).map(|e| table.name(e));
        if self.peaks.main_name.as_deref() == Some(name) || own == Some(name) {
            return None;
        }
        self.peaks.main_name = Some(name.to_string());
        self.peaks.main_name.clone()
    }

    /// Keeps the peaks the exit report needs.
    fn record(&mut self) {
        let t = &mut self.peaks;
        let s = &self.snap;
        if let Some(ws) = s.cgroup.memory.working_set.or(s.cgroup.memory.usage) {
            t.memory_peak_seen = Some(t.memory_peak_seen.unwrap_or(0).max(ws));
        }
        if let Some(cur) = s.cgroup.pids.current {
            t.pids_peak = Some(t.pids_peak.unwrap_or(0).max(cur));
        }
        if t.fork_failures_base.is_none() {
            t.fork_failures_base = s.cgroup.pids.events_max;
        }
        if let Some(c) = &s.procs
            && c.unreaped_kept > t.unreaped_peak
        {
            t.unreaped_peak = c.unreaped_kept;
            t.worst_parent = c.worst_kept.map(|w| (w.pid, w.name, w.zombies));
        }
        let cpu = s.cgroup.cpu;
        if t.throttle_first.is_none()
            && let (Some(p), Some(th)) = (cpu.nr_periods, cpu.nr_throttled)
        {
            t.throttle_first = Some((p, th, cpu.throttled_usec.unwrap_or(0)));
        }
    }

    fn announce(&self) {
        let l = &self.snap.limits;
        for e in &l.unreadable {
            log::event(
                Level::Warning,
                "limit_unreadable",
                &format!(
                    "{e}: that limit is unknown (not the host's), and warnings against it are off"
                ),
                &[],
            );
        }
        let mem = l
            .memory
            .as_ref()
            .map(|m| format!("memory {} ({})", bytes(m.bytes), m.source.words()))
            .unwrap_or_else(|| "memory limit unknown".into());
        let mem = match &l.memory_high {
            Some(h) => format!(
                "{mem}, throttled above {} (memory.high, {})",
                bytes(h.bytes),
                h.source.words()
            ),
            None => mem,
        };
        let cpu = l
            .cpu
            .as_ref()
            .map(|c| format!("cpu {} ({})", cores(c.cores), c.source.words()))
            .unwrap_or_else(|| "cpu limit unknown".into());
        let pids = l
            .pids
            .as_ref()
            .map(|p| format!("pids {} ({})", p.max, p.source.words()))
            .unwrap_or_else(|| "pids limit unknown".into());
        let layout = match self.snap.layout {
            Some(crate::cgroup::Layout::V1) => "cgroup v1",
            Some(crate::cgroup::Layout::V2) => "cgroup v2",
            Some(crate::cgroup::Layout::Hybrid) => "cgroup hybrid",
            None => "no cgroup",
        };
        log::event(
            Level::Info,
            "watching",
            &format!(
                "limits: {mem}, {cpu}, {pids}; {layout}; sampling every {}{}",
                secs(self.interval),
                if self.oom.is_some() {
                    ", OOM kills noticed as they happen"
                } else {
                    ""
                }
            ),
            // Human lines carry no fields: the limits' JSON only for JSON.
            &if log::format() == log::Format::Json {
                vec![
                    ("limits", json!(l)),
                    ("interval_s", json!(self.interval.as_secs_f64())),
                ]
            } else {
                Vec::new()
            },
        );
    }
}

/// Milliseconds since the epoch, for EMF's `_aws.Timestamp`.
fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// True when a thread started now could be refused by a cgroup pids
/// limit: fewer than [`STATUS_HEADROOM`] tasks left.
fn pids_tight(limit: Option<&crate::cgroup::PidsLimit>, current: Option<u64>) -> bool {
    near_limit(limit.map(|l| (l.max, &l.source)), current, STATUS_HEADROOM)
}

/// True when a thread started now, or a look at `/proc`, could push a
/// cgroup memory limit over: less than `headroom` ([`MEMORY_HEADROOM`],
/// [`CENSUS_HEADROOM`]) left of what the kernel cannot reclaim (`used`,
/// see [`unreclaimable`]).
fn memory_tight(
    limit: Option<&crate::cgroup::MemoryLimit>,
    used: Option<u64>,
    headroom: u64,
) -> bool {
    near_limit(limit.map(|l| (l.bytes, &l.source)), used, headroom)
}

/// What of a group's memory the kernel cannot reclaim: all of its usage but
/// the page cache that is neither shmem/tmpfs nor locked, so anonymous
/// memory, shmem, locked pages (ward's own code under a limit) and the
/// kernel's share (slab, page tables, sockets) where the usage gives it.
/// Locked anonymous pages (ward's written data) are in `unevictable` too,
/// so they are also taken off `file`: a few KiB too many counted as
/// unreclaimable, the safe side. No swap is assumed. A group full of file
/// cache has room: reclaim frees cache, and it must not keep ward from
/// looking. Without the breakdown, the working set (or usage) stands in:
/// larger, so safe.
fn unreclaimable(m: &crate::cgroup::MemorySample) -> Option<u64> {
    let shmem = m.shmem.unwrap_or(0);
    match (m.usage, m.anon, m.file) {
        (Some(usage), _, Some(file)) => Some(
            usage.saturating_sub(
                file.saturating_sub(shmem)
                    .saturating_sub(m.unevictable.unwrap_or(0)),
            ),
        ),
        (None, Some(anon), _) => Some(anon.saturating_add(shmem)),
        _ => m.working_set.or(m.usage),
    }
}

/// The `census_skipped` line: a look at `/proc` was skipped because the
/// group is full of memory the kernel cannot reclaim.
fn log_no_room(what: &str, limit: Option<u64>, held: Option<u64>, m: &crate::cgroup::MemorySample) {
    let (Some(limit), Some(held)) = (limit, held) else {
        return;
    };
    let parts = m
        .breakdown()
        .map(|b| format!(" ({})", b.words()))
        .unwrap_or_default();
    log::event(
        Level::Warning,
        "census_skipped",
        &format!(
            "ward skipped {what}: {} of the {} limit is memory the kernel cannot reclaim{parts}, less than {} left, and a look at /proc takes memory charged to the container, which would make the kernel OOM-kill again; ward looks again once there is room (said once)",
            bytes(held),
            bytes(limit),
            bytes(CENSUS_HEADROOM),
        ),
        &[
            ("unreclaimable_bytes", json!(held)),
            ("limit_bytes", json!(limit)),
            ("anon_bytes", json!(m.anon)),
            ("shmem_bytes", json!(m.shmem)),
            ("usage_bytes", json!(m.usage)),
        ],
    );
}

/// Less than `headroom` left under a cgroup limit. The host's own amount is
/// no such limit, and an unknown usage is not a tight one.
fn near_limit(
    limit: Option<(u64, &crate::cgroup::LimitSource)>,
    used: Option<u64>,
    headroom: u64,
) -> bool {
    match (limit, used) {
        (Some((max, source)), Some(used)) if !source.is_host() => {
            max.saturating_sub(used) < headroom
        }
        _ => false,
    }
}

/// True when no process but ward and its main child can exist in ward's
/// PID namespace: ward is its PID 1 and the last pid handed out there is
/// the main child's, or the serving thread's when ward started it after the
/// child. Any other process (a descendant, a `docker exec`) took a pid
/// after those; a failed thread start may have too, which only costs a
/// census.
fn alone_with_main(
    is_pid1: bool,
    main_pid: Option<i32>,
    thread_after_main: bool,
    last_pid: Option<i32>,
) -> bool {
    let Some(main) = main_pid.filter(|_| is_pid1) else {
        return false;
    };
    last_pid == Some(main + i32::from(thread_after_main))
}

/// ward's cgroup, when it can be found and is really ward's own.
fn discover(roots: &Roots, buf: &mut String) -> Option<Cgroups> {
    match Cgroups::discover_unopened_in(roots, buf) {
        Ok(cg) => match misplaced(&cg) {
            None => Some(cg),
            Some(what) => {
                // Reading the mount root instead would present another
                // group's numbers (often the host's) as the container's.
                log::event(
                    Level::Warning,
                    "cgroup_unavailable",
                    &format!(
                        "ward's own {what} cgroup is not visible in the cgroup mount (a cgroup namespace over the host's mount?): watching processes only"
                    ),
                    &[],
                );
                None
            }
        },
        Err(e) => {
            log::event(
                Level::Warning,
                "cgroup_unavailable",
                &format!("cannot find ward's cgroup ({e}): watching processes only"),
                &[],
            );
            None
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Logs an `oom_kill` event. The victim comes from the reaping thread (a
/// child it reaped with SIGKILL) or from the watch's guess.
pub fn log_oom_kill(victim: Option<&OomVictim>, ctx: &OomContext, count: u64, total: u64) {
    log::event(
        Level::Warning,
        "oom_kill",
        &oom_kill_words(victim, ctx, total),
        &[
            ("oom_kills", json!(total)),
            ("oom_kills_cgroup", json!(count)),
            ("victim", json!(victim)),
            ("limit_bytes", json!(ctx.limit_bytes)),
            ("peak_bytes", json!(ctx.peak_bytes)),
            ("usage_bytes", json!(ctx.usage_bytes)),
            ("anon_bytes", json!(ctx.anon_bytes)),
            ("file_bytes", json!(ctx.file_bytes)),
            ("shmem_bytes", json!(ctx.shmem_bytes)),
            (
                "kernel_bytes",
                json!(ctx.breakdown().and_then(|b| b.kernel)),
            ),
            ("largest", json!(ctx.largest)),
            ("looked", json!(!ctx.not_looked)),
        ],
    );
}

/// The message of an `oom_kill` event.
fn oom_kill_words(victim: Option<&OomVictim>, ctx: &OomContext, total: u64) -> String {
    let who = match victim {
        Some(v) if v.certain => format!(
            "killed {} (pid {})",
            v.name.as_deref().unwrap_or("a process"),
            v.pid
        ),
        Some(v) => format!(
            "most likely killed {} (pid {}): {}",
            v.name.as_deref().unwrap_or("a process"),
            v.pid,
            v.evidence
        ),
        None if ctx.not_looked => "killed a process in the container that was not ward's child; ward did not look for it, the group being full of memory the kernel cannot reclaim".to_string(),
        None => format!(
            "killed a process in the container that was not ward's child (its parent reaped it){}",
            if ctx.largest.is_empty() {
                String::new()
            } else {
                format!("; largest now: {}", alerts::words_of(&ctx.largest).join(", "))
            }
        ),
    };
    let numbers = match (ctx.peak_bytes, ctx.limit_bytes, &ctx.limit_source) {
        // No cgroup limit in view: the host's memory is not the limit the
        // kill came at.
        (Some(peak), Some(limit), Some(source)) => {
            match source.host_peak_words(limit, peak as f64 / limit.max(1) as f64) {
                Some(host) => format!("; memory peaked at {}{host}", bytes(peak)),
                None => format!(
                    "; memory peaked at {} of the {} limit ({})",
                    bytes(peak),
                    bytes(limit),
                    source.words()
                ),
            }
        }
        _ => String::new(),
    };
    let whereabouts = memory_whereabouts(ctx);
    format!(
        "the kernel OOM killer {who}{numbers}{whereabouts} ({total} OOM kill{} since ward started)",
        if total == 1 { "" } else { "s" }
    )
}

/// Where the memory is right after an OOM kill, for the `oom_kill` line:
/// memory held by tmpfs/shmem outlives every process, so the next
/// allocation OOMs again, and the reader must know killing will not help.
fn memory_whereabouts(ctx: &OomContext) -> String {
    ctx.breakdown()
        .map(|b| format!("; now {}", b.words()))
        .unwrap_or_default()
}

/// The first controller whose directory is not ward's own group, if any.
fn misplaced(cg: &Cgroups) -> Option<&'static str> {
    let groups = [
        ("memory", &cg.memory),
        ("cpu", &cg.cpu),
        ("pids", &cg.pids),
        ("cgroup2", &cg.unified),
    ];
    groups
        .into_iter()
        .find(|(_, g)| {
            g.as_ref()
                .is_some_and(|g| g.placement != crate::cgroup::Placement::Exact)
        })
        .map(|(name, _)| name)
}

/// At most this many zombies' `stat` files are read after one rise.
const ZOMBIE_READS: usize = 64;

/// Zombies killed by SIGKILL since the last look (not `known` then), from
/// `/proc/PID/stat`'s last field, the wait status (Linux 3.5+). Looks only
/// at the zombies of the census just taken, in ward's scope (a subreaper's
/// `/proc` is the host's): only run on an OOM kill. With `any_one`, when
/// there were too many zombies at the last look to tell new from old and
/// none is found new, the first zombie dead of SIGKILL is taken, as a last
/// resort.
fn sigkilled_zombies(
    proc_root: &Path,
    table: &crate::procs::ProcTable,
    known: &victims::KnownZombies,
    any_one: bool,
) -> Vec<OomVictim> {
    let mut found = Vec::new();
    let mut fallback = None;
    for e in table
        .selected()
        .filter(|e| e.is_zombie())
        .take(ZOMBIE_READS)
    {
        let new = known.is_new(e.pid, e.starttime);
        if !new && (!any_one || known.complete() || fallback.is_some()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(proc_root.join(e.pid.to_string()).join("stat"))
        else {
            continue;
        };
        if let Some(name) = sigkilled_zombie_name(&stat) {
            let victim = OomVictim {
                pid: e.pid,
                name: Some(name),
                certain: false,
                evidence: victims::evidence::SIGKILL_ZOMBIE,
                oom_score: None,
            };
            if new {
                found.push(victim);
            } else {
                fallback = Some(victim);
            }
        }
    }
    if found.is_empty() {
        found.extend(fallback);
    }
    found
}

/// The command name if this `/proc/PID/stat` text is a zombie whose wait
/// status is "killed by SIGKILL".
pub fn sigkilled_zombie_name(stat: &str) -> Option<String> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    // `get`, not indexing: text with a '(' only after the last ')' is no stat
    // line, and must not panic PID 1.
    let name = stat.get(open + 1..close)?;
    let rest = stat.get(close + 1..)?;
    if rest.split_ascii_whitespace().next()? != "Z" {
        return None;
    }
    let status: i32 = rest.split_ascii_whitespace().last()?.parse().ok()?;
    (status & 0x7f == libc::SIGKILL).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watch whose next sample is an hour away: whatever it sends in a
    /// test was asked for, not sampled.
    fn quiet_observer() -> Observer {
        Observer::prepare(
            plan_every(Duration::from_secs(3600)),
            Arc::new(Board::default()),
        )
    }

    /// A plan that samples every `interval` and does nothing else.
    fn plan_every(interval: Duration) -> WatchPlan {
        WatchPlan {
            command: "app".into(),
            interval: Some(interval),
            thresholds: Thresholds::default(),
            is_pid1: false,
            terminate_orphans: false,
            grace: Duration::from_secs(1),
            emf: None,
        }
    }

    /// Counts the `Final`s that arrive within `wait`; stops at the first
    /// one when `first_only`.
    fn finals(reaper: &mut link::ReaperEnd, wait: Duration, first_only: bool) -> usize {
        let deadline = Instant::now() + wait;
        let mut n = 0;
        // The watch wakes this thread with SIGURG, whose default action is
        // to do nothing; the loop looks at the channel instead.
        while Instant::now() < deadline && !(first_only && n > 0) {
            std::thread::sleep(Duration::from_millis(5));
            while let Some(o) = reaper.try_recv() {
                n += usize::from(matches!(o, Observation::Final { .. }));
            }
        }
        n
    }

    #[test]
    fn main_exited_right_after_main_started_is_answered() {
        // Seen as `ward -- true` taking 1 s in a third of the runs: the
        // child exited while the watch thread woke for MainStarted, both
        // wake-ups were consumed at once, and MainExited sat in the queue
        // until FINAL_WAIT gave up on it (here the next sample is an hour
        // away, so only the fix answers it).
        let observer = quiet_observer();
        let (mut reaper, watch) = link::pair().unwrap();
        let pid = std::process::id() as i32;
        assert!(reaper.send(Request::MainStarted { pid, exit_fd: None }));
        assert!(reaper.send(Request::MainExited));
        let thread = observer.spawn(watch).unwrap();
        let answered = finals(&mut reaper, Duration::from_secs(30), true) > 0;
        reaper.send(Request::Quit);
        thread.join().unwrap();
        assert!(
            answered,
            "MainExited queued behind MainStarted got no Final"
        );
    }

    #[test]
    fn the_final_look_starts_at_the_exit_and_is_sent_once() {
        // The main child's pidfd wakes the watch the moment the child
        // exits: the Final comes without a MainExited, and a MainExited
        // that crosses it brings no second one.
        let observer = quiet_observer();
        let (mut reaper, watch) = link::pair().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // SAFETY: pidfd_open takes a pid and flags; the child is unreaped.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just opened and is owned by nobody else.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let exit_fd = Some(link::ExitFd::new(fd));
        assert!(reaper.send(Request::MainStarted { pid, exit_fd }));
        let thread = observer.spawn(watch).unwrap();
        let mut got = finals(&mut reaper, Duration::from_secs(30), true);
        assert_eq!(got, 1, "no Final at the child's exit");
        assert!(reaper.send(Request::MainExited));
        got += finals(&mut reaper, Duration::from_millis(100), false);
        reaper.send(Request::Quit);
        thread.join().unwrap();
        child.wait().unwrap();
        assert_eq!(got, 1, "a second Final for the crossing MainExited");
    }

    /// The number of samples in the snapshot of the first `Final`.
    fn final_samples(reaper: &mut link::ReaperEnd) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            while let Some(o) = reaper.try_recv() {
                if let Observation::Final { snapshot, .. } = o {
                    return snapshot.map(|s| s.samples);
                }
            }
        }
        None
    }

    /// Samples in the report of a child that exits `lives` after it started.
    fn samples_for_a_child_of(lives: Duration) -> Option<u64> {
        let observer = quiet_observer();
        let (mut reaper, watch) = link::pair().unwrap();
        let thread = observer.spawn(watch).unwrap();
        let pid = std::process::id() as i32;
        assert!(reaper.send(Request::MainStarted { pid, exit_fd: None }));
        std::thread::sleep(lives);
        assert!(reaper.send(Request::MainExited));
        let samples = final_samples(&mut reaper);
        reaper.send(Request::Quit);
        thread.join().unwrap();
        samples
    }

    /// The `oom_counted_last` of the first `Final`'s peaks, for a watch on
    /// a copy of a captured v1 tree whose OOM counter file holds `last`
    /// when the main child exits.
    fn counted_last_with(last: &str) -> Option<bool> {
        let dir = std::env::temp_dir().join(format!(
            "ward-counted-last-{}-{}",
            std::process::id(),
            last.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup/v1-docker-default");
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(&fixture)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(copied.success());
        // Samples every 20 ms: the counter is read well before the end.
        let plan = plan_every(Duration::from_millis(20));
        let observer =
            Observer::prepare_under(plan, Arc::new(Board::default()), Roots::under(&dir));
        assert_eq!(observer.oom_count_base(), Some(0), "the fixture's count");
        let (mut reaper, watch) = link::pair().unwrap();
        let thread = observer.spawn(watch).unwrap();
        let pid = std::process::id() as i32;
        assert!(reaper.send(Request::MainStarted { pid, exit_fd: None }));
        // After the first look and a few samples, each of which read it.
        std::thread::sleep(Duration::from_millis(200));
        let counter = dir.join("sys/fs/cgroup/memory/memory.oom_control");
        std::fs::write(&counter, last).unwrap();
        assert!(reaper.send(Request::MainExited));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = None;
        while got.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            while let Some(o) = reaper.try_recv() {
                if let Observation::Final { peaks, .. } = o {
                    got = Some(peaks.oom_counted_last);
                }
            }
        }
        reaper.send(Request::Quit);
        thread.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        got
    }

    #[test]
    fn the_final_look_says_whether_it_could_read_the_oom_counter() {
        // Read at the end: a rise at the death would have been seen.
        let good = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n";
        assert_eq!(counted_last_with(good), Some(true));
        // Unreadable at the end: the report must not rule an OOM kill out
        // on the count from an earlier look.
        assert_eq!(counted_last_with("garbage\n"), Some(false));
    }

    #[test]
    fn a_job_is_sampled_as_it_starts_and_as_it_ends() {
        // The first look comes as the child starts, before the thread
        // answers a MainExited queued behind MainStarted.
        assert_eq!(samples_for_a_child_of(Duration::ZERO), Some(2));
        assert_eq!(samples_for_a_child_of(Duration::from_millis(50)), Some(2));
    }

    #[test]
    fn an_oom_notification_without_a_counted_kill_is_looked_at_again_a_few_times() {
        let t0 = Instant::now();
        let mut at = Vec::new();
        let mut next = OomRecheck::after(t0, 0);
        while let Some(r) = next {
            at.push(r.at.duration_since(t0));
            next = OomRecheck::after(t0, r.done + 1);
        }
        // Soon (the kill is counted right after the notification), then
        // less often, then never: a notification with no kill at all
        // costs four reads of open files.
        assert_eq!(at.len(), 4);
        assert!(at[0] <= Duration::from_millis(5), "{at:?}");
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        assert!(at[3] < Duration::from_millis(500), "{at:?}");
    }

    /// Runs a watch thread with a counting `ward status` starter: MainStarted,
    /// then MainExited after `main_lives`; how many times it was started
    /// within 300 ms.
    fn status_starts(main_lives: Duration) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let mut observer = quiet_observer();
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        observer.serve_status_later(Box::new(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }));
        let (mut reaper, watch) = link::pair().unwrap();
        let pid = std::process::id() as i32;
        let thread = observer.spawn(watch).unwrap();
        assert!(reaper.send(Request::MainStarted { pid, exit_fd: None }));
        std::thread::sleep(main_lives);
        assert!(reaper.send(Request::MainExited));
        std::thread::sleep(Duration::from_millis(300).saturating_sub(main_lives));
        reaper.send(Request::Quit);
        thread.join().unwrap();
        starts.load(Ordering::Relaxed)
    }

    #[test]
    fn ward_status_starts_once_the_child_has_run_a_moment() {
        assert_eq!(status_starts(STATUS_AFTER * 4), 1);
    }

    #[test]
    fn a_job_over_at_once_never_starts_ward_status() {
        assert_eq!(status_starts(Duration::ZERO), 0);
    }

    #[test]
    fn a_thread_waits_only_when_a_cgroup_pids_limit_is_nearly_reached() {
        use crate::cgroup::{LimitSource, PidsLimit};
        let cgroup = |max| PidsLimit {
            max,
            source: LimitSource::OwnGroup,
        };
        let host = PidsLimit {
            max: 40,
            source: LimitSource::Host {
                hidden_above: false,
            },
        };
        assert!(pids_tight(Some(&cgroup(40)), Some(40)));
        assert!(pids_tight(Some(&cgroup(40)), Some(33)));
        assert!(!pids_tight(Some(&cgroup(40)), Some(32)));
        assert!(!pids_tight(Some(&host), Some(40)));
        assert!(!pids_tight(Some(&cgroup(40)), None));
        assert!(!pids_tight(None, Some(40)));
    }

    #[test]
    fn a_thread_waits_only_when_a_cgroup_memory_limit_is_nearly_reached() {
        use crate::cgroup::{LimitSource, MemoryLimit};
        const MIB: u64 = 1 << 20;
        let cgroup = MemoryLimit {
            bytes: 32 * MIB,
            source: LimitSource::OwnGroup,
        };
        let host = MemoryLimit {
            bytes: 32 * MIB,
            source: LimitSource::Host {
                hidden_above: false,
            },
        };
        let tight = |l, used| memory_tight(l, used, MEMORY_HEADROOM);
        assert!(tight(Some(&cgroup), Some(32 * MIB)));
        assert!(tight(Some(&cgroup), Some(29 * MIB)));
        assert!(!tight(Some(&cgroup), Some(28 * MIB)));
        assert!(!tight(Some(&host), Some(32 * MIB)));
        assert!(!tight(Some(&cgroup), None));
        assert!(!tight(None, Some(32 * MIB)));
        // A census needs less: 29.1 MiB of 32 (a memory_high warning at
        // 90 %) leaves room to name the largest processes; 31.5 does not.
        let census = |used| memory_tight(Some(&cgroup), Some(used), CENSUS_HEADROOM);
        assert!(!census(29 * MIB + MIB / 10));
        assert!(census(31 * MIB + MIB / 2));
    }

    #[test]
    fn page_cache_is_room_and_tmpfs_anon_and_kernel_are_not() {
        use crate::cgroup::MemorySample;
        const MIB: u64 = 1 << 20;
        // Measured after an OOM kill in a 32 MiB v1 group whose victim had
        // mapped a tmpfs file: the group stays full.
        let full = MemorySample {
            usage: Some(32 * MIB),
            anon: Some(MIB),
            file: Some(30 * MIB),
            shmem: Some(30 * MIB),
            working_set: Some(32 * MIB),
            ..MemorySample::default()
        };
        assert_eq!(unreclaimable(&full), Some(32 * MIB));
        // As full of ordinary file cache: reclaim frees it, ward may look.
        let cache = MemorySample {
            shmem: Some(0),
            ..full
        };
        assert_eq!(unreclaimable(&cache), Some(2 * MIB));
        // The active part of the cache is in the working set: not counted.
        let active = MemorySample {
            working_set: Some(31 * MIB),
            ..cache
        };
        assert_eq!(unreclaimable(&active), Some(2 * MIB));
        // A kernel without shmem in memory.stat: file cache counts as
        // reclaimable, anon and the kernel's share do not.
        let no_shmem = MemorySample {
            shmem: None,
            ..full
        };
        assert_eq!(unreclaimable(&no_shmem), Some(2 * MIB));
        // Measured with ward's code locked and charged to the group (a
        // cold binary): 1.3 MiB of the page cache is locked. Counted as
        // room, it let ward look at /proc in a group full of tmpfs.
        let locked = MemorySample {
            usage: Some(32 * MIB),
            file: Some(30 * MIB + 1331 * 1024),
            unevictable: Some(1331 * 1024),
            ..full
        };
        assert_eq!(unreclaimable(&locked), Some(32 * MIB));
        assert_eq!(
            unreclaimable(&MemorySample {
                unevictable: None,
                ..locked
            }),
            Some(32 * MIB - 1331 * 1024)
        );
        // No usage: anon and shmem; no breakdown: the working set, else usage.
        let no_usage = MemorySample {
            usage: None,
            ..full
        };
        assert_eq!(unreclaimable(&no_usage), Some(31 * MIB));
        let bare = MemorySample {
            usage: Some(20 * MIB),
            working_set: Some(12 * MIB),
            ..MemorySample::default()
        };
        assert_eq!(unreclaimable(&bare), Some(12 * MIB));
        assert_eq!(
            unreclaimable(&MemorySample {
                working_set: None,
                ..bare
            }),
            Some(20 * MIB)
        );
        assert_eq!(unreclaimable(&MemorySample::default()), None);
        // Under a 32 MiB limit of the group's own, only the tmpfs case is
        // too tight to look.
        let limit = crate::cgroup::MemoryLimit {
            bytes: 32 * MIB,
            source: crate::cgroup::LimitSource::OwnGroup,
        };
        let census =
            |m: &MemorySample| memory_tight(Some(&limit), unreclaimable(m), CENSUS_HEADROOM);
        assert!(census(&full));
        assert!(!census(&cache));
        assert!(!census(&active));
    }

    /// No cgroup limit in view: the host's memory is not "the limit" the
    /// kill came at (a VM review saw "64.2 MiB of the 457.2 MiB limit" for
    /// a kill at a pod's hidden 64 MiB).
    #[test]
    fn the_oom_line_does_not_call_the_hosts_memory_the_limit() {
        use crate::cgroup::LimitSource;
        let mut ctx = OomContext {
            limit_bytes: Some(457 << 20),
            limit_source: Some(LimitSource::Host { hidden_above: true }),
            peak_bytes: Some(64 << 20),
            ..OomContext::default()
        };
        let line = oom_kill_words(None, &ctx, 1);
        assert!(
            line.contains("; memory peaked at 64.0 MiB (14.0% of the host's 457.0 MiB; no limit on the cgroups in view, and any above them is hidden)"),
            "{line}"
        );
        assert!(!line.contains("limit ("), "{line}");
        ctx.limit_source = Some(LimitSource::Host {
            hidden_above: false,
        });
        let line = oom_kill_words(None, &ctx, 1);
        assert!(
            line.contains(
                "; memory peaked at 64.0 MiB of the host's 457.0 MiB (14.0%; no cgroup limit)"
            ),
            "{line}"
        );
        ctx.limit_source = Some(LimitSource::OwnGroup);
        let line = oom_kill_words(None, &ctx, 1);
        assert!(
            line.contains("; memory peaked at 64.0 MiB of the 457.0 MiB limit (own cgroup)"),
            "{line}"
        );
    }

    /// Where the words name the largest processes (no victim named) and
    /// the kernel's share, they are the JSON's `largest` and
    /// `kernel_bytes`.
    #[test]
    fn the_oom_lines_largest_and_kernel_are_its_fields() {
        let ctx = OomContext {
            largest: vec![
                crate::procs::ProcRss {
                    pid: 9,
                    name: "hog".into(),
                    rss_bytes: 30 << 20,
                },
                crate::procs::ProcRss {
                    pid: 1,
                    name: "ward".into(),
                    rss_bytes: 3 << 19,
                },
            ],
            usage_bytes: Some(40 << 20),
            anon_bytes: Some(31 << 20),
            file_bytes: Some(4 << 20),
            shmem_bytes: Some(0),
            ..OomContext::default()
        };
        let line = oom_kill_words(None, &ctx, 1);
        assert!(
            line.contains("; largest now: hog (pid 9) 30.0 MiB, ward (pid 1) 1.5 MiB"),
            "{line}"
        );
        assert_eq!(ctx.breakdown().and_then(|b| b.kernel), Some(5 << 20));
        assert!(line.contains(", kernel 5.0 MiB"), "{line}");
        // Unknown parts: no kernel share, in words or field.
        let ctx = OomContext {
            usage_bytes: None,
            ..ctx
        };
        assert_eq!(ctx.breakdown().and_then(|b| b.kernel), None);
        assert!(!oom_kill_words(None, &ctx, 1).contains(", kernel "));
    }

    #[test]
    fn the_oom_line_does_not_guess_when_ward_did_not_look() {
        let ctx = OomContext {
            not_looked: true,
            largest: vec![crate::procs::ProcRss {
                pid: 9,
                name: "hog".into(),
                rss_bytes: 30 << 20,
            }],
            ..OomContext::default()
        };
        // The words only; the line itself goes to the log.
        let line = oom_kill_words(None, &ctx, 1);
        assert!(line.contains("ward did not look for it"), "{line}");
        assert!(!line.contains("largest now"), "{line}");
        assert!(!line.contains("its parent reaped it"), "{line}");
    }

    #[test]
    fn the_oom_line_gives_the_evidence_that_names_a_likely_victim() {
        use victims::evidence;
        for ev in [
            evidence::GONE,
            evidence::REAPED_NEAR,
            evidence::SIGKILL_ZOMBIE,
        ] {
            let v = OomVictim {
                pid: 5,
                name: Some("python3".into()),
                certain: false,
                evidence: ev,
                oom_score: None,
            };
            let line = oom_kill_words(Some(&v), &OomContext::default(), 1);
            assert!(
                line.contains(&format!("most likely killed python3 (pid 5): {ev}")),
                "{line}"
            );
        }
    }

    #[test]
    fn alone_only_as_pid1_with_no_pid_after_the_child() {
        assert!(alone_with_main(true, Some(3), false, Some(3)));
        assert!(alone_with_main(true, Some(3), true, Some(4)));
        // A process forked after the main child (or a docker exec).
        assert!(!alone_with_main(true, Some(3), false, Some(4)));
        assert!(!alone_with_main(true, Some(3), true, Some(5)));
        // Not PID 1: the namespace is not ward's to judge.
        assert!(!alone_with_main(false, Some(3), false, Some(3)));
        assert!(!alone_with_main(true, None, false, Some(3)));
        assert!(!alone_with_main(true, Some(3), false, None));
    }

    /// Only a zombie in ward's scope is looked at: a subreaper's `/proc`
    /// is the host's, where any SIGKILLed zombie may wait.
    #[test]
    fn a_sigkilled_zombie_is_looked_for_in_wards_scope_only() {
        let tail = " 0".repeat(47);
        let t = crate::procs::fixture::FakeProc::new("sigkilled-scope", "100.0");
        t.process(1, "ward", 'S', 0, 1, 0, 1)
            .process(10, "app", 'S', 1, 1, 0, 1)
            .process(99, "other", 'S', 0, 1, 0, 1)
            .raw(
                30,
                &format!("30 (elsewhere) Z 99 30 30 0 -1 4194560{tail} 9"),
            );
        let mut table = crate::procs::ProcTable::new();
        let scan = |table: &mut crate::procs::ProcTable| {
            table.scan(t.path()).unwrap();
            table.select(crate::procs::Scope::DescendantsOf(1));
        };
        scan(&mut table);
        let known = victims::KnownZombies::of(&table);
        assert!(sigkilled_zombies(t.path(), &table, &known, true).is_empty());
        t.raw(20, &format!("20 (mine) Z 10 20 20 0 -1 4194560{tail} 9"));
        scan(&mut table);
        let z = sigkilled_zombies(t.path(), &table, &known, false);
        assert_eq!(z.len(), 1, "new since the look: {z:?}");
        assert_eq!((z[0].pid, z[0].name.as_deref()), (20, Some("mine")));
        // Known at the look: old, never taken.
        let known = victims::KnownZombies::of(&table);
        assert!(sigkilled_zombies(t.path(), &table, &known, false).is_empty());
        assert!(sigkilled_zombies(t.path(), &table, &known, true).is_empty());
    }

    #[test]
    fn zombie_exit_status_names_a_sigkill_victim() {
        // Fields after comm: state ... and the wait status last (field 52).
        let tail = " 0".repeat(47);
        let killed = format!("42 (my hog) Z 7 42 7 0 -1 4194560{tail} 9");
        assert_eq!(sigkilled_zombie_name(&killed).as_deref(), Some("my hog"));
        let exited = format!("42 (hog) Z 7 42 7 0 -1 4194560{tail} 256");
        assert_eq!(sigkilled_zombie_name(&exited), None);
        let running = format!("42 (hog) S 7 42 7 0 -1 4194560{tail} 0");
        assert_eq!(sigkilled_zombie_name(&running), None);
    }

    #[test]
    fn oom_line_says_when_tmpfs_holds_the_memory() {
        const MIB: u64 = 1 << 20;
        let mut ctx = OomContext {
            usage_bytes: Some(32 * MIB),
            anon_bytes: Some(MIB),
            file_bytes: Some(31 * MIB),
            shmem_bytes: Some(30 * MIB),
            ..OomContext::default()
        };
        let words = memory_whereabouts(&ctx);
        assert!(words.contains("anonymous 1.0 MiB"), "{words}");
        assert!(words.contains("shmem/tmpfs 30.0 MiB"), "{words}");
        assert!(
            words.contains("held by tmpfs/shared memory: killing processes does not free it"),
            "{words}"
        );
        ctx.shmem_bytes = Some(MIB);
        assert!(!memory_whereabouts(&ctx).contains("held by"));
        ctx.anon_bytes = None;
        assert_eq!(memory_whereabouts(&ctx), "");
    }

    #[test]
    fn zombie_name_with_paren_after_the_last_close_is_no_victim() {
        // Found by fuzz/fuzz_targets/proc_stat.rs: a '(' after the last ')' made
        // the comm slice run backwards and panicked.
        let line = "0040000 0 0 9 45 157440eg) Z 7 77 7 0(-1 0  0 0 0 9\n";
        assert_eq!(sigkilled_zombie_name(line), None);
    }
}
