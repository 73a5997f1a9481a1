//! `ward-workload`: a static test and benchmark workload for ward.
//!
//! It runs in FROM-scratch images and in a qemu initramfs, so it needs no shell
//! and no dynamic libraries. Each subcommand reproduces one behaviour ward must
//! cope with (orphans, zombies, stubborn processes, memory and PID pressure).
//! It owns nothing of ward's: it only uses libc and std.
//!
//! Output protocol: `ready` on stdout (flushed) once set up, where noted; an
//! error is one line on stderr; bad usage exits 2.

use std::io::Write;
use std::process::exit;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: ward-workload COMMAND [ARGS]
  orphans N [--workers W] [--rounds R] [--pause-ms MS] [--record-exits PATH]
  zombies N [--hold SECS | --reap-every MS]
  exit CODE
  die SIG
  signals [--exit-on SIG] [--exit-code C] [--fork]
  signal-echo
  ignore-term [--exit-after MS] [--leave-group [--behind] | --leave-group-on-term]
  stragglers N (--ignore-term | --exit-after MS) [--hold SECS] [--main-thread-exits]
  hog MB [--delay-ms MS] [--step MB] [--step-ms MS] [--hold SECS] [--shared FILE]
  forks N [--hold SECS]
  hold N [--churn K] [--every MS]
  busy SECS [--threads T]
  sleep SECS";

/// Exit code for bad usage.
const EXIT_USAGE: i32 = 2;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        println!("{USAGE}");
        exit(if args.is_empty() { EXIT_USAGE } else { 0 });
    }
    reset_inherited_signal_state();
    let mut a = Args::new(&args[1..]);
    match args[0].as_str() {
        "orphans" => orphans(&mut a),
        "zombies" => zombies(&mut a),
        "exit" => {
            let code: i32 = a.positional("CODE");
            a.finish();
            if !(0..=255).contains(&code) {
                usage_error("CODE must be 0-255");
            }
            exit(code)
        }
        "die" => die(&mut a),
        "signals" => signals(&mut a),
        "signal-echo" => signal_echo(&mut a),
        "ignore-term" => {
            let exit_after: Option<u64> = a.option("--exit-after");
            let leave_group = a.flag("--leave-group");
            let behind = a.flag("--behind");
            let leave_on_term = a.flag("--leave-group-on-term");
            a.finish();
            if behind {
                // A child left in the old group, a zombie never waited for:
                // the group is not empty, so a signal to it succeeds.
                if fork() == 0 {
                    exit_now(0)
                }
            }
            if leave_group {
                leave_process_group();
            }
            if leave_on_term {
                // The first SIGTERM arrives; later ones, sent to the old
                // group, find nobody. At once: one SIGTERM sent to the group
                // must arrive once, however soon the process leaves it; any
                // other that reaches it is said.
                set_kernel_mask(libc::SIG_BLOCK, sig_bit(libc::SIGTERM));
                say("ready");
                wait_signal(sig_bit(libc::SIGTERM));
                leave_process_group();
                say("left");
                loop {
                    wait_signal(sig_bit(libc::SIGTERM));
                    say("term again");
                }
            }
            stubborn(exit_after, || say("ready"))
        }
        "stragglers" => stragglers(&mut a),
        "hog" => hog(&mut a),
        "forks" => forks(&mut a),
        "hold" => hold(&mut a),
        "busy" => busy(&mut a),
        "sleep" => {
            let secs: f64 = a.positional("SECS");
            a.finish();
            sleep_secs(Some(secs));
            exit(0)
        }
        other => usage_error(&format!("unknown command {other:?}")),
    }
}

// ---------------------------------------------------------------------------
// Argument handling

