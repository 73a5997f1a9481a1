//! ward as PID 1 of a fresh PID namespace (needs root) with a stderr that
//! nobody reads: a full FIFO must never stop reaping, signal forwarding or
//! exiting, and lines that could not wait are counted, not silently lost.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Polls `done` every 20 ms for at most `within`; true once it holds.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `ShdPnd` mask of `pid`: process-directed signals not yet taken.
fn shared_pending(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn full_stderr_before_the_first_line_does_not_stop_pid1() {
    if !require_root("full_stderr_before_the_first_line") {
        return;
    }
    let fifo = StalledFifo::new("log-full");
    let filled = fifo.fill();
    assert!(filled >= 4096, "the FIFO took only {filled} bytes");
    let got_term = fifo.dir().join("got-term");
    // The child leaves orphans behind (they become zombies under ward), then
    // waits for SIGTERM, records it, and exits 7.
    let script = format!(
        "trap 'echo TERM > {}; exit 7' TERM; {} orphans 5 >/dev/null; echo ready; \
         while :; do sleep 0.05; done",
        got_term.display(),
        workload()
    );
    // -v: ward's very first line (child_started) already meets a full pipe.
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--no-watch", "--", "/bin/sh", "-c", &script]),
        fifo.writer(),
        Duration::from_secs(20),
    );
    p.expect_line("ready");
    let reaped = within(Duration::from_secs(3), || zombies_under(p.pid()) == 0);
    assert!(
        reaped,
        "{} zombies left under ward while its stderr is full",
        zombies_under(p.pid())
    );

    p.signal_ward(libc::SIGTERM);
    let forwarded = within(Duration::from_secs(3), || got_term.exists());
    assert!(forwarded, "SIGTERM never reached the child");
    let sent = Instant::now();
    let out = p.wait();
    assert_eq!(out.code, 7, "ward must exit with the child's code");
    // A hang guard, not a speed goal: the exit flush gives up after ~1 s.
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "ward took {:?} to exit after its child",
        sent.elapsed()
    );

    // Nobody read, so nothing of ward's got in: the FIFO holds the filler.
    let left = fifo.drain();
    assert_eq!(left.len(), filled, "{}", String::from_utf8_lossy(&left));
}

/// Event name of one line in either format.
fn event_of(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        return v["event"].as_str().map(String::from);
    }
    let rest = line.strip_prefix("ward: ")?;
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    Some(rest[open + 1..close].to_string())
}

/// The count a `log_dropped` line reports, in either format.
fn dropped_count(line: &str) -> u64 {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        return v["dropped"].as_u64().unwrap();
    }
    let msg = &line[line.find("] ").unwrap() + 2..];
    let n = msg.split(' ').next().unwrap();
    assert!(msg.contains("dropped: stderr was not being read"), "{line}");
    n.parse().unwrap()
}

/// ward as PID 1 of `-v --no-watch --log-format FORMAT -- signal-echo`,
/// its stderr a FIFO nobody reads, filled by the `-v` lines of up to 3000
/// forwarded real-time signals (~200 KiB of lines for a 64 KiB pipe), and
/// back waiting in its loop: the FIFO, ward, and how many signals went.
fn stalled_ward(name: &str, format: &str) -> (Arc<StalledFifo>, Proc, i32, u64) {
    let fifo = Arc::new(StalledFifo::new(name));
    let p = Proc::start_with_stderr(
        ward_pid1([
            "-v",
            "--no-watch",
            "--log-format",
            format,
            "--",
            workload(),
            "signal-echo",
        ]),
        fifo.writer(),
        Duration::from_secs(30),
    );
    p.expect_line("ready");
    let ward = p.ward_pid();
    // Real-time signals queue instead of merging: each one is forwarded and
    // logged on its own.
    let mut sent = 0u64;
    for i in 0..3000 {
        // SAFETY: plain kill(2) on ward.
        if unsafe { libc::kill(ward, libc::SIGRTMIN() + (i % 4)) } != 0 {
            break;
        }
        sent += 1;
    }
    assert!(sent >= 2000, "only {sent} signals could be queued");
    // Done when no signal is pending and ward is back waiting in its loop's
    // poll (not in a write: a blocked writer sleeps in pipe_write).
    let idle = || {
        shared_pending(ward) == 0
            && std::fs::read_to_string(format!("/proc/{ward}/wchan"))
                .is_ok_and(|w| w.contains("poll"))
    };
    let taken = within(Duration::from_secs(5), || idle() && idle());
    assert!(
        taken,
        "ward stopped taking signals (ShdPnd {:x}, wchan {:?}) while its stderr was full",
        shared_pending(ward),
        std::fs::read_to_string(format!("/proc/{ward}/wchan"))
    );
    (fifo, p, ward, sent)
}

