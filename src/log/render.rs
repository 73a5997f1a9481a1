//! Turning one event into one line of text (human or JSON), and the RFC 3339
//! timestamps. Pure: no I/O, no global state (the caller passes the format
//! and the time), so every byte of output is unit tested on literal text.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{Format, Level};

/// The most of one text (the message, a string field) a line carries; the
/// rest is cut and said to be. Escaped (up to 6 bytes a character in JSON),
/// a message and a field or two still fit the log's 64 KiB queue, which
/// drops a longer line whole: an exit report naming a 70,000-byte path was
/// lost that way, with a notice that blamed stderr.
pub const TEXT_MAX: usize = 4096;

/// `text`, or its first [`TEXT_MAX`] bytes (at a character boundary) and
/// how many were cut.
fn clipped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= TEXT_MAX {
        return text.into();
    }
    let mut end = TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &text[..end], text.len() - end).into()
}

/// Cuts every string in `value`, in place, as [`clipped`] does.
fn clip_value(value: &mut Value) {
    match value {
        Value::String(text) if text.len() > TEXT_MAX => {
            *text = clipped(text).into_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(clip_value),
        Value::Object(map) => map.values_mut().for_each(clip_value),
        _ => {}
    }
}

/// Renders one line, newline included. Separate from I/O so it can be tested.
pub fn render(
    format: Format,
    level: Level,
    key: &str,
    msg: &str,
    fields: &[(&str, Value)],
    now: SystemTime,
) -> String {
    let msg = &*clipped(msg);
    match format {
        Format::Human => {
            let mut line = String::with_capacity(msg.len() + key.len() + 24);
            line.push_str("ward: ");
            if level != Level::Info {
                line.push_str(level.as_str());
                line.push(' ');
            }
            let _ = write!(line, "[{key}] ");
            push_escaped(&mut line, msg);
            line.push('\n');
            line
        }
        Format::Json => {
            let mut obj = serde_json::Map::with_capacity(fields.len() + 4);
            obj.insert("ts".into(), Value::String(rfc3339(now)));
            obj.insert("level".into(), Value::String(level.as_str().into()));
            obj.insert("event".into(), Value::String(key.into()));
            obj.insert("msg".into(), Value::String(msg.into()));
            for (name, value) in fields {
                let mut value = value.clone();
                clip_value(&mut value);
                obj.insert((*name).into(), value);
            }
            let mut line = escape_json_controls(Value::Object(obj).to_string());
            line.push('\n');
            line
        }
    }
}

/// Appends `msg` with every control character (C0, DEL, C1: Unicode
/// category Cc) written as an escape, so a process name holding an ESC
/// sequence cannot drive the terminal that shows the log, and one event stays
/// one line. `\n`, `\r`, `\t` keep their usual spelling; other C0 and DEL
/// become `\xHH`, C1 `\u{HH}` (they are two bytes in UTF-8, so a byte escape
/// would mislead). Backslashes are left alone: paths stay readable, at the
/// price of `\x1b` typed literally looking like an escaped ESC.
///
/// The text between control characters is copied a run at a time (a
/// char-by-char push cost about 60 instructions a character, on every line).
///
/// `ward status` prints what it did not write itself (process names, what
/// ward served) through this rule too, so both spell an escape alike.
pub fn push_escaped(line: &mut String, msg: &str) {
    let mut run = 0;
    for (i, c) in msg.char_indices() {
        if !c.is_control() {
            continue;
        }
        line.push_str(&msg[run..i]);
        run = i + c.len_utf8();
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(line, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    line.push_str(&msg[run..]);
}

/// serde_json escapes C0 but writes DEL and C1 raw (JSON allows them). A JSON
/// log is read on terminals too (`docker logs`), so spell those as `\u00XX`
/// as well. Safe anywhere in the text: outside strings JSON holds no such
/// characters.
fn escape_json_controls(line: String) -> String {
    let raw = |c: char| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c);
    if !line.chars().any(raw) {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if raw(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats a time as RFC 3339 UTC with milliseconds, without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn human(msg: &str) -> String {
        render(Format::Human, Level::Info, "k", msg, &[], UNIX_EPOCH)
    }

    #[test]
    fn human_line_has_prefix_level_and_key() {
        let line = render(
            Format::Human,
            Level::Warning,
            "memory_high",
            "at 92%",
            &[],
            UNIX_EPOCH,
        );
        assert_eq!(line, "ward: warning [memory_high] at 92%\n");
        let info = render(
            Format::Human,
            Level::Info,
            "child_exited",
            "done",
            &[],
            UNIX_EPOCH,
        );
        assert_eq!(info, "ward: [child_exited] done\n");
    }

    #[test]
    fn an_outsized_text_is_cut_and_said_to_be_in_both_formats() {
        let path = format!("/{}", "é".repeat(35_000)); // 70,001 bytes
        let human = render(
            Format::Human,
            Level::Error,
            "exit_report",
            &format!("exit 126: cannot run {path}"),
            &[],
            UNIX_EPOCH,
        );
        assert!(human.len() < 4200, "{}", human.len());
        assert!(human.starts_with("ward: error [exit_report] exit 126: cannot run /éé"));
        assert!(
            human.ends_with("é… [65926 bytes cut]\n"),
            "{}",
            &human[4000..]
        );
        let json = render(
            Format::Json,
            Level::Error,
            "exit_report",
            &format!("exit 126: cannot run {path}"),
            &[
                ("command", Value::String(path.clone())),
                ("code", 126.into()),
                ("report", serde_json::json!({"argv": [path.clone()]})),
            ],
            UNIX_EPOCH,
        );
        assert!(json.len() < 13_000, "{}", json.len());
        let v: Value = serde_json::from_str(&json).unwrap();
        assert!(
            v["command"]
                .as_str()
                .unwrap()
                .ends_with("é… [65906 bytes cut]")
        );
        assert_eq!(v["code"], 126);
        let nested = v["report"]["argv"][0].as_str().unwrap();
        assert!(nested.ends_with("é… [65906 bytes cut]"), "{nested:.100}");
        // Short texts are untouched.
        assert_eq!(clipped("abc"), "abc");
    }

    #[test]
    fn human_line_never_splits() {
        let line = human("a\nb\rc");
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(line, "ward: [k] a\\nb\\rc\n");
    }

    #[test]
    fn human_line_escapes_terminal_sequences() {
        // A process named to clear the screen and set the window title.
        assert_eq!(
            human("started \u{1b}[2J\u{1b}]0;pwned\u{7} as pid 7"),
            "ward: [k] started \\x1b[2J\\x1b]0;pwned\\x07 as pid 7\n"
        );
        assert_eq!(
            human("nul\0 tab\t del\u{7f} us\u{1f}"),
            "ward: [k] nul\\x00 tab\\t del\\x7f us\\x1f\n"
        );
        // C1: CSI (U+009B) is a one-character ESC [ for some terminals.
        assert_eq!(
            human("c1 \u{9b}31m \u{80}"),
            "ward: [k] c1 \\u{9b}31m \\u{80}\n"
        );
    }

    #[test]
    fn human_line_keeps_printable_text_and_backslashes() {
        assert_eq!(
            human("café ünïcode ✓ C:\\path \u{a0}"),
            "ward: [k] café ünïcode ✓ C:\\path \u{a0}\n"
        );
    }

    #[test]
    fn json_line_is_one_object_with_fields() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = render(
            Format::Json,
            Level::Info,
            "child_exited",
            "line\nbreak",
            &[("code", Value::from(3))],
            t,
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["event"], "child_exited");
        assert_eq!(v["level"], "info");
        assert_eq!(v["code"], 3);
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn json_line_escapes_every_control_character() {
        let msg = "esc\u{1b}[2J nl\n cr\r nul\0 bel\u{7} del\u{7f} csi\u{9b} ok";
        let line = render(
            Format::Json,
            Level::Warning,
            "k",
            msg,
            &[("name", Value::from("x\u{1b}\u{85}"))],
            UNIX_EPOCH,
        );
        assert!(
            !line.trim_end().chars().any(char::is_control),
            "raw control character in {line:?}"
        );
        assert!(
            line.contains(r#"esc\u001b[2J nl\n cr\r nul\u0000 bel\u0007 del\u007f csi\u009b ok"#)
        );
        // Still valid JSON, and the text reads back unchanged.
        let v: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["msg"], msg);
        assert_eq!(v["name"], "x\u{1b}\u{85}");
    }

    #[test]
    fn escaping_by_runs_equals_escaping_each_character() {
        fn each(msg: &str) -> String {
            let mut out = String::new();
            for c in msg.chars() {
                match c {
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() && (c as u32) < 0x80 => {
                        out.push_str(&format!("\\x{:02x}", c as u32))
                    }
                    c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                    c => out.push(c),
                }
            }
            out
        }
        // Every control character, its neighbours, and multi-byte text
        // around them (U+00A0 is 0xc2 0xa0: the lead byte of C1, not one).
        let mut samples: Vec<String> = (0u32..0x2000)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}\u{a0}é{c}{c}z"))
            .collect();
        samples.push(String::new());
        samples.push("\u{85}".into());
        samples.push("plain text, no escapes".into());
        samples.push("ends in \u{9f}".into());
        for s in &samples {
            let mut got = String::new();
            push_escaped(&mut got, s);
            assert_eq!(got, each(s), "{s:?}");
        }
    }

    #[test]
    fn dates_convert() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
