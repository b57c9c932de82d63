use super::*;
use crate::crd::RegressionRule;
use chrono::Duration;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn minutes(n: i64, f: impl Fn(i64) -> (u64, u64)) -> Vec<(DateTime<Utc>, Counts)> {
    (0..n)
        .map(|i| {
            let (a, e) = f(i);
            (t0() + Duration::minutes(i), Counts { attempts: a, errors: e })
        })
        .collect()
}

fn detector() -> Cusum {
    Cusum::from_rule(&RegressionRule::default())
}

/// Run the soak minute by minute after a baseline; the minute of the first regression.
fn first_regression(baseline: &BaselineStatus, soak: &[(DateTime<Utc>, Counts)]) -> Option<usize> {
    let d = detector();
    let mut s = DetectorState::default();
    soak.iter().position(|(t, c)| d.update(&mut s, baseline, *t, *c).verdict == Verdict::Regression)
}

#[test]
fn baseline_is_robust_to_an_incident_inside_it() {
    // 1 % for a day, with a 2-hour incident at 30 %.
    let h = minutes(24 * 60, |i| if (600..720).contains(&i) { (100, 30) } else { (100, 1) });
    let b = fit_baseline(&h, Duration::minutes(10));
    assert!((b.rate - 0.01).abs() < 0.001, "{}", b.rate);
    assert!(b.dispersion < 1.5, "{}", b.dispersion);
    assert_eq!(b.hourly.len(), 24, "a day gives an hour-of-day profile");
    assert!(
        b.hourly[10] < 0.012 && b.hourly[11] < 0.012,
        "the incident's hours are not learnt: {:?}",
        b.hourly
    );
}

#[test]
fn a_day_of_history_gives_an_hour_of_day_profile() {
    // 2 % from 12:00 to 18:00, 0.5 % otherwise.
    let h = |days: i64| {
        minutes(
            days * 24 * 60 + 60,
            |i| if (12..18).contains(&((i / 60) % 24)) { (200, 4) } else { (200, 1) },
        )
    };
    for days in [1, 3] {
        let b = fit_baseline(&h(days), Duration::minutes(10));
        assert_eq!(b.hourly.len(), 24);
        assert!(b.hourly[14] > 0.015 && b.hourly[3] < 0.007, "{days} days: {:?}", b.hourly);
    }
    let half = fit_baseline(&h(1)[..12 * 60], Duration::minutes(10));
    assert!(half.hourly.is_empty(), "half a day cannot learn the day");
}

#[test]
fn healthy_soak_never_trips_and_a_step_does() {
    let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
    assert_eq!(first_regression(&b, &minutes(72 * 60, |_| (100, 1))), None);
    let at = first_regression(&b, &minutes(72 * 60, |i| (100, if i >= 600 { 3 } else { 1 })))
        .expect("a 3x step is caught");
    assert!((600..720).contains(&at), "caught after {} min of the step", at - 600);
}

#[test]
fn a_baseline_resting_on_few_failures_is_given_the_benefit_of_the_doubt() {
    // 20 failures in 2,000 attempts: the true rate may well be 30 % higher than 1 %.
    let b = fit_baseline(&minutes(2000, |i| (1, u64::from(i % 100 == 0))), Duration::minutes(10));
    assert!(baseline_margin(&b) > 1.2, "{}", baseline_margin(&b));
    // Much more traffic after the change: 1.3x would add up to a verdict against 1 % taken at
    // face value.
    let soak = |errors: u64| minutes(72 * 60, move |_| (1000, errors));
    assert_eq!(first_regression(&b, &soak(13)), None, "1.3x a thin baseline is not evidence");
    assert!(first_regression(&b, &soak(40)).is_some(), "4x is");
}

#[test]
fn a_spike_of_minutes_cannot_trip_it_alone() {
    let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
    let soak = minutes(24 * 60, |i| if (300..308).contains(&i) { (100, 9) } else { (100, 1) });
    assert_eq!(first_regression(&b, &soak), None);
}

#[test]
fn catastrophe_acts_within_minutes() {
    let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
    let at = first_regression(&b, &minutes(60, |i| if i >= 10 { (100, 60) } else { (100, 1) })).unwrap();
    assert_eq!(at, 24, "fifteen reads in a row above the ceiling");
}

