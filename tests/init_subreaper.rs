//! ward when it is not PID 1: a child subreaper that reaps its own
//! descendants' orphans, signals only its own descendants at shutdown, and
//! honours `--pdeathsig`. Needs no root, but for the case of a `/proc`
//! it cannot read.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn orphans_of_the_child_are_reaped_by_the_subreaper() {
    let script = format!("{0} orphans 3000 && exec {0} sleep 60", workload());
    let p = Proc::start(
        ward_plain(["--no-watch", "--", "/bin/sh", "-c", &script]),
        T,
    );
    assert_eq!(
        p.wait_line(|l| l.starts_with("orphans=")),
        "orphans=3000 fork_failures=0"
    );
    std::thread::sleep(Duration::from_millis(200));
    // The orphans were re-parented to ward (not the host's init) and reaped.
    assert_eq!(zombies_under(p.pid()), 0);
    let kids = children(p.pid());
    assert_eq!(kids.len(), 1, "only the main child is left: {kids:?}");
    // The guard's end takes the main child too, though ward put it in a
    // process group of its own: before, its `sleep 60` outlived the test.
    drop(p);
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{}/stat", kids[0])).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    }) {
        assert!(Instant::now() < until, "pid {} outlived the test", kids[0]);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn shutdown_spares_processes_not_descended_from_ward() {
    let mut bystander = Command::new(workload())
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let line = "--no-watch --grace 500ms -- WL stragglers 3 --ignore-term";
    let out = run(ward_plain(argv(line)), T);
    expect_stragglers_killed(&out, 3, "500 ms");
    // The bystander is alive: ward signalled only its own descendants.
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "bystander was killed"
    );
    bystander.kill().unwrap();
    let _ = bystander.wait();
}

/// A process whose main thread has ended shows `Z` in `/proc` while its
/// other threads run: the shutdown must still signal it, not skip it as a
/// zombie (it did, and the process outlived ward).
#[test]
fn shutdown_signals_a_process_whose_main_thread_has_ended() {
    let line = "--no-watch --grace 500ms -- WL stragglers 2 --ignore-term --main-thread-exits";
    let out = run(ward_plain(argv(line)), T);
    expect_stragglers_killed(&out, 2, "500 ms");
}

