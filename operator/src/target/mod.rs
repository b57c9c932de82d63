//! Observe step, pure half: a Deployment, DaemonSet or StatefulSet seen as one `TargetState`
//! (images, ownership annotations, rollout progress), and the patches the act step sends.

use crate::constants::{
    CLAIMED_LABEL, FIELD_MANAGER, HANDED_OVER_ANNOTATION, KNOWN_GOOD_ANNOTATION,
    KNOWN_GOOD_DIGEST_ANNOTATION, ORIGINAL_STRATEGY_ANNOTATION, OWNER_ANNOTATION, OWNER_UID_ANNOTATION,
};
use crate::crd::{ManagedBy, WorkloadKind};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

pub mod gitops;
mod key;
pub use key::TargetKey;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    Complete,
    InProgress(String),
    Failed(String),
}

/// What the decide step needs to know about one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetState {
    pub resource_version: String,
    /// (container name, image) in pod-template order.
    pub containers: Vec<(String, String)>,
    pub owner: Option<String>,
    pub owner_uid: Option<String>,
    pub known_good: Option<String>,
    /// The digest recorded with the known-good record (`KNOWN_GOOD_DIGEST_ANNOTATION`).
    pub known_good_digest: Option<String>,
    pub rollout: Rollout,
    /// Image digests (pod `imageID`s) the target's pods report for each container, when known.
    pub running_digests: Vec<(String, String)>,
    /// Argo CD, Flux or Helm, which would put the old image back.
    pub managed_by: Option<ManagedBy>,
    /// The workload's UID: the controller reference its pods carry.
    pub uid: String,
    /// The workload's rollout settings, which a canary inside it changes, as JSON: a
    /// DaemonSet's or StatefulSet's `spec.updateStrategy`; a Deployment's
    /// `{strategy, minReadySeconds, progressDeadlineSeconds}` (`deployment_settings`).
    pub update_strategy: Option<String>,
    /// The rollout settings a canary recorded on the target before it changed them.
    pub original_strategy: Option<String>,
    /// Whether this operator's field manager last wrote the field that makes those settings a
    /// canary's (a DaemonSet's updateStrategy type, a StatefulSet's partition, a Deployment's
    /// minReadySeconds), by the workload's managedFields: settings a canary set, not ones
    /// someone set by hand.
    pub canary_settings_ours: bool,
    /// The upgrade and stage that handed the rest to those settings (`HANDED_OVER_ANNOTATION`).
    pub handed_over: Option<String>,
    /// A Deployment's `spec.paused`: its controller makes no new ReplicaSet while it holds.
    pub paused: bool,
    /// The container the pod template names as its default, if any.
    pub default_container: Option<String>,
    /// The workload's pods, with their nodes, when a canary inside it needs them, or it is a
    /// StatefulSet this upgrade changed and now reverts (its updated pods that are not Ready are
    /// deleted); None until the
    /// pod watch has listed them (or when nothing asked).
    pub pods: Option<Vec<PodPlace>>,
    /// A DaemonSet's own count of the nodes that should run its pod, and of those whose pod is
    /// available (which sees a pod gone before its replacement shows, and minReadySeconds).
    pub desired_pods: i32,
    pub available_pods: i32,
    /// The workload's controller has seen its latest spec: pods it makes now are from the
    /// current template.
    pub generation_observed: bool,
}

/// One pod of a workload: where it runs, what, and whether it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodPlace {
    pub name: String,
    pub uid: String,
    pub node: String,
    /// (container name, image) of the pod's spec: the template it was made from.
    pub images: Vec<(String, String)>,
    pub ready: bool,
    /// Being deleted: it no longer serves, and its replacement comes from the current template.
    pub deleting: bool,
    /// The revision of its workload it was made from: its `controller-revision-hash` label (a
    /// DaemonSet's, a StatefulSet's) or `pod-template-hash` (a Deployment's).
    pub revision: String,
}

impl PodPlace {
    pub fn image(&self, container: &str) -> Option<&str> {
        self.images.iter().find(|(n, _)| n == container).map(|(_, i)| i.as_str())
    }

    /// Whether its `container` runs `reference`, pinned to its digest or not (`image::runs`).
    pub fn runs(&self, container: &str, reference: &str) -> bool {
        self.image(container).is_some_and(|i| crate::image::runs(i, reference))
    }
}

