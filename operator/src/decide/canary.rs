//! Decide step, pure: a canary inside one DaemonSet. The first stage that names the DaemonSet
//! sets its new image and `updateStrategy: OnDelete` in one write, then replaces its pods on
//! the first nodes (in name order) itself; later stages widen that set; the last stage that
//! names it restores the recorded strategy, so that the DaemonSet's own rolling update takes the
//! rest. A revert sets the image back, replaces the pods that run the new one, then restores the
//! strategy, in that order: restoring a RollingUpdate first would roll every pod.
//!
//! Everything is read back from the target (its pods, its strategy, the record of the original
//! on it), so a restart resumes where it stopped. Pods are replaced no faster than the
//! DaemonSet's own maxUnavailable allows; a pod that is not Ready is replaced at once.

use super::{Decider, Effect};
use crate::crd::*;
use crate::target::{ON_DELETE, PodPlace, TargetKey, TargetState};
use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;

/// The same strategy, however its JSON was written.
pub(super) fn same_strategy(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    parse(a) == parse(b)
}

/// How many pods of `nodes` may be unavailable at once: the DaemonSet's rolling update's
/// maxUnavailable (a percentage rounded up, as the DaemonSet controller does), at least one.
fn max_unavailable(original: Option<&str>, nodes: usize) -> usize {
    let strategy: Option<DaemonSetUpdateStrategy> = original.and_then(|s| serde_json::from_str(s).ok());
    let value = strategy.and_then(|s| s.rolling_update).and_then(|r| r.max_unavailable);
    let n = match value {
        Some(IntOrString::Int(n)) => usize::try_from(n).unwrap_or(0),
        Some(IntOrString::String(p)) => {
            let pct: usize = p.trim_end_matches('%').parse().unwrap_or(0);
            (nodes * pct).div_ceil(100)
        }
        None => 1,
    };
    n.max(1)
}

/// The nodes whose pod does not serve now: not Ready, or being deleted.
fn unavailable(pods: &[PodPlace]) -> BTreeSet<String> {
    pods.iter().filter(|p| !p.ready || p.deleting).map(|p| p.node.clone()).collect()
}

/// The pods to delete now, of `candidates` (in order): a pod that is not Ready at once (it
/// serves nothing), a Ready one only while fewer than `max_unavailable` nodes are unavailable.
fn paced(candidates: Vec<&PodPlace>, unavailable: usize, max_unavailable: usize) -> Vec<(String, String)> {
    let mut budget = max_unavailable.saturating_sub(unavailable);
    let mut out = vec![];
    for p in candidates {
        if !p.ready {
            out.push((p.name.clone(), p.uid.clone()));
        } else if budget > 0 {
            budget -= 1;
            out.push((p.name.clone(), p.uid.clone()));
        }
    }
    out
}

