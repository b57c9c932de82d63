//! Transition tests: conditions and what happens next.

use super::super::test_world::*;

#[test]
fn status_says_what_happens_next() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.step();
    let next = w.obs.status.next_action.clone().unwrap();
    assert_eq!(next.summary, "end the soak of stage canary");
    assert_eq!(next.at, w.obs.status.stages[0].soak_ends_at);
    assert!(w.obs.status.message.contains("stage fleet starts"), "{}", w.obs.status.message);
    assert_eq!(w.obs.status.current_stage.as_deref(), Some("canary"));
    assert_eq!(w.obs.status.observed_generation, Some(1));
    let _ = OWNER_ANNOTATION;
}
