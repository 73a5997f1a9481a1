//! Shared support for integration tests: running the real `ward` binary (often
//! as PID 1 of a fresh PID namespace) with a kill-on-timeout guard, reading
//! its output line by line, and finding processes from the host's view.
#![allow(dead_code)]

pub mod cgroup_v1;
pub mod docker;
pub mod elf;
pub mod events;
pub mod fixtures;
pub mod promtool;
pub mod verdicts;
pub mod vm;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The ward binary under test.
pub fn ward() -> &'static str {
    env!("CARGO_BIN_EXE_ward")
}

/// The test workload binary.
pub fn workload() -> &'static str {
    env!("CARGO_BIN_EXE_ward-workload")
}

/// True in CI, where every environment the tests need must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns false (after saying so) when a test that needs `what` cannot run
/// here; panics instead in CI, where a skip would hide a broken setup.
pub fn require(what: &str, available: bool, test: &str) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!("{test}: needs {what}, which CI must provide");
    }
    skipped(&format!("{test}: needs {what}"));
    false
}

/// Says a test was skipped, straight to fd 2: libtest captures `eprintln!`
/// of passing tests, and a skip must never be silent.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("SKIPPED: {why}\n").as_bytes());
}

/// Holds the machine for one case at a time within a test binary
/// (poison-tolerant: one failed case must not fail the others).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Skip-or-fail guard for tests that need root (PID namespaces, cgroups).
pub fn require_root(test: &str) -> bool {
    require("root", is_root(), test)
}

/// `unshare --pid --fork --mount-proc --kill-child ARGS...`: the program in
/// ARGS as PID 1 of a new PID namespace with its own /proc, killed if the
/// test's guard kills unshare. See [`Proc::pid1_as`] for its host pid.
pub fn in_pid_namespace<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = Command::new("unshare");
    without_ward_variables(&mut cmd);
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    cmd.args(args);
    cmd
}

/// ward as PID 1 of a new PID namespace ([`in_pid_namespace`]) with ARGS.
pub fn ward_pid1<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = in_pid_namespace([ward()]);
    cmd.args(args);
    cmd
}

/// `ward ARGS...` as an ordinary process (a subreaper, not PID 1).
pub fn ward_plain<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = Command::new(ward());
    without_ward_variables(&mut cmd);
    cmd.args(args);
    cmd
}

/// Leaves out of `cmd`'s environment every `WARD_*` variable the test run
/// inherited: the harness's own (`WARD_VM_KERNEL`, `WARD_SCENARIOS_*`),
/// which ward would name as unknown, and a developer's settings (a
/// `WARD_LOG_FORMAT=json` in the shell), which would change what the tests
/// read. A test gives ward its variables with `cmd.env` after this.
pub fn without_ward_variables(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"WARD_") {
            cmd.env_remove(name);
        }
    }
}

/// The words of `line` split at spaces, `WL` standing for the workload
/// binary: `"--no-watch -- WL exit 3"`. For arguments without spaces in them;
/// a shell script goes to [`ward_pid1`] whole.
pub fn argv(line: &str) -> Vec<String> {
    line.split_ascii_whitespace()
        .map(|w| {
            if w == "WL" {
                workload().into()
            } else {
                w.into()
            }
        })
        .collect()
}