#[test]
fn pdeathsig_forwards_when_the_parent_dies() {
    let dir = TempDir::new("pdeath");
    let out_file = dir.path().join("out");
    let script = format!(
        "{} -p TERM --no-watch -- {} signals --exit-on TERM --exit-code 9 > {} 2>&1 & sleep 0.5; exit 0",
        ward(),
        workload(),
        out_file.display()
    );
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    // The parent shell is gone; ward got SIGTERM and forwarded it.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if text.contains("exit 9") || text.contains("exited with code 9") {
            assert!(text.contains("signal 15"), "{text}");
            break;
        }
        assert!(Instant::now() < until, "child never stopped: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn subreaper_is_said_at_debug_level_only() {
    let out = run(ward_plain(argv("--no-watch -- WL exit 0")), T);
    assert!(!out.stderr.contains("subreaper"), "{}", out.stderr);
    let out = run(ward_plain(argv("-v --no-watch -- WL exit 0")), T);
    assert_eq!(
        out.stderr.matches("[subreaper]").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn a_proc_it_cannot_list_at_shutdown_is_said_not_hidden() {
    if !require_root("unlisted_proc") {
        return;
    }
    let dir = TempDir::new("unlisted");
    let pid_file = dir.path().join("pid");
    // A mount namespace of its own with /proc gone: ward, a subreaper there,
    // cannot list what is left when its main child exits. Before, it said
    // it had signalled 0 processes, as if there were none.
    let script = format!(
        "umount -l /proc && exec {} --no-watch --grace 300ms -- /bin/sh -c '{} sleep 30 & echo $! > {}; exit 0'",
        ward(),
        workload(),
        pid_file.display()
    );
    let mut cmd = Command::new("unshare");
    without_ward_variables(&mut cmd);
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let out = run(cmd, T);
    let left: i32 = std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    if left > 0 {
        // SAFETY: plain kill(2) on the sleeper the script started.
        unsafe { libc::kill(left, libc::SIGKILL) };
    }
    assert!(left > 0, "no sleeper pid\n{}", out.dump());
    out.expect_stderr("[shutdown_unlisted] cannot list the remaining processes");
    out.expect_stderr("none can be signalled");
}

/// The tid of `pid`'s thread named `name`, waited for (10 s at most).
fn thread_named(pid: i32, name: &str) -> i32 {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|tid| {
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                    .is_ok_and(|c| c.trim_end() == name)
            });
        if let Some(tid) = found {
            return tid;
        }
        assert!(Instant::now() < until, "no {name} thread in {pid}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A thread of a child held in a ptrace stop (it alone: the others run),
/// let go when dropped, also when the test fails first: a traced thread
/// that died is reaped here, or its process could never be waited for.
struct Held(i32);

impl Held {
    fn stop(tid: i32) -> Held {
        // SAFETY: ptrace and waitpid on a thread of the test's own child.
        unsafe {
            let none = std::ptr::null_mut::<libc::c_void>();
            assert_eq!(libc::ptrace(libc::PTRACE_SEIZE, tid, none, none), 0);
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, none, none), 0);
            let mut status = 0;
            assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
        }
        Held(tid)
    }
}

impl Held {
    /// Stops `tid`, a thread of `pid`, at the entry of its next write to
    /// the pipe behind `pid`'s stderr (not fd 2 itself: ward writes through
    /// a description of its own), where ward's log holds its lock.
    fn in_log_write(pid: i32, tid: i32) -> Held {
        let stderr = std::fs::read_link(format!("/proc/{pid}/fd/2")).expect("ward's stderr");
        Held::in_write_to(pid, tid, |link| *link == stderr)
    }

    /// As [`Held::in_log_write`], for a stderr that is a file: the write
    /// into the file writer's pipe, where the log holds its lock.
    fn in_relay_write(pid: i32, tid: i32) -> Held {
        Held::in_write_to(pid, tid, |link| {
            link.to_str().is_some_and(|l| l.starts_with("pipe:"))
        })
    }

    /// Stops `tid` at the entry of its next write to an fd (not 2) whose
    /// `/proc/PID/fd` link `target` accepts.
    fn in_write_to(pid: i32, tid: i32, target: impl Fn(&std::path::PathBuf) -> bool) -> Held {
        let until = Instant::now() + Duration::from_secs(10);
        // SAFETY: ptrace, waitpid and PTRACE_GETREGS into a zeroed struct on
        // the stack, on a thread of the test's own child.
        unsafe {
            let none = std::ptr::null_mut::<libc::c_void>();
            let sysgood = libc::PTRACE_O_TRACESYSGOOD as usize as *mut libc::c_void;
            assert_eq!(libc::ptrace(libc::PTRACE_SEIZE, tid, none, sysgood), 0);
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, none, none), 0);
            let mut status = 0;
            assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
            let held = Held(tid);
            loop {
                assert!(Instant::now() < until, "{tid} wrote no log line");
                assert_eq!(libc::ptrace(libc::PTRACE_SYSCALL, tid, none, none), 0);
                assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
                if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != libc::SIGTRAP | 0x80 {
                    continue;
                }
                let mut regs: libc::user_regs_struct = std::mem::zeroed();
                let at: *mut libc::c_void = (&mut regs as *mut libc::user_regs_struct).cast();
                assert_eq!(libc::ptrace(libc::PTRACE_GETREGS, tid, none, at), 0);
                // At a syscall's entry rax is -ENOSYS; at its exit, the result.
                let entry = regs.rax as i64 == -(libc::ENOSYS as i64);
                let fd = regs.rdi as i64;
                if entry
                    && regs.orig_rax as i64 == libc::SYS_write
                    && fd != 2
                    && std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|l| target(&l))
                {
                    return held;
                }
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: as in `stop`; a detach fails only if the thread is gone.
        unsafe {
            let none = std::ptr::null_mut::<libc::c_void>();
            if libc::ptrace(libc::PTRACE_DETACH, self.0, none, none) != 0 {
                let mut status = 0;
                libc::waitpid(self.0, &mut status, libc::__WALL);
            }
        }
    }
}

