//! Unit tests of `target`.

use super::*;
use serde_json::json;

fn deployment(status: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "generation": 2, "resourceVersion": "7",
            "annotations": {OWNER_ANNOTATION: "default/up", OWNER_UID_ANNOTATION: "u-1"}},
        "spec": {"replicas": 3, "selector": {}, "template": {"spec": {"containers": [
            {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "proxy:2"}]}}},
        "status": status
    }))
    .unwrap()
}

#[test]
fn deployment_rollout_states() {
    let cases = [
        (json!({"observedGeneration": 1}), "InProgress"),
        (
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
            "InProgress",
        ),
        (
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
            "Complete",
        ),
        (
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
            "Failed",
        ),
    ];
    for (status, want) in cases {
        let got = from_deployment(&deployment(status.clone())).rollout;
        assert!(format!("{got:?}").starts_with(want), "{status} -> {got:?}");
    }
}

#[test]
fn daemonset_and_statefulset_rollout_states() {
    let ds = |st: serde_json::Value| -> DaemonSet {
        serde_json::from_value(
            json!({"metadata": {"generation": 3}, "spec": {"selector": {}, "template": {}}, "status": st}),
        )
        .unwrap()
    };
    let base = json!({"observedGeneration": 3, "currentNumberScheduled": 5, "numberMisscheduled": 0, "numberReady": 5, "desiredNumberScheduled": 5});
    let mut partial = base.clone();
    partial["updatedNumberScheduled"] = json!(4);
    partial["numberAvailable"] = json!(5);
    assert!(matches!(from_daemonset(&ds(partial)).rollout, Rollout::InProgress(_)));
    let mut done = base.clone();
    done["updatedNumberScheduled"] = json!(5);
    done["numberAvailable"] = json!(5);
    assert_eq!(from_daemonset(&ds(done)).rollout, Rollout::Complete);

    let sts = |st: serde_json::Value| -> StatefulSet {
        serde_json::from_value(
                json!({"metadata": {"generation": 1}, "spec": {"replicas": 2, "selector": {}, "serviceName": "s", "template": {}}, "status": st}),
            )
            .unwrap()
    };
    let rolling = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"});
    assert!(matches!(from_statefulset(&sts(rolling)).rollout, Rollout::InProgress(_)));
    let done = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "b", "updateRevision": "b"});
    assert_eq!(from_statefulset(&sts(done)).rollout, Rollout::Complete);
}

#[test]
fn image_patches_test_the_owner_mark_the_version_and_the_container() {
    let p =
        image_patch(WorkloadKind::Deployment, "7", "team-a/up", "u-1", &[(1, "sidecar", "proxy:3")], None);
    let ops = p.as_array().unwrap();
    assert_eq!(
        ops[0],
        json!({"op": "test", "path": "/metadata/annotations/maintenance.dev~1owner", "value": "team-a/up"})
    );
    assert_eq!(
        ops[1],
        json!({"op": "test", "path": "/metadata/annotations/maintenance.dev~1owner-uid", "value": "u-1"})
    );
    assert_eq!(ops[2], json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"}));
    assert_eq!(
        ops[3],
        json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "sidecar"})
    );
    assert_eq!(
        ops[4],
        json!({"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "proxy:3"})
    );
}

#[test]
fn container_resolution() {
    let t = from_deployment(&deployment(json!({})));
    assert_eq!(t.owner.as_deref(), Some("default/up"));
    assert_eq!(t.owner_uid.as_deref(), Some("u-1"));
    assert_eq!(t.resolve_container(Some("app")).unwrap(), "app");
    assert!(t.resolve_container(Some("nope")).unwrap_err().contains("app, sidecar"));
    assert!(t.resolve_container(None).unwrap_err().contains("2 containers"));
}

#[test]
fn a_component_that_names_no_container_means_the_templates_default_container() {
    let mut d = deployment(json!({}));
    let annotate = |d: &mut Deployment, value: &str| {
        let meta = d.spec.as_mut().unwrap().template.metadata.get_or_insert_with(Default::default);
        meta.annotations = Some([(DEFAULT_CONTAINER_ANNOTATION.to_string(), value.to_string())].into());
    };
    annotate(&mut d, "sidecar");
    let t = from_deployment(&d);
    assert_eq!(t.resolve_container(None).unwrap(), "sidecar");
    assert_eq!(t.resolve_container(Some("app")).unwrap(), "app", "a named container wins");
    // A default that names no container of the template is no default.
    annotate(&mut d, "gone");
    let e = from_deployment(&d).resolve_container(None).unwrap_err();
    assert!(e.contains("default-container annotation names \"gone\", which it does not have"), "{e}");
}

/// What kube-apiserver 1.36 answers, verbatim (`kubectl patch --type=json -v=9`): a JSON patch
/// that does not apply (a `test` that fails, a path that is gone) is a bare 422 with no details;
/// an object the patch would make invalid names its fields.
#[test]
fn a_patch_that_no_longer_applies_is_told_from_an_invalid_object() {
    let api = |body: &str| kube::Error::Api(Box::new(serde_json::from_str(body).unwrap()));
    let failed_test = api(
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422}"#,
    );
    assert!(is_failed_test(&failed_test));
    let invalid = api(
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"DaemonSet.apps \"p\" is invalid: spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0","reason":"Invalid","details":{"name":"p","group":"apps","kind":"DaemonSet","causes":[{"reason":"FieldValueRequired","message":"Required value: cannot be 0 when maxSurge is 0","field":"spec.updateStrategy.rollingUpdate.maxUnavailable"}]},"code":422}"#,
    );
    assert!(!is_failed_test(&invalid));
    // An admission webhook that denies with its own 422 is an action that failed, not a patch
    // to take again in 200 ms, forever.
    let denied = api(
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"admission webhook \"policy.example.com\" denied the request: image not signed","code":422}"#,
    );
    assert!(!is_failed_test(&denied));
}

