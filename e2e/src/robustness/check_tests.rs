use super::*;
use maintenance_operator::crd::WorkloadKind;
use maintenance_operator::target::{claim_patch, image_patch, release_patch, strategy_patch};

fn t(secs: i64) -> DateTime<Utc> {
    "2026-12-04T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(secs)
}

fn lane(class: Class) -> Lane {
    Lane {
        owner: "ns/up".into(),
        class,
        target: "agent".into(),
        known_good: "img:1".into(),
        desired: "img:2".into(),
        created_at: t(0),
        phase: Some(Phase::Succeeded),
        image: "img:2".into(),
        marks: vec![],
        strategy_before: rolling(),
        strategy: rolling(),
    }
}

fn rolling() -> Value {
    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}})
}

fn write(at: i64, name: &str, request: Value) -> Write {
    Write {
        instance: "a".into(),
        at: t(at),
        verb: "patch".into(),
        resource: "daemonsets".into(),
        namespace: "ns".into(),
        name: name.into(),
        code: 200,
        holder: None,
        request,
    }
}

#[test]
fn the_operators_own_patches_are_told_apart() {
    let claim = claim_patch("5", "ns/up", "uid", "connector=img:1", None, None);
    assert_eq!(classify(&claim), TargetWrite::Claim { owner: "ns/up".into() });
    let apply = image_patch(WorkloadKind::DaemonSet, "6", "ns/up", "uid", &[(0, "connector", "img:2")], None);
    assert_eq!(classify(&apply), TargetWrite::Owned { owner: "ns/up".into(), images: vec!["img:2".into()] });
    assert_eq!(classify(&release_patch("7", false)), TargetWrite::Release { guarded: true });
    // One that keeps the record of settings a revert left a canary's, for the next upgrade.
    assert_eq!(classify(&release_patch("7", true)), TargetWrite::Release { guarded: true });
    let unguarded = serde_json::json!({"metadata": {"annotations": {OWNER_ANNOTATION: null}}});
    assert_eq!(classify(&unguarded), TargetWrite::Release { guarded: false });
    let other = serde_json::json!({"spec": {"template": {}}});
    assert_eq!(classify(&other), TargetWrite::Unexplained);
    // A claim that changes anything but the marks, or a JSON patch that skips a test or changes
    // more than images, is not the operator's.
    let mut claim_and_more = claim_patch("5", "ns/up", "uid", "connector=img:1", None, None);
    claim_and_more["spec"] = serde_json::json!({"paused": true});
    assert_eq!(classify(&claim_and_more), TargetWrite::Unexplained);
    let mut untested = apply.as_array().unwrap().clone();
    untested.retain(|op| op["path"] != "/metadata/resourceVersion");
    assert_eq!(classify(&Value::Array(untested)), TargetWrite::Unexplained);
    let mut wider = apply.as_array().unwrap().clone();
    wider.push(serde_json::json!({"op": "replace", "path": "/spec/template/spec/containers/0", "value": {}}));
    assert_eq!(classify(&Value::Array(wider)), TargetWrite::Unexplained);
}

#[test]
fn a_write_to_another_workload_or_for_another_owner_or_before_the_window_is_a_violation() {
    let lanes = [lane(Class::Healthy)];
    let apply = |image: &str| {
        image_patch(WorkloadKind::DaemonSet, "6", "ns/up", "uid", &[(0, "connector", image)], None)
    };
    let ok = [
        write(1, "agent", claim_patch("5", "ns/up", "uid", "connector=img:1", None, None)),
        write(20, "agent", apply("img:2")),
        write(5, "agent", apply("img:1")), // a revert goes any time
        write(30, "agent", release_patch("9", false)),
    ];
    assert!(target_writes(&ok, "ns", &lanes, (t(10), t(100))).is_empty());
    let bad = [
        write(1, "decoy", release_patch("9", false)),
        write(2, "agent", claim_patch("5", "ns/other", "uid", "connector=img:1", None, None)),
        write(5, "agent", apply("img:2")),
        write(20, "agent", apply("img:3")),
        write(-1, "agent", release_patch("9", false)),
        write(40, "agent", serde_json::json!({"spec": {}})),
        write(200, "agent", apply("img:2")),
        Write { namespace: "kube-system".into(), ..write(20, "agent", apply("img:2")) },
    ];
    let found = target_writes(&bad, "ns", &lanes, (t(10), t(100)));
    assert_eq!(found.len(), 8, "{found:#?}");
    for (line, says) in found.iter().zip([
        "no upgrade names",
        "in the name of ns/other",
        "outside the window",
        "neither its known-good",
        "before its upgrade",
        "unexplained",
        "outside the window",
        "no upgrade names",
    ]) {
        assert!(line.contains(says), "{line}");
    }
}

