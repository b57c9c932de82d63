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
