//! One init as PID 1 of a fresh PID namespace:
//! `unshare --pid --fork --mount-proc INIT... COMMAND...`, with the command's
//! stdin and stdout as pipes to the harness.
//!
//! Owns the `unshare` process and makes sure nothing outlives a measurement:
//! dropping a [`Container`] SIGKILLs the init, which takes the whole namespace
//! with it. Reads are `poll`ed with a deadline, so a hung init fails the
//! measurement instead of the harness.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::procfs::Proc;

/// How long a container gets to start its command.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `unshare ... INIT ... COMMAND`.
pub struct Container {
    unshare: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    buf: Vec<u8>,
    init_pid: Option<i32>,
    exited: Option<ExitStatus>,
}

/// The argv that runs `argv` as PID 1 of a new PID namespace with its own /proc.
/// `--kill-child` (util-linux 2.32+) SIGKILLs the init if `unshare` dies, so an
/// interrupted harness leaves no namespace behind.
pub fn unshare_command(argv: &[OsString]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args(argv);
    c
}

impl Container {
    /// Starts `init_argv` (the init and its options up to `--`, or nothing to
    /// run `command` itself as PID 1) followed by `command`.
    pub fn start(init_argv: &[OsString], command: &[OsString]) -> Result<Container, String> {
        Container::start_with_stderr(init_argv, command, Stdio::null())
    }

    /// [`Container::start`], with the init's (and the command's) stderr
    /// going to `stderr`: a file, so nothing has to drain it while the
    /// measurement runs.
    pub fn start_with_stderr(
        init_argv: &[OsString],
        command: &[OsString],
        stderr: Stdio,
    ) -> Result<Container, String> {
        let argv: Vec<OsString> = init_argv.iter().chain(command).cloned().collect();
        let mut child = unshare_command(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        Ok(Container {
            unshare: child,
            stdin,
            stdout,
            buf: Vec::new(),
            init_pid: None,
            exited: None,
        })
    }

    /// The init's pid on the host: `unshare`'s only child, once it has exec'd.
    pub fn init_pid(&mut self) -> Result<i32, String> {
        if let Some(pid) = self.init_pid {
            return Ok(pid);
        }
        let proc = Proc::default();
        let parent = self.unshare.id() as i32;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(&pid) = proc.children(parent).first() {
                // Until it execs, the forked child is still `unshare`.
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim_end() != "unshare" {
                    self.init_pid = Some(pid);
                    return Ok(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err("the init did not start".into())
    }

    /// The next line of the command's stdout, without the newline.
    pub fn read_line(&mut self, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            self.fill(deadline)?;
        }
    }

    /// Waits for a line equal to `want`, skipping others.
    pub fn expect_line(&mut self, want: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.read_line(left)? == want {
                return Ok(());
            }
        }
    }

    /// The next byte of the command's stdout.
    pub fn read_byte(&mut self, timeout: Duration) -> Result<u8, String> {
        let deadline = Instant::now() + timeout;
        while self.buf.is_empty() {
            self.fill(deadline)?;
        }
        Ok(self.buf.remove(0))
    }

    /// One read(2) into the buffer, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), String> {
        let fd = self.stdout.as_raw_fd();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if rc <= 0 {
                return Err(format!("no output within {left:?}"));
            }
            let mut chunk = [0u8; 4096];
            // SAFETY: reading into a local buffer of the given size.
            let n = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len()) };
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n <= 0 {
                return Err("the command's stdout closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n as usize]);
            return Ok(());
        }
    }

    /// Writes `text` to the command's stdin.
    pub fn send(&mut self, text: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin already closed")?;
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("write to stdin: {e}"))
    }

    /// Sends `sig` to the init.
    pub fn signal_init(&mut self, sig: i32) -> Result<(), String> {
        let pid = self.init_pid()?;
        // SAFETY: kill(2) on a pid this container owns and has not reaped.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(format!("kill: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Waits until `unshare` exits, which is after the init and every other
    /// process of the namespace are gone.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Some(st) = self.exited {
            return Ok(st);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.unshare.try_wait() {
                Ok(Some(st)) => {
                    self.exited = Some(st);
                    return Ok(st);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Ok(None) => return Err(format!("still running after {timeout:?}")),
                Err(e) => return Err(format!("wait: {e}")),
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        // SIGKILL to a namespace's PID 1 kills every process in it.
        if let Some(pid) = self.init_pid {
            // SAFETY: kill(2) on the init, which unshare has not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

/// One `unshare ... argv` run: its wall time, and the CPU time and minor
/// page faults of `unshare`, the init and whatever the init reaped.
pub struct Timed {
    /// From spawn to reap.
    pub wall: Duration,
    /// `ru_utime` + `ru_stime` of the whole tree.
    pub cpu: Duration,
    /// `ru_minflt` of the whole tree.
    pub minor_faults: u64,
    /// `unshare`'s pid, the root of the tree.
    pub pid: u32,
}

/// Runs `unshare ... argv` with no I/O; see [`Timed`].
pub fn time_run(argv: &[OsString]) -> Result<Timed, String> {
    time_run_with_stderr(argv, Stdio::null())
}

/// [`time_run`], with stderr going to `stderr` (a file, say).
pub fn time_run_with_stderr(argv: &[OsString], stderr: Stdio) -> Result<Timed, String> {
    let mut cmd = unshare_command(argv);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let t0 = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 rather than Child::wait: the rusage of the child and of every
    // descendant it waited for (the init, which reaped `true`).
    // SAFETY: our own child, not yet reaped; valid out-pointers.
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = t0.elapsed();
    if rc < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("exited with wait status {status:#x}"));
    }
    Ok(Timed {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        minor_faults: usage.ru_minflt as u64,
        pid: child.id(),
    })
}

/// A rusage time as a `Duration` (a negative field, which the kernel never
/// fills in, as zero).
fn timeval(t: libc::timeval) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u64::try_from(t.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rusage_times_become_durations() {
        let t = |tv_sec, tv_usec| libc::timeval { tv_sec, tv_usec };
        assert_eq!(timeval(t(1, 500_000)), Duration::from_micros(1_500_000));
        assert_eq!(timeval(t(0, 1_234)), Duration::from_micros(1_234));
        assert_eq!(timeval(t(-1, -5)), Duration::ZERO);
    }

    #[test]
    fn a_run_counts_the_cpu_of_the_whole_tree() {
        // unshare needs root: only a run outside CI may skip, and says so
        // straight to fd 2 (libtest captures `eprintln!` of a passing test).
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "not root in CI, where this must run"
            );
            use std::io::Write;
            let _ = std::io::stderr().write_all(
                b"SKIPPED: a_run_counts_the_cpu_of_the_whole_tree: unshare needs root\n",
            );
            return;
        }
        let busy: Vec<OsString> = vec![
            "sh".into(),
            "-c".into(),
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done".into(),
        ];
        let busy = time_run(&busy).expect("a busy loop under unshare");
        let idle = time_run(&["true".into()]).expect("true under unshare");
        // The loop runs as the init, below the `unshare` waited for: its
        // CPU counts only if the rusage takes in what `unshare` reaped, and
        // mostly as user time. CPU, not wall, so load on the machine cannot
        // reverse it.
        assert!(
            busy.cpu > idle.cpu + Duration::from_millis(5),
            "a busy loop {:?}, true {:?}",
            busy.cpu,
            idle.cpu
        );
        assert!(busy.cpu <= busy.wall * 2 + Duration::from_millis(20));
    }
}
