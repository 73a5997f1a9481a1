//! CloudWatch Embedded Metric Format: one JSON line per interval that
//! CloudWatch Logs turns into metrics. Owns the interval arithmetic (deltas
//! of counters between lines) and the line's shape; writes nothing itself.
//!
//! The line is a bare JSON object: `_aws` holds the timestamp (ms) and the
//! metric directives (namespace, dimension key sets, metric names and
//! units); dimension values and metric values are root members. CloudWatch's
//! limits: at most 100 metrics and 30 dimension keys per directive; Docker
//! splits log lines over 16 KiB, which would break the JSON, so every string
//! taken from outside is capped.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::ecs::EcsIdentity;
use super::view::MetricsView;

/// The default CloudWatch namespace.
pub const NAMESPACE: &str = "ward";
/// CloudWatch's cap on a dimension value; also keeps the line short.
const MAX_VALUE_CHARS: usize = 1024;

/// Where the metrics go and what they are tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmfContext {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Dimensions as (key, value), in this order: each combination is a
    /// metric CloudWatch bills, so there are few and they are stable.
    pub dimensions: Vec<(&'static str, String)>,
    /// Plain properties (searchable in Logs Insights, not dimensions).
    pub properties: Vec<(&'static str, String)>,
}

impl EmfContext {
    /// ClusterName, TaskDefinitionFamily and ContainerName dimensions (those
    /// known), TaskArn as a property: a task ARN changes with every
    /// deployment, and as a dimension it would make a new metric each time.
    pub fn from_ecs(id: &EcsIdentity) -> EmfContext {
        let mut ctx = EmfContext::bare();
        let dims = [
            ("ClusterName", &id.cluster),
            ("TaskDefinitionFamily", &id.family),
            ("ContainerName", &id.container),
        ];
        for (k, v) in dims {
            if let Some(v) = v {
                ctx.dimensions.push((k, cap(v)));
            }
        }
        if let Some(arn) = &id.task_arn {
            ctx.properties.push(("TaskArn", cap(arn)));
        }
        ctx
    }

    /// No dimensions (not on ECS): the metrics of every such container are
    /// aggregated together under the namespace.
    pub fn bare() -> EmfContext {
        EmfContext {
            namespace: NAMESPACE.into(),
            dimensions: Vec::new(),
            properties: Vec::new(),
        }
    }
}

fn cap(s: &str) -> String {
    s.chars().take(MAX_VALUE_CHARS).collect()
}

/// The values of one interval; `None` where unknown (left out of the line).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EmfValues {
    /// Working set as a percent of the memory limit, now.
    pub memory_pct: Option<f64>,
    /// CPU time as a percent of the CPU limit over the interval.
    pub cpu_pct: Option<f64>,
    /// Throttled CFS periods as a percent of periods, over the interval.
    pub cpu_throttled_pct: Option<f64>,
    /// OOM kills during the interval.
    pub oom_kills: Option<u64>,
    /// Zombies now.
    pub zombies: Option<u64>,
    /// Tasks as a percent of the pids limit, now.
    pub pids_pct: Option<f64>,
    /// Forks refused during the interval.
    pub fork_failures: Option<u64>,
}

