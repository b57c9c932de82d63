//! Unit tests of `resuming_watch.rs`: what a failing watch tells the metrics.

use super::*;
use std::sync::Mutex;

/// Feeds nothing: these tests look only at the failures counted.
struct Nothing;

impl Fed<String> for Nothing {
    fn apply(&self, _: watcher::Event<String>) {}
    fn behind(&self, _: bool) {}
    fn lost(&self) {}
}

type Item = Result<watcher::Event<String>, watcher::Error>;

/// The line of `what`'s failures in the scrape.
fn failures_of(m: &crate::metrics::Metrics, what: &str) -> Option<String> {
    let series = format!("maintenance_operator_watch_failures_total{{watch=\"{what}\"}} ");
    m.render().lines().find(|l| l.starts_with(&series)).map(|l| l[series.len()..].to_string())
}

/// A watch's series is there at 0 from its start, and every failure counts, the retries of one
/// outage included: an alert on its increase sees the first failure and one that lasts.
#[tokio::test(start_paused = true)]
async fn every_failure_of_a_watch_counts_from_a_series_exported_at_zero() {
    let m = crate::metrics::Metrics::default();
    let (tx, rx) = futures::channel::mpsc::unbounded::<Item>();
    let rx = Mutex::new(Some(rx));
    let start = move || rx.lock().unwrap().take().expect("started once");
    tokio::spawn(feed("pods", start, Nothing, m.watch_failures.clone()));
    let settle = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    settle(10).await;
    assert_eq!(failures_of(&m, "pods").as_deref(), Some("0"), "{}", m.render());
    tx.unbounded_send(Err(watcher::Error::NoResourceVersion)).unwrap();
    settle(10).await;
    assert_eq!(failures_of(&m, "pods").as_deref(), Some("1"));
    // Still failing after its backoff: the retry counts too.
    tx.unbounded_send(Err(watcher::Error::NoResourceVersion)).unwrap();
    settle(1_100).await;
    assert_eq!(failures_of(&m, "pods").as_deref(), Some("2"));
    // Working again: nothing more.
    tx.unbounded_send(Ok(watcher::Event::Apply("a pod".into()))).unwrap();
    settle(2_100).await;
    assert_eq!(failures_of(&m, "pods").as_deref(), Some("2"));
}
