//! The `MaintenanceUpgrade` custom resource: the spec (with the schema and CEL rules the API
//! server enforces) here, its analysis in `analysis.rs`; the status in `status.rs`, each
//! signal's in `signal_status.rs`; the duration type in `duration.rs`. Plain data, no client.

mod analysis;
mod canary;
mod canary_signal;
mod duration;
mod notifications;
mod signal_status;
mod status;

pub use analysis::*;
pub use canary::{Canary, Portion};
pub use canary_signal::{
    CANARY_NODES, CANARY_REVISION, MAX_COPY_NODES, MAX_REVISIONS, canary_signal_name, control_signal_name,
};
pub use duration::Duration;
pub use notifications::*;
pub use signal_status::*;
pub use status::*;

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A staged image upgrade of existing workloads inside maintenance windows, watched through a
/// soak and reverted to the recorded known-good images when the error rates regress.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    doc = "A staged image upgrade of existing Deployments, DaemonSets and StatefulSets inside maintenance windows, watched through a soak and reverted to the recorded known-good images when the error rates regress.",
    group = "maintenance.dev",
    version = "v1alpha1",
    kind = "MaintenanceUpgrade",
    plural = "maintenanceupgrades",
    shortname = "mu",
    namespaced,
    status = "MaintenanceUpgradeStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Stage","type":"string","jsonPath":".status.currentStage"}"#,
    printcolumn = r#"{"name":"Healthy","type":"string","jsonPath":".status.conditions[?(@.type==\"Healthy\")].status"}"#,
    printcolumn = r#"{"name":"Next","type":"string","jsonPath":".status.nextAction.summary","priority":1}"#,
    printcolumn = r#"{"name":"At","type":"string","jsonPath":".status.nextAction.at","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceUpgradeSpec {
    /// When new stages may start. Without a window, stages start as soon as they are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,

    /// Ordered stages; the first is the canary. Immutable: to change the plan, create a new
    /// MaintenanceUpgrade.
    #[schemars(length(min = 1, max = 10))]
    // Equality on a map-type list ignores order, so the order of the names is compared too.
    #[x_kube(validation = Rule::new("self == oldSelf && self.map(s, s.name) == oldSelf.map(s, s.name)").message("stages cannot be changed or reordered once the upgrade exists; create a new MaintenanceUpgrade to change the plan"))]
    // A target in several stages widens a canary inside it, so at most one of them changes it
    // whole. (That one being the last, with the same image each time, is checked by the
    // operator, before anything changes: the API server's cost limit refuses such a rule.)
    #[x_kube(validation = Rule::new("self.all(s, self.all(t, s.name == t.name || s.components.all(c, has(c.canary) || !t.components.exists(d, !has(d.canary) && d.kind == c.kind && d.name == c.name && (has(d.__namespace__) ? d.__namespace__ : '') == (has(c.__namespace__) ? c.__namespace__ : '')))))").message("a target (kind, namespace, name) may appear in several stages only to widen a canary inside it: every stage but the last that names it has a canary"))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub stages: Vec<Stage>,

    /// The signals watched from the first change until the last soak ends.
    #[serde(default)]
    pub analysis: Analysis,

    /// When the operator reverts by itself, and what a human asks of it.
    #[serde(default)]
    pub rollback: RollbackPolicy,

    /// Holds the upgrade where it is: no new stage starts and no stage is promoted. Analysis and
    /// automatic rollback go on.
    #[serde(default)]
    pub paused: bool,

    /// Names of stages with `requireApproval: true` that a human has approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub approved_stages: Vec<String>,

    /// Webhooks told when a stage starts, a regression is suspected, and the upgrade rolls back,
    /// succeeds, fails or is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.notBefore) || !has(self.deadline) || timestamp(self.deadline) > timestamp(self.notBefore)").message("deadline must be after notBefore"))]
pub struct Window {
    /// IANA time zone the recurring windows are written in, e.g. America/New_York.
    // (CEL's getHours also takes UTC offsets and Local, which are not IANA names: excluded.)
    #[x_kube(validation = Rule::new("self == 'UTC' || (self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$') && self != 'Local' && timestamp('2000-01-01T00:00:00Z').getHours(self) >= 0)").message("timeZone must be an IANA time zone name such as America/New_York or UTC"))]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,

    /// Recurring openings. Empty means always open (subject to exclusions, notBefore, deadline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub recurring: Vec<RecurringWindow>,

    /// Periods when no stage may start even inside a recurring window (freezes, holidays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub exclusions: Vec<Exclusion>,

    /// No stage starts before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,

    /// No stage starts after this time; an upgrade with stages left is then reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,

