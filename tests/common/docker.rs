//! Docker harness for end-to-end tests: builds a `FROM scratch` image holding the
//! static `ward`, `ward-workload` and busybox, runs containers with a
//! kill-on-timeout guard, reads their logs and state, and always removes them.
//!
//! It owns nothing of ward itself and never touches containers it did not create
//! (every name starts with `ward-test-<pid>-`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The ward binary under test. Debug and release builds are both static
/// (`.cargo/config.toml`), so either runs in a `FROM scratch` image.
const WARD: &str = env!("CARGO_BIN_EXE_ward");
/// The test workload, once branch `procs` is merged.
const WORKLOAD: Option<&str> = option_env!("CARGO_BIN_EXE_ward-workload");
/// Debian's busybox-static: a shell, `ps` and `cat` for a scratch image.
const BUSYBOX: &str = "/bin/busybox";
/// Busybox applets linked into `/bin`, so `sh -c '...; sleep 30'` works.
const APPLETS: &[&str] = &[
    "sh", "cat", "ps", "sleep", "kill", "ls", "echo", "true", "false", "env",
];
const DOCKERFILE: &str = "\
FROM scratch
COPY . /
ENV PATH=/bin
ENTRYPOINT [\"/ward\", \"--\"]
";

/// How long a docker CLI call may take before the test gives up on it. The
/// machine is small and shared, so this is generous; a hang still fails.
const CLI_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an exited container's `State.OOMKilled` may take to turn true.
const OOM_FLAG_SETTLE: Duration = Duration::from_secs(2);

pub use super::in_ci;

/// `docker run` options for a 32 MiB memory limit without swap, so the OOM
/// killer cannot be avoided by swapping.
pub const MEMORY_32M: &[&str] = &["--memory", "32m", "--memory-swap", "32m"];

/// A main process that allocates 100 MiB half a second after it starts.
/// Docker's `OOMKilled` comes from containerd's OOM watch, set up after
/// the container starts: a kill in the first milliseconds can go
/// unrecorded (containerd issues 8180 and 8893; seen here twice, under
/// load). Tests that take Docker's word for an OOM kill start it later.
pub const HOG_100_DELAYED: [&str; 5] = ["ward-workload", "hog", "100", "--delay-ms", "500"];

/// `ward-workload signals --exit-on TERM --exit-code 7`: an app that prints
/// `ready`, logs every signal it gets and exits 7 on SIGTERM.
pub const EXITS_7_ON_TERM: &[&str] = &[
    "ward-workload",
    "signals",
    "--exit-on",
    "TERM",
    "--exit-code",
    "7",
];

/// Access to the test image. Holding it serialises the Docker tests of one test
/// binary: two cores are shared, and a 5000-process storm next to a timing test
/// would make the timing meaningless.
pub struct Docker {
    image: &'static str,
    _serial: MutexGuard<'static, ()>,
}

/// The Docker engine and test image, or `None` after printing `SKIPPED` on a
/// developer machine without Docker. Panics under CI, which promises Docker.
pub fn docker() -> Option<Docker> {
    static SERIAL: Mutex<()> = Mutex::new(());
    static IMAGE: OnceLock<Option<String>> = OnceLock::new();
    // A test that panicked while holding the lock leaves it poisoned; the lock
    // only orders tests, it protects no data.
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let image = IMAGE.get_or_init(|| {
        if let Err(why) = docker_cli(&["info"], Duration::from_secs(30)).and_then(CliOutput::ok) {
            if in_ci() {
                panic!("CI=true promises a Docker engine, but `docker info` failed:\n{why}");
            }
            return None;
        }
        Some(build_image().unwrap_or_else(|e| panic!("building the test image failed: {e}")))
    });
    match image {
        Some(tag) => Some(Docker {
            image: tag.as_str(),
            _serial: serial,
        }),
        None => {
            super::skipped("docker not available");
            None
        }
    }
}

/// Like [`docker`], but also needs `ward-workload` in the image; without it the
/// test is skipped on a developer machine and fails under CI.
pub fn docker_with_workload() -> Option<Docker> {
    let docker = docker()?;
    if WORKLOAD.is_none() {
        if in_ci() {
            panic!("CI=true but ward-workload was not built: merge branch `procs`");
        }
        super::skipped("ward-workload not built");
        return None;
    }
    Some(docker)
}

impl Docker {
    /// The image tag (`ward-test:<content hash>`).
    pub fn image(&self) -> &str {
        self.image
    }

    /// `docker run -d` with these options before the image and `cmd` after it
    /// (the arguments to ward's `ENTRYPOINT ["/ward", "--"]`, unless the options
    /// replace the entrypoint). The container is removed when the guard drops.
    pub fn run(&self, options: &[&str], cmd: &[&str]) -> Container<'_> {
        self.run_image(self.image, options, cmd)
    }

    /// [`Docker::run`], then waits (30 s at most) until the app logs `ready`.
    pub fn run_ready(&self, options: &[&str], cmd: &[&str]) -> Container<'_> {
        let ctr = self.run(options, cmd);
        ctr.wait_for_log("ready", Duration::from_secs(30));
        ctr
    }

    /// An image `FROM` the test image plus `lines` (e.g. a `HEALTHCHECK`),
    /// built once per content and tagged `ward-test-derived:<hash>`.
    pub fn derived_image(&self, lines: &str) -> String {
        let dockerfile = format!("FROM {}\n{lines}\n", self.image);
        let mut hash = Fnv64::default();
        hash.feed(dockerfile.as_bytes());
        let tag = format!("ward-test-derived:{:016x}", hash.0);
        if docker_cli(&["image", "inspect", &tag], CLI_TIMEOUT).is_ok_and(|o| o.success) {
            return tag;
        }
        let dir = std::env::temp_dir().join(format!(
            "ward-docker-derived-{}-{:016x}",
            std::process::id(),
            hash.0
        ));
        let built = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("Dockerfile"), &dockerfile))
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|()| {
                let ctx = dir.to_str().ok_or("temp dir is not UTF-8")?;
                docker_cli(&["build", "-q", "-t", &tag, ctx], Duration::from_secs(600))?.ok()
            });
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(why) = built {
            panic!("building {tag} from\n{dockerfile}failed: {why}");
        }
        tag
    }

    /// Like [`Docker::run`], on `image` (the test image or one derived from it).
    pub fn run_image(&self, image: &str, options: &[&str], cmd: &[&str]) -> Container<'_> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let container = Container {
            name: format!(
                "ward-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            _docker: self,
        };
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &container.name,
            "--label",
            "ward-test=1",
        ];
        args.extend_from_slice(options);
        args.push(image);
        args.extend_from_slice(cmd);
        // The guard exists before `docker run`, so a container that was created
        // but failed to start is removed too.
        if let Err(why) = docker_cli(&args, CLI_TIMEOUT).and_then(CliOutput::ok) {
            container.fail(&format!("`docker {}` failed: {why}", args.join(" ")));
        }
        container
    }
}

