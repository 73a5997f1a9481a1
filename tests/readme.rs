//! The README's options table is the one generated from the flag table, and
//! the README names the two set-up commands that exist.

use ward::cli::help::{README_BEGIN, README_END, options_markdown};

/// `WARD_UPDATE_README=1 cargo test --test readme` rewrites the block.
const UPDATE_VAR: &str = "WARD_UPDATE_README";

#[test]
fn the_options_table_is_generated_from_the_flag_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (Some(begin), Some(end)) = (readme.find(README_BEGIN), readme.find(README_END)) else {
        panic!("README.md lacks the {README_BEGIN} ... {README_END} markers");
    };
    assert!(begin < end, "README.md: {README_END} before {README_BEGIN}");
    let inside = &readme[begin + README_BEGIN.len()..end];
    let want = format!("\n{}", options_markdown());
    if inside == want {
        return;
    }
    if std::env::var_os(UPDATE_VAR).is_some_and(|v| v == "1") {
        let updated = format!(
            "{}{want}{}",
            &readme[..begin + README_BEGIN.len()],
            &readme[end..]
        );
        // Write aside and rename: the other test reads README.md meanwhile.
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, updated).unwrap();
        std::fs::rename(&tmp, path).unwrap();
        eprintln!("README.md: options table rewritten");
        return;
    }
    panic!(
        "README.md's options table differs from the flag table (src/cli/defs.rs).\n\
         Run `{UPDATE_VAR}=1 cargo test --test readme` to rewrite it, or put this \
         between the markers:\n{want}"
    );
}

#[test]
fn the_two_setup_commands_exist() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for cmd in ["scripts/demo", "scripts/test"] {
        assert!(
            readme.contains(&format!("    {cmd} ")),
            "README lacks {cmd}"
        );
        let meta = std::fs::metadata(format!("{root}/{cmd}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{cmd} is not executable"
        );
    }
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test"),
        ".ci/run must run the README's test command"
    );
}
