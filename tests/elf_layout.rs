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

/// The shipped binary, laid out as the order file says. It is stripped, so
/// its names come from the release link's map (`ward.map` beside it,
/// build.rs). The order file is written from a build that keeps its symbols
/// (`scripts/symbol-order`); ward's own names carry a hash of the profile,
/// so that build and the release build must share one profile, or none of
/// ward's own functions is ordered (measured: idle RSS 440 KiB against 388).
#[test]
fn the_release_build_puts_wards_own_ordered_functions_first_in_text() {
    let test = "the_release_build_puts_wards_own_ordered_functions_first_in_text";
    let dev = std::path::Path::new(common::ward());
    let Some(release) = dev
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("release"))
    else {
        panic!("{test}: no directory above {}", dev.display());
    };
    let map = release.join("ward.map");
    if !common::require(
        "the release build's link map (cargo build --release, as scripts/test does)",
        map.is_file(),
        test,
    ) {
        return;
    }
    let shipped = std::fs::read(release.join("ward")).expect("read the release binary");
    let shipped_text = parse(&shipped)
        .sections
        .into_iter()
        .find(|s| s.name == ".text")
        .expect("a .text section in the release binary");
    let text = std::fs::read_to_string(&map).expect("read ward.map");
    let order = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/link/symbol-order.txt"
    ))
    .expect("read link/symbol-order.txt");
    let own: std::collections::HashSet<&str> =
        order.lines().filter(|n| n.contains("4ward")).collect();
    assert!(
        own.len() >= 50,
        "only {} of ward's own names in the order file",
        own.len()
    );
    let (mut text_start, mut found) = (None, Vec::new());
    for line in text.lines() {
        // "VMA LMA SIZE ALIGN .text" for the output section, then
        // "VMA LMA SIZE ALIGN object:(.text.NAME)" for each function.
        let f: Vec<&str> = line.split_whitespace().collect();
        let [vma, _, size, _, what] = f[..] else {
            continue;
        };
        let (Ok(vma), Ok(size)) = (u64::from_str_radix(vma, 16), u64::from_str_radix(size, 16))
        else {
            continue;
        };
        if what == ".text" {
            // A map is written only when cargo links: after a build with
            // another profile, the binary cargo copies back is not the map's.
            assert_eq!(
                (vma, size),
                (shipped_text.addr, shipped_text.size),
                "{} is not the map of the release binary beside it (.text's address and size differ); \
                 `touch build.rs` and build again",
                map.display()
            );
            text_start = Some(vma);
        } else if let Some(name) = what
            .rsplit_once(":(.text.")
            .and_then(|(_, n)| n.strip_suffix(')'))
            && own.contains(name)
        {
            found.push((vma, size));
        }
    }
    let text_start = text_start.expect("a .text section in the map");
    assert!(
        found.len() * 2 >= own.len(),
        "only {} of the order file's {} names of ward's own are in the release binary: \
         it was built with another profile than the order file's build",
        found.len(),
        own.len()
    );
    let size: u64 = found.iter().map(|f| f.1).sum();
    let span = found.iter().map(|f| f.0 + f.1).max().unwrap() - text_start;
    // Measured: 2.6 times their size with the hot and start-up code of std
    // and glibc among them; in link order, 8.7 (across all of `.text`).
    assert!(
        span <= 4 * size,
        "ward's {} ordered functions ({size} bytes) end {span} bytes into .text",
        found.len()
    );
}
