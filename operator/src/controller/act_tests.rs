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

/// Without the status policy a tenant may write her upgrade's status (an ended one is never
/// decided again): its names and reasons must not become unbounded label values.
#[test]
fn a_forged_status_exports_a_bounded_set_of_series() {
    let m = Metrics::default();
    let mut forged = MaintenanceUpgradeStatus { phase: Phase::Succeeded, ..Default::default() };
    let long = "z".repeat(5000);
    forged.analysis.push(SignalStatus { name: long.clone(), statistic: Some(1.0), ..Default::default() });
    for i in 0..1000 {
        forged.analysis.push(SignalStatus {
            name: format!("s{i}"),
            statistic: Some(1.0),
            ..Default::default()
        });
    }
    for (type_, reason) in [("Blocked", "x".repeat(5000)), ("Made-Up", "Anything".to_string())] {
        forged.conditions.push(crate::crd::Condition {
            type_: type_.into(),
            status: "True".into(),
            reason,
            message: String::new(),
            last_transition_time: chrono::Utc::now(),
            observed_generation: None,
        });
    }
    forged.rollback = Some(crate::crd::RollbackStatus {
        reason: "y".repeat(5000),
        message: String::new(),
        started_at: chrono::Utc::now(),
        completed_at: None,
    });
    record_metrics(&m, "team/up", &MaintenanceUpgradeStatus::default(), &forged);
    let text = m.render();
    let signals = text.lines().filter(|l| l.starts_with("maintenance_operator_signal_statistic{")).count();
    assert!(signals <= 2 * EXPORTED_SIGNALS, "{signals} signal series");
    assert!(!text.contains("Made-Up"), "only the condition types the operator sets");
    assert!(!text.contains("xxxxx") && !text.contains("yyyyy"), "no unbounded reason");
    assert!(!text.contains("zzzzz"), "no unbounded signal name");
    assert!(text.contains(r#"type="Blocked",status="True",reason="Other""#), "{text}");
    assert!(text.contains(r#"maintenance_operator_rollbacks_total{reason="Other"} 1"#), "{text}");
}
