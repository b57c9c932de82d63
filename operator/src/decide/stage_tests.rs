//! Transition tests: starting, rolling out, soaking and promoting stages.

use super::super::test_world::*;

#[test]
fn pause_holds_the_next_stage_but_not_the_rollback() {
    let mut s = spec();
    s.paused = true;
    let mut w = World::new(s);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Paused);
    assert!(w.image_sets().is_empty());
    assert!(w.obs.status.message.contains("spec.paused"));
    assert!(w.events.iter().any(|e| e.starts_with(reason::PAUSED)), "{:?}", w.events);
    w.obs.spec.paused = false;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.paused = true;
    w.error_rate = Box::new(|_| 0.2);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "a paused upgrade still reverts on a regression");
}

#[test]
fn exclusion_and_stage_that_does_not_fit_wait_for_the_next_window() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.exclusions.push(Exclusion {
        name: Some("thanksgiving".into()),
        start: t("2026-11-26T00:00:00Z"),
        end: t("2026-11-28T00:00:00Z"),
    });
    s.window = Some(win);
    s.stages[0].soak = Duration_("3h55m"); // the fleet stage would start 5 minutes before closing
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z");
    w.run_until(Duration::days(1), |w| {
        w.obs.status.stages.first().is_some_and(|s| s.phase == StagePhase::Passed)
    });
    assert_eq!(w.phase(), Phase::WaitingForWindow);
    assert!(w.obs.status.message.contains("closes at"), "{}", w.obs.status.message);
    // Thursday's window falls inside the exclusion: the next start is the following Tuesday.
    assert_eq!(w.obs.status.next_action.as_ref().unwrap().at, Some(t("2026-12-02T03:00:00Z")));
    w.run_until(Duration::days(10), |w| w.obs.status.stages[1].started_at.is_some());
    assert_eq!(
        w.obs.status.stages[1].started_at.map(|t| t.date_naive().to_string()),
        Some("2026-12-02".into())
    );
}

/// A stage whose progressDeadline is as long as the window starts on the look woken at the
/// opening, which runs a moment after it: the rollout may end that moment after the window.
#[test]
fn a_stage_as_long_as_its_window_starts_on_a_look_a_moment_after_the_opening() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    s.stages[0].soak = Duration_("3h55m"); // the fleet stage waits for Thursday's window
    s.stages[1].progress_deadline = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z");
    w.run_until(Duration::days(1), |w| {
        w.obs.status.stages.first().is_some_and(|s| s.phase == StagePhase::Passed)
    });
    assert_eq!(w.phase(), Phase::WaitingForWindow, "{}", w.obs.status.message);
    let opens = w.obs.status.next_action.as_ref().unwrap().at.unwrap();
    assert_eq!(opens, t("2026-11-27T03:00:00Z"));
    w.obs.now = opens + Duration::seconds(30);
    w.step();
    assert!(w.obs.status.stages[1].started_at.is_some(), "{}", w.obs.status.message);
}

#[test]
fn approval_gates_a_stage() {
    let mut s = spec();
    s.stages[1].require_approval = true;
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::AwaitingApproval);
    assert!(w.obs.status.message.contains("spec.approvedStages"));
    w.obs.now += Duration::hours(3);
    w.step();
    assert_eq!(w.image("connector"), "connector:1.0");
    w.obs.spec.approved_stages.push("fleet".into());
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn a_stage_is_promoted_only_on_a_read_after_it_rolled_out_whatever_its_soak() {
    // Reads two minutes apart and a fleet soak of one: the canary's last read is from before
    // the fleet changed when the fleet's soak ends, and the next judges pods from before it.
    let mut s = spec();
    s.analysis.interval = Duration_("2m");
    s.stages[1].soak = Duration_("1m");
    let mut w = World::new(s);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    // The built-in signal judges pods five minutes (its pendingLimit) after their creation: its
    // reads must reach pods created after the fleet's change.
    let rolled_out = w.obs.status.stages[1].rolled_out_at.unwrap();
    for a in &w.obs.status.analysis {
        let judged_to = a.sampled_to.unwrap() - Duration::minutes(5);
        assert!(judged_to > rolled_out, "{} judged up to {judged_to}, changed at {rolled_out}", a.name);
    }
}

