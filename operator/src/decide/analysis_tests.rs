//! Transition tests: signal reads, verdicts and blind spans.

use super::super::test_world::*;

#[test]
fn inconclusive_analysis_neither_promotes_nor_reverts() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.prometheus_down = true;
    let soak_end = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(3), |w| w.obs.now > soak_end + Duration::hours(1));
    assert_eq!(w.phase(), Phase::Soaking);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking);
    assert!(w.obs.status.rollback.is_none());
    assert!(w.obs.status.message.contains("no conclusive verdict"), "{}", w.obs.status.message);
    assert_eq!(w.condition(ct::HEALTHY).status, "Unknown");
    assert!(w.condition(ct::HEALTHY).message.contains("connection refused"));
    // Back: the missed span is read in one go and the upgrade goes on.
    w.prometheus_down = false;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn building_evidence_extends_the_soak_until_it_clears() {
    let mut s = spec_with_history();
    s.stages[0].soak = Duration_("1h");
    let mut w = World::new(s);
    // The canary runs hot for 50 minutes after its change (not long enough to be a regression),
    // then settles.
    w.error_rate = Box::new(|w: &World| {
        let applied = w.obs.status.stages.first().and_then(|s| s.components[0].applied_at);
        if applied.is_some_and(|at| w.obs.now - at < Duration::minutes(50)) { 0.025 } else { 0.01 }
    });
    w.run_until(Duration::hours(1), |w| {
        w.obs.status.stages.first().is_some_and(|s| s.soak_ends_at.is_some())
    });
    let soak_end = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(2), |w| w.obs.now > soak_end + Duration::minutes(1));
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking, "not promoted at the end of the soak");
    assert!(w.obs.status.message.contains("extended"), "{}", w.obs.status.message);
    assert_eq!(w.obs.status.analysis[0].verdict, Verdict::Suspect);
    assert_eq!(w.condition(ct::HEALTHY).status, "Unknown");
    assert_eq!(w.condition(ct::HEALTHY).reason, reason::SUSPECTED);
    assert!(
        w.condition(ct::HEALTHY).message.contains("not promoting until"),
        "{}",
        w.condition(ct::HEALTHY).message
    );
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::SUSPECTED)).count(), 1);
    // The evidence fades: promoted, and the upgrade completes.
    w.run_until(Duration::hours(4), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(w.events.iter().any(|e| e.starts_with(reason::SUSPICION_CLEARED)));
}

#[test]
fn a_span_the_operator_could_not_see_is_not_judged() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let before = w.obs.status.analysis[0].detector.clone();
    // The API server is down for ten minutes and pods pile up Pending: the first read after it
    // spans the whole gap and would show a burst of failures.
    w.error_rate = Box::new(|_| 0.9);
    w.obs.now += Duration::minutes(10);
    w.obs.pods_watched_since = Some(w.obs.now);
    w.step();
    let a = &w.obs.status.analysis[0];
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(a.reason.contains("not judged"), "{}", a.reason);
    assert_eq!(a.detector, before, "the detector did not see the gap");
    assert!(w.obs.status.rollback.is_none());
    // Pods created just before the operator could read again are still in the next cohorts
    // (judged 5 minutes after creation): those reads are not judged either.
    let resume = a.unjudged_until.unwrap();
    w.run_until(Duration::minutes(4), |w| w.obs.now >= resume - Duration::minutes(1));
    assert_eq!(w.obs.status.analysis[0].detector, before);
    assert!(w.obs.status.rollback.is_none());
    // Afterwards the cluster is healthy again and the upgrade goes on.
    w.error_rate = Box::new(|_| 0.01);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn a_recording_that_appears_while_the_baseline_is_observed_live_replaces_it() {
    // A scope named for the first time: nothing recorded when the baseline period begins, then
    // the recorder counts back three hours from the pod watch.
    let mut w = World::new(spec());
    w.run_until(Duration::minutes(5), |w| {
        w.obs.status.analysis.first().is_some_and(|a| a.baseline.is_some())
    });
    assert!(!w.obs.status.analysis[0].baseline.as_ref().unwrap().recorded, "observed live meanwhile");
    w.recorded_minutes = 3 * 60;
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let a = &w.obs.status.analysis[0];
    let b = a.baseline.as_ref().unwrap();
    assert!(b.recorded, "{}", a.reason);
    assert_eq!(b.attempts, 3 * 60 * 100, "the recording alone, the live minutes dropped");
}

