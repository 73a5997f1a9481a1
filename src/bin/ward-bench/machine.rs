//! Facts about the machine a run happened on: CPUs, memory, kernel, load, the
//! date, and the versions of what was compared.
//!
//! Reads /proc and asks dpkg-query and git; never fails (unknown is "?").

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The machine and the moment.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Online CPUs.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub model: String,
    /// MemTotal, in MiB.
    pub mem_mib: u64,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub date: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The facts now.
pub fn machine() -> Machine {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        model,
        mem_mib: mem_kib / 1024,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        date: utc_now(),
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_ascii_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Debian package's version, if installed.
pub fn package_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// `git describe` of the tree the harness was built from.
pub fn git_describe(dir: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["-C", dir, "describe", "--always", "--dirty"])
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM UTC` (Howard Hinnant's
/// days-to-civil algorithm).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_763_888_940), "2025-11-23 09:09 UTC");
    }
}
