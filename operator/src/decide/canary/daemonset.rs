//! Decide step, pure: a canary inside one DaemonSet, its first nodes. The first stage that
//! names the DaemonSet sets its new image and `updateStrategy: OnDelete` in one write (recording
//! the strategy it replaces on the target in the same write), then replaces its pods on the
//! first nodes (`in_taking_order`: those whose pod serves, spread over zones) itself; later stages widen
//! that set; the last stage that names it restores the recorded strategy, so that the
//! DaemonSet's own rolling update takes the rest. A revert sets the image back, replaces the
//! pods that run the new one, then restores the strategy: the order the DaemonSet's own tools
//! expect, and one in which no pod that never ran the new image rolls.
//!
//! Pods are replaced only once the DaemonSet's controller has seen its latest template and
//! every node shows its pod, and no faster than the DaemonSet's own maxUnavailable allows (at
//! least one at a time: OnDelete cannot surge); a pod that is not Ready is replaced at once.
//! Nodes whose pod serves are taken first: a canary is judged on an agent that ran well before.

use super::Step;
use crate::crd::*;
use crate::decide::{Decider, NodeFacts};
use crate::target::{PodPlace, TargetKey, TargetState};
use chrono::SubsecRound;
use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

/// Whether `strategy` (JSON) is OnDelete.
pub(in crate::decide) fn on_delete(strategy: Option<&str>) -> bool {
    let parsed: Option<DaemonSetUpdateStrategy> = strategy.and_then(|s| serde_json::from_str(s).ok());
    parsed.is_some_and(|s| s.type_.as_deref() == Some("OnDelete"))
}

/// How many pods of `nodes` may be unavailable at once: the DaemonSet's rolling update's
/// maxUnavailable (a percentage rounded up, as the DaemonSet controller does), at least one.
fn max_unavailable(original: Option<&str>, nodes: usize) -> usize {
    let strategy: Option<DaemonSetUpdateStrategy> = original.and_then(|s| serde_json::from_str(s).ok());
    let value = strategy.and_then(|s| s.rolling_update).and_then(|r| r.max_unavailable);
    value.map_or(1, |v| scaled(&v, nodes)).max(1)
}

/// How many pods of a DaemonSet on `nodes` nodes a stage replaces at once: a canary's, as the
/// operator paces them (`max_unavailable`); handed over or upgraded whole, as its own rolling
/// update does (its maxSurge, when it surges with maxUnavailable 0).
pub(in crate::decide) fn replaced_at_once(strategy: Option<&str>, nodes: usize, canary: bool) -> usize {
    let parsed: Option<DaemonSetUpdateStrategy> = strategy.and_then(|s| serde_json::from_str(s).ok());
    let rolling = parsed.and_then(|s| s.rolling_update);
    let surge = rolling.as_ref().and_then(|r| r.max_surge.clone());
    let unavailable_none = matches!(
        rolling.as_ref().and_then(|r| r.max_unavailable.as_ref()),
        Some(IntOrString::Int(0))
    ) || matches!(rolling.as_ref().and_then(|r| r.max_unavailable.as_ref()), Some(IntOrString::String(p)) if p.trim_end_matches('%').parse() == Ok(0));
    match surge {
        Some(surge) if !canary && unavailable_none => scaled(&surge, nodes).max(1),
        _ => max_unavailable(strategy, nodes),
    }
}