#[test]
fn the_builtin_signal_rests_on_what_the_operator_recorded_when_there_is_enough() {
    // Three days recorded: the baseline is the recording, and the live reads before the change
    // do not add to it.
    let mut w = World::new(spec());
    w.recorded_minutes = 3 * 24 * 60;
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let a = &w.obs.status.analysis[0];
    let b = a.baseline.as_ref().unwrap();
    assert!(b.recorded);
    assert_eq!(b.attempts, 3 * 24 * 60 * 100, "the recording alone");
    assert_eq!(
        a.baseline_limit.as_deref(),
        Some(
            "baseline from 3days: increases below 2.2x cannot be told from time-of-day variation and noise; look back 7days or more to act on 1.7x"
        ),
        "three days learn the hours of the day, but not yet the week"
    );
    // Five minutes recorded tell less than the 10-minute live observation: observed live.
    let mut w = World::new(spec());
    w.recorded_minutes = 5;
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let a = &w.obs.status.analysis[0];
    assert!(!a.baseline.as_ref().unwrap().recorded);
    assert!(
        a.baseline_limit.as_deref().unwrap().starts_with("baseline from 10m: increases below 5.4x"),
        "{:?}",
        a.baseline_limit
    );
    // Ten minutes at 1 % rest on about ten failures: the rate itself may be twice what they
    // measured, and the regression acted on is that much higher again; the words say so.
    assert!(
        a.baseline_limit.as_deref().unwrap().contains("the rate itself is uncertain (it may be up to 2."),
        "{:?}",
        a.baseline_limit
    );
    assert!(w.events.iter().any(|e| e.starts_with(reason::BASELINE_LIMIT)), "{:?}", w.events);
}

#[test]
fn a_read_of_several_intervals_starts_its_bucket_where_looks_every_interval_would_have() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| {
        w.phase() == Phase::Soaking
            && w.obs
                .status
                .analysis
                .first()
                .is_some_and(|a| a.soak.is_some() && a.detector.bucket_from.is_none())
    });
    // A bucket just closed; then the operator was away for five minutes (a restart, a new
    // leader), and its next look reads them at once.
    let seen_until = w.obs.status.analysis[0].last.as_ref().and_then(|l| l.to).unwrap();
    w.obs.now += Duration::minutes(5);
    w.step();
    let a = &w.obs.status.analysis[0];
    assert_eq!(a.last.as_ref().and_then(|l| l.from), Some(seen_until), "the gap is read in one go");
    assert_eq!(
        a.detector.bucket_from,
        Some(seen_until + Duration::minutes(1)),
        "the bucket starts at the end of the gap's first interval, so it does not stretch by the gap"
    );
}

#[test]
fn a_failed_read_is_tried_again_an_interval_later_not_at_once() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.prometheus_down = true;
    w.obs.now += Duration::minutes(1);
    let d = w.step();
    assert!(
        w.obs.status.analysis[0].reason.contains("could not read"),
        "{}",
        w.obs.status.analysis[0].reason
    );
    let again = d.requeue_after.unwrap();
    assert!(again >= Duration::seconds(59), "looked at again after {again}, not an interval");
    assert!(analysis_due(&w.obs.spec, &w.obs.status, w.obs.now + Duration::seconds(30), None).is_empty());
    assert!(!analysis_due(&w.obs.spec, &w.obs.status, w.obs.now + Duration::minutes(1), None).is_empty());
}

#[test]
fn a_query_prometheus_refuses_blocks_the_upgrade_until_the_spec_is_fixed() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.query_refused = true;
    let soak_end = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(3), |w| w.obs.now > soak_end + Duration::hours(1));
    // Said once, as what to fix: reading again every interval cannot help.
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!((blocked.status.as_str(), blocked.reason.as_str()), ("True", reason::INVALID_SPEC));
    assert!(blocked.message.contains("signal scheduling-errors: Prometheus at"), "{}", blocked.message);
    assert!(blocked.message.contains("fix the query"), "{}", blocked.message);
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::INVALID_SPEC)).count(), 1, "{:?}", w.events);
    let a = &w.obs.status.analysis[0];
    assert!(a.unreadable.is_some());
    assert!(a.reason.contains("cannot be read until"), "{}", a.reason);
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking, "never promoted on an unreadable signal");
    assert!(w.obs.status.rollback.is_none());
    // Fixed: the next read succeeds, the block lifts and the upgrade goes on.
    w.query_refused = false;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
    assert!(w.obs.status.analysis[0].unreadable.is_none());
}

