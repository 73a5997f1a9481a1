//! The exit report: one JSON object and one human sentence saying why the
//! container ended, built from the facts, the verdict and the last snapshot.
//! Pure: no I/O, so tests build reports from recorded runs.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};

use super::facts::{Forwarded, RunFacts};
use super::verdict::{Cause, OomEvidence, Verdict};
use crate::exit::ChildEnd;
use crate::log::rfc3339;
use crate::signame::name as signal_name;
use crate::units::{Fixed, bytes, cores, pct};
use crate::watch::Snapshot;

/// The report's schema version: bumped when a field changes meaning or
/// goes away (docs/report.md). 2: `schema`, per-kill victims with
/// `evidence`, warnings with `seq` and `warnings_total`.
pub const SCHEMA: u32 = 2;

/// Kubernetes reads at most this much of `/dev/termination-log`.
pub const REPORT_FILE_MAX: usize = 4096;

/// What the report is built from.
pub struct ReportInputs<'a> {
    /// The run's facts.
    pub facts: &'a RunFacts,
    /// The last snapshot, if the watch ran.
    pub snapshot: Option<&'a Snapshot>,
    /// The decision.
    pub verdict: Verdict,
    /// The code before `--remap-exit`.
    pub raw_code: u8,
    /// What ward exits with.
    pub exit_code: u8,
    /// `--kill-after`, for the wording of a stop timeout.
    pub kill_after: Option<Duration>,
    /// The command as the user gave it (argv[0]), for exec failures.
    pub argv0: &'a str,
    /// `--warn-throttle` as a ratio: the report names throttling from there.
    pub throttle_ratio: f64,
    /// When the report is made.
    pub now: Instant,
}

/// The report as JSON and as one human line.
#[derive(Debug, Clone)]
pub struct Report {
    /// The JSON object.
    pub json: Value,
    /// The human sentence(s), one line.
    pub text: String,
}

#[derive(Serialize)]
struct Main<'a> {
    /// `null` when no process was started (the fork itself failed).
    pid: Option<i32>,
    command: &'a str,
    /// Its name as it ended (read at its reap, else at a stop, else the
    /// last census's), when it `exec`ed another program.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    /// The kernel wrote a core dump of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    core_dumped: bool,
    /// Why it could not be run, when it could not (the sentence's words).
    #[serde(skip_serializing_if = "Option::is_none")]
    exec_error: Option<ExecError<'a>>,
}

/// A failed start in the report's JSON: what `exec` (or `fork`) said.
#[derive(Serialize)]
struct ExecError<'a> {
    /// The errno, as a number (`2`) ...
    errno: i32,
    /// ... and as the system says it ("No such file or directory").
    error: String,
    /// ward's words for it ("not found", "fork refused (the pids limit?)").
    what: &'a str,
    /// What is missing when the file is there (its `#!` interpreter or
    /// ELF loader).
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl ExecError<'_> {
    fn of(f: &RunFacts) -> Option<ExecError<'_>> {
        let errno = f.exec_errno?;
        // Rust's words with the errno stripped: "No such file or directory".
        let error = std::io::Error::from_raw_os_error(errno).to_string();
        let error = match error.rfind(" (os error ") {
            Some(at) => error[..at].to_string(),
            None => error,
        };
        Some(ExecError {
            errno,
            error,
            what: f.exec_what.unwrap_or("exec failed"),
            detail: f.exec_detail.as_deref(),
        })
    }
}

/// "; ward had forwarded it SIGSEGV from outside the container 0.2 s
/// before": what ward itself sent, so a `docker kill` reads as one.
fn forwarded_words(f: &RunFacts, w: &Forwarded) -> String {
    use std::fmt::Write as _;
    let mut s = format!("; ward had forwarded it {}", signal_name(w.sent));
    if w.received != w.sent {
        let _ = write!(s, " (rewritten from {})", signal_name(w.received));
    }
    s.push_str(&received_from(f, w.from_pid));
    let end = f.main_ended.unwrap_or(w.at);
    let _ = write!(
        s,
        ", {} s before",
        Fixed(end.saturating_duration_since(w.at).as_secs_f64(), 1)
    );
    s
}

/// ", received from pid 12": where a forwarded signal came from.
fn received_from(f: &RunFacts, from_pid: i32) -> String {
    match from_pid {
        0 if f.pid1 => ", received from outside the container (e.g. docker kill)".into(),
        0 => ", received from outside ward's PID namespace".into(),
        pid => format!(", received from pid {pid}"),
    }
}

/// `signal_forwarded` in the report's JSON.
#[derive(Serialize)]
struct ForwardedJson {
    signal: String,
    received: String,
    from_pid: i32,
    before_end_s: f64,
}

/// Builds the report.
pub fn build(i: &ReportInputs) -> Report {
    let (json, text) = parts(i, true);
    Report {
        json: json.unwrap_or_default(),
        text,
    }
}

/// The report's sentence alone: all a run logging human lines without a
/// report file needs. The JSON object costs several times the sentence to
/// build and drop (callgrind: about 50,000 instructions per report), on the
/// way from the child's exit to ward's.
pub fn text(i: &ReportInputs) -> String {
    parts(i, false).1
}

