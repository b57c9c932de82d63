//! Observe step, needs a client: one watch each of the Deployments, DaemonSets and StatefulSets
//! that upgrades have claimed (they carry `CLAIMED_LABEL`), kept as the few facts `target` reads
//! of each (a `TargetState`, not the whole object: memory follows the targets, a few hundred
//! bytes each). A change to a claimed target wakes the upgrade named on it, so that a rollout's
//! progress is seen at once instead of polled.
//!
//! The watches run as long as the process, leader or not, so that a follower that takes over
//! starts with warm stores. That is why they wake upgrades through a channel that the controller
//! subscribes to while it leads (`Controller::reconcile_on`), rather than through
//! `Controller::watches`, whose watches would only run while leading.

use crate::constants::{CLAIMED_LABEL, LIST_PAGE_SIZE};
use crate::controller::wake::WakeUps;
use crate::crd::{MaintenanceUpgrade, WorkloadKind};
use crate::metrics::WatchFailures;
use crate::resuming_watch::{Fed, feed};
use crate::target::{self, TargetKey, TargetState};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Wake-ups waiting for the controller; a controller that falls this far behind misses some and
/// relies on its requeue times instead.
const WAKE_BUFFER: usize = 4096;

type Shared<T> = Arc<Mutex<T>>;

/// A claimed target changed: the target, and the upgrade its mark names if one may own it.
#[derive(Clone, Debug)]
pub struct TargetWakeUp {
    pub target: TargetKey,
    pub owner: Option<ObjectRef<MaintenanceUpgrade>>,
    /// It left the watch: deleted, or released by its owner, so that an upgrade waiting for it
    /// may claim it now.
    pub left: bool,
}

pub struct TargetCache {
    stored: Shared<Stored>,
    /// Each target as our own last patch of it returned it: until the store has caught up with
    /// that version, it would show the target as it was before the patch.
    written: Shared<HashMap<TargetKey, TargetState>>,
    wake: WakeUps<TargetWakeUp>,
    /// The one namespace watched, or None for all.
    scope: Option<String>,
}

/// What the three watches show: every claimed target, and which watches have listed.
#[derive(Debug, Default)]
struct Stored {
    targets: HashMap<TargetKey, TargetState>,
    listed: HashSet<WorkloadKind>,
    /// The watches that failed and have not been seen working again: what they missed is still
    /// to come, so their targets are read from the API meanwhile.
    behind: HashSet<WorkloadKind>,
    /// The targets a watch that is listing again has shown so far.
    relisting: HashMap<WorkloadKind, HashSet<TargetKey>>,
}

impl Stored {
    fn get(&self, key: &TargetKey) -> Option<&TargetState> {
        self.answers(key.kind).then(|| self.targets.get(key)).flatten()
    }

    /// Whether the watch of `kind` has listed and is not behind: what it holds is all there is.
    fn answers(&self, kind: WorkloadKind) -> bool {
        self.listed.contains(&kind) && !self.behind.contains(&kind)
    }

    /// One event of the watch of `kind`.
    fn apply(&mut self, kind: WorkloadKind, event: watcher::Event<(TargetKey, TargetState)>) {
        match event {
            watcher::Event::Init => {
                // What changed while the watch was down is only known once it has listed again.
                self.listed.remove(&kind);
                self.relisting.insert(kind, HashSet::new());
            }
            watcher::Event::InitApply((key, state)) => {
                self.relisting.entry(kind).or_default().insert(key.clone());
                self.targets.insert(key, state);
            }
            watcher::Event::InitDone => {
                // A target the new list lacks was deleted or released while the watch was down.
                let seen = self.relisting.remove(&kind).unwrap_or_default();
                self.targets.retain(|k, _| k.kind != kind || seen.contains(k));
                self.listed.insert(kind);
            }
            watcher::Event::Apply((key, state)) => {
                self.targets.insert(key, state);
            }
            watcher::Event::Delete((key, _)) => {
                self.targets.remove(&key);
            }
        }
    }
}

impl TargetCache {
    /// Start the three watches, over one namespace or all of them; `trusted`: the namespaces
    /// whose upgrades may own targets in others. Each failure counts in `failures`.
    pub fn start(
        client: &Client,
        scope: Option<&str>,
        trusted: &[String],
        failures: &WatchFailures,
    ) -> TargetCache {
        let wake = WakeUps::new("target changes", WAKE_BUFFER);
        let (stored, written) = (Shared::default(), Shared::default());
        let trusted = Arc::new(trusted.to_vec());
        let w = |kind| Watch {
            kind,
            wake: wake.clone(),
            stored: Arc::clone(&stored),
            written: Arc::clone(&written),
            trusted: Arc::clone(&trusted),
        };
        w(WorkloadKind::Deployment).start::<Deployment>(client, scope, target::from_deployment, failures);
        w(WorkloadKind::DaemonSet).start::<DaemonSet>(client, scope, target::from_daemonset, failures);
        w(WorkloadKind::StatefulSet).start::<StatefulSet>(client, scope, target::from_statefulset, failures);
        TargetCache { stored, written, wake, scope: scope.map(str::to_string) }
    }

