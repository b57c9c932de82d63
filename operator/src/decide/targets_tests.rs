//! Transition tests: what the targets show.

use super::super::test_world::*;

#[test]
fn target_deleted_after_the_change_reverts_the_others() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), |w| {
        w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::Soaking)
    });
    *w.obs.targets.get_mut(&key("connector")).unwrap() = None;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::TARGET_DELETED);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Gone);
    assert!(w.obs.status.message.contains("not reverted"), "{}", w.obs.status.message);
    assert!(
        w.warnings.iter().any(|r| r == reason::ROLLED_BACK),
        "a rollback that left one out warns: {:?}",
        w.warnings
    );
}

#[test]
fn image_changed_by_someone_else_is_left_alone() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let t = w.target_mut("connector-canary");
    t.containers[0].1 = "connector:hotfix".into();
    bump(t);
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Conflict);
    assert!(w.events.iter().any(|e| e.starts_with(reason::CHANGED_EXTERNALLY)));
    let b = w.condition(ct::BLOCKED);
    assert_eq!((b.status.as_str(), b.reason.as_str()), ("True", reason::CHANGED_EXTERNALLY));
    assert!(b.message.contains("connector:hotfix"), "{}", b.message);
    // Held: the soak ends but the fleet stage does not start around the hand-made change.
    w.obs.now += Duration::hours(2);
    w.step();
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    assert_eq!(w.image("connector"), "connector:1.0");
    // A later regression reverts only what is still ours.
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:hotfix", "never fought over");
    assert!(w.obs.status.message.contains("someone else"), "{}", w.obs.status.message);
}

#[test]
fn restart_after_a_patch_whose_status_was_lost_does_not_patch_again() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::MeasuringBaseline);
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    // Simulate a crash between the patch and the status write: the status is the one before.
    let before_patch = w.image_sets().len();
    let stale = w.obs.status.clone();
    let mut stale = stale;
    stale.stages[0].components[0].phase = ComponentPhase::Claimed;
    stale.stages[0].components[0].applied_at = None;
    w.obs.status = stale;
    w.step();
    assert_eq!(w.image_sets().len(), before_patch, "the image already set is recognised, not set again");
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Applied);
    // And a restart after a claim whose status was lost reads the record back from the target.
    let mut w = World::new(spec());
    w.step();
    assert!(matches!(w.effects[0], Effect::Claim { .. }));
    w.obs.status = MaintenanceUpgradeStatus::default();
    w.target_mut("connector-canary").containers[0].1 = "connector:1.0".into();
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].known_good_image.as_deref(), Some("connector:1.0"));
    assert_eq!(w.claimed().iter().filter(|n| *n == "connector-canary").count(), 1);
}

/// The stage's change made, its status write lost, then the upgrade paused: the change is
/// watched and reverted on a regression, but the stage waits for its gates like any other (a
/// change found made cannot tell who made it).
#[test]
fn a_stage_started_before_a_lost_status_write_is_watched_and_waits_for_the_gates_it_has_now() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    // The status write after the canary's patch was lost, and meanwhile someone paused.
    let mut stale = w.obs.status.clone();
    stale.changed_at = None;
    stale.stages[0].phase = StagePhase::Pending;
    stale.stages[0].started_at = None;
    stale.stages[0].components[0].phase = ComponentPhase::Claimed;
    stale.stages[0].components[0].applied_at = None;
    w.obs.status = stale;
    w.obs.spec.paused = true;
    w.step();
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Pending, "{}", w.obs.status.message);
    assert_eq!(w.phase(), Phase::Paused, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Applied);
    assert!(w.obs.status.changed_at.is_some(), "the change is watched");
    assert_eq!(w.image_sets().len(), 1, "and not made again");
    // A regression is still reverted.
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
}

