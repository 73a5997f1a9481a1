//! Facts about the run, recorded on the reaping thread the moment they are
//! known (its own events, and what the watch thread tells it).
//!
//! Plain data: the reaper writes it, the exit report reads it. Nothing here
//! does I/O.

use std::time::{Duration, Instant, SystemTime};

use crate::exit::ChildEnd;
use crate::watch::victims::{self, RiseFindings};
use crate::watch::{ObservedPeaks, OomVictim};

/// A stop request as ward received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRequest {
    /// The signal received (before any rewrite).
    pub signal: i32,
    /// Sender pid in ward's namespace; 0 = from outside it.
    pub from_pid: i32,
    /// Who sent it, in words.
    pub from: String,
    /// When it arrived.
    pub received: Instant,
    /// Wall-clock time of arrival.
    pub received_wall: SystemTime,
    /// When a stop signal was forwarded to the child.
    pub forwarded: Option<Instant>,
    /// True when `--stop-delay` held it before that forward.
    pub held: bool,
    /// The signal that held the main process stopped (SIGSTOP, SIGTSTP, ...)
    /// when ward last looked after the forward: it could not act on it.
    pub stopped_by: Option<i32>,
}

impl StopRequest {
    /// How long `--stop-delay` held the stop before ward forwarded it.
    pub fn held_for(&self) -> Option<Duration> {
        self.forwarded
            .filter(|_| self.held)
            .map(|f| f.saturating_duration_since(self.received))
    }
}

/// A signal ward forwarded to the main process: the latest of each kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forwarded {
    /// What ward sent.
    pub sent: i32,
    /// What ward received (another signal under `--rewrite`).
    pub received: i32,
    /// Its sender in ward's namespace; 0 = from outside it.
    pub from_pid: i32,
    /// When it was sent.
    pub at: Instant,
}

/// At most this many kinds of forwarded signal are remembered.
pub const MAX_FORWARDED: usize = 8;

/// A process ward reaped after the kernel or someone killed it with SIGKILL.
#[derive(Debug, Clone, PartialEq)]
pub struct KilledChild {
    /// Its pid.
    pub pid: i32,
    /// When ward reaped it.
    pub at: Instant,
}

/// One rise of the cgroup's OOM kill counter.
#[derive(Debug, Clone, PartialEq)]
pub struct OomKill {
    /// Sequence number of this rise (1 = the first of the run), kept when
    /// older records are dropped.
    pub seq: u64,
    /// When ward noticed.
    pub at: Instant,
    /// How many kills this rise stands for.
    pub kills: u64,
    /// The counter after the rise.
    pub count: u64,
    /// The victims named so far, at most `kills`, each with its evidence.
    pub victims: Vec<OomVictim>,
    /// Exactly as many candidates vanished as the counter rose: a victim
    /// named by the census and reaped by ward with SIGKILL is proven.
    pub exact: bool,
    /// Pids seen alive after the rise: never this rise's victims.
    pub survivors: Vec<i32>,
    /// A read found the rise with no OOM notification since the read
    /// before, made then: the kill came between the two.
    pub since: Option<Instant>,
    /// Its `oom_kill` line went out naming no child of ward's ("not ward's
    /// child"): a SIGKILL reap after that is not put down to it.
    pub said_unnamed: bool,
}

impl OomKill {
    /// How long before `at` the kill may have come, when more than the
    /// attribution window: a read found it long after the read before.
    pub fn span(&self) -> Option<Duration> {
        self.since
            .map(|s| self.at.saturating_duration_since(s))
            .filter(|d| *d > OOM_ATTRIBUTION_WINDOW)
    }

    /// Noticed within the attribution window of `at`.
    pub fn near(&self, at: Instant) -> bool {
        let gap = if at >= self.at {
            at - self.at
        } else {
            self.at - at
        };
        gap <= OOM_ATTRIBUTION_WINDOW
    }
}

/// Why ward itself sent a SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WardKill {
    /// `--kill-after` ran out.
    KillAfter,
    /// A received signal was forwarded as SIGKILL (`-r X:KILL`, or SIGKILL
    /// sent to ward from inside).
    Forwarded,
    /// The shutdown's last pass over the processes left.
    Shutdown,
}

/// A SIGKILL ward sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WardSigkill {
    /// Why.
    pub why: WardKill,
    /// To the main child (or its group); false: to the rest.
    pub to_main: bool,
    /// When.
    pub at: Instant,
}

/// A warning raised, with its sequence number over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningSeen {
    /// 1 = the first warning of the run.
    pub seq: u64,
    /// Its event key.
    pub key: &'static str,
    /// Seconds since start.
    pub at_s: f64,
}

