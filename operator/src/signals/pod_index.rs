//! Observe step, pure half: what the built-in signal needs of every pod and of every pod failure
//! Event, kept in one index that shared watches feed (`pod_cache.rs`), so that no upgrade LISTs
//! pods. Only a few facts per pod are kept, so memory follows the number of pods, not the number
//! of upgrades. A deleted pod is kept for a while: one created and deleted between two reads still
//! counts.

use crate::crd::NodeScope;
use crate::detector::Counts;
use crate::target::PodPlace;
use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::core::{Selector, SelectorExt};
use kube::runtime::watcher;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Event reasons that mean a pod failed to schedule or to start its containers.
pub const FAILURE_EVENT_REASONS: &[&str] =
    &["FailedScheduling", "FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"];
/// Container waiting reasons that mean a container cannot start.
pub const FAILURE_WAITING_REASONS: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
];

/// How long a deleted pod, and a failure Event whose pod was never seen, are kept: longer than
/// any pending limit plus the longest span one read covers.
pub const KEEP_DELETED: Duration = Duration::hours(3);

/// The most label bytes (keys and values) a pod's facts keep. The API server caps an object's
/// size, not its labels: a pod of any tenant could carry a megabyte of them, and a few hundred
/// such pods would fill the operator's memory. One with more keeps none, and is counted only
/// by a signal that selects every pod: not by one with a selector, whatever its terms (with no
/// labels it would pass `!=` and `notin`). Real pods carry a few hundred bytes.
const MAX_LABEL_BYTES: usize = 16 * 1024;

/// The most bytes of facts (labels, mostly) the deleted pods of one namespace keep. Whoever may
/// create and delete pods in a namespace could otherwise fill the memory of every replica with
/// pods deleted within `KEEP_DELETED` (16,000 of the most labels a pod keeps fill 256 MiB).
/// Past it, the namespace's longest-deleted pods are forgotten first: a read of its pods that
/// reaches back that far counts fewer. About 10,000 deleted pods of ordinary labels.
pub const MAX_DELETED_BYTES_PER_NAMESPACE: usize = 8 << 20;
/// The same for every namespace together (a tenant with namespaces of her own makes many): the
/// namespace keeping the most gives first.
pub const MAX_DELETED_BYTES: usize = 64 << 20;

/// The longest UID a failure Event may name: a Kubernetes UID is a 36-character UUID. Anyone
/// who may create Events may name any string, and each is kept for hours.
const MAX_UID_BYTES: usize = 36;
/// How many failures of pods the index has not seen one namespace's Events may keep (about
/// 1.5 MB), and all namespaces' together. A failure counts only once its pod is seen, so these
/// are failures whose Event came first (by a moment, or while the pod watch was behind) or
/// Events naming a UID no pod has. Past a namespace's share its new ones are not kept; past the
/// total, a namespace holding fewer takes the place of the oldest of the namespace holding the
/// most (if it holds at least two more), so that floods in some namespaces cannot crowd out
/// another's real failures.
pub const MAX_UNSEEN_FAILURES_PER_NAMESPACE: usize = 10_000;
pub const MAX_UNSEEN_FAILURES: usize = 100_000;

/// What keeping one label costs besides its text: a map entry of two strings.
const LABEL_OVERHEAD: usize = 64;

