//! The documents of `ward status`: what PID 1 ward serves ([`LiveDoc`], built
//! from the board) and the container's limits and usage ([`ContainerDoc`],
//! from ward's latest sample or read by the client itself). Owns their
//! fields and the schema number; reads nothing and renders no words.
//!
//! These are wire types of their own, not the watch's `Snapshot`: the schema
//! stays put when the watch's internals move, and the client can parse them.

use serde::Serialize;

use crate::cgroup::{CgroupSample, Limits, MemorySample};
use crate::exit::ChildEnd;
use crate::watch::board::{Board, MainEnd, Next};
use crate::watch::snapshot::Snapshot;
use crate::watch::throttle::ThrottleRatio;

/// Version of the documents' layout; raised when a field changes meaning or
/// goes away (new fields do not raise it).
pub const SCHEMA: u32 = 1;

/// A limit and where it comes from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitDoc {
    /// Bytes, cores or tasks.
    pub value: f64,
    /// `own cgroup`, `set on ancestor cgroup ..., shared by every cgroup under
    /// it`, `the host's, no cgroup limit`, ... ([`crate::cgroup::LimitSource::words`]).
    pub source: String,
}

/// The limits in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitsDoc {
    /// Memory, bytes.
    pub memory_bytes: Option<LimitDoc>,
    /// cgroup v2 `memory.high` below the memory limit, bytes: above it the
    /// kernel slows the group's allocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high_bytes: Option<LimitDoc>,
    /// CPU, cores.
    pub cpu_cores: Option<LimitDoc>,
    /// Tasks.
    pub pids: Option<LimitDoc>,
}

/// Memory in bytes; the breakdown is there when the kernel gives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryDoc {
    /// Everything charged, page cache included.
    pub usage_bytes: Option<u64>,
    /// Usage minus inactive file cache: what the limit is judged against.
    pub working_set_bytes: Option<u64>,
    /// Anonymous memory (heaps, stacks).
    pub anon_bytes: Option<u64>,
    /// File cache.
    pub file_bytes: Option<u64>,
    /// Shared memory and tmpfs (no process owns it; it outlives them).
    pub shmem_bytes: Option<u64>,
    /// Inactive file cache (reclaimable first).
    pub inactive_file_bytes: Option<u64>,
    /// The cgroup's high-water mark.
    pub peak_bytes: Option<u64>,
    /// Working set / limit.
    pub ratio: Option<f64>,
}

/// CPU use and throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuDoc {
    /// Throttling over the last 30 s (needs ward's history).
    pub throttled_30s: Option<ThrottleRatio>,
    /// ... over the last minute.
    pub throttled_1m: Option<ThrottleRatio>,
    /// ... over the last 5 minutes.
    pub throttled_5m: Option<ThrottleRatio>,
    /// Throttled periods / periods since the cgroup was created.
    pub throttled_since_start: Option<f64>,
    /// CFS periods since the cgroup was created.
    pub periods: Option<u64>,
    /// CPU time used since the cgroup was created, seconds.
    pub usage_s: Option<f64>,
}

/// Tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsDoc {
    /// `pids.current`.
    pub current: Option<u64>,
    /// current / limit.
    pub ratio: Option<f64>,
    /// Forks refused at the limit (`pids.events max`).
    pub fork_failures: Option<u64>,
}

/// Pressure stall information, percent of wall time over the last 10 s.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PressureDoc {
    /// Some task waited for CPU.
    pub cpu_some_avg10: Option<f64>,
    /// Some task waited for memory.
    pub memory_some_avg10: Option<f64>,
    /// Every task waited for memory at once.
    pub memory_full_avg10: Option<f64>,
    /// Some task waited for I/O.
    pub io_some_avg10: Option<f64>,
}

/// The container's limits and usage at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContainerDoc {
    /// `v1`, `v2`, `hybrid`; `None` without a visible cgroup.
    pub cgroup: Option<String>,
    /// Limits.
    pub limits: LimitsDoc,
    /// Memory.
    pub memory: MemoryDoc,
    /// CPU.
    pub cpu: CpuDoc,
    /// Tasks.
    pub pids: PidsDoc,
    /// PSI (cgroup v2 with pressure files); `None` where the kernel has none.
    pub pressure: Option<PressureDoc>,
}

