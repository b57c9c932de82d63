//! Decide step, pure: a canary inside one workload. Each kind has its own mechanism, in its
//! own file: `daemonset` (its first nodes, by OnDelete), `partition` (a StatefulSet's top
//! ordinals) and `surge` (a Deployment's new replicas beside its old ones); `signals` keeps the
//! built-in signals' canary copies on a DaemonSet canary's nodes; `settings` the rollout
//! settings once the stages are done with them (left, kept, drifted, handed over, restored
//! exactly). What they share is here: where a target appears in the stages, what is refused
//! before anything changes, what was recorded, one step of a canary and the end of a revert.
//!
//! Everything is read back from the target (its pods, its settings, the record of the original
//! on it), so a restart resumes where it stopped.

mod daemonset;
mod partition;
mod settings;
mod signals;
mod surge;

pub(super) use daemonset::{on_delete, replaced_at_once};
pub(super) use surge::surge_of;

use super::{Decider, Effect};
use crate::crd::*;
use crate::target::{ON_DELETE, TargetKey, TargetState};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;
use partition::{partition_of, with_partition};
use surge::surge_settings;

/// The same strategy, however its JSON was written.
pub(super) fn same_strategy(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
    parse(a) == parse(b)
}

/// How long a restore of a canary's rollout settings the API server keeps refusing is tried
/// before it is given up (the settings stay, with their record, and the end says so).
pub(super) const REFUSED_RESTORE_LIMIT: chrono::Duration = chrono::Duration::minutes(10);
/// How recent its last refusal must be (retries come at most a minute apart).
const REFUSED_LATELY: chrono::Duration = chrono::Duration::minutes(3);

/// Whether `strategy` is what a canary sets: OnDelete (a DaemonSet), a partition (a
/// StatefulSet), a surge whose pods never count as available (a Deployment).
fn left_by_canary(strategy: &str) -> bool {
    on_delete(Some(strategy)) || partition_of(Some(strategy)) > 0 || surge_of(Some(strategy)).is_some()
}

/// Whether `s`, rollout settings of a `kind`, still hold anything of a canary's: what a revert
/// or a release restores. For a Deployment also the canary's minReadySeconds alone
/// (`surge::holds_ready`), which a chart that puts back its strategy leaves.
pub(super) fn left_by_canary_of(kind: WorkloadKind, s: &str) -> bool {
    left_by_canary(s) || (kind == WorkloadKind::Deployment && surge::holds_ready(s))
}

/// Whether recorded rollout settings read as a `kind`'s own, as the API server holds them: a
/// DaemonSet's or StatefulSet's updateStrategy, a Deployment's strategy with its
/// minReadySeconds and progressDeadlineSeconds, each with a type it has (and the rollingUpdate
/// the API server fills in for RollingUpdate), and not a canary's. Anything else would be
/// written as no change or as the API server's defaults: not what was recorded.
fn readable(kind: WorkloadKind, s: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else { return false };
    let typed = |strategy: &serde_json::Value| match strategy["type"].as_str() {
        Some("RollingUpdate") => kind == WorkloadKind::StatefulSet || strategy["rollingUpdate"].is_object(),
        Some("OnDelete") => kind != WorkloadKind::Deployment,
        Some("Recreate") => kind == WorkloadKind::Deployment,
        _ => false,
    };
    let own = match kind {
        // apps/v1 always fills in progressDeadlineSeconds: one missing would leave the canary's.
        WorkloadKind::Deployment => {
            typed(&v["strategy"]) && v["minReadySeconds"].is_i64() && v["progressDeadlineSeconds"].is_i64()
        }
        _ => typed(&v),
    };
    own && !left_by_canary_of(kind, s)
}

/// The rollout settings recorded on `t` (a `kind`), when they read as its own: anyone who may
/// edit the workload may garble the annotation, and the status keeps the same record.
pub(super) fn recorded_on(kind: WorkloadKind, t: &TargetState) -> Option<String> {
    t.original_strategy.clone().filter(|s| readable(kind, s))
}

/// The strategy a canary of `t` (a `kind`) restores: its own, unless a canary left it (an
/// upgrade deleted mid-canary, or this one), then the one recorded on it.
pub(super) fn strategy_to_restore(kind: WorkloadKind, t: &TargetState) -> Option<String> {
    match (&t.update_strategy, recorded_on(kind, t)) {
        (Some(current), Some(recorded)) if left_by_canary_of(kind, current) => Some(recorded),
        (Some(current), _) => Some(current.clone()),
        (None, recorded) => recorded,
    }
}

