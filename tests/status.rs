//! `ward status` for real (needs root): ward as PID 1 of a fresh PID
//! namespace with a parent that never reaps 5 zombies, the client run inside
//! that namespace with `nsenter`; a namespace whose PID 1 is not ward; and
//! the exit codes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(60);

/// A parent that forks 5 short children and then never waits: `sh` execs
/// `sleep`, which inherits the children and ignores them.
const NON_REAPER: &str = "for i in 1 2 3 4 5; do sleep 0 & done; exec sleep 60";

/// `nsenter -t PID -p -m ward status ARGS`: the client inside the namespace
/// of host pid `pid`, with its /proc.
fn status_in(pid: i32, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("nsenter");
    without_ward_variables(&mut cmd);
    cmd.args(["-t", &pid.to_string(), "-p", "-m", ward(), "status"]);
    cmd.args(args);
    run(cmd, Duration::from_secs(20))
}

/// Waits until `pred` holds for `ward status` in the namespace of `pid`.
fn status_until(pid: i32, args: &[&str], pred: impl Fn(&Outcome) -> bool) -> Outcome {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let out = status_in(pid, args);
        if pred(&out) || Instant::now() > until {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_as_pid1_names_the_parent_that_does_not_reap() {
    if !require_root("status_as_pid1") {
        return;
    }
    let script = ["/bin/sh", "-c", NON_REAPER];
    let p = Proc::start(
        ward_pid1(["--watch-interval", "200ms", "--"].iter().chain(&script)),
        T,
    );
    let ward_pid = p.ward_pid();
    // ward's answer (not the fallback that reads /proc when no ward
    // listens yet) with the zombies in it.
    let out = status_until(ward_pid, &[], |o| {
        o.stdout.contains("5 zombies") && o.stdout.contains("main process pid ")
    });
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    // The main process is usually pid 2, but a `ward status` that entered
    // the namespace before ward forked its child takes 2 itself (seen on a
    // loaded machine): read the main pid from the line, then check the rest
    // names the same process.
    let main: u32 = text
        .split("main process pid ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no main process pid in:\n{text}"));
    for want in [
        "ward 0.1.0, PID 1, up ".to_string(),
        "Limits and usage (cgroup ".to_string(),
        "ward's latest sample".to_string(),
        "5 zombies [sleep] NOT REAPED by their parent".to_string(),
        format!("hint: sleep (pid {main}) holds 5 exited children it never waited for"),
        "Warnings: ".to_string(),
        "OOM kills: 0".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("History is unavailable"), "{text}");
    assert!(!text.contains("NOTE: this ward"), "{text}");
    // The client leaves itself out of the tree.
    assert!(!text.contains(" status\n"), "{text}");

    let out = status_in(ward_pid, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["source"], "ward");
    assert_eq!(v["container_source"], "ward");
    assert_eq!(v["live"]["ward"]["pid1"], true);
    assert_eq!(v["live"]["ward"]["main_pid"], main);
    assert!(v["live"]["ward"]["sample_age_s"].as_f64().unwrap() < 30.0);
    assert!(v["container"]["limits"]["pids"]["value"].as_f64().is_some());
    let zombies = &v["tree"]["zombies"][0];
    assert_eq!(zombies["parent_pid"], main);
    assert_eq!(zombies["parent_name"], "sleep");
    assert_eq!(zombies["count"], 5);
    assert_eq!(zombies["reapable"], false);
    assert_eq!(zombies["seen_twice"], 5, "the second look saw them all");
    let pids: Vec<i64> = v["tree"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids, vec![1, i64::from(main)], "{}", out.stdout);
    drop(p);
}

#[test]
fn status_of_a_ward_that_does_not_watch_reads_the_limits_itself() {
    if !require_root("status_no_watch") {
        return;
    }
    // With --no-watch ward has no limits to serve. Before, `ward status`
    // said "no cgroup could be read", though it can read it itself.
    let p = Proc::start(ward_pid1(["--no-watch", "--", "sleep", "60"]), T);
    let ward_pid = p.ward_pid();
    let out = status_until(ward_pid, &[], |o| o.stdout.contains("ward 0.1.0, PID 1"));
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(text.contains("Limits and usage (cgroup "), "{text}");
    assert!(!text.contains("no cgroup could be read"), "{text}");
    // The client read them, now: not credited to ward's (absent) sample.
    assert!(text.contains(", read now)\n"), "{text}");
    assert!(!text.contains("ward's latest sample"), "{text}");
    let out = status_in(ward_pid, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(v["source"], "ward");
    assert_eq!(v["container_source"], "read_now");
    assert!(v["container"]["limits"]["pids"]["value"].as_f64().is_some());
    drop(p);
}

#[test]
fn status_right_after_start_waits_for_ward_to_serve() {
    if !require_root("status_right_after_start") {
        return;
    }
    // PID 1 is sh for 100 ms and then execs ward: the client asks before
    // anything listens (as `docker exec` right after `docker run` can), and
    // must get ward's answer, not the fallback's "No ward answered".
    let dir = TempDir::new("status-early");
    let file = dir.path().join("status.txt");
    let script = format!(
        "{w} status > {f} 2>&1 & sleep 0.1; exec {w} --watch-interval 200ms -- sleep 2",
        w = ward(),
        f = file.display()
    );
    let out = Proc::start(in_pid_namespace(["/bin/sh", "-c", &script]), T).wait();
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("ward 0.1.0, PID 1, up "), "{text}");
    assert!(!text.contains("No ward answered"), "{text}");
}

#[test]
fn status_reading_the_group_itself_leaves_itself_out_of_the_pids_count() {
    if !common::cgroup_v1::require_v1("cgroup v1 pids", &["pids"], "status_pids_count") {
        return;
    }
    // One `sleep` in a group of 50, and `ward status` joining it as `docker
    // exec` does: no ward answers, so it reads the group itself.
    let mut cg = common::cgroup_v1::CgroupV1::new("status-pids", &["pids"]);
    cg.set("pids", "pids.max", "50");
    cg.spawn_holder();
    let mut cmd = ward_plain(["status"]);
    cg.wrap(&mut cmd);
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(", read now)\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("\n  pids      1 of 50 (2.0%)"),
        "{}",
        out.stdout
    );
}

#[test]
fn status_says_when_the_ward_that_answers_is_in_another_cgroup() {
    if !common::cgroup_v1::require_v1("cgroup v1 pids", &["pids"], "status_other_cgroup") {
        return;
    }
    // ward in a group of its own, `ward status` outside it (as in a
    // container that shares its PID namespace with ward's): the answer is
    // shown, with a note whose it is.
    let cg = common::cgroup_v1::CgroupV1::new("status-other", &["pids"]);
    let mut cmd = ward_pid1(["--watch-interval", "200ms", "--", "sleep", "60"]);
    cg.wrap(&mut cmd);
    let p = Proc::start(cmd, T);
    let ward_pid = p.ward_pid();
    let out = status_until(ward_pid, &[], |o| o.stdout.contains("main process pid "));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("\nNOTE: this ward (pid 1) runs in another cgroup than this ward status."),
        "{}",
        out.stdout
    );
    let out = status_in(ward_pid, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(v["ward_in_another_cgroup"], true, "{}", out.stdout);
    drop(p);
}

#[test]
fn status_says_what_ward_does_next_in_a_stop_and_after_the_main_process() {
    if !require_root("status_next") {
        return;
    }
    // A SIGTERM to a main process that ignores it: --kill-after's SIGKILL
    // is next.
    let p = Proc::start(
        ward_pid1([
            "--watch-interval",
            "200ms",
            "--kill-after",
            "30s",
            "--",
            workload(),
            "ignore-term",
        ]),
        T,
    );
    p.expect_line("ready");
    let ward_pid = p.ward_pid();
    // ward's answer first (its server starts a moment after the child).
    status_until(ward_pid, &[], |o| o.stdout.contains("main process pid "));
    p.signal_ward(libc::SIGTERM);
    let out = status_until(ward_pid, &[], |o| o.stdout.contains("\nNEXT: "));
    assert!(
        out.stdout
            .contains("\nNEXT: SIGKILL to the main process (--kill-after) at +"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\nSTOPPING: SIGTERM received at +"),
        "{}",
        out.stdout
    );
    // still_running at 1 s: the reaping thread's warning counts too.
    let out = status_until(ward_pid, &[], |o| {
        o.stdout.contains("by the stop and shutdown")
    });
    assert!(
        out.stdout.contains(
            " of them by the stop and shutdown: still_running, kill_after or shutdown_kill lines, in ward's log only)"
        ),
        "{}",
        out.stdout
    );
    drop(p);

    // The main process exited, two that ignore SIGTERM are left: --grace's
    // SIGKILL is next.
    let p = Proc::start(
        ward_pid1([
            "--watch-interval",
            "200ms",
            "--grace",
            "30s",
            "--",
            workload(),
            "stragglers",
            "2",
            "--ignore-term",
            "--hold",
            "1",
        ]),
        T,
    );
    let ward_pid = p.ward_pid();
    let out = status_until(ward_pid, &[], |o| o.stdout.contains("MAIN PROCESS ENDED"));
    for want in [
        "\nMAIN PROCESS ENDED: exited with code 0 at +",
        "\nNEXT: SIGKILL to what is left (--grace) at +",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in:\n{}",
            out.stdout
        );
    }
    let out = status_in(ward_pid, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(
        v["live"]["main_ended"]["what"], "exited with code 0",
        "{}",
        out.stdout
    );
    assert_eq!(
        v["live"]["next"]["what"], "SIGKILL to what is left (--grace)",
        "{}",
        out.stdout
    );
    drop(p);
}

/// A parent that does reap, only late: zombies are there at every look,
/// never the same ones twice. They are not called unreaped, and nobody is
/// told to fix the parent.
#[test]
fn zombies_a_parent_reaps_late_are_not_called_unreaped() {
    if !require_root("zombies_reaped_late") {
        return;
    }
    let p = Proc::start(
        ward_pid1(["--", workload(), "zombies", "3", "--reap-every", "50"]),
        T,
    );
    let ward_pid = p.ward_pid();
    let out = status_until(ward_pid, &[], |o| {
        o.stdout.contains("main process pid ") && o.stdout.contains("(gone 200 ms later")
    });
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(
        text.contains("zombies [ward-workload] (gone 200 ms later: their parent reaps them)")
            || text.contains("zombie [ward-workload] (gone 200 ms later: their parent reaps them)"),
        "{text}"
    );
    assert!(!text.contains("NOT REAPED"), "{text}");
    assert!(!text.contains("hint:"), "{text}");
    drop(p);
}

#[test]
fn status_without_ward_as_pid1_reads_proc_and_says_history_is_unavailable() {
    if !require_root("status_without_ward") {
        return;
    }
    // PID 1 is sleep, holding 5 zombies itself.
    let p = Proc::start(in_pid_namespace(["/bin/sh", "-c", NON_REAPER]), T);
    let pid1 = p.pid1_as("sleep");
    let out = status_until(pid1, &[], |o| o.stdout.contains("5 zombies"));
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    for want in [
        "No ward answered (no ward answers on @ward-status-",
        "PID 1 is sleep, not ward. If it is another init",
        "History is unavailable",
        "Limits and usage (cgroup ",
        "read now",
        "sleep 60",
        "5 zombies [sleep] NOT REAPED by their parent",
        "hint: sleep is PID 1 and holds 5 exited children",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("Warnings:"), "{text}");

    let out = status_in(pid1, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(v["source"], "proc");
    assert_eq!(v["container_source"], "read_now");
    assert!(v["live"].is_null());
    assert!(
        v["history_unavailable"]
            .as_str()
            .unwrap()
            .contains("no ward answers")
    );
    assert_eq!(v["tree"]["zombies"][0]["count"], 5);
    drop(p);
}

#[test]
fn status_escapes_a_process_name_that_holds_terminal_sequences() {
    if !require_root("status_escapes_names") {
        return;
    }
    // The shell names itself "clear the screen, set the window title" (any
    // process may write its /proc/self/comm), then waits on a child.
    let script = r#"printf '\033[2J\033]0;pwned\007' > /proc/self/comm; sleep 60; :"#;
    // The command line holds an ESC too: the shell's `$0`.
    let p = Proc::start(
        ward_pid1([
            "--watch-interval",
            "200ms",
            "--",
            "/bin/sh",
            "-c",
            script,
            "\u{1b}[1mzero",
        ]),
        T,
    );
    let ward_pid = p.ward_pid();
    // The command line holds "pwned" too: wait for ward's own answer with
    // the shell's new name in it, escaped.
    let out = status_until(ward_pid, &[], |o| {
        o.code == 0 && o.stdout.contains(r"\x1b]0;pwned") && o.stdout.contains("sleep 60")
    });
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character reached the terminal:\n{text:?}"
    );
    assert!(
        text.contains(r"[\x1b[2J\x1b]0;pwned\x07] /bin/sh -c printf"),
        "{text}"
    );
    // Escaped the same way in the name and in the command line.
    assert!(text.contains(r"sleep 60; : \x1b[1mzero"), "{text}");
    // --json keeps the name as it is; JSON escapes it.
    let out = status_in(ward_pid, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    let shown = v["tree"]["processes"].as_array().unwrap().iter().any(|p| {
        p["command"]
            .as_str()
            .unwrap()
            .starts_with("[\u{1b}[2J\u{1b}]0;pwned\u{7}]")
            && p["command"].as_str().unwrap().ends_with(" \u{1b}[1mzero")
    });
    assert!(shown, "{}", out.stdout);
    drop(p);
}

#[test]
fn status_lists_a_process_whose_name_is_not_utf8() {
    if !require_root("status_non_utf8_name") {
        return;
    }
    // A Latin-1 name (0xe9, "é"). Before, reading its stat as a String
    // failed and the process was left out of both the text and --json.
    let script = r#"printf 'caf\351' > /proc/self/comm; sleep 60; :"#;
    let p = Proc::start(
        ward_pid1(["--watch-interval", "200ms", "--", "/bin/sh", "-c", script]),
        T,
    );
    let ward_pid = p.ward_pid();
    // The command line holds "sleep 60" too: wait for the renamed shell's
    // row and its child's.
    let out = status_until(ward_pid, &[], |o| {
        o.code == 0 && o.stdout.contains("[caf\u{fffd}]") && o.stdout.contains(" sleep 60\n")
    });
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("[caf\u{fffd}] /bin/sh -c printf"),
        "{}",
        out.stdout
    );
    let out = status_in(ward_pid, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    let commands: Vec<&str> = v["tree"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["command"].as_str().unwrap())
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("[caf\u{fffd}] /bin/sh")),
        "{commands:?}"
    );
    drop(p);
}

/// A stderr nobody reads while none of ward's own lines wait (`-q`: ward
/// has nothing to say): the application is blocked in write() all the
/// same. Before, `ward status` said nothing of it until ward queued a line
/// of its own.
#[test]
fn status_says_a_full_stderr_even_with_nothing_of_wards_waiting() {
    if !require_root("status_full_stderr") {
        return;
    }
    let fifo = StalledFifo::new("status-full");
    assert!(fifo.fill() >= 4096);
    let p = Proc::start_with_stderr(
        ward_pid1([
            "-q",
            "--",
            "/bin/sh",
            "-c",
            "echo ready; while :; do echo line >&2; done",
        ]),
        fifo.writer(),
        T,
    );
    p.expect_line("ready");
    let out = status_until(p.ward_pid(), &[], |o| o.stdout.contains("STDERR"));
    assert!(
        out.stdout.contains("\nSTDERR FULL: the container's stderr took no writes for 250 ms when asked: its reader is gone or slow"),
        "{}",
        out.stdout
    );
    let json = status_in(p.ward_pid(), &["--json"]);
    assert!(json.stdout.contains("\"full_now\":true"), "{}", json.stdout);
    // Six at once: one look at the full stderr stands for a second, so
    // each request does not wait its own 250 ms in the serving thread's
    // line (the sixth would then be past its 1 s: "No ward answered").
    let ward_pid = p.ward_pid();
    let askers: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(move || status_in(ward_pid, &[])))
        .collect();
    for asker in askers {
        let out = asker.join().unwrap();
        assert!(
            out.stdout.starts_with("ward 0.1.0, PID 1") && out.stdout.contains("STDERR FULL"),
            "{}",
            out.stdout
        );
    }
    drop(p);
    fifo.drain();
}

