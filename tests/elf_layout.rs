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

/// `link/symbol-order.txt`.
fn order_file() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/link/symbol-order.txt"
    ))
    .expect("read link/symbol-order.txt")
}

/// The functions of `bytes`' symbol table, or `None` (after saying so) for
/// a stripped binary (cargo test --release), which has no names to check.
fn named_functions(bytes: &[u8], test: &str) -> Option<Vec<common::elf::Function>> {
    let all = functions(bytes);
    common::require(
        "a ward binary with its symbol table (the dev build)",
        !all.is_empty(),
        test,
    )
    .then_some(all)
}

/// The release build's directory, beside the dev build the tests run.
fn release_dir(test: &str) -> std::path::PathBuf {
    let dev = std::path::Path::new(common::ward());
    dev.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("release"))
        .unwrap_or_else(|| panic!("{test}: no directory above {}", dev.display()))
}

/// The crate a v0-mangled name's path starts from (`_RNvNtCs..._5gimli4read...`
/// gives "gimli"); `None` for other names. A closure's namespace tag is a
/// `C` too, but never one followed by a length.
fn root_crate(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("_R")?;
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'C' {
            let mut j = i + 1;
            if b.get(j) == Some(&b's') {
                while j < b.len() && b[j] != b'_' {
                    j += 1;
                }
                j += 1;
            }
            let digits = b[j.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits > 0 {
                let len: usize = rest[j..j + digits].parse().ok()?;
                return rest.get(j + digits..j + digits + len);
            }
        }
        i += 1;
    }
    None
}

/// A name whose code only a backtrace runs: rooted in std's symbolizer's
/// crates, or in std's `backtrace_rs`.
fn backtrace_only(name: &str) -> bool {
    matches!(
        root_crate(name),
        Some("gimli" | "addr2line" | "miniz_oxide" | "rustc_demangle")
    ) || root_crate(name) == Some("std") && name.contains("_3std12backtrace_rs")
}

#[test]
fn root_crates_are_read_from_v0_names() {
    for (name, root) in [
        (
            "_RNvNtNtCs4dxIg2ZLmWm_11miniz_oxide7inflate4core10decompress",
            Some("miniz_oxide"),
        ),
        (
            "_RNvMs4_NtNtCs8w4ax0dKNtV_5gimli4read5dwarfINtB5_4UnitE3new",
            Some("gimli"),
        ),
        (
            "_RNCNvNtNtCsaz6eC2DG7lh_3std3sys9backtrace10__print_fmts_0B7_",
            Some("std"),
        ),
        (
            "_RNvMs3_NtCs2Nb3gJ4iU0I_5alloc7raw_vecINtB5_6RawVecINtNtNtCs8w4ax0dKNtV_5gimli4read4unitE8grow_one",
            Some("alloc"),
        ),
        ("_ZN4ward3cli5parse9from_args17hdb9c1e102856dd62E", None),
    ] {
        assert_eq!(root_crate(name), root, "{name}");
    }
    assert!(backtrace_only(
        "_RNvMs_NtNtCsaz6eC2DG7lh_3std12backtrace_rs9symbolizeNtB4_6Symbol4name"
    ));
    assert!(!backtrace_only(
        "_RNvMs4_NtCs2Nb3gJ4iU0I_5alloc7raw_vecNtB5_11RawVecInner14grow_amortizedCs8w4ax0dKNtV_5gimli"
    ));
}

/// What only a backtrace runs (std's symbolizer, the unwinder) is linked
/// into sections of its own after ward's code (`link/backtrace.ld`), which
/// ward's code lock leaves out (`ward::trim::NOT_LOCKED`): all of it, and
/// nothing the order file names (what ward's loops were seen to run).
#[test]
fn what_only_a_backtrace_runs_is_in_sections_of_its_own() {
    let bytes = std::fs::read(common::ward()).expect("read ward's binary");
    let elf = parse(&bytes);
    let cold = elf
        .sections
        .iter()
        .find(|s| s.name == ".text.backtrace")
        .expect("a .text.backtrace section: link/backtrace.ld was not applied");
    // 160 KiB in the release build, more in the dev build.
    assert!(cold.size >= 128 * 1024, "only {} bytes", cold.size);
    assert!(
        elf.sections.iter().any(|s| s.name == ".rodata.backtrace"),
        "no .rodata.backtrace"
    );
    let Some(all) = named_functions(
        &bytes,
        "what_only_a_backtrace_runs_is_in_sections_of_its_own",
    ) else {
        return;
    };
    let order = order_file();
    let listed: std::collections::HashSet<&str> = order.lines().collect();
    let inside = |f: &common::elf::Function| (cold.addr..cold.addr + cold.size).contains(&f.addr);
    // The locked `.shared` section also takes some of the symbolizer's own
    // functions, those with alloc's or core's types among their generics.
    let shared = elf
        .sections
        .iter()
        .find(|s| s.name == ".text.shared")
        .map(|s| s.addr..s.addr + s.size)
        .unwrap_or(0..0);
    let strays: Vec<&str> = all
        .iter()
        .filter(|f| inside(f) && (listed.contains(f.name.as_str()) || f.name.contains("4ward")))
        .map(|f| f.name.as_str())
        .take(10)
        .collect();
    assert!(strays.is_empty(), "in .text.backtrace: {strays:?}");
    let left: Vec<&str> = all
        .iter()
        .filter(|f| !inside(f) && !shared.contains(&f.addr) && backtrace_only(&f.name))
        .map(|f| f.name.as_str())
        .take(10)
        .collect();
    assert!(left.is_empty(), "outside .text.backtrace: {left:?}");
    assert!(
        all.iter()
            .any(|f| inside(f) && root_crate(&f.name) == Some("gimli")),
        "no symbolizer function in .text.backtrace"
    );
}

