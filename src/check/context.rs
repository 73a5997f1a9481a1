//! What PID 1 ward knew when a check failed. Owns only that question; it
//! never changes the verdict or the exit code, only adds words.
//!
//! Seed 002's backend failed its load balancer's health check because the
//! task was CPU-starved, and the check's output could not say so. PID 1 ward
//! watches the cgroup; `ward check` is a short-lived process started by
//! `docker exec` or the kubelet, in the same PID namespace, so it can ask
//! over `ward status`'s socket.
//!
//! When to ask: a timeout uses up the whole budget, so asking after the
//! failure would either find no time left or overrun `--timeout`. So the
//! question is sent before the probe ([`ask`]: a connect and a write on a
//! local socket, microseconds), and its answer, which ward writes while the
//! probe runs, is read only after a failure, with what is left of the budget
//! but a quarter of it at most (none after a timeout: then only what has
//! already arrived is read), so a stopped ward cannot hold the verdict. A
//! healthy probe drops the question unread. No answer (no ward, or a PID 1
//! ward holding its status server back in a container nearly out of memory
//! or tasks) means the cgroup's numbers read now, said so: never a guess.

use std::path::Path;
use std::time::Duration;

use super::probe::Failure;
use crate::status::channel::Pending;
use crate::status::doc::{ContainerDoc, LiveDoc};
use crate::units::{Fixed, bytes, cores};

/// Throttling in at least this share of periods is worth a mention.
const THROTTLED: f64 = 0.10;
/// Memory pressure (PSI some avg10, percent) worth a mention.
const PRESSURE_PCT: f64 = 10.0;
/// A working set at least this share of the limit is worth a mention.
const MEMORY_NEAR: f64 = 0.90;
/// OOM kills and refused forks this recent (seconds) are worth a mention.
const RECENT_OOM_S: f64 = 300.0;
/// Tasks at least this share of the pids limit are worth a mention.
const PIDS_NEAR: f64 = 0.90;

/// The question sent before the probe; `None` when no ward answers in this
/// PID namespace (refused at once) or `budget` is spent.
pub fn ask(budget: Duration) -> Option<Pending> {
    let proc_root = Path::new(crate::procs::DEFAULT_PROC_ROOT);
    Pending::send(proc_root, crate::status::PATH, budget, 0).ok()
}

/// Extra words about the container for a failed probe, from ward's answer
/// read within `left` of the budget; `None` when ward knows nothing more.
/// Without an answer (no ward in this PID namespace, or a PID 1 ward that
/// holds its status server back because the container is nearly out of
/// memory or tasks, which is when a check fails most), the cgroup's limits
/// and usage are read now, as `ward status` reads them, if at least
/// [`READ_NOW_AT_LEAST`] of the budget is left.
pub fn context_line(failure: &Failure, pending: Option<Pending>, left: Duration) -> Option<String> {
    let _ = failure;
    let started = std::time::Instant::now();
    let live = pending
        .and_then(|p| p.answer(left).ok())
        .and_then(|body| LiveDoc::from_json(&body).ok());
    match live {
        Some(live) => words(&live),
        None if left.saturating_sub(started.elapsed()) >= READ_NOW_AT_LEAST => {
            let (c, _) = crate::status::read_container().ok()?;
            read_now_words(&c)
        }
        None => None,
    }
}

/// What is left of the budget for the cgroup read without ward: a few
/// small files, but in a container short of memory reads can wait.
const READ_NOW_AT_LEAST: Duration = Duration::from_millis(100);

/// The words for the container read now, without ward: its numbers of the
/// moment (no history, so no throttling ratio). Pure.
pub fn read_now_words(c: &ContainerDoc) -> Option<String> {
    let mut parts = Vec::new();
    container_words(c, &mut parts);
    (!parts.is_empty()).then(|| format!("{} (read now: no answer from ward)", parts.join("; ")))
}

