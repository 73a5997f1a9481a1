//! ward's own binary's section headers: where the link put the sections
//! that ward's code lock leaves out (`link/backtrace.ld`). The program
//! headers are in memory (`AT_PHDR`); the section headers are only in the
//! file, read here from a path (`/proc/self/exe` for ward itself).
//!
//! The parsers take bytes and are tested on headers built in the tests;
//! [`sections_named`] is the reading around them.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Little-endian ELF64 header size, and where its section fields are.
const EHDR_SIZE: usize = 64;
/// Section header entry size of ELF64.
const SHDR_SIZE: usize = 64;
/// More section headers than any link of ward has (18 today); a file that
/// claims more is not read further.
const MOST_SECTIONS: usize = 256;
/// The longest section name table read (ward's is 161 bytes).
const MOST_NAMES: usize = 4096;

/// Where a file's section header table and its name table are, from its
/// ELF header: `None` for anything but a little-endian ELF64 file with
/// 64-byte entries and at most [`MOST_SECTIONS`] of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionTable {
    /// `e_shoff`.
    pub offset: u64,
    /// `e_shnum`.
    pub count: usize,
    /// `e_shstrndx`.
    pub names_index: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// [`SectionTable`] from the first [`EHDR_SIZE`] bytes of a file.
pub fn section_table(header: &[u8]) -> Option<SectionTable> {
    if header.get(..4)? != b"\x7fELF" || header.get(4)? != &2 || header.get(5)? != &1 {
        return None;
    }
    let offset = u64_at(header, 0x28)?;
    let entry = usize::from(u16_at(header, 0x3a)?);
    let count = usize::from(u16_at(header, 0x3c)?);
    let names_index = usize::from(u16_at(header, 0x3e)?);
    (offset > 0 && entry == SHDR_SIZE && count <= MOST_SECTIONS && names_index < count).then_some(
        SectionTable {
            offset,
            count,
            names_index,
        },
    )
}

/// One section header's name offset, address, file offset and size.
fn header(table: &[u8], index: usize) -> Option<(u32, u64, u64, u64)> {
    let at = index.checked_mul(SHDR_SIZE)?;
    Some((
        u32_at(table, at)?,
        u64_at(table, at + 0x10)?,
        u64_at(table, at + 0x18)?,
        u64_at(table, at + 0x20)?,
    ))
}

/// The file offset and length of the name table, from the section header
/// table's bytes.
pub fn names_at(table: &[u8], t: SectionTable) -> Option<(u64, usize)> {
    let (_, _, offset, size) = header(table, t.names_index)?;
    let size = usize::try_from(size).ok()?;
    (size <= MOST_NAMES).then_some((offset, size))
}

/// The address ranges of the non-empty sections whose names are in
/// `wanted`, from the section header table's and the name table's bytes.
pub fn ranges_named(table: &[u8], names: &[u8], wanted: &[&str]) -> Vec<Range<u64>> {
    (0..table.len() / SHDR_SIZE)
        .filter_map(|i| header(table, i))
        .filter(|&(_, addr, _, size)| addr > 0 && size > 0)
        .filter_map(|(name, addr, _, size)| {
            let name = names.get(usize::try_from(name).ok()?..)?;
            let name = &name[..name.iter().position(|&c| c == 0)?];
            wanted
                .iter()
                .any(|w| w.as_bytes() == name)
                .then_some(addr..addr.checked_add(size)?)
        })
        .collect()
}

/// The address ranges of the file's sections named in `wanted`; empty
/// when the file cannot be read or is not what [`section_table`] takes.
pub fn sections_named(file: &Path, wanted: &[&str]) -> Vec<Range<u64>> {
    read_sections_named(file, wanted).unwrap_or_default()
}