/// The shipped binary: no instruction of ward's code or of the `.shared`
/// sections refers into the sections the lock leaves out, but for what
/// only a backtrace runs itself and the unwinder's `_Unwind_Resume`, which
/// a landing pad calls and `panic = "abort"` never runs. The compiler
/// merges identical functions under one name, so a name alone does not
/// say what ward calls: ward's own `RawVec::grow_one` once ran from a
/// section named for gimli's. Read with objdump and the release link's map.
#[test]
fn nothing_ward_runs_refers_into_the_sections_its_lock_leaves_out() {
    let test = "nothing_ward_runs_refers_into_the_sections_its_lock_leaves_out";
    let release = release_dir(test);
    let map = release.join("ward.map");
    let objdump = std::process::Command::new("objdump")
        .arg("--version")
        .output();
    if !common::require(
        "the release build's link map (cargo build --release) and objdump (binutils)",
        map.is_file() && objdump.is_ok_and(|o| o.status.success()),
        test,
    ) {
        return;
    }
    let binary = release.join("ward");
    let file = std::fs::read(&binary).expect("read the release binary");
    let elf = parse(&file);
    let section = |name: &str| {
        elf.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.addr..s.addr + s.size)
            .unwrap_or_else(|| panic!("no {name} in the release binary"))
    };
    let cold = [section(".text.backtrace"), section(".rodata.backtrace")];
    let got = elf.sections.iter().find(|s| s.name == ".got");
    let shared_text = elf
        .sections
        .iter()
        .find(|s| s.name == ".text.shared")
        .map_or(0..0, |s| s.addr..s.addr + s.size);
    // Each input section's address and name, from the map's lines
    // "VMA LMA SIZE ALIGN object:(.text.NAME)".
    let text = std::fs::read_to_string(&map).expect("read ward.map");
    let mut at: Vec<(u64, String)> = text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [vma, _, _, _, what] = f[..] else {
                return None;
            };
            let (_, name) = what.rsplit_once(":(")?;
            Some((
                u64::from_str_radix(vma, 16).ok()?,
                name.trim_end_matches(')').to_string(),
            ))
        })
        .collect();
    at.sort();
    let name_at = |a: u64| {
        let i = at.partition_point(|(v, _)| *v <= a);
        at[i.saturating_sub(1)].1.clone()
    };
    let mut bad = std::collections::BTreeSet::new();
    let mut seen = 0;
    for r in [section(".text"), shared_text.clone()] {
        let out = std::process::Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(format!("--start-address={:#x}", r.start))
            .arg(format!("--stop-address={:#x}", r.end))
            .arg(&binary)
            .output()
            .expect("run objdump");
        let listing = String::from_utf8_lossy(&out.stdout);
        for line in listing.lines() {
            // "  21faa7:\tcall   0x220970" or "...(%rip)        # 0x2d4c58"
            let Some((addr, insn)) = line.trim_start().split_once(":\t") else {
                continue;
            };
            let Ok(from) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            seen += 1;
            for word in insn.split(|c: char| c.is_whitespace() || c == ',') {
                // "0x..." (a call's target, or the address a rip-relative
                // operand names after "#"), "$0x..." (an immediate).
                let Some(mut to) = word
                    .trim_start_matches(['$', '*'])
                    .strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                else {
                    continue;
                };
                // A call or load through the GOT: what its slot holds.
                if let Some(g) = got.filter(|g| (g.addr..g.addr + g.size).contains(&to)) {
                    let at = (g.offset + to - g.addr) as usize;
                    to = u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
                }
                if !cold.iter().any(|c| c.contains(&to)) {
                    continue;
                }
                let (caller, callee) = (name_at(from), name_at(to));
                if callee.ends_with("(.text._Unwind_Resume") || callee == ".text._Unwind_Resume" {
                    continue;
                }
                // Excused by where the caller is or whose it is, never by a
                // crate's name anywhere in it (a shared generic of alloc's
                // that ward calls ends with the name of the crate it was
                // instantiated in): the .shared sections, alloc's and core's
                // generics over the symbolizer's own types; a function the
                // symbolizer's crates or backtrace_rs root; std's printing
                // of a backtrace; the personality routine, which only an
                // unwinding runs (`panic = "abort"`: none).
                let symbol = caller
                    .trim_start_matches(".text.")
                    .trim_start_matches("unlikely.");
                if shared_text.contains(&from)
                    || backtrace_only(symbol)
                    || [
                        "3sys9backtrace10__print_fmt",
                        "BacktraceLock",
                        "DisplayBacktrace",
                        "3sys11personality",
                        "rust_eh_personality",
                    ]
                    .iter()
                    .any(|p| symbol.contains(p))
                {
                    continue;
                }
                bad.insert(format!("{caller} -> {callee}"));
            }
        }
    }
    assert!(seen > 10_000, "objdump listed only {seen} instructions");
    let bad: Vec<String> = bad.into_iter().take(10).collect();
    assert!(
        bad.is_empty(),
        "ward's code refers into what its lock leaves out: {bad:#?}"
    );
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
    let Some(all) = named_functions(
        &bytes,
        "the_functions_of_the_symbol_order_file_come_first_in_text",
    ) else {
        return;
    };
    let mut count = std::collections::HashMap::new();
    for f in &all {
        *count.entry(f.name.as_str()).or_insert(0) += 1;
    }
    let order = order_file();
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
    let release = release_dir(test);
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
    let order = order_file();
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