/// PID 1 ward stopped (SIGSTOP from the host): `ward status` says so, and
/// what it means, rather than offering it as one of two guesses; `ward
/// check` of a refused port still answers at once, not after its whole
/// budget spent waiting for ward's context (a probe runner's own timeout
/// would then record no reason at all).
#[test]
fn a_stopped_pid1_ward_is_said_and_does_not_hold_a_failing_check() {
    if !require_root("status_stopped_ward") {
        return;
    }
    let p = Proc::start(
        ward_pid1(["--", "/bin/sh", "-c", "echo ready; exec sleep 60"]),
        T,
    );
    p.expect_line("ready");
    let ward_pid = p.ward_pid();
    let out = status_until(ward_pid, &[], |o| o.stdout.contains("main process pid "));
    assert!(
        out.stdout.starts_with("ward 0.1.0, PID 1"),
        "{}",
        out.stdout
    );
    // SAFETY: kill(2) on the test's own ward.
    unsafe { libc::kill(ward_pid, libc::SIGSTOP) };
    let mut check = Command::new("nsenter");
    without_ward_variables(&mut check);
    check.args([
        "-t",
        &ward_pid.to_string(),
        "-p",
        "-m",
        ward(),
        "check",
        "--timeout",
        "8s",
        "tcp://127.0.0.1:1",
    ]);
    let checked = run(check, Duration::from_secs(30));
    let text = status_in(ward_pid, &[]);
    // SAFETY: as above.
    unsafe { libc::kill(ward_pid, libc::SIGCONT) };
    assert_eq!(checked.code, 1, "{checked:?}");
    assert!(
        checked.stdout.contains("unhealthy: connection refused"),
        "{checked:?}"
    );
    // A hang guard, not a speed goal: the context may take a quarter of
    // the 8 s budget; before, the check waited out all of it.
    assert!(
        checked.elapsed < Duration::from_secs(5),
        "ward check took {:?} with PID 1 stopped",
        checked.elapsed
    );
    assert!(
        text.stdout.contains("PID 1 is ward, and it is stopped (state T: SIGSTOP, or a debugger). It reaps nothing and forwards no signal until it gets SIGCONT (kill -CONT 1)."),
        "{}",
        text.stdout
    );
}