/// The JSON object (when `with_json`) and the sentence.
fn parts(i: &ReportInputs, with_json: bool) -> (Option<Value>, String) {
    let f = i.facts;
    let snap = i.snapshot;
    let end_at = f.main_ended.unwrap_or(i.now);
    let duration_s = round3(end_at.duration_since(f.started).as_secs_f64());

    // Memory: the kernel's peak where it keeps one, else the largest ward saw.
    let limit = snap.and_then(|s| s.limits.memory.as_ref());
    // A peak against the host's memory says nothing about a container limit.
    let real_limit = limit.filter(|l| !l.source.is_host());
    let peak = run_peak(
        snap.and_then(|s| s.cgroup.memory.peak),
        limit.map(|l| l.bytes),
        &f.observed,
        f.oom_kills_total > 0,
    );
    let peak_ratio = match (peak, real_limit) {
        (Some(p), Some(l)) if l.bytes > 0 => Some(round3(p as f64 / l.bytes as f64)),
        _ => None,
    };
    let at_exit = snap.and_then(|s| s.cgroup.memory.working_set.or(s.cgroup.memory.usage));

    // CPU: throttling over the whole run and the last 60 s.
    let cpu_limit = snap.and_then(|s| s.limits.cpu.as_ref());
    let run_ratio = snap.and_then(|s| {
        let (p0, t0, u0) = f.observed.throttle_first?;
        let (p1, t1) = (s.cgroup.cpu.nr_periods?, s.cgroup.cpu.nr_throttled?);
        let periods = p1.checked_sub(p0).filter(|p| *p > 0)?;
        Some((
            round3(t1.saturating_sub(t0) as f64 / periods as f64),
            s.cgroup
                .cpu
                .throttled_usec
                .map(|u| round3(u.saturating_sub(u0) as f64 / 1e6)),
        ))
    });
    let last60 = snap
        .and_then(|s| s.ratios.throttle_60s)
        .map(|t| round3(t.ratio));

    // PIDs.
    let pids_max = snap.and_then(Snapshot::pids_max);
    let fork_failures = snap
        .and_then(|s| s.cgroup.pids.events_max)
        .map(|now| now.saturating_sub(f.observed.fork_failures_base.unwrap_or(0)));

    let json = with_json.then(|| {
        let stop = f.stop.as_ref().map(|s| {
            json!({
                "signal": signal_name(s.signal),
                "from": s.from,
                "from_pid": s.from_pid,
                "received_at": rfc3339(s.received_wall),
                "forwarded_after_s": s.forwarded.map(|t| round3(t.duration_since(s.received).as_secs_f64())),
                "exited_after_s": f.main_ended.map(|t| round3(t.saturating_duration_since(s.received).as_secs_f64())),
                "killed_by_ward": f.ward_killed_main().is_some(),
                "stopped_by": s.stopped_by.map(signal_name),
            })
        });

        let (code, signal) = match f.main_end {
            Some(ChildEnd::Exited(c)) => (Some(c), None),
            Some(ChildEnd::Signaled(s)) => (None, Some(signal_name(s))),
            None => (None, None),
        };
        let victims = victims_json(f);
        let warnings: Vec<Value> = f
            .warnings
            .iter()
            .map(|w| json!({"seq": w.seq, "event": w.key, "at_s": round3(w.at_s)}))
            .collect();

        json!({
            "schema": SCHEMA,
            "ward_version": env!("CARGO_PKG_VERSION"),
            "exit_code": i.exit_code,
            "cause": i.verdict.cause,
            "oom_evidence": i.verdict.oom,
            "main": Main {
                pid: (f.main_pid > 0).then_some(f.main_pid),
                command: &f.command,
                name: f.main_now(),
                code,
                signal,
                core_dumped: f.main_core_dumped,
                exec_error: ExecError::of(f),
            },
            "started_at": rfc3339(f.started_wall),
            "ended_at": rfc3339(SystemTime::now()),
            "duration_s": duration_s,
            "oom_kills": {
                "count": f.oom_kills_total,
                "rises": f.oom_rises,
                "victims": victims,
                "beside": f.observed.oom_kills_beside.as_ref().map(|(_, n)| n),
            },
            "memory": {
                "limit_bytes": limit.map(|l| l.bytes),
                "limit_source": limit.map(|l| l.source.words()),
                "peak_bytes": peak,
                "peak_ratio": peak_ratio,
                "at_exit_bytes": at_exit,
                "shmem_bytes": snap.and_then(|s| s.cgroup.memory.shmem),
                "anon_bytes": snap.and_then(|s| s.cgroup.memory.anon),
                "file_bytes": snap.and_then(|s| s.cgroup.memory.file),
                "kernel_bytes": snap.and_then(|s| s.cgroup.memory.breakdown()).and_then(|b| b.kernel),
            },
            "cpu": {
                "limit_cores": cpu_limit.map(|c| round3(c.cores)),
                "throttled_ratio": run_ratio.map(|r| r.0),
                "throttled_ratio_60s": last60,
                "throttled_s": run_ratio.and_then(|r| r.1),
            },
            "pids": {
                "max": pids_max,
                "peak": f.observed.pids_peak,
                "fork_failures": fork_failures,
            },
            "zombies": {
                "reaped": f.reaped_orphans,
                "unreaped_peak": f.observed.unreaped_peak,
                "worst_parent": f.observed.worst_parent.as_ref().map(|(pid, name, n)| json!({"pid": pid, "name": name, "zombies": n})),
            },
            "stop": stop,
            "signal_forwarded": f.forward_before_death().map(|w| ForwardedJson {
                signal: signal_name(w.sent),
                received: signal_name(w.received),
                from_pid: w.from_pid,
                before_end_s: round3(end_at.saturating_duration_since(w.at).as_secs_f64()),
            }),
            "ward_sigkills": f.ward_sigkills.len(),
            "warnings": warnings,
            "warnings_total": f.warnings_total,
            "summary": Value::Null,
        })
    });
    let text = sentence(
        i,
        peak,
        real_limit,
        peak_ratio,
        snap.and_then(|s| s.ratios.throttle_60s),
        fork_failures,
        snap.map(Snapshot::refusing_limit_words).unwrap_or_default(),
    );
    let json = json.map(|mut json| {
        json["summary"] = Value::String(text.clone());
        json
    });
    (json, text)
}

