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
#[path = "timefmt_tests.rs"]
mod tests;