/// An int-or-percentage of `nodes`, a percentage rounded up (as the DaemonSet controller does).
fn scaled(value: &IntOrString, nodes: usize) -> usize {
    match value {
        IntOrString::Int(n) => usize::try_from(*n).unwrap_or(0),
        IntOrString::String(p) => {
            let pct: usize = p.trim_end_matches('%').parse().unwrap_or(0);
            nodes.saturating_mul(pct).div_ceil(100)
        }
    }
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

/// Per zone, how many nodes a group has given; per node, its rank in its zone.
type ZoneTurns = (BTreeMap<String, usize>, BTreeMap<String, usize>);

/// Of `pods`, in the order a canary takes their nodes: those whose pod serves (Ready, not being
/// deleted) first, and of each group the `preferred` first (the nodes the canary's baseline was
/// measured on); then spread over the nodes' zones (`facts`), the first of each zone, then the
/// second, each round in name order, counting the nodes the canary has already in each zone. A node whose agent is already down would lend the new
/// image its failures, and a pod deleted on a node that stopped answering never goes away; a
/// canary in one zone would take a zone's trouble (its disks, its network) for the image's,
/// which its control, in the other zones, does not see.
fn in_taking_order<'a>(
    pods: impl Iterator<Item = &'a PodPlace>,
    preferred: &BTreeSet<String>,
    already: &BTreeSet<String>,
    facts: &BTreeMap<String, NodeFacts>,
) -> Vec<&'a PodPlace> {
    let group = |q: &PodPlace| (!q.ready || q.deleting, !preferred.contains(&q.node));
    let mut pods: Vec<&PodPlace> = pods.collect();
    pods.sort_by(|a, b| (group(a), &a.node).cmp(&(group(b), &b.node)));
    let zone_of = |node: &str| facts.get(node).and_then(|f| f.zone.clone()).unwrap_or_default();
    // Within each group, each node's rank in its zone (in name order, a node once), after the
    // canary's nodes there already.
    let seeded: BTreeMap<String, usize> = already.iter().fold(BTreeMap::new(), |mut m, n| {
        *m.entry(zone_of(n)).or_default() += 1;
        m
    });
    let mut seen: BTreeMap<(bool, bool), ZoneTurns> = BTreeMap::new();
    let mut ranked: Vec<((bool, bool), usize, &PodPlace)> = pods
        .into_iter()
        .map(|q| {
            let (zones, nodes) = seen.entry(group(q)).or_insert_with(|| (seeded.clone(), BTreeMap::new()));
            let rank = *nodes.entry(q.node.clone()).or_insert_with(|| {
                let n = zones.entry(zone_of(&q.node)).or_default();
                *n += 1;
                *n
            });
            (group(q), rank, q)
        })
        .collect();
    ranked.sort_by(|(ga, ra, a), (gb, rb, b)| (ga, ra, &a.node).cmp(&(gb, rb, &b.node)));
    ranked.into_iter().map(|(_, _, q)| q).collect()
}

/// Why no pod is replaced now although some wait, when nodes outside `ours` hold the budget:
/// those nodes (at most five named), and what happens next. Empty otherwise.
fn held_by_others(p: &Placed<'_>, ours: &BTreeSet<String>, max_unavailable: usize) -> String {
    let down: BTreeSet<&str> = p
        .pods
        .iter()
        .filter(|q| (!q.ready || q.deleting) && !ours.contains(&q.node))
        .map(|q| q.node.as_str())
        .collect();
    if down.is_empty() || p.down < max_unavailable {
        return String::new();
    }
    let named: Vec<&str> = down.iter().copied().take(5).collect();
    let more = match down.len() - named.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "; waiting: nodes whose pod is down ({}{more}) spend the DaemonSet's maxUnavailable \
         {max_unavailable}, so no more may go down at once",
        named.join(", ")
    )
}

/// What follows a wait `held_by_others` names, said while the stage still runs.
const HELD_NEXT: &str = "; it goes on once they serve again (the stage's progressDeadline still runs)";