#[test]
fn catastrophe_pools_reads_too_small_to_tell_alone() {
    // A quiet signal (a canary's few nodes): 4 attempts a read at 1 %. From read 10 every
    // attempt fails. A read of 4 alone used to break the ceiling's run, so only the CUSUM could
    // act (ten-minute buckets capped at a sixth of the threshold: an hour). Pooled two by two,
    // fifteen groups above the ceiling act in thirty reads.
    let b = fit_baseline(&minutes(24 * 60, |i| (4, u64::from(i % 25 == 0))), Duration::minutes(10));
    assert!((b.rate - 0.01).abs() < 0.001, "{}", b.rate);
    let soak = minutes(120, |i| if i >= 10 { (4, 4) } else { (4, 0) });
    assert_eq!(first_regression(&b, &soak), Some(39), "fifteen groups of two reads above the ceiling");
    // Reads with no attempts at all (nothing scheduled there for a minute) neither count nor
    // break the run.
    let gaps = minutes(120, |i| match i {
        _ if i < 10 => (4, 0),
        _ if i % 3 == 0 => (0, 0),
        _ => (4, 4),
    });
    let at = first_regression(&b, &gaps).unwrap();
    assert!(at < 60, "the ceiling, not the CUSUM: {at}");
}

#[test]
fn the_ceiling_judges_a_pooled_group_at_its_own_rate() {
    // 4 attempts a read at 1 %, pooled two reads at a time: a group of 8 with one failure
    // (12.5 %) is above the ceiling (11 %), and fifteen in a row are a catastrophe; with a
    // failure in one read of four, every other group has none, and the run never builds.
    let b = fit_baseline(&minutes(24 * 60, |i| (4, u64::from(i % 25 == 0))), Duration::minutes(10));
    let d = detector();
    let mut s = DetectorState::default();
    let at = t0() + Duration::days(2);
    for i in 0..40 {
        let c = Counts { attempts: 4, errors: u64::from(i % 4 == 0) };
        d.update(&mut s, &b, at + Duration::minutes(i), c);
    }
    assert_eq!(s.ceiling_run, 0, "every other group of 8 has no failure: the run starts again");
    let mut s = DetectorState::default();
    for i in 0..30 {
        let c = Counts { attempts: 4, errors: u64::from(i % 2 == 0) };
        d.update(&mut s, &b, at + Duration::minutes(i), c);
    }
    assert_eq!(s.ceiling_run, 15, "one failure in every group of 8");
    // A read that completes no group says nothing of the ceiling; the next, which completes
    // the sixteenth, says it with the rate of that group.
    let a = d.update(&mut s, &b, at + Duration::minutes(30), Counts { attempts: 4, errors: 1 });
    assert!(!a.reason.starts_with("catastrophic"), "{}", a.reason);
    let a = d.update(&mut s, &b, at + Duration::minutes(31), Counts { attempts: 4, errors: 0 });
    assert!(
        a.reason.starts_with("catastrophic: error rate 12.50% against a baseline of")
            && a.reason.contains("for 16 reads in a row of at least 5 attempts"),
        "{}",
        a.reason
    );
    // Counts no read could leave (a status written by hand) start a new group: they neither
    // keep the ceiling from judging nor count as failures.
    for (attempts, errors) in [(-1_000_000, 0), (3, -7), (2, 9)] {
        let mut s =
            DetectorState { ceiling_attempts: attempts, ceiling_errors: errors, ..Default::default() };
        d.update(&mut s, &b, at, Counts { attempts: 4, errors: 0 });
        d.update(&mut s, &b, at + Duration::minutes(1), Counts { attempts: 4, errors: 0 });
        assert_eq!((s.ceiling_attempts, s.ceiling_errors), (8, 0), "from ({attempts}, {errors})");
    }
    let mut s = DetectorState { ceiling_run: u32::MAX, ..Default::default() };
    d.update(&mut s, &b, at, Counts { attempts: 8, errors: 8 });
    assert_eq!(s.ceiling_run, u32::MAX, "a run written by hand at its largest does not overflow");
}

#[test]
fn low_volume_intervals_are_merged_not_judged_alone() {
    let b = fit_baseline(&minutes(24 * 60, |i| (1, if i % 100 == 0 { 1 } else { 0 })), Duration::minutes(10));
    let d = detector();
    let mut s = DetectorState::default();
    for (t, c) in minutes(15, |_| (1, 0)) {
        d.update(&mut s, &b, t, c);
    }
    assert!(s.bucket_attempts > 0, "a bucket waits for enough attempts");
}

