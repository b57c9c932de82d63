//! Transition tests: which decisions are written, and that deciding again from the written
//! status alone (a follower taking over) ends the same way.

use super::super::test_world::*;
use std::collections::BTreeMap as Map;

#[test]
fn a_quiet_soak_is_written_once_a_bucket_not_once_an_interval() {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    let (writes, from) = (w.writes, w.obs.now);
    w.run_until(Duration::hours(2), |w| w.obs.now >= from + Duration::minutes(100));
    // 100 one-minute looks; the detector's buckets are 10 minutes long.
    let soak_writes = w.writes - writes;
    assert!((9..=12).contains(&soak_writes), "{soak_writes} writes in 100 minutes of soak");
    // What is written always says the same as what was decided, but for the running numbers.
    let written = w.written.clone().unwrap();
    assert_eq!(written.phase, w.obs.status.phase);
    assert_eq!(written.message, w.obs.status.message);
    assert_eq!(written.analysis[0].verdict, w.obs.status.analysis[0].verdict);
}

#[test]
fn every_transition_and_every_event_is_written() {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.001);
    let mut phases = vec![];
    let mut chained = false;
    while !terminal(&w) {
        let d = w.step();
        let changed = !d.events.is_empty() || d.effect.is_some() || phases.last() != Some(&d.status.phase);
        // A target change the next look follows at once is written with that look.
        let at_once = d.effect.is_some() && d.requeue_after.is_some_and(|r| r <= Duration::seconds(1));
        if (changed || chained) && !at_once {
            assert_eq!(w.written.as_ref(), Some(&d.status), "a transition was not written");
        }
        chained = at_once;
        phases.push(d.status.phase);
        w.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
        assert!(w.obs.now < t("2026-11-24T08:00:00Z"), "{}", w.obs.status.message);
    }
    assert_eq!(w.phase(), Phase::RolledBack);
}

/// Run to the end, handing over to a warm follower (which only has the written status) every
/// `every` minutes; the effects and Events it produced.
fn with_failovers(
    error_rate: Box<dyn Fn(&World) -> f64>,
    every: i64,
) -> (Phase, Vec<Effect>, Map<String, usize>) {
    let mut s = spec_with_history();
    s.stages[0].soak = Duration_("2h");
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = error_rate;
    let mut next_failover = w.obs.now + Duration::minutes(every);
    while !terminal(&w) {
        if every > 0 && w.obs.now >= next_failover {
            w.fail_over();
            next_failover = w.obs.now + Duration::minutes(every);
        }
        let d = w.step();
        w.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
        assert!(w.obs.now < t("2026-11-24T12:00:00Z"), "{}", w.obs.status.message);
    }
    let mut reasons = Map::new();
    for e in &w.events {
        *reasons.entry(e.split(':').next().unwrap().to_string()).or_default() += 1;
    }
    (w.phase(), w.effects.clone(), reasons)
}

#[test]
fn a_follower_deciding_from_the_written_status_repeats_and_loses_nothing() {
    let rate = |creeping: bool| -> Box<dyn Fn(&World) -> f64> {
        if creeping { creeping_after("connector", 0.002) } else { Box::new(|_| 0.01) }
    };
    for creeping in [false, true] {
        let alone = with_failovers(rate(creeping), 0);
        let handed_over = with_failovers(rate(creeping), 7);
        let want = if creeping { Phase::RolledBack } else { Phase::Succeeded };
        assert_eq!(alone.0, want);
        assert_eq!(handed_over.0, want, "creeping {creeping}: the same outcome");
        assert_eq!(alone.1, handed_over.1, "creeping {creeping}: the same target changes, none repeated");
        assert_eq!(alone.2, handed_over.2, "creeping {creeping}: the same Events, none repeated");
    }
}

#[test]
fn a_rollback_is_written_with_its_first_revert_so_that_a_follower_keeps_its_reason() {
    // The leader stops right after the first revert's write: the follower decides from what
    // was written, and must go on with the same rollback, not start one for a target it finds
    // back on its known-good image (which a window could hold half done).
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(3), |w| w.image_sets().len() == 2);
    w.fail_over();
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::REGRESSION);
}

#[test]
fn reading_what_the_looks_missed_writes_the_status_once_caught_up_not_every_piece() {
    let mut s = spec_with_history();
    s.stages[0].soak = Duration_("6h");
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    w.prometheus_down = true;
    let back = w.obs.now + Duration::hours(1);
    w.run_until(Duration::hours(2), |w| w.obs.now >= back);
    w.prometheus_down = false;
    let (writes, looks) = (w.writes, w.effects.len());
    let caught_up =
        |w: &World| w.obs.status.analysis[0].sampled_to.is_some_and(|t| w.obs.now - t < Duration::minutes(2));
    let mut pieces = 0;
    while !caught_up(&w) {
        w.look();
        pieces += 1;
        assert!(pieces < 200, "never caught up");
    }
    assert!(pieces >= 30, "read piece by piece: {pieces}");
    assert!(w.writes - writes <= 2, "{} writes for {pieces} pieces", w.writes - writes);
    assert_eq!(w.effects.len(), looks);
}

/// The first change is written with it: a live baseline is complete then, and a follower that
/// found the change on the target could not measure the minutes before it again (it judged
/// the soak against the baseline of the last write, as short as one read).
#[test]
fn the_first_change_is_written_with_its_complete_baseline() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.image_sets().len() == 1);
    w.fail_over();
    w.run_until(Duration::hours(1), |w| w.obs.status.stages[0].phase == StagePhase::Soaking);
    let b = w.obs.status.analysis[0].baseline.as_ref().unwrap();
    assert!(b.observed_seconds >= 600.0, "{}", b.observed_seconds);
}
