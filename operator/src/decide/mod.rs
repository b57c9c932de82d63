//! Decide step, pure: observed state + clock → the next status, at most one change to a target,
//! the Events to publish and when to look again. No client; every transition is unit-tested.
//!
//! One file per step of an upgrade, in the order it meets them: `plan` (the spec, parsed),
//! `trust` (what in the status is believed), `targets` (what the targets show), `analysis` (signals → verdicts), `claim` (record the
//! known-good images), `baseline` (measure before any change), `stage` (start, roll out, soak,
//! promote), `canary` (a canary inside one workload: a folder, one file per kind's mechanism),
//! `rollback` (trigger and revert), `finish` (succeed, or end unchanged) and
//! `conditions` (the decision as a user reads it). Each keeps its tests beside it.
//!
//! Restart safety: everything needed to continue is in the status or on the targets, and every
//! target change is recognised as done when observed, so a step is never repeated or lost.

mod analysis;
mod baseline;
mod canary;
mod claim;
mod conditions;
mod finish;
#[cfg(test)]
mod invariants_tests;
mod notify;
mod pace;
mod persist;
mod plan;
mod rollback;
mod stage;
mod targets;
mod tenancy;
#[cfg(test)]
mod test_world;
mod trust;

pub use analysis::{analysis_due, history_due};
pub use conditions::refused_status;
pub use notify::{DEFAULT_WEBHOOK, Delivery, due_notifications};
pub use persist::worth_writing;

use crate::constants::reason;
use crate::crd::*;
use crate::detector::Counts;
use crate::target::{TargetKey, TargetState};
use chrono::{DateTime, Duration, Utc};
use plan::Plan;
use std::collections::BTreeMap;

/// One provider read: counts over `[from, to)` or why it failed.
pub type SampleResult = Result<(Counts, DateTime<Utc>, DateTime<Utc>), ReadError>;
/// Pre-change history: per-interval counts (end of each interval, counts), or why it failed.
pub type HistoryResult = Result<Vec<(DateTime<Utc>, Counts)>, ReadError>;

/// Why a signal or its history could not be read, and whether reading it again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Reading again cannot help until the spec or the operator's settings change: a Prometheus
    /// address not allowed, a query Prometheus refuses as invalid, a selector that does not
    /// parse. Says what to fix. The upgrade is blocked as an invalid spec meanwhile.
    #[error("{0}")]
    Permanent(String),
    /// This read failed, the next may not: a timeout, a refused connection, a watch still
    /// listing, a history not recorded yet. Read again at the next interval.
    #[error("{0}")]
    Transient(String),
    /// A piece of what the looks missed that the provider holds no data of (Prometheus was away
    /// too): nothing of it can be judged, and reading it again cannot help. The span up to
    /// `to` is passed over, unjudged.
    #[error("{why}")]
    Gap { to: DateTime<Utc>, why: String },
}

impl ReadError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, ReadError::Permanent(_))
    }
}

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
    /// The MaintenanceUpgrade is being deleted (its deletionTimestamp is set): what it changed is
    /// reverted at once, window or not, then its targets released, then the finalizer removed.
    pub deleting: bool,
    /// Every target the spec names (and only those); `None` when it does not exist.
    pub targets: BTreeMap<TargetKey, Option<TargetState>>,
    /// The other upgrades named in those targets' owner marks that still exist, each with its
    /// UID (for one that could not be read, the mark's). A mark holds its target only while
    /// its upgrade exists under the UID it names: an owner deleted before it released its
    /// targets no longer holds them, and a name written by hand without the UID holds nothing.
    pub live_owners: std::collections::BTreeSet<(String, String)>,
    /// What the API server's schema cannot check but the cluster shows is wrong with the spec
    /// (a signal naming a namespace that does not exist), each saying what to fix.
    pub spec_problems: Vec<String>,
    /// Namespaces whose upgrades may target workloads in other namespaces.
    pub trusted_namespaces: Vec<String>,
    /// An operator-wide default webhook exists, for upgrades that name none.
    pub default_webhook: bool,
    /// Notification deliveries made since the last look.
    pub deliveries: Vec<Delivery>,
    /// Since when the built-in signal's watches of pods and Events have run without a break
    /// (None: still listing). A read from before then may have missed pods.
    pub pods_watched_since: Option<DateTime<Utc>>,
    /// The nodes each canary nodeSelector (as `k=v,…`) selects; one missing was not read (its
    /// canary waits).
    pub selected_nodes: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// What the shared watch of nodes says of the nodes canaried DaemonSets' pods run on (those
    /// it has seen).
    pub node_facts: BTreeMap<String, NodeFacts>,
    /// Whether the shared watch of nodes has listed them all once (`node_facts` is complete).
    pub nodes_listed: bool,
    /// Signal reads for the spans `analysis_due` asked for.
    pub samples: BTreeMap<String, SampleResult>,
    /// Pre-change history of signals that have it (Prometheus), when `history_due` asked for it.
    pub history: BTreeMap<String, HistoryResult>,
    /// A target whose rollout settings the API server has refused to take back in every look
    /// since then (an admission webhook, an invalid record): the shell's memory, never the
    /// status. Past `REFUSED_RESTORE_LIMIT` the restore is given up, and said.
    pub strategy_refused: BTreeMap<TargetKey, Refused>,
    pub now: DateTime<Utc>,
}

