//! The scenarios that stop or change a component every other scenario relies on: Prometheus
//! (whose scheduler metrics also count the other scenarios' pods), the API server, the admission
//! policy that guards every upgrade's status, and the installer's settings (and one that measures
//! the operator's memory, best alone). They run one at a time, after the concurrent ones
//! (`make e2e`).

use e2e::*;
use k8s_openapi::api::apps::v1::DaemonSet;
use maintenance_operator::constants::{condition, reason};
use maintenance_operator::crd::{
    ComponentPhase, ComponentStatus, MaintenanceUpgrade, Phase, StagePhase, WorkloadKind,
};
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_prometheus_outage_is_inconclusive_and_the_builtin_signal_needs_no_prometheus() {
    let s = incident_world("prometheus-outage").await;
    // A target of its own for the upgrade judged on Prometheus, beside the connector's.
    s.connector("prom-target", GOOD, false).await;
    tokio::time::sleep(SECS(30)).await; // history for the Prometheus baseline
    s.apply(&prometheus_upgrade("prom", "prom-target", &s.env.prometheus_url)).await;
    let mu = s.wait_phase("prom", Phase::Soaking, SECS(90)).await;
    let baseline = mu.status.unwrap().analysis[0].baseline.clone().expect("baseline from Prometheus history");
    assert!(baseline.attempts > 0, "{baseline:?}");
    s.prometheus(false).unwrap();
    // The built-in signal goes ahead with Prometheus down.
    let builtin = fleet_only(&s.ns, "builtin", "5s", "registry.example.com/secrets-store/connector:v1.3.3");
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
    assert_eq!(s.image("prom-target").await, "registry.example.com/secrets-store/connector:v1.3.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_api_server_restart_mid_soak_loses_and_repeats_nothing() {
    let s = incident_world("apiserver-restart").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let generation = s.generation("connector").await;
    // The control plane's own recovery (the scheduler re-listing after the outage) takes real
    // seconds that cannot be compressed, so the pending limit keeps a realistic margin over it
    // here, as the 5 minute default does in a real cluster.
    let yaml = two_stage(&s.ns, "up", "25s", next)
        .replace("pendingLimit: 3s", "pendingLimit: 20s")
        .replace("progressDeadline: 60s", "progressDeadline: 120s");
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
    // The image with the canary's OnDelete, then the strategy handed back: nothing repeated.
    assert_eq!(s.generation("connector").await, generation + 2, "nothing repeated");
    let stages = mu.status.unwrap().stages;
    assert!(!stages.is_empty() && stages.iter().all(|s| s.phase == StagePhase::Passed), "{stages:?}");
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
        reverted_to: None,
        managed_by: None,
        desired_image: GOOD.into(),
        phase: ComponentPhase::Claimed,
        applied_at: None,
        reverted_at: None,
        message: None,
        also_containers: vec![],
        canary: None,
    });
    let forgery = file("forgery.json", &json!({"status": {"stages": stages}}).to_string());
    // What she sends, as herself: a merge patch of her upgrade.
    let as_tenant = |more: &[&str]| {
        let mut args = vec!["patch", "maintenanceupgrade", "up", "-n", &s.ns, "--as", user, "--type=merge"];
        args.extend_from_slice(more);
        s.env.kubectl(&args)
    };
    let forge = || as_tenant(&["--subresource=status", "--patch-file", &forgery]);
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
    as_tenant(&["-p", r#"{"spec": {"rollback": {"requested": true}}}"#]).unwrap();
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

/// A "Prometheus" that answers every query with an endless matrix, as a trusted Prometheus does
/// for a query over a metric of high cardinality: tens of MiB that never end in time.
async fn flooding_prometheus(answered: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> String {
    use axum::body::{Body, Bytes};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let head = Bytes::from_static(
        br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":["#,
    );
    let point = Bytes::from(r#"[1700000000,"1"],"#.repeat(4096));
    let app = axum::Router::new().fallback(move || {
        let (head, point) = (head.clone(), point.clone());
        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            // 64 MiB, in 64 KiB chunks, without a Content-Length.
            let chunks = std::iter::once(head).chain(std::iter::repeat_n(point, 1024));
            Body::from_stream(futures::stream::iter(chunks.map(Ok::<_, std::io::Error>)))
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_a_hostile_spec_is_refused_or_bounded_and_every_other_upgrade_is_still_judged() {
    let mut s = incident_world("hostile").await;
    let floods = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flood = flooding_prometheus(floods.clone()).await;
    // The installer lists that Prometheus (it is a real one, asked too much); the operator reads
    // its settings when it starts.
    let allowed = format!("{},{flood}", s.env.setting("prometheusAddresses").unwrap());
    s.env.set_setting("prometheusAddresses", &allowed).unwrap();
    s.operator.restart().unwrap();
    let upgrades = |name: &str, target: &str, lookback: &str, interval: &str, address: &str| {
        let signals: String = (0..10)
            .map(|i| {
                format!("      - {{name: s{i}, prometheus: {{address: \"{address}\", errors: sum(e{i}), attempts: sum(a{i})}}}}\n")
            })
            .collect();
        format!(
            "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {{name: {name}}}\nspec:\n  stages:\n    - name: only\n      components: [{{kind: DaemonSet, name: {target}, image: \"{BAD}\"}}]\n      soak: 1h\n  analysis:\n    interval: {interval}\n    baseline: {{lookback: {lookback}}}\n    signals:\n{signals}"
        )
    };
    let api = s.upgrades();
    let refused = |yaml: String| {
        let api = api.clone();
        async move {
            let mu: MaintenanceUpgrade = serde_yaml::from_str(&yaml).unwrap();
            api.create(&Default::default(), &mu).await.expect_err("refused").to_string()
        }
    };
    // A year of history, a week read every second, and an address the installer did not list:
    // refused by the API server, each saying what to fix.
    let e = refused(upgrades("year", "connector", "8760h", "1m", &flood)).await;
    assert!(e.contains("baseline.lookback may be at most 168h"), "{e}");
    let e = refused(upgrades("second", "connector", "168h", "1s", &flood)).await;
    assert!(e.contains("at most 30000 intervals"), "{e}");
    for aimed in ["http://169.254.169.254", "https://kubernetes.default.svc", "http://127.0.0.1:10250"] {
        let e = refused(upgrades("aimed", "connector", "1h", "1m", aimed)).await;
        assert!(e.contains("is not one the installer allows") && e.contains("prometheusAddresses"), "{e}");
    }
    // What gets through: three upgrades, each of ten signals whose week of history (28,800
    // intervals, three range queries each) the flooding Prometheus answers with 64 MiB apiece.
    for i in 0..3 {
        let target = format!("hostile-{i}");
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": target},
            "spec": {"selector": {"matchLabels": {"app": target}}, "template": {"metadata": {"labels": {"app": target}},
                "spec": {"nodeSelector": {"e2e/none": "none"}, "containers": [{"name": "c", "image": GOOD}]}}}});
        s.daemonsets().create(&Default::default(), &serde_json::from_value(ds).unwrap()).await.unwrap();
        s.apply(&upgrades(&format!("flood-{i}"), &target, "168h", "21s", &flood)).await;
    }
    // Meanwhile an ordinary upgrade, with a webhook the installer does not allow (https to this
    // machine: loopback, which `*` never reaches, and not the http://127.0.0.1 entry).
    let hook = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: hook, namespace: {ns}}}\nstringData: {{url: \"https://127.0.0.1:9/steal\"}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: hook, namespace: {ns}}}\nrules: [{{apiGroups: [\"\"], resources: [secrets], resourceNames: [hook], verbs: [get]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: hook, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: hook}}\nsubjects: [{{kind: ServiceAccount, name: maintenance-operator, namespace: maintenance-operator}}]\n",
        ns = s.ns
    );
    let path = s.env.logs.join("hostile-hook.yaml");
    std::fs::write(&path, hook).unwrap();
    s.env.kubectl(&["apply", "-f", path.to_str().unwrap()]).unwrap();
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let ordinary = two_stage(&s.ns, "ordinary", "15s", next)
        + "  notifications:\n    webhooks:\n      - {name: aimed, urlSecretRef: {name: hook}}\n";
    s.apply(&ordinary).await;
    // And one judged on the real Prometheus, whose history reads take turns with the floods.
    s.connector("prom-target", GOOD, false).await;
    s.apply(&prometheus_upgrade("prom-ordinary", "prom-target", &s.env.prometheus_url)).await;
    s.wait_phase("ordinary", Phase::Succeeded, SECS(180)).await;
    assert_eq!(s.image("connector").await, next, "the ordinary upgrade was judged and promoted");
    let mu = s.wait_phase("prom-ordinary", Phase::Succeeded, SECS(120)).await;
    let baseline =
        mu.status.unwrap().analysis[0].baseline.clone().expect("a baseline from Prometheus history");
    assert!(baseline.attempts > 0, "{baseline:?}");
    let mu = s.upgrades().get("ordinary").await.unwrap();
    let n = &mu.status.unwrap().notifications[0];
    let error = n.last_error.clone().unwrap_or_default();
    assert!(n.sent_at.is_none() && error.contains("webhookHosts"), "{n:?}");
    assert!(!error.contains("/steal"), "the URL is a credential: {error}");
    assert!(s.saw_event("ordinary", reason::NOTIFICATION_FAILED).await, "{:?}", s.events("ordinary").await);
    // The flood was cut each time (at 4 MiB for a range query, 256 KiB for an instant one), said
    // in the hostile upgrades' status, and the operator kept within the memory limit its
    // Deployment sets.
    let mu = s.upgrades().get("flood-0").await.unwrap();
    let said = serde_yaml::to_string(&mu.status).unwrap();
    assert!(said.contains("answered with more than"), "{said}");
    let pid = s.operator.pid().expect("the operator is still running");
    let (peak, limit) = (peak_rss_mib(pid).unwrap(), manager_memory_limit_mib(&s.env).unwrap());
    let floods = floods.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "s18: {floods} floods of 64 MiB answered; the operator's peak RSS {peak:.0} MiB (limit {limit:.0} MiB)"
    );
    assert!(floods >= 30, "the hostile upgrades did read: {floods} floods");
    assert!(peak < limit, "peak RSS {peak:.0} MiB over the Deployment's limit of {limit:.0} MiB");
    assert!(s.operator.log().lines().all(|l| !l.contains("panicked")), "the operator never crashes");
    s.stop_background().await;
}

/// The robustness run, short (`make robustness` is the long one): three upgrades through a
/// window, healthy, regressing and deleted mid-soak, under two replicas, while a seeded schedule
/// kills and stops them, restarts the API server, compacts etcd and refuses renewals and final
/// writes; then the audit log, the ends, the targets and the webhook deliveries are checked.
/// Alone: it restarts the API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s31_a_short_robustness_run_under_seeded_faults_breaks_no_guarantee() {
    let cfg = e2e::robustness::Config { seed: 1, faults: 8, per_class: 1 };
    let report = e2e::robustness::run(cfg).await;
    eprintln!("s31: seed {}: {:#?} in {:?}", report.seed, report.injected, report.took);
    assert!(
        report.injected.len() >= 6,
        "too few faults came before the upgrades ended: {:?}",
        report.injected
    );
    assert!(report.violations.is_empty(), "seed {}: {:#?}", report.seed, report.violations);
}
