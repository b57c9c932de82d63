//! Transition tests: a canary inside one Deployment, new replicas beside the old ones.

use super::surge_settings;
use crate::decide::test_world::*;
use serde_json::json;

/// Its settings as the API server defaults them: 25 % surge and unavailable, 600 s deadline.
const SETTINGS: &str = r#"{"minReadySeconds":0,"progressDeadlineSeconds":600,"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"}}"#;

/// Deployment `web` of six replicas: a canary of `first` of them, then (`then`), then all.
fn deployment_world(first: Portion, then: Option<Portion>) -> (World, TargetKey) {
    let web =
        TargetKey { kind: WorkloadKind::Deployment, namespace: "kube-system".into(), name: "web".into() };
    let part = |canary: Option<Portion>| Component {
        kind: WorkloadKind::Deployment,
        canary: canary.map(|n| Canary { replicas: Some(n), nodes: None, node_selector: None }),
        ..component("web", "connector:2.0")
    };
    let mut s = spec();
    s.stages = vec![stage("canary", vec![part(Some(first))])];
    if let Some(then) = then {
        s.stages.push(stage("wider", vec![part(Some(then))]));
    }
    s.stages.push(stage("fleet", vec![part(None)]));
    let mut w = World::new(s);
    w.obs.targets.clear();
    let mut t = daemonset("connector:1.0");
    t.update_strategy = Some(SETTINGS.into());
    t.pods = Some((0..6).map(|i| replica(&format!("old-{i}"), "connector:1.0", true)).collect());
    t.desired_pods = 6;
    t.available_pods = 6;
    w.obs.targets.insert(web.clone(), Some(t));
    (w, web)
}

fn web(w: &World, k: &TargetKey) -> TargetState {
    w.obs.targets[k].clone().unwrap()
}

/// The pods that run `image`, by name.
fn running(w: &World, k: &TargetKey, image: &str) -> Vec<String> {
    let t = web(w, k);
    t.pods.unwrap().iter().filter(|p| p.images[0].1 == image).map(|p| p.name.clone()).collect()
}

fn old_pods() -> Vec<String> {
    (0..6).map(|i| format!("web-old-{i}")).collect()
}

/// Someone puts back the Deployment's `rollingUpdate` (a chart's), leaving the rest of its
/// settings (the canary's minReadySeconds) as they are.
fn strategy_put_back(t: &mut TargetState, rolling_update: serde_json::Value) {
    let mut v: serde_json::Value = serde_json::from_str(t.update_strategy.as_deref().unwrap()).unwrap();
    v["strategy"]["rollingUpdate"] = rolling_update;
    t.update_strategy = Some(v.to_string());
    bump(t);
}

/// The settings each write sent: with the image (`image+…`), or alone.
fn settings(w: &World) -> Vec<String> {
    w.effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetImage { image, strategy: Some((s, _)), .. } => Some(format!("{image}+{s}")),
            Effect::SetImage { image, .. } => Some(image.clone()),
            Effect::SetStrategy { strategy, .. } => Some(strategy.clone()),
            Effect::DeletePods { .. } => Some("delete".into()),
            _ => None,
        })
        .collect()
}

/// Its owner pauses it (`kubectl rollout pause`), or resumes it.
fn owner_pauses(w: &mut World, k: &TargetKey, paused: bool) {
    let t = w.obs.targets.get_mut(k).unwrap().as_mut().unwrap();
    t.paused = paused;
    bump(t);
}

/// Whether something holds the upgrade now (`Blocked` is True).
fn blocked(w: &World) -> bool {
    w.obs.status.conditions.iter().any(|c| c.type_ == ct::BLOCKED && c.status == "True")
}

#[test]
fn a_deployment_canary_runs_new_replicas_beside_all_the_old_then_hands_over_exactly() {
    let (mut w, k) = deployment_world(Portion::Count(2), Some(Portion::Percent("50%".into())));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(running(&w, &k, "connector:1.0"), old_pods(), "no old replica taken away");
    assert_eq!(running(&w, &k, "connector:2.0"), ["web-new-0", "web-new-1"]);
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!((canary.wanted, canary.total, canary.pods.len()), (2, 6, 2));
    assert_eq!(canary.original_update_strategy.as_deref(), Some(SETTINGS), "recorded in status");
    assert_eq!(web(&w, &k).original_strategy.as_deref(), Some(SETTINGS), "and on the Deployment");
    w.run_until(Duration::hours(1), |w| soaking(w, 1));
    assert_eq!(running(&w, &k, "connector:1.0"), old_pods(), "still none taken away");
    assert_eq!(running(&w, &k, "connector:2.0").len(), 3, "50 % of 6");
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(running(&w, &k, "connector:2.0").len(), 6);
    assert_eq!(
        settings(&w),
        [format!("connector:2.0+{}", surge_settings(2)), surge_settings(3), SETTINGS.to_string()],
        "the image with a surge of 2, widened to 3, then its own settings restored exactly"
    );
    assert!(w.events.iter().any(|e| e.contains("beside its 6")), "{:?}", w.events);
}

