//! The README documents every flag and `WARD_*` variable that `ward --help`
//! lists, and names the two set-up commands that exist.

use std::collections::BTreeSet;

fn words(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|w| w.starts_with(prefix) && w.len() > prefix.len())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_flag_and_variable_in_help_is_in_the_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let help = ward::cli::HELP;
    let flags = words(help, "--");
    let vars = words(help, "WARD_");
    assert!(flags.len() > 20 && vars.len() > 15, "{flags:?} {vars:?}");
    for f in flags.iter().chain(&vars) {
        assert!(readme.contains(f.as_str()), "README does not mention {f}");
    }
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
