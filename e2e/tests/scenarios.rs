//! The scenarios that run side by side, each in its own namespace, on its own zone nodes, with
//! its own operator process running as the operator's ServiceAccount. Given an upgrade, when the
//! error rate creeps, then the target is back on its known-good image. Time is compressed:
//! seconds stand for hours. Those that stop a shared component are in `shared_components.rs`.

use e2e::*;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use maintenance_operator::constants::{
    CLAIMED_LABEL, FIELD_MANAGER, OWNER_ANNOTATION, OWNER_UID_ANNOTATION, condition, reason,
};
use maintenance_operator::crd::{ComponentPhase, MaintenanceUpgrade, Phase, StagePhase};
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_healthy_two_stage_upgrade_succeeds() {
    let mut s = incident_world("healthy").await;
    s.fault_injector(&["connector"], SECS(60), 0.6); // never triggered: GOOD -> v1.3.3
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let generation = s.generation("connector").await;
    let original = s.strategy("connector").await;
    let uid = s.apply(&two_stage(&s.ns, "up", "10s", next)).await.metadata.uid.unwrap();
    // Claimed targets carry the label the operator watches them by, naming the upgrade.
    s.wait_phase("up", Phase::Soaking, SECS(60)).await;
    assert_eq!(s.argo_health("up").0, "Progressing", "Argo CD's view while it soaks");
    // The image change is attributable to the operator's one field manager, which is what
    // Argo CD's ignoreDifferences.managedFieldsManagers names.
    let connector = s.daemonsets().get("connector").await.unwrap();
    let owners = image_owners(&connector.metadata, "connector");
    assert!(owners.contains(&FIELD_MANAGER), "managers of the image: {owners:?}");
    let claimed = ListParams::default().labels(&format!("{CLAIMED_LABEL}={uid}"));
    let names: Vec<String> =
        s.daemonsets().list(&claimed).await.unwrap().iter().map(|d| d.name_any()).collect();
    assert_eq!(names, ["connector"], "the target is watched as claimed");
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(150)).await;
    let st = mu.status.clone().unwrap();
    assert!(s.daemonsets().list(&claimed).await.unwrap().items.is_empty(), "released: no label left");
    assert_eq!(s.image("connector").await, next);
    // Two writes of the spec: the image with the canary's OnDelete, then the strategy handed back.
    assert_eq!(s.generation("connector").await, generation + 2, "nothing written twice");
    assert_eq!(s.strategy("connector").await, original, "restored exactly");
    for c in st.stages.iter().flat_map(|s| &s.components) {
        assert_eq!(c.known_good_image.as_deref(), Some(GOOD), "known-good recorded for {}", c.name);
        assert_eq!(c.container.as_deref(), Some("connector"));
    }
    assert_eq!(st.stages.len(), 2, "{:?}", st.stages);
    assert!(st.stages.iter().all(|s| s.phase == StagePhase::Passed));
    assert_eq!(condition_of(&mu, condition::COMPLETE).status, "True");
    assert_eq!(condition_of(&mu, condition::HEALTHY).status, "True");
    assert_eq!(s.argo_health("up").0, "Healthy");
    let a = &st.analysis[0];
    assert!(a.baseline.as_ref().unwrap().attempts >= 50, "the baseline saw the workload: {a:?}");
    // Released: no ownership annotation left on the targets.
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert!(ds.metadata.annotations.unwrap_or_default().keys().all(|k| !k.starts_with("maintenance.dev/")));
    for r in [
        reason::CLAIMED,
        reason::STAGE_STARTED,
        reason::IMAGE_SET,
        reason::ROLLED_OUT,
        reason::SOAK_PASSED,
        reason::SUCCEEDED,
    ] {
        assert!(s.saw_event("up", r).await, "Event {r}: {:?}", s.events("up").await);
    }
    assert!(!s.has_event("up", reason::CHANGED_EXTERNALLY).await, "{:?}", s.events("up").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s02_slow_regression_in_the_canary_soak_is_reverted() {
    let mut s = incident_world("canary-regression").await;
    s.fault_injector(&["connector"], SECS(60), 0.6);
    let before = s.pods_by_node("connector").await;
    let original = s.strategy("connector").await;
    // The soak outlasts the 60 s ramp by half: a 30 s live baseline acts only above 5.4x, which
    // the ramp passes near its end, and a loaded machine can take a few seconds more to see it.
    s.apply(&two_stage(&s.ns, "up", "90s", BAD)).await;
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(180)).await;
    let st = mu.status.clone().unwrap();
    assert_eq!(s.image("connector").await, GOOD, "the canary is back on its known-good image");
    assert_eq!(st.stages[1].phase, StagePhase::Pending, "the fleet stage never began");
    s.wait_rolled_out("connector", SECS(60)).await;
    assert_eq!(s.strategy("connector").await, original, "restored exactly");
    let canary: Vec<&String> = st.stages[0].components[0].canary.iter().flat_map(|c| &c.nodes).collect();
    assert_eq!(canary.len(), 2, "{canary:?}");
    s.assert_remade_only("connector", &before, |n| canary.iter().any(|c| *c == n), GOOD).await;
    let rb = st.rollback.clone().unwrap();
    assert_eq!(rb.reason, reason::REGRESSION);
    assert!(rb.message.contains("against a baseline of"), "baseline vs observed: {}", rb.message);
    let baseline = st.analysis[0].baseline.as_ref().unwrap().rate;
    assert!((0.01..0.03).contains(&baseline), "the baseline is the background 2 %: {baseline}");
    assert_eq!(st.stages[0].phase, StagePhase::RolledBack);
    assert!(st.stages[0].soak_ends_at.unwrap() > rb.started_at, "caught during the soak");
    assert_eq!(condition_of(&mu, condition::ROLLED_BACK).status, "True");
    let healthy = condition_of(&mu, condition::HEALTHY);
    assert_eq!((healthy.status.as_str(), healthy.reason.as_str()), ("False", reason::REGRESSION));
    let (argo, said) = s.argo_health("up");
    assert_eq!(argo, "Degraded", "Argo CD's view of a rollback: {said}");
    assert!(
        s.saw_event("up", reason::REVERTED).await && s.saw_event("up", reason::ROLLED_BACK).await,
        "{:?}",
        s.events("up").await
    );
    let events = s.events("up").await;
    assert!(events.iter().any(|e| e.starts_with(reason::REGRESSION) && e.contains("baseline")), "{events:?}");
    // The capped steps make the statistic pass two thirds of the threshold first: a warning.
    assert!(events.iter().any(|e| e.starts_with(reason::SUSPECTED)), "{events:?}");
    // Never re-applied on its own.
    tokio::time::sleep(SECS(6)).await;
    assert_eq!(s.image("connector").await, GOOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s03_a_regression_of_the_second_component_reverts_both_last_first() {
    // The one scenario of two components, each a DaemonSet of its own: the order between them.
    let mut s = two_component_world("fleet-regression").await;
    s.fault_injector(&["connector"], SECS(60), 0.6);
    let (g_provider, g_connector) = (s.generation("provider").await, s.generation("connector").await);
    s.apply(&two_components(&s.ns, "up", "60s", BAD)).await;
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(240)).await;
    let st = mu.status.clone().unwrap();
    assert!(st.stages[0].passed_at.is_some(), "the provider passed first");
    assert_eq!(s.image("provider").await, GOOD);
    assert_eq!(s.image("connector").await, GOOD);
    assert_eq!(s.generation("provider").await, g_provider + 2, "applied once, reverted once");
    assert_eq!(s.generation("connector").await, g_connector + 2);
    assert!(
        st.stages[1].reverted_at.unwrap() <= st.stages[0].reverted_at.unwrap(),
        "last stage reverted first"
    );
    let reverted = |e: &String| e.starts_with(reason::REVERTED);
    let events = s.events_when("up", |evs| evs.iter().filter(|e| reverted(e)).count() >= 2).await;
    let reverts: Vec<String> = events.into_iter().filter(reverted).collect();
    assert_eq!(reverts.len(), 2, "{reverts:?}");
    assert!(
        reverts[0].contains("/connector ") && reverts[1].contains("/provider "),
        "last stage first: {reverts:?}"
    );
}

/// The upgrade is Blocked for `why`, with a message that `says` what to fix, announced by an
/// Event, and the connector is untouched.
async fn blocked_and_unchanged(s: &Scenario, name: &str, why: &str, says: &str) {
    let mu = s
        .wait_for(name, SECS(30), "blocked", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| c.type_ == condition::BLOCKED && c.reason == why)
            })
        })
        .await;
    let blocked = condition_of(&mu, condition::BLOCKED);
    assert!(blocked.message.contains(says), "{name}: expected {says:?} in {}", blocked.message);
    assert!(s.saw_event(name, why).await, "{name}: Event {why}: {:?}", s.events(name).await);
    assert_eq!(s.image("connector").await, GOOD, "{name}: nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s06_bad_input_is_rejected_or_reported_never_half_applied() {
    let s = Scenario::new("bad-input").await;
    s.connector("connector", GOOD, false).await;
    let good = two_components(&s.ns, "bad", "10s", BAD).replace("name: provider,", "name: connector-x,");
    let cases: &[(&str, &str, &str)] = &[
        ("no stages", "  stages:\n", "  stages: []\n  x:\n"),
        (
            "empty components",
            "components: [{kind: DaemonSet, name: connector-x,",
            "components: []\n      y: [{kind: DaemonSet, name: connector-x,",
        ),
        ("duplicate target across stages", "name: connector-x,", "name: connector,"),
        (
            "bad image",
            &format!(
                "image: \"{BAD}\"}}]\n      soak: 10s\n      progressDeadline: 60s\n    - name: connector"
            ),
            "image: \"Not An Image!\"}]\n      soak: 10s\n      progressDeadline: 60s\n    - name: connector",
        ),
        ("unknown kind", "{kind: DaemonSet, name: connector-x", "{kind: CronJob, name: connector-x"),
        (
            "zero duration",
            "soak: 10s\n      progressDeadline: 60s\n    - name: connector",
            "soak: 0s\n      progressDeadline: 60s\n    - name: connector",
        ),
        (
            "negative duration",
            "progressDeadline: 60s\n    - name: connector",
            "progressDeadline: -60s\n    - name: connector",
        ),
        (
            "invalid time zone",
            "  stages:\n",
            "  window: {timeZone: Mars/Olympus, recurring: [{days: [Tue], start: \"22:00\", duration: 4h}]}\n  stages:\n",
        ),
        (
            "exclusion ends before it starts",
            "  stages:\n",
            "  window: {timeZone: UTC, exclusions: [{start: \"2026-12-02T00:00:00Z\", end: \"2026-12-01T00:00:00Z\"}]}\n  stages:\n",
        ),
        // CEL's getHours takes UTC offsets, which are not IANA names.
        (
            "time zone as an offset",
            "  stages:\n",
            "  window: {timeZone: \"+05:30\", recurring: [{days: [Tue], start: \"22:00\", duration: 4h}]}\n  stages:\n",
        ),
        ("interval too short", "interval: 2s", "interval: 5ms"),
        (
            "lookback longer than a week",
            "baseline: {observe: 30s}",
            "baseline: {observe: 30s, lookback: 8760h}",
        ),
        (
            "a Prometheus history of too many intervals",
            "    signals:\n",
            "    signals:\n      - {name: p, prometheus: {address: \"http://p:9090\", errors: e, attempts: a}}\n",
        ),
        (
            "window longer than a week",
            "  stages:\n",
            "  window: {timeZone: UTC, recurring: [{days: [Mon], start: \"00:00\", duration: 169h}]}\n  stages:\n",
        ),
        (
            "a canary inside a Deployment",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: Deployment, canary: {nodes: 2}, name: connector-x,",
        ),
        (
            "a canary of no nodes",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, canary: {nodes: 0}, name: connector-x,",
        ),
        (
            "a canary of more than all nodes",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, canary: {nodes: \"150%\"}, name: connector-x,",
        ),
        (
            "an empty node selector",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, canary: {nodeSelector: {}}, name: connector-x,",
        ),
        (
            "a node selector value that is no label value",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, canary: {nodeSelector: {zone: \"a,zone!=b\"}}, name: connector-x,",
        ),
        // Larger than the operator's type holds: it would stop every upgrade from being read.
        (
            "a canary beyond any cluster",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, canary: {nodes: 3000000000}, name: connector-x,",
        ),
        (
            "a minimum of attempts beyond the operator's type",
            "regression: {bucket: 2s}",
            "regression: {bucket: 2s, minAttempts: 3000000000}",
        ),
        ("an interval longer than a bucket", "regression: {bucket: 2s}", "regression: {bucket: 1s}"),
        (
            "another container named twice",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, alsoContainers: [{container: a, image: \"r/a:1\"}, {container: a, image: \"r/a:2\"}], name: connector-x,",
        ),
        (
            "another container that is the component's own",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, container: a, alsoContainers: [{container: a, image: \"r/a:1\"}], name: connector-x,",
        ),
        (
            "another container on no image",
            "{kind: DaemonSet, name: connector-x,",
            "{kind: DaemonSet, alsoContainers: [{container: a, image: \"A;B\"}], name: connector-x,",
        ),
        // Each would be a path the operator reads (kube puts a name into the path as it is).
        (
            "a signal's namespace that is no namespace name",
            "kubernetes: {namespaces: [",
            "kubernetes: {namespaces: [\"x?watch=true\", ",
        ),
        (
            "a webhook Secret that is no Secret name",
            "  stages:\n",
            "  notifications: {webhooks: [{name: w, urlSecretRef: {name: \"a/../b\"}}]}\n  stages:\n",
        ),
        (
            "a webhook Secret key that is no Secret key",
            "  stages:\n",
            "  notifications: {webhooks: [{name: w, urlSecretRef: {name: w, key: \"a/b\"}}]}\n  stages:\n",
        ),
    ];
    let want: &[&str] = &[
        "should have at least 1 items",
        "should have at least 1 items",
        "may appear in several stages only to widen a canary inside it",
        "image must be a reference such as",
        "Unsupported value: \"CronJob\"",
        "duration must be greater than zero",
        "should match",
        "timeZone must be an IANA time zone name",
        "exclusion end must be after its start",
        "timeZone must be an IANA time zone name",
        "interval must be at least 1s",
        "baseline.lookback may be at most 168h",
        "baseline.lookback may span at most 30000 intervals",
        "a recurring window lasts at most 168h",
        "canary.nodes and canary.nodeSelector apply to a DaemonSet",
        "canary.nodes in body should be greater than or equal to 1",
        "canary.nodes in body should match '^([1-9][0-9]?|100)%$'",
        "should have at least 1 properties",
        "should match",
        "canary.nodes in body should be less than or equal to 10000",
        "should be less than or equal to 2147483647",
        "analysis.interval may be at most each signal's regression.bucket",
        "alsoContainers names each container once, and not the component's own container",
        "alsoContainers names each container once, and not the component's own container",
        "image must be a reference such as",
        "should match",
        "should match",
        "should match",
    ];
    assert_eq!(cases.len(), want.len());
    for ((what, from, to), want) in cases.iter().zip(want) {
        assert!(good.contains(from), "{what}: fixture has {from:?}");
        let yaml = good.replacen(from, to, 1);
        let value: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            s.client.clone(),
            &s.ns,
            &kube::api::ApiResource::erase::<MaintenanceUpgrade>(&()),
        );
        let obj: kube::api::DynamicObject = serde_json::from_value(value).unwrap();
        let err = api.create(&Default::default(), &obj).await.expect_err(what).to_string();
        assert!(err.contains(want), "{what}: expected {want:?} in {err}");
    }
    // Changing the stages of an existing upgrade is refused.
    s.apply(&two_components(&s.ns, "missing", "10s", BAD)).await;
    let patch = serde_json::json!({"spec": {"stages": [{"name": "only", "soak": "1m",
        "components": [{"kind": "DaemonSet", "name": "connector", "image": BAD}]}]}});
    let err = s
        .upgrades()
        .patch("missing", &Default::default(), &kube::api::Patch::Merge(patch))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("stages cannot be changed"), "{err}");
    // Nor reordered: equality on a list keyed by name would ignore the order.
    let mut stages = serde_json::to_value(&s.upgrades().get("missing").await.unwrap().spec.stages).unwrap();
    stages.as_array_mut().unwrap().reverse();
    let patch = serde_json::json!({"spec": {"stages": stages}});
    let err = s
        .upgrades()
        .patch("missing", &Default::default(), &kube::api::Patch::Merge(patch))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be changed or reordered"), "{err}");

    // A target that does not exist: a condition and an Event, and nothing changes.
    let mu = s
        .wait_for("missing", SECS(30), "blocked", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| c.type_ == condition::BLOCKED && c.status == "True")
            })
        })
        .await;
    let blocked = condition_of(&mu, condition::BLOCKED);
    assert_eq!(blocked.reason, reason::TARGET_NOT_FOUND);
    assert!(blocked.message.contains("provider does not exist"), "{}", blocked.message);
    assert!(s.saw_event("missing", reason::TARGET_NOT_FOUND).await);
    assert_eq!(s.image("connector").await, GOOD, "no partial change");

    // A container that does not exist.
    let yaml = two_components(&s.ns, "nocontainer", "10s", BAD)
        .replace("provider, image", "connector, container: sidecar, image")
        .replacen(
            "    - name: connector\n      components: [{kind: DaemonSet, name: connector, image: \"",
            "    - name: connector\n      components: [{kind: DaemonSet, name: connector-y, image: \"",
            1,
        );
    s.apply(&yaml).await;
    blocked_and_unchanged(&s, "nocontainer", reason::CONTAINER_NOT_FOUND, "no container \"sidecar\"").await;
    // A canary larger than the DaemonSet, or one never widened to the rest: said before
    // anything changes (the operator checks what the API server's cost limit or the cluster
    // keeps it from checking).
    let canary = |name: &str, nodes: &str| {
        two_stage(&s.ns, name, "10s", BAD).replacen(
            "canary: {nodes: 2}",
            &format!("canary: {{nodes: {nodes}}}"),
            1,
        )
    };
    s.apply(&canary("toomany", "20")).await;
    blocked_and_unchanged(&s, "toomany", reason::INVALID_SPEC, "is 20 but it runs on 10 nodes").await;
    let last = two_stage(&s.ns, "last", "10s", BAD).replace(
        "components: [{kind: DaemonSet, name: connector, image: \"{BAD}\"}]".replace("{BAD}", BAD).as_str(),
        &format!("components: [{{kind: DaemonSet, name: connector-z, image: \"{BAD}\"}}]"),
    );
    s.apply(&last).await;
    blocked_and_unchanged(&s, "last", reason::INVALID_SPEC, "has a canary in its only stage").await;
    s.apply(&canary("nozone", &format!("2, nodeSelector: {{{ZONE_LABEL}: z99}}"))).await;
    blocked_and_unchanged(&s, "nozone", reason::INVALID_SPEC, "selects none of the 10 nodes it runs on")
        .await;
    s.apply(&canary("badkey", "2, nodeSelector: {\"x y\": a}")).await;
    blocked_and_unchanged(&s, "badkey", reason::INVALID_SPEC, "which is not a label key").await;
    // A label selector the API server would refuse: said before anything is read or changed.
    let yaml = two_stage(&s.ns, "badselector", "10s", BAD)
        .replace("labelSelector: app=email-sync", "labelSelector: \"app in (email-sync\"");
    s.apply(&yaml).await;
    blocked_and_unchanged(&s, "badselector", reason::INVALID_SPEC, "leaves a parenthesis open").await;
    // A signal counting another team's pods, from a namespace nobody trusts: refused by the API
    // server, naming the setting that would allow it (s13 shows a trusted one's missing namespace).
    let yaml = two_stage(&s.ns, "othernamespace", "10s", BAD)
        .replace(&format!("namespaces: [{}]", s.ns), &format!("namespaces: [{}, kube-system]", s.ns));
    let mu: MaintenanceUpgrade = serde_yaml::from_str(&yaml).unwrap();
    let err = s.upgrades().create(&Default::default(), &mu).await.unwrap_err().to_string();
    for said in ["may only count pods of e2e-bad-input", "pod-start-failures", "trustedNamespaces"] {
        assert!(err.contains(said), "{said:?} in {err}");
    }
    assert!(s.operator.log().lines().all(|l| !l.contains("panicked")), "the operator never crashes");
}

/// Delete an upgrade the way that leaves its marks on its targets: its finalizer removed by hand
/// while no operator runs, so that none reverts or releases anything first.
async fn delete_past_its_finalizer(s: &mut Scenario, name: &str) {
    s.operator.kill();
    let no_finalizers = r#"{"metadata":{"finalizers":null}}"#;
    s.env
        .kubectl(&["patch", "maintenanceupgrade", name, "-n", &s.ns, "--type=merge", "-p", no_finalizers])
        .unwrap();
    s.upgrades().delete(name, &Default::default()).await.unwrap();
    eventually("it is gone", SECS(30), || async { s.upgrades().get_opt(name).await.unwrap().is_none() })
        .await;
    s.operator.restart().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s08_second_upgrade_of_a_target_waits_for_the_first() {
    let mut s = incident_world("two-owners").await;
    let v133 = "registry.example.com/secrets-store/connector:v1.3.3";
    let v134 = "registry.example.com/secrets-store/connector:v1.3.4";
    s.apply(&two_stage(&s.ns, "first", "15s", v133)).await;
    s.wait_for("first", SECS(60), "claimed", |mu| {
        mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
    })
    .await;
    s.apply(&two_stage(&s.ns, "second", "5s", v134)).await;
    let second = s
        .wait_for("second", SECS(30), "refused", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == condition::BLOCKED && c.reason == reason::TARGET_OWNED)
            })
        })
        .await;
    assert!(condition_of(&second, condition::BLOCKED).message.contains(&format!("{}/first", s.ns)));
    assert!(s.saw_event("second", reason::TARGET_OWNED).await);
    s.wait_phase("first", Phase::Succeeded, SECS(150)).await;
    assert_eq!(s.image("connector").await, v133);
    // The first has ended: the second goes ahead and records v1.3.3 as its known-good.
    let second = s.wait_phase("second", Phase::Succeeded, SECS(150)).await;
    assert_eq!(s.image("connector").await, v134);
    let c = &second.status.unwrap().stages[1].components[0];
    assert_eq!(c.known_good_image.as_deref(), Some(v133));
    // An owner deleted before it released its targets (its finalizer removed by hand) no longer
    // holds them.
    s.apply(&two_stage(&s.ns, "third", "10m", GOOD)).await;
    s.wait_for("third", SECS(60), "claimed", |mu| {
        mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
    })
    .await;
    delete_past_its_finalizer(&mut s, "third").await;
    s.apply(&two_stage(&s.ns, "fourth", "5s", GOOD)).await;
    s.wait_for("fourth", SECS(60), "claimed", |mu| {
        mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
    })
    .await;
    let from_third = format!("taken over from MaintenanceUpgrade {}/third", s.ns);
    let events = s.events_when("fourth", |evs| evs.iter().any(|e| e.contains(&from_third))).await;
    assert!(events.iter().any(|e| e.contains(&from_third)), "{events:?}");
    // Nor does the mark of an earlier upgrade re-created under the same name (another UID).
    delete_past_its_finalizer(&mut s, "fourth").await;
    s.apply(&two_stage(&s.ns, "fourth", "5s", GOOD)).await;
    s.wait_for("fourth", SECS(60), "claimed again", |mu| {
        mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
    })
    .await;
    let from_earlier = |e: &String| e.contains("taken over from an earlier MaintenanceUpgrade of this name");
    let events = s.events_when("fourth", |evs| evs.iter().any(from_earlier)).await;
    assert!(events.iter().any(from_earlier), "{events:?}");
    // Nor does a mark written by hand with the name of an upgrade that exists (first, ended)
    // but not its UID: whoever may edit the workload learns nothing of whether it exists.
    delete_past_its_finalizer(&mut s, "fourth").await;
    let forged = [format!("{OWNER_ANNOTATION}={}/first", s.ns), format!("{OWNER_UID_ANNOTATION}=guessed")];
    let mut annotate = vec!["annotate", "--overwrite", "daemonset", "connector", "-n", &s.ns];
    annotate.extend(forged.iter().map(String::as_str));
    s.env.kubectl(&annotate).unwrap();
    s.apply(&two_stage(&s.ns, "fifth", "5s", GOOD)).await;
    s.wait_for("fifth", SECS(60), "claimed over the forged mark", |mu| {
        mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
    })
    .await;
    let from_first = format!("taken over from MaintenanceUpgrade {}/first", s.ns);
    let events = s.events_when("fifth", |evs| evs.iter().any(|e| e.contains(&from_first))).await;
    assert!(events.iter().any(|e| e.contains(&from_first)), "{events:?}");
    s.stop_background().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_least_privilege_manifests_apply() {
    // Every scenario runs the operator as its ServiceAccount with exactly the RBAC of
    // config/default (applied server-side at set-up); here the samples must pass server-side
    // validation, the admission policy included.
    let s = Scenario::new("manifests").await;
    let samples = s.env.root.join("config/samples");
    let out = s.env.kubectl(&["apply", "--server-side", "--dry-run=server", "-f", samples.to_str().unwrap()]);
    assert!(out.is_ok(), "config/samples: {out:?}");
    // The Helm chart is rendered from config/default: it lints, and the same install rendered by
    // `helm template` applies to the cluster and changes nothing there.
    let helm = |args: &[&str]| {
        let out = std::process::Command::new(std::env::var("HELM_BIN").expect("HELM_BIN (run-e2e.sh)"))
            .args(args)
            .output()
            .expect("helm runs (make cluster-binaries builds it)");
        assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let chart = s.env.root.join("charts/maintenance-operator");
    let chart = chart.to_str().unwrap();
    helm(&["lint", "--strict", chart]);
    // The values e2e/manifests gives config/default, for this cluster's version.
    let version: serde_json::Value =
        serde_json::from_str(&s.env.kubectl(&["version", "-o", "json"]).unwrap()).unwrap();
    let version = version["serverVersion"]["gitVersion"].as_str().unwrap().to_string();
    let rendered = helm(&[
        "template",
        "maintenance-operator",
        chart,
        "--namespace",
        "maintenance-operator",
        "--include-crds",
        "--kube-version",
        &version,
        "--set",
        "replicas=0",
        "--set",
        "trustedNamespaces={e2e-tenancy}",
        "--set",
        &format!("prometheusAddresses={{{}}}", s.env.setting("prometheusAddresses").unwrap()),
        "--set",
        "webhookHosts={*,http://127.0.0.1}",
    ]);
    // The replicas read the tenancy settings when they start: a `helm upgrade` that changes
    // them must replace the replicas, by a checksum in the pod template that kustomize has not.
    let checksum = |rendered: &str| {
        let line = rendered.lines().find(|l| l.trim_start().starts_with("checksum/tenancy: "));
        line.unwrap_or_else(|| panic!("no checksum/tenancy annotation in\n{rendered}")).to_string()
    };
    let trusting = |namespaces: &str| {
        let trusted = format!("trustedNamespaces={namespaces}");
        let args =
            ["template", "x", chart, "--namespace", "x", "--kube-version", &version, "--set-json", &trusted];
        checksum(&helm(&args))
    };
    let trusted = trusting(r#"["e2e-tenancy"]"#);
    assert_eq!(trusted, trusting(r#"["e2e-tenancy"]"#), "the same settings, the same replicas");
    assert_ne!(trusted, trusting("[]"), "trust withdrawn by `helm upgrade` replaces the replicas");
    let annotation = checksum(&rendered);
    let rendered: String = rendered.lines().filter(|l| *l != annotation).map(|l| format!("{l}\n")).collect();
    let file = s.env.logs.join("chart.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let file = file.to_str().unwrap();
    let diff = std::process::Command::new(s.env.bin.join("kubectl"))
        .args(["diff", "--server-side", "--force-conflicts", "-f", file])
        .env("KUBECONFIG", &s.env.kubeconfig)
        .output()
        .unwrap();
    assert_eq!(
        diff.status.code(),
        Some(0),
        "the chart installs what config/default does:\n{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    s.env.kubectl(&["apply", "--server-side", "-f", file]).unwrap();
    // The values a platform team sets besides (placement, a pull secret, a budget, one
    // namespace, the Lease and the recording) render what the API server accepts; a misspelt
    // value is refused by the chart's schema, naming it, instead of being ignored.
    let extras = helm(&[
        "template",
        "maintenance-operator",
        chart,
        "--namespace",
        "maintenance-operator",
        "--kube-version",
        &version,
        "--set",
        "imagePullSecrets[0].name=regcred,nodeSelector.pool=system,priorityClassName=system-cluster-critical",
        "--set",
        "tolerations[0].key=dedicated,tolerations[0].operator=Exists,podDisruptionBudget.enabled=true",
        "--set",
        "watchNamespace=team-a,leaseDuration=30s,history.record=false,history.bucket=5m",
    ]);
    for shown in [
        "--namespace=team-a",
        "--lease-duration=30s",
        "--record-history=false",
        "kind: PodDisruptionBudget",
        // The Lease an operator of one namespace holds, the only one its Role may read and renew.
        "resourceNames:\n  - maintenance-operator-team-a\n",
    ] {
        assert!(extras.contains(shown), "{shown:?} in\n{extras}");
    }
    let extras_file = s.env.logs.join("chart-extras.yaml");
    std::fs::write(&extras_file, &extras).unwrap();
    let out = s.env.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        extras_file.to_str().unwrap(),
    ]);
    assert!(out.is_ok(), "the chart with every placement value: {out:?}");
    // Its namespace enforces the restricted Pod Security Standard, which its replicas meet: a
    // pod of the Deployment's template is admitted there (a dry run), one that runs as root not.
    let labels =
        s.env.kubectl(&["get", "namespace", "maintenance-operator", "-o", "jsonpath={.metadata.labels}"]);
    assert!(
        labels.as_ref().unwrap().contains(r#""pod-security.kubernetes.io/enforce":"restricted""#),
        "{labels:?}"
    );
    let deployment = s.env.kubectl(&[
        "get",
        "deployment",
        "-n",
        "maintenance-operator",
        "maintenance-operator",
        "-o",
        "json",
    ]);
    let deployment: serde_json::Value = serde_json::from_str(&deployment.unwrap()).unwrap();
    let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pod-security-check", "namespace": "maintenance-operator"},
        "spec": deployment["spec"]["template"]["spec"]});
    let admitted = |pod: &serde_json::Value| {
        let file = s.env.logs.join("pod-security-check.json");
        std::fs::write(&file, pod.to_string()).unwrap();
        s.env.kubectl(&["create", "--dry-run=server", "-f", file.to_str().unwrap()])
    };
    assert!(admitted(&pod).is_ok(), "a replica: {:?}", admitted(&pod));
    pod["spec"]["securityContext"] = serde_json::json!({"runAsUser": 0});
    let refused = admitted(&pod).unwrap_err().to_string();
    assert!(refused.contains("violates PodSecurity"), "{refused}");
    let typo = std::process::Command::new(std::env::var("HELM_BIN").unwrap())
        .args(["template", "maintenance-operator", chart, "--kube-version", &version, "--set", "replica=3"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&typo.stderr);
    assert!(!typo.status.success() && said.contains("'replica' not allowed"), "{said}");
    // A setting the operator would refuse at start (a crash loop), or that could never match
    // (an address without a scheme, a namespace that is no namespace name), is refused by the
    // chart.
    for bad in [
        "webhookHosts[0]=hooks.slack.com",
        "webhookHosts[0]=https://hooks.example:99999",
        "prometheusAddresses[0]=prometheus:9090",
        "trustedNamespaces[0]=Ops",
    ] {
        let out = std::process::Command::new(std::env::var("HELM_BIN").unwrap())
            .args(["template", "maintenance-operator", chart, "--kube-version", &version, "--set", bad])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains("does not match pattern"), "{bad}: {said}");
    }
    // In `scope`: every namespace (-A), or one (-n NS).
    let can_i = |verb: &str, res: &str, scope: &[&str]| {
        let out = std::process::Command::new(s.env.bin.join("kubectl"))
            .args(["auth", "can-i", verb, res, "--as", OPERATOR_SA])
            .args(scope)
            .env("KUBECONFIG", &s.env.kubeconfig)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let all = &["-A"][..];
    assert_eq!(can_i("patch", "daemonsets.apps", all), "yes");
    assert_eq!(can_i("delete", "daemonsets.apps", all), "no", "least privilege: no delete");
    assert_eq!(can_i("update", "maintenanceupgrades.maintenance.dev", all), "no", "the spec is the user's");
    // Its own Lease only: not those of controllers installed beside it.
    let own_ns = &["-n", "maintenance-operator"][..];
    assert_eq!(can_i("update", "leases.coordination.k8s.io/maintenance-operator", own_ns), "yes");
    assert_eq!(can_i("update", "leases.coordination.k8s.io/another-controller", own_ns), "no");
    assert_eq!(can_i("patch", "leases.coordination.k8s.io/maintenance-operator", own_ns), "no", "unused");
    // Patch is granted for the finalizer only, and the admission policy refuses the rest.
    s.apply(&two_stage(&s.ns, "held", "10m", GOOD).replace("  stages:", "  paused: true\n  stages:")).await;
    let as_operator = |patch: &str| {
        s.env.kubectl(&[
            "--as",
            OPERATOR_SA,
            "patch",
            "maintenanceupgrade",
            "held",
            "-n",
            &s.ns,
            "--type=merge",
            "-p",
            patch,
        ])
    };
    let spec = as_operator(r#"{"spec":{"paused":false}}"#).unwrap_err().to_string();
    assert!(spec.contains("changes nothing of a MaintenanceUpgrade but its finalizer"), "{spec}");
    let label = as_operator(r#"{"metadata":{"labels":{"x":"y"}}}"#).unwrap_err().to_string();
    assert!(label.contains("changes nothing of a MaintenanceUpgrade but its finalizer"), "{label}");
    let other = as_operator(r#"{"metadata":{"finalizers":["example.com/x"]}}"#).unwrap_err().to_string();
    assert!(other.contains("other finalizers are the user's"), "{other}");
    as_operator(r#"{"metadata":{"finalizers":["maintenance.dev/revert-and-release"]}}"#)
        .expect("its own finalizer it may add");
    as_operator(r#"{"metadata":{"finalizers":null}}"#).expect("and remove");
    assert_eq!(can_i("get", "secrets", all), "no");
    let own = &["-n", "maintenance-operator"][..];
    assert_eq!(can_i("delete", "leases.coordination.k8s.io", own), "no");
    let _ = ComponentPhase::Applied;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s04_closed_window_waits_and_exclusions_are_respected() {
    use chrono::{Datelike, Timelike};
    let s = incident_world("window").await;
    // A New York window opening at the next whole minute at least 40 s away, whose first 20 s
    // are excluded: no stage may start before `open`.
    let tz = chrono_tz::America::New_York;
    let now = chrono::Utc::now();
    let start = (now + chrono::Duration::seconds(100)).with_second(0).unwrap().with_nanosecond(0).unwrap();
    let open = start + chrono::Duration::seconds(20);
    let local = start.with_timezone(&tz);
    let day = local.weekday().to_string();
    let window = format!(
        "  window:\n    timeZone: America/New_York\n    recurring: [{{days: [{day}], start: \"{:02}:{:02}\", duration: 10m}}]\n    exclusions: [{{name: change-freeze, start: \"{}\", end: \"{}\"}}]\n  stages:\n",
        local.hour(),
        local.minute(),
        start.to_rfc3339(),
        open.to_rfc3339()
    );
    let yaml = two_stage(&s.ns, "up", "5s", "registry.example.com/secrets-store/connector:v1.3.3").replacen(
        "  stages:\n",
        &window,
        1,
    );
    s.apply(&yaml).await;
    let waiting = s.wait_phase("up", Phase::WaitingForWindow, SECS(30)).await;
    let st = waiting.status.clone().unwrap();
    let next = st.next_action.clone().unwrap();
    assert_eq!(
        next.at,
        Some(open - chrono::Duration::seconds(30)),
        "the baseline is timed to end as the window opens: {next:?}"
    );
    let w = condition_of(&waiting, condition::WINDOW_OPEN);
    assert_eq!(w.status, "False");
    assert!(w.message.contains(&open.format("%Y-%m-%d %H:%M:%S").to_string()), "{}", w.message);
    assert_eq!(s.image("connector").await, GOOD);
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(240)).await;
    let st = mu.status.unwrap();
    let started = st.stages[0].started_at.unwrap();
    assert!(started >= open, "the canary started at {started}, inside the exclusion ending {open}");
    assert!(started < open + chrono::Duration::seconds(15), "and soon after the window opened: {started}");
    assert!(s.saw_event("up", reason::MEASURING_BASELINE).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s05_operator_killed_mid_rollout_and_mid_soak_resumes_without_repeating() {
    let mut s = incident_world("sigkill").await;
    // A fault that shows only once the fleet stage takes more than the canary's two nodes.
    s.fault_injector_past("connector", 2, SECS(60), 0.6);
    let generation = s.generation("connector").await;
    let original = s.strategy("connector").await;
    s.apply(&two_stage(&s.ns, "up", "60s", BAD)).await;
    let applied = |stage: usize| {
        move |mu: &MaintenanceUpgrade| {
            mu.status
                .as_ref()
                .is_some_and(|st| st.stages.get(stage).is_some_and(|s| s.components[0].applied_at.is_some()))
        }
    };
    // 1. Right after the canary's image was set, before its rollout is judged.
    s.wait_for("up", SECS(60), "canary applied", applied(0)).await;
    s.operator.kill();
    tokio::time::sleep(SECS(3)).await;
    s.operator.restart().unwrap();
    // 2. In the middle of the canary's soak.
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    tokio::time::sleep(SECS(5)).await;
    // This time the way the kubelet stops it: SIGTERM ends it mid-soak, without waiting.
    let stopped = s.operator.terminate(SECS(10)).expect("SIGTERM stops the operator mid-soak");
    eprintln!("s05: the operator exited {stopped:?} after SIGTERM, mid-soak");
    tokio::time::sleep(SECS(5)).await;
    s.operator.restart().unwrap();
    // 3. After the fleet stage handed the rest to the DaemonSet's rolling update, while the
    // regression builds up.
    s.wait_for("up", SECS(90), "fleet handed over", applied(1)).await;
    tokio::time::sleep(SECS(4)).await;
    s.operator.kill();
    tokio::time::sleep(SECS(3)).await;
    s.operator.restart().unwrap();
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(120)).await;
    let st = mu.status.unwrap();
    assert_eq!(st.rollback.unwrap().reason, reason::REGRESSION, "still reverts when it should");
    assert!(st.stages[0].passed_at.is_some(), "the canary passed first");
    assert_eq!(s.image("connector").await, GOOD);
    // The image with the canary's OnDelete, the strategy handed back, the image reverted.
    assert_eq!(s.generation("connector").await, generation + 3, "no duplicate patch");
    assert_eq!(s.strategy("connector").await, original, "restored exactly");
    for c in st.stages.iter().flat_map(|s| &s.components) {
        assert_eq!(c.known_good_image.as_deref(), Some(GOOD), "known-good intact for {}", c.name);
    }
    let sets = s.events("up").await.iter().filter(|e| e.starts_with(reason::IMAGE_SET)).count();
    assert_eq!(sets, 2, "{:?}", s.events("up").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_leader_killed_mid_soak_the_follower_takes_the_lease_and_carries_on() {
    let mut s = incident_world("leader").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let generation = s.generation("connector").await;
    // A second replica for the same namespace: the scenario's own operator already leads.
    let first = s.operator.instance.clone();
    let deadline = std::time::Instant::now() + SECS(20);
    while s.lease_holder().await.as_deref() != Some(first.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first operator never took the Lease: {:?}",
            s.lease_holder().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut second = Operator::start(s.env.clone(), "leader-b", &s.ns).unwrap();
    s.apply(&two_stage(&s.ns, "up", "30s", next)).await;
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    tokio::time::sleep(SECS(5)).await;
    assert!(second.log().contains("following:"), "the second replica follows:\n{}", second.log());
    s.operator.kill();
    let killed = std::time::Instant::now();
    while s.lease_holder().await.as_deref() != Some("leader-b") {
        assert!(killed.elapsed() < SECS(40), "no takeover: {:?}\n{}", s.lease_holder().await, second.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("s11: the follower took the Lease over {:?} after the leader was killed", killed.elapsed());
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(180)).await;
    assert_eq!(s.image("connector").await, next);
    assert_eq!(s.generation("connector").await, generation + 2, "nothing repeated");
    for c in mu.status.as_ref().unwrap().stages.iter().flat_map(|s| &s.components) {
        assert_eq!(c.known_good_image.as_deref(), Some(GOOD), "known-good intact for {}", c.name);
    }
    let sets = s.events("up").await.iter().filter(|e| e.starts_with(reason::IMAGE_SET)).count();
    assert_eq!(sets, 2, "the image set once, then the rest handed over: {:?}", s.events("up").await);
    e2e::audit::assert_no_write_past_term(&s.env, &[&first, "leader-b"]);
    let stopped = second.terminate(SECS(10)).expect("SIGTERM stops the leader");
    eprintln!("s11: the new leader exited {stopped:?} after SIGTERM");
    assert!(second.log().contains("released the Lease"), "{}", second.log());
}

/// A claimed target's rollout wakes its upgrade: the rollout is seen when it completes, not at the
/// next look. Here the analysis looks once a minute and the fallback look at a rollout comes after
/// 30 s, so a rollout seen sooner was seen through the watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_a_claimed_targets_rollout_wakes_its_upgrade() {
    // No workload: only the rollout matters here, and the side-by-side scenarios share 2 cores.
    let s = Scenario::new("watch-wake").await;
    s.node_agent("connector", GOOD).await;
    let yaml = two_stage(&s.ns, "up", "10m", "registry.example.com/secrets-store/connector:v1.3.3")
        .replace("interval: 2s", "interval: 1m")
        .replace("bucket: 2s", "bucket: 1m");
    s.apply(&yaml).await;
    let mu = s
        .wait_for("up", SECS(150), "rolled out", |mu| {
            mu.status.as_ref().is_some_and(|st| st.stages.first().is_some_and(|c| c.rolled_out_at.is_some()))
        })
        .await;
    let canary = &mu.status.unwrap().stages[0];
    let took = canary.rolled_out_at.unwrap() - canary.started_at.unwrap();
    assert!(
        took < chrono::Duration::seconds(25),
        "the rollout was seen {took} after the stage started: not woken by the target's watch"
    );
}

/// An upgrade naming `kube-system/e2e-tenancy-connector`.
fn cross_namespace_upgrade(ns: &str) -> String {
    format!(
        r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {{name: connector, namespace: {ns}}}
spec:
  stages:
    - name: all
      components:
        - kind: DaemonSet
          namespace: kube-system
          name: e2e-tenancy-connector
          image: registry.example.com/secrets-store/connector:v1.4.0
      soak: 1h
  analysis:
    signals:
      - name: pods
        kubernetes: {{namespaces: [{ns}]}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_a_team_cannot_change_kube_system_through_the_operator() {
    // The install (e2e/manifests over config/default) trusts e2e-tenancy, this scenario's
    // namespace, to target others; team-a is an ordinary tenant.
    let mut s = Scenario::new("tenancy").await;
    let (team, user) = ("e2e-tenancy-team-a", "team-a-dev");
    let connector = "e2e-tenancy-connector";
    let _ = s.env.kubectl(&["delete", "namespace", team, "--wait=true", "--ignore-not-found"]);
    s.env.kubectl(&["create", "namespace", team]).unwrap();
    let _ = s.env.kubectl(&["delete", "daemonset", "-n", "kube-system", connector, "--ignore-not-found"]);
    // Deployed by Argo CD (its tracking annotation), as platform add-ons often are.
    let tracking = format!("argocd_platform:apps/DaemonSet:kube-system/{connector}");
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": connector, "annotations": {"argocd.argoproj.io/tracking-id": tracking}},
        "spec": {"selector": {"matchLabels": {"app": connector}},
            "template": {"metadata": {"labels": {"app": connector}}, "spec": {
                // No pods: nothing here needs them, and the other scenarios share 2 cores.
                "nodeSelector": {"e2e/none": "none"},
                "containers": [{"name": "connector", "image": GOOD}]}}}});
    let kube_system: kube::Api<DaemonSet> = kube::Api::namespaced(s.client.clone(), "kube-system");
    kube_system.create(&Default::default(), &serde_json::from_value(ds).unwrap()).await.unwrap();
    let file = |name: &str, yaml: &str| {
        let path = s.env.logs.join(format!("tenancy-{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path.to_str().unwrap().to_string()
    };
    let rbac = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: upgrades, namespace: {team}}}
rules:
  - apiGroups: [maintenance.dev]
    resources: [maintenanceupgrades]
    verbs: [create, get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: upgrades, namespace: {team}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: upgrades}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]
"#
    );
    s.env.kubectl(&["apply", "-f", &file("rbac", &rbac)]).unwrap();

    // The tenant may create upgrades in its namespace, and may not touch kube-system itself.
    let can_i = |verb: &str, what: &str, ns: &str| {
        let out = s.env.kubectl(&["auth", "can-i", verb, what, "-n", ns, "--as", user]);
        out.unwrap_or_else(|e| e.to_string()).trim().ends_with("yes")
    };
    assert!(can_i("create", "maintenanceupgrades.maintenance.dev", team));
    assert!(!can_i("patch", "daemonsets.apps", "kube-system"));
    // Through the operator it may not either: the admission policy refuses, saying why and who may.
    let refused = s
        .env
        .kubectl(&[
            "apply",
            "--server-side",
            "--as",
            user,
            "-f",
            &file("team", &cross_namespace_upgrade(team)),
        ])
        .expect_err("the API server refuses the upgrade")
        .to_string();
    for said in [
        "may only change workloads in e2e-tenancy-team-a",
        "kube-system/e2e-tenancy-connector",
        "Only upgrades created in e2e-tenancy may target other namespaces",
        "add e2e-tenancy-team-a to trustedNamespaces",
    ] {
        assert!(refused.contains(said), "the refusal says {said:?}: {refused}");
    }
    let stored = s.env.kubectl(&["get", "maintenanceupgrades", "-n", team, "-o", "name"]).unwrap();
    assert!(stored.trim().is_empty(), "a refused upgrade is never stored: {stored}");

    // The operator holds the same line by itself, in case the policy was not installed: here it
    // runs without the trusted setting, so the upgrade the policy lets in is blocked.
    s.operator.kill();
    let mut op = Operator::start_with(s.env.clone(), "tenancy-untrusted", &s.ns, Some("")).unwrap();
    s.env
        .kubectl(&["apply", "--server-side", "-f", &file("platform", &cross_namespace_upgrade(&s.ns))])
        .unwrap();
    let mu = s
        .wait_for("connector", SECS(60), "blocked", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == condition::BLOCKED && c.reason == reason::CROSS_NAMESPACE)
            })
        })
        .await;
    let blocked = mu.status.unwrap().conditions.into_iter().find(|c| c.type_ == condition::BLOCKED).unwrap();
    assert!(blocked.message.contains("may only change workloads in e2e-tenancy"), "{}", blocked.message);
    assert!(s.saw_event("connector", reason::CROSS_NAMESPACE).await, "{:?}", s.events("connector").await);
    let untouched = kube_system.get(connector).await.unwrap();
    assert!(!untouched.labels().contains_key(CLAIMED_LABEL), "not claimed");
    assert!(untouched.annotations().keys().all(|k| !k.starts_with("maintenance.dev/")), "not marked");
    assert_eq!(s.argo_health("connector").0, "Degraded", "Argo CD shows what blocks it");
    let image =
        |d: &DaemonSet| d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0].image.clone();
    assert_eq!(image(&untouched).as_deref(), Some(GOOD));

    // With the installed setting (which trusts this namespace) it goes ahead.
    op.trusted_namespaces = None;
    op.restart().unwrap();
    let deadline = std::time::Instant::now() + SECS(60);
    while !kube_system.get(connector).await.unwrap().labels().contains_key(CLAIMED_LABEL) {
        assert!(
            std::time::Instant::now() < deadline,
            "trusted, the upgrade claims its target:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Argo CD's self-heal would undo the change: said in a condition and an Event, with the fix.
    let mu = s
        .wait_for("connector", SECS(30), "warning about Argo CD", |mu| {
            mu.status
                .as_ref()
                .is_some_and(|st| st.conditions.iter().any(|c| c.type_ == condition::MANAGED_BY_GITOPS))
        })
        .await;
    let gitops = condition_of(&mu, condition::MANAGED_BY_GITOPS);
    for said in [
        "Argo CD application argocd/platform",
        "managedFieldsManagers: [maintenance-operator]",
        "RespectIgnoreDifferences=true",
    ] {
        assert!(gitops.message.contains(said), "{said:?} in {}", gitops.message);
    }
    assert!(s.saw_event("connector", reason::MANAGED_BY_GITOPS).await, "{:?}", s.events("connector").await);
    // A trusted namespace's signal may count others, but one that does not exist is said, not
    // read as an empty signal.
    let yaml = two_stage(&s.ns, "nonamespace", "10s", BAD)
        .replace(&format!("namespaces: [{}]", s.ns), &format!("namespaces: [{}, no-such-namespace]", s.ns));
    s.apply(&yaml).await;
    let mu = s
        .wait_for("nonamespace", SECS(30), "blocked", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == condition::BLOCKED && c.reason == reason::INVALID_SPEC)
            })
        })
        .await;
    let blocked = condition_of(&mu, condition::BLOCKED);
    assert!(blocked.message.contains("namespace no-such-namespace does not exist"), "{}", blocked.message);

    // The installer withdraws this namespace's trust while its upgrade holds kube-system's
    // connector: after the restart that applies it, the upgrade gives back what it holds there
    // (it sees that target only because it carries its own mark), whatever its rollback settings.
    op.trusted_namespaces = Some(String::new());
    op.restart().unwrap();
    let mu = s
        .wait_for("connector", SECS(60), "rolled back", |mu| {
            mu.status.as_ref().is_some_and(|st| st.phase == Phase::RolledBack && st.released_at.is_some())
        })
        .await;
    let rollback = mu.status.as_ref().unwrap().rollback.clone().unwrap();
    assert_eq!(rollback.reason, reason::TRUST_WITHDRAWN, "{}", rollback.message);
    assert!(rollback.message.contains("DaemonSet kube-system/e2e-tenancy-connector"), "{}", rollback.message);
    assert!(s.saw_event("connector", reason::TRUST_WITHDRAWN).await, "{:?}", s.events("connector").await);
    let released = kube_system.get(connector).await.unwrap();
    assert!(!released.labels().contains_key(CLAIMED_LABEL), "released: {:?}", released.labels());
    assert!(released.annotations().keys().all(|k| !k.starts_with("maintenance.dev/")), "unmarked");
    assert_eq!(image(&released).as_deref(), Some(GOOD));
    drop(op);
    let _ = kube_system.delete(connector, &Default::default()).await;
    let _ = s.env.kubectl(&["delete", "namespace", team, "--wait=false"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s14_kubectl_maintenance_drives_an_upgrade_from_the_terminal() {
    let s = incident_world("plugin").await;
    // As a user runs it: `kubectl maintenance`, found on PATH by kubectl's plugin mechanism.
    let path = format!("{}:{}", s.env.root.join("target/debug").display(), std::env::var("PATH").unwrap());
    let run = |args: &[&str]| -> (i32, String) {
        let out = std::process::Command::new(s.env.bin.join("kubectl"))
            .arg("maintenance")
            .args(args)
            .args(["-n", &s.ns])
            .env("KUBECONFIG", &s.env.kubeconfig)
            .env("PATH", &path)
            .output()
            .unwrap();
        let said =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), said)
    };
    let file = |name: &str, yaml: &str| {
        let p = s.env.logs.join(format!("plugin-{name}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        p.to_str().unwrap().to_string()
    };
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let good = two_stage(&s.ns, "up", "10s", next)
        .replace("    - name: fleet\n", "    - name: fleet\n      requireApproval: true\n");

    // lint: what the API server and the operator would say, without changing anything.
    let missing = good.replacen("name: connector,", "name: connector-missing,", 1);
    let (code, said) = run(&["lint", "-f", &file("missing", &missing)]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains(&format!("DaemonSet {}/connector-missing does not exist", s.ns)), "{said}");
    let (code, said) = run(&["lint", "-f", &file("bad-image", &good.replace(next, "Not An Image!"))]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("the API server refuses it") && said.contains("image must be a reference"),
        "{said}"
    );
    // What the typed object would drop, the API server's strict validation names: a misspelt
    // field and a wrong version pass nowhere.
    let typo = good.replace("requireApproval: true", "requireAproval: true");
    let (code, said) = run(&["lint", "-f", &file("typo", &typo)]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("the API server refuses it") && said.contains("requireAproval"), "{said}");
    let version = good.replacen("maintenance.dev/v1alpha1", "maintenance.dev/v1", 1);
    let (code, said) = run(&["lint", "-f", &file("version", &version)]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("invalid object type: maintenance.dev/v1, Kind"), "the version named: {said}");
    let (code, said) = run(&["lint", "-f", &file("good", &good)]);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains(&format!("container connector runs {GOOD}, would become {next}")), "{said}");
    assert!(s.upgrades().list(&Default::default()).await.unwrap().items.is_empty(), "lint created nothing");

    s.apply(&good).await;
    let (code, said) = run(&["list"]);
    assert!(code == 0 && said.contains("up "), "{said}");
    let (code, said) = run(&["list", "-A"]);
    assert!(code == 0 && said.contains(&s.ns) && said.contains("NAMESPACE"), "{said}");
    let (code, said) = run(&["status", "nope"]);
    assert!(code == 2 && said.contains("not found"), "{said}");

    // pause and resume: plain patches, an impossible one refused.
    let (code, said) = run(&["pause", "up"]);
    assert!(code == 0 && said.contains("spec.paused: false -> true"), "{said}");
    assert!(s.upgrades().get("up").await.unwrap().spec.paused);
    // Asked again, as a retried pipeline step does: already so, which is done.
    let (code, said) = run(&["pause", "up"]);
    assert!(code == 0 && said.contains("already paused; nothing was changed"), "{said}");
    let managers = s.upgrades().get("up").await.unwrap().metadata.managed_fields.unwrap_or_default();
    assert!(
        managers.iter().any(|m| m.manager.as_deref() == Some("kubectl-maintenance")),
        "the plugin's patches are its own: {managers:?}"
    );
    let (code, said) = run(&["resume", "up"]);
    assert!(code == 0 && said.contains("spec.paused: true -> false"), "{said}");

    // approve: only a stage that needs it.
    let (code, said) = run(&["approve", "up", "canary"]);
    assert!(code == 2 && said.contains("stage canary needs no approval"), "{said}");
    s.wait_phase("up", Phase::AwaitingApproval, SECS(120)).await;
    let (code, said) = run(&["status", "up"]);
    assert_eq!(code, 5, "waits for someone: {said}");
    let (known_good, target) = (format!("known-good {GOOD}"), format!("DaemonSet {}/connector", s.ns));
    for shown in ["AwaitingApproval", &known_good, &target, "2 of 10 nodes", "pod-start-failures", "Next:"] {
        assert!(said.contains(shown), "{shown:?} in\n{said}");
    }
    let (code, said) = run(&["approve", "up", "fleet"]);
    assert!(code == 0 && said.contains("spec.approvedStages: [] -> [fleet]"), "{said}");
    assert_eq!(s.upgrades().get("up").await.unwrap().spec.approved_stages, ["fleet"]);

    // rollback, followed to the end by status -w, whose exit code is the outcome.
    let (code, said) = run(&["rollback", "up"]);
    assert!(code == 0 && said.contains("spec.rollback.requested: false -> true"), "{said}");
    let (code, said) = run(&["status", "up", "-w"]);
    assert_eq!(code, 1, "RolledBack exits non-zero:\n{said}");
    assert!(said.contains("CUSUM/limit") && said.contains("RolledBack"), "the timeline, to the end:\n{said}");
    assert_eq!(s.image("connector").await, GOOD);
    let (code, said) = run(&["resume", "up"]);
    assert!(code == 2 && said.contains("it has ended (RolledBack); nothing is left to resume"), "{said}");

    // status -w ends, exit 1, when the upgrade is deleted before it ends: one no operator looks
    // at (in a namespace this scenario's operator does not watch), so that no phase ends it first.
    let elsewhere = format!("{}-unwatched", s.ns);
    s.env.kubectl(&["create", "namespace", &elsewhere]).unwrap();
    let gone = file("gone", &two_stage(&elsewhere, "gone", "10s", next));
    s.env.kubectl(&["apply", "-n", &elsewhere, "-f", &gone]).unwrap();
    let mut watching = std::process::Command::new(s.env.bin.join("kubectl"))
        .args(["maintenance", "status", "gone", "-w", "-n", &elsewhere])
        .env("KUBECONFIG", &s.env.kubeconfig)
        .env("PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(SECS(3)).await;
    s.env.kubectl(&["delete", "maintenanceupgrade", "gone", "-n", &elsewhere]).unwrap();
    let deadline = std::time::Instant::now() + SECS(60);
    while watching.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = watching.kill();
            panic!("status -w did not end within 60 s of the deletion");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let out = watching.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("maintenanceupgrade {elsewhere}/gone was deleted before it ended")),
        "{said}"
    );
    let _ = s.env.kubectl(&["delete", "namespace", &elsewhere, "--wait=false"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s15_each_notification_arrives_once_even_when_the_receiver_was_down() {
    let mut s = incident_world("notify").await;
    s.fault_injector(&["connector"], SECS(60), 0.6);
    let mut receiver = Receiver::down();
    // The URL is a credential: in a Secret, which the operator may read by name and no other.
    let access = webhook_access(&s.ns, receiver.port);
    let path = s.env.logs.join("notify-access.yaml");
    std::fs::write(&path, access).unwrap();
    s.env.kubectl(&["apply", "-f", path.to_str().unwrap()]).unwrap();
    let yaml = two_stage(&s.ns, "up", "60s", BAD)
        + "  notifications:\n    webhooks:\n      - {name: oncall, urlSecretRef: {name: webhook}}\n      - {name: chat, format: Slack, urlSecretRef: {name: webhook, key: slack}, events: [RolledBack]}\n";
    s.apply(&yaml).await;

    // The receiver is down when the canary starts: the notification waits, retried with backoff.
    s.wait_for("up", SECS(90), "retrying a notification", |mu| {
        mu.status.as_ref().is_some_and(|st| st.notifications.iter().any(|n| n.attempts >= 2))
    })
    .await;
    assert!(s.saw_event("up", reason::NOTIFICATION_FAILED).await, "{:?}", s.events("up").await);
    let failed = s.operator.metrics().await;
    // Exported at 0 from the start (the alerts need it), so counted means above 0.
    let counted = |text: &str, series: &str| {
        text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()).is_some_and(|v| v > 0.0)
    };
    assert!(
        counted(&failed, "maintenance_operator_notifications_total{result=\"failed\"}"),
        "the failures are counted (before the restart resets the counters):\n{failed}"
    );
    receiver.start().await;
    s.wait_for("up", SECS(60), "delivering the StageStarted notification", |mu| {
        mu.status.as_ref().is_some_and(|st| st.notifications.iter().any(|n| n.sent_at.is_some()))
    })
    .await;
    // A restart sends nothing twice: what was sent is in status.
    s.operator.restart().unwrap();
    s.wait_phase("up", Phase::RolledBack, SECS(150)).await;
    let mu = s
        .wait_for("up", SECS(30), "delivering every notification", |mu| {
            mu.status.as_ref().is_some_and(|st| st.notifications.iter().all(|n| n.sent_at.is_some()))
        })
        .await;
    tokio::time::sleep(SECS(3)).await;
    let generic = receiver.bodies("generic");
    let mut kinds: Vec<&str> = generic.iter().map(|b| b["kind"].as_str().unwrap_or("?")).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["RegressionSuspected", "RolledBack", "StageStarted"],
        "exactly one of each: {generic:#?}"
    );
    let rolled = generic.iter().find(|b| b["kind"] == "RolledBack").unwrap();
    assert_eq!((rolled["upgrade"].as_str(), rolled["phase"].as_str()), (Some("up"), Some("RolledBack")));
    assert_eq!(rolled["kubectl"], format!("kubectl maintenance status up -n {}", s.ns));
    assert!(rolled["observed"].as_f64() > rolled["baseline"].as_f64(), "baseline against observed: {rolled}");
    let slack = receiver.bodies("slack");
    assert_eq!(slack.len(), 1, "the chat webhook asked for RolledBack only: {slack:#?}");
    assert!(
        slack[0]["text"].as_str().unwrap().starts_with("*RolledBack*: MaintenanceUpgrade"),
        "{}",
        slack[0]
    );
    let recorded = mu.status.unwrap().notifications;
    assert_eq!(recorded.len(), 4, "{recorded:#?}");
}

/// The recording of the built-in signal, as this scenario's operator keeps it.
/// The rows of the operator's whole recording, or (`selector`) of the scope the index gives
/// that selector.
async fn recorded_rows(s: &Scenario, selector: Option<&str>) -> Vec<String> {
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(s.client.clone(), "maintenance-operator");
    let prefix = format!("pod-start-failures.{}", s.ns);
    let cm = cms.get_opt("maintenance-operator-history").await.expect("the ConfigMap can be read");
    let data = cm.and_then(|cm| cm.data).unwrap_or_default();
    let key = match selector {
        None => Some(format!("{prefix}.csv")),
        Some(sel) => {
            let index: Vec<serde_json::Value> =
                serde_json::from_str(data.get(&format!("{prefix}_scopes.json")).map_or("[]", |v| v)).unwrap();
            index.iter().find(|e| e["labelSelector"] == sel).map(|e| e["key"].as_str().unwrap().to_string())
        }
    };
    let text = key.and_then(|k| data.get(&k).cloned()).unwrap_or_default();
    text.lines().skip(1).map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s16_the_builtin_signal_is_recorded_between_upgrades_and_a_restart_loses_none() {
    let mut s = Scenario::new("history").await;
    // Time compressed: 2 s buckets, pods judged 3 s after creation (10 minutes and 5 in a cluster).
    let bucket = chrono::Duration::seconds(2);
    s.operator.extra_env = vec![
        ("HISTORY_BUCKET".into(), format!("{}s", bucket.num_seconds())),
        ("HISTORY_PENDING_LIMIT".into(), "3s".into()),
    ];
    s.operator.restart().unwrap();
    s.connector("connector", GOOD, false).await;
    s.connector("connector-early", GOOD, false).await;
    s.workload(Duration::from_millis(100), SECS(20));
    // An upgrade waiting for next week's window names its signal's scope (the workload's
    // pods, by selector): recorded from then on, for the upgrades after it.
    use chrono::Datelike;
    let later = (chrono::Utc::now() + chrono::Duration::days(3)).weekday();
    let early = format!(
        r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {{name: early}}
spec:
  window:
    timeZone: UTC
    recurring: [{{days: [{later}], start: "00:00", duration: 10m}}]
  stages:
    - name: all
      components: [{{kind: DaemonSet, name: connector-early, image: "registry.example.com/secrets-store/connector:v1.3.3"}}]
      soak: 5s
  analysis:
    signals:
      - name: pod-start-failures
        kubernetes: {{namespaces: [{ns}], labelSelector: app=email-sync, pendingLimit: 3s}}
"#,
        ns = s.ns
    );
    s.apply(&early).await;
    s.wait_phase("early", Phase::WaitingForWindow, SECS(30)).await;
    // Recorded with no upgrade running, through the operator's ServiceAccount (get and patch on
    // its one ConfigMap).
    let scoped = Some("app=email-sync");
    let deadline = std::time::Instant::now() + SECS(90);
    while recorded_rows(&s, None).await.len() < 8 || recorded_rows(&s, scoped).await.len() < 8 {
        assert!(std::time::Instant::now() < deadline, "nothing recorded:\n{}", s.operator.log());
        tokio::time::sleep(SECS(1)).await;
    }
    let (before, scoped_before) = (recorded_rows(&s, None).await, recorded_rows(&s, scoped).await);
    let restarted_at = chrono::Utc::now();
    s.operator.restart().unwrap();
    // The next leader loads what was recorded and goes on; the buckets it could not see are
    // left out, never written as zeros.
    let deadline = std::time::Instant::now() + SECS(60);
    while recorded_rows(&s, None).await.len() < before.len() + 4
        || recorded_rows(&s, scoped).await.len() < scoped_before.len() + 4
    {
        assert!(std::time::Instant::now() < deadline, "the recording did not go on:\n{}", s.operator.log());
        tokio::time::sleep(SECS(1)).await;
    }
    let after = recorded_rows(&s, None).await;
    assert_eq!(after[..before.len()], before[..], "nothing recorded before the restart was lost");
    let scoped_after = recorded_rows(&s, scoped).await;
    assert_eq!(scoped_after[..scoped_before.len()], scoped_before[..], "nor of the named scope");
    let metrics = s.operator.metrics().await;
    assert!(metrics.contains("maintenance_operator_history_scopes 1\n"), "{metrics}");
    // Exported at 0 from the start (the alerts need it): the new leader has written.
    let written = metrics
        .lines()
        .find_map(|l| l.strip_prefix("maintenance_operator_history_writes_total{result=\"written\"}"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(written.is_some_and(|v| v > 0.0), "the new leader's writes in its metrics:\n{metrics}");
    // A bucket that began before the new leader could watch was not seen by it: such a row is
    // a gap written as zeros. (A bucket it did see may hold few attempts on a loaded machine.)
    let ends = |r: &String| r.split(',').next().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    for (rows, old) in [(&after, before.len()), (&scoped_after, scoped_before.len())] {
        let unseen: Vec<&String> =
            rows.iter().filter(|r| ends(r) > restarted_at && ends(r) - bucket < restarted_at).collect();
        assert!(unseen.is_empty(), "no gap written as zeros: {unseen:?} in {rows:?}");
        let attempts: u64 =
            rows[old..].iter().map(|r| r.split(',').nth(1).unwrap().parse::<u64>().unwrap()).sum();
        assert!(attempts > 0, "the new leader counts the workload: {rows:?}");
    }
    // An upgrade judged by both recordings: every pod of its namespace (the operator's whole
    // scope), and the workload's pods by selector (the scope "early" named), judged after 3 s.
    let both = format!(
        "      - name: whole-namespace\n        kubernetes: {{namespaces: [{}], pendingLimit: 3s}}\n        regression: {{bucket: 2s}}\n",
        s.ns
    );
    let yaml = fleet_only(&s.ns, "up", "5s", "registry.example.com/secrets-store/connector:v1.3.3") + &both;
    s.apply(&yaml).await;
    let mu = s
        .wait_for("up", SECS(60), "both baselines", |mu| {
            mu.status
                .as_ref()
                .is_some_and(|st| st.analysis.len() == 2 && st.analysis.iter().all(|a| a.baseline.is_some()))
        })
        .await;
    let st = mu.status.unwrap();
    for (a, rows) in [(&st.analysis[1], &before), (&st.analysis[0], &scoped_before)] {
        let b = a.baseline.as_ref().unwrap();
        assert!(
            b.recorded,
            "{}: the baseline is the recording, not a live observation: {}",
            a.name, a.reason
        );
        assert!(a.reason.contains("recorded by the operator over"), "{}", a.reason);
        let first: chrono::DateTime<chrono::Utc> = rows[0].split(',').next().unwrap().parse().unwrap();
        assert!(b.from.unwrap() < first, "{}: it reaches back before the restart: {:?}", a.name, b.from);
    }
    let a = &st.analysis[1];
    // Still short in real time: what it cannot tell is said.
    let limit = a.baseline_limit.as_deref().unwrap_or_default();
    assert!(limit.contains("cannot be told from time-of-day variation"), "{limit}");
    let done = s.wait_phase("up", Phase::Succeeded, SECS(120)).await;
    let analysis = done.status.unwrap().analysis;
    assert!(
        analysis.iter().all(|a| a.baseline.as_ref().unwrap().recorded),
        "live reads did not overwrite them"
    );
    assert!(s.saw_event("up", reason::BASELINE_LIMIT).await, "{:?}", s.events("up").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s19_a_canary_on_two_nodes_of_one_daemonset_passes_then_the_daemonset_takes_the_rest() {
    let mut s = Scenario::new("inplace").await;
    s.extra_node("joins", false).await; // left by an earlier run
    // As the chart ships it: a registrar sidecar, the connector the default container (the
    // upgrade names no container). On 6 nodes: a canary of 2 of 6.
    s.node_agent_on("connector", GOOD, 6).await;
    s.workload(Duration::from_millis(100), Duration::from_secs(20));
    let before = s.pods_by_node("connector").await;
    assert_eq!(before.len(), 6);
    let original = s.strategy("connector").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    s.apply(&two_stage(&s.ns, "up", "20s", next)).await;
    // The operator killed mid-canary (while it rolls out, or, on a fast machine where two pods
    // are replaced between two polls, as it soaks) takes no node more when it starts again.
    s.wait_for("up", SECS(90), "rolling out or soaking the canary", |mu| {
        mu.status.as_ref().is_some_and(|st| {
            st.stages.first().is_some_and(|s| matches!(s.phase, StagePhase::RollingOut | StagePhase::Soaking))
        })
    })
    .await;
    s.operator.kill();
    s.operator.restart().unwrap();
    s.wait_for("up", SECS(90), "soaking the canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    // The new image runs on the first two nodes only; the rest are the pods it started with.
    let during = s.pods_by_node("connector").await;
    let canary: Vec<&String> =
        during.iter().filter(|(_, (_, image))| image == next).map(|(n, _)| n).collect();
    assert_eq!(canary, [&node_name("inplace", 0), &node_name("inplace", 1)], "{during:?}");
    for (node, (uid, image)) in during.iter().skip(2) {
        assert_eq!((uid, image.as_str()), (&before[node].0, GOOD), "{node} untouched");
    }
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert_eq!(s.strategy("connector").await, json!({"type": "OnDelete"}));
    let recorded =
        ds.metadata.annotations.clone().unwrap_or_default()["maintenance.dev/original-update-strategy"]
            .clone();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&recorded).unwrap(), original);
    // The strategy change is attributed to the operator's field manager, like the image.
    let strategy_owners = managers_of(&ds.metadata, &["f:spec", "f:updateStrategy"]);
    assert!(strategy_owners.contains(&FIELD_MANAGER), "managers of the strategy: {strategy_owners:?}");
    let owners = image_owners(&ds.metadata, "connector");
    assert!(owners.contains(&FIELD_MANAGER), "managers of the image: {owners:?}");
    let mu = s.upgrades().get("up").await.unwrap();
    let c = mu.status.unwrap().stages[0].components[0].canary.clone().unwrap();
    assert_eq!((c.wanted, c.total, c.nodes.len()), (2, 6, 2));
    // A node that joins mid-soak gets the new template (OnDelete holds): it counts as canary.
    s.extra_node("joins", true).await;
    let joined = "inplace-joins".to_string();
    let counted = s
        .wait_for("up", SECS(60), "counting the new node as canary", |mu| {
            let st = mu.status.as_ref().unwrap();
            st.stages[0].components[0].canary.as_ref().is_some_and(|c| c.nodes.contains(&joined))
        })
        .await
        .status
        .unwrap();
    // ... as one the canary did not take: its signals' copies count only the nodes it took.
    assert_eq!(
        counted.stages[0].components[0].canary.as_ref().unwrap().joined,
        std::slice::from_ref(&joined),
        "{:?} {:?}",
        counted.stages,
        s.env.kubectl(&[
            "get",
            "nodes",
            "-o",
            "custom-columns=N:.metadata.name,C:.metadata.creationTimestamp"
        ])
    );
    let copies: Vec<_> = counted.analysis.iter().filter(|a| a.name.ends_with("@canary")).collect();
    assert!(!copies.is_empty(), "{:?}", counted.analysis);
    for copy in copies {
        assert!(!copy.nodes.contains(&joined), "{}: {:?}", copy.name, copy.nodes);
    }
    // (Counted from the node it is made for; the scheduler binds it a moment later.)
    let deadline = std::time::Instant::now() + SECS(30);
    while !s.pods_by_node("connector").await.contains_key(&joined) {
        assert!(std::time::Instant::now() < deadline, "no pod bound to {joined}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let joined_too = s.pods_by_node("connector").await;
    assert_eq!(joined_too[&joined].1, next);
    // The node that joined took no other node's place: the rest run the pods they started with.
    for (node, (uid, image)) in during.iter().skip(2) {
        assert_eq!(
            (&joined_too[node].0, joined_too[node].1.as_str()),
            (uid, image.as_str()),
            "{node} untouched"
        );
    }
    s.wait_phase("up", Phase::Succeeded, SECS(150)).await;
    s.wait_rolled_out("connector", SECS(60)).await;
    let after = s.pods_by_node("connector").await;
    assert!(!after.is_empty() && after.values().all(|(_, image)| image == next), "{after:?}");
    let template = s.daemonsets().get("connector").await.unwrap().spec.unwrap().template.spec.unwrap();
    assert_eq!(template.containers[0].image.as_deref(), Some(REGISTRAR), "the sidecar is left as it was");
    assert_eq!(s.strategy("connector").await, original, "restored exactly");
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert!(ds.metadata.annotations.unwrap_or_default().keys().all(|k| !k.starts_with("maintenance.dev/")));
    assert!(s.saw_event("up", reason::CANARY_WIDENED).await, "{:?}", s.events("up").await);
    s.extra_node("joins", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s20_a_canary_that_regresses_is_reverted_on_its_own_nodes_and_the_strategy_restored() {
    let mut s = Scenario::new("inplace-bad").await;
    // As the chart ships it, and one chart release bumps the driver and its registrar sidecar
    // together (alsoContainers): recorded, changed and reverted together.
    s.node_agent("connector", GOOD).await;
    s.workload(Duration::from_millis(100), Duration::from_secs(20));
    s.fault_injector(&["connector"], SECS(60), 0.6);
    let before = s.pods_by_node("connector").await;
    let original = s.strategy("connector").await;
    let registrar = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.11.0";
    // The canary: every node of zone z5, by label (one node).
    let upgrade = two_stage(&s.ns, "up", "90s", BAD)
        .replacen("canary: {nodes: 2}", &format!("canary: {{nodeSelector: {{{ZONE_LABEL}: z5}}}}"), 1)
        .replace(
            "name: connector, ",
            &format!("name: connector, alsoContainers: [{{container: registrar, image: \"{registrar}\"}}], "),
        );
    s.apply(&upgrade).await;
    let sidecar =
        |ds: &DaemonSet| ds.spec.clone().unwrap().template.spec.unwrap().containers[0].image.clone().unwrap();
    let claimed = s
        .wait_for("up", SECS(90), "the canary soaking", |mu| {
            mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
        })
        .await;
    let c = &claimed.status.unwrap().stages[0].components[0];
    assert_eq!(c.also_containers[0].known_good_image.as_deref(), Some(REGISTRAR));
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert_eq!(sidecar(&ds), registrar, "with the connector");
    // Every field the canary changed is the operator's field manager's: both images, the strategy.
    for owners in [
        image_owners(&ds.metadata, "connector"),
        image_owners(&ds.metadata, "registrar"),
        managers_of(&ds.metadata, &["f:spec", "f:updateStrategy"]),
    ] {
        assert!(owners.contains(&FIELD_MANAGER), "{owners:?} in {:?}", ds.metadata.managed_fields);
    }
    // The operator restarts while the regression grows: it goes on from the status and the target.
    s.operator.kill();
    s.operator.restart().unwrap();
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(200)).await;
    let st = mu.status.unwrap();
    assert_eq!(st.rollback.unwrap().reason, reason::REGRESSION);
    assert_eq!(st.stages[1].phase, StagePhase::Pending, "the rest was never changed");
    // The docs' `kubectl wait` returns on a rollback too (`Complete` would wait to its timeout).
    let wait = |condition: &str| {
        let until = format!("--for=condition={condition}");
        s.env.kubectl(&["wait", "mu/up", "-n", &s.ns, &until, "--timeout=5s"])
    };
    wait("Progressing=False").unwrap();
    assert!(wait("Complete").is_err());
    s.wait_rolled_out("connector", SECS(60)).await;
    assert_eq!(s.image("connector").await, GOOD);
    assert_eq!(sidecar(&s.daemonsets().get("connector").await.unwrap()), REGISTRAR, "reverted together");
    assert_eq!(s.strategy("connector").await, original, "restored exactly");
    let canary = node_name("inplace-bad", 5);
    s.assert_remade_only("connector", &before, |n| n == canary, GOOD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s21_a_statefulset_whose_updated_pod_never_becomes_ready_is_reverted_without_a_human_canary_or_whole()
{
    let mut s = Scenario::new("partition").await;
    let sts: Api<StatefulSet> = Api::namespaced(s.client.clone(), &s.ns);
    let mut spec = app_spec("partition", "db");
    spec["replicas"] = 4.into();
    spec["serviceName"] = "db".into();
    spec["podManagementPolicy"] = "OrderedReady".into();
    let db: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": spec})).unwrap();
    sts.create(&Default::default(), &db).await.unwrap();
    let ready = || async {
        let status = sts.get("db").await.unwrap().status.unwrap_or_default();
        status.ready_replicas == Some(4) && status.updated_replicas == Some(4)
    };
    eventually("db Ready", SECS(90), ready).await;
    let before = s.pods_by_name("db").await;
    let original = serde_json::to_value(sts.get("db").await.unwrap().spec.unwrap().update_strategy).unwrap();
    // Every node cordoned until the revert: db-3, made again from the new template, never
    // schedules. No email-sync traffic, so the signal has nothing to judge and only the progress
    // deadline can tell (with traffic, every pod failing from before the change would leave the
    // baseline no room, and nothing would change: BaselineLeavesNoRoom).
    s.cordon_until_reverted("db").await;
    let upgrade = two_stage(&s.ns, "up", "20s", BAD)
        .replacen(
            "{kind: DaemonSet, name: connector, canary: {nodes: 2}, image:",
            "{kind: StatefulSet, name: db, canary: {replicas: 1}, image:",
            1,
        )
        .replacen("{kind: DaemonSet, name: connector, image:", "{kind: StatefulSet, name: db, image:", 1)
        .replace("progressDeadline: 60s", "progressDeadline: 20s");
    s.apply(&upgrade).await;
    // The operator restarts mid-canary, once the partition is set: it goes on from the status.
    let partition = |st: &StatefulSet| {
        let strategy = st.spec.as_ref().and_then(|s| s.update_strategy.clone()).unwrap_or_default();
        strategy.rolling_update.and_then(|r| r.partition)
    };
    eventually("the canary's partition set", SECS(60), || async {
        partition(&sts.get("db").await.unwrap()) == Some(3)
    })
    .await;
    let db = sts.get("db").await.unwrap();
    for owners in
        [image_owners(&db.metadata, "connector"), managers_of(&db.metadata, &["f:spec", "f:updateStrategy"])]
    {
        assert!(owners.contains(&FIELD_MANAGER), "{owners:?} in {:?}", db.metadata.managed_fields);
    }
    s.operator.restart().unwrap();
    // The partition restored exactly.
    let before = db_back_without_a_human(&s, "up", &original, before).await;

    // Upgraded whole this time, no canary: OrderedReady stays stuck on the updated pod just the
    // same once the template is back, and the revert deletes it just the same. No strategy was
    // changed, so none is restored.
    s.cordon_until_reverted("db").await;
    let whole = fleet_only(&s.ns, "whole", "20s", BAD)
        .replacen("{kind: DaemonSet, name: connector, image:", "{kind: StatefulSet, name: db, image:", 1)
        .replace("progressDeadline: 60s", "progressDeadline: 20s");
    s.apply(&whole).await;
    db_back_without_a_human(&s, "whole", &original, before).await;
}

/// Upgrade `name` of s21's StatefulSet `db` rolled back for its rollout, by deleting its pod
/// stuck on the new image: db back on GOOD, Ready, with its strategy `original`, only its top
/// ordinal made again since `before`. Its pods now.
async fn db_back_without_a_human(
    s: &Scenario,
    name: &str,
    original: &serde_json::Value,
    before: std::collections::BTreeMap<String, (String, String)>,
) -> std::collections::BTreeMap<String, (String, String)> {
    let sts: Api<StatefulSet> = Api::namespaced(s.client.clone(), &s.ns);
    let mu = s.wait_phase(name, Phase::RolledBack, SECS(180)).await;
    assert_eq!(mu.status.unwrap().rollback.unwrap().reason, reason::ROLLOUT_FAILED);
    let events = s.events(name).await;
    assert!(events.iter().any(|e| e.contains("and are not Ready")), "{events:?}");
    eventually(&format!("db back after {name}"), SECS(90), || async {
        let status = sts.get("db").await.unwrap().status.unwrap_or_default();
        status.ready_replicas == Some(4) && status.updated_replicas == Some(4)
    })
    .await;
    let db = sts.get("db").await.unwrap().spec.unwrap();
    assert_eq!(db.template.spec.unwrap().containers[0].image.as_deref(), Some(GOOD));
    assert_eq!(&serde_json::to_value(db.update_strategy).unwrap(), original, "the strategy as it was");
    let after = s.pods_by_name("db").await;
    let uids = |pods: &std::collections::BTreeMap<String, (String, String)>| -> Vec<String> {
        pods.values().map(|(uid, _)| uid.clone()).collect()
    };
    let kept = uids(&after).iter().filter(|u| uids(&before).contains(u)).count();
    assert_eq!(kept, 3, "only the top ordinal was made again: {before:?} -> {after:?}");
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s22_a_deployment_canary_runs_beside_its_replicas_then_its_settings_are_restored_exactly() {
    let mut s = Scenario::new("surge").await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.ns);
    let mut spec = app_spec("surge", "web");
    spec["replicas"] = 6.into();
    let web: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).unwrap();
    deployments.create(&Default::default(), &web).await.unwrap();
    let rolled_out = || async {
        let status = deployments.get("web").await.unwrap().status.unwrap_or_default();
        (status.available_replicas, status.updated_replicas, status.replicas) == (Some(6), Some(6), Some(6))
    };
    eventually("web available", SECS(90), rolled_out).await;
    let settings = |d: &Deployment| {
        let spec = d.spec.clone().unwrap();
        json!([spec.strategy, spec.min_ready_seconds, spec.progress_deadline_seconds])
    };
    let original = settings(&deployments.get("web").await.unwrap());
    let before = s.pods_by_name("web").await;
    s.workload(Duration::from_millis(200), Duration::from_secs(20));
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let upgrade = two_stage(&s.ns, "up", "20s", next)
        .replacen(
            "{kind: DaemonSet, name: connector, canary: {nodes: 2}, image:",
            "{kind: Deployment, name: web, canary: {replicas: 2}, image:",
            1,
        )
        .replacen("{kind: DaemonSet, name: connector, image:", "{kind: Deployment, name: web, image:", 1)
        .replacen(
            "    - name: fleet\n",
            &format!(
                "    - name: wider\n      components: [{{kind: Deployment, name: web, canary: {{replicas: \"50%\"}}, image: \"{next}\"}}]\n      soak: 10s\n      progressDeadline: 60s\n    - name: fleet\n"
            ),
            1,
        );
    s.apply(&upgrade).await;
    let mu = s
        .wait_for("up", SECS(90), "soaking the canary", |mu| {
            mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
        })
        .await;
    // Two new replicas beside the six it had, which are the pods it started with.
    let during = s.pods_by_name("web").await;
    let new: Vec<&String> = during.iter().filter(|(_, (_, image))| image == next).map(|(n, _)| n).collect();
    assert_eq!(new.len(), 2, "{during:?}");
    for (name, (uid, image)) in &before {
        assert_eq!(during.get(name), Some(&(uid.clone(), image.clone())), "{name} untouched");
    }
    let canary = mu.status.unwrap().stages[0].components[0].canary.clone().unwrap();
    assert_eq!((canary.wanted, canary.total, canary.pods.len()), (2, 6, 2));
    // Every field the canary changes is attributed to the operator's field manager.
    let d = deployments.get("web").await.unwrap();
    for field in ["f:strategy", "f:minReadySeconds", "f:progressDeadlineSeconds"] {
        let owners = managers_of(&d.metadata, &["f:spec", field]);
        assert!(owners.contains(&FIELD_MANAGER), "managers of {field}: {owners:?}");
    }
    let owners = image_owners(&d.metadata, "connector");
    assert!(owners.contains(&FIELD_MANAGER), "managers of the image: {owners:?}");
    // The operator killed mid-canary widens it and hands the rest over from what it recorded.
    s.operator.kill();
    s.operator.restart().unwrap();
    // Widened by the middle stage: 50 % of 6, still beside every old replica.
    s.wait_for("up", SECS(90), "soaking the wider canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[1].phase == StagePhase::Soaking)
    })
    .await;
    let wider = s.pods_by_name("web").await;
    assert_eq!(wider.values().filter(|(_, image)| image == next).count(), 3, "{wider:?}");
    for (name, (uid, image)) in &before {
        assert_eq!(wider.get(name), Some(&(uid.clone(), image.clone())), "{name} untouched");
    }
    s.wait_phase("up", Phase::Succeeded, SECS(180)).await;
    eventually("web rolled out", SECS(90), rolled_out).await;
    let d = deployments.get("web").await.unwrap();
    assert_eq!(
        settings(&d),
        original,
        "its strategy, minReadySeconds and progressDeadlineSeconds restored exactly"
    );
    let pods = s.pods_by_name("web").await;
    assert!(!pods.is_empty() && pods.values().all(|(_, image)| image == next), "{pods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s23_a_deployment_canary_reverted_leaves_every_old_replica_and_its_availability_alone() {
    let s = Scenario::new("surge-back").await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), &s.ns);
    let mut spec = app_spec("surge-back", "web");
    spec["replicas"] = 4.into();
    spec["minReadySeconds"] = 1.into();
    spec["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    let web: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": spec})).unwrap();
    deployments.create(&Default::default(), &web).await.unwrap();
    let available = |d: &Deployment| d.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
    eventually("web available", SECS(90), || async {
        available(&deployments.get("web").await.unwrap()) == 4
    })
    .await;
    let spec = deployments.get("web").await.unwrap().spec.unwrap();
    let original = json!([spec.strategy, spec.min_ready_seconds, spec.progress_deadline_seconds]);
    let before = s.pods_by_name("web").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let upgrade = two_stage(&s.ns, "up", "120s", next)
        .replacen(
            "{kind: DaemonSet, name: connector, canary: {nodes: 2}, image:",
            "{kind: Deployment, name: web, canary: {replicas: \"25%\"}, image:",
            1,
        )
        .replacen("{kind: DaemonSet, name: connector, image:", "{kind: Deployment, name: web, image:", 1);
    s.apply(&upgrade).await;
    s.wait_for("up", SECS(90), "soaking the canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    assert_eq!(s.pods_by_name("web").await.len(), 5, "one new replica (25 % of 4) beside the four");
    // From the revert on, the Deployment never counts fewer than its four old replicas available.
    let (watch, lowest) = (deployments.clone(), std::sync::Arc::new(std::sync::atomic::AtomicI32::new(4)));
    let seen = lowest.clone();
    let watcher = tokio::spawn(async move {
        loop {
            if let Ok(d) = watch.get("web").await {
                seen.fetch_min(available(&d), std::sync::atomic::Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let ups: Api<MaintenanceUpgrade> = Api::namespaced(s.client.clone(), &s.ns);
    let patch = json!({"spec": {"rollback": {"requested": true}}});
    ups.patch("up", &Default::default(), &kube::api::Patch::Merge(patch)).await.unwrap();
    s.wait_phase("up", Phase::RolledBack, SECS(120)).await;
    eventually("the canary's replica scaled away", SECS(60), || async {
        s.pods_by_name("web").await.len() == 4
    })
    .await;
    watcher.abort();
    assert_eq!(lowest.load(std::sync::atomic::Ordering::Relaxed), 4, "availability never dropped");
    assert_eq!(s.pods_by_name("web").await, before, "the four old replicas, untouched");
    let spec = deployments.get("web").await.unwrap().spec.unwrap();
    assert_eq!(json!([spec.strategy, spec.min_ready_seconds, spec.progress_deadline_seconds]), original);
    assert_eq!(spec.template.spec.unwrap().containers[0].image.as_deref(), Some(GOOD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s24_a_fault_of_the_canarys_node_alone_is_counted_on_the_canarys_own_signal() {
    let mut s = Scenario::new("canary-signal").await;
    s.node_agent("connector", GOOD).await;
    s.workload(Duration::from_millis(100), Duration::from_secs(20));
    // The connector's new version breaks mounts on its own node: half the pods there fail.
    s.mount_faults("connector", 2);
    // Reads of 8 s: 8 pods of the canary's node each (the workload spreads its pods evenly over
    // the `ZONES` nodes), so that each read is judged alone (quieter ones would be pooled until
    // they have 5). Its baseline is 30 s observed live (an e2e has no week of history), against
    // which only a catastrophe acts: a rate far above it, in 15 reads in a row of at least 5
    // pods. Diluted over the ten nodes, the same fault is no catastrophe to the cluster-wide
    // signal.
    let upgrade = two_stage(&s.ns, "up", "180s", BAD)
        .replacen("canary: {nodes: 2}", "canary: {nodes: 1}", 1)
        .replacen("interval: 2s", "interval: 8s", 1)
        .replacen("bucket: 2s", "bucket: 8s", 1);
    s.apply(&upgrade).await;
    let of = |mu: &MaintenanceUpgrade, name: &str| {
        mu.status.as_ref().and_then(|st| st.analysis.iter().find(|a| a.name == name).cloned())
    };
    // From before any change, its copy of the built-in signal counts the node the canary takes.
    let first = node_name("canary-signal", 0);
    let mu = s
        .wait_for("up", SECS(60), "the canary's copy of the signal", |mu| {
            of(mu, "pod-start-failures@canary")
                .is_some_and(|a| a.nodes == [first.clone()] && a.baseline.is_some())
        })
        .await;
    assert!(mu.status.as_ref().unwrap().changed_at.is_none(), "its baseline is measured before the change");
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(240)).await;
    let st = mu.status.as_ref().unwrap();
    let rollback = st.rollback.as_ref().unwrap();
    assert_eq!(rollback.reason, reason::REGRESSION);
    assert!(rollback.message.contains("signal pod-start-failures@canary"), "{}", rollback.message);
    assert_eq!(st.stages[1].phase, StagePhase::Pending, "reverted during the canary");
    let canary = of(&mu, "pod-start-failures@canary").unwrap();
    let whole = of(&mu, "pod-start-failures").unwrap();
    let (c, w) = (canary.soak.unwrap(), whole.soak.unwrap());
    // Its node's pods only: about a tenth of them, with every failure the fault made.
    assert!(c.errors > 0 && c.attempts * 3 < w.attempts, "canary {c:?}, whole {w:?}");
    assert!(c.rate > 0.2, "half its pods fail: {c:?}");
    assert!(canary.reason.contains("the rest of the cluster runs at"), "{}", canary.reason);
    s.wait_rolled_out("connector", SECS(60)).await;
    assert_eq!(s.image("connector").await, GOOD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s25_a_prometheus_query_follows_the_canary_through_its_placeholders() {
    let mut s = Scenario::new("canary-query").await;
    s.node_agent("connector", GOOD).await;
    // Scheduling traffic for the query to measure, and its history for the baseline.
    s.workload(Duration::from_millis(200), SECS(20));
    tokio::time::sleep(SECS(30)).await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    // The scheduler's attempts, and no errors, as queries name the canary's nodes and revision:
    // each `!~` keeps every `up` series, and Prometheus's query log shows what was filled in.
    // Not the scheduler's errors: every scenario of the shared cluster makes them, at times a
    // quarter of its attempts, a baseline no regression could be told above, which holds the
    // change (BaselineLeavesNoRoom).
    let upgrade = prometheus_upgrade("up", "connector", &s.env.prometheus_url)
        .replace("name: connector, image:", "name: connector, canary: {nodes: 1}, image:")
        .replace(
            "      soak: 20s\n      progressDeadline: 60s\n",
            &format!(
                "      soak: 20s\n      progressDeadline: 60s\n    - name: fleet\n      components: [{{kind: DaemonSet, name: connector, image: \"{next}\"}}]\n      soak: 10s\n      progressDeadline: 60s\n"
            ),
        )
        .replace(
            "errors: sum(increase(scheduler_schedule_attempts_total{result!=\"scheduled\"}[$interval]))",
            "errors: 0 * count(up{instance!~\"$canary_nodes\", job!~\"$canary_revision\"})",
        );
    s.apply(&upgrade).await;
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(180)).await;
    let canary = mu.status.unwrap().canary.expect("what the queries followed");
    assert_eq!(canary.nodes, [node_name("canary-query", 0)]);
    let log = std::fs::read_to_string(s.env.prometheus_dir.join("queries.log")).unwrap();
    let sent = |nodes: &str, revision: &str| format!(r#"instance!~\"(?:{nodes})\", job!~\"(?:{revision})\""#);
    let revision = &canary.revisions[0];
    assert!(
        log.contains(&sent(&canary.nodes[0], revision)),
        "{revision}: {}",
        log.lines().last().unwrap_or("")
    );
    assert!(!log.contains("$canary_nodes"), "never sent unfilled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s26_the_revert_goes_to_the_digest_the_targets_own_pods_ran_not_a_siblings() {
    use k8s_openapi::api::core::v1::Pod;
    let s = Scenario::new("digest").await;
    s.connector("connector", GOOD, false).await;
    // A sibling whose pods the connector's selector (app=connector) selects too.
    let sibling: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "connector-sibling"},
        "spec": {
            "selector": {"matchLabels": {"app": "connector", "role": "sibling"}},
            "template": {
                "metadata": {"labels": {"app": "connector", "role": "sibling"}},
                "spec": {"nodeSelector": {SCENARIO_LABEL: "digest"}, "containers": [{"name": "connector", "image": GOOD}]}
            }
        }
    }))
    .unwrap();
    s.daemonsets().create(&Default::default(), &sibling).await.unwrap();
    s.wait_rolled_out("connector-sibling", SECS(60)).await;
    // KWOK's pods report no image ID: each says the digest it runs, as a kubelet would, the
    // sibling's a different one (the tag was pushed again between their pulls).
    let repo = GOOD.split(':').next().unwrap();
    let (ours, theirs) = (format!("sha256:{}", "a".repeat(64)), format!("sha256:{}", "b".repeat(64)));
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), &s.ns);
    for p in pods.list(&ListParams::default().labels("app=connector")).await.unwrap() {
        let owner = p.metadata.owner_references.as_ref().unwrap()[0].name.clone();
        let digest = if owner == "connector" { &ours } else { &theirs };
        let patch = json!({"status": {"containerStatuses": [{"name": "connector", "imageID": format!("{repo}@{digest}")}]}});
        pods.patch_status(&p.name_any(), &Default::default(), &kube::api::Patch::Strategic(patch))
            .await
            .unwrap();
    }
    tokio::time::sleep(SECS(5)).await; // for the operator's pod watch
    let upgrade = fleet_only(&s.ns, "up", "10m", BAD);
    s.apply(&upgrade).await;
    let mu = s.wait_phase("up", Phase::Soaking, SECS(120)).await;
    let c = &mu.status.unwrap().stages[0].components[0];
    assert_eq!(
        c.known_good_digest.as_deref(),
        Some(format!("{repo}@{ours}").as_str()),
        "its own pods' digest"
    );
    let ups: Api<MaintenanceUpgrade> = Api::namespaced(s.client.clone(), &s.ns);
    let patch = json!({"spec": {"rollback": {"requested": true}}});
    ups.patch("up", &Default::default(), &kube::api::Patch::Merge(patch)).await.unwrap();
    let mu = s.wait_phase("up", Phase::RolledBack, SECS(120)).await;
    // To the bits that ran, whatever the tag points at now, and the status says so.
    let pinned = format!("{GOOD}@{ours}");
    assert_eq!(s.image("connector").await, pinned);
    let c = &mu.status.unwrap().stages[0].components[0];
    assert_eq!(c.reverted_to.as_deref(), Some(pinned.as_str()));
    assert_eq!(c.phase, ComponentPhase::Reverted, "the pinned image is its own known-good: {c:?}");
    assert_eq!(s.image("connector-sibling").await, GOOD, "the sibling untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s27_a_change_or_status_write_the_api_server_keeps_refusing_is_retried_further_apart_and_announced_once()
 {
    let s = Scenario::new("refused").await;
    s.connector("connector", GOOD, false).await;
    // The cluster's own admission refuses v1.4.0 in this namespace: every image patch fails the
    // same way until a human acts.
    let spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["daemonsets"]}]},
        "validations": [{"expression": "object.spec.template.spec.containers.all(c, !c.image.endsWith(':v1.4.0'))", "message": "v1.4.0 is not allowed here"}]
    });
    let refusing = s.install_policy(&format!("e2e-deny-v140-{}", s.ns), spec, Some(&s.ns)).await;
    // The policy takes a moment to load: until the connector's own edit to it is refused.
    let dss = s.daemonsets();
    eventually("the policy refuses v1.4.0", SECS(30), || async {
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "connector", "image": BAD}]}}}});
        let dry = kube::api::PatchParams { dry_run: true, ..Default::default() };
        dss.patch("connector", &dry, &kube::api::Patch::Strategic(patch)).await.is_err()
    })
    .await;
    let upgrade = fleet_only(&s.ns, "up", "10m", BAD);
    s.apply(&upgrade).await;
    let failed = |evs: &[String]| evs.iter().filter(|e| e.starts_with(reason::ACTION_FAILED)).count();
    eventually("the first refusal", SECS(90), || async { failed(&s.events("up").await) > 0 }).await;
    let evs = s.events("up").await;
    assert!(evs.iter().any(|e| e.contains("v1.4.0 is not allowed here")), "{evs:?}");
    // Retried 5, 10, 20 s apart: three more tries in 40 s, none of them announced again (at a
    // fixed 5 s, eight Warning Events).
    tokio::time::sleep(SECS(40)).await;
    let evs = s.events("up").await;
    assert_eq!(failed(&evs), 1, "{evs:?}");
    assert_eq!(s.image("connector").await, GOOD);

    // Now the upgrade's own status write is refused (in force once the operator's dry run is), and
    // the image let through: the image changes, but the status cannot say so. That failure is
    // an Event of its own, said once too, and once the write goes through the status catches up
    // with the image it set (the stage then soaks, or is reverted if its progress deadline,
    // which counts the refusals too, has passed).
    let spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": ["maintenance.dev"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["maintenanceupgrades/status"]}]},
        "validations": [{"expression": "false", "message": "status writes refused by the e2e test"}]
    });
    let no_status = s.install_policy(&format!("e2e-deny-status-{}", s.ns), spec, Some(&s.ns)).await;
    let dry = kube::api::PatchParams { dry_run: true, ..Default::default() };
    // The dry run is the operator's own (its ServiceAccount, as the operator runs): anyone
    // else's status write is refused by the product's own status policy too, and which of two
    // refusals the API server names is not fixed.
    let as_operator = kube::config::Kubeconfig::read_from(&s.env.operator_kubeconfig).unwrap();
    let as_operator = kube::Config::from_custom_kubeconfig(as_operator, &Default::default()).await.unwrap();
    let upgrades_as_operator: kube::Api<MaintenanceUpgrade> =
        kube::Api::namespaced(kube::Client::try_from(as_operator).unwrap(), &s.ns);
    // Polled by hand, to say what the dry run got should the policy never be in force.
    let deadline = std::time::Instant::now() + SECS(60);
    loop {
        let write = kube::api::Patch::Merge(json!({"status": {"message": "a dry run"}}));
        let got = match upgrades_as_operator.patch_status("up", &dry, &write).await {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.to_string(),
        };
        if got.contains("status writes refused by the e2e test") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the status policy is not in force within 60s: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    drop(refusing);
    let status_refused = |evs: &[String]| {
        evs.iter()
            .filter(|e| {
                e.starts_with(reason::ACTION_FAILED) && e.contains("status writes refused by the e2e test")
            })
            .count()
    };
    eventually("the refused status write is said", SECS(90), || async {
        status_refused(&s.events("up").await) > 0
    })
    .await;
    assert_eq!(s.image("connector").await, BAD, "the image went through");
    let evs = s.events("up").await;
    assert!(evs.iter().any(|e| e.contains("failed to write the status of MaintenanceUpgrade")), "{evs:?}");
    // Refused twice (the second a retry, further apart), said once: in the log too.
    eventually("the status write retried", SECS(90), || async {
        let metrics = s.operator.metrics().await;
        let series = "maintenance_operator_reconciles_total{result=\"patch_status\"}";
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .is_some_and(|v| v >= 2.0)
    })
    .await;
    let logged =
        s.operator.log().lines().filter(|l| l.contains("retrying in") && l.contains("patch_status")).count();
    assert_eq!(logged, 1, "a failure that lasts is logged once:\n{}", s.operator.log());
    assert_eq!(status_refused(&s.events("up").await), 1, "said once: {:?}", s.events("up").await);
    drop(no_status);
    s.wait_for("up", SECS(90), "the status written again", |mu| {
        mu.status.as_ref().is_some_and(|st| {
            st.stages
                .first()
                .and_then(|st| st.components.first())
                .is_some_and(|c| matches!(c.phase, ComponentPhase::Applied | ComponentPhase::Reverted))
        })
    })
    .await;
    assert_eq!(status_refused(&s.events("up").await), 1, "said once: {:?}", s.events("up").await);
    assert!(s.operator.log().lines().all(|l| !l.contains("panicked")));
}

/// When the operator last wrote the upgrade's status (its managedFields, to the second).
async fn last_status_write(s: &Scenario, name: &str) -> i64 {
    let mu = s.upgrades().get(name).await.unwrap();
    mu.metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter(|f| f.manager.as_deref() == Some(FIELD_MANAGER) && f.subresource.as_deref() == Some("status"))
        .filter_map(|f| f.time.as_ref().map(|t| t.0.as_second()))
        .max()
        .unwrap_or(0)
}

/// A leader whose renewals are refused stops writing within the term its last renewal proved (it
/// would otherwise go on beside the replica that takes the Lease after it expires), stops
/// exporting the upgrades' series, keeps its caches warm, and leads again once it can renew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s28_a_leader_that_cannot_renew_stops_writing_within_its_term_and_leads_again_later() {
    let s = Scenario::new("fenced").await;
    s.connector("connector", GOOD, false).await;
    eventually("the operator leads", SECS(30), || async {
        s.lease_holder().await.as_deref() == Some("fenced")
    })
    .await;
    // Soaking: a status write every closed bucket (2 s).
    let upgrade = fleet_only(&s.ns, "up", "10m", BAD);
    s.apply(&upgrade).await;
    s.wait_for("up", SECS(120), "soaking", |mu| {
        mu.status.as_ref().is_some_and(|st| st.phase == Phase::Soaking)
    })
    .await;
    assert!(s.operator.metrics().await.contains("maintenance_operator_upgrade_phase{"));
    let refused = s.refuse_renewals("fenced").await;
    // Its last renewal went through before this; its term ends 10 s after that at the latest.
    let refused_at = chrono::Utc::now().timestamp();
    tokio::time::sleep(SECS(16)).await;
    let last = last_status_write(&s, "up").await;
    assert!(last > refused_at - 10, "it was writing until then: last write {last}, refused at {refused_at}");
    assert!(last <= refused_at + 11, "a write past its term: {} s after the refusal", last - refused_at);
    let rv = s.upgrades().get("up").await.unwrap().resource_version();
    tokio::time::sleep(SECS(6)).await;
    assert_eq!(s.upgrades().get("up").await.unwrap().resource_version(), rv, "it wrote nothing since");
    assert_eq!(s.image("connector").await, BAD, "the target as it was");
    let metrics = s.operator.metrics().await;
    assert!(metrics.contains("maintenance_operator_leading 0"), "{metrics}");
    assert_eq!(s.operator.probe("/readyz").await, (200, "ok: following".to_string()), "a follower is ready");
    assert_eq!(s.operator.probe("/healthz").await.0, 200, "and alive");
    assert!(
        !metrics.contains("maintenance_operator_upgrade_phase{"),
        "a follower exports no upgrade: {metrics}"
    );
    // The API server's own record: nothing it received from this replica fell outside a term.
    e2e::audit::assert_no_write_past_term(&s.env, &["fenced"]);
    assert!(
        s.operator.log().contains("ended without a renewal this replica can prove"),
        "the log says why it stopped:\n{}",
        s.operator.log()
    );
    // It can renew again: it leads, with the caches it kept, and the upgrade goes on.
    drop(refused);
    eventually("it writes again", SECS(60), || async {
        s.upgrades().get("up").await.unwrap().resource_version() != rv
    })
    .await;
    assert!(s.operator.metrics().await.contains("maintenance_operator_leading 1"));
    assert_eq!(s.operator.probe("/readyz").await, (200, "ok: leading".to_string()));
}

/// Deleting an upgrade mid-soak is an abort: what it changed goes back to the known-good image,
/// its targets are released, and only then does it go (its finalizer). The next upgrade of the
/// same target then finds nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s29_an_upgrade_deleted_mid_soak_reverts_what_it_changed_and_releases_its_targets_before_it_goes() {
    let s = Scenario::new("deleted").await;
    s.node_agent("connector", GOOD).await;
    let before = s.pods_by_node("connector").await;
    let original = s.strategy("connector").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    // Automatic rollback off: a deletion reverts whatever the rollback settings say.
    let upgrade = two_stage(&s.ns, "up", "10m", next)
        .replace("  analysis:", "  rollback: {automatic: false}\n  analysis:");
    s.apply(&upgrade).await;
    s.wait_for("up", SECS(120), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    assert_eq!(s.image("connector").await, next);
    let mu = s.upgrades().get("up").await.unwrap();
    assert!(
        mu.finalizers().iter().any(|f| f == maintenance_operator::constants::FINALIZER),
        "{:?}",
        mu.finalizers()
    );
    s.upgrades().delete("up", &Default::default()).await.unwrap();
    eventually("the upgrade goes", SECS(90), || async {
        s.upgrades().get_opt("up").await.unwrap().is_none()
    })
    .await;
    assert_eq!(s.image("connector").await, GOOD, "reverted before it went");
    assert_eq!(s.strategy("connector").await, original, "its strategy restored exactly");
    let ds = s.daemonsets().get("connector").await.unwrap();
    let marks: Vec<&String> = ds
        .annotations()
        .keys()
        .chain(ds.labels().keys())
        .filter(|k| k.starts_with("maintenance.dev/"))
        .collect();
    assert!(marks.is_empty(), "released: {marks:?}");
    // Only the canary's pods were made again, and every pod runs the known-good image.
    s.wait_rolled_out("connector", SECS(60)).await;
    let after = s.pods_by_node("connector").await;
    let made_again: Vec<&String> =
        after.iter().filter(|(n, (uid, _))| *uid != before[*n].0).map(|(n, _)| n).collect();
    assert_eq!(made_again.len(), 2, "{made_again:?}");
    assert!(after.values().all(|(_, image)| image == GOOD), "{after:?}");
    let events = s.events("up").await;
    assert!(events.iter().any(|e| e.starts_with(reason::UPGRADE_DELETED)), "{events:?}");
    // A release decided on an older read (or landing late, after another replica took over)
    // changes nothing: the API server refuses it.
    let stale = maintenance_operator::target::release_patch("1", false);
    let refused =
        s.daemonsets().patch("connector", &Default::default(), &kube::api::Patch::Merge(stale)).await;
    assert!(matches!(&refused, Err(kube::Error::Api(e)) if e.code == 409), "{refused:?}");
    assert!(
        s.operator.log().contains("the finalizer removed"),
        "the operator says why it went:\n{}",
        s.operator.log()
    );
    // A canary's change and its revert both unrecorded (a restart, then a lost status write)
    // leave the claimed DaemonSet on OnDelete, written by the operator's field manager, beside
    // its record, the template back on its known-good image: made so here under an upgrade held
    // before its first stage. Deleted, that upgrade gives the DaemonSet its own strategy back
    // before it goes. OnDelete set so by anyone else is theirs, and stays.
    let on_delete =
        serde_json::json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}});
    use maintenance_operator::constants::FIELD_MANAGER;
    for (manager, restored) in [(FIELD_MANAGER, true), ("kubectl-edit", false)] {
        let held = two_stage(&s.ns, "held", "10m", next).replace("  stages:", "  paused: true\n  stages:");
        s.apply(&held).await;
        s.wait_for("held", SECS(120), "claimed", |mu| {
            mu.status.as_ref().is_some_and(|st| st.claimed_at.is_some())
        })
        .await;
        let pp = kube::api::PatchParams { field_manager: Some(manager.into()), ..Default::default() };
        s.daemonsets().patch("connector", &pp, &kube::api::Patch::Merge(&on_delete)).await.unwrap();
        s.upgrades().delete("held", &Default::default()).await.unwrap();
        eventually("the held upgrade goes", SECS(90), || async {
            s.upgrades().get_opt("held").await.unwrap().is_none()
        })
        .await;
        assert_eq!(s.image("connector").await, GOOD);
        if restored {
            assert_eq!(s.strategy("connector").await, original, "its strategy restored exactly");
            let events = s.events("held").await;
            assert!(events.iter().any(|e| e.contains("which its canary left")), "{events:?}");
        } else {
            assert_eq!(
                s.strategy("connector").await,
                serde_json::json!({"type": "OnDelete"}),
                "left as {manager} set it"
            );
        }
    }
    // Ended without a revert (its window's deadline moved into the past while it waits for the
    // window), the release itself gives the DaemonSet its strategy back.
    let own = serde_json::json!({"spec": {"updateStrategy": original.clone()}});
    s.daemonsets().patch("connector", &Default::default(), &kube::api::Patch::Merge(&own)).await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(12);
    let window = format!(
        "  window:\n    timeZone: UTC\n    recurring: [{{days: [{}], start: \"{}\", duration: 1h}}]\n  stages:\n",
        later.format("%a"),
        later.format("%H:%M")
    );
    s.apply(&two_stage(&s.ns, "waiting", "10m", next).replacen("  stages:\n", &window, 1)).await;
    s.wait_phase("waiting", Phase::WaitingForWindow, SECS(120)).await;
    let pp = kube::api::PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    s.daemonsets().patch("connector", &pp, &kube::api::Patch::Merge(&on_delete)).await.unwrap();
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let deadline = serde_json::json!({"spec": {"window": {"deadline": past}}});
    s.upgrades().patch("waiting", &Default::default(), &kube::api::Patch::Merge(&deadline)).await.unwrap();
    let mu = s
        .wait_for("waiting", SECS(90), "ended and released", |mu| {
            mu.status.as_ref().is_some_and(|st| st.phase == Phase::Failed && st.released_at.is_some())
        })
        .await;
    assert_eq!(s.strategy("connector").await, original, "its strategy restored exactly");
    let said = mu.status.unwrap().message;
    assert!(said.contains("which its canary left, restored from its record"), "{said}");
}

/// Writes an admission policy refuses for a while. The new image first (an image policy that
/// does not trust it yet): the status says Blocked, ActionFailed, what the operator was doing
/// and what the API server said, and the upgrade goes on once the image is allowed. Then the
/// final status write: the targets are not released until the final phase is stored, so the
/// upgrade ends Succeeded with its targets released, never Blocked on targets it took for
/// changed by someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s30_refused_writes_are_said_and_the_upgrade_ends_succeeded_and_released_once_they_pass() {
    let mut s = incident_world("final-write").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let upgrade = fleet_only(&s.ns, "up", "10s", next);
    let refusing_image = s.refuse_image(next).await;
    let refusing = s.refuse_status_phases(&["Succeeded"]).await;
    s.apply(&upgrade).await;
    let mu = s
        .wait_for("up", SECS(120), "the refused image said in Blocked", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.conditions.iter().any(|c| {
                    c.type_ == condition::BLOCKED && c.status == "True" && c.reason == reason::ACTION_FAILED
                })
            })
        })
        .await;
    let st = mu.status.unwrap();
    let blocked = st.conditions.iter().find(|c| c.type_ == condition::BLOCKED).unwrap();
    let setting = format!("setting DaemonSet {}/connector to {next}", s.ns);
    for said in [setting.as_str(), "the image is refused by the e2e test", "needs a human"] {
        assert!(blocked.message.contains(said), "{said:?} in {}", blocked.message);
    }
    assert_ne!(s.image("connector").await, next, "nothing half-applied");
    drop(refusing_image);
    eventually("the final write refused", SECS(120), || async {
        s.operator.log().contains("the final status write is refused by the e2e test")
    })
    .await;
    tokio::time::sleep(SECS(15)).await;
    let mu = s.upgrades().get("up").await.unwrap();
    assert_ne!(mu.status.as_ref().unwrap().phase, Phase::Succeeded);
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert!(ds.labels().contains_key(CLAIMED_LABEL), "not released before the final phase is stored");
    drop(refusing);
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(120)).await;
    assert_eq!(s.image("connector").await, next);
    let blocked = mu.status.unwrap().conditions.into_iter().find(|c| c.type_ == condition::BLOCKED);
    assert!(blocked.as_ref().is_none_or(|c| c.status != "True"), "{blocked:?}");
    let ds = s.daemonsets().get("connector").await.unwrap();
    assert!(!ds.labels().contains_key(CLAIMED_LABEL), "released once the final phase is stored");
    assert!(ds.annotations().keys().all(|k| !k.starts_with("maintenance.dev/")), "{:?}", ds.annotations());
    s.stop_background().await;
}

