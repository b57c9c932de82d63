//! Transition tests: a canary inside one DaemonSet, widened, handed over, reverted; and what
//! every kind's canary shares (settings changed by someone else), on a DaemonSet.

use crate::decide::test_world::*;
use chrono::SubsecRound;

/// The connector DaemonSet on six nodes (there long before the upgrade), with a canary on
/// `first` of them (then `then`).
fn world(first: Portion, then: Option<Portion>) -> World {
    let mut w = World::new(canary_spec(first, then));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    for i in 1..=6 {
        let created = Some(t("2026-11-01T00:00:00Z"));
        w.obs.node_facts.insert(format!("node-{i}"), NodeFacts { created, zone: None });
    }
    w
}

/// Node `name` joins now, its pod made from the DaemonSet's current (new) template.
fn joins(w: &mut World, name: &str) {
    w.obs.node_facts.insert(name.into(), NodeFacts { created: Some(w.obs.now), zone: None });
    ds_mut(w).pods.as_mut().unwrap().push(pod(name, 0, "connector:2.0", true));
}

fn ds(w: &World) -> &TargetState {
    w.obs.targets[&key("connector")].as_ref().unwrap()
}

fn ds_mut(w: &mut World) -> &mut TargetState {
    w.obs.targets.get_mut(&key("connector")).unwrap().as_mut().unwrap()
}

fn pods(w: &World) -> &[PodPlace] {
    ds(w).pods.as_deref().unwrap()
}

/// The nodes whose pod runs `image`.
fn nodes_running(w: &World, image: &str) -> Vec<String> {
    pods(w).iter().filter(|p| p.images[0].1 == image).map(|p| p.node.clone()).collect()
}

/// `node`'s pod evicted and made again from the DaemonSet's current (new) template; one look.
fn made_again(w: &mut World, node: &str) {
    let pods = ds_mut(w).pods.as_mut().unwrap();
    pods.retain(|p| p.node != node);
    pods.push(pod(node, 1, "connector:2.0", true));
    w.obs.now += Duration::minutes(1);
    w.step();
}

/// Step until `done`, checking after every step that no more pods are down at once than the
/// DaemonSet's maxUnavailable (1) allows, counting those the operator deleted.
fn run_paced(w: &mut World, limit: Duration, done: impl Fn(&World) -> bool) {
    let end = w.obs.now + limit;
    while !done(w) {
        assert!(w.obs.now < end, "not reached; phase {:?}: {}", w.phase(), w.obs.status.message);
        let d = w.step();
        let down = pods(w).iter().filter(|p| !p.ready).count();
        assert!(down <= 1, "{down} pods down at once: {:?}", pods(w));
        w.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
    }
}

#[test]
fn a_canary_on_two_of_six_nodes_widens_then_hands_the_rest_to_the_daemonset() {
    let mut w = world(Portion::Count(2), Some(Portion::Percent("50%".into())));
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    // One write sets the image and OnDelete; the strategy was recorded before it.
    assert!(
        matches!(&w.effects[1], Effect::SetImage { strategy: Some((s, original)), .. } if s == ON_DELETE && original == ROLLING)
    );
    assert_eq!(ds(&w).original_strategy.as_deref(), Some(ROLLING));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2"]);
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!((canary.wanted, canary.total), (2, 6));
    assert_eq!(canary.nodes, ["node-1", "node-2"]);
    assert!(
        w.obs.status.message.contains(
            "stage wider starts (widening the canary of DaemonSet kube-system/connector to 50% of its nodes)"
        ),
        "{}",
        w.obs.status.message
    );
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    assert_eq!(
        nodes_running(&w, "connector:2.0"),
        ["node-1", "node-2", "node-3"],
        "50% of 6, the same canary widened"
    );
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    run_paced(&mut w, Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    // The last stage handed the rest to the DaemonSet's own strategy, restored exactly.
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING));
    assert_eq!(nodes_running(&w, "connector:2.0").len(), 6);
    assert_eq!(w.deleted(), ["connector-node-1-0", "connector-node-2-0", "connector-node-3-0"]);
    assert!(ds(&w).original_strategy.is_none(), "released with the other marks");
}

#[test]
fn a_canary_reverted_replaces_only_its_own_pods_then_restores_the_strategy() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.spec.rollback.requested = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0");
    assert_eq!(nodes_running(&w, "connector:1.0").len(), 6);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "restored exactly");
    // Only the canary's pods were made again: the other four are the ones it started with.
    let untouched: Vec<&str> =
        pods(&w).iter().filter(|p| p.name.ends_with("-0")).map(|p| p.node.as_str()).collect();
    assert_eq!(untouched, ["node-3", "node-4", "node-5", "node-6"]);
    assert_eq!(
        w.deleted(),
        ["connector-node-1-0", "connector-node-2-0", "connector-node-1-1", "connector-node-2-1"]
    );
    // Template first, then the pods, then the strategy.
    let order: Vec<&str> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetImage { image, .. } if image == "connector:1.0" => Some("image"),
            Effect::DeletePods { .. } => Some("pods"),
            Effect::SetStrategy { .. } => Some("strategy"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["pods", "pods", "image", "pods", "pods", "strategy"]);
}

#[test]
fn a_canary_whose_pods_never_become_ready_is_reverted_at_its_deadline() {
    let mut w = world(Portion::Count(2), None);
    w.failing_image = Some("connector:2.0".into());
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
    assert_eq!(nodes_running(&w, "connector:2.0"), Vec::<String>::new());
    // The first canary pod never became Ready, so no second node was taken.
    assert_eq!(w.deleted()[0], "connector-node-1-0");
    assert!(!w.deleted().contains(&"connector-node-2-0".to_string()), "{:?}", w.deleted());
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING));
}

#[test]
fn a_canary_larger_than_the_daemonset_changes_nothing() {
    let mut w = world(Portion::Count(8), None);
    w.run_until(Duration::minutes(30), |w| {
        w.obs.status.conditions.iter().any(|c| c.type_ == ct::BLOCKED && c.status == "True")
    });
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(blocked.reason, reason::INVALID_SPEC);
    assert!(
        blocked.message.contains(
            "canary.nodes of DaemonSet kube-system/connector in stage canary is 8 but it runs on 6 nodes"
        ),
        "{}",
        blocked.message
    );
    assert!(w.effects.is_empty(), "not even claimed: {:?}", w.effects);
}

#[test]
fn a_pod_made_again_on_a_new_node_during_the_canary_counts_as_canary() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    // A node joins: the DaemonSet gives it a pod from its current, new, template.
    joins(&mut w, "node-7");
    for _ in 0..3 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2", "node-7"], "shown while it soaks");
    assert_eq!(canary.joined, ["node-7"]);
    // Its signals count the nodes it took: node-7 gets the pods that waited for a node, each
    // with its scheduling failure, which are not the new image's.
    let copies: Vec<&SignalStatus> =
        w.obs.status.analysis.iter().filter(|a| a.name.ends_with("@canary")).collect();
    assert!(!copies.is_empty());
    for copy in copies {
        assert_eq!(copy.nodes, ["node-1", "node-2"], "{}", copy.name);
    }
    assert_eq!(w.deleted().len(), 2, "nothing more replaced while it soaks");
    w.obs.spec.rollback.requested = true;
    w.step();
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(nodes_running(&w, "connector:2.0"), Vec::<String>::new(), "node-7's pod was reverted too");
}

