//! The init's own forwarding hop, from the kernel's `signal:signal_generate`
//! tracepoint: the host's kill(2) queueing SIGUSR1 for the init is one event,
//! the init sending SIGUSR1 on to its child is the next; the difference of
//! their timestamps is the init's delay (wake-up, read, decision, send),
//! without the echo process's wake-up or the harness's read.
//!
//! Owns one tracefs instance of its own (`instances/ward-bench-PID`: made,
//! filtered, read and removed here; [`Tracer`] also records another event
//! for the orphan rows' `reap_wait.rs`, one section at a time); never
//! touches the global trace buffer nor another instance. The parser and the
//! pairing are pure.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the hop columns are, for a section's intro.
pub const INTRO: &str = "*hop*: the init's own forwarding delay, from the kernel's \
     `signal:signal_generate` tracepoint (a tracefs instance of ward-bench's own, clock `mono`, \
     filtered on SIGUSR1 to or from the init): from the event of the host's kill(2) queueing \
     SIGUSR1 for the init to the init's own first SIGUSR1 send after it. That is its wake-up, \
     read, decision and send, without the echo process's wake-up or the harness's read; the \
     trace prints µs, so each hop is exact to 1 µs. *round trip*: kill(2) to the echo byte \
     read, timed on the host.";

/// Where tracefs is mounted on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The signal every benchmark here sends.
const SIGUSR1: i32 = 10;
/// Per-CPU ring buffer of the instance, KiB. One event takes about 60
/// bytes; the longest run (60 s at a 2 ms pace, two events per signal,
/// all on one CPU in the worst case) needs under 4 MiB. An overrun is
/// reported, never hidden.
const BUFFER_KIB: u32 = 8192;

/// One `signal_generate` line: who queued which signal for whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generate {
    /// The sending thread's pid (the line's `TASK-PID`).
    pub task_pid: i32,
    /// The sending thread's process (`record-tgid`), if the kernel knew it.
    pub tgid: Option<i32>,
    /// The CPU the sending thread ran on (the line's `[CPU]`).
    pub cpu: u32,
    /// The event's timestamp, ns on the instance's trace clock.
    pub ts_ns: u64,
    /// The signal.
    pub sig: i32,
    /// The target's `comm`.
    pub comm: String,
    /// The target's pid.
    pub pid: i32,
    /// Sent to the whole thread group (1) or to one thread (0).
    pub group: i32,
    /// 0 delivered, 1 ignored, 2 already pending, 3 overflow, 4 info lost.
    pub result: i32,
}

impl Generate {
    /// The sending process: its tgid when recorded, else its thread's pid.
    pub fn sender(&self) -> i32 {
        self.tgid.unwrap_or(self.task_pid)
    }
}

/// What a read of an instance's `trace` file held.
#[derive(Debug, Default, PartialEq)]
pub struct TraceText {
    /// The `signal_generate` events, in the file's (time) order.
    pub events: Vec<Generate>,
    /// `entries-in-buffer/entries-written` from the header: fewer in the
    /// buffer than written means the oldest were overwritten.
    pub entries: Option<(u64, u64)>,
    /// Events the kernel said it lost (`CPU:N [LOST M EVENTS]`).
    pub lost: u64,
    /// Lines that were none of the above, kept to be reported.
    pub unparsed: Vec<String>,
}

impl TraceText {
    /// Events missing from the buffer, overwritten or lost.
    pub fn missing(&self) -> u64 {
        let overwritten = self
            .entries
            .map_or(0, |(inside, written)| written.saturating_sub(inside));
        overwritten + self.lost
    }
}

