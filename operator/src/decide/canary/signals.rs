//! Decide step, pure: the nodes the canary's copies of the built-in signals count
//! (`crd::canary_signal`). Before the first change, the nodes the DaemonSet canaries will take,
//! so that their baseline is of those nodes; once they run, the nodes they took, as later
//! stages widen them; none once every DaemonSet canary has handed the rest to its workload,
//! when the nodes not yet upgraded are no control any more and the cluster-wide signal judges
//! alone.

use crate::crd::*;
use crate::decide::Decider;
use crate::target::TargetKey;
use std::collections::BTreeSet;

impl Decider<'_> {
    /// The DaemonSet canaries' nodes now, as the canary's signals count them; None when no
    /// DaemonSet canary runs (none in the spec, or every one handed over).
    fn canary_signal_nodes(&self) -> Option<Vec<String>> {
        let ns = &self.o.namespace;
        let mut keys: Vec<TargetKey> = vec![];
        for s in &self.o.spec.stages {
            for c in s.components.iter().filter(|c| c.canary.is_some() && c.kind == WorkloadKind::DaemonSet) {
                let key = TargetKey::of(c, ns);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let mut nodes = BTreeSet::new();
        let mut running = false;
        for key in &keys {
            let appearances = self.appearances(key);
            let &(last, _) = appearances.last()?;
            let handed_over = self.canary_of(last, appearances.last()?.1).is_none()
                && self.st.stages.get(last).is_some_and(|s| s.phase != StagePhase::Pending);
            if handed_over {
                continue;
            }
            running = true;
            if self.recorded_components(key).any(|c| c.applied_at.is_some()) {
                nodes.extend(self.recorded_canaries(key).flat_map(|k| k.nodes.iter().cloned()));
            } else if let Some(&(si, ci)) = appearances.first() {
                nodes.extend(self.planned_nodes(si, ci).into_iter().flatten());
            }
        }
        running.then(|| nodes.into_iter().collect())
    }

    /// Keep the status entry of each built-in signal's canary copy naming the canary's nodes.
    /// Nodes that change before the first change start its baseline again (it was of other
    /// nodes); after it, a canary widened keeps its baseline (a rate, judged per pod).
    pub(in crate::decide) fn follow_canary_signals(&mut self) {
        let nodes = self.canary_signal_nodes();
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
                (Some(n), None) if !n.is_empty() && listed => {
                    self.st.analysis.push(SignalStatus {
                        name,
                        nodes: n.clone(),
                        reason: format!("counting the pods on the canary's nodes {}", n.join(", ")),
                        ..Default::default()
                    });
                }
                (Some(n), Some(i)) if self.st.analysis[i].nodes != *n && !n.is_empty() => {
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
                (None, Some(i)) if !self.st.analysis[i].nodes.is_empty() => {
                    let a = &mut self.st.analysis[i];
                    a.nodes.clear();
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
