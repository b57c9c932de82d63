//! Decide step, pure: the decision as a user reads it: conditions (keeping the transition
//! times of those that did not change), announcements, and what happens next.

use super::{Decider, Decision, Note};
use crate::constants::{condition as ct, reason};
use crate::crd::*;
use crate::timefmt::at;
use crate::window::{Schedule, WindowState};
use chrono::{DateTime, Duration, Utc};

impl Decider<'_> {
    pub(super) fn finish(mut self) -> Decision {
        let now = self.now();
        let generation = Some(self.o.generation);
        let phase = self.st.phase;
        let cond = |t: &str, s: &str, r: &str, m: String| Condition {
            type_: t.into(),
            status: s.into(),
            reason: r.into(),
            message: m,
            last_transition_time: now,
            observed_generation: generation,
        };
        let mut new = vec![];
        let progressing = !phase.is_terminal();
        new.push(cond(ct::PROGRESSING, tf(progressing), &format!("{phase:?}"), self.st.message.clone()));
        new.push(cond(
            ct::COMPLETE,
            tf(phase == Phase::Succeeded),
            &format!("{phase:?}"),
            if phase == Phase::Succeeded { self.st.message.clone() } else { "not complete".into() },
        ));
        let rb = self.st.rollback.as_ref();
        new.push(match (phase == Phase::RolledBack, rb) {
            (true, Some(r)) => cond(ct::ROLLED_BACK, "True", &r.reason, self.st.message.clone()),
            (false, Some(r)) => {
                cond(ct::ROLLED_BACK, "False", &r.reason, format!("rolling back: {}", r.message))
            }
            // Decided, but held for a human or the window: the message says which.
            _ if let Some(held) = self.held => cond(ct::ROLLED_BACK, "False", held, self.st.message.clone()),
            _ => cond(ct::ROLLED_BACK, "False", reason::NOT_REQUESTED, "no rollback".into()),
        });
        // A canary's copy read no more says nothing of the upgrade's health.
        let judged: Vec<&SignalStatus> = self.st.analysis.iter().filter(|a| !a.retired()).collect();
        let summary =
            || judged.iter().map(|a| format!("{}: {}", a.name, a.reason)).collect::<Vec<_>>().join("; ");
        new.push(match judged.iter().find(|a| a.verdict == Verdict::Regression) {
            Some(a) => {
                cond(ct::HEALTHY, "False", reason::REGRESSION, format!("signal {}: {}", a.name, a.reason))
            }
            None if !judged.is_empty() && judged.iter().all(|a| a.verdict == Verdict::Pass) => {
                cond(ct::HEALTHY, "True", reason::NO_REGRESSION, summary())
            }
            None => {
                let m = summary();
                let why = if judged.iter().any(|a| a.verdict == Verdict::Suspect) {
                    reason::SUSPECTED
                } else {
                    reason::INCONCLUSIVE
                };
                cond(ct::HEALTHY, "Unknown", why, if m.is_empty() { "no analysis yet".into() } else { m })
            }
        });
        // Only on an upgrade whose targets another tool manages: what it will undo, how to stop it.
        let mut managed: Vec<(ManagerTool, String)> = self
            .components()
            .filter_map(|c| {
                let m = c.managed_by.as_ref()?;
                let (key, t) = self.target(c);
                let changed = c.changes().into_iter().map(|(n, _, _)| n);
                let indices = t.map(|t| t.positions(changed)).filter(|i| !i.is_empty()).unwrap_or(vec![0]);
                let canary = self.canaried(&key);
                Some((m.tool, crate::target::gitops::advice(m, &key, &indices, canary)))
            })
            .collect();
        // A target named in several stages (a canary widened) is advised on once.
        let mut seen = std::collections::BTreeSet::new();
        managed.retain(|(_, advice)| seen.insert(advice.clone()));
        if let Some((tool, _)) = managed.first() {
            let advice: Vec<String> = managed.iter().map(|(_, a)| a.clone()).collect();
            new.push(cond(ct::MANAGED_BY_GITOPS, "True", &format!("{tool:?}"), advice.join("; ")));
        }
        new.push(match &self.blocked {
            Some((r, m)) => cond(ct::BLOCKED, "True", r, m.clone()),
            // Nothing moves until a human asks for the rollback.
            None if self.held == Some(reason::AUTOMATIC_ROLLBACK_DISABLED) => {
                cond(ct::BLOCKED, "True", reason::AUTOMATIC_ROLLBACK_DISABLED, self.st.message.clone())
            }
            None => cond(ct::BLOCKED, "False", reason::NOT_BLOCKED, "nothing blocks the upgrade".into()),
        });
        // Window state, as far as the spec can be read; an ended upgrade is looked at no more, so
        // it says nothing of the window (it would be the window of its last look).
        if let Ok(s) = Schedule::parse(self.o.spec.window.as_ref())
            && !phase.is_terminal()
        {
            new.push(match s.state_at(now) {
                WindowState::Open { closes_at: Some(t) } => {
                    cond(ct::WINDOW_OPEN, "True", reason::WINDOW_OPENED, format!("open until {}", at(t)))
                }
                WindowState::Open { closes_at: None } => {
                    cond(ct::WINDOW_OPEN, "True", reason::WINDOW_OPENED, "always open".into())
                }
                WindowState::Closed { opens_at: Some(t), why } => cond(
                    ct::WINDOW_OPEN,
                    "False",
                    reason::WINDOW_CLOSED,
                    format!("{why}; opens at {}", at(t)),
                ),
                WindowState::Closed { opens_at: None, why } => {
                    cond(ct::WINDOW_OPEN, "False", reason::WINDOW_CLOSED, format!("{why}; never opens again"))
                }
            });
        }
        // Keep the transition time of conditions whose status did not change; announce blocks.
        for c in new.iter_mut() {
            let old = self.o.status.conditions.iter().find(|o| o.type_ == c.type_);
            if let Some(old) = old
                && old.status == c.status
            {
                c.last_transition_time = old.last_transition_time;
            }
            let changed = old.is_none_or(|o| o.status != c.status || o.reason != c.reason);
            // (A held rollback's is announced by rollback_trigger, once.)
            if c.type_ == ct::BLOCKED
                && c.status == "True"
                && changed
                && let Some((reason, _)) = self.blocked
            {
                self.events.push(Note { warning: true, reason, action: "Block", message: c.message.clone() });
            }
        }
        // Waiting and pausing are announced too, once, when they begin.
        if phase != self.o.status.phase {
            let announce = match phase {
                Phase::WaitingForWindow => Some((reason::WINDOW_CLOSED, "Wait")),
                Phase::Paused => Some((reason::PAUSED, "Pause")),
                _ => None,
            };
            if let Some((reason, action)) = announce {
                self.note(false, reason, action, self.st.message.clone());
            }
        }
        self.st.conditions = new;
        let retry = self.notify();
        self.st.next_action = if phase.is_terminal() { None } else { self.next.clone() };
        let requeue_after = match retry {
            // Ended this look: the next releases the targets.
            _ if phase.is_terminal() && self.st.released_at.is_none() => Some(Duration::zero()),
            _ if phase.is_terminal() && self.effect.is_none() => {
                retry.map(|t| (t - now).max(Duration::zero()))
            }
            Some(t) => {
                self.requeue_at(t);
                self.requeue
            }
            None => self.requeue,
        };
        Decision { status: self.st, effect: self.effect, events: self.events, requeue_after }
    }
}

