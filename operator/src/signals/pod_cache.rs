//! Observe step, needs a client: one watch of pods and one of Warning Events for the whole
//! operator, feeding the `PodIndex` that every built-in signal of every upgrade reads.

use crate::constants::LIST_PAGE_SIZE;
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
    let all = watcher::Config::default().page_size(LIST_PAGE_SIZE);
    let failures =
        watcher::Config::default().page_size(LIST_PAGE_SIZE).fields("type=Warning,involvedObject.kind=Pod");
    let pods = Watch { what: "pods", api: api::<Pod>(client, scope), config: all };
    let hooks =
        Hooks { apply: PodIndex::pod_event, behind: PodIndex::pods_behind, lost: PodIndex::pods_lost };
    tokio::spawn(pods.feed(index.clone(), hooks));
    let events = Watch { what: "Warning Events", api: api::<Event>(client, scope), config: failures };
    let hooks = Hooks {
        apply: PodIndex::warning_event,
        behind: PodIndex::events_behind,
        lost: PodIndex::events_lost,
    };
    tokio::spawn(events.feed(index.clone(), hooks));
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
/// After a failure, how long a watch must stay quiet to count as resumed: the watcher says
/// nothing when it resumes, but an attempt that fails says so at once.
const QUIET: Duration = Duration::from_secs(5);

/// What the index is told of one watch.
struct Hooks<K> {
    apply: fn(&mut PodIndex, &watcher::Event<K>, DateTime<Utc>),
    /// Failing (true) and resuming, or working again (false).
    behind: fn(&mut PodIndex, bool),
    /// Started afresh: not ready until its new list is complete.
    lost: fn(&mut PodIndex),
}

impl<K> Watch<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    async fn feed(self, index: SharedPodIndex, hooks: Hooks<K>) {
        let start = || watcher(self.api.clone(), self.config.clone());
        feed(self.what, start, index, hooks).await
    }
}

/// Feed the index from a watch started by `start`. A watch that fails resumes where it was (the
/// watcher keeps its resourceVersion), so a dropped connection costs no list of every pod: the
/// index only waits (not ready) until the watch is seen working again, since the events it
/// missed are still to come. Only the API server's 410 (its history no longer reaches back that
/// far) makes the watcher list again, which the index follows. A watch that keeps failing for
/// `RELIST_AFTER` is started afresh: until its new list is complete the index is not ready, and
/// the signal is read later over the whole gap (which the analysis then does not judge).
async fn feed<K, S>(what: &'static str, start: impl Fn() -> S, index: SharedPodIndex, hooks: Hooks<K>)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let write = || index.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let mut stream = std::pin::pin!(start());
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            let next = match failing_since {
                None => stream.next().await,
                Some(_) => match tokio::time::timeout(QUIET, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        info!("the watch of {what} works again");
                        (failing_since, backoff) = (None, Duration::from_secs(1));
                        (hooks.behind)(&mut write(), false);
                        continue;
                    }
                },
            };
            let Some(event) = next else { break };
            match event {
                Ok(event) => {
                    if failing_since.take().is_some() {
                        info!("the watch of {what} works again");
                        (hooks.behind)(&mut write(), false);
                    }
                    backoff = Duration::from_secs(1);
                    (hooks.apply)(&mut write(), &event, Utc::now());
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(|| {
                        warn!("the watch of {what} failed: {e}; resuming it where it was (the built-in signal waits meanwhile)");
                        (hooks.behind)(&mut write(), true);
                        tokio::time::Instant::now()
                    });
                    if since.elapsed() >= RELIST_AFTER {
                        warn!(
                            "the watch of {what} has failed for {}s: starting it afresh (the built-in signal waits for its list)",
                            since.elapsed().as_secs()
                        );
                        let mut index = write();
                        (hooks.lost)(&mut index);
                        (hooks.behind)(&mut index, false);
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