/// What the operator knows of a node a canaried DaemonSet's pod runs on, from its metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// When it was created: one created after its DaemonSet's own first change joined mid-canary.
    pub created: Option<DateTime<Utc>>,
    /// Its zone (label `topology.kubernetes.io/zone`): a canary's nodes are spread over zones.
    pub zone: Option<String>,
}

/// A target's writes of its rollout settings the API server refused in a row: since the first,
/// and the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub since: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// A change to one target. The act step sends it before writing the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Mark each target as owned by this upgrade and record its known-good image on it.
    Claim { claims: Vec<Claim> },
    /// Set one container's image (the `index`th of the pod template), only if the target is still
    /// at `resource_version` and still carries this upgrade's owner mark and UID.
    /// With `strategy` = (new, original), the same write sets `spec.updateStrategy` to `new`
    /// and records `original` on the target (JSON): a canary's OnDelete, and what it replaced.
    SetImage {
        target: TargetKey,
        resource_version: String,
        container: String,
        index: usize,
        image: String,
        /// The component's alsoContainers, set in the same write: (index, container, image).
        more: Vec<(usize, String, String)>,
        strategy: Option<(String, String)>,
    },
    /// Set `spec.updateStrategy` (JSON), on the same conditions as SetImage: a canary's original
    /// strategy restored. With `handed_over`, the stage that hands the rest to the workload
    /// (`HANDED_OVER_ANNOTATION`) is marked on the target in the same write.
    SetStrategy { target: TargetKey, resource_version: String, strategy: String, handed_over: Option<String> },
    /// Delete these pods (name, UID) of a target, so that its controller makes them again from
    /// its current template: how a canary inside a DaemonSet is widened and reverted.
    DeletePods { target: TargetKey, pods: Vec<(String, String)> },
    /// Remove this upgrade's annotations from the targets it still owns, each only if it is
    /// still at the resourceVersion it was observed at (target, resourceVersion). Those in
    /// `keep_strategy` keep the record of their rollout settings: they still run a canary's,
    /// left on purpose, and the next upgrade of them puts the recorded ones back.
    Release { targets: Vec<(TargetKey, String)>, keep_strategy: Vec<TargetKey> },
}

impl Effect {
    /// Set each (container, image) of `images` on `t` in one write, the component's own
    /// container first.
    fn set_images(target: &TargetKey, t: &TargetState, images: &[(&str, &str)]) -> Effect {
        let index =
            |container: &str| t.containers.iter().position(|(n, _)| n == container).unwrap_or_default();
        let (container, image) = images.first().copied().unwrap_or_default();
        Effect::SetImage {
            target: target.clone(),
            resource_version: t.resource_version.clone(),
            container: container.into(),
            index: index(container),
            image: image.into(),
            more: images.iter().skip(1).map(|(c, i)| (index(c), c.to_string(), i.to_string())).collect(),
            strategy: None,
        }
    }
}

/// One target to claim, only if it is still at `resource_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub target: TargetKey,
    pub resource_version: String,
    pub owner_uid: String,
    pub known_good: String,
    /// The digest the target's own pods ran for its own container (`repository@sha256:…`).
    pub known_good_digest: Option<String>,
    /// The update strategy a canary inside the target will change (JSON), recorded with it.
    pub original_strategy: Option<String>,
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

/// How often rollouts are looked at regardless: claimed targets are watched and wake their
/// upgrade at once, so this only covers a missed wake-up or a target outside the watches.
const ROLLOUT_POLL: i64 = 30;
/// How soon to look again after deleting pods for a canary: once the pod watch has seen it.
const REPLACE_POLL: i64 = 2;
/// How long to wait before looking again at something only a human or another upgrade can fix.
const BLOCKED_RETRY: i64 = 30;

