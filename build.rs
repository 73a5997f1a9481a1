//! Link options for the `ward` binary, both about its file and none about
//! what it does:
//! - `link/symbol-order.txt` (written by `scripts/symbol-order`) orders its
//!   functions: what a watch sample, a reap and a signal forward run first,
//!   then what start-up and exit run, so each touches a few 64 KiB blocks of
//!   the file instead of most of them (a page fault maps 64 KiB of code;
//!   docs/benchmarks-analysis.md, *Start-up*). A name the build no longer has
//!   is skipped: a stale file costs page faults, nothing else.
//! - `link/discard.ld` leaves out the `.comment` and `.gnu.warning.*`
//!   sections, which no loader reads (compiler version strings, and glibc's
//!   notes for a linker warning about static `dlopen`): 720 bytes.
//! - `link/discard-unwind.ld`, in the release build, leaves out the unwind
//!   tables, which only a backtrace reads (see below): 160 KiB.
//! - `link/backtrace.ld` gathers what only a backtrace runs (std's
//!   symbolizer and the unwinder, 181 KiB) after ward's own code and
//!   constants, in sections of their own that ward's code lock under a
//!   memory limit leaves out.
//!
//! The three are rust-lld options: rustc links the gnu target with rust-lld
//! from 1.90 on, and the musl target (the shipped build) is pointed at it
//! here ([`lld_for`]); with another linker, or an older rustc, none is
//! passed.
//! - `-Map` for the release build: `ward.map` beside the binary.
//! - `--strip-all` for the release build, with any linker, unless `WARD_LINK_KEEP_SYMBOLS` is set
//!   (`scripts/symbol-order` sets it to name the functions it orders). The
//!   release profile does not strip: cargo hashes the profile into every
//!   crate's symbol names, so a profile-stripped binary's names were not the
//!   ones the order file was written from, and the linker skipped all of
//!   ward's own (idle RSS 440 KiB against 388 with them in order).

use std::path::Path;
use std::process::Command;