/// The PID-namespace runner of root tests: ward as PID 1 with the arguments
/// of `line` (see [`argv`]), or `None` after a visible skip when `test`
/// cannot have root here (a failure in CI).
pub fn pid1(test: &str, line: &str) -> Option<Command> {
    require_root(test).then(|| ward_pid1(argv(line)))
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (128+N if it died of signal N).
    pub code: i32,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Outcome {
    /// Fails with everything the run left unless ward's stderr contains `want`.
    pub fn expect_stderr(&self, want: &str) {
        assert!(
            self.stderr.contains(want),
            "expected {want:?} on stderr\n{}",
            self.dump()
        );
    }

    /// Everything the run left, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "--- exit {} after {:?}\n--- stdout:\n{}--- stderr:\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// A directory for one case, `$TMPDIR/ward-<name>-<pid>`, emptied when made
/// and removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates the directory, removing a leftover of an earlier run first.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("ward-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running process under a guard: killed (with its whole process group)
/// when dropped or when its deadline passes.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
    deadline: Instant,
    what: String,
}

impl Proc {
    /// Starts `cmd` in its own process group with piped output; `limit` is the
    /// most it may run before the guard kills it and the test fails.
    pub fn start(cmd: Command, limit: Duration) -> Proc {
        Proc::spawn(cmd, Stdio::piped(), limit)
    }

    /// Like [`Proc::start`], but the process's stderr is `stderr` (say a
    /// [`StalledFifo::writer`]) instead of a pipe the test drains.
    pub fn start_with_stderr(cmd: Command, stderr: std::os::fd::OwnedFd, limit: Duration) -> Proc {
        Proc::spawn(cmd, Stdio::from(stderr), limit)
    }

    /// Spawns under the guard; stderr is collected when it is a pipe.
    fn spawn(mut cmd: Command, stderr: Stdio, limit: Duration) -> Proc {
        let what = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // SAFETY: setpgid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let (tx, lines) = channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let stderr = match child.stderr.take() {
            Some(mut err) => {
                let stderr = Arc::new(Mutex::new(String::new()));
                let sink = stderr.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = err.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                });
                stderr
            }
            None => Arc::new(Mutex::new(String::from("(stderr went to a FIFO)"))),
        };
        let started = Instant::now();
        Proc {
            child,
            lines,
            stdout,
            stderr,
            started,
            deadline: started + limit,
            what,
        }
    }

    /// The host pid of the started process (unshare's, when under unshare).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The host pid of ward itself: unshare's only child, or the process.
    pub fn ward_pid(&self) -> i32 {
        let pid = self.pid();
        let is_unshare = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "unshare");
        if !is_unshare {
            return pid;
        }
        self.pid1_as("ward")
    }

    /// The host pid of the namespace's PID 1 under unshare (its only child),
    /// once that child has exec'd `comm`.
    pub fn pid1_as(&self, comm: &str) -> i32 {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(&k) = children(self.pid()).first()
                && std::fs::read_to_string(format!("/proc/{k}/comm"))
                    .is_ok_and(|c| c.trim() == comm)
            {
                return k;
            }
            assert!(
                Instant::now() < until,
                "{comm} never became PID 1 under unshare"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The address ward's metrics endpoint bound, from its start line
    /// (`--metrics 127.0.0.1:0` picks a free port).
    pub fn metrics_address(&self) -> std::net::SocketAddr {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let err = self.stderr_now();
            if let Some(rest) = err.split("serving Prometheus metrics at http://").nth(1) {
                let addr = rest.split("/metrics").next().unwrap();
                return addr.parse().expect("address in the start line");
            }
            assert!(Instant::now() < until, "no metrics start line:\n{err}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to ward (not to unshare).
    pub fn signal_ward(&self, sig: i32) {
        // SAFETY: plain kill(2).
        assert_eq!(unsafe { libc::kill(self.ward_pid(), sig) }, 0, "kill ward");
    }

    /// Waits for a stdout line satisfying `pred`; fails the test with all
    /// output if the deadline passes first.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => self.fail("timed out waiting for a line"),
                Err(RecvTimeoutError::Disconnected) => self.fail("stdout closed before the line"),
            }
        }
    }

    /// Waits for an exact stdout line.
    pub fn expect_line(&self, want: &str) {
        self.wait_line(|l| l == want);
    }

    /// Returns the next stdout line if one arrives within `within`.
    pub fn next_line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds `want`; fails the test with all output if
    /// the deadline passes first.
    pub fn wait_stderr(&self, want: &str) {
        while !self.stderr.lock().unwrap().contains(want) {
            if Instant::now() > self.deadline {
                self.fail(&format!("no {want:?} on stderr"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        );
    }

    /// Waits for exit within the deadline.
    pub fn wait(mut self) -> Outcome {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    use std::os::unix::process::ExitStatusExt;
                    let code = status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                    let elapsed = self.started.elapsed();
                    // Let the reader threads drain the pipes.
                    let until = Instant::now() + Duration::from_secs(2);
                    while Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                        if Arc::strong_count(&self.stdout) == 1
                            && Arc::strong_count(&self.stderr) == 1
                        {
                            break;
                        }
                    }
                    return Outcome {
                        code,
                        stdout: self.stdout.lock().unwrap().clone(),
                        stderr: self.stderr.lock().unwrap().clone(),
                        elapsed,
                    };
                }
                Ok(None) if Instant::now() < self.deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => self.fail("did not exit in time"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // ward starts its child in a process group of its own, so the
            // group's SIGKILL leaves the child and what it started running:
            // under a subreaper ward they outlived the test (a `sleep 60`
            // per run). Their pids first, while ward still holds them.
            let left = tree_below(self.child.id() as i32);
            // SAFETY: kill(2) on the process group we created.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            for pid in left {
                // SAFETY: plain kill(2); a pid reaped meanwhile is ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.wait();
        }
    }
}

/// SIGKILLs `root`'s descendants, taken from the `children` files first,
/// then `root` itself: ward starts its child in a process group of its
/// own, so killing ward (or its group) leaves the child running.
pub fn kill_tree(root: i32) {
    let left = tree_below(root);
    for pid in std::iter::once(root).chain(left) {
        // SAFETY: plain kill(2); a pid reaped meanwhile is ESRCH.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// Every process below `root`, from each of its threads' `children`
/// files (never a panic: this runs in `Drop`).
fn tree_below(root: i32) -> Vec<i32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let pid = found[i];
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            found.extend(
                kids.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// Runs `cmd` to completion under a guard.
pub fn run(cmd: Command, limit: Duration) -> Outcome {
    Proc::start(cmd, limit).wait()
}

/// Checks ward's shutdown of `WL stragglers N --ignore-term` under
/// `--grace`: it exited 0 after sending SIGTERM to all N, then SIGKILL once
/// the grace (`grace` in ward's words, "1 s") was over, naming each (N is at
/// most 5, all ward names).
pub fn expect_stragglers_killed(out: &Outcome, n: usize, grace: &str) {
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr(&format!("sent SIGTERM to {n} remaining processes"));
    let head = format!("{n} processes still running after the {grace} grace: sent SIGKILL to ");
    out.expect_stderr(&head);
    let line = out.stderr.lines().find(|l| l.contains(&head)).unwrap();
    assert_eq!(
        line.matches("ward-workload (pid ").count(),
        n,
        "each straggler named: {line}"
    );
}

/// Task `tid` of process `pid`'s scheduler slice in ns: `se.slice` in its
/// `sched` file. `None` where the kernel shows no such line (before
/// custom slices, Linux 6.12) or the task is gone.
pub fn slice_ns(pid: i32, tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/sched")).ok()?;
    let line = text.lines().find(|l| l.starts_with("se.slice"))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// Direct children of `pid` (host view).
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// (pid, ppid, state) of every process on the host, read with ward's own
/// [`ward::procs::ProcTable`] (a process that vanishes mid-scan is skipped).
pub fn process_table() -> Vec<(i32, i32, char)> {
    let mut table = ward::procs::ProcTable::new();
    table
        .scan(std::path::Path::new("/proc"))
        .unwrap_or_else(|e| panic!("reading the host's process table: {e}"));
    table
        .entries()
        .iter()
        .map(|e| (e.pid, e.ppid, char::from(e.state)))
        .collect()
}

/// All descendants of `root` with their states (host view).
pub fn descendants(root: i32) -> Vec<(i32, char)> {
    let table = process_table();
    let mut found = vec![root];
    let mut out = Vec::new();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for &(pid, ppid, state) in &table {
            if ppid == parent {
                found.push(pid);
                out.push((pid, state));
            }
        }
        i += 1;
    }
    out
}

/// Zombies among the descendants of `root`.
pub fn zombies_under(root: i32) -> usize {
    descendants(root).iter().filter(|(_, s)| *s == 'Z').count()
}

// ---------------------------------------------------------------------------
// Stalled stderr (tests/log_stalled.rs): a FIFO nobody reads until the test
// says so, and a `Proc` whose stderr is such a FIFO.

/// A FIFO in its own temp dir. The test holds it open O_RDWR|O_NONBLOCK, so
/// opening its write side never waits for a reader and the test can fill or
/// drain it without blocking; nothing else reads it.
pub struct StalledFifo {
    dir: TempDir,
    path: std::path::PathBuf,
    held: std::os::fd::OwnedFd,
}

impl StalledFifo {
    /// Creates `$TMPDIR/ward-NAME-PID/stderr.fifo` (in a [`TempDir`],
    /// removed on drop) and holds it open.
    pub fn new(name: &str) -> StalledFifo {
        use std::os::fd::FromRawFd;
        let dir = TempDir::new(name);
        let path = dir.path().join("stderr.fifo");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo/open on a NUL-terminated path; the fd is owned below.
        let held = unsafe {
            assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0, "mkfifo");
            let fd = libc::open(
                c.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            );
            assert!(fd >= 0, "open fifo: {}", std::io::Error::last_os_error());
            std::os::fd::OwnedFd::from_raw_fd(fd)
        };
        StalledFifo { dir, path, held }
    }

    /// The temp dir (for files a child writes).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A new, *blocking* write-only open of the FIFO: what the process under
    /// test gets as its stderr (a writer there waits when the FIFO is full).
    pub fn writer(&self) -> std::os::fd::OwnedFd {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .expect("open fifo for writing")
            .into()
    }

    /// Fills the FIFO with `filler` lines until it takes no more; returns the
    /// bytes written.
    pub fn fill(&self) -> usize {
        use std::os::fd::AsRawFd;
        let line = [b"filler ".as_slice(), &[b'.'; 56], b"\n"].concat();
        let mut total = 0;
        loop {
            // SAFETY: write(2) of a live buffer on an fd we own.
            let n = unsafe { libc::write(self.held.as_raw_fd(), line.as_ptr().cast(), line.len()) };
            if n <= 0 {
                return total;
            }
            total += n as usize;
        }
    }

    /// Reads everything the FIFO holds now, without waiting.
    pub fn drain(&self) -> Vec<u8> {
        use std::os::fd::AsRawFd;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: read(2) into a live buffer on an fd we own.
            let n =
                unsafe { libc::read(self.held.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }
}

/// One `GET /metrics` with a read deadline: (status, content type, body).
pub fn scrape_within(
    addr: std::net::SocketAddr,
    within: Duration,
) -> std::io::Result<(u16, String, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, within)?;
    s.set_read_timeout(Some(within))?;
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\nHost: ward\r\n\r\n")?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .split("\r\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((status, ctype, body.to_string()))
}