/// ward itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WardDoc {
    /// ward's version.
    pub version: String,
    /// ward's pid in its namespace.
    pub pid: i32,
    /// True when ward is PID 1 (else a subreaper).
    pub pid1: bool,
    /// The main child's pid.
    pub main_pid: Option<i32>,
    /// Seconds since ward started.
    pub uptime_s: f64,
    /// Seconds since the latest sample; `None` when not watching.
    pub sample_age_s: Option<f64>,
    /// Samples taken.
    pub samples: u64,
    /// Signals forwarded to the child.
    pub signals_forwarded: u64,
    /// Processes reaped other than the main child.
    pub orphans_reaped: u64,
    /// ward's code locked in memory under a memory limit; `false` when
    /// the lock was refused, `None` with no limit to lock against.
    pub code_locked: Option<bool>,
    /// ward's log lines waiting for stderr to take them; `None` when none
    /// wait.
    pub stderr_waiting: Option<StderrDoc>,
}

/// ward's log lines waiting for a stderr nobody reads: whatever else writes
/// there (the application) is blocked in `write` meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StderrDoc {
    /// Bytes waiting.
    pub bytes: u64,
    /// Seconds they have waited.
    pub waiting_s: f64,
    /// Lines dropped since the last that got out (the queue was full, or
    /// the writes failed).
    pub dropped_lines: u64,
    /// The last write failed (a closed pipe, no space), rather than
    /// waiting for a reader.
    pub failed: bool,
    /// stderr is a file: a wait is its filesystem's (frozen, a hung NFS),
    /// not a reader's.
    pub file: bool,
    /// None of ward's lines wait, but stderr took no writes for a quarter
    /// of a second when `ward status` asked: nobody reads it (since when is
    /// not known, and `waiting_s` is 0).
    pub full_now: bool,
}

/// A warning raised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarningDoc {
    /// Event key (`memory_high`).
    pub key: String,
    /// Seconds after ward started.
    pub at_s: f64,
    /// Its words.
    pub msg: String,
}

/// An OOM kill.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OomKillDoc {
    /// Seconds after ward started.
    pub at_s: f64,
    /// The victim's pid, once named.
    pub victim_pid: Option<i32>,
    /// The victim's name, when known.
    pub victim_name: Option<String>,
    /// True when ward reaped the victim killed by SIGKILL right after the
    /// counter rose; false when inferred.
    pub certain: bool,
    /// The memory limit at the time.
    pub limit_bytes: Option<u64>,
}

impl OomKillDoc {
    /// True when the victim is named from timing alone (the kill itself is
    /// counted by the kernel, so it is certain): words about it must say
    /// "most likely", `ward status` and `ward check` alike.
    pub fn victim_guessed(&self) -> bool {
        self.victim_pid.is_some() && !self.certain
    }

    /// How it is said and of whom, for `ward status` and `ward check`
    /// alike: ("most likely killed" or "killed", "java (pid 7)", "pid 7",
    /// or `unnamed`). The name is as ward had it, not escaped.
    pub fn how_and_whom(&self, unnamed: &str) -> (&'static str, String) {
        let whom = match (&self.victim_name, self.victim_pid) {
            (Some(n), Some(p)) => format!("{n} (pid {p})"),
            (None, Some(p)) => format!("pid {p}"),
            _ => unnamed.to_string(),
        };
        let how = if self.victim_guessed() {
            "most likely killed"
        } else {
            "killed"
        };
        (how, whom)
    }
}

/// A stop under way.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StopDoc {
    /// The first stop signal (`SIGTERM`).
    pub signal: String,
    /// Seconds after ward started.
    pub at_s: f64,
}

/// Peaks over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeaksDoc {
    /// Largest working set seen.
    pub memory_bytes: Option<u64>,
    /// Largest `pids.current` seen.
    pub pids: Option<u64>,
    /// Most unreaped zombies at once.
    pub unreaped_zombies: u32,
}