/// A reader for `fifo` from now on, every 5 ms: what it got, the flag that
/// stops it (after one last read), and its thread.
type Reader = (
    Arc<Mutex<Vec<u8>>>,
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
);

fn start_reader(fifo: &Arc<StalledFifo>) -> Reader {
    let got = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fifo, stop, got) = (fifo.clone(), stop.clone(), got.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                got.lock().unwrap().extend(fifo.drain());
                std::thread::sleep(Duration::from_millis(5));
            }
            got.lock().unwrap().extend(fifo.drain());
        })
    };
    (got, stop, reader)
}

/// ward fills an unread FIFO itself with `-v` lines (one per forwarded
/// real-time signal), keeps working, and once a reader turns up the count of
/// what it dropped comes right where the gap is, before newer lines.
fn read_late(format: &str) {
    let (fifo, p, ward, sent) = stalled_ward(&format!("log-late-{format}"), format);

    // Now a reader turns up. Until the event loop polls the sink, ward
    // writes when it next logs, so nudge it with one more signal at a time
    // until the count has come through; then stop.
    let (got, stop, reader) = start_reader(&fifo);
    let mut nudges = 0u64;
    let counted = within(Duration::from_secs(5), || {
        let seen = String::from_utf8_lossy(&got.lock().unwrap()).contains("log_dropped");
        if !seen {
            // SAFETY: plain kill(2) on ward.
            assert_eq!(unsafe { libc::kill(ward, libc::SIGRTMIN()) }, 0);
            nudges += 1;
        }
        seen
    });
    assert!(counted, "no log_dropped line after {nudges} more lines");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let text = String::from_utf8(got.lock().unwrap().clone()).expect("UTF-8 log");
    assert_eq!(out.code, 0, "{text}");

    let lines: Vec<&str> = text.lines().collect();
    let events: Vec<String> = lines
        .iter()
        .map(|l| event_of(l).unwrap_or_else(|| panic!("torn or foreign line {l:?}")))
        .collect();
    let notices: Vec<usize> = (0..lines.len())
        .filter(|&i| events[i] == "log_dropped")
        .collect();
    assert_eq!(notices.len(), 1, "one log_dropped line expected:\n{text}");
    let at = notices[0];
    let dropped = dropped_count(lines[at]);
    assert!(dropped > 0);
    // Forwards of the real-time signals (SIGTERM's own forward comes later).
    let rt_forward = |i: usize| events[i] == "signal_forwarded" && !lines[i].contains("SIGTERM");
    let before = (0..at).filter(|&i| rt_forward(i)).count() as u64;
    let after = (at..lines.len()).filter(|&i| rt_forward(i)).count() as u64;
    let others: Vec<&str> = (0..lines.len())
        .filter(|&i| !rt_forward(i))
        .map(|i| lines[i])
        .collect();
    assert_eq!(
        before + dropped + after,
        sent + nudges,
        "every forward is either in the log or counted as dropped; other lines:\n{}",
        others.join("\n")
    );
    // Everything after the count is newer than the gap: only nudges.
    assert!(
        after <= nudges,
        "{after} forwards after the count, {nudges} nudges"
    );
    let stop_at = events.iter().position(|e| e == "stop_requested").unwrap();
    assert!(at < stop_at, "the count comes before newer lines");
    assert_eq!(events.last().map(String::as_str), Some("exit_report"));
}

