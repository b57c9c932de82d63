//! Observe step's companion, needs a client: while this replica leads, record the built-in
//! signal bucket by bucket (from the shared pod watch, so no extra reads) into the memory the
//! analysis reads, and into keys of a ConfigMap in the operator's namespace, so that a restart
//! or a new leader loses nothing: the operator's whole scope under one key, each scope upgrades
//! named (`scopes`) under its own, and their index. One server-side apply per bucket;
//! each operator scope owns its own keys under its own field manager.

use crate::crd::{MaintenanceUpgrade, NodeScope};
use crate::history::scopes::{IndexEntry, Recordings, SCOPE_ROWS, WHOLE_ROWS, max_scopes, named_by};
use crate::history::{Recorded, Recording};
use crate::metrics::{Metrics, ResultLabel};
use crate::signals::pod_cache::SharedPodIndex;
use crate::signals::pod_index::PodIndex;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::core::Selector;
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;
use tracing::{info, warn};

pub type SharedHistory = Arc<RwLock<Recordings>>;

/// The ConfigMap, in the operator's namespace, that keeps the recordings.
pub const CONFIGMAP: &str = "maintenance-operator-history";

/// Where one operator's recordings live, and what the whole one records.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub namespace: String,
    /// `pod-start-failures.csv`, or `pod-start-failures.NS.csv` for an operator scoped to NS.
    pub key: String,
    /// The namespace the operator watches, if only one.
    pub scope: Option<String>,
    pub recording: Recording,
    /// Namespaces whose upgrades' signals may count other namespaces (`signals_as_read`).
    pub trusted: Vec<String>,
}

impl Recorder {
    pub fn new(
        namespace: String,
        scope: Option<&str>,
        recording: Recording,
        trusted: Vec<String>,
    ) -> Recorder {
        let key = match scope {
            Some(ns) => format!("pod-start-failures.{ns}.csv"),
            None => "pod-start-failures.csv".into(),
        };
        Recorder { namespace, key, scope: scope.map(String::from), recording, trusted }
    }

    /// What the keys of named scopes start with: `pod-start-failures` or `pod-start-failures.NS`.
    pub fn prefix(&self) -> &str {
        self.key.strip_suffix(".csv").unwrap_or(&self.key)
    }

    fn index_key(&self) -> String {
        format!("{}_scopes.json", self.prefix())
    }

