//! The analysis part of the `MaintenanceUpgradeSpec`: how often signals are read, where the
//! baseline comes from, each signal (built-in or Prometheus) and the rule that judges it, with
//! the schema and CEL rules the API server enforces. Plain data.

use super::*;

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