/// `SECS.FRACTION` as ns (the trace prints µs for ns clocks).
pub fn parse_timestamp(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let frac: u64 = format!("{frac:0<9}").parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// One event line of the `trace` file, if it is a `signal_generate` event:
///
/// `  bash-27705   (  27705) [000] d..1. 12479.401956: signal_generate: sig=10 errno=0 code=0 comm=tini pid=27718 grp=1 res=0`
///
/// Both `comm`s may hold spaces, dashes and brackets, so the sender is read
/// from the right (its pid after the last `-`, the CPU in the last `[...]`)
/// and the target's `comm` lies between ` comm=` and the last ` pid=`.
pub fn parse_line(line: &str) -> Option<Generate> {
    let (head, fields) = line.split_once(": signal_generate: ")?;
    // head: "TASK-PID (TGID) [CPU] FLAGS TIMESTAMP"
    let (head, ts) = head.trim_end().rsplit_once(char::is_whitespace)?;
    let ts_ns = parse_timestamp(ts)?;
    let cpu_at = head.rfind('[')?;
    let (cpu, _) = head[cpu_at + 1..].split_once(']')?;
    let cpu = cpu.parse().ok()?;
    let mut task = head[..cpu_at].trim_end();
    let mut tgid = None;
    if let Some(inner) = task.strip_suffix(')') {
        let open = inner.rfind('(')?;
        // `(-------)` when the kernel had no tgid for the pid.
        tgid = inner[open + 1..].trim().parse().ok();
        task = inner[..open].trim_end();
    }
    let (_, task_pid) = task.trim_start().rsplit_once('-')?;
    let task_pid = task_pid.parse().ok()?;

    let (left, right) = fields.trim_end().rsplit_once(" pid=")?;
    let (numbers, comm) = left.split_once(" comm=")?;
    let mut sig = None;
    for kv in numbers.split_whitespace() {
        if let Some(v) = kv.strip_prefix("sig=") {
            sig = v.parse().ok();
        }
    }
    let mut right = right.split_whitespace();
    let pid = right.next()?.parse().ok()?;
    let (mut group, mut result) = (None, None);
    for kv in right {
        if let Some(v) = kv.strip_prefix("grp=") {
            group = v.parse().ok();
        } else if let Some(v) = kv.strip_prefix("res=") {
            result = v.parse().ok();
        }
    }
    Some(Generate {
        task_pid,
        tgid,
        cpu,
        ts_ns,
        sig: sig?,
        comm: comm.to_string(),
        pid,
        group: group?,
        result: result?,
    })
}

/// A whole `trace` file.
pub fn parse_trace(text: &str) -> TraceText {
    let mut out = TraceText::default();
    for line in text.lines() {
        if bookkeeping(line, &mut out) {
            continue;
        }
        match parse_line(line) {
            Some(e) => out.events.push(e),
            None => out.unparsed.push(line.to_string()),
        }
    }
    out
}

/// Events missing from a `trace` file of any events (see
/// [`TraceText::missing`]).
pub fn missing_in(text: &str) -> u64 {
    let mut out = TraceText::default();
    for line in text.lines() {
        bookkeeping(line, &mut out);
    }
    out.missing()
}

/// Takes a blank line, a header line (keeping the entry counts) or a lost
/// events line (adding them up) into `out`; false for an event line.
fn bookkeeping(line: &str, out: &mut TraceText) -> bool {
    if line.trim().is_empty() {
        return true;
    }
    if let Some(rest) = line.strip_prefix('#') {
        if let Some(counts) = rest
            .trim()
            .strip_prefix("entries-in-buffer/entries-written:")
        {
            let counts = counts.split_whitespace().next().unwrap_or_default();
            out.entries = counts
                .split_once('/')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        }
        return true;
    }
    if let Some(n) = line
        .split_once("[LOST ")
        .and_then(|(_, r)| r.strip_suffix(" EVENTS]"))
        .and_then(|n| n.parse::<u64>().ok())
    {
        out.lost += n;
        return true;
    }
    false
}

/// One forwarded signal: when the host's kill queued it for the init, and
/// how long the init took to send it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The host's `signal_generate`, ns on the trace clock.
    pub sent_ns: u64,
    /// From that event to the init's own first `signal_generate`, ns.
    pub ns: u64,
    /// The init ran its send on the CPU the host's kill(2) ran on: the
    /// kernel woke it there (or moved it there before it sent), not on
    /// another CPU, which on a VM whose idle vCPUs halt costs a wake-up of
    /// that vCPU.
    pub same_cpu: bool,
}