/// What PID 1 ward serves on `GET /status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveDoc {
    /// [`SCHEMA`].
    pub schema: u32,
    /// ward itself.
    pub ward: WardDoc,
    /// Limits and usage at the latest sample (`None` with `--no-watch`).
    pub container: Option<ContainerDoc>,
    /// Warning keys raised and not yet back to ok.
    pub active_warnings: Vec<String>,
    /// The latest warnings, oldest first.
    pub warnings: Vec<WarningDoc>,
    /// Every warning the watch raised so far.
    pub warnings_total: u64,
    /// Warnings of the stop and shutdown so far (`still_running`,
    /// `kill_after`, `shutdown_kill`, `shutdown_stuck`): in the log only,
    /// not in `warnings`.
    pub stop_warnings: u64,
    /// The latest OOM kills, oldest first.
    pub oom_kills: Vec<OomKillDoc>,
    /// Every OOM kill so far.
    pub oom_kills_total: u64,
    /// The stop under way, if any.
    pub stop: Option<StopDoc>,
    /// How the main process ended, once it has ("exited with code 3").
    pub main_ended: Option<WhenDoc>,
    /// What ward does next by itself, and when (a `--stop-delay`,
    /// `--kill-after` or `--grace` deadline).
    pub next: Option<WhenDoc>,
    /// Peaks.
    pub peaks: PeaksDoc,
}

/// Something that happened or will, in words, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WhenDoc {
    /// In words.
    pub what: String,
    /// Seconds after ward started.
    pub at_s: f64,
}

impl LiveDoc {
    /// The document from the board: a copy under its lock (bounded: the
    /// board keeps at most 32 warnings and OOM kills), built outside it.
    pub fn from_board(board: &Board, self_pid: i32) -> LiveDoc {
        use std::sync::atomic::Ordering::Relaxed;
        let posted = board.posted();
        let now = std::time::Instant::now();
        let r = &board.reaper;
        let main_pid = r.main_pid.load(Relaxed);
        let stop_signal = r.stop_signal.load(Relaxed);
        LiveDoc {
            schema: SCHEMA,
            ward: WardDoc {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: self_pid,
                pid1: self_pid == 1,
                main_pid: (main_pid != 0).then_some(main_pid),
                uptime_s: board.since_start(now),
                sample_age_s: posted
                    .sampled_at
                    .map(|t| now.saturating_duration_since(t).as_secs_f64()),
                samples: posted.snapshot.as_ref().map_or(0, |s| s.samples),
                signals_forwarded: r.signals_forwarded.load(Relaxed),
                orphans_reaped: r.orphans_reaped.load(Relaxed),
                code_locked: posted.code_locked,
                stderr_waiting: crate::log::backlog().map(|b| StderrDoc {
                    bytes: b.bytes as u64,
                    waiting_s: now.saturating_duration_since(b.since).as_secs_f64(),
                    dropped_lines: b.dropped,
                    failed: b.failed,
                    file: b.file,
                    full_now: b.full_now,
                }),
            },
            container: posted.snapshot.as_ref().map(container_from_snapshot),
            active_warnings: posted.active.iter().map(|k| k.to_string()).collect(),
            warnings: posted
                .warnings
                .iter()
                .map(|w| WarningDoc {
                    key: w.key.to_string(),
                    at_s: w.at_s,
                    msg: w.msg.clone(),
                })
                .collect(),
            warnings_total: posted.warnings_total,
            stop_warnings: r.stop_warnings.load(Relaxed),
            oom_kills: posted
                .oom_kills
                .iter()
                .map(|k| OomKillDoc {
                    at_s: k.at_s,
                    victim_pid: k.victim.as_ref().map(|v| v.pid),
                    victim_name: k.victim.as_ref().and_then(|v| v.name.clone()),
                    certain: k.victim.as_ref().is_some_and(|v| v.certain),
                    limit_bytes: k.context.limit_bytes,
                })
                .collect(),
            oom_kills_total: posted.oom_kills_total,
            stop: (stop_signal != 0).then(|| StopDoc {
                signal: crate::signame::name(stop_signal),
                at_s: r.stop_at_ms.load(Relaxed) as f64 / 1000.0,
            }),
            main_ended: MainEnd::decode(r.main_end.load(Relaxed)).map(|end| WhenDoc {
                what: match end {
                    ChildEnd::Exited(c) => format!("exited with code {c}"),
                    ChildEnd::Signaled(s) => format!("killed by {}", crate::signame::name(s)),
                },
                at_s: r.main_end_at_ms.load(Relaxed) as f64 / 1000.0,
            }),
            next: Next::from_u32(r.next.load(Relaxed)).map(|n| WhenDoc {
                what: n.words().to_string(),
                at_s: r.next_at_ms.load(Relaxed) as f64 / 1000.0,
            }),
            peaks: PeaksDoc {
                memory_bytes: posted.peaks.memory_peak_seen,
                pids: posted.peaks.pids_peak,
                unreaped_zombies: posted.peaks.unreaped_peak,
            },
        }
    }
}