    /// What to do with a stage whose progress deadline would end after the window closes.
    #[serde(default)]
    pub stage_policy: StagePolicy,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum StagePolicy {
    /// Start the stage only if its rollout can finish (progressDeadline) before the window closes.
    #[default]
    WaitForNextWindow,
    /// Start the stage whenever the window is open; its rollout may finish after it closes.
    Continue,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecurringWindow {
    /// Days of the week on which the window opens, in the window's time zone.
    #[schemars(length(min = 1, max = 7))]
    pub days: Vec<Weekday>,
    /// Local opening time, HH:MM (24 h).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// How long the window stays open (elapsed time, so DST changes do not stretch it), at most
    /// a week.
    #[x_kube(validation = Rule::new("duration(self) <= duration('168h')").message("a recurring window lasts at most 168h (one week); for a window that is always open, leave spec.window out"))]
    pub duration: Duration,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("timestamp(self.end) > timestamp(self.start)").message("exclusion end must be after its start"))]
pub struct Exclusion {
    /// Why nothing may start then, e.g. "year-end freeze".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub name: Option<String>,
    /// When the exclusion begins (RFC 3339, e.g. 2026-12-20T00:00:00Z).
    pub start: DateTime<Utc>,
    /// When it ends; no stage starts between start and end.
    pub end: DateTime<Utc>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.components.all(c, self.components.exists_one(d, d.kind == c.kind && d.name == c.name && (has(d.__namespace__) ? d.__namespace__ : '') == (has(c.__namespace__) ? c.__namespace__ : '')))").message("a stage may not list the same target twice"))]
pub struct Stage {
    /// Stage name, e.g. canary or fleet.
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// The workloads this stage upgrades.
    #[schemars(length(min = 1, max = 20))]
    pub components: Vec<Component>,
    /// How long to watch the signals after this stage has rolled out before the next stage.
    pub soak: Duration,
    /// How long the stage's rollout may take before it counts as failed and is reverted. A
    /// stage whose DaemonSet could not roll out within it even at 5 s a pod (its pods replaced
    /// maxUnavailable at a time) is refused before anything changes.
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline: Duration,
    /// Wait for the stage's name in spec.approvedStages before starting it.
    #[serde(default)]
    pub require_approval: bool,
}

fn default_progress_deadline() -> Duration {
    Duration("10m".into())
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.alsoContainers) || self.alsoContainers.all(a, self.alsoContainers.exists_one(b, b.container == a.container) && (!has(self.container) || a.container != self.container))").message("alsoContainers names each container once, and not the component's own container"))]
#[x_kube(validation = Rule::new("!has(self.canary) || (self.kind == 'DaemonSet') != has(self.canary.replicas)").message("canary.nodes and canary.nodeSelector apply to a DaemonSet, canary.replicas to a StatefulSet (its top ordinals) or a Deployment (new replicas beside the old)"))]
pub struct Component {
    /// The workload's kind: Deployment, DaemonSet or StatefulSet.
    pub kind: WorkloadKind,
    /// Namespace of the target; defaults to the MaintenanceUpgrade's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// The workload's name.
    #[schemars(length(max = 253), regex(pattern = r"^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$"))]
    pub name: String,
    /// Container whose image changes; may be omitted when the pod template has one container, or
    /// names its default one in the annotation kubectl.kubernetes.io/default-container (as charts
    /// with sidecars do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub container: Option<String>,
    /// The new image reference, e.g. registry.example.com/csi/connector:v1.4.1 or …@sha256:….
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(r"self.matches('^[a-z0-9]+([._-][a-z0-9]+)*(\\.[a-z0-9]+([-a-z0-9]*[a-z0-9])?)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$')").message("image must be a reference such as registry.example.com/team/app:v1.2.3 or registry.example.com/team/app@sha256:<64 hex digits>"))]
    pub image: String,
    /// More containers of the same pod template, each set to its own image in the same write
    /// as `container` (a driver and its sidecar bumped by one chart release): their known-good
    /// images are recorded with it, and reverted with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    // At most 4: the image rule of each counts against the API server's CEL cost budget (a
    // chart's pod has a few containers; the CSI driver's has 3).
    #[schemars(length(max = 4))]
    pub also_containers: Vec<ContainerImage>,
    /// Change only part of the workload in this stage (a DaemonSet's nodes, a StatefulSet's top
    /// ordinals, a Deployment's new replicas beside its old ones). The same target
    /// named again in a later stage widens the canary; the last stage that names it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

/// Another container of a component's pod template, and its new image.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    /// The container's name in the pod template.
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub container: String,
    /// Its new image reference.
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = Rule::new(r"self.matches('^[a-z0-9]+([._-][a-z0-9]+)*(\\.[a-z0-9]+([-a-z0-9]*[a-z0-9])?)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$')").message("image must be a reference such as registry.example.com/team/app:v1.2.3 or registry.example.com/team/app@sha256:<64 hex digits>"))]
    pub image: String,
}

/// The variants' order is part of the order targets are claimed in (`TargetKey`'s): every
/// replica and version must share it, so that two upgrades racing for the same targets try them
/// in the same order. Add a kind at the end.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// Revert on a regression, a failed rollout or a passed deadline without asking.
    #[serde(default = "yes")]
    pub automatic: bool,
    /// Revert even while the maintenance window is closed.
    #[serde(default = "yes")]
    pub outside_window: bool,
    /// Set to true to revert now, whatever the analysis says.
    #[serde(default)]
    pub requested: bool,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy { automatic: true, outside_window: true, requested: false }
    }
}

fn yes() -> bool {
    true
}

impl MaintenanceUpgradeSpec {
    /// The signals to watch: the spec's, or the built-in kubernetes signal.
    pub fn effective_signals(&self) -> Vec<Signal> {
        if !self.analysis.signals.is_empty() {
            return self.analysis.signals.clone();
        }
        vec![Signal {
            name: DEFAULT_SIGNAL.into(),
            kubernetes: Some(KubernetesSignal::default()),
            prometheus: None,
            regression: RegressionRule::default(),
        }]
    }
}

/// Name of the built-in signal used when the spec names none.
pub const DEFAULT_SIGNAL: &str = "pod-start-failures";

impl MaintenanceUpgradeSpec {
    /// The signals as an upgrade in `namespace` reads them: a built-in signal of an upgrade in a
    /// namespace that is not `trusted` counts that namespace alone, whatever it names (the
    /// admission policy and `decide::tenancy` refuse one that names others).
    pub fn signals_as_read(&self, namespace: &str, trusted: bool) -> Vec<Signal> {
        self.effective_signals().into_iter().map(|s| s.as_read(namespace, trusted)).collect()
    }
}

impl Component {
    pub fn namespace_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(default)
    }
}
