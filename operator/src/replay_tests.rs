//! Unit tests of `replay.rs`.

use super::*;

#[test]
fn bad_rows_are_named_by_line() {
    let cases = [
        ("", "empty"),
        ("time,a,b\n", "line 1: expected the header"),
        ("ts,attempts,errors\n", "no rows"),
        ("ts,attempts,errors\n2026-01-01T00:00:00Z,10\n", "line 2: expected 3 fields"),
        ("ts,attempts,errors\nyesterday,10,1\n", "line 2: ts \"yesterday\" is not RFC 3339"),
        ("ts,attempts,errors\n2026-01-01T00:00:00Z,-1,0\n", "line 2: attempts \"-1\""),
        ("ts,attempts,errors\n2026-01-01T00:00:00Z,10,11\n", "line 2: errors (11) exceed attempts (10)"),
        (
            "ts,attempts,errors\n2026-01-01T00:01:00Z,10,1\n2026-01-01T00:02:00Z,10,1\n2026-01-01T00:04:00Z,10,1\n",
            "line 4: rows must be evenly spaced",
        ),
        ("ts,attempts,errors\n2026-01-01T00:01:00Z,10,1\n2026-01-01T00:01:00Z,10,1\n", "line 3: ts"),
    ];
    for (text, want) in cases {
        let err = parse_trace(text).unwrap_err();
        assert!(err.contains(want), "{want:?} in {err:?}");
    }
}

/// The reconstruction in bench/: upgraded at 22:56 EDT, the window closing at 02:00 EDT.
#[test]
fn the_incident_is_rolled_back_inside_its_window() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/incident-2022-10-18.csv");
    let rows = parse_trace(&std::fs::read_to_string(path).unwrap()).unwrap();
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let o = replay(&rows, at("2022-10-19T02:56:00Z"), &RegressionRule::default()).unwrap();
    assert_eq!(o.verdict, "rollback", "{}", o.reason);
    let decided = o.decided_at.unwrap();
    assert!(decided < at("2022-10-19T06:00:00Z"), "rolled back at {decided}, after the window");
    assert!(o.suspect_at.is_some_and(|t| t < decided), "warned before the rollback");
}

#[test]
fn replay_decides_like_the_detector() {
    let mut text = String::from("ts,attempts,errors\n");
    let start = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc);
    for i in 0..(48 * 60) {
        let t = start + chrono::Duration::minutes(i);
        let errors = if i > 24 * 60 + 120 { 3 } else { 1 };
        text.push_str(&format!("{},100,{errors}\n", t.to_rfc3339()));
    }
    let rows = parse_trace(&text).unwrap();
    let change = start + chrono::Duration::hours(24);
    let o = replay(&rows, change, &RegressionRule::default()).unwrap();
    assert_eq!(o.verdict, "rollback");
    let h = o.hours_after_change.unwrap();
    assert!((2.0..3.5).contains(&h), "{h}");
    assert!(o.suspect_at.is_some_and(|t| t < o.decided_at.unwrap()), "warned before the rollback");
    assert!(plot_svg(&o, 10).contains("rollback") && plot_svg(&o, 10).contains("suspect"));
    let healthy = replay(&rows[..(24 * 60 + 100)], change, &RegressionRule::default()).unwrap();
    assert_eq!(healthy.verdict, "pass");
    assert!(healthy.decided_at.is_none());
}
