//! ward's own metrics endpoint and EMF lines, with ward as PID 1 of a fresh
//! PID namespace (needs root): what a scrape returns, that promtool accepts
//! it, that its counters move with what the reaper does, that a flood of
//! clients cannot hurt the reaping, the thread count, and the EMF lines with
//! and without ECS metadata. Loopback only.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::promtool::{check_metrics, has_promtool};
use common::*;

/// A temp dir per case; `go` in it releases the child's script.
struct Case {
    dir: TempDir,
}

impl Case {
    fn new(name: &str) -> Case {
        Case {
            dir: TempDir::new(&format!("mw-{name}")),
        }
    }

    /// `sh -c SCRIPT` with `WL` the workload and `GO` a wait for the go file.
    fn sh(&self, script: &str) -> Vec<String> {
        let go = format!(
            "while [ ! -e {} ]; do sleep 0.05; done",
            self.dir.path().join("go").display()
        );
        vec![
            "/bin/sh".into(),
            "-c".into(),
            script.replace("WL", workload()).replace("GO", &go),
        ]
    }

    fn go(&self) {
        std::fs::write(self.dir.path().join("go"), "").unwrap();
    }
}

/// ward as PID 1 with `--metrics 127.0.0.1:0` plus `extra`, running
/// `command`; returns it and the address it bound (from its start line).
fn ward_serving(extra: &[&str], command: &[String]) -> (Proc, SocketAddr) {
    let mut args = vec!["--metrics", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend(command.iter().map(String::as_str));
    let p = Proc::start(ward_pid1(&args), Duration::from_secs(120));
    let addr = p.metrics_address();
    (p, addr)
}

/// One root case of an orphan storm under a serving ward: the machine held,
/// its temp dir, and ward as PID 1 (200 ms samples) over `WL orphans N`
/// released by [`Case::go`], then `WL signals`.
struct Storm {
    _serial: std::sync::MutexGuard<'static, ()>,
    case: Case,
    p: Proc,
    addr: SocketAddr,
}

impl Storm {
    /// `None` after a visible skip when `test` cannot have root here.
    fn start(test: &str, name: &str, orphans: u32) -> Option<Storm> {
        if !require_root(test) {
            return None;
        }
        let serial = serial();
        let case = Case::new(name);
        let script = case.sh(&format!("GO; WL orphans {orphans} && exec WL signals"));
        let (p, addr) = ward_serving(&["--watch-interval", "200ms"], &script);
        Some(Storm {
            _serial: serial,
            case,
            p,
            addr,
        })
    }
}

fn scrape(addr: SocketAddr) -> String {
    let (status, _, body) = scrape_within(addr, Duration::from_secs(10)).expect("scrape");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the series `name` (exactly, labels included) in `body`.
fn value(body: &str, name: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, v) = l.rsplit_once(' ')?;
        (series == name).then(|| v.parse().ok())?
    })
}

