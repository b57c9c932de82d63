//! Decide step, pure: how an upgrade ends: it succeeds, or it ends before anything changed (a
//! rollback ends in `rollback`). Its final phase is written first, its targets released in the
//! look after: were both one step, a final status write that failed (a 409 is common) would
//! leave targets released under an upgrade that still runs, which it would take for targets
//! someone else changed.

use super::{Decider, Effect};
use crate::constants::reason;
use crate::crd::*;
use crate::target::TargetKey;
use chrono::Duration;

/// How long a release waits for a canaried target's pods to be listed (a start lists them in
/// seconds) before it lets go of the target on the canary's settings.
const PODS_UNLISTED_LIMIT: Duration = Duration::minutes(5);

impl Decider<'_> {
    pub(super) fn succeed(&mut self) {
        self.st.completed_at = Some(self.now());
        self.st.current_stage = None;
        self.next = None;
        let msg =
            "every stage passed its soak; the known-good images stay recorded in status.stages".to_string();
        self.set_phase(Phase::Succeeded, msg.clone());
        self.note(false, reason::SUCCEEDED, "Finish", msg);
    }

    /// End before anything changed (deadline passed, window never opens again).
    pub(super) fn end_unstarted(&mut self, reason: &'static str, why: String) -> bool {
        if self.any_applied() {
            // rollback_trigger reverts an upgrade whose remaining stages can never start; this
            // is only a guard, so that a changed target is never left unwatched as "unchanged".
            self.start_rollback(reason, why);
            self.requeue_in(Duration::zero());
            return false;
        }
        self.st.completed_at = Some(self.now());
        self.set_phase(Phase::Failed, format!("{why}; nothing was changed"));
        self.next = None;
        self.note(true, reason, "Finish", format!("{why}; nothing was changed"));
        false
    }

    /// Release the targets this ended upgrade still marks as its own, and say when: if a
    /// release fails, `released_at` is not written and the next look releases the rest.
    pub(super) fn release(&mut self) {
        // A deleted upgrade checks its targets again: its finalizer goes only once none is
        // marked as its own, whatever its status says; unless its spec cannot be used, when it
        // leaves its marks on purpose (`decide`), for the next upgrade to be held by.
        let remarked = self.o.deleting
            && self.o.targets.values().flatten().any(|t| self.owns(t))
            && super::plan::Plan::for_upgrade(&self.o.spec, &self.o.status).is_ok();
        if self.st.released_at.is_some() && !remarked {
            return;
        }
        // However it ended, no target is let go of on the canary's settings it can have its own
        // back from: a change and its revert whose status writes were both lost leave only
        // OnDelete, a partition or a surge to say the canary began.
        match self.settings_left_unrecorded() {
            Some((key, Some(restore))) => {
                self.effect = Some(restore);
                let said =
                    format!("{key}'s rollout settings, which its canary left, restored from its record");
                if !self.st.message.contains(&said) {
                    self.st.message = format!("{}; {said}", self.st.message);
                }
                self.note_settings_restored(&key);
                self.requeue_in(Duration::zero());
                return;
            }
            // Its pods are listed soon after a start: they say whether restoring rolls any
            // forward. Not waited for past PODS_UNLISTED_LIMIT (a pod watch that never lists):
            // then it is let go of as it is, with the record, as beside older pods.
            Some((_, None))
                if self.st.completed_at.is_some_and(|at| self.now() < at + PODS_UNLISTED_LIMIT) =>
            {
                self.requeue_in(Duration::seconds(super::REPLACE_POLL));
                return;
            }
            _ => {}
        }
        self.st.released_at = Some(self.now());
        let mine: Vec<(TargetKey, String)> = self
            .o
            .targets
            .iter()
            // This very upgrade's (its UID too): one of the same name made again keeps its claims.
            .filter_map(|(k, t)| {
                t.as_ref().filter(|t| self.owns(t)).map(|t| (k.clone(), t.resource_version.clone()))
            })
            .collect();
        if !mine.is_empty() {
            let keep_strategy: Vec<TargetKey> =
                mine.iter().map(|(k, _)| k).filter(|k| self.left_on_canary(k)).cloned().collect();
            let let_go: Vec<String> = keep_strategy.iter().filter_map(|k| self.settings_let_go(k)).collect();
            for kept in let_go {
                if !self.st.message.contains(&kept) {
                    self.st.message = format!("{}; {kept}", self.st.message);
                }
                self.note(true, reason::CANARY_SETTINGS_KEPT, "Release", kept);
            }
            self.effect = Some(Effect::Release { targets: mine, keep_strategy });
        }
    }
}

#[cfg(test)]
#[path = "finish_tests.rs"]
mod tests;
