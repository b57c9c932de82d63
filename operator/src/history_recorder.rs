//! Observe step's companion, needs a client: while this replica leads, record the built-in
//! signal bucket by bucket (from the shared pod watch, so no extra reads) into the memory the
//! analysis reads, and into one key of a ConfigMap in the operator's namespace, so that a
//! restart or a new leader loses nothing. One server-side apply per bucket; each operator
//! scope owns its own key under its own field manager.

use crate::history::{Recorded, Recording};
use crate::pod_cache::SharedPodIndex;
use chrono::Utc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;
use tracing::{info, warn};

pub type SharedHistory = Arc<RwLock<Recorded>>;

/// The ConfigMap, in the operator's namespace, that keeps the recordings.
pub const CONFIGMAP: &str = "maintenance-operator-history";

/// Where one operator's recording lives, and what it records.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub namespace: String,
    /// `pod-start-failures.csv`, or `pod-start-failures.NS.csv` for an operator scoped to NS.
    pub key: String,
    pub recording: Recording,
}

impl Recorder {
    pub fn new(namespace: String, scope: Option<&str>, recording: Recording) -> Recorder {
        let key = match scope {
            Some(ns) => format!("pod-start-failures.{ns}.csv"),
            None => "pod-start-failures.csv".into(),
        };
        Recorder { namespace, key, recording }
    }

    /// Record until the future is dropped (the Lease lost, or the process stopping).
    pub async fn record(&self, client: Client, pods: SharedPodIndex, history: SharedHistory) {
        let api: Api<ConfigMap> = Api::namespaced(client, &self.namespace);
        let tick = self.recording.bucket.to_std().unwrap_or_default().min(StdDuration::from_secs(30));
        let mut unsaved = false;
        loop {
            tokio::time::sleep(tick.max(StdDuration::from_secs(1))).await;
            unsaved |= self.record_due(&pods, &history);
            if unsaved {
                unsaved = !self.save(&api, &history).await;
            }
        }
    }

    /// Count every bucket that can be judged now; whether any was.
    fn record_due(&self, pods: &SharedPodIndex, history: &SharedHistory) -> bool {
        let limit = self.recording.pending_limit;
        let pods = pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut h = history.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut any = false;
        while let Some((from, to)) = h.due(&self.recording, Utc::now(), pods.watched_since()) {
            // `counts` judges the pods created `limit` before the span it is given.
            let c = pods.counts(&[], &Default::default(), from + limit, to + limit, limit);
            h.push(to, c);
            any = true;
        }
        any
    }

    /// Load what earlier leaders recorded (before this replica's first look at an upgrade).
    pub async fn load(&self, client: Client, history: &SharedHistory) {
        let api: Api<ConfigMap> = Api::namespaced(client, &self.namespace);
        let text = match api.get_opt(CONFIGMAP).await {
            Ok(cm) => cm.and_then(|cm| cm.data).and_then(|mut d| d.remove(&self.key)),
            Err(e) => {
                warn!(
                    "could not read ConfigMap {}/{CONFIGMAP}: {e}; recording the built-in signal from now on",
                    self.namespace
                );
                return;
            }
        };
        let Some(text) = text else {
            info!("no recording of the built-in signal yet in {}/{CONFIGMAP}: starting one", self.namespace);
            return;
        };
        match Recorded::parse(&text) {
            Ok(loaded) => {
                let mut h = history.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                // A replica that led before keeps what it has if it is newer.
                if loaded.rows.last().map(|r| r.0) >= h.rows.last().map(|r| r.0) {
                    info!(
                        "loaded {} recorded buckets of the built-in signal from {}/{CONFIGMAP}",
                        loaded.rows.len(),
                        self.namespace
                    );
                    *h = loaded;
                }
            }
            Err(e) => warn!(
                "the recording {} in {}/{CONFIGMAP} cannot be read ({e}); it is replaced by a new one",
                self.key, self.namespace
            ),
        }
    }

    /// Write the whole recording (bounded by `history::KEEP`); whether it was written.
    async fn save(&self, api: &Api<ConfigMap>, history: &SharedHistory) -> bool {
        let csv = history.read().unwrap_or_else(|poisoned| poisoned.into_inner()).to_csv();
        let problem =
            |p: Option<String>| history.write().unwrap_or_else(|poisoned| poisoned.into_inner()).problem = p;
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": self.namespace},
            "data": {self.key.clone(): csv},
        });
        let manager = format!("maintenance-operator-{}", self.key.trim_end_matches(".csv"));
        match api.patch(CONFIGMAP, &PatchParams::apply(&manager).force(), &Patch::Apply(&cm)).await {
            Ok(_) => {
                problem(None);
                true
            }
            Err(e) => {
                let why = format!("could not write the recording to {}/{CONFIGMAP}: {e}", self.namespace);
                warn!("{why}; retrying");
                problem(Some(why));
                false
            }
        }
    }
}
