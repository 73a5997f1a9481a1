//! Keeping ward's code in memory under a cgroup memory limit (see
//! [`crate::trim`] for why): when to lock it, and the lines that say what
//! happened.

use crate::cgroup::MemoryLimit;
use crate::log::{self, Level};
use crate::trim::LockRefused;
use crate::units::bytes;

/// True when ward's code must be locked: the group has a memory limit of
/// its own or an ancestor's (the host's amount is no group that can fill
/// up while others have room).
pub fn wanted(limit: Option<&MemoryLimit>) -> bool {
    limit.is_some_and(|l| !l.source.is_host())
}

/// `code_locked` (debug): how much is locked, and why.
pub fn log_locked(locked: usize) {
    log::event(
        Level::Debug,
        "code_locked",
        &format!(
            "ward keeps its code in memory ({} locked): reading it back in from a full group would set off another OOM kill",
            bytes(locked as u64)
        ),
        &[("locked_bytes", serde_json::json!(locked))],
    );
}

/// `code_not_locked` (info, once): the lock was refused; what that risks
/// and how to allow it.
pub fn log_refused(r: &LockRefused) {
    let limit = r
        .memlock_limit
        .map(|l| format!("; RLIMIT_MEMLOCK {}", bytes(l)))
        .unwrap_or_default();
    // mlock's ENOMEM here is the memlock limit, not the memory's: musl's
    // words for it ("Out of memory") would send a reader to the wrong one.
    let why = match r.error.raw_os_error() {
        Some(libc::ENOMEM) => "more than the memlock limit allows".to_string(),
        _ => r.error.to_string(),
    };
    log::event(
        Level::Info,
        "code_not_locked",
        &format!(
            "ward cannot keep its code in memory (mlock of {}: {why}{limit}): an OOM kill that frees no memory (tmpfs) may be followed by a second one; allow it with docker run --ulimit memlock=4194304 or CAP_IPC_LOCK",
            bytes(r.bytes as u64),
        ),
        &[],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::LimitSource;

    fn limit(source: LimitSource) -> MemoryLimit {
        MemoryLimit {
            bytes: 32 << 20,
            source,
        }
    }

    #[test]
    fn a_group_limit_wants_the_lock_the_host_and_none_do_not() {
        assert!(wanted(Some(&limit(LimitSource::OwnGroup))));
        assert!(wanted(Some(&limit(LimitSource::Ancestor { path: None }))));
        assert!(!wanted(Some(&limit(LimitSource::Host {
            hidden_above: false,
        }))));
        assert!(!wanted(None));
    }
}
