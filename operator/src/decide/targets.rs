//! Decide step, pure: the stages as the status records them, and what the targets show now:
//! applied, reverted, deleted or changed by someone else.

use super::Decider;
use crate::constants::{OWNER_ANNOTATION, OWNER_UID_ANNOTATION, reason};
use crate::crd::*;
use crate::target::{TargetKey, TargetState};

impl Decider<'_> {
    pub(super) fn init_stages(&mut self) {
        if !self.st.stages.is_empty() {
            return;
        }
        let ns = &self.o.namespace;
        self.st.stages = self
            .o
            .spec
            .stages
            .iter()
            .map(|s| StageStatus {
                name: s.name.clone(),
                phase: StagePhase::Pending,
                started_at: None,
                rolled_out_at: None,
                soak_ends_at: None,
                passed_at: None,
                reverted_at: None,
                components: s
                    .components
                    .iter()
                    .map(|c| ComponentStatus {
                        kind: c.kind,
                        namespace: c.namespace_or(ns).to_string(),
                        name: c.name.clone(),
                        container: None,
                        known_good_image: None,
                        known_good_digest: None,
                        reverted_to: None,
                        managed_by: None,
                        desired_image: c.image.clone(),
                        phase: ComponentPhase::Pending,
                        applied_at: None,
                        reverted_at: None,
                        message: None,
                        also_containers: c
                            .also_containers
                            .iter()
                            .map(|a| ContainerChange {
                                container: a.container.clone(),
                                known_good_image: None,
                                desired_image: a.image.clone(),
                            })
                            .collect(),
                        canary: None,
                    })
                    .collect(),
            })
            .collect();
        self.set_phase(Phase::Pending, "checking the targets".into());
    }

    /// What the API server's rules cannot see: a target named twice (once with its namespace
    /// written out, once without), or stages that no longer match the status (the stages are
    /// immutable; this guards against an object written around the validation).
    pub(super) fn spec_problem(&self) -> Option<String> {
        let ns = &self.o.namespace;
        for s in &self.o.spec.stages {
            let mut seen = std::collections::BTreeSet::new();
            for c in &s.components {
                if !seen.insert(TargetKey::of(c, ns)) {
                    return Some(format!(
                        "{} is listed twice in stage {}; list each target once per stage",
                        TargetKey::of(c, ns),
                        s.name
                    ));
                }
            }
        }
        // A target in several stages widens a canary inside it (the API server checks this too,
        // but cannot tell a namespace written out from one left to default).
        for s in &self.o.spec.stages {
            for c in &s.components {
                let key = TargetKey::of(c, ns);
                let all: Vec<&Component> = self
                    .appearances(&key)
                    .iter()
                    .map(|&(si, ci)| &self.o.spec.stages[si].components[ci])
                    .collect();
                let (last, before) = all.split_last().expect("c is one of them");
                let same = all.iter().all(|d| {
                    d.image == c.image && d.container == c.container && d.also_containers == c.also_containers
                });
                if all.len() > 1
                    && (!same || last.canary.is_some() || before.iter().any(|d| d.canary.is_none()))
                {
                    return Some(format!(
                        "{key} is named in {} stages: a target may be named again only to widen a canary inside it, \
                         with the same image and containers each time, a canary in every stage but the last, and none in the last",
                        all.len()
                    ));
                }
                if all.len() == 1 && last.canary.is_some() {
                    return Some(format!(
                        "{key} has a canary in its only stage: name it again in a later stage, without canary, to change the rest"
                    ));
                }
            }
        }
        let same = self.o.spec.stages.len() == self.st.stages.len()
            && self.o.spec.stages.iter().zip(&self.st.stages).all(|(s, st)| {
                s.name == st.name
                    && s.components.len() == st.components.len()
                    && s.components.iter().zip(&st.components).all(|(c, cs)| {
                        c.kind == cs.kind
                            && c.name == cs.name
                            && c.namespace_or(&self.o.namespace) == cs.namespace
                    })
            });
        (!same).then(|| "spec.stages no longer matches the stages this upgrade started with; restore them, or create a new MaintenanceUpgrade".to_string())
    }

    /// Compare each claimed target with what this upgrade expects it to run; a target that
    /// runs something else was changed by someone else and is left alone from now on.
    pub(super) fn check_targets(&mut self) {
        for si in 0..self.st.stages.len() {
            for ci in 0..self.st.stages[si].components.len() {
                let c = self.st.stages[si].components[ci].clone();
                if !matches!(
                    c.phase,
                    ComponentPhase::Claimed | ComponentPhase::Applied | ComponentPhase::Reverted
                ) {
                    continue;
                }
                let (key, t) = self.target(&c);
                let container = c.container.clone().unwrap_or_default();
                // A claimed target that already runs the new image was changed before a status
                // write was lost: it counts as applied from now on, whatever the gates say now, so
                // that it is watched and, if need be, reverted (its Events went out with the change).
                let running = t.and_then(|t| t.image(&container));
                let known_good = c.known_good_image.as_deref().unwrap_or_default();
                // Its known-good image already is the new one (or a webhook's pin of it): no change.
                let unchanged = crate::image::runs(known_good, &c.desired_image);
                let ours = t.is_some_and(|t| self.owns(t));
                let first = self.first_appearance(&key, si);
                // So was a later stage that handed a canaried target to its own rolling update:
                // its mark on the target says so (the workload is rolling every pod).
                let handed_over = !first
                    && t.and_then(|t| t.handed_over.as_deref()) == Some(self.hand_over_mark(si).as_str());
                if c.phase == ComponentPhase::Claimed
                    && ours
                    && ((first
                        && running.is_some_and(|r| crate::image::runs(r, &c.desired_image))
                        && !unchanged)
                        || handed_over)
                {
                    let now = self.now();
                    // Watched from now (reverted by any rollback), but its stage is started only
                    // by `start_stage`, through its gates (pause, approval, window), whoever made
                    // the change: a change found made cannot tell who made it (a field manager's
                    // name is whatever its client says), and someone who may edit one target
                    // (a tenant's own workload that a trusted upgrade claimed) must not start a
                    // stage that changes the others. After a lost status write, the gates that
                    // let the operator start the stage usually still do, at once.
                    let stage = &mut self.st.stages[si];
                    stage.components[ci].phase = ComponentPhase::Applied;
                    stage.components[ci].applied_at = Some(now);
                    self.st.changed_at.get_or_insert(now);
                    continue;
                }
                // A changed target found back on its known-good image was reverted before a status
                // write was lost, or by hand: either way it is reverted, and the rest follows. Only
                // with every container it changes back: a driver set back by hand beside a sidecar
                // still new is someone else's change (`conflict`), whose canary settings stay.
                let others_back =
                    c.changes().iter().skip(1).all(|(n, k, _)| match (t.and_then(|t| t.image(n)), k) {
                        (Some(i), Some(k)) => crate::image::runs(i, k),
                        (i, k) => i == *k,
                    });
                if c.phase == ComponentPhase::Applied
                    && ours
                    && running.is_some_and(|r| c.is_known_good(r) && !crate::image::runs(r, &c.desired_image))
                    && !unchanged
                    && others_back
                {
                    let running = running.unwrap_or_default().to_string();
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Reverted;
                    cs.reverted_at = Some(self.o.now);
                    cs.message = Some(format!("{key} is back on its known-good image {running}"));
                    cs.reverted_to = Some(running);
                    continue;
                }
                let conflict = match t {
                    None if c.phase == ComponentPhase::Reverted => None,
                    // Not observed at all: in another namespace, after its namespace's trust was
                    // withdrawn, and no longer marked as this upgrade's (observe shows only those).
                    None if !self.o.targets.contains_key(&key) => Some(format!(
                        "{key} is in another namespace, which this upgrade may no longer change (namespace {} is \
                         not in trustedNamespaces), and no longer carries this upgrade's owner mark; the operator \
                         no longer touches it",
                        self.o.namespace
                    )),
                    None => {
                        let cs = &mut self.st.stages[si].components[ci];
                        cs.phase = ComponentPhase::Gone;
                        cs.message = Some(format!("{key} was deleted"));
                        self.note(
                            true,
                            reason::TARGET_DELETED,
                            "Observe",
                            format!("{key} was deleted during the upgrade"),
                        );
                        continue;
                    }
                    Some(t) => self.conflict(&key, &c, t),
                };
                if let Some(msg) = conflict {
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Conflict;
                    cs.message = Some(msg.clone());
                    self.note(true, reason::CHANGED_EXTERNALLY, "Observe", msg);
                }
            }
        }
    }
}

