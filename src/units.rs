//! Numbers in words for logs and reports: `511.8 MiB`, `92.3%`, `2.5 s`;
//! and [`decimal`], the one reader of decimal fractions (option values,
//! `*.pressure` averages).

use std::fmt;
use std::time::Duration;

/// A number with a fixed count of decimals, for `format!` (`Fixed(92.34, 1)`
/// prints `92.3`), as `{:.1}` would.
///
/// Written here rather than with `{:.N}` because std's float formatter
/// costs about 10 KiB of binary. A half rounds up, as people round
/// (`Fixed(0.25, 1)` is `0.3`), where std rounds the exact binary value half
/// to even (`0.2`); the two agree everywhere else but within a rounding
/// error of a half, and no figure ward prints is that precise. Minus zero
/// prints as `0`; values past 1.8e19 after scaling print as that bound.
pub struct Fixed(pub f64, pub u32);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(v, places) = *self;
        if v.is_nan() {
            return f.write_str("NaN");
        }
        let scale = 10u64.pow(places.min(9));
        // `as` saturates: infinities print as the bound, not as garbage.
        let n = (v.abs() * scale as f64 + 0.5) as u64;
        if v < 0.0 && n != 0 {
            f.write_str("-")?;
        }
        write!(f, "{}", n / scale)?;
        if places > 0 {
            write!(f, ".{:0w$}", n % scale, w = places.min(9) as usize)?;
        }
        Ok(())
    }
}

/// Bytes in binary units with one decimal (`0 B`, `12.0 KiB`, `511.8 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", Fixed(v, 1), UNITS[unit])
}

/// A ratio as a percentage with one decimal (`0.923` -> `92.3%`).
pub fn pct(ratio: f64) -> String {
    format!("{}%", Fixed(ratio * 100.0, 1))
}

/// Cores in words, with up to two decimals, trailing zeros dropped
/// (`0.5 cores`, `1 core`, `2 cores`).
pub fn cores(c: f64) -> String {
    let s = Fixed(c, 2).to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let unit = if s == "1" { "core" } else { "cores" };
    format!("{s} {unit}")
}

/// Items in a sentence: `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A duration in words for the log: `500 ms`, `2.5 s`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} us", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{} s", Fixed(s, 0))
        } else {
            format!("{} s", Fixed(s, 1))
        }
    }
}

/// Reads a plain decimal fraction: digits with at most one `.` and at least
/// one digit (`12`, `0.5`, `12.34`, `.5`, `5.`). No sign, exponent, `inf` or
/// `NaN`: no option value or kernel file ward reads has them.
///
/// Written here rather than `str::parse::<f64>` because that parser brings
/// 14 KiB of tables and slow paths into the binary. The result equals
/// `parse::<f64>` whenever the digits fit in 15 significant figures (one
/// correctly rounded division of two exact values); digits past the 19th are
/// dropped, a change below one part in 10^18.
pub fn decimal(text: &str) -> Option<f64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut mantissa: u64 = 0;
    for b in int.bytes() {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    let mut scale: i32 = 0;
    for b in frac.bytes() {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        if let Some(m) = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(d)))
        {
            mantissa = m;
            scale += 1;
        }
    }
    Some(mantissa as f64 / 10f64.powi(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std_on_what_ward_reads() {
        for t in [
            "0",
            "7",
            "12",
            "0.5",
            "1.5",
            "0.9",
            "12.34",
            "99.99",
            "100",
            "0.00",
            "3.14159",
            ".5",
            "5.",
            "0.001",
            "86400",
            "123456789.123456",
        ] {
            assert_eq!(decimal(t), t.parse::<f64>().ok(), "{t}");
        }
    }

    #[test]
    fn decimal_refuses_what_is_not_a_plain_fraction() {
        for t in [
            "", ".", "-1", "+1", "1e3", "1.2.3", "inf", "NaN", "1 ", " 1", "1,5", "x",
        ] {
            assert_eq!(decimal(t), None, "{t:?}");
        }
        // Too many integer digits for a u64: refused, not wrapped.
        assert_eq!(decimal("99999999999999999999"), None);
        // Fraction digits past the 19th are dropped, not refused.
        let long = decimal("0.12345678901234567890123").unwrap();
        assert!((long - 0.123_456_789_012_345_68).abs() < 1e-15);
    }

    #[test]
    fn fixed_prints_as_std_does_away_from_ties() {
        // A spread of values over the ranges ward prints (fractions of a
        // second, percentages, MiB), none within 1e-6 of a rounding tie.
        let mut checked = 0;
        for i in 0..20_000u32 {
            let v = f64::from(i) * 0.0137 + f64::from(i % 7) * 1e-4;
            for places in 0..=2 {
                let scaled = v * 10f64.powi(places as i32);
                if (scaled.fract() - 0.5).abs() < 1e-6 {
                    continue;
                }
                assert_eq!(
                    Fixed(v, places).to_string(),
                    format!("{v:.*}", places as usize),
                    "{v} to {places} places"
                );
                // Minus zero loses its sign; every other negative keeps it.
                let std_neg = format!("{:.*}", places as usize, -v);
                let want = if std_neg.trim_matches(['-', '0', '.']).is_empty() {
                    std_neg.trim_start_matches('-').to_string()
                } else {
                    std_neg
                };
                assert_eq!(Fixed(-v, places).to_string(), want, "{} to {places}", -v);
                checked += 1;
            }
        }
        assert!(checked > 50_000);
    }

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(536_870_912), "512.0 MiB");
        assert_eq!(bytes(536_661_000), "511.8 MiB");
        assert_eq!(pct(0.9234), "92.3%");
        assert_eq!(cores(0.5), "0.5 cores");
        assert_eq!(cores(2.0), "2 cores");
        assert_eq!(cores(0.126), "0.13 cores");
        assert_eq!(cores(1.0), "1 core");
        assert_eq!(cores(1.001), "1 core");
        assert_eq!(secs(Duration::from_micros(100)), "100 us");
        assert_eq!(secs(Duration::from_millis(500)), "500 ms");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(secs(Duration::from_secs(3)), "3 s");
        assert_eq!(and_list(&[]), "");
        assert_eq!(and_list(&["a".into()]), "a");
        assert_eq!(and_list(&["a".into(), "b".into()]), "a and b");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        assert_eq!(Fixed(0.05, 1).to_string(), "0.1");
        assert_eq!(Fixed(0.25, 1).to_string(), "0.3");
        assert_eq!(Fixed(-0.04, 1).to_string(), "0.0");
        assert_eq!(Fixed(-2.25, 0).to_string(), "-2");
        assert_eq!(Fixed(f64::NAN, 1).to_string(), "NaN");
        assert_eq!(Fixed(f64::INFINITY, 0).to_string(), u64::MAX.to_string());
    }
}