/// Everything the loop learned during the run.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// When the child was started.
    pub started: Instant,
    /// Wall-clock start.
    pub started_wall: SystemTime,
    /// The main child's pid (0 before it started).
    pub main_pid: i32,
    /// argv[0]'s basename: never the arguments, which can hold secrets.
    pub command: String,
    /// How the main child ended.
    pub main_end: Option<ChildEnd>,
    /// When it ended.
    pub main_ended: Option<Instant>,
    /// The kernel wrote a core dump of it (`WCOREDUMP`).
    pub main_core_dumped: bool,
    /// exec failed with this errno.
    pub exec_errno: Option<i32>,
    /// What the exec failure means, in words ("not found", ...).
    pub exec_what: Option<&'static str>,
    /// Why a program that is there was "not found": the interpreter or
    /// loader it names is not (`spawn::missing_runner`).
    pub exec_detail: Option<String>,
    /// The first stop request.
    pub stop: Option<StopRequest>,
    /// When ward sent SIGKILL because `--kill-after` ran out.
    pub killed_by_ward: Option<Instant>,
    /// Every SIGKILL ward sent (bounded, the latest kept; the first one to
    /// the main child is never dropped: see [`RunFacts::note_ward_sigkill`]).
    pub ward_sigkills: Vec<WardSigkill>,
    /// Processes reaped other than the main child.
    pub reaped_orphans: u64,
    /// Recently reaped processes that died of SIGKILL (bounded).
    pub sigkilled: Vec<KilledChild>,
    /// Recently reaped processes that ended any other way (bounded): they
    /// ended by themselves, so they are no OOM victims.
    pub exited: Vec<KilledChild>,
    /// The cgroup OOM kill counter when ward started (`None`: unknown).
    pub oom_count_base: Option<u64>,
    /// OOM kills noticed during the run (bounded, the latest kept;
    /// `oom_kills_total` counts all).
    pub oom_kills: Vec<OomKill>,
    /// OOM kills during the run.
    pub oom_kills_total: u64,
    /// Rises of the counter noticed (the sequence of `oom_kills`).
    pub oom_rises: u64,
    /// Warnings raised (bounded, the latest kept).
    pub warnings: Vec<WarningSeen>,
    /// Warnings raised over the whole run.
    pub warnings_total: u64,
    /// Peaks and first readings from the watch thread.
    pub observed: ObservedPeaks,
    /// Signals forwarded to the main process, the latest of each kind
    /// (bounded).
    pub forwarded: Vec<Forwarded>,
    /// ward is PID 1 (a sender of pid 0 is then outside the container).
    pub pid1: bool,
    /// `-g`: signals to the main child go to its whole process group, so a
    /// SIGKILL ward sent it may have killed any of its members.
    pub group_signals: bool,
    /// With `--pdeathsig`: ward's parent, whose death sends it.
    pub pdeath_parent: Option<i32>,
}

/// At most this many warnings are remembered for the report.
pub const MAX_WARNINGS: usize = 32;
/// A SIGKILL reaped this soon after an OOM counter rise names its victim.
pub const OOM_ATTRIBUTION_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many SIGKILLed children are remembered.
pub const MAX_SIGKILLED: usize = 16;
/// At most this many OOM counter rises are remembered.
pub const MAX_OOM_RISES: usize = 16;

impl RunFacts {
    /// A record for a run starting now.
    pub fn new(command: String) -> RunFacts {
        RunFacts {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            main_pid: 0,
            command,
            main_end: None,
            main_ended: None,
            main_core_dumped: false,
            exec_errno: None,
            exec_what: None,
            exec_detail: None,
            stop: None,
            killed_by_ward: None,
            ward_sigkills: Vec::new(),
            reaped_orphans: 0,
            // Both fill up in the first orphan storm (or OOM kill storm):
            // room for all of it from the start, so that a storm leaves
            // ward's heap as it found it (the first storm grew this one a
            // page: `tests/heap_steady.rs`).
            sigkilled: Vec::with_capacity(MAX_SIGKILLED),
            exited: Vec::with_capacity(MAX_SIGKILLED),
            oom_count_base: None,
            oom_kills: Vec::new(),
            oom_kills_total: 0,
            oom_rises: 0,
            warnings: Vec::new(),
            warnings_total: 0,
            observed: ObservedPeaks::default(),
            forwarded: Vec::new(),
            pid1: false,
            group_signals: false,
            pdeath_parent: None,
        }
    }

    /// The program the main process runs now, when a census saw it
    /// `exec` another than the one ward started.
    pub fn main_now(&self) -> Option<&str> {
        self.observed
            .main_name
            .as_deref()
            .filter(|n| crate::procs::renamed(n, &self.command))
    }

    /// [`main_words`] for the main process.
    pub fn main_named(&self) -> String {
        main_words(&self.command, self.main_now(), self.main_pid)
    }

    /// Remembers a forwarded signal, in place of the last one of its kind.
    pub fn note_forwarded(&mut self, f: Forwarded) {
        if let Some(old) = self.forwarded.iter_mut().find(|o| o.sent == f.sent) {
            *old = f;
            return;
        }
        if self.forwarded.len() == MAX_FORWARDED {
            self.forwarded.remove(0);
        }
        self.forwarded.push(f);
    }

    /// The forward of the signal the main process died of, sent before it
    /// died: a `docker kill -s SEGV` is then no crash of the application's
    /// own. (It may still be: ward can only say what it sent.)
    pub fn forward_before_death(&self) -> Option<&Forwarded> {
        let Some(ChildEnd::Signaled(s)) = self.main_end else {
            return None;
        };
        let end = self.main_ended?;
        self.forwarded.iter().find(|f| f.sent == s && f.at <= end)
    }