impl Decider<'_> {
    /// What a canary of `canary` nodes of DaemonSet `key` cannot do on the nodes it runs on
    /// (judged once its pods are seen).
    pub(super) fn daemonset_problem(
        &self,
        stage: &str,
        key: &TargetKey,
        t: &TargetState,
        canary: &Canary,
    ) -> Option<String> {
        let placed = placed(t)?;
        let eligible = self.eligible(canary, &placed.nodes)?;
        if let Some(selector) = canary.selector_text().filter(|_| eligible.is_empty()) {
            return Some(format!(
                "canary.nodeSelector {selector} of {key} in stage {} selects none of the {} nodes it runs on",
                stage,
                placed.nodes.len()
            ));
        }
        if canary.portion().of(eligible.len()).is_none_or(|n| n > eligible.len()) {
            let among = if canary.node_selector.is_some() { " its nodeSelector selects" } else { "" };
            return Some(format!(
                "canary.nodes of {key} in stage {} is {} but it runs on {} nodes{among}; ask for at most {}, or a percentage",
                stage,
                canary.portion(),
                eligible.len(),
                eligible.len()
            ));
        }
        None
    }

    /// Why stage `si` cannot start yet: a canary whose nodeSelector's nodes are not read yet
    /// (the operator watches them; RBAC `nodes: list, watch`). Nothing changes until they are.
    pub(in crate::decide) fn selection_unread(&self, si: usize) -> Option<String> {
        self.o.spec.stages.get(si)?.components.iter().find_map(|c| {
            let selector = c.canary.as_ref()?.selector_text()?;
            (!self.o.selected_nodes.contains_key(&selector))
                .then(|| format!("waiting to read the nodes canary.nodeSelector {selector} selects"))
        })
    }

    /// The nodes the canary of component `ci` of stage `si`, a DaemonSet's, will take: the first
    /// it asks for, in taking order (`in_taking_order`), among those it may take (as
    /// `daemonset_step` takes them). None while its pods or the nodes its nodeSelector selects are not read yet.
    pub(super) fn planned_nodes(&self, si: usize, ci: usize) -> Option<Vec<String>> {
        let canary = self.canary_of(si, ci)?;
        let c = self.st.stages.get(si)?.components.get(ci)?;
        let p = placed(self.target(c).1?)?;
        let eligible = self.eligible(canary, &p.nodes)?;
        let wanted = canary.portion().of(eligible.len()).unwrap_or(1).clamp(1, eligible.len().max(1));
        let mut nodes: Vec<String> = vec![];
        let preferred = self.baseline_nodes();
        let pods = p.pods.iter().copied().filter(|q| eligible.contains(&q.node));
        for q in in_taking_order(pods, &preferred, &BTreeSet::new(), &self.o.node_facts) {
            if !nodes.contains(&q.node) {
                nodes.push(q.node.clone());
            }
        }
        nodes.truncate(wanted);
        Some(nodes)
    }

    /// How many nodes the canary of component `ci` of stage `si`, a DaemonSet's, may take from
    /// (all it runs on, or those its nodeSelector selects), and how many it runs on. None until
    /// both are read.
    pub(in crate::decide) fn node_pool(&self, si: usize, ci: usize) -> Option<(usize, usize)> {
        let c = self.st.stages.get(si)?.components.get(ci)?;
        let p = placed(self.target(c).1?)?;
        Some((self.eligible(self.canary_of(si, ci)?, &p.nodes)?.len(), p.nodes.len()))
    }

    /// Of `nodes`, those a canary may take: all, or those its nodeSelector selects. None while
    /// the nodes that selector selects have not been read.
    fn eligible(&self, canary: &Canary, nodes: &BTreeSet<String>) -> Option<BTreeSet<String>> {
        let Some(selector) = canary.selector_text() else { return Some(nodes.clone()) };
        let selected = self.o.selected_nodes.get(&selector)?;
        Some(nodes.intersection(selected).cloned().collect())
    }

    /// A DaemonSet's canary: replace the pods of the next nodes (in taking order), paced. None
    /// once enough nodes run the new image and all of those pods are Ready; otherwise what it
    /// waits for.
    pub(super) fn daemonset_step(&mut self, step: Step<'_>) -> Option<String> {
        let Step { si, ci, c, key, t, canary, replace } = step;
        let Some(p) = placed(t) else {
            return Some(format!("{key}: waiting to see its pods (the pod watch is listing them)"));
        };
        let container = c.container.clone().unwrap_or_default();
        let runs_new = |p: &PodPlace| p.runs(&container, &c.desired_image);
        let Some(eligible) = self.eligible(&canary, &p.nodes) else {
            return Some(format!("{key}: waiting to read the nodes its canary.nodeSelector selects"));
        };
        if eligible.is_empty() {
            return Some(format!("{key}: its canary.nodeSelector selects none of the nodes it runs on"));
        }
        // The canary so far: the nodes whose pod runs the new image, or is being deleted (its
        // replacement comes from the new template), or was deleted by this upgrade (recorded,
        // for as long as the node runs the DaemonSet). The status is input: a recorded node
        // counts only where the canary may go, and no more of them than leave it at its size.
        let mut chosen: BTreeSet<String> =
            p.pods.iter().filter(|q| runs_new(q) || q.deleting).map(|q| q.node.clone()).collect();
        // Of those, the nodes that joined since the first change (their pod made by the
        // DaemonSet from the new template): the canary's, reverted with it, but neither judged
        // by its signals nor counted in its size, which is of the nodes that were there.
        let joined = self.joined(&key, &chosen);
        // Until the watch of nodes has listed, a node on the new image the status does not call
        // the canary's could be one that joined: nothing is taken or counted until it is read.
        let unread = |n: &String| !self.recorded_canaries(&key).any(|k| k.nodes.contains(n));
        if !self.o.nodes_listed && chosen.iter().any(unread) {
            return Some(format!(
                "{key}: waiting for the watch of nodes to list them (to tell a node that joined)"
            ));
        }
        let pool = eligible.iter().filter(|n| !joined.contains(*n)).count();
        if pool == 0 {
            return Some(format!(
                "{key}: every node its canary may take joined after its change (the nodes it had were replaced): \
                 the canary has no node of its own to be judged on; set spec.rollback.requested to revert, or \
                 wait for the stage's progressDeadline, which reverts it"
            ));
        }
        let wanted = canary.portion().of(pool).unwrap_or(1).clamp(1, pool);
        let own = |chosen: &BTreeSet<String>| chosen.iter().filter(|n| !joined.contains(*n)).count();
        let room = wanted.saturating_sub(own(&chosen));
        let recorded: BTreeSet<String> = self
            .recorded_canaries(&key)
            .flat_map(|k| k.nodes.iter().cloned())
            .filter(|n| eligible.contains(n) && !chosen.contains(n))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(room)
            .collect();
        chosen.extend(recorded.iter().cloned());
        let serving = p
            .pods
            .iter()
            .filter(|q| runs_new(q) && q.ready && !q.deleting && !joined.contains(&q.node))
            .count();
        let original = self.recorded_strategy(&key, t);
        let max_unavailable = max_unavailable(original.as_deref(), p.nodes.len());
        // Taken again: a recorded node whose pod still runs the old image (its delete not yet
        // seen, or the pod made again from a template the DaemonSet's controller had not caught
        // up with), paced. Then the next nodes, in taking order. Only once the controller has
        // caught up.
        let again: Vec<&PodPlace> = p
            .pods
            .iter()
            .copied()
            .filter(|q| recorded.contains(&q.node) && !runs_new(q) && !q.deleting)
            .collect();
        let preferred = self.baseline_nodes();
        let more = in_taking_order(
            p.pods.iter().copied().filter(|q| {
                eligible.contains(&q.node) && !chosen.contains(&q.node) && !runs_new(q) && !q.deleting
            }),
            &preferred,
            &chosen.difference(&joined).cloned().collect(),
            &self.o.node_facts,
        )
        .into_iter()
        .take(wanted.saturating_sub(own(&chosen)));
        let may_replace = replace && p.settled && self.effect.is_none();
        let delete = if may_replace {
            let mut delete = paced(again, p.down, max_unavailable);
            // Those just taken again are down too, whatever else is.
            let down = (p.down + delete.len()).max(own(&chosen) - serving.min(own(&chosen)));
            delete.extend(paced(more.collect(), down, max_unavailable));
            delete
        } else {
            vec![]
        };
        for (name, _) in &delete {
            if let Some(q) = p.pods.iter().find(|q| q.name == *name) {
                chosen.insert(q.node.clone());
            }
        }
        let taken = own(&chosen);
        self.st.stages[si].components[ci].canary = Some(CanaryStatus {
            wanted: wanted as i32,
            total: p.nodes.len() as i32,
            nodes: chosen.iter().cloned().collect(),
            joined: joined.iter().cloned().collect(),
            original_update_strategy: original,
            ..Default::default()
        });
        // Held by nodes down outside the canary, as the DaemonSet's own rolling update would be.
        let mut held = if p.settled && taken < wanted && delete.is_empty() {
            held_by_others(&p, &chosen, max_unavailable)
        } else {
            String::new()
        };
        if replace && !held.is_empty() {
            held.push_str(HELD_NEXT);
        }
        if !delete.is_empty() {
            let why = format!("so that {wanted} of {} nodes run {}", p.nodes.len(), c.desired_image);
            self.replace_pods(&key, delete, crate::constants::reason::CANARY_WIDENED, why);
        }
        (taken < wanted || serving < taken).then(|| {
            format!(
                "{key}: {serving} of {wanted} canary nodes run {} and are Ready ({} nodes in all){held}",
                c.desired_image,
                p.nodes.len()
            )
        })
    }

    /// Of `chosen` (nodes of DaemonSet `key` on the new image), those that joined the cluster
    /// after this target's first change (its pod made by the DaemonSet from the new template):
    /// by the node's creation, when the watch of nodes has seen it. A node recorded as the
    /// canary's own is never one (it took it); nor is a node created before the change, whose
    /// pod was evicted and made again: its failures are the new image's. A node the watch has
    /// not seen yet, though it has listed others, is new; while it has listed none, the status
    /// says.
    fn joined(&self, key: &TargetKey, chosen: &BTreeSet<String>) -> BTreeSet<String> {
        let recorded = self.recorded_canaries(key);
        let (mut own, mut said) = (BTreeSet::new(), BTreeSet::new());
        for k in recorded {
            said.extend(k.joined.iter().cloned());
            own.extend(k.nodes.iter().filter(|n| !k.joined.contains(n)).cloned());
        }
        let since = self.recorded_components(key).filter_map(|c| c.applied_at).min();
        let facts = &self.o.node_facts;
        chosen
            .iter()
            .filter(|n| !own.contains(*n))
            .filter(|n| match (facts.get(*n).and_then(|f| f.created), since) {
                // A creation time is to the second: one in the second of the change is after it.
                (Some(created), Some(since)) => created >= since.trunc_subsecs(0),
                (None, _) if !facts.is_empty() => true,
                _ => said.contains(*n),
            })
            .cloned()
            .collect()
    }

    /// The nodes the canaries' copies of the built-in signals count now (their baseline's, before
    /// the first change): taken first among those that serve, so that a pod's readiness changing
    /// does not move the canary, and its baseline, to other nodes.
    fn baseline_nodes(&self) -> BTreeSet<String> {
        self.st
            .analysis
            .iter()
            .filter(|a| a.name.ends_with("@canary"))
            .flat_map(|a| a.nodes.iter().cloned())
            .collect()
    }

    /// A reverted DaemonSet still on OnDelete: replace the pods that run the new image, paced.
    /// What it waits for, while any does.
    pub(super) fn unwind_daemonset(
        &mut self,
        c: &ComponentStatus,
        key: &TargetKey,
        t: &TargetState,
        original: &str,
    ) -> Option<String> {
        let container = c.container.clone().unwrap_or_default();
        let Some(p) = placed(t) else {
            return Some(format!("{key}: waiting to see its pods (the pod watch is listing them)"));
        };
        let new: Vec<&PodPlace> =
            p.pods.iter().copied().filter(|q| q.runs(&container, &c.desired_image)).collect();
        if !new.is_empty() {
            let live: Vec<&PodPlace> = new.iter().copied().filter(|q| !q.deleting).collect();
            let max_unavailable = max_unavailable(Some(original), p.nodes.len());
            let may_replace = p.settled && self.effect.is_none();
            let delete = if may_replace { paced(live.clone(), p.down, max_unavailable) } else { vec![] };
            let held = if may_replace && !live.is_empty() && delete.is_empty() {
                let ours = new.iter().map(|q| q.node.clone()).collect();
                let held = held_by_others(&p, &ours, max_unavailable);
                if held.is_empty() { held } else { held + "; it goes on once they serve again" }
            } else {
                String::new()
            };
            if !delete.is_empty() {
                let why = format!("that run {}", c.desired_image);
                self.replace_pods(key, delete, crate::constants::reason::REVERTED, why);
            }
            return Some(format!("{key}: {} pods still run {}{held}", new.len(), c.desired_image));
        }
        None
    }
}

#[cfg(test)]
#[path = "daemonset_tests.rs"]
mod tests;
