//! Decide step, pure: move forward one stage at a time: start it inside the window and past its
//! gates (pause, approval), roll it out, soak it, promote it.

use super::analysis::behind_on_reads;
use super::{BLOCKED_RETRY, Decider, Effect, REPLACE_POLL, ROLLOUT_POLL, plan::Plan};
use crate::constants::reason;
use crate::crd::*;
use crate::target::Rollout;
use crate::timefmt::at;
use crate::window::WindowState;
use chrono::{DateTime, Duration, Utc};

/// How late a look may run and still count as starting a stage on time: woken at a window's
/// opening, it runs a moment after it, so that a progressDeadline as long as the window would
/// otherwise never fit. A rollout it starts may end that much after the window closes.
const START_LATENESS: Duration = Duration::minutes(1);

impl Decider<'_> {
    pub(super) fn advance(&mut self, plan: &Plan) {
        if self.held.is_some() {
            return; // rollback_trigger said why and what next
        }
        if !self.claim() {
            return;
        }
        if self.st.changed_at.is_none() && !self.baseline_ready(plan) {
            return;
        }
        // Someone else changed a target: hold every forward step (analysis and rollback go on)
        // until a human decides, rather than promote around their change.
        let conflict = self.components().find(|c| c.phase == ComponentPhase::Conflict).cloned();
        if let Some(c) = conflict {
            let msg = format!(
                "{}; the upgrade is held (a regression is still rolled back): set spec.rollback.requested to revert the rest (deleting the upgrade reverts it too, then lets go)",
                c.message.unwrap_or_else(|| format!(
                    "{:?} {}/{} was changed by someone else",
                    c.kind, c.namespace, c.name
                ))
            );
            self.st.message = msg.clone();
            self.block(reason::CHANGED_EXTERNALLY, msg);
            return;
        }
        let Some(si) = self.st.stages.iter().position(|s| s.phase != StagePhase::Passed) else {
            return self.succeed();
        };
        self.follow_earlier(si);
        match self.st.stages[si].phase {
            StagePhase::Pending => self.start_stage(plan, si),
            StagePhase::RollingOut => self.roll_out(plan, si),
            StagePhase::Soaking => self.soak(plan, si),
            _ => {}
        }
    }

    pub(super) fn start_stage(&mut self, plan: &Plan, si: usize) {
        let now = self.now();
        let stage = &self.o.spec.stages[si];
        let name = stage.name.clone();
        if self.o.spec.paused {
            self.set_phase(
                Phase::Paused,
                format!("paused before stage {name}; set spec.paused to false to continue"),
            );
            self.next(format!("start stage {name} when unpaused"), None);
            return;
        }
        if stage.require_approval && !self.o.spec.approved_stages.contains(&name) {
            self.set_phase(
                Phase::AwaitingApproval,
                format!("stage {name} needs approval: add {name} to spec.approvedStages"),
            );
            self.next(format!("start stage {name} once approved"), None);
            if self.o.status.phase != Phase::AwaitingApproval {
                self.note(
                    false,
                    reason::AWAITING_APPROVAL,
                    "Approve",
                    format!("stage {name} waits for approval in spec.approvedStages"),
                );
            }
            return;
        }
        // One found changed (`check_targets`) is this upgrade's, watched already; the rest waits
        // for the gates above and below.
        let startable =
            |c: &&ComponentStatus| matches!(c.phase, ComponentPhase::Claimed | ComponentPhase::Applied);
        if let Some(c) = self.st.stages[si].components.iter().find(|c| !startable(c)) {
            let msg = format!(
                "stage {name} cannot start: {}; the upgrade is held (a regression is still rolled back): set \
                 spec.rollback.requested to revert what it changed (deleting the upgrade reverts it too, then lets go)",
                c.message
                    .clone()
                    .unwrap_or_else(|| format!("{:?} {}/{} is {:?}", c.kind, c.namespace, c.name, c.phase))
            );
            self.set_phase(Phase::Pending, msg.clone());
            self.block(reason::CHANGED_EXTERNALLY, msg);
            return;
        }
        match plan.schedule.state_at(now) {
            WindowState::Closed { opens_at: Some(t), why } => {
                self.set_phase(
                    Phase::WaitingForWindow,
                    format!(
                        "the maintenance window is closed ({why}); stage {name} starts when it opens at {}",
                        at(t)
                    ),
                );
                self.next(format!("start stage {name}"), Some(t));
                return;
            }
            WindowState::Closed { opens_at: None, why } => {
                self.end_unstarted(
                    plan.never_opens_reason(now),
                    format!("the maintenance window will not open again ({why})"),
                );
                return;
            }
            WindowState::Open { closes_at: Some(closes) }
                if plan.policy == StagePolicy::WaitForNextWindow
                    && now - START_LATENESS + plan.progress_deadline[si] > closes =>
            {
                let next_open = plan.schedule.state_at(closes);
                let opens = match next_open {
                    WindowState::Closed { opens_at, .. } => opens_at,
                    WindowState::Open { .. } => Some(closes),
                };
                self.set_phase(
                    Phase::WaitingForWindow,
                    format!(
                        "stage {name} may take up to {} to roll out but the window closes at {}; it starts in the next window (window.stagePolicy: WaitForNextWindow)",
                        stage.progress_deadline.0,
                        at(closes)
                    ),
                );
                self.next(format!("start stage {name}"), opens);
                return;
            }
            WindowState::Open { .. } => {}
        }
        if let Some(wait) = self.selection_unread(si) {
            self.set_phase(self.st.phase, format!("stage {name} cannot start yet: {wait}"));
            self.next(format!("start stage {name}"), Some(now + Duration::seconds(BLOCKED_RETRY)));
            return;
        }
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::RollingOut;
        s.started_at = Some(now);
        let n = s.components.len();
        self.st.current_stage = Some(name.clone());
        self.note(
            false,
            reason::STAGE_STARTED,
            "StartStage",
            format!("stage {name} started ({n} components)"),
        );
        self.roll_out(plan, si);
    }

    pub(super) fn roll_out(&mut self, plan: &Plan, si: usize) {
        let now = self.now();
        let name = self.st.stages[si].name.clone();
        self.st.current_stage = Some(name.clone());
        for ci in 0..self.st.stages[si].components.len() {
            let c = self.st.stages[si].components[ci].clone();
            if c.phase != ComponentPhase::Claimed {
                continue;
            }
            let (key, t) = self.target(&c);
            let Some(t) = t else { continue };
            let container = c.container.clone().unwrap_or_default();
            let cs = &mut self.st.stages[si].components[ci];
            cs.phase = ComponentPhase::Applied;
            cs.applied_at = Some(now);
            self.st.changed_at.get_or_insert(now);
            // A later stage of a target with a canary inside it widens the canary, and the last
            // one hands the rest to the workload's own rolling update.
            if !self.first_appearance(&key, si) {
                if self.canary_of(si, ci).is_none()
                    && let Some(mut restore) = self.hand_over(&key, t)
                {
                    let mut restored = String::new();
                    if let Effect::SetStrategy { handed_over, strategy, .. } = &mut restore {
                        *handed_over = Some(self.hand_over_mark(si));
                        restored = strategy.clone();
                    }
                    self.effect = Some(restore);
                    self.note(
                        false,
                        reason::IMAGE_SET,
                        "RestoreStrategy",
                        format!(
                            "{key}: the rest is handed to its own rolling update, its recorded settings restored ({restored})"
                        ),
                    );
                    self.set_phase(
                        Phase::Progressing,
                        format!("stage {name}: handing {key} to its own rolling update"),
                    );
                    self.requeue_in(Duration::zero());
                    return;
                }
                continue;
            }
            if t.image(&container).is_some_and(|i| crate::image::runs(i, &c.desired_image)) {
                continue; // applied before a restart
            }
            let desired: Vec<(&str, &str)> = c.changes().iter().map(|(n, _, d)| (*n, *d)).collect();
            let mut effect = Effect::set_images(&key, t, &desired);
            if let Effect::SetImage { strategy, .. } = &mut effect {
                *strategy = self.strategy_with_image(&key, si, t);
            }
            self.effect = Some(effect);
            self.note(
                false,
                reason::IMAGE_SET,
                "SetImage",
                c.changes()
                    .iter()
                    .map(|(n, k, d)| format!("{key} container {n}: {} -> {d}", k.unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            self.set_phase(Phase::Progressing, format!("stage {name}: setting {key} to {}", c.desired_image));
            self.requeue_in(Duration::zero());
            return;
        }
        let comps = self.st.stages[si].components.clone();
        if let Some(c) =
            comps.iter().find(|c| c.phase == ComponentPhase::Conflict || c.phase == ComponentPhase::Gone)
        {
            let msg = format!("stage {name} is held: {}", c.message.clone().unwrap_or_default());
            self.set_phase(Phase::Progressing, msg.clone());
            self.block(
                reason::CHANGED_EXTERNALLY,
                format!("{msg}; set spec.rollback.requested to revert the rest"),
            );
            return;
        }
        let mut waiting = vec![];
        for (ci, c) in comps.iter().enumerate() {
            // A canary inside the workload: its own nodes, replaced by the operator.
            if self.canary_of(si, ci).is_some() {
                waiting.extend(self.widen(si, ci));
                continue;
            }
            waiting.extend(match self.target(c) {
                (key, Some(t)) => match &t.rollout {
                    Rollout::Complete => None,
                    Rollout::InProgress(why) | Rollout::Failed(why) => Some(format!("{key}: {why}")),
                },
                (key, None) => Some(format!("{key}: missing")),
            });
        }
        if self.effect.is_some() {
            // Pods were deleted: look again once the pod watch has seen it.
            self.set_phase(
                Phase::Progressing,
                format!("stage {name} is rolling out: {}", waiting.join("; ")),
            );
            self.requeue_in(Duration::seconds(REPLACE_POLL));
            return;
        }
        if !waiting.is_empty() {
            let deadline = self.st.stages[si].started_at.unwrap_or(now) + plan.progress_deadline[si];
            self.set_phase(
                Phase::Progressing,
                format!("stage {name} is rolling out: {}", waiting.join("; ")),
            );
            self.next(
                format!("stage {name} rolled out (or reverted at the progress deadline)"),
                Some(deadline),
            );
            self.requeue_in(Duration::seconds(ROLLOUT_POLL));
            return;
        }
        let ends = now + plan.soak[si];
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::Soaking;
        s.rolled_out_at = Some(now);
        s.soak_ends_at = Some(ends);
        self.note(
            false,
            reason::ROLLED_OUT,
            "RolledOut",
            format!("stage {name} rolled out; soaking until {}", at(ends)),
        );
        self.soak(plan, si);
    }

    /// What follows a soak that ends at `ends` and passes, as `start_stage` will find stage
    /// `next`'s gates then (those the status shows now: a pause, an approval, the window).
    fn after_soak(&self, plan: &Plan, next: usize, ends: DateTime<Utc>) -> String {
        let name = &self.st.stages[next].name;
        if self.o.spec.paused {
            return format!("the upgrade pauses before stage {name} (spec.paused)");
        }
        let stage = &self.o.spec.stages[next];
        if stage.require_approval && !self.o.spec.approved_stages.contains(name) {
            return format!("stage {name} waits for approval in spec.approvedStages");
        }
        match plan.schedule.state_at(ends) {
            WindowState::Closed { opens_at: Some(t), .. } => {
                format!(
                    "stage {name} starts when the maintenance window opens at {}{}",
                    at(t),
                    self.widens(next)
                )
            }
            WindowState::Closed { opens_at: None, .. } => {
                format!("stage {name} cannot start: the maintenance window will not open again")
            }
            WindowState::Open { closes_at: Some(closes) }
                if plan.policy == StagePolicy::WaitForNextWindow
                    && ends - START_LATENESS + plan.progress_deadline[next] > closes =>
            {
                format!(
                    "stage {name} starts in the next window (its progressDeadline of {} does not fit before \
                     this one closes at {}){}",
                    stage.progress_deadline.0,
                    at(closes),
                    self.widens(next)
                )
            }
            WindowState::Open { .. } => format!("stage {name} starts{}", self.widens(next)),
        }
    }

    pub(super) fn soak(&mut self, plan: &Plan, si: usize) {
        self.follow(si);
        let now = self.now();
        let name = self.st.stages[si].name.clone();
        let ends = self.st.stages[si].soak_ends_at.unwrap_or(now);
        let later = if si + 1 < self.st.stages.len() {
            self.after_soak(plan, si + 1, ends.max(now))
        } else {
            "the upgrade succeeds".into()
        };
        if now < ends {
            self.set_phase(
                Phase::Soaking,
                format!("stage {name} is soaking until {}; if the signals hold, {later}; on a regression every changed component is reverted", at(ends)),
            );
            self.next(format!("end the soak of stage {name}"), Some(ends));
            return;
        }
        // The soak is over: promote only on a fresh conclusive verdict of every signal.
        // A canary's copy of a built-in signal may roll back or extend the soak, but a canary
        // too small to be conclusive holds nothing: its parent signal still has to pass.
        // Fresh: read in the soak's last interval, on what happened after this stage's change
        // was complete (a built-in signal judges pods `pendingLimit` after their creation), never
        // a verdict from before it; and no signal still catching up on reads it missed (a leader
        // or Prometheus away), whose unread part may hold a regression.
        let fresh_since = ends - plan.interval;
        let stage = &self.st.stages[si];
        let rolled_out = stage.rolled_out_at.or(stage.started_at).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let entry = |s: &Signal| self.st.analysis.iter().find(|a| a.name == s.name);
        let read_to = |s: &Signal| entry(s).and_then(|a| a.sampled_to);
        let caught_up = |s: &Signal| read_to(s).is_some_and(|t| !behind_on_reads(s, t, now, plan.interval));
        let after_change = |s: &Signal| {
            let limit = s.kubernetes.as_ref().and_then(|k| k.pending_limit.parse().ok());
            read_to(s).is_some_and(|t| t - limit.unwrap_or_else(Duration::zero) > rolled_out)
        };
        let passing = |s: &Signal| entry(s).is_some_and(|a| a.verdict == Verdict::Pass);
        let fresh = |s: &Signal| entry(s).and_then(|a| a.analysed_at).is_some_and(|t| t >= fresh_since);
        let judged = plan.signals.iter().filter(|s| s.canary_parent().is_none());
        let unsure: Vec<String> = judged.clone().filter(|s| !passing(s)).map(|s| s.name.clone()).collect();
        // Passing so far, but not read far enough yet (a look catching up on reads it missed, a
        // read due after the change): no warning, the reads are on their way. A canary's copy
        // holds nothing but its own reads still to come.
        let behind: Vec<String> = plan
            .signals
            .iter()
            .filter(|s| match s.canary_parent() {
                None => passing(s) && !(fresh(s) && after_change(s) && caught_up(s)),
                Some(_) => !caught_up(s),
            })
            .map(|s| s.name.clone())
            .collect();
        let suspects: Vec<String> = self
            .st
            .analysis
            .iter()
            .filter(|a| a.verdict == Verdict::Suspect && !a.retired())
            .map(|a| a.name.clone())
            .collect();
        if !suspects.is_empty() {
            self.set_phase(
                Phase::Soaking,
                format!(
                    "the soak of stage {name} is extended: evidence of a regression is building in signal(s) {}; promoting once it clears, reverting if it grows",
                    suspects.join(", ")
                ),
            );
            self.next(format!("end the soak of stage {name} when the suspicion clears"), None);
            return;
        }
        if !unsure.is_empty() {
            let msg = format!(
                "the soak of stage {name} is over but signal(s) {} have no conclusive verdict; not promoting until they pass",
                unsure.join(", ")
            );
            if self.o.status.message != msg {
                self.note(true, reason::INCONCLUSIVE, "Analyse", msg.clone());
            }
            self.set_phase(Phase::Soaking, msg);
            self.next(format!("end the soak of stage {name} on a conclusive pass"), None);
            return;
        }
        if !behind.is_empty() {
            self.set_phase(
                Phase::Soaking,
                format!(
                    "the soak of stage {name} is over; promoting once signal(s) {} pass reads up to its last interval, made on what followed the change",
                    behind.join(", ")
                ),
            );
            self.next(format!("end the soak of stage {name} on the next reads"), None);
            return;
        }
        let next = self.st.stages.iter().position(|s| s.phase == StagePhase::Pending);
        if self.o.spec.paused {
            self.set_phase(
                Phase::Paused,
                format!("stage {name} passed its soak; paused: set spec.paused to false to continue"),
            );
            self.next("continue when unpaused", None);
            return;
        }
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::Passed;
        s.passed_at = Some(now);
        self.note(false, reason::SOAK_PASSED, "Promote", format!("stage {name} passed its soak; {later}"));
        match next {
            Some(next) => self.start_stage(plan, next),
            None => self.succeed(),
        }
    }
}

#[cfg(test)]
#[path = "stage_tests.rs"]
mod tests;