/// The exit report while stderr is stalled with a full queue: it takes the
/// room of the latest lines queued before it (counted) and comes last, once
/// a reader turns up within ward's exit flush. It was dropped behind 64 KiB
/// of older lines, and the run ended on the `log_dropped` line.
fn report_at_a_full_queue(format: &str) {
    let (fifo, p, ward, _) = stalled_ward(&format!("log-report-{format}"), format);
    let child = children(ward)[0];
    // The stop's lines and the report meet the full queue; the reader
    // comes within the exit's 1 s flush, once the child is gone (and ward
    // on its way out), however slow the machine.
    p.signal_ward(libc::SIGTERM);
    let gone = within(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{child}")).exists()
    });
    assert!(gone, "the child outlived the stop");
    std::thread::sleep(Duration::from_millis(300));
    let (got, stop, reader) = start_reader(&fifo);
    let out = p.wait();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let text = String::from_utf8(got.lock().unwrap().clone()).expect("UTF-8 log");
    assert_eq!(out.code, 0, "{text}");
    let events: Vec<String> = text
        .lines()
        .map(|l| event_of(l).unwrap_or_else(|| panic!("torn or foreign line {l:?}")))
        .collect();
    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["log_dropped", "exit_report"],
        "the report last, the count right before it; last lines:\n{}",
        text.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_exit_report_gets_room_in_a_full_queue() {
    if !require_root("the_exit_report_gets_room_in_a_full_queue") {
        return;
    }
    report_at_a_full_queue("human");
}

#[test]
fn the_exit_report_gets_room_in_a_full_queue_in_json() {
    if !require_root("the_exit_report_gets_room_in_a_full_queue_in_json") {
        return;
    }
    report_at_a_full_queue("json");
}

#[test]
fn stderr_read_late_gets_the_dropped_count_where_the_gap_is() {
    if !require_root("stderr_read_late") {
        return;
    }
    read_late("human");
}

#[test]
fn stderr_read_late_gets_the_dropped_count_in_json() {
    if !require_root("stderr_read_late_json") {
        return;
    }
    read_late("json");
}

/// `ward status` run in ward's namespaces until its screen contains `want`
/// (20 s at most): whether it did, and the last screen.
fn status_within(ward_pid: i32, want: &str) -> (bool, String) {
    let mut text = String::new();
    let seen = within(Duration::from_secs(20), || {
        let mut cmd = std::process::Command::new("nsenter");
        without_ward_variables(&mut cmd);
        cmd.args(["-t", &ward_pid.to_string(), "-p", "-m", ward(), "status"]);
        text = run(cmd, Duration::from_secs(10)).stdout;
        text.contains(want)
    });
    (seen, text)
}

/// `ward status` says when ward's lines wait for a stderr nobody reads: the
/// application writing there is blocked too, and nothing else would say so.
#[test]
fn status_says_stderr_is_stalled() {
    if !require_root("status_stderr_stalled") {
        return;
    }
    let fifo = StalledFifo::new("log-status");
    fifo.fill();
    // -v: the child_started line waits in ward's queue from the start.
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--", "/bin/sh", "-c", "echo ready; exec sleep 60"]),
        fifo.writer(),
        Duration::from_secs(40),
    );
    p.expect_line("ready");
    let (stalled, text) = status_within(p.ward_pid(), "STDERR STALLED: ");
    assert!(stalled, "no STDERR STALLED line in:\n{text}");
    assert!(
        text.contains("of ward's log waiting for ") && text.contains("is blocked in write()"),
        "{text}"
    );
    p.signal_ward(libc::SIGKILL);
}