    /// The claimed targets that changed, with the upgrades their marks name, from now on.
    pub fn wake_ups(&self) -> impl futures::Stream<Item = TargetWakeUp> + Send + 'static {
        self.wake.stream()
    }

    /// The target as the watch shows it, when the watch has listed and holds it; as our last
    /// patch returned it while the watch is older than that or has not seen it yet (a claim
    /// just made). None: read it from the API, as while the watch has not listed or is behind
    /// (our last patch, however old, must not stand in for it then).
    pub fn get(&self, key: &TargetKey) -> Option<TargetState> {
        let (stored, answers) = {
            let stored = lock(&self.stored);
            (stored.get(key).cloned(), stored.answers(key.kind))
        };
        let watched = self.watches(&key.namespace) && answers;
        let mut written = lock(&self.written);
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

    /// Whether the watch can say of `key` that it is not claimed: it covers its namespace and
    /// has listed its kind, so that `get` returning None means no target there carries a mark.
    pub fn answers_for(&self, key: &TargetKey) -> bool {
        self.watches(&key.namespace) && lock(&self.stored).answers(key.kind)
    }

    /// Whether the watch covers `namespace`.
    fn watches(&self, namespace: &str) -> bool {
        self.scope.as_ref().is_none_or(|ns| ns == namespace)
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    wake: WakeUps<TargetWakeUp>,
    stored: Shared<Stored>,
    written: Shared<HashMap<TargetKey, TargetState>>,
    /// The namespaces whose upgrades may own targets in others (`owner_of`).
    trusted: Arc<Vec<String>>,
}

impl Watch {
    /// Watch targets of kind `K`, kept as `state` of each, as long as the process runs.
    fn start<K>(
        self,
        client: &Client,
        scope: Option<&str>,
        state: fn(&K) -> TargetState,
        failures: &WatchFailures,
    ) where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
        K::DynamicType: Default,
    {
        let api: Api<K> = match scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let config = watcher::Config::default().page_size(LIST_PAGE_SIZE).labels(CLAIMED_LABEL);
        let what = format!("claimed {}s", K::kind(&Default::default()));
        let start = move || watcher(api.clone(), config.clone());
        let feeding = self.feeding(state);
        // Trusted again only past the client's connect timeout: a resume that cannot connect
        // must not let a store that missed a rollout's end stand for the targets meanwhile.
        let failures = failures.clone();
        tokio::spawn(async move { feed(&what, start, feeding, failures).await });
    }

    /// What feeds this watch's store from a watch of `K`, kept as `state` of each.
    fn feeding<K>(self, state: fn(&K) -> TargetState) -> Feeding<K> {
        Feeding { watch: self, state }
    }

    fn key(&self, meta: &ObjectMeta) -> TargetKey {
        TargetKey {
            kind: self.kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// Wake the owner of a target that changed, unless the change is our own last patch: the
    /// look that made it has already asked to look again. A target that left the watch is
    /// forgotten, so that it is read from the API next.
    /// A target that left with no owner, or one that may not own it, is forgotten all the same:
    /// our last patch of it must not stand in for it (`get`).
    fn woken_by(&self, key: &TargetKey, t: &TargetState, left: bool) {
        let mut written = lock(&self.written);
        if left {
            written.remove(key);
        } else if written.get(key).is_some_and(|w| w.resource_version == t.resource_version) {
            return;
        }
        drop(written);
        let owner = owner_of(key, t, &self.trusted);
        if owner.is_some() || left {
            // No receiver (not leading) is not an error: nothing needs waking.
            self.wake.wake(TargetWakeUp { target: key.clone(), owner, left });
        }
    }
}

/// A watch of claimed targets of one kind, as its objects (`K`) come.
struct Feeding<K> {
    watch: Watch,
    state: fn(&K) -> TargetState,
}

impl<K: Resource> Fed<K> for Feeding<K> {
    fn apply(&self, event: watcher::Event<K>) {
        let w = &self.watch;
        let keyed = |o: &K| (w.key(o.meta()), (self.state)(o));
        let event = match &event {
            watcher::Event::Apply(o) => watcher::Event::Apply(keyed(o)),
            watcher::Event::InitApply(o) => watcher::Event::InitApply(keyed(o)),
            watcher::Event::Delete(o) => watcher::Event::Delete(keyed(o)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        };
        let woken = match &event {
            watcher::Event::Apply((k, t)) | watcher::Event::InitApply((k, t)) => {
                Some((k.clone(), t.clone(), false))
            }
            // Deleted, or no longer labelled as claimed.
            watcher::Event::Delete((k, t)) => Some((k.clone(), t.clone(), true)),
            watcher::Event::Init | watcher::Event::InitDone => None,
        };
        let listed = matches!(event, watcher::Event::InitDone);
        // The store first: the look the wake-up starts must see the change.
        let mut stored = lock(&w.stored);
        stored.apply(w.kind, event);
        if listed {
            // A target the new list lacks left the watch while it was down: our last patch of
            // it must not stand in for it either.
            let kept: HashSet<TargetKey> =
                stored.targets.keys().filter(|k| k.kind == w.kind).cloned().collect();
            drop(stored);
            lock(&w.written).retain(|k, _| k.kind != w.kind || kept.contains(k));
        } else {
            drop(stored);
        }
        if let Some((key, t, left)) = woken {
            w.woken_by(&key, &t, left);
        }
    }

    fn behind(&self, behind: bool) {
        let mut stored = lock(&self.watch.stored);
        match behind {
            true => stored.behind.insert(self.watch.kind),
            false => stored.behind.remove(&self.watch.kind),
        };
    }

    fn lost(&self) {
        lock(&self.watch.stored).listed.remove(&self.watch.kind);
    }
}

/// The upgrade a claimed target names as its owner (`namespace/name`), if it may own it: one of
/// the target's namespace, or of a trusted one. Anyone who may edit a workload may write the
/// label and annotation that name an owner; a tenant's own workload naming another namespace's
/// upgrade must not wake it at will (a look costs the other tenants their turn).
fn owner_of(key: &TargetKey, t: &TargetState, trusted: &[String]) -> Option<ObjectRef<MaintenanceUpgrade>> {
    let (ns, name) = crate::target::owner_key(t.owner.as_deref()?)?;
    (ns == key.namespace || trusted.iter().any(|n| n == ns)).then(|| ObjectRef::new(name).within(ns))
}

/// The upgrades a target's change wakes, among those the store holds: its owner, and once its
/// owner has let it go (released, or it was deleted) the upgrade that has waited longest to
/// claim it, so that it starts at once instead of at its next retry (one, not every waiter:
/// only one can claim it). Only upgrades whose spec names the target: a trusted upgrade may own
/// targets anywhere, so a tenant could otherwise mark her own workload with its name (and a UID
/// read off a workload it once claimed) and wake it at will; a target its spec names is one the
/// tenant could wake it through anyway, by editing it.
pub fn to_wake(
    store: &Store<MaintenanceUpgrade>,
    trusted: &[String],
    woken: &TargetWakeUp,
) -> Vec<ObjectRef<MaintenanceUpgrade>> {
    let target = &woken.target;
    let names = |mu: &MaintenanceUpgrade| {
        let ns = mu.metadata.namespace.as_deref().unwrap_or_default();
        let named = |c: &&crate::crd::Component| {
            c.kind == target.kind && c.name == target.name && c.namespace_or(ns) == target.namespace
        };
        mu.spec.stages.iter().flat_map(|s| &s.components).any(|c| named(&c))
    };
    let owner = woken.owner.as_ref().filter(|o| store.get(o).is_some_and(|mu| names(&mu)));
    let mut out: Vec<_> = owner.cloned().into_iter().collect();
    // A target that leaves without an owner's mark was never claimed: nobody waits for it.
    if let Some(owner) = woken.owner.as_ref().filter(|_| woken.left) {
        let waiting = store.state().into_iter().filter(|mu| {
            let ns = mu.metadata.namespace.as_deref().unwrap_or_default();
            let may_own = ns == target.namespace || trusted.iter().any(|t| t == ns);
            let ended = mu.status.as_ref().is_some_and(|st| st.released_at.is_some());
            may_own && !ended && ObjectRef::from_obj(&**mu) != *owner && names(mu)
        });
        let longest =
            waiting.min_by_key(|mu| (mu.metadata.creation_timestamp.clone().map(|t| t.0), mu.name_any()));
        out.extend(longest.map(|mu| ObjectRef::from_obj(&*mu)));
    }
    out
}

#[cfg(test)]
#[path = "target_cache_tests.rs"]
mod tests;
