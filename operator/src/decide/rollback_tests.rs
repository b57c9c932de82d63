//! Transition tests: triggering, holding and carrying out a rollback.

use super::super::test_world::*;

#[test]
fn slow_regression_in_the_canary_soak_reverts_the_canary() {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage never started");
    assert_eq!(w.image_sets().len(), 2);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::REGRESSION);
    assert!(rb.message.contains("against a baseline of 1.0"), "{}", rb.message);
    assert_eq!(w.condition(ct::ROLLED_BACK).status, "True");
    assert_eq!(w.condition(ct::HEALTHY).status, "False");
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RolledBack);
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    assert!(w.events.iter().any(|e| e.starts_with(reason::REGRESSION)));
    // Never re-applied after a rollback, however long we look.
    let sets = w.image_sets().len();
    for _ in 0..10 {
        w.obs.now += Duration::hours(1);
        w.step();
    }
    assert_eq!(w.image_sets().len(), sets);
}

#[test]
fn regression_only_in_the_fleet_stage_reverts_both_last_first() {
    let mut s = spec();
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector", 0.002);
    w.run_until(Duration::hours(4), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RolledBack);
    assert!(w.obs.status.stages[0].passed_at.is_some(), "the canary passed before the fleet regressed");
    assert_eq!(
        w.image_sets(),
        vec![
            ("connector-canary".into(), "connector:2.0".into()),
            ("connector".into(), "connector:2.0".into()),
            ("connector".into(), "connector:1.0".into()),
            ("connector-canary".into(), "connector:1.0".into()),
        ]
    );
    let fleet = w.obs.status.stages[1].reverted_at.unwrap();
    let canary = w.obs.status.stages[0].reverted_at.unwrap();
    assert!(fleet < canary, "the canary's revert waits for the fleet's to roll out");
}

#[test]
fn stuck_rollout_is_reverted_at_the_progress_deadline() {
    let mut w = World::new(spec());
    w.stuck = true;
    w.run_until(Duration::hours(2), |w| w.obs.status.rollback.is_some());
    let rb = w.obs.status.rollback.clone().unwrap();
    assert_eq!(rb.reason, reason::ROLLOUT_FAILED);
    assert!(rb.message.contains("progress deadline of 10m"), "{}", rb.message);
    let started = w.obs.status.stages[0].started_at.unwrap();
    assert!(
        rb.started_at >= started + Duration::minutes(10) && rb.started_at < started + Duration::minutes(11)
    );
    w.stuck = false;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn failed_deployment_rollout_is_reverted_at_once() {
    let mut w = World::new(spec());
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Progressing && !w.image_sets().is_empty());
    w.target_mut("connector-canary").rollout =
        Rollout::Failed("the Deployment's progress deadline was exceeded".into());
    w.step();
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
}

#[test]
fn manual_rollback_reverts_whatever_was_applied() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::MANUAL_ROLLBACK);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn manual_rollback_before_any_change_ends_without_touching_images() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::MeasuringBaseline);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert!(w.image_sets().is_empty());
    assert!(w.obs.status.message.contains("before any image was changed"), "{}", w.obs.status.message);
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()), "claims are released");
}

#[test]
fn regression_without_automatic_rollback_waits_for_a_human() {
    let mut s = spec();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.01);
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Degraded);
    assert!(w.obs.status.message.contains("spec.rollback.requested"));
    w.obs.now += Duration::hours(5);
    w.step();
    assert_eq!(w.phase(), Phase::Degraded);
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
}

#[test]
fn soak_and_rollback_go_on_after_the_window_closes() {
    let mut s = spec_with_history();
    s.window = Some(tue_thu_window());
    s.stages[0].soak = Duration_("48h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    // Creeps by 0.06 points an hour: caught hours later, after the window has closed.
    w.error_rate = creeping_after("connector-canary", 0.00001);
    w.run_until(Duration::days(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert!(
        w.obs.status.rollback.as_ref().unwrap().started_at > t("2026-11-25T07:00:00Z"),
        "detected after the window closed"
    );
}

#[test]
fn deadline_passed_before_a_stage_reverts_the_earlier_ones() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.deadline = Some(t("2026-11-25T06:00:00Z"));
    s.window = Some(win);
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::DEADLINE_EXCEEDED);
    assert!(
        rb.message.contains("stage fleet had not started by the deadline 2026-11-25 06:00:00 UTC"),
        "{}",
        rb.message
    );
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn a_rollback_held_for_a_human_stays_held_and_says_so_once() {
    let mut s = spec();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Degraded);
    for _ in 0..20 {
        w.obs.now += Duration::seconds(30);
        w.step();
        assert_eq!(w.phase(), Phase::Degraded, "{}", w.obs.status.message);
    }
    assert!(w.obs.status.message.contains("progress deadline"), "{}", w.obs.status.message);
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::AUTOMATIC_ROLLBACK_DISABLED)).count(), 1);
}

