//! The deterministic subcommands of `ward-workload`, run as plain children of
//! the test process (no root, no namespace needed).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, Stdio};

fn workload() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ward-workload"))
}

/// Kills the child if a test fails half-way, so nothing is left running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> (Guard, BufReader<ChildStdout>) {
    let mut child = workload()
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ward-workload");
    let out = BufReader::new(child.stdout.take().expect("piped"));
    (Guard(child), out)
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).expect("read stdout");
    s.trim_end().to_string()
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

#[test]
fn exit_passes_the_code() {
    for code in [0, 1, 42, 255] {
        let st = workload()
            .args(["exit", &code.to_string()])
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(code));
    }
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["exit", "256"][..],
        &["nope"],
        &["die", "NOSUCH"],
        &["orphans"],
        &["orphans", "10", "--rounds", "0"],
    ] {
        let out = workload().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
}

#[test]
fn orphans_in_rounds_count_every_round() {
    // 11 orphans in 3 rounds of 4, 4 and 3, two workers each time.
    let out = workload()
        .args([
            "orphans",
            "11",
            "--workers",
            "2",
            "--rounds",
            "3",
            "--pause-ms",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "orphans=11 fork_failures=0"
    );
}

#[test]
fn die_is_death_by_signal() {
    for (name, sig) in [("TERM", 15), ("SIGUSR1", 10), ("9", 9), ("rtmin+1", 35)] {
        let st = workload().args(["die", name]).status().unwrap();
        assert_eq!(st.signal(), Some(sig), "{name}");
    }
}

#[test]
fn signals_reports_each_and_exits_on_request() {
    let (mut g, mut out) = spawn(&["signals", "--exit-on", "TERM", "--exit-code", "7"]);
    assert_eq!(line(&mut out), "ready");
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGCHLD, 40] {
        kill(g.0.id(), sig);
        assert_eq!(line(&mut out), format!("signal {sig}"));
    }
    kill(g.0.id(), libc::SIGTERM);
    assert_eq!(line(&mut out), "signal 15");
    assert_eq!(g.0.wait().unwrap().code(), Some(7));
}

#[test]
fn zombies_stay_unreaped_until_exit() {
    let (g, mut out) = spawn(&["zombies", "4", "--hold", "30"]);
    assert_eq!(line(&mut out), "ready");
    let pid = g.0.id();
    // Its children are zombies: state Z and parent = the workload.
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let zombies = children
        .split_whitespace()
        .filter(|c| {
            let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .count();
    assert_eq!(zombies, 4);
}

#[test]
fn hog_waits_its_delay_before_the_first_step() {
    // The delay is a lower bound: the hog says "ready" only after it, and
    // after touching its 1 MiB.
    let started = std::time::Instant::now();
    let (mut g, mut out) = spawn(&["hog", "1", "--delay-ms", "300"]);
    assert_eq!(line(&mut out), "ready");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300),
        "ready after {waited:?}"
    );
    g.0.kill().expect("kill the hog");
}
