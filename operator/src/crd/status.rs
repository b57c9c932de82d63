//! The status of a `MaintenanceUpgrade`: phase, conditions, stages and components with their
//! known-good images, and the rollback (each signal's in `signal_status.rs`). Plain data.

use super::*;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Written by the operator only (an admission policy refuses anyone else): what it is doing, why,
/// and what happens next; each target's known-good image; each signal's baseline and verdict.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceUpgradeStatus {
    /// Where the upgrade is: Pending, WaitingForWindow, MeasuringBaseline, AwaitingApproval,
    /// Progressing, Soaking, Paused, Degraded or RollingBack, then Succeeded, RolledBack or Failed.
    #[serde(default)]
    pub phase: Phase,
    /// What the signals that follow the canary count: a Prometheus query's `$canary_nodes` and
    /// `$canary_revision`, and the nodes of the built-in signals' canary copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryScope>,
    /// The spec generation this status was decided from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What the operator is doing, why, and what happens next.
    #[serde(default)]
    pub message: String,
    /// Name of the stage being applied, soaked or reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stage: Option<String>,
    /// Progressing, Complete, RolledBack, Healthy, Blocked, WindowOpen and ManagedByGitOps, one
    /// of each type at most.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the targets were claimed and their known-good images recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the first image was changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// When the upgrade ended: Succeeded, RolledBack or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// When the ended upgrade let go of its targets (their owner marks and records removed),
    /// the look after the one that wrote its final phase: a final write that fails leaves the
    /// targets as they were, so that the next look can tell nothing else changed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<DateTime<Utc>>,
    /// The pre-change observation period for signals without history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_started_at: Option<DateTime<Utc>>,
    /// When that observation ends and the first stage may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_ends_at: Option<DateTime<Utc>>,
    /// Each stage of the spec, in order, with its components and their known-good images.
    #[serde(default)]
    pub stages: Vec<StageStatus>,
    /// The last analysis of each signal.
    #[serde(default)]
    pub analysis: Vec<SignalStatus>,
    /// What the operator will do next, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    /// Set when a rollback starts: why, and when it started and ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackStatus>,
    /// Notifications decided for the webhooks, and whether each was delivered: the newest of
    /// each webhook and kind, and as many others as fit in `MAX_NOTIFICATIONS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_NOTIFICATIONS))]
    pub notifications: Vec<NotificationStatus>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Checking the targets and recording their known-good images.
    #[default]
    Pending,
    /// Waiting for the maintenance window (see nextAction).
    WaitingForWindow,
    /// Observing the signals before any change, to learn their baseline.
    MeasuringBaseline,
    /// Waiting for a human to approve the next stage.
    AwaitingApproval,
    /// Applying a stage and waiting for its rollout.
    Progressing,
    /// Watching the signals after a stage has rolled out.
    Soaking,
    /// A human paused the upgrade.
    Paused,
    /// A problem was found (a regression, a failed rollout, a target changed or deleted) and
    /// the rollback waits: for a human (automatic rollback is off), or for the window
    /// (rollback.outsideWindow is false).
    Degraded,
    /// Reverting the changed components to their known-good images.
    RollingBack,
    Succeeded,
    RolledBack,
    /// Ended without changing anything, or deleted while its spec could not be used (nothing
    /// reverted; its marks stay on its targets for a human to settle).
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 12] = [
        Phase::Pending,
        Phase::WaitingForWindow,
        Phase::MeasuringBaseline,
        Phase::AwaitingApproval,
        Phase::Progressing,
        Phase::Soaking,
        Phase::Paused,
        Phase::Degraded,
        Phase::RollingBack,
        Phase::Succeeded,
        Phase::RolledBack,
        Phase::Failed,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::RolledBack | Phase::Failed)
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Progressing, Complete, RolledBack, Healthy, Blocked, WindowOpen or ManagedByGitOps.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// One CamelCase word: why the condition is as it is (the docs list them).
    pub reason: String,
    /// The same for a human: what, why, and what happens next.
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The spec generation the condition was decided from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextAction {
    /// e.g. "start stage fleet", "end soak of stage canary", "analyse signals".
    pub summary: String,
    /// When, if it waits for a time (a window opening, a soak ending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    /// The stage, as named in the spec.
    pub name: String,
    /// Pending, RollingOut, Soaking, Passed, RollingBack or RolledBack.
    #[serde(default)]
    pub phase: StagePhase,
    /// When its images were set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When every component had rolled out, and the soak began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_out_at: Option<DateTime<Utc>>,
    /// When the soak ends, if the signals pass then (a Suspect signal extends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_ends_at: Option<DateTime<Utc>>,
    /// When the stage passed its soak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed_at: Option<DateTime<Utc>>,
    /// When its components were back on their known-good images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_at: Option<DateTime<Utc>>,
    /// The targets this stage changes.
    pub components: Vec<ComponentStatus>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum StagePhase {
    #[default]
    Pending,
    RollingOut,
    Soaking,
    Passed,
    RollingBack,
    RolledBack,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Deployment, DaemonSet or StatefulSet.
    pub kind: WorkloadKind,
    /// The target's namespace.
    pub namespace: String,
    /// The target's name.
    pub name: String,
    /// The container being changed (resolved when the target was claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The image the target ran before this upgrade, exactly as written in its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_good_image: Option<String>,
    /// The image digest the target's own pods reported running when it was claimed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_good_digest: Option<String>,
    /// The image the revert set on `container`: `knownGoodImage` pinned to `knownGoodDigest`
    /// (so that a tag pushed again since the claim still reverts to the bits that ran), or
    /// `knownGoodImage` as written when no digest was recorded or a canary inside the workload
    /// left pods on the original template (pinning would change it, restarting them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_to: Option<String>,
    /// The image this stage sets on `container`.
    pub desired_image: String,
    /// Pending, Claimed, Applied, Reverted, Conflict or Gone.
    #[serde(default)]
    pub phase: ComponentPhase,
    /// When the new image was set on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<DateTime<Utc>>,
    /// When the target was back on its known-good image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted_at: Option<DateTime<Utc>>,
    /// Why the operator stopped touching this component, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The GitOps tool or Helm release that manages the target, seen when it was claimed: it
    /// would put the old image back unless told to leave it to this operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<ManagedBy>,
    /// The other containers changed with `container` (spec alsoContainers), each with its
    /// known-good image, resolved when the target was claimed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_containers: Vec<ContainerChange>,
    /// A canary inside the workload: where the new image runs, and what was changed to hold
    /// the rest back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
}

impl ComponentStatus {
    /// Every container this component changes, its own first: (container, known-good image,
    /// desired image). Empty until it is claimed (the container is resolved then).
    pub fn changes(&self) -> Vec<(&str, Option<&str>, &str)> {
        let Some(own) = self.container.as_deref() else { return vec![] };
        let mut out = vec![(own, self.known_good_image.as_deref(), self.desired_image.as_str())];
        for a in &self.also_containers {
            out.push((a.container.as_str(), a.known_good_image.as_deref(), a.desired_image.as_str()));
        }
        out
    }

    /// The known-good image pinned to the recorded digest (`image:tag@sha256:…`), when the
    /// digest is a registry's (`repository@sha256:…`, the known-good image's repository; a bare
    /// `sha256:…` is a local image ID no registry serves) and the known-good image names none.
    pub fn pinned_known_good(&self) -> Option<String> {
        let known_good = self.known_good_image.as_deref().filter(|k| !k.contains('@'))?;
        let (repository, digest) = self.known_good_digest.as_deref()?.split_once('@')?;
        let hex = digest.strip_prefix("sha256:")?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let same = crate::image::repository(repository) == crate::image::repository(known_good);
        (valid && same).then(|| format!("{known_good}@{digest}"))
    }

    /// What the revert sets the component's own container to (see `reverted_to`): pinned only
    /// when every pod is replaced anyway (`canaried`: no stage of the upgrade takes part of the
    /// workload, whose other pods match the template as written) and no GitOps tool or Helm
    /// release manages it (it would see the pin as drift, and roll every pod back to the tag).
    pub fn revert_image(&self, canaried: bool) -> Option<String> {
        let pinned = self
            .pinned_known_good()
            .filter(|_| !canaried && self.canary.is_none() && self.managed_by.is_none());
        pinned.or_else(|| self.known_good_image.clone())
    }

    /// Whether `image` is this component's known-good image, as written or pinned.
    pub fn is_known_good(&self, image: &str) -> bool {
        let Some(known_good) = self.known_good_image.as_deref() else { return false };
        let pinned = self.pinned_known_good();
        if image == known_good || pinned.as_deref() == Some(image) {
            return true;
        }
        // As an admission webhook pins it (`image::runs`): to the digest its pods ran, where one
        // was recorded, not any digest of its tag; and never what this upgrade set (an upgrade
        // of `app:1.0` to `app:1.0@sha256:…` keeps the tag).
        let like = match &pinned {
            Some(p) => crate::image::runs(image, p),
            None => crate::image::runs(image, known_good),
        };
        like && !crate::image::runs(image, &self.desired_image)
    }
}

/// One more container a component changes: its image before, and the one it sets.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerChange {
    /// The container, by name.
    pub container: String,
    /// Its image before this upgrade, as written in the target's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_good_image: Option<String>,
    /// The image this stage sets on it.
    pub desired_image: String,
}

