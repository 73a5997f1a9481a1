//! Option values, from flags and `WARD_*` variables alike: the parsers in
//! `cli::values` (durations, `SRC:DST` rewrites, `FROM:TO` exit remaps,
//! percentages, counts, booleans) and `signame::parse` / `signame::name`.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ward::cli::values::{
    boolean, count, pdeathsig, duration, emf_namespace, percent, remap_pair, rewrite_pair, stop_signal,
};
use ward::signame;

fn valid_signal(n: i32) -> bool {
    (1..=signame::SIG_MAX).contains(&n)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // Flags and variables that are not UTF-8 are refused before these parsers.
        return;
    };
    if let Ok(d) = duration(text) {
        assert!(d <= Duration::from_secs(24 * 3600), "{text:?} gave {d:?}");
    }
    if let Ok(n) = signame::parse(text) {
        assert!(valid_signal(n), "{text:?} gave signal {n}");
        // The number always parses back; the name does too, except for 32 and
        // 33, which glibc reserves and `name` prints as "signal 32".
        assert_eq!(signame::parse(&n.to_string()), Ok(n));
        let name = signame::name(n);
        if !(32..=33).contains(&n) {
            assert_eq!(signame::parse(&name), Ok(n), "{name} does not parse back");
        }
    }
    if let Ok((src, dst)) = rewrite_pair(text) {
        assert!(valid_signal(src) && !matches!(src, libc::SIGKILL | libc::SIGSTOP));
        assert!(dst == 0 || valid_signal(dst));
    }
    let _ = remap_pair(text);
    if let Ok(p) = percent(text) {
        assert!(p > 0.0 && p <= 100.0, "{text:?} gave {p}%");
    }
    if let Ok(n) = count(text, 4_194_304) {
        assert!((1..=4_194_304).contains(&n), "{text:?} gave {n}");
    }
    if let Ok(s) = stop_signal(text) {
        assert!(valid_signal(s) && !matches!(s, libc::SIGKILL | libc::SIGSTOP | libc::SIGCHLD));
    }
    if let Ok(s) = pdeathsig(text) {
        assert!(valid_signal(s) && !matches!(s, libc::SIGSTOP | libc::SIGCHLD));
    }
    if let Ok(ns) = emf_namespace(text) {
        assert!(!ns.is_empty() && ns.len() <= 255);
    }
    let _ = boolean(text);
});
