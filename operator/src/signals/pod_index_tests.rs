//! Unit tests of `pod_index.rs`.

use super::*;
use serde_json::json;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn pod(uid: &str, created: &str, phase: &str, waiting: Option<&str>) -> Pod {
    let mut status = json!({"phase": phase});
    if let Some(w) = waiting {
        status["containerStatuses"] = json!([{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": w}}}]);
    }
    serde_json::from_value(json!({
            "metadata": {"uid": uid, "name": uid, "namespace": "jobs", "labels": {"app": "sync"}, "creationTimestamp": created},
            "status": status
        }))
        .unwrap()
}

/// A failure Event about pod `uid`, in its namespace (`jobs`), as the scheduler and kubelet
/// write them.
fn event(uid: &str, reason: &str, message: &str) -> Event {
    event_in("jobs", uid, reason, message)
}

/// The same Event written in namespace `ns`.
fn event_in(ns: &str, uid: &str, reason: &str, message: &str) -> Event {
    serde_json::from_value(
        json!({"metadata": {"name": format!("{uid}.{reason}"), "namespace": ns}, "reason": reason, "message": message,
            "involvedObject": {"kind": "Pod", "uid": uid}}),
    )
    .unwrap()
}

/// An index after both watches listed `pods` and `events`.
fn listed(pods: &[Pod], events: &[Event], now: DateTime<Utc>) -> PodIndex {
    let mut ix = PodIndex::default();
    ix.pod_event(&watcher::Event::Init, now);
    for p in pods {
        ix.pod_event(&watcher::Event::InitApply(p.clone()), now);
    }
    ix.pod_event(&watcher::Event::InitDone, now);
    for e in events {
        ix.warning_event(&watcher::Event::InitApply(e.clone()), now);
    }
    ix.warning_event(&watcher::Event::InitDone, now);
    ix
}

fn all() -> Selector {
    Selector::default()
}

/// The span 10:05–10:06 with a 5 minute limit: the cohort created 10:00–10:01, every pod.
fn judged(ix: &PodIndex) -> Counts {
    ix.counts(
        &[],
        &all(),
        &NodeScope::All,
        t("2026-11-24T10:05:00Z"),
        t("2026-11-24T10:06:00Z"),
        Duration::minutes(5),
    )
}

#[test]
fn counts_each_failed_pod_of_the_cohort_once() {
    let pods = vec![
        pod("ok", "2026-11-24T10:00:10Z", "Running", None),
        pod("stuck", "2026-11-24T10:00:20Z", "Pending", None),
        pod("unsched", "2026-11-24T10:00:30Z", "Running", None),
        pod("config", "2026-11-24T10:00:40Z", "Running", Some("CreateContainerConfigError")),
        pod("mount", "2026-11-24T10:00:50Z", "Running", None),
        pod("too-new", "2026-11-24T10:04:00Z", "Pending", None),
        pod("too-old", "2026-11-24T09:00:00Z", "Pending", None),
    ];
    let events = vec![
        event("unsched", "FailedScheduling", "0/3 nodes are available"),
        event("unsched", "FailedScheduling", "0/3 nodes are available"),
        event("mount", "Failed", "Error: CreateContainerConfigError"),
        event("ok", "Pulled", "pulled"),
    ];
    let ix = listed(&pods, &events, t("2026-11-24T10:06:00Z"));
    assert!(ix.ready());
    let c = judged(&ix);
    assert_eq!(c, Counts { attempts: 5, errors: 4 });
}

/// Anyone who may create Events in her namespace may write one about any pod, naming its UID
/// (an Event with an eventTime may name an object of another namespace). A pod's failures are
/// reported in its own namespace: one written elsewhere is not its failure, so a tenant cannot
/// raise another namespace's error rate (and roll back, or hold, another team's upgrade).
#[test]
fn a_failure_event_written_in_another_namespace_is_not_the_pods_failure() {
    let pods = vec![pod("victim", "2026-11-24T10:00:10Z", "Running", None)];
    let forged = vec![event_in("team-a", "victim", "FailedScheduling", "0/3 nodes are available")];
    let mut ix = listed(&pods, &forged, t("2026-11-24T10:06:00Z"));
    assert_eq!(judged(&ix), Counts { attempts: 1, errors: 0 });
    // Its own failure, written after the forged one, still counts.
    let own = event("victim", "FailedScheduling", "0/3 nodes are available");
    ix.warning_event(&watcher::Event::Apply(own), t("2026-11-24T10:06:00Z"));
    assert_eq!(judged(&ix), Counts { attempts: 1, errors: 1 });
}

#[test]
fn a_pod_created_and_deleted_between_two_reads_still_counts() {
    let now = t("2026-11-24T10:00:00Z");
    let mut ix = listed(&[], &[], now);
    let failing = pod("gone-failing", "2026-11-24T10:00:10Z", "Pending", None);
    let fine = pod("gone-fine", "2026-11-24T10:00:20Z", "Succeeded", None);
    let early = pod("gone-early", "2026-11-24T10:00:30Z", "Pending", None);
    for p in [&failing, &fine, &early] {
        ix.pod_event(&watcher::Event::Apply(p.clone()), now);
    }
    ix.pod_event(&watcher::Event::Delete(failing), t("2026-11-24T10:06:00Z"));
    ix.pod_event(&watcher::Event::Delete(fine), t("2026-11-24T10:01:00Z"));
    // Deleted while Pending before its limit: it was not given the time to start.
    ix.pod_event(&watcher::Event::Delete(early), t("2026-11-24T10:01:00Z"));
    let c = judged(&ix);
    assert_eq!(c, Counts { attempts: 3, errors: 1 });
    // Forgotten once they are long gone.
    ix.prune(t("2026-11-24T14:00:00Z"));
    assert!(ix.is_empty());
}

#[test]
fn a_pod_missing_from_a_relist_was_deleted_while_the_watch_was_down() {
    let now = t("2026-11-24T10:00:00Z");
    let kept = pod("kept", "2026-11-24T10:00:10Z", "Running", None);
    let mut ix = listed(&[kept.clone(), pod("lost", "2026-11-24T10:00:20Z", "Pending", None)], &[], now);
    ix.pod_event(&watcher::Event::Init, t("2026-11-24T10:02:00Z"));
    ix.pod_event(&watcher::Event::InitApply(kept), t("2026-11-24T10:02:00Z"));
    ix.pod_event(&watcher::Event::InitDone, t("2026-11-24T10:02:00Z"));
    // "lost" was last seen Pending and is gone 100 s after its creation: not judged failed.
    let c = judged(&ix);
    assert_eq!(c, Counts { attempts: 2, errors: 0 });
    ix.prune(t("2026-11-24T13:03:00Z"));
    assert_eq!(ix.len(), 1, "the live pod stays");
}

#[test]
fn namespaces_and_the_label_selector_narrow_the_cohort() {
    let mut other = pod("other-ns", "2026-11-24T10:00:10Z", "Pending", None);
    other.metadata.namespace = Some("web".into());
    let mut unlabelled = pod("unlabelled", "2026-11-24T10:00:20Z", "Pending", None);
    unlabelled.metadata.labels = None;
    let ix = listed(
        &[other, unlabelled, pod("mine", "2026-11-24T10:00:30Z", "Pending", None)],
        &[],
        t("2026-11-24T10:06:00Z"),
    );
    let sel = crate::signals::selector::parse("app=sync").unwrap();
    let (from, to, limit) = (t("2026-11-24T10:05:00Z"), t("2026-11-24T10:06:00Z"), Duration::minutes(5));
    assert_eq!(
        ix.counts(&["jobs".into()], &sel, &NodeScope::All, from, to, limit),
        Counts { attempts: 1, errors: 1 }
    );
    assert_eq!(ix.counts(&[], &all(), &NodeScope::All, from, to, limit), Counts { attempts: 3, errors: 3 });
}

#[test]
fn running_digests_come_from_the_targets_own_pods_that_run_its_template() {
    // Pods alike in labels: the target's (controller UID "ds"), a sibling workload's, and one
    // of the target's still on an older image mid-rollout.
    let running = |uid: &str, owner: &str, image: &str, digest: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"uid": uid, "name": uid, "namespace": "jobs", "creationTimestamp": "2026-11-24T10:00:10Z",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner, "uid": owner, "controller": true}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": image}, {"name": "starting", "image": "j"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "c", "image": image, "imageID": digest, "ready": true, "restartCount": 0},
                {"name": "starting", "image": "j", "imageID": "", "ready": false, "restartCount": 0}]}
        }))
        .unwrap()
    };
    let now = t("2026-11-24T10:06:00Z");
    let gone = running("a-gone", "ds", "i", "sha256:gone");
    let mut ix = PodIndex::default();
    let ds = PodOwner::Uid("ds".into());
    let template = [("c".to_string(), "i".to_string())];
    assert_eq!(ix.running_digests("jobs", &ds, &template), None, "not before the watch has listed");
    ix = listed(
        &[
            gone.clone(),
            running("b-sibling", "sibling", "i", "sha256:sibling"),
            running("c-older", "ds", "h", "sha256:older"),
            running("d-web", "ds", "i", "sha256:new"),
        ],
        &[],
        now,
    );
    ix.pod_event(&watcher::Event::Delete(gone), now);
    assert_eq!(ix.running_digests("jobs", &ds, &template), Some(vec![("c".into(), "sha256:new".into())]));
    assert_eq!(ix.running_digests("other", &ds, &template), Some(vec![]));
}

