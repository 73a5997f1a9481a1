//! The Prometheus text ward renders passes `promtool check metrics` (syntax
//! and the naming lint), for a view with every value known and an empty one.
//! Needs promtool (Debian's `prometheus` package); CI installs it.

mod common;

use common::promtool::{check_metrics, has_promtool};
use ward::metrics::prom;
use ward::metrics::view::{ActiveWarnings, LimitOrigin, MetricsView, PressureTotals, WarningName};

fn full_view() -> MetricsView {
    let mut v = MetricsView::new();
    v.memory.working_set = Some(1 << 20);
    v.memory.usage = Some(2 << 20);
    v.memory.limit = Some(64 << 20);
    v.memory.limit_origin = Some(LimitOrigin::Host);
    v.memory.shmem = Some(4096);
    v.memory.peak = Some(3 << 20);
    v.memory.anon = Some(1 << 20);
    v.memory.file = Some(1 << 20);
    v.cpu.usage_usec = Some(1_234_567);
    v.cpu.limit_cores = Some(1.5);
    v.cpu.limit_origin = Some(LimitOrigin::Cpuset);
    v.cpu.cfs_periods = Some(10);
    v.cpu.cfs_throttled_periods = Some(3);
    v.cpu.cfs_throttled_usec = Some(7);
    v.pids.current = Some(3);
    v.pids.limit = Some(100);
    v.pids.limit_origin = Some(LimitOrigin::Cgroup);
    v.fork_failures = Some(0);
    v.oom_kills = Some(0);
    v.zombies = Some(0);
    v.orphans_reaped = Some(0);
    v.signals_forwarded = Some(0);
    let t = PressureTotals {
        waiting_usec: Some(1),
        stalled_usec: Some(2),
    };
    v.pressure.cpu = t;
    v.pressure.memory = t;
    v.pressure.io = t;
    let mut w = ActiveWarnings::all_clear();
    w.set(WarningName::ZombiesUnreaped, true);
    v.warnings = w;
    v
}

#[test]
fn promtool_accepts_rendered_metrics() {
    if !common::require(
        "promtool",
        has_promtool(),
        "promtool_accepts_rendered_metrics",
    ) {
        return;
    }
    for v in [full_view(), MetricsView::new()] {
        let mut text = String::new();
        prom::render(&v, &mut text);
        let (ok, said) = check_metrics(&text);
        assert!(
            ok && said.trim().is_empty(),
            "promtool: {said}\non:\n{text}"
        );
    }
}

#[test]
fn promtool_check_can_fail() {
    // The check above is only worth something if promtool rejects bad text.
    if !common::require("promtool", has_promtool(), "promtool_check_can_fail") {
        return;
    }
    let (ok, _) = check_metrics("# TYPE ward_x counter\nward_x{a=\"b} 1\n");
    assert!(!ok);
    let (_, said) = check_metrics("# HELP ward_x x\n# TYPE ward_x counter\nward_x 1\n");
    assert!(said.contains("_total"), "lint said: {said}");
}