impl Decider<'_> {
    /// Why claimed component `c` of target `t` was changed by someone else, if it was: a
    /// container it changes that runs an image this upgrade did not set, or is gone, or the
    /// owner mark gone.
    fn conflict(&self, key: &TargetKey, c: &ComponentStatus, t: &TargetState) -> Option<String> {
        // Every claim records its container: a status without one was not written by the operator.
        if c.container.is_none() {
            return Some(format!(
                "status.stages records no container for {key}; the operator no longer touches it"
            ));
        }
        // A reverted container may run its known-good image pinned to the digest that ran.
        let pinned = c.pinned_known_good().unwrap_or_default();
        for (i, (container, known_good, desired)) in c.changes().into_iter().enumerate() {
            let known_good = known_good.unwrap_or_default();
            let expected: &[&str] = match c.phase {
                ComponentPhase::Claimed => &[known_good, desired],
                ComponentPhase::Applied => &[desired],
                _ if i == 0 && !pinned.is_empty() => &[known_good, pinned.as_str()],
                _ => &[known_good],
            };
            match t.image(container) {
                None => return Some(format!("container {container:?} was removed from {key}")),
                Some(img) if !expected.iter().any(|e| crate::image::runs(img, e)) => {
                    return Some(format!(
                        "{key} container {container} runs {img}, which this upgrade did not set (expected {}); the operator no longer touches it",
                        expected.join(" or ")
                    ));
                }
                Some(_) => {}
            }
        }
        (!self.owns(t) && c.phase != ComponentPhase::Reverted).then(|| format!(
            "{key} does not carry this upgrade's owner mark (annotations {OWNER_ANNOTATION} and {OWNER_UID_ANNOTATION}); the operator no longer touches it"
        ))
    }
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
