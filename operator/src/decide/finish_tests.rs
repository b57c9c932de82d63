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
