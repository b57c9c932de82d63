//! Transition tests: measuring the baseline before any change.

use super::super::test_world::*;

#[test]
fn closed_window_waits_and_the_baseline_ends_when_it_opens() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z"); // Tuesday 07:00 New York
    w.run_until(Duration::minutes(1), |w| w.phase() == Phase::WaitingForWindow);
    assert_eq!(w.claimed().len(), 2, "the targets are claimed while waiting");
    assert_eq!(
        w.events.iter().filter(|e| e.starts_with(reason::WINDOW_CLOSED)).count(),
        1,
        "the wait is announced once"
    );
    let next = w.obs.status.next_action.clone().unwrap();
    assert_eq!(next.at, Some(t("2026-11-25T02:50:00Z")), "baseline starts 10m before the 22:00 EST opening");
    assert_eq!(w.condition(ct::WINDOW_OPEN).status, "False");
    assert!(w.condition(ct::WINDOW_OPEN).message.contains("2026-11-25 03:00:00 UTC"));
    w.run_until(Duration::days(1), |w| !w.image_sets().is_empty());
    assert!(w.obs.status.changed_at.unwrap() >= t("2026-11-25T03:00:00Z"));
    assert!(w.obs.status.changed_at.unwrap() < t("2026-11-25T03:01:00Z"));
}

/// An outage (API server or operator down) that hides the whole baseline period leaves a live
/// baseline of the moments after it: the first change waits until the baseline covers the
/// period to observe again, rather than start with a baseline too short for any verdict.
#[test]
fn a_baseline_hidden_by_an_outage_is_measured_again_before_any_change() {
    let mut w = World::new(spec());
    let start = w.obs.now;
    // The pod watches listed again 11 minutes in: every read of the 10-minute baseline is blind.
    w.obs.pods_watched_since = Some(start + Duration::minutes(11));
    w.run_until(Duration::hours(2), |w| !w.image_sets().is_empty());
    let b = w.obs.status.analysis[0].baseline.clone().unwrap();
    assert!(b.observed_seconds >= 540.0, "the baseline covers the period to observe: {b:?}");
    assert!(b.attempts >= 900, "{b:?}");
    assert!(w.obs.status.changed_at.unwrap() >= start + Duration::minutes(20));
    assert!(
        w.events.iter().any(|e| e.contains("covers only")),
        "it says why the change waits: {:?}",
        w.events
    );
}

/// The same for an outage in the middle of the baseline: what the operator could not see is
/// measured again, after the period, before any change.
#[test]
fn a_baseline_partly_hidden_by_an_outage_is_measured_on_for_what_was_missed() {
    let mut w = World::new(spec());
    let start = w.obs.now;
    w.run_until(Duration::minutes(3), |w| w.obs.now >= start + Duration::minutes(3));
    // Down from 3 to 7 minutes in: the reads of that span are blind.
    w.obs.pods_watched_since = Some(start + Duration::minutes(7));
    w.run_until(Duration::hours(2), |w| !w.image_sets().is_empty());
    let b = w.obs.status.analysis[0].baseline.clone().unwrap();
    assert!(b.observed_seconds >= 540.0, "{b:?}");
    let changed = w.obs.status.changed_at.unwrap();
    assert!(changed >= start + Duration::minutes(13), "{changed}");
    assert!(w.events.iter().any(|e| e.contains("covers only")), "{:?}", w.events);
}

/// Without an outage the baseline ends when it was planned to: nothing is measured again.
#[test]
fn a_baseline_seen_whole_is_not_measured_again() {
    let mut w = World::new(spec());
    let start = w.obs.now;
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    assert!(w.obs.status.changed_at.unwrap() < start + Duration::minutes(12));
    assert!(!w.events.iter().any(|e| e.contains("covers only")), "{:?}", w.events);
}

#[test]
fn a_builtin_signal_recorded_long_enough_is_not_observed_again_before_the_first_change() {
    // Three days recorded, the window open: the recording is the baseline, so the canary starts
    // without first observing the signal live for `observe` (10 minutes here).
    let mut w = World::new(spec());
    w.recorded_minutes = 3 * 24 * 60;
    let start = w.obs.now;
    w.run_until(Duration::hours(1), |w| w.obs.status.changed_at.is_some());
    let waited = w.obs.status.changed_at.unwrap() - start;
    assert!(waited < Duration::minutes(5), "waited {waited} before the first change: {:?}", w.events);
    assert!(w.obs.status.analysis[0].baseline.as_ref().unwrap().recorded);
    // Five minutes recorded tell less than the live observation: it is observed, as before.
    let mut w = World::new(spec());
    w.recorded_minutes = 5;
    let start = w.obs.now;
    w.run_until(Duration::hours(1), |w| w.obs.status.changed_at.is_some());
    assert!(w.obs.status.changed_at.unwrap() - start >= Duration::minutes(10));
}