/// What gives `t` (a `key`) its recorded rollout settings back, if it runs a canary's and a
/// readable record on it says otherwise.
fn restore_settings(key: &TargetKey, t: &TargetState) -> Option<Effect> {
    left_by_canary_of(key.kind, t.update_strategy.as_deref()?).then_some(())?;
    let original = recorded_on(key.kind, t)?;
    (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then_some(())?;
    Some(Effect::SetStrategy {
        target: key.clone(),
        resource_version: t.resource_version.clone(),
        strategy: original,
        handed_over: None,
    })
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
    /// DaemonSet whose pods are not seen yet is judged once they are), and for a target a later
    /// stage names first, when that stage is next: its owner may have paused it or given it
    /// Recreate meanwhile, which its owner can undo. Once something has changed,
    /// a canary larger than the nodes or replicas left takes them all instead: the stages cannot
    /// be edited, so a block there could never be lifted.
    pub(super) fn canaries_problem(&self) -> Option<String> {
        let changed = self.st.changed_at.is_some();
        self.st.stages.iter().enumerate().find_map(|(si, s)| {
            s.components.iter().enumerate().find_map(|(ci, c)| {
                let canary = self.canary_of(si, ci)?;
                let (key, t) = self.target(c);
                // Once something changed, a target not changed yet is judged when its own stage
                // is next (every earlier one rolled out: soaking or passed), so that it holds the
                // promotion to it: a block while an earlier stage rolls out would hold that
                // stage past its deadline, and revert it.
                let next = self.st.stages[..si]
                    .iter()
                    .all(|s| matches!(s.phase, StagePhase::Soaking | StagePhase::Passed))
                    && self.st.stages[si].phase == StagePhase::Pending;
                if changed && (self.recorded_components(&key).any(|o| o.applied_at.is_some()) || !next) {
                    return None;
                }
                self.canary_problem(&s.name, &key, t?, canary, !changed)
            })
        })
    }

    /// Why `canary` cannot run inside `key`; by its size too with `sizes` (nothing changed yet).
    fn canary_problem(
        &self,
        stage: &str,
        key: &TargetKey,
        t: &TargetState,
        canary: &Canary,
        sizes: bool,
    ) -> Option<String> {
        let strategy = strategy_to_restore(key.kind, t);
        // A DaemonSet's or StatefulSet's are refused below as OnDelete or a partition of its own.
        let deployments = |s: &&str| key.kind == WorkloadKind::Deployment && left_by_canary_of(key.kind, s);
        if let Some(current) = strategy.as_deref().filter(deployments) {
            return Some(format!(
                "{key} still has a canary's rollout settings ({current}), with no readable record of its own on it: \
                 an earlier upgrade left them; put back its own strategy, minReadySeconds and \
                 progressDeadlineSeconds, {}",
                way_out(!sizes)
            ));
        }
        let Some(strategy) = strategy.filter(|s| serde_json::from_str::<DaemonSetUpdateStrategy>(s).is_ok())
        else {
            return Some(format!("{key} has no readable updateStrategy; the canary could not restore it"));
        };
        if on_delete(Some(&strategy)) {
            return Some(format!(
                "{key} updates OnDelete already: the operator cannot hand it the rest of a canary; \
                 give it a RollingUpdate strategy, {}",
                way_out(!sizes)
            ));
        }
        if let Some(key_text) = canary.bad_selector_key() {
            return Some(format!(
                "canary.nodeSelector of {key} in stage {stage} has {key_text:?}, which is not a label key \
                 (such as topology.kubernetes.io/zone)"
            ));
        }
        if key.kind == WorkloadKind::DaemonSet {
            return self.daemonset_problem(stage, key, t, canary).filter(|_| sizes);
        }
        if key.kind == WorkloadKind::Deployment
            && let Some(why) = surge::surge_problem(key, t, &strategy, !sizes)
        {
            return Some(why);
        }
        let replicas = usize::try_from(t.desired_pods).unwrap_or(0);
        if replicas == 0 {
            return Some(format!(
                "{key} has 0 replicas: a canary inside it has none to take; scale it up, {}",
                way_out(!sizes)
            ));
        }
        if sizes && canary.portion().of(replicas).is_none_or(|n| n > replicas) {
            return Some(format!(
                "canary.replicas of {key} in stage {stage} is {} but it has {replicas} replicas; ask for at most \
                 {replicas}, or a percentage",
                canary.portion()
            ));
        }
        if key.kind == WorkloadKind::StatefulSet {
            return partition::partition_problem(stage, key, canary, replicas, Some(&strategy), sizes);
        }
        None
    }

    /// The strategy recorded for a canaried target: on the target, or (if someone removed or
    /// garbled that annotation) in the status, where the operator copied it.
    /// Never the status's for a target in a namespace this upgrade may no longer change.
    pub(super) fn recorded_strategy(&self, key: &TargetKey, t: &TargetState) -> Option<String> {
        recorded_on(key.kind, t).or_else(|| {
            if self.abroad_untrusted(key) {
                return None;
            }
            self.recorded_canaries(key)
                .find_map(|k| k.original_update_strategy.clone().filter(|s| readable(key.kind, s)))
        })
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
    pub(in crate::decide) fn replace_pods(
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
    /// of the next nodes (in taking order), paced. None once enough nodes run the new image and
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

    /// Follow the canaries that passed stages before `si` left running, each target's latest
    /// (not one stage `si` has begun widening, nor one handed to its workload): pods made again
    /// meanwhile (a node added, an eviction) join them from the new template, counted as the
    /// canary's, judged by its signals and replaced by a revert.
    pub(in crate::decide) fn follow_earlier(&mut self, si: usize) {
        let mut seen: Vec<TargetKey> = vec![];
        if self.st.stages.get(si).is_some_and(|s| s.phase != StagePhase::Pending) {
            seen.extend(self.st.stages[si].components.iter().map(|c| self.target(c).0));
        }
        for i in (0..si).rev() {
            for ci in 0..self.st.stages[i].components.len() {
                let (key, t) = self.target(&self.st.stages[i].components[ci]);
                if seen.contains(&key) {
                    continue;
                }
                let canaried = self.canary_of(i, ci).is_some();
                let running = t.is_some_and(|t| !self.handed_over_to(&key, t));
                seen.push(key);
                if canaried && running {
                    self.canary_step(i, ci, false);
                }
            }
        }
    }

    /// What the canary of component `ci` of stage `si` waits for (None: done), replacing pods or
    /// widening it only with `replace`.
    pub(in crate::decide) fn canary_step(&mut self, si: usize, ci: usize, replace: bool) -> Option<String> {
        let canary = self.canary_of(si, ci)?.clone();
        let c = self.st.stages[si].components[ci].clone();
        let (key, t) = self.target(&c);
        let Some(t) = t else { return Some(format!("{key}: missing")) };
        // Only a change this upgrade made, on a target that carries its mark: the status is
        // input, and one that says so of any other could have pods of it deleted.
        if c.phase != ComponentPhase::Applied || !self.owns(t) {
            return Some(format!("{key}: waiting for this upgrade's claim and change of it"));
        }
        let step = Step { si, ci, c, key, t, canary, replace };
        match step.key.kind {
            WorkloadKind::DaemonSet => self.daemonset_step(step),
            WorkloadKind::StatefulSet => self.partition_step(step),
            WorkloadKind::Deployment => self.surge_step(step),
        }
    }

    /// Undo a canary inside a reverted target, once its template is back on the known-good
    /// image (and a StatefulSet's stuck pods are gone, `Decider::unstick`): replace the pods that
    /// still run the new one (paced), then restore the recorded strategy. Past `give_up` (pods
    /// that never go away), the strategy is restored anyway: with the template reverted, the
    /// DaemonSet's own rolling update replaces only those pods. What it waits for, while there
    /// is something left to do.
    pub(super) fn unwind(&mut self, c: &ComponentStatus, give_up: DateTime<Utc>) -> Option<String> {
        let (key, t) = self.target(c);
        let t = t.filter(|t| self.owns(t))?;
        let original = self.recorded_strategy(&key, t)?;
        // A template still holding an image this upgrade set keeps the canary's settings: its
        // own rollout would take that image everywhere, unjudged (`settings_kept` says so).
        if !self.new_images_left(&key, t).is_empty() {
            return None;
        }
        let container = c.container.clone().unwrap_or_default();
        let late = self.now() >= give_up;
        if on_delete(t.update_strategy.as_deref())
            && !late
            && let Some(wait) = self.unwind_daemonset(c, &key, t, &original)
        {
            return Some(wait);
        }
        // Only while the settings are a canary's: ones handed over before the revert, or
        // written once and read back with the API server's defaults, are the workload's own.
        let canarys = t.update_strategy.as_deref().is_some_and(|s| left_by_canary_of(key.kind, s));
        let Some(restore) = self.hand_over(&key, t).filter(|_| canarys) else {
            // A StatefulSet's or Deployment's controller replaces the canary's pods itself once
            // its settings are back; reverted only when none runs the new image (its status
            // reads complete as soon as the template is back, the old revision being reused).
            let new = t
                .pods
                .iter()
                .flatten()
                .filter(|p| !p.deleting && p.runs(&container, &c.desired_image))
                .count();
            if key.kind != WorkloadKind::DaemonSet && new > 0 && !late {
                return Some(format!("{key}: {new} pods still run {}", c.desired_image));
            }
            return None;
        };
        // Refused for long (an admission webhook, an invalid record): the revert goes on
        // without it, and the end says so (`settings_kept`).
        if self.restore_refused(&key) {
            return None;
        }
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
                    Some(k) => {
                        let among = k.selector_text().map(|s| format!(" with {s}")).unwrap_or_default();
                        format!("widening the canary of {key} to {} of its nodes{among}", k.portion())
                    }
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
        let original = strategy_to_restore(key.kind, t)?;
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
/// The way out of a canary a target cannot have: before anything changed, the upgrade made again
/// without it; once something has (its stages cannot be edited), a revert.
pub(super) fn way_out(changed: bool) -> &'static str {
    if changed {
        "or set spec.rollback.requested to revert what this upgrade changed"
    } else {
        "or upgrade it whole (no canary)"
    }
}
