//! Observe step, needs a client: one watch of pods and one of Warning Events for the whole
//! operator, feeding the `PodIndex` that every built-in signal of every upgrade reads.

use crate::signals::pod_index::PodIndex;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::{info, warn};

pub type SharedPodIndex = Arc<RwLock<PodIndex>>;

/// Start both watches, over one namespace (an operator run with `--namespace` sees only that one)
/// or all of them. They run as long as the process.
pub fn start(client: &Client, scope: Option<&str>) -> SharedPodIndex {
    fn api<K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>>(
        client: &Client,
        scope: Option<&str>,
    ) -> Api<K>
    where
        K::DynamicType: Default,
    {
        match scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let index = SharedPodIndex::default();
    let all = watcher::Config::default();
    let failures = watcher::Config::default().fields("type=Warning,involvedObject.kind=Pod");
    let pods = Watch { what: "pods", api: api::<Pod>(client, scope), config: all };
    tokio::spawn(pods.feed(index.clone(), PodIndex::pod_event, PodIndex::pods_lost));
    let events = Watch { what: "Warning Events", api: api::<Event>(client, scope), config: failures };
    tokio::spawn(events.feed(index.clone(), PodIndex::warning_event, PodIndex::events_lost));
    index
}

struct Watch<K> {
    what: &'static str,
    api: Api<K>,
    config: watcher::Config,
}

/// The longest pause between two attempts to resume a watch.
const MAX_BACKOFF: Duration = Duration::from_secs(16);
/// How long a watch may keep failing before it is started afresh, with a new list.
const RELIST_AFTER: Duration = Duration::from_secs(60);

impl<K> Watch<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    async fn feed(
        self,
        index: SharedPodIndex,
        apply: fn(&mut PodIndex, &watcher::Event<K>, DateTime<Utc>),
        lost: fn(&mut PodIndex),
    ) {
        let start = || watcher(self.api.clone(), self.config.clone());
        feed(self.what, start, index, apply, lost).await
    }
}

/// Feed the index from a watch started by `start`. A watch that fails resumes where it was (the
/// watcher keeps its resourceVersion), so a dropped connection costs no list of every pod; only
/// the API server's 410 (its history no longer reaches back that far) makes the watcher list
/// again, which the index follows. A watch that keeps failing for `RELIST_AFTER` is started
/// afresh: until its new list is complete the index says it is not ready, and the signal is read
/// later over the whole gap (which the analysis then does not judge).
async fn feed<K, S>(
    what: &'static str,
    start: impl Fn() -> S,
    index: SharedPodIndex,
    apply: fn(&mut PodIndex, &watcher::Event<K>, DateTime<Utc>),
    lost: fn(&mut PodIndex),
) where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let write = || index.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let mut stream = std::pin::pin!(start());
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_secs(1);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if failing_since.take().is_some() {
                        info!("the watch of {what} works again");
                    }
                    backoff = Duration::from_secs(1);
                    apply(&mut write(), &event, Utc::now());
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(|| {
                        warn!("the watch of {what} failed: {e}; resuming it where it was");
                        tokio::time::Instant::now()
                    });
                    if since.elapsed() >= RELIST_AFTER {
                        warn!(
                            "the watch of {what} has failed for {}s: starting it afresh (the built-in signal waits for its list)",
                            since.elapsed().as_secs()
                        );
                        lost(&mut write());
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
#[path = "pod_cache_tests.rs"]
mod tests;
