//! Decide step, pure: a canary inside one DaemonSet. The first stage that names the DaemonSet
//! sets its new image and `updateStrategy: OnDelete` in one write (recording the strategy it
//! replaces on the target in the same write), then replaces its pods on the first nodes, in name
//! order, itself; later stages widen that set; the last stage that names it restores the
//! recorded strategy, so that the DaemonSet's own rolling update takes the rest. A revert sets
//! the image back, replaces the pods that run the new one, then restores the strategy: the order
//! the DaemonSet's own tools expect, and one in which no pod that never ran the new image rolls.
//!
//! Everything is read back from the target (its pods, its strategy, the record of the original
//! on it), so a restart resumes where it stopped. Pods are replaced only once the DaemonSet's
//! controller has seen its latest template and every node shows its pod, and no faster than
//! the DaemonSet's own maxUnavailable allows (at least one at a time: OnDelete cannot surge);
//! a pod that is not Ready is replaced at once.

use super::canary_partition::{partition_of, with_partition};
use super::canary_surge::{surge_of, surge_settings};
use super::{Decider, Effect};
use crate::crd::*;
use crate::target::{ON_DELETE, PodPlace, TargetKey, TargetState};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;

/// The same strategy, however its JSON was written.
pub(super) fn same_strategy(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    parse(a) == parse(b)
}

fn on_delete(strategy: Option<&str>) -> bool {
    let parsed: Option<DaemonSetUpdateStrategy> = strategy.and_then(|s| serde_json::from_str(s).ok());
    parsed.is_some_and(|s| s.type_.as_deref() == Some("OnDelete"))
}

/// Whether a Deployment's settings (`target::deployment_settings`) update by Recreate.
fn recreates(settings: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(settings).unwrap_or_default();
    v["strategy"]["type"] == "Recreate"
}

/// Whether `strategy` is what a canary sets: OnDelete (a DaemonSet), a partition (a
/// StatefulSet), a surge whose pods never count as available (a Deployment).
fn left_by_canary(strategy: &str) -> bool {
    on_delete(Some(strategy)) || partition_of(Some(strategy)) > 0 || surge_of(Some(strategy)).is_some()
}

/// The strategy a canary of `t` restores: its own, unless a canary left it (an upgrade deleted
/// mid-canary, or this one), then the one recorded on it.
pub(super) fn strategy_to_restore(t: &TargetState) -> Option<String> {
    match (&t.update_strategy, &t.original_strategy) {
        (Some(current), Some(recorded)) if left_by_canary(current) => Some(recorded.clone()),
        (Some(current), _) => Some(current.clone()),
        (None, recorded) => recorded.clone(),
    }
}

/// One step of a canary: component `ci` of stage `si`, its target, and what its stage asks.
pub(super) struct Step<'t> {
    pub si: usize,
    pub ci: usize,
    pub c: ComponentStatus,
    pub key: TargetKey,
    pub t: &'t TargetState,
    pub canary: Canary,
    /// Whether it may change anything (a stage rolling out), or only follows (a soak).
    pub replace: bool,
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

/// A DaemonSet's pods, as a canary sees them: placed on a node, and how many nodes serve none.
struct Placed<'a> {
    pods: Vec<&'a PodPlace>,
    nodes: BTreeSet<String>,
    /// Nodes whose pod does not serve: not Ready, being deleted, or (by the DaemonSet's own
    /// count) gone before its replacement shows.
    down: usize,
    /// Every node the DaemonSet wants shows its pod, made from the current template: a pod
    /// deleted now comes back with it.
    settled: bool,
}

fn placed(t: &TargetState) -> Option<Placed<'_>> {
    let pods: Vec<&PodPlace> = t.pods.as_ref()?.iter().filter(|p| !p.node.is_empty()).collect();
    let nodes: BTreeSet<String> = pods.iter().map(|p| p.node.clone()).collect();
    let seen_down =
        pods.iter().filter(|p| !p.ready || p.deleting).map(|p| &p.node).collect::<BTreeSet<_>>().len();
    let counted_down = usize::try_from(t.desired_pods - t.available_pods).unwrap_or(0);
    let settled = t.generation_observed && nodes.len() >= usize::try_from(t.desired_pods).unwrap_or(0);
    (!nodes.is_empty()).then_some(Placed { down: seen_down.max(counted_down), pods, nodes, settled })
}

