//! Why the container ended: facts gathered as they happen (`facts.rs`), the
//! cause decided from them (`verdict.rs`), and the report written at exit
//! (`summary.rs`): one line on stderr and, with `--report-file`, a JSON file
//! of at most 4 KiB (Kubernetes' `/dev/termination-log`).

pub mod facts;
pub mod summary;
pub mod verdict;

use std::path::Path;

use serde_json::Value;

use crate::log::{self, Level};
use summary::{REPORT_FILE_MAX, Report};
use verdict::Cause;

/// Writes the report for `inputs` (see [`emit`]). Logging human lines
/// without a report file, only the sentence is built, not the JSON object.
pub fn write(inputs: &summary::ReportInputs, file: Option<&Path>) {
    let level = if inputs.verdict.cause == Cause::ExecFailed {
        Level::Error
    } else {
        Level::Info
    };
    if file.is_none() && log::format() == log::Format::Human {
        log::report_event(level, "exit_report", &summary::text(inputs), &[]);
    } else {
        emit(&summary::build(inputs), level, file);
    }
}

/// Writes the report: the human sentence (or, with `--log-format json`, the
/// whole report as one JSON line) on stderr, always exactly once per run,
/// and the file if asked for.
fn emit(report: &Report, level: Level, file: Option<&Path>) {
    let fields: Vec<(&str, Value)> = match &report.json {
        Value::Object(map) if log::format() == log::Format::Json => map
            .iter()
            .filter(|(k, _)| k.as_str() != "summary")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect(),
        _ => Vec::new(),
    };
    // The file first: a failure is said before the report, which stays
    // the run's last line.
    if let Some(path) = file {
        let text = summary::fit(&report.json, REPORT_FILE_MAX);
        if let Err(e) = write_file(path, text.as_bytes()) {
            log::event(
                Level::Warning,
                "report_file_failed",
                &format!("cannot write the exit report to {}: {e}", path.display()),
                &[("path", Value::String(path.display().to_string()))],
            );
        }
    }
    log::report_event(level, "exit_report", &report.text, &fields);
}

/// Writes the report file without ever waiting: a FIFO with no reader (or
/// a full one) is an error, not a hang at ward's exit.
fn write_file(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?
        .write_all(text)
}

/// Whether `--report-file` can be written, asked at start so a read-only
/// root filesystem is found out before the container dies, not after: the
/// file when it exists, else its directory. One `access` call.
pub fn check_file(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt as _;
    let target = if path.exists() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        }
    };
    let Ok(c) = std::ffi::CString::new(target.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: access on a NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        log::event(
            Level::Warning,
            "report_file_failed",
            &format!(
                "cannot write the exit report to {} ({}: {e}): it will be in the log only",
                path.display(),
                target.display()
            ),
            &[],
        );
    }
}
