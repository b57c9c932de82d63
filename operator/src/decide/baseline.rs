//! Decide step, pure: before the first change, measure the baseline, timed to end as the
//! window opens.

use super::analysis::baseline_from_history;
use super::{BLOCKED_RETRY, Decider, plan::Plan};
use crate::constants::reason;
use crate::crd::*;
use crate::detector::reach::Judged;
use crate::detector::{Cusum, observed_seconds};
use crate::timefmt::{at, duration};
use crate::window::WindowState;
use chrono::Duration;

impl Decider<'_> {
    /// Before the first change: measure the baseline, timed to end when the window opens.
    pub(super) fn baseline_ready(&mut self, plan: &Plan) -> bool {
        let now = self.now();
        let observe = if plan.needs_observation() { plan.observe } else { Duration::zero() };
        if self.st.baseline_started_at.is_none() {
            let start_at = match plan.schedule.state_at(now) {
                WindowState::Open { .. } => now,
                WindowState::Closed { opens_at: Some(t), why } => {
                    if now < t - observe {
                        self.set_phase(
                            Phase::WaitingForWindow,
                            format!(
                                "the maintenance window is closed ({why}); the baseline is measured from {} so that stage {} can start when it opens at {}",
                                at(t - observe),
                                self.st.stages[0].name,
                                at(t)
                            ),
                        );
                        self.next("start measuring the baseline", Some(t - observe));
                        return false;
                    }
                    now
                }
                WindowState::Closed { opens_at: None, why } => {
                    return self.end_unstarted(
                        plan.never_opens_reason(now),
                        format!("the maintenance window will not open again ({why})"),
                    );
                }
            };
            self.st.baseline_started_at = Some(start_at);
            self.st.baseline_ends_at = Some(start_at + observe);
            for s in &plan.signals {
                if !self.st.analysis.iter().any(|a| a.name == s.name) {
                    self.st.analysis.push(SignalStatus {
                        name: s.name.clone(),
                        sampled_to: Some(start_at),
                        ..Default::default()
                    });
                }
            }
            self.note(
                false,
                reason::MEASURING_BASELINE,
                "Baseline",
                format!("measuring the baseline until {}", at(start_at + observe)),
            );
        }
        let mut ends = self.st.baseline_ends_at.unwrap_or(now);
        // Every signal already has its baseline from history, the built-in ones from a recording
        // at least as long as `observe`: observing them live first would add nothing, so the
        // first stage does not wait for it.
        if now < ends && plan.signals.iter().all(|s| baseline_from_history(s, &self.st)) {
            ends = now;
            self.st.baseline_ends_at = Some(now);
        }
        // A live baseline partly hidden by an outage (its reads then blind) is too thin for the
        // verdicts it was meant for: measured on until what was seen covers the period to observe.
        if now >= ends
            && let Some((name, seen)) = self.short_live_baseline(plan, observe)
        {
            ends = now + (observe - seen);
            self.st.baseline_ends_at = Some(ends);
            self.note(
                true,
                reason::MEASURING_BASELINE,
                "Baseline",
                format!(
                    "the baseline of signal {name} covers only {} of the {} to observe (the API server or the operator was unavailable meanwhile); measuring it until {} before any change",
                    duration(seen),
                    duration(observe),
                    at(ends)
                ),
            );
        }
        // A baseline that leaves no room above it would let any regression through unseen, so
        // nothing changes on it. One observed live is measured again (the cluster was failing
        // while it was measured, most likely); one from history is read again on each look, and
        // blocks the upgrade until the history leaves room.
        if now >= ends {
            let mut blocked = vec![];
            for (name, words, live) in self.baselines_without_room(plan) {
                if let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == name) {
                    a.baseline = None;
                    a.baseline_limit = None;
                }
                if live {
                    ends = now + observe;
                    self.st.baseline_ends_at = Some(ends);
                    let msg = format!(
                        "signal {name}: {words}; measuring it again until {} before any change (if it always fails \
                         this much, count fewer pods: a labelSelector, or a longer pendingLimit)",
                        at(ends)
                    );
                    self.note(true, reason::BASELINE_NO_ROOM, "Baseline", msg);
                } else {
                    blocked.push(format!("signal {name}: {words}"));
                }
            }
            if !blocked.is_empty() {
                let msg = format!(
                    "{}; nothing changes until its history leaves room (read again every {BLOCKED_RETRY}s); if the \
                     signal always fails this much, count fewer failures (its query or labelSelector)",
                    blocked.join("; ")
                );
                self.set_phase(Phase::MeasuringBaseline, msg.clone());
                self.block(reason::BASELINE_NO_ROOM, msg);
                self.next("read the baseline's history again", Some(now + Duration::seconds(BLOCKED_RETRY)));
                return false;
            }
        }
        let missing: Vec<String> = plan
            .signals
            .iter()
            .filter(|s| !self.st.analysis.iter().any(|a| a.name == s.name && a.baseline.is_some()))
            .map(|s| s.name.clone())
            .collect();
        if now < ends || !missing.is_empty() {
            let msg = if now < ends {
                format!("measuring the baseline of the signals before any change, until {}", at(ends))
            } else {
                format!("waiting for a baseline of signal(s) {}", missing.join(", "))
            };
            self.set_phase(Phase::MeasuringBaseline, msg);
            self.next(
                "end the baseline",
                Some(ends.max(now + plan.interval.min(Duration::seconds(BLOCKED_RETRY)))),
            );
            return false;
        }
        true
    }

    /// The signals whose baseline leaves no room to tell a regression (`Cusum::no_room`): each
    /// one's name, the words, and whether it was observed live (not read from history).
    fn baselines_without_room(&self, plan: &Plan) -> Vec<(String, String, bool)> {
        plan.signals
            .iter()
            .filter_map(|s| {
                let b = self.st.analysis.iter().find(|a| a.name == s.name)?.baseline.as_ref()?;
                let judged = if s.canary_parent().is_some() { Judged::AtAControl } else { Judged::Alone };
                let words = Cusum { judged, ..Cusum::from_rule(&s.regression) }.no_room_words(b)?;
                Some((s.name.clone(), words, s.prometheus.is_none() && !b.recorded))
            })
            .collect()
    }

    /// A built-in signal observed live that saw less than `observe` (by more than one interval,
    /// the reads' own granularity): its name and how long it saw.
    fn short_live_baseline(&self, plan: &Plan, observe: Duration) -> Option<(String, Duration)> {
        plan.signals.iter().filter(|s| s.prometheus.is_none() && s.canary_parent().is_none()).find_map(|s| {
            let b = self.st.analysis.iter().find(|a| a.name == s.name)?.baseline.as_ref()?;
            // Bounded: whatever the status says, a wait is never longer than `observe`.
            let seen = Duration::milliseconds((observed_seconds(b) * 1000.0) as i64).min(observe);
            (!b.recorded && seen + plan.interval < observe).then(|| (s.name.clone(), seen))
        })
    }
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
