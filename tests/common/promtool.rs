//! Prometheus's own tools for tests: whether `promtool` (or `prometheus`) is
//! installed, and running `promtool` on text or on files in a directory.
//! It only runs the tools; what their verdict means is the test's business.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// True when `tool --version` runs and succeeds (promtool, prometheus).
pub fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when promtool is installed.
pub fn has_promtool() -> bool {
    installed("promtool")
}

/// Success and everything it said (stdout, then stderr).
fn verdict(out: Output) -> (bool, String) {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Runs `promtool check metrics` on `text`; returns (success, output).
pub fn check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    verdict(child.wait_with_output().unwrap())
}

/// Runs `promtool ARGS` in `dir`; returns (success, output).
pub fn run_in(args: &[&str], dir: &Path) -> (bool, String) {
    verdict(
        Command::new("promtool")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run promtool"),
    )
}
