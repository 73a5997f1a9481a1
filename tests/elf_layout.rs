//! ward locks its code under a memory limit without the unwind tables
//! (`trim::lock_ranges`): it stops the read-only segment at
//! `PT_GNU_EH_FRAME`, trusting that only unwind data follows. This reads
//! the section headers of the binary the tests run and checks that trust
//! for this build: every section from `.eh_frame_hdr` to the end of its
//! segment is unwind data, and `.rodata` and `.text` lie in locked ranges.

mod common;

use common::elf::{PF_W, PT_GNU_EH_FRAME, PT_LOAD, functions, parse, section_names};

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

#[test]
fn no_section_that_only_a_linker_reads_is_left_in_the_binary() {
    let bytes = std::fs::read(common::ward()).expect("read ward's binary");
    let names = section_names(&bytes);
    assert!(names.iter().any(|n| n == ".text"), "{names:?}");
    let left: Vec<&String> = names
        .iter()
        .filter(|n| *n == ".comment" || n.starts_with(".gnu.warning"))
        .collect();
    assert!(left.is_empty(), "link/discard.ld was not applied: {left:?}");
}

/// The binary the tests run is the dev build, which keeps its symbols: the
/// names it shares with the release build (std's, glibc's; ward's own carry
/// a hash of the profile) must sit together at the start of `.text`, not
/// across it. Spread out, they span about nine times their size.
#[test]
fn the_functions_of_the_symbol_order_file_come_first_in_text() {
    let bytes = std::fs::read(common::ward()).expect("read ward's binary");
    let text = parse(&bytes)
        .sections
        .into_iter()
        .find(|s| s.name == ".text")
        .expect("a .text section");
    let all = functions(&bytes);
    // A stripped binary (cargo test --release) has no names to check.
    if !common::require(
        "a ward binary with its symbol table (the dev build)",
        !all.is_empty(),
        "the_functions_of_the_symbol_order_file_come_first_in_text",
    ) {
        return;
    }
    let mut count = std::collections::HashMap::new();
    for f in &all {
        *count.entry(f.name.as_str()).or_insert(0) += 1;
    }
    let order = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/link/symbol-order.txt"
    ))
    .expect("read link/symbol-order.txt");
    let listed: std::collections::HashSet<&str> = order.lines().collect();
    let found: Vec<&common::elf::Function> = all
        .iter()
        .filter(|f| listed.contains(f.name.as_str()) && count[f.name.as_str()] == 1)
        .collect();
    assert!(
        found.len() >= 100,
        "only {} of the file's names are in the binary",
        found.len()
    );
    let size: u64 = found.iter().map(|f| f.size).sum();
    let span = found.iter().map(|f| f.addr + f.size).max().unwrap() - text.addr;
    assert!(
        span <= 3 * size,
        "the {} ordered functions ({size} bytes) end {span} bytes into .text: the order was not applied",
        found.len()
    );
}
