//! Unit tests of `term.rs`.

use super::*;

const D: Duration = Duration::from_secs(15);

fn held(holder: Option<&str>, version: &str) -> Held {
    Held { holder: holder.map(String::from), version: version.into(), duration: D }
}

#[test]
fn its_own_lease_is_renewed_and_a_free_one_taken_once_its_last_holder_can_write_no_more() {
    let t = Instant::now();
    assert_eq!(next("a", Some(&held(Some("a"), "1")), t, t, D), Next::Renew);
    // Released on the way out: after the margin its writes in flight had.
    assert_eq!(next("a", Some(&held(None, "1")), t, t, D), Next::Wait(margin(D)));
    assert_eq!(next("a", Some(&held(Some(""), "1")), t, t + margin(D), D), Next::Take);
    // Gone (deleted to force an election): after the whole duration, as if it had expired.
    assert_eq!(next("a", None, t, t, D), Next::Wait(D));
    assert_eq!(next("a", None, t, t + D, D), Next::Create);
}

#[test]
fn another_holders_lease_is_taken_only_after_it_was_seen_unchanged_for_its_duration() {
    let t0 = Instant::now();
    let mut seen = Sighting::new(t0);
    let l = held(Some("b"), "7");
    seen.saw(Some(&l), t0);
    assert_eq!(
        next("a", Some(&l), seen.since(), t0 + Duration::from_secs(10), D),
        Next::Wait(Duration::from_secs(5))
    );
    // Renewed at 10 s: the wait starts again from there.
    let renewed = held(Some("b"), "8");
    seen.saw(Some(&renewed), t0 + Duration::from_secs(10));
    assert_eq!(
        next("a", Some(&renewed), seen.since(), t0 + Duration::from_secs(20), D),
        Next::Wait(Duration::from_secs(5))
    );
    assert_eq!(next("a", Some(&renewed), seen.since(), t0 + Duration::from_secs(25), D), Next::Take);
}

#[test]
fn a_duration_written_by_the_holder_neither_shortens_the_wait_nor_makes_it_endless() {
    let t0 = Instant::now();
    let l = Held { duration: Duration::from_secs(1), ..held(Some("b"), "7") };
    assert_eq!(next("a", Some(&l), t0, t0 + Duration::from_secs(2), D), Next::Wait(Duration::from_secs(13)));
    let l = Held { duration: Duration::from_secs(u32::MAX as u64), ..held(Some("b"), "7") };
    assert_eq!(next("a", Some(&l), t0, t0 + MAX_DURATION, D), Next::Take);
}

#[test]
fn the_leaders_term_ends_before_any_follower_may_take_over() {
    // The worst case: the follower first sees the renewal the instant it is sent.
    let sent = Instant::now();
    let mut seen = Sighting::new(sent);
    seen.saw(Some(&held(Some("b"), "9")), sent);
    let end = term_end(sent, D);
    assert!(
        matches!(next("a", Some(&held(Some("b"), "9")), seen.since(), end, D), Next::Wait(w) if w >= margin(D))
    );
    assert!(period(D) * 3 < end - sent, "several renewals fit in a term");
}