/// Where a canary inside one workload runs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// How many nodes (a DaemonSet) or replicas (a StatefulSet, or new ones beside a
    /// Deployment's own) this stage runs the new image on: the canary's count or percentage
    /// resolved against `total`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 2147483647))]
    pub wanted: i32,
    /// Of how many: the nodes that run the DaemonSet's pods, or the StatefulSet's or
    /// Deployment's replicas when the canary began.
    #[serde(default)]
    #[schemars(range(min = 0, max = 2147483647))]
    pub total: i32,
    /// A DaemonSet's nodes whose pod runs the new image, by name. A pod the workload's
    /// controller made again on another node (a new node, an eviction) gets the new image too,
    /// and is counted. Once the component is Reverted, the nodes it ran on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub nodes: Vec<String>,
    /// Of `nodes`, those created after its DaemonSet's own first change, whose pod the DaemonSet made
    /// from the new template itself. Reverted with the canary, but neither counted in its size
    /// nor by its signals' copies or `$canary_nodes`: a node that just joined gets the pods that
    /// waited for it, each with its scheduling failure, which would be blamed on the new image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub joined: Vec<String>,
    /// A StatefulSet's pods (its top ordinals) or a Deployment's new ones that run the new
    /// image, by name. Once the component is Reverted, the pods it ran on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub pods: Vec<String>,
    /// The workload's rollout settings before the canary changed them (a DaemonSet's or
    /// StatefulSet's updateStrategy; a Deployment's strategy, minReadySeconds and
    /// progressDeadlineSeconds), as JSON exactly as the API server held them (also on the target,
    /// annotation maintenance.dev/original-update-strategy). Restored when the last stage that
    /// names the target starts, and when it is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_update_strategy: Option<String>,
}