/// Limits and usage from the watch's snapshot (ward's history included).
pub fn container_from_snapshot(s: &Snapshot) -> ContainerDoc {
    let mut c = container_from_sample(
        s.layout.map(layout_words),
        &s.limits,
        &s.cgroup,
        s.ratios.memory_ratio,
        s.ratios.pids_ratio,
    );
    c.cpu.throttled_30s = s.ratios.throttle_30s;
    c.cpu.throttled_1m = s.ratios.throttle_60s;
    c.cpu.throttled_5m = s.ratios.throttle_300s;
    c
}

/// `v1`, `v2`, `hybrid`.
pub fn layout_words(l: crate::cgroup::Layout) -> String {
    match l {
        crate::cgroup::Layout::V1 => "v1",
        crate::cgroup::Layout::V2 => "v2",
        crate::cgroup::Layout::Hybrid => "hybrid",
    }
    .to_string()
}

/// Limits and usage from one cgroup sample, without history (what the
/// client can read itself when ward does not answer).
pub fn container_from_sample(
    layout: Option<String>,
    limits: &Limits,
    sample: &CgroupSample,
    memory_ratio: Option<f64>,
    pids_ratio: Option<f64>,
) -> ContainerDoc {
    let cpu = &sample.cpu;
    let breakdown = memory_breakdown(&sample.memory);
    let m = &sample.memory;
    ContainerDoc {
        cgroup: layout,
        limits: LimitsDoc {
            memory_bytes: limits.memory.as_ref().map(|l| LimitDoc {
                value: l.bytes as f64,
                source: l.source.words(),
            }),
            memory_high_bytes: limits.memory_high.as_ref().map(|l| LimitDoc {
                value: l.bytes as f64,
                source: l.source.words(),
            }),
            cpu_cores: limits.cpu.as_ref().map(|l| LimitDoc {
                value: l.cores,
                source: l.source.words(),
            }),
            pids: limits.pids.as_ref().map(|l| LimitDoc {
                value: l.max as f64,
                source: l.source.words(),
            }),
        },
        memory: MemoryDoc {
            usage_bytes: m.usage,
            working_set_bytes: m.working_set,
            anon_bytes: breakdown.0,
            file_bytes: breakdown.1,
            shmem_bytes: breakdown.2,
            inactive_file_bytes: m.inactive_file,
            peak_bytes: m.peak,
            ratio: memory_ratio.or_else(|| {
                let ws = m.working_set.or(m.usage)?;
                let limit = limits.memory.as_ref().filter(|l| l.bytes > 0)?;
                Some(ws as f64 / limit.bytes as f64)
            }),
        },
        cpu: CpuDoc {
            throttled_30s: None,
            throttled_1m: None,
            throttled_5m: None,
            throttled_since_start: match (cpu.nr_periods, cpu.nr_throttled) {
                (Some(p), Some(t)) if p > 0 => Some(t as f64 / p as f64),
                _ => None,
            },
            periods: cpu.nr_periods,
            usage_s: cpu.usage_usec.map(|u| u as f64 / 1e6),
        },
        pids: PidsDoc {
            current: sample.pids.current,
            ratio: pids_ratio.or_else(|| {
                let cur = sample.pids.current?;
                let max = sample
                    .pids
                    .max
                    .or(limits.pids.as_ref().map(|p| p.max))
                    .filter(|&m| m > 0)?;
                Some(cur as f64 / max as f64)
            }),
            fork_failures: sample.pids.events_max,
        },
        pressure: sample.psi.map(|p| PressureDoc {
            cpu_some_avg10: p.cpu.and_then(|x| x.some).map(|l| l.avg10),
            memory_some_avg10: p.memory.and_then(|x| x.some).map(|l| l.avg10),
            memory_full_avg10: p.memory.and_then(|x| x.full).map(|l| l.avg10),
            io_some_avg10: p.io.and_then(|x| x.some).map(|l| l.avg10),
        }),
    }
}

/// `(anon, file, shmem)` bytes from a memory sample, when it has them.
pub fn memory_breakdown(m: &MemorySample) -> (Option<u64>, Option<u64>, Option<u64>) {
    (m.anon, m.file, m.shmem)
}

