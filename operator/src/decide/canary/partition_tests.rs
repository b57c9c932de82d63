//! Transition tests: a canary inside one StatefulSet, its top ordinals by partition.

use crate::decide::test_world::*;

const STS_ROLLING: &str = r#"{"rollingUpdate":{"partition":0},"type":"RollingUpdate"}"#;

/// A StatefulSet `db` of four replicas, its top `top` upgraded first, then all of it; all of it
/// at once without `top`.
fn statefulset_world(top: Option<Portion>) -> (World, TargetKey) {
    let db =
        TargetKey { kind: WorkloadKind::StatefulSet, namespace: "kube-system".into(), name: "db".into() };
    let mut s = spec();
    let part = |canary: Option<Canary>| Component {
        kind: WorkloadKind::StatefulSet,
        canary,
        ..component("db", "connector:2.0")
    };
    s.stages = match top {
        Some(top) => vec![
            stage(
                "canary",
                vec![part(Some(Canary { replicas: Some(top), nodes: None, node_selector: None }))],
            ),
            stage("fleet", vec![part(None)]),
        ],
        None => vec![stage("fleet", vec![part(None)])],
    };
    let mut w = World::new(s);
    w.obs.targets.clear();
    let mut t = daemonset_on("connector:1.0", 4);
    t.update_strategy = Some(STS_ROLLING.into());
    for (i, p) in t.pods.iter_mut().flatten().enumerate() {
        p.name = format!("db-{i}");
        p.uid = format!("uid-db-{i}");
    }
    w.obs.targets.insert(db.clone(), Some(t));
    (w, db)
}