/// The operator run from its image (`make image`) under runc, as a kubelet would run
/// config/manager: the image's entrypoint and user (65532), a read-only root filesystem, no
/// capability, and its ServiceAccount's own token.
/// One upgrade goes through, the next regresses and is rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s32_the_operator_run_from_its_image_upgrades_then_rolls_back() {
    let mut s = incident_world("image").await;
    s.operator.run_from_image().await.expect("the operator runs from its image");
    let pid = s.operator.pid().expect("its container runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(uid.split_whitespace().nth(1), Some("65532"), "the image's user: {uid}");
    let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert_eq!(caps.split_whitespace().nth(1), Some("0000000000000000"), "no capability: {caps}");
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mounts.lines().find(|l| l.split_whitespace().nth(4) == Some("/")).unwrap();
    assert!(root.split_whitespace().nth(5).unwrap().split(',').any(|o| o == "ro"), "read-only root: {root}");

    s.fault_injector(&["connector"], SECS(60), 0.6); // only once a stage sets BAD
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    s.apply(&two_stage(&s.ns, "up", "10s", next)).await;
    s.wait_phase("up", Phase::Succeeded, SECS(150)).await;
    assert_eq!(s.image("connector").await, next);

    s.apply(&two_stage(&s.ns, "down", "90s", BAD)).await;
    let mu = s.wait_phase("down", Phase::RolledBack, SECS(180)).await;
    let st = mu.status.unwrap();
    assert_eq!(st.rollback.unwrap().reason, reason::REGRESSION);
    assert_eq!(s.image("connector").await, next, "back on the image the first upgrade proved");
    assert_eq!(st.stages[1].phase, StagePhase::Pending, "caught in the canary: the fleet never left it");
    // It led in its ServiceAccount's own name, with the token the API server issued it.
    assert!(s.env.own_lease_writes(OPERATOR_SA, &s.lease()).unwrap() > 0, "no Lease write as {OPERATOR_SA}");
    assert_eq!(s.lease_holder().await.as_deref(), Some(s.operator.instance.as_str()));
    s.operator.terminate(SECS(10)).expect("SIGTERM ends it within 10 s, as a kubelet's stop would");
}

/// The checks of the docs' "Verify the install" page refuse what the page says they refuse, as
/// they are written there: an upgrade with no stage, and one that reaches into another namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s35_the_install_checks_of_the_docs_refuse_what_they_say() {
    let env = Env::from_env().unwrap();
    env.setup().await.unwrap();
    let no_stage = docs::run(&env, &docs::block(&env, "getting-started/verify.md", "no stage"));
    assert!(no_stage.as_ref().is_err_and(|e| e.contains("spec.stages")), "{no_stage:?}");
    let tenancy = docs::run(&env, &docs::block(&env, "getting-started/verify.md", "another namespace"));
    assert!(
        tenancy.as_ref().is_err_and(
            |e| e.contains("an upgrade in namespace default may only change workloads in default")
        ),
        "{tenancy:?}"
    );
}