/// `labels`, unless keeping them takes more than `MAX_LABEL_BYTES` (None): their text and
/// `LABEL_OVERHEAD` each, so that thousands of empty ones count as what they cost.
fn bounded(labels: Option<&BTreeMap<String, String>>) -> Option<BTreeMap<String, String>> {
    let labels = labels.into_iter().flatten();
    let size: usize = labels.clone().map(|(k, v)| k.len() + v.len() + LABEL_OVERHEAD).sum();
    (size <= MAX_LABEL_BYTES).then(|| labels.map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// What the built-in signal needs to know of one pod.
#[derive(Clone, Debug, PartialEq)]
struct PodFacts {
    namespace: String,
    /// The node it is bound to (or a DaemonSet's pod is made for); empty before it is.
    node: String,
    /// None: more than `MAX_LABEL_BYTES`, not kept.
    labels: Option<BTreeMap<String, String>>,
    created: DateTime<Utc>,
    pending: bool,
    waiting_failure: bool,
    /// Container name and the `imageID` it runs: the digest recorded when a target is claimed.
    image_ids: Vec<(String, String)>,
    /// Where a workload's pod runs and what, for a canary inside it (None for other pods, to
    /// keep the index small).
    place: Option<Box<OwnedPod>>,
    deleted_at: Option<DateTime<Utc>>,
}

impl PodFacts {
    /// About what the facts take in memory, for `MAX_DELETED_BYTES_PER_NAMESPACE`.
    fn bytes(&self) -> usize {
        let labels: usize =
            self.labels.iter().flatten().map(|(k, v)| k.len() + v.len() + LABEL_OVERHEAD).sum();
        256 + self.namespace.len() + self.node.len() + labels
    }
}

/// The pods of one namespace that were deleted and are still kept, in the order they were.
#[derive(Debug, Default)]
struct DeletedPods {
    order: VecDeque<(String, usize)>,
    bytes: usize,
}

/// What a canary inside a workload needs of each of its pods.
#[derive(Clone, Debug, PartialEq)]
struct OwnedPod {
    owner: PodOwner,
    place: PodPlace,
}

/// The workload a pod belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodOwner {
    /// A DaemonSet or StatefulSet, by UID: the pod's controller reference.
    Uid(String),
    /// A Deployment, by name: its pod's controller is a ReplicaSet the Deployment named
    /// `<deployment>-<pod-template-hash>` (the Deployment controller's own naming).
    Deployment(String),
}

#[derive(Debug, Default)]
pub struct PodIndex {
    /// By pod UID.
    pods: HashMap<String, PodFacts>,
    /// By namespace: its deleted pods still kept, within `MAX_DELETED_BYTES_PER_NAMESPACE`.
    deleted: HashMap<String, DeletedPods>,
    /// Their bytes in all, within `MAX_DELETED_BYTES`.
    deleted_bytes: usize,
    /// UIDs of pods a failure Event was reported for: the namespaces those Events were written
    /// in, and when the first was seen. A pod's own failures are reported in its namespace; an
    /// Event written in another, naming its UID (anyone who may create Events may), is not one.
    failed: HashMap<String, (Vec<String>, DateTime<Utc>)>,
    /// Those of pods not seen, by the namespace of their first Event, in the order they came
    /// (within `MAX_UNSEEN_FAILURES_PER_NAMESPACE`), as of the last prune and added to since: a
    /// pod seen since is still in it, and leaves at the next prune.
    unseen: HashMap<String, VecDeque<String>>,
    /// How many `unseen` holds, within `MAX_UNSEEN_FAILURES`.
    unseen_total: usize,
    /// The UIDs listed since the pod watch (re)started, until its list is complete.
    relisted: Option<HashSet<String>>,
    pods_listed: bool,
    events_listed: bool,
    /// A watch failed and has not been seen working since: what it missed is still to come.
    pods_behind: bool,
    events_behind: bool,
    /// When each watch last began listing: nothing before that is known to have been seen.
    pods_since: Option<DateTime<Utc>>,
    events_since: Option<DateTime<Utc>>,
    last_prune: Option<DateTime<Utc>>,
}

impl PodIndex {
    /// Both watches have listed everything once: until then a read would undercount.
    pub fn ready(&self) -> bool {
        self.listed() && !self.pods_behind && !self.events_behind
    }

    /// Whether both watches have listed since they last started afresh (`/readyz`): one that
    /// resumes after a failure keeps its list, and reads wait for it (`ready`) without the
    /// replica being taken for unready.
    pub fn listed(&self) -> bool {
        self.pods_listed && self.events_listed
    }

    /// Since when both watches have run without a break, once both have listed: a pod created
    /// and deleted before then may never have been seen.
    pub fn watched_since(&self) -> Option<DateTime<Utc>> {
        self.ready().then_some(self.pods_since.max(self.events_since)).flatten()
    }

    /// The pod watch failed: not ready until it has listed again.
    pub fn pods_lost(&mut self) {
        self.pods_listed = false;
    }

    /// The pod watch failed (true) and is resuming, or works again (false).
    pub fn pods_behind(&mut self, behind: bool) {
        self.pods_behind = behind;
    }

    /// The Warning Event watch failed (true) and is resuming, or works again (false).
    pub fn events_behind(&mut self, behind: bool) {
        self.events_behind = behind;
    }

    /// The Warning Event watch failed: not ready until it has listed again.
    pub fn events_lost(&mut self) {
        self.events_listed = false;
    }

    /// Pods known, deleted ones included: for the memory figures.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// One event of the pod watch.
    pub fn pod_event(&mut self, event: &watcher::Event<Pod>, now: DateTime<Utc>) {
        match event {
            watcher::Event::Init => {
                self.relisted = Some(HashSet::new());
                self.pods_since = Some(now);
            }
            watcher::Event::InitApply(p) => {
                if let Some(uid) = self.apply(p)
                    && let Some(seen) = self.relisted.as_mut()
                {
                    seen.insert(uid);
                }
            }
            watcher::Event::InitDone => {
                // A pod the new list lacks was deleted while the watch was down.
                if let Some(seen) = self.relisted.take() {
                    let gone: Vec<String> = (self.pods.iter())
                        .filter(|(uid, p)| p.deleted_at.is_none() && !seen.contains(*uid))
                        .map(|(uid, _)| uid.clone())
                        .collect();
                    for uid in gone {
                        self.deleted(&uid, now);
                    }
                }
                self.pods_listed = true;
            }
            watcher::Event::Apply(p) => {
                self.apply(p);
            }
            watcher::Event::Delete(p) => {
                if let Some(uid) = self.apply(p) {
                    self.deleted(&uid, now);
                }
            }
        }
        if self.last_prune.is_none_or(|t| now - t > Duration::minutes(1)) {
            self.prune(now);
        }
    }

    /// One event of the Warning Event watch: only failures of pods are kept.
    pub fn warning_event(&mut self, event: &watcher::Event<Event>, now: DateTime<Utc>) {
        match event {
            watcher::Event::Apply(e) | watcher::Event::InitApply(e) => {
                if let Some(uid) = failed_pod(e).filter(|uid| uid.len() <= MAX_UID_BYTES) {
                    let ns = e.metadata.namespace.as_deref().unwrap_or_default();
                    if !self.failed.contains_key(uid)
                        && !self.pods.contains_key(uid)
                        && !self.keep_unseen(ns, uid)
                    {
                        return;
                    }
                    let (namespaces, _) = self.failed.entry(uid.to_string()).or_insert_with(|| (vec![], now));
                    if !namespaces.iter().any(|n| n == ns) {
                        namespaces.push(ns.to_string());
                    }
                }
            }
            // A failure stays a failure when its Event expires.
            watcher::Event::Init => self.events_since = Some(now),
            watcher::Event::Delete(_) => {}
            watcher::Event::InitDone => self.events_listed = true,
        }
    }

    /// Make room for one more failure of a pod not seen, `uid`, of an Event in `ns`: false (not
    /// kept) past the namespace's share, or past the total when no namespace holds two more.
    fn keep_unseen(&mut self, ns: &str, uid: &str) -> bool {
        let of_ns = self.unseen.get(ns).map_or(0, VecDeque::len);
        if of_ns >= MAX_UNSEEN_FAILURES_PER_NAMESPACE {
            return false;
        }
        while self.unseen_total >= MAX_UNSEEN_FAILURES {
            let most = self.unseen.values_mut().max_by_key(|q| q.len()).filter(|q| q.len() > of_ns + 1);
            let Some(oldest) = most.and_then(VecDeque::pop_front) else { return false };
            self.unseen_total -= 1;
            // One whose pod has been seen since is a failure that counts: it only leaves the tally.
            if !self.pods.contains_key(&oldest) {
                self.failed.remove(&oldest);
            }
        }
        self.unseen.entry(ns.to_string()).or_default().push_back(uid.to_string());
        self.unseen_total += 1;
        true
    }

    /// Pod start failures of the cohort created in `[from - limit, to - limit)` in `namespaces`
    /// (empty: all) matching `selector`, on `nodes`: by the time the span ends every pod in it is at least
    /// `limit` old. A pod counts as failed if it was reported unschedulable or unable to mount
    /// or start, or is still Pending (which covers stuck in ContainerCreating). Each pod counts
    /// once, however many times the scheduler retried it. A pod deleted before it was judged
    /// counts as it was when deleted; deleted while Pending, it failed only if it had been
    /// pending for the whole limit.
    pub fn counts(
        &self,
        namespaces: &[String],
        selector: &Selector,
        nodes: &NodeScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: Duration,
    ) -> Counts {
        let (lo, hi) = (from - limit, to - limit);
        let mut c = Counts::default();
        for (uid, p) in &self.pods {
            if p.created < lo || p.created >= hi {
                continue;
            }
            if !namespaces.is_empty() && !namespaces.contains(&p.namespace) {
                continue;
            }
            let selected = p.labels.as_ref().map_or(selector.selects_all(), |l| selector.matches(l));
            if !selected || !nodes.admits(&p.node) {
                continue;
            }
            c.attempts += 1;
            let pending_too_long = p.pending && p.deleted_at.is_none_or(|d| d >= p.created + limit);
            let reported = self.failed.get(uid).is_some_and(|(ns, _)| ns.contains(&p.namespace));
            if pending_too_long || p.waiting_failure || reported {
                c.errors += 1;
            }
        }
        c
    }

    /// The image IDs (digests) that the live pods of `owner` in `namespace` run, one per
    /// container name, each from a pod whose container runs the image of `template` (the
    /// workload's own, not a sibling's that shares its labels, nor a pod left on an older image);
    /// None until the pod watch has listed (then the caller asks the API).
    pub fn running_digests(
        &self,
        namespace: &str,
        owner: &PodOwner,
        template: &[(String, String)],
    ) -> Option<Vec<(String, String)>> {
        if !self.pods_listed {
            return None;
        }
        let mut digests: Vec<(String, String)> = vec![];
        let pods = self.pods.values().filter(|p| p.deleted_at.is_none() && p.namespace == namespace);
        for (p, place) in pods.filter_map(|p| Some((p, p.place.as_ref().filter(|o| o.owner == *owner)?))) {
            for (name, id) in &p.image_ids {
                let runs_template = template.iter().any(|(c, image)| c == name && place.place.runs(c, image));
                if runs_template && !id.is_empty() && !digests.iter().any(|(n, _)| n == name) {
                    digests.push((name.clone(), id.clone()));
                }
            }
        }
        Some(digests)
    }

    /// The live pods of `owner` in `namespace`: where each runs and what; None until the pod
    /// watch has listed.
    pub fn owned_pods(&self, namespace: &str, owner: &PodOwner) -> Option<Vec<PodPlace>> {
        if !self.pods_listed {
            return None;
        }
        let mut pods: Vec<PodPlace> = self
            .pods
            .values()
            .filter(|p| p.deleted_at.is_none() && p.namespace == namespace)
            .filter_map(|p| p.place.as_deref().filter(|d| d.owner == *owner))
            .map(|d| d.place.clone())
            .collect();
        pods.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
        Some(pods)
    }

    /// Forget pods deleted, and failure Events of pods never seen, longer than `KEEP_DELETED` ago.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let cutoff = now - KEEP_DELETED;
        self.pods.retain(|_, p| p.deleted_at.is_none_or(|d| d > cutoff));
        let pods = &self.pods;
        self.failed.retain(|uid, (_, seen)| pods.contains_key(uid) || *seen > cutoff);
        let mut unseen: Vec<(&DateTime<Utc>, &String, &String)> = (self.failed.iter())
            .filter(|(uid, _)| !pods.contains_key(*uid))
            .filter_map(|(uid, (namespaces, seen))| Some((seen, namespaces.first()?, uid)))
            .collect();
        unseen.sort();
        self.unseen.clear();
        self.unseen_total = unseen.len();
        for (_, ns, uid) in unseen {
            self.unseen.entry(ns.clone()).or_default().push_back(uid.clone());
        }
        for d in self.deleted.values_mut() {
            d.order.retain(|(uid, _)| pods.contains_key(uid));
            d.bytes = d.order.iter().map(|(_, b)| b).sum();
        }
        self.deleted.retain(|_, d| !d.order.is_empty());
        self.deleted_bytes = self.deleted.values().map(|d| d.bytes).sum();
        self.last_prune = Some(now);
    }

    /// Pod `uid` was deleted at `now`: it is kept a while, without what only a running pod
    /// needs, and its namespace's longest-deleted pods are forgotten past its share.
    fn deleted(&mut self, uid: &str, now: DateTime<Utc>) {
        let Some(p) = self.pods.get_mut(uid).filter(|p| p.deleted_at.is_none()) else { return };
        p.deleted_at = Some(now);
        p.place = None;
        p.image_ids = vec![];
        let (namespace, bytes) = (p.namespace.clone(), p.bytes());
        let d = self.deleted.entry(namespace).or_default();
        d.order.push_back((uid.to_string(), bytes));
        d.bytes += bytes;
        self.deleted_bytes += bytes;
        while d.bytes > MAX_DELETED_BYTES_PER_NAMESPACE
            && let Some((oldest, b)) = d.order.pop_front()
        {
            d.bytes -= b;
            self.deleted_bytes -= b;
            self.pods.remove(&oldest);
        }
        while self.deleted_bytes > MAX_DELETED_BYTES
            && let Some(d) = self.deleted.values_mut().max_by_key(|d| d.bytes)
            && let Some((oldest, b)) = d.order.pop_front()
        {
            d.bytes -= b;
            self.deleted_bytes -= b;
            self.pods.remove(&oldest);
        }
    }

    /// Record what the pod shows now; its UID, if it has one.
    fn apply(&mut self, pod: &Pod) -> Option<String> {
        let uid = pod.metadata.uid.clone()?;
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| to_chrono(t.0))?;
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let facts = PodFacts {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            node: spec.and_then(|s| s.node_name.clone().or_else(|| daemon_node(s))).unwrap_or_default(),
            labels: bounded(pod.metadata.labels.as_ref()),
            created,
            pending: status.and_then(|s| s.phase.as_deref()) == Some("Pending"),
            waiting_failure: status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
                .any(|r| FAILURE_WAITING_REASONS.contains(&r)),
            image_ids: status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .filter(|cs| !cs.image_id.is_empty())
                .take(crate::target::MAX_CONTAINERS)
                .map(|cs| (cs.name.clone(), cs.image_id.clone()))
                .collect(),
            place: owned_pod(pod).map(Box::new),
            deleted_at: None,
        };
        // Known deleted already (a Delete seen twice): only the facts a deleted pod keeps.
        let facts = match self.pods.get(&uid).and_then(|old| old.deleted_at) {
            Some(at) => PodFacts { deleted_at: Some(at), place: None, image_ids: vec![], ..facts },
            None => facts,
        };
        self.pods.insert(uid.clone(), facts);
        Some(uid)
    }
}

