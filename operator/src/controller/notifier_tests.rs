//! Unit tests of `notifier.rs`.

use super::*;

#[test]
fn tenant_text_cannot_mention_a_channel_or_forge_a_link_in_slack() {
    let mu: MaintenanceUpgrade = serde_yaml::from_str(
            "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: team-a}\n\
             spec: {stages: [{name: canary, components: [{kind: Deployment, name: web, image: 'web:2'}], soak: 1h}]}",
        )
        .unwrap();
    let n = NotificationStatus {
        id: "default/Blocked/1".into(),
        webhook: "default".into(),
        kind: NotificationKind::Blocked,
        phase: Phase::Pending,
        stage: Some("<!here>".into()),
        reason: "InvalidSpec".into(),
        message: "selector <!channel> is invalid; see <https://evil.example|the runbook> & fix".into(),
        baseline: None,
        observed: None,
        created_at: Utc::now(),
        sent_at: None,
        attempts: 0,
        last_error: None,
        retry_at: None,
        abandoned: false,
    };
    let text = payload(&mu, &n, WebhookFormat::Slack)["text"].as_str().unwrap().to_string();
    assert!(!text.contains("<!") && !text.contains("<https"), "{text}");
    assert!(text.contains("selector &lt;!channel&gt; is invalid"), "{text}");
    assert!(text.contains("&lt;https://evil.example|the runbook&gt; &amp; fix"), "{text}");
    assert!(text.contains("stage &lt;!here&gt;"), "{text}");
    assert!(text.starts_with("*Blocked*: MaintenanceUpgrade team-a/up"), "our own markup stays: {text}");
}

#[test]
fn both_payloads_say_what_where_why_and_how_to_look() {
    let mu: MaintenanceUpgrade = serde_yaml::from_str(
            "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: kube-system}\n\
             spec: {stages: [{name: canary, components: [{kind: DaemonSet, name: c, image: 'c:2'}], soak: 1h}]}",
        )
        .unwrap();
    let n = NotificationStatus {
        id: "oncall/RolledBack/1".into(),
        webhook: "oncall".into(),
        kind: NotificationKind::RolledBack,
        phase: Phase::RolledBack,
        stage: Some("canary".into()),
        reason: "RegressionDetected".into(),
        message: "rolled back to the known-good images".into(),
        baseline: Some(0.0246),
        observed: Some(0.425),
        created_at: chrono::DateTime::parse_from_rfc3339("2026-11-24T03:00:00Z").unwrap().with_timezone(&Utc),
        sent_at: None,
        attempts: 0,
        last_error: None,
        retry_at: None,
        abandoned: false,
    };
    let g = payload(&mu, &n, WebhookFormat::Generic);
    assert_eq!(g["id"], "oncall/RolledBack/1");
    assert_eq!(g["kind"], "RolledBack");
    assert_eq!(
        (g["upgrade"].as_str(), g["namespace"].as_str(), g["phase"].as_str()),
        (Some("up"), Some("kube-system"), Some("RolledBack"))
    );
    assert_eq!(g["kubectl"], "kubectl maintenance status up -n kube-system");
    assert_eq!(g["baseline"], 0.0246);
    let s = payload(&mu, &n, WebhookFormat::Slack)["text"].as_str().unwrap().to_string();
    assert!(
        s.starts_with("*RolledBack*: MaintenanceUpgrade kube-system/up, stage canary (RegressionDetected"),
        "{s}"
    );
    assert!(s.contains("error rate 42.50% against a baseline of 2.46%"), "{s}");
}
