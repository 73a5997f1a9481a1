//! A process's name kept without the heap.
//!
//! The watch copies process names out of each census (the largest
//! processes, the OOM candidates, parents that hold zombies), and the
//! lists they sit in grow and shrink with every look. A `String` per name
//! made a census during a burst of processes allocate and free small
//! blocks, and the heap it left behind stayed larger than before the
//! burst. [`ProcName`] holds the name inline, so these lists only ever
//! need their own room.

use std::fmt;
use std::ops::Deref;

/// The longest name kept, in bytes. The kernel's own limit for what
/// `/proc/PID/stat` shows is 63 (a workqueue worker's name; a task's
/// `comm` is at most 15).
pub const MAX_NAME: usize = 63;

/// What replaces the tail of a longer name (one not from the kernel, or
/// one whose invalid bytes were each replaced by three).
const CUT: &str = "…";

/// A process name of at most [`MAX_NAME`] bytes, inline. Reads as a
/// `&str`; longer text is cut at a character boundary and ends in `…`,
/// so a cut name never passes for a whole one.
#[derive(Clone, Copy)]
pub struct ProcName {
    len: u8,
    bytes: [u8; MAX_NAME],
}

impl ProcName {
    /// The empty name.
    pub const EMPTY: ProcName = ProcName {
        len: 0,
        bytes: [0; MAX_NAME],
    };

    /// `name`, cut to fit if longer than [`MAX_NAME`] bytes.
    pub fn new(name: &str) -> ProcName {
        let mut n = ProcName::EMPTY;
        n.set(name);
        n
    }

    /// Replaces the name with `name`, cut to fit.
    pub fn set(&mut self, name: &str) {
        if name.len() <= MAX_NAME {
            self.bytes[..name.len()].copy_from_slice(name.as_bytes());
            self.len = name.len() as u8;
            return;
        }
        let mut keep = MAX_NAME - CUT.len();
        while !name.is_char_boundary(keep) {
            keep -= 1;
        }
        self.bytes[..keep].copy_from_slice(&name.as_bytes()[..keep]);
        self.bytes[keep..keep + CUT.len()].copy_from_slice(CUT.as_bytes());
        self.len = (keep + CUT.len()) as u8;
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only `set` writes the bytes: a whole str or one cut at a
        // character boundary, then `CUT`.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl Default for ProcName {
    fn default() -> ProcName {
        ProcName::EMPTY
    }
}

impl Deref for ProcName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

// By the name alone: the bytes past it are what an earlier, longer name
// left there.
impl PartialEq for ProcName {
    fn eq(&self, other: &ProcName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ProcName {}

impl std::hash::Hash for ProcName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl From<&str> for ProcName {
    fn from(name: &str) -> ProcName {
        ProcName::new(name)
    }
}

impl PartialEq<str> for ProcName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ProcName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for ProcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ProcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for ProcName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_name_is_kept_whole() {
        assert_eq!(ProcName::new("ward-workload").as_str(), "ward-workload");
        let worker = "kworker/u8:1-events_unbound_with_a_long_workqueue_name_abcdefgh";
        assert_eq!(worker.len(), MAX_NAME);
        assert_eq!(ProcName::new(worker).as_str(), worker);
        assert_eq!(ProcName::default().as_str(), "");
    }

    #[test]
    fn a_longer_name_is_cut_at_a_character_and_marked() {
        let long = "x".repeat(70);
        let n = ProcName::new(&long);
        assert_eq!(n.len(), MAX_NAME);
        assert!(n.ends_with('…'));
        assert!(long.starts_with(n.trim_end_matches('…')));
        // 15 invalid bytes, each replaced by U+FFFD (3 bytes): 45 bytes fit.
        let lossy = "\u{fffd}".repeat(15);
        assert_eq!(ProcName::new(&lossy).as_str(), lossy);
        // 22 of them (66 bytes) do not: cut between two, never inside one.
        let n = ProcName::new(&"\u{fffd}".repeat(22));
        assert_eq!(n.as_str(), format!("{}…", "\u{fffd}".repeat(20)));
    }

    #[test]
    fn set_replaces_the_whole_name() {
        let mut n = ProcName::new("a-longer-name");
        n.set("sh");
        assert_eq!(n, "sh");
        // Equal to the same name made anew, whatever was there before.
        assert_eq!(n, ProcName::new("sh"));
        assert_eq!(format!("{n} {n:?}"), "sh \"sh\"");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"sh\"");
    }
}
