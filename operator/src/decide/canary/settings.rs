//! Decide step, pure: the rollout settings a canary changed, once its stages are done with
//! them: what is left to restore before a target is released, what a restore the API server
//! keeps refusing leaves, what is kept and why, someone else's change of them, and the hand-over
//! of the rest to the workload's own rollout (`mod.rs` has what every canary step shares).

use super::*;

impl Decider<'_> {
    /// A target this upgrade still owns whose rollout settings are still a canary's, with what
    /// restores them: one whose image someone else changed mid-canary (the operator lets go of
    /// its image, not of the settings it set), before it is released, so that no workload is
    /// left on OnDelete, a partition or a surge that never ends.
    /// Only a target this upgrade canaried, and only to the record on the target itself (the
    /// status, which a tenant may forge, does not choose what is written).
    pub(in crate::decide) fn settings_left(&self) -> Option<(TargetKey, Effect)> {
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
    pub(in crate::decide) fn settings_left_unrecorded(&self) -> Option<(TargetKey, Option<Effect>)> {
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
    pub(in crate::decide) fn restore_refused(&self, key: &TargetKey) -> bool {
        // Refused lately too: not a refusal long ago, then failures of another kind.
        self.o.strategy_refused.get(key).is_some_and(|r| {
            self.now() - r.since >= REFUSED_RESTORE_LIMIT && self.now() - r.last <= REFUSED_LATELY
        })
    }

    /// Says that `key`'s rollout settings, which its canary left, are being restored from the
    /// record on it (by a rollback, or by the release of an ended upgrade).
    pub(in crate::decide) fn note_settings_restored(&mut self, key: &TargetKey) {
        self.note(
            false,
            crate::constants::reason::CANARY_SETTINGS_RESTORED,
            "RestoreStrategy",
            format!("{key}: its recorded rollout settings restored, which its canary left"),
        );
    }

    /// Why a release lets go of `key` on a canary's settings no change in the status accounts
    /// for (`settings_kept` says those of a change), in words: what stays, why, and what next.
    pub(in crate::decide) fn settings_let_go(&self, key: &TargetKey) -> Option<String> {
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
    pub(super) fn restoring_rolls_only_back(&self, key: &TargetKey, t: &TargetState) -> Option<bool> {
        let known_good = t.recorded_known_good().unwrap_or_default();
        let mut new: Vec<(String, &str)> = vec![];
        for &(si, ci) in &self.appearances(key) {
            let c = &self.o.spec.stages[si].components[ci];
            if let Ok(own) = t.resolve_container(c.container.as_deref()) {
                new.push((own, c.image.as_str()));
            }
            new.extend(c.also_containers.iter().map(|a| (a.container.clone(), a.image.as_str())));
        }
        let is_new = |n: &str, i: &str| new.iter().any(|(c, d)| c == n && crate::image::runs(i, d));
        if t.containers.iter().any(|(n, i)| is_new(n, i) && !known_good.contains(&(n, i))) {
            return Some(false);
        }
        let pods = t.pods.as_ref().filter(|p| !p.is_empty() || t.desired_pods == 0)?;
        let back = |n: &str, i: &str| t.image(n).is_none_or(|own| crate::image::runs(i, own) || is_new(n, i));
        Some(pods.iter().filter(|p| !p.deleting).all(|p| p.images.iter().all(|(n, i)| back(n, i))))
    }

    /// The images this upgrade set that `t`'s template still holds, as `container=image`.
    pub(in crate::decide) fn new_images_left(&self, key: &TargetKey, t: &TargetState) -> Vec<String> {
        let mut left: Vec<String> = self
            .recorded_components(key)
            .filter(|c| c.applied_at.is_some())
            .flat_map(|c| c.changes())
            // One listed at the image it already ran (a sidecar a chart release kept) was not set.
            .filter(|(n, k, d)| {
                k.is_none_or(|k| !crate::image::runs(k, d))
                    && t.image(n).is_some_and(|i| crate::image::runs(i, d))
            })
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
            && t.update_strategy.as_deref().is_some_and(|s| left_by_canary_of(key.kind, s))
            && recorded_on(key.kind, t).is_some()
    }

    /// What a revert leaves on targets it kept on the canary's settings (`settings_left`), in
    /// words: which images they still hold, and what to put back.
    /// Also those whose owner mark someone removed, which the operator writes to no more.
    pub(in crate::decide) fn settings_kept(&self) -> Vec<String> {
        self.o
            .targets
            .iter()
            .filter_map(|(key, t)| {
                let t = t.as_ref().filter(|_| self.canaried(key))?;
                let current =
                    t.update_strategy.as_deref().filter(|s| self.changed(key) && left_by_canary_of(key.kind, s))?;
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
    pub(in crate::decide) fn settings_drift(&self) -> Option<String> {
        self.components().filter(|c| c.phase == ComponentPhase::Applied).find_map(|c| {
            let (key, t) = self.target(c);
            let t = t.filter(|t| self.owns(t) && self.canaried(&key))?;
            let current = t.update_strategy.as_deref()?;
            (!self.handed_over_to(&key, t) && !left_by_canary(current)).then(|| {
                format!(
                    "{key}'s rollout settings were changed by someone else during its canary (now {current}), \
                     which would roll the new image everywhere unjudged; tell Argo CD, Flux or Helm to leave \
                     them to the operator (see the ManagedByGitOps advice)"
                )
            })
        })
    }

    /// Whether the last stage that names canaried target `key` has handed it to its workload:
    /// its change made (not merely its stage begun, or touched by a rollback), or made by this
    /// operator before a restart (its mark on `t`) if the status does not say so yet. Its
    /// rollout settings are the workload's own from then on.
    pub(in crate::decide) fn handed_over_to(&self, key: &TargetKey, t: &TargetState) -> bool {
        self.appearances(key).last().is_some_and(|&(last, ci)| {
            let change = self.st.stages.get(last).and_then(|s| s.components.get(ci));
            change.is_some_and(|c| c.applied_at.is_some())
                || t.handed_over.as_deref() == Some(self.hand_over_mark(last).as_str())
        })
    }

    /// What the stage `si` that hands a canaried target to its workload marks on it
    /// (`HANDED_OVER_ANNOTATION`).
    pub(in crate::decide) fn hand_over_mark(&self, si: usize) -> String {
        format!("{}/{}", self.o.uid, self.o.spec.stages[si].name)
    }

    /// The recorded strategy back on a canaried target: how the last stage that names it hands
    /// the rest to the workload, and how a revert ends. None when there is nothing to restore.
    pub(in crate::decide) fn hand_over(&self, key: &TargetKey, t: &TargetState) -> Option<Effect> {
        let original = self.recorded_strategy(key, t)?;
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| Effect::SetStrategy {
            target: key.clone(),
            resource_version: t.resource_version.clone(),
            strategy: original,
            handed_over: None,
        })
    }
}
