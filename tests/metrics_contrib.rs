//! The files in contrib/ that users load into Prometheus and Grafana: the
//! alert rules pass `promtool check rules` and their own `promtool test
//! rules` cases, and every dashboard query is valid PromQL over metric names
//! ward's renderer emits. promtool comes with Debian's `prometheus` package;
//! CI installs it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::promtool::{has_promtool, run_in};
use serde_json::Value;
use ward::metrics::prom::FAMILIES;

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

/// Every `ward_*` name in a PromQL expression.
fn ward_names(expr: &str) -> Vec<&str> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.split(|c: char| !is_ident(c))
        .filter(|w| w.starts_with("ward_"))
        .collect()
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(contrib("grafana/ward-dashboard.json")).unwrap();
    serde_json::from_str(&text).expect("dashboard is JSON")
}

/// Every PromQL query in the dashboard: panel targets and variable queries.
fn dashboard_queries(d: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(d, &mut out);
    out
}

/// Grafana's variables replaced with what Grafana would put there, so that
/// promtool can parse the query. `label_values(m, l)` is Grafana's, not
/// PromQL: its metric stands in for it.
fn as_promql(q: &str) -> String {
    let q = q
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".*");
    match q.strip_prefix("label_values(") {
        Some(rest) => rest
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        None => q,
    }
}

#[test]
fn alert_rules_check_and_pass_their_tests() {
    if !common::require(
        "promtool",
        has_promtool(),
        "alert_rules_check_and_pass_their_tests",
    ) {
        return;
    }
    let dir = contrib("prometheus");
    let (ok, said) = run_in(&["check", "rules", "ward-alerts.yml"], &dir);
    assert!(ok, "promtool check rules: {said}");
    let (ok, said) = run_in(&["test", "rules", "ward-alerts-test.yml"], &dir);
    assert!(ok, "promtool test rules: {said}");
}

#[test]
fn alert_rules_use_only_metrics_ward_emits() {
    let text = std::fs::read_to_string(contrib("prometheus/ward-alerts.yml")).unwrap();
    let mut alerts = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(a) = line.strip_prefix("- alert: ") {
            alerts.insert(a.to_string());
        }
        for name in ward_names(line) {
            // Names in comments and annotations must exist too.
            assert!(
                FAMILIES.contains(&name),
                "{name} in ward-alerts.yml is not emitted"
            );
        }
    }
    let want = [
        "WardMemoryNearLimit",
        "WardOOMKill",
        "WardCPUThrottled",
        "WardMemoryThrottled",
        "WardPidsNearLimit",
        "WardForkFailures",
        "WardZombiesUnreaped",
        "WardCodeNotLocked",
    ];
    assert_eq!(alerts, want.iter().map(|s| s.to_string()).collect());
    // Every alert has a firing case in the rule tests.
    let tests = std::fs::read_to_string(contrib("prometheus/ward-alerts-test.yml")).unwrap();
    for a in want {
        assert!(
            tests.contains(&format!("alertname: {a}\n")),
            "no test for {a}"
        );
    }
}

#[test]
fn dashboard_queries_use_only_metrics_ward_emits() {
    let d = dashboard();
    let queries = dashboard_queries(&d);
    assert!(queries.len() >= 15, "{queries:?}");
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = ward_names(q);
        assert!(!names.is_empty(), "query over no ward metric: {q}");
        for n in names {
            assert!(
                FAMILIES.contains(&n),
                "{n} (in {q}) is not emitted by prom::render"
            );
            used.insert(n);
        }
    }
    // The panels the issue asks for.
    for m in [
        "ward_memory_working_set_bytes",
        "ward_memory_limit_bytes",
        "ward_memory_shmem_bytes",
        "ward_cpu_cfs_throttled_periods_total",
        "ward_cpu_cfs_periods_total",
        "ward_cpu_usage_seconds_total",
        "ward_cpu_limit_cores",
        "ward_pids_current",
        "ward_pids_limit",
        "ward_zombies",
        "ward_oom_kills_total",
        "ward_fork_failures_total",
        "ward_pressure_memory_waiting_seconds_total",
        "ward_orphans_reaped_total",
    ] {
        assert!(used.contains(m), "no panel shows {m}");
    }
}

#[test]
fn dashboard_datasource_is_a_variable() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["type"] == "datasource"
        && v["name"] == "datasource"
        && v["query"] == "prometheus"));
    let panels = d["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }
    // Unique panel ids, as Grafana's import expects.
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len());
}

#[test]
fn dashboard_queries_are_valid_promql() {
    if !common::require(
        "promtool",
        has_promtool(),
        "dashboard_queries_are_valid_promql",
    ) {
        return;
    }
    // promtool parses every expression of a rules file: make each query a
    // recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in dashboard_queries(&dashboard()).iter().enumerate() {
        let expr = serde_json::to_string(&as_promql(q)).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {expr}\n"
        ));
    }
    let tmp = common::TempDir::new("dashboard-promql");
    let dir = tmp.path();
    std::fs::write(dir.join("queries.yml"), &rules).unwrap();
    let (ok, said) = run_in(&["check", "rules", "queries.yml"], dir);
    // And a broken query is caught, so the check above means something.
    std::fs::write(
        dir.join("broken.yml"),
        "groups:\n  - name: b\n    rules:\n      - record: b:q\n        expr: \"rate(ward_zombies[5m]\"\n",
    )
    .unwrap();
    let (broken_ok, _) = run_in(&["check", "rules", "broken.yml"], dir);
    assert!(
        ok,
        "promtool check rules on the dashboard's queries: {said}\n{rules}"
    );
    assert!(!broken_ok);
}

#[test]
fn metric_table_lists_every_family() {
    // The table is in the README's "Metrics" section.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("\n## Metrics\n")
        .expect("README has a Metrics section");
    let text = &readme[start + 1..];
    let text = &text[..text[1..].find("\n## ").map_or(text.len(), |i| i + 1)];
    let listed: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(['`', '{']).next())
        .collect();
    let emitted: BTreeSet<&str> = FAMILIES.iter().copied().collect();
    assert_eq!(listed, emitted);
}
