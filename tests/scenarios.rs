//! The verdict corpus (issue 10): every way a container ends, replayed end to
//! end in Docker (cgroup v1 here), each with the ground truth it injects,
//! compared with Docker's verdict (`State.ExitCode`, `State.OOMKilled`) and
//! ward's (`exit_report`: cause, exit code, OOM victims). Prints a Markdown
//! table and `N passed, N failed`; fails if any scenario does not match.
//! With `WARD_SCENARIOS_OUT=FILE` the table is also written there
//! (`scripts/scenarios` publishes it as `docs/verdicts.md`).
//!
//! The three seed incidents (FIELD-NOTES.md) run on a small Debian userland
//! built with debootstrap and `docker import`, cached by a tag derived from
//! its package list, so a machine pays for it once.
//!
//! Needs Docker: `SKIPPED` on a developer machine without it, a failure
//! under CI=true. Containers run one at a time and are always removed.

mod common;

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::docker::{self, Container, Docker, Exit, docker_cli};
use common::events::{JSON_LOGS, exit_reports, json_named};
use common::verdicts::{
    expect, mark, one_victim_per_kill_none_certain, rewritten_stop, row, ward_words,
    worker_named_most_likely,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

/// What one replay produced.
struct Outcome {
    docker: Exit,
    report: Option<Value>,
    logs: String,
}

impl Outcome {
    fn cause(&self) -> &str {
        self.report
            .as_ref()
            .and_then(|r| r["cause"].as_str())
            .unwrap_or("-")
    }
    fn exit(&self) -> Option<i64> {
        self.report.as_ref().and_then(|r| r["exit_code"].as_i64())
    }
    fn victims(&self) -> Vec<Value> {
        self.report
            .as_ref()
            .and_then(|r| r["oom_kills"]["victims"].as_array().cloned())
            .unwrap_or_default()
    }
    fn summary(&self) -> &str {
        self.report
            .as_ref()
            // In a JSON log line the sentence is the event's `msg`.
            .and_then(|r| r["msg"].as_str())
            .unwrap_or("")
    }
    fn events(&self, name: &str) -> Vec<Value> {
        json_named(&self.logs, name)
    }
    fn has_event(&self, name: &str) -> bool {
        !self.events(name).is_empty()
    }
    /// Checks the common rule: when ward wrote a report, its exit code is
    /// Docker's.
    fn agree(&self) -> Result<(), String> {
        match self.exit() {
            Some(e) if e != self.docker.code => Err(format!(
                "ward says exit {e}, Docker says {}",
                self.docker.code
            )),
            _ => Ok(()),
        }
    }
}

/// Waits for the container, then collects its report (logs can lag a moment).
fn finish(ctr: &Container) -> Outcome {
    let docker = ctr.wait(WAIT);
    let (reports, logs) = exit_reports(ctr);
    assert!(reports.len() <= 1, "more than one exit_report:\n{logs}");
    Outcome {
        docker,
        report: reports.into_iter().next(),
        logs,
    }
}

fn opts<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = JSON_LOGS.to_vec();
    v.extend_from_slice(extra);
    v
}

fn running(ctr: &Container) -> bool {
    ctr.inspect("{{.State.Running}}") == "true"
}

/// One scenario of the corpus.
struct Scenario {
    name: &'static str,
    truth: &'static str,
    run: fn(&Ctx) -> Outcome,
    check: fn(&Outcome) -> Result<(), String>,
}

/// The images scenarios run on.
struct Ctx<'a> {
    docker: &'a Docker,
    /// The test image plus a script without a shebang.
    extras: String,
    /// The Debian seed image plus ward, when it could be built.
    seed: String,
}

