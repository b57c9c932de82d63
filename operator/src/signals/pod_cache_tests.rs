//! Unit tests of `pod_cache.rs`: a failing watch resumes rather than listing every pod again.

use super::*;
use futures::stream;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    let feeding = feed("pods", start, index.clone(), PodIndex::pod_event, PodIndex::pods_lost);
    let _ = tokio::time::timeout(run_for, feeding).await;
    started.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn a_watch_error_resumes_the_watch_and_lists_nothing_again() {
    let index = listed();
    let errors = || vec![Err(watcher::Error::NoResourceVersion), Err(watcher::Error::NoResourceVersion)];
    assert_eq!(starts(&index, errors, Duration::from_secs(30)).await, 1, "resumed, not started again");
    assert!(index.read().unwrap().ready(), "nothing was lost, so reads need not wait");
}

#[tokio::test(start_paused = true)]
async fn a_watch_that_keeps_failing_is_started_afresh_and_the_index_waits_for_its_list() {
    let index = listed();
    let failing = || (0..20).map(|_| Err(watcher::Error::NoResourceVersion)).collect();
    assert!(starts(&index, failing, Duration::from_secs(90)).await >= 2);
    assert!(!index.read().unwrap().ready(), "until the new list is complete");
}