    /// Records a SIGKILL ward sent, so no verdict blames someone else for it
    /// and no OOM kill is given its victim.
    pub fn note_ward_sigkill(&mut self, why: WardKill, to_main: bool, at: Instant) {
        if why == WardKill::KillAfter {
            self.killed_by_ward.get_or_insert(at);
        }
        if self.ward_sigkills.len() == MAX_SIGKILLED {
            // Keep the first kill of the main child: the verdict needs it.
            let drop_at = self
                .ward_sigkills
                .iter()
                .position(|k| !k.to_main)
                .unwrap_or(0);
            self.ward_sigkills.remove(drop_at);
        }
        self.ward_sigkills.push(WardSigkill { why, to_main, at });
    }

    /// The first SIGKILL ward sent the main child, if any.
    pub fn ward_killed_main(&self) -> Option<&WardSigkill> {
        self.ward_sigkills.iter().find(|k| k.to_main)
    }

    /// True when a SIGKILL reaped at `at` from `pid` may be ward's own.
    fn ward_may_have_killed(&self, pid: i32, at: Instant) -> bool {
        self.ward_sigkills
            .iter()
            .any(|k| k.at <= at && (!k.to_main || self.group_signals || pid == self.main_pid))
    }

    /// Remembers a SIGKILLed child, dropping the oldest past the bound. A
    /// census victim of a rise it matches, with as many gone as killed, is
    /// proven; otherwise it may fill a rise's unnamed kill as "most likely",
    /// unless it was seen alive after that rise. Never replaces a name.
    pub fn note_sigkilled(&mut self, pid: i32, at: Instant) {
        if self.sigkilled.len() == MAX_SIGKILLED {
            self.sigkilled.remove(0);
        }
        self.sigkilled.push(KilledChild { pid, at });
        if self.ward_may_have_killed(pid, at) {
            return;
        }
        self.attribute_reap(pid, at);
    }

    /// Remembers a child ward reaped that did not die of SIGKILL: the OOM
    /// killer's victims die of SIGKILL, so it is no victim of a rise near
    /// it. The census counts a zombie as gone, so a rise noticed before this
    /// reap may have named it: that name is taken back (the kill stays
    /// counted, unnamed).
    pub fn note_exited(&mut self, pid: i32, at: Instant) {
        if self.exited.len() == MAX_SIGKILLED {
            self.exited.remove(0);
        }
        self.exited.push(KilledChild { pid, at });
        for o in self.oom_kills.iter_mut().filter(|o| o.near(at)) {
            let before = o.victims.len();
            o.victims.retain(|v| v.pid != pid);
            if o.victims.len() != before {
                // One of the gone was no victim: fewer than counted remain.
                o.exact = false;
            }
        }
    }

    /// Whether `pid`, gone since the census taken at `census`, ended by
    /// itself (reaped with an exit code, or a signal other than SIGKILL):
    /// near the rise at `at` (either order), or at any time after that
    /// census, when the census's process with that pid can only be the
    /// one that ended. The main child counts too, whose record may have
    /// left the bounded list in an orphan storm.
    fn ended_by_itself(&self, pid: i32, at: Instant, census: Option<Instant>) -> bool {
        let ended = |when: Instant| {
            let gap = if when <= at { at - when } else { when - at };
            gap <= OOM_ATTRIBUTION_WINDOW || census.is_some_and(|c| when >= c)
        };
        let main = pid == self.main_pid
            && self
                .main_end
                .is_some_and(|e| e != ChildEnd::Signaled(libc::SIGKILL))
            && self.main_ended.is_some_and(ended);
        main || self.exited.iter().any(|e| e.pid == pid && ended(e.at))
    }