#[test]
fn status_exit_codes() {
    // Bad usage: 2, one line.
    let out = run(ward_plain(["status", "--bogus"]), T);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--bogus"), "{out:?}");
    let out = run(ward_plain(["status", "--help"]), T);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Usage: ward status [--json]"));

    if !require_root("status_exit_codes") {
        return;
    }
    // Nothing readable: an empty /proc in a private mount namespace.
    let mut cmd = Command::new("unshare");
    without_ward_variables(&mut cmd);
    cmd.args([
        "--mount",
        "/bin/sh",
        "-c",
        &format!("mount -t tmpfs none /proc && exec {} status", ward()),
    ]);
    let out = run(cmd, T);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("History is unavailable"), "{out:?}");
    assert!(out.stdout.contains("/proc could not be read"), "{out:?}");
}

/// Wards side by side in one PID namespace, none PID 1 (a pod that shares
/// its PID namespace): the first serves `ward status`. The second found
/// the socket taken and never tried again, so once the first was gone no
/// ward answered ("PID 1 is sh, not ward ... Run ward as PID 1").
#[test]
fn status_reaches_the_next_ward_once_the_one_serving_is_gone() {
    if !require_root("status_reaches_the_next_ward") {
        return;
    }
    let w = ward();
    let script = format!("{w} -- sleep 1.5 & sleep 0.5; {w} -- sleep 60 & wait");
    let p = Proc::start(in_pid_namespace(["/bin/sh", "-c", &script]), T);
    let pid1 = p.pid1_as("sh");
    // The first ward and its child are gone by then.
    std::thread::sleep(Duration::from_secs(3));
    let out = status_until(pid1, &["--json"], |o| {
        serde_json::from_str::<serde_json::Value>(&o.stdout).is_ok_and(|v| v["source"] == "ward")
    });
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json parses");
    assert_eq!(v["source"], "ward", "{out:?}");
    assert_eq!(v["live"]["ward"]["pid1"], false, "{out:?}");
    drop(p);
}