/// On a pod template: the container `kubectl logs` and `exec` pick, and the one a component
/// that names none means.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The updateStrategy a canary inside a DaemonSet runs under: pods are replaced only when the
/// operator deletes them.
pub const ON_DELETE: &str = r#"{"type":"OnDelete"}"#;

impl TargetState {
    pub fn image(&self, container: &str) -> Option<&str> {
        self.containers.iter().find(|(n, _)| n == container).map(|(_, i)| i.as_str())
    }

    /// The pod-template positions of the containers named, in that order (those it has).
    pub fn positions<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
        names.into_iter().filter_map(|n| self.containers.iter().position(|(c, _)| c == n)).collect()
    }

    /// Its containers' names, for a message: "a, b".
    pub fn container_names(&self) -> String {
        self.containers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The container a component means: the named one, the only one, or the one the pod
    /// template names as its default (`kubectl.kubernetes.io/default-container`, which charts
    /// with sidecars set).
    pub fn resolve_container(&self, wanted: Option<&str>) -> Result<String, String> {
        let default = self.default_container.as_deref().filter(|d| self.image(d).is_some());
        match wanted.or(default) {
            Some(name) => match self.image(name) {
                Some(_) => Ok(name.to_string()),
                None => Err(format!("has no container {name:?} (containers: {})", self.container_names())),
            },
            None if self.containers.len() == 1 => Ok(self.containers[0].0.clone()),
            None => Err(format!(
                "has {} containers ({}) and {}; name one in the component's container field",
                self.containers.len(),
                self.container_names(),
                match &self.default_container {
                    Some(d) => format!(
                        "its {DEFAULT_CONTAINER_ANNOTATION} annotation names {d:?}, which it does not have"
                    ),
                    None => format!("no {DEFAULT_CONTAINER_ANNOTATION} annotation"),
                }
            )),
        }
    }
}

/// The most bytes of one of the operator's annotations kept from a workload: what it writes is
/// far shorter (a record names a few containers). Anyone who may edit a workload may write up
/// to 256 KiB there and label it claimed, and every replica keeps the claimed ones in memory; a
/// longer value is not the operator's, and is taken as absent.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// `key`'s value among `annotations`, unless longer than `MAX_RECORD_BYTES`.
fn record(annotations: Option<&std::collections::BTreeMap<String, String>>, key: &str) -> Option<String> {
    annotations?.get(key).filter(|v| v.len() <= MAX_RECORD_BYTES).cloned()
}

/// The most containers of one pod template (or pod) kept: real ones have a handful. Kubernetes
/// bounds only an object's size, so a workload or pod of a thousand containers, each image up
/// to 1 KiB, would be kept almost whole by every replica (the claimed workloads' watch, the
/// pod index), and a few hundred of them fill its memory. Past this, the rest are not seen.
pub const MAX_CONTAINERS: usize = 100;

/// A container's image as kept: empty (no image reference) when longer than any reference.
pub fn kept_image(image: Option<&String>) -> String {
    image.filter(|i| i.len() <= crate::image::MAX_REFERENCE_BYTES).cloned().unwrap_or_default()
}

fn base(meta: &ObjectMeta, template: &PodTemplateSpec, rollout: Rollout) -> TargetState {
    let containers = template
        .spec
        .as_ref()
        .map(|s| {
            let containers = s.containers.iter().take(MAX_CONTAINERS);
            containers.map(|c| (c.name.clone(), kept_image(c.image.as_ref()))).collect()
        })
        .unwrap_or_default();
    let ann = meta.annotations.as_ref();
    // A container's name is at most 63 characters; a longer annotation can name none.
    let template_annotations = template.metadata.as_ref().and_then(|m| m.annotations.as_ref());
    let default_container =
        template_annotations.and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION)).filter(|d| d.len() <= 253);
    TargetState {
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        containers,
        owner: record(ann, OWNER_ANNOTATION),
        owner_uid: record(ann, OWNER_UID_ANNOTATION),
        known_good: record(ann, KNOWN_GOOD_ANNOTATION),
        known_good_digest: record(ann, KNOWN_GOOD_DIGEST_ANNOTATION),
        rollout,
        running_digests: vec![],
        managed_by: gitops::managed_by(meta),
        uid: meta.uid.clone().unwrap_or_default(),
        update_strategy: None,
        original_strategy: record(ann, ORIGINAL_STRATEGY_ANNOTATION),
        canary_settings_ours: false,
        handed_over: record(ann, HANDED_OVER_ANNOTATION),
        default_container: default_container.cloned(),
        pods: None,
        desired_pods: 0,
        available_pods: 0,
        generation_observed: false,
        paused: false,
    }
}