/// The hops of one run, and what could not be paired.
#[derive(Debug, Default, PartialEq)]
pub struct Hops {
    /// In order of sending.
    pub hops: Vec<Hop>,
    /// SIGUSR1s queued for the init that it never sent on (or whose send
    /// the trace lost).
    pub unanswered: usize,
    /// Sends by the init beyond the first per signal (a group kill sends
    /// to each member; the first is the hop).
    pub extra: usize,
    /// SIGUSR1s for the init the kernel did not deliver (ignored, already
    /// pending): nothing to forward.
    pub undelivered: usize,
}

/// Pairs each SIGUSR1 queued for `init` by another process with the next
/// SIGUSR1 the init itself queued. A second signal for the init before it
/// sent anything leaves the first unanswered (it cannot be told which of
/// the two the init was forwarding).
pub fn pair(events: &[Generate], init: i32) -> Hops {
    let mut out = Hops::default();
    let mut pending: Option<(u64, u32)> = None;
    for e in events.iter().filter(|e| e.sig == SIGUSR1) {
        if e.sender() == init {
            match pending.take() {
                Some((t, cpu)) => out.hops.push(Hop {
                    sent_ns: t,
                    ns: e.ts_ns.saturating_sub(t),
                    same_cpu: e.cpu == cpu,
                }),
                None => out.extra += 1,
            }
        } else if e.pid == init {
            if e.result != 0 {
                out.undelivered += 1;
                continue;
            }
            if pending.replace((e.ts_ns, e.cpu)).is_some() {
                out.unanswered += 1;
            }
        }
    }
    if pending.is_some() {
        out.unanswered += 1;
    }
    out
}

/// CLOCK_MONOTONIC now, ns: the `mono` trace clock's time base (and
/// [`Instant`]'s on Linux).
pub fn mono_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An [`Instant`] and the CLOCK_MONOTONIC ns read right after it, to put
/// the harness's instants on the trace clock.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    /// The instant.
    pub at: Instant,
    /// CLOCK_MONOTONIC at that instant, ns.
    pub mono_ns: u64,
}

impl Anchor {
    /// Now.
    pub fn now() -> Anchor {
        Anchor {
            at: Instant::now(),
            mono_ns: mono_now_ns(),
        }
    }

    /// `t` on the trace clock.
    pub fn mono_ns(&self, t: Instant) -> u64 {
        if t >= self.at {
            self.mono_ns + (t - self.at).as_nanos() as u64
        } else {
            self.mono_ns.saturating_sub((self.at - t).as_nanos() as u64)
        }
    }
}

/// A tracing instance of this process's own, recording one event (by
/// default SIGUSR1 sends to and from one init at a time) or a few.
pub struct Tracer {
    dir: PathBuf,
    /// The events' directories under the instance.
    events: Vec<&'static str>,
}

/// The event the signal rows trace.
const SIGNAL_EVENT: &str = "events/signal/signal_generate";

/// Writes `value` to `dir/file`, the error naming the path.
fn write_to(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))
}

impl Tracer {
    /// Makes the instance under `root` (tracefs, mounted here if it is
    /// not yet and `root` is [`TRACEFS`]). The error says why tracing is
    /// unavailable, for the report.
    pub fn open(root: &Path) -> Result<Tracer, String> {
        Tracer::open_for(root, SIGNAL_EVENT)
    }

    /// As [`Tracer::open`], for `event` (a path under the instance, such
    /// as `events/raw_syscalls/sys_exit`), started by
    /// [`Tracer::start_filtered`].
    pub fn open_for(root: &Path, event: &'static str) -> Result<Tracer, String> {
        Tracer::open_for_all(root, &[event])
    }