impl EmfValues {
    /// For a closing line less than a second after the one before: a CPU
    /// percent over so short an interval is noise and is left out, and the
    /// line is worth writing only when it counts something (the OOM kill or
    /// the refused fork that ended the container).
    pub fn keep_when_short(&mut self) -> bool {
        self.cpu_pct = None;
        self.cpu_throttled_pct = None;
        self.oom_kills.unwrap_or(0) > 0 || self.fork_failures.unwrap_or(0) > 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counters {
    /// When they were read, on the monotonic clock: the wall clock can be
    /// stepped (NTP, a VM resumed) and would make the interval wrong.
    at: Option<Instant>,
    usage_usec: Option<u64>,
    periods: Option<u64>,
    throttled: Option<u64>,
    oom_kills: Option<u64>,
    fork_failures: Option<u64>,
}

impl Counters {
    fn of(v: &MetricsView, at: Instant) -> Counters {
        Counters {
            at: Some(at),
            usage_usec: v.cpu.usage_usec,
            periods: v.cpu.cfs_periods,
            throttled: v.cpu.cfs_throttled_periods,
            oom_kills: v.oom_kills,
            fork_failures: v.fork_failures,
        }
    }
}

/// The counters at the previous line, to turn totals into per-interval
/// values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmfInterval {
    prev: Option<Counters>,
}

/// `cur - prev`; a counter that went down was reset (a new cgroup), and all
/// of its current value is new.
fn delta(prev: Option<u64>, cur: Option<u64>) -> Option<u64> {
    let (p, c) = (prev?, cur?);
    Some(if c >= p { c - p } else { c })
}

impl EmfInterval {
    /// An interval starting from `baseline` (ward's first sample, before the
    /// child starts), taken at `at`, so that the first line counts from there.
    pub fn starting_at(baseline: &MetricsView, at: Instant) -> EmfInterval {
        EmfInterval {
            prev: Some(Counters::of(baseline, at)),
        }
    }

