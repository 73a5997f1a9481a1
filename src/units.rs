//! Numbers in words for logs and reports: `511.8 MiB`, `92.3%`, `2.5 s`.

use std::time::Duration;

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
    format!("{v:.1} {}", UNITS[unit])
}

/// A ratio as a percentage with one decimal (`0.923` -> `92.3%`).
pub fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Cores with up to two decimals, trailing zeros dropped (`0.5`, `2`).
pub fn cores(c: f64) -> String {
    let s = format!("{c:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A duration in words for the log: `500 ms`, `2.5 s`.
pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(536_870_912), "512.0 MiB");
        assert_eq!(bytes(536_661_000), "511.8 MiB");
        assert_eq!(pct(0.9234), "92.3%");
        assert_eq!(cores(0.5), "0.5");
        assert_eq!(cores(2.0), "2");
        assert_eq!(cores(0.126), "0.13");
    }
}