    fn attribute_reap(&mut self, pid: i32, at: Instant) {
        // As it died: the reaping thread reads its name before each pass.
        let name =
            (pid == self.main_pid).then(|| self.main_now().unwrap_or(&self.command).to_string());
        // Already a victim somewhere: upgrade there (proof) or leave it.
        if let Some(o) = self
            .oom_kills
            .iter_mut()
            .rev()
            .find(|o| o.victims.iter().any(|v| v.pid == pid))
        {
            if o.exact && o.near(at) {
                // A zombie found dead of SIGKILL is a guess (it may have
                // died of any kill -9, long before): its reap proves
                // nothing more.
                for v in o
                    .victims
                    .iter_mut()
                    .filter(|v| v.pid == pid && v.evidence != victims::evidence::SIGKILL_ZOMBIE)
                {
                    v.certain = true;
                    // "The only process gone" is false when several were.
                    v.evidence = if o.kills == 1 {
                        victims::evidence::PROVEN
                    } else {
                        victims::evidence::PROVEN_ALL
                    };
                    if v.name.is_none() {
                        v.name = name.clone();
                    }
                }
            }
            return;
        }
        // The guesses a child reaped with SIGKILL near the rise is better
        // than: one of more processes gone than killed (any may have exited
        // by itself: a setup step before the app's `exec`), then a zombie
        // dead of SIGKILL at an unknown time.
        // Only where the rise is timed: a read that found it long after the
        // read before (no OOM notification, Docker's read-only v1
        // cgroupfs) cannot tell a SIGKILL at the read from the kill.
        let guess = |o: &OomKill| {
            let at = |e: &str| o.victims.iter().position(|v| v.evidence == e);
            at(victims::evidence::LARGEST_GONE)
                .filter(|_| o.span().is_none())
                .or_else(|| at(victims::evidence::SIGKILL_ZOMBIE))
        };
        if let Some(o) = self.oom_kills.iter_mut().rev().find(|o| {
            o.near(at)
                && !o.said_unnamed
                && ((o.victims.len() as u64) < o.kills || guess(o).is_some())
                && !o.survivors.contains(&pid)
        }) {
            if (o.victims.len() as u64) >= o.kills
                && let Some(i) = guess(o)
            {
                o.victims.remove(i);
                o.exact = false;
            }
            o.victims.push(OomVictim {
                pid,
                name,
                certain: false,
                evidence: victims::evidence::REAPED_NEAR,
                oom_score: None,
            });
        }
    }

    /// The `oom_kill` line of the rise to `count` went out naming no
    /// victim: the log said it was not ward's child, and the report keeps
    /// to that (a process that `kill -9`s itself a moment later is not it).
    pub fn note_said_unnamed(&mut self, count: u64) {
        if let Some(o) = self.oom_kills.iter_mut().find(|o| o.count == count) {
            o.said_unnamed = o.victims.is_empty();
        }
    }

    /// Records a rise of the OOM kill counter to `count`, with what the
    /// census found; SIGKILL reaps already recorded around it are matched.
    pub fn note_oom(&mut self, count: u64, at: Instant, findings: RiseFindings) {
        let before = self
            .oom_kills
            .last()
            .map(|o| o.count)
            .or(self.oom_count_base)
            .unwrap_or(0);
        let kills = count.saturating_sub(before).max(1);
        self.oom_kills_total += kills;
        self.oom_rises += 1;
        let mut findings = findings;
        let census = findings.candidates_at;
        findings
            .gone
            .retain(|v| !self.ended_by_itself(v.pid, at, census));
        let exact = findings.gone.len() as u64 == kills;
        let chosen = victims::choose(findings.gone, kills);
        if self.oom_kills.len() == MAX_OOM_RISES {
            self.oom_kills.remove(0);
        }
        self.oom_kills.push(OomKill {
            seq: self.oom_rises,
            at,
            kills,
            count,
            victims: chosen,
            exact,
            survivors: findings.survivors,
            since: findings.since,
            said_unnamed: false,
        });
        // Either order: the watch notices the counter and the reaper reaps
        // the victim independently; the notice can arrive after the reap.
        let reaps: Vec<KilledChild> = self
            .sigkilled
            .iter()
            .filter(|k| {
                let gap = if k.at <= at { at - k.at } else { k.at - at };
                gap <= OOM_ATTRIBUTION_WINDOW
            })
            .cloned()
            .collect();
        for k in reaps {
            if !self.ward_may_have_killed(k.pid, k.at) {
                self.attribute_reap(k.pid, k.at);
            }
        }
    }

    /// Remembers that a warning was raised: the latest [`MAX_WARNINGS`] are
    /// kept, with their sequence numbers, and all are counted.
    pub fn note_warning(&mut self, key: &'static str) {
        self.warnings_total += 1;
        if self.warnings.len() == MAX_WARNINGS {
            self.warnings.remove(0);
        }
        self.warnings.push(WarningSeen {
            seq: self.warnings_total,
            key,
            at_s: self.started.elapsed().as_secs_f64(),
        });
    }
}

/// The basename of argv[0], for logs and reports.
pub fn command_name(argv0: &std::ffi::OsStr) -> String {
    let s = argv0.to_string_lossy();
    s.rsplit('/').next().unwrap_or(&s).to_string()
}

/// " (core dumped)" after a death by signal that wrote one, as a shell
/// says it; nothing otherwise.
pub fn core_words(core: bool) -> &'static str {
    if core { " (core dumped)" } else { "" }
}

