//! Decide step, pure: the spec parsed once into durations and the window, with errors a human
//! can act on.

use crate::constants::reason;
use crate::crd::*;
use crate::window::Schedule;
use chrono::{DateTime, Duration, Utc};

/// The spec parsed once: durations and the window, with errors a human can act on.
pub(super) struct Plan {
    pub(super) schedule: Schedule,
    pub(super) policy: StagePolicy,
    pub(super) interval: Duration,
    pub(super) observe: Duration,
    pub(super) soak: Vec<Duration>,
    pub(super) progress_deadline: Vec<Duration>,
    pub(super) signals: Vec<Signal>,
}

impl Plan {
    pub(super) fn parse(spec: &MaintenanceUpgradeSpec) -> Result<Plan, String> {
        Plan::parse_keeping(spec, false)
    }

    /// `parse`; with `readable_only`, a signal that cannot be read is left out of the plan
    /// instead of making it unusable. Every problem is named, not only the first, so that one
    /// fix is not followed by the next refusal.
    fn parse_keeping(spec: &MaintenanceUpgradeSpec, readable_only: bool) -> Result<Plan, String> {
        let mut problems = vec![];
        let schedule = noted(
            &mut problems,
            Schedule::parse(spec.window.as_ref()).map_err(|e| format!("spec.window: {e}")),
        );
        let mut soak = vec![];
        let mut progress_deadline = vec![];
        for s in &spec.stages {
            soak.extend(noted(
                &mut problems,
                s.soak.parse().map_err(|e| format!("stage {}: soak: {e}", s.name)),
            ));
            progress_deadline.extend(noted(
                &mut problems,
                s.progress_deadline.parse().map_err(|e| format!("stage {}: progressDeadline: {e}", s.name)),
            ));
        }
        let a = &spec.analysis;
        let interval =
            noted(&mut problems, a.interval.parse().map_err(|e| format!("spec.analysis.interval: {e}")));
        let observe = noted(
            &mut problems,
            a.baseline.observe.parse().map_err(|e| format!("spec.analysis.baseline.observe: {e}")),
        );
        let mut signals = spec.effective_signals();
        if readable_only {
            signals.retain(|s| signal_problem(s).is_none());
        } else {
            problems.extend(signals.iter().filter_map(signal_problem));
        }
        if spec.stages.is_empty() {
            problems.push("spec.stages: at least one stage is needed".into());
        }
        let policy = spec.window.as_ref().map(|w| w.stage_policy).unwrap_or_default();
        let longest = schedule.as_ref().and_then(Schedule::longest_opening);
        if let (StagePolicy::WaitForNextWindow, Some(longest), true) =
            (policy, longest, progress_deadline.len() == spec.stages.len())
        {
            for (s, pd) in spec.stages.iter().zip(&progress_deadline) {
                if *pd > longest {
                    problems.push(format!(
                        "stage {}: progressDeadline {} is longer than every maintenance window, so under window.stagePolicy WaitForNextWindow it could never start; \
shorten it or set stagePolicy to Continue",
                        s.name, s.progress_deadline.0
                    ));
                }
            }
        }
        match (schedule, interval, observe) {
            (Some(schedule), Some(interval), Some(observe)) if problems.is_empty() => {
                Ok(Plan { schedule, policy, interval, observe, soak, progress_deadline, signals })
            }
            _ => Err(problems.join("; ")),
        }
    }

    /// What the API server's bounds on the work of one upgrade refuse, checked again for a spec
    /// written around them. Held, not a parse error: an upgrade in flight goes on being judged
    /// and rolled back, and only its next stage waits.
    fn over_limits(spec: &MaintenanceUpgradeSpec, plan: &Plan) -> Option<String> {
        let a = &spec.analysis;
        let lookback = match a.baseline.lookback.parse() {
            Ok(l) => l,
            Err(e) => return Some(format!("spec.analysis.baseline.lookback: {e}")),
        };
        if lookback > Duration::hours(MAX_LOOKBACK_HOURS) {
            return Some(format!(
                "spec.analysis.baseline.lookback {} is longer than {MAX_LOOKBACK_HOURS}h (a week)",
                a.baseline.lookback.0
            ));
        }
        // One read judged as one bucket: longer reads would each be one capped step.
        if let Some(s) = plan
            .signals
            .iter()
            .find(|s| crate::detector::Cusum::from_rule(&s.regression).bucket < plan.interval)
        {
            return Some(format!(
                "analysis.interval {} is longer than signal {}'s regression.bucket ({}): a read longer than a bucket is \
                 judged as one bucket, so a regression would take hours of reads to be told; read more often, or \
                 lengthen regression.bucket",
                a.interval.0,
                s.name,
                crate::timefmt::duration(crate::detector::Cusum::from_rule(&s.regression).bucket)
            ));
        }
        let intervals = lookback.num_seconds() / plan.interval.num_seconds().max(1);
        let prometheus = plan.signals.iter().any(|s| s.prometheus.is_some());
        (prometheus && intervals > MAX_LOOKBACK_INTERVALS).then(|| {
            format!(
                "with a Prometheus signal, baseline.lookback may span at most {MAX_LOOKBACK_INTERVALS} intervals \
                 and {} / {} is {intervals}: lengthen analysis.interval or shorten baseline.lookback",
                a.baseline.lookback.0, a.interval.0
            )
        })
    }

