//! The init, run for real as PID 1 of a fresh PID namespace (needs root):
//! reaping, exit codes, signal forwarding, stopping, and the grace period.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

fn sh(script: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        script.replace("WL", workload()),
    ]
}

#[test]
fn orphan_storm_leaves_no_zombie_under_ward_and_thousands_without() {
    if !require_root("orphan_storm") {
        return;
    }
    // With ward as PID 1: 20,000 double-forked orphans, then count zombies
    // from the host's view while the container is still up.
    let script = sh("WL orphans 20000 && exec WL sleep 60");
    let args: Vec<&str> = ["--"]
        .into_iter()
        .chain(script.iter().map(String::as_str))
        .collect();
    let p = Proc::start(ward_pid1(&args), Duration::from_secs(120));
    let line = p.wait_line(|l| l.starts_with("orphans="));
    assert_eq!(line, "orphans=20000 fork_failures=0");
    std::thread::sleep(Duration::from_millis(200));
    let zombies = zombies_under(p.pid());
    assert_eq!(zombies, 0, "zombies left under ward");
    drop(p);

    // Control: the same storm with a PID 1 that never waits. Fenced by a
    // pids cgroup so the zombies can't exhaust the machine's PID space.
    let fence = common::cgroup_v1::CgroupV1::new("storm", &["pids"]);
    fence.set("pids", "pids.max", "4000");
    let script = format!("{0} orphans 20000 & exec {0} sleep 60", workload());
    let mut cmd = in_pid_namespace(["/bin/sh", "-c", &script]);
    fence.wrap(&mut cmd);
    let p = Proc::start(cmd, Duration::from_secs(120));
    p.wait_line(|l| l.starts_with("orphans="));
    let zombies = zombies_under(p.pid());
    assert!(zombies >= 2000, "control run left only {zombies} zombies");
    drop(p);
}

#[test]
fn exit_codes_pass_through_and_signals_become_128_plus_n() {
    if !require_root("exit_codes") {
        return;
    }
    for code in 0..=255 {
        let c = code.to_string();
        let out = run(ward_pid1(["--no-watch", "--", workload(), "exit", &c]), T);
        assert_eq!(out.code, code, "exit {code}: {}", out.stderr);
    }
    // Every signal whose default action kills the process.
    let fatal = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31,
    ];
    for sig in fatal.into_iter().chain(34..=64) {
        let s = sig.to_string();
        let out = run(ward_pid1(["--no-watch", "--", workload(), "die", &s]), T);
        assert_eq!(out.code, 128 + sig, "die {sig}: {}", out.stderr);
        out.expect_stderr("was killed by");
    }
}

#[test]
fn every_catchable_signal_reaches_the_child() {
    let Some(cmd) = pid1("every_signal", "--no-watch -- WL signals") else {
        return;
    };
    every_signal_reaches(cmd);
}

/// With the watch thread on, ward wakes its reaping thread with a signal of
/// its own (SIGURG, sent to that thread): the same signal sent to ward from
/// outside is still the child's.
#[test]
fn every_catchable_signal_reaches_the_child_with_the_watch_on() {
    let Some(cmd) = pid1(
        "every_signal_watch_on",
        "--watch-interval 100ms -- WL signals",
    ) else {
        return;
    };
    every_signal_reaches(cmd);
}

fn every_signal_reaches(cmd: std::process::Command) {
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    // All but KILL/STOP (uncatchable), CHLD (ward's own), TTIN/TTOU (ward
    // ignores them: job control belongs to the child).
    for sig in 1..=64 {
        if [9, 19, 17, 21, 22].contains(&sig) {
            continue;
        }
        p.signal_ward(sig);
        p.expect_line(&format!("signal {sig}"));
    }
    p.signal_ward(libc::SIGKILL);
}

#[test]
fn signal_group_reaches_the_grandchild_and_default_does_not() {
    let Some(cmd) = pid1("signal_group", "--no-watch -g -- WL signals --fork") else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGUSR1);
    let mut got = vec![
        p.wait_line(|l| l.contains("signal 10")),
        p.wait_line(|l| l.contains("signal 10")),
    ];
    got.sort();
    assert_eq!(got, ["child signal 10", "signal 10"]);
    drop(p);

    let p = Proc::start(ward_pid1(argv("--no-watch -- WL signals --fork")), T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGUSR1);
    p.expect_line("signal 10");
    p.signal_ward(libc::SIGUSR2);
    // Without -g the next line is the parent's USR2, never the child's USR1.
    assert_eq!(
        p.next_line(Duration::from_secs(10)).as_deref(),
        Some("signal 12")
    );
}

#[test]
fn rewrite_and_drop() {
    let Some(cmd) = pid1("rewrite", "--no-watch -r USR1:USR2 -r HUP:0 -- WL signals") else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGUSR1);
    p.expect_line("signal 12");
    p.signal_ward(libc::SIGHUP);
    p.signal_ward(libc::SIGWINCH);
    // HUP was dropped: the next thing the child sees is WINCH.
    assert_eq!(
        p.next_line(Duration::from_secs(10)).as_deref(),
        Some("signal 28")
    );
    p.signal_ward(libc::SIGKILL);
    p.wait()
        .expect_stderr("[signal_dropped] SIGHUP dropped (--rewrite HUP:0)");
}

