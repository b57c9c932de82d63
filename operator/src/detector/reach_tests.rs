//! Unit tests of `reach.rs`.

use super::*;
use chrono::{DateTime, Utc};

fn baseline(minutes: i64, live: bool) -> BaselineStatus {
    let to = DateTime::parse_from_rfc3339("2026-11-20T02:00:00Z").unwrap().with_timezone(&Utc);
    BaselineStatus {
        from: Some(to - Duration::minutes(minutes)),
        to: Some(to),
        intervals: if live { minutes } else { 0 },
        ..Default::default()
    }
}

#[test]
fn the_floor_falls_as_the_baseline_grows_and_goes_with_the_daily_profile() {
    let rel = |m| floor(&baseline(m, false), Judged::Alone).min_relative;
    assert!(rel(30) >= rel(120) && rel(120) >= rel(24 * 60), "{:?}", [rel(30), rel(120), rel(1440)]);
    let profiled = |m| BaselineStatus { hourly: vec![0.01; 24], ..baseline(m, false) };
    let three = floor(&profiled(3 * 24 * 60), Judged::Alone).min_relative;
    let week = floor(&profiled(7 * 24 * 60), Judged::Alone);
    assert!(rel(24 * 60) >= three && three >= week.min_relative && week.better.is_empty());
    assert_eq!(
        words(&profiled(7 * 24 * 60), week.min_relative, Judged::Alone),
        None,
        "the default asks for what a week supports"
    );
}

#[test]
fn it_is_said_in_words_only_when_it_rises_above_the_rule() {
    let w = words(&baseline(30, true), 0.5, Judged::Alone).unwrap();
    assert!(w.starts_with("baseline from 30m: increases below "), "{w}");
    assert!(
            w.ends_with("cannot be told from time-of-day variation and noise; observe 2h or more to act on 4.4x, 1day on 2.7x; 7days of history acts on 1.7x"),
            "{w}"
        );
    let w = words(&baseline(120, false), 0.5, Judged::Alone).unwrap();
    assert!(
        w.contains("look back 1day or more to act on 2.2x, 7days on 1.7x"),
        "a day read at once has the daily profile: {w}"
    );
    let w = words(&baseline(120, false), 1.2, Judged::Alone).unwrap();
    assert!(w.ends_with("1day or more to act on 2.2x"), "the ladder stops at the rule's own minimum: {w}");
    assert_eq!(
        words(&baseline(30, true), 10.0, Judged::Alone),
        None,
        "the rule asks for more than the floor"
    );
    let w = words(&baseline(30, true), 2.0, Judged::Alone).unwrap();
    assert!(
        w.ends_with("observe 2h or more to act on 4.4x, 1day on 3x"),
        "observing reaches the rule's minimum: {w}"
    );
}

#[test]
fn a_canary_judged_at_its_control_has_floors_of_its_own() {
    let profiled = |m| BaselineStatus { hourly: vec![0.01; 24], ..baseline(m, false) };
    let at = |b: &BaselineStatus, judged| floor(b, judged).min_relative;
    let week = profiled(7 * 24 * 60);
    // Its nodes wander and spike with no one to share it: a week acts on 2x, not 1.7x.
    assert_eq!((at(&week, Judged::Alone), at(&week, Judged::AtAControl)), (0.70, 1.00));
    assert_eq!(at(&profiled(24 * 60), Judged::AtAControl), 1.65, "a day, and three days");
    assert_eq!(at(&profiled(3 * 24 * 60), Judged::AtAControl), 1.65);
    for short in [baseline(30, true), baseline(120, false)] {
        assert_eq!(at(&short, Judged::AtAControl), at(&short, Judged::Alone), "they keep the whole signal's");
    }
    assert_eq!(words(&week, 0.70, Judged::AtAControl), None, "no longer baseline would lift it: no warning");
    let w = words(&week, 0.5, Judged::AtAControl).unwrap();
    assert_eq!(
        w, "baseline from 7days: increases below 2x cannot be told from the noise of the canary's own nodes",
        "a rule asking for less than the whole signal's week is told, as the whole signal is"
    );
    let w = words(&profiled(3 * 24 * 60), 0.70, Judged::AtAControl).unwrap();
    assert!(w.contains("increases below 2.65x cannot be told"), "{w}");
    assert!(w.ends_with("look back 7days or more to act on 2x"), "{w}");
    let w = words(&baseline(30, true), 0.70, Judged::AtAControl).unwrap();
    assert!(
        w.ends_with("observe 2h or more to act on 4.4x, 1day on 2.7x; 7days of history acts on 2x"),
        "{w}"
    );
}

