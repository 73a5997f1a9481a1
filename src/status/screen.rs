//! The words of `ward status`: renders a [`StatusDoc`] as text for a person.
//! Pure: a struct in, a `String` out; reads nothing, decides nothing.

use std::fmt::Write as _;

use super::doc::{ContainerDoc, LiveDoc, OomKillDoc};
use super::tree::{Tree, ZombieGroup};
use super::{ContainerSource, StatusDoc};
use crate::units::{Fixed, bytes, cores, pct};

/// At most this many processes are listed; `--json` lists all.
pub const MAX_ROWS: usize = 200;

/// The whole screen.
pub fn render(doc: &StatusDoc) -> String {
    let mut out = String::with_capacity(4096);
    match &doc.live {
        Some(live) => {
            ward_line(&mut out, live);
            if doc.ward_in_another_cgroup {
                let _ = writeln!(
                    out,
                    "NOTE: this ward (pid {}) runs in another cgroup than this ward status. Where \
                     containers share a PID namespace (a pod's shareProcessNamespace, docker run \
                     --pid container:NAME), it is another container's ward, and the limits and \
                     history below are that container's.",
                    live.ward.pid
                );
            }
        }
        None => {
            // ward near a limit holds its server back (watch::STATUS_HEADROOM):
            // say so, since that is when status is wanted most.
            let why = outside(doc.history_unavailable.as_deref().unwrap_or("no answer"));
            let held_back = format!(
                "ward holds its status server back while fewer than {} tasks or {} of \
                 memory are left under the container's limits",
                crate::watch::STATUS_HEADROOM,
                bytes(crate::watch::MEMORY_HEADROOM)
            );
            let _ = write!(out, "No ward answered ({why}): ");
            let _ = match pid1_program(doc) {
                Some("ward") => match (pid1_stopped(doc), room_left(doc)) {
                    // What the process list and the limits read now show
                    // is said as a fact; only without either, the guess.
                    (true, _) => write!(
                        out,
                        "PID 1 is ward, and it is stopped (state T: SIGSTOP, or a debugger). \
                         It reaps nothing and forwards no signal until it gets SIGCONT \
                         (kill -CONT 1)."
                    ),
                    // ward holds its server back only until it first
                    // starts it: tight room is a likely reason, not a sure one.
                    (false, Some(room)) => write!(
                        out,
                        "PID 1 is ward, with {room}: either {held_back} (until it first starts \
                         it), or it is too busy to answer."
                    ),
                    (false, None) => write!(
                        out,
                        "PID 1 is ward, and either {held_back}, or it is stopped or too busy to answer."
                    ),
                },
                Some(other) => write!(
                    out,
                    "PID 1 is {}, not ward. If it is another init (tini, dumb-init, \
                     docker-init), it reaps orphans but nothing reports why the container died; \
                     if not, nothing reaps them either. Run ward as PID 1 (ENTRYPOINT \
                     [\"/ward\", \"--\"]).",
                    outside(other)
                ),
                None => write!(out, "PID 1 is not ward, or {held_back}."),
            };
            let _ = writeln!(
                out,
                " History is unavailable (warnings, OOM kills, throttling over time); limits, \
                 usage and processes are read directly."
            );
        }
    }
    out.push('\n');
    match &doc.container {
        // Said from where the section came from, not from whether ward
        // answered: a ward run with --no-watch answers with no sample.
        Some(c) => container(
            &mut out,
            c,
            doc.container_source.unwrap_or(ContainerSource::ReadNow),
        ),
        None => out.push_str("Limits and usage: no cgroup could be read.\n"),
    }
    out.push('\n');
    match &doc.tree {
        Some(t) => tree(&mut out, t),
        None => out.push_str("Processes: /proc could not be read.\n"),
    }
    if let Some(live) = &doc.live {
        out.push('\n');
        // Zombies the list above shows unreaped now: ward's own count,
        // which needs two looks, may not have them yet.
        let unreaped_now = doc.tree.as_ref().map_or(0, |t| u64::from(t.unreaped()));
        history(&mut out, live, unreaped_now);
    }
    for e in &doc.errors {
        let _ = writeln!(out, "note: {}", outside(e));
    }
    out
}

/// True when the process list shows PID 1 stopped (`T`, or `t` under a
/// debugger).
fn pid1_stopped(doc: &StatusDoc) -> bool {
    doc.tree
        .as_ref()
        .and_then(|t| t.processes.iter().find(|r| r.pid == 1))
        .is_some_and(|r| r.state == "T" || r.state == "t")
}

/// What is left under the limits read now, when it is below what ward
/// needs to serve `ward status` (its `STATUS_HEADROOM` tasks, its
/// `MEMORY_HEADROOM` bytes): then ward holds its server back, and this says
/// so as a fact. `None` when neither is that tight, or unknown.
fn room_left(doc: &StatusDoc) -> Option<String> {
    let c = doc.container.as_ref()?;
    let tasks = c
        .limits
        .pids
        .as_ref()
        .zip(c.pids.current)
        .map(|(l, cur)| (l.value as u64).saturating_sub(cur))
        .filter(|&left| left < crate::watch::STATUS_HEADROOM)
        .map(|left| {
            format!(
                "{left} task{} left under the pids limit",
                if left == 1 { "" } else { "s" }
            )
        });
    let memory = c
        .limits
        .memory_bytes
        .as_ref()
        .zip(c.memory.working_set_bytes.or(c.memory.usage_bytes))
        .map(|(l, used)| (l.value as u64).saturating_sub(used))
        .filter(|&left| left < crate::watch::MEMORY_HEADROOM)
        .map(|left| format!("{} of memory left under its limit", bytes(left)));
    let parts: Vec<String> = tasks.into_iter().chain(memory).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The program PID 1 runs, from the process list: the kernel's name where
/// the row shows one (`[entrypoint.sh] /bin/sh /entrypoint.sh`), else its
/// command's first word without the directory. `None` when /proc showed
/// no PID 1.
fn pid1_program(doc: &StatusDoc) -> Option<&str> {
    let row = doc.tree.as_ref()?.processes.iter().find(|r| r.pid == 1)?;
    let name = match row.command.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?,
        None => {
            let first = row.command.split_whitespace().next()?;
            first.rsplit('/').next().unwrap_or(first)
        }
    };
    (!name.is_empty()).then_some(name)
}