#[test]
fn a_deployment_canary_reverted_sets_its_image_and_settings_back_in_one_write() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(
        settings(&w),
        [format!("connector:2.0+{}", surge_settings(2)), format!("connector:1.0+{SETTINGS}")],
        "no pod deleted by the operator: its controller scales the canary's away"
    );
    assert_eq!(running(&w, &k, "connector:1.0"), old_pods(), "the old replicas are the ones it had");
    assert!(running(&w, &k, "connector:2.0").is_empty());
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS));
}

/// Reverted after the last stage handed the Deployment its own settings back, which someone
/// has changed since (a chart release, by hand): theirs stay; only a canary's are restored.
#[test]
fn a_deployment_reverted_after_the_hand_over_keeps_the_settings_someone_set_since() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(3), |w| soaking(w, 1));
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS), "handed over");
    let theirs = SETTINGS.replace(r#""minReadySeconds":0"#, r#""minReadySeconds":30"#);
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().update_strategy = Some(theirs.clone());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(web(&w, &k).containers[0].1, "connector:1.0");
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(theirs.as_str()), "{:?}", settings(&w));
}

#[test]
fn a_revert_waits_until_no_replica_runs_the_new_image() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    w.stuck = true; // the canary's ReplicaSet is not scaled away yet
    w.obs.spec.rollback.requested = true;
    let until = w.obs.now + Duration::minutes(5);
    w.run_until(Duration::minutes(6), |w| w.obs.now >= until);
    assert_eq!(w.phase(), Phase::RollingBack);
    assert!(w.obs.status.message.contains("2 pods still run connector:2.0"), "{}", w.obs.status.message);
    assert_eq!(running(&w, &k, "connector:2.0").len(), 2);
}

#[test]
fn a_paused_deployment_or_a_canary_above_its_replicas_changes_nothing() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().paused = true;
    w.step();
    assert!(w.condition(ct::BLOCKED).message.contains("is paused"), "{}", w.condition(ct::BLOCKED).message);
    assert!(w.effects.is_empty());
    let (mut w, _) = deployment_world(Portion::Count(7), None);
    w.step();
    let msg = &w.condition(ct::BLOCKED).message;
    assert!(
        msg.contains("canary.replicas of Deployment kube-system/web in stage canary is 7 but it has 6"),
        "{msg}"
    );
    assert!(w.effects.is_empty());
}

#[test]
fn a_restart_mid_canary_goes_on_from_the_deployment_and_the_status() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| !running(w, &k, "connector:2.0").is_empty());
    w.fail_over();
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(settings(&w).len(), 2, "nothing sent twice: {:?}", settings(&w));
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS));
}

#[test]
fn a_recreate_deployment_or_one_of_no_replicas_gets_no_canary() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().update_strategy =
        Some(r#"{"minReadySeconds":0,"progressDeadlineSeconds":600,"strategy":{"type":"Recreate"}}"#.into());
    w.step();
    assert!(
        w.condition(ct::BLOCKED).message.contains("updates by Recreate"),
        "{}",
        w.condition(ct::BLOCKED).message
    );
    assert!(w.effects.is_empty());
    let (mut w, k) = deployment_world(Portion::Percent("25%".into()), None);
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    t.desired_pods = 0;
    t.pods = Some(vec![]);
    w.step();
    assert!(
        w.condition(ct::BLOCKED).message.contains("has 0 replicas"),
        "{}",
        w.condition(ct::BLOCKED).message
    );
    assert!(w.effects.is_empty());
}