#[test]
fn a_target_named_twice_with_and_without_its_namespace_is_an_invalid_spec() {
    let mut s = spec();
    s.stages[1].components[0] =
        Component { namespace: None, ..component("connector-canary", "connector:2.0") };
    let mut w = World::new(s);
    w.obs.namespace = "kube-system".into();
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(b.message.contains("kube-system/connector-canary is named in 2 stages"), "{}", b.message);
    assert!(w.effects.is_empty());
}

#[test]
fn stages_that_no_longer_match_the_status_hold_the_upgrade_without_a_crash() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    // Written around the API server's rules: the stages reordered.
    w.obs.spec.stages.reverse();
    for _ in 0..5 {
        w.obs.now += Duration::minutes(10);
        w.step();
    }
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    assert!(
        w.condition(ct::BLOCKED).message.contains("no longer matches"),
        "{}",
        w.condition(ct::BLOCKED).message
    );
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage did not start");
    // Fewer stages in the spec than in the status: held, and a rollback still works.
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.stages.truncate(1);
    w.obs.spec.stages[0].name = "only".into();
    for _ in 0..5 {
        w.obs.now += Duration::minutes(10);
        w.step();
    }
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn a_changed_target_found_back_on_its_known_good_image_is_reverted_and_the_rest_follows() {
    let mut s = spec();
    s.stages[0].soak = Duration_("5m");
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| {
        w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::Soaking)
    });
    // The fleet's revert was sent, then the status write was lost (or someone reverted it by hand).
    w.target_mut("connector").containers[0].1 = "connector:1.0".into();
    bump(w.target_mut("connector"));
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::REVERTED);
    assert!(
        !w.obs.status.message.contains("someone else"),
        "not reported as a foreign change: {}",
        w.obs.status.message
    );
    assert_eq!(w.image("connector-canary"), "connector:1.0", "the canary followed");
    assert_eq!(
        w.image_sets().iter().filter(|(n, i)| n == "connector" && i == "connector:1.0").count(),
        0,
        "nothing sent twice"
    );
}

/// The canary passed and the fleet's image was set in one decision, whose status was never
/// written (it is written by the next look); a new leader finds the canary soaking and the
/// fleet on the new image. The fleet counts as rolling out, and is soaked and judged after the
/// canary passes again: the upgrade does not succeed around it.
#[test]
fn a_later_stage_found_changed_after_a_lost_write_is_still_soaked() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), |w| w.image_sets().len() == 2);
    w.fail_over();
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking, "the write after the canary was lost");
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    let fleet = &w.obs.status.stages[1];
    assert_eq!(fleet.phase, StagePhase::Passed, "{}", w.obs.status.message);
    assert_eq!(w.image_sets().len(), 2, "the fleet's image is not set again");
    // And a regression on the fleet while the canary soaks again is reverted.
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), |w| w.image_sets().len() == 2);
    w.fail_over();
    w.step();
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0");
}

/// A target of a later stage deleted before that stage: the stage cannot start, and the
/// condition says what a human can do about it (it blocked with no way out named).
#[test]
fn a_later_stage_whose_target_was_deleted_says_what_to_do() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = None;
    w.run_until(Duration::hours(3), |w| w.condition(ct::BLOCKED).status == "True");
    let b = w.condition(ct::BLOCKED);
    assert!(b.message.contains("stage fleet cannot start"), "{}", b.message);
    assert!(b.message.contains("spec.rollback.requested"), "{}", b.message);
    assert_eq!(w.image("connector-canary"), "connector:2.0", "nothing reverted by itself");
}