#[test]
fn not_ready_until_both_watches_have_listed() {
    let mut ix = PodIndex::default();
    let now = t("2026-11-24T10:00:00Z");
    ix.pod_event(&watcher::Event::Init, now);
    ix.pod_event(&watcher::Event::InitDone, now);
    assert!(!ix.ready());
    ix.warning_event(&watcher::Event::InitDone, now);
    assert!(ix.ready());
}

#[test]
fn watched_since_the_later_of_the_two_lists() {
    let mut ix = PodIndex::default();
    let (t0, t1, t2) = (t("2026-11-24T10:00:00Z"), t("2026-11-24T10:00:05Z"), t("2026-11-24T10:30:00Z"));
    for (at, e) in [(t0, watcher::Event::Init), (t0, watcher::Event::InitDone)] {
        ix.pod_event(&e, at);
    }
    ix.warning_event(&watcher::Event::Init, t1);
    assert_eq!(ix.watched_since(), None, "not before both have listed");
    ix.warning_event(&watcher::Event::InitDone, t1);
    assert_eq!(ix.watched_since(), Some(t1));
    // The pod watch breaks and lists again: what happened before that list may be lost.
    ix.pods_lost();
    assert_eq!(ix.watched_since(), None);
    ix.pod_event(&watcher::Event::Init, t2);
    ix.pod_event(&watcher::Event::InitDone, t2);
    assert_eq!(ix.watched_since(), Some(t2));
}

