//! Transition tests: how an upgrade ends.

use super::super::test_world::*;

#[test]
fn healthy_two_stage_upgrade_succeeds_and_keeps_the_known_good_record() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    assert_eq!(w.image("connector"), "connector:2.0");
    assert_eq!(
        w.image_sets(),
        vec![
            ("connector-canary".into(), "connector:2.0".into()),
            ("connector".into(), "connector:2.0".into())
        ]
    );
    let c = &w.obs.status.stages[1].components[0];
    assert_eq!(c.known_good_image.as_deref(), Some("connector:1.0"));
    assert_eq!(c.known_good_digest.as_deref(), Some("sha256:good"));
    assert_eq!(c.container.as_deref(), Some("connector"));
    // Released at the end; the record stays in status.
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()));
    assert_eq!(w.condition(ct::COMPLETE).status, "True");
    assert_eq!(w.condition(ct::HEALTHY).status, "True");
    assert_eq!(w.condition(ct::PROGRESSING).status, "False");
    // The baseline was measured before the first change, over the observe period.
    let a = &w.obs.status.analysis[0];
    let b = a.baseline.as_ref().unwrap();
    assert!(b.to.unwrap() <= w.obs.status.changed_at.unwrap());
    assert_eq!(b.attempts, 1000);
    assert!(w.events.iter().any(|e| e.starts_with(reason::SOAK_PASSED)));
    // Terminal: nothing more to do.
    let d = w.step();
    assert!(d.effect.is_none() && d.requeue_after.is_none());
}

/// Look until the look that releases the targets; carry out the first `released` releases
/// only, and lose that look's status write (a 409, a release that failed, the process gone).
fn lose_the_release(w: &mut World, released: usize) {
    for _ in 0..10_000 {
        let (status, written, targets) = (w.obs.status.clone(), w.written.clone(), w.obs.targets.clone());
        let d = w.step();
        if let Some(Effect::Release { targets: keys, .. }) = &d.effect {
            for (k, _) in keys.iter().skip(released) {
                w.obs.targets.insert(k.clone(), targets[k].clone());
            }
            w.obs.status = status;
            w.written = written;
            return;
        }
        w.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
    }
    panic!("never released: {}", w.obs.status.message);
}

/// Every target let go of, and no Blocked condition on the way.
fn ended_clean(w: &mut World, phase: Phase) {
    let mut blocked = vec![];
    w.run_until(Duration::days(2), |w| {
        terminal(w) && w.obs.targets.values().flatten().all(|t| t.owner.is_none())
    });
    for _ in 0..3 {
        w.look();
        if w.condition(ct::BLOCKED).status == "True" {
            blocked.push(w.condition(ct::BLOCKED).message.clone());
        }
    }
    assert_eq!(w.phase(), phase, "{}", w.obs.status.message);
    assert!(blocked.is_empty(), "{blocked:?}");
    assert!(w.obs.targets.values().flatten().all(|t| t.owner.is_none()), "every target released");
}

#[test]
fn a_success_whose_last_status_write_is_lost_still_succeeds() {
    for released in [0, 1, 2] {
        let mut w = World::new(spec());
        lose_the_release(&mut w, released);
        ended_clean(&mut w, Phase::Succeeded);
        assert_eq!(w.image("connector"), "connector:2.0");
    }
}

#[test]
fn a_rollback_whose_last_status_write_is_lost_still_ends_rolled_back() {
    for released in [0, 1, 2] {
        let mut s = spec();
        s.stages[0].soak = Duration_("2h");
        let mut w = World::new(s);
        w.error_rate = creeping_after("connector-canary", 0.001);
        lose_the_release(&mut w, released);
        ended_clean(&mut w, Phase::RolledBack);
        assert_eq!(w.image("connector-canary"), "connector:1.0");
    }
}

#[test]
fn an_end_before_any_change_whose_status_write_is_lost_still_ends() {
    for released in [0, 1, 2] {
        let mut s = spec();
        let mut win = tue_thu_window();
        // Its last window closes while the baseline is measured.
        win.deadline = Some(t("2026-11-24T06:10:00Z"));
        s.window = Some(win);
        s.analysis.baseline.observe = Duration_("4h");
        let mut w = World::new(s);
        w.obs.now = t("2026-11-24T02:00:00Z");
        lose_the_release(&mut w, released);
        ended_clean(&mut w, Phase::Failed);
        assert_eq!(w.image("connector"), "connector:1.0");
    }
}

#[test]
fn the_end_releases_only_what_this_very_upgrade_claimed_and_a_forged_release_is_not_believed() {
    let mut w = World::new(spec());
    // Written by hand into a running upgrade: it would keep the targets claimed after the end.
    w.obs.status.released_at = Some(w.obs.now);
    w.look();
    assert!(w.obs.status.released_at.is_none(), "only an ended upgrade has released");
    w.run_until(Duration::hours(3), |w| w.phase().is_terminal());
    // The same name, another upgrade (deleted and made again) claimed this one meanwhile.
    let t = w.target_mut("connector");
    t.owner_uid = Some("uid-2".into());
    w.look();
    assert!(w.obs.status.released_at.is_some());
    let t = w.target_mut("connector");
    assert_eq!(t.owner_uid.as_deref(), Some("uid-2"), "the other upgrade's claim is left alone");
    assert!(w.target_mut("connector-canary").owner.is_none(), "its own released");
}

/// With the status policy missing, a tenant can write a release into the status of an upgrade
/// that still marks its targets; deleted, it releases them all the same before its finalizer goes.
#[test]
fn a_deleted_upgrade_whose_status_claims_a_release_still_releases_what_it_marks() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    w.obs.status.phase = Phase::Failed;
    w.obs.status.released_at = Some(w.obs.now);
    w.obs.deleting = true;
    let d = w.step();
    assert!(matches!(d.effect, Some(Effect::Release { .. })), "{:?}", d.effect);
}

/// Kyverno's `verifyImages` with its defaults pins every image written to its digest, the
/// workloads' templates too: the operator's own change reads back as
/// `docker.io/library/connector:2.0@sha256:…`. It is its own change all the same (before, every
/// target read as changed by someone else and was let go).
#[test]
fn an_upgrade_whose_images_a_webhook_pins_to_their_digest_succeeds() {
    let mut w = World::new(spec());
    w.pinning = true;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(crate::image::runs(&w.image("connector"), "connector:2.0"), "{}", w.image("connector"));
    assert!(w.image("connector").starts_with("docker.io/library/connector:2.0@sha256:"));
    assert_eq!(w.image_sets().len(), 2, "nothing written twice: {:?}", w.image_sets());
}
