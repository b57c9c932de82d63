//! The robustness run's checker, pure: what the API server's audit log, the upgrades' ends, the
//! targets and the webhook receiver show, held to what the docs (What holds under faults) guarantee. Each finding is a
//! line saying what broke.

use crate::audit::{Write, writes_past_term};
use chrono::{DateTime, Duration, Utc};
use maintenance_operator::constants::{
    HANDED_OVER_ANNOTATION, ORIGINAL_STRATEGY_ANNOTATION, OWNER_ANNOTATION, OWNER_UID_ANNOTATION,
};
use maintenance_operator::crd::Phase;
use serde_json::Value;

/// What an upgrade of a run is, and so how it must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A new image that does no harm: Succeeded, the target on the new image.
    Healthy,
    /// A new image that makes the lane's pods fail: RolledBack, the target on its known-good.
    Regressing,
    /// Deleted mid-soak: reverted and released, then gone (its finalizer).
    Deleted,
}

/// How one upgrade of a run ended, as read after the run.
#[derive(Clone, Debug)]
pub struct Lane {
    /// The upgrade's `namespace/name`: the owner mark it writes on its target.
    pub owner: String,
    pub class: Class,
    /// Its target DaemonSet.
    pub target: String,
    pub known_good: String,
    pub desired: String,
    pub created_at: DateTime<Utc>,
    /// Its final phase; None: gone.
    pub phase: Option<Phase>,
    /// The target's image at the end.
    pub image: String,
    /// maintenance.dev/ labels and annotations left on the target at the end.
    pub marks: Vec<String>,
    /// The target's `updateStrategy` before its upgrade, and at the end: a canary changes it,
    /// and every end puts it back exactly.
    pub strategy_before: Value,
    pub strategy: Value,
}

impl Lane {
    /// Its known-good image, as written or pinned to a digest (`image@sha256:…`), as a revert
    /// of a whole workload writes it.
    pub fn is_known_good(&self, image: &str) -> bool {
        image == self.known_good
            || image.strip_prefix(self.known_good.as_str()).is_some_and(|rest| rest.starts_with("@sha256:"))
    }
}

/// What the operator did to a target in one write, told by the request's body.
#[derive(Debug, PartialEq)]
pub enum TargetWrite {
    /// A JSON patch that tests the owner mark: an apply, a revert or a canary's settings, of
    /// the upgrade it names; with the images it sets.
    Owned {
        owner: String,
        images: Vec<String>,
    },
    /// A merge patch that sets the owner mark.
    Claim {
        owner: String,
    },
    /// A merge patch that removes the marks, at the version it read.
    Release {
        guarded: bool,
    },
    Unexplained,
}

pub fn classify(request: &Value) -> TargetWrite {
    let annotation = |name: &str| format!("/metadata/annotations/{}", name.replace('/', "~1"));
    if let Some(ops) = request.as_array() {
        // Every owned write tests the owner mark, its UID and the version it was decided on, and
        // changes only images and a canary's update strategy, with the canary's two marks: the
        // strategy it replaced, and the hand-over to the whole workload.
        let tested = |path: &str| ops.iter().find(|op| op["op"] == "test" && op["path"] == path);
        let owner = tested(&annotation(OWNER_ANNOTATION)).and_then(|op| op["value"].as_str());
        let guarded = tested(&annotation(OWNER_UID_ANNOTATION)).is_some()
            && tested("/metadata/resourceVersion").is_some();
        let image = |op: &Value| {
            op["op"] == "replace"
                && op["path"].as_str().is_some_and(|p| {
                    p.strip_prefix("/spec/template/spec/containers/")
                        .and_then(|rest| rest.strip_suffix("/image"))
                        .is_some_and(|i| i.parse::<usize>().is_ok())
                })
        };
        let strategy = |op: &Value| op["op"] == "add" && op["path"] == "/spec/updateStrategy";
        let canary_mark = |op: &Value| {
            op["op"] == "add"
                && [ORIGINAL_STRATEGY_ANNOTATION, HANDED_OVER_ANNOTATION]
                    .iter()
                    .any(|a| op["path"].as_str() == Some(annotation(a).as_str()))
        };
        let known = ops.iter().all(|op| op["op"] == "test" || image(op) || strategy(op) || canary_mark(op));
        let images = ops
            .iter()
            .filter(|op| image(op))
            .filter_map(|op| op["value"].as_str().map(String::from))
            .collect();
        return match owner {
            Some(owner) if guarded && known => TargetWrite::Owned { owner: owner.into(), images },
            _ => TargetWrite::Unexplained,
        };
    }
    // A merge patch of the marks alone: a claim or a release.
    let meta = &request["metadata"];
    let only_marks = request.as_object().is_some_and(|o| o.keys().all(|k| k == "metadata"))
        && meta.as_object().is_some_and(|m| {
            m.keys().all(|k| ["labels", "annotations", "resourceVersion"].contains(&k.as_str()))
        });
    match &meta["annotations"][OWNER_ANNOTATION] {
        _ if !only_marks => TargetWrite::Unexplained,
        Value::String(owner) => TargetWrite::Claim { owner: owner.clone() },
        Value::Null if meta["annotations"].as_object().is_some_and(|a| a.contains_key(OWNER_ANNOTATION)) => {
            TargetWrite::Release { guarded: meta["resourceVersion"].is_string() }
        }
        _ => TargetWrite::Unexplained,
    }
}

