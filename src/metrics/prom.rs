//! Prometheus text exposition format 0.0.4 of a [`MetricsView`]. Owns the
//! metric names, help texts and types; formats only, never reads or serves.
//!
//! Names follow cAdvisor's stems with a `ward_` prefix, base units (bytes,
//! seconds, cores) and `_total` on counters. A series whose value is unknown
//! is left out, with its `# HELP`/`# TYPE` lines: a made-up 0 would look like
//! a real reading to an alert.

use std::fmt::Write;

use super::view::{LimitOrigin, MetricsView, WarningName};

/// The `Content-Type` of [`render`]'s output (Prometheus 3 refuses a scrape
/// without a valid one).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family [`render`] can emit, for checks on dashboards and
/// alert rules that must only use names ward exposes.
pub const FAMILIES: &[&str] = &[
    "ward_build_info",
    "ward_start_time_seconds",
    "ward_memory_working_set_bytes",
    "ward_memory_usage_bytes",
    "ward_memory_limit_bytes",
    "ward_memory_limit_info",
    "ward_memory_shmem_bytes",
    "ward_memory_peak_bytes",
    "ward_memory_anon_bytes",
    "ward_memory_file_bytes",
    "ward_cpu_usage_seconds_total",
    "ward_cpu_limit_cores",
    "ward_cpu_limit_info",
    "ward_cpu_cfs_periods_total",
    "ward_cpu_cfs_throttled_periods_total",
    "ward_cpu_cfs_throttled_seconds_total",
    "ward_pids_current",
    "ward_pids_limit",
    "ward_pids_limit_info",
    "ward_fork_failures_total",
    "ward_oom_kills_total",
    "ward_zombies",
    "ward_orphans_reaped_total",
    "ward_signals_forwarded_total",
    "ward_code_locked",
    "ward_pressure_cpu_waiting_seconds_total",
    "ward_pressure_cpu_stalled_seconds_total",
    "ward_pressure_memory_waiting_seconds_total",
    "ward_pressure_memory_stalled_seconds_total",
    "ward_pressure_io_waiting_seconds_total",
    "ward_pressure_io_stalled_seconds_total",
    "ward_warning_active",
];

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

/// A number in the exposition format's notation: an integer, or a decimal
/// fraction held as an integer count of `10^-places` (CPU seconds in µs
/// are exact that way). Written without a float formatter, which would cost
/// 10 KiB of binary for these two families.
#[derive(Clone, Copy)]
enum Num {
    Int(u64),
    Dec { units: u64, places: u32 },
}

impl Num {
    /// `0.25`, `1.5`, `2`: the digits of `units / 10^places`, trailing
    /// zeros of the fraction dropped.
    fn write(self, out: &mut String) {
        let (units, places) = match self {
            Num::Int(i) => (i, 0),
            Num::Dec { units, places } => (units, places),
        };
        let scale = 10u64.pow(places);
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", units / scale);
        let (mut frac, mut width) = (units % scale, places as usize);
        if frac == 0 {
            return;
        }
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
    }
}

/// Cores to nine places, where a quota over a period is exact enough; `None`
/// for a value that is no number (left out of the scrape).
fn cores(c: f64) -> Option<Num> {
    c.is_finite().then(|| Num::Dec {
        units: (c.max(0.0) * 1e9 + 0.5) as u64,
        places: 9,
    })
}