fn sentence(
    i: &ReportInputs,
    peak: Option<u64>,
    limit: Option<&crate::cgroup::MemoryLimit>,
    peak_ratio: Option<f64>,
    throttle60: Option<crate::watch::throttle::ThrottleRatio>,
    fork_failures: Option<u64>,
    pids_limit: String,
) -> String {
    let f = i.facts;
    let who = format!("main process {}", f.main_named());
    let code = if i.exit_code == i.raw_code {
        format!("exit {}", i.exit_code)
    } else {
        format!(
            "exit {} ({} remapped by --remap-exit)",
            i.exit_code, i.raw_code
        )
    };
    let memory = match (peak, limit, peak_ratio) {
        (Some(p), Some(l), Some(r)) => {
            // An ancestor's limit counts the cgroups beside ward's too: a
            // peak far under it can still have met it.
            let shared = match &l.source {
                s @ crate::cgroup::LimitSource::Ancestor { .. } => format!("; {}", s.words()),
                _ => String::new(),
            };
            format!(
                "memory peaked at {} of the {} limit ({}{shared})",
                bytes(p),
                bytes(l.bytes),
                pct(r)
            )
        }
        _ => String::new(),
    };
    let stop_words = f
        .stop
        .as_ref()
        .map(|s| format!("{} from {}", signal_name(s.signal), s.from));
    let mut out = match i.verdict.cause {
        Cause::ExecFailed => {
            let err = std::io::Error::from_raw_os_error(f.exec_errno.unwrap_or(0));
            let detail = f
                .exec_detail
                .as_deref()
                .map(|d| format!("; {d}"))
                .unwrap_or_default();
            // Quoted as given, not Rust's `{:?}`: a control byte in it is
            // then escaped by the log's rule (`\x1b`, as everywhere else),
            // not as `\u{1b}`, which JSON carried as that text.
            format!(
                "{code}: cannot run \"{}\": {}: {err}{detail}",
                i.argv0,
                f.exec_what.unwrap_or("exec failed")
            )
        }
        Cause::KilledByWard => match f.forward_before_death().filter(|w| w.received != w.sent) {
            Some(w) => format!(
                "{code}: {who} was killed by ward: {}{}, was forwarded to it as SIGKILL (--rewrite)",
                signal_name(w.received),
                received_from(f, w.from_pid)
            ),
            None => format!(
                "{code}: {who} was killed by ward: a signal was forwarded to it as SIGKILL (--rewrite)"
            ),
        },
        // A death by signal is never `exited` (verdict::decide).
        Cause::Exited => match f.main_end {
            Some(ChildEnd::Exited(c)) => {
                // 129-159 is how a shell passes on a child's death by
                // signal: the process that died was another.
                let shell = if (129..160).contains(&c) {
                    format!(
                        " (a shell's code for a child killed by {})",
                        signal_name(c - 128)
                    )
                } else {
                    String::new()
                };
                format!("{code}: {who} exited with code {c} by itself{shell}")
            }
            _ => format!("{code}: {who} ended"),
        },
        Cause::Stopped => {
            let after = match (f.stop.as_ref(), f.main_ended) {
                // The child_exited line's words for the same span.
                (Some(s), Some(e)) => format!(
                    ", {} after it arrived",
                    crate::units::secs(e.saturating_duration_since(s.received))
                ),
                _ => String::new(),
            };
            let how = match f.main_end {
                Some(ChildEnd::Exited(c)) => format!("exited with code {c}"),
                Some(ChildEnd::Signaled(s)) => format!(
                    "died of {}{}",
                    signal_name(s),
                    super::facts::core_words(f.main_core_dumped)
                ),
                None => "ended".into(),
            };
            // What the stop signal went out as, where --rewrite changed it.
            let as_sent = f
                .stop
                .as_ref()
                .and_then(|s| f.forwarded.iter().find(|w| w.received == s.signal))
                .filter(|w| w.sent != w.received)
                .map(|w| format!(" as {} (--rewrite)", signal_name(w.sent)))
                .unwrap_or_default();
            format!(
                "{code}: {who} stopped on request: {} was forwarded{as_sent} and it {how}{after}",
                stop_words.unwrap_or_else(|| "a stop signal".into())
            )
        }
        Cause::StopTimeout => format!(
            "{code}: {who} did not stop within {} (--kill-after) of {}{}{}; ward killed it with SIGKILL",
            i.kill_after.map(crate::units::secs).unwrap_or_default(),
            stop_words.unwrap_or_else(|| "the stop signal".into()),
            f.stop
                .as_ref()
                .and_then(|s| s.held_for())
                .map(|d| format!(
                    " being forwarded (--stop-delay held it {} first)",
                    crate::units::secs(d)
                ))
                .unwrap_or_default(),
            f.stop
                .as_ref()
                .and_then(|s| s.stopped_by)
                .map(|s| format!(
                    ": it was stopped by {} and could not act on it",
                    signal_name(s)
                ))
                .unwrap_or_default()
        ),
        Cause::OomKilled => match i.verdict.oom {
            Some(OomEvidence::Certain) => {
                format!("{code}: {who} was killed by the kernel OOM killer")
            }
            _ => {
                // Untimed: every rise noticed near the death was found by a
                // read long after the one before.
                let mut span = None;
                for o in f
                    .oom_kills
                    .iter()
                    .filter(|o| f.main_ended.is_some_and(|d| o.near(d)))
                {
                    span = match (span, o.span()) {
                        (Some(Some(a)), Some(b)) => Some(Some(b.max(a))),
                        (None, Some(b)) => Some(Some(b)),
                        _ => Some(None),
                    };
                }
                let span = span.flatten();
                match span {
                    Some(s) => format!(
                        "{code}: {who} was killed by SIGKILL, maybe by the kernel OOM killer: the cgroup's OOM kill count rose in the {} between two reads of it, the second at its death (no OOM notification here to time it closer; another process could have sent it)",
                        crate::units::secs(s)
                    ),
                    None => format!(
                        "{code}: {who} was killed by SIGKILL, most likely by the kernel OOM killer: the cgroup's OOM kill count rose within 2 s of its death (timing, not proof: another process could have sent it)"
                    ),
                }
            }
        },
        Cause::Killed => match (f.main_end, i.verdict.oom) {
            (Some(ChildEnd::Signaled(libc::SIGKILL)), Some(OomEvidence::RuledOut)) => format!(
                "{code}: {who} was killed by SIGKILL that neither ward nor the OOM killer sent (a kill -9 from a process, or the runtime); an OOM kill is ruled out: the cgroup's OOM kill count did not rise"
            ),
            (Some(ChildEnd::Signaled(libc::SIGKILL)), Some(OomEvidence::Beside)) => {
                let (at, n) = f.observed.oom_kills_beside.clone().unwrap_or_default();
                format!(
                    "{code}: {who} was killed by SIGKILL that ward did not send; ward's cgroup counted no OOM kill{}, but {at}, whose memory limit is in force, counted {n} OOM kill{} beside it during the run: if the main process had moved itself to another cgroup under it, the OOM killer may have taken it there",
                    if f.oom_kills_total > 0 {
                        " near its death"
                    } else {
                        ""
                    },
                    if n == 1 { "" } else { "s" }
                )
            }
            (Some(ChildEnd::Signaled(libc::SIGKILL)), Some(OomEvidence::Excluded)) => format!(
                "{code}: {who} was killed by SIGKILL that ward did not send; not by the OOM killer as far as ward can tell: {}",
                if f.oom_kills
                    .iter()
                    .any(|o| o.survivors.contains(&f.main_pid))
                {
                    "it was alive after the OOM kill near its death"
                } else {
                    "the OOM kill near its death took another process"
                }
            ),
            (Some(ChildEnd::Signaled(libc::SIGKILL)), _) => format!(
                "{code}: {who} was killed by SIGKILL; whether by the OOM killer is unknown ({})",
                if f.oom_count_base.is_none() {
                    "ward had no OOM kill count to read: --no-watch, no memory cgroup found, or none in it (cgroup v1 before Linux 4.13)"
                } else {
                    "the cgroup's OOM kill count could not be read after its death"
                }
            ),
            (Some(ChildEnd::Signaled(s)), _) => {
                let sent = f.forward_before_death().map(|w| forwarded_words(f, w));
                format!(
                    "{code}: {who} was killed by {}{}{}",
                    signal_name(s),
                    super::facts::core_words(f.main_core_dumped),
                    sent.unwrap_or_default()
                )
            }
            _ => format!("{code}: {who} was killed"),
        },
    };
    if !memory.is_empty() && i.verdict.cause != Cause::ExecFailed {
        out.push_str("; ");
        out.push_str(&memory);
    }
    if let Some(b) = i
        .snapshot
        .and_then(|s| s.cgroup.memory.breakdown())
        .filter(|_| i.verdict.cause != Cause::ExecFailed)
    {
        out.push_str("; at the end: ");
        out.push_str(&b.words());
    }
    // OOM kills of other processes: Docker marks the container OOMKilled for
    // them too, so the report must say what happened.
    // The main process is not among them: the verdict above says how it
    // ended. A kill put down to it is then one ward could not name, not
    // left out of the sentence (which once read "killed  during the run").
    let victims: Vec<_> = f
        .oom_kills
        .iter()
        .flat_map(|o| o.victims.iter())
        .filter(|v| v.pid != f.main_pid)
        .collect();
    let listed: u64 = f.oom_kills.iter().map(|o| o.kills).sum();
    let unnamed = f
        .oom_kills
        .iter()
        .map(|o| {
            let others = o.victims.iter().filter(|v| v.pid != f.main_pid).count();
            o.kills.saturating_sub(others as u64)
        })
        .sum::<u64>()
        + f.oom_kills_total.saturating_sub(listed);
    // "most likely killed a and b" when every victim is a guess; else each
    // guess is marked: "killed a (pid 5), b (pid 6, most likely) and ...".
    let all_guessed = unnamed == 0 && victims.iter().all(|v| !v.certain);
    let mut others: Vec<String> = victims
        .iter()
        .map(|v| {
            let name = v.name.as_deref().unwrap_or("a process");
            match v.certain || all_guessed {
                true => format!("{name} (pid {})", v.pid),
                false => format!("{name} (pid {}, most likely)", v.pid),
            }
        })
        .collect();
    if unnamed > 0 {
        others.push(if unnamed == 1 {
            "a process ward could not name".into()
        } else {
            format!("{unnamed} processes ward could not name")
        });
    }
    if i.verdict.cause != Cause::OomKilled && f.oom_kills_total > 0 {
        out.push_str(&format!(
            ". The kernel OOM killer {} {} during the run ({} OOM kill{}); Docker reports such a container as OOMKilled",
            if all_guessed { "most likely killed" } else { "killed" },
            crate::units::and_list(&others),
            f.oom_kills_total,
            if f.oom_kills_total == 1 { "" } else { "s" }
        ));
    }
    if let Some(t) = throttle60.filter(|t| t.ratio >= i.throttle_ratio) {
        let lim = i
            .snapshot
            .and_then(|s| s.limits.cpu.as_ref())
            .map(|c| format!(" (limit {})", cores(c.cores)))
            .unwrap_or_default();
        out.push_str(&format!(
            // A run shorter than the window: the seconds it covers. The
            // periods counted are those the group ran in: a short burst in
            // a long idle span is 16 periods, not the whole span.
            ". CPU was throttled in {} of the {} scheduler periods it ran in over the last {}{lim}",
            pct(t.ratio),
            t.periods,
            // `as` turns NaN and negatives into 0.
            crate::units::secs(Duration::from_millis((t.span_s.min(60.0) * 1000.0) as u64))
        ));
    }
    if let Some(n) = fork_failures.filter(|n| *n > 0) {
        out.push_str(&format!(
            ". {n} fork{} refused at the pids limit{}",
            if n == 1 { " was" } else { "s were" },
            pids_limit
        ));
    }
    if f.observed.unreaped_peak > 0
        && let Some((pid, name, n)) = &f.observed.worst_parent
    {
        let parent = name.as_deref().unwrap_or("a process");
        out.push_str(&match f.observed.unreaped_peak {
            1 => format!(
                ". A zombie was left unreaped during the run; {parent} (pid {pid}) never waited for it"
            ),
            peak => format!(
                ". Up to {peak} zombies at once were left unreaped during the run; {parent} (pid {pid}) never waited for {n} of them"
            ),
        });
    }
    out.push('.');
    out
}