/// A query refused while a stage rolls out holds the upgrade; a rollout that finishes meanwhile
/// is not "failed" at the progress deadline (the hold is not the rollout's doing).
#[test]
fn a_query_refused_while_a_stage_rolls_out_holds_it_without_a_rollback() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(4), |w| {
        w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::RollingOut)
    });
    w.query_refused = true;
    let started = w.obs.status.stages[1].started_at.unwrap();
    w.run_until(Duration::hours(1), |w| w.obs.now > started + Duration::minutes(30));
    assert!(w.obs.status.rollback.is_none(), "{:?}", w.obs.status.rollback);
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    w.query_refused = false;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

/// The fleet stage rolls out and never finishes; Prometheus then refuses the query.
fn fleet_stuck_and_query_refused(spec: MaintenanceUpgradeSpec) -> World {
    let mut w = World::new(spec);
    w.run_until(Duration::hours(4), |w| {
        w.obs.status.stages.first().is_some_and(|s| s.phase == StagePhase::Soaking)
    });
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| {
        w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::RollingOut)
    });
    w.query_refused = true;
    w
}

/// A rollout that does not finish while the query is refused is still reverted at its
/// deadline, and the rollback says what held the upgrade.
#[test]
fn a_stuck_rollout_held_by_a_refused_query_is_reverted_and_says_so() {
    let mut w = fleet_stuck_and_query_refused(spec_with_history());
    w.run_until(Duration::hours(1), |w| w.obs.status.rollback.is_some());
    let r = w.obs.status.rollback.clone().unwrap();
    assert_eq!(r.reason, reason::ROLLOUT_FAILED);
    assert!(r.message.contains("did not roll out within its progress deadline"), "{}", r.message);
    assert!(r.message.contains("while the upgrade was held: the spec cannot be used"), "{}", r.message);
}

/// With automatic rollback off, a rollout failed at its deadline is said (Degraded) and waits
/// for a human: finishing late while a spec problem holds the upgrade does not take that back.
#[test]
fn a_failed_rollout_said_to_a_human_is_not_taken_back_when_it_finishes_late() {
    let mut spec = spec_with_history();
    spec.rollback.automatic = false;
    let mut w = fleet_stuck_and_query_refused(spec);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Degraded);
    assert!(w.obs.status.message.contains("did not roll out"), "{}", w.obs.status.message);
    let now = w.obs.now;
    for done in w.rollouts.values_mut() {
        *done = Some(now);
    }
    // The query is fixed too: still nothing happens until a human asks for the rollback.
    w.query_refused = false;
    let later = now + Duration::hours(3);
    w.run_until(Duration::hours(4), |w| w.obs.now >= later);
    assert_eq!(w.phase(), Phase::Degraded, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::RollingOut, "not soaked, not promoted");
}

#[test]
fn a_baseline_history_prometheus_refuses_blocks_before_anything_changes() {
    let mut w = World::new(spec_with_history());
    w.query_refused = true;
    w.run_until(Duration::hours(1), |w| {
        w.obs.status.conditions.iter().any(|c| c.type_ == ct::BLOCKED && c.status == "True")
    });
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    assert!(
        w.obs.status.analysis[0].reason.contains("cannot be read until"),
        "{}",
        w.obs.status.analysis[0].reason
    );
    w.run_until(Duration::hours(3), |w| w.obs.now > t("2026-11-24T05:00:00Z"));
    assert!(w.image_sets().is_empty(), "nothing changes on a signal that cannot be read");
    w.query_refused = false;
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn a_prometheus_that_is_down_is_waited_for_not_blocked_on() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.prometheus_down = true;
    w.run_until(Duration::hours(1), |w| w.obs.status.analysis[0].reason.contains("could not read"));
    assert_eq!(w.condition(ct::BLOCKED).status, "False");
    assert!(w.obs.status.analysis[0].unreadable.is_none());
}

#[test]
fn a_built_in_signal_the_operator_does_not_record_is_observed_live_not_blocked_on() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    assert!(w.obs.status.analysis[0].unreadable.is_none());
    assert!(!w.events.iter().any(|e| e.starts_with(reason::INVALID_SPEC)), "{:?}", w.events);
}