/// The words for what ward saw, or `None` when nothing stands out. Pure.
pub fn words(live: &LiveDoc) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = &live.container {
        container_words(c, &mut parts);
    }
    live_words(live, &mut parts);
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The container's numbers that stand out: throttling, pressure, memory
/// and tasks near their limits.
fn container_words(c: &ContainerDoc, parts: &mut Vec<String>) {
    // The last 30 s only: a window in which the container ran in no
    // CPU period (idle) has no ratio, and the minute's would be an old
    // burst's ("throttled in 84 %" of a container idle for 45 s).
    if let Some(t) = c.cpu.throttled_30s.filter(|t| t.ratio >= THROTTLED) {
        // "at 0.1 cores": the quota the container is held to (what
        // the operator set and can raise), else what it used.
        let at = c
            .limits
            .cpu_cores
            .as_ref()
            .map_or(t.usage_cores, |l| l.value);
        parts.push(format!(
            "CPU throttled in {} % of periods over the last {} s at {}",
            Fixed(t.ratio * 100.0, 0),
            Fixed(t.span_s, 0),
            cores(at)
        ));
    }
    if let Some(p) = c
        .pressure
        .as_ref()
        .and_then(|p| p.memory_some_avg10)
        .filter(|&p| p >= PRESSURE_PCT)
    {
        parts.push(format!(
            "memory pressure: tasks stalled {} % of the last 10 s",
            Fixed(p, 0)
        ));
    }
    if let (Some(r), Some(ws), Some(limit)) = (
        c.memory.ratio.filter(|&r| r >= MEMORY_NEAR),
        c.memory.working_set_bytes.or(c.memory.usage_bytes),
        &c.limits.memory_bytes,
    ) {
        parts.push(format!(
            "memory at {} % of its limit ({} of {})",
            Fixed(r * 100.0, 0),
            bytes(ws),
            bytes(limit.value as u64)
        ));
    }
    if let (Some(r), Some(cur), Some(limit)) = (
        c.pids.ratio.filter(|&r| r >= PIDS_NEAR),
        c.pids.current,
        &c.limits.pids,
    ) {
        parts.push(format!(
            "tasks at {} % of the pids limit ({cur} of {})",
            Fixed(r * 100.0, 0),
            limit.value as u64
        ));
    }
}

