//! Transition tests: a status written by someone other than the operator aims it at nothing.

use super::super::test_world::*;

/// A component the spec does not name, as a tenant would add it to the status of her upgrade:
/// claimed, running what the victim runs, with a "known-good" image of her own.
fn forged(name: &str, runs: &str, known_good: &str) -> ComponentStatus {
    ComponentStatus {
        kind: WorkloadKind::DaemonSet,
        namespace: "kube-system".into(),
        name: name.into(),
        container: Some("connector".into()),
        known_good_image: Some(known_good.into()),
        known_good_digest: None,
        reverted_to: None,
        managed_by: None,
        desired_image: runs.into(),
        phase: ComponentPhase::Claimed,
        applied_at: None,
        reverted_at: None,
        message: None,
        also_containers: vec![],
        canary: None,
    }
}

#[test]
fn a_component_forged_into_the_status_is_never_changed_even_on_a_requested_rollback() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    // The victim exists and runs what the forged record calls the desired image.
    w.obs.targets.insert(key("victim"), Some(daemonset("victim:1")));
    w.obs.status.stages[0].components.push(forged("victim", "victim:1", "evil:6.6.6"));
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("victim"), "victim:1", "the victim is untouched");
    assert!(w.image_sets().iter().all(|(n, _)| n != "victim"), "{:?}", w.image_sets());
    let c = w.obs.status.stages[0].components.iter().find(|c| c.name == "victim").unwrap();
    assert_eq!(c.phase, ComponentPhase::Conflict);
    assert!(c.message.as_deref().unwrap().contains("spec.stages does not name"), "{:?}", c.message);
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::NOT_IN_SPEC)).count(), 1, "said once");
    assert_eq!(w.image("connector-canary"), "connector:1.0", "the upgrade's own target is reverted");
}

#[test]
fn a_claimed_component_becomes_applied_only_while_its_target_carries_the_mark() {
    // The spec names the target, but the forged status calls it claimed before any claim: the
    // target has no mark, so it is not taken as applied, and nothing is patched.
    let mut w = World::new(spec());
    w.step();
    w.obs.targets = [
        (key("connector-canary"), Some(daemonset("connector:2.0"))),
        (key("connector"), Some(daemonset("connector:1.0"))),
    ]
    .into();
    let mut st = w.obs.status.clone();
    st.claimed_at = Some(w.obs.now);
    for s in &mut st.stages {
        for c in &mut s.components {
            c.phase = ComponentPhase::Claimed;
            c.container = Some("connector".into());
            c.known_good_image = Some("evil:6.6.6".into());
        }
    }
    w.obs.status = st;
    w.obs.spec.rollback.requested = true;
    w.effects.clear();
    w.run_until(Duration::hours(1), terminal);
    let canary = &w.obs.status.stages[0].components[0];
    assert_eq!(canary.phase, ComponentPhase::Conflict, "{:?}", canary.message);
    assert!(canary.message.as_deref().unwrap().contains("owner mark"), "{:?}", canary.message);
    assert!(w.image_sets().is_empty(), "nothing patched: {:?}", w.image_sets());
    assert_eq!(w.image("connector-canary"), "connector:2.0");
}

#[test]
fn the_known_good_image_on_the_target_and_the_desired_image_in_the_spec_win_over_the_status() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    // Someone rewrote both images of the applied canary in the status.
    let c = &mut w.obs.status.stages[0].components[0];
    c.known_good_image = Some("evil:6.6.6".into());
    c.desired_image = "evil:7".into();
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0", "reverted to the target's own record");
    assert!(w.image_sets().iter().all(|(_, i)| !i.starts_with("evil")), "{:?}", w.image_sets());
    assert!(w.events.iter().any(|e| e.starts_with(reason::STATUS_CORRECTED)), "{:?}", w.events);
}

#[test]
fn a_sidecars_known_good_image_forged_into_the_status_is_taken_from_the_target() {
    let mut w = with_sidecar();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.status.stages[0].components[0].also_containers[0].known_good_image = Some("evil:6.6.6".into());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    let t = w.obs.targets[&key("connector-canary")].as_ref().unwrap();
    assert_eq!(
        t.containers[1],
        ("registrar".into(), "registrar:1.0".into()),
        "the record on the target wins"
    );
    assert!(w.events.iter().any(|e| e.starts_with(reason::STATUS_CORRECTED)), "{:?}", w.events);
}

#[test]
fn a_known_good_record_of_other_containers_is_not_used_and_no_empty_image_is_written() {
    let mut w = with_sidecar();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    // Someone rewrites the record on the target without the sidecar.
    w.target_mut("connector-canary").known_good = Some("connector=connector:1.0".into());
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict);
    assert!(c.message.as_deref().unwrap().contains("names containers [\"connector\"]"), "{:?}", c.message);
    assert!(
        w.image_sets().iter().all(|(n, i)| n != "connector-canary" || i != "connector:1.0"),
        "not reverted blind"
    );
}

#[test]
fn other_containers_forged_into_the_status_are_the_specs_again() {
    let mut w = with_sidecar();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    let forged = &mut w.obs.status.stages[0].components[0].also_containers;
    forged[0].desired_image = "evil:6.6.6".into();
    forged.push(ContainerChange {
        container: "connector2".into(),
        known_good_image: Some("evil:6".into()),
        desired_image: "evil:6".into(),
    });
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.also_containers.len(), 1);
    assert_eq!(c.also_containers[0].desired_image, "registrar:2.0");
    let t = w.obs.targets[&key("connector-canary")].as_ref().unwrap();
    assert_eq!(t.containers[1].1, "registrar:1.0");
    assert!(w.events.iter().any(|e| e.starts_with(reason::STATUS_CORRECTED)), "{:?}", w.events);
}

