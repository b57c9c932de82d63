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

/// A change the API server keeps refusing is said in Blocked, on the status decided from (the
/// decision cannot be: what it says was done was not), once, not at every retry.
#[test]
fn a_refused_change_is_said_in_blocked_once() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let written = w.obs.status.clone();
    let now = w.obs.now;
    let doing = "rolling back: signal pod-start-failures regressed";
    let refused = "failed to patch DaemonSet kube-system/connector: the image is not allowed (HTTP 403)";
    let st = crate::decide::refused_status(&written, doing, refused, now, Some(1)).unwrap();
    let b = st.conditions.iter().find(|c| c.type_ == ct::BLOCKED).unwrap();
    assert_eq!((b.status.as_str(), b.reason.as_str()), ("True", reason::ACTION_FAILED));
    assert!(b.message.starts_with(doing) && b.message.contains("HTTP 403"), "{}", b.message);
    assert!(b.message.contains("needs a human"), "{}", b.message);
    assert_eq!(b.last_transition_time, now);
    assert_eq!(st.stages, written.stages, "nothing else said");
    assert_eq!(st.conditions.len(), written.conditions.len());
    let later = now + Duration::minutes(1);
    assert!(crate::decide::refused_status(&st, doing, refused, later, Some(1)).is_none(), "said once");
    assert!(crate::decide::refused_status(&st, "rolling back: more", refused, later, Some(1)).is_none());
    let other = crate::decide::refused_status(&st, doing, "another refusal", later, Some(1)).unwrap();
    let b = other.conditions.iter().find(|c| c.type_ == ct::BLOCKED).unwrap();
    assert_eq!(b.last_transition_time, now, "blocked since the first refusal");
    let long = "x".repeat(100_000);
    let st = crate::decide::refused_status(&written, doing, &long, now, Some(1)).unwrap();
    assert!(st.conditions.iter().all(|c| c.message.len() < 2_000));
}

/// The status a refusal is said on is the latest decision (the one whose effects went
/// through), not only the last written: decisions kept in memory are not lost, and a first
/// claim refused before anything was written is said too.
#[test]
fn a_refusal_is_said_on_a_status_with_nothing_written_yet() {
    let st = crate::decide::refused_status(
        &MaintenanceUpgradeStatus::default(),
        "claiming its targets",
        "failed to patch DaemonSet kube-system/connector: forbidden (HTTP 403)",
        t("2026-11-24T10:00:00Z"),
        Some(1),
    )
    .unwrap();
    let b = st.conditions.iter().find(|c| c.type_ == ct::BLOCKED).unwrap();
    assert_eq!(b.reason, reason::ACTION_FAILED);
}

/// A rollback decided but held (automatic rollback off) is not "no rollback": RolledBack says
/// why it waits, and Blocked that a human must act; one that waits for the window is not blocked.
#[test]
fn a_held_rollback_is_said_by_its_conditions() {
    let mut s = spec_with_history();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.01);
    w.run_until(Duration::hours(30), |w| w.phase() == Phase::Degraded);
    w.step();
    let rolled_back = w.condition(ct::ROLLED_BACK);
    assert_eq!(
        (rolled_back.status.as_str(), rolled_back.reason.as_str()),
        ("False", reason::AUTOMATIC_ROLLBACK_DISABLED)
    );
    assert!(rolled_back.message.contains("spec.rollback.requested"), "{}", rolled_back.message);
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(
        (blocked.status.as_str(), blocked.reason.as_str()),
        ("True", reason::AUTOMATIC_ROLLBACK_DISABLED)
    );
}

/// An ended upgrade is looked at no more: it keeps no WindowOpen, which would say "open until"
/// a time long past.
#[test]
fn an_ended_upgrade_says_nothing_of_the_window() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z");
    w.run_until(Duration::days(3), |w| w.obs.status.conditions.iter().any(|c| c.type_ == ct::WINDOW_OPEN));
    w.run_until(Duration::days(10), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(
        w.obs.status.conditions.iter().all(|c| c.type_ != ct::WINDOW_OPEN),
        "{:?}",
        w.obs.status.conditions
    );
}