    /// Record until the future is dropped (the Lease lost, or the process stopping). `loaded`:
    /// what earlier leaders recorded has been read; until it is, nothing is written, since a
    /// write of what this replica has would replace theirs.
    pub async fn record(
        &self,
        client: Client,
        pods: SharedPodIndex,
        history: SharedHistory,
        upgrades: Store<MaintenanceUpgrade>,
        mut loaded: bool,
        metrics: Metrics,
    ) {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &self.namespace);
        // A replica that no longer leads records nothing, so its gauge must not keep saying so.
        let _scopes = ZeroOnDrop(metrics.history_scopes.clone());
        let tick = self.recording.bucket.to_std().unwrap_or_default().min(StdDuration::from_secs(30));
        let mut unsaved = false;
        loop {
            tokio::time::sleep(tick.max(StdDuration::from_secs(1))).await;
            if !loaded {
                loaded = self.load(client.clone(), &history).await;
                // Nothing is recorded until it can be read: as much a failure as a failed write.
                if !loaded {
                    metrics.history_writes.get_or_create(&ResultLabel { result: "failed".into() }).inc();
                }
            }
            self.name_scopes(&upgrades, &history);
            // Counting before the load would make this replica's few rows look newer than
            // the week the ConfigMap holds.
            if loaded {
                unsaved |= self.record_due(&pods, &history);
            }
            if unsaved {
                unsaved = !self.save(&api, &history).await;
                let result = if unsaved { "failed" } else { "written" };
                metrics.history_writes.get_or_create(&ResultLabel { result: result.into() }).inc();
            }
            let scopes = history.read().unwrap_or_else(|poisoned| poisoned.into_inner()).scoped.len();
            metrics.history_scopes.set(scopes as i64);
        }
    }

    /// Every upgrade in progress keeps the scopes of its built-in signals recorded, however
    /// long it waits for its window (`scopes::named_by` says which).
    fn name_scopes(&self, upgrades: &Store<MaintenanceUpgrade>, history: &SharedHistory) {
        let named: Vec<_> = upgrades
            .state()
            .iter()
            .flat_map(|mu| {
                let ns = mu.namespace().unwrap_or_default();
                let named = named_by(mu, &self.recording, self.scope.as_deref(), &self.trusted);
                named.into_iter().map(move |s| (ns.clone(), s))
            })
            .collect();
        if named.is_empty() {
            return;
        }
        let now = Utc::now();
        let mut h = history.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (ns, scope) in named {
            // A ninth scope: its upgrade's baseline says so when it is read.
            let _ = h.name(self.prefix(), max_scopes(self.scope.as_deref()), &ns, &scope, now);
        }
    }

    /// Count every bucket that can be judged now, in every recording, and forget the scopes
    /// no upgrade named for a week; whether anything changed.
    fn record_due(&self, pods: &SharedPodIndex, history: &SharedHistory) -> bool {
        let pods = pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut h = history.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Utc::now();
        let mut any = h.expire(now);
        let all = NodeScope::All;
        any |= count_due(
            &mut h.whole,
            &self.recording,
            (&[], &Default::default(), &all),
            WHOLE_ROWS,
            &pods,
            now,
        );
        for s in h.scoped.values_mut() {
            // Checked when the scope was named.
            let Ok(selector) = crate::signals::selector::parse(&s.scope.label_selector) else { continue };
            let r = Recordings::recording_of(&self.recording, s);
            let nodes = s.scope.node_scope();
            any |= count_due(
                &mut s.recorded,
                &r,
                (&s.scope.namespaces, &selector, &nodes),
                SCOPE_ROWS,
                &pods,
                now,
            );
        }
        any
    }

    /// Load what earlier leaders recorded (before this replica's first look at an upgrade);
    /// whether the ConfigMap could be read.
    pub async fn load(&self, client: Client, history: &SharedHistory) -> bool {
        let api: Api<ConfigMap> = Api::namespaced(client, &self.namespace);
        let data = match api.get_opt(CONFIGMAP).await {
            Ok(cm) => cm.and_then(|cm| cm.data).unwrap_or_default(),
            Err(e) => {
                let why = format!("could not read ConfigMap {}/{CONFIGMAP}: {e}", self.namespace);
                warn!("{why}; recording nothing until it can be read");
                history.write().unwrap_or_else(|poisoned| poisoned.into_inner()).whole.problem = Some(why);
                return false;
            }
        };
        let mut h = history.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.take_in(data, &mut h, Utc::now());
        true
    }

    /// Take in what the ConfigMap's `data` holds, read at `now`. It may have been edited by hand
    /// or written by a replica whose clock ran ahead: rows dated ahead of now are dropped (they
    /// would push the week out, and stop the recording until that date), and so is an index
    /// entry that is not a scope of this operator's (`sane`).
    fn take_in(&self, mut data: BTreeMap<String, String>, h: &mut Recordings, now: DateTime<Utc>) {
        let latest = now + self.recording.bucket;
        let parse = |text: &str| Recorded::parse(text).map(|r| r.until(latest));
        // This replica's own rows from a clock that ran ahead, and was set right since.
        h.whole = std::mem::take(&mut h.whole).until(latest);
        for s in h.scoped.values_mut() {
            s.recorded = std::mem::take(&mut s.recorded).until(latest);
        }
        match data.remove(&self.key).map(|text| parse(&text)) {
            None => info!(
                "no recording of the built-in signal yet in {}/{CONFIGMAP}: starting one",
                self.namespace
            ),
            // A replica that led before keeps what it has if it is newer.
            Some(Ok(loaded)) if newer(&loaded, &h.whole) => {
                info!(
                    "loaded {} recorded buckets of the built-in signal from {}/{CONFIGMAP}",
                    loaded.rows.len(),
                    self.namespace
                );
                h.whole = loaded;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => warn!(
                "the recording {} in {}/{CONFIGMAP} cannot be read ({e}); it is replaced by a new one",
                self.key, self.namespace
            ),
        }
        let index: Vec<IndexEntry> = match data.remove(&self.index_key()).map(|t| serde_json::from_str(&t)) {
            None => vec![],
            Some(Ok(index)) => index,
            Some(Err(e)) => {
                warn!(
                    "the index {} in {}/{CONFIGMAP} cannot be read ({e}); named scopes are recorded anew",
                    self.index_key(),
                    self.namespace
                );
                vec![]
            }
        };
        let loaded: Vec<(IndexEntry, Recorded)> = index
            .into_iter()
            .filter(|e| {
                let sane = e.sane(self.prefix());
                if !sane {
                    warn!("the index {} in {}/{CONFIGMAP} names a scope no recording can have ({}): left out",
                        self.index_key(), self.namespace, e.key);
                }
                sane
            })
            .map(|mut e| {
                // Named ahead of now (a clock that ran ahead): it would keep its slot that long.
                e.named_at = e.named_at.min(now);
                let recorded = match data.remove(&e.key).map(|text| parse(&text)) {
                    Some(Ok(r)) => r,
                    Some(Err(err)) => {
                        warn!(
                            "the recording {} in {}/{CONFIGMAP} cannot be read ({err}); it is replaced by a new one",
                            e.key, self.namespace
                        );
                        Recorded::default()
                    }
                    None => Recorded::default(),
                };
                info!(
                    "loaded {} recorded buckets of {} from {}/{CONFIGMAP}",
                    recorded.rows.len(),
                    e.scope.describe(),
                    self.namespace
                );
                (e, recorded)
            })
            .collect();
        h.merge(self.prefix(), max_scopes(self.scope.as_deref()), now, loaded);
        h.whole.problem = None;
    }

    /// Write every recording (each bounded by `history::KEEP`); whether they were written.
    async fn save(&self, api: &Api<ConfigMap>, history: &SharedHistory) -> bool {
        let data: BTreeMap<String, String> = {
            let h = history.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut data = BTreeMap::from([(self.key.clone(), h.whole.to_csv())]);
            if !h.scoped.is_empty() {
                data.insert(self.index_key(), serde_json::to_string(&h.index()).unwrap_or_default());
            }
            data.extend(h.scoped.iter().map(|(k, s)| (k.clone(), s.recorded.to_csv())));
            data
        };
        let problem = |p: Option<String>| {
            history.write().unwrap_or_else(|poisoned| poisoned.into_inner()).whole.problem = p
        };
        let cm = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": self.namespace},
            "data": data,
        });
        // Keys this manager applied before and leaves out now (a forgotten scope) are removed.
        let manager = format!("maintenance-operator-{}", self.prefix());
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

/// Count the pods of `namespaces` matching `selector` on `nodes` into each bucket of `recorded` that can
/// be judged at `now`, keeping at most `max_rows`; whether any was.
fn count_due(
    recorded: &mut Recorded,
    r: &Recording,
    (namespaces, selector, nodes): (&[String], &Selector, &NodeScope),
    max_rows: usize,
    pods: &PodIndex,
    now: DateTime<Utc>,
) -> bool {
    let mut any = false;
    while let Some((from, to)) = recorded.due(r, now, pods.watched_since()) {
        // `counts` judges the pods created `limit` before the span it is given.
        let limit = r.pending_limit;
        recorded.push(to, pods.counts(namespaces, selector, nodes, from + limit, to + limit, limit));
        any = true;
    }
    recorded.trim(max_rows);
    any
}

/// Whether `a` reaches later than `b` (or as far).
fn newer(a: &Recorded, b: &Recorded) -> bool {
    a.last_at() >= b.last_at()
}

/// Sets a gauge to zero when dropped: when `record` stops, with the Lease lost or at shutdown.
struct ZeroOnDrop(Gauge);

impl Drop for ZeroOnDrop {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