/// A stderr whose writes fail (the reader is gone: EPIPE) is not a stalled
/// one: ward's lines are lost, not waiting, and nobody is blocked in
/// write(). `ward status` said "STDERR STALLED ... is blocked in write()".
#[test]
fn status_says_failed_writes_to_stderr_are_not_a_stall() {
    if !require_root("status_stderr_fails") {
        return;
    }
    let (read_end, write_end) = std::io::pipe().expect("pipe");
    drop(read_end);
    // -v: the child_started line is written, and fails, from the start.
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--", "/bin/sh", "-c", "echo ready; exec sleep 60"]),
        write_end.into(),
        Duration::from_secs(40),
    );
    p.expect_line("ready");
    let (said, text) = status_within(p.ward_pid(), "STDERR FAILS: ");
    assert!(said, "no STDERR FAILS line in:\n{text}");
    assert!(
        !text.contains("STALLED") && text.contains("of ward's log lost"),
        "{text}"
    );
    p.signal_ward(libc::SIGKILL);
}

/// A small ext4 filesystem on a loop device, mounted in a temp dir, that the
/// test can freeze (`fsfreeze`): every write to it then waits, in a sleep no
/// signal ends, until it is thawed. Thawed and unmounted when dropped, so a
/// failed test leaves nothing frozen.
struct FreezableFs {
    /// Holds the image and the mount point; removed after the unmount.
    _dir: TempDir,
    mnt: std::path::PathBuf,
}