/// The main process in words: "sleep (pid 8, started as sh)" once a census
/// saw it run another program (`now`), else "sh (pid 8)". One wording for
/// the log's lines and the report.
pub fn main_words(command: &str, now: Option<&str>, pid: i32) -> String {
    match now {
        Some(now) => format!("{now} (pid {pid}, started as {command})"),
        None => crate::procs::named(Some(command), pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reaping thread's lists of recent ends are made at their bound:
    /// an orphan storm fills them without a new block (it was the one
    /// allocation of ward's reaping thread in a storm, and left a page more
    /// of musl's malloc after it: the benchmark's anonymous growth).
    #[test]
    fn a_storm_of_ends_needs_no_new_block_for_the_recent_lists() {
        let mut f = RunFacts::new("sh".into());
        let (exited, sigkilled) = (f.exited.as_ptr(), f.sigkilled.as_ptr());
        let t0 = Instant::now();
        for pid in 2..1000 {
            f.note_exited(pid, t0);
            f.note_sigkilled(pid + 5000, t0);
        }
        assert_eq!(f.exited.len(), MAX_SIGKILLED);
        assert_eq!(f.sigkilled.len(), MAX_SIGKILLED);
        assert_eq!(f.exited.as_ptr(), exited, "exited was reallocated");
        assert_eq!(f.sigkilled.as_ptr(), sigkilled, "sigkilled was reallocated");
    }

    #[test]
    fn the_main_process_in_words_says_what_it_was_started_as() {
        assert_eq!(main_words("sh", None, 8), "sh (pid 8)");
        assert_eq!(
            main_words("sh", Some("sleep"), 8),
            "sleep (pid 8, started as sh)"
        );
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 8;
        f.observed.main_name = Some("sh".into());
        assert_eq!(f.main_named(), "sh (pid 8)");
        f.observed.main_name = Some("java".into());
        assert_eq!(f.main_named(), "java (pid 8, started as sh)");
    }

    #[test]
    fn command_name_is_basename_only() {
        assert_eq!(command_name("/usr/bin/java".as_ref()), "java");
        assert_eq!(command_name("app".as_ref()), "app");
    }

    fn gone(pids: &[(i32, &str)], survivors: &[i32]) -> RiseFindings {
        RiseFindings {
            gone: pids
                .iter()
                .map(|(pid, name)| OomVictim {
                    pid: *pid,
                    name: Some((*name).into()),
                    certain: false,
                    evidence: victims::evidence::GONE,
                    oom_score: None,
                })
                .collect(),
            survivors: survivors.to_vec(),
            since: None,
            candidates_at: None,
        }
    }

    fn ms(n: u64) -> std::time::Duration {
        std::time::Duration::from_millis(n)
    }

    #[test]
    fn a_reap_near_the_rise_is_most_likely_never_certain() {
        // No census finding: timing alone names it, as "most likely".
        let t = Instant::now();
        let mut f = RunFacts::new("java".into());
        f.main_pid = 7;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, RiseFindings::default());
        f.note_sigkilled(7, t + ms(5));
        let v = &f.oom_kills[0].victims[0];
        assert_eq!(
            (v.pid, v.name.as_deref(), v.certain),
            (7, Some("java"), false)
        );
        // Either order.
        let mut g = RunFacts::new("java".into());
        g.main_pid = 7;
        g.oom_count_base = Some(0);
        g.note_sigkilled(7, t + ms(20));
        g.note_oom(1, t, RiseFindings::default());
        assert_eq!(g.oom_kills[0].victims[0].pid, 7);
        assert!(!g.oom_kills[0].victims[0].certain);
    }

    /// A main process that exited 0 at the start, seen alive by the last
    /// census, and a kill seconds later during `--grace`: the main process
    /// was named the victim ("the largest oom_score among the processes
    /// gone"), outside the 2 s window around the rise that ruled out
    /// processes reaped with an exit code. Ended after the census, it can
    /// be no victim, however long before the rise; a pid the census saw
    /// after such an exit is another process's, and stays a candidate.
    #[test]
    fn a_process_that_exited_since_the_census_is_no_victim_however_long_before() {
        let t = Instant::now();
        let census = t - ms(1000);
        let findings = |census: Instant| {
            let mut g = gone(&[(8, "sh"), (9, "ward-workload")], &[]);
            g.gone[0].oom_score = Some(900);
            g.gone[1].oom_score = Some(100);
            g.candidates_at = Some(census);
            g
        };
        let main_exited = || {
            let mut f = RunFacts::new("sh".into());
            f.main_pid = 8;
            f.oom_count_base = Some(0);
            f.main_end = Some(ChildEnd::Exited(0));
            f.main_ended = Some(t);
            f.note_exited(8, t);
            f
        };
        let mut f = main_exited();
        f.note_oom(1, t + ms(3000), findings(census));
        let v: Vec<i32> = f.oom_kills[0].victims.iter().map(|v| v.pid).collect();
        assert_eq!(v, [9]);
        // The main child's record gone from the bounded list: its end says it.
        let mut f = main_exited();
        f.exited.clear();
        f.note_oom(1, t + ms(3000), findings(census));
        assert_eq!(f.oom_kills[0].victims[0].pid, 9);
        // An orphan that exited since the census, likewise.
        let mut f = main_exited();
        f.main_pid = 3;
        f.note_oom(1, t + ms(3000), findings(census));
        assert_eq!(f.oom_kills[0].victims[0].pid, 9);
        // A census after that exit saw another process with the pid.
        let mut f = main_exited();
        f.note_oom(1, t + ms(3000), findings(t + ms(500)));
        assert_eq!(f.oom_kills[0].victims[0].pid, 8);
        // Killed (SIGKILL) rather than exited: a victim as before.
        let mut f = main_exited();
        f.exited.clear();
        f.main_end = Some(ChildEnd::Signaled(libc::SIGKILL));
        f.note_oom(1, t + ms(3000), findings(census));
        assert_eq!(f.oom_kills[0].victims[0].pid, 8);
    }

    /// A zombie found dead of SIGKILL fills a rise's slot as a guess; ward
    /// reaping it later proves nothing, and the main process reaped with
    /// SIGKILL near the rise takes the slot. (An unrelated `kill -9`ed
    /// zombie was named the certain victim, and the main's OOM kill was
    /// "excluded".)
    #[test]
    fn a_sigkilled_zombie_guess_gives_way_to_a_reap_near_the_rise() {
        let t = Instant::now();
        let zombie = || RiseFindings {
            gone: vec![OomVictim {
                pid: 6,
                name: Some("sleep".into()),
                certain: false,
                evidence: victims::evidence::SIGKILL_ZOMBIE,
                oom_score: None,
            }],
            survivors: vec![],
            since: None,
            candidates_at: None,
        };
        for zombie_reaped_first in [true, false] {
            let mut f = RunFacts::new("sh".into());
            f.main_pid = 3;
            f.oom_count_base = Some(0);
            f.note_oom(1, t, zombie());
            if zombie_reaped_first {
                f.note_sigkilled(6, t + ms(5));
                assert!(!f.oom_kills[0].victims[0].certain, "a guess stays one");
            }
            f.note_sigkilled(3, t + ms(10));
            if !zombie_reaped_first {
                f.note_sigkilled(6, t + ms(15));
            }
            let v: Vec<(i32, bool)> = f.oom_kills[0]
                .victims
                .iter()
                .map(|v| (v.pid, v.certain))
                .collect();
            assert_eq!(
                v,
                [(3, false)],
                "zombie reaped first: {zombie_reaped_first}"
            );
            f.main_end = Some(crate::exit::ChildEnd::Signaled(libc::SIGKILL));
            f.main_ended = Some(t + ms(10));
            let d = crate::report::verdict::decide(&f);
            assert_eq!(d.cause, crate::report::verdict::Cause::OomKilled, "{d:?}");
        }
    }

    /// A rise whose line named no child of ward's ("not ward's child": the
    /// census was skipped, the group full) takes no later SIGKILL reap: a
    /// shell that `kill -9`s itself 0.46 s after was named the victim,
    /// against the line before (seen in the VM scenario "self-kill after
    /// an OOM"). Before the line, a reap still takes the slot.
    #[test]
    fn a_rise_said_to_be_no_child_of_wards_takes_no_later_reap() {
        let t = Instant::now();
        for said in [true, false] {
            let mut f = RunFacts::new("sh".into());
            f.main_pid = 3;
            f.oom_count_base = Some(0);
            f.note_oom(1, t, RiseFindings::default());
            if said {
                f.note_said_unnamed(1);
            }
            f.note_sigkilled(3, t + ms(460));
            let named: Vec<i32> = f.oom_kills[0].victims.iter().map(|v| v.pid).collect();
            assert_eq!(named, if said { vec![] } else { vec![3] }, "said: {said}");
        }
    }

    /// A main process reaped with SIGKILL near a rise is named as it died:
    /// an entrypoint script that `exec`ed its app is the app by then (the
    /// Docker review saw "most likely killed entry.sh (pid 8)" where the
    /// report's `main.name` said ward-workload).
    #[test]
    fn a_main_reaped_near_a_rise_is_named_as_it_died() {
        let t = Instant::now();
        let mut f = RunFacts::new("entry.sh".into());
        f.main_pid = 8;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, RiseFindings::default());
        f.observed.main_name = Some("ward-workload".into());
        f.note_sigkilled(8, t + ms(5));
        let v: Vec<(i32, Option<&str>)> = f.oom_kills[0]
            .victims
            .iter()
            .map(|v| (v.pid, v.name.as_deref()))
            .collect();
        assert_eq!(v, [(8, Some("ward-workload"))]);
        // Not renamed: the command's name, as before.
        let mut f = RunFacts::new("app".into());
        f.main_pid = 8;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, RiseFindings::default());
        f.note_sigkilled(8, t + ms(5));
        assert_eq!(f.oom_kills[0].victims[0].name.as_deref(), Some("app"));
    }

    /// More processes gone than killed: the largest is a guess, and the
    /// main process reaped with SIGKILL near the rise takes its slot. (A
    /// setup step that exited by itself before the app's `exec` was named,
    /// and the main's OOM kill was "excluded".)
    #[test]
    fn the_largest_gone_guess_gives_way_to_a_reap_near_the_rise() {
        let t = Instant::now();
        for reaped_first in [true, false] {
            let mut f = RunFacts::new("sh".into());
            f.main_pid = 3;
            f.oom_count_base = Some(0);
            if reaped_first {
                f.note_sigkilled(3, t - ms(5));
            }
            // The setup step was larger at the last look than the shell.
            f.note_oom(1, t, gone(&[(4, "setup"), (3, "sh")], &[]));
            if !reaped_first {
                f.note_sigkilled(3, t + ms(5));
            }
            let v: Vec<(i32, &str)> = f.oom_kills[0]
                .victims
                .iter()
                .map(|v| (v.pid, v.evidence))
                .collect();
            assert_eq!(
                v,
                [(3, victims::evidence::REAPED_NEAR)],
                "reaped first: {reaped_first}"
            );
            f.main_end = Some(crate::exit::ChildEnd::Signaled(libc::SIGKILL));
            f.main_ended = Some(t);
            let d = crate::report::verdict::decide(&f);
            assert_eq!(d.cause, crate::report::verdict::Cause::OomKilled, "{d:?}");
        }
    }

    /// A rise a read found 4.5 s after the read before (no OOM
    /// notification) is untimed: the SIGKILL reap at that read may be a
    /// `kill -9` long after the kill, so it takes no guess's place.
    #[test]
    fn an_untimed_rise_keeps_its_guess() {
        let t = Instant::now() + ms(10_000);
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 3;
        f.oom_count_base = Some(0);
        let mut findings = gone(&[(4, "worker"), (3, "sh")], &[]);
        findings.since = Some(t - ms(4_500));
        f.note_oom(1, t, findings);
        f.note_sigkilled(3, t);
        assert_eq!(f.oom_kills[0].span(), Some(ms(4_500)));
        let v: Vec<i32> = f.oom_kills[0].victims.iter().map(|v| v.pid).collect();
        assert_eq!(v, [4]);
        // Timed (a notification, or reads 2 s apart at most): it does.
        let mut findings = gone(&[(4, "worker"), (3, "sh")], &[]);
        findings.since = Some(t - ms(2_000));
        let mut g = RunFacts::new("sh".into());
        g.main_pid = 3;
        g.oom_count_base = Some(0);
        g.note_oom(1, t, findings);
        g.note_sigkilled(3, t);
        assert_eq!(g.oom_kills[0].span(), None);
        assert_eq!(g.oom_kills[0].victims[0].pid, 3);
    }

    /// With -g, ward's SIGKILL to the main child went to its group: a
    /// member reaped with SIGKILL after it may be ward's, not the OOM
    /// killer's, and fills no rise.
    #[test]
    fn a_group_sigkill_from_ward_names_no_member_as_an_oom_victim() {
        let t = Instant::now();
        for group in [false, true] {
            let mut f = RunFacts::new("app".into());
            f.main_pid = 2;
            f.group_signals = group;
            f.oom_count_base = Some(0);
            f.note_oom(1, t, RiseFindings::default());
            f.note_ward_sigkill(WardKill::KillAfter, true, t);
            f.note_sigkilled(5, t + ms(5));
            assert_eq!(f.oom_kills[0].victims.is_empty(), group, "-g: {group}");
        }
    }

    #[test]
    fn census_and_reap_agreeing_with_the_count_is_proof() {
        let t = Instant::now();
        let mut f = RunFacts::new("java".into());
        f.main_pid = 7;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, gone(&[(7, "java")], &[]));
        f.note_sigkilled(7, t + ms(5));
        let v = &f.oom_kills[0].victims[0];
        assert!(v.certain);
        assert_eq!(v.evidence, victims::evidence::PROVEN);
        // Two gone for one kill: the reap cannot prove which.
        let mut g = RunFacts::new("sh".into());
        g.main_pid = 2;
        g.oom_count_base = Some(0);
        g.note_sigkilled(7, t);
        g.note_oom(1, t, gone(&[(7, "a"), (8, "b")], &[]));
        assert!(g.oom_kills[0].victims.iter().all(|v| !v.certain));
    }

    #[test]
    fn a_group_kill_proven_for_each_does_not_say_only() {
        // memory.oom.group on a v2 kernel (tests/vm_scenarios_v2.rs): the
        // shell and its two workers are killed in one rise of 3, all three
        // gone from the census and reaped by ward (the workers once orphaned).
        let t = Instant::now();
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.note_oom(3, t, gone(&[(4, "hog"), (2, "sh"), (3, "sleep")], &[]));
        for pid in [2, 3, 4] {
            f.note_sigkilled(pid, t + ms(5));
        }
        let v = &f.oom_kills[0].victims;
        assert_eq!(v.len(), 3);
        for v in v {
            assert!(v.certain, "{v:?}");
            assert_eq!(v.evidence, victims::evidence::PROVEN_ALL);
            assert!(!v.evidence.contains("only"), "{}", v.evidence);
        }
        // One kill, one gone: still "the only process".
        let mut g = RunFacts::new("java".into());
        g.main_pid = 7;
        g.oom_count_base = Some(0);
        g.note_oom(1, t, gone(&[(7, "java")], &[]));
        g.note_sigkilled(7, t + ms(5));
        assert_eq!(
            g.oom_kills[0].victims[0].evidence,
            victims::evidence::PROVEN
        );
    }

    #[test]
    fn a_process_ward_reaped_with_an_exit_code_is_no_victim() {
        // An OOM cascade on a v2 kernel (tests/vm_scenarios_v2.rs): two of
        // the shell's three workers are killed, the counter's rise of 2 is
        // noticed after the shell exited 4 and was reaped; the census, one
        // look before, had the shell, so three are gone for two kills.
        let t = Instant::now();
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(1);
        f.note_exited(2, t);
        // ward raises its children's oom_score_adj: the small shell scores
        // high, and only the largest few candidates' scores are read.
        let mut found = gone(&[(4, "hog"), (3, "hog"), (2, "sh")], &[]);
        found.gone[1].oom_score = Some(699);
        found.gone[2].oom_score = Some(666);
        f.note_oom(3, t + ms(30), found);
        let pids: Vec<i32> = f.oom_kills[0].victims.iter().map(|v| v.pid).collect();
        assert!(!pids.contains(&2), "{pids:?}");
        assert_eq!(pids.len(), 2);
        // The other order: the rise is noticed while the shell is a zombie
        // (gone for the census), its reap with the exit code comes after.
        let mut g = RunFacts::new("sh".into());
        g.main_pid = 2;
        g.oom_count_base = Some(0);
        g.note_oom(1, t, gone(&[(2, "sh")], &[]));
        g.note_exited(2, t + ms(30));
        assert!(g.oom_kills[0].victims.iter().all(|v| v.pid != 2));
        assert_eq!(g.oom_kills_total, 1, "the kill still counts, unnamed");
        // Long after a rise, an exit says nothing about it.
        let mut h = RunFacts::new("sh".into());
        h.main_pid = 2;
        h.oom_count_base = Some(0);
        h.note_oom(1, t, gone(&[(2, "sh")], &[]));
        h.note_exited(2, t + std::time::Duration::from_secs(30));
        assert_eq!(h.oom_kills[0].victims[0].pid, 2);
    }

    #[test]
    fn a_later_sigkill_never_upgrades_or_replaces_a_guess() {
        // Issue 10 item 2: the worker was the OOM victim; the shell kills
        // itself with SIGKILL 0.5 s later.
        let t = Instant::now();
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, gone(&[(5, "tail")], &[2]));
        f.note_sigkilled(2, t + ms(500));
        assert_eq!(f.oom_kills[0].victims.len(), 1);
        let v = &f.oom_kills[0].victims[0];
        assert_eq!((v.pid, v.certain), (5, false));
        // Unnamed kill, but the shell was seen alive after the rise.
        let mut g = RunFacts::new("sh".into());
        g.main_pid = 2;
        g.oom_count_base = Some(0);
        g.note_oom(1, t, gone(&[], &[2]));
        g.note_sigkilled(2, t + ms(500));
        assert!(g.oom_kills[0].victims.is_empty());
    }

    #[test]
    fn wards_own_sigkill_names_no_oom_victim() {
        let t = Instant::now();
        let mut f = RunFacts::new("app".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.note_oom(1, t, RiseFindings::default());
        f.note_ward_sigkill(WardKill::Forwarded, true, t + ms(1));
        f.note_sigkilled(2, t + ms(3));
        assert!(f.oom_kills[0].victims.is_empty());
        assert_eq!(f.ward_killed_main().unwrap().why, WardKill::Forwarded);
    }

    #[test]
    fn a_cascade_is_one_entry_per_kill_and_a_pid_once() {
        let t = Instant::now();
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.note_oom(2, t, gone(&[(5, "w1")], &[]));
        f.note_sigkilled(6, t + ms(10));
        f.note_sigkilled(6, t + ms(20));
        f.note_oom(3, t + ms(30), RiseFindings::default());
        let all: Vec<i32> = f
            .oom_kills
            .iter()
            .flat_map(|o| o.victims.iter().map(|v| v.pid))
            .collect();
        assert_eq!(all, vec![5, 6]);
        assert_eq!(f.oom_kills_total, 3);
        assert!(
            f.oom_kills
                .iter()
                .all(|o| o.victims.len() as u64 <= o.kills)
        );
    }

    #[test]
    fn lists_keep_the_latest_with_counts_of_all() {
        let mut f = RunFacts::new("x".into());
        for _ in 0..40 {
            f.note_warning("oom_kill");
        }
        f.note_warning("kill_after");
        assert_eq!(f.warnings.len(), MAX_WARNINGS);
        assert_eq!(f.warnings_total, 41);
        assert_eq!(f.warnings.last().unwrap().key, "kill_after");
        assert_eq!(f.warnings.last().unwrap().seq, 41);
        let t = Instant::now();
        for n in 1..=20u64 {
            f.note_oom(n, t, RiseFindings::default());
        }
        assert_eq!(f.oom_kills.len(), MAX_OOM_RISES);
        assert_eq!(f.oom_kills.last().unwrap().seq, 20);
        assert_eq!(f.oom_kills_total, 20);
    }

    #[test]
    fn sigkilled_is_bounded() {
        let mut f = RunFacts::new("x".into());
        let now = Instant::now();
        for pid in 0..40 {
            f.note_sigkilled(pid, now);
        }
        assert_eq!(f.sigkilled.len(), MAX_SIGKILLED);
        assert_eq!(f.sigkilled[0].pid, 40 - MAX_SIGKILLED as i32);
    }
}
