//! The results as Markdown: one section per benchmark, a table of medians
//! (min–max) per init, and a table of ward/peer comparisons taken round by
//! round.
//!
//! Renders only; it measures nothing and judges nothing (the bar is
//! `bar.rs`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::stats::{Compare, Figure, Summary, Unit};

/// One benchmark's results.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `## ` heading.
    pub title: String,
    /// Paragraphs before the table: what was run and how it was measured.
    pub intro: Vec<String>,
    /// Row names in order (inits, or process counts).
    pub rows: Vec<String>,
    /// The figures, one column each.
    pub figures: Vec<Figure>,
    /// Text columns after the figures: header and value per row.
    pub text_columns: Vec<(String, BTreeMap<String, String>)>,
    /// The row the others are compared with (ward), if any.
    pub compare_from: Option<String>,
    /// Bullet points after the tables (failures, behaviours).
    pub notes: Vec<String>,
    /// Measurements that could not be made (not slow ones: broken ones).
    pub failures: usize,
}

impl Section {
    /// A section with a title and rows.
    pub fn new(title: &str, rows: Vec<String>) -> Section {
        Section {
            title: title.into(),
            rows,
            ..Section::default()
        }
    }

    /// Notes a measurement that could not be made.
    pub fn fail(&mut self, what: String) {
        self.notes.push(format!("**failed**: {what}"));
        self.failures += 1;
    }

    /// The figure named `name`.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    /// Markdown.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## {}\n", self.title);
        for p in &self.intro {
            let _ = writeln!(out, "{p}\n");
        }
        let mut header = vec![String::new()];
        header.extend(self.figures.iter().map(heading));
        header.extend(self.text_columns.iter().map(|(h, _)| h.clone()));
        let mut rows = Vec::new();
        for row in &self.rows {
            let mut cells = vec![row.clone()];
            cells.extend(
                self.figures
                    .iter()
                    .map(|f| cell(f.summary(row), f.unit, "")),
            );
            cells.extend(
                self.text_columns
                    .iter()
                    .map(|(_, m)| m.get(row).cloned().unwrap_or_else(|| "–".into())),
            );
            rows.push(cells);
        }
        out.push_str(&table(&header, &rows));
        if let Some(from) = &self.compare_from {
            let compared: Vec<&Figure> = self
                .figures
                .iter()
                .filter(|f| f.compare != Compare::No)
                .collect();
            let peers: Vec<&String> = self.rows.iter().filter(|r| *r != from).collect();
            if !compared.is_empty() && !peers.is_empty() {
                let _ = writeln!(
                    out,
                    "\n{from} against each peer, per round, then median (min–max) over the rounds:\n"
                );
                let mut header = vec![String::new()];
                header.extend(compared.iter().map(|f| match f.compare {
                    Compare::Difference if f.unit.label().is_empty() => {
                        format!("{from} − peer, {}", f.name)
                    }
                    Compare::Difference => {
                        format!("{from} − peer, {} ({})", f.name, f.unit.label())
                    }
                    _ => format!("{from} / peer, {}", f.name),
                }));
                let rows: Vec<Vec<String>> = peers
                    .iter()
                    .map(|p| {
                        let mut cells = vec![(*p).clone()];
                        cells.extend(compared.iter().map(|f| {
                            let suffix = if f.compare == Compare::Ratio {
                                "×"
                            } else {
                                ""
                            };
                            let unit = if f.compare == Compare::Ratio {
                                Unit::Pct
                            } else {
                                f.unit
                            };
                            cell(f.compare(from, p), unit, suffix)
                        }));
                        cells
                    })
                    .collect();
                out.push_str(&table(&header, &rows));
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out.push('\n');
        out
    }
}

fn heading(f: &Figure) -> String {
    match f.unit.label() {
        "" => f.name.clone(),
        u => format!("{} ({u})", f.name),
    }
}

/// `median (min–max)`, or the value alone when there is one, or `–`.
fn cell(s: Option<Summary>, unit: Unit, suffix: &str) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 || s.min == s.max => format!("{}{suffix}", unit.format(s.median)),
        Some(s) => format!(
            "{}{suffix} ({}–{})",
            unit.format(s.median),
            unit.format(s.min),
            unit.format(s.max)
        ),
    }
}

/// A Markdown table; the first column is left-aligned, the rest right-aligned.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(header));
    let sep: Vec<String> = (0..header.len())
        .map(|i| if i == 0 { ":--".into() } else { "--:".into() })
        .collect();
    out.push_str(&line(&sep));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_medians_and_ratios() {
        let mut f = Figure::new("CPU per orphan", Unit::Us, Compare::Ratio);
        f.add(0, "ward", 10.0);
        f.add(0, "tini", 20.0);
        f.add(1, "ward", 12.0);
        f.add(1, "tini", 20.0);
        let mut s = Section::new("Reaping", vec!["ward".into(), "tini".into()]);
        s.figures.push(f);
        s.compare_from = Some("ward".into());
        s.notes.push("a note".into());
        let md = s.render();
        assert!(md.contains("## Reaping"), "{md}");
        assert!(md.contains("| ward | 11.0 (10.0–12.0) |"), "{md}");
        assert!(md.contains("| tini | 20.0 |"), "{md}");
        assert!(md.contains("| tini | 0.55× (0.50–0.60) |"), "{md}");
        assert!(md.contains("- a note"), "{md}");
    }

    #[test]
    fn a_count_difference_has_no_empty_unit() {
        let mut f = Figure::new("page faults", Unit::Count, Compare::Difference);
        let mut g = Figure::new("wall", Unit::Ms, Compare::Difference);
        for (init, faults, ms) in [("ward", 60.0, 3.0), ("tini", 50.0, 2.5)] {
            f.add(0, init, faults);
            g.add(0, init, ms);
        }
        let mut s = Section::new("Start-up", vec!["ward".into(), "tini".into()]);
        s.figures = vec![g, f];
        s.compare_from = Some("ward".into());
        let md = s.render();
        assert!(
            md.contains("| ward − peer, wall (ms) | ward − peer, page faults |"),
            "{md}"
        );
        assert!(!md.contains("()"), "{md}");
    }
}