/// The arguments after the subcommand, consumed positionals first.
struct Args<'a> {
    rest: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn new(args: &'a [String]) -> Self {
        Args {
            rest: args.iter().map(String::as_str).collect(),
        }
    }

    /// The next positional argument (the first one that is not an option).
    fn positional<T: std::str::FromStr>(&mut self, name: &str) -> T {
        let Some(i) = self.rest.iter().position(|s| !s.starts_with("--")) else {
            usage_error(&format!("missing {name}"));
        };
        let v = self.rest.remove(i);
        parse_value(name, v)
    }

    /// `--name VALUE`, if present.
    fn option<T: std::str::FromStr>(&mut self, name: &str) -> Option<T> {
        let i = self.rest.iter().position(|s| *s == name)?;
        if i + 1 >= self.rest.len() {
            usage_error(&format!("{name} needs a value"));
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Some(parse_value(name, v))
    }

    /// `--name`, a switch without value.
    fn flag(&mut self, name: &str) -> bool {
        match self.rest.iter().position(|s| *s == name) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    /// Fails on anything left over.
    fn finish(&self) {
        if let Some(extra) = self.rest.first() {
            usage_error(&format!("unexpected argument {extra:?}"));
        }
    }
}

fn parse_value<T: std::str::FromStr>(name: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| usage_error(&format!("bad value for {name}: {v:?}")))
}

fn usage_error(msg: &str) -> ! {
    eprintln!("ward-workload: {msg} (try --help)");
    exit(EXIT_USAGE)
}

fn fail(msg: &str) -> ! {
    eprintln!("ward-workload: {msg}");
    exit(1)
}

/// A signal given as a number, `TERM`, `SIGTERM`, `RTMIN+N` or `RTMAX-N`.
fn parse_signal(s: &str) -> i32 {
    let bad = || -> ! { usage_error(&format!("bad signal {s:?}")) };
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) { n } else { bad() };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            // SIGRTMIN as kill(1) numbers it (34, not the kernel's 32 or
            // musl's 35): ward's own numbering (`signame::RT_MIN`).
            let (base, rest, sign) = if let Some(r) = name.strip_prefix("RTMIN") {
                (ward::signame::RT_MIN, r, 1)
            } else if let Some(r) = name.strip_prefix("RTMAX") {
                (ward::signame::SIG_MAX, r, -1)
            } else {
                bad()
            };
            let off = match rest {
                "" => 0,
                r => match r.strip_prefix(if sign > 0 { '+' } else { '-' }) {
                    Some(d) => d.parse::<i32>().unwrap_or_else(|_| bad()),
                    None => bad(),
                },
            };
            base + sign * off
        }
    };
    if (1..=64).contains(&n) { n } else { bad() }
}

// ---------------------------------------------------------------------------
// Small process helpers (raw libc: this binary forks a lot, and the code
// between fork and _exit must stay async-signal-safe).

/// Writes one line to stdout with a single write(2), so lines from several
/// processes sharing the pipe never interleave.
fn say(line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    write_all(1, &buf);
}

fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fork() -> libc::pid_t {
    // Flush Rust's stdout buffer first so a child cannot print it twice.
    let _ = std::io::stdout().flush();
    // SAFETY: the children only call async-signal-safe functions or exit.
    unsafe { libc::fork() }
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe; it skips atexit handlers, as a forked child must.
    unsafe { libc::_exit(code) }
}

/// waitpid() that retries on EINTR; returns the raw status, or None on error.
fn wait_for(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 {
            return Some(status);
        }
        if errno() != libc::EINTR {
            return None;
        }
    }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    (fds[0], fds[1])
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor this program opened.
    unsafe { libc::close(fd) };
}

/// Reads until `buf` is full or EOF; returns the byte count.
fn read_full(fd: i32, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the range is inside buf.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// `None` sleeps forever.
fn sleep_secs(secs: Option<f64>) {
    match secs {
        Some(s) if s.is_finite() && s >= 0.0 => std::thread::sleep(Duration::from_secs_f64(s)),
        Some(_) => usage_error("SECS must be a non-negative number"),
        None => loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        },
    }
}

/// A kernel sigset (64 bits on x86_64). Raw syscalls are used instead of
/// glibc's sigset_t helpers because glibc refuses signals 32 and 33 (its own
/// SIGCANCEL/SIGSETXID); this single-threaded program can own them.
type KernelSigset = u64;

fn sig_bit(sig: i32) -> KernelSigset {
    1u64 << (sig - 1)
}

fn set_kernel_mask(how: i32, set: KernelSigset) {
    // SAFETY: pointer to an 8-byte set, the size the kernel expects on x86_64.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            how,
            &set as *const KernelSigset,
            std::ptr::null_mut::<KernelSigset>(),
            8usize,
        )
    };
    if r != 0 {
        fail(&format!(
            "rt_sigprocmask: {}",
            std::io::Error::last_os_error()
        ));
    }
}