#[test]
fn a_canary_is_quiet_when_a_regression_at_its_floor_adds_too_few_failures_over_its_soak() {
    // A week of history with 2 attempts a minute at 1 %: a regression raising it by one point
    // adds 2 × 60 × 48 × 0.01 ≈ 57.6 failures over 48 hours, and 9.6 over 8.
    let week =
        BaselineStatus { attempts: 2 * 7 * 24 * 60, errors: 202, rate: 0.01, ..baseline(7 * 24 * 60, false) };
    let stage =
        |soak: Duration, of: usize| CanaryStage { name: "canary", soak, nodes: 2, may_take: of, runs_on: of };
    assert!((added_at(&week, 0.01, Duration::hours(48)) - 57.6).abs() < 1e-6);
    assert_eq!(quiet_words(&week, 0.01, &stage(Duration::hours(48), 20)), None, "busy enough over two days");
    let w = quiet_words(&week, 0.01, &stage(Duration::hours(8), 20)).unwrap();
    assert!(
        w.starts_with("the canary's nodes saw 20160 attempts over 7days, 202 of them failed: a regression at 2x would add about 10 failures over stage canary's 8h soak"),
        "{w}"
    );
    assert!(
        w.contains("likely seen only once a later stage widens the upgrade; nothing is held meanwhile"),
        "{w}"
    );
    assert!(
        w.ends_with("; a new MaintenanceUpgrade whose stage has about 5 of the 20 nodes a canary may take, or a soak of 19h, would bring it to 22 (stages cannot be changed once an upgrade exists)"),
        "{w}"
    );
    // No canary larger than half the nodes is suggested (the rest are its control), and no
    // soak beyond two weeks; the nodes unknown, only the soak.
    let only_the_soak = "whose stage has a soak of 19h would bring it to 22";
    assert!(quiet_words(&week, 0.01, &stage(Duration::hours(8), 8)).unwrap().contains(only_the_soak));
    assert!(quiet_words(&week, 0.01, &stage(Duration::hours(8), 0)).unwrap().contains(only_the_soak));
    // A nodeSelector's 6 of 20 can take 5; its 4 cannot, whatever the other nodes.
    let selected = |may_take| CanaryStage { may_take, ..stage(Duration::hours(8), 20) };
    assert!(
        quiet_words(&week, 0.01, &selected(6)).unwrap().contains("about 5 of the 6 nodes a canary may take")
    );
    assert!(quiet_words(&week, 0.01, &selected(4)).unwrap().contains(only_the_soak));
    let w = quiet_words(&week, 1e-9, &stage(Duration::hours(8), 20)).unwrap();
    assert!(w.ends_with("nothing is held meanwhile"), "nothing workable to suggest: {w}");
    assert!(w.contains("would add fewer than 1 failures"), "never about 0: {w}");
    // Never "about 22" below 22.
    let w = quiet_words(&week, 0.01 * 21.8 / 9.6, &stage(Duration::hours(8), 20)).unwrap();
    assert!(w.contains("would add about 21 failures"), "{w}");
    // A soak of seconds (a compressed demo) is scaled in seconds.
    let w = quiet_words(&week, 0.01, &stage(Duration::seconds(30), 20)).unwrap();
    assert!(w.contains(only_the_soak), "{w}");
    // A live observation counts the time it saw, not its span with the outage in it, whatever a
    // hand-written status says of it.
    let live = BaselineStatus { observed_seconds: 3600.0, attempts: 120, rate: 0.01, ..baseline(120, true) };
    assert!((added_at(&live, 0.01, Duration::hours(1)) - 1.2).abs() < 1e-6);
    assert!(
        quiet_words(&live, 0.01, &stage(Duration::hours(1), 20)).unwrap().contains("120 attempts over 1h,")
    );
    for wild in [f64::INFINITY, f64::NAN, 1e300] {
        let b = BaselineStatus { observed_seconds: wild, ..live.clone() };
        let _ = quiet_words(&b, 0.01, &stage(Duration::hours(1), 20));
    }
    // No attempts at all: nothing to judge, said so, and nothing to scale.
    let none = BaselineStatus { attempts: 0, errors: 0, rate: 0.5, ..week.clone() };
    let w = quiet_words(&none, 0.01, &stage(Duration::hours(8), 20)).unwrap();
    assert_eq!(
        w,
        "the canary's nodes saw no attempts over 7days: its own signal has nothing to judge, so a regression there is seen only once a later stage widens the upgrade; nothing is held meanwhile"
    );
    // A rate already at the detector's ceiling leaves no increase to speak of; nothing known of
    // the traffic, nothing said.
    assert_eq!(quiet_words(&week, 0.0, &stage(Duration::hours(8), 20)), None);
    assert_eq!(quiet_words(&BaselineStatus::default(), 0.01, &stage(Duration::hours(8), 20)), None);
}

#[test]
fn a_forged_baseline_neither_panics_nor_puts_nonsense_in_the_words() {
    // The status is the operator's memory, which only it may write (config/policy); without that
    // policy a tenant could write her own upgrade's. Whatever it holds, the words stay numbers.
    let rule = crate::crd::RegressionRule::default();
    let d = crate::detector::Cusum { judged: Judged::AtAControl, ..crate::detector::Cusum::from_rule(&rule) };
    let stage = CanaryStage { name: "canary", soak: Duration::hours(8), nodes: 2, may_take: 20, runs_on: 20 };
    let week = BaselineStatus { attempts: 20160, errors: 202, rate: 0.01, ..baseline(7 * 24 * 60, false) };
    for forged in [
        BaselineStatus { rate: f64::NAN, ..week.clone() },
        BaselineStatus { rate: f64::INFINITY, ..week.clone() },
        BaselineStatus { rate: -1.0, ..week.clone() },
        BaselineStatus { attempts: i64::MAX, ..week.clone() },
        BaselineStatus { attempts: i64::MIN, errors: i64::MIN, ..week.clone() },
        BaselineStatus { observed_seconds: f64::NAN, intervals: 5, ..week.clone() },
    ] {
        if let Some(w) = quiet_words(&forged, d.smallest_increase(&forged), &stage) {
            assert!(!w.contains("NaN") && !w.contains("inf"), "{w}");
        }
    }
}