fn tf(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

#[cfg(test)]
#[path = "conditions_tests.rs"]
mod tests;

/// The most of what the API server said that `refused_status` keeps: an admission webhook's
/// message may be long.
const MAX_REFUSAL: usize = 1000;

/// `base` (the status decided from, every step in it made) with its Blocked condition saying
/// that the API server refuses the change the operator is making: `doing` (the decision's
/// message) and `refused` (what it said). The decision itself cannot be written, since what it
/// says was done was not; without this the status went on saying nothing blocked the upgrade.
/// None when `base` says so already.
pub fn refused_status(
    base: &MaintenanceUpgradeStatus,
    doing: &str,
    refused: &str,
    now: DateTime<Utc>,
    generation: Option<i64>,
) -> Option<MaintenanceUpgradeStatus> {
    let refused: String = match refused.char_indices().nth(MAX_REFUSAL) {
        Some((cut, _)) => format!("{}…", &refused[..cut]),
        None => refused.to_string(),
    };
    let message = format!(
        "{doing}; but the API server refuses it: {refused}; tried again up to once a minute until it goes \
         through (an admission policy or a missing permission needs a human)"
    );
    let mut st = base.clone();
    let old = st.conditions.iter().position(|c| c.type_ == ct::BLOCKED);
    let old_c = old.map(|i| &st.conditions[i]);
    // Said already: what the operator is doing may be worded anew at every retry (its counts).
    let said = format!("refuses it: {refused};");
    if old_c
        .is_some_and(|c| c.status == "True" && c.reason == reason::ACTION_FAILED && c.message.contains(&said))
    {
        return None;
    }
    let since = old_c.filter(|c| c.status == "True").map_or(now, |c| c.last_transition_time);
    let blocked = Condition {
        type_: ct::BLOCKED.into(),
        status: "True".into(),
        reason: reason::ACTION_FAILED.into(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    };
    match old {
        Some(i) => st.conditions[i] = blocked,
        None => st.conditions.push(blocked),
    }
    Some(st)
}