#[test]
fn a_restart_mid_canary_takes_no_more_nodes_than_asked() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| !w.deleted().is_empty());
    // The status written before the pods were deleted is all a new leader finds.
    w.fail_over();
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2"]);
}

#[test]
fn a_target_named_again_must_widen_the_same_change_and_end_whole() {
    type Edit = fn(&mut MaintenanceUpgradeSpec);
    let cases: [(&str, Edit); 3] = [
        ("a canary in the last stage", |s| {
            s.stages[1].components[0].canary =
                Some(Canary { nodes: Some(Portion::Count(4)), node_selector: None, replicas: None })
        }),
        ("another image", |s| s.stages[1].components[0].image = "connector:3.0".into()),
        ("a canary in its only stage", |s| {
            s.stages.pop();
        }),
    ];
    for (what, edit) in cases {
        let mut s = canary_spec(Portion::Count(2), None);
        edit(&mut s);
        let mut w = world(Portion::Count(2), None);
        w.obs.spec = s;
        w.step();
        let blocked = w.condition(ct::BLOCKED);
        assert_eq!(blocked.reason, reason::INVALID_SPEC, "{what}");
        assert!(blocked.message.contains("DaemonSet kube-system/connector"), "{what}: {}", blocked.message);
        // Stages cannot be changed in place: the way to fix them is said.
        assert!(blocked.message.contains("delete this upgrade"), "{what}: {}", blocked.message);
        assert!(w.effects.is_empty(), "{what}: nothing changes");
    }
}

#[test]
fn a_canary_whose_pods_are_not_seen_waits_instead_of_passing() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| w.image("connector") == "connector:2.0");
    // A new leader whose pod watch is still listing.
    let seen = ds_mut(&mut w).pods.take();
    for _ in 0..20 {
        w.obs.now += Duration::seconds(5);
        w.step();
    }
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RollingOut, "{}", w.obs.status.message);
    assert!(w.obs.status.message.contains("waiting to see its pods"), "{}", w.obs.status.message);
    ds_mut(&mut w).pods = seen;
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2"]);
}

#[test]
fn two_daemonsets_with_canaries_in_one_stage_each_get_their_nodes() {
    let mut s = canary_spec(Portion::Count(2), None);
    for stage in s.stages.iter_mut() {
        let mut other = stage.components[0].clone();
        other.name = "agent".into();
        stage.components.push(other);
    }
    let mut w = world(Portion::Count(2), None);
    w.obs.spec = s;
    *w.obs.targets.get_mut(&key("connector-canary")).unwrap() = None;
    w.obs.targets.insert(key("agent"), Some(daemonset_on("connector:1.0", 4)));
    w.obs.targets.remove(&key("connector-canary"));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    for name in ["connector", "agent"] {
        let t = w.obs.targets[&key(name)].as_ref().unwrap();
        let new: Vec<&str> = t
            .pods
            .iter()
            .flatten()
            .filter(|p| p.images[0].1 == "connector:2.0")
            .map(|p| p.node.as_str())
            .collect();
        assert_eq!(new, ["node-1", "node-2"], "{name}");
    }
}

#[test]
fn a_daemonset_that_updates_on_delete_already_gets_no_canary() {
    let mut w = world(Portion::Count(2), None);
    ds_mut(&mut w).update_strategy = Some(ON_DELETE.into());
    w.step();
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(blocked.reason, reason::INVALID_SPEC);
    assert!(blocked.message.contains("updates OnDelete already"), "{}", blocked.message);
    assert!(w.effects.is_empty());
}

#[test]
fn a_revert_whose_pods_never_go_away_restores_the_strategy_at_its_deadline() {
    let mut w = world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    w.stuck_terminating = Some("connector:2.0".into());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), |w| ds(w).update_strategy.as_deref() == Some(ROLLING));
    assert_eq!(w.image("connector"), "connector:1.0");
    assert!(w.events.iter().any(|e| e.contains("did not go away in time")), "{:?}", w.events);
}

#[test]
fn a_canary_node_that_leaves_the_cluster_is_replaced_by_the_next() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| !w.deleted().is_empty());
    // node-1, the first chosen, is removed with its pod.
    ds_mut(&mut w).pods.as_mut().unwrap().retain(|p| p.node != "node-1");
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-2", "node-3"]);
}

