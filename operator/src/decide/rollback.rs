//! Decide step, pure: what triggers a rollback (regression, failed rollout, manual request,
//! a window that never reopens), what holds it, and the revert itself, last stage first.

use super::{Decider, Effect, REPLACE_POLL, ROLLOUT_POLL, plan::Plan};
use crate::constants::reason;
use crate::crd::*;
use crate::target::{PodPlace, Rollout, TargetKey, TargetState};
use crate::timefmt::{at, duration};
use crate::window::WindowState;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

impl<'a> Decider<'a> {
    /// `held_by`: what holds every forward step now (a spec that cannot be used), if anything.
    pub(super) fn rollback_trigger(
        &mut self,
        plan: &Plan,
        held_by: Option<&str>,
    ) -> Option<(&'static str, String)> {
        if self.o.deleting {
            return Some((
                reason::UPGRADE_DELETED,
                "the MaintenanceUpgrade is being deleted: what it changed goes back to the known-good images, then its targets are released and it goes".into(),
            ));
        }
        if let Some(why) = self.trust_withdrawn() {
            return Some((reason::TRUST_WITHDRAWN, why));
        }
        if self.o.spec.rollback.requested {
            return Some((reason::MANUAL_ROLLBACK, "spec.rollback.requested is true".into()));
        }
        if !self.any_applied() {
            return None;
        }
        let mut trigger = None;
        if let Some(why) = self.regression() {
            trigger = Some((reason::REGRESSION, why));
        }
        if let Some(c) = self.components().find(|c| c.phase == ComponentPhase::Reverted) {
            let why = format!(
                "{} (reverted before a restart, or by hand); the other changed components follow",
                c.message.clone().unwrap_or_default()
            );
            trigger.get_or_insert((reason::REVERTED, why));
        }
        if let Some(c) = self.components().find(|c| c.phase == ComponentPhase::Gone && c.applied_at.is_some())
        {
            trigger.get_or_insert((
                reason::TARGET_DELETED,
                format!("{:?} {}/{} was deleted after it was changed", c.kind, c.namespace, c.name),
            ));
        }
        if let Some(why) = self.rollout_failure(plan, held_by) {
            trigger.get_or_insert((reason::ROLLOUT_FAILED, why));
        }
        if let Some(why) = self.settings_drift() {
            trigger.get_or_insert((reason::CHANGED_EXTERNALLY, why));
        }
        // Stages left that can never start: the upgrade cannot finish, so it is reverted.
        let window = plan.schedule.state_at(self.now());
        if let WindowState::Closed { opens_at: None, why } = &window
            && let Some(s) = self.st.stages.iter().find(|s| s.phase == StagePhase::Pending)
        {
            let r = plan.never_opens_reason(self.now());
            trigger.get_or_insert(match plan.schedule.deadline() {
                Some(d) if r == reason::DEADLINE_EXCEEDED => {
                    (r, format!("stage {} had not started by the deadline {}", s.name, at(d)))
                }
                _ => (
                    r,
                    format!(
                        "stage {} cannot start: the maintenance window will not open again ({why})",
                        s.name
                    ),
                ),
            });
        }
        let (why, message) = trigger?;
        if !self.o.spec.rollback.automatic {
            self.held = Some(reason::AUTOMATIC_ROLLBACK_DISABLED);
            self.set_phase(
                Phase::Degraded,
                format!("{message}. Automatic rollback is off: set spec.rollback.requested to true to revert, nothing else happens until then"),
            );
            self.next("wait for a human: spec.rollback.requested", None);
            self.note_once(reason::AUTOMATIC_ROLLBACK_DISABLED, &message);
            return None;
        }
        // A component found reverted is a rollback begun before its status write was lost (or
        // one a human began): the rest follows at once, as a rollback under way does.
        let begun = self.components().any(|c| c.phase == ComponentPhase::Reverted);
        if !self.o.spec.rollback.outside_window && !begun {
            // A window that never opens again cannot be waited for: the rollback goes ahead.
            if let WindowState::Closed { opens_at: Some(opens_at), .. } = window {
                self.held = Some(reason::ROLLBACK_WAITS_FOR_WINDOW);
                self.set_phase(Phase::Degraded, format!("{message}. The rollback waits for the maintenance window (rollback.outsideWindow is false)"));
                self.next("roll back when the window opens", Some(opens_at));
                self.note_once(reason::ROLLBACK_WAITS_FOR_WINDOW, &message);
                return None;
            }
        }
        Some((why, message))
    }