/// One look at an upgrade: the whole decision, from the observed state and the clock alone.
pub fn decide(o: &Observed) -> Decision {
    let mut d = Decider {
        o,
        st: o.status.clone(),
        effect: None,
        events: vec![],
        requeue: None,
        blocked: None,
        next: None,
        held: None,
    };
    d.st.observed_generation = Some(o.generation);
    d.record_deliveries();
    if d.st.phase.is_terminal() {
        // Ended: its targets released once, then looked at again only to retry a notification.
        d.release();
        let retry = d.notify().map(|t| (t - o.now).max(Duration::zero()));
        // A release that restores a target's settings first looks again at once.
        let requeue_after = [d.requeue, retry].into_iter().flatten().min();
        return Decision { status: d.st, effect: d.effect, events: d.events, requeue_after };
    }
    // Only an ended upgrade has let go of its targets (a status written by hand says otherwise).
    d.st.released_at = None;
    match Plan::for_upgrade(&o.spec, &o.status) {
        Ok((plan, invalid)) => d.run(plan, invalid),
        // Nothing can be reverted without a plan. It goes, but leaves its marks and known-good
        // records on its targets: the next upgrade of them is held until a human settles what
        // they run (`claim`), rather than taking an unproven image for known-good.
        Err(e) if o.deleting => {
            let msg = format!(
                "deleted while its spec cannot be used ({e}): nothing was reverted, and its owner marks and known-good records stay on its targets, so that the next upgrade of them waits for a human to check their images"
            );
            d.st.completed_at = Some(o.now);
            d.st.released_at = Some(o.now);
            d.set_phase(Phase::Failed, msg.clone());
            d.note(true, reason::UPGRADE_DELETED, "Finish", msg);
        }
        // Forbidden first, as `run` says it: what observe found of namespaces an untrusted
        // upgrade may not name is not said to it.
        Err(_) if let Some(forbidden) = d.tenancy_problem() => {
            d.block(reason::CROSS_NAMESPACE, format!("{forbidden}; nothing is changed"));
            d.st.message = d.blocked.as_ref().unwrap().1.clone();
        }
        Err(e) => {
            let problems: Vec<String> = std::iter::once(e).chain(o.spec_problems.iter().cloned()).collect();
            d.block(
                reason::INVALID_SPEC,
                format!("the spec cannot be used: {}; fix it and the upgrade continues", problems.join("; ")),
            );
            d.st.message = d.blocked.as_ref().unwrap().1.clone();
        }
    }
    d.finish()
}

/// A decision in the making: what was observed, the status being written, and what the steps
/// add to it (one effect, Events, when to look again, what blocks the upgrade).
struct Decider<'a> {
    o: &'a Observed,
    st: MaintenanceUpgradeStatus,
    effect: Option<Effect>,
    events: Vec<Note>,
    requeue: Option<Duration>,
    blocked: Option<(&'static str, String)>,
    next: Option<NextAction>,
    /// A rollback is due but waits (for a human or for the window): nothing moves forward. Its
    /// reason: `AutomaticRollbackDisabled` or `RollbackWaitsForWindow`.
    held: Option<&'static str>,
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

    /// The steps, in order: observe the targets, analyse the signals, then either roll back or
    /// move forward (claim, baseline, stages).
    fn run(&mut self, mut plan: Plan, invalid: Option<String>) {
        self.init_stages();
        self.distrust_status();
        let mut invalid: Vec<String> = invalid.into_iter().chain(self.spec_problem()).collect();
        invalid.extend(self.o.spec_problems.iter().cloned());
        invalid.extend(self.canaries_problem());
        invalid.extend(self.pace_problem(&plan));
        let forbidden = self.tenancy_problem();
        self.check_targets();
        self.follow_canary();
        plan.follow_canary(&self.o.spec, &self.st);
        let plan = &plan;
        self.analyse(plan);
        invalid.extend(self.unreadable(plan));
        let mut seen = std::collections::HashSet::new();
        invalid.retain(|e| seen.insert(e.clone()));
        let invalid = (!invalid.is_empty()).then(|| invalid.join("; "));
        // What holds the upgrade: its reason, in short (for a rollout's failure it may have
        // caused), and what to do about it.
        let problem = match (forbidden, invalid) {
            (Some(forbidden), _) => {
                Some((reason::CROSS_NAMESPACE, forbidden.clone(), format!("{forbidden}; nothing is changed")))
            }
            (None, Some(e)) => Some((
                reason::INVALID_SPEC,
                format!("the spec cannot be used: {e}"),
                format!(
                    "the spec cannot be used: {e}; no stage starts or is promoted until it is fixed (a target or a \
                     signal is fixed in place; stages cannot be changed once the upgrade exists, so a wrong stage takes a \
                     new upgrade: delete this upgrade, which reverts what it changed, and apply a corrected one)"
                ),
            )),
            (None, None) => None,
        };
        let held_by = problem.as_ref().map(|(_, short, _)| short.as_str());
        if self.st.rollback.is_none()
            && let Some((why, message)) = self.rollback_trigger(plan, held_by)
        {
            self.start_rollback(why, message);
        }
        if self.st.rollback.is_some() {
            return self.roll_back(plan);
        }
        match problem {
            Some((why, _, msg)) if self.held.is_none() => {
                self.st.message = msg.clone();
                self.block(why, msg);
            }
            // Held for a human or the window: the message says so, the condition what else to fix.
            Some((why, _, msg)) if self.blocked.is_none() => self.block(why, msg),
            Some(_) => {}
            None => self.advance(plan),
        }
        // Look again when the next sample is due, whatever else is awaited.
        if let Some(next) = self.next_sample_at(plan).filter(|_| !self.st.phase.is_terminal()) {
            self.requeue_at(next);
        }
    }

    fn components(&self) -> impl Iterator<Item = &ComponentStatus> {
        self.st.stages.iter().flat_map(|s| s.components.iter())
    }

    fn any_applied(&self) -> bool {
        self.components().any(|c| c.applied_at.is_some())
    }
}