    /// As [`Tracer::open_for`], for each of `events`, all started and
    /// stopped together.
    pub fn open_for_all(root: &Path, events: &[&'static str]) -> Result<Tracer, String> {
        let instances = root.join("instances");
        if !instances.is_dir() && root == Path::new(TRACEFS) {
            mount_tracefs(root)?;
        }
        if !instances.is_dir() {
            return Err(format!(
                "{} not found (tracefs not mounted)",
                instances.display()
            ));
        }
        remove_stale(&instances);
        let dir = instances.join(format!("ward-bench-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(format!("{}: {e}", dir.display()));
        }
        let t = Tracer {
            dir,
            events: events.to_vec(),
        };
        for event in &t.events {
            let event = t.dir.join(event);
            if !event.is_dir() {
                return Err(format!("{} not found", event.display()));
            }
        }
        write_to(&t.dir, "trace_clock", "mono")?;
        write_to(&t.dir, "options/record-tgid", "1")?;
        write_to(&t.dir, "buffer_size_kb", &BUFFER_KIB.to_string())?;
        Ok(t)
    }

    /// Clears the buffer and records SIGUSR1 for or from `init` only, so
    /// other work on the machine stays out of the buffer. The init sends
    /// from its main thread (`common_pid` is a thread's pid): true of the
    /// single-threaded peers and of ward, whose reaper is its main thread;
    /// a send from another thread would show as unanswered signals.
    pub fn start(&self, init: i32) -> Result<(), String> {
        self.start_filtered(&format!(
            "sig == {SIGUSR1} && (pid == {init} || common_pid == {init})"
        ))
    }

    /// Clears the buffer and records the events where `filter` holds
    /// (`0`: everywhere, which clears a filter set before).
    pub fn start_filtered(&self, filter: &str) -> Result<(), String> {
        for event in &self.events {
            let event = self.dir.join(event);
            write_to(&event, "enable", "0")?;
            write_to(&event, "filter", filter)?;
        }
        write_to(&self.dir, "trace", "")?;
        for event in &self.events {
            write_to(&self.dir.join(event), "enable", "1")?;
        }
        Ok(())
    }

    /// Stops recording and returns the buffer's text.
    pub fn finish(&self) -> Result<String, String> {
        for event in &self.events {
            write_to(&self.dir.join(event), "enable", "0")?;
        }
        let path = self.dir.join("trace");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        for event in &self.events {
            let _ = write_to(&self.dir.join(event), "enable", "0");
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Instances a killed ward-bench left behind (its pid gone).
fn remove_stale(instances: &Path) {
    let Ok(dir) = std::fs::read_dir(instances) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ward-bench-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// `mount -t tracefs nodev ROOT`.
fn mount_tracefs(root: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let target = std::ffi::CString::new(root.as_os_str().as_bytes())
        .map_err(|_| format!("{}: NUL in path", root.display()))?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot mount tracefs on {}: {}",
            root.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Stops `tracer` and pairs what it recorded for `init`: the hops and
/// what to say about the trace's gaps. No hop at all is an error (the
/// init forwarded every signal, or the round trip would have failed).
pub fn collect(tracer: &Tracer, init: i32, name: &str) -> Result<(Vec<Hop>, Vec<String>), String> {
    let text = parse_trace(&tracer.finish()?);
    let hops = pair(&text.events, init);
    if hops.hops.is_empty() {
        return Err(format!(
            "no forwarded SIGUSR1 in the trace ({} event(s) read)",
            text.events.len()
        ));
    }
    let notes = gaps(name, &text, &hops);
    Ok((hops.hops, notes))
}

/// Sorted hop lengths in µs.
pub fn sorted_us(hops: &[Hop]) -> Vec<f64> {
    let mut v: Vec<f64> = hops.iter().map(|h| h.ns as f64 / 1e3).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// What to say about a run's trace besides its hops (nothing when whole).
pub fn gaps(name: &str, text: &TraceText, hops: &Hops) -> Vec<String> {
    let mut notes = Vec::new();
    if text.missing() > 0 {
        notes.push(format!(
            "{name}: the trace buffer lost {} event(s); their signals have no hop",
            text.missing()
        ));
    }
    if hops.unanswered > 0 {
        notes.push(format!(
            "{name}: {} SIGUSR1(s) reached the init with no send of its own traced after",
            hops.unanswered
        ));
    }
    if hops.undelivered > 0 {
        notes.push(format!(
            "{name}: {} SIGUSR1(s) not delivered to the init (ignored or already pending)",
            hops.undelivered
        ));
    }
    if !text.unparsed.is_empty() {
        notes.push(format!(
            "{name}: {} trace line(s) not understood, first: `{}`",
            text.unparsed.len(),
            text.unparsed[0].trim()
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured on this kernel (6.18, trace_clock mono, record-tgid on):
    // ward, sent two SIGUSR1 from bash, the whole file.
    const WARD: &str = "\
# tracer: nop
#
# entries-in-buffer/entries-written: 4/4   #P:2
#
#                                          _-----=> irqs-off/BH-disabled
#                                         / _----=> need-resched
#                                        | / _---=> hardirq/softirq
#                                        || / _--=> preempt-depth
#                                        ||| / _-=> migrate-disable
#                                        |||| /     delay
#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION
#              | |           |       |   |||||     |         |
            bash-9010    (   9010) [001] dN.1. 13060.244315: signal_generate: sig=10 errno=0 code=0 comm=ward pid=9039 grp=1 res=0
            ward-9039    (   9039) [001] d..1. 13060.244363: signal_generate: sig=10 errno=0 code=0 comm=ward-workload pid=9042 grp=1 res=0
            bash-9010    (   9010) [001] d..1. 13060.446410: signal_generate: sig=10 errno=0 code=0 comm=ward pid=9039 grp=1 res=0
            ward-9039    (   9039) [001] d..1. 13060.446799: signal_generate: sig=10 errno=0 code=0 comm=ward-workload pid=9042 grp=1 res=0
";

    // Same set-up: tini, dumb-init (which kills its child's process group:
    // two sends) and catatonit, each sent one SIGUSR1 from bash; the last
    // header line and the events.
    const TRACE: &str = "\
#              | |           |       |   |||||     |         |
            bash-32566   (  32566) [000] dN.1. 12524.053874: signal_generate: sig=10 errno=0 code=0 comm=tini pid=360 grp=1 res=0
            tini-360     (    360) [000] dN.1. 12524.054497: signal_generate: sig=10 errno=0 code=0 comm=sh pid=385 grp=1 res=0
            bash-32566   (  32566) [000] dn.1. 12525.189001: signal_generate: sig=10 errno=0 code=0 comm=dumb-init pid=4988 grp=1 res=0
       dumb-init-4988    (   4988) [000] d..2. 12525.189343: signal_generate: sig=10 errno=0 code=0 comm=sleep pid=7229 grp=1 res=0
       dumb-init-4988    (   4988) [000] d..2. 12525.189367: signal_generate: sig=10 errno=0 code=0 comm=sh pid=5057 grp=1 res=0
            bash-32566   (  32566) [001] d..1. 12526.253272: signal_generate: sig=10 errno=0 code=0 comm=catatonit pid=9220 grp=1 res=0
       catatonit-9220    (   9220) [001] d..1. 12526.255071: signal_generate: sig=10 errno=0 code=0 comm=sh pid=9231 grp=1 res=0
";

    #[test]
    fn parses_a_captured_file() {
        let t = parse_trace(WARD);
        assert_eq!(t.entries, Some((4, 4)));
        assert_eq!(t.missing(), 0);
        assert!(t.unparsed.is_empty(), "{:?}", t.unparsed);
        assert_eq!(t.events.len(), 4);
        assert_eq!(t.events[1].comm, "ward-workload");
        let h = pair(&t.events, 9039);
        assert_eq!(
            h.hops,
            vec![
                Hop {
                    sent_ns: 13_060_244_315_000,
                    ns: 48_000,
                    same_cpu: true,
                },
                Hop {
                    sent_ns: 13_060_446_410_000,
                    ns: 389_000,
                    same_cpu: true,
                }
            ]
        );
        assert_eq!((h.unanswered, h.extra, h.undelivered), (0, 0, 0));
    }

    #[test]
    fn parses_captured_lines() {
        let t = parse_trace(TRACE);
        assert_eq!(t.entries, None);
        assert_eq!(t.missing(), 0);
        assert!(t.unparsed.is_empty(), "{:?}", t.unparsed);
        assert_eq!(t.events.len(), 7);
        assert_eq!(
            t.events[0],
            Generate {
                task_pid: 32566,
                tgid: Some(32566),
                cpu: 0,
                ts_ns: 12_524_053_874_000,
                sig: 10,
                comm: "tini".into(),
                pid: 360,
                group: 1,
                result: 0,
            }
        );
        let d = &t.events[3];
        assert_eq!((d.task_pid, d.sender(), d.pid), (4988, 4988, 7229));
        assert_eq!(d.comm, "sleep");
    }

    #[test]
    fn parses_without_tgid_and_with_odd_comms() {
        // Captured without record-tgid; then the comms made awkward by hand
        // (a comm may hold spaces, dashes, brackets and `pid=`).
        let plain = "            bash-27705   [000] d..1. 12479.401956: signal_generate: sig=10 errno=0 code=0 comm=tini pid=27718 grp=1 res=0";
        let e = parse_line(plain).unwrap();
        assert_eq!(
            (e.task_pid, e.tgid, e.pid, e.result),
            (27705, None, 27718, 0)
        );
        assert_eq!(e.ts_ns, 12_479_401_956_000);
        let odd = " my-[x] task-77   (-------) [001] d..1. 5.000001: signal_generate: sig=10 errno=0 code=0 comm=a pid=b [c] pid=42 grp=0 res=2";
        let e = parse_line(odd).unwrap();
        assert_eq!(
            (e.task_pid, e.tgid, e.cpu, e.ts_ns),
            (77, None, 1, 5_000_001_000)
        );
        assert_eq!(
            (e.comm.as_str(), e.pid, e.group, e.result),
            ("a pid=b [c]", 42, 0, 2)
        );
        let thread = "      ward-watch-501     (    500) [001] d..1. 1.5: signal_generate: sig=10 errno=0 code=0 comm=sh pid=9 grp=1 res=0";
        let e = parse_line(thread).unwrap();
        assert_eq!((e.task_pid, e.sender(), e.ts_ns), (501, 500, 1_500_000_000));
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("CPU:1 [LOST 312 EVENTS]"), None);
        let other = "            bash-1   [000] d..1. 1.000001: signal_deliver: sig=10 errno=0 code=0 sa_handler=0 sa_flags=0";
        assert_eq!(parse_line(other), None);
        let bad_ts = "            bash-1   [000] d..1. 1.x: signal_generate: sig=10 errno=0 code=0 comm=a pid=2 grp=1 res=0";
        assert_eq!(parse_line(bad_ts), None);
        let no_res = "            bash-1   [000] d..1. 1.1: signal_generate: sig=10 errno=0 code=0 comm=a pid=2 grp=1";
        assert_eq!(parse_line(no_res), None);
        let bad_cpu = "            bash-1   [0x1] d..1. 1.1: signal_generate: sig=10 errno=0 code=0 comm=a pid=2 grp=1 res=0";
        assert_eq!(parse_line(bad_cpu), None);
    }

    #[test]
    fn overwritten_and_lost_events_are_counted() {
        // The header of a 4 KiB buffer after 400 sends (captured), and
        // trace_pipe's line for an overrun (captured), plus one stray line.
        let text = "\
# tracer: nop
#
# entries-in-buffer/entries-written: 88/400   #P:2
#
CPU:1 [LOST 312 EVENTS]
            bash-28869   (  28869) [001] d..1. 12532.189832: signal_generate: sig=10 errno=0 code=0 comm=sh pid=1782 grp=1 res=1
##### CPU 1 buffer started ####
something else
";
        let t = parse_trace(text);
        assert_eq!(t.entries, Some((88, 400)));
        assert_eq!(t.lost, 312);
        assert_eq!(t.missing(), 312 + 312);
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.unparsed, vec!["something else".to_string()]);
        // The same count for a trace of any events.
        assert_eq!(missing_in(text), 312 + 312);
        assert_eq!(
            missing_in("# entries-in-buffer/entries-written: 5/5   #P:2\n"),
            0
        );
    }

    #[test]
    fn pairs_each_kill_with_the_inits_first_send() {
        let t = parse_trace(TRACE);
        let tini = pair(&t.events, 360);
        assert_eq!(
            tini.hops,
            vec![Hop {
                sent_ns: 12_524_053_874_000,
                ns: 623_000,
                same_cpu: true,
            }]
        );
        assert_eq!((tini.unanswered, tini.extra), (0, 0));
        // dumb-init's group kill: the first send is the hop, one extra.
        let dumb = pair(&t.events, 4988);
        assert_eq!(dumb.hops.len(), 1);
        assert_eq!(dumb.hops[0].ns, 342_000);
        assert_eq!(dumb.extra, 1);
        let cat = pair(&t.events, 9220);
        assert_eq!(cat.hops[0].ns, 1_799_000);
        // Nobody else's signals count.
        assert_eq!(pair(&t.events, 1), Hops::default());
    }

    #[test]
    fn unanswered_and_undelivered_signals_are_counted() {
        let ev = |from: i32, to: i32, ts: u64, result: i32| Generate {
            task_pid: from,
            tgid: Some(from),
            // The host's kills on CPU 0, the init's sends on CPU 1.
            cpu: u32::from(from == 5),
            ts_ns: ts,
            sig: 10,
            comm: String::new(),
            pid: to,
            group: 1,
            result,
        };
        let events = vec![
            ev(9, 5, 100, 0), // answered by nothing before the next kill
            ev(9, 5, 200, 0),
            ev(5, 6, 250, 0),
            ev(9, 5, 300, 2), // already pending: not delivered
            ev(9, 5, 400, 0), // never answered
        ];
        let h = pair(&events, 5);
        assert_eq!(
            h.hops,
            vec![Hop {
                sent_ns: 200,
                ns: 50,
                same_cpu: false,
            }]
        );
        assert_eq!((h.unanswered, h.undelivered, h.extra), (2, 1, 0));
        // The hop runs from the later kill (50 ns), not the earlier (150).
    }

    #[test]
    fn anchor_maps_instants_both_ways() {
        let a = Anchor {
            at: Instant::now(),
            mono_ns: 1_000_000,
        };
        let ms = std::time::Duration::from_millis(1);
        assert_eq!(a.mono_ns(a.at + ms), 2_000_000);
        assert_eq!(a.mono_ns(a.at - ms), 0);
        assert_eq!(a.mono_ns(a.at), 1_000_000);
    }

    #[test]
    fn no_tracefs_says_where_it_looked() {
        let root = std::env::temp_dir().join(format!("ward-bench-hop-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let err = Tracer::open(&root).err().unwrap();
        std::fs::remove_dir(&root).unwrap();
        assert_eq!(
            err,
            format!(
                "{}/instances not found (tracefs not mounted)",
                root.display()
            )
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("12479.401956"), Some(12_479_401_956_000));
        assert_eq!(parse_timestamp("0.123456789"), Some(123_456_789));
        assert_eq!(parse_timestamp("1.1234567890"), None);
        assert_eq!(parse_timestamp("1."), None);
        assert_eq!(parse_timestamp("12"), None);
    }
}