/// What manages a target besides this operator.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedBy {
    /// ArgoCd, FluxKustomization, FluxHelmRelease or Helm.
    pub tool: ManagerTool,
    /// The Argo CD Application, Flux Kustomization or HelmRelease, or Helm release.
    pub name: String,
    /// The namespace of that Application, Kustomization or HelmRelease, when the marks say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ManagerTool {
    ArgoCd,
    FluxKustomization,
    FluxHelmRelease,
    Helm,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ComponentPhase {
    #[default]
    Pending,
    /// Known-good recorded and the target marked as owned by this upgrade.
    Claimed,
    /// The new image is set on the target.
    Applied,
    /// Back on the known-good image.
    Reverted,
    /// Someone else changed the target's image; the operator no longer touches it.
    Conflict,
    /// The target was deleted.
    Gone,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// Why: RegressionDetected, RolloutFailed, DeadlineExceeded, WindowNeverOpens,
    /// ManualRollback, UpgradeDeleted, TrustWithdrawn, TargetDeleted or ImageChangedExternally.
    pub reason: String,
    /// What was seen, in words: the signal, its baseline and observed rates, or what failed.
    pub message: String,
    /// When the rollback was decided.
    pub started_at: DateTime<Utc>,
    /// When every changed component was back on its known-good image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}