/// The fleet's first target set to the new image by someone else early in the canary's soak,
/// and the fleet needing approval: the change is watched (and reverted on a regression), but
/// the rest of the fleet waits for its gates, and the stage's progress deadline counts from
/// when it starts, not from when the change was found.
#[test]
fn a_later_stage_found_changed_still_waits_for_its_gates_and_its_deadline_counts_from_its_start() {
    let mut s = spec();
    s.stages[1].components.push(component("connector-b", "connector:2.0"));
    s.stages[1].require_approval = true;
    let mut w = World::new(s);
    w.obs.targets.insert(key("connector-b"), Some(daemonset("connector:1.0")));
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let t = w.target_mut("connector");
    t.containers[0].1 = "connector:2.0".into();
    bump(t);
    w.run_until(Duration::hours(3), |w| w.phase() == Phase::AwaitingApproval || terminal(w));
    assert_eq!(w.phase(), Phase::AwaitingApproval, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-b"), "connector:1.0", "not changed before approval");
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Applied, "watched");
    w.obs.spec.approved_stages.push("fleet".into());
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-b"), "connector:2.0");
}

/// The stage waiting for approval (every stage before it passed) and its targets set to the new
/// image by someone else (a tenant editing her own workload that a trusted upgrade claimed):
/// the change is watched, but the stage does not start around its gates, and its other targets
/// are not changed until it is approved; nor when every target of it was set so. A change
/// found made cannot tell who made it, so it never starts a stage.
#[test]
fn a_change_found_in_the_current_stage_does_not_start_it_around_its_gates() {
    for others in [true, false] {
        let mut s = spec();
        if others {
            s.stages[1].components.push(component("connector-b", "connector:2.0"));
        }
        s.stages[1].require_approval = true;
        let mut w = World::new(s);
        w.obs.targets.insert(key("connector-b"), Some(daemonset("connector:1.0")));
        w.run_until(Duration::hours(3), |w| w.phase() == Phase::AwaitingApproval);
        let t = w.target_mut("connector");
        t.containers[0].1 = "connector:2.0".into();
        bump(t);
        let later = w.obs.now + Duration::hours(2);
        w.run_until(Duration::hours(3), |w| w.obs.now >= later || terminal(w));
        assert_eq!(w.phase(), Phase::AwaitingApproval, "{others}: {}", w.obs.status.message);
        assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending, "{others}");
        assert_eq!(w.image("connector-b"), "connector:1.0", "not changed before approval");
        assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Applied, "watched");
        w.obs.spec.approved_stages.push("fleet".into());
        w.run_until(Duration::hours(6), terminal);
        assert_eq!(w.phase(), Phase::Succeeded, "{others}: {}", w.obs.status.message);
        if others {
            assert_eq!(w.image("connector-b"), "connector:2.0");
        }
    }
}

/// A later stage's target found changed is reverted by a rollback that comes before its stage
/// starts (it waits, Pending, for the canary to pass): the rollback skipped Pending stages and
/// released it on the new image.
#[test]
fn a_later_stage_found_changed_is_reverted_by_a_rollback_before_it_starts() {
    for end in [|w: &mut World| w.obs.spec.rollback.requested = true, |w: &mut World| w.obs.deleting = true] {
        let mut w = fleet_found_changed_while_the_canary_soaks();
        assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
        end(&mut w);
        w.run_until(Duration::hours(2), terminal);
        assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
        assert_eq!(w.image("connector"), "connector:1.0");
        assert_eq!(w.image("connector-canary"), "connector:1.0");
    }
}

/// A later stage whose found change was then deleted still ends the rollback rolled back, not
/// Pending as if nothing of it had started.
#[test]
fn a_later_stage_whose_found_change_was_deleted_is_not_left_pending_by_the_rollback() {
    let mut w = fleet_found_changed_while_the_canary_soaks();
    *w.obs.targets.get_mut(&key("connector")).unwrap() = None;
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Gone);
    assert_ne!(w.obs.status.stages[1].phase, StagePhase::Pending);
}

/// The fleet's target set to the new image by hand while the canary soaks: found changed,
/// watched (Applied), its stage still waiting for the canary.
fn fleet_found_changed_while_the_canary_soaks() -> World {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let t = w.target_mut("connector");
    t.containers[0].1 = "connector:2.0".into();
    bump(t);
    w.step();
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Applied);
    w
}