/// A running or exited container; removed (`docker rm -f`) on drop, panic or not.
pub struct Container<'a> {
    name: String,
    _docker: &'a Docker,
}

/// How a container ended, as `docker inspect` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// `State.ExitCode`.
    pub code: i64,
    /// `State.OOMKilled`.
    pub oom_killed: bool,
}

impl Container<'_> {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the container wrote: stdout, then stderr (where ward logs).
    pub fn logs(&self) -> String {
        match docker_cli(&["logs", &self.name], CLI_TIMEOUT) {
            Ok(out) => format!("{}{}", out.stdout, out.stderr),
            Err(why) => format!("<docker logs failed: {why}>"),
        }
    }

    /// Panics with `msg` followed by the container's logs and state.
    pub fn fail(&self, msg: &str) -> ! {
        let state = docker_cli(
            &[
                "inspect",
                "-f",
                "status={{.State.Status}} exit={{.State.ExitCode}} oom_killed={{.State.OOMKilled}} error={{.State.Error}}",
                &self.name,
            ],
            CLI_TIMEOUT,
        )
        .map(|o| o.stdout.trim().to_string())
        .unwrap_or_else(|e| format!("<docker inspect failed: {e}>"));
        panic!(
            "{msg}\n--- container {} ({state}) ---\n--- docker logs ---\n{}--- end of logs ---",
            self.name,
            self.logs()
        );
    }

    /// Fails with `msg`, the logs and the state unless `ok`.
    pub fn check(&self, ok: bool, msg: &str) {
        if !ok {
            self.fail(msg);
        }
    }

    /// Waits for the container to exit; after `timeout` kills it and fails.
    pub fn wait(&self, timeout: Duration) -> Exit {
        match docker_cli(&["wait", &self.name], timeout) {
            Ok(out) if out.success => {}
            Ok(out) => self.fail(&format!("`docker wait` failed: {}", out.stderr)),
            Err(why) => {
                let _ = docker_cli(&["kill", &self.name], CLI_TIMEOUT);
                self.fail(&format!(
                    "container still running after {timeout:?}; killed it ({why})"
                ));
            }
        }
        self.exit()
    }

    /// `State.ExitCode` and `State.OOMKilled` of an exited container. Docker
    /// sets OOMKilled from containerd's OOM event, which can come after the
    /// exit when a process is OOM-killed just before the container ends (seen
    /// in CI: `sh -c 'hog 100; exit 3'` read false at once): a false is read
    /// again for up to [`OOM_FLAG_SETTLE`] before it counts.
    pub fn exit(&self) -> Exit {
        let code = self.inspect("{{.State.ExitCode}}");
        let settle = Instant::now() + OOM_FLAG_SETTLE;
        let mut oom = self.inspect("{{.State.OOMKilled}}");
        while oom != "true" && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(100));
            oom = self.inspect("{{.State.OOMKilled}}");
        }
        Exit {
            code: code
                .parse()
                .unwrap_or_else(|_| self.fail(&format!("odd State.ExitCode {code:?}"))),
            oom_killed: oom == "true",
        }
    }

    /// One `docker inspect -f FORMAT` value, trimmed.
    pub fn inspect(&self, format: &str) -> String {
        match docker_cli(&["inspect", "-f", format, &self.name], CLI_TIMEOUT)
            .and_then(CliOutput::ok)
        {
            Ok(out) => out.stdout.trim().to_string(),
            Err(why) => self.fail(&format!("`docker inspect -f {format}` failed: {why}")),
        }
    }

    /// Polls the logs until one contains `needle`; returns all logs then. Fails
    /// (with the logs) after `timeout`, or early if the container exits first.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {needle:?} in the logs after {timeout:?}"));
            }
            if self.inspect("{{.State.Running}}") != "true" {
                // Logs may lag the exit by a moment; look once more.
                let logs = self.logs();
                if logs.contains(needle) {
                    return logs;
                }
                self.fail(&format!("container exited before logging {needle:?}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `docker exec` in the container; fails on timeout or a non-zero exit.
    pub fn exec(&self, cmd: &[&str], timeout: Duration) -> String {
        match self.exec_cli(cmd, timeout).and_then(CliOutput::ok) {
            Ok(out) => out.stdout,
            Err(why) => self.fail(&format!("`docker exec {}` failed: {why}", cmd.join(" "))),
        }
    }

    /// `docker exec` in the container whatever the command's exit code:
    /// (exited 0, stdout). Fails only when the docker CLI cannot run it in
    /// `timeout`.
    pub fn exec_any(&self, cmd: &[&str], timeout: Duration) -> (bool, String) {
        match self.exec_cli(cmd, timeout) {
            Ok(out) => (out.success, out.stdout),
            Err(why) => self.fail(&format!(
                "`docker exec {}` failed to run: {why}",
                cmd.join(" ")
            )),
        }
    }

    fn exec_cli(&self, cmd: &[&str], timeout: Duration) -> Result<CliOutput, String> {
        docker_cli(&[&["exec", self.name.as_str()], cmd].concat(), timeout)
    }

    /// Polls `State.Health.Status` until it is `want`; fails with the health
    /// log after `timeout`.
    pub fn wait_health(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.inspect("{{.State.Health.Status}}");
            if status == want {
                return;
            }
            if Instant::now() > deadline {
                let log = self.inspect("{{json .State.Health.Log}}");
                self.fail(&format!(
                    "health is {status:?}, not {want:?}, after {timeout:?}; health log: {log}"
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every process in the container's PID namespace, from its `/proc`.
    pub fn census(&self) -> ProcCensus {
        // Processes can vanish between the glob and the read; cat's complaint
        // about that is not an error here.
        let stat = self.exec(
            &[
                "/bin/busybox",
                "sh",
                "-c",
                "cat /proc/[0-9]*/stat 2>/dev/null; true",
            ],
            CLI_TIMEOUT,
        );
        ProcCensus::parse(&stat)
    }

    /// `docker stop -t grace`; returns how long it took.
    pub fn stop(&self, grace_secs: u32) -> Duration {
        let grace = grace_secs.to_string();
        let started = Instant::now();
        let limit = Duration::from_secs(u64::from(grace_secs)) + CLI_TIMEOUT;
        if let Err(why) =
            docker_cli(&["stop", "-t", &grace, &self.name], limit).and_then(CliOutput::ok)
        {
            self.fail(&format!("`docker stop` failed: {why}"));
        }
        started.elapsed()
    }

    /// [`Container::stop`], then how it ended: how long the stop took and
    /// Docker's exit.
    pub fn stop_and_exit(&self, grace_secs: u32) -> (Duration, Exit) {
        let took = self.stop(grace_secs);
        (took, self.exit())
    }

    /// Fails unless a `docker stop -t 10` took under 8 s. Docker SIGKILLs at
    /// 10 s; an app that ends on SIGTERM ends as soon as it arrives, so
    /// anything near the grace means the signal never got through. The bound
    /// is loose because the machine is small and shared.
    pub fn check_stop_was_prompt(&self, took: Duration) {
        self.check(
            took < Duration::from_secs(8),
            &format!("docker stop took {took:?}: SIGTERM was not forwarded promptly"),
        );
    }

    /// `docker kill -s SIGNAL`.
    pub fn kill(&self, signal: &str) {
        if let Err(why) =
            docker_cli(&["kill", "-s", signal, &self.name], CLI_TIMEOUT).and_then(CliOutput::ok)
        {
            self.fail(&format!("`docker kill -s {signal}` failed: {why}"));
        }
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // Runs during a panic too; an error here must not become a double panic.
        if let Err(why) = docker_cli(&["rm", "-f", "-v", &self.name], CLI_TIMEOUT) {
            eprintln!("warning: could not remove container {}: {why}", self.name);
        }
    }
}

/// What `/proc/*/stat` inside a container shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCensus {
    /// Every process seen, zombies included.
    pub processes: usize,
    /// Processes in state `Z`.
    pub zombies: usize,
    /// Zombie count per parent PID: who is failing to reap.
    pub zombies_by_parent: BTreeMap<u32, usize>,
}

impl ProcCensus {
    /// Parses concatenated `/proc/PID/stat` lines.
    pub fn parse(text: &str) -> ProcCensus {
        let mut census = ProcCensus::default();
        for line in text.lines() {
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses,
            // so the fields start after the last `)`.
            let Some(close) = line.rfind(')') else {
                continue;
            };
            let mut fields = line[close + 1..].split_whitespace();
            let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else {
                continue;
            };
            census.processes += 1;
            if state == "Z" {
                census.zombies += 1;
                let ppid = ppid.parse().unwrap_or(0);
                *census.zombies_by_parent.entry(ppid).or_default() += 1;
            }
        }
        census
    }
}

/// What a docker CLI call printed.
pub struct CliOutput {
    /// Exited 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl CliOutput {
    /// Turns a non-zero exit into an error carrying stderr.
    fn ok(self) -> Result<CliOutput, String> {
        if self.success {
            Ok(self)
        } else {
            Err(format!("exit non-zero: {}", self.stderr.trim()))
        }
    }
}

/// Runs `docker ARGS`, killing the client if it takes longer than `timeout`.
pub fn docker_cli(args: &[&str], timeout: Duration) -> Result<CliOutput, String> {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe
    // while we poll for its exit.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`docker {}` timed out after {timeout:?}",
                    args.join(" ")
                ));
            }
            Err(e) => return Err(format!("waiting for docker: {e}")),
        }
    };
    Ok(CliOutput {
        success: status.success(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Builds (or finds) the image and returns its tag, `ward-test:<content hash>`.
fn build_image() -> Result<String, String> {
    let mut files = vec![("ward", PathBuf::from(WARD))];
    if let Some(workload) = WORKLOAD {
        files.push(("ward-workload", PathBuf::from(workload)));
    }
    files.push(("bin/busybox", PathBuf::from(BUSYBOX)));

    let mut contents = Vec::new();
    let mut hash = Fnv64::default();
    hash.feed(DOCKERFILE.as_bytes());
    hash.feed(APPLETS.join(",").as_bytes());
    for (dest, src) in &files {
        let bytes =
            std::fs::read(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        hash.feed(dest.as_bytes());
        hash.feed(&(bytes.len() as u64).to_le_bytes());
        hash.feed(&bytes);
        contents.push((*dest, bytes));
    }
    let tag = format!("ward-test:{:016x}", hash.0);
    if docker_cli(&["image", "inspect", &tag], CLI_TIMEOUT)?.success {
        return Ok(tag);
    }

    let context = std::env::temp_dir().join(format!(
        "ward-docker-context-{}-{:016x}",
        std::process::id(),
        hash.0
    ));
    let built = write_context(&context, &contents).and_then(|()| {
        let dir = context.to_str().ok_or("temp dir is not UTF-8")?;
        docker_cli(&["build", "-q", "-t", &tag, dir], Duration::from_secs(600))?.ok()
    });
    let _ = std::fs::remove_dir_all(&context);
    built.map(|_| tag)
}

/// Lays out the build context: binaries at `/`, busybox and its applets in
/// `/bin`, `/bin/ward-workload` for `sh -c` scripts, and the Dockerfile.
fn write_context(dir: &Path, contents: &[(&str, Vec<u8>)]) -> Result<(), String> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let err = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    std::fs::create_dir_all(dir.join("bin")).map_err(|e| err(dir, e))?;
    for (dest, bytes) in contents {
        let path = dir.join(dest);
        std::fs::write(&path, bytes).map_err(|e| err(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| err(&path, e))?;
    }
    let mut links: Vec<(String, &str)> = APPLETS
        .iter()
        .map(|applet| (format!("bin/{applet}"), "busybox"))
        .collect();
    if contents.iter().any(|(dest, _)| *dest == "ward-workload") {
        links.push(("bin/ward-workload".into(), "/ward-workload"));
    }
    for (link, target) in links {
        let path = dir.join(link);
        symlink(target, &path).map_err(|e| err(&path, e))?;
    }
    // Docker needs these to exist to mount over them; a scratch image has none.
    for empty in ["proc", "sys", "dev", "tmp", "etc"] {
        let path = dir.join(empty);
        std::fs::create_dir_all(&path).map_err(|e| err(&path, e))?;
    }
    let path = dir.join("Dockerfile");
    std::fs::write(&path, DOCKERFILE).map_err(|e| err(&path, e))
}

/// FNV-1a, 64 bit: a content hash for the image tag that needs no dependency
/// and is the same on every run and toolchain (unlike `DefaultHasher`).
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::fmt::Display for ProcCensus {
    /// `N processes, Z zombies; K under PID P...`, for failure messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} processes, {} zombies", self.processes, self.zombies)?;
        for (ppid, n) in &self.zombies_by_parent {
            write!(f, "; {n} under PID {ppid}")?;
        }
        Ok(())
    }
}
