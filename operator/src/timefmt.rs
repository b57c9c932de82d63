//! Instants and durations as messages show them: one format everywhere, so that a condition, an
//! Event and a log line about the same moment read the same. Pure; it imports nothing of ours.

use chrono::{DateTime, Duration, Utc};

/// An instant, to the second: `2026-11-24 03:00:00 UTC`.
pub fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The time of day only, for spans whose date is plain from the context: `03:00:00`.
pub fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}

/// A length of time as a person writes it: `10m`, `1h 30m`.
pub fn duration(d: Duration) -> String {
    humantime::format_duration(d.to_std().unwrap_or_default()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_the_same_everywhere() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T03:04:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(at(t), "2026-11-24 03:04:05 UTC");
        assert_eq!(clock(t), "03:04:05");
        assert_eq!(duration(Duration::minutes(90)), "1h 30m");
        assert_eq!(duration(Duration::seconds(-5)), "0s", "a negative length reads as none");
    }
}