fn ward_line(out: &mut String, live: &LiveDoc) {
    let w = &live.ward;
    let role = if w.pid1 {
        "PID 1".to_string()
    } else {
        format!("pid {}, a subreaper (not PID 1)", w.pid)
    };
    let _ = write!(
        out,
        "ward {}, {role}, up {}",
        outside(&w.version),
        secs_words(w.uptime_s)
    );
    if let Some(m) = w.main_pid {
        let _ = write!(out, "; main process pid {m}");
    }
    match w.sample_age_s {
        Some(a) => {
            let _ = write!(out, "; last sample {} s ago", Fixed(a, 1));
        }
        None => out.push_str("; not watching (--no-watch)"),
    }
    let _ = write!(
        out,
        "; {} signal{} forwarded, {} orphan{} reaped",
        w.signals_forwarded,
        if w.signals_forwarded == 1 { "" } else { "s" },
        w.orphans_reaped,
        if w.orphans_reaped == 1 { "" } else { "s" },
    );
    out.push_str(match w.code_locked {
        Some(true) => "; code locked in memory\n",
        Some(false) => {
            "\nCODE NOT LOCKED in memory under this memory limit: a second OOM kill \
             may follow one that frees nothing (see the code_not_locked line)\n"
        }
        None => "\n",
    });
    // A moment's wait is a busy pipe; a second or more, nobody reading.
    if let Some(e) = w
        .stderr_waiting
        .as_ref()
        .filter(|e| e.waiting_s >= 1.0 || e.dropped_lines > 0 || e.full_now)
    {
        if e.full_now {
            let _ = writeln!(
                out,
                "STDERR FULL: the container's stderr took no writes for {} ms when asked: \
                 its reader is gone or slow (a blocked log driver, a full pipe); whatever \
                 writes there, the application too, waits in write()",
                crate::log::FULL_AFTER.as_millis()
            );
        } else if e.failed {
            let _ = writeln!(
                out,
                "STDERR FAILS: writes to the container's stderr fail (closed, or no space); \
                 {} line{} of ward's log lost",
                e.dropped_lines,
                if e.dropped_lines == 1 { "" } else { "s" }
            );
        } else {
            let _ = writeln!(
                out,
                "STDERR STALLED: {} of ward's log waiting for {}{}: {}; whatever else writes \
                 there, the application too, is blocked in write()",
                bytes(e.bytes),
                secs_words(e.waiting_s),
                if e.dropped_lines > 0 {
                    format!(
                        ", {} line{} dropped",
                        e.dropped_lines,
                        if e.dropped_lines == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                },
                if e.file {
                    "the file the container's stderr goes to takes no writes (a frozen or \
                     hung filesystem)"
                } else {
                    "nothing reads the container's stderr (a blocked log driver, a full pipe)"
                }
            );
        }
    }
    if let Some(s) = &live.stop {
        let _ = writeln!(
            out,
            "STOPPING: {} received at +{}, {} ago",
            outside(&s.signal),
            secs_words(s.at_s),
            secs_words((w.uptime_s - s.at_s).max(0.0))
        );
    }
    if let Some(e) = &live.main_ended {
        let _ = writeln!(
            out,
            "MAIN PROCESS ENDED: {} at +{}, {} ago; ward waits for what is left",
            outside(&e.what),
            secs_words(e.at_s),
            secs_words((w.uptime_s - e.at_s).max(0.0))
        );
    }
    if let Some(n) = &live.next {
        let _ = writeln!(
            out,
            "NEXT: {} at +{}, in {}",
            outside(&n.what),
            secs_words(n.at_s),
            secs_words((n.at_s - w.uptime_s).max(0.0))
        );
    }
    // The trouble of the moment, at the top: the lists below hold it too,
    // under the limits and the processes.
    if let Some(k) = live
        .oom_kills
        .last()
        .filter(|k| w.uptime_s - k.at_s <= RECENT_S)
    {
        let _ = writeln!(
            out,
            "OOM KILL noticed {} ago: {} ({} since ward started; see OOM kills below)",
            secs_words((w.uptime_s - k.at_s).max(0.0)),
            oom_kill_words(k),
            live.oom_kills_total
        );
    }
    if !live.active_warnings.is_empty() {
        let _ = writeln!(
            out,
            "RAISED NOW: {} (see Warnings below)",
            outside(&live.active_warnings.join(", "))
        );
    }
}

/// An OOM kill this recent (seconds) is said at the top.
const RECENT_S: f64 = 300.0;

/// "the kernel OOM killer most likely killed java (pid 7) at the 64.0 MiB
/// limit".
fn oom_kill_words(k: &OomKillDoc) -> String {
    let (how, whom) = k.how_and_whom("a process ward could not name");
    let victim = outside(&whom);
    let limit = k
        .limit_bytes
        .map(|l| format!(" at the {} limit", bytes(l)))
        .unwrap_or_default();
    format!("the kernel OOM killer {how} {victim}{limit}")
}

fn container(out: &mut String, c: &ContainerDoc, source: ContainerSource) {
    let from = match source {
        ContainerSource::Ward => "ward's latest sample",
        ContainerSource::ReadNow => "read now",
    };
    let cg = outside(c.cgroup.as_deref().unwrap_or("none"));
    let _ = writeln!(out, "Limits and usage (cgroup {cg}, {from})");

    // Memory: the working set against the limit, then what it is made of.
    let m = &c.memory;
    let used = m.working_set_bytes.or(m.usage_bytes);
    // Without memory.stat the working set is unknown: usage stands in, said.
    let what = if m.working_set_bytes.is_some() {
        "working set"
    } else {
        "usage"
    };
    let _ = write!(out, "  memory    ");
    match (used, &c.limits.memory_bytes) {
        (Some(u), Some(l)) => {
            let _ = write!(
                out,
                "{} of {} ({}) {what}; limit: {}",
                bytes(u),
                bytes(l.value as u64),
                m.ratio.map_or("?".into(), pct),
                outside(&l.source)
            );
        }
        (Some(u), None) => {
            let _ = write!(out, "{} {what}; limit unknown", bytes(u));
        }
        (None, Some(l)) => {
            let _ = write!(
                out,
                "usage unknown; limit {} ({})",
                bytes(l.value as u64),
                outside(&l.source)
            );
        }
        (None, None) => out.push_str("unknown"),
    }
    if let Some(h) = &c.limits.memory_high_bytes {
        let _ = write!(
            out,
            "; throttled above {} (memory.high, {})",
            bytes(h.value as u64),
            outside(&h.source)
        );
    }
    out.push('\n');
    let mut parts = Vec::new();
    for (label, v) in [
        ("anon", m.anon_bytes),
        ("file cache", m.file_bytes),
        ("shmem/tmpfs", m.shmem_bytes),
        ("inactive file", m.inactive_file_bytes),
        ("usage", m.usage_bytes),
        ("peak", m.peak_bytes),
    ] {
        if let Some(v) = v {
            parts.push(format!("{label} {}", bytes(v)));
        }
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "            {}", parts.join(", "));
    }

    // CPU: the quota, then how often it bit.
    let cpu = &c.cpu;
    let _ = write!(out, "  cpu       ");
    match &c.limits.cpu_cores {
        Some(l) => {
            let _ = write!(out, "limit {} ({})", cores(l.value), outside(&l.source));
        }
        None => out.push_str("limit unknown"),
    }
    if let Some(t) = cpu.throttled_30s.or(cpu.throttled_1m) {
        let _ = write!(
            out,
            "; using {} over the last {} s",
            cores(t.usage_cores),
            Fixed(t.span_s, 0)
        );
    }
    out.push('\n');
    // A window ward has not watched for yet covers the seconds it has: "over
    // the last 7 s", once, not "1 min" and "5 min" of the same 7 s.
    let mut throttle = Vec::new();
    let mut shown_span = None;
    for (label, full, t) in [
        ("1 min", 60.0, cpu.throttled_1m),
        ("5 min", 300.0, cpu.throttled_5m),
    ] {
        let Some(t) = t else { continue };
        if shown_span == Some(t.span_s) {
            continue;
        }
        shown_span = Some(t.span_s);
        let slack = crate::watch::throttle::span_slack(std::time::Duration::from_secs_f64(full));
        let over = if t.span_s >= full - slack.as_secs_f64() {
            label.to_string()
        } else {
            format!("{} s", Fixed(t.span_s, 0))
        };
        throttle.push(format!("{} over the last {over}", pct(t.ratio)));
    }
    if let Some(r) = cpu.throttled_since_start {
        throttle.push(format!("{} since the cgroup started", pct(r)));
    }
    if !throttle.is_empty() {
        let _ = writeln!(
            out,
            "            CPU periods throttled: {}",
            throttle.join(", ")
        );
    }

    // Tasks.
    let p = &c.pids;
    let _ = write!(out, "  pids      ");
    match (p.current, &c.limits.pids) {
        (Some(n), Some(l)) => {
            let _ = write!(
                out,
                "{n} of {} ({}); limit: {}",
                l.value as u64,
                p.ratio.map_or("?".into(), pct),
                outside(&l.source)
            );
        }
        (Some(n), None) => {
            let _ = write!(out, "{n}; limit unknown");
        }
        (None, Some(l)) => {
            let _ = write!(
                out,
                "count unknown; limit {} ({})",
                l.value as u64,
                outside(&l.source)
            );
        }
        (None, None) => out.push_str("unknown"),
    }
    if let Some(f) = p.fork_failures.filter(|&f| f > 0) {
        let _ = write!(out, "; {f} forks refused at the limit");
    }
    out.push('\n');

    match &c.pressure {
        Some(ps) => {
            let mut parts = Vec::new();
            for (label, v) in [
                ("cpu", ps.cpu_some_avg10),
                ("memory", ps.memory_some_avg10),
                ("memory (all tasks)", ps.memory_full_avg10),
                ("io", ps.io_some_avg10),
            ] {
                if let Some(v) = v {
                    parts.push(format!("{label} {}%", Fixed(v, 1)));
                }
            }
            // Pressure files that are there but read nothing: a kernel
            // booted with psi=0 keeps them and refuses their reads.
            if parts.is_empty() {
                out.push_str(PSI_NONE);
            } else {
                let _ = writeln!(
                    out,
                    "  pressure  {} of the last 10 s stalled",
                    parts.join(", ")
                );
            }
        }
        None => out.push_str(PSI_NONE),
    }
}

