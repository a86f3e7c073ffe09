//! Durations as users write them: `500ms`, `30s`, `1m`, `1h30m`, `1.5s`.

use std::time::Duration;

/// Parses a duration such as `30s`, `1m30s`, `250ms` or `1.5h`. Units: `ms`, `s`, `m`, `h`, `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write for example 30s or 1m".to_owned());
    }
    let bad = || format!("{trimmed:?} is not a duration; write for example 500ms, 30s, 5m or 1h30m");
    if trimmed.contains(char::is_whitespace) {
        return Err(bad());
    }
    let mut rest = trimmed;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => {
                return Err(format!("{trimmed:?} has no unit; write for example {number}s"));
            }
            unit => {
                return Err(format!("{trimmed:?} has an unknown unit {unit:?}; use ms, s, m, h or d"));
            }
        };
        rest = &rest[unit_len..];
        total += number * seconds_per_unit;
    }
    if !total.is_finite() || total > 366.0 * 86400.0 {
        return Err(format!("{trimmed:?} is too long"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way users write it (`1m30s`, `250ms`).
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut secs = millis / 1000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(parse("").is_err());
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("5 minutes").unwrap_err().contains("is not a duration"));
        assert!(parse("3w").unwrap_err().contains("unknown unit \"w\""));
        assert!(parse("s").is_err());
        assert!(parse("1..2s").is_err());
        assert!(parse("99999999d").unwrap_err().contains("too long"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1m30s", "250ms", "1h", "45s", "2h5m"] {
            assert_eq!(format(parse(text).unwrap_or_default()), text);
        }
    }
}