impl Decider<'_> {
    /// Where the spec names `key`: (stage index, component index), in stage order.
    pub(super) fn appearances(&self, key: &TargetKey) -> Vec<(usize, usize)> {
        let ns = &self.o.namespace;
        let mut out = vec![];
        for (si, s) in self.o.spec.stages.iter().enumerate() {
            for (ci, c) in s.components.iter().enumerate() {
                if TargetKey::of(c, ns) == *key {
                    out.push((si, ci));
                }
            }
        }
        out
    }

    /// Whether any stage runs a canary inside `key`.
    pub(super) fn canaried(&self, key: &TargetKey) -> bool {
        self.appearances(key).iter().any(|&(si, ci)| self.canary_of(si, ci).is_some())
    }

    /// The canary the spec asks of component `ci` of stage `si`.
    pub(super) fn canary_of(&self, si: usize, ci: usize) -> Option<&Canary> {
        self.o.spec.stages.get(si)?.components.get(ci)?.canary.as_ref()
    }

    /// Whether (si, ci) is the first stage that names its target: the one whose change sets the
    /// new image. Later ones widen it (canary) or hand the rest to the workload (last).
    pub(super) fn first_appearance(&self, key: &TargetKey, si: usize) -> bool {
        self.appearances(key).first().is_none_or(|&(first, _)| first == si)
    }

    /// What the canaries of the stages not started yet cannot do on the cluster as it is: said
    /// from the first look, before anything changes. (A DaemonSet whose pods are not seen yet is
    /// judged when its stage starts.)
    pub(super) fn canaries_problem(&self) -> Option<String> {
        (0..self.st.stages.len())
            .filter(|&si| self.st.stages[si].phase == StagePhase::Pending)
            .find_map(|si| self.canary_problem(si, false))
    }

    /// What a stage's canary cannot do on the cluster as it is; `starting`: the stage starts now,
    /// so a DaemonSet without pods the operator can see is a problem too.
    pub(super) fn canary_problem(&self, si: usize, starting: bool) -> Option<String> {
        for (ci, c) in self.st.stages[si].components.iter().enumerate() {
            let Some(canary) = self.canary_of(si, ci) else { continue };
            let (key, Some(t)) = self.target(c) else { continue };
            let nodes: BTreeSet<&str> = t.pods.iter().map(|p| p.node.as_str()).collect();
            if nodes.is_empty() && !starting {
                continue;
            }
            if nodes.is_empty() {
                return Some(format!(
                    "{key} has no pods the operator can see, so no node to start a canary on \
                     (the operator must watch pods in namespace {})",
                    key.namespace
                ));
            }
            if canary.nodes.of(nodes.len()).is_none_or(|n| n > nodes.len()) {
                return Some(format!(
                    "canary.nodes of {key} in stage {} is {} but it runs on {} nodes; ask for at most {}, or a percentage",
                    self.st.stages[si].name,
                    canary.nodes,
                    nodes.len(),
                    nodes.len()
                ));
            }
            let strategy = t.original_strategy.as_deref().or(t.update_strategy.as_deref());
            if strategy.is_none_or(|s| serde_json::from_str::<DaemonSetUpdateStrategy>(s).is_err()) {
                return Some(format!(
                    "{key} has no readable record of its updateStrategy (annotation {}); \
                     the canary cannot promise to restore it",
                    crate::constants::ORIGINAL_STRATEGY_ANNOTATION
                ));
            }
        }
        None
    }

    /// Widen the canary of component `ci` of stage `si` to what its stage asks: replace the pods
    /// of the next nodes (in name order), paced. None once enough nodes run the new image and
    /// all of those pods are Ready; otherwise what it waits for.
    pub(super) fn widen(&mut self, si: usize, ci: usize) -> Option<String> {
        let canary = self.canary_of(si, ci)?.clone();
        let c = self.st.stages[si].components[ci].clone();
        let (key, t) = self.target(&c);
        let t = t?;
        let container = c.container.clone().unwrap_or_default();
        // (A pod whose node is not known yet is left out: it cannot be placed.)
        let pods: Vec<PodPlace> = t.pods.iter().filter(|p| !p.node.is_empty()).cloned().collect();
        let runs_new = |p: &PodPlace| !p.deleting && p.image(&container) == Some(c.desired_image.as_str());
        // The nodes chosen so far: recorded, or seen with the new image (a pod the DaemonSet made
        // again elsewhere, on a new node or after an eviction, gets the new template and counts).
        let recorded: BTreeSet<String> = self
            .components()
            .filter(|o| (o.kind, &o.namespace, &o.name) == (key.kind, &key.namespace, &key.name))
            .filter_map(|o| o.canary.as_ref())
            .flat_map(|k| k.nodes.iter().cloned())
            .collect();
        let mut chosen: BTreeSet<String> = recorded;
        chosen.extend(pods.iter().filter(|p| runs_new(p)).map(|p| p.node.clone()));
        let mut nodes: BTreeSet<String> = pods.iter().map(|p| p.node.clone()).collect();
        nodes.extend(chosen.iter().cloned());
        let wanted = canary.nodes.of(nodes.len()).unwrap_or(1).min(nodes.len());
        let original = t.original_strategy.clone();
        // The next nodes, in name order, whose pod still runs the old image.
        let more: Vec<&PodPlace> = t
            .pods
            .iter()
            .filter(|p| !p.deleting && !chosen.contains(&p.node) && !runs_new(p))
            .take(wanted.saturating_sub(chosen.len()))
            .collect();
        // A chosen node without a Ready pod of the new image is being replaced, even before the
        // pod watch shows its pod deleted.
        let serving: BTreeSet<&str> =
            pods.iter().filter(|p| runs_new(p) && p.ready).map(|p| p.node.as_str()).collect();
        let mut down = unavailable(&pods);
        down.extend(chosen.iter().filter(|n| !serving.contains(n.as_str())).cloned());
        let delete = paced(more, down.len(), max_unavailable(original.as_deref(), nodes.len()));
        let ready = serving.len();
        for (name, _) in &delete {
            if let Some(p) = pods.iter().find(|p| p.name == *name) {
                chosen.insert(p.node.clone());
            }
        }
        let status = CanaryStatus {
            nodes_wanted: wanted as i32,
            nodes_total: nodes.len() as i32,
            nodes: chosen.iter().cloned().collect(),
            original_update_strategy: original,
        };
        self.st.stages[si].components[ci].canary = Some(status);
        if !delete.is_empty() && self.effect.is_none() {
            let names: Vec<&str> = delete.iter().map(|(n, _)| n.as_str()).collect();
            self.note(
                false,
                crate::constants::reason::CANARY_WIDENED,
                "ReplacePods",
                format!(
                    "{key}: replacing pods {} so that {} of {} nodes run {}",
                    names.join(", "),
                    wanted,
                    nodes.len(),
                    c.desired_image
                ),
            );
            self.effect = Some(Effect::DeletePods { target: key.clone(), pods: delete });
        }
        (chosen.len() < wanted || ready < chosen.len()).then(|| {
            format!(
                "{key}: {ready} of {wanted} canary nodes run {} and are Ready ({} nodes in all)",
                c.desired_image,
                nodes.len()
            )
        })
    }

    /// Undo a canary inside a reverted target, after its template is back on the known-good
    /// image: replace the pods that still run the new one (paced), then restore the recorded
    /// strategy. True while there is something left to do (an effect is set, or pods are
    /// being replaced).
    pub(super) fn unwind(&mut self, c: &ComponentStatus) -> Option<String> {
        let (key, t) = self.target(c);
        let t = t.filter(|t| self.owns(t))?;
        let original = t.original_strategy.clone()?;
        if same_strategy(t.update_strategy.as_deref(), Some(&original)) {
            return None;
        }
        let container = c.container.clone().unwrap_or_default();
        let new: Vec<&PodPlace> =
            t.pods.iter().filter(|p| p.image(&container) == Some(c.desired_image.as_str())).collect();
        if !new.is_empty() {
            let nodes = t.pods.iter().map(|p| p.node.as_str()).collect::<BTreeSet<_>>().len();
            let live: Vec<&PodPlace> = new.iter().copied().filter(|p| !p.deleting).collect();
            let delete = paced(live, unavailable(&t.pods).len(), max_unavailable(Some(&original), nodes));
            if !delete.is_empty() && self.effect.is_none() {
                let names: Vec<&str> = delete.iter().map(|(n, _)| n.as_str()).collect();
                self.note(
                    false,
                    crate::constants::reason::REVERTED,
                    "ReplacePods",
                    format!("{key}: replacing pods {} that run {}", names.join(", "), c.desired_image),
                );
                self.effect = Some(Effect::DeletePods { target: key.clone(), pods: delete });
            }
            return Some(format!("{key}: {} pods still run {}", new.len(), c.desired_image));
        }
        if self.effect.is_none() {
            self.note(
                false,
                crate::constants::reason::REVERTED,
                "RestoreStrategy",
                format!("{key}: updateStrategy restored to {original}"),
            );
            self.effect = Some(Effect::SetStrategy {
                target: key.clone(),
                resource_version: t.resource_version.clone(),
                strategy: original,
            });
        }
        Some(format!("{key}: restoring its updateStrategy"))
    }

    /// The last stage that names a canaried target hands the rest to the workload: its
    /// recorded strategy back. None when there is nothing to restore.
    pub(super) fn hand_over(&self, key: &TargetKey, t: &TargetState) -> Option<Effect> {
        let original = t.original_strategy.clone()?;
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| Effect::SetStrategy {
            target: key.clone(),
            resource_version: t.resource_version.clone(),
            strategy: original,
        })
    }

    /// The strategy the first stage of a canaried target sets with its image.
    pub(super) fn canary_strategy(&self, key: &TargetKey, si: usize) -> Option<String> {
        let first = self.appearances(key).first().copied()?;
        (first.0 == si && self.canary_of(first.0, first.1).is_some()).then(|| ON_DELETE.to_string())
    }
}

#[cfg(test)]
#[path = "canary_tests.rs"]
mod tests;
