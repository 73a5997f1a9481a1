//! Figures and their summaries: one value per init per round, medians with
//! min and max, and ward/peer ratios taken round by round.
//!
//! Pure arithmetic; no I/O and no opinion on what is good.

use std::collections::BTreeMap;

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Summary {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// The `p`-th percentile (0-100) by nearest rank of sorted `v`.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// How a figure is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// KiB.
    KiB,
    /// A count.
    Count,
    /// Percent.
    Pct,
}

impl Unit {
    /// The suffix in table headers.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Us => "µs",
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::KiB => "KiB",
            Unit::Count => "",
            Unit::Pct => "%",
        }
    }

    /// A value with sensible precision.
    pub fn format(self, v: f64) -> String {
        let a = v.abs();
        match self {
            Unit::Count | Unit::KiB => format!("{v:.0}"),
            _ if a >= 100.0 => format!("{v:.0}"),
            _ if a >= 10.0 => format!("{v:.1}"),
            _ if a >= 0.1 || a == 0.0 => format!("{v:.2}"),
            _ => format!("{v:.4}"),
        }
    }
}

/// How ward is set against a peer for a figure, round by round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// ward / peer.
    Ratio,
    /// ward − peer (for small differences of large offsets, like start-up).
    Difference,
    /// Not at all (counts, behaviours).
    No,
}

/// One figure (say, CPU per orphan) measured for each init in each round.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Column header, without unit.
    pub name: String,
    /// Unit.
    pub unit: Unit,
    /// How ward is compared with a peer.
    pub compare: Compare,
    /// values[round][init name].
    rounds: Vec<BTreeMap<String, f64>>,
}

impl Figure {
    /// An empty figure.
    pub fn new(name: &str, unit: Unit, compare: Compare) -> Figure {
        Figure {
            name: name.into(),
            unit,
            compare,
            rounds: Vec::new(),
        }
    }

    /// Records `init`'s value in `round`.
    pub fn add(&mut self, round: usize, init: &str, value: f64) {
        if self.rounds.len() <= round {
            self.rounds.resize_with(round + 1, BTreeMap::new);
        }
        self.rounds[round].insert(init.into(), value);
    }

    /// All of `init`'s values.
    pub fn values(&self, init: &str) -> Vec<f64> {
        self.rounds
            .iter()
            .filter_map(|r| r.get(init).copied())
            .collect()
    }

    /// `init`'s summary over the rounds.
    pub fn summary(&self, init: &str) -> Option<Summary> {
        Summary::of(&self.values(init))
    }

    /// `a / b`, one ratio per round in which both were measured (a zero
    /// denominator gives no ratio).
    pub fn ratio(&self, a: &str, b: &str) -> Option<Summary> {
        let ratios: Vec<f64> = self
            .pairs(a, b)
            .filter(|&(_, y)| y != 0.0)
            .map(|(x, y)| x / y)
            .collect();
        Summary::of(&ratios)
    }

    /// `a − b`, one difference per round in which both were measured.
    pub fn difference(&self, a: &str, b: &str) -> Option<Summary> {
        let d: Vec<f64> = self.pairs(a, b).map(|(x, y)| x - y).collect();
        Summary::of(&d)
    }

    /// The comparison this figure asks for.
    pub fn compare(&self, a: &str, b: &str) -> Option<Summary> {
        match self.compare {
            Compare::Ratio => self.ratio(a, b),
            Compare::Difference => self.difference(a, b),
            Compare::No => None,
        }
    }

    fn pairs<'s>(&'s self, a: &'s str, b: &'s str) -> impl Iterator<Item = (f64, f64)> + 's {
        self.round_pairs(a, b).map(|(_, p)| p)
    }

    /// (round, (a's value, b's value)) for every round where both were measured.
    pub fn round_pairs<'s>(
        &'s self,
        a: &'s str,
        b: &'s str,
    ) -> impl Iterator<Item = (usize, (f64, f64))> + 's {
        self.rounds
            .iter()
            .enumerate()
            .filter_map(move |(i, r)| Some((i, (*r.get(a)?, *r.get(b)?))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_empty() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(500.0));
        assert_eq!(percentile(&v, 99.0), Some(990.0));
        assert_eq!(percentile(&v, 100.0), Some(1000.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn ratios_are_paired_by_round() {
        let mut f = Figure::new("cpu", Unit::Us, Compare::Ratio);
        f.add(0, "ward", 2.0);
        f.add(0, "tini", 4.0);
        f.add(1, "ward", 9.0); // tini missing in round 1: no pair
        f.add(2, "ward", 3.0);
        f.add(2, "tini", 2.0);
        let r = f.ratio("ward", "tini").unwrap();
        assert_eq!((r.n, r.min, r.max), (2, 0.5, 1.5));
        assert_eq!(f.summary("ward").unwrap().n, 3);
        assert_eq!(f.ratio("ward", "nobody"), None);
        let d = f.difference("ward", "tini").unwrap();
        assert_eq!((d.min, d.max), (-2.0, 1.0));
    }
}