#[test]
fn a_wider_stage_larger_than_the_nodes_left_takes_them_all_instead_of_blocking() {
    let mut w = world(Portion::Count(2), Some(Portion::Count(6)));
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    ds_mut(&mut w).pods.as_mut().unwrap().retain(|p| p.node != "node-6");
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    assert_eq!(nodes_running(&w, "connector:2.0").len(), 5);
    run_paced(&mut w, Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn an_upgrade_of_a_daemonset_a_deleted_canary_left_on_delete_restores_its_strategy() {
    let mut w = World::new(spec());
    let mut t = daemonset_on("connector:1.0", 3);
    t.update_strategy = Some(ON_DELETE.into());
    t.original_strategy = Some(ROLLING.into());
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(t);
    w.run_until(Duration::hours(2), |w| w.image("connector") == "connector:2.0");
    let set = w.effects.iter().find_map(|e| match e {
        Effect::SetImage { target, strategy, .. } if target.name == "connector" => Some(strategy.clone()),
        _ => None,
    });
    assert_eq!(set, Some(Some((ROLLING.to_string(), ROLLING.to_string()))), "restored with the image");
}

/// A canary among the nodes with `zone: b` (node-3, node-4 and node-5 of six).
fn zone_b(nodes: Option<Portion>) -> World {
    let mut w = world(Portion::Count(2), None);
    w.obs.spec.stages[0].components[0].canary = Some(Canary {
        nodes,
        node_selector: Some([("zone".to_string(), "b".to_string())].into()),
        replicas: None,
    });
    w.obs.selected_nodes.insert("zone=b".into(), ["node-3", "node-4", "node-5"].map(String::from).into());
    w
}

#[test]
fn a_canary_with_a_node_selector_takes_its_nodes_among_those_it_selects() {
    let mut w = zone_b(Some(Portion::Count(2)));
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-3", "node-4"]);
    // Without a count: every node it selects.
    let mut w = zone_b(None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-3", "node-4", "node-5"]);
}

#[test]
fn a_node_selector_that_selects_none_of_its_nodes_or_too_few_changes_nothing() {
    let mut w = zone_b(Some(Portion::Count(4)));
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(b.message.contains("is 4 but it runs on 3 nodes its nodeSelector selects"), "{}", b.message);
    let mut w = zone_b(None);
    w.obs.selected_nodes.insert("zone=b".into(), ["node-9".to_string()].into());
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert!(b.message.contains("canary.nodeSelector zone=b of DaemonSet kube-system/connector in stage canary selects none of the 6 nodes"), "{}", b.message);
    assert!(w.effects.is_empty());
}

#[test]
fn a_canary_waits_while_the_nodes_its_selector_selects_are_not_read() {
    let mut w = zone_b(Some(Portion::Count(2)));
    let selected = w.obs.selected_nodes.remove("zone=b").unwrap();
    w.run_until(Duration::hours(1), |w| {
        w.obs.status.message.contains("cannot start yet: waiting to read the nodes")
    });
    for _ in 0..10 {
        w.obs.now += Duration::seconds(5);
        w.step();
    }
    assert_eq!(w.image("connector"), "connector:1.0", "nothing changes on a guess");
    assert!(w.deleted().is_empty());
    w.obs.selected_nodes.insert("zone=b".into(), selected);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-3", "node-4"]);
}
#[test]
fn a_canaried_target_changed_by_someone_else_gets_its_strategy_back_before_it_is_released() {
    let mut w = world(Portion::Count(2), None);
    a_hotfix_mid_canary(&mut w);
    // ...but not of the OnDelete it set: the DaemonSet gets its own strategy back.
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING));
    assert!(w.events.iter().any(|e| e.contains("which its canary left")), "{:?}", w.events);
}

#[test]
fn a_canaried_target_whose_sidecar_still_runs_its_new_image_keeps_the_canarys_settings_and_says_so() {
    // Driver and sidecar bumped together: the hotfix replaces the driver alone.
    let mut w = with_registrar("registrar:2.0");
    a_hotfix_mid_canary(&mut w);
    assert_eq!(ds(&w).containers[1].1, "registrar:2.0", "left as the hotfix found it");
    // RollingUpdate would take the sidecar's new image, unjudged, to every node.
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    let said = &w.obs.status.message;
    assert!(
        said.contains("keeps the canary's rollout settings") && said.contains("registrar=registrar:2.0"),
        "{said}"
    );
    assert!(
        said.contains(&format!("then its rollout settings to {ROLLING} (or leave that to the next upgrade")),
        "{said}"
    );
    // Let go of, it keeps their record, so that the next upgrade of it can put them back.
    assert_eq!(ds(&w).owner, None);
    assert_eq!(ds(&w).original_strategy.as_deref(), Some(ROLLING));
}

/// A canary on 2 nodes of the connector DaemonSet, which runs a registrar sidecar at 1.0 that
/// the upgrade lists at `image` (`alsoContainers`).
fn with_registrar(image: &str) -> World {
    let mut w = world(Portion::Count(2), None);
    for c in w.obs.spec.stages.iter_mut().flat_map(|s| &mut s.components) {
        c.container = Some("connector".into());
        c.also_containers = vec![ContainerImage { container: "registrar".into(), image: image.into() }];
    }
    ds_mut(&mut w).containers.push(("registrar".into(), "registrar:1.0".into()));
    w
}

/// Someone else's hotfix of the connector mid-canary, then a rollback.
fn a_hotfix_mid_canary(w: &mut World) {
    run_paced(w, Duration::hours(1), |w| soaking(w, 0));
    // A hotfix of someone else's mid-canary: the operator lets go of the image...
    ds_mut(w).containers[0].1 = "connector:9-hotfix".into();
    bump(ds_mut(w));
    w.obs.spec.rollback.requested = true;
    run_paced(w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:9-hotfix", "not its image");
}

#[test]
fn a_strategy_changed_by_someone_else_mid_canary_reverts_the_upgrade() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    // Helm or Argo CD puts the DaemonSet's RollingUpdate back: the new image, still unjudged,
    // would roll to every node.
    ds_mut(&mut w).update_strategy = Some(ROLLING.into());
    bump(ds_mut(&mut w));
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let r = w.obs.status.rollback.clone().unwrap();
    assert_eq!(r.reason, reason::CHANGED_EXTERNALLY);
    assert!(r.message.contains("rollout settings were changed by someone else"), "{}", r.message);
    assert_eq!(w.image("connector"), "connector:1.0", "its image is still ours, so it is reverted");
}

#[test]
fn a_hand_over_mark_that_is_not_this_upgrades_last_stage_does_not_excuse_a_changed_strategy() {
    // Left by an earlier upgrade of the target deleted past its finalizer (another UID), or
    // written by hand naming a stage that does not hand over: the change is still someone's.
    for mark in ["uid-0/fleet", "uid-1/canary", "uid-1/fleet/", "uid-1"] {
        let mut w = world(Portion::Count(2), None);
        run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
        ds_mut(&mut w).handed_over = Some(mark.into());
        ds_mut(&mut w).update_strategy = Some(ROLLING.into());
        bump(ds_mut(&mut w));
        run_paced(&mut w, Duration::hours(1), terminal);
        assert_eq!(w.phase(), Phase::RolledBack, "{mark}: {}", w.obs.status.message);
        assert_eq!(w.obs.status.rollback.clone().unwrap().reason, reason::CHANGED_EXTERNALLY, "{mark}");
        assert_eq!(w.image("connector"), "connector:1.0", "{mark}");
    }
}

#[test]
fn a_restart_right_after_the_hand_over_is_not_taken_for_someone_elses_change() {
    let mut w = world(Portion::Count(2), None);
    let hands_over = |w: &World| matches!(w.effects.last(), Some(Effect::SetStrategy { strategy, .. }) if strategy == ROLLING);
    run_paced(&mut w, Duration::hours(6), hands_over);
    // The hand-over is made on the target; the status saying so was not written yet.
    w.fail_over();
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(!w.events.iter().any(|e| e.starts_with(reason::CHANGED_EXTERNALLY)), "{:?}", w.events);
}

#[test]
fn a_canary_with_no_known_good_image_to_go_back_to_keeps_the_new_image_where_it_is() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    // A record lost on the target and in the status (both written by hand, say): the revert
    // has no image to set back.
    ds_mut(&mut w).known_good = None;
    w.obs.status.stages[0].components[0].known_good_image = None;
    w.written = Some(w.obs.status.clone());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    // Restoring RollingUpdate would roll the image it could not revert to every node.
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE), "{}", w.obs.status.message);
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2"]);
    let said = w.obs.status.stages[0].components[0].message.clone().unwrap_or_default();
    assert!(said.contains("set its images back by hand, then its rollout settings to"), "{said}");
}

#[test]
fn a_recorded_strategy_made_unreadable_on_the_target_is_restored_from_the_status() {
    // Anyone who may edit the DaemonSet may garble the annotation: not JSON, no strategy at
    // all (written, the API server's defaults would never read back the same), a canary's.
    for garbled in [
        "RollingUpdate, please",
        "{}",
        r#"{"x":1}"#,
        r#"{"strategy":{}}"#,
        r#"{"type":"RollingUpdate"}"#,
        ON_DELETE,
    ] {
        let mut w = world(Portion::Count(2), None);
        run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
        ds_mut(&mut w).original_strategy = Some(garbled.into());
        w.obs.spec.rollback.requested = true;
        w.run_until(Duration::hours(2), terminal);
        assert_eq!(w.phase(), Phase::RolledBack, "{garbled}: {}", w.obs.status.message);
        assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "{garbled}: the status's record");
        assert_eq!(nodes_running(&w, "connector:2.0"), Vec::<String>::new());
    }
}

