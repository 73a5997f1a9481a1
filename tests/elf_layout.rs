//! ward locks its code under a memory limit without the unwind tables
//! (`trim::lock_ranges`): it stops the read-only segment at
//! `PT_GNU_EH_FRAME`, trusting that only unwind data follows. This reads
//! the section headers of the binary the tests run and checks that trust
//! for this build: every section from `.eh_frame_hdr` to the end of its
//! segment is unwind data, and `.rodata` and `.text` lie in locked ranges.

mod common;

const PT_LOAD: u32 = 1;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const PF_W: u32 = 2;
const SHF_ALLOC: u64 = 2;

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

struct Section {
    name: String,
    addr: u64,
    size: u64,
}

struct Elf {
    /// (type, flags, vaddr, memsz)
    segments: Vec<(u32, u32, u64, u64)>,
    sections: Vec<Section>,
}

/// The program and allocated section headers of a little-endian ELF64 file.
fn parse(b: &[u8]) -> Elf {
    assert_eq!(&b[..4], b"\x7fELF", "not ELF");
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    let (phoff, shoff) = (u64_at(b, 0x20) as usize, u64_at(b, 0x28) as usize);
    let (phentsize, phnum) = (u16_at(b, 0x36) as usize, u16_at(b, 0x38) as usize);
    let (shentsize, shnum) = (u16_at(b, 0x3a) as usize, u16_at(b, 0x3c) as usize);
    let shstrndx = u16_at(b, 0x3e) as usize;
    let segments = (0..phnum)
        .map(|i| {
            let p = phoff + i * phentsize;
            (
                u32_at(b, p) as u32,
                u32_at(b, p + 4) as u32,
                u64_at(b, p + 0x10),
                u64_at(b, p + 0x28),
            )
        })
        .collect();
    let sh = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(b, sh(shstrndx) + 0x18) as usize;
    let sections = (0..shnum)
        .filter(|&i| u64_at(b, sh(i) + 8) & SHF_ALLOC != 0)
        .map(|i| {
            let name_at = strtab + u32_at(b, sh(i)) as usize;
            let len = b[name_at..].iter().position(|&c| c == 0).unwrap();
            Section {
                name: String::from_utf8_lossy(&b[name_at..name_at + len]).into_owned(),
                addr: u64_at(b, sh(i) + 0x10),
                size: u64_at(b, sh(i) + 0x20),
            }
        })
        .collect();
    Elf { segments, sections }
}

#[test]
fn only_unwind_data_follows_the_unwind_header_in_wards_read_only_segment() {
    let bytes = std::fs::read(common::ward()).expect("read ward's binary");
    let elf = parse(&bytes);
    let eh = elf
        .segments
        .iter()
        .find(|s| s.0 == PT_GNU_EH_FRAME)
        .expect("a PT_GNU_EH_FRAME header")
        .2;
    let (_, _, start, memsz) = *elf
        .segments
        .iter()
        .find(|s| s.0 == PT_LOAD && s.1 & PF_W == 0 && (s.2..s.2 + s.3).contains(&eh))
        .expect("the unwind header in a read-only loaded segment");
    let end = start + memsz;
    let after: Vec<&str> = elf
        .sections
        .iter()
        .filter(|s| s.size > 0 && s.addr >= eh && s.addr < end)
        .map(|s| s.name.as_str())
        .collect();
    assert!(!after.is_empty(), "no section at the unwind header");
    for name in &after {
        assert!(
            matches!(*name, ".eh_frame_hdr" | ".eh_frame" | ".gcc_except_table"),
            "{name} lies after .eh_frame_hdr in the read-only segment, where ward's code lock leaves it out: {after:?}"
        );
    }
    // What ward needs lies below the cut or in other read-only segments.
    for needed in [".rodata", ".text"] {
        let s = elf
            .sections
            .iter()
            .find(|s| s.name == needed)
            .unwrap_or_else(|| panic!("no {needed}"));
        let locked = elf.segments.iter().any(|seg| {
            seg.0 == PT_LOAD
                && seg.1 & PF_W == 0
                && s.addr >= seg.2
                && s.addr + s.size <= if seg.2 == start { eh } else { seg.2 + seg.3 }
        });
        assert!(locked, "{needed} is not in a locked range");
    }
}