/// Appends the metrics of `v` to `out` (which the caller may reuse between
/// scrapes, so a scrape allocates nothing once it has grown).
pub fn render(v: &MetricsView, out: &mut String) {
    let mut w = Writer { out };
    w.info(
        "ward_build_info",
        "ward's build; the value is always 1.",
        "version",
        Some(v.version).filter(|s| !s.is_empty()),
    );
    w.one(
        "ward_start_time_seconds",
        "When ward started, in seconds since the Unix epoch: an alert on a counter that starts above 0 asks whether ward is young, which a gap in scraping cannot fake.",
        Kind::Gauge,
        v.start_time_ms.map(|ms| Num::Dec {
            units: ms,
            places: 3,
        }),
    );

    let m = &v.memory;
    w.bytes(
        "ward_memory_working_set_bytes",
        "Memory usage minus inactive page cache, as cAdvisor and the kubelet count it.",
        m.working_set,
    );
    w.bytes(
        "ward_memory_usage_bytes",
        "Memory usage of the cgroup including page cache.",
        m.usage,
    );
    w.bytes(
        "ward_memory_limit_bytes",
        "Memory limit in force: the cgroup's, or the host's memory where none is set (see ward_memory_limit_info).",
        m.limit,
    );
    w.info(
        "ward_memory_limit_info",
        "Where ward_memory_limit_bytes comes from: source is cgroup or host.",
        "source",
        m.limit.and(m.limit_origin).map(LimitOrigin::label),
    );
    w.bytes(
        "ward_memory_shmem_bytes",
        "Shared memory and tmpfs charged to the cgroup; no process owns it.",
        m.shmem,
    );
    w.bytes(
        "ward_memory_peak_bytes",
        "Highest memory usage the kernel recorded for the cgroup.",
        m.peak,
    );
    w.bytes(
        "ward_memory_anon_bytes",
        "Anonymous memory (heap, stacks) of the cgroup.",
        m.anon,
    );
    w.bytes(
        "ward_memory_file_bytes",
        "Page cache of the cgroup.",
        m.file,
    );

    let c = &v.cpu;
    w.one(
        "ward_cpu_usage_seconds_total",
        "CPU time used by the cgroup, in seconds.",
        Kind::Counter,
        c.usage_usec.map(usec),
    );
    w.one(
        "ward_cpu_limit_cores",
        "CPU limit in force, in cores: the CFS quota, the cpuset or the host's CPUs, whichever is smallest (see ward_cpu_limit_info).",
        Kind::Gauge,
        c.limit_cores.and_then(cores),
    );
    w.info(
        "ward_cpu_limit_info",
        "Where ward_cpu_limit_cores comes from: source is cgroup, cpuset or host.",
        "source",
        c.limit_cores
            .filter(|f| f.is_finite())
            .and(c.limit_origin)
            .map(LimitOrigin::label),
    );
    w.one(
        "ward_cpu_cfs_periods_total",
        "CFS enforcement periods in which the cgroup had runnable tasks.",
        Kind::Counter,
        c.cfs_periods.map(Num::Int),
    );
    w.one(
        "ward_cpu_cfs_throttled_periods_total",
        "CFS periods in which the cgroup was throttled at its CPU quota.",
        Kind::Counter,
        c.cfs_throttled_periods.map(Num::Int),
    );
    w.one(
        "ward_cpu_cfs_throttled_seconds_total",
        "Time the cgroup's threads were throttled at its CPU quota, in seconds, summed over CPUs as cAdvisor's container_cpu_cfs_throttled_seconds_total is: it can grow faster than wall time.",
        Kind::Counter,
        c.cfs_throttled_usec.map(usec),
    );

    let p = &v.pids;
    w.one(
        "ward_pids_current",
        "Tasks (processes and threads) in the cgroup.",
        Kind::Gauge,
        p.current.map(Num::Int),
    );
    w.one(
        "ward_pids_limit",
        "Tasks limit in force: the cgroup's pids.max, or where none is set the host's, the smaller of pid_max and threads-max (see ward_pids_limit_info).",
        Kind::Gauge,
        p.limit.map(Num::Int),
    );
    w.info(
        "ward_pids_limit_info",
        "Where ward_pids_limit comes from: source is cgroup or host.",
        "source",
        p.limit.and(p.limit_origin).map(LimitOrigin::label),
    );
    w.one(
        "ward_fork_failures_total",
        "Forks the kernel refused because the cgroup was at its pids limit.",
        Kind::Counter,
        v.fork_failures.map(Num::Int),
    );
    w.one(
        "ward_oom_kills_total",
        "Processes of the cgroup killed by the kernel OOM killer.",
        Kind::Counter,
        v.oom_kills.map(Num::Int),
    );
    w.one(
        "ward_zombies",
        "Zombie processes in the container at the latest census.",
        Kind::Gauge,
        v.zombies.map(Num::Int),
    );
    w.one(
        "ward_orphans_reaped_total",
        "Processes ward reaped other than its main child.",
        Kind::Counter,
        v.orphans_reaped.map(Num::Int),
    );
    w.one(
        "ward_signals_forwarded_total",
        "Signals ward forwarded to its child.",
        Kind::Counter,
        v.signals_forwarded.map(Num::Int),
    );
    w.one(
        "ward_code_locked",
        "1 while ward's code is locked in memory under the memory limit; 0 if the kernel refused the lock, when an OOM kill that frees nothing may be followed by another.",
        Kind::Gauge,
        v.code_locked.map(|l| Num::Int(l.into())),
    );

    let psi = [
        ("cpu", &v.pressure.cpu),
        ("memory", &v.pressure.memory),
        ("io", &v.pressure.io),
    ];
    for (res, t) in psi {
        w.one_owned(
            format_args!("ward_pressure_{res}_waiting_seconds_total"),
            format_args!(
                "Time at least one task of the cgroup waited for {res} (PSI some), in seconds."
            ),
            t.waiting_usec.map(usec),
        );
        w.one_owned(
            format_args!("ward_pressure_{res}_stalled_seconds_total"),
            format_args!(
                "Time all non-idle tasks of the cgroup stalled on {res} at once (PSI full), in seconds."
            ),
            t.stalled_usec.map(usec),
        );
    }

    if WarningName::ALL
        .iter()
        .any(|&n| v.warnings.get(n).is_some())
    {
        w.head(
            "ward_warning_active",
            "1 while ward's warning of this name is raised, else 0.",
            Kind::Gauge,
        );
        // No PSI (cgroup v1, an old kernel), or no `high` count of the
        // group's own memory.high (v1, an ancestor's mark): that warning
        // can never be raised, and a 0 would read as "fine" where ward
        // cannot tell.
        let measured = |n: WarningName| match n {
            WarningName::MemoryPressure => v.pressure.memory.waiting_usec.is_some(),
            WarningName::MemoryThrottled => v.memory.high_watched,
            _ => true,
        };
        for n in WarningName::ALL.into_iter().filter(|&n| measured(n)) {
            if let Some(on) = v.warnings.get(n) {
                w.sample(
                    "ward_warning_active",
                    Some(("warning", n.label())),
                    Num::Int(u64::from(on)),
                );
            }
        }
    }
}

