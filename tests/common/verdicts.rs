//! The verdict corpus's shared words (tests/scenarios.rs on Docker and cgroup
//! v1, tests/vm_scenarios_v2.rs in qemu on v2): how ward's exit report reads
//! in the published Markdown table, and the `expect` of a scenario's check.
//! Pure text and JSON in, text out; it runs nothing.

use serde_json::Value;

/// A scenario check's step: `Err(what)` unless `ok`.
pub fn expect(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

/// The worker OOM's victims: exactly one, the workload, named "most likely"
/// (its shell lived on, so nothing proves which process the kernel chose).
pub fn worker_named_most_likely(victims: &[Value]) -> Result<(), String> {
    expect(
        victims.len() == 1
            && victims[0]["name"] == "ward-workload"
            && victims[0]["certain"] == false,
        "the worker named, most likely",
    )
}

/// An OOM cascade's victims: one entry per one of the `kills` kills, no pid
/// twice, none certain.
pub fn one_victim_per_kill_none_certain(victims: &[Value], kills: u64) -> Result<(), String> {
    expect(victims.len() as u64 == kills, "one entry per kill")?;
    let mut pids: Vec<i64> = victims.iter().filter_map(|v| v["pid"].as_i64()).collect();
    let named = pids.len();
    pids.sort_unstable();
    pids.dedup();
    expect(pids.len() == named, "no pid twice")?;
    expect(
        victims.iter().all(|v| v["certain"] == false),
        "none certain",
    )
}

/// A stop under `-r TERM:KILL`: the SIGKILL is ward's own forwarding of
/// the stop, so the run is `stopped`, 137, and the summary blames no one else.
pub fn rewritten_stop(cause: &str, exit: Option<i64>, summary: &str) -> Result<(), String> {
    expect(cause == "stopped" && exit == Some(137), "stopped 137")?;
    expect(!summary.contains("neither ward"), "not blamed on others")
}

/// `s` safe inside a Markdown table cell.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The report's OOM victims as `name (certain|most likely)` or `unnamed`,
/// comma-separated; `none` without any.
pub fn victims_words(victims: &[Value]) -> String {
    let words: Vec<String> = victims
        .iter()
        .map(|v| match v["name"].as_str() {
            Some(n) if v["certain"] == true => format!("{n} (certain)"),
            Some(n) => format!("{n} (most likely)"),
            None => "unnamed".into(),
        })
        .collect();
    if words.is_empty() {
        "none".into()
    } else {
        words.join(", ")
    }
}

/// The table's ward column: `cause, exit, victims` of an exit report.
pub fn ward_words(report: &Value) -> String {
    let victims = report["oom_kills"]["victims"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    format!(
        "{}, {}, {}",
        report["cause"].as_str().unwrap_or("-"),
        report["exit_code"]
            .as_i64()
            .map_or("-".into(), |e| e.to_string()),
        victims_words(victims)
    )
}

/// One table row: scenario, truth, the other side's verdict, ward's, match.
pub fn row(cells: [&str; 5]) -> String {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// A check's result as the table's match column: `yes`, or `**no**: why`.
pub fn mark(verdict: &Result<(), String>) -> String {
    match verdict {
        Ok(()) => "yes".to_string(),
        Err(why) => format!("**no**: {why}"),
    }
}
