//! Unit tests of `window.rs`.

use super::*;
use crate::crd::{Duration as D, Exclusion, RecurringWindow, StagePolicy, Window};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window(tz: &str, days: &[Weekday], start: &str, dur: &str) -> Window {
    Window {
        time_zone: tz.into(),
        recurring: vec![RecurringWindow {
            days: days.to_vec(),
            start: start.into(),
            duration: D(dur.into()),
        }],
        exclusions: vec![],
        not_before: None,
        deadline: None,
        stage_policy: StagePolicy::WaitForNextWindow,
    }
}

fn open(closes: &str) -> WindowState {
    WindowState::Open { closes_at: Some(t(closes)) }
}

fn opens(s: &str) -> Option<DateTime<Utc>> {
    match s {
        "never" => None,
        s => Some(t(s)),
    }
}

#[test]
fn tue_thu_new_york_window() {
    // Tue/Thu 22:00–02:00 America/New_York; 2026-11-24 is a Tuesday (EST, UTC-5).
    let w = window("America/New_York", &[Weekday::Tue, Weekday::Thu], "22:00", "4h");
    let s = Schedule::parse(Some(&w)).unwrap();
    let cases = [
        // (now, expected open-until, or next opening)
        ("2026-11-24T12:00:00Z", None, Some("2026-11-25T03:00:00Z")),
        ("2026-11-25T03:00:00Z", Some("2026-11-25T07:00:00Z"), None),
        ("2026-11-25T06:59:59Z", Some("2026-11-25T07:00:00Z"), None),
        // Wednesday 02:00 local: closed until Thursday 22:00.
        ("2026-11-25T07:00:00Z", None, Some("2026-11-27T03:00:00Z")),
        // Friday: next is the following Tuesday.
        ("2026-11-28T12:00:00Z", None, Some("2026-12-02T03:00:00Z")),
    ];
    for (now, until, next) in cases {
        let got = s.state_at(t(now));
        match (until, next) {
            (Some(u), _) => assert_eq!(got, open(u), "at {now}"),
            (None, Some(n)) => match got {
                WindowState::Closed { opens_at, .. } => assert_eq!(opens_at, opens(n), "at {now}"),
                other => panic!("at {now}: expected closed, got {other:?}"),
            },
            _ => unreachable!(),
        }
    }
}

#[test]
fn summer_time_shifts_the_utc_opening() {
    // The same local 22:00 is 02:00 UTC in summer (EDT) and 03:00 UTC in winter (EST).
    let w = window("America/New_York", &[Weekday::Tue], "22:00", "4h");
    let s = Schedule::parse(Some(&w)).unwrap();
    // 2026-07-14 is a Tuesday: 22:00 EDT is 02:00Z on the 15th.
    assert_eq!(
        s.state_at(t("2026-07-15T00:00:00Z")),
        WindowState::Closed {
            opens_at: Some(t("2026-07-15T02:00:00Z")),
            why: "outside the recurring maintenance window".into()
        }
    );
    assert_eq!(s.state_at(t("2026-07-15T02:30:00Z")), open("2026-07-15T06:00:00Z"));
    // 2026-12-01 is a Tuesday: 22:00 EST is 03:00Z on the 2nd.
    assert_eq!(s.state_at(t("2026-12-02T03:30:00Z")), open("2026-12-02T07:00:00Z"));
}

