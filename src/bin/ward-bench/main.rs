//! `ward-bench`: ward against tini, tini-static, dumb-init and catatonit, each
//! in turn as PID 1 of a fresh PID namespace, on one machine in one run.
//!
//! Reports numbers, asserts nothing about them. Writes Markdown
//! (`docs/benchmarks.md` in full mode, a temp file in short mode) and prints
//! it. Needs root (PID namespaces) and util-linux `unshare`; installs nothing.
//!
//! - `plan.rs`: sizes of the short and full modes, the shared context.
//! - `inits.rs`: finding ward and the peers; ELF facts for the size table.
//! - `container.rs`: `unshare ... INIT -- CMD` with pipes and deadlines.
//! - `procfs.rs`: the host's view of an init (CPU, memory, tree, syscall).
//! - `orphans.rs`, `memory.rs`, `signals.rs`, `census.rs`, `startup.rs`,
//!   `stop.rs`, `watch.rs`, `size.rs`: one benchmark each.
//! - `startup_phases.rs`: where the start-up row's time goes, traced.
//! - `zombie_wait.rs`: how long zombies waited (ward's line, host samples).
//! - `hop.rs`: each init's own forwarding hop, from the kernel's trace.
//! - `stats.rs`, `report.rs`, `bar.rs`, `machine.rs`: summarising and writing.

mod bar;
mod census;
mod container;
mod cpugroup;
mod hop;
mod inits;
mod machine;
mod memgroup;
mod memory;
mod orphans;
mod plan;
mod procfs;
mod reap_wait;
mod report;
mod signals;
mod size;
mod startup;
mod startup_phases;
mod stats;
mod stop;
mod watch;
mod zombie_wait;

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use bar::Results;
use plan::{Ctx, Mode, Plan, progress};
use procfs::Proc;

const USAGE: &str = "\
usage: ward-bench [--short | --full] [--out PATH] [--only LIST] [--ward PATH] [--workload PATH]

  --short          CI size, a few minutes (default)
  --full           the published sizes; writes docs/benchmarks.md
  --out PATH       where to write the Markdown (default: docs/benchmarks.md
                   with --full, $TMPDIR/ward-bench-short.md with --short)
  --only LIST      comma-separated subset of: size,startup,signals,stop,
                   reaping,memory,watch,idle,census-signals
  --ward PATH      the ward binary (default: next to ward-bench)
  --workload PATH  the ward-workload binary (default: next to ward-bench)

Run it as root (PID namespaces). Under `cargo run` it first builds ward and
ward-workload in release mode. Exits 1 when a measurement could not be made
(never because something was slow).";

const ALL: &[&str] = &[
    "size",
    "startup",
    "signals",
    "stop",
    "reaping",
    "memory",
    "watch",
    "idle",
    "census-signals",
];