/// A watch thread that cannot run (here held in a ptrace stop; in the
/// review, a container's CPU quota shared with busy threads) left the
/// shutdown errand unanswered: before, the rest never got their SIGTERM
/// (nor the SIGKILL), and ward exited leaving them running. Now the
/// reaping thread signals them itself after the errand's 2 s.
#[test]
fn the_rest_are_signalled_even_when_the_watch_thread_cannot_run() {
    if !require_root("rest_without_watch") {
        return;
    }
    let script = "(trap 'echo LEFTOVER GOT TERM >&2; exit 0' TERM; \
         while :; do sleep 0.1; done) & echo ready; sleep 1; exit 6";
    let p = Proc::start(ward_plain(["--", "/bin/sh", "-c", script]), T);
    p.expect_line("ready");
    let held = Held::stop(thread_named(p.pid(), "ward-watch"));
    p.wait_stderr("ward signals the rest itself");
    p.wait_stderr("LEFTOVER GOT TERM");
    drop(held);
    let out = p.wait();
    assert_eq!(out.code, 6, "{}", out.dump());
    out.expect_stderr("did not answer a shutdown errand within 2 s (gone, or starved of CPU)");
}

/// A thread stopped while it holds ward's log (here by ptrace, in the
/// middle of a write; in life, a watch thread starved of CPU, or held in
/// reclaim near a memory limit, while it writes a line) must not stop the
/// reaping thread. Before, the reaping thread's next line waited for the
/// log's lock: the forwarded SIGTERM, the reaping and the exit all waited
/// for the other thread.
#[test]
fn a_thread_stopped_inside_the_log_does_not_stop_the_reaping_thread() {
    if !require_root("stopped_inside_the_log") {
        return;
    }
    held_inside_the_log(None);
}

/// As above with stderr a file: the watch thread held at its write into
/// the file writer's pipe; the reaping thread's last lines go into that
/// pipe too (never to the file from the reaping thread), in order.
#[test]
fn a_thread_stopped_inside_the_log_of_a_file_does_not_stop_the_reaping_thread() {
    if !require_root("stopped_inside_the_file_log") {
        return;
    }
    let dir = TempDir::new("held-log");
    held_inside_the_log(Some(&dir.path().join("stderr.log")));
}

