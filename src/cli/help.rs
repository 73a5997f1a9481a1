//! `ward --help` and the README's options table, both rendered from the flag
//! table in `defs.rs`.
//!
//! Owns layout and wording around the table; adds no option of its own and
//! writes nothing (`main.rs` prints, `tests/readme.rs` checks the README).

use std::fmt::Write as _;

use super::defs::{Env, FLAGS, Flag, Section, Shown};

/// The line before the README's generated table.
pub const README_BEGIN: &str = "<!-- options:begin -->";
/// The line after it.
pub const README_END: &str = "<!-- options:end -->";

const INTRO: &str = "\
ward: a PID 1 for containers that reaps, forwards signals, watches the
container's limits and says why it died.

Usage: ward [OPTIONS] [--] COMMAND [ARGS...]
       ward status [ARGS...]
       ward check [ARGS...]

Subcommands, only as the very first argument ('ward -- status' runs a
program named status):
";

/// Subcommand names and their help lines.
const SUBCOMMANDS: [(&str, &str); 2] = [
    (
        "status",
        "limits, usage, processes and history of this container (--json; see 'ward status --help')",
    ),
    (
        "check",
        "health probe: http://, tcp://, unix:// targets, exit 0 or 1 (see 'ward check --help')",
    ),
];

const OUTRO: &str = "
DURATION is 500ms, 10s, 2m or a number of seconds; SIG is a name (TERM,
SIGUSR1, RTMIN+1) or a number. Flags override WARD_* variables (-r and -e add
to theirs); a list in a variable is comma-separated. Bad input gets one line and exit code 2.
";

/// The full `--help` text.
pub fn help_text() -> String {
    let lefts: Vec<String> = FLAGS.iter().map(help_left).collect();
    // One column for every help line, two spaces after the longest name.
    let width = lefts.iter().map(String::len).max().unwrap_or(0) + 2;
    let mut out = String::from(INTRO);
    for (name, help) in SUBCOMMANDS {
        let _ = writeln!(out, "{:width$}{help}", format!("  {name}"));
    }
    for section in Section::ALL {
        let _ = write!(out, "\n{}:\n", section.title());
        for (flag, left) in FLAGS.iter().zip(&lefts) {
            if flag.section != section {
                continue;
            }
            let _ = write!(out, "{left:width$}{}", flag.help);
            let notes = notes(flag);
            if !notes.is_empty() {
                let _ = write!(out, " ({})", notes.join("; "));
            }
            match flag.env {
                Env::None => {}
                Env::Var(v) => {
                    let _ = write!(out, " [{v}]");
                }
                Env::Negated(v) => {
                    let _ = write!(out, " [{v}=0]");
                }
            }
            out.push('\n');
        }
    }
    out.push_str(OUTRO);
    out
}

/// `  -g, --signal-group` or `      --grace DURATION`.
fn help_left(flag: &Flag) -> String {
    let mut s = match flag.short {
        Some(c) => format!("  -{c}, --{}", flag.long),
        None => format!("      --{}", flag.long),
    };
    if let Some(v) = flag.value {
        s.push(' ');
        s.push_str(v);
    }
    s
}

/// "repeatable", "default 3s": the parenthesised notes after a help line.
fn notes(flag: &Flag) -> Vec<String> {
    let mut notes = Vec::new();
    if flag.repeats {
        notes.push("repeatable".to_string());
    }
    if let Shown::Value(v) = flag.default {
        notes.push(format!("default {}", v.replace(',', ", ")));
    }
    notes
}

/// The README's options table (Markdown), without the markers.
pub fn options_markdown() -> String {
    let mut out = String::from("| flag | variable | default | meaning |\n|---|---|---|---|\n");
    for flag in FLAGS {
        let mut name = match flag.short {
            Some(c) => format!("`-{c}`, `--{}", flag.long),
            None => format!("`--{}", flag.long),
        };
        if let Some(v) = flag.value {
            name.push(' ');
            name.push_str(v);
        }
        name.push('`');
        let var = match flag.env {
            Env::None => String::new(),
            Env::Var(v) => format!("`{v}`"),
            Env::Negated(v) => format!("`{v}=0`"),
        };
        let default = match flag.default {
            Shown::Value(v) => v
                .split(',')
                .map(|item| format!("`{item}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Shown::Words(w) => w.to_string(),
            Shown::Blank => String::new(),
        };
        let mut meaning = flag.help.to_string();
        if !flag.details.is_empty() {
            meaning.push_str("; ");
            meaning.push_str(flag.details);
        }
        if flag.repeats {
            meaning.push_str(" (repeatable)");
        }
        let cells = [name, var, default, meaning].map(|c| c.replace('|', "\\|"));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(help: &'a str, flag: &Flag) -> Vec<&'a str> {
        let left = format!("{} ", help_left(flag));
        help.lines().filter(|l| l.starts_with(&left)).collect()
    }

    #[test]
    fn help_lists_every_option_and_variable_once() {
        let help = help_text();
        for flag in FLAGS {
            assert_eq!(lines_of(&help, flag).len(), 1, "--{}", flag.long);
            if let Some(v) = flag.env.name() {
                assert!(help.contains(&format!("[{v}")), "{v}");
            }
        }
        assert!(help.contains("ward status"), "{help}");
        assert!(help.contains("ward check"), "{help}");
    }

    #[test]
    fn help_lines_are_as_users_read_them() {
        let help = help_text();
        let line = |long: &str| {
            let flag = FLAGS.iter().find(|f| f.long == long).unwrap();
            lines_of(&help, flag)[0].to_string()
        };
        assert!(line("stop-signal").ends_with(
            "signals that count as a stop request: they start --kill-after and the 'still running' lines (repeatable; default TERM, INT) [WARD_STOP_SIGNAL]"
        ));
        assert!(line("signal-group").starts_with("  -g, --signal-group "));
        assert!(line("grace").contains("(default 3s) [WARD_GRACE]"));
        assert!(line("no-watch").ends_with("[WARD_WATCH=0]"));
        assert!(line("verbose").ends_with("one log level more (repeatable)"));
        // Every help text starts in the same column.
        let cols: Vec<usize> = FLAGS
            .iter()
            .map(|f| line(f.long).find(f.help).unwrap())
            .collect();
        assert!(cols.windows(2).all(|w| w[0] == w[1]), "{cols:?}");
        let status = help.lines().find(|l| l.starts_with("  status ")).unwrap();
        assert_eq!(status.find("limits, "), Some(cols[0]), "{status}");
    }

    #[test]
    fn markdown_rows_escape_pipes() {
        let md = options_markdown();
        assert_eq!(md.lines().count(), FLAGS.len() + 2);
        assert!(md.contains("| `--orphans reap\\|terminate` | `WARD_ORPHANS` | `reap` |"));
        assert!(md.contains("| `--stop-signal SIG` | `WARD_STOP_SIGNAL` | `TERM`, `INT` |"));
        assert!(md.contains("| `--no-watch` | `WARD_WATCH=0` | watching on |"));
        for line in md.lines() {
            assert_eq!(line.replace("\\|", "").matches('|').count(), 5, "{line}");
        }
    }
}