#[test]
fn a_signal_taken_out_of_the_spec_holds_nothing_any_more() {
    let mut s = spec_with_history();
    s.analysis.signals.push(Signal {
        name: "pods".into(),
        kubernetes: Some(KubernetesSignal::default()),
        prometheus: None,
        regression: RegressionRule::default(),
    });
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    // Suspect when it is taken out: no read revisits it, and it would extend the soak for ever.
    let a = w.obs.status.analysis.iter_mut().find(|a| a.name == "pods").unwrap();
    a.verdict = Verdict::Suspect;
    a.detector.suspect_since = Some(w.obs.now);
    let pods = w.obs.spec.analysis.signals.pop().unwrap();
    w.run_until(Duration::hours(6), |w| soaking(w, 1));
    let entry = |w: &World| w.obs.status.analysis.iter().find(|a| a.name == "pods").cloned().unwrap();
    assert!(entry(&w).retired(), "{:?}", entry(&w));
    // Put back (a GitOps revert), it goes on from its baseline, and is judged again.
    w.obs.spec.analysis.signals.push(pods);
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(!entry(&w).retired() && entry(&w).baseline.is_some(), "{:?}", entry(&w));
    assert_eq!(entry(&w).verdict, Verdict::Pass);
    let healthy = w.obs.status.conditions.iter().find(|c| c.type_ == ct::HEALTHY).unwrap();
    assert_eq!(healthy.status, "True", "{}", healthy.message);
}

#[test]
fn a_signal_redefined_after_the_change_is_not_judged_against_the_old_baseline() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    // The query now counts something else, which fails far more often: against the old query's
    // baseline that would be a regression, and a rollback nothing caused.
    fn query(w: &mut World) -> &mut String {
        &mut w.obs.spec.analysis.signals[0].prometheus.as_mut().unwrap().errors
    }
    *query(&mut w) = "other_errors".into();
    w.error_rate = Box::new(|_| 0.3);
    let until = w.obs.now + Duration::hours(3);
    w.run_until(Duration::hours(4), |w| w.obs.now >= until);
    assert_eq!(w.phase(), Phase::Soaking, "{}", w.obs.status.message);
    assert_eq!(w.image("connector"), "connector:1.0", "the next stage waits");
    let a = &w.obs.status.analysis[0];
    assert!(a.reason.contains("were changed after the first change"), "{}", a.reason);
    // Put back, it is judged again, and the upgrade goes on.
    *query(&mut w) = "errors".into();
    w.error_rate = Box::new(|_| 0.01);
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

#[test]
fn a_signal_redefined_before_the_change_has_its_baseline_measured_again() {
    let mut w = World::new(spec());
    w.run_until(Duration::minutes(30), |w| {
        w.phase() == Phase::MeasuringBaseline && w.obs.status.analysis.iter().any(|a| a.baseline.is_some())
    });
    let before = w.obs.status.analysis[0].clone();
    w.obs.spec.analysis.signals = builtin_selecting("app=connector");
    w.obs.now += Duration::seconds(30);
    w.step();
    // Measured again from this look on: the reads of the new selector, not those before.
    let a = &w.obs.status.analysis[0];
    assert_ne!(a.definition, before.definition);
    let start = |a: &SignalStatus| a.baseline.as_ref().and_then(|b| b.from);
    assert!(start(a) >= before.sampled_to && start(a) > start(&before), "{:?}", a.baseline);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

#[test]
fn pieces_from_before_the_change_read_after_it_are_not_the_soaks() {
    // A new leader started the stage while its reads were still behind: the pieces it then
    // reads are from before the change, when something else failed a lot. They are neither the
    // soak's (no rollback for what the change did not do) nor the baseline's.
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(1), |w| w.obs.status.changed_at.is_some());
    let changed = w.obs.status.changed_at.unwrap();
    w.obs.status.analysis[0].sampled_to = Some(changed - Duration::hours(2));
    w.error_rate = Box::new(move |w: &World| {
        let from = w.obs.status.analysis[0].sampled_to.unwrap();
        if from < changed { 0.9 } else { 0.01 }
    });
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

#[test]
fn a_signal_is_behind_on_reads_past_two_intervals_or_past_its_bucket() {
    let mut s = builtin_selecting("app=connector").remove(0);
    let now = Utc::now();
    let minutes = |m: i64| now - Duration::minutes(m);
    // The defaults: a 10-minute bucket, read every minute: two intervals behind is behind.
    assert!(!super::behind_on_reads(&s, minutes(1), now, Duration::minutes(1)));
    assert!(super::behind_on_reads(&s, minutes(2), now, Duration::minutes(1)));
    // Read every 8 minutes into 10-minute buckets: 11 minutes behind is under two intervals but
    // more than a bucket, which the reads take in pieces, so the stage does not count it caught up.
    assert!(!super::behind_on_reads(&s, minutes(9), now, Duration::minutes(8)));
    assert!(super::behind_on_reads(&s, minutes(11), now, Duration::minutes(8)));
    s.regression.bucket = Some(Duration_("20m"));
    assert!(!super::behind_on_reads(&s, minutes(11), now, Duration::minutes(8)));
}