#[test]
fn a_huge_max_unavailable_percentage_recorded_on_the_target_does_not_overflow() {
    // Anyone who may edit the DaemonSet may write its recorded strategy.
    let huge = r#"{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"1844674407370955162%"}}"#;
    assert!(super::max_unavailable(Some(huge), 10) >= 10);
}

#[test]
fn a_revert_after_the_hand_over_leaves_the_daemonsets_own_strategy_alone() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    // The DaemonSet's own settings since the hand-over, changed by its owner.
    let theirs = r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":2},"type":"RollingUpdate"}"#;
    ds_mut(&mut w).update_strategy = Some(theirs.into());
    bump(ds_mut(&mut w));
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0");
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(theirs), "not the record of before the canary");
}

#[test]
fn a_canary_whose_owner_mark_someone_removed_is_left_on_its_settings_and_said_to_be() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    // Someone removes the marks mid-canary: the operator may write to it no more.
    let t = ds_mut(&mut w);
    (t.owner, t.owner_uid) = (None, None);
    bump(t);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    let said = &w.obs.status.message;
    assert!(said.contains("no longer carries this upgrade's owner mark"), "{said}");
    assert!(said.contains(&format!("put back {ROLLING} by hand")), "{said}");
}

#[test]
fn a_node_taken_again_counts_as_down_beside_any_other() {
    // maxUnavailable 2. node-6's pod is not Ready (not the canary's), node-1 runs the new image,
    // and node-2, recorded as the canary's, is back on the old one (made again from a template
    // its controller had not caught up with): node-2 is taken again, and node-3 waits, for two
    // down at once.
    let mut w = world(Portion::Count(3), None);
    let two = r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":2},"type":"RollingUpdate"}"#;
    ds_mut(&mut w).update_strategy = Some(two.into());
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    let t = ds_mut(&mut w);
    let pods = t.pods.as_mut().unwrap();
    pods[0] = pod("node-1", 1, "connector:2.0", true);
    pods[5].ready = false;
    t.available_pods = 5;
    w.obs.status.stages[0].components[0].canary.as_mut().unwrap().nodes =
        vec!["node-1".into(), "node-2".into()];
    w.effects.clear();
    w.step();
    assert_eq!(w.deleted(), ["connector-node-2-0"]);
}

/// The platform namespace loses its trust mid-canary: the canary's nodes go back, then the
/// DaemonSet's own strategy, from the records on the DaemonSet.
#[test]
fn a_canary_whose_namespace_loses_its_trust_is_reverted_and_its_strategy_restored() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.trusted_namespaces = vec![];
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::TRUST_WITHDRAWN);
    assert_eq!(nodes_running(&w, "connector:1.0").len(), 6);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "restored exactly");
    assert!(ds(&w).owner.is_none(), "released");
}

/// ... and when the record of that strategy is gone from the DaemonSet, the status's copy is not
/// written to a workload the upgrade may no longer change: it is left alone, and said.
#[test]
fn a_canary_whose_namespace_loses_its_trust_without_its_strategy_record_is_left_alone() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.trusted_namespaces = vec![];
    ds_mut(&mut w).original_strategy = None;
    let before = w.effects.len();
    run_paced(&mut w, Duration::hours(1), terminal);
    let writes: Vec<_> =
        w.effects[before..].iter().filter(|e| !matches!(e, Effect::Release { .. })).collect();
    assert!(writes.is_empty(), "nothing written but the release: {writes:?}");
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict, "{:?}", c.message);
    assert!(c.message.as_deref().unwrap().contains("rollout settings its canary changed"), "{:?}", c.message);
}

/// A sidecar listed at the image it already runs (a chart release that bumps the driver alone)
/// is no image this upgrade set: the revert still hands the DaemonSet its own strategy back.
#[test]
fn a_canary_reverted_with_a_sidecar_it_left_as_it_was_gets_its_strategy_back() {
    let mut w = with_registrar("registrar:1.0");
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.spec.rollback.requested = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(nodes_running(&w, "connector:1.0").len(), 6);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "restored exactly");
}

/// How an upgrade is made to end.
type End = fn(&mut World);

/// The canary's first change made on the DaemonSet (its new template and OnDelete) but the
/// status saying so never written (the process went away after the change, before the write);
/// then `end` ends the upgrade, and the look that reverts the template loses its
/// status write too: nothing in the status says the DaemonSet was ever changed, and its
/// template is back on the known-good image. Only OnDelete, and the record on the DaemonSet,
/// show that its canary began.
fn changed_and_reverted_unrecorded(end: End) -> World {
    let mut w = world(Portion::Count(2), None);
    w.run_until_unwritten(Duration::hours(12), |w| w.image("connector") == "connector:2.0");
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    w.fail_over();
    end(&mut w);
    let (status, written) = (w.obs.status.clone(), w.written.clone());
    let d = w.step();
    assert_eq!(w.image("connector"), "connector:1.0", "the revert: {:?}", d.effect);
    w.obs.status = status;
    w.written = written;
    w.obs.now += Duration::seconds(1);
    assert!(w.obs.status.stages.iter().flat_map(|s| &s.components).all(|c| c.applied_at.is_none()));
    w
}

/// However the upgrade ends, it lets go of the DaemonSet with its own strategy, not the
/// canary's: OnDelete left behind would hold back every later change of the DaemonSet's pods.
#[test]
fn a_canary_whose_change_and_revert_went_unrecorded_gets_its_strategy_back_however_it_ends() {
    // The first two end in a revert, which restores them; the last ends before any stage (as
    // its status has it), and its release restores them.
    let ends: [(&str, End); 3] = [
        ("deleted", |w| w.obs.deleting = true),
        ("rolled back", |w| w.obs.spec.rollback.requested = true),
        ("past its deadline", past_its_deadline),
    ];
    for (how, end) in ends {
        let mut w = changed_and_reverted_unrecorded(end);
        run_paced(&mut w, Duration::hours(2), terminal);
        assert_eq!(w.image("connector"), "connector:1.0", "{how}");
        assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "{how}: {}", w.obs.status.message);
        assert_eq!((ds(&w).owner.as_deref(), ds(&w).original_strategy.as_deref()), (None, None), "{how}");
        assert!(w.events.iter().any(|e| e.contains("which its canary left")), "{how}: {:?}", w.events);
    }
    let mut w = changed_and_reverted_unrecorded(past_its_deadline);
    run_paced(&mut w, Duration::hours(2), terminal);
    let said = &w.obs.status.message;
    assert!(
        said.contains("nothing was changed") && said.contains("which its canary left, restored"),
        "{said}"
    );
}

/// A window whose deadline has passed: the upgrade ends before any stage it has not begun.
fn past_its_deadline(w: &mut World) {
    let mut window = tue_thu_window();
    window.deadline = Some(t("2026-11-20T00:00:00Z"));
    w.obs.spec.window = Some(window);
    w.obs.generation += 1;
}