/// The pods to delete now, of `candidates` (in order): a pod that is not Ready at once (it
/// serves nothing), a Ready one only while fewer than `max_unavailable` nodes are down.
fn paced(candidates: Vec<&PodPlace>, down: usize, max_unavailable: usize) -> Vec<(String, String)> {
    let mut budget = max_unavailable.saturating_sub(down);
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

    /// What the canaries cannot do on the cluster as it is, judged before anything changes (a
    /// DaemonSet whose pods are not seen yet is judged once they are). Once something has
    /// changed, a canary larger than the nodes left takes them all instead: the stages cannot
    /// be edited, so a block there could never be lifted.
    pub(super) fn canaries_problem(&self) -> Option<String> {
        if self.st.changed_at.is_some() {
            return None;
        }
        for (si, s) in self.st.stages.iter().enumerate() {
            for (ci, c) in s.components.iter().enumerate() {
                let Some(canary) = self.canary_of(si, ci) else { continue };
                let (key, Some(t)) = self.target(c) else { continue };
                let strategy = strategy_to_restore(t);
                if strategy
                    .as_deref()
                    .is_none_or(|s| serde_json::from_str::<DaemonSetUpdateStrategy>(s).is_err())
                {
                    return Some(format!(
                        "{key} has no readable updateStrategy; the canary could not restore it"
                    ));
                }
                if key.kind == WorkloadKind::Deployment && strategy.as_deref().is_some_and(recreates) {
                    return Some(format!(
                        "{key} updates by Recreate: a canary would run the new pods beside the old ones, which \
                         Recreate exists to prevent; upgrade it whole (no canary)"
                    ));
                }
                if on_delete(strategy.as_deref()) {
                    return Some(format!(
                        "{key} updates OnDelete already: the operator cannot hand it the rest of a canary; \
                         upgrade it whole (no canary), or give it a RollingUpdate strategy"
                    ));
                }
                if let Some(key_text) = canary.bad_selector_key() {
                    return Some(format!(
                        "canary.nodeSelector of {key} in stage {} has {key_text:?}, which is not a label key \
                         (such as topology.kubernetes.io/zone)",
                        s.name
                    ));
                }
                if key.kind == WorkloadKind::Deployment && t.paused {
                    return Some(format!(
                        "{key} is paused (spec.paused): its controller would make no canary; resume it, or \
                         upgrade it whole (no canary)"
                    ));
                }
                if key.kind != WorkloadKind::DaemonSet {
                    let replicas = usize::try_from(t.desired_pods).unwrap_or(0);
                    if replicas == 0 {
                        return Some(format!(
                            "{key} has 0 replicas: a canary inside it has none to take; scale it up, or upgrade it whole (no canary)"
                        ));
                    }
                    if canary.portion().of(replicas).is_none_or(|n| n > replicas) {
                        return Some(format!(
                            "canary.replicas of {key} in stage {} is {} but it has {replicas} replicas; ask for at most {replicas}, or a percentage",
                            s.name,
                            canary.portion()
                        ));
                    }
                    // Partition 0 holds nothing back: that is the last stage's change, not a canary.
                    if key.kind == WorkloadKind::StatefulSet
                        && canary.portion().of(replicas) == Some(replicas)
                    {
                        return Some(format!(
                            "canary.replicas of {key} in stage {} takes all {replicas} of its replicas: a partition \
                             of 0 holds none back; ask for fewer, or name it without canary",
                            s.name
                        ));
                    }
                    // A partition of its own would be lowered by the canary and restored by the
                    // revert with pods below it still on the new image.
                    if key.kind == WorkloadKind::StatefulSet && partition_of(strategy.as_deref()) > 0 {
                        return Some(format!(
                            "{key} has a rollingUpdate.partition of its own: a canary inside it cannot \
                             promise to restore it; set it to 0, or upgrade it whole (no canary)"
                        ));
                    }
                    continue;
                }
                let Some(placed) = placed(t) else { continue };
                let Some(eligible) = self.eligible(canary, &placed.nodes) else { continue };
                if let Some(selector) = canary.selector_text().filter(|_| eligible.is_empty()) {
                    return Some(format!(
                        "canary.nodeSelector {selector} of {key} in stage {} selects none of the {} nodes it runs on",
                        s.name,
                        placed.nodes.len()
                    ));
                }
                if canary.portion().of(eligible.len()).is_none_or(|n| n > eligible.len()) {
                    let among = if canary.node_selector.is_some() { " its nodeSelector selects" } else { "" };
                    return Some(format!(
                        "canary.nodes of {key} in stage {} is {} but it runs on {} nodes{among}; ask for at most {}, or a percentage",
                        s.name,
                        canary.portion(),
                        eligible.len(),
                        eligible.len()
                    ));
                }
            }
        }
        None
    }

    /// Why stage `si` cannot start yet: a canary whose nodeSelector's nodes are not read yet
    /// (the operator lists them; RBAC `nodes: list`). Nothing changes until they are.
    pub(super) fn selection_unread(&self, si: usize) -> Option<String> {
        self.o.spec.stages.get(si)?.components.iter().find_map(|c| {
            let selector = c.canary.as_ref()?.selector_text()?;
            (!self.o.selected_nodes.contains_key(&selector))
                .then(|| format!("waiting to read the nodes canary.nodeSelector {selector} selects"))
        })
    }

    /// Of `nodes`, those a canary may take: all, or those its nodeSelector selects. None while
    /// the nodes that selector selects have not been read.
    fn eligible(&self, canary: &Canary, nodes: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let Some(selector) = canary.selector_text() else { return Some(nodes.clone()) };
        let selected = self.o.selected_nodes.get(&selector)?;
        Some(nodes.intersection(selected).cloned().collect())
    }

    /// The strategy recorded for a canaried target: on the target, or (if someone removed that
    /// annotation) in the status, where the operator copied it.
    pub(super) fn recorded_strategy(&self, key: &TargetKey, t: &TargetState) -> Option<String> {
        t.original_strategy
            .clone()
            .or_else(|| self.recorded_canaries(key).find_map(|k| k.original_update_strategy.clone()))
    }

    /// What the status records of the canaries inside `key`, in every stage that names it.
    pub(super) fn recorded_canaries<'s>(
        &'s self,
        key: &'s TargetKey,
    ) -> impl Iterator<Item = &'s CanaryStatus> + 's {
        self.recorded_components(key).filter_map(|o| o.canary.as_ref())
    }

    /// The components of the status that name `key`.
    pub(super) fn recorded_components<'s>(
        &'s self,
        key: &'s TargetKey,
    ) -> impl Iterator<Item = &'s ComponentStatus> + 's {
        self.components()
            .filter(move |o| (o.kind, &o.namespace, &o.name) == (key.kind, &key.namespace, &key.name))
    }

    /// How many the canary of `key` was measured against when it began (its status), if it has.
    pub(super) fn recorded_total(&self, key: &TargetKey) -> Option<usize> {
        self.recorded_canaries(key).map(|k| k.total).find(|n| *n > 0).and_then(|n| usize::try_from(n).ok())
    }

    /// Delete `pods` of `key` (its controller makes them again from its current template), and
    /// say why.
    fn replace_pods(
        &mut self,
        key: &TargetKey,
        pods: Vec<(String, String)>,
        reason: &'static str,
        why: String,
    ) {
        let names: Vec<&str> = pods.iter().map(|(n, _)| n.as_str()).collect();
        self.note(false, reason, "ReplacePods", format!("{key}: replacing pods {} {why}", names.join(", ")));
        self.effect = Some(Effect::DeletePods { target: key.clone(), pods });
    }

    /// Widen the canary of component `ci` of stage `si` to what its stage asks: replace the pods
    /// of the next nodes (in name order), paced. None once enough nodes run the new image and
    /// all of those pods are Ready; otherwise what it waits for.
    pub(super) fn widen(&mut self, si: usize, ci: usize) -> Option<String> {
        self.canary_step(si, ci, true)
    }

    /// While a stage soaks: where its canary runs now (a pod made again on a new node counts),
    /// replacing nothing.
    pub(super) fn follow(&mut self, si: usize) {
        for ci in 0..self.st.stages[si].components.len() {
            if self.canary_of(si, ci).is_some() {
                self.canary_step(si, ci, false);
            }
        }
    }

    fn canary_step(&mut self, si: usize, ci: usize, replace: bool) -> Option<String> {
        let canary = self.canary_of(si, ci)?.clone();
        let c = self.st.stages[si].components[ci].clone();
        let (key, t) = self.target(&c);
        let Some(t) = t else { return Some(format!("{key}: missing")) };
        if key.kind != WorkloadKind::DaemonSet {
            let step = Step { si, ci, c: c.clone(), key: key.clone(), t, canary: canary.clone(), replace };
            return match key.kind {
                WorkloadKind::StatefulSet => self.partition_step(step),
                _ => self.surge_step(step),
            };
        }
        let Some(p) = placed(t) else {
            return Some(format!("{key}: waiting to see its pods (the pod watch is listing them)"));
        };
        let container = c.container.clone().unwrap_or_default();
        let runs_new = |p: &PodPlace| p.image(&container) == Some(c.desired_image.as_str());
        // The canary so far: the nodes whose pod runs the new image, or is being deleted (its
        // replacement comes from the new template), or was deleted by this upgrade (recorded,
        // for as long as the node runs the DaemonSet).
        let recorded: BTreeSet<String> = self
            .recorded_canaries(&key)
            .flat_map(|k| k.nodes.iter().cloned())
            .filter(|n| p.nodes.contains(n))
            .collect();
        let mut chosen = recorded.clone();
        chosen.extend(p.pods.iter().filter(|q| runs_new(q) || q.deleting).map(|q| q.node.clone()));
        let Some(eligible) = self.eligible(&canary, &p.nodes) else {
            return Some(format!("{key}: waiting to read the nodes its canary.nodeSelector selects"));
        };
        if eligible.is_empty() {
            return Some(format!("{key}: its canary.nodeSelector selects none of the nodes it runs on"));
        }
        let wanted = canary.portion().of(eligible.len()).unwrap_or(1).clamp(1, eligible.len());
        let serving = p.pods.iter().filter(|q| runs_new(q) && q.ready && !q.deleting).count();
        let original = self.recorded_strategy(&key, t);
        // Taken again: a chosen node whose pod still runs the old image (its delete not yet seen,
        // or the pod made again from a template the DaemonSet's controller had not caught up
        // with). Then the next nodes, in name order. Only once the controller has caught up.
        let again =
            p.pods.iter().copied().filter(|q| recorded.contains(&q.node) && !runs_new(q) && !q.deleting);
        let more = p
            .pods
            .iter()
            .copied()
            .filter(|q| {
                eligible.contains(&q.node) && !chosen.contains(&q.node) && !runs_new(q) && !q.deleting
            })
            .take(wanted.saturating_sub(chosen.len()));
        let delete = if replace && p.settled && self.effect.is_none() {
            let down = p.down.max(chosen.len() - serving.min(chosen.len()));
            let mut delete: Vec<(String, String)> = again.map(|q| (q.name.clone(), q.uid.clone())).collect();
            delete.extend(paced(more.collect(), down, max_unavailable(original.as_deref(), p.nodes.len())));
            delete
        } else {
            vec![]
        };
        for (name, _) in &delete {
            if let Some(q) = p.pods.iter().find(|q| q.name == *name) {
                chosen.insert(q.node.clone());
            }
        }
        self.st.stages[si].components[ci].canary = Some(CanaryStatus {
            wanted: wanted as i32,
            total: p.nodes.len() as i32,
            nodes: chosen.iter().cloned().collect(),
            original_update_strategy: original,
            ..Default::default()
        });
        if !delete.is_empty() {
            let why = format!("so that {wanted} of {} nodes run {}", p.nodes.len(), c.desired_image);
            self.replace_pods(&key, delete, crate::constants::reason::CANARY_WIDENED, why);
        }
        (chosen.len() < wanted || serving < chosen.len()).then(|| {
            format!(
                "{key}: {serving} of {wanted} canary nodes run {} and are Ready ({} nodes in all)",
                c.desired_image,
                p.nodes.len()
            )
        })
    }

    /// Undo a canary inside a reverted target, once its template is back on the known-good
    /// image: replace the pods that still run the new one (paced), then restore the recorded
    /// strategy. Past `give_up` (pods that never go away), the strategy is restored anyway: with
    /// the template reverted, the DaemonSet's own rolling update replaces only those pods. What
    /// it waits for, while there is something left to do.
    pub(super) fn unwind(&mut self, c: &ComponentStatus, give_up: DateTime<Utc>) -> Option<String> {
        let (key, t) = self.target(c);
        let t = t.filter(|t| self.owns(t))?;
        let original = self.recorded_strategy(&key, t)?;
        let container = c.container.clone().unwrap_or_default();
        let late = self.now() >= give_up;
        // A StatefulSet's updated pod that never became Ready holds an OrderedReady rollout
        // even after the template is reverted (kubernetes#67250): deleted, it comes back from
        // the reverted template.
        if key.kind == WorkloadKind::StatefulSet {
            let Some(pods) = t.pods.as_ref().filter(|_| t.generation_observed) else {
                return Some(format!(
                    "{key}: waiting for its controller and its pods to show the reverted template"
                ));
            };
            let stuck: Vec<(String, String)> = pods
                .iter()
                .filter(|p| p.image(&container) == Some(c.desired_image.as_str()) && !p.ready && !p.deleting)
                .map(|p| (p.name.clone(), p.uid.clone()))
                .collect();
            if !stuck.is_empty() {
                if self.effect.is_none() {
                    let why = format!("that run {} and never became Ready", c.desired_image);
                    self.replace_pods(&key, stuck, crate::constants::reason::REVERTED, why);
                }
                return Some(format!("{key}: replacing its updated pods that are not Ready"));
            }
        }
        if on_delete(t.update_strategy.as_deref()) && !late {
            let Some(p) = placed(t) else {
                return Some(format!("{key}: waiting to see its pods (the pod watch is listing them)"));
            };
            let new: Vec<&PodPlace> = p
                .pods
                .iter()
                .copied()
                .filter(|q| q.image(&container) == Some(c.desired_image.as_str()))
                .collect();
            if !new.is_empty() {
                let live: Vec<&PodPlace> = new.iter().copied().filter(|q| !q.deleting).collect();
                let delete = if p.settled && self.effect.is_none() {
                    paced(live, p.down, max_unavailable(Some(&original), p.nodes.len()))
                } else {
                    vec![]
                };
                if !delete.is_empty() {
                    let why = format!("that run {}", c.desired_image);
                    self.replace_pods(&key, delete, crate::constants::reason::REVERTED, why);
                }
                return Some(format!("{key}: {} pods still run {}", new.len(), c.desired_image));
            }
        }
        let Some(restore) = self.hand_over(&key, t) else {
            // A StatefulSet's or Deployment's controller replaces the canary's pods itself once
            // its settings are back; reverted only when none runs the new image (its status
            // reads complete as soon as the template is back, the old revision being reused).
            let new = t
                .pods
                .iter()
                .flatten()
                .filter(|p| !p.deleting && p.image(&container) == Some(c.desired_image.as_str()))
                .count();
            if key.kind != WorkloadKind::DaemonSet && new > 0 && !late {
                return Some(format!("{key}: {new} pods still run {}", c.desired_image));
            }
            return None;
        };
        if self.effect.is_none() {
            let why = if late {
                " (pods that run the new image did not go away in time; the DaemonSet replaces them)"
            } else {
                ""
            };
            self.note(
                false,
                crate::constants::reason::REVERTED,
                "RestoreStrategy",
                format!("{key}: updateStrategy restored to {original}{why}"),
            );
            self.effect = Some(restore);
        }
        Some(format!("{key}: restoring its updateStrategy"))
    }

    /// A target this upgrade still owns whose rollout settings are still a canary's, with what
    /// restores them: one whose image someone else changed mid-canary (the operator lets go of
    /// its image, not of the settings it set), before it is released, so that no workload is
    /// left on OnDelete, a partition or a surge that never ends.
    /// Only a target this upgrade canaried and changed, and only to the record on the target
    /// itself (the status, which a tenant may forge, does not choose what is written).
    pub(super) fn settings_left(&self) -> Option<(TargetKey, Effect)> {
        self.o.targets.iter().find_map(|(key, t)| {
            let t = t.as_ref().filter(|t| self.owns(t) && self.canaried(key))?;
            let changed = self.recorded_components(key).any(|c| c.applied_at.is_some());
            (changed && left_by_canary(t.update_strategy.as_deref()?)).then_some(())?;
            let original = t.original_strategy.clone()?;
            (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then_some(())?;
            let restore = Effect::SetStrategy {
                target: key.clone(),
                resource_version: t.resource_version.clone(),
                strategy: original,
            };
            Some((key.clone(), restore))
        })
    }

    /// Why the upgrade must be reverted because someone else changed the rollout settings of
    /// a canaried target during its canary, if they did: while its canary stages run they must
    /// be the canary's (a RollingUpdate put back by Helm or Argo CD rolls the new image, still
    /// unjudged, to every node or replica at once). Its image is still this upgrade's, so it is
    /// reverted with the rest, its recorded settings restored.
    pub(super) fn settings_drift(&self) -> Option<String> {
        self.components().filter(|c| c.phase == ComponentPhase::Applied).find_map(|c| {
            let (key, t) = self.target(c);
            let t = t.filter(|t| self.owns(t) && self.canaried(&key))?;
            let &(last, _) = self.appearances(&key).last()?;
            let handed_over = self.st.stages.get(last).is_some_and(|s| s.phase != StagePhase::Pending);
            let current = t.update_strategy.as_deref()?;
            (!handed_over && !left_by_canary(current)).then(|| {
                format!(
                    "{key}'s rollout settings were changed by someone else during its canary (now {current}), \
                     which would roll the new image everywhere unjudged; tell Argo CD, Flux or Helm to leave \
                     them to the operator (see the ManagedByGitOps advice)"
                )
            })
        })
    }

    /// The recorded strategy back on a canaried target: how the last stage that names it hands
    /// the rest to the workload, and how a revert ends. None when there is nothing to restore.
    pub(super) fn hand_over(&self, key: &TargetKey, t: &TargetState) -> Option<Effect> {
        let original = self.recorded_strategy(key, t)?;
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| Effect::SetStrategy {
            target: key.clone(),
            resource_version: t.resource_version.clone(),
            strategy: original,
        })
    }

    /// What stage `si` does to the canaries before it, in words: " (widening the canary of …
    /// to 25% of its nodes)", or nothing.
    pub(super) fn widens(&self, si: usize) -> String {
        let ns = &self.o.namespace;
        let said: Vec<String> = self.o.spec.stages[si]
            .components
            .iter()
            .filter_map(|c| {
                let key = TargetKey::of(c, ns);
                if self.first_appearance(&key, si) {
                    return None;
                }
                Some(match &c.canary {
                    Some(k) if k.replicas.is_some() => {
                        format!("widening the canary of {key} to {} of its replicas", k.portion())
                    }
                    Some(k) => format!("widening the canary of {key} to {} of its nodes", k.portion()),
                    None => format!("handing the rest of {key} to its own updateStrategy"),
                })
            })
            .collect();
        if said.is_empty() { String::new() } else { format!(" ({})", said.join("; ")) }
    }

    /// The strategy the first stage that names a target sets with its image, and the one it
    /// records as replaced: OnDelete for a canary; for a whole change, the strategy an upgrade
    /// deleted mid-canary left recorded, if the target still runs OnDelete.
    pub(super) fn strategy_with_image(
        &self,
        key: &TargetKey,
        si: usize,
        t: &TargetState,
    ) -> Option<(String, String)> {
        let &(first, ci) = self.appearances(key).first()?;
        if first != si {
            return None;
        }
        let original = strategy_to_restore(t)?;
        if let Some(canary) = self.canary_of(first, ci) {
            if key.kind == WorkloadKind::StatefulSet {
                let replicas = usize::try_from(t.desired_pods).unwrap_or(0).max(1);
                let wanted = canary.portion().of(replicas).unwrap_or(1).clamp(1, replicas);
                return Some((with_partition(Some(&original), replicas - wanted), original));
            }
            if key.kind == WorkloadKind::Deployment {
                let replicas = usize::try_from(t.desired_pods).unwrap_or(0).max(1);
                let wanted = canary.portion().of(replicas).unwrap_or(1).clamp(1, replicas);
                return Some((surge_settings(wanted), original));
            }
            return Some((ON_DELETE.to_string(), original));
        }
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| (original.clone(), original))
    }
}

#[cfg(test)]
#[path = "canary_tests.rs"]
mod tests;
