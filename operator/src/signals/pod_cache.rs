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

/// The longest pause between two attempts to watch again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl<K> Watch<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    /// Feed the index from the watch. A watch that fails is started afresh, so that its new list
    /// shows what changed meanwhile; until that list is complete the index says it is not ready,
    /// and the signal is read later over the whole gap (which the analysis then does not judge).
    async fn feed(
        self,
        index: SharedPodIndex,
        apply: fn(&mut PodIndex, &watcher::Event<K>, DateTime<Utc>),
        lost: fn(&mut PodIndex),
    ) {
        let write = || index.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut backoff = Duration::from_secs(1);
        let mut failing = false;
        loop {
            let mut stream = std::pin::pin!(watcher(self.api.clone(), self.config.clone()));
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        if std::mem::take(&mut failing) {
                            info!("the watch of {} works again", self.what);
                        }
                        backoff = Duration::from_secs(1);
                        apply(&mut write(), &event, Utc::now());
                    }
                    Err(e) => {
                        if !failing {
                            warn!(
                                "the watch of {} failed: {e}; watching again (the built-in signal waits meanwhile)",
                                self.what
                            );
                        }
                        failing = true;
                        lost(&mut write());
                        break;
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