    /// The values since the previous call (or the baseline), `at` being
    /// when `v` was read on the monotonic clock (never the wall clock, which
    /// is only for the line's timestamp). Without a previous call or a
    /// baseline, the per-interval values are unknown and left out.
    pub fn step(&mut self, v: &MetricsView, at: Instant) -> EmfValues {
        let cur = Counters::of(v, at);
        let prev = self.prev.replace(cur).unwrap_or_default();
        let periods = delta(prev.periods, cur.periods);
        let throttled = delta(prev.throttled, cur.throttled);
        let cpu_throttled_pct = match (periods, throttled) {
            // No period ran: nothing was throttled.
            (Some(0), Some(_)) => Some(0.0),
            (Some(p), Some(t)) => Some(100.0 * t.min(p) as f64 / p as f64),
            _ => None,
        };
        let elapsed_usec = match (prev.at, cur.at) {
            (Some(p), Some(c)) => c.saturating_duration_since(p).as_micros(),
            _ => 0,
        };
        let cpu_pct = match (delta(prev.usage_usec, cur.usage_usec), v.cpu.limit_cores) {
            (Some(used), Some(cores)) if elapsed_usec > 0 && cores > 0.0 => {
                Some(100.0 * used as f64 / (elapsed_usec as f64 * cores))
            }
            _ => None,
        };
        EmfValues {
            memory_pct: v.memory_ratio().map(|r| r * 100.0),
            cpu_pct,
            cpu_throttled_pct,
            oom_kills: delta(prev.oom_kills, cur.oom_kills),
            zombies: v.zombies,
            pids_pct: v.pids_ratio().map(|r| r * 100.0),
            fork_failures: delta(prev.fork_failures, cur.fork_failures),
        }
    }
}

/// The EMF line for `values` at `now_ms` (ms since the epoch), without a
/// newline.
pub fn render_emf(values: &EmfValues, ctx: &EmfContext, now_ms: u64) -> String {
    let pct = |v: Option<f64>| {
        v.filter(|f| f.is_finite())
            .map(|f| (f * 100.0).round() / 100.0)
    };
    let metrics: [(&str, &str, Option<Value>); 7] = [
        (
            "MemoryUtilization",
            "Percent",
            pct(values.memory_pct).map(Value::from),
        ),
        (
            "CpuUtilization",
            "Percent",
            pct(values.cpu_pct).map(Value::from),
        ),
        (
            "CpuThrottled",
            "Percent",
            pct(values.cpu_throttled_pct).map(Value::from),
        ),
        ("OomKills", "Count", values.oom_kills.map(Value::from)),
        ("Zombies", "Count", values.zombies.map(Value::from)),
        (
            "PidsUtilization",
            "Percent",
            pct(values.pids_pct).map(Value::from),
        ),
        (
            "ForkFailures",
            "Count",
            values.fork_failures.map(Value::from),
        ),
    ];
    let mut root = Map::new();
    let mut defs = Vec::new();
    for (name, unit, value) in metrics {
        if let Some(value) = value {
            defs.push(json!({"Name": name, "Unit": unit}));
            root.insert(name.into(), value);
        }
    }
    let keys: Vec<&str> = ctx.dimensions.iter().map(|(k, _)| *k).collect();
    for (k, v) in ctx.dimensions.iter().chain(&ctx.properties) {
        root.insert((*k).into(), Value::from(v.as_str()));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": ctx.namespace,
                "Dimensions": [keys],
                "Metrics": defs,
            }],
        }),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ecs::{EXAMPLE_CONTAINER, parse_container_metadata};
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn view(usage_s: u64, periods: u64, throttled: u64, ooms: u64) -> MetricsView {
        let mut v = MetricsView::new();
        v.memory.working_set = Some(384 << 20);
        v.memory.limit = Some(512 << 20);
        v.cpu.usage_usec = Some(usage_s * 1_000_000);
        v.cpu.limit_cores = Some(0.5);
        v.cpu.cfs_periods = Some(periods);
        v.cpu.cfs_throttled_periods = Some(throttled);
        v.oom_kills = Some(ooms);
        v.fork_failures = Some(4);
        v.zombies = Some(2);
        v.pids.current = Some(50);
        v.pids.limit = Some(200);
        v
    }

    #[test]
    fn interval_values_from_deltas() {
        let t0 = Instant::now();
        let mut iv = EmfInterval::starting_at(&view(10, 1000, 100, 1), t0);
        let vals = iv.step(&view(25, 1600, 400, 2), t0 + ms(60_000));
        assert_eq!(vals.memory_pct, Some(75.0));
        // 15 s of CPU in 60 s against 0.5 cores: 50 %.
        assert_eq!(vals.cpu_pct, Some(50.0));
        assert_eq!(vals.cpu_throttled_pct, Some(50.0));
        assert_eq!(vals.oom_kills, Some(1));
        assert_eq!(vals.fork_failures, Some(0));
        assert_eq!(vals.pids_pct, Some(25.0));
        assert_eq!(vals.zombies, Some(2));
        // An idle interval: no periods ran, nothing throttled.
        let vals = iv.step(&view(25, 1600, 400, 2), t0 + ms(120_000));
        assert_eq!(
            (vals.cpu_throttled_pct, vals.cpu_pct),
            (Some(0.0), Some(0.0))
        );
    }

    #[test]
    fn cpu_percent_is_over_monotonic_time_whatever_the_wall_clock_does() {
        // 60 s pass between lines on the monotonic clock while NTP steps the
        // wall clock back an hour, then forward a day: the timestamps say
        // what the wall clock said, the CPU percent what really passed
        // (15 s of CPU in 60 s against 0.5 cores: 50 %), neither dropped
        // nor deflated.
        let t0 = Instant::now();
        let wall0: u64 = 1_700_000_000_000;
        let mut iv = EmfInterval::starting_at(&view(10, 1000, 100, 1), t0);
        let back = wall0 + 60_000 - 3_600_000;
        let vals = iv.step(&view(25, 1600, 400, 1), t0 + ms(60_000));
        let v: Value = serde_json::from_str(&render_emf(&vals, &EmfContext::bare(), back)).unwrap();
        assert_eq!(v["CpuUtilization"], 50.0);
        assert_eq!(v["_aws"]["Timestamp"], back);
        let forward = back + 60_000 + 86_400_000;
        let vals = iv.step(&view(40, 2200, 400, 1), t0 + ms(120_000));
        let v: Value =
            serde_json::from_str(&render_emf(&vals, &EmfContext::bare(), forward)).unwrap();
        assert_eq!(v["CpuUtilization"], 50.0);
        assert_eq!(v["_aws"]["Timestamp"], forward);
    }

    #[test]
    fn a_short_closing_line_is_kept_only_for_what_it_counts() {
        let t0 = Instant::now();
        // The OOM kill that ended the container 0.3 s after the last line.
        let mut iv = EmfInterval::starting_at(&view(10, 1000, 100, 0), t0);
        let mut vals = iv.step(&view(11, 1010, 101, 1), t0 + ms(300));
        assert!(vals.keep_when_short());
        assert_eq!(vals.oom_kills, Some(1));
        assert_eq!((vals.cpu_pct, vals.cpu_throttled_pct), (None, None));
        // Nothing counted: a CPU percent over 0.3 s is all it would say.
        let mut vals = iv.step(&view(11, 1012, 101, 1), t0 + ms(600));
        assert!(!vals.keep_when_short());
        // A refused fork counts too.
        let mut v = view(11, 1014, 101, 1);
        v.fork_failures = Some(9);
        assert!(iv.step(&v, t0 + ms(900)).keep_when_short());
    }

    #[test]
    fn first_step_without_baseline_leaves_deltas_out() {
        let t0 = Instant::now();
        let mut iv = EmfInterval::default();
        let vals = iv.step(&view(10, 1000, 100, 1), t0 + ms(60_000));
        assert_eq!(
            (vals.oom_kills, vals.cpu_throttled_pct, vals.cpu_pct),
            (None, None, None)
        );
        assert_eq!(vals.memory_pct, Some(75.0));
        let line = render_emf(&vals, &EmfContext::bare(), 60_000);
        assert!(!line.contains("OomKills"));
    }

    #[test]
    fn counter_reset_counts_from_zero() {
        assert_eq!(delta(Some(10), Some(3)), Some(3));
        assert_eq!(delta(None, Some(3)), None);
    }

    #[test]
    fn line_shape() {
        let t0 = Instant::now();
        let ctx = EmfContext::from_ecs(&parse_container_metadata(EXAMPLE_CONTAINER).unwrap());
        let mut iv = EmfInterval::starting_at(&view(10, 1000, 100, 1), t0);
        let vals = iv.step(&view(25, 1600, 400, 2), t0 + ms(60_000));
        let line = render_emf(&vals, &ctx, 1_700_000_000_123);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_123u64);
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "ward");
        assert_eq!(
            d["Dimensions"],
            json!([["ClusterName", "TaskDefinitionFamily", "ContainerName"]])
        );
        assert_eq!(v["ClusterName"], "default");
        assert_eq!(v["TaskDefinitionFamily"], "curltest");
        assert_eq!(v["ContainerName"], "curl");
        assert!(v["TaskArn"].as_str().unwrap().starts_with("arn:aws:ecs:"));
        let metrics = d["Metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 7);
        // Every declared metric has its value at the root, and vice versa.
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "{name}");
            assert!(["Percent", "Count"].contains(&m["Unit"].as_str().unwrap()));
        }
        assert_eq!(v["MemoryUtilization"], 75.0);
        assert_eq!(v["CpuThrottled"], 50.0);
        assert_eq!(v["OomKills"], 1);
    }

    #[test]
    fn line_stays_under_16k_with_huge_names() {
        let t0 = Instant::now();
        let huge = "x".repeat(100_000);
        let id = EcsIdentity {
            cluster: Some(huge.clone()),
            task_arn: Some(huge.clone()),
            family: Some(huge.clone()),
            container: Some(huge),
        };
        let ctx = EmfContext::from_ecs(&id);
        let mut iv = EmfInterval::starting_at(&view(1, 1, 1, 1), t0);
        let line = render_emf(&iv.step(&view(2, 2, 2, 2), t0 + ms(1000)), &ctx, 1000);
        assert!(line.len() < 16 * 1024, "{}", line.len());
        let v: Value = serde_json::from_str(&line).unwrap();
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert!(d["Metrics"].as_array().unwrap().len() <= 100);
        assert!(d["Dimensions"][0].as_array().unwrap().len() <= 30);
    }

    #[test]
    fn bare_context_has_an_empty_dimension_set() {
        let line = render_emf(&EmfValues::default(), &EmfContext::bare(), 5);
        assert_eq!(
            line,
            r#"{"_aws":{"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[],"Namespace":"ward"}],"Timestamp":5}}"#
        );
    }
}