#[test]
fn zero_error_baseline_and_inconclusive_volume() {
    let b = fit_baseline(&minutes(60, |_| (100, 0)), Duration::minutes(10));
    assert!(b.rate > 0.0);
    let d = detector();
    let mut s = DetectorState::default();
    let a = d.update(&mut s, &b, t0(), Counts { attempts: 3, errors: 0 });
    assert_eq!(a.verdict, Verdict::Inconclusive);
    let tiny = fit_baseline(&minutes(2, |_| (3, 0)), Duration::minutes(10));
    let a = d.update(&mut DetectorState::default(), &tiny, t0(), Counts { attempts: 100, errors: 0 });
    assert!(a.reason.contains("baseline has 6 attempts"), "{}", a.reason);
}

#[test]
fn live_observation_matches_the_fit() {
    let h = minutes(120, |i| (100, if i % 2 == 0 { 4 } else { 0 }));
    let mut live = BaselineStatus::default();
    for (t, c) in &h {
        add_live_interval(&mut live, *t, h[0].0, *c);
    }
    let fitted = fit_baseline(&h, Duration::minutes(10));
    assert!((live.rate - fitted.rate).abs() < 1e-9);
    assert!(
        live.dispersion > 1.5,
        "alternating 0/4 errors are overdispersed per interval: {}",
        live.dispersion
    );
}

#[test]
fn a_week_of_history_gets_the_sharper_pair_unless_the_rule_sets_one() {
    let week = fit_baseline(&minutes(7 * 24 * 60, |_| (100, 1)), Duration::minutes(10));
    let day = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
    let d = detector();
    assert_eq!(d.limits(&week), (10.5, 1.5), "a week knows the time of day and the weekend");
    assert_eq!(d.limits(&day), (12.0, 2.0), "a day does not");
    let expert = Cusum::from_rule(&RegressionRule { threshold: Some(20.0), ..Default::default() });
    assert_eq!(expert.limits(&week), (20.0, 2.0), "a threshold in the spec applies to every baseline");
    let low =
        Cusum::from_rule(&RegressionRule { sensitivity: crate::crd::Sensitivity::Low, ..Default::default() });
    assert_eq!(low.limits(&week).0, 10.5 * 1.5, "sensitivity scales both thresholds");
}

#[test]
fn a_rise_the_control_shares_is_not_the_canarys_own() {
    // A week at 1 %; then 3 % for six hours: the canary's own regression, unless the rest of
    // the cluster runs three times its own baseline too (the control's level).
    let b = fit_baseline(&minutes(7 * 24 * 60, |_| (100, 1)), Duration::minutes(10));
    let soak: Vec<_> =
        minutes(6 * 60, |_| (100, 3)).into_iter().map(|(t, c)| (t + Duration::days(7), c)).collect();
    let d = detector();
    let first = |level: f64| {
        let mut s = DetectorState::default();
        soak.iter()
            .position(|(t, c)| d.advance_at_level(&mut s, &b, *t, *c, level).verdict() == Verdict::Regression)
    };
    assert!(first(1.0).is_some(), "alone, the canary regressed");
    assert_eq!(first(3.0), None, "shared with the rest, it is not the canary's");
}