/// Its pods not listed yet (a start), the release waits for them instead of letting go of the
/// DaemonSet on the canary's settings: they say whether restoring rolls any pod forward.
#[test]
fn a_release_waits_for_the_pods_before_it_lets_go_of_a_canarys_settings() {
    let mut w = changed_and_reverted_unrecorded(past_its_deadline);
    let listed = ds_mut(&mut w).pods.take();
    for _ in 0..50 {
        w.look();
    }
    assert!(w.phase().is_terminal() && w.obs.status.released_at.is_none(), "{}", w.obs.status.message);
    assert!(ds(&w).owner.is_some(), "not let go of");
    ds_mut(&mut w).pods = listed;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "{}", w.obs.status.message);
    // Never listed (a pod watch that cannot list): let go of within minutes, on the canary's
    // settings with their record, for the next upgrade of it, as beside older pods.
    let mut w = changed_and_reverted_unrecorded(past_its_deadline);
    ds_mut(&mut w).pods = None;
    w.run_until(Duration::minutes(10), terminal);
    assert_eq!(ds(&w).owner, None);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    assert_eq!(ds(&w).original_strategy.as_deref(), Some(ROLLING));
    let said = &w.obs.status.message;
    assert!(said.contains("keeps the canary's rollout settings") && said.contains("none listed"), "{said}");
    assert!(w.events.iter().any(|e| e.starts_with("CanarySettingsKept: ")), "{:?}", w.events);
}

/// A sidecar injected into every pod at admission (a service mesh's), in no template, does not
/// stop the release from giving the DaemonSet its strategy back.
#[test]
fn a_sidecar_injected_into_the_pods_does_not_keep_a_canarys_settings() {
    let mut w = changed_and_reverted_unrecorded(past_its_deadline);
    for p in ds_mut(&mut w).pods.as_mut().unwrap() {
        p.images.push(("istio-proxy".into(), "proxyv2:1.24".into()));
    }
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "{}", w.obs.status.message);
}

/// An ended status written by someone else (no status policy installed) over a DaemonSet left
/// on OnDelete by a change and revert it never recorded: where the upgrade may still change
/// the DaemonSet, the release gives it its strategy back, judged on the DaemonSet alone; in a
/// namespace it may no longer change, it writes nothing there but the release.
#[test]
fn a_release_in_a_namespace_no_longer_trusted_writes_no_settings() {
    for trusted in [true, false] {
        let mut w = changed_and_reverted_unrecorded(past_its_deadline);
        if !trusted {
            w.obs.trusted_namespaces = vec![];
        }
        w.obs.status.phase = Phase::Failed;
        w.obs.status.completed_at = Some(w.obs.now);
        w.run_until(Duration::hours(1), terminal);
        let restored = w.effects.iter().any(|e| matches!(e, Effect::SetStrategy { .. }));
        assert_eq!(restored, trusted, "trusted: {trusted}: {}", w.obs.status.message);
        let expected = if trusted { ROLLING } else { ON_DELETE };
        assert_eq!(ds(&w).update_strategy.as_deref(), Some(expected), "trusted: {trusted}");
    }
}

/// An ended status written by someone else (no status policy installed) mid-canary, its new
/// image named as the old one: the release judges the DaemonSet alone, and restores nothing
/// that would roll the canary's image, unjudged, to every node; in a namespace the upgrade may
/// no longer change, it writes no settings at all.
#[test]
fn a_forged_ended_status_makes_no_release_roll_the_canarys_image_everywhere() {
    for trusted in [true, false] {
        let mut w = world(Portion::Count(2), None);
        run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
        if !trusted {
            w.obs.trusted_namespaces = vec![];
        }
        w.obs.status.phase = Phase::Failed;
        for c in w.obs.status.stages.iter_mut().flat_map(|s| &mut s.components) {
            c.desired_image = "connector:1.0".into();
        }
        let before = w.effects.len();
        for _ in 0..20 {
            w.look();
        }
        let strategies: Vec<_> =
            w.effects[before..].iter().filter(|e| matches!(e, Effect::SetStrategy { .. })).collect();
        assert!(strategies.is_empty(), "trusted: {trusted}: {strategies:?}");
        assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE), "trusted: {trusted}");
    }
}

/// ... and a pod the canary made from its new template before the revert is rolled back by the
/// DaemonSet's own strategy, at its own pace: the only pods that strategy rolls run the new
/// image this upgrade set.
#[test]
fn a_pod_an_unrecorded_canary_left_on_its_new_image_is_rolled_back_by_the_strategy_restored() {
    let mut w = changed_and_reverted_unrecorded(|w| w.obs.deleting = true);
    let node = ds(&w).pods.as_ref().unwrap()[0].node.clone();
    ds_mut(&mut w).pods.as_mut().unwrap()[0] = pod(&node, 1, "connector:2.0", true);
    run_paced(&mut w, Duration::hours(2), terminal);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "{}", w.obs.status.message);
    w.run_until(Duration::minutes(10), |w| nodes_running(w, "connector:1.0").len() == 6);
}

/// A DaemonSet an earlier upgrade left on its canary's OnDelete (its template beside pods that
/// still run an older image), claimed by one deleted before it changed anything: giving it
/// RollingUpdate back would roll every older pod onto a template no one judged, so the
/// settings stay, with their record, for the next upgrade; when every pod already runs the
/// template, it gets them back, since that rolls nothing.
#[test]
fn an_upgrade_that_changed_nothing_restores_a_strategy_left_before_it_only_if_that_rolls_no_pod() {
    for older in [true, false] {
        let mut w = world(Portion::Count(2), None);
        ds_mut(&mut w).update_strategy = Some(ON_DELETE.into());
        ds_mut(&mut w).canary_settings_ours = true;
        ds_mut(&mut w).original_strategy = Some(ROLLING.into());
        if older {
            for p in ds_mut(&mut w).pods.as_mut().unwrap().iter_mut().skip(2) {
                *p = pod(&p.node.clone(), 0, "connector:0.9", true);
            }
        }
        w.run_until(Duration::hours(1), |w| !w.claimed().is_empty());
        w.obs.deleting = true;
        run_paced(&mut w, Duration::hours(1), terminal);
        assert_eq!(ds(&w).owner, None);
        assert_eq!(w.image("connector"), "connector:1.0");
        let (strategy, record) = if older { (ON_DELETE, Some(ROLLING)) } else { (ROLLING, None) };
        assert_eq!(ds(&w).update_strategy.as_deref(), Some(strategy), "older pods: {older}");
        assert_eq!(ds(&w).original_strategy.as_deref(), record, "older pods: {older}");
        // The end says which it did, and why.
        let said = &w.obs.status.message;
        assert_eq!(
            said.contains("keeps the canary's rollout settings"),
            older,
            "older pods: {older}: {said}"
        );
        if older {
            assert!(said.contains("older image") && said.contains(ROLLING), "{said}");
        }
        let reason = if older { "CanarySettingsKept: " } else { "CanarySettingsRestored: " };
        assert!(w.events.iter().any(|e| e.starts_with(reason)), "older pods: {older}: {:?}", w.events);
    }
}