fn usec(u: u64) -> Num {
    Num::Dec {
        units: u,
        places: 6,
    }
}

struct Writer<'a> {
    out: &'a mut String,
}

impl Writer<'_> {
    fn head(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, label: Option<(&str, &str)>, value: Num) {
        self.out.push_str(name);
        if let Some((k, v)) = label {
            self.out.push('{');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label(v, self.out);
            self.out.push_str("\"}");
        }
        self.out.push(' ');
        value.write(self.out);
        self.out.push('\n');
    }

    fn one(&mut self, name: &str, help: &str, kind: Kind, value: Option<Num>) {
        let Some(value) = value else {
            return;
        };
        self.head(name, help, kind);
        self.sample(name, None, value);
    }

    /// A counter whose name and help are built from parts (PSI), without an
    /// allocation per family.
    fn one_owned(
        &mut self,
        name: std::fmt::Arguments<'_>,
        help: std::fmt::Arguments<'_>,
        value: Option<Num>,
    ) {
        let Some(value) = value else {
            return;
        };
        let _ = write!(
            self.out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} "
        );
        value.write(self.out);
        self.out.push('\n');
    }

    fn bytes(&mut self, name: &str, help: &str, value: Option<u64>) {
        self.one(name, help, Kind::Gauge, value.map(Num::Int));
    }

    /// An `_info` gauge: one series with value 1 whose label carries the fact.
    fn info(&mut self, name: &str, help: &str, label: &str, value: Option<&str>) {
        let Some(value) = value else { return };
        self.head(name, help, Kind::Gauge);
        self.sample(name, Some((label, value)), Num::Int(1));
    }
}