#[test]
fn a_daemonsets_pods_are_placed_on_their_nodes_even_before_they_are_bound() {
    let now = t("2026-11-24T03:00:00Z");
    let daemon = |uid: &str, node: Option<&str>, ready: &str| -> Pod {
        let mut p = json!({
            "metadata": {"uid": uid, "name": uid, "namespace": "kube-system", "creationTimestamp": "2026-11-24T02:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "connector", "uid": "ds-1", "controller": true}]},
            "spec": {"containers": [{"name": "connector", "image": "connector:2.0"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-b"]}]}]}}}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]}
        });
        if let Some(node) = node {
            p["spec"]["nodeName"] = json!(node);
        }
        serde_json::from_value(p).unwrap()
    };
    let other = pod("x", "2026-11-24T02:00:00Z", "Running", None);
    let ix = listed(&[daemon("a", Some("node-a"), "True"), daemon("b", None, "False"), other], &[], now);
    let pods = ix.owned_pods("kube-system", &PodOwner::Uid("ds-1".into())).unwrap();
    let placed: Vec<(&str, &str, bool)> =
        pods.iter().map(|p| (p.name.as_str(), p.node.as_str(), p.ready)).collect();
    assert_eq!(placed, [("a", "node-a", true), ("b", "node-b", false)]);
    assert_eq!(pods[0].image("connector"), Some("connector:2.0"));
    assert_eq!(ix.owned_pods("kube-system", &PodOwner::Uid("another".into())).unwrap(), vec![]);
}

/// A pod of a thousand containers (a tenant's, under a workload of hers) is kept with its
/// first `MAX_CONTAINERS` only.
#[test]
fn a_pod_of_a_thousand_containers_keeps_a_bounded_few() {
    let containers: Vec<_> =
        (0..1000).map(|i| json!({"name": format!("c{i}"), "image": "x".repeat(900)})).collect();
    let statuses: Vec<_> = (0..1000)
        .map(|i| json!({"name": format!("c{i}"), "image": "x", "imageID": "y".repeat(900), "ready": true, "restartCount": 0}))
        .collect();
    let big: Pod = serde_json::from_value(json!({
        "metadata": {"uid": "big", "name": "big", "namespace": "jobs", "creationTimestamp": "2026-11-24T02:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "ds-1", "controller": true}]},
        "spec": {"containers": containers, "nodeName": "node-a"},
        "status": {"phase": "Running", "containerStatuses": statuses}
    }))
    .unwrap();
    let ix = listed(&[big], &[], t("2026-11-24T03:00:00Z"));
    let pods = ix.owned_pods("jobs", &PodOwner::Uid("ds-1".into())).unwrap();
    assert_eq!(pods[0].images.len(), crate::target::MAX_CONTAINERS);
    assert_eq!(ix.pods["big"].image_ids.len(), crate::target::MAX_CONTAINERS);
}

#[test]
fn a_deployments_pods_are_known_by_the_replicasets_it_names() {
    let now = t("2026-11-24T03:00:00Z");
    let replica = |uid: &str, rs: &str, hash: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"uid": uid, "name": uid, "namespace": "team-a", "creationTimestamp": "2026-11-24T02:00:00Z",
                // A template that sets the other controllers' label too: not the revision.
                "labels": {"pod-template-hash": hash, "controller-revision-hash": "set-by-hand"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "rs", "controller": true}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "app:2"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap()
    };
    let pods = [
        replica("new", "web-7d9f", "7d9f"),
        replica("old", "web-5c4b", "5c4b"),
        // Another Deployment whose name starts alike, and a ReplicaSet of no Deployment's naming.
        replica("other", "web-api-6a1e", "6a1e"),
        replica("bare", "web-by-hand", "7d9f"),
    ];
    let ix = listed(&pods, &[], now);
    let names = |d: &str| -> Vec<String> {
        let owner = PodOwner::Deployment(d.into());
        ix.owned_pods("team-a", &owner).unwrap().into_iter().map(|p| p.name).collect()
    };
    assert_eq!(names("web"), ["new", "old"]);
    assert_eq!(names("web-api"), ["other"]);
    let revisions: Vec<String> = ix
        .owned_pods("team-a", &PodOwner::Deployment("web".into()))
        .unwrap()
        .into_iter()
        .map(|p| p.revision)
        .collect();
    assert_eq!(revisions, ["7d9f", "5c4b"], "the ReplicaSet's pod-template-hash");
    assert!(ix.owned_pods("team-b", &PodOwner::Deployment("web".into())).unwrap().is_empty());
}

#[test]
fn a_canary_counts_the_pods_bound_to_its_nodes_and_its_control_every_other() {
    let on = |uid: &str, node: &str, phase: &str| {
        let mut p = pod(uid, "2026-11-24T10:00:10Z", phase, None);
        p.spec = Some(serde_json::from_value(json!({"nodeName": node, "containers": []})).unwrap());
        p
    };
    let ix = listed(
        &[
            on("canary-failed", "node-1", "Pending"),
            on("canary-ok", "node-2", "Running"),
            on("rest-ok", "node-3", "Running"),
            pod("unbound", "2026-11-24T10:00:20Z", "Pending", None),
        ],
        &[],
        t("2026-11-24T10:06:00Z"),
    );
    let (from, to, limit) = (t("2026-11-24T10:05:00Z"), t("2026-11-24T10:06:00Z"), Duration::minutes(5));
    let canary: std::collections::BTreeSet<String> = ["node-1".to_string(), "node-2".to_string()].into();
    let count = |nodes: NodeScope| ix.counts(&[], &all(), &nodes, from, to, limit);
    assert_eq!(count(NodeScope::On(canary.clone())), Counts { attempts: 2, errors: 1 });
    // The control counts as the cluster-wide signal does, the canary's pods left out: a pod
    // not bound yet (it may have failed to schedule) is nobody's canary.
    assert_eq!(count(NodeScope::Off(canary)), Counts { attempts: 2, errors: 1 });
    assert_eq!(count(NodeScope::All), Counts { attempts: 4, errors: 2 });
}

#[test]
fn a_pod_with_labels_made_to_fill_memory_keeps_none_of_them() {
    // The API server caps an object's size, not its labels: a pod can carry about a megabyte.
    let mut big = pod("big", "2026-11-24T10:00:10Z", "Running", None);
    let labels = big.metadata.labels.get_or_insert_with(Default::default);
    for i in 0..400 {
        labels.insert(format!("example.com/l{i}"), "x".repeat(63));
    }
    // Nor thousands of tiny ones, which cost far more to keep than their bytes (each a map
    // entry of two strings).
    let mut many = pod("many", "2026-11-24T10:00:15Z", "Running", None);
    let labels = many.metadata.labels.get_or_insert_with(Default::default);
    for i in 0..2000 {
        labels.insert(format!("{i}"), String::new());
    }
    let small = pod("small", "2026-11-24T10:00:20Z", "Running", None);
    let ix = listed(&[big, many, small], &[], t("2026-11-24T10:06:00Z"));
    let mut kept: Vec<Option<usize>> = ix.pods.values().map(|p| p.labels.as_ref().map(|l| l.len())).collect();
    kept.sort();
    assert_eq!(kept, [None, None, Some(1)]);
    // So only a signal that selects every pod counts it: not one with a selector, not even one
    // it would pass with no labels (`!=`, `notin`).
    let counted = |s: &Selector| {
        let (from, to) = (t("2026-11-24T10:05:00Z"), t("2026-11-24T10:06:00Z"));
        ix.counts(&[], s, &NodeScope::All, from, to, Duration::minutes(5)).attempts
    };
    let by = |text: &str| counted(&crate::signals::selector::parse(text).unwrap());
    assert_eq!([by("app=sync"), by("team notin (a)"), by("app!=web"), counted(&all())], [1, 1, 1, 3]);
}

#[test]
fn pods_deleted_to_fill_memory_cost_their_own_namespace_its_oldest_not_another_its() {
    let now = t("2026-11-24T10:00:00Z");
    let in_ns = |uid: &str, ns: &str, labels: usize| {
        let mut p = pod(uid, "2026-11-24T10:00:10Z", "Running", None);
        p.metadata.namespace = Some(ns.into());
        let l = p.metadata.labels.get_or_insert_with(Default::default);
        for i in 0..labels {
            l.insert(format!("example.com/l{i}"), "x".repeat(63));
        }
        p
    };
    let mut ix = listed(&[], &[], now);
    let theirs = in_ns("theirs", "other", 1);
    ix.pod_event(&watcher::Event::Apply(theirs.clone()), now);
    ix.pod_event(&watcher::Event::Delete(theirs), now);
    // Hers, each with nearly the most labels a pod keeps, created and deleted in a loop.
    let mut last = String::new();
    for i in 0..2_000 {
        last = format!("hers-{i}");
        let p = in_ns(&last, "jobs", 100);
        ix.pod_event(&watcher::Event::Apply(p.clone()), now);
        ix.pod_event(&watcher::Event::Delete(p), now);
    }
    let kept: usize = ix.pods.values().filter(|p| p.namespace == "jobs").map(PodFacts::bytes).sum();
    assert!(kept <= MAX_DELETED_BYTES_PER_NAMESPACE, "{kept} bytes kept");
    assert!(ix.pods.len() < 1_000, "{} pods kept", ix.pods.len());
    assert!(ix.pods.contains_key(&last), "the latest deleted are kept");
    assert!(ix.pods.contains_key("theirs"), "another namespace's deleted pods are not hers to push out");
    assert!(!ix.pods.contains_key("hers-0"), "her longest-deleted go first");
    // A deleted pod keeps no more than a deleted pod needs.
    assert!(ix.pods.values().all(|p| p.place.is_none() && p.image_ids.is_empty()));
}

#[test]
fn pods_deleted_in_many_namespaces_are_kept_within_a_total_the_busiest_giving_first() {
    let now = t("2026-11-24T10:00:00Z");
    let mut ix = listed(&[], &[], now);
    for n in 0..12 {
        for i in 0..700 {
            let mut p = pod(&format!("ns{n}-{i}"), "2026-11-24T10:00:10Z", "Running", None);
            p.metadata.namespace = Some(format!("ns{n}"));
            let l = p.metadata.labels.get_or_insert_with(Default::default);
            for k in 0..100 {
                l.insert(format!("example.com/l{k}"), "x".repeat(63));
            }
            ix.pod_event(&watcher::Event::Apply(p.clone()), now);
            ix.pod_event(&watcher::Event::Delete(p), now);
        }
    }
    let kept: usize = ix.pods.values().map(PodFacts::bytes).sum();
    assert!(kept <= MAX_DELETED_BYTES, "{kept} bytes kept");
    assert!(ix.pods.contains_key("ns11-699") && ix.pods.contains_key("ns0-699"), "each keeps its latest");
}

/// Anyone who may create Events in her namespace may write failure Events naming any UID she
/// likes: each would be kept for hours. A UID longer than a Kubernetes UID is none (a megabyte
/// one is not kept), and failures of pods the index has never seen are kept within a share per
/// namespace and a total, so that her flood costs the index a bounded few megabytes and other
/// namespaces' failures still count.
#[test]
fn failure_events_made_to_fill_memory_are_kept_within_bounds() {
    let now = t("2026-11-24T10:06:00Z");
    let mut ix = listed(&[pod("victim", "2026-11-24T10:00:10Z", "Running", None)], &[], now);
    let huge = "u".repeat(1 << 20);
    ix.warning_event(&watcher::Event::Apply(event_in("team-a", &huge, "FailedScheduling", "x")), now);
    assert!(ix.failed.is_empty(), "a UID no pod can have");
    for i in 0..MAX_UNSEEN_FAILURES_PER_NAMESPACE + 10 {
        let forged = event_in("team-a", &format!("{i:036}"), "FailedScheduling", "x");
        ix.warning_event(&watcher::Event::Apply(forged), now);
    }
    assert_eq!(ix.failed.len(), MAX_UNSEEN_FAILURES_PER_NAMESPACE, "her namespace's share");
    // Another namespace's own failures still count, the pod's seen or not yet.
    ix.warning_event(&watcher::Event::Apply(event("victim", "FailedScheduling", "0/3 nodes")), now);
    ix.warning_event(&watcher::Event::Apply(event("not-seen-yet", "FailedScheduling", "0/3 nodes")), now);
    assert_eq!(judged(&ix), Counts { attempts: 1, errors: 1 });
    assert!(ix.failed.contains_key("not-seen-yet"));
    // Many namespaces' floods stop at the total; a prune counts them afresh.
    for ns in 0..MAX_UNSEEN_FAILURES / MAX_UNSEEN_FAILURES_PER_NAMESPACE + 2 {
        for i in 0..MAX_UNSEEN_FAILURES_PER_NAMESPACE {
            let forged = event_in(&format!("ns-{ns}"), &format!("{ns:06}-{i:029}"), "FailedScheduling", "x");
            ix.warning_event(&watcher::Event::Apply(forged), now);
        }
    }
    assert!(ix.failed.len() <= MAX_UNSEEN_FAILURES + 2, "{}", ix.failed.len());
    ix.prune(now);
    assert!(ix.failed.len() <= MAX_UNSEEN_FAILURES + 2, "{}", ix.failed.len());
    assert!(ix.failed.contains_key("victim"));
}

/// The total of failures of pods not seen is shared by every namespace: when floods of others
/// have filled it, a namespace holding fewer takes a place from the one holding the most, so
/// that Events in namespaces of her own cannot make another namespace's real failure (its Event
/// a moment ahead of its pod) go uncounted.
#[test]
fn floods_in_other_namespaces_do_not_crowd_out_a_real_failure() {
    let now = t("2026-11-24T10:06:00Z");
    let mut ix = listed(&[], &[], now);
    for ns in 0..MAX_UNSEEN_FAILURES / MAX_UNSEEN_FAILURES_PER_NAMESPACE {
        for i in 0..MAX_UNSEEN_FAILURES_PER_NAMESPACE {
            let forged = event_in(&format!("ns-{ns}"), &format!("{ns:06}-{i:029}"), "FailedScheduling", "x");
            ix.warning_event(&watcher::Event::Apply(forged), now);
        }
    }
    assert_eq!(ix.failed.len(), MAX_UNSEEN_FAILURES, "the total holds");
    ix.warning_event(&watcher::Event::Apply(event("not-seen-yet", "FailedScheduling", "0/3 nodes")), now);
    ix.pod_event(&watcher::Event::Apply(pod("not-seen-yet", "2026-11-24T10:00:10Z", "Running", None)), now);
    assert_eq!(judged(&ix), Counts { attempts: 1, errors: 1 }, "its failure counts");
    assert_eq!(ix.failed.len(), MAX_UNSEEN_FAILURES, "a flooded namespace's oldest gave its place");
    let oldest = |ns: usize| format!("{ns:06}-{:029}", 0);
    assert_eq!((0..10).filter(|ns| !ix.failed.contains_key(&oldest(*ns))).count(), 1);
    // The flooding namespaces cannot take places back from one another for ever: one that holds
    // as many as the most holds nothing more.
    for ns in 0..10 {
        let more = event_in(&format!("ns-{ns}"), &format!("{ns:06}-{:029}", 99_999), "FailedScheduling", "x");
        ix.warning_event(&watcher::Event::Apply(more), now);
    }
    assert_eq!(ix.failed.len(), MAX_UNSEEN_FAILURES);
    assert!(ix.failed.contains_key("not-seen-yet"));
    ix.prune(now);
    assert_eq!(ix.failed.len(), MAX_UNSEEN_FAILURES, "a prune counts them afresh, in the order seen");
}
