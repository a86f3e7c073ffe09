//! UTC days, the archive's partition: a day number since the Unix epoch, written `YYYY-MM-DD`.

use std::fmt;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// A UTC day: `[start_ms, start_ms + DAY_MS)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day of an instant (unix ms).
    pub fn of_ms(ms: i64) -> Self {
        Self(ms.div_euclid(DAY_MS))
    }

    /// Its first millisecond.
    pub fn start_ms(self) -> i64 {
        self.0.saturating_mul(DAY_MS)
    }

    /// The first millisecond after it.
    pub fn end_ms(self) -> i64 {
        self.next().start_ms()
    }

    /// The day after.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Parses `YYYY-MM-DD` (a real date, years 1970 to 9999).
    pub fn parse(text: &str) -> Result<Self, String> {
        let wrong = || format!("{text:?} is not a date: write YYYY-MM-DD, such as 2026-12-01");
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(wrong());
        }
        let number = |range: std::ops::Range<usize>| {
            let part = &text[range];
            if part.bytes().all(|byte| byte.is_ascii_digit()) { part.parse::<i64>().ok() } else { None }
        };
        let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
            return Err(wrong());
        };
        if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 {
            return Err(wrong());
        }
        let (month, day) = (u32::try_from(month).unwrap_or(0), u32::try_from(day).unwrap_or(0));
        let parsed = Self(probenet_checks::time::days_from_civil(year, month, day));
        // 2026-02-30 would be March 2nd: a date that does not exist does not come back the same.
        if parsed.civil() != (year, month, day) {
            return Err(format!("{text:?} is not a date: that month has no day {day}"));
        }
        Ok(parsed)
    }

    /// Year, month (1-12), day (1-31).
    fn civil(self) -> (i64, u32, u32) {
        probenet_checks::time::civil_from_days(self.0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.civil();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_written_and_read_as_dates() {
        assert_eq!(Day::of_ms(0).to_string(), "1970-01-01");
        // 2026-12-01T00:00:00Z
        let day = Day::of_ms(1_796_083_200_000);
        assert_eq!(day.to_string(), "2026-12-01");
        assert_eq!(day.start_ms(), 1_796_083_200_000);
        assert_eq!(Day::of_ms(day.end_ms() - 1), day);
        assert_eq!(Day::parse("2026-12-01"), Ok(day));
        assert_eq!(Day::parse("2028-02-29").map(|day| day.to_string()).as_deref(), Ok("2028-02-29"));
        // Every day of four centuries comes back as itself.
        for number in 0..146_097 {
            let day = Day(number);
            assert_eq!(Day::parse(&day.to_string()), Ok(day));
        }
    }

    #[test]
    fn what_is_not_a_date_is_refused() {
        for text in ["2026-02-30", "2026-13-01", "2026-1-01", "26-12-01", "2026/12/01", "+026-12-01", "1969-12-31", ""]
        {
            assert!(Day::parse(text).is_err(), "{text}");
        }
        assert_eq!(Day::parse("2026-02-30").unwrap_err(), "\"2026-02-30\" is not a date: that month has no day 30");
    }
}
