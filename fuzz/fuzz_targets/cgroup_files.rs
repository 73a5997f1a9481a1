//! The one-value and flat-keyed cgroup interface files, every parser in
//! `cgroup::parse` that reads them: `single_u64`, `max_or_u64`, `flat_keyed`,
//! `flat_key`, `pressure`, `cpu_max`, `v1_cfs_quota`, `v1_memory_limit`,
//! `cpu_list_count`. Each input goes through all of them: they are cheap, and
//! one corpus of real files serves them all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::cgroup::parse::{
    V1_UNLIMITED_THRESHOLD, cpu_list_count, cpu_max, flat_key, flat_keyed, max_or_u64, pressure,
    single_u64, v1_cfs_quota, v1_memory_limit,
};

/// Keys ward looks up in flat-keyed files (v1.rs, v2.rs, pids.rs, limits.rs).
const KEYS: &[&str] = &[
    "max",
    "oom_kill",
    "under_oom",
    "inactive_file",
    "total_inactive_file",
    "hierarchical_memory_limit",
    "nr_periods",
    "throttled_usec",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // ward reads cgroup files as UTF-8 and counts a failure: never parsed.
        return;
    };
    if single_u64(text).is_some() {
        assert!(!text.trim().is_empty());
        assert_eq!(max_or_u64(text), Some(single_u64(text)));
    }
    let _ = max_or_u64(text);

    // flat_key is the first value flat_keyed reports for that key.
    let mut pairs = Vec::new();
    flat_keyed(text, |k, v| pairs.push((k, v)));
    for key in KEYS {
        let first = pairs.iter().find(|(k, _)| k == key).map(|&(_, v)| v);
        assert_eq!(flat_key(text, key), first, "{key}");
    }
    for (k, _) in &pairs {
        assert!(!k.is_empty() && text.contains(k));
    }

    let _ = pressure(text);

    if let Some(q) = cpu_max(text)
        && let Some(cores) = q.cores()
    {
        assert!(
            cores.is_finite() && cores >= 0.0,
            "{q:?} gives {cores} cores"
        );
    }
    let _ = v1_cfs_quota(text);
    if let Some(Some(limit)) = v1_memory_limit(text) {
        assert!(limit < V1_UNLIMITED_THRESHOLD);
    }
    if let Some(n) = cpu_list_count(text) {
        // Every comma-separated item counts at least one CPU.
        let items = text.trim().split(',').filter(|s| !s.is_empty()).count();
        assert_eq!(n == 0, text.trim().is_empty());
        assert!(n as usize >= items, "{n} CPUs from {items} items");
    }
});