/// The JSON text of a document, for the wire.
pub fn to_json<T: Serialize>(doc: &T) -> String {
    // Serializing plain structs of numbers and strings cannot fail; an empty
    // object keeps the answer well-formed if it ever did.
    serde_json::to_string(doc).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{CpuSample, LimitSource, MemoryLimit, PidsLimit, PidsSample};
    use crate::watch::board::{OomKillPosted, WarningPosted};
    use crate::watch::link::{OomContext, OomVictim};
    use std::sync::atomic::Ordering;

    fn sample() -> (Limits, CgroupSample) {
        let limits = Limits {
            memory: Some(MemoryLimit {
                bytes: 512 << 20,
                source: LimitSource::OwnGroup,
            }),
            memory_high: None,
            cpu: None,
            pids: Some(PidsLimit {
                max: 100,
                source: LimitSource::OwnGroup,
            }),
            swap_room: None,
            unreadable: Vec::new(),
        };
        let s = CgroupSample {
            memory: MemorySample {
                usage: Some(300 << 20),
                working_set: Some(256 << 20),
                ..Default::default()
            },
            cpu: CpuSample {
                usage_usec: Some(2_500_000),
                nr_periods: Some(1000),
                nr_throttled: Some(250),
                throttled_usec: Some(0),
            },
            pids: PidsSample {
                current: Some(25),
                max: None,
                events_max: Some(0),
            },
            psi: None,
            errors: 0,
        };
        (limits, s)
    }

    #[test]
    fn container_from_a_sample_without_history() {
        let (limits, s) = sample();
        let c = container_from_sample(Some("v1".into()), &limits, &s, None, None);
        assert_eq!(c.memory.ratio, Some(0.5));
        assert_eq!(c.pids.ratio, Some(0.25));
        assert_eq!(c.cpu.throttled_since_start, Some(0.25));
        assert_eq!(c.cpu.usage_s, Some(2.5));
        assert_eq!(c.limits.memory_bytes.as_ref().unwrap().source, "own cgroup");
        assert_eq!(c.cpu.throttled_30s, None);
        assert_eq!(c.pressure, None);
    }

    #[test]
    fn live_doc_from_the_board_round_trips() {
        let board = Board::default();
        let (limits, cgroup) = sample();
        board.with_posted(|p| {
            p.snapshot = Some(Snapshot {
                limits,
                cgroup,
                samples: 3,
                ..Default::default()
            });
            p.sampled_at = Some(std::time::Instant::now());
            p.active = vec!["zombies_unreaped"];
            p.push_warning(WarningPosted {
                key: "zombies_unreaped",
                at_s: 5.0,
                msg: "5 zombies under app (pid 10)".into(),
            });
            p.push_oom_kill(
                OomKillPosted {
                    count: 1,
                    at_s: 7.5,
                    victim: Some(OomVictim {
                        pid: 12,
                        name: Some("java".into()),
                        certain: true,
                        evidence: crate::watch::victims::evidence::PROVEN,
                        oom_score: None,
                    }),
                    context: OomContext::default(),
                },
                1,
            );
        });
        board.reaper.main_pid.store(7, Ordering::Relaxed);
        board
            .reaper
            .stop_signal
            .store(libc::SIGTERM, Ordering::Relaxed);
        board.reaper.stop_at_ms.store(9000, Ordering::Relaxed);
        let doc = LiveDoc::from_board(&board, 1);
        assert_eq!(doc.schema, SCHEMA);
        assert!(doc.ward.pid1);
        assert_eq!(doc.ward.main_pid, Some(7));
        assert_eq!(doc.ward.samples, 3);
        assert_eq!(doc.active_warnings, vec!["zombies_unreaped"]);
        assert_eq!(doc.oom_kills[0].victim_name.as_deref(), Some("java"));
        let stop = doc.stop.as_ref().unwrap();
        assert_eq!((stop.signal.as_str(), stop.at_s), ("SIGTERM", 9.0));
        assert_eq!(doc.container.as_ref().unwrap().memory.ratio, Some(0.5));
        let back = LiveDoc::from_json(&to_json(&doc)).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn breakdown_is_none_until_the_sample_has_it() {
        let (_, mut s) = sample();
        assert_eq!(memory_breakdown(&s.memory), (None, None, None));
        s.memory.anon = Some(1);
        s.memory.file = Some(2);
        s.memory.shmem = Some(3);
        assert_eq!(memory_breakdown(&s.memory), (Some(1), Some(2), Some(3)));
    }
}