/// Whether this operator's field manager owns the field at `path` (`f:` keys of managedFields'
/// FieldsV1): it wrote that field last.
fn written_by_operator(meta: &ObjectMeta, path: &[&str]) -> bool {
    let ours = meta.managed_fields.iter().flatten().filter(|f| f.manager.as_deref() == Some(FIELD_MANAGER));
    ours.filter_map(|f| f.fields_v1.as_ref()).any(|v| path.iter().try_fold(&v.0, |v, k| v.get(*k)).is_some())
}

fn generation_seen(meta: &ObjectMeta, observed: Option<i64>) -> Option<Rollout> {
    let generation = meta.generation.unwrap_or(0);
    if observed.unwrap_or(0) < generation {
        Some(Rollout::InProgress(format!("waiting for the controller to observe generation {generation}")))
    } else {
        None
    }
}

/// Rollout state as `kubectl rollout status` judges it.
pub fn from_deployment(d: &Deployment) -> TargetState {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    let want = spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let rollout = if let Some(r) = generation_seen(&d.metadata, st.observed_generation) {
        r
    } else if st
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    {
        Rollout::Failed("the Deployment's progress deadline was exceeded".into())
    } else if updated < want {
        Rollout::InProgress(format!("{updated} of {want} replicas updated"))
    } else if st.replicas.unwrap_or(0) > updated {
        Rollout::InProgress(format!(
            "{} old replicas pending termination",
            st.replicas.unwrap_or(0) - updated
        ))
    } else if st.available_replicas.unwrap_or(0) < updated {
        Rollout::InProgress(format!(
            "{} of {updated} updated replicas available",
            st.available_replicas.unwrap_or(0)
        ))
    } else {
        Rollout::Complete
    };
    let mut state = base(&d.metadata, &spec.template, rollout);
    state.update_strategy = Some(deployment_settings(&spec).to_string());
    state.canary_settings_ours = written_by_operator(&d.metadata, &["f:spec", "f:minReadySeconds"]);
    state.paused = spec.paused.unwrap_or(false);
    state.desired_pods = want;
    state.available_pods = st.available_replicas.unwrap_or(0);
    state.generation_observed = generation_seen(&d.metadata, st.observed_generation).is_none();
    state
}

/// What a canary inside a Deployment changes, and restores exactly: its `strategy`,
/// `minReadySeconds` (absent reads 0, the API server's own way of leaving it out) and
/// `progressDeadlineSeconds` (the API server always sets it).
pub fn deployment_settings(spec: &k8s_openapi::api::apps::v1::DeploymentSpec) -> serde_json::Value {
    let mut v = json!({
        "strategy": spec.strategy.clone().unwrap_or_default(),
        "minReadySeconds": spec.min_ready_seconds.unwrap_or(0),
    });
    if let Some(p) = spec.progress_deadline_seconds {
        v["progressDeadlineSeconds"] = p.into();
    }
    v
}

pub fn from_daemonset(d: &DaemonSet) -> TargetState {
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    let want = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    let available = st.number_available.unwrap_or(0);
    let rollout = if let Some(r) = generation_seen(&d.metadata, st.observed_generation) {
        r
    } else if updated < want {
        Rollout::InProgress(format!("{updated} of {want} scheduled pods updated"))
    } else if available < want {
        Rollout::InProgress(format!("{available} of {want} updated pods available"))
    } else {
        Rollout::Complete
    };
    let mut state = base(&d.metadata, &spec.template, rollout);
    state.update_strategy = spec.update_strategy.as_ref().and_then(|u| serde_json::to_string(u).ok());
    state.canary_settings_ours = written_by_operator(&d.metadata, &["f:spec", "f:updateStrategy", "f:type"]);
    state.desired_pods = want;
    state.available_pods = available;
    state.generation_observed = generation_seen(&d.metadata, st.observed_generation).is_none();
    state
}