#[test]
fn a_status_whose_container_was_cleared_touches_nothing() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.status.stages[0].components[0].container = None;
    w.obs.spec.rollback.requested = true;
    let sets = w.image_sets().len();
    w.run_until(Duration::hours(1), terminal);
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict, "{:?}", c.message);
    assert!(c.message.as_deref().unwrap().contains("records no container"), "{:?}", c.message);
    assert!(w.image_sets()[sets..].iter().all(|(n, _)| n != "connector-canary"), "{:?}", w.image_sets());
}

/// A digest forged into the status (another image of the same repository) is not what the
/// revert pins to: the digest the claim recorded on the target is.
#[test]
fn a_known_good_digest_forged_into_the_status_is_replaced_by_the_targets_record() {
    let ran = format!("docker.io/library/connector@sha256:{}", "a".repeat(64));
    let forged_digest = format!("docker.io/library/connector@sha256:{}", "e".repeat(64));
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.target_mut("connector-canary").running_digests = vec![("connector".into(), ran.clone())];
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    assert_eq!(
        w.obs.targets[&key("connector-canary")].as_ref().unwrap().known_good_digest,
        Some(ran.clone())
    );
    w.obs.status.stages[0].components[0].known_good_digest = Some(forged_digest);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.image("connector-canary"), format!("connector:1.0@sha256:{}", "a".repeat(64)));
    assert!(w.events.iter().any(|e| e.starts_with(reason::STATUS_CORRECTED)), "{:?}", w.events);
}

/// The connector DaemonSet on six nodes, with a canary on 2 of them.
fn canary_world() -> World {
    let mut w = World::new(canary_spec(Portion::Count(2), None));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    w
}

#[test]
fn a_status_that_says_claimed_and_changed_deletes_no_pod_of_a_daemonset_never_claimed() {
    // Before any claim, the status is forged to say the upgrade claimed and changed its targets
    // and is rolling out its canary on every node: the DaemonSet carries no mark of it.
    let mut w = canary_world();
    w.step();
    w.effects.clear();
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    let mut st = w.obs.status.clone();
    st.claimed_at = Some(w.obs.now);
    st.changed_at = Some(w.obs.now);
    st.stages[0].phase = StagePhase::RollingOut;
    st.stages[0].started_at = Some(w.obs.now);
    st.current_stage = Some(st.stages[0].name.clone());
    for c in st.stages.iter_mut().flat_map(|s| &mut s.components) {
        c.phase = ComponentPhase::Pending;
        c.canary = Some(CanaryStatus {
            nodes: (1..=6).map(|i| format!("node-{i}")).collect(),
            ..Default::default()
        });
    }
    w.obs.status = st;
    for _ in 0..30 {
        w.look();
    }
    assert!(w.deleted().is_empty(), "{:?}", w.deleted());
    assert!(w.image_sets().is_empty(), "{:?}", w.image_sets());
}

#[test]
fn canary_nodes_forged_into_the_status_take_no_more_nodes_than_the_canary_asks() {
    // Mid-canary, the status is forged to say the canary took every node and is still
    // rolling out: the DaemonSet's other pods stay, and at most its maxUnavailable go at once.
    let mut w = canary_world();
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let before = w.deleted().len();
    w.obs.status.stages[0].phase = StagePhase::RollingOut;
    w.obs.status.stages[0].components[0].canary.as_mut().unwrap().nodes =
        (1..=6).map(|i| format!("node-{i}")).collect();
    for _ in 0..10 {
        w.look();
    }
    let t = w.obs.targets[&key("connector")].as_ref().unwrap();
    let new = t.pods.iter().flatten().filter(|p| p.images[0].1 == "connector:2.0").count();
    assert_eq!(new, 2, "{:?}", t.pods);
    assert_eq!(w.deleted().len(), before, "{:?}", w.deleted());
}

#[test]
fn a_stage_start_forged_into_the_future_puts_off_no_progress_deadline() {
    // The rollout never finishes; the status says the stage started a century from now.
    let mut w = World::new(spec());
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    w.obs.status.stages[0].started_at = Some(w.obs.now + Duration::days(36500));
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
}

/// A read forged into the future (`sampled_to`, `analysedAt`, `unjudgedUntil`) would stop
/// every read, so that no regression is seen; a rollout or a soak's end forged into the future
/// would make the soak never end. None is later than now (a soak's end than now and its soak).
#[test]
fn reads_and_soak_ends_forged_into_the_future_are_held_to_now() {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s.clone());
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    let later = w.obs.now + Duration::days(3650);
    for a in &mut w.obs.status.analysis {
        (a.sampled_to, a.analysed_at, a.unjudged_until) = (Some(later), Some(later), Some(later));
    }
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::REGRESSION);

    // A bucket begun in the future would never close, so that nothing were ever judged.
    let mut w = World::new(s.clone());
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    for a in &mut w.obs.status.analysis {
        a.detector.bucket_from = Some(w.obs.now + Duration::days(3650));
    }
    w.obs.now += Duration::minutes(1);
    w.step();
    let now = w.obs.now;
    assert!(w.obs.status.analysis.iter().all(|a| a.detector.bucket_from.is_none_or(|b| b <= now)));
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::REGRESSION);

    // Healthy, with the soak's end and the rollout forged a decade ahead: the soak still ends.
    let mut w = World::new(s);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    let later = w.obs.now + Duration::days(3650);
    (w.obs.status.stages[0].soak_ends_at, w.obs.status.stages[0].rolled_out_at) = (Some(later), Some(later));
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}
