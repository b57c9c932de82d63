//! Observe step, needs a client: which namespaces exist, from one shared metadata watch (a
//! kube-runtime reflector), so that a signal naming a namespace that does not exist is reported as
//! a spec to fix rather than read as an empty, inconclusive signal.

use crate::metrics::WatchFailures;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

#[derive(Clone)]
pub struct Namespaces {
    store: Store<PartialObjectMeta<Namespace>>,
    api: Api<Namespace>,
}

impl Namespaces {
    /// Start the watch; it runs as long as the process, resuming after errors with backoff.
    /// Each failure counts in `failures`.
    pub fn start(client: &Client, failures: &WatchFailures) -> Namespaces {
        let api = Api::<Namespace>::all(client.clone());
        let (store, writer) = reflector::store();
        // An Api of PartialObjectMeta watches metadata only: kube 5 asks the API server
        // for PartialObjectMetadata (kube-runtime's metadata_watcher is deprecated for this).
        let meta = Api::<PartialObjectMeta<Namespace>>::all(client.clone());
        let config = watcher::Config::default().page_size(crate::constants::LIST_PAGE_SIZE);
        let stream = watcher(meta, config).default_backoff();
        failures.watching("namespaces");
        let failures = failures.clone();
        tokio::spawn(futures::StreamExt::for_each(reflector::reflector(writer, stream), move |event| {
            if event.is_err() {
                failures.failed("namespaces");
            }
            async {}
        }));
        Namespaces { store, api }
    }

    /// Those of `names` that do not exist. The cache may not have seen a namespace created a
    /// moment ago, so a miss is confirmed with a read; a read that fails counts as existing, so
    /// that nothing is reported on a doubt. A name that is no namespace name (the CRD refuses
    /// one, but an upgrade stored before it did may hold one) is missing unread: kube puts a
    /// name into the request's path as it is.
    pub async fn missing(&self, names: &[String]) -> Vec<String> {
        let mut missing = vec![];
        for name in names {
            if !crate::names::is_dns_label(name) {
                missing.push(name.clone());
                continue;
            }
            if self.store.get(&ObjectRef::new(name)).is_some() {
                continue;
            }
            if let Ok(None) = self.api.get_metadata_opt(name).await {
                missing.push(name.clone());
            }
        }
        missing
    }
}
