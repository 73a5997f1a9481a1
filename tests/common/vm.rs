//! Boots scenarios on a real kernel under qemu through `tests/vm/run-vm.sh`
//! (the shell side, `vm-lib.sh` and the VM's `/init`, stays in `tests/vm/`);
//! owns nothing of ward itself, only the VM plumbing and the console markers.
//!
//! One boot costs 10-20 s under TCG, so a test should put several checks in
//! one scenario with `vm_case NAME CMD...` (see `vm-lib.sh`) and read them
//! back with [`VmOutput::case`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Boots are serialised within a test binary: two TCG guests with two vCPUs
/// each on a two-core machine only make both time out.
static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());
static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A VM boot being set up: binaries for `/bin`, one scenario script.
#[derive(Debug, Clone)]
pub struct VmRun {
    name: String,
    binaries: Vec<PathBuf>,
    host_binaries: Vec<PathBuf>,
    scenario: String,
    timeout: Duration,
}

/// What a finished boot left: the serial console and the scenario's exit code
/// (`None` when the VM timed out or died before printing `WARD-VM-EXIT=`).
#[derive(Debug, Clone)]
pub struct VmOutput {
    pub console: String,
    pub exit_code: Option<i32>,
}

impl Default for VmRun {
    fn default() -> Self {
        Self::new()
    }
}

impl VmRun {
    /// A run with no binaries and an empty scenario; `run` panics if the VM
    /// cannot be started. Prefer [`VmRun::available`] in tests.
    pub fn new() -> Self {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        VmRun {
            name: format!("vm-{}-{n}", std::process::id()),
            binaries: Vec::new(),
            host_binaries: Vec::new(),
            scenario: String::new(),
            timeout: Duration::from_secs(180),
        }
    }

    /// `Some(VmRun::new())` when qemu, busybox-static, cpio and a kernel are
    /// here. Otherwise prints `SKIPPED: <why>` and returns `None`, or panics
    /// when `CI=true`, because CI promises a machine that can boot the VM.
    pub fn available() -> Option<Self> {
        match missing_prerequisite() {
            None => Some(Self::new()),
            Some(why) if super::in_ci() => panic!("VM test cannot run in CI: {why}"),
            Some(why) => {
                super::skipped(&why);
                None
            }
        }
    }

    /// [`VmRun::available`] with ward's own static binaries in `/bin`
    /// ([`ward_binaries`]), named `name` and booting `scenario`.
    pub fn with_ward(name: &str, scenario: &str) -> Option<Self> {
        let mut run = Self::available()?.name(name).scenario(scenario);
        for bin in ward_binaries() {
            run = run.binary(bin);
        }
        Some(run)
    }

    /// Names the console log kept in `$CARGO_TARGET_TMPDIR/<name>.console`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// A static binary to put in the VM's `/bin` under its own file name.
    pub fn binary(mut self, path: impl AsRef<Path>) -> Self {
        self.binaries.push(path.as_ref().to_path_buf());
        self
    }

    /// A dynamically linked host binary, copied to `/host/bin` with its libraries.
    pub fn host_binary(mut self, path: impl AsRef<Path>) -> Self {
        self.host_binaries.push(path.as_ref().to_path_buf());
        self
    }

    /// The scenario, a busybox `sh` script run after `vm-lib.sh` is sourced.
    pub fn scenario(mut self, script: &str) -> Self {
        self.scenario = script.to_string();
        self
    }

    /// Hard limit for the whole boot (default 180 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Boots the VM and waits for it. Panics only when the harness itself
    /// fails (script missing, bad binary path); a failing scenario is reported
    /// in the returned [`VmOutput`].
    ///
    /// A guest that froze (the run timed out with the console silent for
    /// [`FROZEN_AFTER_SILENT_SECS`], the guest's own 20 s heartbeat included)
    /// is booted once more: a stopped emulator says nothing about ward. A
    /// case that hangs in a live guest is not retried: its heartbeat and the
    /// stall report of `vm_case` keep the console talking.
    pub fn run(self) -> VmOutput {
        let first = self.boot();
        match first.silent_seconds() {
            Some(s) if first.timed_out() && s >= FROZEN_AFTER_SILENT_SECS => {
                println!(
                    "---- the guest froze: its console was silent for the last {s} s, \
                     heartbeat included; booting it once more ----"
                );
                self.boot()
            }
            _ => first,
        }
    }