    /// An Event only when the phase first becomes Degraded, not on every look.
    pub(super) fn note_once(&mut self, reason: &'static str, message: &str) {
        if self.o.status.phase != Phase::Degraded {
            self.note(true, reason, "Analyse", message.to_string());
        }
    }

    /// A stage's rollout that failed, or did not finish by its progress deadline. One whose
    /// workloads did finish but that is not marked so (the upgrade is held: a spec that cannot
    /// be used, `held_by`, or a target changed by someone else; or the look that holds it no
    /// more, before `advance` marks it) has not failed: a canary is looked at as its stage's
    /// step would (replacing nothing), since its controller may have finished it while the
    /// operator was away (a partition, a surge). A canary the operator itself widens is not
    /// widened while held, so that one does fail at the deadline, saying what held it. A
    /// failure already said (Degraded: the rollback waits for a human or the window) is not
    /// taken back by a rollout that finishes late.
    pub(super) fn rollout_failure(&mut self, plan: &Plan, held_by: Option<&str>) -> Option<String> {
        for i in 0..self.st.stages.len() {
            let s = &self.st.stages[i];
            if s.phase != StagePhase::RollingOut {
                continue;
            }
            for c in &s.components {
                if c.phase != ComponentPhase::Applied {
                    continue;
                }
                if let (_, Some(t)) = self.target(c)
                    && let Rollout::Failed(why) = &t.rollout
                {
                    return Some(format!("{:?} {}/{}: {why}", c.kind, c.namespace, c.name));
                }
            }
            let started = s.started_at?;
            let limit = plan.progress_deadline(i);
            if self.now() <= started + limit {
                continue;
            }
            let mut rolled_out = self.o.status.phase != Phase::Degraded;
            // What a canary still waited for, said with the failure (a node down elsewhere, say).
            let mut waited = None;
            for ci in 0..self.st.stages[i].components.len() {
                let c = self.st.stages[i].components[ci].clone();
                let done = c.phase == ComponentPhase::Applied
                    && if self.canary_of(i, ci).is_some() {
                        let waits = self.canary_step(i, ci, false);
                        waited = waited.or(waits.clone());
                        waits.is_none()
                    } else {
                        matches!(self.target(&c), (_, Some(t)) if t.rollout == Rollout::Complete)
                    };
                rolled_out &= done;
            }
            if !rolled_out {
                let held = held_by.map(|h| format!(" while the upgrade was held: {h}")).unwrap_or_default();
                let waited = waited.map(|w| format!(" ({w})")).unwrap_or_default();
                return Some(format!(
                    "stage {} did not roll out within its progress deadline of {}{held}{waited}",
                    self.st.stages[i].name,
                    duration(limit)
                ));
            }
        }
        None
    }

    pub(super) fn start_rollback(&mut self, why: &'static str, message: String) {
        self.st.rollback = Some(RollbackStatus {
            reason: why.to_string(),
            message: message.clone(),
            started_at: self.now(),
            completed_at: None,
        });
        self.note(true, why, "RollBack", format!("rolling back to the known-good images: {message}"));
    }

