//! Decide step, pure: what the signals that follow the canary count (`status.canary`), and the
//! nodes the canary's copies of the built-in signals count (`crd::canary_signal`). Before the
//! first change, the nodes the DaemonSet canaries will take and the revision the canaried
//! workloads run, so that a baseline is of those; once they run, the nodes they took (as later
//! stages widen them) and the new revision. The built-in copies stop once every DaemonSet
//! canary has handed the rest to its workload, when the nodes not yet upgraded are no control
//! any more and the cluster-wide signal judges alone; a Prometheus query keeps its canary.

use crate::crd::*;
use crate::decide::Decider;
use crate::target::TargetKey;
use std::collections::BTreeSet;

impl Decider<'_> {
    /// The targets a stage runs a canary inside, of `kind` (any when None), in spec order.
    fn canaried_targets(&self, kind: Option<WorkloadKind>) -> Vec<TargetKey> {
        let mut keys: Vec<TargetKey> = vec![];
        for s in &self.o.spec.stages {
            for c in s.components.iter().filter(|c| c.canary.is_some() && kind.is_none_or(|k| c.kind == k)) {
                let key = TargetKey::of(c, &self.o.namespace);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Whether `key`'s last stage, which hands the rest to the workload, has begun (or its
    /// hand-over was found made, its stage still waiting for those before it).
    fn handed_over(&self, key: &TargetKey) -> bool {
        self.appearances(key).last().is_some_and(|&(last, ci)| {
            self.canary_of(last, ci).is_none()
                && self.st.stages.get(last).is_some_and(|s| {
                    s.phase != StagePhase::Pending
                        || s.components.get(ci).is_some_and(|c| c.applied_at.is_some())
                })
        })
    }

    /// Whether the first change to `key` is made.
    pub(super) fn changed(&self, key: &TargetKey) -> bool {
        self.recorded_components(key).any(|c| c.applied_at.is_some())
    }

    /// The DaemonSet canaries' nodes (taken, or to be taken; not those that joined): of them all, and of those that
    /// still run as a canary (have not handed over), which the built-in copies count: None
    /// once every one has.
    fn daemonset_canary_nodes(&self) -> (Vec<String>, Option<Vec<String>>) {
        let (mut all, mut running, mut any) = (BTreeSet::new(), BTreeSet::new(), false);
        for key in self.canaried_targets(Some(WorkloadKind::DaemonSet)) {
            let nodes: Vec<String> = if self.changed(&key) {
                // Only the nodes the canary took: one that joined brings other pods' failures.
                let joined: BTreeSet<&String> =
                    self.recorded_canaries(&key).flat_map(|k| &k.joined).collect();
                let recorded = self.recorded_canaries(&key).flat_map(|k| &k.nodes);
                recorded.filter(|n| !joined.contains(n)).cloned().collect()
            } else if let Some(&(si, ci)) = self.appearances(&key).first() {
                self.planned_nodes(si, ci).into_iter().flatten().collect()
            } else {
                vec![]
            };
            if !self.handed_over(&key) {
                any = true;
                running.extend(nodes.iter().cloned());
            }
            all.extend(nodes);
        }
        (all.into_iter().collect(), any.then(|| running.into_iter().collect()))
    }

    /// The first stage a DaemonSet canary runs in, while it has not passed, and of its DaemonSet
    /// canaries there the largest node pool: the nodes it may take (all its DaemonSet's, or
    /// those its nodeSelector selects) and the nodes its DaemonSet runs on (0, 0 until read).
    /// The stage whose soak a canary's copy of a built-in signal is judged over on its first
    /// nodes, before a later stage widens them.
    pub(in crate::decide) fn first_daemonset_canary(&self) -> Option<(usize, (usize, usize))> {
        let is_daemonset = |c: &Component| c.kind == WorkloadKind::DaemonSet;
        let stages = &self.o.spec.stages;
        let first =
            stages.iter().position(|s| s.components.iter().any(|c| is_daemonset(c) && c.canary.is_some()))?;
        let running = matches!(
            self.st.stages.get(first).map(|s| s.phase),
            Some(StagePhase::Pending | StagePhase::RollingOut | StagePhase::Soaking)
        );
        // A DaemonSet without a canary in that stage has no pool (`node_pool`).
        let pool = (0..stages[first].components.len())
            .filter(|&ci| is_daemonset(&stages[first].components[ci]))
            .filter_map(|ci| self.node_pool(first, ci))
            .max()
            .unwrap_or((0, 0));
        running.then_some((first, pool))
    }

    /// The revision hashes of the canaried workloads' pods: the new image's once changed, the
    /// one they run before.
    fn canary_revisions(&self) -> Vec<String> {
        let mut revisions = BTreeSet::new();
        for key in self.canaried_targets(None) {
            let Some(Some(t)) = self.o.targets.get(&key) else { continue };
            let Some(&(si, ci)) = self.appearances(&key).first() else { continue };
            let Some(c) = self.st.stages.get(si).and_then(|s| s.components.get(ci)) else { continue };
            let container = c.container.clone().unwrap_or_default();
            let changed = self.changed(&key);
            let pods = t.pods.iter().flatten().filter(|p| !p.deleting && !p.revision.is_empty());
            revisions.extend(
                pods.filter(|p| p.runs(&container, &c.desired_image) == changed).map(|p| p.revision.clone()),
            );
        }
        revisions.into_iter().take(MAX_REVISIONS).collect()
    }

    /// Keep the built-in signals' canary copies, and `status.canary` for the placeholders the
    /// spec's queries name (only those: a canary of thousands of nodes is a long list), on what
    /// the canaries are now.
    pub(in crate::decide) fn follow_canary(&mut self) {
        if self.canaried_targets(None).is_empty() {
            self.st.canary = None;
            return;
        }
        let (all, running) = self.daemonset_canary_nodes();
        let named = |placeholder: &str| self.o.spec.names_placeholder(placeholder);
        let canary = CanaryScope {
            nodes: if named(CANARY_NODES) { all } else { vec![] },
            revisions: if named(CANARY_REVISION) { self.canary_revisions() } else { vec![] },
        };
        self.st.canary = (canary != CanaryScope::default()).then_some(canary);
        self.follow_canary_signals(running);
    }

    /// Keep the status entry of each built-in signal's canary copy naming the canary's nodes.
    /// Nodes that change before the first change start its baseline again (it was of other
    /// nodes); after it, a canary widened keeps its baseline (a rate, judged per pod).
    fn follow_canary_signals(&mut self, nodes: Option<Vec<String>>) {
        let changed = self.st.changed_at.is_some();
        let parents: Vec<String> = self
            .o
            .spec
            .effective_signals()
            .into_iter()
            .filter(|s| s.kubernetes.is_some())
            .map(|s| s.name)
            .collect();
        for parent in parents {
            let name = canary_signal_name(&parent);
            let entry = self.st.analysis.iter().position(|a| a.name == name);
            // After the signal it copies, which the baseline's start lists first.
            let listed = self.st.analysis.iter().any(|a| a.name == parent);
            match (&nodes, entry) {
                (Some(n), None) if !n.is_empty() && n.len() <= MAX_COPY_NODES && listed => {
                    self.st.analysis.push(SignalStatus {
                        name,
                        nodes: n.clone(),
                        reason: format!("counting the pods on the canary's nodes {}", n.join(", ")),
                        ..Default::default()
                    });
                }
                (Some(n), Some(i))
                    if self.st.analysis[i].nodes != *n && !n.is_empty() && n.len() <= MAX_COPY_NODES =>
                {
                    let a = &mut self.st.analysis[i];
                    if changed {
                        a.nodes = n.clone();
                    } else {
                        *a = SignalStatus {
                            name,
                            nodes: n.clone(),
                            reason: format!(
                                "the canary's nodes are now {}: measuring their baseline again",
                                n.join(", ")
                            ),
                            ..Default::default()
                        };
                    }
                }
                (Some(n), Some(i)) if n.len() > MAX_COPY_NODES && !self.st.analysis[i].nodes.is_empty() => {
                    let a = &mut self.st.analysis[i];
                    a.nodes.clear();
                    a.baseline_limit = None;
                    a.verdict = Verdict::Inconclusive;
                    a.reason = format!(
                        "the canary has grown to {} nodes, more than the {MAX_COPY_NODES} a copy follows: a share \
                         that signal {parent} sees across the whole cluster, which judges it from here",
                        n.len()
                    );
                }
                (None, Some(i)) if !self.st.analysis[i].nodes.is_empty() => {
                    let a = &mut self.st.analysis[i];
                    a.nodes.clear();
                    // Read no more: what was said of its baseline and traffic is done with.
                    a.baseline_limit = None;
                    a.verdict = Verdict::Inconclusive;
                    a.reason = format!(
                        "the canary has handed over to the whole workload: every node runs the new image, so the \
                         rest are no control; signal {parent} judges the whole cluster from here"
                    );
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "signals_tests.rs"]
mod tests;