    fn boot(&self) -> VmOutput {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let scenario = dir.join(format!("{}.scenario.sh", self.name));
        let console = dir.join(format!("{}.console", self.name));
        std::fs::write(&scenario, &self.scenario)
            .unwrap_or_else(|e| panic!("writing {}: {e}", scenario.display()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run-vm.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg("--console")
            .arg(&console)
            .arg("--timeout")
            .arg(self.timeout.as_secs().max(1).to_string());
        for b in &self.binaries {
            cmd.arg("--bin").arg(b);
        }
        for b in &self.host_binaries {
            cmd.arg("--host-bin").arg(b);
        }
        cmd.arg(&scenario);

        let guard = ONE_VM_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
        drop(guard);

        let stderr = String::from_utf8_lossy(&out.stderr);
        // The console file has exactly what the guest printed; stdout adds
        // the WARD-VM-HOST timing line, which is worth keeping too.
        let console = String::from_utf8_lossy(&out.stdout).into_owned();
        // Shown by the test harness only when the test fails.
        println!("---- VM console ({}) ----\n{console}\n{stderr}", self.name);
        let exit_code = marker_values(&console, "WARD-VM-EXIT=")
            .last()
            .and_then(|v| v.trim().parse().ok());
        // Exit 2 without a marker is run-vm.sh refusing to start, not a scenario.
        if exit_code.is_none() && out.status.code() == Some(2) {
            panic!("run-vm.sh could not start the VM: {stderr}");
        }
        VmOutput { console, exit_code }
    }
}

/// A timed-out run whose console said nothing for this long (three missed
/// heartbeats) froze as a whole.
pub const FROZEN_AFTER_SILENT_SECS: u64 = 60;

impl VmOutput {
    /// Whether run-vm.sh stopped the VM at its timeout.
    pub fn timed_out(&self) -> bool {
        self.host_value("qemu_rc")
            .is_some_and(|rc| rc == "124" || rc == "137")
    }

    /// How long the console had been silent when qemu exited.
    pub fn silent_seconds(&self) -> Option<u64> {
        self.host_value("silent_seconds")?.parse().ok()
    }

    /// `key=value` from run-vm.sh's closing `WARD-VM-HOST boot_seconds=...` line.
    fn host_value(&self, key: &str) -> Option<&str> {
        let line = marker_values(&self.console, "WARD-VM-HOST boot_seconds=").pop()?;
        let prefix = format!("{key}=");
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
    }

    /// Result of `vm_case NAME ...`: `"pass"`, `"fail rc=N"`, or `None` if
    /// the case never finished.
    pub fn case(&self, name: &str) -> Option<&str> {
        let prefix = format!("WARD-VM-CASE {name} ");
        marker_values(&self.console, &prefix).last().copied()
    }

    /// Panics with the console tail unless `vm_case NAME` reported `pass`.
    pub fn assert_case_passed(&self, name: &str) {
        let result = self.case(name);
        assert_eq!(
            result,
            Some("pass"),
            "VM case {name}: {result:?}\n{}",
            self.console_tail(60)
        );
    }

    /// Values of `WARD-VM-INFO key=value` lines printed by `/init`.
    pub fn info(&self, key: &str) -> Option<&str> {
        marker_values(&self.console, &format!("WARD-VM-INFO {key}="))
            .last()
            .copied()
    }

    /// The last `n` console lines, for assertion messages.
    pub fn console_tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.console.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// The rest of each console line that starts with `prefix`.
fn marker_values<'a>(console: &'a str, prefix: &str) -> Vec<&'a str> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(prefix))
        .collect()
}

/// Why the VM cannot boot here, if it cannot.
pub fn missing_prerequisite() -> Option<String> {
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
    ] {
        if find_in_path(tool).is_none() {
            return Some(format!("{tool} not found (apt-get install {package})"));
        }
    }
    let kernel = match std::env::var_os("WARD_VM_KERNEL") {
        Some(k) => PathBuf::from(k),
        None => match newest_kernel() {
            Some(k) => k,
            None => {
                return Some(
                    "no kernel in /boot/vmlinuz-* (apt-get install linux-image-amd64)".into(),
                );
            }
        },
    };
    // Debian's vmlinuz can be root-only; opening it is the only real test.
    if let Err(e) = std::fs::File::open(&kernel) {
        return Some(format!("kernel {} not readable: {e}", kernel.display()));
    }
    None
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Newest `/boot/vmlinuz-*` by version order, as run-vm.sh picks it.
fn newest_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort_by_key(|p| version_key(&p.to_string_lossy()));
    kernels.pop()
}

/// Splits digits from the rest so that "6.1.0-10" sorts after "6.1.0-9".
fn version_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (num, tail) = rest.split_at(digits);
        let text_len = tail.len() - tail.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
        let (text, tail) = tail.split_at(text_len);
        key.push((num.parse().unwrap_or(0), text.to_string()));
        rest = tail;
    }
    key
}

/// Static binaries built by this package that the VM tests put in `/bin`:
/// `ward`, and `ward-workload` once that binary exists.
pub fn ward_binaries() -> Vec<PathBuf> {
    let mut bins = vec![PathBuf::from(env!("CARGO_BIN_EXE_ward"))];
    if let Some(workload) = option_env!("CARGO_BIN_EXE_ward-workload") {
        bins.push(PathBuf::from(workload));
    }
    bins
}
