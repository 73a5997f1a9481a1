//! `/proc/PID/stat` lines: `procs::stat::parse_stat` and the OOM victim
//! helper `watch::sigkilled_zombie_name`. Both read text the kernel writes but
//! whose comm field any process chooses (prctl PR_SET_NAME: spaces,
//! parentheses, digits, anything but NUL).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::procs::stat::parse_stat;
use ward::watch::sigkilled_zombie_name;

/// True when `part` is a slice of `whole` (same memory, not just equal text).
fn borrowed_from(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fuzz_target!(|data: &[u8]| {
    // ward reads stat files with from_utf8_lossy (procs/table.rs), so any byte
    // string becomes exactly this text.
    let text = String::from_utf8_lossy(data);
    if let Ok(stat) = parse_stat(&text) {
        assert!(borrowed_from(stat.comm, &text), "comm not from the line");
        // comm sits between the first " (" and the last ')'.
        let open = text.find(" (").expect("parsed without ' ('");
        let close = text.rfind(')').expect("parsed without ')'");
        assert_eq!(stat.comm, &text[open + 2..close]);
        assert!(stat.state.is_ascii());
        assert_eq!(stat.is_zombie(), stat.state == 'Z');
    }
    if let Some(name) = sigkilled_zombie_name(&text) {
        assert!(
            text.contains(name.as_str()),
            "zombie name not from the line"
        );
    }
});