/// What only PID 1 ward knows: recent refused forks and OOM kills, and a
/// stderr nobody reads.
fn live_words(live: &LiveDoc, parts: &mut Vec<String>) {
    if let Some(w) = live
        .warnings
        .iter()
        .rev()
        .find(|w| w.key == "fork_failed" && live.ward.uptime_s - w.at_s <= RECENT_OOM_S)
    {
        let ago = (live.ward.uptime_s - w.at_s).max(0.0);
        parts.push(format!(
            "forks refused at the pids limit {} s ago",
            Fixed(ago, 0)
        ));
    }
    // A stderr nobody reads blocks every write to it: a server that logs
    // each request stops answering, and the probe times out.
    if let Some(e) = live
        .ward
        .stderr_waiting
        .as_ref()
        .filter(|e| !e.failed && (e.full_now || e.waiting_s >= 1.0))
    {
        parts.push(match (e.full_now, e.file) {
            (true, _) => format!(
                "stderr took no writes for {} ms, its reader gone or slow: writes to it block",
                crate::log::FULL_AFTER.as_millis()
            ),
            (false, false) => format!(
                "stderr not read for {} s: writes to it block",
                Fixed(e.waiting_s, 0)
            ),
            (false, true) => format!(
                "the file stderr goes to took no writes for {} s: writes to it block",
                Fixed(e.waiting_s, 0)
            ),
        });
    }
    if let Some(k) = live
        .oom_kills
        .iter()
        .rev()
        .find(|k| live.ward.uptime_s - k.at_s <= RECENT_OOM_S)
    {
        let ago = (live.ward.uptime_s - k.at_s).max(0.0);
        // A victim named from timing alone is said as a guess, as `ward
        // status` says it.
        let (how, victim) = k.how_and_whom("a process");
        parts.push(format!("OOM killer {how} {victim} {} s ago", Fixed(ago, 0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::doc::{
        ContainerDoc, CpuDoc, LimitDoc, LimitsDoc, MemoryDoc, OomKillDoc, PressureDoc, WardDoc,
    };
    use crate::watch::throttle::ThrottleRatio;

    fn throttled(ratio: f64) -> LiveDoc {
        LiveDoc {
            container: Some(ContainerDoc {
                cpu: CpuDoc {
                    throttled_30s: Some(ThrottleRatio {
                        ratio,
                        periods: 300,
                        usage_cores: 0.0998,
                        span_s: 30.0,
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn seed_002_in_words() {
        assert_eq!(
            words(&throttled(0.97)).as_deref(),
            Some("CPU throttled in 97 % of periods over the last 30 s at 0.1 cores")
        );
        // The quota is what the words name, not the (noisy) usage: a
        // container held to 0.1 cores used 0.11 over a short window.
        let mut live = throttled(0.97);
        let c = live.container.as_mut().unwrap();
        c.cpu.throttled_30s.as_mut().unwrap().usage_cores = 0.114;
        c.limits.cpu_cores = Some(LimitDoc {
            value: 0.1,
            source: "own cgroup".into(),
        });
        assert_eq!(
            words(&live).as_deref(),
            Some("CPU throttled in 97 % of periods over the last 30 s at 0.1 cores")
        );
    }

    /// Read now, without ward: tasks and memory near their limits, said
    /// as read now; a quiet container gives no words.
    #[test]
    fn read_now_words_say_the_limits_near_and_that_ward_did_not_answer() {
        use crate::cgroup::{CgroupSample, LimitSource, Limits, MemoryLimit, PidsLimit};
        let limits = Limits {
            pids: Some(PidsLimit {
                max: 12,
                source: LimitSource::OwnGroup,
            }),
            memory: Some(MemoryLimit {
                bytes: 64 << 20,
                source: LimitSource::OwnGroup,
            }),
            ..Limits::default()
        };
        let mut sample = CgroupSample::default();
        sample.pids.current = Some(12);
        sample.memory.usage = Some(62 << 20);
        sample.memory.working_set = Some(61 << 20);
        let c = crate::status::doc::container_from_sample(None, &limits, &sample, None, None);
        assert_eq!(
            read_now_words(&c).as_deref(),
            Some(
                "memory at 95 % of its limit (61.0 MiB of 64.0 MiB); tasks at 100 % of the pids limit (12 of 12) (read now: no answer from ward)"
            )
        );
        sample.pids.current = Some(3);
        sample.memory.working_set = Some(8 << 20);
        let c = crate::status::doc::container_from_sample(None, &limits, &sample, None, None);
        assert_eq!(read_now_words(&c), None);
    }

    #[test]
    fn nothing_to_say_is_none() {
        assert_eq!(words(&throttled(0.02)), None);
        assert_eq!(words(&LiveDoc::default()), None);
    }

    #[test]
    fn an_idle_half_minute_is_not_blamed_on_the_minutes_old_burst() {
        // No CPU period in the last 30 s (idle): no ratio there. Before,
        // the minute's took its place, a startup burst 45 s back.
        let mut live = throttled(0.84);
        let cpu = &mut live.container.as_mut().unwrap().cpu;
        cpu.throttled_1m = cpu.throttled_30s.take();
        assert_eq!(words(&live), None);
    }

    #[test]
    fn memory_and_oom_words() {
        let live = LiveDoc {
            ward: WardDoc {
                uptime_s: 100.0,
                ..Default::default()
            },
            container: Some(ContainerDoc {
                limits: LimitsDoc {
                    memory_bytes: Some(LimitDoc {
                        value: (512u64 << 20) as f64,
                        source: "own cgroup".into(),
                    }),
                    ..Default::default()
                },
                memory: MemoryDoc {
                    working_set_bytes: Some(500 << 20),
                    ratio: Some(500.0 / 512.0),
                    ..Default::default()
                },
                pressure: Some(PressureDoc {
                    memory_some_avg10: Some(23.4),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            oom_kills: vec![OomKillDoc {
                at_s: 88.0,
                victim_pid: Some(7),
                victim_name: Some("java".into()),
                certain: true,
                limit_bytes: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            words(&live).as_deref(),
            Some(
                "memory pressure: tasks stalled 23 % of the last 10 s; \
                 memory at 98 % of its limit (500.0 MiB of 512.0 MiB); \
                 OOM killer killed java (pid 7) 12 s ago"
            )
        );
    }

    #[test]
    fn a_guessed_oom_victim_is_said_as_a_guess() {
        let kill = |victim_pid: Option<i32>, certain: bool| LiveDoc {
            ward: WardDoc {
                uptime_s: 100.0,
                ..Default::default()
            },
            oom_kills: vec![OomKillDoc {
                at_s: 88.0,
                victim_pid,
                victim_name: victim_pid.map(|_| "java".into()),
                certain,
                limit_bytes: None,
            }],
            ..Default::default()
        };
        assert_eq!(
            words(&kill(Some(7), false)).as_deref(),
            Some("OOM killer most likely killed java (pid 7) 12 s ago")
        );
        assert_eq!(
            words(&kill(Some(7), true)).as_deref(),
            Some("OOM killer killed java (pid 7) 12 s ago")
        );
        // No victim named: the kill itself is the kernel's count, certain.
        assert_eq!(
            words(&kill(None, false)).as_deref(),
            Some("OOM killer killed a process 12 s ago")
        );
    }

    /// What makes a server stop answering that is not CPU or memory: a
    /// stderr nobody reads (each request's log line blocks), and the pids
    /// limit (no thread for the next connection).
    #[test]
    fn a_blocked_stderr_and_the_pids_limit_are_said() {
        use crate::status::doc::{PidsDoc, StderrDoc, WarningDoc};
        let mut live = LiveDoc {
            ward: WardDoc {
                uptime_s: 100.0,
                stderr_waiting: Some(StderrDoc {
                    bytes: 64 << 10,
                    waiting_s: 42.4,
                    ..Default::default()
                }),
                ..Default::default()
            },
            container: Some(ContainerDoc {
                pids: PidsDoc {
                    current: Some(38),
                    ratio: Some(0.95),
                    fork_failures: Some(3),
                },
                limits: LimitsDoc {
                    pids: Some(LimitDoc {
                        value: 40.0,
                        source: "own cgroup".into(),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            warnings: vec![WarningDoc {
                key: "fork_failed".into(),
                at_s: 97.0,
                msg: String::new(),
            }],
            ..Default::default()
        };
        assert_eq!(
            words(&live).as_deref(),
            Some(
                "tasks at 95 % of the pids limit (38 of 40); forks refused at the pids limit 3 s ago; stderr not read for 42 s: writes to it block"
            )
        );
        let e = live.ward.stderr_waiting.as_mut().unwrap();
        e.full_now = true;
        e.waiting_s = 0.0;
        live.container = None;
        live.ward.uptime_s = 400.0; // the refused forks 303 s ago: old news
        assert_eq!(
            words(&live).as_deref(),
            Some("stderr took no writes for 250 ms, its reader gone or slow: writes to it block")
        );
        // Failed writes block nobody; a moment's wait is a busy pipe.
        let e = live.ward.stderr_waiting.as_mut().unwrap();
        e.full_now = false;
        e.waiting_s = 0.3;
        assert_eq!(words(&live), None);
    }
}