#[test]
fn a_deployment_left_with_a_canarys_settings_and_no_record_of_its_own_gets_no_canary() {
    // An earlier upgrade's revert kept the canary's settings (its template still held a new
    // image) and its release took the record: taken for the Deployment's own, they would be
    // restored as such, and a revert under the held minReadySeconds would leave no replica
    // available.
    // Also the canary's minReadySeconds alone, under a strategy a chart put back.
    let held = SETTINGS.replace(r#""minReadySeconds":0"#, r#""minReadySeconds":2147483646"#);
    for left in [surge_settings(2), held] {
        let (mut w, k) = deployment_world(Portion::Count(2), None);
        w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().update_strategy = Some(left.clone());
        w.step();
        let msg = &w.condition(ct::BLOCKED).message;
        assert!(msg.contains("still has a canary's rollout settings"), "{left}: {msg}");
        assert!(w.effects.is_empty());
    }
}

#[test]
fn a_record_without_a_progress_deadline_is_not_taken_for_the_deployments_own() {
    // apps/v1 always fills it in: a record without it (garbled on the target) would be written
    // back leaving the canary's "none" in place. The status's copy is restored instead.
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let garbled = r#"{"minReadySeconds":0,"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"}}"#;
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().original_strategy = Some(garbled.into());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS));
}

/// The status is input: a `canary.total` written by someone else (the status policy not
/// installed) must not make the canary larger than the Deployment itself.
#[test]
fn a_forged_canary_total_never_makes_more_new_replicas_than_the_deployment_has() {
    let (mut w, k) = deployment_world(Portion::Percent("50%".into()), None);
    w.run_until(Duration::hours(1), |w| {
        w.obs.status.stages.first().is_some_and(|s| s.components[0].canary.is_some())
    });
    w.obs.status.stages[0].components[0].canary.as_mut().unwrap().total = 1000;
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let canary = w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!(canary.wanted, 6, "bounded by the Deployment's 6 replicas: {canary:?}");
    assert_eq!(running(&w, &k, "connector:2.0").len(), 6);
    let surges: Vec<usize> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetStrategy { strategy, .. } => super::surge_of(Some(strategy)),
            _ => None,
        })
        .collect();
    assert!(surges.iter().all(|s| *s <= 6), "{surges:?}");
}

/// An autoscaler scales the Deployment down and up again during its canary: the canary is bounded
/// by the replicas while they are fewer, and is its first size again once they are back.
#[test]
fn a_scale_down_during_the_canary_bounds_it_for_a_while_only() {
    let (mut w, k) = deployment_world(Portion::Percent("50%".into()), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let canary = |w: &World| w.obs.status.stages[0].components[0].canary.clone().unwrap();
    assert_eq!((canary(&w).wanted, canary(&w).total), (3, 6));
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().desired_pods = 2;
    w.step();
    assert_eq!((canary(&w).wanted, canary(&w).total), (2, 6), "bounded by the 2 replicas, its size kept");
    w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().desired_pods = 6;
    w.step();
    assert_eq!((canary(&w).wanted, canary(&w).total), (3, 6), "its first size again");
}

#[test]
fn a_deployment_whose_surge_someone_made_take_pods_away_mid_canary_is_reverted() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    // `helm upgrade` puts back the chart's rolling update and leaves minReadySeconds alone: the
    // controller may now take an old replica away, and grows the canary unjudged.
    strategy_put_back(
        w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap(),
        serde_json::json!({"maxSurge": 1, "maxUnavailable": 1}),
    );
    w.run_until(Duration::hours(1), terminal);
    let r = w.obs.status.rollback.clone().unwrap();
    assert_eq!(r.reason, reason::CHANGED_EXTERNALLY, "{}", r.message);
    // Its recorded settings back with the image: the canary's minReadySeconds, left by the
    // chart, would keep every pod from counting as available.
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS), "{:?}", settings(&w));
}

/// A rollback after the last stage began but before its hand-over of the Deployment (another
/// component of that stage went first): the Deployment's revert still carries its recorded
/// settings in the same write, since it was never handed over.
#[test]
fn a_deployment_reverted_before_its_stage_handed_it_over_gets_image_and_settings_in_one_write() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.obs.targets.insert(key("connector"), Some(daemonset("connector:1.0")));
    w.obs.spec.stages[1].components.insert(0, component("connector", "connector:2.0"));
    w.run_until(Duration::hours(3), |w| {
        w.obs.status.stages.get(1).is_some_and(|s| s.components[0].applied_at.is_some())
    });
    assert!(w.obs.status.stages[1].components[1].applied_at.is_none(), "not handed over yet");
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let reverts: Vec<Option<String>> = w
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SetImage { target, image, strategy, .. }
                if target.name == "web" && image == "connector:1.0" =>
            {
                Some(strategy.as_ref().map(|(s, _)| s.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(reverts, [Some(SETTINGS.to_string())], "{:?}", settings(&w));
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS));
}