fn set_disposition(sig: i32, handler: libc::sighandler_t) -> bool {
    // SAFETY: a zeroed sigaction with a valid handler value is a valid argument.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut()) == 0
    }
}

/// The init that started us may have left signals blocked or SIGCHLD ignored
/// (both survive exec). Start from a clean state: nothing blocked, SIGCHLD
/// default, so our children become zombies until waited for.
fn reset_inherited_signal_state() {
    set_kernel_mask(libc::SIG_SETMASK, 0);
    set_disposition(libc::SIGCHLD, libc::SIG_DFL);
}

/// Blocks until one signal of `set` is pending and takes it.
fn wait_signal(set: KernelSigset) -> libc::siginfo_t {
    loop {
        // SAFETY: zeroed siginfo_t is a valid out-buffer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid set and out-pointer; null timeout waits forever.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &set as *const KernelSigset,
                &mut info as *mut libc::siginfo_t,
                std::ptr::null::<libc::timespec>(),
                8usize,
            )
        };
        if r > 0 {
            return info;
        }
        if errno() != libc::EINTR {
            fail(&format!(
                "rt_sigtimedwait: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Subcommands

/// Serial double forks: each leaves one orphan for the init to reap. With
/// `--rounds R`, N orphans in R storms of about N/R, `--pause-ms` apart
/// (an init that keeps what one burst made shows it after the next).
fn orphans(a: &mut Args) {
    let n: u64 = a.positional("N");
    let workers: u64 = a.option("--workers").unwrap_or(1);
    let rounds: u64 = a.option("--rounds").unwrap_or(1);
    let pause = Duration::from_millis(a.option("--pause-ms").unwrap_or(0));
    let record: Option<std::path::PathBuf> = a.option("--record-exits");
    a.finish();
    if record.is_some() {
        exit_records::map(2 * n as usize);
    }
    if workers == 0 {
        usage_error("--workers must be at least 1");
    }
    if rounds == 0 {
        usage_error("--rounds must be at least 1");
    }
    let (mut made, mut failures) = (0u64, 0u64);
    for r in 0..rounds {
        if r > 0 {
            std::thread::sleep(pause);
        }
        let share = n / rounds + u64::from(r < n % rounds);
        let (m, f) = orphan_storm(share, workers);
        made += m;
        failures += f;
    }
    if let Some(path) = record {
        // Two notes an orphan made: its own exit and its parent's.
        if !exit_records::wait_written(2 * made, Duration::from_secs(10)) {
            eprintln!("ward-workload: some exit notes were not written within 10 s");
        }
        if let Err(e) = std::fs::write(&path, exit_records::text()) {
            eprintln!("ward-workload: cannot write {}: {e}", path.display());
            exit(2);
        }
    }
    say(&format!("orphans={made} fork_failures={failures}"));
    exit(if failures == 0 { 0 } else { 1 });
}

/// One storm: `n` orphans made by `workers` processes at once; returns
/// (orphans made, fork failures).
fn orphan_storm(n: u64, workers: u64) -> (u64, u64) {
    // Each worker sends back (orphans made, fork failures) as two u64s.
    let (rd, wr) = pipe();
    let mut made = 0u64;
    let mut failures = 0u64;
    let mut pids = Vec::new();
    for w in 0..workers {
        let share = n / workers + u64::from(w < n % workers);
        match fork() {
            -1 => failures += 1,
            0 => {
                close(rd);
                let (m, f) = orphan_worker(share);
                let mut msg = [0u8; 16];
                msg[..8].copy_from_slice(&m.to_ne_bytes());
                msg[8..].copy_from_slice(&f.to_ne_bytes());
                write_all(wr, &msg);
                exit_now(0);
            }
            pid => pids.push(pid),
        }
    }
    close(wr);
    // Read to EOF before waiting, so a full pipe cannot deadlock the workers.
    let mut msg = [0u8; 16];
    while read_full(rd, &mut msg) == 16 {
        made += u64::from_ne_bytes(msg[..8].try_into().expect("8 bytes"));
        failures += u64::from_ne_bytes(msg[8..].try_into().expect("8 bytes"));
    }
    close(rd);
    for pid in pids {
        wait_for(pid);
    }
    (made, failures)
}

/// Code a child returns when it could not fork the grandchild.
const GRANDCHILD_FORK_FAILED: i32 = 3;

/// How long a fork refused with EAGAIN is retried: the PIDs an init has not
/// reaped yet come back within this on a busy machine (a reaper that lost
/// the CPU for a few ms), while under a PID 1 that never reaps they never do.
const FORK_RETRY_FOR: Duration = Duration::from_millis(200);

/// fork(2), retrying EAGAIN for up to `budget` (and not at all once a
/// retry has already run out in this worker: a PID 1 that never reaps makes
/// every fork fail, and the storm should say so quickly).
fn fork_retrying(give_up: &mut bool) -> libc::pid_t {
    let start = std::time::Instant::now();
    loop {
        // SAFETY: the caller's child only forks and _exits.
        let pid = unsafe { libc::fork() };
        if pid >= 0 || *give_up {
            return pid;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
            || start.elapsed() >= FORK_RETRY_FOR
        {
            *give_up = true;
            return pid;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn orphan_worker(n: u64) -> (u64, u64) {
    let (mut made, mut failures) = (0, 0);
    let mut give_up = false;
    for _ in 0..n {
        match fork_retrying(&mut give_up) {
            -1 => failures += 1,
            0 => {
                // The grandchild exits at once, orphaned. The worker's
                // give_up comes along with the fork.
                let g = fork_retrying(&mut give_up);
                // The grandchild can be reaped by PID 1 from the later of
                // its own exit and this one's (its parent's).
                match g {
                    // SAFETY: getpid has no preconditions.
                    0 => exit_records::note(unsafe { libc::getpid() }, exit_records::OWN_EXIT),
                    g if g > 0 => exit_records::note(g, exit_records::PARENT_EXIT),
                    _ => {}
                }
                exit_now(match g {
                    0 => 0,
                    -1 => GRANDCHILD_FORK_FAILED,
                    _ => 0,
                });
            }
            pid => match wait_for(pid) {
                Some(st)
                    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == GRANDCHILD_FORK_FAILED =>
                {
                    // The child's retries ran out: so would the next ones.
                    give_up = true;
                    failures += 1
                }
                _ => made += 1,
            },
        }
    }
    (made, failures)
}

/// Children that exit and are never waited for: the parent-not-waiting case.
fn zombies(a: &mut Args) {
    let n: u64 = a.positional("N");
    let hold: Option<f64> = a.option("--hold");
    let reap_every: Option<u64> = a.option("--reap-every");
    a.finish();
    let mut pids = fork_zombies(n);
    say("ready");
    let Some(ms) = reap_every else {
        sleep_secs(hold);
        exit(0);
    };
    // A parent that reaps, late: every MS its zombies are reaped and as
    // many new ones made, so N are nearly always there, never the same.
    loop {
        std::thread::sleep(Duration::from_millis(ms));
        for pid in pids.drain(..) {
            // SAFETY: a null status pointer is allowed.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
        pids = fork_zombies(n);
    }
}

/// Forks `n` children that exit at once and waits until each is a zombie,
/// without reaping it (WNOWAIT).
fn fork_zombies(n: u64) -> Vec<i32> {
    let mut pids = Vec::new();
    let mut failures = 0;
    for _ in 0..n {
        match fork() {
            -1 => failures += 1,
            0 => exit_now(0),
            pid => pids.push(pid),
        }
    }
    for &pid in &pids {
        loop {
            // SAFETY: zeroed siginfo_t is a valid out-buffer.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: valid out-pointer.
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if r == 0 || errno() != libc::EINTR {
                break;
            }
        }
    }
    if failures > 0 {
        eprintln!("ward-workload: zombies: {failures} fork failures");
    }
    pids
}

/// Death by signal SIG.
fn die(a: &mut Args) {
    let name: String = a.positional("SIG");
    a.finish();
    let sig = parse_signal(&name);
    set_disposition(sig, libc::SIG_DFL);
    set_kernel_mask(libc::SIG_UNBLOCK, sig_bit(sig));
    // SAFETY: raise has no preconditions.
    unsafe { libc::raise(sig) };
    // Only reached for signals whose default is to ignore or stop-then-continue.
    fail(&format!("still alive after signal {sig}"));
}

/// Reports every catchable signal received.
fn signals(a: &mut Args) {
    let exit_on = a.option::<String>("--exit-on").map(|s| parse_signal(&s));
    let exit_code: i32 = a.option("--exit-code").unwrap_or(0);
    let fork_child = a.flag("--fork");
    a.finish();
    if !(0..=255).contains(&exit_code) {
        usage_error("--exit-code must be 0-255");
    }
    let catchable: KernelSigset = (1..=64)
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
        .fold(0, |m, s| m | sig_bit(s));
    // Block first, then install handlers: a blocked signal is never discarded,
    // even by a namespace's PID 1 with SIG_DFL (kernel sig_ignored()). The
    // handlers never run; they make sure no signal is ignored if the mask is
    // ever changed. glibc refuses 32 and 33 in sigaction; they stay blocked.
    set_kernel_mask(libc::SIG_BLOCK, catchable);
    extern "C" fn noop(_: libc::c_int) {}
    for s in 1..=64 {
        if catchable & sig_bit(s) != 0 {
            set_disposition(s, noop as *const () as libc::sighandler_t);
        }
    }
    let mut prefix = "";
    let mut child = 0;
    if fork_child {
        let (rd, wr) = pipe();
        let parent = std::process::id() as libc::pid_t;
        match fork() {
            -1 => fail(&format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                // SAFETY: prctl with integer arguments.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                // The parent may have died before prctl took effect.
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } != parent {
                    exit_now(0);
                }
                close(rd);
                write_all(wr, b"x");
                close(wr);
                prefix = "child ";
            }
            pid => {
                close(wr);
                if read_full(rd, &mut [0u8; 1]) != 1 {
                    fail("child died during setup");
                }
                close(rd);
                child = pid;
            }
        }
    }
    if child != 0 || !fork_child {
        say("ready");
    }
    loop {
        let info = wait_signal(catchable);
        let sig = info.si_signo;
        // Our own child's state changes are not signals anyone sent us.
        if sig == libc::SIGCHLD && child != 0 && info.si_code > 0 {
            // SAFETY: reaping our own child, non-blocking.
            unsafe { libc::waitpid(child, std::ptr::null_mut(), libc::WNOHANG) };
            continue;
        }
        say(&format!("{prefix}signal {sig}"));
        if exit_on == Some(sig) {
            exit(exit_code);
        }
    }
}

/// For latency benchmarks: `ready`, then one byte (`.`) on stdout per signal
/// received, written as soon as sigtimedwait returns; exits 0 on SIGTERM.
/// No formatting and no buffering between the signal and the write.
fn signal_echo(a: &mut Args) {
    a.finish();
    let catchable: KernelSigset = (1..=64)
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
        .fold(0, |m, s| m | sig_bit(s));
    // Blocked signals stay pending even for a namespace's PID 1 (see `signals`),
    // so this also works without an init in front of it.
    set_kernel_mask(libc::SIG_BLOCK, catchable);
    say("ready");
    loop {
        if wait_signal(catchable).si_signo == libc::SIGTERM {
            exit(0);
        }
        write_all(1, b".");
    }
}

/// Ignores SIGTERM, or exits `exit_after` ms after it; calls `on_ready` once set up.
fn stubborn(exit_after: Option<u64>, on_ready: impl FnOnce()) -> ! {
    match exit_after {
        None => {
            set_disposition(libc::SIGTERM, libc::SIG_IGN);
            on_ready();
            sleep_secs(None);
            exit(0)
        }
        Some(ms) => {
            set_kernel_mask(libc::SIG_BLOCK, sig_bit(libc::SIGTERM));
            on_ready();
            wait_signal(sig_bit(libc::SIGTERM));
            std::thread::sleep(Duration::from_millis(ms));
            exit(0)
        }
    }
}

/// Moves this process out of its process group into a new one led by a
/// child that sleeps: signals sent to the old group (`kill(-pid)`) then find
/// nobody, as when an application calls `setpgid` under an init's `-g`.
fn leave_process_group() {
    let leader = fork();
    match leader {
        -1 => fail(&format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            sleep_secs(None);
            exit_now(0)
        }
        _ => {}
    }
    // SAFETY: setpgid on our own child, then on ourselves, same session.
    let moved = unsafe { libc::setpgid(leader, leader) == 0 && libc::setpgid(0, leader) == 0 };
    if !moved {
        fail(&format!("setpgid: {}", std::io::Error::last_os_error()));
    }
}

/// N processes that are not our children (double fork + setsid) and resist SIGTERM.
fn stragglers(a: &mut Args) {
    let n: u64 = a.positional("N");
    let ignore = a.flag("--ignore-term");
    let exit_after: Option<u64> = a.option("--exit-after");
    let hold: Option<f64> = a.option("--hold");
    let main_exits = a.flag("--main-thread-exits");
    a.finish();
    if ignore == exit_after.is_some() {
        usage_error("give exactly one of --ignore-term or --exit-after MS");
    }
    let (rd, wr) = pipe();
    for _ in 0..n {
        match fork() {
            -1 => fail(&format!("fork: {}", std::io::Error::last_os_error())),
            0 => {
                // SAFETY: setsid has no preconditions.
                unsafe { libc::setsid() };
                // The intermediate exits (orphaning the straggler) only once
                // the straggler is ready: an init that signals orphans at once
                // must find it with its handler installed, not half-started.
                let (ready_rd, ready_wr) = pipe();
                match fork() {
                    -1 => exit_now(1),
                    0 => {
                        close(rd);
                        close(ready_rd);
                        detach_stdio();
                        let straggle = move || {
                            stubborn(exit_after, || {
                                write_all(wr, b"x");
                                close(wr);
                                write_all(ready_wr, b"x");
                                close(ready_wr);
                            })
                        };
                        if main_exits {
                            // The process lives on in a second thread; the
                            // kernel shows it as Z (`ps`: Zl) meanwhile.
                            std::thread::spawn(straggle);
                            // The exit system call ends only the calling
                            // thread (exit_group ends them all), and needs
                            // no unwinding, which pthread_exit does and a
                            // static binary cannot.
                            // SAFETY: this thread holds no lock and is not
                            // joined; the process goes on in the other one.
                            unsafe { libc::syscall(libc::SYS_exit, 0) };
                            exit_now(1)
                        }
                        straggle()
                    }
                    _ => {
                        close(ready_wr);
                        let mut b = [0u8; 1];
                        read_full(ready_rd, &mut b);
                        exit_now(0)
                    }
                }
            }
            pid => {
                if wait_for(pid).is_none_or(|st| !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0)
                {
                    fail("fork of a straggler failed");
                }
            }
        }
    }
    close(wr);
    let mut buf = vec![0u8; n as usize];
    let got = read_full(rd, &mut buf);
    if got as u64 != n {
        fail(&format!("only {got} of {n} stragglers started"));
    }
    say("ready");
    if hold.is_some() {
        sleep_secs(hold);
    }
    exit(0);
}

/// Points stdin/stdout/stderr at /dev/null (or closes them if it is missing),
/// so a straggler does not keep a reader of our output waiting for EOF.
fn detach_stdio() {
    // SAFETY: a literal C string.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
    for fd in 0..3 {
        if null >= 0 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null, fd) };
        } else {
            close(fd);
        }
    }
    if null > 2 {
        close(null);
    }
}

/// Allocates and touches memory in steps.
fn hog(a: &mut Args) {
    let mb: u64 = a.positional("MB");
    let step: u64 = a.option("--step").unwrap_or(8);
    let step_ms: u64 = a.option("--step-ms").unwrap_or(0);
    // Docker's OOMKilled comes from containerd's OOM watch, which it sets
    // up after the container starts: a kill in the first milliseconds can
    // go unrecorded (containerd issues 8180 and 8893). Tests that take
    // Docker's word as the truth wait this long before the first step.
    let delay_ms: u64 = a.option("--delay-ms").unwrap_or(0);
    let hold: Option<f64> = a.option("--hold");
    let shared: Option<String> = a.option("--shared");
    a.finish();
    if step == 0 {
        usage_error("--step must be at least 1");
    }
    // With --shared, the memory is FILE's pages mapped shared: on a tmpfs
    // they are shmem, which outlives the process (an OOM kill frees none of
    // it), while they still count in its RSS, so the OOM killer picks it.
    let fd = shared.map_or(-1, |path| {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| fail(&format!("open {path}: {e}")));
        // SAFETY: a valid fd; the size covers every step's offset.
        if unsafe { libc::ftruncate(std::os::fd::AsRawFd::as_raw_fd(&f), (mb << 20) as i64) } != 0 {
            fail(&format!(
                "ftruncate {path}: {}",
                std::io::Error::last_os_error()
            ));
        }
        std::os::fd::IntoRawFd::into_raw_fd(f)
    });
    let flags = if fd < 0 {
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    std::thread::sleep(Duration::from_millis(delay_ms));
    let mut left = mb;
    while left > 0 {
        let this = left.min(step);
        let len = (this as usize) << 20;
        let offset = ((mb - left) << 20) as libc::off_t;
        // SAFETY: a fresh mapping (anonymous, or of fd within its size),
        // never unmapped (held until exit).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                if fd < 0 { 0 } else { offset },
            )
        };
        if p == libc::MAP_FAILED {
            fail(&format!("mmap: {}", std::io::Error::last_os_error()));
        }
        let base = p.cast::<u8>();
        for off in (0..len).step_by(page) {
            // SAFETY: off < len, inside the mapping; volatile so it is not elided.
            unsafe { base.add(off).write_volatile(1) };
        }
        left -= this;
        if left > 0 && step_ms > 0 {
            std::thread::sleep(Duration::from_millis(step_ms));
        }
    }
    say("ready");
    sleep_secs(hold);
    exit(0);
}

/// Many live children at once: PID pressure.
fn forks(a: &mut Args) {
    let n: u64 = a.positional("N");
    let hold: f64 = a.option("--hold").unwrap_or(5.0);
    a.finish();
    if !(hold.is_finite() && hold >= 0.0) {
        usage_error("--hold must be a non-negative number");
    }
    let ts = libc::timespec {
        tv_sec: hold.trunc() as _,
        tv_nsec: (hold.fract() * 1e9) as libc::c_long,
    };
    let (mut forked, mut failed) = (0u64, 0u64);
    for _ in 0..n {
        match fork() {
            -1 => failed += 1,
            0 => {
                // nanosleep is async-signal-safe, unlike std's sleep.
                let mut t = ts;
                // SAFETY: valid timespec pointers.
                while unsafe { libc::nanosleep(&t, &mut t) } != 0 && errno() == libc::EINTR {}
                exit_now(0);
            }
            _ => forked += 1,
        }
    }
    say(&format!("forked={forked} failed={failed}"));
    loop {
        // SAFETY: null status is allowed.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) };
        if r < 0 && errno() != libc::EINTR {
            break;
        }
    }
    exit(0);
}

/// Keeps N sleeping children alive until killed, in a session of its own (so
/// an init forwarding to its child's process group does not reach them), and
/// every MS ms takes K of them away or brings K back: the task count keeps
/// moving, as a watching init needs to see before it counts processes again.
/// Prints `held=N failed=F` once the N are up; nothing after that.
fn hold(a: &mut Args) {
    let n: usize = a.positional("N");
    let churn: usize = a.option("--churn").unwrap_or(0);
    let every: u64 = a.option("--every").unwrap_or(1000);
    a.finish();
    if churn > n {
        usage_error("--churn must not exceed N");
    }
    if every == 0 {
        usage_error("--every must be at least 1");
    }
    // SAFETY: setsid has no preconditions (fails harmlessly if already a leader).
    unsafe { libc::setsid() };
    let spawn = |pids: &mut Vec<libc::pid_t>| match fork() {
        -1 => false,
        0 => loop {
            // SAFETY: pause is async-signal-safe.
            unsafe { libc::pause() };
        },
        pid => {
            pids.push(pid);
            true
        }
    };
    let mut pids = Vec::with_capacity(n);
    let failed = (0..n).filter(|_| !spawn(&mut pids)).count();
    say(&format!("held={} failed={failed}", pids.len()));
    let mut down = true;
    loop {
        std::thread::sleep(Duration::from_millis(every));
        if churn == 0 {
            continue;
        }
        if down {
            for pid in pids.split_off(pids.len().saturating_sub(churn)) {
                // SAFETY: kill(2) on our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                wait_for(pid);
            }
        } else {
            // A refused fork is retried next time round.
            for _ in 0..churn {
                spawn(&mut pids);
            }
        }
        down = !down;
    }
}

/// Burns CPU on T threads for SECS.
fn busy(a: &mut Args) {
    let secs: f64 = a.positional("SECS");
    let threads: u32 = a.option("--threads").unwrap_or(1);
    a.finish();
    if !(secs.is_finite() && secs >= 0.0) {
        usage_error("SECS must be a non-negative number");
    }
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let spin = move || {
        let mut x = 0u64;
        while Instant::now() < end {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
    };
    let handles: Vec<_> = (1..threads).map(|_| std::thread::spawn(spin)).collect();
    spin();
    for h in handles {
        let _ = h.join();
    }
    exit(0);
}

/// `orphans --record-exits PATH`: each grandchild, and each child as it
/// exits, notes the grandchild's pid and `CLOCK_MONOTONIC` in memory shared
/// by the whole storm, just before `_exit`; the orphans command writes the
/// notes to PATH as `pid kind nanoseconds` lines. ward-bench pairs them with
/// the init's `wait4` returns, traced, for how long each zombie waited.
mod exit_records {
    use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

    /// The grandchild's own exit.
    pub const OWN_EXIT: u64 = 1;
    /// Its parent's exit, which hands a grandchild that exited first to PID 1.
    pub const PARENT_EXIT: u64 = 2;

    /// The shared words: notes begun, notes written, then two words a note
    /// (pid and kind, time).
    static WORDS: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());
    static CAP: AtomicUsize = AtomicUsize::new(0);

    /// Maps room for `notes` notes, shared with every process forked after.
    pub fn map(notes: usize) {
        let len = 8 * (2 + 2 * notes);
        // SAFETY: an anonymous shared mapping of our own; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            eprintln!(
                "ward-workload: cannot map the exit records: {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(2);
        }
        CAP.store(notes, Ordering::Relaxed);
        WORDS.store(p.cast(), Ordering::Release);
    }

    fn words() -> Option<&'static [AtomicU64]> {
        let p = WORDS.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `map` made 2 + 2 * CAP zeroed words, never unmapped, and
        // AtomicU64 has u64's layout.
        Some(unsafe { std::slice::from_raw_parts(p, 2 + 2 * CAP.load(Ordering::Relaxed)) })
    }

    /// Notes `pid` with `kind`, now; nothing when not recording or full.
    pub fn note(pid: libc::pid_t, kind: u64) {
        let Some(w) = words() else { return };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime into a timespec on the stack.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        let i = w[0].fetch_add(1, Ordering::Relaxed) as usize;
        if 3 + 2 * i < w.len() {
            w[2 + 2 * i].store(pid as u32 as u64 | kind << 32, Ordering::Relaxed);
            w[3 + 2 * i].store(ns, Ordering::Relaxed);
            w[1].fetch_add(1, Ordering::Release);
        }
    }

    /// Waits until `notes` notes are written, `within` at most: nothing
    /// waits for a grandchild, which may note its exit after the storm's
    /// report. False when they were not all written in time.
    pub fn wait_written(notes: u64, within: std::time::Duration) -> bool {
        let Some(w) = words() else { return true };
        let until = std::time::Instant::now() + within;
        while w[1].load(Ordering::Acquire) < notes {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    /// The notes as `pid kind nanoseconds` lines.
    pub fn text() -> String {
        let Some(w) = words() else {
            return String::new();
        };
        let n = (w[0].load(Ordering::Acquire) as usize).min((w.len() - 2) / 2);
        let mut out = String::with_capacity(n * 24);
        for i in 0..n {
            let a = w[2 + 2 * i].load(Ordering::Acquire);
            let t = w[3 + 2 * i].load(Ordering::Acquire);
            // A note begun but not written (kind 0) is left out.
            if a >> 32 != 0 {
                out.push_str(&format!("{} {} {t}\n", a & 0xffff_ffff, a >> 32));
            }
        }
        out
    }
}
