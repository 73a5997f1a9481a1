//! ward as PID 1 with a terminal on stdin (`docker run -it`): the child
//! becomes the terminal's foreground group, Ctrl-C reaches the command an
//! interactive shell runs, and the shell's exit code comes out. Uses
//! util-linux `script` for the pseudo-terminal.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn interactive_shell_gets_ctrl_c_and_its_exit_code_comes_out() {
    if !require_root("pty") {
        return;
    }
    let inner = format!(
        "unshare --pid --fork --mount-proc --kill-child {} --no-watch -- /bin/sh -i",
        ward()
    );
    let mut script = Command::new("script");
    without_ward_variables(&mut script);
    // SIGINT and SIGQUIT at their defaults, whatever ran the tests: a
    // suite started as a background job of a non-interactive shell has
    // both ignored, every process below inherits that (ward passes an
    // ignored signal on, as it should), and the Ctrl-C then kills nothing.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        script.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = script
        .args(["-qefc", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u8>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdout = stdout;
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                let _ = tx.send(b);
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |needle: &str, seen: &mut String| {
        let until = Instant::now() + Duration::from_secs(30);
        while !seen.contains(needle) {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => seen.push(b as char),
                Err(_) => panic!("no {needle:?} on the terminal; saw:\n{seen}"),
            }
        }
    };
    // dash prompts root with "# " whatever PS1 says.
    wait_for("# ", &mut seen);
    stdin.write_all(b"sleep 30; echo unreached\n").unwrap();
    // Until `sleep` is the terminal's foreground group: a Ctrl-C before
    // that would reach the shell, which then runs the line to its end.
    let until = Instant::now() + Duration::from_secs(30);
    while !sleep_in_foreground() {
        assert!(
            Instant::now() < until,
            "sleep never became the terminal's foreground"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Ctrl-C, as typed: the terminal sends SIGINT to its foreground group.
    stdin.write_all(b"\x03").unwrap();
    stdin.write_all(b"echo after:$?\n").unwrap();
    wait_for("after:130", &mut seen);
    stdin.write_all(b"exit 7\n").unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("shell did not exit; saw:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(7), "status {status:?}; saw:\n{seen}");
    // The terminal echoes the typed command; the echo command itself never ran.
    assert_eq!(seen.matches("unreached").count(), 1, "{seen}");
}

/// True when a `sleep` runs as the foreground process group of its
/// terminal (`/proc/PID/stat`: a terminal, and its group is the
/// terminal's foreground group).
fn sleep_in_foreground() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        if !head.ends_with("(sleep") {
            return false;
        }
        // state ppid pgrp session tty_nr tpgid ...
        let f: Vec<&str> = rest.split(' ').collect();
        f.len() > 5 && f[4] != "0" && f[2] == f[5]
    })
}

/// ward under a shell with a terminal (not PID 1): it gives its child the
/// terminal's foreground, and must give it back to its own group when the
/// child is done, as dumb-init does; else the shell's next `read` fails
/// (EIO: a background group reading its terminal) and what was typed is lost.
#[test]
fn the_terminal_goes_back_to_wards_group_after_the_child() {
    let inner = format!(
        "sh -c '{} --no-watch -- true; echo STAT $(cat /proc/$$/stat)'",
        ward()
    );
    let mut script = Command::new("script");
    without_ward_variables(&mut script);
    let out = script
        .args(["-qefc", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    // pid (comm) state ppid pgrp session tty_nr tpgid ...
    let stat = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("STAT "))
        .unwrap_or_else(|| panic!("no stat line: {text}"));
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let (pgrp, tpgid) = (fields[2], fields[5]);
    assert_eq!(
        tpgid, pgrp,
        "the terminal's foreground group is not the shell's after ward: {stat}"
    );
}