/// Someone puts back both the image and the chart's strategy mid-canary (Argo CD's self-heal,
/// `helm rollback`), leaving minReadySeconds, which the chart does not set, at the canary's:
/// found reverted, the Deployment still gets its recorded settings back, under which its pods
/// count as available again.
#[test]
fn a_deployment_set_back_by_someone_else_mid_canary_gets_its_settings_back() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    strategy_put_back(t, serde_json::json!({"maxSurge": "25%", "maxUnavailable": "25%"}));
    t.containers[0].1 = "connector:1.0".into();
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS), "{:?}", settings(&w));
}

/// The same, with the API server refusing the restore: the upgrade ends keeping the record on
/// the Deployment and saying so, for the next upgrade to restore (it was dropped, leaving the
/// canary's minReadySeconds to be taken for the Deployment's own).
#[test]
fn a_deployment_set_back_mid_canary_whose_restore_is_refused_keeps_its_record() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    w.refuse_strategy = true;
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    strategy_put_back(t, serde_json::json!({"maxSurge": "25%", "maxUnavailable": "25%"}));
    t.containers[0].1 = "connector:1.0".into();
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(web(&w, &k).original_strategy.as_deref(), Some(SETTINGS), "the record kept");
    assert!(w.events.iter().any(|e| e.contains("keeps the canary's rollout settings")), "{:?}", w.events);
}

/// Driver and sidecar bumped together, and someone sets the driver alone back to its known-good
/// image by hand mid-canary: that is not a revert (the sidecar still runs the new image), so the
/// Deployment's own settings are not handed back, which would roll the sidecar to every replica
/// unjudged.
#[test]
fn a_driver_set_back_by_hand_beside_a_new_sidecar_is_not_taken_for_reverted() {
    let (mut w, k) = deployment_world(Portion::Count(1), None);
    for c in w.obs.spec.stages.iter_mut().flat_map(|s| &mut s.components) {
        c.container = Some("connector".into());
        c.also_containers =
            vec![ContainerImage { container: "registrar".into(), image: "registrar:2.0".into() }];
    }
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    t.containers.push(("registrar".into(), "registrar:1.0".into()));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    assert_eq!(t.containers[1].1, "registrar:2.0");
    t.containers[0].1 = "connector:1.0".into();
    bump(t);
    let before = w.effects.len();
    let end = w.obs.now + Duration::hours(1);
    while w.obs.now < end && !terminal(&w) {
        w.look();
    }
    let strategies: Vec<_> =
        w.effects[before..].iter().filter(|e| matches!(e, Effect::SetStrategy { .. })).collect();
    assert!(strategies.is_empty(), "the canary's settings stay: {strategies:?}");
    assert!(super::surge_of(web(&w, &k).update_strategy.as_deref()).is_some(), "still the canary's surge");
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Conflict);
}

/// Its owner pauses it (`kubectl rollout pause`) while the canary soaks: the next stage does not
/// raise its surge, which a paused Deployment's controller spends on more old replicas (it
/// scales every ReplicaSet in proportion), and says why it waits. Resumed, the canary widens.
#[test]
fn a_deployment_paused_by_its_owner_mid_canary_is_not_widened_until_resumed() {
    let (mut w, k) = deployment_world(Portion::Count(2), Some(Portion::Percent("50%".into())));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    owner_pauses(&mut w, &k, true);
    let before = settings(&w).len();
    w.run_until(Duration::hours(3), |w| w.obs.status.stages[1].phase != StagePhase::Pending);
    for _ in 0..5 {
        w.obs.now += Duration::minutes(1);
        w.step();
    }
    assert_eq!(settings(&w).len(), before, "no surge raised while paused: {:?}", settings(&w));
    assert!(
        w.obs.status.message.contains("was paused (spec.paused) by its owner"),
        "{}",
        w.obs.status.message
    );
    owner_pauses(&mut w, &k, false);
    w.run_until(Duration::hours(1), |w| soaking(w, 1));
    assert_eq!(running(&w, &k, "connector:2.0").len(), 3, "50 % of 6 once resumed");
}

/// A Deployment whose images a webhook pins to their digest (Kyverno's defaults): its canary's
/// replicas are the new image all the same, and it hands over as any other.
#[test]
fn a_deployment_canary_whose_images_a_webhook_pins_runs_and_hands_over() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.pinning = true;
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    assert_eq!(running(&w, &k, "connector:1.0"), old_pods(), "no old replica taken away");
    let new = web(&w, &k)
        .pods
        .unwrap()
        .iter()
        .filter(|p| crate::image::runs(&p.images[0].1, "connector:2.0"))
        .count();
    assert_eq!(new, 2);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(web(&w, &k).update_strategy.as_deref(), Some(SETTINGS), "its own settings back");
}

