//! Unit tests of `finalizer.rs`.

use super::*;

fn upgrade(finalizers: Option<Vec<&str>>) -> MaintenanceUpgrade {
    let mut mu: MaintenanceUpgrade = serde_yaml::from_str(
        "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: ops, resourceVersion: '7'}\n\
         spec: {stages: [{name: canary, components: [{kind: DaemonSet, name: c, image: 'c:2'}], soak: 1h}]}",
    )
    .unwrap();
    mu.metadata.finalizers = finalizers.map(|f| f.into_iter().map(String::from).collect());
    mu
}

#[test]
fn the_finalizer_is_added_beside_others_and_removed_alone() {
    let none = upgrade(None);
    assert!(wanted(&none));
    assert_eq!(add_patch(&none)[0]["value"], "7", "created only if still absent");
    let other = upgrade(Some(vec!["example.com/keep"]));
    let add = add_patch(&other);
    assert_eq!(add[0], json!({"op": "test", "path": "/metadata/finalizers", "value": ["example.com/keep"]}));
    assert_eq!(add[1]["path"], "/metadata/finalizers/-", "appended, the other kept");
    // Added twice by a stale copy (before this fix): every copy goes, the other stays.
    let doubled = upgrade(Some(vec![FINALIZER, "example.com/keep", FINALIZER]));
    assert!(present(&doubled) && !wanted(&doubled));
    let remove = remove_patch(&doubled).unwrap();
    assert_eq!(remove[0]["op"], "test");
    assert_eq!(
        remove[1],
        json!({"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]})
    );
    assert!(remove_patch(&other).is_none());
}

#[test]
fn an_ended_upgrade_that_let_go_of_its_targets_needs_none() {
    let mut mu = upgrade(None);
    let mut st =
        crate::crd::MaintenanceUpgradeStatus { phase: crate::crd::Phase::Succeeded, ..Default::default() };
    mu.status = Some(st.clone());
    assert!(wanted(&mu), "ended, not released yet");
    st.released_at = Some(chrono::Utc::now());
    mu.status = Some(st);
    assert!(!wanted(&mu));
}
