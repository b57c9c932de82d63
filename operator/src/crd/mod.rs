//! The `MaintenanceUpgrade` custom resource: the spec (with the schema and CEL rules the API
//! server enforces) here, the status in `status.rs` (each signal's in `signal_status.rs`), the
//! duration type in `duration.rs`. Plain
//! data, no client.

mod canary;
mod canary_signal;
mod duration;
mod notifications;
mod signal_status;
mod status;

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
    printcolumn = r#"{"name":"At","type":"date","jsonPath":".status.nextAction.at","priority":1}"#,
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
    /// How long the stage's rollout may take before it counts as failed and is reverted.
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

/// The longest history a baseline may be read from: a week.
pub const MAX_LOOKBACK_HOURS: i64 = 168;
/// The most intervals a Prometheus history may span: three range queries of 10,000 points per
/// PromQL query (Prometheus refuses more than 11,000 points per series in one).
pub const MAX_LOOKBACK_INTERVALS: i64 = 30_000;

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.signals) || !self.signals.exists(s, has(s.prometheus)) || !has(self.baseline) || !has(self.baseline.lookback) || !has(self.interval) || duration(self.baseline.lookback).getSeconds() <= 30000 * duration(self.interval).getSeconds()").message("with a Prometheus signal, baseline.lookback may span at most 30000 intervals (three range queries of 10,000 points): lengthen analysis.interval or shorten baseline.lookback"))]
#[x_kube(validation = Rule::new("!has(self.interval) || (has(self.signals) && size(self.signals) > 0 ? self.signals.all(s, duration(self.interval) <= (has(s.regression) && has(s.regression.bucket) ? duration(s.regression.bucket) : duration('10m'))) : duration(self.interval) <= duration('10m'))").message("analysis.interval may be at most each signal's regression.bucket (10m unless set): a read longer than a bucket is judged as one bucket, so a regression would take hours of reads to be told; read more often, or lengthen regression.bucket"))]
pub struct Analysis {
    /// How often the signals are read (at least 1s, at most each signal's `regression.bucket`,
    /// 10m unless set; each read of the built-in signal lists pods and Events, so production
    /// values are a minute or so).
    #[serde(default = "default_interval")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("interval must be at least 1s"))]
    pub interval: Duration,
    /// Where the error rate before the change comes from: recorded history, or a live
    /// observation before the first stage.
    #[serde(default)]
    pub baseline: BaselineSpec,
    /// Signals to watch. Empty means one built-in signal: pod scheduling and start failures in
    /// the whole cluster, read from the Kubernetes API (in the upgrade's own namespace only,
    /// unless the installer lists that namespace in trustedNamespaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SIGNALS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub signals: Vec<Signal>,
}

/// The most signals one upgrade may name.
pub const MAX_SIGNALS: usize = 10;

impl Default for Analysis {
    fn default() -> Self {
        Analysis { interval: default_interval(), baseline: BaselineSpec::default(), signals: vec![] }
    }
}

fn default_interval() -> Duration {
    Duration("1m".into())
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaselineSpec {
    /// For built-in (kubernetes) signals the operator has not recorded for this long: how long
    /// to observe them before the first stage is applied.
    #[serde(default = "default_observe")]
    pub observe: Duration,
    /// How much history before the change makes the baseline: Prometheus's, or what the
    /// operator recorded of a built-in signal (a week at most). Less than a day cannot learn
    /// the time of day, and less than a week raises the smallest increase acted on.
    #[serde(default = "default_lookback")]
    #[x_kube(validation = Rule::new("duration(self) <= duration('168h')").message("baseline.lookback may be at most 168h (a week): a longer history adds nothing the detector uses"))]
    pub lookback: Duration,
}

impl Default for BaselineSpec {
    fn default() -> Self {
        BaselineSpec { observe: default_observe(), lookback: default_lookback() }
    }
}

fn default_observe() -> Duration {
    Duration("30m".into())
}
/// A week: a day or more gives an hour-of-day profile, a week has seen each hour seven times
/// and the weekend too (a shorter history raises the minimum effect; see detector::reach).
fn default_lookback() -> Duration {
    Duration("168h".into())
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.kubernetes) != has(self.prometheus)").message("a signal needs exactly one provider: kubernetes or prometheus"))]
pub struct Signal {
    /// Names the signal in status.analysis, Events and metrics.
    #[schemars(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Built-in: share of new pods that fail to schedule or start, from Events and Pod status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSignal>,
    /// Per-interval error and attempt counts from Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSignal>,
    /// When the soak counts as a regression against the baseline.
    #[serde(default)]
    pub regression: RegressionRule,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesSignal {
    /// Namespaces whose pods count. Empty means every namespace for an upgrade in a namespace
    /// the installer trusts (trustedNamespaces), and the upgrade's own namespace for any other,
    /// which may name no other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 50),
        inner(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))
    )]
    pub namespaces: Vec<String>,
    /// Only pods matching this label selector count, e.g. `app=email-sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub label_selector: Option<String>,
    /// A pod still Pending or ContainerCreating this long after creation counts as failed.
    #[serde(default = "default_pending_limit")]
    pub pending_limit: Duration,
    /// Which nodes' pods count: set by the operator for a canary's own signal and its control,
    /// never read from the spec.
    #[serde(skip)]
    #[schemars(skip)]
    pub nodes: NodeScope,
}

impl Default for KubernetesSignal {
    fn default() -> Self {
        KubernetesSignal {
            namespaces: vec![],
            label_selector: None,
            pending_limit: default_pending_limit(),
            nodes: NodeScope::All,
        }
    }
}

