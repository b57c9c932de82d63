//! Observe step, needs a client: one watch of pods and one of Warning Events for the whole
//! operator, feeding the `PodIndex` that every built-in signal of every upgrade reads.

use crate::constants::LIST_PAGE_SIZE;
use crate::metrics::WatchFailures;
use crate::resuming_watch::{Fed, feed};
use crate::signals::pod_index::PodIndex;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::{Arc, RwLock};

pub type SharedPodIndex = Arc<RwLock<PodIndex>>;

/// Start both watches, over one namespace (an operator run with `--namespace` sees only that one)
/// or all of them. They run as long as the process; each failure counts in `failures`.
pub fn start(client: &Client, scope: Option<&str>, failures: &WatchFailures) -> SharedPodIndex {
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
    let warnings =
        watcher::Config::default().page_size(LIST_PAGE_SIZE).fields("type=Warning,involvedObject.kind=Pod");
    let pods =
        Watch { what: "pods", api: api::<Pod>(client, scope), config: all, failures: failures.clone() };
    let hooks = Hooks {
        index: index.clone(),
        apply: PodIndex::pod_event,
        behind: PodIndex::pods_behind,
        lost: PodIndex::pods_lost,
    };
    tokio::spawn(pods.feed(hooks));
    let events = Watch {
        what: "Warning Events",
        api: api::<Event>(client, scope),
        config: warnings,
        failures: failures.clone(),
    };
    let hooks = Hooks {
        index: index.clone(),
        apply: PodIndex::warning_event,
        behind: PodIndex::events_behind,
        lost: PodIndex::events_lost,
    };
    tokio::spawn(events.feed(hooks));
    index
}

struct Watch<K> {
    what: &'static str,
    api: Api<K>,
    config: watcher::Config,
    failures: WatchFailures,
}

/// What the index is told of one watch.
struct Hooks<K> {
    index: SharedPodIndex,
    apply: fn(&mut PodIndex, &watcher::Event<K>, DateTime<Utc>),
    /// Failing (true) and resuming, or working again (false).
    behind: fn(&mut PodIndex, bool),
    /// Started afresh: not ready until its new list is complete.
    lost: fn(&mut PodIndex),
}

impl<K> Hooks<K> {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, PodIndex> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K> Fed<K> for Hooks<K> {
    fn apply(&self, event: watcher::Event<K>) {
        (self.apply)(&mut self.write(), &event, Utc::now());
    }
    fn behind(&self, behind: bool) {
        (self.behind)(&mut self.write(), behind);
    }
    fn lost(&self) {
        (self.lost)(&mut self.write());
    }
}

impl<K> Watch<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    async fn feed(self, hooks: Hooks<K>) {
        let start = || watcher(self.api.clone(), self.config.clone());
        feed(self.what, start, hooks, self.failures.clone()).await
    }
}

#[cfg(test)]
#[path = "pod_cache_tests.rs"]
mod tests;