/// The order targets are claimed in is the same for every replica and version: kind (in the
/// order `WorkloadKind` declares them), then namespace, then name.
#[test]
fn targets_are_ordered_by_kind_then_namespace_then_name() {
    let key = |kind, ns: &str, name: &str| TargetKey { kind, namespace: ns.into(), name: name.into() };
    let mut keys = [
        key(WorkloadKind::StatefulSet, "a", "db"),
        key(WorkloadKind::DaemonSet, "b", "agent"),
        key(WorkloadKind::DaemonSet, "a", "zz"),
        key(WorkloadKind::Deployment, "z", "web"),
        key(WorkloadKind::DaemonSet, "a", "agent"),
    ];
    keys.sort();
    let shown: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        shown,
        ["Deployment z/web", "DaemonSet a/agent", "DaemonSet a/zz", "DaemonSet b/agent", "StatefulSet a/db"]
    );
}

#[test]
fn a_workload_made_to_fill_memory_keeps_no_more_than_the_operator_writes() {
    // Anyone who may edit a workload may label it claimed and fill its annotations and images.
    let mut d = deployment(json!({}));
    let ann = d.metadata.annotations.as_mut().unwrap();
    ann.insert(KNOWN_GOOD_ANNOTATION.into(), format!("app={}", "a".repeat(200 * 1024)));
    ann.insert(ORIGINAL_STRATEGY_ANNOTATION.into(), "x".repeat(MAX_RECORD_BYTES + 1));
    let containers = &mut d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers;
    containers[1].image = Some(format!("proxy:{}", "2".repeat(64 * 1024)));
    let t = from_deployment(&d);
    assert_eq!(t.known_good, None, "longer than any record of the operator's: not one");
    assert_eq!(t.original_strategy, None);
    assert_eq!(t.owner.as_deref(), Some("default/up"), "its own marks are kept");
    assert_eq!(t.image("app"), Some("app:1"));
    assert_eq!(t.image("sidecar"), Some(""), "longer than any reference: none");
    assert!(!crate::image::is_reference(&format!("r/{}", "a".repeat(2000))));
}

#[test]
fn an_owner_mark_names_an_upgrade_only_as_namespace_slash_name() {
    assert_eq!(owner_key("team-a/up.v2"), Some(("team-a", "up.v2")));
    for bad in ["up", "team-a/", "/up", "team-a/up/x", "team-a/../x", "Team/up", "a.b/up", "team-a/up?x=1"] {
        assert_eq!(owner_key(bad), None, "{bad}");
    }
}

/// A workload of a thousand containers (anyone who may edit one may label it claimed) is
/// kept with its first `MAX_CONTAINERS` only.
#[test]
fn a_workload_of_a_thousand_containers_keeps_a_bounded_few() {
    let containers: Vec<_> =
        (0..1000).map(|i| json!({"name": format!("c{i}"), "image": "x".repeat(900)})).collect();
    let ds: DaemonSet = serde_json::from_value(
        json!({"metadata": {}, "spec": {"selector": {}, "template": {"spec": {"containers": containers}}}}),
    )
    .unwrap();
    assert_eq!(from_daemonset(&ds).containers.len(), MAX_CONTAINERS);
}

/// A canary's settings are this operator's only while its field manager owns the field that
/// makes them a canary's: someone who sets OnDelete by hand takes that field over.
#[test]
fn a_canarys_settings_are_ours_while_our_field_manager_owns_what_makes_them_a_canarys() {
    let entry = |manager: &str, fields: serde_json::Value| json!({"manager": manager, "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": fields});
    let on_delete = json!({"f:spec": {"f:updateStrategy": {"f:type": {}}}});
    let ds = |managed: Vec<serde_json::Value>| -> DaemonSet {
        serde_json::from_value(
            json!({"metadata": {"managedFields": managed}, "spec": {"selector": {}, "template": {}}}),
        )
        .unwrap()
    };
    assert!(from_daemonset(&ds(vec![entry(FIELD_MANAGER, on_delete.clone())])).canary_settings_ours);
    assert!(!from_daemonset(&ds(vec![entry("kubectl-patch", on_delete.clone())])).canary_settings_ours);
    // Its image ours, its updateStrategy someone else's.
    let image = json!({"f:spec": {"f:template": {"f:spec": {}}}});
    let split = vec![entry(FIELD_MANAGER, image), entry("helm", on_delete)];
    assert!(!from_daemonset(&ds(split)).canary_settings_ours);
    let partition = json!({"f:spec": {"f:updateStrategy": {"f:rollingUpdate": {"f:partition": {}}}}});
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": {"managedFields": [entry(FIELD_MANAGER, partition)]},
        "spec": {"selector": {}, "serviceName": "db", "template": {}}
    }))
    .unwrap();
    assert!(from_statefulset(&sts).canary_settings_ours);
    let mut d = deployment(json!({}));
    let held = entry(FIELD_MANAGER, json!({"f:spec": {"f:minReadySeconds": {}}}));
    d.metadata.managed_fields = Some(vec![serde_json::from_value(held).unwrap()]);
    assert!(from_deployment(&d).canary_settings_ours);
    assert!(!from_deployment(&deployment(json!({}))).canary_settings_ours);
}
