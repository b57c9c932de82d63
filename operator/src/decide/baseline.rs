//! Decide step, pure: before the first change, measure the baseline, timed to end as the
//! window opens.

use super::analysis::{baseline_from_history, behind_on_reads, no_room};
use super::{BLOCKED_RETRY, Decider, plan::Plan};
use crate::constants::{condition as ct, reason};
use crate::crd::*;
use crate::detector::observed_seconds;
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
                        definition: s.canary_parent().is_none().then(|| self.definition_of(s)),
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
        // Live reads the looks fell behind on are read piece by piece: they are what the
        // baseline saw, so a baseline that looks short is judged once they are in (seconds),
        // not taken for an outage. Only then: a look that waits changes nothing, and one that
        // keeps failing to start the stage must not count as one that went through.
        let behind = |s: &&Signal| {
            let read_to = self.st.analysis.iter().find(|a| a.name == s.name).and_then(|a| a.sampled_to);
            s.prometheus.is_none() && read_to.is_some_and(|t| behind_on_reads(s, t, now, plan.interval))
        };
        let short = now >= ends && self.short_live_baseline(plan, observe).is_some();
        if short && let Some(s) = plan.signals.iter().find(behind) {
            let msg =
                format!("measuring the baseline: reading what signal {} missed since its last read", s.name);
            self.set_phase(Phase::MeasuringBaseline, msg);
            self.next("end the baseline", None);
            return false;
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
        // nothing changes on it: the upgrade is Blocked until one leaves room.
        if now >= ends && !self.room_to_judge(plan, observe) {
            return false;
        }
        // Blocked still, with what was found, while one observed live is measured again.
        let remeasuring =
            self.o.status.conditions.iter().find(|c| {
                c.type_ == ct::BLOCKED && c.status == "True" && c.reason == reason::BASELINE_NO_ROOM
            });
        if now < ends
            && let Some(c) = remeasuring
        {
            self.block(reason::BASELINE_NO_ROOM, c.message.clone());
            self.set_phase(Phase::MeasuringBaseline, c.message.clone());
            self.next("end the baseline measured again", Some(ends));
            return false;
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

    /// Whether every signal's baseline leaves room to tell a regression (`analysis::no_room`).
    /// When one does not, the upgrade is Blocked, saying what was found. A baseline observed
    /// live is measured again for `observe` from now, together with its canary's copy or the
    /// signal it copies, which the same failures filled; one from history is kept, and read
    /// again once a bucket (`history_due`) until the history leaves room.
    fn room_to_judge(&mut self, plan: &Plan, observe: Duration) -> bool {
        let now = self.now();
        // Each: its name, the signal it copies (or its own), the words, and whether observed live.
        let found: Vec<(String, String, String, bool)> = plan
            .signals
            .iter()
            .filter_map(|s| {
                let b = self.st.analysis.iter().find(|a| a.name == s.name)?.baseline.as_ref()?;
                let parent = s.canary_parent().unwrap_or(&s.name).to_string();
                Some((s.name.clone(), parent, no_room(s, b)?, !baseline_from_history(s, &self.st)))
            })
            .collect();
        if found.is_empty() {
            return true;
        }
        let again = found.iter().any(|(_, _, _, live)| *live);
        let ends = now + observe;
        if again {
            self.st.baseline_ends_at = Some(ends);
        }
        for (name, parent, words, live) in &found {
            let family = |a: &SignalStatus| a.name == *parent || a.name == canary_signal_name(parent);
            for a in self.st.analysis.iter_mut().filter(|a| if *live { family(a) } else { a.name == *name }) {
                if *live {
                    a.baseline = None;
                    a.baseline_limit = None;
                }
                a.reason = format!("{words}; nothing changes on it");
            }
        }
        let said: Vec<String> =
            found.iter().map(|(name, _, words, _)| format!("signal {name}: {words}")).collect();
        let msg = if again {
            format!(
                "{}; nothing changes on it: measuring it again until {} (if the signal always fails this much, \
                 count fewer pods with a labelSelector or a longer pendingLimit; a longer baseline, observe or \
                 the operator's recording, acts on smaller increases)",
                said.join("; "),
                at(ends)
            )
        } else {
            format!(
                "{}; nothing changes until its history leaves room, read again every bucket (if the signal always \
                 fails this much, count fewer failures with its query or labelSelector; a longer lookback acts \
                 on smaller increases)",
                said.join("; ")
            )
        };
        self.set_phase(Phase::MeasuringBaseline, msg.clone());
        self.block(reason::BASELINE_NO_ROOM, msg);
        let next = if again { ends } else { now + Duration::seconds(BLOCKED_RETRY) };
        self.next("measure the baseline again", Some(next));
        false
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