const PSI_NONE: &str = "  pressure  not available (cgroup v1, or no PSI in this kernel)\n";

fn tree(out: &mut String, t: &Tree) {
    let zombies: u32 = t.zombies.iter().map(|g| g.count).sum();
    // "live", not "running": the count is every process not yet exited,
    // sleeping ones included; the S column says which are running (R).
    let _ = writeln!(
        out,
        "Processes ({} live, {zombies} zombie{})",
        t.processes.len(),
        if zombies == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "  {:>7} {:>7} S {:>7} {:>10} {:>8}  COMMAND",
        "PID", "PPID", "AGE", "RSS", "CPU"
    );
    for row in t.processes.iter().take(MAX_ROWS) {
        let indent = "  ".repeat(row.depth as usize);
        let _ = writeln!(
            out,
            "  {:>7} {:>7} {} {:>7} {:>10} {:>8}  {indent}{}",
            row.pid,
            row.ppid,
            row.state,
            age_words(row.age_s),
            bytes(row.rss_bytes),
            format!("{}s", Fixed(row.cpu_s, 1)),
            outside(&row.command)
        );
        for g in t.zombies.iter().filter(|g| g.parent_pid == row.pid) {
            let _ = writeln!(
                out,
                "  {:>7} {:>7} Z {:>7} {:>10} {:>8}  {indent}  {} zombie{} [{}]{}",
                "",
                row.pid,
                age_words(g.oldest_age_s),
                "",
                "",
                g.count,
                if g.count == 1 { "" } else { "s" },
                outside(&g.names.join(", ")),
                zombie_words(g)
            );
        }
    }
    if t.processes.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "  ... {} more processes (ward status --json lists all)",
            t.processes.len() - MAX_ROWS
        );
    }
    // Zombies whose parent is not listed (outside the namespace, or cut off).
    let listed = |pid: i32| t.processes.iter().take(MAX_ROWS).any(|r| r.pid == pid);
    for g in t.zombies.iter().filter(|g| !listed(g.parent_pid)) {
        let _ = writeln!(
            out,
            "  {} zombie(s) [{}] of pid {} (not listed)",
            g.count,
            outside(&g.names.join(", ")),
            g.parent_pid
        );
    }
    for g in t.zombies.iter().filter(|g| !g.reapable && g.seen_twice > 0) {
        let raw_name = g.parent_name.as_deref().unwrap_or("?");
        // Those a second look still found: the rest were reaped.
        let n = g.seen_twice;
        if g.parent_pid == 1 && raw_name == "ward" {
            // ward itself, not answering (the screen's first line says so).
            let _ = writeln!(
                out,
                "  hint: ward (PID 1) has not yet reaped {} exited child{} (oldest started {} \
                 ago): it reaps them when it runs again; if they stay, it is stopped or stuck.",
                n,
                if n == 1 { "" } else { "ren" },
                age_words(g.oldest_age_s),
            );
            continue;
        }
        let name = outside(raw_name);
        if g.parent_pid == 1 {
            // The parent is the init itself: no init is left to reap them.
            let _ = writeln!(
                out,
                "  hint: {name} is PID 1 and holds {} exited child{} it never waited for (oldest \
                 started {} ago); orphans come to it too, and stay. Run ward as PID 1 \
                 (ENTRYPOINT [\"/ward\", \"--\"]).",
                n,
                if n == 1 { "" } else { "ren" },
                age_words(g.oldest_age_s),
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  hint: {name} (pid {}) holds {} exited child{} it never waited for (oldest started {} ago). \
             No init can reap a zombie whose parent lives: fix {name} to wait() for its children, \
             or restart it.",
            g.parent_pid,
            n,
            if n == 1 { "" } else { "ren" },
            age_words(g.oldest_age_s),
        );
    }
}