/// A signal `--rewrite` drops, sent in a loop, writes one info line per
/// signal, not one per arrival (the README's promise for later signals).
#[test]
fn a_dropped_signal_in_a_loop_writes_one_line() {
    let Some(cmd) = pid1("drop_loop", "--no-watch -r USR1:0 -r USR2:0 -- WL signals") else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    for _ in 0..10 {
        p.signal_ward(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.signal_ward(libc::SIGUSR2);
    p.signal_ward(libc::SIGWINCH);
    p.expect_line("signal 28");
    p.signal_ward(libc::SIGKILL);
    let out = p.wait();
    assert_eq!(
        out.stderr.matches("[signal_dropped] SIGUSR1").count(),
        1,
        "{}",
        out.stderr
    );
    out.expect_stderr("[signal_dropped] SIGUSR2 dropped (--rewrite USR2:0)");
}

/// Every event's `signal` field is the signal's name: a log store types a
/// field by the first value it sees (`signal_dropped` and
/// `signal_ignored` gave numbers, the others names).
#[test]
fn json_signal_fields_are_names_in_every_event() {
    let line = "--no-watch --log-format json -r HUP:0 --grace 30s -- \
                WL stragglers 1 --ignore-term --hold 5";
    let Some(cmd) = pid1("signal_names", line) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    // Dropped while the main process holds (signal_dropped) ...
    p.signal_ward(libc::SIGHUP);
    // ... and a stop once it is gone (signal_ignored), late enough to cut
    // the grace short.
    p.wait_stderr("\"event\":\"shutdown\"");
    std::thread::sleep(Duration::from_millis(300));
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    let mut seen = 0;
    for line in out.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        if let Some(sig) = v.get("signal") {
            assert!(sig.is_string(), "{line}");
            seen += 1;
        }
    }
    assert!(
        seen >= 2,
        "signal_dropped and signal_ignored: {}",
        out.dump()
    );
}

/// ward with `--stop-delay DELAY` over a child that exits 7 on SIGTERM.
fn exits_7_on_term_after(delay: &str) -> Command {
    ward_pid1(argv(&format!(
        "--no-watch --stop-delay {delay} -- WL signals --exit-on TERM --exit-code 7"
    )))
}

#[test]
fn stop_delay_holds_the_first_term_and_a_second_goes_at_once() {
    if !require_root("stop_delay") {
        return;
    }
    let p = Proc::start(exits_7_on_term_after("1500ms"), T);
    p.expect_line("ready");
    let sent = std::time::Instant::now();
    p.signal_ward(libc::SIGTERM);
    p.expect_line("signal 15");
    assert!(
        sent.elapsed() >= Duration::from_millis(1500),
        "forwarded before the delay"
    );
    let out = p.wait();
    assert_eq!(out.code, 7);
    out.expect_stderr("[stop_delayed]");
    // The stop was held: the exit says so by the reason it gives.
    out.expect_stderr("stopped on request");

    let p = Proc::start(exits_7_on_term_after("60s"), T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    p.signal_ward(libc::SIGTERM);
    // Well before the 60 s delay (the guard is the 60 s test limit).
    assert_eq!(p.wait().code, 7);
}

/// A SIGINT during the delay goes at once and takes the held SIGTERM with
/// it: the child is never left without the SIGTERM it was meant to get.
#[test]
fn a_sigint_during_the_stop_delay_sends_the_held_term_too() {
    let Some(cmd) = pid1(
        "stop_delay_int",
        "--no-watch --stop-delay 120s -- WL signals",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    p.signal_ward(libc::SIGINT);
    // Well before the 120 s delay; the order two pending signals arrive in
    // is the kernel's (lowest number first).
    let mut got = vec![
        p.wait_line(|l| l.starts_with("signal ")),
        p.wait_line(|l| l.starts_with("signal ")),
    ];
    got.sort();
    assert_eq!(got, ["signal 15", "signal 2"]);
    p.signal_ward(libc::SIGKILL);
    drop(p);
}

/// `--stop-delay 1s --kill-after 1500ms` (after `extra` options) over a
/// child that ignores SIGTERM, stopped with one: SIGKILLed (137).
fn held_stop_killed(name: &str, extra: &str) -> Option<common::Outcome> {
    let cmd = pid1(
        name,
        &format!("--no-watch {extra}--stop-delay 1s --kill-after 1500ms -- WL ignore-term"),
    )?;
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.dump());
    Some(out)
}

/// `--kill-after` counts from the forward, after `--stop-delay`: the lines
/// and the report say how long the stop was held, or "1 s after SIGTERM"
/// reads as 1 s after it came.
#[test]
fn kill_after_a_held_stop_says_how_long_it_was_held() {
    let Some(out) = held_stop_killed("kill_after_held", "") else {
        return;
    };
    out.expect_stderr("[still_running] main process ");
    out.expect_stderr("still running 1 s after SIGTERM was forwarded, which --stop-delay held ");
    out.expect_stderr(
        "still running 1.5 s after the stop signal was forwarded, which --stop-delay held ",
    );
    out.expect_stderr("(--kill-after) of SIGTERM from ");
    out.expect_stderr(" being forwarded (--stop-delay held it ");
}

/// The same stop in JSON: the fields carry what the words say (the held
/// stop, the signal, how long after it the main process ended); they were
/// only in `msg`.
#[test]
fn a_held_stop_in_json_carries_its_facts_in_fields() {
    let Some(out) = held_stop_killed("kill_after_held_json", "--log-format json ") else {
        return;
    };
    let one = |name: &str| one_json_event(&out, name);
    let still = one("still_running");
    assert_eq!(still["signal"], "SIGTERM", "{still}");
    assert!(
        still["held_s"].as_f64().is_some_and(|h| h >= 1.0),
        "{still}"
    );
    let kill = one("kill_after");
    assert!(kill["held_s"].as_f64().is_some_and(|h| h >= 1.0), "{kill}");
    assert_eq!(kill["kill_after_s"], 1.5, "{kill}");
    let exited = one("child_exited");
    assert_eq!(exited["signal"], "SIGKILL", "{exited}");
    assert_eq!(exited["stop_signal"], "SIGTERM", "{exited}");
    assert!(
        exited["after_stop_s"].as_f64().is_some_and(|s| s >= 2.5),
        "{exited}"
    );
}

/// A rewritten forward to the process group says both in its fields.
#[test]
fn a_rewritten_group_forward_in_json_says_so_in_fields() {
    let Some(cmd) = pid1(
        "rewritten_group_json",
        "--no-watch --log-format json --log-level debug -g -r USR1:USR2 -- WL signals --exit-on TERM",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGUSR1);
    p.wait_line(|l| l.starts_with("signal "));
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    let forwards = common::events::json_named(&out.stderr, "signal_forwarded");
    let usr2 = forwards
        .iter()
        .find(|v| v["signal"] == "SIGUSR2")
        .unwrap_or_else(|| panic!("no forward of SIGUSR2: {}", out.dump()));
    assert_eq!(usr2["received"], "SIGUSR1", "{usr2}");
    assert_eq!(usr2["group"], true, "{usr2}");
}

#[test]
fn kill_after_sigkills_a_child_that_ignores_term() {
    let Some(cmd) = pid1(
        "kill_after",
        "--no-watch --kill-after 500ms -- WL ignore-term",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.stderr);
    out.expect_stderr("[kill_after]");
    out.expect_stderr("[stop_requested] received SIGTERM from");
}

#[test]
fn a_sigterm_loop_writes_one_line_not_one_per_signal() {
    // Any process in the container can signal PID 1: each SIGTERM after the
    // first used to write an info line (a loop wrote 150,000 a second).
    let Some(cmd) = pid1("sigterm_loop", "--no-watch --grace 5s -- WL ignore-term") else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    for _ in 0..20 {
        p.signal_ward(libc::SIGTERM);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.wait_stderr("[stop_requested]");
    std::thread::sleep(Duration::from_millis(200));
    let text = p.stderr_now();
    assert_eq!(
        text.matches("[signal_forwarded]").count(),
        1,
        "one line for 20 SIGTERMs: {text}"
    );
    drop(p);

    // After the main process: one signal_ignored line for 20 SIGUSR1s.
    let Some(cmd) = pid1(
        "sigusr1_loop",
        "--no-watch --grace 30s -- WL stragglers 1 --ignore-term --hold 0",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.wait_stderr("[shutdown]");
    for _ in 0..20 {
        p.signal_ward(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(5));
    }
    p.wait_stderr("[signal_ignored]");
    std::thread::sleep(Duration::from_millis(200));
    let text = p.stderr_now();
    assert_eq!(
        text.matches("[signal_ignored]").count(),
        1,
        "one line for 20 SIGUSR1s: {text}"
    );
    drop(p);
}

#[test]
fn a_group_signal_reaches_a_main_process_that_left_its_group() {
    // `-g` over a main process that moved to another process group.
    // - Its old group empty: before, the SIGTERM found nobody ("No such
    //   process"), so no stop was forwarded, `--kill-after` never armed,
    //   and the container ran on until the runtime's own SIGKILL.
    // - A zombie child left in the old group (`--behind`): the signal to
    //   the group succeeded and ended there, so the main process got
    //   neither the SIGTERM nor `--kill-after`'s SIGKILL, which ward said
    //   it had sent.
    // Now the signal goes to the main process too, said once, and
    // `--kill-after` follows.
    for (case, leave) in [
        ("group_gone", "--leave-group"),
        ("group_left_behind", "--leave-group --behind"),
    ] {
        let line = format!("--no-watch -g --kill-after 200ms -- WL ignore-term {leave}");
        let Some(cmd) = pid1(case, &line) else {
            return;
        };
        let p = Proc::start(cmd, T);
        p.expect_line("ready");
        p.signal_ward(libc::SIGTERM);
        let out = p.wait();
        assert_eq!(out.code, 137, "{case}: {}", out.dump());
        assert_eq!(
            out.stderr.matches("[signal_group_left]").count(),
            1,
            "{case}: said once: {}",
            out.dump()
        );
        out.expect_stderr(
            "left its process group (setpgid): -g signals go to it and to what is left of that group, not to its new group",
        );
        out.expect_stderr("forwarded SIGTERM to main process ward-workload");
        out.expect_stderr("[kill_after]");
        assert!(
            !out.stderr.contains("could not forward"),
            "{case}: {}",
            out.dump()
        );
        out.expect_stderr("(--kill-after) of SIGTERM");
        out.expect_stderr("ward killed it with SIGKILL");
    }
}

#[test]
fn a_kill_after_sigkill_to_an_emptied_group_kills_the_main_process() {
    // The SIGTERM reaches the group; then the main process leaves it, so
    // `--kill-after`'s SIGKILL finds the group empty. Before, it was "could
    // not forward SIGKILL" and the main process lived on; now it goes to
    // the main process alone.
    let Some(cmd) = pid1(
        "kill_after_gone",
        "--no-watch -g --kill-after 200ms -- WL ignore-term --leave-group-on-term",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    p.expect_line("left");
    let out = p.wait();
    assert_eq!(out.code, 137, "{}", out.dump());
    assert!(!out.stdout.contains("term again"), "{}", out.dump());
    out.expect_stderr("forwarded SIGTERM to the process group of ward-workload");
    out.expect_stderr("[signal_group_left]");
    assert!(!out.stderr.contains("could not forward"), "{}", out.dump());
    out.expect_stderr("ward killed it with SIGKILL");
}

#[test]
fn pdeathsig_as_pid1_fires_when_the_parent_outside_the_namespace_dies() {
    // PID 1 of a PID namespace has a parent outside it (here unshare; in a
    // container the runtime's shim), as tini's `-p` assumes. Before, ward
    // said "ignored: ward is PID 1 and has no parent to lose" and ran on.
    let Some(cmd) = pid1(
        "pdeathsig_pid1",
        "--no-watch -p TERM -- WL signals --exit-on TERM --exit-code 9",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    let ward = p.ward_pid();
    // SAFETY: plain kill(2) on unshare, the test's own child.
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGKILL) }, 0);
    p.wait_stderr("exited with code 9");
    p.wait_stderr("[exit_report]");
    assert!(!p.stderr_now().contains("ignored"), "{}", p.stderr_now());
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{ward}")).exists() {
        assert!(std::time::Instant::now() < until, "ward never exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stopped_process_left_at_shutdown_is_continued_to_take_its_sigterm() {
    // Before, a leftover held by SIGSTOP got the SIGTERM but could not act
    // on it: ward sat out the whole grace and SIGKILLed it.
    if !require_root("shutdown_stopped") {
        return;
    }
    let mut cmd = ward_pid1(["--no-watch", "--grace", "30s", "--", "sh", "-c"]);
    cmd.arg("sleep 100 & kill -STOP $!; sleep 0.2; exit 0");
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("[shutdown] sent SIGTERM to 1 remaining process");
    assert!(!out.stderr.contains("[shutdown_kill]"), "{}", out.dump());
}

#[test]
fn the_watch_wake_up_without_its_details_is_not_forwarded() {
    // At RLIMIT_SIGPENDING the kernel queues no details for the watch
    // thread's wake-up (SIGURG by tgkill): it arrives as if sent from
    // outside (pid 0, SI_USER). Before, ward forwarded it, and the child
    // got a SIGURG nobody sent ("forwarded SIGURG", then "SIGURG received
    // after the main process ended"). Here the wake-up answers ward's
    // question about who sent the SIGTERM (a subshell).
    if !require_root("wake_without_details") {
        return;
    }
    let mut cmd = Command::new("unshare");
    without_ward_variables(&mut cmd);
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .args(["prlimit", "--sigpending=0", ward(), "-v", "--", "sh", "-c"])
        .arg("trap 'echo GOT TERM; exit 0' TERM; (kill -TERM 1; sleep 1) & sleep 2");
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("[stop_requested] received SIGTERM from pid");
    // The watch named the sender (sh, or the sleep it became): its
    // answer, and its wake-up, came.
    let report = out.one("exit_report").to_string();
    assert!(!report.contains("SIGTERM from pid"), "{}", out.dump());
    assert!(out.stdout.contains("GOT TERM"), "{}", out.dump());
    assert!(!out.stderr.contains("SIGURG"), "{}", out.dump());
}

#[test]
fn grace_kills_stragglers_that_ignore_term() {
    let line = "--no-watch --grace 1s -- WL stragglers 5 --ignore-term";
    let Some(cmd) = pid1("grace_kill", line) else {
        return;
    };
    let out = run(cmd, T);
    expect_stragglers_killed(&out, 5, "1 s");
    assert!(out.elapsed >= Duration::from_secs(1));
}

#[test]
fn zombies_left_at_shutdown_are_not_counted_as_still_running() {
    // The straggler ignores SIGTERM and holds three zombies it never waits
    // for: one process outlives the grace, not four.
    if !require_root("grace_zombies") {
        return;
    }
    let inner = "trap '' TERM; sleep 0 & sleep 0 & sleep 0 & exec sleep 20";
    let mut cmd = ward_pid1(["--grace", "1s", "--", "sh", "-c"]);
    cmd.arg(format!("sh -c \"{inner}\" & sleep 0.5; exit 0"));
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("sent SIGTERM to 1 remaining process;");
    out.expect_stderr("1 process still running after the 1 s grace: sent SIGKILL to sleep (pid ");
    let kill = out.stderr.lines().find(|l| l.contains("[shutdown_kill]"));
    assert!(!kill.unwrap().contains(" and "), "{}", out.dump());
}

#[test]
fn zombies_held_through_two_looks_are_reported_with_their_parent() {
    // sleep holds its two exited children for 2 s: the census after the
    // one that first saw them confirms, and the report names the parent.
    if !require_root("zombies_held") {
        return;
    }
    let mut cmd = ward_pid1(["--watch-interval", "200ms", "--", "sh", "-c"]);
    cmd.arg("sleep 0 & sleep 0 & exec sleep 2");
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("Up to 2 zombies at once were left unreaped during the run; sleep (pid ");
    out.expect_stderr(") never waited for 2 of them.");
}

/// A parent that does wait() for its children, busy enough that every look
/// catches a few of them between their exit and its wait(): those are not
/// left unreaped. Each look saw other zombies, and the warning and the
/// report said "sh never waited for 12 of them".
#[test]
fn a_busy_parent_that_waits_is_not_said_to_leave_zombies() {
    if !require_root("busy_waiting_parent") {
        return;
    }
    let mut cmd = ward_pid1(["--watch-interval", "100ms", "--", "sh", "-c"]);
    cmd.arg(
        "i=0; while [ $i -lt 150 ]; do \
         for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/true & done; \
         wait; i=$((i + 1)); done",
    );
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.dump());
    assert!(!out.stderr.contains("zombies_unreaped"), "{}", out.dump());
    assert!(!out.stderr.contains("left unreaped"), "{}", out.dump());
}

#[test]
fn a_script_that_execs_its_app_is_reported_as_the_app() {
    if !require_root("exec_name") {
        return;
    }
    // An entrypoint script that ends in `exec`: the process ward started is
    // the app from then on, and the report names it so (as the kernel's OOM
    // line would). Before, it said "main process sh".
    let script = sh("exec WL sleep 1.5");
    let mut args = vec!["--watch-interval", "200ms", "--"];
    args.extend(script.iter().map(String::as_str));
    let out = run(ward_pid1(&args), T);
    assert_eq!(out.code, 0, "{}", out.dump());
    let report = out.one("exit_report");
    assert!(
        report.contains("main process ward-workload (pid ") && report.contains(", started as sh)"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_script_that_execs_its_app_between_two_looks_is_reported_as_the_app() {
    if !require_root("exec_name_between_looks") {
        return;
    }
    // The usual entrypoint again, its app dying 0.3 s after the `exec`:
    // the watch's next look is 60 s away, so only the main child's SIGCHLD
    // can tell ward what it was called by then. The child_exited line and
    // the report both name the app.
    let script = sh("sleep 0.2; exec WL exit 3");
    let mut args = vec!["--watch-interval", "60s", "--"];
    args.extend(script.iter().map(String::as_str));
    let out = run(ward_pid1(&args), T);
    assert_eq!(out.code, 3, "{}", out.dump());
    for key in ["child_exited", "exit_report"] {
        let line = out.one(key);
        assert!(
            line.contains("main process ward-workload (pid ") && line.contains(", started as sh)"),
            "{key}: {}",
            out.dump()
        );
    }
}

#[test]
fn a_stop_from_the_main_process_itself_is_said_so() {
    if !require_root("stop_from_main") {
        return;
    }
    // An app that asks PID 1 to stop the container: the line names it as the
    // main process, not as a bare pid to look up.
    let script = sh("kill -TERM 1; sleep 5");
    let mut args = vec!["--no-watch", "--"];
    args.extend(script.iter().map(String::as_str));
    let out = run(ward_pid1(&args), T);
    assert_eq!(out.code, 143, "{}", out.dump());
    out.expect_stderr("[stop_requested] received SIGTERM from the main process itself (pid ");
}

#[test]
fn a_stop_during_the_grace_cuts_it_short() {
    // The main process is gone and the stragglers ignore SIGTERM: ward waits
    // out --grace. A stop then (a second `docker stop`, or the first one
    // arriving late) means the orchestrator's SIGKILL is coming: ward
    // SIGKILLs the rest now and writes its report. Before, the stop was
    // ignored at debug level and ward sat out the whole grace (longer than
    // this test's 60 s guard).
    let Some(cmd) = pid1(
        "grace_cut",
        "--no-watch --grace 120s -- WL stragglers 3 --ignore-term",
    ) else {
        return;
    };
    let p = Proc::start(cmd, T);
    p.wait_stderr("[shutdown] sent SIGTERM to 3");
    // Past the moment a stop still counts as one with the exit (100 ms).
    std::thread::sleep(Duration::from_millis(300));
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr(
        "[signal_ignored] SIGTERM received after the main process ended; not forwarded: a stop",
    );
    // Not "after the 120 s grace": ward did not wait it out.
    out.expect_stderr(
        "3 processes still running when a stop signal cut --grace short: sent SIGKILL",
    );
    out.expect_stderr("[exit_report]");
}

/// A stop that comes with the main process's exit (systemd signals every
/// process at once; here the main process signals PID 1 as it exits) is
/// not a second stop: the rest still get their --grace. It cut the grace
/// to nothing, SIGKILL in the millisecond of the SIGTERM, in 2 of 3 runs.
#[test]
fn a_stop_that_comes_with_the_exit_leaves_the_grace_whole() {
    if !require_root("stop_with_exit") {
        return;
    }
    let script = "(trap 'sleep 1; echo helper cleaned up >&2; exit 0' TERM; \
                  while :; do sleep 0.1; done) & trap '' TERM; sleep 0.5; kill -TERM 1; exit 0";
    for _ in 0..3 {
        let out = run(ward_pid1(["--no-watch", "--", "sh", "-c", script]), T);
        assert_eq!(out.code, 0, "{}", out.dump());
        out.expect_stderr("helper cleaned up");
        assert!(!out.stderr.contains("[shutdown_kill]"), "{}", out.dump());
    }
}

#[test]
fn grace_ends_as_soon_as_stragglers_are_gone() {
    let line = "--no-watch --grace 30s -- WL stragglers 10 --exit-after 100";
    let Some(cmd) = pid1("grace_early", line) else {
        return;
    };
    let out = run(cmd, T);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.expect_stderr("sent SIGTERM to 10 remaining processes");
    assert!(!out.stderr.contains("SIGKILL"), "{}", out.stderr);
    // Not a timing assertion on speed: only that it did not sit out the
    // 30 s grace.
    assert!(out.elapsed < Duration::from_secs(25), "{:?}", out.elapsed);
}

#[test]
fn no_drain_when_nothing_is_left() {
    let Some(cmd) = pid1("no_drain", "--no-watch -- WL exit 0") else {
        return;
    };
    let out = run(cmd, T);
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains("[shutdown]"), "{}", out.stderr);
}

#[test]
fn orphans_terminate_sends_term_to_adopted_orphans() {
    if !require_root("orphans_terminate") {
        return;
    }
    let script = sh("WL stragglers 3 --exit-after 0 --hold 0 && echo spawned && exec WL sleep 30");
    let mut args = vec!["--no-watch", "--orphans", "terminate", "--"];
    args.extend(script.iter().map(String::as_str));
    let p = Proc::start(ward_pid1(&args), T);
    p.expect_line("spawned");
    // The stragglers exit on SIGTERM; ward should have sent it within its
    // 1 s scan. Poll the host view until they are gone.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let live = descendants(p.ward_pid()).len();
        if live == 1 {
            break; // only `sleep`
        }
        assert!(
            std::time::Instant::now() < until,
            "orphans still alive: {live}\n{}",
            p.stderr_now()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        p.stderr_now().matches("[orphan_terminated]").count(),
        3,
        "{}",
        p.stderr_now()
    );
}

#[test]
fn exec_failures_and_usage_errors() {
    if !require_root("exec_failures") {
        return;
    }
    let out = run(ward_pid1(["--no-watch", "--", "/no/such/cmd"]), T);
    assert_eq!(out.code, 127);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    out.expect_stderr("cannot run \"/no/such/cmd\": not found");
    // A file without execute permission (EACCES). An executable text file
    // without a shebang would run through /bin/sh, as with execvp.
    let out = run(ward_pid1(["--no-watch", "--", "/proc/version"]), T);
    assert_eq!(out.code, 126);
    out.expect_stderr("cannot be executed");
    let out = run(ward_pid1(["--grace", "soon", "--", "true"]), T);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "ward: error [usage] --grace: invalid duration 'soon': expected e.g. 500ms, 10s, 2m\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn remap_exit_changes_the_code() {
    let Some(cmd) = pid1("remap_exit", "--no-watch -e 143 -- WL die TERM") else {
        return;
    };
    assert_eq!(run(cmd, T).code, 0);
    let out = run(ward_pid1(argv("--no-watch -e 3:4 -- WL exit 3")), T);
    assert_eq!(out.code, 4);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let Some(cmd) = pid1("json_logs", "--no-watch --log-format json -- WL exit 5") else {
        return;
    };
    let out = run(cmd, T);
    assert_eq!(out.code, 5);
    assert!(!out.stderr.is_empty());
    for line in out.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["event"].is_string() && v["ts"].is_string(), "{line}");
    }
}

/// A `docker kill -s USR1` reads as one in the report: the main process died
/// of a signal ward forwarded, and the report says from where, not only
/// "killed by SIGUSR1" as if the application had failed by itself.
#[test]
fn a_death_by_a_forwarded_signal_is_told_as_such() {
    if !require_root("forwarded_death") {
        return;
    }
    let cmd = ward_pid1([
        "--no-watch",
        "--log-format",
        "json",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 100",
    ]);
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGUSR1);
    let out = p.wait();
    assert_eq!(out.code, 128 + libc::SIGUSR1, "{}", out.dump());
    let reports = common::events::json_named(&out.stderr, "exit_report");
    let [v] = <[serde_json::Value; 1]>::try_from(reports)
        .unwrap_or_else(|r| panic!("{} exit reports: {}", r.len(), out.dump()));
    assert_eq!(v["cause"], "killed", "{v}");
    assert_eq!(v["signal_forwarded"]["signal"], "SIGUSR1", "{v}");
    assert_eq!(v["signal_forwarded"]["from_pid"], 0, "{v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(
            "killed by SIGUSR1; ward had forwarded it SIGUSR1, received from outside the container"
        ),
        "{v}"
    );
}

/// `--kill-after` with the stop signal `--rewrite` drops can never start for
/// it: said at start, not left for a `docker stop` to find out.
#[test]
fn kill_after_with_a_dropped_stop_signal_is_warned_of() {
    let Some(cmd) = pid1(
        "stop_dropped",
        "--no-watch -r TERM:0 --kill-after 1s -- true",
    ) else {
        return;
    };
    let out = Proc::start(cmd, T).wait();
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr(
        "ward: warning [stop_dropped] --rewrite drops SIGTERM, a stop signal: it is never forwarded, so --kill-after never starts for it",
    );
}

/// Two dropped stop signals are said in the plural.
#[test]
fn kill_after_with_two_dropped_stop_signals_is_warned_of_in_the_plural() {
    let Some(cmd) = pid1(
        "stop_dropped_two",
        "--no-watch -r TERM:0 -r INT:0 --kill-after 1s -- true",
    ) else {
        return;
    };
    let out = Proc::start(cmd, T).wait();
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr(
        "ward: warning [stop_dropped] --rewrite drops SIGTERM and SIGINT, stop signals: they are never forwarded, so --kill-after never starts for them",
    );
}

/// `--stop-delay` where SIGTERM is no stop signal, or is dropped, would hold
/// nothing: said at start, instead of ignored.
#[test]
fn a_stop_delay_that_can_hold_nothing_is_warned_of() {
    for (name, line) in [
        (
            "stop_delay_unused_int",
            "--no-watch --stop-signal INT --stop-delay 5s -- true",
        ),
        (
            "stop_delay_unused_drop",
            "--no-watch -r TERM:0 --stop-delay 5s -- true",
        ),
    ] {
        let Some(cmd) = pid1(name, line) else {
            return;
        };
        let out = Proc::start(cmd, T).wait();
        assert_eq!(out.code, 0, "{}", out.dump());
        out.expect_stderr("ward: warning [stop_delay_unused] --stop-delay holds only a SIGTERM that is a stop signal");
    }
    let Some(cmd) = pid1("stop_delay_used", "--no-watch --stop-delay 5s -- true") else {
        return;
    };
    let out = Proc::start(cmd, T).wait();
    assert!(!out.stderr.contains("stop_delay_unused"), "{}", out.dump());
}

/// After `exec`, the log's lines name the program the main process runs, as
/// the report does ("sleep (pid N, started as sh)"), not only the shell
/// ward started.
#[test]
fn lines_after_an_exec_name_the_program_it_runs() {
    if !require_root("named_after_exec") {
        return;
    }
    let cmd = ward_pid1([
        "--watch-interval",
        "100ms",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 100",
    ]);
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    // Samples (each with a census here: no pids group counts tasks) see it.
    std::thread::sleep(Duration::from_secs(2));
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 128 + libc::SIGTERM, "{}", out.dump());
    for want in [
        "[signal_forwarded] forwarded SIGTERM to main process sleep (pid ",
        "[child_exited] main process sleep (pid ",
        "[exit_report] exit 143: main process sleep (pid ",
    ] {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(want))
            .unwrap_or_else(|| panic!("no {want:?}: {}", out.dump()));
        assert!(line.contains(", started as sh)"), "{line}");
    }
}

