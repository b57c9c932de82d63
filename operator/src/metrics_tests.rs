//! Unit tests of `metrics.rs`: per-upgrade series go with their upgrade, and with leadership.

use super::*;
use std::collections::HashSet;

fn export(m: &Metrics, id: &str) {
    m.phase.get_or_create(&UpgradeLabels { upgrade: id.into(), phase: "Soaking".into() }).set(1);
    m.phase.get_or_create(&UpgradeLabels { upgrade: id.into(), phase: "Progressing".into() }).set(0);
    let labels =
        |series: &str| SignalLabels { upgrade: id.into(), signal: "s".into(), series: series.into() };
    m.signal_rate.get_or_create(&labels("baseline")).set(0.01);
    m.signal_statistic.get_or_create(&labels("threshold")).set(5.0);
    m.exporting(id, ["s".to_string()]);
}

#[test]
fn the_series_of_an_upgrade_that_is_gone_are_dropped_and_the_others_kept() {
    let m = Metrics::default();
    export(&m, "ops/gone");
    export(&m, "ops/here");
    m.forget_all_but(&HashSet::from(["ops/here".to_string()]));
    let text = m.render();
    assert!(!text.contains("ops/gone"), "{text}");
    assert!(text.contains(r#"upgrade="ops/here""#), "{text}");
}

#[test]
fn a_replica_that_stops_leading_exports_no_upgrade_series() {
    let m = Metrics::default();
    m.leading.set(1);
    export(&m, "ops/up");
    m.not_leading();
    let text = m.render();
    assert!(!text.contains("upgrade="), "{text}");
    assert!(text.contains("maintenance_operator_leading 0"), "{text}");
}