impl FreezableFs {
    /// `None` when this machine cannot make one (no loop device, no
    /// mkfs.ext4): the caller says so through `require`.
    fn new(name: &str) -> Option<FreezableFs> {
        let dir = TempDir::new(name);
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).ok()?;
        std::fs::File::create(&img).ok()?.set_len(16 << 20).ok()?;
        let ok = |cmd: &mut std::process::Command| cmd.status().is_ok_and(|s| s.success());
        if !ok(std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img))
        {
            return None;
        }
        let mounted = ok(std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt));
        mounted.then_some(FreezableFs { _dir: dir, mnt })
    }

    fn path(&self) -> &std::path::Path {
        &self.mnt
    }

    fn fsfreeze(&self, flag: &str) -> bool {
        std::process::Command::new("fsfreeze")
            .arg(flag)
            .arg(&self.mnt)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for FreezableFs {
    fn drop(&mut self) {
        self.fsfreeze("-u");
        // Lazy: a process still writing there (the old ward) lets go later.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .status();
    }
}

/// stderr redirected to a file on a filesystem that stops taking writes
/// (frozen; a hung NFS or FUSE server does the same): the reaping thread must
/// not wait with it. It wrote to the file itself and sat in write(2): the
/// orphans stayed zombies and SIGTERM never reached the child. Once the
/// filesystem thaws, every line gets there, whole.
#[test]
fn stderr_on_a_frozen_filesystem_does_not_stop_pid1() {
    if !require_root("stderr_on_a_frozen_filesystem") {
        return;
    }
    let fs = FreezableFs::new("log-frozen");
    if !require(
        "a loop device, mkfs.ext4 and mount",
        fs.is_some(),
        "stderr_on_a_frozen_filesystem",
    ) {
        return;
    }
    let fs = fs.unwrap();
    let side = TempDir::new("log-frozen-side");
    let go = side.path().join("go");
    let got_term = side.path().join("got-term");
    let log_path = fs.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");
    // USR1 is ignored by the shell but forwarded (and, with -v, logged) by
    // ward: the first line that meets the frozen file.
    let script = format!(
        "trap '' USR1; trap 'echo TERM > {}; exit 7' TERM; echo ready; \
         while [ ! -e {} ]; do sleep 0.05; done; {} orphans 5 >/dev/null; echo orphaned; \
         while :; do sleep 0.05; done",
        got_term.display(),
        go.display(),
        workload()
    );
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--", "/bin/sh", "-c", &script]),
        log.into(),
        Duration::from_secs(60),
    );
    p.expect_line("ready");
    assert!(fs.fsfreeze("-f"), "fsfreeze -f {}", fs.path().display());
    p.signal_ward(libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&go, b"").expect("write the go file");
    p.expect_line("orphaned");
    let reaped = within(Duration::from_secs(5), || zombies_under(p.pid()) == 0);
    let left = zombies_under(p.pid());
    // The serving thread says where the lines are held, in the words for a
    // file (not "nothing reads").
    let (stalled, status) = status_within(p.ward_pid(), "STDERR STALLED: ");
    p.signal_ward(libc::SIGTERM);
    let forwarded = within(Duration::from_secs(5), || got_term.exists());
    assert!(
        reaped,
        "{left} zombies left under ward while its stderr's filesystem is frozen"
    );
    assert!(forwarded, "SIGTERM never reached the child");
    assert!(stalled, "no STDERR STALLED line in:\n{status}");
    assert!(
        status.contains("the file the container's stderr goes to takes no writes"),
        "{status}"
    );

    assert!(fs.fsfreeze("-u"), "fsfreeze -u {}", fs.path().display());
    let out = p.wait();
    assert_eq!(out.code, 7, "ward must exit with the child's code");
    let text = std::fs::read_to_string(&log_path).expect("read the log file");
    for want in [
        "forwarded SIGUSR1",
        "forwarded SIGTERM",
        "exited with code 7",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert!(
        text.lines().all(|l| l.starts_with("ward: ")),
        "a line not whole, or not ward's:\n{text}"
    );
}

/// A pids limit with room for ward's usual tasks and the child but not one
/// more: the file writer is what is left out, never the child. It was
/// started before the child, which then could not be forked (exit 125).
#[test]
fn a_pids_limit_leaves_out_the_file_writer_not_the_child() {
    use common::cgroup_v1::{CgroupV1, require_v1};
    if !require_v1(
        "cgroup v1 pids",
        &["pids"],
        "a_pids_limit_leaves_out_the_file_writer",
    ) {
        return;
    }
    let g = CgroupV1::new("log-pids", &["pids"]);
    // unshare, ward, its watch thread and the child.
    g.set("pids", "pids.max", "4");
    let dir = TempDir::new("log-pids");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");
    let mut cmd = ward_pid1(["--", workload(), "exit", "3"]);
    g.wrap(&mut cmd);
    let out = Proc::start_with_stderr(cmd, log.into(), Duration::from_secs(30)).wait();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert_eq!(out.code, 3, "the child must run:\n{text}");
    assert!(text.contains("exited with code 3"), "{text}");
}

/// A loop device over a 4 KiB file: a block device that takes 4 KiB and then
/// fails every write with ENOSPC. Detached when dropped.
struct SmallLoopDev {
    _dir: TempDir,
    dev: String,
}

impl SmallLoopDev {
    fn new(name: &str) -> Option<SmallLoopDev> {
        let dir = TempDir::new(name);
        let img = dir.path().join("dev.img");
        std::fs::write(&img, [0u8; 4096]).ok()?;
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&img)
            .output()
            .ok()?;
        let dev = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && dev.starts_with("/dev/"))
            .then_some(SmallLoopDev { _dir: dir, dev })
    }
}

impl Drop for SmallLoopDev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.dev])
            .status();
    }
}