#[test]
fn hours_the_operator_missed_are_read_piece_by_piece_not_judged_as_one_bucket() {
    // Down for two hours while the canary fails on nine pods of ten: read at once, those hours
    // would be one capped step of the statistic, and the soak, over meanwhile, would promote.
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    w.error_rate =
        Box::new(|w: &World| if w.image("connector-canary") == "connector:2.0" { 0.9 } else { 0.01 });
    w.obs.now += Duration::hours(2);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage never started");
    assert!(w.obs.status.stages[1].started_at.is_none());
}

#[test]
fn a_soak_that_ended_while_reads_were_missed_waits_for_them_all() {
    // Prometheus is away from just before the canary's soak ends until three hours after; the
    // canary broke ten minutes after its end. The first pieces read when it is back pass, and
    // reach the soak's end, but what follows is still to read: the fleet waits for it.
    let (mut w, ends) = away_across_the_canary_soak_end();
    w.prometheus_down = false;
    // The rate of the piece read now, by where it starts.
    w.error_rate = Box::new(move |w: &World| {
        let from = w.obs.status.analysis[0].sampled_to.unwrap();
        if from >= ends + Duration::minutes(10) { 0.9 } else { 0.01 }
    });
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert!(w.obs.status.stages[1].started_at.is_none(), "the fleet never started");
}

#[test]
fn what_prometheus_lost_while_away_is_passed_over_and_promotes_nothing() {
    // Prometheus is away across the end of the canary's soak and keeps no data of that time:
    // the pieces of it are passed over, and the stage waits for a read with data.
    let (mut w, _) = away_across_the_canary_soak_end();
    let back = w.obs.now;
    (w.prometheus_down, w.prometheus_lost_data) = (false, true);
    w.run_until(Duration::hours(1), |w| w.obs.status.stages[1].started_at.is_some());
    let last = w.obs.status.analysis[0].last.clone().unwrap();
    assert!(last.to.is_some_and(|t| t >= back), "promoted on a read with data after {back}: {last:?}");
    assert!(w.obs.status.analysis[0].verdict == Verdict::Pass);
}

/// Prometheus away from just before the canary's soak ends until three hours after: the world
/// as it comes back, and when the soak ended.
fn away_across_the_canary_soak_end() -> (World, DateTime<Utc>) {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    let ends = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(1), |w| w.obs.now >= ends - Duration::minutes(3));
    w.prometheus_down = true;
    w.run_until(Duration::hours(4), |w| w.obs.now >= ends + Duration::hours(3));
    (w, ends)
}

/// The soak's message says what follows it as the next stage's gates will have it: an approval
/// still missing, a pause, a window closed at the soak's end; never "stage fleet starts".
#[test]
fn a_soak_says_what_holds_the_next_stage() {
    let soaking_says = |s: MaintenanceUpgradeSpec, edit: &dyn Fn(&mut World)| {
        let mut w = World::new(s);
        w.obs.now = t("2026-11-24T12:00:00Z");
        w.run_until(Duration::days(1), |w| soaking(w, 0));
        edit(&mut w);
        w.step();
        w.obs.status.message.clone()
    };
    let mut approval = spec();
    approval.stages[1].require_approval = true;
    let said = soaking_says(approval, &|_| {});
    assert!(said.contains("stage fleet waits for approval in spec.approvedStages"), "{said}");
    let said = soaking_says(spec(), &|w| w.obs.spec.paused = true);
    assert!(said.contains("the upgrade pauses before stage fleet (spec.paused)"), "{said}");
    // Tuesday's window (22:00 New York) closes before the canary's soak of six hours ends.
    let mut windowed = spec();
    windowed.window = Some(tue_thu_window());
    windowed.stages[0].soak = Duration_("6h");
    let said = soaking_says(windowed, &|_| {});
    assert!(
        said.contains("stage fleet starts when the maintenance window opens at 2026-11-27 03:00:00 UTC"),
        "{said}"
    );
    let said = soaking_says(spec(), &|_| {});
    assert!(said.contains("if the signals hold, stage fleet starts;"), "{said}");
}

/// ... and a next stage whose progressDeadline does not fit in what is left of the window.
#[test]
fn a_soak_ending_too_late_in_its_window_says_the_next_stage_waits_for_the_next_one() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    s.stages[0].soak = Duration_("3h");
    s.stages[1].progress_deadline = Duration_("2h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z");
    w.run_until(Duration::days(1), |w| soaking(w, 0));
    w.step();
    let said = &w.obs.status.message;
    assert!(said.contains("stage fleet starts in the next window (its progressDeadline of 2h"), "{said}");
}