pub fn from_statefulset(s: &StatefulSet) -> TargetState {
    let spec = s.spec.clone().unwrap_or_default();
    let st = s.status.clone().unwrap_or_default();
    let want = spec.replicas.unwrap_or(1);
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let rollout = if let Some(r) = generation_seen(&s.metadata, st.observed_generation) {
        r
    } else if st.ready_replicas.unwrap_or(0) < want {
        Rollout::InProgress(format!("{} of {want} replicas ready", st.ready_replicas.unwrap_or(0)))
    } else if partition > 0 {
        if updated < want - partition {
            Rollout::InProgress(format!(
                "{updated} of {} replicas above the partition updated",
                want - partition
            ))
        } else {
            Rollout::Complete
        }
    } else if st.update_revision.is_some() && st.update_revision != st.current_revision {
        Rollout::InProgress(format!("{updated} of {want} replicas on the update revision"))
    } else {
        Rollout::Complete
    };
    let mut state = base(&s.metadata, &spec.template, rollout);
    state.update_strategy = spec.update_strategy.as_ref().and_then(|u| serde_json::to_string(u).ok());
    let partition = ["f:spec", "f:updateStrategy", "f:rollingUpdate", "f:partition"];
    state.canary_settings_ours = written_by_operator(&s.metadata, &partition);
    state.desired_pods = want;
    state.available_pods = st.available_replicas.unwrap_or(0);
    state.generation_observed = generation_seen(&s.metadata, st.observed_generation).is_none();
    state
}

/// JSON patch that sets the image of each (index, container, image) of `images` (the `index`th
/// container, named `container`), in one write. Its tests make the API server refuse it unless
/// the target still carries the owner mark (`owner`, `owner_uid`) and is still at
/// `resource_version`: a racing edit is never overwritten, and nothing recorded in an upgrade's
/// status can aim it at a workload the upgrade did not claim.
/// With `strategy` = (new, original), the same write also sets the rollout settings to `new`
/// and records `original` on the target: a canary's image and its settings land together, so
/// that no pod rolls in between, and what it will restore is what it replaced.
pub fn image_patch(
    kind: WorkloadKind,
    resource_version: &str,
    owner: &str,
    owner_uid: &str,
    images: &[(usize, &str, &str)],
    strategy: Option<(&str, &str)>,
) -> serde_json::Value {
    let mut ops = owned_at(resource_version, owner, owner_uid);
    for (index, container, image) in images {
        let containers = format!("/spec/template/spec/containers/{index}");
        ops.push(json!({"op": "test", "path": format!("{containers}/name"), "value": container}));
        ops.push(json!({"op": "replace", "path": format!("{containers}/image"), "value": image}));
    }
    if let Some((new, original)) = strategy {
        ops.push(
            json!({"op": "add", "path": annotation_path(ORIGINAL_STRATEGY_ANNOTATION), "value": original}),
        );
        ops.extend(strategy_ops(kind, new));
    }
    serde_json::Value::Array(ops)
}

/// JSON patch that sets the rollout settings (JSON, as `TargetState::update_strategy`), with
/// the tests of `image_patch`; with `handed_over`, marks the hand-over in the same write.
pub fn strategy_patch(
    kind: WorkloadKind,
    resource_version: &str,
    owner: &str,
    owner_uid: &str,
    strategy: &str,
    handed_over: Option<&str>,
) -> serde_json::Value {
    let mut ops = owned_at(resource_version, owner, owner_uid);
    ops.extend(strategy_ops(kind, strategy));
    if let Some(mark) = handed_over {
        ops.push(json!({"op": "add", "path": annotation_path(HANDED_OVER_ANNOTATION), "value": mark}));
    }
    serde_json::Value::Array(ops)
}

/// The tests every target patch of an owned target makes: our mark, and the version decided on.
fn owned_at(resource_version: &str, owner: &str, owner_uid: &str) -> Vec<serde_json::Value> {
    vec![
        json!({"op": "test", "path": annotation_path(OWNER_ANNOTATION), "value": owner}),
        json!({"op": "test", "path": annotation_path(OWNER_UID_ANNOTATION), "value": owner_uid}),
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}),
    ]
}

/// `add` replaces a member that exists and creates one that does not: the settings are set
/// exactly, whatever the object held. A Deployment's are three fields of its spec, in one write
/// (the API server checks progressDeadlineSeconds against minReadySeconds).
fn strategy_ops(kind: WorkloadKind, strategy: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(strategy).unwrap_or_else(|_| json!({}));
    if kind != WorkloadKind::Deployment {
        return vec![json!({"op": "add", "path": "/spec/updateStrategy", "value": value})];
    }
    ["strategy", "minReadySeconds", "progressDeadlineSeconds"]
        .into_iter()
        .filter_map(|field| {
            let v = value.get(field)?;
            Some(json!({"op": "add", "path": format!("/spec/{field}"), "value": v}))
        })
        .collect()
}