/// stderr on a block device that is full (a file on a full disk fails the
/// same way, but when is up to the filesystem): the writer thread's failures
/// are said by `ward status` (STDERR FAILS, with the lines lost), though
/// nothing waits, since the pipe to it takes every line. It said nothing.
#[test]
fn status_says_writes_to_a_full_device_fail() {
    if !require_root("status_full_device") {
        return;
    }
    let dev = SmallLoopDev::new("log-full-dev");
    if !require(
        "a loop device (losetup)",
        dev.is_some(),
        "status_full_device",
    ) {
        return;
    }
    let dev = dev.unwrap();
    let stderr = std::fs::OpenOptions::new()
        .write(true)
        .open(&dev.dev)
        .expect("open the loop device");
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--", workload(), "signal-echo"]),
        stderr.into(),
        Duration::from_secs(60),
    );
    p.expect_line("ready");
    // More than the device's 4 KiB.
    for _ in 0..100 {
        p.signal_ward(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(10));
    }
    let (said, text) = status_within(p.ward_pid(), "STDERR FAILS: ");
    assert!(said, "no STDERR FAILS line in:\n{text}");
    assert!(
        text.contains("of ward's log lost") && !text.contains("STALLED"),
        "{text}"
    );
    p.signal_ward(libc::SIGKILL);
}

/// A line the watch thread queued at a full stderr goes out once the
/// reader comes back, though nothing else happens: before, only the
/// reaping thread polled for room, and an EMF line does not wake it, so the
/// line waited for the watch thread's next line (here 8 s later; with the
/// default --emf-interval, a minute).
#[test]
fn a_watch_line_queued_at_a_full_stderr_goes_out_when_the_reader_returns() {
    if !require_root("watch_line_queued") {
        return;
    }
    let fifo = StalledFifo::new("log-watch-queued");
    assert!(fifo.fill() >= 4096);
    // -q: ward's info lines stay out; the EMF line (written whatever the
    // level, about 8 s in) is the one line to come.
    let p = Proc::start_with_stderr(
        ward_pid1([
            "-q",
            "--no-oom-adjust",
            "--emf",
            "--emf-interval",
            "8s",
            "--",
            "/bin/sh",
            "-c",
            "echo ready; exec sleep 60",
        ]),
        fifo.writer(),
        Duration::from_secs(40),
    );
    p.expect_line("ready");
    std::thread::sleep(Duration::from_secs(10));
    let mut got = fifo.drain();
    // Well before the next EMF line, at about 16 s.
    let arrived = within(Duration::from_secs(4), || {
        got.extend(fifo.drain());
        String::from_utf8_lossy(&got).contains("\"_aws\"")
    });
    drop(p);
    assert!(
        arrived,
        "the queued EMF line never came:\n{}",
        String::from_utf8_lossy(&got)
    );
}

/// A main process that `exec`s its app and ends while ward's lines wait
/// for stderr is named as the app: that wait reaped without reading the
/// name (the Docker review saw "main process sh" in 2 of 3 runs of
/// `sh -c 'cd /; exec APP'`, whose stderr the shim had not read yet).
#[test]
fn an_exec_d_app_ending_while_lines_wait_is_named_as_the_app() {
    if !require_root("an_exec_d_app_ending_while_lines_wait") {
        return;
    }
    let fifo = Arc::new(StalledFifo::new("log-name"));
    assert!(fifo.fill() >= 4096);
    let script = format!("sleep 0.3; exec {} exit 3", workload());
    // -v: the first line meets the full FIFO, so ward waits for room while
    // the child runs and ends.
    let p = Proc::start_with_stderr(
        ward_pid1(["-v", "--", "/bin/sh", "-c", &script]),
        fifo.writer(),
        Duration::from_secs(20),
    );
    std::thread::sleep(Duration::from_millis(800));
    let (got, stop, reader) = start_reader(&fifo);
    let out = p.wait();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert_eq!(out.code, 3, "{text}");
    let report = text
        .lines()
        .find(|l| l.contains("[exit_report]"))
        .unwrap_or_else(|| panic!("no report:\n{text}"));
    assert!(
        report.contains("main process ward-workload (pid ") && report.contains("started as sh"),
        "{report}"
    );
}
