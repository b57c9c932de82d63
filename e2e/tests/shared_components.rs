//! The scenarios that stop or remove a component every other scenario relies on: Prometheus
//! (whose scheduler metrics also count the other scenarios' pods), the API server, and the
//! admission policy that guards every upgrade's status. They run one at a time, after the
//! concurrent ones (`make e2e`).

use e2e::*;
use k8s_openapi::api::apps::v1::DaemonSet;
use maintenance_operator::constants::{condition, reason};
use maintenance_operator::crd::{ComponentPhase, ComponentStatus, Phase, StagePhase, WorkloadKind};
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_prometheus_outage_is_inconclusive_and_the_builtin_signal_needs_no_prometheus() {
    let s = incident_world("prometheus-outage").await;
    tokio::time::sleep(SECS(30)).await; // history for the Prometheus baseline
    s.apply(&prometheus_upgrade("prom", "connector-canary", &s.env.prometheus_url)).await;
    let mu = s.wait_phase("prom", Phase::Soaking, SECS(90)).await;
    let baseline = mu.status.unwrap().analysis[0].baseline.clone().expect("baseline from Prometheus history");
    assert!(baseline.attempts > 0, "{baseline:?}");
    s.prometheus(false).unwrap();
    // The built-in signal goes ahead with Prometheus down.
    let builtin = two_stage(&s.ns, "builtin", "5s", "registry.example.com/secrets-store/connector:v1.3.3")
        .replace("    - name: canary\n      components: [{kind: DaemonSet, name: connector-canary, image: \"registry.example.com/secrets-store/connector:v1.3.3\"}]\n      soak: 5s\n      progressDeadline: 60s\n", "");
    s.apply(&builtin).await;
    // The Prometheus signal: inconclusive, and the soak is not ended on it.
    let mu = s
        .wait_for("prom", SECS(90), "inconclusive past the soak", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.phase == Phase::Soaking
                    && st.stages[0]
                        .soak_ends_at
                        .is_some_and(|e| chrono::Utc::now() > e + chrono::Duration::seconds(8))
                    && st.message.contains("no conclusive verdict")
            })
        })
        .await;
    let healthy = condition_of(&mu, condition::HEALTHY);
    assert_eq!(healthy.status, "Unknown");
    assert!(healthy.message.contains("could not read the signal"), "{}", healthy.message);
    assert!(mu.status.as_ref().unwrap().rollback.is_none(), "never reverts on missing data");
    s.wait_phase("builtin", Phase::Succeeded, SECS(120)).await;
    // Prometheus is back: the analysis resumes and the upgrade is promoted.
    s.prometheus(true).unwrap();
    s.wait_phase("prom", Phase::Succeeded, SECS(90)).await;
    assert_eq!(s.image("connector-canary").await, "registry.example.com/secrets-store/connector:v1.3.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_api_server_restart_mid_soak_loses_and_repeats_nothing() {
    let s = incident_world("apiserver-restart").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let (g_canary, g_fleet) = (s.generation("connector-canary").await, s.generation("connector").await);
    // The control plane's own recovery (the scheduler re-listing after the outage) takes real
    // seconds that cannot be compressed, so the pending limit keeps a realistic margin over it
    // here, as the 5 minute default does in a real cluster.
    let yaml = two_stage(&s.ns, "up", "25s", next).replace("pendingLimit: 3s", "pendingLimit: 20s");
    s.apply(&yaml).await;
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    let env = s.env.clone();
    let ns = s.ns.clone();
    tokio::task::spawn_blocking(move || {
        let probe = Scenario::restart_apiserver_in(&env, SECS(20), SECS(120));
        (probe, ns)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(180)).await;
    assert_eq!(s.image("connector").await, next);
    assert_eq!(s.generation("connector-canary").await, g_canary + 1, "nothing repeated");
    assert_eq!(s.generation("connector").await, g_fleet + 1);
    assert!(mu.status.unwrap().stages.iter().all(|s| s.phase == StagePhase::Passed));
}

/// Puts the installed policies back however the scenario that removed one ends.
struct Reinstall(std::sync::Arc<Env>);

impl Drop for Reinstall {
    fn drop(&mut self) {
        if let Err(e) = self.0.prepare_operator() {
            eprintln!("could not put the install back: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s17_a_tenant_cannot_aim_the_operator_through_the_status_of_her_upgrade() {
    // A tenant whose Role grants every verb on upgrades and their status, as wildcard
    // namespace-admin roles do, in a namespace nobody trusts to target others.
    let mut s = Scenario::new("status-forgery").await;
    let user = "team-a-dev";
    let victim = "e2e-forgery-victim";
    let kube_system: kube::Api<DaemonSet> = kube::Api::namespaced(s.client.clone(), "kube-system");
    let _ = kube_system.delete(victim, &Default::default()).await;
    let ds = json!({"metadata": {"name": victim}, "spec": {"selector": {"matchLabels": {"app": victim}},
        "template": {"metadata": {"labels": {"app": victim}}, "spec": {
            "nodeSelector": {"e2e/none": "none"},
            "containers": [{"name": "connector", "image": GOOD}]}}}});
    kube_system.create(&Default::default(), &serde_json::from_value(ds).unwrap()).await.unwrap();
    let rbac = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: upgrades, namespace: {ns}}}
rules:
  - apiGroups: [maintenance.dev]
    resources: [maintenanceupgrades, maintenanceupgrades/status]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: upgrades, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: upgrades}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]
"#,
        ns = s.ns
    );
    let logs = s.env.logs.clone();
    let file = |name: &str, text: &str| {
        let path = logs.join(format!("status-forgery-{name}"));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    s.env.kubectl(&["apply", "-f", &file("rbac.yaml", &rbac)]).unwrap();
    // An ordinary upgrade of the tenant's own DaemonSet, soaking.
    s.connector("own", GOOD, true).await;
    s.workload(Duration::from_millis(100), SECS(20));
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    s.apply(&format!(
        r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {{name: up}}
spec:
  stages:
    - name: only
      components: [{{kind: DaemonSet, name: own, image: "{next}"}}]
      soak: 10m
      progressDeadline: 60s
  analysis:
    interval: 2s
    baseline: {{observe: 10s}}
    signals:
      - name: pods
        kubernetes: {{namespaces: [{ns}], labelSelector: app=email-sync, pendingLimit: 3s}}
"#,
        ns = s.ns
    ))
    .await;
    let mu = s.wait_phase("up", Phase::Soaking, SECS(90)).await;

    // Her forgery: a claimed kube-system component whose "known-good" image is hers.
    let mut stages = mu.status.unwrap().stages;
    stages[0].components.push(ComponentStatus {
        kind: WorkloadKind::DaemonSet,
        namespace: "kube-system".into(),
        name: victim.into(),
        container: Some("connector".into()),
        known_good_image: Some(BAD.into()),
        known_good_digest: None,
        managed_by: None,
        desired_image: GOOD.into(),
        phase: ComponentPhase::Claimed,
        applied_at: None,
        reverted_at: None,
        message: None,
    });
    let forgery = file("forgery.json", &json!({"status": {"stages": stages}}).to_string());
    let forge = || {
        s.env.kubectl(&[
            "patch",
            "maintenanceupgrade",
            "up",
            "-n",
            &s.ns,
            "--as",
            user,
            "--subresource=status",
            "--type=merge",
            "--patch-file",
            &forgery,
        ])
    };
    // The API server refuses it, saying who writes the status and what to change instead.
    let refused = forge().expect_err("the status policy refuses the tenant's write").to_string();
    for said in ["only maintenance-operator", "writes the status", "spec.rollback.requested"] {
        assert!(refused.contains(said), "the refusal says {said:?}: {refused}");
    }

    // Without the policy the operator holds by itself: the forged record is set aside, a
    // requested rollback reverts only what the upgrade claimed, and kube-system is untouched.
    let _reinstall = Reinstall(s.env.clone());
    s.env.kubectl(&["delete", "validatingadmissionpolicybinding", "maintenance-operator-status"]).unwrap();
    let deadline = std::time::Instant::now() + SECS(30);
    while let Err(e) = forge() {
        // The API server drops a deleted binding from its policy cache within a second or so.
        assert!(std::time::Instant::now() < deadline, "the forgery still refused: {e}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.env
        .kubectl(&[
            "patch",
            "maintenanceupgrade",
            "up",
            "-n",
            &s.ns,
            "--as",
            user,
            "--type=merge",
            "-p",
            r#"{"spec": {"rollback": {"requested": true}}}"#,
        ])
        .unwrap();
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(90)).await;
    assert_eq!(s.image("own").await, GOOD, "her own target is reverted");
    let untouched = kube_system.get(victim).await.unwrap();
    let image = untouched.spec.unwrap().template.spec.unwrap().containers[0].image.clone();
    assert_eq!(image.as_deref(), Some(GOOD), "kube-system is untouched");
    assert!(
        untouched.metadata.annotations.unwrap_or_default().keys().all(|k| !k.starts_with("maintenance.dev/"))
    );
    assert!(!untouched.metadata.labels.unwrap_or_default().keys().any(|k| k.starts_with("maintenance.dev/")));
    let forged = mu.status.unwrap().stages[0].components.iter().find(|c| c.name == victim).cloned().unwrap();
    assert_eq!(forged.phase, ComponentPhase::Conflict, "{forged:?}");
    assert!(s.saw_event("up", reason::NOT_IN_SPEC).await, "{:?}", s.events("up").await);
    let _ = kube_system.delete(victim, &Default::default()).await;
}
