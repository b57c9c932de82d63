//! Transition tests: a stage whose DaemonSet cannot roll out within its progressDeadline.

use super::super::test_world::*;

/// The connector DaemonSet on `nodes` nodes, a canary of 2 of them, then 25 %, then the rest,
/// each stage with the default progressDeadline of 10 minutes.
fn world(nodes: usize) -> World {
    let mut w = World::new(canary_spec(Portion::Count(2), Some(Portion::Percent("25%".into()))));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", nodes));
    w
}

/// 200 nodes: the last stage hands 150 to the DaemonSet's own rolling update, one at a time,
/// which takes more than 12 minutes at the very least: refused before anything changes.
#[test]
fn a_stage_that_cannot_replace_its_pods_within_its_deadline_is_refused_before_any_change() {
    let mut w = world(200);
    w.run_until(Duration::minutes(30), |w| {
        w.obs.status.conditions.iter().any(|c| c.type_ == ct::BLOCKED && c.status == "True")
    });
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(
        (blocked.status.as_str(), blocked.reason.as_str()),
        ("True", reason::INVALID_SPEC),
        "{}",
        blocked.message
    );
    assert!(
        blocked.message.contains(
            "stage fleet replaces 150 pods of DaemonSet kube-system/connector, at most 1 at a time"
        ),
        "{}",
        blocked.message
    );
    assert!(blocked.message.contains("progressDeadline of 12m 30s or more"), "{}", blocked.message);
    assert!(w.image_sets().is_empty(), "{:?}", w.effects);
}

/// With deadlines that leave the time, the same upgrade starts; so does a small DaemonSet with
/// the default ones.
#[test]
fn a_stage_given_the_time_starts() {
    let mut w = world(200);
    w.obs.spec.stages[2].progress_deadline = Duration_("30m");
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    let mut w = world(6);
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
}

/// A canary among the nodes a nodeSelector selects is sized once those are read, not against
/// every node meanwhile.
#[test]
fn a_canary_whose_node_selector_is_not_read_yet_is_not_sized_against_every_node() {
    let mut w = world(400);
    w.obs.spec.stages[1].components[0].canary = Some(Canary {
        nodes: Some(Portion::Percent("50%".into())),
        node_selector: Some([("zone".to_string(), "b".to_string())].into()),
        replicas: None,
    });
    w.obs.spec.stages[2].progress_deadline = Duration_("1h");
    w.step();
    let blocked = w.condition(ct::BLOCKED);
    assert!(!blocked.message.contains("replaces"), "{}", blocked.message);
}

/// A DaemonSet already on the new image changes no pod, however many it has.
#[test]
fn a_daemonset_already_on_the_new_image_needs_no_time() {
    let mut w = world(400);
    let t = w.obs.targets.get_mut(&key("connector")).unwrap().as_mut().unwrap();
    t.containers[0].1 = "connector:2.0".into();
    w.step();
    let blocked = w.condition(ct::BLOCKED);
    assert!(!blocked.message.contains("replaces"), "{}", blocked.message);
}

/// Two DaemonSets upgraded whole in one stage roll side by side, each by its own controller:
/// the stage needs the longer of the two, not their sum.
#[test]
fn daemonsets_upgraded_whole_side_by_side_need_the_longer_of_their_times() {
    let mut s = spec();
    s.stages = vec![stage(
        "fleet",
        vec![component("connector", "connector:2.0"), component("connector-canary", "connector:2.0")],
    )];
    let mut w = World::new(s);
    for name in ["connector", "connector-canary"] {
        *w.obs.targets.get_mut(&key(name)).unwrap() = Some(daemonset_on("connector:1.0", 100));
    }
    w.step();
    let blocked = w.condition(ct::BLOCKED);
    assert!(!blocked.message.contains("replaces"), "{}", blocked.message);
}
