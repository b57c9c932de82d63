//! Decide step, pure: a canary inside one workload. Each kind has its own mechanism, in its
//! own file: `daemonset` (its first nodes, by OnDelete), `partition` (a StatefulSet's top
//! ordinals) and `surge` (a Deployment's new replicas beside its old ones); `signals` keeps the
//! built-in signals' canary copies on a DaemonSet canary's nodes. What they share is
//! here: where a target appears in the stages, what is refused before anything changes, what
//! was recorded, one step of a canary, the end of a revert, and the hand-over of the rest to
//! the workload's own rollout settings, restored exactly.
//!
//! Everything is read back from the target (its pods, its settings, the record of the original
//! on it), so a restart resumes where it stopped.

mod daemonset;
mod partition;
mod signals;
mod surge;

pub(super) use surge::surge_of;

use super::{Decider, Effect};
use crate::crd::*;
use crate::target::{ON_DELETE, TargetKey, TargetState};
use chrono::{DateTime, Utc};
use daemonset::on_delete;
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
    own && !left_by_canary(s)
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
        (Some(current), Some(recorded)) if left_by_canary(current) => Some(recorded),
        (Some(current), _) => Some(current.clone()),
        (None, recorded) => recorded,
    }
}

/// What gives `t` (a `key`) its recorded rollout settings back, if it runs a canary's and a
/// readable record on it says otherwise.
fn restore_settings(key: &TargetKey, t: &TargetState) -> Option<Effect> {
    left_by_canary(t.update_strategy.as_deref()?).then_some(())?;
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
    /// DaemonSet whose pods are not seen yet is judged once they are). Once something has
    /// changed, a canary larger than the nodes left takes them all instead: the stages cannot
    /// be edited, so a block there could never be lifted.
    pub(super) fn canaries_problem(&self) -> Option<String> {
        if self.st.changed_at.is_some() {
            return None;
        }
        self.st.stages.iter().enumerate().find_map(|(si, s)| {
            s.components.iter().enumerate().find_map(|(ci, c)| {
                let canary = self.canary_of(si, ci)?;
                let (key, t) = self.target(c);
                self.canary_problem(&s.name, &key, t?, canary)
            })
        })
    }

    fn canary_problem(
        &self,
        stage: &str,
        key: &TargetKey,
        t: &TargetState,
        canary: &Canary,
    ) -> Option<String> {
        let strategy = strategy_to_restore(key.kind, t);
        // A DaemonSet's or StatefulSet's are refused below as OnDelete or a partition of its own.
        if let Some(current) = strategy.as_deref().filter(|s| surge_of(Some(s)).is_some()) {
            return Some(format!(
                "{key} still has a canary's rollout settings ({current}), with no readable record of its own on it: \
                 an earlier upgrade left them; put back its own strategy, minReadySeconds and \
                 progressDeadlineSeconds, or upgrade it whole (no canary)"
            ));
        }
        let Some(strategy) = strategy.filter(|s| serde_json::from_str::<DaemonSetUpdateStrategy>(s).is_ok())
        else {
            return Some(format!("{key} has no readable updateStrategy; the canary could not restore it"));
        };
        if on_delete(Some(&strategy)) {
            return Some(format!(
                "{key} updates OnDelete already: the operator cannot hand it the rest of a canary; \
                 upgrade it whole (no canary), or give it a RollingUpdate strategy"
            ));
        }
        if let Some(key_text) = canary.bad_selector_key() {
            return Some(format!(
                "canary.nodeSelector of {key} in stage {stage} has {key_text:?}, which is not a label key \
                 (such as topology.kubernetes.io/zone)"
            ));
        }
        if key.kind == WorkloadKind::DaemonSet {
            return self.daemonset_problem(stage, key, t, canary);
        }
        if key.kind == WorkloadKind::Deployment
            && let Some(why) = surge::surge_problem(key, t, &strategy)
        {
            return Some(why);
        }
        let replicas = usize::try_from(t.desired_pods).unwrap_or(0);
        if replicas == 0 {
            return Some(format!(
                "{key} has 0 replicas: a canary inside it has none to take; scale it up, or upgrade it whole (no canary)"
            ));
        }
        if canary.portion().of(replicas).is_none_or(|n| n > replicas) {
            return Some(format!(
                "canary.replicas of {key} in stage {stage} is {} but it has {replicas} replicas; ask for at most \
                 {replicas}, or a percentage",
                canary.portion()
            ));
        }
        if key.kind == WorkloadKind::StatefulSet {
            return partition::partition_problem(stage, key, canary, replicas, Some(&strategy));
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
        let canarys = t.update_strategy.as_deref().is_some_and(left_by_canary);
        let Some(restore) = self.hand_over(&key, t).filter(|_| canarys) else {
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

    /// A target this upgrade still owns whose rollout settings are still a canary's, with what
    /// restores them: one whose image someone else changed mid-canary (the operator lets go of
    /// its image, not of the settings it set), before it is released, so that no workload is
    /// left on OnDelete, a partition or a surge that never ends.
    /// Only a target this upgrade canaried, and only to the record on the target itself (the
    /// status, which a tenant may forge, does not choose what is written).
    pub(super) fn settings_left(&self) -> Option<(TargetKey, Effect)> {
        self.o.targets.iter().find_map(|(key, t)| {
            let t =
                t.as_ref().filter(|t| self.owns(t) && self.canaried(key) && !self.restore_refused(key))?;
            let safe = if self.changed(key) {
                // Still on an image this upgrade set (one it has no known-good record of, or a
                // sidecar beside someone else's hotfix): the workload's own rollout would take it
                // to every node or replica, unjudged. The settings stay, and the end says so.
                self.new_images_left(key, t).is_empty()
            } else {
                t.canary_settings_ours && self.restoring_rolls_only_back(key, t) == Some(true)
            };
            safe.then_some(())?;
            Some((key.clone(), restore_settings(key, t)?))
        })
    }

    /// For the release of an ended upgrade, whose status is not held to the spec (`trust`): a
    /// canary's settings on a target it owns that no change in its status may account for (its
    /// status writes lost after a change and its revert: a restart, then a 409), with what
    /// restores them, or None while its pods are not listed. Judged on the target alone: this
    /// operator's field manager set them (not someone by hand), and restoring them rolls no pod
    /// onto an image no one judged (`restoring_rolls_only_back`). Never in a namespace this
    /// upgrade may no longer change.
    /// A restore that can be made comes before a wait, so that one target's unlisted pods
    /// never hold back another's.
    pub(super) fn settings_left_unrecorded(&self) -> Option<(TargetKey, Option<Effect>)> {
        let mut waiting = None;
        for (key, t) in &self.o.targets {
            let Some(t) = t.as_ref().filter(|t| self.owns(t) && self.canaried(key)) else { continue };
            if !t.canary_settings_ours || self.abroad_untrusted(key) || self.restore_refused(key) {
                continue;
            }
            let Some(restore) = restore_settings(key, t) else { continue };
            match self.restoring_rolls_only_back(key, t) {
                Some(true) => return Some((key.clone(), Some(restore))),
                None => waiting = waiting.or_else(|| Some((key.clone(), None))),
                Some(false) => {}
            }
        }
        waiting
    }

    /// Whether restoring `key`'s rollout settings has been refused for `REFUSED_RESTORE_LIMIT`:
    /// the restore is then given up, so that a deleted upgrade is not held for ever, and said.
    pub(super) fn restore_refused(&self, key: &TargetKey) -> bool {
        // Refused lately too: not a refusal long ago, then failures of another kind.
        self.o.strategy_refused.get(key).is_some_and(|r| {
            self.now() - r.since >= REFUSED_RESTORE_LIMIT && self.now() - r.last <= REFUSED_LATELY
        })
    }

    /// Says that `key`'s rollout settings, which its canary left, are being restored from the
    /// record on it (by a rollback, or by the release of an ended upgrade).
    pub(super) fn note_settings_restored(&mut self, key: &TargetKey) {
        self.note(
            false,
            crate::constants::reason::CANARY_SETTINGS_RESTORED,
            "RestoreStrategy",
            format!("{key}: its recorded rollout settings restored, which its canary left"),
        );
    }

    /// Why a release lets go of `key` on a canary's settings no change in the status accounts
    /// for (`settings_kept` says those of a change), in words: what stays, why, and what next.
    pub(super) fn settings_let_go(&self, key: &TargetKey) -> Option<String> {
        let t = self.o.targets.get(key)?.as_ref().filter(|_| !self.changed(key))?;
        let (current, original) = (t.update_strategy.as_deref()?, recorded_on(key.kind, t)?);
        let why = if self.restore_refused(key) {
            "the API server refused restoring them for 10 minutes (its ActionFailed Events say why)"
        } else if self.abroad_untrusted(key) {
            "this upgrade may no longer change its namespace"
        } else if !t.canary_settings_ours {
            "someone other than the operator set them last"
        } else {
            match self.restoring_rolls_only_back(key, t) {
                Some(true) => return None,
                Some(false) => {
                    "restoring its own would roll pods that run an older image onto a template no one judged"
                }
                None => {
                    "its pods did not show in time whether restoring its own rolls any pod forward (none listed)"
                }
            }
        };
        let whose =
            if t.canary_settings_ours { "the canary's rollout settings" } else { "its rollout settings" };
        Some(format!(
            "{key} keeps {whose} ({current}), since {why}; the record of its own ({original}) stays on it, \
             which the next upgrade of it puts back: set its images and rollout settings as you want them, \
             or leave that to the next upgrade"
        ))
    }

    /// Whether `t`'s own rollout settings would roll no pod onto another image but back from the
    /// new images this upgrade's spec sets: its template holds none of them (but one it already
    /// ran, which its known-good record on the target names), and each of its pods runs, in
    /// each container the template has, the template's image or that new one (a sidecar injected
    /// at admission, in no template, is not judged). Not so beside pods of an older image, which
    /// they would take to a template an earlier upgrade left unjudged. None while its pods are
    /// not listed (none listed of a workload that wants some counts as not listed).
    fn restoring_rolls_only_back(&self, key: &TargetKey, t: &TargetState) -> Option<bool> {
        let known_good = t.recorded_known_good().unwrap_or_default();
        let mut new: Vec<(String, &str)> = vec![];
        for &(si, ci) in &self.appearances(key) {
            let c = &self.o.spec.stages[si].components[ci];
            if let Ok(own) = t.resolve_container(c.container.as_deref()) {
                new.push((own, c.image.as_str()));
            }
            new.extend(c.also_containers.iter().map(|a| (a.container.clone(), a.image.as_str())));
        }
        let is_new = |n: &str, i: &str| new.iter().any(|(c, d)| c == n && *d == i);
        if t.containers.iter().any(|(n, i)| is_new(n, i) && !known_good.contains(&(n, i))) {
            return Some(false);
        }
        let pods = t.pods.as_ref().filter(|p| !p.is_empty() || t.desired_pods == 0)?;
        let back = |n: &str, i: &str| t.image(n).is_none_or(|own| own == i || is_new(n, i));
        Some(pods.iter().filter(|p| !p.deleting).all(|p| p.images.iter().all(|(n, i)| back(n, i))))
    }

    /// The images this upgrade set that `t`'s template still holds, as `container=image`.
    pub(super) fn new_images_left(&self, key: &TargetKey, t: &TargetState) -> Vec<String> {
        let mut left: Vec<String> = self
            .recorded_components(key)
            .filter(|c| c.applied_at.is_some())
            .flat_map(|c| c.changes())
            // One listed at the image it already ran (a sidecar a chart release kept) was not set.
            .filter(|(n, k, d)| *k != Some(*d) && t.image(n) == Some(*d))
            .map(|(n, _, d)| format!("{n}={d}"))
            .collect();
        left.dedup();
        left
    }

    /// Whether canaried target `key` still runs a canary's rollout settings, with a readable
    /// record of its own: what a release leaves on it, for the next upgrade to restore.
    pub(in crate::decide) fn left_on_canary(&self, key: &TargetKey) -> bool {
        let Some(Some(t)) = self.o.targets.get(key) else { return false };
        self.canaried(key)
            && t.update_strategy.as_deref().is_some_and(left_by_canary)
            && recorded_on(key.kind, t).is_some()
    }

    /// What a revert leaves on targets it kept on the canary's settings (`settings_left`), in
    /// words: which images they still hold, and what to put back.
    /// Also those whose owner mark someone removed, which the operator writes to no more.
    pub(super) fn settings_kept(&self) -> Vec<String> {
        self.o
            .targets
            .iter()
            .filter_map(|(key, t)| {
                let t = t.as_ref().filter(|_| self.canaried(key))?;
                let current = t.update_strategy.as_deref().filter(|s| self.changed(key) && left_by_canary(s))?;
                let original = self.recorded_strategy(key, t).unwrap_or_default();
                if !self.owns(t) {
                    return Some(format!(
                        "{key} no longer carries this upgrade's owner mark, so the operator writes to it no more: \
                         its rollout settings stay the canary's ({current}); put back {original} by hand"
                    ));
                }
                if self.restore_refused(key) {
                    return Some(format!(
                        "{key} keeps the canary's rollout settings ({current}): the API server refused restoring \
                         {original} for 10 minutes (its ActionFailed Events say why); set them by hand, or leave \
                         that to the next upgrade of it, which puts back the record it keeps"
                    ));
                }
                let left = self.new_images_left(key, t);
                // The record stays with them when the upgrade lets go of the target (`release`).
                let kept = if self.left_on_canary(key) {
                    " (or leave that to the next upgrade of it, which puts back the record it keeps)"
                } else {
                    ""
                };
                (!left.is_empty()).then(|| {
                    format!(
                        "{key} keeps the canary's rollout settings ({current}), since its template still holds {} \
                         that its own would roll to every node or replica unjudged: set its images as you want them, \
                         then its rollout settings to {original}{kept}",
                        left.join(", ")
                    )
                })
            })
            .collect()
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
            // Made by this operator before a restart, if the status does not say so yet.
            let handed_over = self.st.stages.get(last).is_some_and(|s| s.phase != StagePhase::Pending)
                || t.handed_over.as_deref() == Some(self.hand_over_mark(last).as_str());
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

    /// What the stage `si` that hands a canaried target to its workload marks on it
    /// (`HANDED_OVER_ANNOTATION`).
    pub(super) fn hand_over_mark(&self, si: usize) -> String {
        format!("{}/{}", self.o.uid, self.o.spec.stages[si].name)
    }

    /// The recorded strategy back on a canaried target: how the last stage that names it hands
    /// the rest to the workload, and how a revert ends. None when there is nothing to restore.
    pub(super) fn hand_over(&self, key: &TargetKey, t: &TargetState) -> Option<Effect> {
        let original = self.recorded_strategy(key, t)?;
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| Effect::SetStrategy {
            target: key.clone(),
            resource_version: t.resource_version.clone(),
            strategy: original,
            handed_over: None,
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