#[test]
fn a_rollback_waiting_for_a_window_that_never_opens_again_goes_ahead() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.deadline = Some(t("2026-11-25T06:00:00Z"));
    s.window = Some(win);
    s.rollback.outside_window = false;
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::DEADLINE_EXCEEDED);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn stages_left_when_the_window_never_opens_again_are_reverted_not_reported_unchanged() {
    let mut s = spec();
    let mut win = tue_thu_window();
    // A freeze from the first window's end until beyond the two-year horizon.
    win.exclusions.push(Exclusion {
        name: Some("freeze".into()),
        start: t("2026-11-25T06:00:00Z"),
        end: t("2030-01-01T00:00:00Z"),
    });
    s.window = Some(win);
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::WINDOW_NEVER_OPENS);
    assert!(rb.message.contains("stage fleet cannot start"), "{}", rb.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

/// Deleting an upgrade is an abort: what it changed goes back to the known-good images at once
/// (automatic rollback off and the window closed notwithstanding), then its targets are released.
#[test]
fn an_upgrade_deleted_mid_soak_reverts_what_it_changed_then_releases_its_targets() {
    let mut spec = spec();
    spec.rollback.automatic = false;
    spec.rollback.outside_window = false;
    let mut w = World::new(spec);
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    w.obs.spec.window = Some(tue_thu_window());
    w.obs.deleting = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::UPGRADE_DELETED);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
    assert_eq!(w.image("connector"), "connector:1.0", "never changed");
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()), "claims are released");
    assert!(w.events.iter().any(|e| e.starts_with(reason::UPGRADE_DELETED)), "{:?}", w.events);
}

#[test]
fn an_upgrade_deleted_before_any_change_only_releases_its_targets() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::MeasuringBaseline);
    w.obs.deleting = true;
    w.run_until(Duration::hours(1), terminal);
    assert!(w.image_sets().is_empty());
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()), "claims are released");
}

/// Deleted with a spec nothing can be planned from (edited after the deletion, say), nothing can
/// be reverted: it goes, but leaves its marks and known-good records, so that the next upgrade
/// of those targets is held rather than taking the image it left for known-good.
#[test]
fn an_upgrade_deleted_with_an_unusable_spec_goes_but_leaves_its_records_for_the_next_one() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    w.obs.spec.stages[0].soak = Duration_("forever");
    w.obs.deleting = true;
    w.step();
    assert!(terminal(&w), "{}", w.obs.status.message);
    assert_eq!(w.phase(), Phase::Failed);
    assert!(
        w.obs.status.message.contains("owner marks and known-good records stay"),
        "{}",
        w.obs.status.message
    );
    assert!(!w.effects.iter().any(|e| matches!(e, Effect::Release { .. })), "{:?}", w.effects);
    let canary = w.obs.targets[&key("connector-canary")].as_ref().unwrap();
    assert_eq!(canary.owner.as_deref(), Some(ID), "the mark stays");
    assert!(canary.known_good.is_some(), "the record stays");
}

/// The revert goes to the bits that ran: the known-good tag pinned to the digest the target's
/// own pods reported when it was claimed, and the status and the Event say so. A tag pushed
/// again since would otherwise revert to whatever it points at now.
#[test]
fn a_revert_pins_the_known_good_tag_to_the_digest_that_ran() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.target_mut("connector-canary").running_digests =
        vec![("connector".into(), format!("docker.io/library/connector@{digest}"))];
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let pinned = format!("connector:1.0@{digest}");
    assert_eq!(w.image("connector-canary"), pinned);
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.reverted_to.as_deref(), Some(pinned.as_str()));
    assert!(
        w.events.iter().any(|e| e.contains(&pinned) && e.contains("the digest its pods ran before")),
        "{:?}",
        w.events
    );
    // Reverted, and seen so on every later look: no conflict with the pinned image.
    for _ in 0..5 {
        w.obs.now += Duration::hours(1);
        w.step();
    }
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Reverted);
    assert_eq!(w.image_sets().len(), 2, "{:?}", w.image_sets());
}

/// A digest no registry can serve (a local image ID, bare), or one of another repository, is
/// never pinned to: the tag as written.
#[test]
fn a_digest_that_names_no_pullable_image_of_its_repository_is_not_pinned_to() {
    let local = format!("sha256:{}", "a".repeat(64));
    let elsewhere = format!("evil.example.com/connector@sha256:{}", "a".repeat(64));
    for id in [local, elsewhere, "docker.io/library/connector@sha256:abc".to_string()] {
        let mut s = spec();
        s.stages[0].soak = Duration_("2h");
        let mut w = World::new(s);
        w.target_mut("connector-canary").running_digests = vec![("connector".into(), id.clone())];
        w.error_rate = creeping_after("connector-canary", 0.001);
        w.run_until(Duration::hours(3), terminal);
        assert_eq!(w.image("connector-canary"), "connector:1.0", "{id}");
    }
}

