//! Unit tests of `terminal.rs`: status text cannot drive the terminal.

use super::{escaped, safe};

#[test]
fn control_characters_are_shown_not_sent_to_the_terminal() {
    let forged = "ok\x1b[2J\x07\r\nNAMESPACE kube-system";
    assert_eq!(safe(forged, false), r"ok\u{1b}[2J\u{7}\u{d}\u{a}NAMESPACE kube-system");
    assert_eq!(safe(forged, true), "ok\\u{1b}[2J\\u{7}\\u{d}\nNAMESPACE kube-system");
    assert_eq!(safe("stage canary: 2 of 20 nodes", false), "stage canary: 2 of 20 nodes");
}

/// A newline inside a status field is the field's, not a line of the view: escaped in every
/// string of the upgrade before the view joins its lines, so no field can add a row of its own.
#[test]
fn a_newline_in_a_status_field_cannot_add_a_line_to_the_view() {
    use maintenance_operator::crd::{MaintenanceUpgrade, MaintenanceUpgradeStatus};
    let mut mu: MaintenanceUpgrade = serde_json::from_value(serde_json::json!({
        "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
        "metadata": {"name": "up", "namespace": "team-a"},
        "spec": {"stages": [{"name": "fleet", "soak": "1h", "components": [{"kind": "DaemonSet", "name": "connector", "image": "connector:2"}]}]}
    }))
    .unwrap();
    mu.status =
        Some(MaintenanceUpgradeStatus { message: "ok\nStage fleet  Passed".into(), ..Default::default() });
    let view = maintenance_operator::timeline::view(&escaped(&mu), chrono::Utc::now(), &[]);
    assert!(!view.lines().any(|l| l.starts_with("Stage fleet  Passed")), "{view}");
    assert!(view.contains(r"ok\u{a}Stage fleet  Passed"), "{view}");
}

/// ... nor a newline in a map's key: a canary's nodeSelector labels are the tenant's keys, which
/// the view prints (`zone=b`).
#[test]
fn a_newline_in_a_key_cannot_add_a_line_to_the_view() {
    use maintenance_operator::crd::{MaintenanceUpgrade, MaintenanceUpgradeStatus};
    let mut mu: MaintenanceUpgrade = serde_json::from_value(serde_json::json!({
        "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
        "metadata": {"name": "up", "namespace": "team-a"},
        "spec": {"stages": [{"name": "canary", "soak": "1h", "components": [{"kind": "DaemonSet", "name": "connector",
            "image": "connector:2", "canary": {"nodeSelector": {"zone\nStage fleet  Passed": "b"}}}]}]}
    }))
    .unwrap();
    let st: MaintenanceUpgradeStatus = serde_json::from_value(serde_json::json!({
        "stages": [{"name": "canary", "phase": "Pending", "components": [{"kind": "DaemonSet", "namespace": "team-a",
            "name": "connector", "desiredImage": "connector:2", "phase": "Claimed"}]}]
    }))
    .unwrap();
    mu.status = Some(st);
    let view = maintenance_operator::timeline::view(&escaped(&mu), chrono::Utc::now(), &[]);
    assert!(view.contains(r"zone\u{a}Stage fleet  Passed=b"), "{view}");
    assert!(!view.lines().any(|l| l.starts_with("Stage fleet  Passed")), "{view}");
}

/// Characters that print nothing but reorder or hide what follows (bidi overrides and isolates,
/// zero-width ones, line and paragraph separators) are shown as escapes too: a tenant's message
/// could otherwise make her row of `list -A` read as another's.
#[test]
fn characters_that_reorder_or_hide_text_are_shown() {
    for c in [
        '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}', '\u{2028}', '\u{2029}', '\u{feff}',
        '\u{61c}',
    ] {
        let shown = safe(&format!("a{c}b"), false);
        assert_eq!(shown, format!("a{}b", c.escape_unicode()), "{:?}", c);
    }
    assert_eq!(safe("déjà vu, 名前", false), "déjà vu, 名前", "ordinary text is left as it is");
}

/// Every other character Unicode says prints nothing (Default_Ignorable_Code_Point) is shown
/// too: a soft hyphen, a Hangul filler or a run of tag characters could otherwise hide text, or
/// make two different names read the same.
#[test]
fn every_character_that_prints_nothing_is_shown() {
    for c in ['\u{ad}', '\u{34f}', '\u{115f}', '\u{3164}', '\u{ffa0}', '\u{e0041}', '\u{e007f}', '\u{fe00}'] {
        let shown = safe(&format!("kube{c}-system"), false);
        assert_eq!(shown, format!("kube{}-system", c.escape_unicode()), "{:?}", c);
    }
}