/// A death that wrote a core dump says so, as a shell does: whether a core
/// was written is the first thing a crash's debugger asks, and ward dropped
/// the bit. The oracle is the kernel's own answer for the same crash run
/// without ward (core_pattern and limits are the machine's).
#[test]
fn a_core_dump_is_said_in_the_lines_and_the_report() {
    use std::os::unix::process::ExitStatusExt;
    if !require_root("core_dump") {
        return;
    }
    let dir = TempDir::new("core-dump");
    let script = format!("ulimit -c unlimited; exec {} die SEGV", workload());
    let direct = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert_eq!(direct.signal(), Some(libc::SIGSEGV));
    let dumped = direct.core_dumped();
    if !dumped {
        eprintln!(
            "note: the kernel writes no core here (core_pattern): only the absence is checked"
        );
    }
    let mut cmd = ward_pid1([
        "--no-watch",
        "--log-format",
        "json",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    cmd.current_dir(dir.path());
    let out = run(cmd, T);
    assert_eq!(out.code, 139, "{}", out.dump());
    let one = |name: &str| one_json_event(&out, name);
    let exited = one("child_exited");
    let report = one("exit_report");
    assert_eq!(
        exited["core_dumped"].as_bool().unwrap_or(false),
        dumped,
        "{exited}"
    );
    assert_eq!(
        report["main"]["core_dumped"].as_bool().unwrap_or(false),
        dumped,
        "{report}"
    );
    for v in [&exited, &report] {
        let msg = v["msg"].as_str().unwrap_or_default();
        assert_eq!(msg.contains("SIGSEGV (core dumped)"), dumped, "{v}");
    }
    // A stop that ends in a core dump (`-r TERM:ABRT`) says it too. Not
    // SIGQUIT: a shell without job control starts a background command with
    // SIGINT and SIGQUIT ignored, ward's child inherits that as ward did,
    // and a test run so (`cmd &` in a script) saw `sleep` outlive it.
    let script = "ulimit -c unlimited; echo ready; exec sleep 100";
    let mut cmd = ward_pid1([
        "--no-watch",
        "--log-format",
        "json",
        "-r",
        "TERM:ABRT",
        "--",
        "sh",
        "-c",
        script,
    ]);
    cmd.current_dir(dir.path());
    let p = Proc::start(cmd, T);
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 128 + libc::SIGABRT, "{}", out.dump());
    let report = one_json_event(&out, "exit_report");
    assert_eq!(report["cause"], "stopped", "{report}");
    let msg = report["msg"].as_str().unwrap_or_default();
    assert_eq!(
        msg.contains("died of SIGABRT (core dumped)"),
        dumped,
        "{report}"
    );
}

/// The one JSON event named `name` in `out`'s stderr.
fn one_json_event(out: &common::Outcome, name: &str) -> serde_json::Value {
    let events = common::events::json_named(&out.stderr, name);
    let [v] = <[serde_json::Value; 1]>::try_from(events)
        .unwrap_or_else(|r| panic!("{} {name} events: {}", r.len(), out.dump()));
    v
}

/// An entrypoint script that `exec`ed its app: the stop's lines name the
/// app, read at the stop. They named `sh` from a census seconds old, and
/// "sh still running after SIGTERM" reads as a shell that does not pass
/// signals on.
#[test]
fn the_stop_lines_name_the_program_an_entrypoint_execed() {
    if !require_root("stop_names_execed") {
        return;
    }
    let script = format!("exec {} ignore-term --exit-after 1500", workload());
    let out = stop_names_the_execed_program(&["--", "sh", "-c", &script]);
    out.expect_stderr("[signal_forwarded] forwarded SIGTERM to main process ward-workload (pid ");
    out.expect_stderr("[still_running] main process ward-workload (pid ");
}

/// The same with `-g` and orphans dying with the main process, whose
/// SIGCHLDs merge with its own: the report too names the app, as the
/// lines before it did (the watch's last census, seconds old, had put
/// `sh` back).
#[test]
fn the_report_names_the_execed_program_when_exits_merge() {
    if !require_root("report_names_execed") {
        return;
    }
    let script = format!(
        "for i in $(seq 20); do (sleep 0.3 &); done; exec {} ignore-term --exit-after 500",
        workload()
    );
    for _ in 0..3 {
        stop_names_the_execed_program(&["-g", "--", "sh", "-c", &script]);
    }
}

/// ward with `args` over an entrypoint `sh` that `exec`s `ignore-term`,
/// stopped: the report names the app, and no line names `sh` as the main
/// process.
fn stop_names_the_execed_program(args: &[&str]) -> common::Outcome {
    let p = Proc::start(ward_pid1(args), Duration::from_secs(30));
    p.expect_line("ready");
    p.signal_ward(libc::SIGTERM);
    let out = p.wait();
    assert_eq!(out.code, 0, "{}", out.dump());
    out.expect_stderr("[exit_report] exit 0: main process ward-workload (pid ");
    assert!(
        !out.stderr.contains("main process sh (pid"),
        "{}",
        out.dump()
    );
    out
}

/// In a PID namespace whose `/proc` is the host's (`unshare` without
/// `--mount-proc`), the main process's `comm` is not read (its pid names
/// another process there): said once at debug level, and the process is
/// named as started.
#[test]
fn a_proc_of_another_namespace_is_not_read_for_the_main_name() {
    if !require_root("proc_of_another_namespace") {
        return;
    }
    let mut cmd = Command::new("unshare");
    without_ward_variables(&mut cmd);
    cmd.args(["--pid", "--fork", "--kill-child"])
        .args([ward(), "-v", "--no-watch", "--", "sh", "-c"])
        .arg(format!("exec {} exit 3", workload()));
    let out = run(cmd, T);
    assert_eq!(out.code, 3, "{}", out.dump());
    let unread: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("debug [main_name_unread]"))
        .collect();
    assert_eq!(unread.len(), 1, "{}", out.dump());
    assert!(
        unread[0].contains("is not this PID namespace's /proc"),
        "{}",
        out.dump()
    );
    assert!(
        out.one("exit_report").contains("main process sh (pid "),
        "{}",
        out.dump()
    );
}

