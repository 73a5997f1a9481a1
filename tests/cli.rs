//! The real `ward` binary's command line: bad input is one line on stderr and
//! exit code 2, `--` always means a program, and printing help or the version
//! into a closed pipe is not a crash.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Outcome, run, ward_plain};

const LIMIT: Duration = Duration::from_secs(20);

/// `ward ARGS...` with no inherited `WARD_*` variable, plus `env`.
fn ward(args: &[&str], env: &[(&str, &OsStr)]) -> Outcome {
    let mut cmd = ward_plain(args);
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, LIMIT)
}

/// Waits for `child` to exit, at most [`LIMIT`]; a hang is killed and
/// fails the test.
fn exit_within_limit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            // ward's child too: it is in a process group of its own.
            common::kill_tree(child.id() as i32);
            let _ = child.wait();
            panic!("{what} did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_usage_error(out: &Outcome, want: &str, case: &str) {
    assert_eq!(out.code, 2, "{case}: {out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{case}: {:?}", out.stderr);
    assert!(out.stderr.contains(want), "{case}: {:?}", out.stderr);
    assert!(out.stdout.is_empty(), "{case}: {:?}", out.stdout);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--", ""], "empty command name"),
        (&[""], "empty command name"),
        (&["--kill-after", "0", "--", "true"], "--kill-after: "),
        (&["-r", "CHLD:TERM", "--", "true"], "SIGCHLD"),
        (&["-r", "TTIN:TERM", "--", "true"], "SIGTTIN"),
        (&["-r", "TTOU:0", "--", "true"], "SIGTTOU"),
        (&["-r", "KILL:TERM", "--", "true"], "SIGKILL"),
        (&["-r", "USR1:CHLD", "--", "true"], "SIGCHLD"),
        (
            &["--warn-zombies", "4294967296", "--", "true"],
            "--warn-zombies: ",
        ),
        (&["--stop-signal", "KILL", "--", "true"], "--stop-signal: "),
        (&["-p", "STOP", "--", "true"], "invalid parent-death signal"),
        (
            &["--report-file", "", "--", "true"],
            "--report-file: empty path",
        ),
        (&["--pdeathsig", "CHLD", "--", "true"], "--pdeathsig: "),
        (&["-r", "RTMIN++1:TERM", "--", "true"], "invalid signal"),
        (&["--bogus", "--", "true"], "--bogus"),
        (
            &["--emf", "--emf-namespace", "AWS/ECS", "--", "true"],
            "--emf-namespace: invalid EMF namespace 'AWS/ECS': CloudWatch reserves",
        ),
        (&[], "no command given"),
    ];
    for (args, want) in cases {
        let out = ward(args, &[]);
        assert_usage_error(&out, want, &format!("{args:?}"));
    }
}

#[test]
fn bad_variables_are_one_line_and_exit_2() {
    let not_utf8 = OsStr::from_bytes(b"3\xffs");
    let cases: &[(&str, &OsStr, &str)] = &[
        ("WARD_GRACE", not_utf8, "WARD_GRACE: value is not UTF-8"),
        ("WARD_WATCH", not_utf8, "WARD_WATCH: value is not UTF-8"),
        ("WARD_KILL_AFTER", OsStr::new("0"), "WARD_KILL_AFTER: "),
        ("WARD_REWRITE", OsStr::new("HUP:0,CHLD:0"), "SIGCHLD"),
        ("WARD_STOP_SIGNAL", OsStr::new("TERM,STOP"), "SIGSTOP"),
        (
            "WARD_WARN_ZOMBIES",
            OsStr::new("4294967296"),
            "WARD_WARN_ZOMBIES: ",
        ),
        (
            "WARD_EMF_NAMESPACE",
            OsStr::new("AWS/ward"),
            "WARD_EMF_NAMESPACE: invalid EMF namespace 'AWS/ward': CloudWatch reserves",
        ),
    ];
    for (name, value, want) in cases {
        let out = ward(&["--", "true"], &[(name, value)]);
        assert_usage_error(&out, want, &format!("{name}={value:?}"));
    }
}