struct Options {
    mode: Mode,
    out: Option<PathBuf>,
    only: Vec<String>,
    ward: Option<PathBuf>,
    workload: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        mode: Mode::Short,
        out: None,
        only: ALL.iter().map(|s| s.to_string()).collect(),
        ward: None,
        workload: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--short" => o.mode = Mode::Short,
            "--full" => o.mode = Mode::Full,
            "--out" => o.out = Some(value("--out")?.into()),
            "--ward" => o.ward = Some(value("--ward")?.into()),
            "--workload" => o.workload = Some(value("--workload")?.into()),
            "--only" => {
                o.only = value("--only")?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.only.iter().find(|s| !ALL.contains(&s.as_str())) {
                    return Err(format!("unknown benchmark {bad:?}"));
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// Under `cargo run`, make sure ward and ward-workload are fresh release builds.
fn build_if_under_cargo() -> Result<(), String> {
    let (Some(cargo), Some(dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(());
    };
    progress("building ward and ward-workload (release)");
    let st = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--bin",
            "ward",
            "--bin",
            "ward-workload",
        ])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !st.success() {
        return Err(format!("cargo build failed: {st}"));
    }
    Ok(())
}

fn beside_me(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let p = me.with_file_name(name);
    if !p.is_file() {
        return Err(format!(
            "{} not found: run `cargo build --release` first, or pass --{}",
            p.display(),
            if name == "ward" { "ward" } else { "workload" }
        ));
    }
    Ok(p)
}

/// The command line that produced this run, as a reader would retype it.
fn command_line(args: &[String]) -> String {
    let rest = if args.is_empty() {
        String::new()
    } else {
        format!(" -- {}", args.join(" "))
    };
    if std::env::var_os("CARGO").is_some() {
        format!("cargo run --release --bin ward-bench{rest}")
    } else {
        let me = std::env::args()
            .next()
            .unwrap_or_else(|| "ward-bench".into());
        format!("{me} {}", args.join(" ")).trim_end().to_string()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse_args(&args).and_then(|o| run(o, &args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: Options, args: &[String]) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root: it runs each init in a new PID namespace (unshare --pid)".into());
    }
    if inits::which("unshare").is_none() {
        return Err("unshare not found: apt-get install util-linux".into());
    }
    // Before anything is started: everything ward-bench runs inherits it.
    let placement = cpugroup::enter();
    if let cpugroup::Placement::Root(why) = &placement {
        progress(&format!("left in the root cpu group: {why}"));
    }
    if o.ward.is_none() || o.workload.is_none() {
        build_if_under_cargo()?;
    }
    let ward = match o.ward {
        Some(p) => p,
        None => beside_me("ward")?,
    };
    let workload = match o.workload {
        Some(p) => p,
        None => beside_me("ward-workload")?,
    };
    let (found, missing) = inits::discover(&ward);
    for m in &missing {
        progress(m);
    }
    let ctx = Ctx {
        plan: Plan::new(o.mode),
        inits: found,
        workload,
        proc: Proc::default(),
    };
    let wants = |name: &str| o.only.iter().any(|s| s == name);
    let machine = machine::machine();
    let load_start = machine::loadavg();
    let started = Instant::now();

    let idle = wants("idle").then(|| watch::IdleWatch::start(&ctx));
    let mut r = Results::default();
    if wants("size") {
        r.size = Some(size::run(&ctx));
    }
    if wants("startup") {
        r.startup = Some(startup::run(&ctx));
        r.startup_phases = Some(startup_phases::run(&ctx));
    }
    if wants("signals") {
        r.signals = Some(signals::run(&ctx));
    }
    if wants("census-signals") {
        r.census = Some(census::run(&ctx));
    }
    if wants("stop") {
        r.stop = Some(stop::run(&ctx));
    }
    if wants("reaping") {
        r.reaping = Some(orphans::run(&ctx, 1));
        r.reaping2 = Some(orphans::run(&ctx, 2));
    }
    if wants("memory") {
        r.memory = Some(memory::run(&ctx));
    }
    if wants("watch") {
        r.watch = Some(watch::per_sample(&ctx));
    }
    if let Some(idle) = idle {
        r.idle = Some(idle.finish(&ctx));
    }
    let load_end = machine::loadavg();

    let md = render(
        &ctx,
        &r,
        &machine,
        &missing,
        args,
        &load_start,
        &load_end,
        started,
        &placement,
    );
    let out = o.out.unwrap_or_else(|| match o.mode {
        Mode::Full => Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md"),
        Mode::Short => std::env::temp_dir().join("ward-bench-short.md"),
    });
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, &md).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    print!("{md}");
    progress(&format!(
        "wrote {} after {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    ));
    // Slow is never a failure; a measurement that could not be made is.
    let failures: usize = r.sections().iter().map(|s| s.failures).sum();
    if failures > 0 {
        return Err(format!(
            "{failures} measurement(s) could not be made; see \"failed\" in {}",
            out.display()
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render(
    ctx: &Ctx,
    r: &Results,
    m: &machine::Machine,
    missing: &[String],
    args: &[String],
    load_start: &str,
    load_end: &str,
    started: Instant,
    placement: &cpugroup::Placement,
) -> String {
    let mut md = String::new();
    let ward = &ctx.ward().name;
    let peers: Vec<String> = ctx.inits[1..].iter().map(|i| i.name.clone()).collect();
    let _ = writeln!(md, "# ward benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `ward-bench` ({} mode) — numbers, not assertions. Regenerate with:\n\n    {}\n",
        match ctx.plan.mode {
            Mode::Full => "full",
            Mode::Short => "short",
        },
        command_line(args)
    );
    let _ = writeln!(md, "- Date: {}", m.date);
    let _ = writeln!(
        md,
        "- Machine: {} CPUs, {}, {} MiB RAM; kernel {}",
        m.nproc, m.model, m.mem_mib, m.kernel
    );
    let _ = writeln!(
        md,
        "- Load average (1/5/15 min) at start: {load_start}; at end: {load_end}. The machine is \
         shared: other work ran alongside, so read small differences with the min–max ranges."
    );
    let _ = writeln!(md, "- Run time: {:.0} s", started.elapsed().as_secs_f64());
    let ward_version = machine::git_describe(env!("CARGO_MANIFEST_DIR")).map_or_else(
        || env!("CARGO_PKG_VERSION").to_string(),
        |g| format!("{} ({g})", env!("CARGO_PKG_VERSION")),
    );
    let mut versions = vec![format!("ward {ward_version}")];
    for i in &ctx.inits[1..] {
        let v = machine::package_version(&i.package).unwrap_or_else(|| "?".into());
        versions.push(format!("{} {v}", i.name));
    }
    let _ = writeln!(md, "- Versions: {}", versions.join(", "));
    let _ = writeln!(md, "- CPU group: {}", placement.words());
    for m in missing {
        let _ = writeln!(md, "- Not measured: {m}");
    }
    let _ = writeln!(
        md,
        "\nEvery init runs as PID 1 of its own `unshare --pid --fork --mount-proc --kill-child` \
         namespace, with its defaults (ward: watch on at its default interval unless stated). \
         Figures are medians over the rounds with (min–max); ward/peer comparisons are taken \
         round by round, then summarised the same way.\n"
    );
    let _ = writeln!(md, "## Against ward's bar\n");
    let _ = writeln!(
        md,
        "Reported, not asserted. Where ward misses and why, with profiles: \
         [benchmarks-analysis.md](benchmarks-analysis.md).\n"
    );
    md.push_str(&bar::render(r, ward, &peers));
    md.push('\n');
    for s in r.sections() {
        md.push_str(&s.render());
    }
    md
}