/// OnDelete set by hand on a DaemonSet an upgrade holds (its field manager is someone else's)
/// is not taken for a canary's: the upgrade ends and lets go of it as it was.
#[test]
fn on_delete_set_by_hand_under_an_upgrade_is_left_as_it_is() {
    let mut w = world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| !w.claimed().is_empty());
    ds_mut(&mut w).update_strategy = Some(ON_DELETE.into());
    bump(ds_mut(&mut w));
    w.obs.deleting = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(ds(&w).owner, None);
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    assert!(!w.effects.iter().any(|e| matches!(e, Effect::SetStrategy { .. })), "{:?}", w.effects);
}

/// The world with a second DaemonSet, `agent` on `nodes` nodes, beside `connector` in every
/// stage (in place of the canary's own DaemonSet).
fn with_agent(nodes: usize) -> World {
    let mut w = world(Portion::Count(2), None);
    for stage in w.obs.spec.stages.iter_mut() {
        let mut other = stage.components[0].clone();
        other.name = "agent".into();
        stage.components.push(other);
    }
    w.obs.targets.remove(&key("connector-canary"));
    w.obs.targets.insert(key("agent"), Some(daemonset_on("connector:1.0", nodes)));
    w
}

/// Two DaemonSets left on a canary's OnDelete by changes their upgrade never recorded, one of
/// them (`agent`, looked at first) with its pods not listed: the other gets its strategy back
/// at once, not after the wait for the first.
#[test]
fn one_daemonsets_unlisted_pods_hold_back_no_other_daemonsets_restore() {
    let mut w = with_agent(4);
    w.run_until(Duration::hours(1), |w| w.claimed().len() == 2);
    for name in ["agent", "connector"] {
        let t = w.target_mut(name);
        (t.update_strategy, t.canary_settings_ours) = (Some(ON_DELETE.into()), true);
        bump(t);
    }
    w.target_mut("agent").pods = None;
    past_its_deadline(&mut w);
    w.run_until(Duration::minutes(1), |w| ds(w).update_strategy.as_deref() == Some(ROLLING));
    assert_eq!(w.target_mut("agent").update_strategy.as_deref(), Some(ON_DELETE), "its pods not listed");
}

/// A restore of a canary's rollout settings that the API server keeps refusing (an admission
/// webhook, a record it finds invalid) is given up after 10 minutes: an upgrade deleted
/// mid-canary reverts its image, lets go of the DaemonSet on the canary's settings with their
/// record, says so, and goes, instead of holding its finalizer (and its namespace) for ever.
#[test]
fn a_restore_the_api_server_keeps_refusing_is_given_up_and_said() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.refuse_strategy = true;
    w.obs.deleting = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.image("connector"), "connector:1.0");
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE));
    assert_eq!(ds(&w).original_strategy.as_deref(), Some(ROLLING), "the record stays for the next upgrade");
    assert_eq!(ds(&w).owner, None);
    assert_eq!(
        nodes_running(&w, "connector:1.0").len(),
        6,
        "the canary's pods replaced first: {:?}",
        pods(&w)
    );
    let said = &w.obs.status.message;
    assert!(said.contains("refused restoring") && said.contains("set them by hand"), "{said}");
}

/// Two DaemonSets of one stage whose restores are both refused: each is given up on its own
/// clock (one refused in turn with the other must not restart it), and the deleted upgrade goes
/// within minutes of the bound, not after an hour of ping-pong.
#[test]
fn two_restores_refused_in_turn_are_each_given_up() {
    let mut w = with_agent(6);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.refuse_strategy = true;
    w.obs.deleting = true;
    let from = w.obs.now;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert!(w.obs.now - from < Duration::minutes(30), "ended after {}", w.obs.now - from);
    for name in ["agent", "connector"] {
        assert_eq!(w.target_mut(name).update_strategy.as_deref(), Some(ON_DELETE), "{name}");
    }
    let said = w.obs.status.message.clone();
    assert!(said.matches("refused restoring").count() == 2, "{said}");
}

/// The hand-over made on the DaemonSet but its status write lost, and then the upgrade paused:
/// the last stage's change is found by its mark (the DaemonSet is rolling every node) and
/// watched at once (it was left Claimed). The stage itself still starts only through its
/// gates: a mark found cannot tell who wrote it (a tenant can write it on her own workload),
/// so once the canary passes again it waits, paused, and rolls out when unpaused.
#[test]
fn a_hand_over_whose_write_was_lost_is_watched_and_its_stage_still_waits_for_its_gates() {
    let mut w = world(Portion::Count(2), None);
    let hands_over = |w: &World| matches!(w.effects.last(), Some(Effect::SetStrategy { strategy, .. }) if strategy == ROLLING);
    w.run_until_unwritten(Duration::hours(6), hands_over);
    w.fail_over();
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending, "its write lost");
    w.obs.spec.paused = true;
    w.step();
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Applied, "watched");
    w.run_until(Duration::hours(6), |w| w.phase() == Phase::Paused || terminal(w));
    assert_eq!(w.phase(), Phase::Paused, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending, "{}", w.obs.status.message);
    w.obs.spec.paused = false;
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Passed);
}

/// A hand-over found by its mark, then the DaemonSet set back by hand: the canary copies,
/// retired with the hand-over, are not brought back for a canary that no longer exists.
#[test]
fn a_found_hand_over_reverted_by_hand_leaves_the_canary_copies_retired() {
    let mut w = world(Portion::Count(2), None);
    w.obs.spec.rollback.automatic = false;
    let hands_over = |w: &World| matches!(w.effects.last(), Some(Effect::SetStrategy { strategy, .. }) if strategy == ROLLING);
    w.run_until_unwritten(Duration::hours(6), hands_over);
    w.fail_over();
    w.step();
    let copy =
        |w: &World| w.obs.status.analysis.iter().find(|a| a.name.ends_with("@canary")).cloned().unwrap();
    assert!(copy(&w).nodes.is_empty());
    ds_mut(&mut w).containers[0].1 = "connector:1.0".into();
    bump(ds_mut(&mut w));
    w.step();
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    assert!(copy(&w).nodes.is_empty(), "{:?}", copy(&w).nodes);
}

/// The last stage of a canaried DaemonSet (the hand-over) reverted: its template goes back to
/// the tag as written, never pinned to the digest its pods ran, since a pinned template is a new
/// revision that would replace the pods of every node, those that never ran the new image too.
#[test]
fn a_handed_over_daemonset_reverted_gets_its_template_back_as_written_not_pinned() {
    let mut w = world(Portion::Count(2), None);
    let digest = format!("sha256:{}", "a".repeat(64));
    ds_mut(&mut w).running_digests =
        vec![("connector".into(), format!("docker.io/library/connector@{digest}"))];
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    w.obs.spec.rollback.requested = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0", "the template as it was, so the old pods match it");
    assert!(w.image_sets().iter().all(|(_, i)| !i.contains('@')), "{:?}", w.image_sets());
}

