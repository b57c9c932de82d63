//! Observe step, needs a client: one watch each of the Deployments, DaemonSets and StatefulSets
//! that upgrades have claimed (they carry `CLAIMED_LABEL`), kept in stores trimmed to what
//! `target` reads. A change to a claimed target wakes the upgrade named on it, so that a rollout's
//! progress is seen at once instead of polled.
//!
//! The watches run as long as the process, leader or not, so that a follower that takes over
//! starts with warm stores. That is why they wake upgrades through a channel that the controller
//! subscribes to while it leads (`Controller::reconcile_on`), rather than through
//! `Controller::watches`, whose watches would only run while leading.

use crate::constants::{CLAIMED_LABEL, OWNER_ANNOTATION};
use crate::crd::{MaintenanceUpgrade, WorkloadKind};
use crate::target::{self, TargetKey, TargetState};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tracing::{debug, warn};

/// Wake-ups waiting for the controller; a controller that falls this far behind misses some and
/// relies on its requeue times instead.
const WAKE_BUFFER: usize = 4096;

type Written = Arc<Mutex<HashMap<TargetKey, TargetState>>>;

pub struct TargetCache {
    deployments: Store<Deployment>,
    daemonsets: Store<DaemonSet>,
    statefulsets: Store<StatefulSet>,
    /// Each target as our own last patch of it returned it: until the store has caught up with
    /// that version, it would show the target as it was before the patch.
    written: Written,
    wake: broadcast::Sender<ObjectRef<MaintenanceUpgrade>>,
    /// The one namespace watched, or None for all.
    scope: Option<String>,
}

impl TargetCache {
    /// Start the three watches, over one namespace or all of them.
    pub fn start(client: &Client, scope: Option<&str>) -> TargetCache {
        let (wake, _) = broadcast::channel(WAKE_BUFFER);
        let written = Written::default();
        let w = |kind| Watch { kind, wake: wake.clone(), written: written.clone() };
        TargetCache {
            deployments: w(WorkloadKind::Deployment).start(client, scope, |d: &mut Deployment| {
                trim_meta(&mut d.metadata);
                if let Some(s) = d.spec.as_mut() {
                    trim_template(&mut s.template);
                }
            }),
            daemonsets: w(WorkloadKind::DaemonSet).start(client, scope, |d: &mut DaemonSet| {
                trim_meta(&mut d.metadata);
                if let Some(s) = d.spec.as_mut() {
                    trim_template(&mut s.template);
                }
            }),
            statefulsets: w(WorkloadKind::StatefulSet).start(client, scope, |s: &mut StatefulSet| {
                trim_meta(&mut s.metadata);
                if let Some(s) = s.spec.as_mut() {
                    trim_template(&mut s.template);
                    s.volume_claim_templates = None;
                }
            }),
            written,
            wake,
            scope: scope.map(str::to_string),
        }
    }