#[test]
fn a_usage_error_is_json_when_the_command_line_asks_for_json() {
    let json = |out: &Outcome, case: &str| {
        assert_eq!(out.code, 2, "{case}: {out:?}");
        let v: serde_json::Value = serde_json::from_str(out.stderr.trim())
            .unwrap_or_else(|e| panic!("{case}: not one JSON line ({e}): {:?}", out.stderr));
        assert_eq!(v["event"], "usage", "{case}");
        assert!(
            v["msg"].as_str().unwrap().contains("--kill-after"),
            "{case}"
        );
    };
    let bad = ["--kill-after", "bogus"];
    for args in [
        [&["--log-format", "json"], &bad[..], &["--", "true"]].concat(),
        [&bad[..], &["--log-format=json", "--", "true"]].concat(),
    ] {
        json(&ward(&args, &[]), &format!("{args:?}"));
    }
    let env = [("WARD_LOG_FORMAT", OsStr::new("json"))];
    json(&ward(&["--kill-after", "x", "--", "true"], &env), "env");
    // The command line wins over the variable; the child's own arguments
    // after `--` are not ward's.
    for (args, env) in [
        (
            &["--log-format", "human", "--kill-after", "x", "--", "true"][..],
            &env[..],
        ),
        (
            &["--kill-after", "x", "--", "sh", "--log-format", "json"][..],
            &[][..],
        ),
    ] {
        let out = ward(args, env);
        assert_usage_error(
            &out,
            "ward: error [usage] --kill-after",
            &format!("{args:?}"),
        );
    }
}

#[test]
fn a_misspelt_variable_is_named_not_ignored_without_a_word() {
    let env = [
        ("WARD_KILL_AFTR", OsStr::new("25s")),
        ("WARD_GRACE", OsStr::new("1s")),
    ];
    assert_eq!(
        unknown_variable_lines(&env),
        ["ward: warning [unknown_variable] ignored, no option reads it: WARD_KILL_AFTR"]
    );
}

