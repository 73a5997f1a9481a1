//! Who gets signalled when the main child is gone: as PID 1, everything in the
//! namespace (`kill(-1)`); as a subreaper, only ward's own descendants, found
//! from /proc parentage, never unrelated processes of the host.

use std::path::Path;

/// Sends `sig` to every other process ward is responsible for; returns how
/// many were signalled (as PID 1: how many existed just before).
pub fn signal_rest(is_pid1: bool, self_pid: i32, sig: i32, proc_root: &Path) -> usize {
    // An unreadable /proc leaves the list empty: as PID 1 kill(-1) still
    // reaches everyone; as a subreaper the grace period's SIGKILL retries.
    let targets = crate::procs::descendants(proc_root, self_pid).unwrap_or_default();
    if is_pid1 {
        // SAFETY: kill(-1) from PID 1 of a namespace reaches every process in
        // it except PID 1 itself.
        unsafe { libc::kill(-1, sig) };
    } else {
        for &pid in &targets {
            // SAFETY: plain kill(2) on a descendant found just now.
            unsafe { libc::kill(pid, sig) };
        }
    }
    targets.len()
}