/// The memory peak of this run: the kernel's, unless it has not risen above
/// what it was before the child started (a reused cgroup keeps an old
/// peak), then the largest ward saw; never above the limit (see
/// [`crate::cgroup::limits::peak_within`]). An OOM kill in this run
/// reached the limit whatever the old peak: a kernel peak at the limit is
/// this run's too.
fn run_peak(
    kernel: Option<u64>,
    limit: Option<u64>,
    seen: &crate::watch::ObservedPeaks,
    oom_killed: bool,
) -> Option<u64> {
    let within = |p: u64| limit.map_or(Some(p), |l| crate::cgroup::limits::peak_within(p, l));
    if oom_killed && kernel.is_some_and(|p| limit.is_some() && within(p).is_none()) {
        // The kernel's peak is from before the limit was lowered, so it
        // cannot tell this run's; ward's samples, seconds apart, missed
        // what set off the OOM kill. Unknown, rather than a low figure
        // beside the kill.
        return None;
    }
    let from_run = kernel
        .filter(|p| {
            seen.memory_peak_base.is_none_or(|base| *p > base)
                || (oom_killed && limit.is_some() && within(*p) == limit)
        })
        .and_then(within);
    from_run.or(seen.memory_peak_seen)
}

/// One entry per OOM kill, each with its own evidence; a kill ward could
/// not name is an entry with `pid` and `name` null.
fn victims_json(f: &RunFacts) -> Vec<Value> {
    let mut out = Vec::new();
    for o in &f.oom_kills {
        let at_s = round3(o.at.duration_since(f.started).as_secs_f64());
        for v in &o.victims {
            out.push(json!({
                "pid": v.pid, "name": v.name, "certain": v.certain,
                "evidence": v.evidence, "oom_score": v.oom_score,
                "at_s": at_s, "rise": o.seq,
            }));
        }
        // Bounded: a counter can jump by thousands in a fork bomb.
        for _ in 0..o.kills.saturating_sub(o.victims.len() as u64).min(16) {
            out.push(json!({
                "pid": Value::Null, "name": Value::Null, "certain": false,
                "evidence": "unnamed", "at_s": at_s, "rise": o.seq,
            }));
        }
    }
    out
}