/// An annotation's JSON pointer (RFC 6901: `/` in the key is written `~1`).
fn annotation_path(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Whether the API server refused a JSON patch because it no longer applies: one of its tests
/// failed, or a path it names is gone, so the target is not as the patch expected. The API server
/// answers that with a bare 422 naming no object (it does not say which op failed); an object
/// the patch would make invalid is a 422 that names the object and its fields.
pub fn is_failed_test(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422
        && s.reason == "Invalid"
        && s.message == PATCH_NOT_APPLIED
        && s.details.as_ref().is_none_or(|d| d.name.is_empty() && d.kind.is_empty() && d.causes.is_empty()))
}

/// The namespace and name of the upgrade an owner mark names, if it can name one: the
/// operator writes `namespace/name`, and anything else (written by hand, by whoever may edit
/// the workload) names no upgrade and is never sent to the API server as a path.
pub(crate) fn owner_key(owner: &str) -> Option<(&str, &str)> {
    let (ns, name) = owner.split_once('/')?;
    (crate::names::is_dns_label(ns) && crate::names::is_dns_subdomain(name)).then_some((ns, name))
}

/// Whether a write failed only because its object changed since it was read: a conflict on its
/// resourceVersion, or a JSON patch whose `test` failed.
pub fn changed_since_read(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409) || is_failed_test(e)
}

/// kube-apiserver's words for a JSON patch it could not apply (`NewGenericServerResponse`, 422).
/// An admission webhook's own 422 says something else, and is an action that failed.
const PATCH_NOT_APPLIED: &str = "the server rejected our request due to an error in our request";

/// Merge patch that marks the target as owned by an upgrade and records its known-good image.
/// The label puts the target in the operator's watch of claimed targets.
/// With `original_strategy`, also records the update strategy a canary will change.
pub fn claim_patch(
    resource_version: &str,
    owner: &str,
    owner_uid: &str,
    known_good: &str,
    known_good_digest: Option<&str>,
    original_strategy: Option<&str>,
) -> serde_json::Value {
    let mut patch = json!({
        "metadata": {
            "resourceVersion": resource_version,
            "labels": {CLAIMED_LABEL: owner_uid},
            "annotations": {OWNER_ANNOTATION: owner, OWNER_UID_ANNOTATION: owner_uid, KNOWN_GOOD_ANNOTATION: known_good,
                KNOWN_GOOD_DIGEST_ANNOTATION: known_good_digest}
        }
    });
    if let Some(strategy) = original_strategy {
        patch["metadata"]["annotations"][ORIGINAL_STRATEGY_ANNOTATION] = strategy.into();
    }
    patch
}

/// Merge patch that removes the ownership label and annotations, only if the target is still at
/// `resource_version` (a write decided on an older read, one landing late after another replica
/// took over, say, is refused with a conflict).
pub fn release_patch(resource_version: &str, keep_strategy: bool) -> serde_json::Value {
    let mut patch = json!({"metadata": {
        "resourceVersion": resource_version,
        "labels": {CLAIMED_LABEL: null},
        "annotations": {OWNER_ANNOTATION: null, OWNER_UID_ANNOTATION: null, KNOWN_GOOD_ANNOTATION: null,
            KNOWN_GOOD_DIGEST_ANNOTATION: null,
            ORIGINAL_STRATEGY_ANNOTATION: null, HANDED_OVER_ANNOTATION: null}
    }});
    if keep_strategy && let Some(a) = patch["metadata"]["annotations"].as_object_mut() {
        a.remove(ORIGINAL_STRATEGY_ANNOTATION);
    }
    patch
}

/// The known-good record a claim writes on its target: `container=image`, the component's own
/// container first, then its alsoContainers, separated by `;` (which no container name or image
/// reference holds).
pub fn known_good_value(images: &[(&str, &str)]) -> String {
    images.iter().map(|(c, i)| format!("{c}={i}")).collect::<Vec<_>>().join(";")
}

/// The (container, image) pairs of a `known_good_value`, the component's own first; None if
/// any part is not one.
pub fn parse_known_good(value: &str) -> Option<Vec<(&str, &str)>> {
    value.split(';').map(|pair| pair.split_once('=')).collect()
}

impl TargetState {
    /// The known-good record the claim wrote on the target (`known_good_value`).
    pub fn recorded_known_good(&self) -> Option<Vec<(&str, &str)>> {
        parse_known_good(self.known_good.as_deref()?)
    }
}

#[cfg(test)]
mod tests;