/// A baseline measured while the cluster itself failed (a control plane catching up after an
/// outage, most pods left pending) leaves no room above it: even the lowest rate it may
/// plausibly have, times the smallest increase acted on, is past every attempt failing, so no
/// regression could be told. Changing on it would leave the upgrade unjudged: the change waits,
/// says why, and the baseline is measured again.
#[test]
fn a_live_baseline_that_leaves_no_room_is_measured_again_before_any_change() {
    let mut w = World::new(spec());
    let start = w.obs.now;
    w.error_rate = Box::new(move |w| if w.obs.now < start + Duration::minutes(10) { 0.6 } else { 0.01 });
    // Blocked, saying what was found and what happens next, all the while it is measured again.
    w.run_until(Duration::minutes(20), |w| w.obs.now >= start + Duration::minutes(15));
    let blocked = w.condition(ct::BLOCKED).clone();
    assert_eq!((blocked.status.as_str(), blocked.reason.as_str()), ("True", reason::BASELINE_NO_ROOM));
    assert!(blocked.message.contains("measuring it again until"), "{}", blocked.message);
    assert_eq!(w.obs.status.message, blocked.message);
    w.run_until(Duration::hours(2), |w| !w.image_sets().is_empty());
    assert_eq!(w.condition(ct::BLOCKED).status, "False");
    let changed = w.obs.status.changed_at.unwrap();
    assert!(changed >= start + Duration::minutes(20), "{changed}: {:?}", w.events);
    let b = w.obs.status.analysis[0].baseline.clone().unwrap();
    assert!(b.rate < 0.05, "judged on the baseline measured again: {b:?}");
    let said: Vec<&String> = w.events.iter().filter(|e| e.starts_with(reason::BASELINE_NO_ROOM)).collect();
    assert_eq!(said.len(), 1, "{:?}", w.events);
    assert!(said[0].contains("measuring it again"), "{said:?}");
    // Then judged as usual: a regression on the canary is caught on the new baseline.
    w.error_rate = Box::new(|_| 0.2);
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{:?}", w.events);
}

/// A baseline that is high only by chance (two failures of ten attempts) is thin, not full: the
/// lowest rate it may have leaves room, so nothing waits for it (its limit is said as before).
#[test]
fn a_thin_baseline_is_not_taken_for_one_without_room() {
    let mut w = World::new(spec());
    w.attempts_per_minute = 1;
    w.error_rate = Box::new(|_| 0.2);
    let start = w.obs.now;
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    assert!(w.obs.status.changed_at.unwrap() < start + Duration::minutes(12));
    assert!(!w.events.iter().any(|e| e.starts_with(reason::BASELINE_NO_ROOM)), "{:?}", w.events);
}

/// A baseline read from history that leaves no room cannot be measured again by waiting
/// `observe`: the upgrade is Blocked, says so once, reads the history again on each look, and
/// goes on once the history leaves room.
#[test]
fn a_baseline_from_history_without_room_blocks_the_change_until_it_leaves_room() {
    let mut w = World::new(spec_with_history());
    let start = w.obs.now;
    w.error_rate = Box::new(|_| 0.7);
    w.run_until(Duration::hours(1), |w| w.obs.now >= start + Duration::hours(1));
    assert!(w.image_sets().is_empty(), "nothing changes on it: {:?}", w.events);
    assert_eq!(w.phase(), Phase::MeasuringBaseline);
    let blocked = w.condition(ct::BLOCKED).clone();
    assert_eq!((blocked.status.as_str(), blocked.reason.as_str()), ("True", reason::BASELINE_NO_ROOM));
    assert!(blocked.message.contains("scheduling-errors"), "{}", blocked.message);
    assert!(w.obs.status.message.contains("history"), "{}", w.obs.status.message);
    // A read of the history that fails keeps the block: the baseline found is kept.
    w.prometheus_down = true;
    w.run_until(Duration::minutes(30), |w| w.obs.now >= start + Duration::minutes(90));
    assert!(w.image_sets().is_empty());
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::BASELINE_NO_ROOM);
    w.prometheus_down = false;
    let said = w.events.iter().filter(|e| e.starts_with(reason::BASELINE_NO_ROOM)).count();
    assert_eq!(said, 1, "said once: {:?}", w.events);
    w.error_rate = Box::new(|_| 0.01);
    w.run_until(Duration::minutes(10), |w| !w.image_sets().is_empty());
    assert!(!w.image_sets().is_empty(), "{:?}", w.events);
    assert_eq!(w.condition(ct::BLOCKED).status, "False");
}

/// The failures that filled a signal's baseline filled its canary's copy too (the copy counts
/// the canary's nodes of the same cluster): both are measured again, though the copy's own
/// baseline, of fewer pods, is too thin to be found without room on its own.
#[test]
fn a_signal_measured_again_takes_its_canarys_copy_with_it() {
    let mut w = World::new(canary_spec(Portion::Count(2), None));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    // 12 pods a minute, 4 of them on the canary's nodes, where a quarter failed (10 of 40:
    // at least 8 % allowing for chance, which leaves room), and half of the rest.
    w.attempts_per_minute = 12;
    let start = w.obs.now;
    let failing =
        move |w: &World, rate: f64| if w.obs.now < start + Duration::minutes(10) { rate } else { 0.01 };
    w.error_rate = Box::new(move |w| failing(w, 0.6));
    w.canary_error_rate = Some(Box::new(move |w| failing(w, 0.3)));
    w.run_until(Duration::hours(2), |w| w.obs.status.changed_at.is_some());
    assert!(w.obs.status.changed_at.unwrap() >= start + Duration::minutes(20), "{:?}", w.events);
    for a in &w.obs.status.analysis {
        let b = a.baseline.as_ref().unwrap_or_else(|| panic!("{a:?}"));
        assert!(b.rate < 0.1, "{}: measured again: {b:?}", a.name);
    }
    assert!(w.obs.status.analysis.iter().any(|a| a.name.ends_with("@canary")));
}