#[test]
fn dst_spring_gap_opens_at_the_jump() {
    // 2026-03-08 02:30 does not exist in New York: clocks go 01:59 EST -> 03:00 EDT (07:00Z).
    let w = window("America/New_York", &[Weekday::Sun], "02:30", "1h");
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.state_at(t("2026-03-08T07:10:00Z")), open("2026-03-08T08:00:00Z"));
    match s.state_at(t("2026-03-08T06:00:00Z")) {
        WindowState::Closed { opens_at, .. } => assert_eq!(opens_at, Some(t("2026-03-08T07:00:00Z"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dst_autumn_overlap_uses_the_first_instant_and_elapsed_duration() {
    // 2026-11-01 01:30 happens twice in New York; the first is 05:30Z (EDT).
    let w = window("America/New_York", &[Weekday::Sun], "01:30", "1h");
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.state_at(t("2026-11-01T05:45:00Z")), open("2026-11-01T06:30:00Z"));
    // The second 01:30 (06:30Z) is after the window: it lasted one elapsed hour, not two.
    assert!(matches!(s.state_at(t("2026-11-01T06:40:00Z")), WindowState::Closed { .. }));
}

#[test]
fn exclusions_close_the_window_and_cut_it_short() {
    let mut w =
        window("UTC", &[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri], "10:00", "8h");
    w.exclusions.push(Exclusion {
        name: Some("freeze".into()),
        start: t("2026-11-24T00:00:00Z"),
        end: t("2026-11-26T12:00:00Z"),
    });
    w.exclusions.push(Exclusion {
        name: Some("meeting".into()),
        start: t("2026-11-27T15:00:00Z"),
        end: t("2026-11-27T16:00:00Z"),
    });
    let s = Schedule::parse(Some(&w)).unwrap();
    // Tuesday 11:00 is inside the freeze: opens Wednesday 12:00 when the freeze ends mid-window.
    match s.state_at(t("2026-11-24T11:00:00Z")) {
        WindowState::Closed { opens_at, why } => {
            assert_eq!(opens_at, Some(t("2026-11-26T12:00:00Z")));
            assert!(why.contains("freeze"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Friday 11:00: open, but only until the exclusion at 15:00.
    assert_eq!(s.state_at(t("2026-11-27T11:00:00Z")), open("2026-11-27T15:00:00Z"));
    assert_eq!(s.state_at(t("2026-11-27T16:30:00Z")), open("2026-11-27T18:00:00Z"));
}

#[test]
fn a_freeze_longer_than_a_week_is_waited_out() {
    // The year-end freeze of the README's example swallows three weeks of Tue/Thu windows.
    let mut w = window("America/New_York", &[Weekday::Tue, Weekday::Thu], "22:00", "4h");
    w.exclusions.push(Exclusion {
        name: Some("year-end freeze".into()),
        start: t("2026-12-18T00:00:00Z"),
        end: t("2027-01-05T00:00:00Z"),
    });
    let s = Schedule::parse(Some(&w)).unwrap();
    match s.state_at(t("2026-12-17T12:00:00Z")) {
        // Thursday 17 Dec 22:00 EST is 03:00Z on the 18th, inside the freeze; so is every
        // window until it ends on 5 Jan (a Tuesday): the next opening is that evening.
        WindowState::Closed { opens_at, .. } => assert_eq!(opens_at, Some(t("2027-01-06T03:00:00Z"))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_before_and_deadline() {
    let mut w = window("UTC", &[Weekday::Tue], "10:00", "2h");
    w.not_before = Some(t("2026-11-25T00:00:00Z"));
    w.deadline = Some(t("2026-12-08T11:00:00Z"));
    let s = Schedule::parse(Some(&w)).unwrap();
    match s.state_at(t("2026-11-24T10:30:00Z")) {
        WindowState::Closed { opens_at, why } => {
            assert_eq!(opens_at, Some(t("2026-12-01T10:00:00Z")));
            assert!(why.contains("not before"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // The last window is cut at the deadline; after it, never again.
    assert_eq!(s.state_at(t("2026-12-08T10:30:00Z")), open("2026-12-08T11:00:00Z"));
    assert!(matches!(s.state_at(t("2026-12-08T11:00:00Z")), WindowState::Closed { opens_at: None, .. }));
}

#[test]
fn no_window_is_always_open_and_bad_zones_are_errors() {
    assert_eq!(Schedule::always().state_at(t("2026-11-24T00:00:00Z")), WindowState::Open { closes_at: None });
    let w = window("Mars/Olympus", &[Weekday::Tue], "10:00", "2h");
    assert!(Schedule::parse(Some(&w)).unwrap_err().contains("Mars/Olympus"));
    let w = window("UTC", &[Weekday::Tue], "10:00", "0s");
    assert!(Schedule::parse(Some(&w)).is_err());
}

#[test]
fn window_spanning_midnight_on_the_last_day_of_the_week() {
    let w = window("Europe/Berlin", &[Weekday::Sun], "23:00", "3h");
    let s = Schedule::parse(Some(&w)).unwrap();
    // Monday 00:30 Berlin (CET, UTC+1) = Sunday 23:30Z: still open from Sunday's window.
    assert_eq!(s.state_at(t("2026-11-29T23:30:00Z")), open("2026-11-30T01:00:00Z"));
}

#[test]
fn a_recurring_window_longer_than_a_week_is_refused() {
    assert!(Schedule::parse(Some(&window("UTC", &[Weekday::Mon], "00:00", "168h"))).is_ok());
    let err = Schedule::parse(Some(&window("UTC", &[Weekday::Mon], "00:00", "169h"))).unwrap_err();
    assert!(err.contains("longer than a week"), "{err}");
}

/// notBefore inside an opening: the window opens at notBefore, not at the opening's own start
/// (which would start the upgrade early, up to a week with a 168h opening).
#[test]
fn not_before_inside_an_opening_opens_the_window_at_not_before() {
    // 2026-12-01 is a Tuesday.
    let mut w = window("UTC", &[Weekday::Tue], "10:00", "2h");
    w.not_before = Some(t("2026-12-01T11:00:00Z"));
    let s = Schedule::parse(Some(&w)).unwrap();
    for now in ["2026-12-01T09:00:00Z", "2026-12-01T10:30:00Z"] {
        match s.state_at(t(now)) {
            WindowState::Closed { opens_at, why } => {
                assert_eq!(opens_at, Some(t("2026-12-01T11:00:00Z")), "at {now}");
                assert!(why.starts_with("not before"), "at {now}: {why}");
            }
            other => panic!("at {now}: expected closed, got {other:?}"),
        }
    }
    assert_eq!(s.state_at(t("2026-12-01T11:30:00Z")), open("2026-12-01T12:00:00Z"));
}

/// An opening that crosses a spring-forward change is found from its whole span: its local
/// span is an hour longer than its length, and may reach one more midnight.
#[test]
fn an_opening_across_spring_forward_is_open_to_its_end() {
    // Europe/Berlin, Saturday 2026-03-28 23:30 CET (22:30Z) for 23h45m: to 22:15Z on Sunday
    // the 29th, which is Monday 00:15 CEST.
    let w = window("Europe/Berlin", &[Weekday::Sat], "23:30", "23h45m");
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.state_at(t("2026-03-29T21:55:00Z")), open("2026-03-29T22:15:00Z"));
    assert_eq!(s.state_at(t("2026-03-29T22:05:00Z")), open("2026-03-29T22:15:00Z"));
}

/// Recurring openings that cover the whole week never close: no closing time a week or so
/// ahead, and no progressDeadline is longer than them.
#[test]
fn openings_that_cover_the_whole_week_never_close() {
    let every_day =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    let w = window("UTC", &every_day, "00:00", "24h");
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.state_at(t("2026-12-01T09:00:00Z")), WindowState::Open { closes_at: None });
    assert_eq!(s.longest_opening(), None, "as long as no window at all");
    // With an exclusion, it closes at the exclusion.
    let mut w = w;
    w.exclusions = vec![Exclusion {
        name: Some("freeze".into()),
        start: t("2026-12-20T00:00:00Z"),
        end: t("2026-12-27T00:00:00Z"),
    }];
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.state_at(t("2026-12-01T09:00:00Z")), open("2026-12-20T00:00:00Z"));
    match s.state_at(t("2026-12-21T09:00:00Z")) {
        WindowState::Closed { opens_at, .. } => assert_eq!(opens_at, Some(t("2026-12-27T00:00:00Z"))),
        other => panic!("expected closed, got {other:?}"),
    }
    assert_eq!(s.state_at(t("2026-12-28T09:00:00Z")), WindowState::Open { closes_at: None });
}

/// Openings that chain from day to day are one as long as all of them, wherever the week is
/// cut: Sun, Mon and Tue each 24h make one of 72h.
#[test]
fn openings_that_chain_across_days_are_one_as_long_as_all_of_them() {
    let w = window("UTC", &[Weekday::Sun, Weekday::Mon, Weekday::Tue], "00:00", "24h");
    let s = Schedule::parse(Some(&w)).unwrap();
    assert_eq!(s.longest_opening(), Some(Duration::hours(72)));
    // 2026-12-06 is a Sunday: open until Wednesday.
    assert_eq!(s.state_at(t("2026-12-06T12:00:00Z")), open("2026-12-09T00:00:00Z"));
    // A day split in two openings, the second reached only through the first: 96h.
    let mut w = window("UTC", &[Weekday::Sat, Weekday::Sun, Weekday::Mon], "00:00", "24h");
    for start in ["12:00", "00:00"] {
        w.recurring.push(RecurringWindow {
            days: vec![Weekday::Tue],
            start: start.into(),
            duration: D("12h".into()),
        });
    }
    assert_eq!(Schedule::parse(Some(&w)).unwrap().longest_opening(), Some(Duration::hours(96)));
    // A daily opening that ends at midnight is no chain.
    let w = window("UTC", &[Weekday::Mon, Weekday::Tue], "22:00", "2h");
    assert_eq!(Schedule::parse(Some(&w)).unwrap().longest_opening(), Some(Duration::hours(2)));
}
