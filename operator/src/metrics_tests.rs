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
    m.signals_now(id, ["s".to_string()]);
    m.conditions_now(id, [("Blocked".into(), "True".into(), "TargetNotFound".into())]);
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
fn the_series_of_a_signal_read_no_more_are_dropped_and_the_others_kept() {
    let m = Metrics::default();
    export(&m, "ops/up");
    let labels = SignalLabels { upgrade: "ops/up".into(), signal: "t".into(), series: "observed".into() };
    m.signal_rate.get_or_create(&labels).set(0.02);
    m.signals_now("ops/up", ["s".to_string(), "t".to_string()]);
    m.signals_now("ops/up", ["t".to_string()]);
    let text = m.render();
    assert!(!text.contains(r#"signal="s""#), "{text}");
    assert!(text.contains(r#"signal="t""#), "{text}");
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

/// The alerts of config/monitoring compare failures with successes over a window: both series
/// must exist at 0 before either moves, or the first failure (or success) is never an increase.
#[test]
fn every_result_of_history_writes_and_notifications_is_exported_from_the_start() {
    let text = Metrics::default().render();
    for series in [
        r#"maintenance_operator_history_writes_total{result="written"} 0"#,
        r#"maintenance_operator_history_writes_total{result="failed"} 0"#,
        r#"maintenance_operator_notifications_total{result="delivered"} 0"#,
        r#"maintenance_operator_notifications_total{result="failed"} 0"#,
        r#"maintenance_operator_rollbacks_total{reason="RegressionDetected"} 0"#,
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
}

/// An alert on a condition held for a while sees one series per condition: the one it had
/// before goes when its status or reason changes.
#[test]
fn a_condition_that_changes_leaves_no_series_behind() {
    let m = Metrics::default();
    m.conditions_now("ops/a", [("Blocked".into(), "True".into(), "TargetNotFound".into())]);
    m.conditions_now("ops/a", [("Blocked".into(), "False".into(), "TargetsClaimed".into())]);
    let text = m.render();
    assert!(!text.contains("TargetNotFound"), "{text}");
    assert!(
        text.contains(
            r#"upgrade_condition{upgrade="ops/a",type="Blocked",status="False",reason="TargetsClaimed"} 1"#
        ),
        "{text}"
    );
}

/// A signal's name and a condition's reason are text a tenant may write (her upgrade's status,
/// without the status policy): prometheus-client writes label values as they are, so a quote or
/// a newline in one would break every series of the scrape, or add series of her own.
#[test]
fn label_values_are_escaped_so_that_no_text_breaks_the_scrape() {
    let m = Metrics::default();
    let forged = "x\"} 1\nmaintenance_operator_leading{a=\"b\\";
    m.signal_rate
        .get_or_create(&SignalLabels {
            upgrade: "ops/up".into(),
            signal: forged.into(),
            series: "baseline".into(),
        })
        .set(0.5);
    m.conditions_now("ops/up", [("Blocked".into(), "True".into(), forged.into())]);
    let text = m.render();
    let escaped = r#"x\"} 1\nmaintenance_operator_leading{a=\"b\\"#;
    assert!(text.contains(&format!(r#"signal="{escaped}""#)), "{text}");
    assert!(text.contains(r#"type="Blocked",status="True",reason="Other""#), "no word: Other: {text}");
    assert!(!text.lines().any(|l| l.starts_with("maintenance_operator_leading{")), "{text}");
}

/// The manifests' `[::]` takes IPv4 too, so that a probe or scrape of either family reaches it.
#[tokio::test]
async fn listening_on_the_unspecified_ipv6_address_takes_ipv4_too() {
    let listener = super::listen("[::]:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("reached over IPv4");
    accepted.await.unwrap().unwrap();
    // An address of one family is listened on as given.
    let v4 = super::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(v4.local_addr().unwrap().is_ipv4());
}