    /// The plan of an upgrade, and why its spec cannot be used as it is. Once its targets are
    /// claimed (something may have changed), a spec edited into something unusable must not switch off the analysis and the
    /// rollback: they go on with the window put aside (a rollback does not wait for it), while
    /// nothing moves forward until the spec is fixed. Its signals include the canary's copies
    /// of the built-in ones, while a DaemonSet canary runs (`crd::canary_signal`).
    pub(super) fn for_upgrade(
        spec: &MaintenanceUpgradeSpec,
        status: &MaintenanceUpgradeStatus,
    ) -> Result<(Plan, Option<String>), String> {
        let mut result = Plan::parse_for(spec, status);
        if let Ok((plan, _)) = result.as_mut() {
            plan.follow_canary(spec, status);
        }
        result
    }

    /// The canary's copies of the built-in signals as `status` has them: a look that retires
    /// one (the canary handed over) or moves it judges it no more on what was read before.
    /// Only the copies of signals the plan holds: one left out as unreadable stays out.
    pub(super) fn follow_canary(&mut self, spec: &MaintenanceUpgradeSpec, status: &MaintenanceUpgradeStatus) {
        self.signals.retain(|s| s.canary_parent().is_none());
        let held: Vec<String> = self.signals.iter().map(|s| s.name.clone()).collect();
        let copies = spec.canary_signals(status).into_iter();
        self.signals
            .extend(copies.filter(|c| c.canary_parent().is_some_and(|p| held.iter().any(|h| h == p))));
    }

    fn parse_for(
        spec: &MaintenanceUpgradeSpec,
        status: &MaintenanceUpgradeStatus,
    ) -> Result<(Plan, Option<String>), String> {
        match Plan::parse(spec) {
            Ok(plan) => {
                // Held, not unusable: a query edited mid-soak must not stop the rollback.
                let over: Vec<String> =
                    Plan::over_limits(spec, &plan).into_iter().chain(spec.placeholder_problem()).collect();
                Ok((plan, (!over.is_empty()).then(|| over.join("; "))))
            }
            // Without the window, and without a signal edited into one that cannot be read: the
            // others are still judged, and a rollback (a deletion's included) still reverts. From
            // the claim on, not only once a change is recorded: the status write that records the
            // first change may have been lost, and the look must still find it.
            Err(e) if status.changed_at.is_some() || status.claimed_at.is_some() => {
                match Plan::parse_keeping(&MaintenanceUpgradeSpec { window: None, ..spec.clone() }, true) {
                    Ok(plan) => Ok((
                        plan,
                        Some(format!(
                            "{e}; analysis (of the signals that can be read) and automatic rollback go on, \
                             without waiting for a window"
                        )),
                    )),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A stage's progress deadline (the default if the status lists more stages than the spec).
    pub(super) fn progress_deadline(&self, si: usize) -> Duration {
        self.progress_deadline.get(si).copied().unwrap_or(Duration::minutes(10))
    }

    /// Why the window will not open again: its deadline has passed, or nothing is left before it.
    pub(super) fn never_opens_reason(&self, now: DateTime<Utc>) -> &'static str {
        if self.schedule.deadline().is_some_and(|d| now >= d) {
            reason::DEADLINE_EXCEEDED
        } else {
            reason::WINDOW_NEVER_OPENS
        }
    }

    /// Signals whose baseline is observed live before the change (no history to query).
    pub(super) fn needs_observation(&self) -> bool {
        self.signals.iter().any(|s| s.kubernetes.is_some())
    }
}

/// `r`'s value, or None with its error added to `problems`.
fn noted<T>(problems: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
    r.map_err(|e| problems.push(e)).ok()
}

/// Why signal `s` cannot be read, as a human fixes it.
fn signal_problem(s: &Signal) -> Option<String> {
    if s.kubernetes.is_some() == s.prometheus.is_some() {
        return Some(format!("signal {}: needs exactly one provider, kubernetes or prometheus", s.name));
    }
    let k = s.kubernetes.as_ref()?;
    if let Err(e) = k.pending_limit.parse() {
        return Some(format!("signal {}: pendingLimit: {e}", s.name));
    }
    let selector = k.label_selector.as_deref()?;
    crate::signals::selector::parse(selector).err().map(|e| format!("signal {}: {e}", s.name))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