    pub(super) fn roll_back(&mut self, plan: &Plan) {
        let why = self.st.rollback.as_ref().map(|r| r.message.clone()).unwrap_or_default();
        // Last stage first; within a stage, last component first.
        for si in (0..self.st.stages.len()).rev() {
            // A Pending stage may hold a change found made (`check_targets`): reverted too.
            let stage = &self.st.stages[si];
            let untouched = stage.phase == StagePhase::Pending
                && !stage.components.iter().any(|c| c.applied_at.is_some());
            if untouched || stage.phase == StagePhase::RolledBack {
                continue;
            }
            let stage_name = self.st.stages[si].name.clone();
            self.st.stages[si].phase = StagePhase::RollingBack;
            self.st.current_stage = Some(stage_name.clone());
            for ci in (0..self.st.stages[si].components.len()).rev() {
                let c = self.st.stages[si].components[ci].clone();
                if c.phase != ComponentPhase::Applied {
                    continue;
                }
                let (key, t) = self.target(&c);
                let t = t.expect("an Applied component's target exists (else it is Gone)");
                let container = c.container.clone().unwrap_or_default();
                let known_good = c.known_good_image.clone().unwrap_or_default();
                // An image it has no record of is never written (an empty one would leave the
                // workload unable to make pods).
                if let Some((n, _, _)) = c.changes().into_iter().find(|(_, k, _)| k.is_none_or(str::is_empty))
                {
                    let mut msg = format!(
                        "no known-good image of container {n} of {key} is recorded, so it is not reverted; \
                         set its images back by hand"
                    );
                    // Its canary's settings stay, so that the image goes no further by itself.
                    if let Some(original) = self.recorded_strategy(&key, t).filter(|_| self.canaried(&key)) {
                        msg.push_str(&format!(
                            ", then its rollout settings to {original} (they stay the canary's until then, so that \
                             the new image goes no further)"
                        ));
                    }
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Conflict;
                    cs.message = Some(msg.clone());
                    self.note(true, reason::CHANGED_EXTERNALLY, "Revert", msg);
                    continue;
                }
                let revert = c.revert_image(self.canaried(&key)).unwrap_or_default();
                let cs = &mut self.st.stages[si].components[ci];
                cs.phase = ComponentPhase::Reverted;
                cs.reverted_at = Some(self.o.now);
                if let Some(running) = t.image(&container).filter(|i| c.is_known_good(i)) {
                    cs.reverted_to = Some(running.to_string());
                    continue; // reverted before a restart; nothing to send
                }
                cs.reverted_to = Some(revert.clone());
                // Its own container to the digest that ran, when one was recorded; the others
                // to their known-good images as written.
                let back: Vec<(&str, &str)> = c
                    .changes()
                    .iter()
                    .enumerate()
                    .map(|(i, (n, k, _))| (*n, if i == 0 { revert.as_str() } else { k.unwrap_or_default() }))
                    .collect();
                let mut effect = Effect::set_images(&key, t, &back);
                if let Effect::SetImage { strategy, .. } = &mut effect {
                    *strategy = self.settings_with_revert(&key, t);
                }
                self.effect = Some(effect);
                let pinned = if revert != known_good {
                    format!(
                        " (the digest its pods ran before the upgrade: {known_good} may point elsewhere now)"
                    )
                } else {
                    String::new()
                };
                self.note(
                    false,
                    reason::REVERTED,
                    "Revert",
                    back.iter()
                        .map(|(n, k)| format!("{key} container {n} set back to {k}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                        + &pinned,
                );
                self.set_phase(
                    Phase::RollingBack,
                    format!("reverting stage {stage_name}: {key} back to {revert} ({why})"),
                );
                self.next(format!("wait for the revert of stage {stage_name} to roll out"), None);
                self.requeue_in(Duration::zero());
                return;
            }
            // Every component of this stage is reverted: wait for the rollouts, bounded by the
            // stage's progress deadline so that one stuck target cannot hold the others.
            let reverted: Vec<ComponentStatus> = self.st.stages[si]
                .components
                .iter()
                .filter(|c| c.phase == ComponentPhase::Reverted)
                .cloned()
                .collect();
            // A StatefulSet's updated pods that are not Ready are deleted, canary or not; then a
            // canary inside a reverted target has its pods that run the new image replaced and
            // its strategy restored, before the rollout is waited for.
            let last_revert = reverted.iter().filter_map(|c| c.reverted_at).max().unwrap_or(self.now());
            let give_up = last_revert + plan.progress_deadline(si);
            let unwinding: Vec<String> = reverted
                .iter()
                .filter_map(|c| self.unstick(c, give_up).or_else(|| self.unwind(c, give_up)))
                .collect();
            if !unwinding.is_empty() {
                self.set_phase(
                    Phase::RollingBack,
                    format!("finishing the revert of stage {stage_name}: {} ({why})", unwinding.join("; ")),
                );
                self.next(format!("wait for the revert of stage {stage_name} to roll out"), None);
                let soon = if self.effect.is_some() { REPLACE_POLL } else { ROLLOUT_POLL };
                self.requeue_in(Duration::seconds(soon));
                return;
            }
            let waiting: Vec<String> = reverted
                .iter()
                .filter_map(|c| match self.target(c) {
                    (key, Some(t)) if t.rollout != Rollout::Complete => Some(format!("{key}")),
                    _ => None,
                })
                .collect();
            if !waiting.is_empty() && self.now() < give_up {
                self.set_phase(
                    Phase::RollingBack,
                    format!(
                        "waiting for the revert of stage {stage_name} to roll out: {} ({why})",
                        waiting.join(", ")
                    ),
                );
                self.next(format!("wait for the revert of stage {stage_name} to roll out"), Some(give_up));
                self.requeue_in(Duration::seconds(ROLLOUT_POLL));
                return;
            }
            if !waiting.is_empty() {
                self.note(
                    true,
                    reason::ROLLOUT_FAILED,
                    "Revert",
                    format!(
                        "the revert of {} did not finish rolling out in time; continuing",
                        waiting.join(", ")
                    ),
                );
            }
            self.st.stages[si].phase = StagePhase::RolledBack;
            self.st.stages[si].reverted_at = Some(self.o.now);
            self.note(
                false,
                reason::ROLLED_BACK,
                "Revert",
                format!("stage {stage_name} is back on its known-good images"),
            );
        }
        // A target let go of mid-canary still runs with the canary's settings: they go back first.
        if let Some((key, restore)) = self.settings_left() {
            self.effect = Some(restore);
            let msg = format!("restoring the rollout settings of {key}, which its canary left ({why})");
            self.note_settings_restored(&key);
            self.set_phase(Phase::RollingBack, msg);
            self.requeue_in(Duration::zero());
            return;
        }
        // Everything reverted: the upgrade is over (its targets are released in the next look).
        let now = self.now();
        if let Some(r) = self.st.rollback.as_mut() {
            r.completed_at = Some(now);
        }
        self.st.completed_at = Some(now);
        self.st.current_stage = None;
        let skipped: Vec<String> = self
            .components()
            .filter(|c| {
                matches!(c.phase, ComponentPhase::Conflict | ComponentPhase::Gone) && c.applied_at.is_some()
            })
            .map(|c| format!("{:?} {}/{}", c.kind, c.namespace, c.name))
            .collect();
        let mut msg = if self.any_applied() {
            format!("rolled back to the known-good images because {why}")
        } else {
            format!("ended before any image was changed because {why}")
        };
        if !skipped.is_empty() {
            msg.push_str(&format!(
                "; not reverted (someone else changed or deleted them, or no known-good image is recorded: see their messages): {}",
                skipped.join(", ")
            ));
        }
        for kept in self.settings_kept() {
            msg.push_str(&format!("; {kept}"));
        }
        // Said at the end, not when a stage stops waiting: an earlier stage that widened the
        // same target may still delete them. A target that several stages widened is said once.
        let left: BTreeSet<String> = self
            .components()
            .filter(|c| c.phase == ComponentPhase::Reverted)
            .filter_map(|c| self.left_stuck(c))
            .collect();
        for left in left {
            msg.push_str(&format!("; {left}"));
        }
        self.set_phase(Phase::RolledBack, msg.clone());
        self.next = None;
        self.note(!skipped.is_empty(), reason::ROLLED_BACK, "Finish", msg);
    }

    /// A reverted StatefulSet's updated pods that are not Ready, deleted one at a time (the
    /// highest ordinal first, as its controller updates them, and each once the one before has
    /// gone) once its controller shows the reverted template: an OrderedReady StatefulSet stays
    /// stuck on such a pod even then (kubernetes#67250), and the pod comes back from the
    /// known-good template. With a canary or without. Waited for like the rollout, until
    /// `give_up` and no longer, so that one stuck target cannot hold the others: a pod still
    /// stuck then stays, the stage's Event says its revert did not finish rolling out, and the
    /// final message names the pod (`left_stuck`). What it waits for, while any is left.
    fn unstick(&mut self, c: &ComponentStatus, give_up: DateTime<Utc>) -> Option<String> {
        let (key, t) = self.changed_statefulset(c)?;
        let container = c.container.clone().unwrap_or_default();
        let reverted = |t: &&TargetState| t.image(&container).is_some_and(|i| c.is_known_good(i));
        let t = Some(t).filter(|_| self.now() < give_up).filter(reverted)?;
        let Some(pods) = t.pods.as_ref().filter(|_| t.generation_observed) else {
            return Some(format!(
                "{key}: waiting for its controller and its pods to show the reverted template"
            ));
        };
        let new = updated(c, pods);
        if new.iter().any(|p| p.deleting) {
            return Some(format!("{key}: waiting for an updated pod that is still terminating"));
        }
        let stuck = new.into_iter().find(|p| !p.ready)?;
        if self.effect.is_none() {
            let pod = (stuck.name.clone(), stuck.uid.clone());
            let why = format!("that run {} and are not Ready", c.desired_image);
            self.replace_pods(&key, vec![pod], reason::REVERTED, why);
        }
        Some(format!("{key}: replacing its updated pods that are not Ready, one at a time"))
    }

    /// The StatefulSet of component `c`, if this upgrade owns it and changed its image: one
    /// whose image was already the known-good one has no updated pod, whatever its readiness.
    fn changed_statefulset(&self, c: &ComponentStatus) -> Option<(TargetKey, &'a TargetState)> {
        let known_good = c.known_good_image.as_deref().unwrap_or_default();
        if c.is_known_good(&c.desired_image) || crate::image::runs(known_good, &c.desired_image) {
            return None;
        }
        let (key, t) = self.target(c);
        let t = t.filter(|t| key.kind == WorkloadKind::StatefulSet && self.owns(t))?;
        Some((key, t))
    }

    /// What a revert leaves to a human: a reverted StatefulSet's updated pods that are still
    /// not Ready once it stops waiting, which its controller may wait on for ever.
    fn left_stuck(&self, c: &ComponentStatus) -> Option<String> {
        let (key, t) = self.changed_statefulset(c)?;
        let names: Vec<&str> = updated(c, t.pods.as_deref()?)
            .into_iter()
            .filter(|p| !p.ready && !p.deleting)
            .map(|p| p.name.as_str())
            .collect();
        if names.is_empty() {
            return None;
        }
        // A few names, so that the message stays whole within an Event.
        let mut named = names.iter().take(NAMED_PODS).copied().collect::<Vec<_>>().join(", ");
        if names.len() > NAMED_PODS {
            named.push_str(&format!(" and {} more", names.len() - NAMED_PODS));
        }
        Some(format!(
            "{key}: pods {named} still run {} and are not Ready; delete them by hand, and its \
             controller makes them again from the known-good template",
            c.desired_image
        ))
    }
}

/// How many stuck pods a message names.
const NAMED_PODS: usize = 5;

/// Of a StatefulSet's `pods`, those that run `c`'s new image, the highest ordinal first (the
/// order its controller updates them in).
fn updated<'p>(c: &ComponentStatus, pods: &'p [PodPlace]) -> Vec<&'p PodPlace> {
    let container = c.container.as_deref().unwrap_or_default();
    let ordinal = |p: &PodPlace| p.name.rsplit('-').next().and_then(|n| n.parse::<u64>().ok());
    let mut new: Vec<&PodPlace> = pods.iter().filter(|p| p.runs(container, &c.desired_image)).collect();
    new.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    new
}

#[cfg(test)]
#[path = "rollback_tests.rs"]
mod tests;