impl Ctx<'_> {
    fn run(&self, options: &[&str], cmd: &[&str]) -> Container<'_> {
        self.docker.run(&opts(options), cmd)
    }

    /// Runs, gives the app 800 ms to start, `docker stop -t GRACE`, finishes.
    fn stopped(&self, options: &[&str], cmd: &[&str], grace: u32) -> Outcome {
        let ctr = self.run(options, cmd);
        sleep(Duration::from_millis(800));
        ctr.stop(grace);
        finish(&ctr)
    }

    /// Runs, gives the app 800 ms to start, `docker kill -s SIGNAL`, finishes.
    fn killed(&self, options: &[&str], cmd: &[&str], signal: &str) -> Outcome {
        let ctr = self.run(options, cmd);
        sleep(Duration::from_millis(800));
        ctr.kill(signal);
        finish(&ctr)
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "clean exit",
            truth: "main exits 0",
            run: |c| finish(&c.run(&[], &["ward-workload", "exit", "0"])),
            check: |o| {
                expect(o.cause() == "exited" && o.exit() == Some(0), "exited 0")?;
                expect(!o.docker.oom_killed, "no OOM")
            },
        },
        Scenario {
            name: "crash",
            truth: "main exits 1",
            run: |c| finish(&c.run(&[], &["ward-workload", "exit", "1"])),
            check: |o| expect(o.cause() == "exited" && o.exit() == Some(1), "exited 1"),
        },
        Scenario {
            name: "crash by signal",
            truth: "main dies of SIGSEGV",
            run: |c| finish(&c.run(&[], &["ward-workload", "die", "SEGV"])),
            check: |o| expect(o.cause() == "killed" && o.exit() == Some(139), "killed 139"),
        },
        Scenario {
            name: "exit during a held stop",
            truth: "docker stop; --stop-delay 5s holds SIGTERM; main exits 0 by itself after 1 s",
            run: |c| {
                let ctr = c.run(
                    &["-e", "WARD_STOP_DELAY=5s"],
                    &["sh", "-c", "trap '' TERM; sleep 2; exit 0"],
                );
                sleep(Duration::from_millis(800));
                let _ = docker_cli(&["stop", "-t", "10", ctr.name()], WAIT);
                finish(&ctr)
            },
            check: |o| {
                expect(o.cause() == "exited" && o.exit() == Some(0), "exited 0")?;
                // Item 6: nothing was forwarded, so nothing "still runs".
                expect(!o.has_event("still_running"), "no still_running while held")
            },
        },
        Scenario {
            name: "docker stop",
            truth: "SIGTERM from Docker; main dies of it",
            run: |c| c.stopped(&[], &["ward-workload", "sleep", "60"], 10),
            check: |o| {
                expect(
                    o.cause() == "stopped" && o.exit() == Some(143),
                    "stopped 143",
                )
            },
        },
        Scenario {
            name: "stop, -r TERM:KILL",
            truth: "SIGTERM from Docker, forwarded by ward as SIGKILL",
            run: |c| {
                c.stopped(
                    &["-e", "WARD_REWRITE=TERM:KILL"],
                    &["ward-workload", "sleep", "60"],
                    10,
                )
            },
            check: |o| rewritten_stop(o.cause(), o.exit(), o.summary()),
        },
        Scenario {
            name: "stop timeout ended by ward",
            truth: "main ignores SIGTERM; ward SIGKILLs it after --kill-after 2s",
            run: |c| {
                c.stopped(
                    &["-e", "WARD_KILL_AFTER=2s"],
                    &["ward-workload", "ignore-term"],
                    10,
                )
            },
            check: |o| {
                expect(
                    o.cause() == "stop_timeout" && o.exit() == Some(137),
                    "stop_timeout 137",
                )
            },
        },
        Scenario {
            name: "stop timeout ended by Docker",
            truth: "main ignores SIGTERM; Docker SIGKILLs PID 1 after 2 s",
            run: |c| c.stopped(&[], &["ward-workload", "ignore-term"], 2),
            check: |o| {
                expect(o.docker.code == 137, "Docker 137")?;
                expect(o.report.is_none(), "no report: ward itself was SIGKILLed")?;
                expect(
                    o.has_event("still_running"),
                    "still_running streamed before the kill",
                )
            },
        },
        Scenario {
            name: "docker kill -s KILL",
            truth: "SIGKILL to PID 1 from outside",
            run: |c| c.killed(&[], &["ward-workload", "sleep", "60"], "KILL"),
            check: |o| {
                expect(o.docker.code == 137 && !o.docker.oom_killed, "Docker 137")?;
                expect(o.report.is_none(), "no report: nothing runs after SIGKILL")
            },
        },
        Scenario {
            name: "main-process OOM",
            truth: "main allocates 100 MiB under --memory 32m",
            run: |c| finish(&c.run(&["--memory", "32m"], &docker::HOG_100_DELAYED)),
            check: |o| {
                expect(o.docker.oom_killed, "Docker OOMKilled")?;
                expect(
                    o.cause() == "oom_killed" && o.exit() == Some(137),
                    "oom_killed 137",
                )?;
                let v = o.victims();
                expect(
                    v.iter().any(|v| v["name"] == "ward-workload"),
                    "victim ward-workload named",
                )
            },
        },
        Scenario {
            name: "worker OOM",
            truth: "a worker allocates 100 MiB over 2 s under --memory 48m; its shell exits 3",
            run: |c| {
                finish(&c.run(
                    &["--memory", "48m", "-e", "WARD_WATCH_INTERVAL=500ms"],
                    &[
                        "sh",
                        "-c",
                        "ward-workload hog 100 --step 2 --step-ms 40; exit 3",
                    ],
                ))
            },
            check: |o| {
                expect(
                    o.docker.oom_killed && o.docker.code == 3,
                    "Docker 3, OOMKilled",
                )?;
                expect(o.cause() == "exited" && o.exit() == Some(3), "exited 3")?;
                worker_named_most_likely(&o.victims())
            },
        },
        Scenario {
            name: "OOM cascade",
            truth: "three 30 MiB workers under --memory 48m: two are killed; the shell exits 4",
            run: |c| {
                finish(&c.run(
                    &["--memory", "48m", "-e", "WARD_WATCH_INTERVAL=250ms"],
                    &[
                        "sh",
                        "-c",
                        "for i in 1 2 3; do ward-workload hog 30 --step 1 --step-ms 60 --hold 3 & done; wait; exit 4",
                    ],
                ))
            },
            check: |o| {
                expect(
                    o.docker.oom_killed && o.docker.code == 4,
                    "Docker 4, OOMKilled",
                )?;
                expect(o.cause() == "exited" && o.exit() == Some(4), "exited 4")?;
                let count = o
                    .report
                    .as_ref()
                    .map_or(0, |r| r["oom_kills"]["count"].as_u64().unwrap_or(0));
                expect(count >= 1, "ward counted a kill")?;
                one_victim_per_kill_none_certain(&o.victims(), count)
            },
        },
        Scenario {
            name: "self-kill after an OOM",
            truth: "a worker is OOM-killed; 0.5 s later the shell kill -9s itself",
            run: |c| {
                finish(&c.run(
                    &["--memory", "48m", "-e", "WARD_WATCH_INTERVAL=500ms"],
                    &[
                        "sh",
                        "-c",
                        "ward-workload hog 200 --delay-ms 500; sleep 0.5; kill -9 $$",
                    ],
                ))
            },
            check: |o| {
                expect(
                    o.docker.oom_killed && o.docker.code == 137,
                    "Docker 137, OOMKilled",
                )?;
                // Item 2: never "certainly" the OOM killer.
                expect(
                    o.cause() == "killed" && o.exit() == Some(137),
                    "killed 137, not oom_killed",
                )?;
                expect(
                    o.victims().iter().all(|v| v["certain"] == false),
                    "no certainty",
                )
            },
        },
        Scenario {
            name: "tmpfs fills the cgroup",
            truth: "40 MiB written to /dev/shm under --memory 64m; exits 0",
            run: |c| {
                finish(&c.run(
                    &["--memory", "64m", "--shm-size", "256m"],
                    &[
                        "sh",
                        "-c",
                        "/bin/busybox dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; sleep 2; exit 0",
                    ],
                ))
            },
            check: |o| {
                expect(o.cause() == "exited" && o.exit() == Some(0), "exited 0")?;
                expect(o.summary().contains("tmpfs"), "the report names tmpfs")
            },
        },
        Scenario {
            name: "tmpfs/shm OOM",
            truth: "100 MiB written to /dev/shm under --memory 64m: the OOM killer kills, freeing nothing",
            run: |c| {
                finish(&c.run(
                    &["--memory", "64m", "--shm-size", "256m"],
                    &[
                        "sh",
                        "-c",
                        "sleep 0.5; /bin/busybox dd if=/dev/zero of=/dev/shm/fill bs=1M count=100 2>/dev/null; exit 5",
                    ],
                ))
            },
            check: |o| {
                expect(o.docker.oom_killed, "Docker OOMKilled")?;
                match &o.report {
                    // The kernel may take ward itself (FIELD-NOTES): then
                    // there is no report, and Docker says 137.
                    None => expect(o.docker.code == 137, "ward killed: Docker 137"),
                    Some(r) => expect(
                        r["oom_kills"]["count"].as_u64().unwrap_or(0) >= 1,
                        "OOM kills counted",
                    ),
                }
            },
        },
        Scenario {
            name: "command not found",
            truth: "exec of /no/such/cmd fails",
            run: |c| finish(&c.run(&[], &["/no/such/cmd"])),
            check: |o| {
                expect(
                    o.cause() == "exec_failed" && o.exit() == Some(127),
                    "exec_failed 127",
                )?;
                expect(
                    o.events("exec_failed").is_empty(),
                    "one line: the exit_report",
                )
            },
        },
        Scenario {
            name: "not executable",
            truth: "exec of /etc/hostname (no x bit)",
            run: |c| finish(&c.run(&[], &["/etc/hostname"])),
            check: |o| {
                expect(
                    o.cause() == "exec_failed" && o.exit() == Some(126),
                    "exec_failed 126",
                )
            },
        },
        Scenario {
            name: "script without a shebang",
            truth: "an executable script without #! that exits 7 (run by /bin/sh)",
            run: |c| finish(&c.docker.run_image(&c.extras, &opts(&[]), &["/noshebang"])),
            check: |o| expect(o.cause() == "exited" && o.exit() == Some(7), "exited 7"),
        },
        Scenario {
            name: "PID exhaustion",
            truth: "80 forks under --pids-limit 40; refused forks; exits 0",
            run: |c| {
                finish(&c.run(
                    &["--pids-limit", "40", "-e", "WARD_WATCH_INTERVAL=500ms"],
                    &["ward-workload", "forks", "80", "--hold", "2"],
                ))
            },
            check: |o| {
                expect(o.cause() == "exited" && o.exit() == Some(0), "exited 0")?;
                expect(
                    o.summary().contains("refused at the pids limit"),
                    "refused forks named",
                )
            },
        },
        Scenario {
            name: "STOPSIGNAL WINCH",
            truth: "docker stop with STOPSIGNAL WINCH (httpd); main exits 0 on WINCH",
            run: |c| {
                c.stopped(
                    &["--stop-signal", "WINCH", "-e", "WARD_STOP_SIGNAL=WINCH"],
                    &[
                        "ward-workload",
                        "signals",
                        "--exit-on",
                        "WINCH",
                        "--exit-code",
                        "0",
                    ],
                    10,
                )
            },
            check: |o| expect(o.cause() == "stopped" && o.exit() == Some(0), "stopped 0"),
        },
        Scenario {
            name: "STOPSIGNAL QUIT",
            truth: "docker stop with STOPSIGNAL QUIT; main dies of it",
            run: |c| {
                c.stopped(
                    &["--stop-signal", "QUIT", "-e", "WARD_STOP_SIGNAL=QUIT"],
                    &["ward-workload", "sleep", "60"],
                    10,
                )
            },
            check: |o| {
                expect(
                    o.cause() == "stopped" && o.exit() == Some(131),
                    "stopped 131",
                )
            },
        },
        Scenario {
            name: "SIGQUIT thread dump under --kill-after",
            truth: "SIGQUIT (a JVM's thread dump) to a main that traps it; 3 s later docker stop",
            run: |c| {
                let ctr = c.run(
                    &["-e", "WARD_KILL_AFTER=2s"],
                    &[
                        "ward-workload",
                        "signals",
                        "--exit-on",
                        "TERM",
                        "--exit-code",
                        "0",
                    ],
                );
                sleep(Duration::from_millis(800));
                ctr.kill("QUIT");
                sleep(Duration::from_secs(3));
                let alive = running(&ctr);
                ctr.stop(10);
                let mut o = finish(&ctr);
                if !alive {
                    o.logs
                        .push_str("\nSCENARIO: not running 3 s after SIGQUIT\n");
                }
                o
            },
            check: |o| {
                expect(
                    !o.logs.contains("SCENARIO: not running"),
                    "alive after SIGQUIT",
                )?;
                expect(
                    !o.has_event("kill_after"),
                    "no kill_after for a thread dump",
                )?;
                expect(o.cause() == "stopped" && o.exit() == Some(0), "stopped 0")
            },
        },
        Scenario {
            name: "crash before the stop",
            truth: "ward SIGSTOPped; main exits 1; then SIGTERM; ward resumed",
            run: |c| {
                let ctr = c.run(&[], &["sh", "-c", "sleep 2; exit 1"]);
                sleep(Duration::from_millis(800));
                ctr.kill("STOP");
                sleep(Duration::from_secs(2));
                ctr.kill("TERM");
                sleep(Duration::from_millis(200));
                ctr.kill("CONT");
                finish(&ctr)
            },
            check: |o| expect(o.cause() == "exited" && o.exit() == Some(1), "exited 1"),
        },
        Scenario {
            name: "seed 000: orphans under a Python PID 1",
            truth: "2000 orphaned grandchildren of a Python service exit",
            run: seed_000,
            check: |o| {
                let without = o
                    .logs
                    .lines()
                    .find_map(|l| l.strip_prefix("SCENARIO without ward: defunct="));
                let with = o
                    .logs
                    .lines()
                    .find_map(|l| l.strip_prefix("SCENARIO under ward: defunct="));
                let n = |s: Option<&str>| s.and_then(|s| s.trim().parse::<u64>().ok());
                expect(
                    n(without).is_some_and(|n| n >= 1000),
                    "thousands of <defunct> without an init",
                )?;
                expect(n(with) == Some(0), "0 <defunct> under ward")?;
                expect(o.cause() == "exited" && o.exit() == Some(0), "exited 0")
            },
        },
        Scenario {
            name: "seed 001: su, a server that never waits, --pids-limit",
            truth: "su runs a server whose external scripts are never waited for; pids run out",
            run: seed_001,
            check: |o| {
                let order: Vec<String> = o
                    .logs
                    .lines()
                    .filter(|l| l.starts_with('{'))
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter_map(|v| v["event"].as_str().map(String::from))
                    .filter(|e| {
                        ["zombies_unreaped", "pids_high", "fork_failed"].contains(&e.as_str())
                    })
                    .collect();
                let first = |e: &str| order.iter().position(|x| x == e);
                let (z, p, f) = (
                    first("zombies_unreaped"),
                    first("pids_high"),
                    first("fork_failed"),
                );
                expect(
                    z.is_some() && p.is_some() && f.is_some(),
                    "all three warnings",
                )?;
                expect(
                    z < p && p < f,
                    "zombies_unreaped, then pids_high, then fork_failed",
                )?;
                let zl = o.events("zombies_unreaped");
                expect(
                    zl.first().is_some_and(|e| {
                        e["message"].to_string().contains("python3")
                            || e.to_string().contains("python3")
                    }),
                    "zombies_unreaped names the server",
                )?;
                expect(
                    o.summary().contains("python3"),
                    "the report names the server",
                )
            },
        },
        Scenario {
            name: "seed 002: starved HTTP backend stopped from outside",
            truth: "http.server at --cpus 0.1 with a busy neighbour; health check fails; docker stop",
            run: seed_002,
            check: |o| {
                expect(
                    o.logs.contains("SCENARIO health=unhealthy"),
                    "Docker's health check failed",
                )?;
                expect(o.cause() == "stopped", "stopped")?;
                expect(o.summary().contains("from outside"), "stopped from outside")?;
                expect(
                    o.summary().contains("CPU was throttled in"),
                    "throttled, with the ratio",
                )
            },
        },
    ]
}

