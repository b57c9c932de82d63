use super::*;

#[test]
fn retries_grow_apart_up_to_a_minute() {
    let waits: Vec<u64> = (1..=6).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
    assert_eq!(backoff(u32::MAX), MAX_RETRY);
}

#[test]
fn the_same_failure_is_news_once_and_a_success_forgets_it() {
    let r = Retries::default();
    assert!(r.is_news("ns/up", "denied"));
    assert_eq!(r.failed("ns/up", "denied"), FIRST_RETRY);
    assert!(!r.is_news("ns/up", "denied"), "not announced again");
    assert_eq!(r.failed("ns/up", "denied"), FIRST_RETRY * 2);
    assert!(r.is_news("ns/up", "timed out"), "a different failure is");
    assert!(r.is_news("ns/other", "denied"), "per upgrade");
    r.succeeded("ns/up");
    assert!(r.is_news("ns/up", "denied"));
    assert_eq!(r.failed("ns/up", "denied"), FIRST_RETRY, "counted again from the start");
}

#[test]
fn the_same_failure_is_news_again_an_hour_after_it_was_said() {
    // Looks that only wait (a window, reads catching up) do not forget a failure: one that comes
    // back after a long quiet is said again, its Warning Event long gone.
    let r = Retries::default();
    r.failed("ns/up", "denied");
    let now = Instant::now();
    assert!(!r.is_news_at("ns/up", "denied", now));
    assert!(r.is_news_at("ns/up", "denied", now + ANNOUNCED_FOR));
}