#[test]
fn each_class_has_its_end() {
    let healthy = lane(Class::Healthy);
    let rolled_back =
        Lane { phase: Some(Phase::RolledBack), image: "img:1".into(), ..lane(Class::Regressing) };
    let gone = Lane { phase: None, image: "img:1".into(), ..lane(Class::Deleted) };
    let pinned = Lane { image: format!("img:1@sha256:{}", "a".repeat(64)), ..rolled_back.clone() };
    assert!(ends(&[healthy.clone(), rolled_back, gone, pinned]).is_empty());
    let false_rollback = Lane { phase: Some(Phase::RolledBack), image: "img:1".into(), ..healthy.clone() };
    let left_marked = Lane { marks: vec!["maintenance.dev/owner".into()], ..healthy.clone() };
    let third = Lane { phase: None, image: "img:3".into(), ..lane(Class::Deleted) };
    let found = ends(&[false_rollback, left_marked, third]);
    assert_eq!(found.len(), 4, "{found:#?}");
}

/// A canary's own writes are the operator's: its image with OnDelete and the strategy it
/// replaced, in one write; the hand-over to the whole workload, marked; the strategy put back.
/// Any other annotation or spec field in an owned write is not.
#[test]
fn a_canarys_writes_are_the_operators_and_nothing_more() {
    let lanes = [lane(Class::Healthy)];
    let original = rolling().to_string();
    let on_delete = r#"{"type":"OnDelete"}"#;
    let images = [(0, "connector", "img:2")];
    let canary =
        image_patch(WorkloadKind::DaemonSet, "6", "ns/up", "uid", &images, Some((on_delete, &original)));
    let hand_over =
        strategy_patch(WorkloadKind::DaemonSet, "7", "ns/up", "uid", &original, Some("uid-1/fleet"));
    let restored = strategy_patch(WorkloadKind::DaemonSet, "8", "ns/up", "uid", &original, None);
    let ok =
        [write(20, "agent", canary.clone()), write(30, "agent", hand_over), write(40, "agent", restored)];
    assert!(target_writes(&ok, "ns", &lanes, (t(10), t(100))).is_empty());
    for (path, value) in [
        ("/metadata/annotations/maintenance.dev~1paused", serde_json::json!("true")),
        ("/metadata/annotations/example.com~1note", serde_json::json!("x")),
        ("/spec/minReadySeconds", serde_json::json!(30)),
    ] {
        let mut more = canary.as_array().unwrap().clone();
        more.push(serde_json::json!({"op": "add", "path": path, "value": value}));
        assert_eq!(classify(&Value::Array(more)), TargetWrite::Unexplained, "{path}");
    }
}

/// A canary's pods made again: each deleted with its UID as a precondition, a pod of the lane's
/// target only, never another's (agent-1's prefix is not agent-10's), never before the upgrade.
#[test]
fn only_a_lanes_pods_are_deleted_each_with_its_uid() {
    let lanes = [lane(Class::Healthy)];
    let delete = |at: i64, name: &str, uid: Option<&str>| Write {
        verb: "delete".into(),
        resource: "pods".into(),
        ..write(at, name, serde_json::json!({"kind": "DeleteOptions", "preconditions": {"uid": uid}}))
    };
    assert!(pod_deletes(&[delete(20, "agent-x7k2p", Some("u1"))], "ns", &lanes).is_empty());
    let bad = [
        delete(20, "agentx-x7k2p", Some("u1")),
        delete(20, "decoy-x7k2p", Some("u1")),
        delete(20, "agent-x7k2p", None),
        delete(-5, "agent-x7k2p", Some("u1")),
        Write { namespace: "kube-system".into(), ..delete(20, "agent-x7k2p", Some("u1")) },
    ];
    let found = pod_deletes(&bad, "ns", &lanes);
    assert_eq!(found.len(), 5, "{found:#?}");
    for (line, says) in
        found.iter().zip(["not a pod", "not a pod", "without the UID", "before its upgrade", "not a pod"])
    {
        assert!(line.contains(says), "{line}");
    }
}

#[test]
fn a_strategy_left_changed_is_a_violation_whatever_the_end() {
    for class in [Class::Healthy, Class::Regressing, Class::Deleted] {
        let base = match class {
            Class::Healthy => lane(class),
            Class::Regressing => {
                Lane { phase: Some(Phase::RolledBack), image: "img:1".into(), ..lane(class) }
            }
            Class::Deleted => Lane { phase: None, image: "img:1".into(), ..lane(class) },
        };
        assert!(ends(std::slice::from_ref(&base)).is_empty(), "{class:?}");
        let left = Lane { strategy: serde_json::json!({"type": "OnDelete"}), ..base };
        let found = ends(&[left]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("updateStrategy"), "{found:?}");
    }
}

#[test]
fn a_second_delivery_is_excused_only_by_a_fault_between_the_two() {
    let got = [("a".to_string(), t(0)), ("b".to_string(), t(1)), ("a".to_string(), t(10))];
    assert_eq!(deliveries(&got, &[]).len(), 1);
    assert!(deliveries(&got, &[(t(4), t(6))]).is_empty());
    assert_eq!(deliveries(&got, &[(t(11), t(12))]).len(), 1, "a fault after both excuses nothing");
}
