//! Decide step, pure: observed state + clock → the next status, at most one change to a target,
//! the Events to publish and when to look again. No client; every transition is unit-tested.
//!
//! Restart safety: everything needed to continue is in the status or on the targets, and every
//! target change is recognised as done when observed, so a step is never repeated or lost.

use crate::constants::{condition as ct, reason};
use crate::crd::*;
use crate::detector::{Counts, Cusum, Detector, fit_baseline, observe_baseline, pct};
use crate::target::{Rollout, TargetKey, TargetState, known_good_value};
use crate::window::{Schedule, WindowState};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// One provider read: counts over `[from, to)` or why it failed.
pub type SampleResult = Result<(Counts, DateTime<Utc>, DateTime<Utc>), String>;
/// Pre-change history: per-interval counts (end of each interval, counts), or why it failed.
pub type HistoryResult = Result<Vec<(DateTime<Utc>, Counts)>, String>;

/// Everything the decide step looks at.
#[derive(Clone, Debug)]
pub struct Observed {
    /// `namespace/name` of this MaintenanceUpgrade; written on targets it owns.
    pub id: String,
    /// This upgrade's UID, written on its targets beside `id`.
    pub uid: String,
    pub namespace: String,
    pub generation: i64,
    pub spec: MaintenanceUpgradeSpec,
    pub status: MaintenanceUpgradeStatus,
    /// Every target the spec names or the status records; `None` when it does not exist.
    pub targets: BTreeMap<TargetKey, Option<TargetState>>,
    /// Other upgrades named as owners on those targets that still exist. An owner that was
    /// deleted before it released its targets no longer holds them.
    pub live_owners: std::collections::BTreeSet<String>,
    /// Signal reads for the spans `analysis_due` asked for.
    pub samples: BTreeMap<String, SampleResult>,
    /// Pre-change history of signals that have it (Prometheus), when `history_due` asked for it.
    pub history: BTreeMap<String, HistoryResult>,
    pub now: DateTime<Utc>,
}