/// The report as JSON text of at most `max` bytes: lists are shortened, then
/// the summary sentence, so the most important fields always fit.
pub fn fit(json: &Value, max: usize) -> String {
    // Indexing to assign panics on a value that is not an object: the
    // report always is one, but the exit path must not abort on a change.
    let mut v = match json {
        Value::Object(_) => json.clone(),
        other => json!({ "report": other }),
    };
    let mut text = v.to_string();
    let mut step = 0;
    while text.len() > max {
        match step {
            0 => v["warnings"] = Value::Array(Vec::new()),
            1 => {
                if let Some(victims) = v
                    .get_mut("oom_kills")
                    .and_then(|k| k.get_mut("victims"))
                    .and_then(Value::as_array_mut)
                {
                    victims.truncate(2);
                }
            }
            // A failed exec's detail: whole paths, which the summary also
            // gives (and step 3 shortens there).
            2 => {
                if let Some(e) = v
                    .get_mut("main")
                    .and_then(|m| m.get_mut("exec_error"))
                    .and_then(Value::as_object_mut)
                {
                    e.remove("detail");
                }
            }
            3 => {
                let s = v["summary"].as_str().unwrap_or("").to_string();
                let keep = s.len().saturating_sub(text.len() - max + 16);
                let mut cut = keep.min(s.len());
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                v["summary"] = Value::String(format!("{}...", &s[..cut]));
            }
            4 => {
                for key in ["stop", "zombies", "pids", "cpu", "oom_kills"] {
                    v[key] = Value::Null;
                }
            }
            _ => {
                v = json!({"exit_code": v["exit_code"], "cause": v["cause"]});
                return v.to_string();
            }
        }
        text = v.to_string();
        step += 1;
    }
    text
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{LimitSource, MemoryLimit};
    use crate::report::verdict::decide;

    /// Every test's report, with the check that the sentence alone (what a
    /// human log without a report file gets) is the same sentence.
    fn build(i: &ReportInputs) -> Report {
        let r = super::build(i);
        assert_eq!(text(i), r.text);
        r
    }

    fn inputs<'a>(f: &'a RunFacts, snap: Option<&'a Snapshot>, code: u8) -> ReportInputs<'a> {
        ReportInputs {
            facts: f,
            snapshot: snap,
            verdict: decide(f),
            raw_code: code,
            exit_code: code,
            kill_after: Some(Duration::from_secs(2)),
            argv0: "app",
            throttle_ratio: 0.2,
            now: Instant::now(),
        }
    }

    fn oom_snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.limits.memory = Some(MemoryLimit {
            bytes: 512 << 20,
            source: LimitSource::OwnGroup,
        });
        s.cgroup.memory.peak = Some(536_661_000);
        s
    }

    /// java (pid 7), dead of SIGKILL as the OOM kill count rose.
    fn java_oom_killed() -> RunFacts {
        let mut f = RunFacts::new("java".into());
        f.main_pid = 7;
        f.oom_count_base = Some(0);
        let t = Instant::now();
        f.main_end = Some(ChildEnd::Signaled(9));
        f.main_ended = Some(t);
        let gone = crate::watch::OomVictim {
            pid: 7,
            name: Some("java".into()),
            certain: false,
            evidence: crate::watch::victims::evidence::GONE,
            oom_score: None,
        };
        f.note_oom(
            1,
            t,
            crate::watch::victims::RiseFindings {
                gone: vec![gone],
                survivors: vec![],
                since: None,
                candidates_at: None,
            },
        );
        f.note_sigkilled(7, t);
        f
    }

    #[test]
    fn oom_killed_main_reads_like_the_issue() {
        let f = java_oom_killed();
        let snap = oom_snapshot();
        let r = build(&inputs(&f, Some(&snap), 137));
        assert_eq!(
            r.text,
            "exit 137: main process java (pid 7) was killed by the kernel OOM killer; memory peaked at 511.8 MiB of the 512.0 MiB limit (100.0%)."
        );
        assert_eq!(r.json["cause"], "oom_killed");
        assert_eq!(r.json["exit_code"], 137);
        assert_eq!(r.json["main"]["signal"], "SIGKILL");
        assert_eq!(r.json["oom_kills"]["count"], 1);
        assert_eq!(r.json["memory"]["limit_bytes"], 512u64 << 20);
        assert_eq!(r.json["oom_kills"]["victims"][0]["name"], "java");
    }

    /// A kill put down to a main process that exited by itself (an old
    /// census, no proof) left the sentence without a name: "The kernel OOM
    /// killer most likely killed  during the run (1 OOM kill)".
    #[test]
    fn a_kill_put_down_to_a_main_process_that_exited_is_said_unnamed() {
        let t = Instant::now();
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 8;
        f.oom_count_base = Some(0);
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(t);
        let main = crate::watch::OomVictim {
            pid: 8,
            name: Some("sh".into()),
            certain: false,
            evidence: crate::watch::victims::evidence::GONE,
            oom_score: None,
        };
        let findings = crate::watch::victims::RiseFindings {
            gone: vec![main],
            ..Default::default()
        };
        f.note_oom(1, t + Duration::from_secs(10), findings);
        let r = build(&inputs(&f, None, 0));
        assert!(
            r.text.contains(
                "The kernel OOM killer killed a process ward could not name during the run (1 OOM kill)"
            ),
            "{}",
            r.text
        );
        assert!(!r.text.contains("killed  "), "{}", r.text);
    }

    /// "Within 2 s of its death" only where a rise near the death is
    /// timed; a rise found by a read long after the read before gives its
    /// span instead, and an untimed rise long before the death is no
    /// rise near it at all.
    #[test]
    fn an_untimed_rise_gives_its_span_and_only_near_the_death() {
        let d = Instant::now() + Duration::from_secs(120);
        let rise = |f: &mut RunFacts, count, at: Instant, span_s: Option<u64>| {
            let findings = crate::watch::victims::RiseFindings {
                since: span_s.map(|s| at - Duration::from_secs(s)),
                ..Default::default()
            };
            f.note_oom(count, at, findings);
        };
        let said = |f: &RunFacts| build(&inputs(f, None, 137)).text;
        let sigkilled = || {
            let mut f = RunFacts::new("app".into());
            f.main_pid = 7;
            f.oom_count_base = Some(0);
            f.main_end = Some(ChildEnd::Signaled(libc::SIGKILL));
            f.main_ended = Some(d);
            f
        };
        // Only an untimed rise at the death: its span.
        let mut f = sigkilled();
        rise(&mut f, 1, d, Some(5));
        f.note_sigkilled(7, d);
        assert!(said(&f).contains("maybe by the kernel OOM killer: the cgroup's OOM kill count rose in the 5 s between two reads"), "{}", said(&f));
        // An untimed rise a minute before, and a timed one at the death.
        let mut f = sigkilled();
        rise(&mut f, 1, d - Duration::from_secs(60), Some(30));
        rise(&mut f, 2, d, None);
        f.note_sigkilled(7, d);
        assert!(said(&f).contains("most likely by the kernel OOM killer: the cgroup's OOM kill count rose within 2 s of its death"), "{}", said(&f));
    }

    /// An ancestor's limit (ECS's task limit above its containers) counts
    /// the groups beside ward's: a peak at 41 % of it can have met it.
    #[test]
    fn a_peak_against_an_ancestors_limit_says_the_limit_is_shared() {
        let f = java_oom_killed();
        let mut snap = oom_snapshot();
        snap.cgroup.memory.peak = Some(215 << 20);
        for (path, at) in [
            (None, "an ancestor cgroup"),
            (
                Some("/sys/fs/cgroup/memory/ecs/t1".into()),
                "ancestor cgroup /sys/fs/cgroup/memory/ecs/t1",
            ),
        ] {
            snap.limits.memory.as_mut().unwrap().source = LimitSource::Ancestor { path };
            let r = build(&inputs(&f, Some(&snap), 137));
            assert!(
                r.text.ends_with(&format!(
                    "; memory peaked at 215.0 MiB of the 512.0 MiB limit (42.0%; set on {at}, shared by every cgroup under it)."
                )),
                "{}",
                r.text
            );
        }
    }

    /// `-r USR1:KILL`: the SIGKILL ward sent names the signal it stood
    /// for and where that came from; "a signal was forwarded to it as
    /// SIGKILL" left out which one.
    #[test]
    fn a_kill_by_a_rewritten_forward_names_the_signal_received() {
        let mut f = RunFacts::new("app".into());
        f.main_pid = 3;
        f.pid1 = true;
        let t = Instant::now();
        f.note_forwarded(Forwarded {
            sent: libc::SIGKILL,
            received: libc::SIGUSR1,
            from_pid: 0,
            at: t,
        });
        f.note_ward_sigkill(crate::report::facts::WardKill::Forwarded, true, t);
        f.main_end = Some(ChildEnd::Signaled(libc::SIGKILL));
        f.main_ended = Some(t + Duration::from_millis(1));
        let r = build(&inputs(&f, None, 137));
        assert_eq!(
            r.text,
            "exit 137: main process app (pid 3) was killed by ward: SIGUSR1, received from outside the container (e.g. docker kill), was forwarded to it as SIGKILL (--rewrite)."
        );
    }

    #[test]
    fn a_signal_ward_forwarded_before_the_death_is_named_with_its_sender() {
        let mut f = RunFacts::new("sleep".into());
        f.main_pid = 8;
        f.pid1 = true;
        let t = Instant::now();
        let at = |ms| t + Duration::from_millis(ms);
        let fwd = |sent, received, from_pid, ms| Forwarded {
            sent,
            received,
            from_pid,
            at: at(ms),
        };
        f.note_forwarded(fwd(libc::SIGSEGV, libc::SIGSEGV, 0, 100));
        f.note_forwarded(fwd(libc::SIGUSR1, libc::SIGUSR1, 0, 150));
        f.main_end = Some(ChildEnd::Signaled(libc::SIGSEGV));
        f.main_ended = Some(at(300));
        let r = build(&inputs(&f, None, 139));
        assert_eq!(
            r.text,
            "exit 139: main process sleep (pid 8) was killed by SIGSEGV; ward had forwarded it SIGSEGV, received from outside the container (e.g. docker kill), 0.2 s before."
        );
        assert_eq!(r.json["cause"], "killed");
        assert_eq!(r.json["signal_forwarded"]["signal"], "SIGSEGV");
        assert_eq!(r.json["signal_forwarded"]["from_pid"], 0);
        assert_eq!(r.json["signal_forwarded"]["before_end_s"], 0.2);

        // A later forward of the same kind takes the earlier one's place; a
        // rewrite names what came in; not PID 1, pid 0 is another namespace.
        f.pid1 = false;
        f.note_forwarded(fwd(libc::SIGSEGV, libc::SIGUSR2, 0, 250));
        assert_eq!(f.forwarded.len(), 2);
        let r = build(&inputs(&f, None, 139));
        assert!(
            r.text.ends_with(
                "SIGSEGV; ward had forwarded it SIGSEGV (rewritten from SIGUSR2), received from outside ward's PID namespace, 0.1 s before."
            ),
            "{}",
            r.text
        );

        // A death by a signal ward did not send, or sent only after it
        // ended: nothing is said of forwarding.
        let mut g = f.clone();
        g.main_end = Some(ChildEnd::Signaled(libc::SIGABRT));
        let r = build(&inputs(&g, None, 134));
        assert_eq!(
            r.text,
            "exit 134: main process sleep (pid 8) was killed by SIGABRT."
        );
        assert!(r.json["signal_forwarded"].is_null());
        assert!(r.json["main"].get("core_dumped").is_none());
        // With a core dump, as a shell says it.
        g.main_core_dumped = true;
        let r = build(&inputs(&g, None, 134));
        assert_eq!(
            r.text,
            "exit 134: main process sleep (pid 8) was killed by SIGABRT (core dumped)."
        );
        assert_eq!(r.json["main"]["core_dumped"], true);
        g.main_core_dumped = false;
        g.main_end = Some(ChildEnd::Signaled(libc::SIGSEGV));
        g.main_ended = Some(at(50));
        assert!(
            !build(&inputs(&g, None, 139)).text.contains("forwarded"),
            "sent after the death"
        );
    }

    #[test]
    fn worker_oom_under_a_shell_that_exits_3() {
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        let t = Instant::now();
        f.note_oom(1, t, crate::watch::victims::RiseFindings::default());
        f.main_end = Some(ChildEnd::Exited(3));
        f.main_ended = Some(t);
        let r = build(&inputs(&f, Some(&oom_snapshot()), 3));
        assert_eq!(r.json["cause"], "exited");
        assert!(
            r.text
                .starts_with("exit 3: main process sh (pid 2) exited with code 3 by itself"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains(
                "OOM killer killed a process ward could not name during the run (1 OOM kill)"
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn a_code_over_128_is_said_to_be_a_shells_for_a_child_killed_by_a_signal() {
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.main_end = Some(ChildEnd::Exited(137));
        f.main_ended = Some(Instant::now());
        let r = build(&inputs(&f, None, 137));
        assert!(
            r.text.starts_with(
                "exit 137: main process sh (pid 2) exited with code 137 by itself (a shell's code for a child killed by SIGKILL)"
            ),
            "{}",
            r.text
        );
        f.main_end = Some(ChildEnd::Exited(3));
        let r = build(&inputs(&f, None, 3));
        assert!(!r.text.contains("a shell's code"), "{}", r.text);
    }

    #[test]
    fn sigkill_without_oom_says_ruled_out() {
        let mut f = RunFacts::new("app".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.observed.oom_counted_last = true;
        f.main_end = Some(ChildEnd::Signaled(9));
        f.main_ended = Some(Instant::now());
        let r = build(&inputs(&f, None, 137));
        assert_eq!(r.json["cause"], "killed");
        assert!(r.text.contains("an OOM kill is ruled out"), "{}", r.text);
        // The last read failed: nothing is ruled out.
        f.observed.oom_counted_last = false;
        let r = build(&inputs(&f, None, 137));
        assert_eq!(r.json["cause"], "killed");
        assert!(
            r.text.contains("whether by the OOM killer is unknown (the cgroup's OOM kill count could not be read after its death)"),
            "{}",
            r.text
        );
        // Never read at all (--no-watch): that is the reason given.
        f.oom_count_base = None;
        let r = build(&inputs(&f, None, 137));
        assert!(
            r.text.contains("unknown (ward had no OOM kill count to read: --no-watch, no memory cgroup found, or none in it (cgroup v1 before Linux 4.13))"),
            "{}",
            r.text
        );
    }

    /// A stop signal --rewrite changed is said as what went out; a later,
    /// other rewrite (USR1 as KILL) is not pinned on it.
    #[test]
    fn a_rewritten_stop_is_said_as_what_was_sent() {
        let t = Instant::now();
        let mut f = RunFacts::new("app".into());
        f.main_pid = 2;
        f.main_end = Some(ChildEnd::Signaled(libc::SIGQUIT));
        f.main_ended = Some(t);
        f.stop = Some(crate::report::facts::StopRequest {
            signal: libc::SIGTERM,
            from_pid: 0,
            from: "outside".into(),
            received: t,
            received_wall: SystemTime::now(),
            forwarded: Some(t),
            held: false,
            stopped_by: None,
        });
        let fwd = |received, sent| Forwarded {
            sent,
            received,
            from_pid: 0,
            at: t,
        };
        f.note_forwarded(fwd(libc::SIGTERM, libc::SIGQUIT));
        let r = build(&inputs(&f, None, 131));
        assert!(
            r.text
                .contains("was forwarded as SIGQUIT (--rewrite) and it died of SIGQUIT"),
            "{}",
            r.text
        );
        let mut g = f.clone();
        g.forwarded.clear();
        g.note_forwarded(fwd(libc::SIGTERM, libc::SIGTERM));
        g.note_forwarded(fwd(libc::SIGUSR1, libc::SIGKILL));
        g.main_end = Some(ChildEnd::Signaled(libc::SIGTERM));
        let r = build(&inputs(&g, None, 143));
        assert!(!r.text.contains("(--rewrite)"), "{}", r.text);
        assert!(
            r.text.contains("was forwarded and it died of SIGTERM"),
            "{}",
            r.text
        );
        // Within a millisecond: in µs, as the child_exited line says it.
        let mut h = g.clone();
        h.main_ended = Some(t + Duration::from_micros(290));
        let r = build(&inputs(&h, None, 143));
        assert!(r.text.contains(", 290 us after it arrived"), "{}", r.text);
    }

    /// "Excluded" has two reasons; the sentence gives the one that holds.
    #[test]
    fn an_excluded_oom_kill_says_why() {
        let t = Instant::now();
        let mut f = RunFacts::new("app".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.observed.oom_counted_last = true;
        f.main_end = Some(ChildEnd::Signaled(9));
        f.main_ended = Some(t);
        let other = crate::watch::OomVictim {
            pid: 9,
            name: Some("hog".into()),
            certain: true,
            evidence: crate::watch::victims::evidence::PROVEN,
            oom_score: None,
        };
        let findings = |survivors: Vec<i32>| crate::watch::victims::RiseFindings {
            gone: vec![other.clone()],
            survivors,
            since: None,
            candidates_at: None,
        };
        f.note_oom(1, t, findings(vec![]));
        let r = build(&inputs(&f, None, 137));
        assert!(
            r.text.contains(
                "as far as ward can tell: the OOM kill near its death took another process"
            ),
            "{}",
            r.text
        );
        assert!(!r.text.contains("alive after"), "{}", r.text);
        f.oom_kills.clear();
        f.note_oom(1, t, findings(vec![2]));
        let r = build(&inputs(&f, None, 137));
        assert!(
            r.text.contains(
                "as far as ward can tell: it was alive after the OOM kill near its death"
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn remapped_code_is_explained() {
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Signaled(15));
        f.main_ended = Some(Instant::now());
        let mut i = inputs(&f, None, 0);
        i.raw_code = 143;
        let r = build(&i);
        assert!(
            r.text.starts_with("exit 0 (143 remapped by --remap-exit)"),
            "{}",
            r.text
        );
    }

    #[test]
    fn report_file_fits_4_kib() {
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(Instant::now());
        for _ in 0..32 {
            f.note_warning("zombies_unreaped");
        }
        let mut r = build(&inputs(&f, None, 0));
        r.json["summary"] = Value::String("x".repeat(6000));
        let text = fit(&r.json, REPORT_FILE_MAX);
        assert!(text.len() <= REPORT_FILE_MAX, "{}", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["cause"], "exited");
        let small = fit(&build(&inputs(&f, None, 0)).json, REPORT_FILE_MAX);
        let v: Value = serde_json::from_str(&small).unwrap();
        assert!(v["warnings"].as_array().is_some());
    }

    /// A failed exec's detail names whole paths: a long one gives up the
    /// detail (the sentence keeps it, shortened), not the whole report
    /// (it came down to `exit_code` and `cause`).
    #[test]
    fn a_long_exec_detail_is_dropped_before_the_report() {
        let mut f = RunFacts::new("app.sh".into());
        (f.exec_errno, f.exec_what) = (Some(libc::ENOENT), Some("not found"));
        let long = format!("/{}/app.sh", "d".repeat(3400));
        f.exec_detail = Some(format!(
            "{long} is there, but its #! interpreter /bin/bash is not"
        ));
        let mut i = inputs(&f, None, 127);
        i.argv0 = &long;
        let text = fit(&build(&i).json, REPORT_FILE_MAX);
        assert!(text.len() <= REPORT_FILE_MAX, "{}", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cause"], "exec_failed");
        assert_eq!(v["main"]["exec_error"]["errno"], libc::ENOENT);
        assert!(v["main"]["exec_error"].get("detail").is_none(), "{text}");
        assert!(
            v["summary"]
                .as_str()
                .unwrap()
                .starts_with("exit 127: cannot run"),
            "{text}"
        );
    }

    /// Whatever shape the report takes, shortening it gives JSON within the
    /// bound, never a panic (assigning through `v[..]` panics on a
    /// non-object).
    #[test]
    fn fitting_any_shape_never_panics() {
        let long = "y".repeat(6000);
        for odd in [
            json!([1, 2, long.clone()]),
            json!(long.clone()),
            json!({"oom_kills": [long.clone()], "summary": 5, "warnings": long.clone()}),
            json!({"oom_kills": {"victims": long.clone()}, "summary": long.clone()}),
            json!({"oom_kills": {"victims": [long.clone(), long.clone(), long.clone()]}}),
        ] {
            let text = fit(&odd, REPORT_FILE_MAX);
            assert!(text.len() <= REPORT_FILE_MAX, "{}", text.len());
            serde_json::from_str::<Value>(&text).unwrap();
        }
    }

    #[test]
    fn a_peak_from_before_the_run_is_not_this_runs() {
        // Issue 10 item 5: a reused cgroup's max_usage_in_bytes is 40 MiB
        // before the child starts; this run used 10 MiB.
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(Instant::now());
        f.observed.memory_peak_base = Some(40 << 20);
        f.observed.memory_peak_seen = Some(10 << 20);
        let mut snap = oom_snapshot();
        snap.cgroup.memory.peak = Some(40 << 20);
        let r = build(&inputs(&f, Some(&snap), 0));
        assert_eq!(r.json["memory"]["peak_bytes"], 10u64 << 20);
        // A peak that rose during the run is the kernel's.
        snap.cgroup.memory.peak = Some(50 << 20);
        let r = build(&inputs(&f, Some(&snap), 0));
        assert_eq!(r.json["memory"]["peak_bytes"], 50u64 << 20);
    }

    #[test]
    fn an_oom_kill_under_a_lowered_limit_has_no_peak_rather_than_a_low_one() {
        // The group peaked at 30 MiB in an earlier run; the limit is now
        // 8 MiB and this run was OOM-killed, its samples seeing 460 KiB.
        let mut f = RunFacts::new("app".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        f.main_end = Some(ChildEnd::Signaled(libc::SIGKILL));
        f.main_ended = Some(Instant::now());
        f.observed.memory_peak_base = Some(30 << 20);
        f.observed.memory_peak_seen = Some(460 << 10);
        f.note_oom(
            1,
            Instant::now(),
            crate::watch::victims::RiseFindings::default(),
        );
        let mut snap = oom_snapshot();
        snap.limits.memory.as_mut().unwrap().bytes = 8 << 20;
        snap.cgroup.memory.peak = Some(30 << 20);
        let r = build(&inputs(&f, Some(&snap), 137));
        assert!(r.json["memory"]["peak_bytes"].is_null(), "{}", r.json);
        assert!(!r.text.contains("460.0 KiB"), "{}", r.text);
    }

    #[test]
    fn a_peak_one_charge_past_the_limit_is_reported_at_the_limit() {
        // A group under a parent's 512 MiB limit: the kernel's peak for the
        // group passed the limit by a refused charge.
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Signaled(libc::SIGKILL));
        f.main_ended = Some(Instant::now());
        let mut snap = oom_snapshot();
        snap.cgroup.memory.peak = Some((512 << 20) + 249_856);
        let r = build(&inputs(&f, Some(&snap), 0));
        assert_eq!(r.json["memory"]["peak_bytes"], 512u64 << 20);
        assert_eq!(r.json["memory"]["peak_ratio"], 1.0);
        assert!(r.text.contains("512.0 MiB of the 512.0 MiB"), "{}", r.text);
    }

    #[test]
    fn each_kill_of_a_cascade_is_one_victim_entry() {
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        let t = Instant::now();
        let w = |pid| crate::watch::OomVictim {
            pid,
            name: Some("worker".into()),
            certain: false,
            evidence: crate::watch::victims::evidence::GONE,
            oom_score: Some(900),
        };
        f.note_oom(
            3,
            t,
            crate::watch::victims::RiseFindings {
                gone: vec![w(5), w(6)],
                survivors: vec![2],
                since: None,
                candidates_at: None,
            },
        );
        f.main_end = Some(ChildEnd::Exited(1));
        f.main_ended = Some(t);
        let r = build(&inputs(&f, Some(&oom_snapshot()), 1));
        let v = r.json["oom_kills"]["victims"].as_array().unwrap();
        assert_eq!(v.len(), 3, "{v:?}");
        assert_eq!(
            (v[0]["pid"].as_i64(), v[1]["pid"].as_i64()),
            (Some(5), Some(6))
        );
        assert!(v[2]["pid"].is_null());
        assert!(v.iter().all(|e| e["certain"] == false));
        assert_eq!(r.json["schema"], SCHEMA);
        assert!(
            r.text.contains("killed worker (pid 5, most likely), worker (pid 6, most likely) and a process ward could not name"),
            "{}",
            r.text
        );
    }

    #[test]
    fn throttling_is_said_over_the_seconds_the_window_covers() {
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(Instant::now());
        let mut snap = oom_snapshot();
        let t = |span_s| crate::watch::throttle::ThrottleRatio {
            ratio: 0.75,
            periods: 40,
            usage_cores: 0.1,
            span_s,
        };
        for (span, words) in [(5.5, "over the last 5.5 s"), (60.0, "over the last 60 s")] {
            snap.ratios.throttle_60s = Some(t(span));
            let r = build(&inputs(&f, Some(&snap), 0));
            assert!(
                r.text.contains(&format!(
                    "75.0% of the 40 scheduler periods it ran in {words}"
                )),
                "{}",
                r.text
            );
        }
        // From --warn-throttle on, not from a fixed 20%.
        let mut i = inputs(&f, Some(&snap), 0);
        i.throttle_ratio = 0.8;
        assert!(!build(&i).text.contains("throttled"));
        i.throttle_ratio = 0.75;
        assert!(build(&i).text.contains("CPU was throttled in 75.0%"));
    }

    #[test]
    fn zombies_of_the_run_are_said_as_a_peak_not_as_left_at_the_end() {
        let mut f = RunFacts::new("app".into());
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(Instant::now());
        f.observed.unreaped_peak = 8;
        f.observed.worst_parent = Some((7, Some("sleep".into()), 8));
        let r = build(&inputs(&f, Some(&oom_snapshot()), 0));
        let want = "Up to 8 zombies at once were left unreaped during the run; sleep (pid 7) never waited for 8 of them";
        assert!(r.text.contains(want), "{}", r.text);
        f.observed.unreaped_peak = 1;
        f.observed.worst_parent = Some((7, Some("sleep".into()), 1));
        let r = build(&inputs(&f, Some(&oom_snapshot()), 0));
        let want = "A zombie was left unreaped during the run; sleep (pid 7) never waited for it.";
        assert!(r.text.contains(want), "{}", r.text);
    }

    #[test]
    fn a_victim_without_a_name_is_a_process_not_a_question_mark() {
        let mut f = RunFacts::new("sh".into());
        f.main_pid = 2;
        f.oom_count_base = Some(0);
        let t = Instant::now();
        let v = crate::watch::OomVictim {
            pid: 5,
            name: None,
            certain: false,
            evidence: crate::watch::victims::evidence::REAPED_NEAR,
            oom_score: None,
        };
        let findings = crate::watch::victims::RiseFindings {
            gone: vec![v],
            survivors: vec![2],
            since: None,
            candidates_at: None,
        };
        f.note_oom(1, t, findings);
        f.main_end = Some(ChildEnd::Exited(1));
        f.main_ended = Some(t);
        let r = build(&inputs(&f, Some(&oom_snapshot()), 1));
        assert!(
            r.text
                .contains("OOM killer most likely killed a process (pid 5) during"),
            "{}",
            r.text
        );
        assert!(!r.text.contains('?'), "{}", r.text);
    }

    #[test]
    fn an_exec_failure_is_the_exit_report() {
        let mut f = RunFacts::new("nope".into());
        f.exec_errno = Some(libc::ENOENT);
        f.exec_what = Some("not found");
        let mut i = inputs(&f, None, 127);
        i.argv0 = "/no/such/cmd";
        let r = build(&i);
        assert_eq!(r.json["cause"], "exec_failed");
        assert!(
            r.text
                .starts_with("exit 127: cannot run \"/no/such/cmd\": not found: "),
            "{}",
            r.text
        );
        // The sentence's parts, as JSON.
        assert_eq!(
            r.json["main"]["exec_error"],
            json!({"errno": libc::ENOENT, "error": "No such file or directory", "what": "not found"})
        );
        let mut g = RunFacts::new("app.sh".into());
        (g.exec_errno, g.exec_what) = (Some(libc::ENOENT), Some("not found"));
        g.exec_detail = Some("/app.sh is there, but its #! interpreter /bin/bash is not".into());
        let r = build(&inputs(&g, None, 127));
        assert_eq!(
            r.json["main"]["exec_error"]["detail"],
            "/app.sh is there, but its #! interpreter /bin/bash is not"
        );
        // Nothing of it when the command ran.
        let mut ran = RunFacts::new("ok".into());
        ran.main_pid = 7;
        let r = build(&inputs(&ran, None, 0));
        assert!(r.json["main"].get("exec_error").is_none());
        assert_eq!(r.json["main"]["pid"], 7);
        // A fork that failed started no process: no pid, not pid 0.
        let mut forked = RunFacts::new("app".into());
        (forked.exec_errno, forked.exec_what) =
            (Some(libc::EAGAIN), Some("fork refused (the pids limit?)"));
        let r = build(&inputs(&forked, None, 125));
        assert_eq!(r.json["main"]["pid"], Value::Null);
        assert_eq!(
            r.json["main"]["exec_error"]["what"],
            "fork refused (the pids limit?)"
        );
        // A control byte stays one for the log to escape by its rule
        // (`\x1b` in human lines, `\u001b` in JSON); `{:?}` had made it
        // the text `\u{1b}`, which JSON then carried as such.
        i.argv0 = "/no\x1bsuch";
        let r = build(&i);
        assert!(r.text.contains("cannot run \"/no\x1bsuch\""), "{}", r.text);
        let mut line = String::new();
        crate::log::push_escaped(&mut line, &r.text);
        assert!(line.contains("cannot run \"/no\\x1bsuch\""), "{line}");
    }

    #[test]
    fn memory_held_by_tmpfs_is_named() {
        // Issue 10 item 9: 40 MiB written to a tmpfs in a 64 MiB cgroup.
        let mut f = RunFacts::new("sh".into());
        f.main_end = Some(ChildEnd::Exited(0));
        f.main_ended = Some(Instant::now());
        let mut snap = oom_snapshot();
        // memory.stat's parts, as the sample reads them together.
        snap.cgroup.memory.usage = Some(43 << 20);
        snap.cgroup.memory.anon = Some(2 << 20);
        snap.cgroup.memory.file = Some(41 << 20);
        snap.cgroup.memory.shmem = Some(40 << 20);
        let r = build(&inputs(&f, Some(&snap), 0));
        assert!(
            r.text.contains(
                "at the end: anonymous 2.0 MiB, file cache 41.0 MiB (shmem/tmpfs 40.0 MiB), kernel 0 B; held by tmpfs/shared memory: killing processes does not free it"
            ),
            "{}",
            r.text
        );
        assert_eq!(r.json["memory"]["anon_bytes"], 2 << 20);
        snap.cgroup.memory.shmem = Some(1 << 20);
        assert!(!build(&inputs(&f, Some(&snap), 0)).text.contains("held by"));
    }
}
