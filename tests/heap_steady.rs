//! ward's heap needs no new page once it is idle (needs root: ward runs as
//! PID 1 of fresh PID namespaces). The benchmark's "anonymous growth after
//! 100,000 reaps" found one 4 KiB `[heap]` page in about half its runs: a
//! bounded buffer reaching its size (the rings of reaped children, the
//! throttling window, the census's table) cut from a heap page never
//! written before. `trim::keep_heap_resident` keeps the heap resident a
//! little above what is in use, so the idle reading already counts it.
//!
//! The same steps as the benchmark's memory rows, shorter: three wards
//! serving metrics, sampling every 200 ms, idle and scraped, then each
//! reaping three storms of 10,000 orphans, scraped again. Before the
//! change this failed in both runs, release and debug builds: all six
//! wards grew by a page or two.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const WARDS: usize = 3;
const SCRIPT: &str = "echo ready; read x < GO; WL orphans 30000 --workers 2 --rounds 3 --pause-ms 1000; read x < DONE";

/// True when this kernel has `MADV_POPULATE_WRITE` (Linux 5.14).
fn kernel_populates() -> bool {
    // SAFETY: a fresh one-page anonymous mapping, advised and unmapped.
    unsafe {
        let at = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(at, libc::MAP_FAILED);
        let ok = libc::madvise(at, 4096, libc::MADV_POPULATE_WRITE) == 0;
        libc::munmap(at, 4096);
        ok
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Opens the FIFO (once the script waits on it) and says go.
fn release(fifo: &Path) {
    let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
    f.write_all(b"go\n").unwrap();
}

/// The `[heap]` block of `/proc/PID/smaps`.
fn heap_block(pid: i32) -> String {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out = String::new();
    let mut inside = false;
    for line in smaps.lines() {
        let header = line.split(' ').next().is_some_and(|r| r.contains('-'))
            && !line.ends_with("kB")
            && !line.starts_with("VmFlags");
        if header {
            inside = line.ends_with("[heap]");
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `Anonymous:` of ward's `[heap]`, in KiB.
fn heap_anon_kib(block: &str) -> u64 {
    block
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no Anonymous line for [heap]:\n{block}"))
}

/// One `GET /metrics`, then a second for the scrape's blocks to be gone.
fn scrape(addr: SocketAddr) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: ward\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    std::thread::sleep(Duration::from_secs(1));
}

struct Ward {
    p: Proc,
    addr: SocketAddr,
    go: PathBuf,
    done: PathBuf,
}

#[test]
fn an_idle_ward_needs_no_new_heap_page_for_storms_of_orphans() {
    if !require_root("heap_steady") {
        return;
    }
    if !kernel_populates() {
        skipped(
            "heap_steady: this kernel has no MADV_POPULATE_WRITE (Linux 5.14); ward leaves its heap as it is there",
        );
        return;
    }
    let _serial = serial();
    let dir = TempDir::new("heap-steady");
    let wards: Vec<Ward> = (0..WARDS)
        .map(|i| {
            let go = dir.path().join(format!("go{i}"));
            let done = dir.path().join(format!("done{i}"));
            mkfifo(&go);
            mkfifo(&done);
            let script = SCRIPT
                .replace("WL", workload())
                .replace("GO", &go.display().to_string())
                .replace("DONE", &done.display().to_string());
            let p = Proc::start(
                ward_pid1([
                    "--metrics",
                    "127.0.0.1:0",
                    "--watch-interval",
                    "200ms",
                    "--log-level",
                    "debug",
                    "--log-format",
                    "json",
                    "--",
                    "/bin/sh",
                    "-c",
                    &script,
                ]),
                Duration::from_secs(300),
            );
            p.expect_line("ready");
            let addr = p.metrics_address();
            Ward { p, addr, go, done }
        })
        .collect();
    // Idle, as the benchmark's wards are before their reading.
    std::thread::sleep(Duration::from_secs(2));
    let idle: Vec<String> = wards
        .iter()
        .map(|w| {
            scrape(w.addr);
            heap_block(w.p.ward_pid())
        })
        .collect();
    let mut grown = Vec::new();
    for (i, w) in wards.into_iter().enumerate() {
        release(&w.go);
        let report = w.p.wait_line(|l| l.contains("orphans="));
        assert!(report.contains("fork_failures=0"), "{report}");
        scrape(w.addr);
        let after = heap_block(w.p.ward_pid());
        let (before, now) = (heap_anon_kib(&idle[i]), heap_anon_kib(&after));
        if now != before {
            grown.push(format!(
                "ward {i}: [heap] {before} KiB idle, {now} KiB after\n--- idle:\n{}--- after:\n{after}",
                idle[i]
            ));
        }
        release(&w.done);
        let out = w.p.wait();
        assert_eq!(out.code, 0, "{}", out.dump());
    }
    assert!(grown.is_empty(), "{}", grown.join("\n"));
}
