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

/// A restore of rollout settings refused again and again is dated from its first refusal; one of
/// another target starts afresh, and a look that goes through forgets it.
#[test]
fn a_refused_restore_is_dated_from_its_first_refusal() {
    use crate::crd::WorkloadKind;
    use crate::target::TargetKey;
    let key =
        |name: &str| TargetKey { kind: WorkloadKind::DaemonSet, namespace: "ops".into(), name: name.into() };
    let at = |m: i64| chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(m);
    let r = Retries::default();
    assert_eq!(r.strategy_refused("u"), None);
    r.refused_strategy("u", &key("a"), at(0));
    r.failed("u", "refused");
    r.refused_strategy("u", &key("a"), at(5));
    assert_eq!(r.strategy_refused("u"), Some((key("a"), at(0))));
    r.refused_strategy("u", &key("b"), at(6));
    assert_eq!(r.strategy_refused("u"), Some((key("b"), at(6))));
    r.succeeded("u");
    assert_eq!(r.strategy_refused("u"), None);
}