/// The main process's `comm` is opened as it starts only when the
/// open-files limit leaves room: under a tight one it took the fd the
/// watch's limits then lacked (`ulimit -n 22`: three `limit_unreadable`
/// warnings in every run), so there it is opened at the first need (its
/// exit, a stop). Either way the report names the process.
#[test]
fn the_main_processs_comm_is_held_while_it_runs_only_with_files_to_spare() {
    if !require_root("comm_held_with_room") {
        return;
    }
    for (nofile, held_one) in [("22", false), ("1024", true)] {
        let mut cmd = Command::new("prlimit");
        without_ward_variables(&mut cmd);
        cmd.arg(format!("--nofile={nofile}"));
        cmd.args(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]);
        cmd.args([ward(), "--", "sh", "-c", "echo ready; exec sleep 30"]);
        let p = Proc::start(cmd, T);
        p.expect_line("ready");
        // The first look and its limits are over by then.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let ward = p.ward_pid();
        let held: Vec<String> = std::fs::read_dir(format!("/proc/{ward}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .filter(|l| l.ends_with("/comm"))
            .collect();
        p.signal_ward(libc::SIGTERM);
        let out = p.wait();
        assert_eq!(
            held.len(),
            usize::from(held_one),
            "--nofile={nofile}: ward holds {held:?}\n{}",
            out.dump()
        );
        assert!(
            !out.stderr.contains("limit_unreadable"),
            "--nofile={nofile}: {}",
            out.dump()
        );
        assert!(
            out.one("exit_report").contains("main process sleep (pid "),
            "--nofile={nofile}: {}",
            out.dump()
        );
    }
}