/// ward with the watch thread stopped inside the log (at its write, with
/// the lock held), then SIGTERM: the child gets it, ward exits with its
/// code, and its lines come out past the lock at exit. `file`: stderr goes
/// to this file, else to a pipe.
fn held_inside_the_log(file: Option<&std::path::Path>) {
    let script = format!(
        "trap '{} orphans 5 >/dev/null; echo GOT TERM; exit 7' TERM; echo ready; \
         while :; do sleep 0.05; done",
        workload()
    );
    // --emf: the watch thread writes a line every second.
    let cmd = ward_plain([
        "--emf",
        "--emf-interval",
        "1s",
        "--watch-interval",
        "1s",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let p = match file {
        Some(path) => {
            let f = std::fs::File::create(path).expect("stderr file");
            Proc::start_with_stderr(cmd, f.into(), T)
        }
        None => Proc::start(cmd, T),
    };
    p.expect_line("ready");
    let watch = thread_named(p.pid(), "ward-watch");
    let held = match file {
        Some(_) => Held::in_relay_write(p.pid(), watch),
        None => Held::in_log_write(p.pid(), watch),
    };
    p.signal_ward(libc::SIGTERM);
    p.expect_line("GOT TERM");
    // ward exits while the watch thread still holds the log: its main
    // thread is gone, and the process waits only for the tracer.
    let until = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid())).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        if state == Some('Z') {
            break true;
        }
        if Instant::now() >= until {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(held);
    let out = p.wait();
    let log = match file {
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => out.stderr.clone(),
    };
    let dump = format!("{}\nlog:\n{log}", out.dump());
    assert!(exited, "ward did not exit while the log was held\n{dump}");
    assert_eq!(out.code, 7, "{dump}");
    // Its lines waited for the lock, and were written past it at the end,
    // after a notice that lines queued before may be missing.
    let notice = log
        .find("[log_held] the log was held by another of ward's threads at exit: lines queued before this one may be missing")
        .unwrap_or_else(|| panic!("no log_held notice\n{dump}"));
    let mut last = notice;
    for line in ["forwarded SIGTERM", "exited with code 7"] {
        let at = log
            .find(line)
            .unwrap_or_else(|| panic!("no {line:?}\n{dump}"));
        assert!(at > last, "{line:?} out of order\n{dump}");
        last = at;
    }
}

/// Not PID 1, each descendant is signalled by pid: a stopped one gets
/// SIGCONT after its SIGTERM too, rather than sitting out the grace.
#[test]
fn a_stopped_descendant_left_at_shutdown_is_continued_to_take_its_sigterm() {
    let out = run(
        ward_plain([
            "--no-watch",
            "--grace",
            "30s",
            "--",
            "/bin/sh",
            "-c",
            "sleep 100 & kill -STOP $!; sleep 0.2; exit 0",
        ]),
        T,
    );
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("[shutdown] sent SIGTERM to 1 remaining process");
    assert!(!out.stderr.contains("[shutdown_kill]"), "{}", out.dump());
}

/// `sh -c SCRIPT` under ward with `--kill-after 1500ms`, once it said "ready".
fn under_kill_after(script: &str) -> Proc {
    let cmd = ward_plain([
        "--no-watch",
        "--kill-after",
        "1500ms",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p
}

/// A main process stopped by SIGSTOP cannot act on the forwarded SIGTERM:
/// `still_running`, `kill_after` and the report say so, where before they
/// said only "still running" and left the SRE to guess why.
#[test]
fn a_stopped_main_process_is_said_to_be_stopped_when_it_outlives_the_stop() {
    let p = under_kill_after("echo ready; kill -STOP $$; echo continued");
    let sh = children(p.pid());
    assert_eq!(sh.len(), 1, "the main child: {sh:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !descendants(p.pid()).contains(&(sh[0], 'T')) {
        assert!(Instant::now() < deadline, "sh never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.dump());
    out.expect_stderr("still running 1 s after SIGTERM: it is stopped by SIGSTOP and acts on no signal but SIGKILL until it gets SIGCONT");
    out.expect_stderr(
        "after the stop signal was forwarded (stopped: it could not act on it): sending SIGKILL",
    );
    out.expect_stderr("did not stop within 1.5 s (--kill-after) of SIGTERM");
    out.expect_stderr(
        ": it was stopped by SIGSTOP and could not act on it; ward killed it with SIGKILL",
    );
    assert!(!out.stdout.contains("continued"), "{}", out.dump());
}

/// The same stop on a running main process says nothing of a stop.
#[test]
fn a_running_main_process_that_ignores_the_stop_is_not_said_to_be_stopped() {
    let p = under_kill_after("trap '' TERM; echo ready; while :; do sleep 0.1; done");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.dump());
    out.expect_stderr("still running 1 s after SIGTERM\n");
    assert!(!out.stderr.contains("stopped by"), "{}", out.dump());
}

/// The main process and its own child both end on the stop: the reaper
/// still counted a child, the listing found none alive, and the log said
/// "sent SIGTERM to 0 remaining processes; waiting up to 3 s (--grace)"
/// before ward exited at once.
#[test]
fn no_process_left_to_signal_is_not_said_as_zero_signalled() {
    let w = workload();
    let p = Proc::start(
        ward_plain([
            "--no-watch",
            "--",
            w,
            "signals",
            "--fork",
            "--exit-on",
            "TERM",
        ]),
        T,
    );
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert!(!out.stderr.contains("sent SIGTERM to 0"), "{}", out.dump());
    assert!(out.stderr.contains("[exit_report]"), "{}", out.dump());
}

/// An open-files limit too small for ward's signalfds (`ulimit -n 5`): one
/// line that says what the limit is, and exit 125, not a bare EMFILE.
#[test]
fn too_few_open_files_says_the_limit() {
    let mut cmd = Command::new("prlimit");
    without_ward_variables(&mut cmd);
    cmd.args(["--nofile=5", ward(), "--no-watch", "--", "true"]);
    let out = run(cmd, T);
    assert_eq!(out.code, 125, "{}", out.stderr);
    // EMFILE in the libc's words: musl's (the shipped build) or glibc's.
    let emfile = if cfg!(target_env = "musl") {
        "No file descriptors available"
    } else {
        "Too many open files"
    };
    assert!(
        out.stderr.contains(&format!(
            "{emfile} (os error 24); the open-files limit (ulimit -n) is 5, and ward needs at least 6"
        )),
        "{}",
        out.stderr
    );
}

/// `--pdeathsig`'s signal comes from the dying parent: the stop is said as
/// that, not as a SIGTERM "from pid N", a process that is gone.
#[test]
fn a_pdeathsig_stop_is_said_as_the_parent_dying() {
    // The parent dies once ward's child runs (ward set --pdeathsig before
    // it started the child), however slow the machine.
    let (_, stderr) = pdeathsig_run("pdeathsig-words", "kill -KILL $$");
    assert!(
        stderr.contains("[stop_requested] received SIGTERM from ward's parent (pid "),
        "{stderr}"
    );
    assert!(stderr.contains(") dying (--pdeathsig)"), "{stderr}");
    assert!(stderr.contains("[exit_report] exit 0: "), "{stderr}");
}

/// The same signal sent on purpose by a parent that lives on is no death:
/// the kernel reparents ward before it sends `--pdeathsig`, so a sender
/// that is still ward's parent sent it itself.
#[test]
fn a_pdeathsig_signal_from_a_living_parent_is_not_its_death() {
    let (stdout, stderr) = pdeathsig_run(
        "pdeathsig-alive",
        "kill -TERM $W; wait $W; echo parent-alive",
    );
    assert_eq!(stdout, "parent-alive\n", "{stderr}");
    assert!(
        stderr.contains("[stop_requested] received SIGTERM from "),
        "{stderr}"
    );
    assert!(!stderr.contains("dying (--pdeathsig)"), "{stderr}");
}

/// A shell starts `ward -p TERM` over a child that exits on SIGTERM, waits
/// until that child runs (so --pdeathsig is set, however slow the machine),
/// then runs `then` (`$W` is ward's pid); its stdout and ward's stderr.
fn pdeathsig_run(name: &str, then: &str) -> (String, String) {
    let dir = TempDir::new(name);
    let ready = dir.path().join("ready");
    let script = format!(
        "{ward} -p TERM --no-watch -- sh -c 'trap \"exit 0\" TERM; touch {r}; sleep 10 & wait' & W=$!; \
         while [ ! -e {r} ]; do sleep 0.05; done; {then}",
        ward = ward(),
        r = ready.display()
    );
    let mut cmd = Command::new("timeout");
    common::without_ward_variables(&mut cmd);
    cmd.args(["20", "sh", "-c", &script]);
    let out = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// True once `pid` has at least two threads (the watch thread started),
/// each other thread blocks `sig` (`SigBlk` in its status), and the main
/// one blocks it or waits in `rt_sigtimedwait` (which shows its mask
/// cleared while it waits, and takes the signal).
fn all_threads_block(pid: i32, sig: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let mut n = 0;
    for t in tasks.flatten() {
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let blocks = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|mask| mask >> (sig - 1) & 1 == 1);
        let main = t.file_name().to_str() == Some(&pid.to_string());
        let waits = main
            && std::fs::read_to_string(t.path().join("syscall"))
                .is_ok_and(|s| s.split_whitespace().next() == Some("128"));
        if !(blocks || waits) {
            return false;
        }
        n += 1;
    }
    n >= 2
}

/// A `strace` command without ward's variables; `None` (the test skips, or
/// fails in CI) without Debian's strace.
fn strace(test: &str) -> Option<Command> {
    let have = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("strace (Debian's strace)", have, test) {
        return None;
    }
    let mut cmd = Command::new("strace");
    without_ward_variables(&mut cmd);
    Some(cmd)
}

/// A SIGRTMIN (34, as `kill -s RTMIN` and Docker number it) that reaches
/// ward while musl's first `pthread_create` (the watch thread's start) has
/// unblocked 34 in the reaping thread must not kill ward. strace holds that
/// `clone` for a second, so the window stays open while the test sends 34;
/// before, ward died of it (exit 162), and the child never ran.
#[test]
fn a_sigrtmin_while_the_watch_thread_starts_does_not_kill_ward() {
    let Some(mut cmd) = strace("a_sigrtmin_while_the_watch_thread_starts_does_not_kill_ward")
    else {
        return;
    };
    cmd.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=clone,clone3"])
        .args(["-e", "inject=clone,clone3:delay_exit=1000000:when=1"])
        .args([ward(), "--", "sh", "-c", "echo ran; exit 3"]);
    let p = Proc::start(cmd, T);
    // ward is strace's child; its first clone is held for a second. strace
    // forks short-lived children of its own first (its probes of ptrace), so
    // the child counts only once it runs ward: under load the test saw a
    // probe, which was gone when signalled.
    let strace = p.pid();
    let ward_exe = std::fs::canonicalize(ward()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let ward_pid = loop {
        let kids = std::fs::read_to_string(format!("/proc/{strace}/task/{strace}/children"))
            .unwrap_or_default();
        let runs_ward = |pid: &i32| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == ward_exe)
        };
        if let Some(pid) = kids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(runs_ward)
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "strace started no ward");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(400));
    // SAFETY: a signal to the ward this test started.
    assert_eq!(unsafe { libc::kill(ward_pid, 34) }, 0);
    let out = p.wait();
    assert_eq!(
        out.code,
        3,
        "ward must live and pass on the child's code: {}",
        out.dump()
    );
    assert!(out.stdout.contains("ran"), "{}", out.dump());

    // ward ignores 33 and 34 for that; once its mask is set, a 34 is still
    // forwarded (blocked, an ignored signal is queued), and the child has
    // the default action back: it exits 7 on it.
    let mut cmd = Command::new(ward());
    without_ward_variables(&mut cmd);
    cmd.args([
        "--",
        workload(),
        "signals",
        "--exit-on",
        "RTMIN",
        "--exit-code",
        "7",
    ]);
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    // The child starts only once every thread of ward's blocks 34 (the
    // watch thread's start waits for its first act): "ready" means a 34
    // is queued for the signalfd, never discarded. Before, the watch thread
    // could still be waiting for a CPU here, and under load the stress run
    // sent a 34 that it dropped.
    assert!(
        all_threads_block(p.pid(), 34),
        "a thread of ward's had 34 unblocked after the child ran"
    );
    p.signal_ward(34);
    let out = p.wait();
    assert_eq!(out.code, 7, "the child must get the 34: {}", out.dump());
    assert!(out.stdout.contains("signal 34"), "{}", out.dump());
}

/// With `-g`, a main process that leaves its group on the group's SIGTERM
/// gets that SIGTERM once. strace holds ward's `getpgid` for 300 ms. Before,
/// ward looked where the child was after the send to the group: by then it
/// had left, so ward sent it the SIGTERM a second time, alone (a second
/// SIGTERM is "stop now" to many applications). Now ward looks before.
#[test]
fn a_group_sigterm_reaches_a_main_process_that_leaves_the_group_on_it_once() {
    let Some(mut cmd) =
        strace("a_group_sigterm_reaches_a_main_process_that_leaves_the_group_on_it_once")
    else {
        return;
    };
    // ward's first thread only (no -f): the one that sends.
    cmd.args(["-qq", "-o", "/dev/null", "-e", "trace=getpgid"])
        .args(["-e", "inject=getpgid:delay_enter=300000"])
        .args([
            ward(),
            "--no-watch",
            "-g",
            "--kill-after",
            "1500ms",
            "--grace",
            "200ms",
        ])
        .arg("--")
        .args([workload(), "ignore-term", "--leave-group-on-term"]);
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    let ward_exe = std::fs::canonicalize(ward()).unwrap();
    let ward_pid = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", p.pid()))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == ward_exe))
        .expect("ward under strace");
    // SAFETY: a signal to the ward this test started.
    assert_eq!(unsafe { libc::kill(ward_pid, libc::SIGTERM) }, 0);
    p.expect_line("left");
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.dump());
    assert!(
        !out.stdout.contains("term again"),
        "the SIGTERM came twice: {}",
        out.dump()
    );
    out.expect_stderr("forwarded SIGTERM to the process group of ward-workload");
    out.expect_stderr("ward killed it with SIGKILL");
}
