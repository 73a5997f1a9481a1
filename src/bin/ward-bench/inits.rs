//! The inits under test: ward and its peers, where they are, how to invoke
//! them, and what their binaries are (size, static or not, stripped or not).
//!
//! Finds binaries on PATH; installs nothing. A missing peer is reported with
//! the package that provides it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One init, ready to be put in front of a command.
#[derive(Debug, Clone)]
pub struct Init {
    /// Name in tables: `ward`, `tini`, `tini-static`, `dumb-init`, `catatonit`.
    pub name: String,
    /// The binary.
    pub path: PathBuf,
    /// The Debian package it comes from (for the report), or "this tree".
    pub package: String,
}

impl Init {
    /// `INIT [OPTIONS] --`, to be followed by the command.
    pub fn argv(&self, options: &[&str]) -> Vec<OsString> {
        let mut v = vec![self.path.clone().into_os_string()];
        v.extend(options.iter().map(OsString::from));
        v.push("--".into());
        v
    }
}

/// ward's name in tables.
pub const WARD: &str = "ward";

/// The peers, by binary name, and the Debian package that has each.
pub const PEERS: &[(&str, &str)] = &[
    ("tini", "tini"),
    ("tini-static", "tini"),
    ("dumb-init", "dumb-init"),
    ("catatonit", "catatonit"),
];

/// A binary on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The inits found (ward first) and a line for each peer that was not.
pub fn discover(ward: &Path) -> (Vec<Init>, Vec<String>) {
    let mut found = vec![Init {
        name: WARD.into(),
        path: ward.to_path_buf(),
        package: "this tree".into(),
    }];
    let mut missing = Vec::new();
    for &(name, package) in PEERS {
        match which(name) {
            Some(path) => found.push(Init {
                name: name.into(),
                path,
                package: package.into(),
            }),
            None => missing.push(format!("{name} not found: apt-get install {package}")),
        }
    }
    (found, missing)
}

/// What an ELF file is, as far as size comparisons care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfFacts {
    /// It has a PT_INTERP: it needs ld.so and shared libraries at run time.
    pub dynamic: bool,
    /// It still has a symbol table (SHT_SYMTAB).
    pub has_symtab: bool,
}

/// Reads the program and section headers of a little-endian ELF64 file
/// (the only kind on x86_64); `None` for anything else.
pub fn elf_facts(bytes: &[u8]) -> Option<ElfFacts> {
    if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(bytes.get(o..o + 8)?.try_into().ok()?));
    let (phoff, shoff) = (u64_at(0x20)? as usize, u64_at(0x28)? as usize);
    let (phentsize, phnum) = (u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    let (shentsize, shnum) = (u16_at(0x3a)? as usize, u16_at(0x3c)? as usize);
    const PT_INTERP: u32 = 3;
    const SHT_SYMTAB: u32 = 2;
    let mut dynamic = false;
    for i in 0..phnum {
        dynamic |= u32_at(phoff + i * phentsize)? == PT_INTERP;
    }
    let mut has_symtab = false;
    for i in 0..shnum {
        has_symtab |= u32_at(shoff + i * shentsize + 4)? == SHT_SYMTAB;
    }
    Some(ElfFacts {
        dynamic,
        has_symtab,
    })
}

/// Writes out and drops each init's own binary from the page cache, so that
/// every one is read in again by its next exec: where a binary's cached
/// pages came from matters (a freshly written copy, as a build leaves it,
/// started up to 81 µs sooner on the benchmark VM). Returns the binaries
/// that could not be dropped, with why.
pub fn read_in_alike(inits: &[Init]) -> Vec<String> {
    inits
        .iter()
        .filter_map(|i| {
            uncache(&i.path)
                .err()
                .map(|e| format!("{} ({e})", i.path.display()))
        })
        .collect()
}

/// Writes out and drops `path`'s pages from the page cache (dirty pages
/// cannot be dropped, hence the sync first).
fn uncache(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let f = std::fs::File::open(path)?;
    f.sync_data()?;
    // SAFETY: an advice on an open fd; it reads nothing of ours.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_facts_of_real_binaries() {
        // The test binary itself: an x86_64 ELF, static in this tree's config.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(elf_facts(&me).is_some());
        assert_eq!(elf_facts(b"#!/bin/sh\n"), None);
        assert_eq!(elf_facts(b"\x7fELF"), None);
    }

    #[test]
    fn argv_ends_with_double_dash() {
        let i = Init {
            name: "tini".into(),
            path: "/usr/bin/tini".into(),
            package: "tini".into(),
        };
        assert_eq!(i.argv(&["-s"]), vec!["/usr/bin/tini", "-s", "--"]);
    }
}
