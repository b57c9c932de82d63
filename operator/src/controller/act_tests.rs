//! Unit tests of `act.rs`.

use super::*;
use crate::crd::{DetectorState, Phase, SignalStatus};

#[test]
fn metrics_say_which_number_is_a_rate_and_which_the_statistic() {
    let m = Metrics::default();
    let mut after = MaintenanceUpgradeStatus { phase: Phase::Soaking, ..Default::default() };
    after.analysis.push(SignalStatus {
        name: "pods".into(),
        statistic: Some(7.5),
        threshold: Some(12.0),
        detector: DetectorState { last_bucket_rate: 0.03, last_bucket_baseline: 0.01, ..Default::default() },
        ..Default::default()
    });
    record_metrics(&m, "ops/up", &MaintenanceUpgradeStatus::default(), &after);
    let text = m.render();
    for line in [
        r#"maintenance_operator_signal_error_rate{upgrade="ops/up",signal="pods",series="observed"} 0.03"#,
        r#"maintenance_operator_signal_error_rate{upgrade="ops/up",signal="pods",series="baseline"} 0.01"#,
        r#"maintenance_operator_signal_statistic{upgrade="ops/up",signal="pods",series="statistic"} 7.5"#,
        r#"maintenance_operator_signal_statistic{upgrade="ops/up",signal="pods",series="threshold"} 12.0"#,
        r#"maintenance_operator_upgrade_phase{upgrade="ops/up",phase="Soaking"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[test]
fn an_event_of_an_upgrade_with_a_long_name_is_named_within_the_api_servers_bound() {
    let nanos = u64::MAX as i128; // 16 hex digits
    assert_eq!(event_name("up", 255), "up.ff");
    // A name of 253 characters (the most a MaintenanceUpgrade may have): its Event's name is cut
    // to 253 too, and still a DNS subdomain (no '-' or '.' left before the time).
    let long = "a".repeat(253);
    assert_eq!(event_name(&long, nanos), format!("{}.ffffffffffffffff", "a".repeat(236)));
    let dash = format!("{}-{}", "a".repeat(235), "b".repeat(17));
    let name = event_name(&dash, nanos);
    assert!(name.len() <= 253, "{name}");
    assert!(name.ends_with("a.ffffffffffffffff"), "{name}");
    let dots = format!("{}.{}", "a".repeat(235), "b".repeat(17));
    assert!(event_name(&dots, nanos).ends_with("a.ffffffffffffffff"));
}