const ORDER: &str = "link/symbol-order.txt";
const DISCARD: &str = "link/discard.ld";
const DISCARD_UNWIND: &str = "link/discard-unwind.ld";
const BACKTRACE: &str = "link/backtrace.ld";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed={DISCARD}");
    println!("cargo:rerun-if-changed={DISCARD_UNWIND}");
    println!("cargo:rerun-if-changed={BACKTRACE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&dir).join(ORDER);
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    println!("cargo:rerun-if-env-changed=WARD_LINK_KEEP_SYMBOLS");
    if release && std::env::var_os("WARD_LINK_KEEP_SYMBOLS").is_none() {
        println!("cargo:rustc-link-arg-bin=ward=-Wl,--strip-all");
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    let Some(use_lld) = lld_for(&target) else {
        return;
    };
    for arg in use_lld {
        println!("cargo:rustc-link-arg-bin=ward={arg}");
    }
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=ward=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bin=ward=-Wl,--no-warn-symbol-ordering");
        // The release link's map, next to the binary (OUT_DIR is
        // <profile dir>/build/ward-<hash>/out): the names and addresses a
        // stripped binary no longer has, for `tests/elf_layout.rs`.
        let out = std::env::var("OUT_DIR").unwrap_or_default();
        if let Some(bin_dir) = Path::new(&out).ancestors().nth(3).filter(|_| release) {
            println!(
                "cargo:rustc-link-arg-bin=ward=-Wl,-Map={}",
                bin_dir.join("ward.map").display()
            );
        }
    }
    // Identical functions folded into one (lld's ICF), in release builds:
    // 6 KiB less, mostly ward's and std's own generic copies. Rust makes
    // no promise that two functions have two addresses (its own function
    // merging already aliases them); of glibc, the link folds two IFUNC
    // resolvers pairwise identical (memcpy/memmove, wmemcpy/wmemmove), the
    // two `__longjmp` entries and four cold-path fragments (`.text.unlikely`),
    // none of whose
    // addresses anything compares. `--print-icf-sections` lists the folds.
    if release {
        println!("cargo:rustc-link-arg-bin=ward=-Wl,--icf=all");
        // lld's -O2 also merges a string into the tail of a longer one
        // (-O1, the default, merges only equal strings): 320 bytes. A Rust
        // `&str` is a pointer and a length, a C string ends at its NUL; both
        // read the same bytes from a shared tail.
        println!("cargo:rustc-link-arg-bin=ward=-Wl,-O2");
        // No `.note.gnu.build-id`: 152 bytes with its alignment. It lets a
        // debugger or debuginfod find the symbols of a stripped binary;
        // ward ships none but `ward.map`, which names the build by its path.
        println!("cargo:rustc-link-arg-bin=ward=-Wl,--build-id=none");
        // No unwind tables (`.eh_frame`, its header, `.gcc_except_table`):
        // 160 KiB. ward is built with `panic = "abort"` and nothing in it
        // unwinds (no C++, no `pthread_exit` or `pthread_cancel`), so only
        // a backtrace would read them: a panic still prints its message and
        // place, `RUST_BACKTRACE` then shows no frames, and `perf
        // --call-graph dwarf` none of ward's. Debug builds keep them.
        println!("cargo:rustc-link-arg-bin=ward=-Wl,--no-eh-frame-hdr");
        println!(
            "cargo:rustc-link-arg-bin=ward=-Wl,-T,{}",
            Path::new(&dir).join(DISCARD_UNWIND).display()
        );
    }
    // What only a backtrace runs, after ward's own code and constants, so
    // that the code lock can leave it out (src/trim.rs, `NOT_LOCKED`).
    println!(
        "cargo:rustc-link-arg-bin=ward=-Wl,-T,{}",
        Path::new(&dir).join(BACKTRACE).display()
    );
    // A script of only /DISCARD/ and INSERT adds to the default layout
    // instead of replacing it: every loaded section stays where it was.
    println!(
        "cargo:rustc-link-arg-bin=ward=-Wl,-T,{}",
        Path::new(&dir).join(DISCARD).display()
    );
}

/// How `ward` is linked with rust-lld for `target`: the extra arguments
/// (none where rustc already picks it), or `None` when it is not (another
/// target, a linker of the user's own, an older rustc, no rust-lld).
/// - x86_64-unknown-linux-gnu: rustc links with rust-lld from 1.90 on.
/// - x86_64-unknown-linux-musl (the shipped build): rustc runs `cc` with the
///   system's `ld`; `cc` is pointed at rust-lld as rustc itself does for the
///   gnu target, through the `ld.lld` wrapper in rustc's `gcc-ld` folder.
fn lld_for(target: &str) -> Option<Vec<String>> {
    if !links_with_lld() {
        return None;
    }
    match target {
        "x86_64-unknown-linux-gnu" => Some(Vec::new()),
        "x86_64-unknown-linux-musl" => {
            let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
            let out = Command::new(rustc)
                .args(["--print", "sysroot"])
                .output()
                .ok()?;
            let sysroot = String::from_utf8(out.stdout).ok()?;
            let host = std::env::var("HOST").ok()?;
            let gcc_ld = Path::new(sysroot.trim())
                .join("lib/rustlib")
                .join(host)
                .join("bin/gcc-ld");
            gcc_ld.join("ld.lld").is_file().then(|| {
                vec![
                    format!("-B{}", gcc_ld.display()),
                    "-fuse-ld=lld".to_string(),
                ]
            })
        }
        _ => None,
    }
}

/// rustc 1.90 or later, with no linker or linker flavour of the user's own.
fn links_with_lld() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if std::env::var_os("RUSTC_LINKER").is_some()
        || flags.contains("linker")
        || flags.contains("fuse-ld")
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