/// Every write of the run's replicas to a workload: one in namespace `ns`, a lane's target, by
/// the upgrade that owns it, after it was created; no image of a stage set outside the window
/// (reverts go any time).
pub fn target_writes(
    writes: &[Write],
    ns: &str,
    lanes: &[Lane],
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<String> {
    let mut out = vec![];
    let workloads = ["daemonsets", "deployments", "statefulsets"];
    for w in writes.iter().filter(|w| workloads.contains(&w.resource.as_str())) {
        let said = w.to_string();
        let Some(lane) =
            lanes.iter().find(|l| l.target == w.name && w.namespace == ns && w.resource == "daemonsets")
        else {
            out.push(format!("{said}: a workload no upgrade names"));
            continue;
        };
        if w.at < lane.created_at {
            out.push(format!("{said}: before its upgrade {} existed", lane.owner));
        }
        match classify(&w.request) {
            TargetWrite::Owned { owner, .. } | TargetWrite::Claim { owner } if owner != lane.owner => {
                out.push(format!("{said}: in the name of {owner}, not of {}", lane.owner));
            }
            TargetWrite::Owned { images, .. } => {
                let stage = images.iter().any(|i| *i == lane.desired && !lane.is_known_good(i));
                let outside = w.at < window.0 || w.at > window.1;
                if stage && outside && (200..300).contains(&w.code) {
                    out.push(format!(
                        "{said}: set {} outside the window {} – {}",
                        lane.desired, window.0, window.1
                    ));
                }
                if let Some(third) = images.iter().find(|i| **i != lane.desired && !lane.is_known_good(i)) {
                    out.push(format!("{said}: set {third}, neither its known-good nor its desired image"));
                }
            }
            TargetWrite::Claim { .. } => {}
            TargetWrite::Release { guarded: true } => {}
            TargetWrite::Release { guarded: false } => {
                out.push(format!("{said}: a release without the version it was decided on"))
            }
            TargetWrite::Unexplained => out.push(format!("{said}: an unexplained write {}", w.request)),
        }
    }
    out
}

/// Every pod the run's replicas deleted: one of a lane's target (a canary's pod made again),
/// in namespace `ns`, after its upgrade was created, one at a time and only the one it read
/// (the pod's UID as a precondition).
pub fn pod_deletes(writes: &[Write], ns: &str, lanes: &[Lane]) -> Vec<String> {
    let mut out = vec![];
    for w in writes.iter().filter(|w| w.resource == "pods") {
        let said = w.to_string();
        // The longest target that names it: agent-1's pods are not agent-10's.
        let lane = lanes
            .iter()
            .filter(|l| w.name.strip_prefix(l.target.as_str()).is_some_and(|rest| rest.starts_with('-')))
            .max_by_key(|l| l.target.len());
        let Some(lane) = lane.filter(|_| w.namespace == ns && w.verb == "delete") else {
            out.push(format!("{said}: not a pod of a lane's target"));
            continue;
        };
        if w.at < lane.created_at {
            out.push(format!("{said}: before its upgrade {} existed", lane.owner));
        }
        if w.request["preconditions"]["uid"].as_str().is_none_or(|u| u.is_empty()) {
            out.push(format!("{said}: without the UID it read as a precondition"));
        }
    }
    out
}

/// Each upgrade ended as its class says, its target on the image that goes with it (never a
/// third), its `updateStrategy` as before, and released.
pub fn ends(lanes: &[Lane]) -> Vec<String> {
    let mut out = vec![];
    for l in lanes {
        let (phase, image) = match l.class {
            Class::Healthy => (Some(Phase::Succeeded), &l.desired),
            Class::Regressing => (Some(Phase::RolledBack), &l.known_good),
            Class::Deleted => (None, &l.known_good),
        };
        if l.phase != phase {
            out.push(format!("{} ({:?}) ended {:?}, not {phase:?}", l.owner, l.class, l.phase));
        }
        let pinned = l.class != Class::Healthy && l.is_known_good(&l.image);
        if l.image != *image && !pinned {
            out.push(format!("{} ({:?}) left {} on {}, not {image}", l.owner, l.class, l.image, l.target));
        }
        if !l.marks.is_empty() {
            out.push(format!("{} ({:?}) left {:?} on {}", l.owner, l.class, l.marks, l.target));
        }
        if l.strategy != l.strategy_before {
            out.push(format!(
                "{} ({:?}) left updateStrategy {} on {}, not {}",
                l.owner, l.class, l.strategy, l.target, l.strategy_before
            ));
        }
    }
    out
}

/// No replica wrote past its term (a 15 s Lease, a second for the request's travel).
pub fn terms(writes: &[Write]) -> Vec<String> {
    writes_past_term(writes, Duration::seconds(15), Duration::seconds(1))
        .into_iter()
        .map(|w| format!("past its term: {w}"))
        .collect()
}

/// No notification delivered twice, but in the documented at-least-once case: a delivery whose
/// status write was lost to a fault of the leader's writes (the leader stopped or cut off, the
/// API server down, a write refused) between the two deliveries. `deliveries`: (upgrade/notification id, when it arrived); `disrupted`:
/// the spans of those faults.
pub fn deliveries(
    deliveries: &[(String, DateTime<Utc>)],
    disrupted: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<String> {
    let mut out = vec![];
    for (i, (id, first)) in deliveries.iter().enumerate() {
        for (_, again) in deliveries[i + 1..].iter().filter(|(other, _)| other == id) {
            let excused = disrupted.iter().any(|(from, to)| *from <= *again && *to >= *first);
            if !excused {
                out.push(format!(
                    "notification {id} delivered at {first} and again at {again}, with no fault between"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