#[test]
fn a_canarys_words_give_the_baseline_and_ceiling_it_was_judged_at() {
    // A week at 1 %; the rest of the cluster runs at 3x its own baseline, so the canary's is
    // taken at 3 %, and its ceiling at 30 %. Every attempt failing is a catastrophe there; the
    // words must name what was judged, not the week's 1 % and its 11 %.
    let b = fit_baseline(&minutes(7 * 24 * 60, |_| (100, 1)), Duration::minutes(10));
    let d = detector();
    let mut s = DetectorState::default();
    let at = t0() + Duration::days(7);
    let a = (0..20)
        .map(|i| {
            d.update_at_level(
                &mut s,
                &b,
                at + Duration::minutes(i),
                Counts { attempts: 100, errors: 100 },
                3.0,
            )
        })
        .find(|a| a.verdict == Verdict::Regression)
        .expect("every attempt failing is a catastrophe at any level");
    assert!(
        a.reason.starts_with(
            "catastrophic: error rate 100.00% against a baseline of 3.00%, above the ceiling 30.00%"
        ),
        "{}",
        a.reason
    );
    assert!((a.baseline_rate - 0.03).abs() < 1e-6, "{}", a.baseline_rate);
    // Before any bucket is judged, the words' baseline is the level's too.
    let a =
        d.update_at_level(&mut DetectorState::default(), &b, at, Counts { attempts: 100, errors: 3 }, 3.0);
    assert!((a.baseline_rate - 0.03).abs() < 1e-6, "{}", a.baseline_rate);
    assert!(a.reason.contains("against a baseline of 3.00%"), "{}", a.reason);
}
#[test]
fn a_thin_baselines_words_give_the_regression_its_margin_puts_off() {
    // Seed 34 of the first canary runs: 5 of 61 attempts failed while the canary's nodes were
    // observed live for 30 minutes (8.2 %). The span's floor acts on 5.4x; its five failures
    // may understate the rate threefold, so only near-total failure can be told above it.
    let d = detector();
    let at = t0();
    let live = |attempts: u64, errors: u64| {
        let mut b = BaselineStatus::default();
        for i in 0..30u64 {
            let c = Counts {
                attempts: attempts / 30 + u64::from(i < attempts % 30),
                errors: errors / 30 + u64::from(i < errors % 30),
            };
            let i = i as i64;
            add_live_interval(&mut b, at + Duration::minutes(i + 1), at + Duration::minutes(i), c);
        }
        b
    };
    let thin = live(61, 5);
    let w = d.baseline_words(&thin).unwrap();
    assert!(w.starts_with("baseline from 30m: increases below 5.4x cannot be told"), "{w}");
    assert!(
        w.ends_with("; with 5 of 61 attempts failed, the rate itself is uncertain (it may be up to 2.93x what was measured), so only near-total failure can be told"),
        "{w}"
    );
    // Thirty failures in 3,000 attempts (1 %): the margin, 1.65x, times the span's 5.4x.
    let w = d.baseline_words(&live(3000, 30)).unwrap();
    assert!(
        w.ends_with("; with 30 of 3000 attempts failed, the rate itself is uncertain (it may be up to 1.65x what was measured), so a regression is acted on only from 8.93x the rate measured"),
        "{w}"
    );
    // No failure at all: the margin is largest, and the words say so.
    let w = d.baseline_words(&live(3000, 0)).unwrap();
    assert!(
        w.contains("with 0 of 3000 attempts failed, the rate itself is uncertain (it may be up to 13.48x what was measured)"),
        "{w}"
    );
    // A canary's copy, judged at its control's level: the same margin, its own floor.
    let copy = Cusum { judged: reach::Judged::AtAControl, ..detector() };
    let w = copy.baseline_words(&thin).unwrap();
    assert!(w.contains("cannot be told from the noise of the canary's own nodes"), "{w}");
    assert!(w.ends_with("so only near-total failure can be told"), "{w}");
    // Counts no baseline could hold (a status written by hand) add nothing.
    let forged = BaselineStatus { errors: 70, ..thin.clone() };
    assert_eq!(d.baseline_words(&forged), reach::words(&forged, d.min_relative_increase, d.judged));
    // A week of history with thousands of failures: nothing to add to what the span says,
    // and nothing at all when the span supports the rule.
    let week = fit_baseline(&minutes(7 * 24 * 60, |_| (100, 1)), Duration::minutes(10));
    assert_eq!(d.baseline_words(&week), None);
}

/// 65 of 70 pods failed while the baseline was observed (seed 31 of the robustness run on
/// canaries: a scheduler catching up after two API server restarts): no room for any
/// regression above it. Two of ten is high only by chance; a status holding no number says
/// nothing.
#[test]
fn a_baseline_leaves_no_room_only_when_even_its_lowest_rate_does() {
    let d = detector();
    let observed = |attempts: u64, errors: u64| {
        let mut b = BaselineStatus::default();
        add_live_interval(&mut b, t0() + Duration::minutes(30), t0(), Counts { attempts, errors });
        b
    };
    let full = observed(70, 65);
    let low = d.no_room(&full).expect("no room");
    assert!(low > 0.5 && low < full.rate, "{low}");
    assert!(d.no_room_words(&full).unwrap().contains("65 of 70 attempts failed"));
    assert_eq!(d.no_room(&observed(10, 2)), None, "thin, not full");
    assert_eq!(d.no_room(&observed(70, 3)), None);
    let forged = BaselineStatus { rate: f64::NAN, errors: 65, attempts: 70, ..Default::default() };
    assert_eq!(d.no_room(&forged), None);
    let negative = BaselineStatus { rate: 0.9, errors: -5, attempts: 70, ..Default::default() };
    assert_eq!(d.no_room(&negative), None);
    // A week of history acts on 1.7x: room up to about 59 %.
    let week = |rate: f64| BaselineStatus {
        rate,
        errors: (rate * 1e6) as i64,
        attempts: 1_000_000,
        hourly: vec![rate; 24],
        from: Some(t0()),
        to: Some(t0() + Duration::days(7)),
        ..Default::default()
    };
    assert_eq!(d.no_room(&week(0.5)), None);
    assert!(d.no_room(&week(0.65)).is_some());
}