/// Between two canary stages (the next one waiting for its approval), a pod made again on
/// another node gets the new template: it counts as canary then too, so that a revert replaces
/// it (the canary's signals count the nodes it took).
#[test]
fn a_pod_made_again_while_the_next_stage_waits_for_approval_counts_as_canary() {
    let mut w = world(Portion::Count(2), Some(Portion::Percent("50%".into())));
    w.obs.spec.stages[1].require_approval = true;
    run_paced(&mut w, Duration::hours(2), |w| w.phase() == Phase::AwaitingApproval);
    made_again(&mut w, "node-5");
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2", "node-5"], "counted while the next stage waits");
    assert!(canary.joined.is_empty(), "node-5 was there: its failures are the new image's");
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(nodes_running(&w, "connector:2.0"), Vec::<String>::new(), "node-5's pod was reverted too");
}

/// A canary left running while another component's stage soaks (stages: the connector's first
/// two nodes, another DaemonSet whole, then the connector's rest): a pod made again meanwhile
/// counts as canary too.
#[test]
fn a_pod_made_again_while_another_components_stage_soaks_counts_as_canary() {
    let mut w = world(Portion::Count(2), None);
    let fleet = w.obs.spec.stages.pop().unwrap();
    w.obs.spec.stages.push(stage("other", vec![component("connector-canary", "connector:2.0")]));
    w.obs.spec.stages.push(fleet);
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    made_again(&mut w, "node-5");
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2", "node-5"], "counted while the other stage soaks");
}

/// Kyverno's `verifyImages` (with `mutateDigest`, its default) writes every new pod's image with
/// its digest: the canary's pods are the new image all the same. Before, no pod ever matched the
/// spec's text, so each one made again was deleted again, its node without its agent, until the
/// deadline rolled the upgrade back.
#[test]
fn pods_pinned_to_their_digest_by_an_admission_webhook_are_the_canary_all_the_same() {
    let mut w = world(Portion::Count(2), None);
    w.pinning = true;
    run_paced(&mut w, Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(w.deleted(), ["connector-node-1-0", "connector-node-2-0"], "each canary pod replaced once");
    let pinned = "docker.io/library/connector:2.0@sha256:";
    assert!(pods(&w).iter().all(|p| p.images[0].1.starts_with(pinned)), "{:?}", pods(&w));
}

/// And reverted, the pods made again from the known-good template (pinned too) end the revert.
#[test]
fn a_canary_pinned_to_its_digest_is_reverted_and_released() {
    let mut w = world(Portion::Count(2), None);
    w.pinning = true;
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.spec.rollback.requested = true;
    run_paced(&mut w, Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert!(pods(&w).iter().all(|p| !crate::image::runs(&p.images[0].1, "connector:2.0")), "{:?}", pods(&w));
    assert!(pods(&w).iter().all(|p| crate::image::runs(&p.images[0].1, "connector:1.0")), "{:?}", pods(&w));
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ROLLING), "the strategy restored");
}

/// The same with images a webhook pins (Kyverno's defaults): the sidecar's template reads
/// `docker.io/library/registrar:2.0@sha256:…`, still the image this upgrade set, so the canary's
/// settings stay. Before, it read as not this upgrade's, and RollingUpdate took it everywhere.
#[test]
fn a_pinned_sidecar_still_on_its_new_image_keeps_the_canarys_settings() {
    let mut w = with_registrar("registrar:2.0");
    w.pinning = true;
    a_hotfix_mid_canary(&mut w);
    assert!(
        ds(&w).containers[1].1.starts_with("docker.io/library/registrar:2.0@sha256:"),
        "{:?}",
        ds(&w).containers
    );
    assert_eq!(ds(&w).update_strategy.as_deref(), Some(ON_DELETE), "{}", w.obs.status.message);
}

/// `node-1` stopped answering before the upgrade: its agent is not Ready, and a pod deleted there
/// would stay Terminating. The canary takes the first nodes whose agent serves, so that neither
/// a broken agent's failures nor a pod that can never come back are taken for the new image's.
#[test]
fn a_canary_takes_nodes_whose_agent_serves_before_one_that_is_down() {
    let mut w = world(Portion::Count(2), None);
    let two = r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":2},"type":"RollingUpdate"}"#;
    ds_mut(&mut w).update_strategy = Some(two.into());
    w.unreachable.insert("node-1".into());
    ds_mut(&mut w).pods.as_mut().unwrap()[0].ready = false;
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-2", "node-3"]);
    assert_eq!(w.obs.status.stages[0].components[0].canary.as_ref().unwrap().nodes, ["node-2", "node-3"]);
    assert!(!w.deleted().iter().any(|p| p.contains("node-1")), "{:?}", w.deleted());
}

/// With the DaemonSet's own maxUnavailable of 1 spent on a node that is down, the canary waits,
/// as the DaemonSet's rolling update would, and says on what.
#[test]
fn a_canary_held_by_a_node_already_down_says_which_and_why() {
    let mut w = world(Portion::Count(2), None);
    w.unreachable.insert("node-5".into());
    ds_mut(&mut w).pods.as_mut().unwrap()[4].ready = false;
    w.run_until(Duration::minutes(30), |w| w.image_sets().len() == 1);
    for _ in 0..3 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    assert!(w.deleted().is_empty(), "{:?}", w.deleted());
    let said = &w.obs.status.message;
    assert!(said.contains("node-5"), "{said}");
    assert!(said.contains("maxUnavailable 1"), "{said}");
}

/// A revert is paced the same way, and says what holds it.
#[test]
fn a_revert_held_by_a_node_down_elsewhere_says_which_and_why() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.unreachable.insert("node-5".into());
    ds_mut(&mut w).pods.as_mut().unwrap()[4].ready = false;
    w.obs.spec.rollback.requested = true;
    for _ in 0..5 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2"], "no more down at once");
    let said = &w.obs.status.message;
    assert!(
        said.contains("2 pods still run connector:2.0; waiting: nodes whose pod is down (node-5)"),
        "{said}"
    );
}

/// What the next stage widens to names its nodeSelector: "100% of its nodes" alone reads as
/// every node.
#[test]
fn the_widening_said_names_the_next_stages_node_selector() {
    let mut w = world(Portion::Count(2), Some(Portion::Percent("50%".into())));
    w.obs.spec.stages[1].components[0].canary = Some(Canary {
        nodes: None,
        node_selector: Some([("zone".to_string(), "b".to_string())].into()),
        replicas: None,
    });
    w.obs.selected_nodes.insert("zone=b".into(), ["node-3", "node-4", "node-5"].map(String::from).into());
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    let said = &w.obs.status.message;
    assert!(said.contains("to 100% of its nodes with zone=b)"), "{said}");
}

/// A node that joins before the canary took any (its pod made from the new template) does not
/// fill the canary: it takes its own node all the same, which its signals count.
#[test]
fn a_node_that_joins_before_the_canary_takes_its_nodes_does_not_fill_it() {
    let mut w = world(Portion::Count(1), None);
    w.run_until(Duration::minutes(30), |w| w.image_sets().len() == 1);
    joins(&mut w, "node-7");
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-7"]);
    assert_eq!(canary.joined, ["node-7"]);
    let copies: Vec<&SignalStatus> =
        w.obs.status.analysis.iter().filter(|a| a.name.ends_with("@canary")).collect();
    assert!(!copies.is_empty());
    for copy in copies {
        assert_eq!(copy.nodes, ["node-1"], "{}", copy.name);
    }
}

