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

/// Writes the report: the human sentence (or, with `--log-format json`, the
/// whole report as one JSON line) on stderr, always exactly once per run,
/// and the file if asked for. An exec failure is logged at error level.
pub fn emit(report: &Report, file: Option<&Path>) {
    let fields: Vec<(&str, Value)> = match &report.json {
        Value::Object(map) if log::format() == log::Format::Json => map
            .iter()
            .filter(|(k, _)| k.as_str() != "summary")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let level = if report.json["cause"] == "exec_failed" {
        Level::Error
    } else {
        Level::Info
    };
    log::event(level, "exit_report", &report.text, &fields);
    if let Some(path) = file {
        let text = summary::fit(&report.json, REPORT_FILE_MAX);
        if let Err(e) = std::fs::write(path, text) {
            log::event(
                Level::Warning,
                "report_file_failed",
                &format!("cannot write the exit report to {}: {e}", path.display()),
                &[],
            );
        }
    }
}