fn read_sections_named(file: &Path, wanted: &[&str]) -> Option<Vec<Range<u64>>> {
    let f = std::fs::File::open(file).ok()?;
    let mut header = [0u8; EHDR_SIZE];
    f.read_exact_at(&mut header, 0).ok()?;
    let t = section_table(&header)?;
    let mut table = vec![0u8; t.count * SHDR_SIZE];
    f.read_exact_at(&mut table, t.offset).ok()?;
    let (at, len) = names_at(&table, t)?;
    let mut names = vec![0u8; len];
    f.read_exact_at(&mut names, at).ok()?;
    Some(ranges_named(&table, &names, wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header whose section table is at `offset`, `count` entries,
    /// names in section `names_index`.
    fn ehdr(offset: u64, count: u16, names_index: u16) -> Vec<u8> {
        let mut h = vec![0u8; EHDR_SIZE];
        h[..6].copy_from_slice(b"\x7fELF\x02\x01");
        h[0x28..0x30].copy_from_slice(&offset.to_le_bytes());
        h[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        h[0x3c..0x3e].copy_from_slice(&count.to_le_bytes());
        h[0x3e..0x40].copy_from_slice(&names_index.to_le_bytes());
        h
    }

    fn shdr(name: u32, addr: u64, offset: u64, size: u64) -> Vec<u8> {
        let mut s = vec![0u8; SHDR_SIZE];
        s[..4].copy_from_slice(&name.to_le_bytes());
        s[0x10..0x18].copy_from_slice(&addr.to_le_bytes());
        s[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
        s[0x20..0x28].copy_from_slice(&size.to_le_bytes());
        s
    }

    const NAMES: &[u8] = b"\0.text\0.text.backtrace\0.rodata.backtrace\0.shstrtab\0";

    /// ward's own layout, in short: null, .text, .text.backtrace, an empty
    /// .rodata.backtrace, the name table (not loaded).
    fn table() -> Vec<u8> {
        [
            shdr(0, 0, 0, 0),
            shdr(1, 0x21f930, 0x1e930, 0x7e5c8),
            shdr(7, 0x29df00, 0x9cf00, 0x34f6c),
            shdr(23, 0x2192a0, 0x192a0, 0),
            shdr(41, 0, 0xd2e80, NAMES.len() as u64),
        ]
        .concat()
    }

    #[test]
    fn the_table_is_found_from_the_header() {
        assert_eq!(
            section_table(&ehdr(0xd2f28, 5, 4)),
            Some(SectionTable {
                offset: 0xd2f28,
                count: 5,
                names_index: 4
            })
        );
        assert_eq!(
            names_at(&table(), section_table(&ehdr(1, 5, 4)).unwrap()),
            Some((0xd2e80, NAMES.len()))
        );
    }

    #[test]
    fn only_the_named_loaded_non_empty_sections() {
        let r = ranges_named(
            &table(),
            NAMES,
            &[".text.backtrace", ".rodata.backtrace", ".shstrtab"],
        );
        assert_eq!(r, vec![0x29df00..0x29df00 + 0x34f6c]);
        assert!(ranges_named(&table(), NAMES, &[".text.cold"]).is_empty());
        // ".text" is not a prefix match of ".text.backtrace".
        assert_eq!(
            ranges_named(&table(), NAMES, &[".text"]),
            vec![0x21f930..0x21f930 + 0x7e5c8]
        );
    }

    #[test]
    fn what_is_not_an_elf64_little_endian_table_gives_nothing() {
        let mut h = ehdr(0x100, 5, 4);
        h[4] = 1;
        assert_eq!(section_table(&h), None);
        let mut h = ehdr(0x100, 5, 4);
        h[0x3a] = 40;
        assert_eq!(section_table(&h), None);
        assert_eq!(section_table(&ehdr(0x100, 5, 5)), None);
        assert_eq!(section_table(&ehdr(0, 5, 4)), None);
        assert_eq!(section_table(&ehdr(0x100, 300, 4)), None);
        assert_eq!(section_table(&[0x7f, b'E']), None);
        // A name table too long, a name off its end, a name with no end.
        let t = section_table(&ehdr(1, 5, 4)).unwrap();
        let mut long = table();
        long.truncate(4 * SHDR_SIZE);
        long.extend(shdr(41, 0, 0, 1 << 20));
        assert_eq!(names_at(&long, t), None);
        assert!(ranges_named(&table(), &NAMES[..10], &[".text.backtrace"]).is_empty());
        assert!(ranges_named(&table()[..100], NAMES, &[".text"]).is_empty());
    }

    #[test]
    fn the_test_binary_itself_is_read() {
        // This test's own file: a .text section, wherever the link put it
        // (a PIE's addresses are relative to its load address).
        let exe = std::env::current_exe().unwrap();
        let r = sections_named(&exe, &[".text"]);
        assert_eq!(r.len(), 1, "{r:x?}");
        assert!(r[0].end - r[0].start > 4096, "{r:x?}");
        assert!(sections_named(Path::new("/nonexistent/ward"), &[".text"]).is_empty());
        assert!(sections_named(Path::new("/proc/self/status"), &[".text"]).is_empty());
    }
}