/// Seed 000: a Python service as PID 1 (no init) vs under ward.
fn seed_000(c: &Ctx) -> Outcome {
    const APP: &str = r#"import os, sys, time
for _ in range(2000):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
print('forked', flush=True)
time.sleep(4)
"#;
    let count = |ctr: &Container| -> u64 {
        ctr.wait_for_log("forked", WAIT);
        sleep(Duration::from_secs(1));
        ctr.exec(&["sh", "-c", "ps -eo stat= | grep -c '^Z' || true"], WAIT)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let bare = c
        .docker
        .run_image(&c.seed, &["--entrypoint", "python3"], &["-c", APP]);
    let without = count(&bare);
    drop(bare);
    let ctr = c
        .docker
        .run_image(&c.seed, &opts(&[]), &["python3", "-c", APP]);
    let with = count(&ctr);
    let mut o = finish(&ctr);
    o.logs.push_str(&format!(
        "\nSCENARIO without ward: defunct={without}\nSCENARIO under ward: defunct={with}\n"
    ));
    o
}

/// Seed 001: `su` as the main process, a server spawning scripts it never
/// waits for, under `--pids-limit`.
fn seed_001(c: &Ctx) -> Outcome {
    const SERVER: &str = r#"import os, sys, time
fails = 0
while fails < 20:
    try:
        os.posix_spawn('/bin/sh', ['sh', '-c', 'exit 0'], os.environ)
    except OSError as e:
        fails += 1
        print(f'Failed to execute command "/usr/lib/zabbix/externalscripts/foo": [{e.errno}] {e.strerror}', flush=True)
    time.sleep(0.05)
time.sleep(1)
sys.exit(1)
"#;
    let cmd = "python3 -c \"$SERVER\"";
    let ctr = c.docker.run_image(
        &c.seed,
        &opts(&[
            "--pids-limit",
            "60",
            "-e",
            "WARD_WATCH_INTERVAL=250ms",
            "-e",
            &format!("SERVER={SERVER}"),
        ]),
        &["su", "nobody", "-s", "/bin/bash", "-c", cmd],
    );
    finish(&ctr)
}

/// Seed 002: a CPU-starved HTTP backend, its health check failing, stopped
/// by `docker stop`.
fn seed_002(c: &Ctx) -> Outcome {
    let ctr = c.docker.run_image(
        &c.seed,
        &opts(&[
            "--cpus",
            "0.1",
            "-e",
            "WARD_WATCH_INTERVAL=500ms",
            "--health-cmd",
            "python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/', timeout=0.5)\"",
            "--health-interval",
            "2s",
            "--health-timeout",
            "2s",
            "--health-retries",
            "2",
        ]),
        &[
            "bash",
            "-c",
            "for i in 1 2; do python3 -c 'while True: pass' & done; exec python3 -m http.server 8000",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut health = String::new();
    while Instant::now() < deadline {
        health = ctr.inspect("{{.State.Health.Status}}");
        if health == "unhealthy" {
            break;
        }
        sleep(Duration::from_millis(500));
    }
    ctr.stop(10);
    let mut o = finish(&ctr);
    o.logs.push_str(&format!("\nSCENARIO health={health}\n"));
    o
}

/// The Debian userland of the seeds: debootstrap once, `docker import`,
/// tagged by its package list so a machine builds it once.
fn seed_base() -> Result<String, String> {
    const SUITE: &str = "bookworm";
    const PACKAGES: &str = "python3,bash,procps";
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{SUITE} {PACKAGES}").bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let tag = format!("ward-seed-debian:{h:016x}");
    if docker_cli(&["image", "inspect", &tag], WAIT).is_ok_and(|o| o.success) {
        return Ok(tag);
    }
    let mirror = apt_mirror().ok_or("no Debian mirror in /etc/apt/sources.list*")?;
    let dir = std::env::temp_dir().join(format!("ward-seed-rootfs-{}", std::process::id()));
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&dir)
        .arg(&mirror)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("debootstrap: {e} (install the debootstrap package)"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("debootstrap failed: {status}"));
    }
    let imported = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C '{}' -c . | docker import - '{tag}'",
            dir.display()
        ))
        .stdout(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&dir);
    match imported {
        Ok(s) if s.success() => Ok(tag),
        other => Err(format!("docker import failed: {other:?}")),
    }
}