/// Which nodes' pods a built-in signal counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NodeScope {
    /// Every pod, bound to a node or not.
    #[default]
    All,
    /// The pods bound to these nodes (a DaemonSet canary's).
    On(BTreeSet<String>),
    /// Every pod but those bound to these nodes: the canary's concurrent control, counted as
    /// the cluster-wide signal counts (unbound pods included), less the canary.
    Off(BTreeSet<String>),
}

impl NodeScope {
    /// Whether a pod on `node` (empty: not bound yet) counts.
    pub fn admits(&self, node: &str) -> bool {
        match self {
            NodeScope::All => true,
            NodeScope::On(nodes) => !node.is_empty() && nodes.contains(node),
            NodeScope::Off(nodes) => !nodes.contains(node),
        }
    }
}

fn default_pending_limit() -> Duration {
    Duration("5m".into())
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSignal {
    /// Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.
    #[schemars(length(max = 512), regex(pattern = r"^https?://[^\s/]+(/\S*)?$"))]
    pub address: String,
    /// PromQL giving the number of failures in `$interval`, e.g.
    /// `sum(increase(scheduler_schedule_attempts_total{result!="scheduled"}[$interval]))`.
    #[schemars(length(min = 1, max = 4096))]
    pub errors: String,
    /// PromQL giving the number of attempts in `$interval`.
    #[schemars(length(min = 1, max = 4096))]
    pub attempts: String,
}

/// When the soak counts as a regression: the minimum effect that matters, and how sure the
/// detector must be. The defaults work without tuning; `sensitivity` trades detection delay
/// against false rollbacks; the rest is for experts (see the Detection page of the docs).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegressionRule {
    /// Relative increase over the baseline error rate that counts, e.g. 0.7 (the default) = 1.7 times the baseline.
    #[serde(default = "default_min_relative_increase")]
    #[x_kube(validation = Rule::new("self > 0.0").message("minRelativeIncrease must be greater than 0"))]
    pub min_relative_increase: f64,
    /// Absolute increase of the error rate that counts, as a fraction (0.002 = 0.2 points).
    #[serde(default = "default_min_absolute_increase")]
    #[x_kube(validation = Rule::new("self >= 0.0 && self <= 1.0").message("minAbsoluteIncrease must be a fraction between 0 and 1"))]
    pub min_absolute_increase: f64,
    /// Attempts a bucket needs before it is judged (fewer: merged with the next), and the
    /// baseline needs before any verdict.
    #[serde(default = "default_min_attempts")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub min_attempts: i32,
    /// Low (fewer false rollbacks, later detection), Medium or High.
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// Expert: the CUSUM decision threshold (default 10.5 against a week of history, 12 against
    /// less, scaled by sensitivity). The week's pair (10.5 and 1.5) applies only while both this
    /// and maxIncrement are unset: setting one makes the other its default against less (12 or
    /// 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("threshold must be greater than 0"))]
    pub threshold: Option<f64>,
    /// Expert: how much time one CUSUM step covers (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Duration>,
    /// Expert: the largest step one bucket may add to the statistic (default 1.5 against a week
    /// of history, 2 against less; the week's only while threshold is unset too), so that a spike
    /// of minutes, or an unrelated incident of half an hour, cannot trip the detector alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("maxIncrement must be greater than 0"))]
    pub max_increment: Option<f64>,
    /// Expert: catastrophic breakage is an error rate this many times the baseline (default 10,
    /// and at least 10 points above it) for fifteen reads in a row (reads of fewer than 5
    /// attempts pooled with the next ones); it reverts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 1.0").message("ceiling must be greater than 1"))]
    pub ceiling: Option<f64>,
    /// Expert: never a regression with fewer failures above the baseline since the change
    /// (default 10, scaled by sensitivity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0.0").message("minExcessFailures must not be negative"))]
    pub min_excess_failures: Option<f64>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Sensitivity {
    Low,
    #[default]
    Medium,
    High,
}

impl Default for RegressionRule {
    fn default() -> Self {
        RegressionRule {
            min_relative_increase: default_min_relative_increase(),
            min_absolute_increase: default_min_absolute_increase(),
            min_attempts: default_min_attempts(),
            sensitivity: Sensitivity::Medium,
            threshold: None,
            bucket: None,
            max_increment: None,
            ceiling: None,
            min_excess_failures: None,
        }
    }
}

/// 1.7x: what a week of history (the default lookback) supports with no false rollback on the
/// benchmark's floor seeds (detector::reach).
fn default_min_relative_increase() -> f64 {
    0.70
}
fn default_min_absolute_increase() -> f64 {
    0.002
}
fn default_min_attempts() -> i32 {
    20
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

impl Signal {
    /// What the signal counts, as a fingerprint: its provider's settings, not its name nor its
    /// regression rule (which may be tuned in place). FNV-1a of their JSON, a fixed function,
    /// so that the fingerprints in a status stay valid across the operator's versions (a field
    /// added to the providers must be left out of their JSON when unset, or every one changes).
    pub fn definition(&self) -> String {
        // The namespaces are a set: listed in another order, they count the same pods.
        let kubernetes = self.kubernetes.clone().map(|mut k| {
            k.namespaces.sort();
            k.namespaces.dedup();
            k
        });
        let json = serde_json::to_vec(&(&kubernetes, &self.prometheus)).unwrap_or_default();
        let fnv = json
            .iter()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
        format!("{fnv:016x}")
    }

    /// This signal as an upgrade in `namespace` reads it (see `signals_as_read`).
    pub fn as_read(mut self, namespace: &str, trusted: bool) -> Signal {
        if let Some(k) = self.kubernetes.as_mut().filter(|_| !trusted) {
            k.namespaces = vec![namespace.to_string()];
        }
        self
    }
}

impl Component {
    pub fn namespace_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(default)
    }
}