/// What a group of zombies waits for: ward, their parent, or nobody.
fn zombie_words(g: &ZombieGroup) -> String {
    let later = super::tree::SECOND_LOOK.as_millis();
    match (g.reapable, g.seen_twice) {
        (true, _) => " (ward reaps these)".into(),
        (false, n) if n == g.count => " NOT REAPED by their parent".into(),
        (false, 0) => format!(" (gone {later} ms later: their parent reaps them)"),
        (false, n) => {
            format!(" ({n} still NOT REAPED by their parent {later} ms later; the rest it reaped)")
        }
    }
}

fn history(out: &mut String, live: &LiveDoc, unreaped_now: u64) {
    let _ = writeln!(
        out,
        "Warnings: {} raised{}{}",
        live.warnings_total + live.stop_warnings,
        match live.stop_warnings {
            0 => String::new(),
            n => format!(
                " ({n} of them by the stop and shutdown: still_running, kill_after or \
                 shutdown_kill lines, in ward's log only)"
            ),
        },
        if live.active_warnings.is_empty() {
            String::new()
        } else {
            format!(
                ", active now: {}",
                outside(&live.active_warnings.join(", "))
            )
        }
    );
    if live.warnings_total > live.warnings.len() as u64 {
        let _ = writeln!(out, "  (the latest {} shown)", live.warnings.len());
    }
    for w in &live.warnings {
        let _ = writeln!(
            out,
            "  +{:<8} {}: {}",
            secs_words(w.at_s),
            outside(&w.key),
            outside(&w.msg)
        );
    }
    // When ward noticed each: without an OOM notification (Docker's
    // read-only v1 cgroupfs) that is the next sample, up to a watch
    // interval after the kill.
    let _ = writeln!(
        out,
        "OOM kills: {}{}",
        live.oom_kills_total,
        if live.oom_kills.is_empty() {
            ""
        } else {
            " (at when ward noticed each)"
        }
    );
    for k in &live.oom_kills {
        let _ = writeln!(out, "  +{:<8} {}", secs_words(k.at_s), oom_kill_words(k));
    }
    if let Some(peak) = live.peaks.memory_bytes {
        // What ward's samples saw, not the kernel's peak on the memory line
        // above: a spike between two samples (the one an OOM kill ends)
        // shows there only. The working set, or the usage where it is
        // unknown, as on that line: "memory" is true of both.
        let _ = write!(out, "Peaks in ward's samples: memory {}", bytes(peak));
        if let Some(p) = live.peaks.pids {
            let _ = write!(out, ", pids {p}");
        }
        let _ = write!(out, ", unreaped zombies {}", live.peaks.unreaped_zombies);
        if unreaped_now > u64::from(live.peaks.unreaped_zombies) {
            let _ = write!(
                out,
                " (ward counts a zombie once two of its looks in a row see it; the {unreaped_now} \
                 NOT REAPED above are this moment's)"
            );
        }
        out.push('\n');
    }
}

/// Text `ward status` did not write itself (a process name, what ward
/// served, an error), with control characters escaped by the rule of ward's
/// log: any process can write ESC sequences to its `/proc/self/comm`, and
/// printed raw they would clear or rewrite the terminal of whoever runs
/// `docker exec ... ward status`, or add lines that seem to be ward's. A
/// row's command (its `[name]` and its command line) is escaped whole, here.
fn outside(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    crate::log::push_escaped(&mut out, text);
    out
}