/// The Debian archive among the apt sources apt itself reads (`*.list`,
/// `*.sources`), or their first `http` URI.
fn apt_mirror() -> Option<String> {
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // Only the files apt itself reads: a `foo.list.disabled` (seen on
        // a CI machine, naming a third-party repository) is not a source,
        // and debootstrap from it fails at once.
        let mut paths: Vec<_> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "list" || x == "sources"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(t) = std::fs::read_to_string(p) {
                texts.push(t);
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    let uris: Vec<String> = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| {
            let l = l.trim();
            let uri = l
                .strip_prefix("URIs:")
                .map(|u| u.split_whitespace().next().unwrap_or(""))
                .or_else(|| {
                    l.strip_prefix("deb ")
                        .and_then(|r| r.split_whitespace().find(|w| w.starts_with("http")))
                })?
                .to_string();
            (uri.starts_with("http") && !uri.contains("security")).then_some(uri)
        })
        .collect();
    // Debian's own archive first: a machine may list third-party
    // repositories (Docker's, Node's) beside it.
    uris.iter()
        .find(|u| u.trim_end_matches('/').ends_with("/debian"))
        .or(uris.first())
        .cloned()
}

/// An image from `base` plus the static ward and ward-workload.
fn with_ward(docker: &Docker, base: &str, extra: &str) -> String {
    let lines = format!(
        "FROM {base}\nCOPY ward ward-workload /usr/local/bin/\n{extra}\nENTRYPOINT [\"/usr/local/bin/ward\", \"--\"]\n"
    );
    let _ = docker;
    let mut h: u64 = 0xcbf29ce484222325;
    for b in lines.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let tag = format!("ward-scenario:{}-{h:016x}", std::process::id());
    let dir =
        std::env::temp_dir().join(format!("ward-scenario-ctx-{}-{h:016x}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("Dockerfile"), &lines).expect("Dockerfile");
    std::fs::copy(env!("CARGO_BIN_EXE_ward"), dir.join("ward")).expect("copy ward");
    std::fs::copy(
        env!("CARGO_BIN_EXE_ward-workload"),
        dir.join("ward-workload"),
    )
    .expect("copy ward-workload");
    let built = docker_cli(
        &["build", "-q", "-t", &tag, dir.to_str().unwrap_or(".")],
        Duration::from_secs(600),
    );
    let _ = std::fs::remove_dir_all(&dir);
    match built {
        Ok(o) if o.success => tag,
        Ok(o) => panic!("building {tag} failed: {}", o.stderr),
        Err(e) => panic!("building {tag} failed: {e}"),
    }
}

#[test]
fn scenarios_replay_every_verdict() {
    let Some(docker) = docker::docker_with_workload() else {
        return;
    };
    let started = Instant::now();
    let extras = docker.derived_image(
        r#"RUN ["/bin/busybox", "sh", "-c", "echo 'echo no shebang; exit 7' > /noshebang && /bin/busybox chmod +x /noshebang"]"#,
    );
    let seed = match seed_base() {
        Ok(base) => with_ward(&docker, &base, ""),
        Err(why) => panic!("the seed image could not be built: {why}"),
    };
    let ctx = Ctx {
        docker: &docker,
        extras,
        seed: seed.clone(),
    };
    let only = std::env::var("WARD_SCENARIOS_ONLY").ok();
    let mut table = String::from(
        "| scenario | truth | Docker (ExitCode, OOMKilled) | ward (cause, exit, victims) | match |\n|---|---|---|---|---|\n",
    );
    let (mut passed, mut failed) = (0, 0);
    for s in scenarios() {
        if only.as_deref().is_some_and(|o| !s.name.contains(o)) {
            continue;
        }
        let t0 = Instant::now();
        let got = std::panic::catch_unwind(AssertUnwindSafe(|| (s.run)(&ctx)));
        let (docker_col, ward_col, verdict) = match &got {
            Ok(o) => {
                let ok = o.agree().and_then(|()| (s.check)(o));
                (
                    format!("{}, {}", o.docker.code, o.docker.oom_killed),
                    match &o.report {
                        Some(r) => ward_words(r),
                        None => "no report (ward was SIGKILLed)".into(),
                    },
                    ok,
                )
            }
            Err(_) => (
                "-".into(),
                "-".into(),
                Err("the replay itself failed".into()),
            ),
        };
        match &verdict {
            Ok(()) => passed += 1,
            Err(why) => {
                failed += 1;
                if let Ok(o) = &got {
                    eprintln!("--- {} failed: {why}\n{}", s.name, o.logs);
                }
            }
        }
        let line = row([s.name, s.truth, &docker_col, &ward_col, &mark(&verdict)]);
        eprint!("{line}");
        eprintln!("    ({:.1} s)", t0.elapsed().as_secs_f64());
        table.push_str(&line);
    }
    let _ = docker_cli(&["rmi", &seed], WAIT);
    let last = format!("{passed} passed, {failed} failed");
    println!("\n{table}\n{last}");
    println!("(corpus took {:.0} s)", started.elapsed().as_secs_f64());
    if let Ok(path) = std::env::var("WARD_SCENARIOS_OUT") {
        let doc = format!(
            "# Verdicts: the scenario corpus\n\nOne run of `scripts/scenarios` (`cargo test --test scenarios -- --nocapture`): each scenario injects a known truth into a Docker container (cgroup v1) with ward as PID 1, and compares Docker's verdict with ward's exit report.\n\n{table}\n{last}\n"
        );
        std::fs::write(&path, doc).expect("write WARD_SCENARIOS_OUT");
    }
    assert_eq!(failed, 0, "{last}");
}
