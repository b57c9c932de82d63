//! Observe step, needs a client: the nodes' names and labels, from one shared metadata watch (a
//! kube-runtime reflector), so that a canary's nodeSelector is matched in memory. Listing the
//! nodes a selector picks on every look of every upgrade read every node's metadata each time
//! (kilobytes of annotations and managed fields each, thousands of nodes), and any tenant with a
//! DaemonSet could ask for it.

use crate::constants::LIST_PAGE_SIZE;
use crate::decide::NodeFacts;
use crate::metrics::WatchFailures;
use crate::signals::pod_index::to_chrono;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Node;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::{BTreeMap, BTreeSet};

/// The label that says a node's zone (well-known, set by cloud providers).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

#[derive(Clone)]
pub struct NodeCache {
    store: Store<PartialObjectMeta<Node>>,
}

impl NodeCache {
    /// Start the watch; it runs as long as the process, resuming after errors with backoff.
    /// Each failure counts in `failures`.
    pub fn start(client: &Client, failures: &WatchFailures) -> NodeCache {
        let (store, writer) = reflector::store();
        let meta = Api::<PartialObjectMeta<Node>>::all(client.clone());
        let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
        // Only names and labels are kept.
        let stream = watcher(meta, config).default_backoff().modify(|n| {
            n.metadata.annotations = None;
            n.metadata.managed_fields = None;
        });
        // A failure is said (no right to watch nodes, say: the canaries that pick nodes by label
        // wait meanwhile) and the watch resumes with backoff.
        failures.watching("nodes");
        let failures = failures.clone();
        tokio::spawn(futures::StreamExt::for_each(reflector::reflector(writer, stream), move |event| {
            if let Err(e) = event {
                failures.failed("nodes");
                tracing::warn!("the watch of nodes failed: {e}; resuming");
            }
            async {}
        }));
        NodeCache { store }
    }

    /// Whether the watch has listed every node once (`/readyz` waits for it).
    pub fn listed(&self) -> bool {
        self.store.wait_until_ready().now_or_never().is_some_and(|r| r.is_ok())
    }

    /// The names of the nodes whose labels hold every pair of `node_selector`; None until the
    /// watch has listed them all once (the canary waits).
    pub fn selected(&self, node_selector: &BTreeMap<String, String>) -> Option<BTreeSet<String>> {
        if !self.listed() {
            return None;
        }
        let nodes = self.store.state();
        Some(
            nodes
                .iter()
                .filter(|n| selects(node_selector, n.metadata.labels.as_ref()))
                .filter_map(|n| n.metadata.name.clone())
                .collect(),
        )
    }
}

impl NodeCache {
    /// What the watch says of each node of `names` it has seen: when it was created, its zone
    /// (none until it has listed them all once).
    pub fn facts<'n>(&self, names: impl Iterator<Item = &'n str>) -> BTreeMap<String, NodeFacts> {
        if !self.listed() {
            return BTreeMap::new();
        }
        names
            .filter_map(|name| {
                let node = self.store.get(&ObjectRef::new(name))?;
                let facts = NodeFacts {
                    created: node.metadata.creation_timestamp.as_ref().map(|t| to_chrono(t.0)),
                    zone: node.metadata.labels.as_ref().and_then(|l| l.get(ZONE_LABEL)).cloned(),
                };
                Some((name.to_string(), facts))
            })
            .collect()
    }
}

/// Whether a node with `labels` has every label of `node_selector`, as a pod's nodeSelector
/// means it.
pub fn selects(node_selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    node_selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
#[path = "node_cache_tests.rs"]
mod tests;