/// Polls scrapes until `name` satisfies `ok`; returns its value.
fn wait_value(addr: SocketAddr, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let body = scrape(addr);
        if let Some(v) = value(&body, name).filter(|v| ok(*v)) {
            return v;
        }
        assert!(Instant::now() < until, "{name} never got there:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn threads_of(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits until ward has `n` threads, then checks it stays there a moment.
fn expect_threads(pid: i32, n: usize) {
    let until = Instant::now() + Duration::from_secs(5);
    while threads_of(pid) != n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..10 {
        assert_eq!(threads_of(pid), n, "ward's threads (/proc/{pid}/task)");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scrape_of_ward_as_pid1_follows_the_reaper() {
    let Some(storm) = Storm::start("metrics_scrape", "scrape", 500) else {
        return;
    };
    let (case, p, addr) = (&storm.case, &storm.p, storm.addr);

    let (status, ctype, body) = scrape_within(addr, Duration::from_secs(10)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    // When ward started, on the wall clock: before this scrape, and not
    // before the test's own start (the alert rules ask ward's age).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&body, "ward_start_time_seconds").expect("ward_start_time_seconds");
    assert!(
        started <= now && now - started < 120.0,
        "ward_start_time_seconds {started}, now {now}"
    );
    assert_eq!(
        value(&body, "ward_orphans_reaped_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(value(&body, "ward_signals_forwarded_total"), Some(0.0));
    assert_eq!(
        value(
            &body,
            &format!(
                "ward_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0),
        "{body}"
    );
    // After the first sample (and its census), the watch's numbers are
    // there too.
    wait_value(addr, "ward_zombies", |v| v == 0.0);
    let body = scrape(addr);
    for name in [
        "ward_memory_usage_bytes",
        "ward_memory_limit_bytes",
        "ward_cpu_usage_seconds_total",
        "ward_cpu_limit_cores",
        "ward_pids_limit",
        "ward_zombies",
        "ward_oom_kills_total",
        "ward_warning_active{warning=\"memory_high\"}",
    ] {
        assert!(value(&body, name).is_some(), "{name} missing:\n{body}");
    }

    if require("promtool", has_promtool(), "metrics_scrape") {
        let (ok, said) = check_metrics(&body);
        assert!(ok, "promtool check metrics: {said}\n{body}");
    }

    // The orphan storm shows in the reaper's counter.
    case.go();
    p.wait_line(|l| l.starts_with("orphans="));
    p.expect_line("ready");
    wait_value(addr, "ward_orphans_reaped_total", |v| v >= 500.0);

    // So do forwarded signals.
    for _ in 0..3 {
        p.signal_ward(libc::SIGUSR1);
        p.expect_line("signal 10");
    }
    wait_value(addr, "ward_signals_forwarded_total", |v| v >= 3.0);
    expect_threads(p.ward_pid(), 3);
}

/// The endpoint adds a listener, not a thread: the serving thread that
/// answers `ward status` serves `--metrics` too, so ward has three threads
/// with or without it (reaping, watch, serving).
#[test]
fn without_metrics_ward_has_the_same_three_threads() {
    if !require_root("metrics_threads") {
        return;
    }
    let _g = serial();
    let p = Proc::start(
        ward_pid1(["--watch-interval", "200ms", "--", workload(), "signals"]),
        Duration::from_secs(60),
    );
    p.expect_line("ready");
    expect_threads(p.ward_pid(), 3);
    assert!(!p.stderr_now().contains("[metrics]"));
}

#[test]
fn a_bad_metrics_address_is_one_line_and_exit_2() {
    for bad in ["9464", "host:9464", "127.0.0.1:99999", ":"] {
        let out = run(
            ward_plain(["--metrics", bad, "--", "true"]),
            Duration::from_secs(10),
        );
        assert_eq!(out.code, 2, "--metrics {bad}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        out.expect_stderr("--metrics");
    }
    let mut cmd = ward_plain(["--", "true"]);
    cmd.env("WARD_METRICS", "[::1]");
    let out = run(cmd, Duration::from_secs(10));
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.expect_stderr("WARD_METRICS");
}

#[test]
fn a_port_in_use_is_a_warning_and_ward_carries_on() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        ward_plain(["--metrics", &addr, "--", "sh", "-c", "exit 3"]),
        Duration::from_secs(10),
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    out.expect_stderr("warning [metrics_unavailable]");
}

/// From the issue: 400 idle connections plus 2,000 requests while a
/// 3,000-orphan storm runs, and a slow-loris client: every orphan reaped,
/// SIGTERM forwarded, a fresh scrape still answered (within 2 s: a guard
/// against a wedged server, not a speed goal).
#[test]
fn a_flood_of_clients_cannot_hurt_pid1() {
    let Some(storm) = Storm::start("metrics_flood", "flood", 3000) else {
        return;
    };
    let (case, p, addr) = (&storm.case, &storm.p, storm.addr);
    let ward_pid = p.ward_pid();

    let stop = Arc::new(AtomicBool::new(false));
    // Slow-loris: a byte every 100 ms, never a whole head.
    let loris = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut cut = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                for b in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                    if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                cut += 1;
            }
            cut
        })
    };
    // 400 idle connections, opened from their own thread: beyond the
    // server's cap they wait in the kernel's accept queue.
    let idle = std::thread::spawn(move || {
        (0..400)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect::<Vec<_>>()
    });
    // 2,000 requests from four threads, during the storm.
    let answered = Arc::new(AtomicU64::new(0));
    let requesters: Vec<_> = (0..4)
        .map(|_| {
            let answered = answered.clone();
            std::thread::spawn(move || {
                for _ in 0..500 {
                    match scrape_within(addr, Duration::from_secs(10)) {
                        Ok((200, _, _)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, _, body)) if status != 0 => {
                            panic!("unexpected answer {status}: {body}")
                        }
                        // Refused or cut under the connection cap: allowed.
                        Ok(_) => {}
                        Err(e) => assert!(
                            matches!(
                                e.kind(),
                                ErrorKind::ConnectionReset
                                    | ErrorKind::BrokenPipe
                                    | ErrorKind::ConnectionAborted
                                    | ErrorKind::UnexpectedEof
                            ),
                            "{e}"
                        ),
                    }
                }
            })
        })
        .collect();
    case.go();
    let line = p.wait_line(|l| l.starts_with("orphans="));
    assert_eq!(line, "orphans=3000 fork_failures=0");
    p.expect_line("ready");
    for r in requesters {
        r.join().unwrap();
    }
    let idle = idle.join().unwrap();
    assert!(
        idle.len() >= 300,
        "only {} idle connections opened",
        idle.len()
    );

    // Every orphan reaped, with the idle connections still open. No zombie
    // left is not enough: under load an orphan may not have exited yet, so
    // wait (bounded) for the count too.
    let until = Instant::now() + Duration::from_secs(10);
    let reaped = loop {
        let (status, _, body) = scrape_within(addr, Duration::from_secs(2))
            .expect("a fresh scrape answered within 2 s");
        assert_eq!(status, 200);
        let reaped = value(&body, "ward_orphans_reaped_total").unwrap_or(0.0);
        if (reaped >= 3000.0 && zombies_under(p.pid()) == 0) || Instant::now() > until {
            break reaped;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(zombies_under(p.pid()), 0, "zombies left under ward");
    assert!(reaped >= 3000.0, "{reaped} orphans reaped of 3000");
    assert!(
        answered.load(Ordering::Relaxed) >= 1000,
        "only {} of 2000 requests answered",
        answered.load(Ordering::Relaxed)
    );
    expect_threads(ward_pid, 3);

    // SIGTERM still reaches the child.
    p.signal_ward(libc::SIGTERM);
    p.expect_line("signal 15");
    stop.store(true, Ordering::Relaxed);
    let cut = loris.join().unwrap();
    assert!(cut >= 1, "the slow client was never cut off");
    drop(idle);
}

// ------------------------------------------------------------------- EMF

/// The EMF lines (bare JSON objects) in ward's stderr.
fn emf_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn check_emf_shape(v: &serde_json::Value) {
    let aws = &v["_aws"];
    assert!(
        aws["Timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{v}"
    );
    let directive = &aws["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "ward", "{v}");
    assert!(directive["Dimensions"][0].is_array(), "{v}");
    let metrics = directive["Metrics"].as_array().unwrap();
    assert!(!metrics.is_empty(), "{v}");
    for m in metrics {
        let name = m["Name"].as_str().unwrap();
        assert!(v[name].is_number(), "{name} has no value: {v}");
        assert!(m["Unit"].is_string(), "{v}");
    }
    for name in ["MemoryUtilization", "CpuThrottled", "OomKills", "Zombies"] {
        assert!(v[name].is_number(), "{name} missing: {v}");
    }
}

#[test]
fn emf_lines_are_bare_json_every_interval() {
    let line = "--emf --emf-interval 1s --watch-interval 200ms -- WL sleep 3.5";
    let Some(cmd) = pid1("emf_lines", line) else {
        return;
    };
    let _g = serial();
    let p = Proc::start(cmd, Duration::from_secs(60));
    let out = p.wait();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines = emf_lines(&out.stderr);
    // Three whole intervals and the closing one.
    assert!((3..=5).contains(&lines.len()), "{}", out.stderr);
    for l in &lines {
        check_emf_shape(l);
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!([])
        );
    }
    // Every other line keeps ward's prefix.
    for l in out.stderr.lines().filter(|l| !l.starts_with('{')) {
        assert!(l.starts_with("ward: "), "{l}");
    }
}

/// An HTTP server on 127.0.0.1 answering the ECS container and task
/// documents (AWS's documented examples, as `metrics::ecs` keeps them),
/// after a 500 to each of the first `fail_first` requests (an agent not
/// ready yet). Returns how many requests it served.
fn fake_ecs_endpoint(
    fail_first: u32,
) -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<u32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let h = std::thread::spawn(move || {
        let mut served = 0;
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until && !stopped.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let body = if line.contains("/task ") {
                ward::metrics::ecs::EXAMPLE_TASK
            } else {
                ward::metrics::ecs::EXAMPLE_CONTAINER
            };
            if served < fail_first {
                let _ = write!(
                    s,
                    "HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                );
            } else {
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            served += 1;
        }
        served
    });
    (addr, stop, h)
}

/// ward as PID 1 with EMF every second and `ECS_CONTAINER_METADATA_URI_V4`
/// at a fake endpoint that fails its first `failing` requests, running
/// `command`: its outcome (exit 0 checked) and how many requests the
/// endpoint served. `None` when the test is skipped.
fn with_fake_ecs(test: &str, command: &str, failing: u32) -> Option<(Outcome, u32)> {
    let line = format!("--emf --emf-interval 1s --watch-interval 200ms -- {command}");
    let mut cmd = pid1(test, &line)?;
    let _g = serial();
    let (meta, stop, server) = fake_ecs_endpoint(failing);
    cmd.env(
        "ECS_CONTAINER_METADATA_URI_V4",
        format!("http://{meta}/v4/abc-123"),
    );
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.stderr);
    stop.store(true, Ordering::Relaxed);
    let served = server.join().unwrap();
    Some((out, served))
}

#[test]
fn emf_dimensions_come_from_the_ecs_metadata_endpoint() {
    let Some((out, served)) = with_fake_ecs("emf_ecs", "WL sleep 2.5", 0) else {
        return;
    };
    assert!(served >= 1, "the metadata endpoint was never asked");
    let lines = emf_lines(&out.stderr);
    assert!(lines.len() >= 2, "{}", out.stderr);
    let id = ward::metrics::ecs::parse_container_metadata(ward::metrics::ecs::EXAMPLE_CONTAINER)
        .unwrap();
    let id = id.or(ward::metrics::ecs::parse_task_metadata(
        ward::metrics::ecs::EXAMPLE_TASK,
        ward::metrics::ecs::container_docker_id(ward::metrics::ecs::EXAMPLE_CONTAINER).as_deref(),
    )
    .unwrap());
    for l in &lines {
        check_emf_shape(l);
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!(["ClusterName", "TaskDefinitionFamily", "ContainerName"]),
            "{l}"
        );
        assert_eq!(l["ClusterName"].as_str(), id.cluster.as_deref(), "{l}");
        assert_eq!(l["TaskDefinitionFamily"].as_str(), id.family.as_deref());
        assert_eq!(l["ContainerName"].as_str(), id.container.as_deref());
        assert_eq!(l["TaskArn"].as_str(), id.task_arn.as_deref());
    }
    assert!(
        !out.stderr.contains("ecs_metadata_unavailable"),
        "{}",
        out.stderr
    );
}

#[test]
fn emf_dimensions_arrive_when_the_metadata_endpoint_answers_late() {
    // The endpoint fails the lookup made after ward's first sample and
    // answers later: the lines get their dimensions from the retry on
    // (ecs::RETRY_AFTER[0], 5 s, later), not never.
    let Some((out, served)) = with_fake_ecs("emf_ecs_late", "WL sleep 8.5", 1) else {
        return;
    };
    // The failed request, then the lookup that succeeded.
    assert!(served >= 2, "{}", out.stderr);
    let lines = emf_lines(&out.stderr);
    let with_dims: Vec<bool> = lines
        .iter()
        .map(|l| {
            check_emf_shape(l);
            l["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                == serde_json::json!(["ClusterName", "TaskDefinitionFamily", "ContainerName"])
        })
        .collect();
    let first = with_dims.iter().position(|&d| d);
    // Lines before the retry have none; from it on, every line has them.
    assert!(
        first.is_some_and(|i| i >= 2 && with_dims[i..].iter().all(|&d| d)),
        "{with_dims:?}\n{}",
        out.stderr
    );
    for key in ["ecs_metadata_retrying", "ecs_metadata_read"] {
        assert_eq!(out.stderr.matches(key).count(), 1, "{key}: {}", out.stderr);
    }
    assert!(
        !out.stderr.contains("ecs_metadata_unavailable"),
        "{}",
        out.stderr
    );
}