/// A change to one target. The act step sends it before writing the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Mark the target as owned by this upgrade and record its known-good image on it.
    Claim { target: TargetKey, resource_version: String, owner_uid: String, known_good: String },
    /// Set one container's image, only if the target is still at `resource_version`.
    SetImage { target: TargetKey, resource_version: String, container: String, image: String },
    /// Remove this upgrade's annotations from the targets it still owns.
    Release { targets: Vec<TargetKey> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Decision {
    pub status: MaintenanceUpgradeStatus,
    pub effect: Option<Effect>,
    pub events: Vec<Note>,
    /// Look again after this long (None: only when something changes).
    pub requeue_after: Option<Duration>,
}

/// The spec parsed once: durations and the window, with errors a human can act on.
struct Plan {
    schedule: Schedule,
    policy: StagePolicy,
    interval: Duration,
    observe: Duration,
    soak: Vec<Duration>,
    progress_deadline: Vec<Duration>,
    signals: Vec<Signal>,
}

impl Plan {
    fn parse(spec: &MaintenanceUpgradeSpec) -> Result<Plan, String> {
        let schedule = Schedule::parse(spec.window.as_ref()).map_err(|e| format!("spec.window: {e}"))?;
        let mut soak = vec![];
        let mut progress_deadline = vec![];
        for s in &spec.stages {
            soak.push(s.soak.parse().map_err(|e| format!("stage {}: soak: {e}", s.name))?);
            progress_deadline.push(s.progress_deadline.parse().map_err(|e| format!("stage {}: progressDeadline: {e}", s.name))?);
        }
        let a = &spec.analysis;
        let signals = spec.effective_signals();
        for s in &signals {
            if s.kubernetes.is_some() == s.prometheus.is_some() {
                return Err(format!("signal {}: needs exactly one provider, kubernetes or prometheus", s.name));
            }
            if let Some(k) = &s.kubernetes {
                k.pending_limit.parse().map_err(|e| format!("signal {}: pendingLimit: {e}", s.name))?;
            }
        }
        if spec.stages.is_empty() {
            return Err("spec.stages: at least one stage is needed".into());
        }
        let policy = spec.window.as_ref().map(|w| w.stage_policy).unwrap_or_default();
        if let (StagePolicy::WaitForNextWindow, Some(longest)) = (policy, schedule.longest_opening()) {
            for (s, pd) in spec.stages.iter().zip(&progress_deadline) {
                if *pd > longest {
                    return Err(format!(
                        "stage {}: progressDeadline {} is longer than every maintenance window, so under window.stagePolicy WaitForNextWindow it could never start; \
shorten it or set stagePolicy to Continue",
                        s.name, s.progress_deadline.0
                    ));
                }
            }
        }
        Ok(Plan {
            schedule,
            policy,
            interval: a.interval.parse().map_err(|e| format!("spec.analysis.interval: {e}"))?,
            observe: a.baseline.observe.parse().map_err(|e| format!("spec.analysis.baseline.observe: {e}"))?,
            soak,
            progress_deadline,
            signals,
        })
    }

    /// The plan of an upgrade, and why its spec cannot be used as it is. Once something has
    /// changed, a spec edited into something unusable must not switch off the analysis and the
    /// rollback: they go on with the window put aside (a rollback does not wait for it), while
    /// nothing moves forward until the spec is fixed.
    fn for_upgrade(spec: &MaintenanceUpgradeSpec, status: &MaintenanceUpgradeStatus) -> Result<(Plan, Option<String>), String> {
        match Plan::parse(spec) {
            Ok(plan) => Ok((plan, None)),
            Err(e) if status.changed_at.is_some() => match Plan::parse(&MaintenanceUpgradeSpec { window: None, ..spec.clone() }) {
                Ok(plan) => Ok((plan, Some(format!("{e}; analysis and automatic rollback go on, without waiting for a window")))),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// A stage's progress deadline (the default if the status lists more stages than the spec).
    fn progress_deadline(&self, si: usize) -> Duration {
        self.progress_deadline.get(si).copied().unwrap_or(Duration::minutes(10))
    }

    /// Why the window will not open again: its deadline has passed, or nothing is left before it.
    fn never_opens_reason(&self, now: DateTime<Utc>) -> &'static str {
        if self.schedule.deadline().is_some_and(|d| now >= d) { reason::DEADLINE_EXCEEDED } else { reason::WINDOW_NEVER_OPENS }
    }

    /// Signals whose baseline is observed live before the change (no history to query).
    fn needs_observation(&self) -> bool {
        self.signals.iter().any(|s| s.kubernetes.is_some())
    }
}

/// How often rollouts are polled: targets are not watched.
const ROLLOUT_POLL: i64 = 2;
/// A live read longer than this many intervals covers a span the operator could not see.
const BLIND_INTERVALS: i32 = 3;
/// How long to wait before looking again at something only a human or another upgrade can fix.
const BLOCKED_RETRY: i64 = 30;

/// Which signals should be read now, and from when (the observe step reads `[from, now)`).
pub fn analysis_due(spec: &MaintenanceUpgradeSpec, status: &MaintenanceUpgradeStatus, now: DateTime<Utc>) -> Vec<(Signal, DateTime<Utc>)> {
    let Ok((plan, _)) = Plan::for_upgrade(spec, status) else { return vec![] };
    let Some(started) = status.baseline_started_at else { return vec![] };
    if status.phase.is_terminal() || status.rollback.is_some() {
        return vec![];
    }
    plan.signals
        .into_iter()
        .filter_map(|s| {
            let from = status.analysis.iter().find(|a| a.name == s.name).and_then(|a| a.sampled_to).unwrap_or(started);
            (now >= from + plan.interval).then_some((s, from))
        })
        .collect()
}

/// Which signals need their pre-change history read now: those with history (Prometheus)
/// whose baseline is not recorded yet, once the baseline period has begun.
pub fn history_due(spec: &MaintenanceUpgradeSpec, status: &MaintenanceUpgradeStatus) -> Vec<Signal> {
    if status.baseline_started_at.is_none() || status.changed_at.is_some() || status.phase.is_terminal() {
        return vec![];
    }
    spec.effective_signals()
        .into_iter()
        .filter(|s| s.prometheus.is_some())
        .filter(|s| !status.analysis.iter().any(|a| a.name == s.name && a.baseline.is_some()))
        .collect()
}

pub fn decide(o: &Observed) -> Decision {
    let mut d = Decider { o, st: o.status.clone(), effect: None, events: vec![], requeue: None, blocked: None, next: None, held: false };
    d.st.observed_generation = Some(o.generation);
    if d.st.phase.is_terminal() {
        return Decision { status: d.st, effect: None, events: vec![], requeue_after: None };
    }
    match Plan::for_upgrade(&o.spec, &o.status) {
        Ok((plan, invalid)) => d.run(&plan, invalid),
        Err(e) => {
            d.block(reason::INVALID_SPEC, format!("the spec cannot be used: {e}; fix it and the upgrade continues"));
            d.st.message = d.blocked.as_ref().unwrap().1.clone();
        }
    }
    d.finish()
}

struct Decider<'a> {
    o: &'a Observed,
    st: MaintenanceUpgradeStatus,
    effect: Option<Effect>,
    events: Vec<Note>,
    requeue: Option<Duration>,
    blocked: Option<(&'static str, String)>,
    next: Option<NextAction>,
    /// A rollback is due but waits (for a human or for the window): nothing moves forward.
    held: bool,
}

impl<'a> Decider<'a> {
    fn now(&self) -> DateTime<Utc> {
        self.o.now
    }

    fn note(&mut self, warning: bool, reason: &'static str, action: &'static str, message: String) {
        self.events.push(Note { warning, reason, action, message });
    }

    fn block(&mut self, reason: &'static str, message: String) {
        self.blocked = Some((reason, message));
        self.requeue_in(Duration::seconds(BLOCKED_RETRY));
    }

    fn requeue_in(&mut self, after: Duration) {
        let after = after.max(Duration::zero());
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    fn requeue_at(&mut self, at: DateTime<Utc>) {
        self.requeue_in(at - self.now());
    }

    fn next(&mut self, summary: impl Into<String>, at: Option<DateTime<Utc>>) {
        self.next = Some(NextAction { summary: summary.into(), at });
        if let Some(at) = at {
            self.requeue_at(at);
        }
    }

    fn set_phase(&mut self, phase: Phase, message: String) {
        self.st.phase = phase;
        self.st.message = message;
    }

    fn target(&self, c: &ComponentStatus) -> (TargetKey, Option<&'a TargetState>) {
        let key = TargetKey { kind: c.kind, namespace: c.namespace.clone(), name: c.name.clone() };
        let state = self.o.targets.get(&key).and_then(|t| t.as_ref());
        (key, state)
    }

    fn run(&mut self, plan: &Plan, invalid: Option<String>) {
        self.init_stages();
        let invalid = invalid.or_else(|| self.spec_problem());
        self.observe_components();
        self.analyse(plan);
        if self.st.rollback.is_none() {
            if let Some((why, message)) = self.rollback_trigger(plan) {
                self.start_rollback(why, message);
            }
        }
        if self.st.rollback.is_some() {
            return self.roll_back(plan);
        }
        match invalid {
            Some(e) if !self.held => {
                let msg = format!("the spec cannot be used: {e}; no stage starts or is promoted until it is fixed");
                self.st.message = msg.clone();
                self.block(reason::INVALID_SPEC, msg);
            }
            Some(_) => {}
            None => self.advance(plan),
        }
        // Look again when the next sample is due, whatever else is awaited.
        if let Some(next) = self.next_sample_at(plan).filter(|_| !self.st.phase.is_terminal()) {
            self.requeue_at(next);
        }
    }

    fn init_stages(&mut self) {
        if !self.st.stages.is_empty() {
            return;
        }
        let ns = &self.o.namespace;
        self.st.stages = self
            .o
            .spec
            .stages
            .iter()
            .map(|s| StageStatus {
                name: s.name.clone(),
                phase: StagePhase::Pending,
                started_at: None,
                rolled_out_at: None,
                soak_ends_at: None,
                passed_at: None,
                reverted_at: None,
                components: s
                    .components
                    .iter()
                    .map(|c| ComponentStatus {
                        kind: c.kind,
                        namespace: c.namespace_or(ns).to_string(),
                        name: c.name.clone(),
                        container: None,
                        known_good_image: None,
                        known_good_digest: None,
                        desired_image: c.image.clone(),
                        phase: ComponentPhase::Pending,
                        applied_at: None,
                        reverted_at: None,
                        message: None,
                    })
                    .collect(),
            })
            .collect();
        self.set_phase(Phase::Pending, "checking the targets".into());
    }

    /// What the API server's rules cannot see: a target named twice (once with its namespace
    /// written out, once without), or stages that no longer match the status (the stages are
    /// immutable; this guards against an object written around the validation).
    fn spec_problem(&self) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.o.spec.stages {
            for c in &s.components {
                if !seen.insert((c.kind, c.namespace_or(&self.o.namespace).to_string(), c.name.clone())) {
                    return Some(format!("{:?} {}/{} is listed twice; list each target once", c.kind, c.namespace_or(&self.o.namespace), c.name));
                }
            }
        }
        let same = self.o.spec.stages.len() == self.st.stages.len()
            && self.o.spec.stages.iter().zip(&self.st.stages).all(|(s, st)| {
                s.name == st.name
                    && s.components.len() == st.components.len()
                    && s.components
                        .iter()
                        .zip(&st.components)
                        .all(|(c, cs)| c.kind == cs.kind && c.name == cs.name && c.namespace_or(&self.o.namespace) == cs.namespace)
            });
        (!same).then(|| "spec.stages no longer matches the stages this upgrade started with; restore them, or create a new MaintenanceUpgrade".to_string())
    }

    /// Compare each claimed target with what this upgrade expects it to run; a target that
    /// runs something else was changed by someone else and is left alone from now on.
    fn observe_components(&mut self) {
        for si in 0..self.st.stages.len() {
            for ci in 0..self.st.stages[si].components.len() {
                let c = self.st.stages[si].components[ci].clone();
                let expected: &[&str] = match c.phase {
                    ComponentPhase::Claimed => &[c.known_good_image.as_deref().unwrap_or_default(), &c.desired_image],
                    ComponentPhase::Applied => &[&c.desired_image],
                    ComponentPhase::Reverted => &[c.known_good_image.as_deref().unwrap_or_default()],
                    _ => continue,
                };
                let (key, t) = self.target(&c);
                let container = c.container.clone().unwrap_or_default();
                // A claimed target that already runs the new image was changed before a status
                // write was lost: it counts as applied from now on, whatever the gates say now, so
                // that it is watched and, if need be, reverted (its Events went out with the change).
                let running = t.and_then(|t| t.image(&container));
                let known_good = c.known_good_image.as_deref().unwrap_or_default();
                if c.phase == ComponentPhase::Claimed && running == Some(c.desired_image.as_str()) && known_good != c.desired_image {
                    let now = self.now();
                    let stage = &mut self.st.stages[si];
                    if stage.phase == StagePhase::Pending {
                        stage.phase = StagePhase::RollingOut;
                        stage.started_at = Some(now);
                    }
                    stage.components[ci].phase = ComponentPhase::Applied;
                    stage.components[ci].applied_at = Some(now);
                    self.st.changed_at.get_or_insert(now);
                    continue;
                }
                // A changed target found back on its known-good image was reverted before a status
                // write was lost, or by hand: either way it is reverted, and the rest follows.
                if c.phase == ComponentPhase::Applied && running == Some(known_good) && known_good != c.desired_image {
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Reverted;
                    cs.reverted_at = Some(self.o.now);
                    cs.message = Some(format!("{key} is back on its known-good image {known_good}"));
                    continue;
                }
                let conflict = match t {
                    None if c.phase == ComponentPhase::Reverted => None,
                    None => {
                        let cs = &mut self.st.stages[si].components[ci];
                        cs.phase = ComponentPhase::Gone;
                        cs.message = Some(format!("{key} was deleted"));
                        self.note(true, reason::TARGET_DELETED, "Observe", format!("{key} was deleted during the upgrade"));
                        continue;
                    }
                    Some(t) => match t.image(&container) {
                        None => Some(format!("container {container:?} was removed from {key}")),
                        Some(img) if !expected.contains(&img) => Some(format!(
                            "{key} container {container} runs {img}, which this upgrade did not set (expected {}); the operator no longer touches it",
                            expected.join(" or ")
                        )),
                        Some(_) if t.owner.as_deref() != Some(self.o.id.as_str()) && c.phase != ComponentPhase::Reverted => {
                            Some(format!("{key} is no longer marked as owned by this upgrade; the operator no longer touches it"))
                        }
                        Some(_) => None,
                    },
                };
                if let Some(msg) = conflict {
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Conflict;
                    cs.message = Some(msg.clone());
                    self.note(true, reason::CHANGED_EXTERNALLY, "Observe", msg);
                }
            }
        }
    }

    fn components(&self) -> impl Iterator<Item = &ComponentStatus> {
        self.st.stages.iter().flat_map(|s| s.components.iter())
    }

    fn any_applied(&self) -> bool {
        self.components().any(|c| c.applied_at.is_some())
    }

    // ---------------------------------------------------------------------------------------
    // Analysis

    fn analyse(&mut self, plan: &Plan) {
        let now = self.now();
        for s in &plan.signals {
            if !self.st.analysis.iter().any(|a| a.name == s.name) && self.st.baseline_started_at.is_some() {
                self.st.analysis.push(SignalStatus { name: s.name.clone(), ..Default::default() });
            }
        }
        // Pre-change history becomes the baseline of signals that have it.
        for s in &plan.signals {
            let Some(result) = self.o.history.get(&s.name) else { continue };
            let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == s.name) else { continue };
            match result {
                Ok(points) if !points.is_empty() => {
                    let b = fit_baseline(points, Cusum::from_rule(&s.regression).bucket);
                    a.reason = format!("baseline {} over {} attempts before the change", pct(b.rate), b.attempts);
                    a.baseline = Some(b);
                }
                Ok(_) => a.reason = "the baseline history is empty; retrying".into(),
                Err(e) => a.reason = format!("could not read the baseline history: {e}; retrying"),
            }
        }
        let changed = self.st.changed_at.is_some();
        let mut notes = vec![];
        for s in &plan.signals {
            let Some(result) = self.o.samples.get(&s.name) else { continue };
            let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == s.name) else { continue };
            let (counts, from, to) = match result {
                Ok(ok) => *ok,
                Err(e) => {
                    // Never counted as a pass nor a failure: the span is read again next time.
                    // A read that says nothing does not erase a regression already found.
                    if a.verdict != Verdict::Regression {
                        a.verdict = Verdict::Inconclusive;
                    }
                    a.reason = format!("could not read the signal: {e}; neither promoting nor reverting until it can be read");
                    a.analysed_at = Some(now);
                    continue;
                }
            };
            a.sampled_to = Some(to);
            // A live read spanning several intervals means the operator could not see the
            // cluster (API server or operator down). Pods created during such a gap were held
            // up by whatever hid it, not by the upgrade, so they are not judged. Prometheus
            // keeps history, so a long span there is simply read late.
            // Pods are judged `pendingLimit` after creation, so the cohorts of the next reads
            // still hold pods created during the gap: those are not judged either.
            let pending_limit = s.kubernetes.as_ref().and_then(|k| k.pending_limit.parse().ok()).unwrap_or_else(Duration::zero);
            let blind = s.prometheus.is_none() && to - from > plan.interval * BLIND_INTERVALS;
            if blind {
                a.unjudged_until = Some(to + pending_limit);
            }
            if blind || a.unjudged_until.is_some_and(|u| from < u) {
                if a.verdict != Verdict::Regression {
                    a.verdict = Verdict::Inconclusive;
                }
                let until = a.unjudged_until.unwrap_or(to);
                a.reason = format!(
                    "the signal could not be read from {} to {} (API server or operator unavailable); pods created until then are not judged, analysis resumes at {}",
                    from.format("%H:%M:%S"),
                    (until - pending_limit).format("%H:%M:%S"),
                    at(until)
                );
                a.analysed_at = Some(now);
                continue;
            }
            a.last = Some(rate_window(counts, Some(from), Some(to)));
            if !changed {
                // Before the change, live reads build the baseline of signals without history.
                if s.prometheus.is_none() {
                    let b = a.baseline.get_or_insert_with(Default::default);
                    observe_baseline(b, to, from, counts);
                    a.reason = format!("measuring the baseline: {} over {} attempts so far", pct(b.rate), b.attempts);
                }
                continue;
            }
            let soak = a.soak.as_ref().map(|b| Counts { attempts: b.attempts.max(0) as u64, errors: b.errors.max(0) as u64 }).unwrap_or_default();
            let soak_from = a.soak.as_ref().and_then(|b| b.from).unwrap_or(from);
            a.soak = Some(rate_window(soak.add(counts), Some(soak_from), Some(to)));
            let Some(b) = a.baseline.clone() else {
                a.verdict = Verdict::Inconclusive;
                a.reason = "no baseline was measured for this signal".into();
                a.analysed_at = Some(now);
                continue;
            };
            let was_suspect = a.detector.suspect_since.is_some();
            let r = Cusum::from_rule(&s.regression).update(&mut a.detector, &b, to, counts);
            match (was_suspect, r.verdict) {
                (false, Verdict::Suspect) => notes.push((true, reason::SUSPECTED, format!("signal {}: {}", a.name, r.reason))),
                (true, Verdict::Pass) => notes.push((false, reason::SUSPICION_CLEARED, format!("signal {}: {}", a.name, r.reason))),
                _ => {}
            }
            a.verdict = r.verdict;
            a.reason = r.reason;
            a.statistic = Some(r.statistic);
            a.threshold = Some(r.threshold);
            a.excess_errors = Some(r.excess_errors);
            a.analysed_at = Some(now);
        }
        for (warning, reason, message) in notes {
            self.note(warning, reason, "Analyse", message);
        }
    }

    fn next_sample_at(&self, plan: &Plan) -> Option<DateTime<Utc>> {
        let started = self.st.baseline_started_at?;
        plan.signals.iter().map(|s| self.st.analysis.iter().find(|a| a.name == s.name).and_then(|a| a.sampled_to).unwrap_or(started) + plan.interval).min()
    }

    fn regression(&self) -> Option<String> {
        self.st.analysis.iter().find(|a| a.verdict == Verdict::Regression).map(|a| format!("signal {}: {}", a.name, a.reason))
    }

    // ---------------------------------------------------------------------------------------
    // Rollback

    fn rollback_trigger(&mut self, plan: &Plan) -> Option<(&'static str, String)> {
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
            let why = format!("{} (reverted before a restart, or by hand); the other changed components follow", c.message.clone().unwrap_or_default());
            trigger.get_or_insert((reason::REVERTED, why));
        }
        if let Some(c) = self.components().find(|c| c.phase == ComponentPhase::Gone && c.applied_at.is_some()) {
            trigger.get_or_insert((reason::TARGET_DELETED, format!("{:?} {}/{} was deleted after it was changed", c.kind, c.namespace, c.name)));
        }
        if let Some(why) = self.rollout_failure(plan) {
            trigger.get_or_insert((reason::ROLLOUT_FAILED, why));
        }
        // Stages left that can never start: the upgrade cannot finish, so it is reverted.
        let window = plan.schedule.state_at(self.now());
        if let WindowState::Closed { opens_at: None, why } = &window {
            if let Some(s) = self.st.stages.iter().find(|s| s.phase == StagePhase::Pending) {
                let r = plan.never_opens_reason(self.now());
                trigger.get_or_insert(match plan.schedule.deadline() {
                    Some(d) if r == reason::DEADLINE_EXCEEDED => (r, format!("stage {} had not started by the deadline {}", s.name, at(d))),
                    _ => (r, format!("stage {} cannot start: the maintenance window will not open again ({why})", s.name)),
                });
            }
        }
        let (why, message) = trigger?;
        if !self.o.spec.rollback.automatic {
            self.held = true;
            self.set_phase(
                Phase::Degraded,
                format!("{message}. Automatic rollback is off: set spec.rollback.requested to true to revert, nothing else happens until then"),
            );
            self.next("wait for a human: spec.rollback.requested", None);
            self.note_once(reason::AUTOMATIC_ROLLBACK_DISABLED, &message);
            return None;
        }
        if !self.o.spec.rollback.outside_window {
            // A window that never opens again cannot be waited for: the rollback goes ahead.
            if let WindowState::Closed { opens_at: Some(opens_at), .. } = window {
                self.held = true;
                self.set_phase(Phase::Degraded, format!("{message}. The rollback waits for the maintenance window (rollback.outsideWindow is false)"));
                self.next("roll back when the window opens", Some(opens_at));
                self.note_once(reason::ROLLBACK_WAITS_FOR_WINDOW, &message);
                return None;
            }
        }
        Some((why, message))
    }

    /// An Event only when the phase first becomes Degraded, not on every look.
    fn note_once(&mut self, reason: &'static str, message: &str) {
        if self.o.status.phase != Phase::Degraded {
            self.note(true, reason, "Analyse", message.to_string());
        }
    }

    fn rollout_failure(&self, plan: &Plan) -> Option<String> {
        for (i, s) in self.st.stages.iter().enumerate() {
            if s.phase != StagePhase::RollingOut {
                continue;
            }
            for c in &s.components {
                if c.phase != ComponentPhase::Applied {
                    continue;
                }
                if let (_, Some(t)) = self.target(c) {
                    if let Rollout::Failed(why) = &t.rollout {
                        return Some(format!("{:?} {}/{}: {why}", c.kind, c.namespace, c.name));
                    }
                }
            }
            let started = s.started_at?;
            let limit = plan.progress_deadline(i);
            if self.now() > started + limit {
                return Some(format!(
                    "stage {} did not roll out within its progress deadline of {}",
                    s.name,
                    humantime::format_duration(limit.to_std().unwrap_or_default())
                ));
            }
        }
        None
    }

    fn start_rollback(&mut self, why: &'static str, message: String) {
        self.st.rollback = Some(RollbackStatus { reason: why.to_string(), message: message.clone(), started_at: self.now(), completed_at: None });
        self.note(true, why, "RollBack", format!("rolling back to the known-good images: {message}"));
    }

    fn roll_back(&mut self, plan: &Plan) {
        let why = self.st.rollback.as_ref().map(|r| r.message.clone()).unwrap_or_default();
        // Last stage first; within a stage, last component first.
        for si in (0..self.st.stages.len()).rev() {
            if matches!(self.st.stages[si].phase, StagePhase::Pending | StagePhase::RolledBack) {
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
                let cs = &mut self.st.stages[si].components[ci];
                cs.phase = ComponentPhase::Reverted;
                cs.reverted_at = Some(self.o.now);
                if t.image(&container) == Some(known_good.as_str()) {
                    continue; // reverted before a restart; nothing to send
                }
                self.effect = Some(Effect::SetImage {
                    target: key.clone(),
                    resource_version: t.resource_version.clone(),
                    container: container.clone(),
                    image: known_good.clone(),
                });
                self.note(false, reason::REVERTED, "Revert", format!("{key} container {container} set back to {known_good}"));
                self.set_phase(Phase::RollingBack, format!("reverting stage {stage_name}: {key} back to {known_good} ({why})"));
                self.next(format!("wait for the revert of stage {stage_name} to roll out"), None);
                self.requeue_in(Duration::zero());
                return;
            }
            // Every component of this stage is reverted: wait for the rollouts, bounded by the
            // stage's progress deadline so that one stuck target cannot hold the others.
            let reverted: Vec<ComponentStatus> = self.st.stages[si].components.iter().filter(|c| c.phase == ComponentPhase::Reverted).cloned().collect();
            let waiting: Vec<String> = reverted
                .iter()
                .filter_map(|c| match self.target(c) {
                    (key, Some(t)) if t.rollout != Rollout::Complete => Some(format!("{key}")),
                    _ => None,
                })
                .collect();
            let last_revert = reverted.iter().filter_map(|c| c.reverted_at).max().unwrap_or(self.now());
            let give_up = last_revert + plan.progress_deadline(si);
            if !waiting.is_empty() && self.now() < give_up {
                self.set_phase(Phase::RollingBack, format!("waiting for the revert of stage {stage_name} to roll out: {} ({why})", waiting.join(", ")));
                self.next(format!("wait for the revert of stage {stage_name} to roll out"), Some(give_up));
                self.requeue_in(Duration::seconds(ROLLOUT_POLL));
                return;
            }
            if !waiting.is_empty() {
                self.note(
                    true,
                    reason::ROLLOUT_FAILED,
                    "Revert",
                    format!("the revert of {} did not finish rolling out in time; continuing", waiting.join(", ")),
                );
            }
            self.st.stages[si].phase = StagePhase::RolledBack;
            self.st.stages[si].reverted_at = Some(self.o.now);
            self.note(false, reason::ROLLED_BACK, "Revert", format!("stage {stage_name} is back on its known-good images"));
        }
        // Everything reverted: release the targets; the upgrade is over.
        self.release();
        let now = self.now();
        if let Some(r) = self.st.rollback.as_mut() {
            r.completed_at = Some(now);
        }
        self.st.completed_at = Some(now);
        self.st.current_stage = None;
        let skipped: Vec<String> = self
            .components()
            .filter(|c| matches!(c.phase, ComponentPhase::Conflict | ComponentPhase::Gone) && c.applied_at.is_some())
            .map(|c| format!("{:?} {}/{}", c.kind, c.namespace, c.name))
            .collect();
        let mut msg = if self.any_applied() {
            format!("rolled back to the known-good images because {why}")
        } else {
            format!("ended before any image was changed because {why}")
        };
        if !skipped.is_empty() {
            msg.push_str(&format!("; not reverted because someone else changed or deleted them: {}", skipped.join(", ")));
        }
        self.set_phase(Phase::RolledBack, msg.clone());
        self.next = None;
        self.note(false, reason::ROLLED_BACK, "Finish", msg);
    }

    /// Release the targets this upgrade still marks as its own, in the same step that writes the
    /// final phase: if the release fails the phase is not written and the step is retried.
    fn release(&mut self) {
        let mine: Vec<TargetKey> =
            self.o.targets.iter().filter(|(_, t)| t.as_ref().is_some_and(|t| t.owner.as_deref() == Some(self.o.id.as_str()))).map(|(k, _)| k.clone()).collect();
        if !mine.is_empty() {
            self.effect = Some(Effect::Release { targets: mine });
        }
    }

    // ---------------------------------------------------------------------------------------
    // Forward

    fn advance(&mut self, plan: &Plan) {
        if self.held {
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
                "{}; the upgrade is held: set spec.rollback.requested to revert the rest, or delete the upgrade to leave things as they are",
                c.message.unwrap_or_else(|| format!("{:?} {}/{} was changed by someone else", c.kind, c.namespace, c.name))
            );
            self.st.message = msg.clone();
            self.block(reason::CHANGED_EXTERNALLY, msg);
            return;
        }
        let Some(si) = self.st.stages.iter().position(|s| s.phase != StagePhase::Passed) else {
            return self.succeed();
        };
        match self.st.stages[si].phase {
            StagePhase::Pending => self.start_stage(plan, si),
            StagePhase::RollingOut => self.roll_out(plan, si),
            StagePhase::Soaking => self.soak(plan, si),
            _ => {}
        }
    }

    /// Claim every target before anything changes: record its known-good image in status and
    /// on the target. True once all are claimed.
    fn claim(&mut self) -> bool {
        if self.st.claimed_at.is_some() {
            return true;
        }
        let spec_components: Vec<(usize, usize, Option<String>)> = self
            .o
            .spec
            .stages
            .iter()
            .enumerate()
            .flat_map(|(si, s)| s.components.iter().enumerate().map(move |(ci, c)| (si, ci, c.container.clone())))
            .collect();
        for (si, ci, wanted) in spec_components {
            let c = self.st.stages[si].components[ci].clone();
            if c.phase != ComponentPhase::Pending {
                continue;
            }
            let (key, t) = self.target(&c);
            let Some(t) = t else {
                self.hold_before_claim(reason::TARGET_NOT_FOUND, format!("{key} does not exist; create it or fix the component, nothing has been changed"));
                return false;
            };
            let container = match t.resolve_container(wanted.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    let r = if wanted.is_some() { reason::CONTAINER_NOT_FOUND } else { reason::CONTAINER_AMBIGUOUS };
                    self.hold_before_claim(r, format!("{key} {e}; nothing has been changed"));
                    return false;
                }
            };
            let image = t.image(&container).unwrap_or_default().to_string();
            // The mark of an upgrade deleted before it released its targets, or of an earlier,
            // deleted upgrade of this name (another UID; a mark without one is taken as ours).
            let earlier_life = t.owner.as_deref() == Some(self.o.id.as_str()) && t.owner_uid.as_deref().is_some_and(|u| u != self.o.uid);
            let stale = t.owner.as_deref().filter(|o| earlier_life || (*o != self.o.id && !self.o.live_owners.contains(*o)));
            match t.owner.as_deref().filter(|_| stale.is_none()) {
                Some(owner) if owner != self.o.id => {
                    self.hold_before_claim(
                        reason::TARGET_OWNED,
                        format!("{key} belongs to MaintenanceUpgrade {owner}; this upgrade waits until that one ends"),
                    );
                    return false;
                }
                Some(_) => {
                    // Claimed before a restart: the annotation holds the record.
                    let recorded = t.known_good.as_deref().and_then(|v| v.split_once('=')).map(|(_, i)| i.to_string());
                    self.record_claim(si, ci, container, recorded.unwrap_or(image), t);
                }
                None => {
                    self.effect = Some(Effect::Claim {
                        target: key.clone(),
                        resource_version: t.resource_version.clone(),
                        owner_uid: self.o.uid.clone(),
                        known_good: known_good_value(&container, &image),
                    });
                    let taken_over = match stale {
                        Some(_) if earlier_life => " (taken over from an earlier MaintenanceUpgrade of this name, which no longer exists)".to_string(),
                        Some(o) => format!(" (taken over from MaintenanceUpgrade {o}, which no longer exists)"),
                        None => String::new(),
                    };
                    self.note(false, reason::CLAIMED, "Claim", format!("{key}: recorded known-good image {image} of container {container}{taken_over}"));
                    self.record_claim(si, ci, container, image, t);
                    self.set_phase(Phase::Pending, "recording the known-good images".into());
                    self.requeue_in(Duration::zero());
                    return false;
                }
            }
        }
        self.st.claimed_at = Some(self.now());
        true
    }

    /// Something outside the operator must change before the targets can be claimed.
    fn hold_before_claim(&mut self, reason: &'static str, message: String) {
        self.set_phase(Phase::Pending, message.clone());
        self.block(reason, message);
        self.next("check the targets again", Some(self.now() + Duration::seconds(BLOCKED_RETRY)));
    }

    fn record_claim(&mut self, si: usize, ci: usize, container: String, image: String, t: &TargetState) {
        let digest = t.running_digests.iter().find(|(n, _)| *n == container).map(|(_, d)| d.clone());
        let cs = &mut self.st.stages[si].components[ci];
        cs.container = Some(container);
        cs.known_good_image = Some(image);
        cs.known_good_digest = digest;
        cs.phase = ComponentPhase::Claimed;
    }

    /// Before the first change: measure the baseline, timed to end when the window opens.
    fn baseline_ready(&mut self, plan: &Plan) -> bool {
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
                    return self.end_unstarted(plan.never_opens_reason(now), format!("the maintenance window will not open again ({why})"));
                }
            };
            self.st.baseline_started_at = Some(start_at);
            self.st.baseline_ends_at = Some(start_at + observe);
            for s in &plan.signals {
                if !self.st.analysis.iter().any(|a| a.name == s.name) {
                    self.st.analysis.push(SignalStatus { name: s.name.clone(), sampled_to: Some(start_at), ..Default::default() });
                }
            }
            self.note(false, reason::MEASURING_BASELINE, "Baseline", format!("measuring the baseline until {}", at(start_at + observe)));
        }
        let ends = self.st.baseline_ends_at.unwrap_or(now);
        let missing: Vec<String> =
            plan.signals.iter().filter(|s| !self.st.analysis.iter().any(|a| a.name == s.name && a.baseline.is_some())).map(|s| s.name.clone()).collect();
        if now < ends || !missing.is_empty() {
            let msg = if now < ends {
                format!("measuring the baseline of the signals before any change, until {}", at(ends))
            } else {
                format!("waiting for a baseline of signal(s) {}", missing.join(", "))
            };
            self.set_phase(Phase::MeasuringBaseline, msg);
            self.next("end the baseline", Some(ends.max(now + plan.interval.min(Duration::seconds(BLOCKED_RETRY)))));
            return false;
        }
        true
    }

    /// End before anything changed (deadline passed, window never opens again).
    fn end_unstarted(&mut self, reason: &'static str, why: String) -> bool {
        if self.any_applied() {
            // rollback_trigger reverts an upgrade whose remaining stages can never start; this
            // is only a guard, so that a changed target is never left unwatched as "unchanged".
            self.start_rollback(reason, why);
            self.requeue_in(Duration::zero());
            return false;
        }
        self.release();
        self.st.completed_at = Some(self.now());
        self.set_phase(Phase::Failed, format!("{why}; nothing was changed"));
        self.next = None;
        self.note(true, reason, "Finish", format!("{why}; nothing was changed"));
        false
    }

    fn start_stage(&mut self, plan: &Plan, si: usize) {
        let now = self.now();
        let stage = &self.o.spec.stages[si];
        let name = stage.name.clone();
        if self.o.spec.paused {
            self.set_phase(Phase::Paused, format!("paused before stage {name}; set spec.paused to false to continue"));
            self.next(format!("start stage {name} when unpaused"), None);
            return;
        }
        if stage.require_approval && !self.o.spec.approved_stages.contains(&name) {
            self.set_phase(Phase::AwaitingApproval, format!("stage {name} needs approval: add {name} to spec.approvedStages"));
            self.next(format!("start stage {name} once approved"), None);
            if self.o.status.phase != Phase::AwaitingApproval {
                self.note(false, reason::AWAITING_APPROVAL, "Approve", format!("stage {name} waits for approval in spec.approvedStages"));
            }
            return;
        }
        if let Some(c) = self.st.stages[si].components.iter().find(|c| c.phase != ComponentPhase::Claimed) {
            let msg = format!(
                "stage {name} cannot start: {}",
                c.message.clone().unwrap_or_else(|| format!("{:?} {}/{} is {:?}", c.kind, c.namespace, c.name, c.phase))
            );
            self.set_phase(Phase::Pending, msg.clone());
            self.block(reason::CHANGED_EXTERNALLY, msg);
            return;
        }
        match plan.schedule.state_at(now) {
            WindowState::Closed { opens_at: Some(t), why } => {
                self.set_phase(Phase::WaitingForWindow, format!("the maintenance window is closed ({why}); stage {name} starts when it opens at {}", at(t)));
                self.next(format!("start stage {name}"), Some(t));
                return;
            }
            WindowState::Closed { opens_at: None, why } => {
                self.end_unstarted(plan.never_opens_reason(now), format!("the maintenance window will not open again ({why})"));
                return;
            }
            WindowState::Open { closes_at: Some(closes) } if plan.policy == StagePolicy::WaitForNextWindow && now + plan.progress_deadline[si] > closes => {
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
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::RollingOut;
        s.started_at = Some(now);
        let n = s.components.len();
        self.st.current_stage = Some(name.clone());
        self.note(false, reason::STAGE_STARTED, "StartStage", format!("stage {name} started ({n} components)"));
        self.roll_out(plan, si);
    }

    fn roll_out(&mut self, plan: &Plan, si: usize) {
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
            if t.image(&container) == Some(c.desired_image.as_str()) {
                continue; // applied before a restart
            }
            self.effect = Some(Effect::SetImage {
                target: key.clone(),
                resource_version: t.resource_version.clone(),
                container: container.clone(),
                image: c.desired_image.clone(),
            });
            self.note(
                false,
                reason::IMAGE_SET,
                "SetImage",
                format!("{key} container {container}: {} -> {}", c.known_good_image.unwrap_or_default(), c.desired_image),
            );
            self.set_phase(Phase::Progressing, format!("stage {name}: setting {key} to {}", c.desired_image));
            self.requeue_in(Duration::zero());
            return;
        }
        let comps = self.st.stages[si].components.clone();
        if let Some(c) = comps.iter().find(|c| c.phase == ComponentPhase::Conflict || c.phase == ComponentPhase::Gone) {
            let msg = format!("stage {name} is held: {}", c.message.clone().unwrap_or_default());
            self.set_phase(Phase::Progressing, msg.clone());
            self.block(reason::CHANGED_EXTERNALLY, format!("{msg}; set spec.rollback.requested to revert the rest"));
            return;
        }
        let waiting: Vec<String> = comps
            .iter()
            .filter_map(|c| match self.target(c) {
                (key, Some(t)) => match &t.rollout {
                    Rollout::Complete => None,
                    Rollout::InProgress(why) | Rollout::Failed(why) => Some(format!("{key}: {why}")),
                },
                (key, None) => Some(format!("{key}: missing")),
            })
            .collect();
        if !waiting.is_empty() {
            let deadline = self.st.stages[si].started_at.unwrap_or(now) + plan.progress_deadline[si];
            self.set_phase(Phase::Progressing, format!("stage {name} is rolling out: {}", waiting.join("; ")));
            self.next(format!("stage {name} rolled out (or reverted at the progress deadline)"), Some(deadline));
            self.requeue_in(Duration::seconds(ROLLOUT_POLL));
            return;
        }
        let ends = now + plan.soak[si];
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::Soaking;
        s.rolled_out_at = Some(now);
        s.soak_ends_at = Some(ends);
        self.note(false, reason::ROLLED_OUT, "RolledOut", format!("stage {name} rolled out; soaking until {}", at(ends)));
        self.soak(plan, si);
    }

    fn soak(&mut self, plan: &Plan, si: usize) {
        let now = self.now();
        let name = self.st.stages[si].name.clone();
        let ends = self.st.stages[si].soak_ends_at.unwrap_or(now);
        let later = if si + 1 < self.st.stages.len() { format!("stage {} starts", self.st.stages[si + 1].name) } else { "the upgrade succeeds".into() };
        if now < ends {
            self.set_phase(
                Phase::Soaking,
                format!("stage {name} is soaking until {}; if the signals hold, {later}; on a regression every changed component is reverted", at(ends)),
            );
            self.next(format!("end the soak of stage {name}"), Some(ends));
            return;
        }
        // The soak is over: promote only on a fresh conclusive verdict of every signal.
        let fresh_since = ends - plan.interval;
        let unsure: Vec<String> = plan
            .signals
            .iter()
            .filter(|s| !self.st.analysis.iter().any(|a| a.name == s.name && a.verdict == Verdict::Pass && a.analysed_at.is_some_and(|t| t >= fresh_since)))
            .map(|s| s.name.clone())
            .collect();
        let suspects: Vec<String> = self.st.analysis.iter().filter(|a| a.verdict == Verdict::Suspect).map(|a| a.name.clone()).collect();
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
            let msg = format!("the soak of stage {name} is over but signal(s) {} have no conclusive verdict; not promoting until they pass", unsure.join(", "));
            if self.o.status.message != msg {
                self.note(true, reason::INCONCLUSIVE, "Analyse", msg.clone());
            }
            self.set_phase(Phase::Soaking, msg);
            self.next(format!("end the soak of stage {name} on a conclusive pass"), None);
            return;
        }
        if self.o.spec.paused {
            self.set_phase(Phase::Paused, format!("stage {name} passed its soak; paused: set spec.paused to false to continue"));
            self.next("continue when unpaused", None);
            return;
        }
        let s = &mut self.st.stages[si];
        s.phase = StagePhase::Passed;
        s.passed_at = Some(now);
        self.note(false, reason::SOAK_PASSED, "Promote", format!("stage {name} passed its soak; {later}"));
        match self.st.stages.iter().position(|s| s.phase == StagePhase::Pending) {
            Some(next) => self.start_stage(plan, next),
            None => self.succeed(),
        }
    }

    fn succeed(&mut self) {
        self.release();
        self.st.completed_at = Some(self.now());
        self.st.current_stage = None;
        self.next = None;
        let msg = "every stage passed its soak; the known-good images stay recorded in status.stages".to_string();
        self.set_phase(Phase::Succeeded, msg.clone());
        self.note(false, reason::SUCCEEDED, "Finish", msg);
    }

    // ---------------------------------------------------------------------------------------

    fn finish(mut self) -> Decision {
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
            (false, Some(r)) => cond(ct::ROLLED_BACK, "False", &r.reason, format!("rolling back: {}", r.message)),
            _ => cond(ct::ROLLED_BACK, "False", "NotRequested", "no rollback".into()),
        });
        new.push(match self.st.analysis.iter().find(|a| a.verdict == Verdict::Regression) {
            Some(a) => cond(ct::HEALTHY, "False", reason::REGRESSION, format!("signal {}: {}", a.name, a.reason)),
            None if !self.st.analysis.is_empty() && self.st.analysis.iter().all(|a| a.verdict == Verdict::Pass) => {
                let m = self.st.analysis.iter().map(|a| format!("{}: {}", a.name, a.reason)).collect::<Vec<_>>().join("; ");
                cond(ct::HEALTHY, "True", reason::NO_REGRESSION, m)
            }
            None => {
                let m = self.st.analysis.iter().map(|a| format!("{}: {}", a.name, a.reason)).collect::<Vec<_>>().join("; ");
                let why = if self.st.analysis.iter().any(|a| a.verdict == Verdict::Suspect) { reason::SUSPECTED } else { reason::INCONCLUSIVE };
                cond(ct::HEALTHY, "Unknown", why, if m.is_empty() { "no analysis yet".into() } else { m })
            }
        });
        new.push(match &self.blocked {
            Some((r, m)) => cond(ct::BLOCKED, "True", r, m.clone()),
            None => cond(ct::BLOCKED, "False", "NotBlocked", "nothing blocks the upgrade".into()),
        });
        // Window state, as far as the spec can be read.
        if let Ok(s) = Schedule::parse(self.o.spec.window.as_ref()) {
            new.push(match s.state_at(now) {
                WindowState::Open { closes_at: Some(t) } => cond(ct::WINDOW_OPEN, "True", reason::WINDOW_OPENED, format!("open until {}", at(t))),
                WindowState::Open { closes_at: None } => cond(ct::WINDOW_OPEN, "True", reason::WINDOW_OPENED, "always open".into()),
                WindowState::Closed { opens_at: Some(t), why } => cond(ct::WINDOW_OPEN, "False", reason::WINDOW_CLOSED, format!("{why}; opens at {}", at(t))),
                WindowState::Closed { opens_at: None, why } => cond(ct::WINDOW_OPEN, "False", reason::WINDOW_CLOSED, format!("{why}; never opens again")),
            });
        }
        // Keep the transition time of conditions whose status did not change; announce blocks.
        for c in new.iter_mut() {
            let old = self.o.status.conditions.iter().find(|o| o.type_ == c.type_);
            if let Some(old) = old {
                if old.status == c.status {
                    c.last_transition_time = old.last_transition_time;
                }
            }
            let changed = old.is_none_or(|o| o.status != c.status || o.reason != c.reason);
            if c.type_ == ct::BLOCKED && c.status == "True" && changed {
                let reason = self.blocked.as_ref().map(|b| b.0).unwrap_or(reason::INVALID_SPEC);
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
        self.st.next_action = if phase.is_terminal() { None } else { self.next.clone() };
        let requeue_after = if phase.is_terminal() && self.effect.is_none() { None } else { self.requeue };
        Decision { status: self.st, effect: self.effect, events: self.events, requeue_after }
    }
}

/// Instants in messages, to the second.
pub fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn tf(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn rate_window(c: Counts, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> RateWindow {
    RateWindow { attempts: c.attempts as i64, errors: c.errors as i64, rate: c.rate(), from, to }
}