    /// The upgrades whose claimed targets changed, from now on.
    pub fn wake_ups(&self) -> impl Stream<Item = ObjectRef<MaintenanceUpgrade>> + Send + 'static {
        futures::stream::unfold(self.wake.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(r) => return Some((r, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        debug!("{n} target changes were not passed on; their upgrades look again when due")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// The target as the store shows it, when the store has listed and holds it; as our last
    /// patch returned it while the store is older than that or has not seen it yet (a claim
    /// just made). None: read it from the API.
    pub fn get(&self, key: &TargetKey) -> Option<TargetState> {
        let watched = self.scope.as_ref().is_none_or(|ns| *ns == key.namespace);
        let mut written = lock(&self.written);
        let stored = match key.kind {
            WorkloadKind::Deployment => cached(&self.deployments, key).map(|d| target::from_deployment(&d)),
            WorkloadKind::DaemonSet => cached(&self.daemonsets, key).map(|d| target::from_daemonset(&d)),
            WorkloadKind::StatefulSet => {
                cached(&self.statefulsets, key).map(|s| target::from_statefulset(&s))
            }
        };
        match (stored, written.get(key)) {
            (None, ours) => ours.filter(|_| watched).cloned(),
            (Some(state), Some(ours)) if !not_older(&state.resource_version, &ours.resource_version) => {
                Some(ours.clone())
            }
            (Some(state), ours) => {
                if ours.is_some() {
                    written.remove(key);
                }
                Some(state)
            }
        }
    }

    /// Our patch of `key` returned it as `state`. A released target leaves the watch: nothing to
    /// remember of it.
    pub fn wrote(&self, key: &TargetKey, state: TargetState) {
        let mut written = lock(&self.written);
        match state.owner {
            Some(_) => written.insert(key.clone(), state),
            None => written.remove(key),
        };
    }

    /// `key` was read from the API: that is newer than anything remembered of it.
    pub fn forget(&self, key: &TargetKey) {
        lock(&self.written).remove(key);
    }
}

fn lock(w: &Written) -> std::sync::MutexGuard<'_, HashMap<TargetKey, TargetState>> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

fn cached<K>(store: &Store<K>, key: &TargetKey) -> Option<std::sync::Arc<K>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never()?.ok()?;
    store.get(&ObjectRef::new(&key.name).within(&key.namespace))
}

/// Whether a stored resourceVersion is at least `written`. Versions are opaque to clients, but
/// every API server backed by etcd hands out increasing integers; anything else is only trusted
/// when equal, and otherwise read from the API.
pub fn not_older(stored: &str, written: &str) -> bool {
    match (stored.parse::<u64>(), written.parse::<u64>()) {
        (Ok(s), Ok(w)) => s >= w,
        _ => stored == written,
    }
}

/// One watch of claimed targets of one kind, waking their upgrades.
struct Watch {
    kind: WorkloadKind,
    wake: broadcast::Sender<ObjectRef<MaintenanceUpgrade>>,
    written: Written,
}

impl Watch {
    /// Start watching targets of kind `K`, trimmed by `trim`, as long as the process runs.
    fn start<K>(self, client: &Client, scope: Option<&str>, trim: fn(&mut K)) -> Store<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + Sync
            + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let api: Api<K> = match scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (reader, writer) = reflector::store();
        let stream = watcher(api, watcher::Config::default().labels(CLAIMED_LABEL))
            .default_backoff()
            .modify(trim)
            .reflect(writer);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut failing = false;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                        failing = false;
                        self.woken_by(obj.meta(), false);
                    }
                    // Deleted, or no longer labelled as claimed.
                    Ok(watcher::Event::Delete(obj)) => self.woken_by(obj.meta(), true),
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                    Err(e) => {
                        if !failing {
                            warn!(
                                "the watch of claimed {}s failed: {e}; watching again (targets are read directly meanwhile)",
                                K::kind(&Default::default())
                            );
                        }
                        failing = true;
                    }
                }
            }
        });
        reader
    }

    /// Wake the owner of a target that changed, unless the change is our own last patch: the
    /// look that made it has already asked to look again. A target that left the watch is
    /// forgotten, so that it is read from the API next.
    fn woken_by(&self, meta: &ObjectMeta, left: bool) {
        let Some(owner) = owner_of(meta) else { return };
        let key = TargetKey {
            kind: self.kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        };
        let mut written = lock(&self.written);
        if left {
            written.remove(&key);
        } else if written
            .get(&key)
            .is_some_and(|t| Some(&t.resource_version) == meta.resource_version.as_ref())
        {
            return;
        }
        drop(written);
        // No receiver (not leading) is not an error: nothing needs waking.
        let _ = self.wake.send(owner);
    }
}

/// The upgrade a claimed target names as its owner (`namespace/name`).
fn owner_of(meta: &ObjectMeta) -> Option<ObjectRef<MaintenanceUpgrade>> {
    let (ns, name) = meta.annotations.as_ref()?.get(OWNER_ANNOTATION)?.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// Only what `target` reads is kept: no managedFields, no annotations but ours.
fn trim_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| k.starts_with("maintenance.dev/"));
    }
}

/// Of the pod template, only each container's name and image.
fn trim_template(template: &mut PodTemplateSpec) {
    template.metadata = None;
    if let Some(spec) = template.spec.as_mut() {
        let containers = spec
            .containers
            .iter()
            .map(|c| Container { name: c.name.clone(), image: c.image.clone(), ..Default::default() })
            .collect();
        *spec = PodSpec { containers, ..Default::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    #[test]
    fn a_trimmed_target_reads_as_the_whole_one() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "apps", "generation": 2, "resourceVersion": "41",
                "labels": {"app": "web", CLAIMED_LABEL: "u-1"},
                "annotations": {OWNER_ANNOTATION: "ops/up", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}],
                    "volumes": [{"name": "v", "emptyDir": {}}]}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        let mut trimmed = d.clone();
        trim_meta(&mut trimmed.metadata);
        trim_template(&mut trimmed.spec.as_mut().unwrap().template);
        assert_eq!(target::from_deployment(&trimmed), target::from_deployment(&d));
        assert!(trimmed.metadata.managed_fields.is_none());
        assert_eq!(trimmed.metadata.annotations.as_ref().unwrap().len(), 1);
        assert_eq!(owner_of(&trimmed.metadata), Some(ObjectRef::new("up").within("ops")));
        assert_eq!(trimmed.name_any(), "web");
    }

    #[test]
    fn the_store_is_trusted_once_it_shows_our_last_patch() {
        assert!(not_older("42", "41"));
        assert!(not_older("41", "41"));
        assert!(!not_older("40", "41"));
        assert!(!not_older("abc", "41"));
        assert!(not_older("abc", "abc"));
        assert!(!not_older("41", ""), "a patch without a version distrusts the store");
    }
}
