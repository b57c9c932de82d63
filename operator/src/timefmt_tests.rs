//! Unit tests of `timefmt.rs`.

use super::*;

#[test]
fn formats_read_the_same_everywhere() {
    let t = DateTime::parse_from_rfc3339("2026-11-24T03:04:05Z").unwrap().with_timezone(&Utc);
    assert_eq!(at(t), "2026-11-24 03:04:05 UTC");
    assert_eq!(clock(t), "03:04:05");
    assert_eq!(duration(Duration::minutes(90)), "1h 30m");
    assert_eq!(duration(Duration::seconds(-5)), "0s", "a negative length reads as none");
}