/// A Deployment first named by a later stage is judged when that stage comes, as one named by
/// the first: paused by its owner while the first stage soaked, it gets no canary (its
/// controller would make no new ReplicaSet), and the upgrade says why, changing nothing of it;
/// resumed, its canary goes ahead. Before, every check stopped at the upgrade's first change.
#[test]
fn a_deployment_first_named_by_a_later_stage_is_judged_when_its_stage_comes() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.obs.spec.stages.insert(0, stage("agents", vec![component("connector", "connector:2.0")]));
    w.obs.targets.insert(key("connector"), Some(daemonset_on("connector:1.0", 6)));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    owner_pauses(&mut w, &k, true);
    w.run_until(Duration::hours(3), |w| blocked(w) || terminal(w));
    assert!(blocked(&w), "{:?}: {} {:?}", w.phase(), w.obs.status.message, w.image_sets());
    assert!(w.condition(ct::BLOCKED).message.contains("is paused"), "{}", w.condition(ct::BLOCKED).message);
    assert!(!w.image_sets().iter().any(|(t, _)| t == "web"), "web is not changed: {:?}", w.image_sets());
    owner_pauses(&mut w, &k, false);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

/// Paused while an earlier stage's DaemonSet canary is still being rolled out, a Deployment a
/// later stage names first holds nothing of that stage: it is judged when its own stage is next.
/// Before, the hold stopped the DaemonSet's canary midway, whose stage then failed its deadline
/// and reverted.
#[test]
fn a_later_targets_problem_does_not_hold_an_earlier_stage_in_flight() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    let agents = Component {
        canary: Some(Canary { nodes: Some(Portion::Count(2)), replicas: None, node_selector: None }),
        ..component("connector", "connector:2.0")
    };
    w.obs.spec.stages.insert(0, stage("agents", vec![agents]));
    w.obs.spec.stages.last_mut().unwrap().components.push(component("connector", "connector:2.0"));
    w.obs.targets.insert(key("connector"), Some(daemonset_on("connector:1.0", 6)));
    w.run_until(Duration::hours(1), |w| w.obs.status.changed_at.is_some());
    owner_pauses(&mut w, &k, true);
    w.run_until(Duration::hours(3), |w| blocked(w) || terminal(w));
    assert_eq!(
        w.obs.status.stages[0].phase,
        StagePhase::Soaking,
        "{:?}: {}",
        w.phase(),
        w.obs.status.message
    );
    assert!(w.condition(ct::BLOCKED).message.contains("is paused"), "{}", w.condition(ct::BLOCKED).message);
    owner_pauses(&mut w, &k, false);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

/// A Deployment whose owner allows no surge (`maxSurge: 0`: a hostPort, a volume one pod may
/// mount, every GPU taken) may not have a pod beside its replicas: its canary could never run,
/// and its pending pod would be counted as the new image's failure. Refused before any change.
#[test]
fn a_deployment_that_may_not_surge_gets_no_canary() {
    for surge in [json!(0), json!("0%")] {
        let (mut w, k) = deployment_world(Portion::Count(1), None);
        let settings = json!({"minReadySeconds": 0, "progressDeadlineSeconds": 600,
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": 1}, "type": "RollingUpdate"}});
        w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap().update_strategy = Some(settings.to_string());
        w.step();
        let said = &w.condition(ct::BLOCKED).message;
        assert!(said.contains("maxSurge") && said.contains("upgrade it whole"), "{said}");
        assert!(w.effects.is_empty(), "{:?}", w.effects);
    }
}

/// The operator is away past the stage's progressDeadline (both replicas down, say) while the
/// Deployment's controller makes the canary's pods: the first look back finds the canary done
/// and soaks it, instead of rolling back a rollout that finished.
#[test]
fn a_canary_that_finished_while_the_operator_was_away_is_not_rolled_back() {
    let (mut w, k) = deployment_world(Portion::Count(2), None);
    w.run_until(Duration::minutes(30), |w| w.image_sets().len() == 1);
    let t = w.obs.targets.get_mut(&k).unwrap().as_mut().unwrap();
    let pods = t.pods.as_mut().unwrap();
    pods.retain(|p| p.images[0].1 != "connector:2.0");
    pods.extend([replica("new-a", "connector:2.0", true), replica("new-b", "connector:2.0", true)]);
    w.obs.now += Duration::minutes(15);
    w.step();
    assert!(w.obs.status.rollback.is_none(), "{:?}", w.obs.status.rollback);
    assert!(soaking(&w, 0), "{}", w.obs.status.message);
}