/// A rollback's first revert made but its status write lost (a 409, the process gone), and the
/// window closed before the next look: the revert found on the target is a rollback under way,
/// which no window holds (rollback.outsideWindow false holds only one not yet begun).
#[test]
fn a_rollback_begun_before_a_lost_write_is_not_held_by_the_window() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    s.rollback.outside_window = false;
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::hours(4), |w| soaking(w, 1));
    w.error_rate = Box::new(|_| 0.3);
    w.run_until_unwritten(Duration::hours(2), |w| w.image("connector") == "connector:1.0");
    assert_eq!(w.image("connector-canary"), "connector:2.0", "one revert made");
    w.fail_over();
    assert!(w.obs.status.rollback.is_none(), "its write lost");
    w.obs.now = t("2026-11-25T07:30:00Z");
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

/// And a regression of one whose images are pinned so is reverted, last first, each once.
#[test]
fn a_regression_of_an_upgrade_whose_images_a_webhook_pins_is_reverted() {
    let mut s = spec();
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.pinning = true;
    w.error_rate = creeping_after("connector", 0.002);
    w.run_until(Duration::hours(4), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image_sets().len(), 4, "each written once each way: {:?}", w.image_sets());
    for t in ["connector", "connector-canary"] {
        assert!(crate::image::runs(&w.image(t), "connector:1.0"), "{t}: {}", w.image(t));
    }
}

/// The world's upgrade, to `connector:1.0` pinned to a new digest: the tag it already runs.
fn digest_only() -> (World, String) {
    let new = format!("connector:1.0@sha256:{}", "e".repeat(64));
    let mut s = spec();
    for c in s.stages.iter_mut().flat_map(|st| st.components.iter_mut()) {
        c.image = new.clone();
    }
    (World::new(s), new)
}

/// An upgrade that keeps the tag and changes the digest (`connector:1.0` to
/// `connector:1.0@sha256:…`) is reverted like any other: its new image is not taken for the
/// known-good one for having the same tag.
#[test]
fn an_upgrade_of_the_digest_alone_is_reverted() {
    let (mut w, new) = digest_only();
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    assert_eq!(w.image("connector-canary"), new);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0", "{:?}", w.image_sets());
}

/// A webhook's pinning of the known-good image is known-good at the digest its pods ran, where
/// one was recorded, and at any digest of its tag only where none was; never the upgrade's own.
#[test]
fn a_known_good_image_pinned_by_a_webhook_is_known_good_only_at_its_recorded_digest() {
    let (ran, other) = ("a".repeat(64), "b".repeat(64));
    let mut c = ComponentStatus {
        kind: WorkloadKind::DaemonSet,
        namespace: "kube-system".into(),
        name: "connector".into(),
        container: Some("connector".into()),
        known_good_image: Some("connector:1.0".into()),
        known_good_digest: None,
        reverted_to: None,
        managed_by: None,
        desired_image: "connector:2.0".into(),
        phase: ComponentPhase::Applied,
        applied_at: None,
        reverted_at: None,
        message: None,
        also_containers: vec![],
        canary: None,
    };
    assert!(c.is_known_good(&format!("docker.io/library/connector:1.0@sha256:{other}")));
    c.known_good_digest = Some(format!("connector@sha256:{ran}"));
    assert!(c.is_known_good("connector:1.0"));
    assert!(c.is_known_good(&format!("docker.io/library/connector:1.0@sha256:{ran}")));
    assert!(!c.is_known_good(&format!("docker.io/library/connector:1.0@sha256:{other}")), "another digest");
    c.known_good_digest = None;
    c.desired_image = format!("connector:1.0@sha256:{other}");
    assert!(!c.is_known_good(&c.desired_image.clone()));
    assert!(!c.is_known_good(&format!("docker.io/library/connector:1.0@sha256:{other}")));
}

/// And when the status write of its change was lost, the change found on the target is its own
/// (its known-good tag is no pin of the new digest), so a rollback still reverts it.
#[test]
fn an_upgrade_of_the_digest_alone_whose_change_went_unwritten_is_still_reverted() {
    let (mut w, new) = digest_only();
    w.run_until_unwritten(Duration::hours(2), |w| !w.image_sets().is_empty());
    assert_eq!(w.image("connector-canary"), new);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(
        w.image("connector-canary"),
        "connector:1.0",
        "{}: {:?}",
        w.obs.status.message,
        w.image_sets()
    );
}
