//! Unit tests of `recorder.rs`.

use super::*;

#[test]
fn a_replica_that_stops_recording_reports_no_scopes() {
    let gauge = Gauge::default();
    let guard = ZeroOnDrop(gauge.clone());
    gauge.set(3);
    drop(guard);
    assert_eq!(gauge.get(), 0);
}

fn recorder(scope: Option<&str>) -> Recorder {
    let recording =
        Recording { bucket: chrono::Duration::minutes(10), pending_limit: chrono::Duration::minutes(5) };
    Recorder::new("maintenance-operator".into(), scope, recording, vec![])
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The ConfigMap may be edited by hand (or written by a replica whose clock ran ahead): what is
/// loaded never crashes the operator nor poisons a baseline. An index entry with a pending limit
/// no signal can have (its next count would overflow), or a key that is not a scope's (the whole
/// recording's, or one the API server refuses), is left out; rows dated ahead of now are dropped,
/// so that they neither push the week out nor stop the recording until that date.
#[test]
fn a_hand_edited_recording_is_taken_in_without_its_impossible_parts() {
    let r = recorder(None);
    let now = at("2026-12-07T10:00:00Z");
    let entry = |key: &str, limit: i64| {
        format!(
            r#"{{"key":"{key}","namespaces":["team-a"],"labelSelector":"","pendingLimitSeconds":{limit},"namedAt":"2026-12-07T09:00:00Z","namespace":"team-a"}}"#
        )
    };
    let rows = "ts,attempts,errors\n2026-12-07T09:00:00Z,10,1\n2026-12-07T09:10:00Z,10,0\n2027-12-07T09:10:00Z,10,0\n";
    let index = format!(
        "[{},{},{},{}]",
        entry("pod-start-failures_scope-1.csv", 300),
        entry("pod-start-failures_scope-2.csv", i64::MAX),
        entry("pod-start-failures.csv", 60),
        entry("a/b", 60)
    );
    let data = BTreeMap::from([
        ("pod-start-failures.csv".to_string(), rows.to_string()),
        ("pod-start-failures_scopes.json".to_string(), index),
        ("pod-start-failures_scope-1.csv".to_string(), rows.to_string()),
        ("pod-start-failures_scope-2.csv".to_string(), rows.to_string()),
        ("a/b".to_string(), rows.to_string()),
    ]);
    let mut h = Recordings::default();
    r.take_in(data, &mut h, now);
    assert_eq!(h.scoped.keys().collect::<Vec<_>>(), ["pod-start-failures_scope-1.csv"]);
    assert_eq!(h.whole.rows.len(), 2, "the row a year ahead is dropped");
    assert_eq!(h.scoped["pod-start-failures_scope-1.csv"].recorded.rows.len(), 2);
    assert!(h.whole.last_at().is_some_and(|t| t <= now));
    // The next counts of what was taken in (a pending limit of i64::MAX seconds panicked here).
    for s in h.scoped.values() {
        let recording = Recordings::recording_of(&r.recording, s);
        s.recorded.clone().due(&recording, now, Some(now - chrono::Duration::hours(4)));
    }
}

/// A namespace named `csv` is a namespace like any other: its operator's keys are its own.
#[test]
fn an_operator_of_namespace_csv_keeps_keys_of_its_own() {
    assert_eq!(recorder(None).prefix(), "pod-start-failures");
    assert_eq!(recorder(Some("csv")).prefix(), "pod-start-failures.csv");
}