/// Label values escape backslash, double quote and newline (format 0.0.4).
fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::view::{ActiveWarnings, PressureTotals};

    #[test]
    fn empty_view_shows_only_what_is_known() {
        let mut v = MetricsView::new();
        v.version = "1.2.3";
        let mut out = String::new();
        render(&v, &mut out);
        assert_eq!(
            out,
            "# HELP ward_build_info ward's build; the value is always 1.\n\
             # TYPE ward_build_info gauge\n\
             ward_build_info{version=\"1.2.3\"} 1\n"
        );
    }

    fn full_view() -> MetricsView {
        let mut v = MetricsView::new();
        v.version = "0.1.0";
        v.start_time_ms = Some(1_764_900_000_250);
        v.memory.working_set = Some(200 << 20);
        v.memory.usage = Some(300 << 20);
        v.memory.limit = Some(512 << 20);
        v.memory.limit_origin = Some(LimitOrigin::Cgroup);
        v.memory.shmem = Some(4096);
        v.memory.peak = Some(400 << 20);
        v.memory.anon = Some(100);
        v.memory.file = Some(0);
        v.cpu.usage_usec = Some(12_345_678);
        v.cpu.limit_cores = Some(0.5);
        v.cpu.limit_origin = Some(LimitOrigin::Cgroup);
        v.cpu.cfs_periods = Some(1000);
        v.cpu.cfs_throttled_periods = Some(250);
        v.cpu.cfs_throttled_usec = Some(2_500_000);
        v.pids.current = Some(12);
        v.pids.limit = Some(4194304);
        v.pids.limit_origin = Some(LimitOrigin::Host);
        v.fork_failures = Some(0);
        v.oom_kills = Some(1);
        v.zombies = Some(3);
        v.orphans_reaped = Some(5000);
        v.signals_forwarded = Some(1);
        v.code_locked = Some(true);
        for p in [
            &mut v.pressure.cpu,
            &mut v.pressure.memory,
            &mut v.pressure.io,
        ] {
            *p = PressureTotals {
                waiting_usec: Some(1_000_001),
                stalled_usec: Some(0),
            };
        }
        v.pressure.cpu.stalled_usec = None; // cpu "full" is missing before 5.13
        let mut w = ActiveWarnings::all_clear();
        w.set(WarningName::CpuThrottled, true);
        v.warnings = w;
        v
    }

    #[test]
    fn full_view_exact_text() {
        let mut out = String::new();
        render(&full_view(), &mut out);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "ward_build_info{version=\"0.1.0\"} 1",
                "ward_start_time_seconds 1764900000.25",
                "ward_memory_working_set_bytes 209715200",
                "ward_memory_usage_bytes 314572800",
                "ward_memory_limit_bytes 536870912",
                "ward_memory_limit_info{source=\"cgroup\"} 1",
                "ward_memory_shmem_bytes 4096",
                "ward_memory_peak_bytes 419430400",
                "ward_memory_anon_bytes 100",
                "ward_memory_file_bytes 0",
                "ward_cpu_usage_seconds_total 12.345678",
                "ward_cpu_limit_cores 0.5",
                "ward_cpu_limit_info{source=\"cgroup\"} 1",
                "ward_cpu_cfs_periods_total 1000",
                "ward_cpu_cfs_throttled_periods_total 250",
                "ward_cpu_cfs_throttled_seconds_total 2.5",
                "ward_pids_current 12",
                "ward_pids_limit 4194304",
                "ward_pids_limit_info{source=\"host\"} 1",
                "ward_fork_failures_total 0",
                "ward_oom_kills_total 1",
                "ward_zombies 3",
                "ward_orphans_reaped_total 5000",
                "ward_signals_forwarded_total 1",
                "ward_code_locked 1",
                "ward_pressure_cpu_waiting_seconds_total 1.000001",
                "ward_pressure_memory_waiting_seconds_total 1.000001",
                "ward_pressure_memory_stalled_seconds_total 0",
                "ward_pressure_io_waiting_seconds_total 1.000001",
                "ward_pressure_io_stalled_seconds_total 0",
                "ward_warning_active{warning=\"memory_high\"} 0",
                "ward_warning_active{warning=\"cpu_throttled\"} 1",
                "ward_warning_active{warning=\"pids_high\"} 0",
                "ward_warning_active{warning=\"zombies_unreaped\"} 0",
                "ward_warning_active{warning=\"memory_pressure\"} 0",
            ]
        );
        // Every family has exactly one HELP and one TYPE line, right before
        // its first sample, and every emitted family is listed in FAMILIES.
        let lines: Vec<&str> = out.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(FAMILIES.contains(&name), "{name} not in FAMILIES");
                assert!(lines[i + 1].starts_with(&format!("# TYPE {name} ")));
                assert!(lines[i + 2].starts_with(name));
                assert_eq!(out.matches(&format!("# HELP {name} ")).count(), 1);
            }
        }
        assert_eq!(out.matches("# HELP ").count(), FAMILIES.len() - 1);
        assert!(out.contains("# TYPE ward_cpu_usage_seconds_total counter\n"));
        assert!(out.contains("# TYPE ward_zombies gauge\n"));
    }

    #[test]
    fn pids_limit_help_names_both_host_bounds() {
        // Without a cgroup limit ward takes the smaller of pid_max and
        // threads-max (cgroup::limits): the HELP text must not say pid_max
        // alone, which from Linux 6.14 reads 4194304 in a PID namespace.
        let mut v = MetricsView::new();
        v.pids.limit = Some(192_739);
        v.pids.limit_origin = Some(LimitOrigin::Host);
        let mut out = String::new();
        render(&v, &mut out);
        let help = out
            .lines()
            .find(|l| l.starts_with("# HELP ward_pids_limit "))
            .unwrap_or_else(|| panic!("no HELP for ward_pids_limit: {out}"));
        assert!(
            help.contains("the smaller of pid_max and threads-max"),
            "{help}"
        );
    }

    #[test]
    fn a_refused_code_lock_is_a_zero_and_no_limit_no_series() {
        let mut v = MetricsView::new();
        v.code_locked = Some(false);
        let mut out = String::new();
        render(&v, &mut out);
        assert!(
            out.contains("# TYPE ward_code_locked gauge\nward_code_locked 0\n"),
            "{out}"
        );
        v.code_locked = None;
        out.clear();
        render(&v, &mut out);
        assert!(!out.contains("ward_code_locked"), "{out}");
    }

    #[test]
    fn decimals_are_written_exactly_and_short() {
        let text = |n: Option<Num>| {
            let mut out = String::new();
            n.unwrap().write(&mut out);
            out
        };
        assert_eq!(text(Some(usec(0))), "0");
        assert_eq!(text(Some(usec(250))), "0.00025");
        assert_eq!(text(Some(usec(3_000_000))), "3");
        assert_eq!(text(Some(usec(u64::MAX))), "18446744073709.551615");
        assert_eq!(text(cores(2.0)), "2");
        assert_eq!(text(cores(1.5)), "1.5");
        assert_eq!(text(cores(1.0 / 3.0)), "0.333333333");
        assert_eq!(text(cores(0.000_000_000_4)), "0");
        assert!(cores(f64::INFINITY).is_none());
    }

    #[test]
    fn counters_end_in_total_and_gauges_do_not() {
        let mut out = String::new();
        render(&full_view(), &mut out);
        for l in out.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut it = l.split(' ').skip(2);
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert_eq!(name.ends_with("_total"), kind == "counter", "{l}");
        }
    }

    #[test]
    fn label_values_are_escaped_and_non_finite_values_left_out() {
        let mut v = MetricsView::new();
        v.version = "a\"b\\c\nd";
        v.cpu.limit_cores = Some(f64::NAN);
        v.cpu.limit_origin = Some(LimitOrigin::Host);
        let mut out = String::new();
        render(&v, &mut out);
        assert!(out.contains("ward_build_info{version=\"a\\\"b\\\\c\\nd\"} 1\n"));
        assert!(!out.contains("\nward_cpu_limit"), "{out}");
    }

    #[test]
    fn no_memory_pressure_warning_where_no_pressure_is_measured() {
        let mut v = MetricsView::new();
        v.warnings.set(WarningName::PidsHigh, false);
        let mut out = String::new();
        render(&v, &mut out);
        assert!(out.contains("warning=\"pids_high\"} 0"), "{out}");
        assert!(!out.contains("memory_pressure"), "{out}");
        v.pressure.memory.waiting_usec = Some(0);
        out.clear();
        render(&v, &mut out);
        assert!(out.contains("warning=\"memory_pressure\"} 0"), "{out}");
    }

    #[test]
    fn memory_throttled_only_where_its_count_is_watched() {
        let mut v = MetricsView::new();
        v.warnings.set(WarningName::MemoryThrottled, false);
        let mut out = String::new();
        render(&v, &mut out);
        assert!(!out.contains("memory_throttled"), "{out}");
        v.memory.high_watched = true;
        out.clear();
        render(&v, &mut out);
        assert!(out.contains("warning=\"memory_throttled\"} 0"), "{out}");
        v.warnings.set(WarningName::MemoryThrottled, true);
        out.clear();
        render(&v, &mut out);
        assert!(out.contains("warning=\"memory_throttled\"} 1"), "{out}");
    }

    #[test]
    fn limit_info_needs_the_limit() {
        let mut v = MetricsView::new();
        v.memory.limit_origin = Some(LimitOrigin::Host);
        let mut out = String::new();
        render(&v, &mut out);
        assert!(!out.contains("ward_memory_limit_info"));
    }
}
