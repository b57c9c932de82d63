//! Unit tests of `pod_cache.rs`: a failing watch resumes rather than listing every pod again.

use super::*;
use futures::{StreamExt, stream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

type Item = Result<watcher::Event<Pod>, watcher::Error>;

/// An index both of whose watches have listed.
fn listed() -> SharedPodIndex {
    let index = SharedPodIndex::default();
    {
        let mut i = index.write().unwrap();
        i.pod_event(&watcher::Event::Init, Utc::now());
        i.pod_event(&watcher::Event::InitDone, Utc::now());
        i.warning_event(&watcher::Event::Init, Utc::now());
        i.warning_event(&watcher::Event::InitDone, Utc::now());
    }
    index
}

/// Feed `index` from watches that each yield `items` then wait; how many were started after
/// `run_for` (of paused time).
async fn starts(index: &SharedPodIndex, items: fn() -> Vec<Item>, run_for: Duration) -> usize {
    let started = Arc::new(AtomicUsize::new(0));
    let count = started.clone();
    let start = move || {
        count.fetch_add(1, Ordering::SeqCst);
        stream::iter(items()).chain(stream::pending())
    };
    let hooks = Hooks {
        index: index.clone(),
        apply: PodIndex::pod_event,
        behind: PodIndex::pods_behind,
        lost: PodIndex::pods_lost,
    };
    let feeding = feed("pods", start, hooks, Default::default());
    let _ = tokio::time::timeout(run_for, feeding).await;
    started.load(Ordering::SeqCst)
}

fn two_errors() -> Vec<Item> {
    vec![Err(watcher::Error::NoResourceVersion), Err(watcher::Error::NoResourceVersion)]
}

#[tokio::test(start_paused = true)]
async fn a_watch_error_resumes_the_watch_and_lists_nothing_again() {
    let index = listed();
    assert_eq!(starts(&index, two_errors, Duration::from_secs(40)).await, 1, "resumed, not started again");
    assert!(index.read().unwrap().ready(), "resumed and quiet: nothing more is to come, so reads go on");
}

#[tokio::test(start_paused = true)]
async fn reads_wait_while_a_failed_watch_has_not_been_seen_working_again() {
    let index = listed();
    starts(&index, two_errors, Duration::from_secs(4)).await;
    assert!(!index.read().unwrap().ready(), "what the watch missed is still to come");
}

/// A resume that cannot connect fails only after the client's 30 s connect timeout: until
/// then the index is not trusted (failures it missed would be counted after their intervals
/// were judged).
#[tokio::test(start_paused = true)]
async fn reads_wait_through_a_resume_that_hangs_until_the_connect_timeout() {
    let index = listed();
    starts(&index, two_errors, Duration::from_secs(30)).await;
    assert!(!index.read().unwrap().ready(), "a resume still connecting is not a watch seen working");
    assert!(index.read().unwrap().listed(), "but its list stands: the replica stays Ready (/readyz)");
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_keeps_failing_is_started_afresh_and_the_index_waits_for_its_list() {
    let index = listed();
    let failing = || (0..20).map(|_| Err(watcher::Error::NoResourceVersion)).collect();
    assert!(starts(&index, failing, Duration::from_secs(90)).await >= 2);
    assert!(!index.read().unwrap().ready(), "until the new list is complete");
}