/// `45s`, `12m03s`, `3h04m`, `2d05h`.
pub fn age_words(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `2.5s`, `12m03s`.
fn secs_words(s: f64) -> String {
    if s < 60.0 {
        format!("{}s", Fixed(s, 1))
    } else {
        age_words(s as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::doc::*;
    use super::super::tree::{ProcRow, ZombieGroup};
    use super::*;
    use crate::watch::throttle::ThrottleRatio;

    fn row(pid: i32, ppid: i32, depth: u32, command: &str) -> ProcRow {
        ProcRow {
            pid,
            ppid,
            state: "S".into(),
            age_s: 125,
            rss_bytes: 3 << 20,
            cpu_s: 1.25,
            command: command.into(),
            depth,
        }
    }

    fn sample_doc() -> StatusDoc {
        let ratio = |r: f64, span_s: f64| ThrottleRatio {
            ratio: r,
            periods: 300,
            usage_cores: 0.1,
            span_s,
        };
        let container = ContainerDoc {
            cgroup: Some("v1".into()),
            limits: LimitsDoc {
                memory_bytes: Some(LimitDoc {
                    value: (64u64 << 20) as f64,
                    source: "own cgroup".into(),
                }),
                memory_high_bytes: None,
                cpu_cores: Some(LimitDoc {
                    value: 0.1,
                    source: "own cgroup".into(),
                }),
                pids: Some(LimitDoc {
                    value: 50.0,
                    source: "own cgroup".into(),
                }),
            },
            memory: MemoryDoc {
                usage_bytes: Some(40 << 20),
                working_set_bytes: Some(32 << 20),
                anon_bytes: Some(30 << 20),
                ratio: Some(0.5),
                ..Default::default()
            },
            cpu: CpuDoc {
                throttled_30s: Some(ratio(0.97, 30.0)),
                throttled_1m: Some(ratio(0.95, 60.0)),
                throttled_5m: Some(ratio(0.5, 300.0)),
                throttled_since_start: Some(0.4),
                periods: Some(1000),
                usage_s: Some(12.0),
            },
            pids: PidsDoc {
                current: Some(9),
                ratio: Some(0.18),
                fork_failures: Some(0),
            },
            pressure: None,
        };
        let tree = Tree {
            processes: vec![
                row(1, 0, 0, "/ward -- /app"),
                row(7, 1, 1, "/app"),
                row(9, 7, 2, "worker"),
            ],
            zombies: vec![ZombieGroup {
                parent_pid: 9,
                parent_name: Some("worker".into()),
                count: 5,
                names: vec!["sh".into()],
                oldest_age_s: 61,
                reapable: false,
                seen_twice: 5,
                ids: Vec::new(),
            }],
        };
        StatusDoc {
            schema: SCHEMA,
            source: "ward".into(),
            history_unavailable: None,
            live: Some(LiveDoc {
                schema: SCHEMA,
                ward: WardDoc {
                    version: "0.1.0".into(),
                    pid: 1,
                    pid1: true,
                    main_pid: Some(7),
                    uptime_s: 3725.0,
                    sample_age_s: Some(1.25),
                    samples: 700,
                    signals_forwarded: 0,
                    orphans_reaped: 3,
                    code_locked: None,
                    stderr_waiting: None,
                },
                container: None,
                active_warnings: vec!["zombies_unreaped".into()],
                warnings: vec![WarningDoc {
                    key: "zombies_unreaped".into(),
                    at_s: 12.5,
                    msg: "5 zombies wait under worker (pid 9)".into(),
                }],
                warnings_total: 1,
                stop_warnings: 0,
                oom_kills: vec![OomKillDoc {
                    at_s: 100.0,
                    victim_pid: Some(12),
                    victim_name: Some("java".into()),
                    certain: true,
                    limit_bytes: Some(64 << 20),
                }],
                oom_kills_total: 1,
                stop: None,
                main_ended: None,
                next: None,
                peaks: PeaksDoc::default(),
            }),
            container: Some(container),
            container_source: Some(ContainerSource::Ward),
            tree: Some(tree),
            errors: vec![],
            ward_in_another_cgroup: false,
        }
    }

    #[test]
    fn a_young_ward_says_its_age_to_the_tenth_like_its_sample() {
        let mut doc = sample_doc();
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.uptime_s = 1.94;
        w.sample_age_s = Some(1.8);
        let text = render(&doc);
        assert!(
            text.contains("up 1.9s; main process pid 7; last sample 1.8 s ago"),
            "{text}"
        );
    }

    #[test]
    fn a_memory_high_below_the_limit_is_on_the_memory_line() {
        let mut doc = sample_doc();
        doc.container.as_mut().unwrap().limits.memory_high_bytes = Some(LimitDoc {
            value: (48u64 << 20) as f64,
            source: "own cgroup".into(),
        });
        let text = render(&doc);
        assert!(
            text.contains(
                "of 64.0 MiB (50.0%) working set; limit: own cgroup; throttled above 48.0 MiB (memory.high, own cgroup)\n"
            ),
            "{text}"
        );
    }

    /// A kernel booted with psi=0 keeps the pressure files and refuses
    /// their reads: nothing read is "not available", not an empty list.
    #[test]
    fn pressure_files_that_read_nothing_are_not_available() {
        let mut doc = sample_doc();
        doc.container.as_mut().unwrap().pressure = Some(Default::default());
        let text = render(&doc);
        assert!(
            text.contains("  pressure  not available (cgroup v1, or no PSI in this kernel)\n"),
            "{text}"
        );
        assert!(!text.contains("of the last 10 s stalled"), "{text}");
    }

    #[test]
    fn the_screen_with_ward_answering() {
        let mut doc = sample_doc();
        let peaks = &mut doc.live.as_mut().unwrap().peaks;
        peaks.memory_bytes = Some(30 << 20);
        peaks.pids = Some(9);
        let text = render(&doc);
        for want in [
            "ward 0.1.0, PID 1, up 1h02m; main process pid 7; last sample 1.3 s ago",
            "memory    32.0 MiB of 64.0 MiB (50.0%) working set; limit: own cgroup",
            "anon 30.0 MiB, usage 40.0 MiB",
            "limit 0.1 cores (own cgroup); using 0.1 cores over the last 30 s",
            "CPU periods throttled: 95.0% over the last 1 min, 50.0% over the last 5 min, 40.0% since the cgroup started\n",
            "pids      9 of 50 (18.0%); limit: own cgroup",
            "pressure  not available",
            "Processes (3 live, 5 zombies)",
            "      9       7 S   2m05s    3.0 MiB     1.3s      worker",
            "5 zombies [sh] NOT REAPED by their parent",
            "hint: worker (pid 9) holds 5 exited children it never waited for",
            "Warnings: 1 raised, active now: zombies_unreaped",
            "+12.5s    zombies_unreaped: 5 zombies wait under worker (pid 9)",
            "+1m40s    the kernel OOM killer killed java (pid 12) at the 64.0 MiB limit",
            "Peaks in ward's samples: memory 30.0 MiB, pids 9, unreaped zombies 0 (ward counts a zombie once two of its looks in a row see it; the 5 NOT REAPED above are this moment's)\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(!text.contains("History is unavailable"));
        // Once ward has counted them, the peak says so with no aside.
        doc.live.as_mut().unwrap().peaks.unreaped_zombies = 5;
        let text = render(&doc);
        assert!(text.contains("pids 9, unreaped zombies 5\n"), "{text}");
    }

    #[test]
    fn limits_read_by_the_client_are_not_credited_to_ward() {
        // ward answered (--no-watch: no sample), the client read the cgroup.
        let mut doc = sample_doc();
        doc.container_source = Some(ContainerSource::ReadNow);
        let text = render(&doc);
        assert!(text.starts_with("ward 0.1.0, PID 1,"), "{text}");
        assert!(
            text.contains("Limits and usage (cgroup v1, read now)\n"),
            "{text}"
        );
        assert!(!text.contains("latest sample"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&to_json(&doc)).unwrap();
        assert_eq!(json["source"], "ward");
        assert_eq!(json["container_source"], "read_now");
        doc.container_source = Some(ContainerSource::Ward);
        assert!(render(&doc).contains("(cgroup v1, ward's latest sample)\n"));
        let json: serde_json::Value = serde_json::from_str(&to_json(&doc)).unwrap();
        assert_eq!(json["container_source"], "ward");
    }

    #[test]
    fn sleeping_processes_are_not_counted_as_running() {
        // Three processes, all asleep (S): three live, none running.
        let doc = sample_doc();
        let rows = &doc.tree.as_ref().unwrap().processes;
        assert!(rows.iter().all(|r| r.state == "S"));
        let text = render(&doc);
        assert!(text.contains("\nProcesses (3 live, 5 zombies)\n"), "{text}");
        assert!(!text.contains("running"), "{text}");
    }

    #[test]
    fn throttling_windows_not_yet_filled_say_the_seconds_they_cover() {
        let mut doc = sample_doc();
        let cpu = &mut doc.container.as_mut().unwrap().cpu;
        for t in [&mut cpu.throttled_1m, &mut cpu.throttled_5m] {
            let t = t.as_mut().unwrap();
            t.ratio = 1.0;
            t.span_s = 7.2;
        }
        let text = render(&doc);
        assert!(
            text.contains("CPU periods throttled: 100.0% over the last 7 s, 40.0% since"),
            "{text}"
        );
        let cpu = &mut doc.container.as_mut().unwrap().cpu;
        cpu.throttled_5m.as_mut().unwrap().span_s = 120.0;
        let text = render(&doc);
        assert!(
            text.contains("100.0% over the last 7 s, 100.0% over the last 120 s,"),
            "{text}"
        );
        // Past 65 s ward keeps a reading every 10 s: a full 5 minutes
        // starts up to 10 s late, and is still the 5 minutes.
        let cpu = &mut doc.container.as_mut().unwrap().cpu;
        cpu.throttled_5m.as_mut().unwrap().span_s = 290.4;
        let text = render(&doc);
        assert!(text.contains("100.0% over the last 5 min,"), "{text}");
        let cpu = &mut doc.container.as_mut().unwrap().cpu;
        cpu.throttled_5m.as_mut().unwrap().span_s = 289.0;
        let text = render(&doc);
        assert!(text.contains("100.0% over the last 289 s,"), "{text}");
        // The minute is kept to the second.
        let cpu = &mut doc.container.as_mut().unwrap().cpu;
        cpu.throttled_1m.as_mut().unwrap().span_s = 59.0;
        let text = render(&doc);
        assert!(text.contains("100.0% over the last 59 s,"), "{text}");
    }

    #[test]
    fn the_screen_without_ward() {
        let mut doc = sample_doc();
        doc.live = None;
        doc.history_unavailable = Some("no ward answers on @ward-status-1".into());
        doc.container.as_mut().unwrap().cpu.throttled_30s = None;
        doc.container.as_mut().unwrap().cpu.throttled_1m = None;
        doc.container.as_mut().unwrap().cpu.throttled_5m = None;
        doc.container_source = Some(ContainerSource::ReadNow);
        let text = render(&doc);
        assert!(text.starts_with("No ward answered (no ward answers on @ward-status-1): PID 1 is ward, and either ward holds its status server back while fewer than 8 tasks or 4.0 MiB of memory are left under the container's limits, or it is stopped or too busy to answer. History"), "{text}");
        assert!(text.contains("History is unavailable"));
        assert!(text.contains("Limits and usage (cgroup v1, read now)"));
        assert!(text.contains("CPU periods throttled: 40.0% since the cgroup started"));
        assert!(text.contains("5 zombies [sh] NOT REAPED"));
        assert!(!text.contains("Warnings:"));
    }

    /// The stop's warnings (the reaping thread's) count in the total and
    /// are said to be in the log: "0 raised" during a stop that logged
    /// still_running lines read as nothing wrong.
    #[test]
    fn the_stops_warnings_count_in_the_total() {
        let mut doc = sample_doc();
        doc.live.as_mut().unwrap().stop_warnings = 5;
        let text = render(&doc);
        assert!(
            text.contains("Warnings: 6 raised (5 of them by the stop and shutdown: still_running, kill_after or shutdown_kill lines, in ward's log only), active now: zombies_unreaped"),
            "{text}"
        );
    }

    /// A zombie its parent reaps a moment later is not said to be left
    /// unreaped, nor is its parent told to be fixed.
    #[test]
    fn zombies_gone_at_the_second_look_are_not_called_unreaped() {
        let mut doc = sample_doc();
        doc.tree.as_mut().unwrap().zombies[0].seen_twice = 0;
        let text = render(&doc);
        assert!(
            text.contains("5 zombies [sh] (gone 200 ms later: their parent reaps them)"),
            "{text}"
        );
        assert!(!text.contains("NOT REAPED"), "{text}");
        assert!(!text.contains("hint: worker"), "{text}");
        doc.tree.as_mut().unwrap().zombies[0].seen_twice = 2;
        let text = render(&doc);
        assert!(
            text.contains(
                "5 zombies [sh] (2 still NOT REAPED by their parent 200 ms later; the rest it reaped)"
            ),
            "{text}"
        );
        assert!(
            text.contains("hint: worker (pid 9) holds 2 exited children"),
            "{text}"
        );
    }

    /// When ward does not answer, what the process list and the limits
    /// read now show is said as the reason, not offered as one of two.
    #[test]
    fn a_silent_ward_that_is_stopped_or_held_back_is_said_to_be() {
        let mut doc = sample_doc();
        doc.live = None;
        doc.history_unavailable = Some("ward did not answer within 1 s".into());
        doc.tree.as_mut().unwrap().processes[0].state = "T".into();
        let text = render(&doc);
        assert!(
            text.starts_with("No ward answered (ward did not answer within 1 s): PID 1 is ward, and it is stopped (state T: SIGSTOP, or a debugger). It reaps nothing and forwards no signal until it gets SIGCONT (kill -CONT 1). History"),
            "{text}"
        );
        doc.tree.as_mut().unwrap().processes[0].state = "S".into();
        let c = doc.container.as_mut().unwrap();
        c.limits.pids = Some(LimitDoc {
            value: 40.0,
            source: "own cgroup".into(),
        });
        c.pids.current = Some(38);
        let text = render(&doc);
        assert!(
            text.contains("PID 1 is ward, with 2 tasks left under the pids limit: either ward holds its status server back while fewer than 8 tasks or 4.0 MiB of memory are left under the container's limits (until it first starts it), or it is too busy to answer. History"),
            "{text}"
        );
    }

    #[test]
    fn without_ward_the_screen_says_what_pid_1_is() {
        let mut doc = sample_doc();
        doc.live = None;
        doc.history_unavailable = Some("no ward answers on @ward-status-1".into());
        let tree = doc.tree.as_mut().unwrap();
        tree.processes[0].command = "sleep 100000".into();
        tree.zombies[0].parent_pid = 1;
        tree.zombies[0].parent_name = Some("sleep".into());
        let text = render(&doc);
        assert!(
            text.starts_with("No ward answered (no ward answers on @ward-status-1): PID 1 is sleep, not ward. If it is another init (tini, dumb-init, docker-init), it reaps orphans but nothing reports why the container died; if not, nothing reaps them either. Run ward as PID 1 (ENTRYPOINT [\"/ward\", \"--\"]). History is unavailable"),
            "{text}"
        );
        assert!(
            text.contains("hint: sleep is PID 1 and holds 5 exited children it never waited for (oldest started 1m01s ago); orphans come to it too, and stay. Run ward as PID 1"),
            "{text}"
        );
        assert!(!text.contains("fix sleep to wait()"), "{text}");
        // A PID 1 whose name is not its program's: the kernel's name.
        doc.tree.as_mut().unwrap().processes[0].command =
            "[entrypoint.sh] /bin/sh /entrypoint.sh".into();
        let text = render(&doc);
        assert!(text.contains("PID 1 is entrypoint.sh, not ward."), "{text}");
        // PID 1 is ward, not answering: its children wait for it to run.
        let tree = doc.tree.as_mut().unwrap();
        tree.processes[0].command = "/ward -- app".into();
        tree.zombies[0].parent_name = Some("ward".into());
        tree.zombies[0].count = 1;
        tree.zombies[0].seen_twice = 1;
        let text = render(&doc);
        assert!(
            text.contains("hint: ward (PID 1) has not yet reaped 1 exited child (oldest started 1m01s ago): it reaps them when it runs again; if they stay, it is stopped or stuck."),
            "{text}"
        );
        assert!(!text.contains("Run ward as PID 1"), "{text}");
        assert!(text.contains(" live, 1 zombie)\n"), "{text}");
        // No PID 1 in /proc's list: both possibilities.
        doc.tree.as_mut().unwrap().processes.remove(0);
        let text = render(&doc);
        assert!(
            text.contains("): PID 1 is not ward, or ward holds its status server back"),
            "{text}"
        );
    }

    #[test]
    fn oom_kills_read_as_sentences_named_guessed_or_not_named() {
        let mut doc = sample_doc();
        let live = doc.live.as_mut().unwrap();
        let mut guessed = live.oom_kills[0].clone();
        guessed.certain = false;
        let mut unnamed = guessed.clone();
        (unnamed.victim_pid, unnamed.victim_name) = (None, None);
        unnamed.limit_bytes = None;
        live.oom_kills = vec![guessed, unnamed];
        let text = render(&doc);
        for want in [
            "+1m40s    the kernel OOM killer most likely killed java (pid 12) at the 64.0 MiB limit\n",
            "+1m40s    the kernel OOM killer killed a process ward could not name\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn a_stalled_stderr_is_said_under_the_ward_line() {
        let mut doc = sample_doc();
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.stderr_waiting = Some(StderrDoc {
            bytes: 3 << 10,
            waiting_s: 0.2,
            dropped_lines: 0,
            failed: false,
            file: false,
            full_now: false,
        });
        assert!(!render(&doc).contains("STDERR"), "a moment's wait");
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.stderr_waiting = Some(StderrDoc {
            bytes: 64 << 10,
            waiting_s: 42.0,
            dropped_lines: 57,
            failed: false,
            file: false,
            full_now: false,
        });
        let text = render(&doc);
        assert!(
            text.contains("\nSTDERR STALLED: 64.0 KiB of ward's log waiting for 42.0s, 57 lines dropped: nothing reads the container's stderr"),
            "{text}"
        );
        // A file: the filesystem holds the lines, not a reader.
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.stderr_waiting.as_mut().unwrap().file = true;
        let text = render(&doc);
        assert!(
            text.contains("57 lines dropped: the file the container's stderr goes to takes no writes (a frozen or hung filesystem); whatever else"),
            "{text}"
        );
        // Failed writes: lost lines, and nobody is blocked.
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.stderr_waiting = Some(StderrDoc {
            bytes: 0,
            waiting_s: 2.5,
            dropped_lines: 2,
            failed: true,
            file: false,
            full_now: false,
        });
        let text = render(&doc);
        assert!(
            text.contains("\nSTDERR FAILS: writes to the container's stderr fail (closed, or no space); 2 lines of ward's log lost\n"),
            "{text}"
        );
        assert!(!text.contains("STALLED"), "{text}");
        // Nothing of ward's waits, but the pipe took no writes when asked.
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.stderr_waiting = Some(StderrDoc {
            full_now: true,
            ..StderrDoc::default()
        });
        let text = render(&doc);
        assert!(
            text.contains("\nSTDERR FULL: the container's stderr took no writes for 250 ms when asked: its reader is gone or slow (a blocked log driver, a full pipe); whatever writes there, the application too, waits in write()\n"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_limit_and_working_set_are_said_as_such() {
        let mut doc = sample_doc();
        let c = doc.container.as_mut().unwrap();
        c.limits.memory_bytes = None;
        c.limits.pids = None;
        c.memory.working_set_bytes = None;
        let text = render(&doc);
        for want in [
            "memory    40.0 MiB usage; limit unknown\n",
            "pids      9; limit unknown",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn a_stop_under_way_is_said_first() {
        let mut doc = sample_doc();
        doc.live.as_mut().unwrap().stop = Some(StopDoc {
            signal: "SIGTERM".into(),
            at_s: 3720.0,
        });
        let text = render(&doc);
        assert!(
            text.contains("STOPPING: SIGTERM received at +1h02m, 5.0s ago"),
            "{text}"
        );
    }

    #[test]
    fn a_main_process_that_ended_and_the_next_deadline_are_said() {
        let mut doc = sample_doc();
        let live = doc.live.as_mut().unwrap();
        live.main_ended = Some(WhenDoc {
            what: "exited with code 3".into(),
            at_s: 3723.0,
        });
        live.next = Some(WhenDoc {
            what: "SIGKILL to what is left (--grace)".into(),
            at_s: 3726.0,
        });
        let text = render(&doc);
        for want in [
            "\nMAIN PROCESS ENDED: exited with code 3 at +1h02m, 2.0s ago; ward waits for what is left\n",
            "\nNEXT: SIGKILL to what is left (--grace) at +1h02m, in 1.0s\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn one_signal_and_one_orphan_are_no_plural() {
        let mut doc = sample_doc();
        let w = &mut doc.live.as_mut().unwrap().ward;
        w.signals_forwarded = 1;
        w.orphans_reaped = 1;
        let text = render(&doc);
        assert!(
            text.contains("; 1 signal forwarded, 1 orphan reaped\n"),
            "{text}"
        );
    }

    /// An OOM kill of the last 5 minutes and the warnings raised now come
    /// under the first line, not only in the lists at the bottom.
    #[test]
    fn a_recent_oom_kill_and_the_warnings_raised_are_said_at_the_top() {
        let mut doc = sample_doc();
        let live = doc.live.as_mut().unwrap();
        live.ward.uptime_s = 100.0;
        live.oom_kills = vec![OomKillDoc {
            at_s: 88.0,
            victim_pid: Some(11),
            victim_name: Some("ward-workload".into()),
            certain: false,
            limit_bytes: Some(64 << 20),
        }];
        live.oom_kills_total = 1;
        live.active_warnings = vec!["pids_high".into()];
        let text = render(&doc);
        let top: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(
            top[1],
            "OOM KILL noticed 12.0s ago: the kernel OOM killer most likely killed ward-workload (pid 11) at the 64.0 MiB limit (1 since ward started; see OOM kills below)",
            "{text}"
        );
        assert_eq!(
            top[2], "RAISED NOW: pids_high (see Warnings below)",
            "{text}"
        );
        // Older than 5 minutes: in the list below only.
        doc.live.as_mut().unwrap().ward.uptime_s = 400.0;
        let text = render(&doc);
        assert!(!text.contains("OOM KILL "), "{text}");
        assert!(
            text.contains(
                "  +1m28s    the kernel OOM killer most likely killed ward-workload (pid 11)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_code_lock_is_said_when_a_memory_limit_asked_for_it() {
        let mut doc = sample_doc();
        // The line under the first (RAISED NOW) is another test's.
        doc.live.as_mut().unwrap().active_warnings.clear();
        let text = render(&doc);
        assert!(
            text.contains("0 signals forwarded, 3 orphans reaped\n"),
            "{text}"
        );
        assert!(
            !text.contains("LOCKED") && !text.contains("locked"),
            "{text}"
        );

        doc.live.as_mut().unwrap().ward.code_locked = Some(true);
        let text = render(&doc);
        assert!(
            text.contains("3 orphans reaped; code locked in memory\n\n"),
            "{text}"
        );

        doc.live.as_mut().unwrap().ward.code_locked = Some(false);
        let text = render(&doc);
        assert!(
            text.contains(
                "3 orphans reaped\nCODE NOT LOCKED in memory under this memory limit: a second \
                 OOM kill may follow one that frees nothing (see the code_not_locked line)\n\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn names_from_outside_cannot_drive_the_terminal() {
        // Any process can write ESC sequences to /proc/self/comm: clear the
        // screen, set the window title, or start a line that seems ward's.
        const EVIL: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\nward ok\u{9b}1m";
        const SHOWN: &str = "\\x1b[2J\\x1b]0;pwned\\x07\\nward ok\\u{9b}1m";
        let mut doc = sample_doc();
        let tree = doc.tree.as_mut().unwrap();
        tree.processes[2].command = format!("[{EVIL}] worker");
        tree.zombies[0].names = vec![EVIL.into()];
        tree.zombies[0].parent_name = Some(EVIL.into());
        tree.zombies.push(ZombieGroup {
            parent_pid: 77,
            parent_name: None,
            ..tree.zombies[0].clone()
        });
        let live = doc.live.as_mut().unwrap();
        live.warnings[0].msg = format!("5 zombies wait under {EVIL} (pid 9)");
        live.oom_kills[0].victim_name = Some(EVIL.into());
        live.oom_kills[0].certain = false;
        let text = render(&doc);
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| c.is_control() && c != '\n')
            .collect();
        assert!(bad.is_empty(), "raw {bad:?} in:\n{text}");
        assert!(!text.contains("\nward ok"), "{text}");
        for want in [
            format!("  [{SHOWN}] worker\n"),
            format!("5 zombies [{SHOWN}] NOT REAPED"),
            format!("5 zombie(s) [{SHOWN}] of pid 77 (not listed)"),
            format!("hint: {SHOWN} (pid 9) holds 5 exited children"),
            format!("fix {SHOWN} to wait()"),
            format!("zombies_unreaped: 5 zombies wait under {SHOWN} (pid 9)\n"),
            format!("OOM killer most likely killed {SHOWN} (pid 12)"),
        ] {
            assert!(text.contains(&want), "missing {want:?} in:\n{text}");
        }
        // PID 1's name in the words said without ward (up to the first `]`
        // of its `[name]`), and PID 1 as the parent.
        doc.live = None;
        let tree = doc.tree.as_mut().unwrap();
        tree.processes[0].command = "[\u{1b}[2Jsh\u{7}] /bin/sh /entrypoint.sh".into();
        tree.zombies[0].parent_pid = 1;
        let text = render(&doc);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
        assert!(
            text.contains("PID 1 is \\x1b[2Jsh\\x07, not ward."),
            "{text}"
        );
        assert!(
            text.contains(&format!("hint: {SHOWN} is PID 1 and holds")),
            "{text}"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age_words(45), "45s");
        assert_eq!(age_words(723), "12m03s");
        assert_eq!(age_words(3 * 3600 + 240), "3h04m");
        assert_eq!(age_words(2 * 86400 + 5 * 3600), "2d05h");
    }
}