fn strategies(w: &World) -> Vec<String> {
    w.effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetImage { strategy: Some((s, _)), .. } => Some(format!("image+{s}")),
            Effect::SetImage { image, .. } => Some(format!("image {image}")),
            Effect::SetStrategy { strategy, .. } => Some(strategy.clone()),
            Effect::DeletePods { pods, .. } => Some(format!("delete {}", pods[0].0)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_statefulset_canary_is_its_top_ordinals_by_partition_then_all_of_it() {
    let (mut w, _) = statefulset_world(Some(Portion::Count(1)));
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(
        strategies(&w),
        [
            r#"image+{"rollingUpdate":{"partition":3},"type":"RollingUpdate"}"#.to_string(),
            STS_ROLLING.to_string()
        ],
        "the image with partition 3 (its top replica), then the partition restored exactly"
    );
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!((canary.wanted, canary.total), (1, 4));
}

#[test]
fn a_statefulset_canary_whose_updated_pod_never_becomes_ready_is_reverted_without_a_human() {
    let (mut w, db) = statefulset_world(Some(Portion::Count(1)));
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    // OrderedReady: its controller replaced db-3, which never becomes Ready, and waits on it.
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    let top = t.pods.as_mut().unwrap().last_mut().unwrap();
    top.images[0].1 = "connector:2.0".into();
    top.ready = false;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
    assert_eq!(
        strategies(&w),
        [
            r#"image+{"rollingUpdate":{"partition":3},"type":"RollingUpdate"}"#.to_string(),
            "image connector:1.0".to_string(),
            "delete db-3".to_string(),
            STS_ROLLING.to_string(),
        ],
        "template back, the stuck pod deleted, then the partition restored"
    );
}

#[test]
fn a_statefulset_upgraded_whole_whose_updated_pod_never_becomes_ready_is_reverted_without_a_human() {
    // No canary: its one stage changes all of it. OrderedReady: its controller replaced db-3
    // first, which never becomes Ready, and waits on it even once the template is back
    // (kubernetes#67250): the revert deletes it, and it comes back from the reverted template.
    // Two of them (a workload that allows more than one unavailable): one at a time, the
    // highest ordinal first.
    let (mut w, db) = stuck_from(2, None);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
    assert_eq!(
        strategies(&w),
        ["image connector:2.0", "image connector:1.0", "delete db-3", "delete db-2"],
        "template back, then the stuck pods deleted one at a time; no strategy was changed, so none is restored"
    );
    let t = w.obs.targets[&db].as_ref().unwrap();
    assert!(t.pods.iter().flatten().all(|p| p.images[0].1 == "connector:1.0"), "{:?}", t.pods);
    assert!(!w.obs.status.message.contains("by hand"), "{}", w.obs.status.message);
}

/// A StatefulSet upgraded whole, reverted for its rollout: its pods from db-`from` up on the new
/// image and never Ready. The world just after the revert's template write. With `digest`, its
/// pods ran the known-good image by that digest when it was claimed.
fn stuck_from(from: usize, digest: Option<&str>) -> (World, TargetKey) {
    let (mut w, db) = statefulset_world(None);
    if let Some(d) = digest {
        let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
        t.running_digests = vec![("connector".into(), format!("docker.io/library/connector@{d}"))];
    }
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    for p in t.pods.as_mut().unwrap().iter_mut().skip(from) {
        p.images[0].1 = "connector:2.0".into();
        p.ready = false;
    }
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 2);
    (w, db)
}

#[test]
fn a_statefulset_reverted_to_the_digest_its_pods_ran_is_unstuck_all_the_same() {
    // The known-good tag pinned to that digest: the template is back on the recorded image,
    // written otherwise, and its stuck pod goes.
    let digest = format!("sha256:{}", "a".repeat(64));
    let (mut w, _) = stuck_from(3, Some(&digest));
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let pinned = format!("image connector:1.0@{digest}");
    assert_eq!(strategies(&w), ["image connector:2.0", pinned.as_str(), "delete db-3"]);
}

#[test]
fn a_reverted_statefulsets_stuck_pod_waits_for_the_one_still_terminating() {
    // db-3 takes its time to go (a grace period): db-2 waits for it, and once the stage's
    // progress deadline has passed, nothing more is waited for.
    let (mut w, _) = stuck_from(2, None);
    w.stuck_terminating = Some("connector:2.0".into());
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(strategies(&w), ["image connector:2.0", "image connector:1.0", "delete db-3"]);
}

/// The revert ends at the stage's progress deadline with nothing deleted, and says it did not
/// finish rolling out.
fn ends_by_its_deadline_deleting_nothing(w: &mut World) {
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(strategies(w), ["image connector:2.0", "image connector:1.0"]);
    assert!(w.events.iter().any(|e| e.contains("did not finish rolling out in time")), "{:?}", w.events);
}

#[test]
fn a_stuck_pod_seen_only_after_the_deadline_is_left_and_said() {
    // The operator was down from the revert's template write until past the stage's progress
    // deadline: nothing more is waited for, so one stuck target cannot hold the others, and the
    // Event says the revert did not finish.
    let (mut w, _) = stuck_from(3, None);
    w.obs.now += Duration::hours(1);
    ends_by_its_deadline_deleting_nothing(&mut w);
    // What is left for a human is named at the end.
    let left = "pods db-3 still run connector:2.0 and are not Ready; delete them by hand";
    assert!(w.obs.status.message.contains(left), "{}", w.obs.status.message);
}

#[test]
fn a_revert_time_forged_into_the_future_holds_the_revert_no_longer_than_its_deadline() {
    // The status is input: a revertedAt written far ahead would put the end of the wait there.
    let (mut w, _) = stuck_from(3, None);
    w.stuck_terminating = Some("connector:2.0".into());
    let later = w.obs.now + Duration::days(36500);
    for c in w.obs.status.stages.iter_mut().flat_map(|s| &mut s.components) {
        c.reverted_at = c.reverted_at.map(|_| later);
    }
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
}

#[test]
fn a_statefulset_the_upgrade_did_not_change_keeps_its_pods_on_a_revert() {
    // Its image in the spec is the one it runs already: none of its pods is an updated one, so
    // one that is not Ready for reasons of its own is not the revert's to delete.
    let (mut w, db) = statefulset_world(None);
    w.obs.spec.stages[0].components[0].image = "connector:1.0".into();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    t.pods.as_mut().unwrap().last_mut().unwrap().ready = false;
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert!(!strategies(&w).iter().any(|e| e.starts_with("delete")), "{:?}", strategies(&w));
}

#[test]
fn a_statefulset_whose_pods_cannot_be_seen_is_still_reverted_by_its_deadline() {
    // Upgraded whole and reverted while the pod watch has not listed its pods (or its
    // controller does not show the reverted template): nothing can be unstuck, and the revert
    // waits no longer than the rollout it waits for, the stage's progress deadline.
    let (mut w, db) = statefulset_world(None);
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap().pods = None;
    ends_by_its_deadline_deleting_nothing(&mut w);
}

#[test]
fn a_statefulset_with_a_partition_of_its_own_gets_no_canary_but_one_left_by_a_canary_is_restored() {
    let (mut w, db) = statefulset_world(Some(Portion::Count(1)));
    let own = r#"{"rollingUpdate":{"partition":2},"type":"RollingUpdate"}"#;
    w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap().update_strategy = Some(own.into());
    w.step();
    assert!(
        w.condition(ct::BLOCKED).message.contains("has a rollingUpdate.partition of its own"),
        "{}",
        w.condition(ct::BLOCKED).message
    );
    assert!(w.effects.is_empty());
    // The same partition, left by an upgrade deleted mid-canary with its record: the record is
    // what the new canary will restore.
    let (mut w, db) = statefulset_world(Some(Portion::Count(1)));
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    t.update_strategy = Some(own.into());
    t.original_strategy = Some(STS_ROLLING.into());
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(strategies(&w).last().map(String::as_str), Some(STS_ROLLING));
}

#[test]
fn a_statefulset_scaled_during_its_canary_is_not_widened() {
    let (mut w, db) = statefulset_world(Some(Portion::Count(1)));
    let mut wider = w.obs.spec.stages[0].clone();
    wider.name = "wider".into();
    wider.components[0].canary =
        Some(Canary { replicas: Some(Portion::Count(2)), nodes: None, node_selector: None });
    w.obs.spec.stages.insert(1, wider);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    // Scaled to 8: its controller makes db-4..db-7 (this world counts the pods it shows).
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    for i in 4..8 {
        let mut p = pod(&format!("node-{}", i + 1), 0, "connector:2.0", true);
        p.name = format!("db-{i}");
        p.uid = format!("uid-db-{i}");
        t.pods.get_or_insert_with(Vec::new).push(p);
    }
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "held, then reverted at the wider stage's deadline");
    let effects = strategies(&w);
    assert!(
        effects.iter().all(|e| !e.contains("\"partition\":6") && !e.contains("\"partition\":2")),
        "{effects:?}"
    );
}