impl PodOwner {
    /// The workload `pod` belongs to, by its controller reference.
    pub fn of(pod: &Pod) -> Option<PodOwner> {
        let controller =
            pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))?;
        Some(match controller.kind.as_str() {
            "DaemonSet" | "StatefulSet" => PodOwner::Uid(controller.uid.clone()),
            "ReplicaSet" => {
                let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash")?;
                let deployment = controller.name.strip_suffix(hash.as_str())?.strip_suffix('-')?;
                PodOwner::Deployment(deployment.to_string())
            }
            _ => return None,
        })
    }
}

/// A workload's pod: its owner, node, images and readiness.
fn owned_pod(pod: &Pod) -> Option<OwnedPod> {
    let owner = PodOwner::of(pod)?;
    let controller = pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true))?;
    let spec = pod.spec.as_ref()?;
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Some(OwnedPod {
        owner,
        place: PodPlace {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            node: spec.node_name.clone().or_else(|| daemon_node(spec)).unwrap_or_default(),
            images: spec
                .containers
                .iter()
                .take(crate::target::MAX_CONTAINERS)
                .map(|c| (c.name.clone(), crate::target::kept_image(c.image.as_ref())))
                .collect(),
            ready,
            deleting: pod.metadata.deletion_timestamp.is_some(),
            // The label its controller sets: a ReplicaSet's pod-template-hash, a DaemonSet's or
            // StatefulSet's controller-revision-hash (`<name>-<hash>` on a StatefulSet's).
            revision: labels
                .get(if controller.kind == "ReplicaSet" {
                    "pod-template-hash"
                } else {
                    "controller-revision-hash"
                })
                .cloned()
                .unwrap_or_default(),
        },
    })
}

/// The node a DaemonSet's pod is made for, before the scheduler has bound it: the DaemonSet
/// controller names it in the pod's required node affinity (`metadata.name In [node]`).
fn daemon_node(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<String> {
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    required.node_selector_terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|f| {
        (f.key == "metadata.name" && f.operator == "In")
            .then(|| f.values.as_ref()?.first().cloned())
            .flatten()
    })
}

/// The UID of the pod a failure Event is about.
fn failed_pod(e: &Event) -> Option<&str> {
    let reason = e.reason.as_deref()?;
    // Kubelet reports CreateContainerConfigError (e.g. a missing secret) as a `Failed` Event.
    let config_error =
        reason == "Failed" && e.message.as_deref().is_some_and(|m| m.contains("CreateContainerConfigError"));
    let failure = FAILURE_EVENT_REASONS.contains(&reason) || config_error;
    (failure && e.involved_object.kind.as_deref() == Some("Pod")).then_some(e.involved_object.uid.as_deref()?)
}

pub fn to_chrono(t: k8s_openapi::jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

#[cfg(test)]
#[path = "pod_index_tests.rs"]
mod tests;