/// The look that replaced the canary's pods lost its status write: those nodes are still its
/// own next look (they were there before the change), not nodes that joined.
#[test]
fn a_canary_whose_replacing_look_lost_its_status_write_keeps_its_nodes_as_its_own() {
    let mut w = world(Portion::Count(2), None);
    let two = r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":2},"type":"RollingUpdate"}"#;
    ds_mut(&mut w).update_strategy = Some(two.into());
    w.run_until_unwritten(Duration::hours(1), |w| w.deleted().len() == 2);
    // Another replica takes over, from what was written.
    w.fail_over();
    assert!(w.obs.status.stages[0].components[0].canary.as_ref().is_none_or(|k| k.nodes.is_empty()));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2"]);
    assert!(canary.joined.is_empty(), "{:?}", canary.joined);
}

/// Held that way to its progressDeadline, the stage is reverted, and the rollback says what held
/// it: not the image.
#[test]
fn a_canary_held_to_its_deadline_by_a_node_down_elsewhere_says_so_in_its_rollback() {
    let mut w = world(Portion::Count(2), None);
    w.unreachable.insert("node-5".into());
    ds_mut(&mut w).pods.as_mut().unwrap()[4].ready = false;
    w.run_until(Duration::hours(1), |w| w.obs.status.rollback.is_some());
    let r = w.obs.status.rollback.clone().unwrap();
    assert_eq!(r.reason, reason::ROLLOUT_FAILED);
    assert!(r.message.contains("did not roll out within its progress deadline of 10m"), "{}", r.message);
    assert!(r.message.contains("nodes whose pod is down (node-5)"), "{}", r.message);
}

/// Nodes named by zone (as EKS's and GKE's are): the canary takes the first node of each zone,
/// then the second, so that a zone's trouble is not taken for the new image's; later stages
/// widen the same way.
#[test]
fn a_canary_is_spread_over_the_nodes_zones() {
    let mut w = world(Portion::Count(2), Some(Portion::Count(4)));
    for (node, zone) in
        [("node-1", "a"), ("node-2", "a"), ("node-3", "a"), ("node-4", "b"), ("node-5", "b"), ("node-6", "c")]
    {
        w.obs.node_facts.get_mut(node).unwrap().zone = Some(zone.into());
    }
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-4"]);
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-1", "node-2", "node-4", "node-6"]);
}

/// A DaemonSet first named by a later stage: a node created after the upgrade's first change
/// (in an earlier stage) but before this DaemonSet's own was there when its canary began; a pod
/// evicted and made again on it is the canary's own, judged by its signals.
#[test]
fn nodes_created_before_this_targets_own_change_are_the_canarys_own() {
    let mut w = world(Portion::Count(2), None);
    w.obs.spec.stages.insert(0, stage("other", vec![component("connector-canary", "connector:2.0")]));
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 0));
    w.obs.node_facts.get_mut("node-5").unwrap().created = Some(w.obs.now);
    run_paced(&mut w, Duration::hours(2), |w| soaking(w, 1));
    made_again(&mut w, "node-5");
    let canary = w.obs.status.stages[1].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2", "node-5"]);
    assert!(canary.joined.is_empty(), "{:?}", canary.joined);
}

/// Nodes that join under a percentage canary neither grow it nor count as its share.
#[test]
fn nodes_that_join_do_not_grow_a_percentage_canary() {
    let mut w = world(Portion::Percent("25%".into()), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    for i in 7..=12 {
        joins(&mut w, &format!("node-{i}"));
    }
    let deleted = w.deleted().len();
    for _ in 0..3 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.wanted, 2, "25% of the six that were there");
    assert_eq!(w.deleted().len(), deleted, "no more taken");
    assert_eq!(canary.joined.len(), 6);
    assert!(soaking(&w, 0), "{}", w.obs.status.message);
}

/// The status is input: a node written into `joined` that the watch of nodes knows was there
/// before the change is still the canary's own, and still judged.
#[test]
fn a_node_written_into_joined_that_was_there_is_still_judged() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    let k = w.obs.status.stages[0].components[0].canary.as_mut().unwrap();
    k.joined = vec!["node-1".into(), "node-2".into()];
    w.obs.now += Duration::minutes(1);
    w.step();
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert!(canary.joined.is_empty(), "{:?}", canary.joined);
    assert!(w.deleted().len() == 2, "no other node taken: {:?}", w.deleted());
}

/// Before the watch of nodes has listed (a replica just started), a node on the new image that
/// the status does not call the canary's may have joined: the canary waits to tell.
#[test]
fn a_canary_waits_for_the_node_watch_before_counting_a_node_it_did_not_take() {
    let mut w = world(Portion::Count(2), None);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    w.obs.nodes_listed = false;
    ds_mut(&mut w).pods.as_mut().unwrap().push(pod("node-7", 0, "connector:2.0", true));
    w.obs.now += Duration::minutes(1);
    w.step();
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.nodes, ["node-1", "node-2"], "node-7 not written as the canary's own");
    w.obs.nodes_listed = true;
    w.obs.node_facts.insert("node-7".into(), NodeFacts { created: Some(w.obs.now), zone: None });
    w.obs.now += Duration::minutes(1);
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].canary.clone().unwrap().joined, ["node-7"]);
}

/// Zones are taken in turn among the nodes whose pod serves: a zone whose first nodes are down
/// still gives the canary its serving node.
#[test]
fn the_zone_turns_count_only_nodes_that_serve() {
    let mut w = world(Portion::Count(2), None);
    for (node, zone) in
        [("node-1", "a"), ("node-2", "a"), ("node-3", "a"), ("node-4", "b"), ("node-5", "b"), ("node-6", "b")]
    {
        w.obs.node_facts.get_mut(node).unwrap().zone = Some(zone.into());
    }
    let two = r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":3},"type":"RollingUpdate"}"#;
    ds_mut(&mut w).update_strategy = Some(two.into());
    for i in [0, 1] {
        ds_mut(&mut w).pods.as_mut().unwrap()[i].ready = false;
        w.unreachable.insert(format!("node-{}", i + 1));
    }
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(nodes_running(&w, "connector:2.0"), ["node-3", "node-4"]);
}

/// A node's creation time is kept to the second: one created in the second of the change, after
/// it, has joined.
#[test]
fn a_node_created_in_the_second_of_the_change_has_joined() {
    let mut w = world(Portion::Count(2), None);
    w.obs.now += Duration::milliseconds(500);
    run_paced(&mut w, Duration::hours(1), |w| soaking(w, 0));
    let applied = w.obs.status.stages[0].components[0].applied_at.unwrap();
    joins(&mut w, "node-7");
    w.obs.node_facts.get_mut("node-7").unwrap().created = Some(applied.trunc_subsecs(0));
    w.obs.now += Duration::minutes(1);
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].canary.clone().unwrap().joined, ["node-7"]);
}
