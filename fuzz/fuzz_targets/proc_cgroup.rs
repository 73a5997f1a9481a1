//! `/proc/self/cgroup`: `cgroup::parse::proc_cgroup` and the path arithmetic
//! `cgroup::resolve::relative_to_mount` that maps its paths under a mount's
//! root. Paths are whatever the runtime named the groups, including `/..`
//! prefixes when the process sits outside its cgroup namespace.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::cgroup::Placement;
use ward::cgroup::parse::proc_cgroup;
use ward::cgroup::resolve::relative_to_mount;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        // ward reads the file with read_to_string: non-UTF-8 never gets here.
        return;
    };
    // Bounded so a long input stays linear: each line against the first few.
    let lines: Vec<_> = proc_cgroup(text).collect();
    for line in &lines {
        assert!(text.contains(line.path));
        let _ = (line.has("memory"), line.has(""), line.is_unified());
        for root in lines.iter().take(4) {
            let (rest, placement) = relative_to_mount(root.path, line.path);
            if placement == Placement::Exact {
                assert!(!rest.contains(&".."), "exact placement above the root");
                assert!(rest.iter().all(|c| !c.is_empty() && !c.contains('/')));
            } else {
                assert!(rest.is_empty());
            }
        }
    }
});
