//! The bar ward aims for, set against what was measured. It reports; it never
//! fails a run (a benchmark asserts nothing about timing).

use crate::report::{Section, table};
use crate::stats::Unit;

/// Every section of a run, where it ran.
#[derive(Default)]
pub struct Results {
    /// Orphans, one worker.
    pub reaping: Option<Section>,
    /// Orphans, two workers.
    pub reaping2: Option<Section>,
    /// Signal latency.
    pub signals: Option<Section>,
    /// Signal latency while ward's census runs.
    pub census: Option<Section>,
    /// Start-up.
    pub startup: Option<Section>,
    /// Start-up, traced.
    pub startup_phases: Option<Section>,
    /// Memory.
    pub memory: Option<Section>,
    /// Binary size.
    pub size: Option<Section>,
    /// Watch cost per sample.
    pub watch: Option<Section>,
    /// Idle watching.
    pub idle: Option<Section>,
    /// Stop latency.
    pub stop: Option<Section>,
}

impl Results {
    /// The sections in report order.
    pub fn sections(&self) -> Vec<&Section> {
        [
            &self.reaping,
            &self.reaping2,
            &self.signals,
            &self.census,
            &self.startup,
            &self.startup_phases,
            &self.memory,
            &self.size,
            &self.watch,
            &self.idle,
            &self.stop,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn median(s: &Option<Section>, figure: &str, row: &str) -> Option<f64> {
    Some(s.as_ref()?.figure(figure)?.summary(row)?.median)
}

fn max(s: &Option<Section>, figure: &str, row: &str) -> Option<f64> {
    Some(s.as_ref()?.figure(figure)?.summary(row)?.max)
}

/// The lowest median among `peers`, and whose it is.
fn best(s: &Option<Section>, figure: &str, peers: &[String]) -> Option<(f64, String)> {
    peers
        .iter()
        .filter_map(|p| Some((median(s, figure, p)?, p.clone())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// One line of the bar.
struct Line {
    what: String,
    target: String,
    ward: String,
    met: Option<bool>,
}

/// The bar as a Markdown table. `ward` is ward's row name; `peers` the others.
pub fn render(r: &Results, ward: &str, peers: &[String]) -> String {
    let mut lines = Vec::new();
    let fmt = |u: Unit, v: f64| format!("{} {}", u.format(v), u.label());
    let against_best = |lines: &mut Vec<Line>,
                        what: &str,
                        s: &Option<Section>,
                        fig: &str,
                        u: Unit,
                        factor: f64,
                        slack: f64,
                        slack_text: &str| {
        let w = median(s, fig, ward);
        let b = best(s, fig, peers);
        lines.push(Line {
            what: what.into(),
            target: match &b {
                Some((v, who)) => format!("≤ best peer{slack_text} ({who}: {})", fmt(u, *v)),
                None => format!("≤ best peer{slack_text} (no peer measured)"),
            },
            ward: w.map_or("–".into(), |v| fmt(u, v)),
            met: match (w, b) {
                (Some(w), Some((b, _))) => Some(w <= b * factor + slack),
                _ => None,
            },
        });
    };
    against_best(
        &mut lines,
        "reaping CPU per orphan, 1 worker",
        &r.reaping,
        "CPU per orphan",
        Unit::Us,
        0.9,
        0.0,
        " × 0.9",
    );
    against_best(
        &mut lines,
        "reaping CPU per orphan, 2 workers",
        &r.reaping2,
        "CPU per orphan",
        Unit::Us,
        0.9,
        0.0,
        " × 0.9",
    );
    // The storms' worst run, over both sections.
    let worst = |fig: &str| {
        [max(&r.reaping, fig, ward), max(&r.reaping2, fig, ward)]
            .into_iter()
            .flatten()
            .reduce(f64::max)
    };
    let left = worst("zombies left");
    lines.push(Line {
        what: "zombies left 10 ms after a storm (worst run)".into(),
        target: "0".into(),
        ward: left.map_or("–".into(), |v| format!("{v:.0}")),
        met: left.map(|v| v == 0.0),
    });
    // Issue 13: the longest a zombie waited for ward. Traced, every
    // zombie's wait is known (an upper bound by the exit's own teardown);
    // ward's own bound is an upper bound for the zombies it reaped in
    // bursts; the host's is a lower bound for every zombie. Each is held to
    // the mark.
    let traced = worst(crate::orphans::TRACED);
    lines.push(Line {
        what: "longest zombie wait in a storm, traced for every zombie (worst run)".into(),
        target: "≤ 5 ms".into(),
        ward: traced.map_or("–".into(), |v| fmt(Unit::Ms, v)),
        met: traced.map(|v| v <= 5.0),
    });
    let bound = worst("ward's bound");
    lines.push(Line {
        what: "longest zombie wait in a storm, ward's own bound (worst run)".into(),
        target: "≤ 5 ms".into(),
        ward: bound.map_or("–".into(), |v| fmt(Unit::Ms, v)),
        met: bound.map(|v| v <= 5.0),
    });
    let seen = worst("zombie wait seen");
    lines.push(Line {
        what: "longest zombie wait in a storm, seen from the host (at least; worst run)".into(),
        target: "≤ 5 ms".into(),
        ward: seen.map_or("–".into(), |v| fmt(Unit::Ms, v)),
        met: seen.map(|v| v <= 5.0),
    });
    against_best(
        &mut lines,
        "signal latency p50 (round trip)",
        &r.signals,
        "round trip p50",
        Unit::Us,
        1.0,
        0.0,
        "",
    );
    against_best(
        &mut lines,
        "signal latency p99 (round trip)",
        &r.signals,
        "round trip p99",
        Unit::Us,
        1.0,
        0.0,
        "",
    );
    // Issue 8: the census's own effect. The init's own hop (from the
    // kernel's trace) is what ward controls; the round trip also holds
    // the echo process's wake-up and the shared machine's stalls, which
    // the peers show as much (see the section). Both are shown.
    let procs = r.census.as_ref().map_or(String::new(), |s| {
        s.title.rsplit(": ").next().unwrap_or_default().to_string()
    });
    for (fig, how) in [
        ("hop max during a census", "ward's own hop"),
        ("round trip max during a census", "round trip"),
    ] {
        let v = max(&r.census, fig, ward);
        lines.push(Line {
            what: format!("signal max during a census ({procs}), {how}"),
            target: "≤ 5 ms".into(),
            ward: v.map_or("–".into(), |v| fmt(Unit::Ms, v)),
            met: v.map(|v| v <= 5.0),
        });
    }
    against_best(
        &mut lines,
        "start-up (wall of `INIT -- true`)",
        &r.startup,
        "wall",
        Unit::Ms,
        1.0,
        0.3,
        " + 0.3 ms",
    );
    // The same bar for ward writing its lines to a file (the peers write
    // none, so their stderr does not matter).
    let to_file = crate::startup::WARD_TO_FILE;
    let w = median(&r.startup, "wall", to_file);
    let b = best(&r.startup, "wall", peers);
    lines.push(Line {
        what: format!("start-up, stderr a regular file (`{to_file}`)"),
        target: match &b {
            Some((v, who)) => format!("≤ best peer + 0.3 ms ({who}: {})", fmt(Unit::Ms, *v)),
            None => "≤ best peer + 0.3 ms (no peer measured)".into(),
        },
        ward: w.map_or("–".into(), |v| fmt(Unit::Ms, v)),
        met: w.zip(b).map(|(w, (b, _))| w <= b + 0.3),
    });
    let with_metrics = crate::memory::WARD_METRICS;
    let limited = crate::memory::WARD_LIMITED;
    for (row, what) in [
        (ward, "idle RSS (default watch on)".to_string()),
        (
            with_metrics,
            format!("idle RSS, watch and metrics endpoint on (`{with_metrics}`, scraped)"),
        ),
        (
            limited,
            format!("idle RSS under a memory limit, code locked (`{limited}`)"),
        ),
    ] {
        let rss = median(&r.memory, "idle RSS", row);
        lines.push(Line {
            what,
            target: "≤ 1024 KiB".into(),
            ward: rss.map_or("–".into(), |v| fmt(Unit::KiB, v)),
            met: rss.map(|v| v <= 1024.0),
        });
    }
    let reaps = r.memory.as_ref().map_or(String::new(), |s| s.title.clone());
    for row in [ward, with_metrics, limited] {
        let growth = median(&r.memory, "anonymous growth", row);
        lines.push(Line {
            what: format!("anonymous RSS growth, `{row}` ({reaps})"),
            target: "≤ 0 KiB".into(),
            ward: growth.map_or("–".into(), |v| fmt(Unit::KiB, v)),
            met: growth.map(|v| v <= 0.0),
        });
    }
    let size = median(&r.size, "size", ward);
    lines.push(Line {
        what: "binary size".into(),
        target: "≤ 1536 KiB".into(),
        ward: size.map_or("–".into(), |v| fmt(Unit::KiB, v)),
        met: size.map(|v| v <= 1536.0),
    });
    let watch = r.watch.as_ref().and_then(|s| {
        let row = s.rows.last()?;
        Some((
            row.clone(),
            s.figure("mean per sample")?.summary(row)?.median,
        ))
    });
    lines.push(Line {
        what: format!(
            "watch CPU per sample (mean) at {}",
            watch.as_ref().map_or("the largest size", |w| w.0.as_str())
        ),
        target: "≤ 2 ms".into(),
        ward: watch.as_ref().map_or("–".into(), |w| fmt(Unit::Ms, w.1)),
        met: watch.map(|w| w.1 <= 2.0),
    });
    let idle = r.idle.as_ref().and_then(|s| {
        let row = s.rows.first()?;
        s.figure("share of one core")?
            .summary(row)
            .map(|x| x.median)
    });
    lines.push(Line {
        what: "idle watching at the default interval".into(),
        target: "< 0.1 % of one core".into(),
        ward: idle.map_or("–".into(), |v| fmt(Unit::Pct, v)),
        met: idle.map(|v| v < 0.1),
    });
    let header: Vec<String> = ["", "bar", "ward", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = lines
        .into_iter()
        .map(|l| {
            vec![
                l.what,
                l.target,
                l.ward,
                match l.met {
                    Some(true) => "met".into(),
                    Some(false) => "**missed**".into(),
                    None => "not measured".into(),
                },
            ]
        })
        .collect();
    table(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Compare, Figure};

    fn storm(bound: &[f64], seen: &[f64]) -> Section {
        let mut b = Figure::new("ward's bound", Unit::Ms, Compare::No);
        let mut s = Figure::new("zombie wait seen", Unit::Ms, Compare::No);
        for (round, v) in bound.iter().enumerate() {
            b.add(round, "ward", *v);
        }
        for (round, v) in seen.iter().enumerate() {
            s.add(round, "ward", *v);
            s.add(round, "tini", 50.0);
        }
        let mut sec = Section::new("storm", vec!["ward".into(), "tini".into()]);
        sec.figures = vec![b, s];
        sec
    }

    #[test]
    fn zombie_wait_is_the_worst_run_of_both_storms() {
        let r = Results {
            reaping: Some(storm(&[3.0, 4.0], &[2.1, 0.0])),
            reaping2: Some(storm(&[10.1, 2.0], &[4.2, 2.1])),
            ..Results::default()
        };
        let md = render(&r, "ward", &["tini".into()]);
        assert!(
            md.contains("| longest zombie wait in a storm, ward's own bound (worst run) | ≤ 5 ms | 10.1 ms | **missed** |"),
            "{md}"
        );
        // A peer's long waits are not ward's.
        assert!(
            md.contains("| longest zombie wait in a storm, seen from the host (at least; worst run) | ≤ 5 ms | 4.20 ms | met |"),
            "{md}"
        );
    }

    #[test]
    fn census_signal_max_is_the_hop_and_the_round_trip() {
        let mut hop = Figure::new("hop max during a census", Unit::Ms, Compare::No);
        let mut rtt = Figure::new("round trip max during a census", Unit::Ms, Compare::No);
        hop.add(0, "ward", 0.2);
        hop.add(1, "ward", 0.9);
        rtt.add(0, "ward", 7.73);
        rtt.add(1, "ward", 3.0);
        let mut sec = Section::new(
            "Signal latency during a process census: 4000 processes",
            vec!["ward".into()],
        );
        sec.figures = vec![hop, rtt];
        let r = Results {
            census: Some(sec),
            ..Results::default()
        };
        let md = render(&r, "ward", &[]);
        assert!(
            md.contains("| signal max during a census (4000 processes), ward's own hop | ≤ 5 ms | 0.90 ms | met |"),
            "{md}"
        );
        assert!(
            md.contains("| signal max during a census (4000 processes), round trip | ≤ 5 ms | 7.73 ms | **missed** |"),
            "{md}"
        );
    }

    #[test]
    fn census_hop_not_measured_without_a_trace() {
        // No tracefs: the section has no hop figure values; the bar says so.
        let mut rtt = Figure::new("round trip max during a census", Unit::Ms, Compare::No);
        rtt.add(0, "ward", 3.0);
        let mut sec = Section::new("census: 4000 processes", vec!["ward".into()]);
        sec.figures = vec![
            Figure::new("hop max during a census", Unit::Ms, Compare::No),
            rtt,
        ];
        let r = Results {
            census: Some(sec),
            ..Results::default()
        };
        let md = render(&r, "ward", &[]);
        assert!(
            md.contains("| signal max during a census (4000 processes), ward's own hop | ≤ 5 ms | – | not measured |"),
            "{md}"
        );
    }

    #[test]
    fn zombie_wait_not_measured_without_a_storm() {
        let md = render(&Results::default(), "ward", &[]);
        assert!(
            md.contains("| longest zombie wait in a storm, ward's own bound (worst run) | ≤ 5 ms | – | not measured |"),
            "{md}"
        );
    }
}
