//! `/proc/PID/status` and `/proc/meminfo`: `Key: value` files read with
//! `cgroup::parse::status_field` and `meminfo_bytes`, and the
//! `Cpus_allowed_list` value fed on to `cpu_list_count`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::cgroup::parse::{cpu_list_count, meminfo_bytes, status_field};

/// The keys ward looks up, plus a few that real files hold next to them.
const STATUS_KEYS: &[&str] = &["Cpus_allowed_list", "Name", "State", "PPid", "VmRSS", ""];
const MEMINFO_KEYS: &[&str] = &["MemTotal", "MemFree", "HugePages_Total", ""];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // ward reads these with read_to_string: non-UTF-8 never reaches the parsers.
        return;
    };
    for key in STATUS_KEYS {
        if let Some(v) = status_field(text, key) {
            assert_eq!(v, v.trim(), "status value not trimmed");
            assert!(text.contains(v));
            let _ = cpu_list_count(v);
        }
    }
    for key in MEMINFO_KEYS {
        if meminfo_bytes(text, key).is_some() {
            assert!(text.contains(&format!("{key}:")), "value for an absent key");
        }
    }
});