/// The `unknown_variable` lines of `ward -- true` run with `env`.
fn unknown_variable_lines(env: &[(&str, &OsStr)]) -> Vec<String> {
    let out = ward(&["--no-watch", "--", "true"], env);
    assert_eq!(out.code, 0, "{out:?}");
    out.stderr
        .lines()
        .filter(|l| l.contains("unknown_variable"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_variable_of_tini_or_dumb_init_is_named_with_wards_way() {
    let env = [
        ("TINI_KILL_PROCESS_GROUP", OsStr::new("1")),
        ("DUMB_INIT_SETSID", OsStr::new("0")),
        ("TINIER", OsStr::new("1")),
        // A Dockerfile's, for fetching an init: no init reads them.
        ("TINI_VERSION", OsStr::new("v0.19.0")),
        ("DUMB_INIT_SHA256", OsStr::new("e874b55f")),
        ("WARD_VERSION", OsStr::new("0.1.0")),
    ];
    assert_eq!(
        unknown_variable_lines(&env),
        [
            "ward: warning [unknown_variable] ignored, no option reads it: \
             DUMB_INIT_SETSID (dumb-init's: ward signals only its child (as =0 asks); the whole group with -g or WARD_SIGNAL_GROUP), \
             TINI_KILL_PROCESS_GROUP (tini's -g: use -g or WARD_SIGNAL_GROUP)"
        ]
    );
}

/// In JSON the names and hints are a list, not only words: a hint holds
/// commas of its own, so `msg` cannot be split back into variables.
#[test]
fn unknown_variables_are_a_list_in_json() {
    let env = [
        ("WARD_KILL_AFTR", OsStr::new("25s")),
        ("DUMB_INIT_SETSID", OsStr::new("0")),
    ];
    let out = ward(&["--log-format", "json", "--no-watch", "--", "true"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("\"unknown_variable\""))
        .unwrap_or_else(|| panic!("{out:?}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let mut vars = v["variables"].as_array().unwrap().clone();
    vars.sort_by_key(|x| x["name"].as_str().unwrap().to_string());
    assert_eq!(
        serde_json::Value::Array(vars),
        serde_json::json!([
            {"name": "DUMB_INIT_SETSID", "hint": "dumb-init's: ward signals only its child (as =0 asks); the whole group with -g or WARD_SIGNAL_GROUP"},
            {"name": "WARD_KILL_AFTR", "hint": null},
        ]),
        "{line}"
    );
}

#[test]
fn double_dash_always_means_a_program() {
    // No program named status exists on PATH: ward ran it, and exec said so.
    let out = ward(&["--", "status"], &[]);
    assert_eq!(out.code, 127, "{out:?}");
    let out = ward(&["-g", "check"], &[]);
    assert_eq!(out.code, 127, "{out:?}");
}

#[test]
fn help_and_version_go_to_stdout() {
    let out = ward(&["--help"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("--stop-signal SIG"), "{}", out.stdout);
    assert!(out.stdout.contains("ward status"), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let out = ward(&["-V"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("ward "), "{}", out.stdout);
}

/// `ward --help | true`: stdout is a pipe nobody reads. Writing gets EPIPE
/// (ward ignores SIGPIPE at start); `print!` would panic on it, which the release
/// profile turns into an abort (SIGABRT, shell code 134).
#[test]
fn help_into_a_closed_pipe_exits_0() {
    for arg in ["--help", "--version"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
            .arg(arg)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = exit_within_limit(&mut child, &format!("ward {arg} into a closed pipe"));
        let mut stderr = String::new();
        use std::io::Read;
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        assert_ne!(status.signal(), Some(libc::SIGABRT), "{arg}: {stderr}");
        assert_eq!(status.code(), Some(0), "{arg}: {status:?} {stderr}");
        assert!(stderr.is_empty(), "{arg}: {stderr}");
    }
}

/// ward started with stdin closed: like std's own start-up, which ward
/// replaces, it opens /dev/null in its place first, so that no file ward
/// opens later (close-on-exec) takes fd 0 and leaves the child without a
/// stdin.
#[test]
fn a_closed_stdin_becomes_dev_null_for_the_child() {
    use std::os::unix::process::CommandExt;
    let mut cmd = ward_plain([
        "--",
        "sh",
        "-c",
        "readlink /proc/self/fd/0 || echo no-stdin",
    ]);
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    // SAFETY: close(2) is async-signal-safe; nothing else runs in pre_exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let out = run(cmd, LIMIT);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "/dev/null", "{out:?}");
}

/// ward's stderr is a pipe whose reader is gone, and ward logs while the
/// child runs (`--log-level debug` says `child_started`): the write fails
/// with EPIPE and nothing more. With SIGPIPE not ignored, the signal would
/// be pending for ward's blocked mask, read by its signalfd and passed on
/// to the child, which would die of it (141).
#[test]
fn a_closed_stderr_pipe_sends_no_sigpipe_to_the_child() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "--log-level",
            "debug",
            "--",
            "sh",
            "-c",
            "sleep 0.5; exit 4",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    let status = exit_within_limit(&mut child, "ward with a closed stderr pipe");
    assert_eq!(status.code(), Some(4), "{status:?}");
}

/// A program that is there but names an interpreter that is not: exec says
/// "no such file", and the report says which file is missing.
#[test]
fn a_missing_interpreter_is_named_not_the_script() {
    let dir = std::env::temp_dir().join(format!("ward-interp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("job");
    std::fs::write(&script, "#!/nonexistent/interp -x\necho hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ward(&["--no-watch", "--", script.to_str().unwrap()], &[]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.code, 127, "{out:?}");
    let report = out
        .stderr
        .lines()
        .find(|l| l.contains("[exit_report]"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        report.ends_with(&format!(
            "not found: No such file or directory (os error 2); {} is there, but its #! interpreter /nonexistent/interp is not.",
            script.display()
        )),
        "{report}"
    );
}

/// A script saved with Windows line endings: the kernel looks for
/// "/bin/sh\r", and the report says so instead of calling /bin/sh missing.
/// A script whose interpreter is there gets no such claim.
#[test]
fn a_script_with_windows_line_endings_is_named_as_such() {
    let dir = std::env::temp_dir().join(format!("ward-crlf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let crlf = dir.join("crlf.sh");
    std::fs::write(&crlf, "#!/bin/sh\r\necho hi\r\n").unwrap();
    // Its interpreter is there; what it names in turn is not.
    let inner = dir.join("inner");
    std::fs::write(&inner, "#!/nonexistent/interp\n").unwrap();
    let outer = dir.join("outer");
    std::fs::write(&outer, format!("#!{}\n", inner.display())).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for f in [&crlf, &inner, &outer] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |f: &std::path::Path| {
        let out = ward(&["--no-watch", "--", f.to_str().unwrap()], &[]);
        assert_eq!(out.code, 127, "{out:?}");
        let line = out.stderr.lines().find(|l| l.contains("[exit_report]"));
        line.unwrap_or_else(|| panic!("{out:?}")).to_string()
    };
    let (crlf_report, outer_report) = (run(&crlf), run(&outer));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        crlf_report.ends_with(&format!(
            "{} is there, but its #! line ends in \\r (Windows line endings): the kernel looks for \"/bin/sh\\r\".",
            crlf.display()
        )),
        "{crlf_report}"
    );
    assert!(
        outer_report.ends_with("not found: No such file or directory (os error 2)."),
        "{outer_report}"
    );
}

/// `-q`, `--log-level error` and `WARD_LOG_LEVEL=warning` turn down the
/// noise, not the one line that says why the container ended: the report
/// was logged at info and went with the rest.
#[test]
fn the_exit_report_is_written_at_every_level() {
    let json = OsStr::new("json");
    let warning = OsStr::new("warning");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a OsStr)]);
    let cases: [Case; 3] = [
        (&["-q"], &[]),
        (&["--log-level", "error"], &[]),
        (
            &[],
            &[("WARD_LOG_LEVEL", warning), ("WARD_LOG_FORMAT", json)],
        ),
    ];
    for (flags, env) in cases {
        let mut args = flags.to_vec();
        args.extend(["--no-watch", "--", "sh", "-c", "exit 4"]);
        let out = ward(&args, env);
        assert_eq!(out.code, 4, "{flags:?}: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{flags:?}: only the report: {out:?}");
        assert!(
            lines[0].starts_with("ward: [exit_report] exit 4: main process sh")
                || lines[0].contains("\"event\":\"exit_report\""),
            "{flags:?}: {out:?}"
        );
    }
}

/// A `--report-file` that cannot be written is said at start, when there is
/// still time to fix it, and again at the end.
#[test]
fn an_unwritable_report_file_is_said_at_start() {
    let out = ward(
        &[
            "--no-watch",
            "--report-file",
            "/nonexistent-dir/report.json",
            "--",
            "true",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("[report_file_failed]"))
        .collect();
    assert_eq!(failed.len(), 2, "{out:?}");
    assert!(
        failed[0].contains(
            "(/nonexistent-dir: No such file or directory (os error 2)): it will be in the log only"
        ),
        "{out:?}"
    );
    let report_at = out.stderr.find("[exit_report]").expect("an exit report");
    assert!(out.stderr.find(failed[0]).unwrap() < report_at, "{out:?}");
    // The failure at the end is said before the report, the last line.
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("[exit_report]"), "{out:?}");
}

/// An option's value is never `--` or an option: `--report-file -- true`
/// wrote the report to a file named `--` and ran true, and `--report-file
/// --log-format json true` wrote `./--log-format` and failed to run json.
#[test]
fn an_option_value_that_is_an_option_is_a_missing_value() {
    for args in [
        &["--report-file", "--", "true"][..],
        &["--report-file", "--log-format", "json", "true"],
        &["--emf-namespace", "--", "true"],
    ] {
        let out = ward(args, &[]);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("missing argument for option '{}'", args[0])),
            "{args:?}: {out:?}"
        );
    }
    assert!(!std::path::Path::new("--").exists());
}

/// A `--report-file` that is a FIFO nobody reads: ward hung at its exit,
/// in a blocking open, until something killed it (exit 137, no code
/// passed on). Now the write fails at once and ward exits with the code.
#[test]
fn a_report_file_fifo_with_no_reader_is_no_hang() {
    let dir = std::env::temp_dir().join(format!("ward-report-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("report.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out = ward(
        &[
            "--no-watch",
            "--report-file",
            fifo.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        &[],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("cannot write the exit report to ")
            && out.stderr.contains("No such device or address"),
        "{out:?}"
    );
}

/// A line too long for the log's queue was dropped whole: a 70,000-byte
/// program path lost the exit report, the one line that says why, and the
/// notice blamed an unread stderr. The path is now cut, and said to be.
#[test]
fn an_exit_report_naming_a_huge_path_is_cut_not_lost() {
    let path = format!("/nonexistent/{}", "a".repeat(70_000));
    for format in ["human", "json"] {
        let out = ward(&["--log-format", format, "--", &path], &[]);
        assert_eq!(
            out.code,
            126,
            "{format}: {}",
            &out.stderr[..out.stderr.len().min(300)]
        );
        let report = out
            .stderr
            .lines()
            .find(|l| l.contains("exit_report"))
            .unwrap_or_else(|| panic!("{format}: no exit report in {:.300}", out.stderr));
        assert!(
            report.contains("exit 126: cannot run"),
            "{format}: {report:.200}"
        );
        assert!(report.contains(" bytes cut]"), "{format}: {report:.200}");
        assert!(report.len() < 20_000, "{format}: {}", report.len());
        assert!(!out.stderr.contains("log_dropped"), "{format}");
    }
}
