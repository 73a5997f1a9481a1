//! Every exit code ward can return, and how a child's wait status becomes one.
//!
//! This is the only place that decides a process exit code. It never produces a
//! negative code or one above 255.

use std::collections::BTreeMap;

/// Help or version printed.
pub const OK: u8 = 0;
/// ward was called wrongly: bad option, bad value, no command.
pub const USAGE: u8 = 2;
/// ward itself failed before or while starting the child (cannot fork, cannot
/// set up signal handling). Same meaning as `docker run`'s 125.
pub const INTERNAL: u8 = 125;
/// The command was found but could not be executed (permission, bad format).
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// How the main child ended, as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildEnd {
    /// Exited by itself with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ChildEnd {
    /// The conventional shell code: the exit code, or 128+N for signal N.
    pub fn shell_code(self) -> u8 {
        match self {
            // The kernel only keeps the low 8 bits of an exit status.
            ChildEnd::Exited(code) => (code & 0xff) as u8,
            ChildEnd::Signaled(sig) => 128u8.saturating_add((sig & 0x7f) as u8),
        }
    }
}

/// `-e/--remap-exit FROM:TO` pairs, applied to the final code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitRemap {
    map: BTreeMap<u8, u8>,
}

impl ExitRemap {
    /// Adds one pair; a later pair for the same FROM wins (the command
    /// line over the variable; within one, the parser refuses a different one).
    pub fn insert(&mut self, from: u8, to: u8) {
        self.map.insert(from, to);
    }

    /// Applies the remap to a code.
    pub fn apply(&self, code: u8) -> u8 {
        self.map.get(&code).copied().unwrap_or(code)
    }

    /// True when no pair was given.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_pass_through() {
        for code in 0..=255 {
            assert_eq!(ChildEnd::Exited(code).shell_code(), code as u8);
        }
    }

    #[test]
    fn signals_become_128_plus_n() {
        assert_eq!(ChildEnd::Signaled(9).shell_code(), 137);
        assert_eq!(ChildEnd::Signaled(15).shell_code(), 143);
        assert_eq!(ChildEnd::Signaled(64).shell_code(), 192);
    }

    #[test]
    fn remap_applies_only_to_listed_codes() {
        let mut remap = ExitRemap::default();
        remap.insert(143, 0);
        assert_eq!(remap.apply(143), 0);
        assert_eq!(remap.apply(137), 137);
        remap.insert(143, 3);
        assert_eq!(remap.apply(143), 3);
    }

    #[test]
    fn own_codes_are_distinct() {
        let codes = [USAGE, INTERNAL, NOT_EXECUTABLE, NOT_FOUND];
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
