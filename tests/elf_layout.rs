//! ward locks its code under a memory limit without the unwind tables
//! (`trim::lock_ranges`): it stops the read-only segment at
//! `PT_GNU_EH_FRAME`, trusting that only unwind data follows. This reads
//! the section headers of the binary the tests run and checks that trust
//! for this build: every section from `.eh_frame_hdr` to the end of its
//! segment is unwind data, and `.rodata` and `.text` lie in locked ranges.

mod common;

use common::elf::{PF_W, PT_GNU_EH_FRAME, PT_LOAD, parse};

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