#[test]
fn a_statefulset_canary_of_every_replica_before_its_last_stage_changes_nothing() {
    let (mut w, _) = statefulset_world(Some(Portion::Percent("100%".into())));
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert!(b.message.contains("takes all 4 of its replicas"), "{}", b.message);
    assert!(w.effects.is_empty());
}

/// A canary of the top replica of `db`, changed and updated by its controller (db-3 on the new
/// image), with replica `down` not Ready and the StatefulSet's rollout short of complete.
fn top_replica_updated_with_one_down(down: usize) -> World {
    let (mut w, db) = statefulset_world(Some(Portion::Count(1)));
    w.stuck = true;
    w.run_until(Duration::minutes(30), |w| w.image_sets().len() == 1);
    let t = w.obs.targets.get_mut(&db).unwrap().as_mut().unwrap();
    let pods = t.pods.as_mut().unwrap();
    pods[3].images[0].1 = "connector:2.0".into();
    pods[down].ready = false;
    t.rollout = Rollout::InProgress("3 of 4 replicas ready".into());
    w
}

/// A replica below the partition that is not Ready (resyncing, its node down) is not the
/// canary's: the canary is judged by its own top replicas, not by every replica's readiness.
#[test]
fn a_statefulset_canary_is_not_held_by_a_replica_below_its_partition() {
    let mut w = top_replica_updated_with_one_down(0);
    w.run_until(Duration::minutes(20), |w| soaking(w, 0) || w.obs.status.rollback.is_some());
    assert!(soaking(&w, 0), "{}", w.obs.status.message);
    // ... and one whose own top replica is not Ready waits for it.
    let mut w = top_replica_updated_with_one_down(3);
    for _ in 0..3 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RollingOut, "{}", w.obs.status.message);
    let said = &w.obs.status.message;
    assert!(said.contains("0 of its top 1 of 4 replicas run connector:2.0 and are Ready"), "{said}");
}
