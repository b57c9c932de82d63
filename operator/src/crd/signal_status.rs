//! The status of each signal of a `MaintenanceUpgrade`: its baseline, what it has seen since the
//! change, the detector's state and its verdict. Plain data (`status.rs` has the rest of the
//! status).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalStatus {
    /// The signal, as named in the spec; `<signal>@canary` for a canary's copy of a built-in one.
    pub name: String,
    /// A canary's copy of a built-in signal (`<signal>@canary`): the nodes whose pods it
    /// counts, the canary's; empty before they are known and once the canary has handed over
    /// to the whole workload (it is read no more). At most 500: a larger canary has no copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = super::MAX_COPY_NODES), inner(length(max = 253)))]
    pub nodes: Vec<String>,
    /// The pre-change baseline: counts, rate, dispersion, hour-of-day profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineStatus>,
    /// Errors and attempts since the first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<RateWindow>,
    /// The last sample read from the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<RateWindow>,
    /// Inconclusive, Pass, Suspect or Regression.
    #[serde(default)]
    pub verdict: Verdict,
    /// Why: baseline vs observed, statistic vs threshold.
    #[serde(default)]
    pub reason: String,
    /// The detector's statistic and the threshold it is compared to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<f64>,
    /// The statistic at which the upgrade is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Errors above what the baseline rate predicts, since the first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excess_errors: Option<f64>,
    /// When the signal was last read and judged: the end of the span read (a look that catches
    /// up on reads it missed reads them piece by piece), or when a read last failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysed_at: Option<DateTime<Utc>>,
    /// Reads that start before this time are not judged: their pods were created while the
    /// operator could not see the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unjudged_until: Option<DateTime<Utc>>,
    /// End of the span the signal has been read up to; the next read starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_to: Option<DateTime<Utc>>,
    /// What the baseline cannot tell, when it is too short to know the time of day: the
    /// smallest increase acted on, and how much baseline would act on the rule's own; when it
    /// rests on few failures, also how uncertain its rate is and the error rate a regression is
    /// acted on from (or that only near-total failure can be told). On a
    /// canary's copy of a built-in signal, also when its nodes are too quiet for the stage's
    /// soak: what a regression at that increase would add, and the canary or soak that would
    /// give it enough to be judged on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_limit: Option<String>,
    /// Why the signal cannot be read until the spec or the operator's settings change (a
    /// Prometheus address not allowed, a query Prometheus refuses as invalid). The upgrade is
    /// blocked meanwhile; the next read that succeeds clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// When the signal was taken out of the spec: it is read no more, and its last verdict
    /// holds nothing up and says nothing of the upgrade's health. Put back under its name and as
    /// it was, it is judged again from where it was (the last 10 taken out are kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_out_at: Option<DateTime<Utc>>,
    /// A fingerprint of what the signal counted when its baseline was measured (its query,
    /// selector, namespaces and pending limit: `Signal::definition`). Edited in place under the
    /// same name it is another signal, which that baseline says nothing of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub definition: Option<String>,
    /// The detector's running state, kept here so that a restart resumes it.
    #[serde(default)]
    pub detector: DetectorState,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateWindow {
    /// Attempts counted (pods created, or the attempts query).
    pub attempts: i64,
    /// Failures counted among them.
    pub errors: i64,
    /// errors / attempts (0 when there were no attempts).
    pub rate: f64,
    /// Start of the span counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// End of the span counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Verdict {
    /// Not enough data, or the signal could not be read: neither promotes nor reverts.
    #[default]
    Inconclusive,
    Pass,
    /// Evidence of a regression is building (the statistic passed two thirds of its threshold):
    /// the soak is extended until it clears or becomes a regression.
    Suspect,
    Regression,
}

/// The detector's running state (a CUSUM over buckets of intervals), kept here so that a
/// restart resumes it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetectorState {
    /// The CUSUM: the evidence of a regression so far, compared with the threshold.
    #[serde(default)]
    pub statistic: f64,
    /// Attempts judged since the first change.
    #[serde(default)]
    pub soak_attempts: i64,
    /// Failures judged since the first change.
    #[serde(default)]
    pub soak_errors: i64,
    /// Errors the baseline predicts for the soak so far.
    #[serde(default)]
    pub expected_errors: f64,
    /// Reads in a row above the catastrophe ceiling (reads of fewer than 5 attempts pooled
    /// with the next ones).
    #[serde(default)]
    // Kubernetes knows int32 and int64, and warns of "uint32" at every install.
    #[schemars(range(max = 4294967295u32), extend("format" = "int64"))]
    pub ceiling_run: u32,
    /// Attempts of the reads being pooled for the ceiling; after a read that completed a group
    /// (5 or more), that group's until the next read.
    #[serde(default)]
    pub ceiling_attempts: i64,
    /// Failures of the reads being pooled for the ceiling, as `ceilingAttempts`.
    #[serde(default)]
    pub ceiling_errors: i64,
    /// The bucket being filled.
    #[serde(default)]
    pub bucket_attempts: i64,
    /// Failures in the bucket being filled.
    #[serde(default)]
    pub bucket_errors: i64,
    /// Failures the baseline expects of the bucket being filled.
    #[serde(default)]
    pub bucket_expected: f64,
    /// When the bucket being filled began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_from: Option<DateTime<Utc>>,
    /// Error rate of the last judged bucket.
    #[serde(default)]
    pub last_bucket_rate: f64,
    /// The baseline rate that bucket was compared with.
    #[serde(default)]
    pub last_bucket_baseline: f64,
    /// Since when the statistic has been at or above two thirds of the threshold (cleared below
    /// a third of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect_since: Option<DateTime<Utc>>,
    /// A canary's signal only: the failures of the rest of the cluster in the same intervals,
    /// and what their baseline expected, older reads weighing less (`detector::level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlLevel>,
}

/// What the signals that follow an upgrade's canaries count.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryScope {
    /// The DaemonSet canaries' nodes, by name: before the first change, those they will take
    /// (the first in name order); after it, those they took. Only while a query names
    /// `$canary_nodes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(max = 253)))]
    pub nodes: Vec<String>,
    /// The revision hashes of the canaried workloads' pods (`controller-revision-hash`, or a
    /// Deployment's `pod-template-hash`): before the first change, the revision they run, so
    /// that a baseline is of those pods; after it, the new revision's. At most 32. Only while
    /// a query names `$canary_revision`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = super::MAX_REVISIONS))]
    pub revisions: Vec<String>,
}

/// How far the rest of the cluster runs above or below its own baseline lately: what a
/// canary's signal expects of its own baseline too (the time of day, an incident of the whole
/// cluster), so that only what is the canary's own is judged.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlLevel {
    /// Failures of the rest, decayed.
    pub failures: f64,
    /// What the baseline expected of them, decayed the same way.
    pub expected: f64,
    /// When it was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// failures / expected, pulled towards 1 while there are few: what the canary's baseline
    /// is multiplied by.
    pub level: f64,
}

/// The pre-change baseline of a signal.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaselineStatus {
    /// Attempts in the baseline's span.
    pub attempts: i64,
    /// Failures among them.
    pub errors: i64,
    /// Pooled error rate, incidents inside the baseline left out.
    pub rate: f64,
    /// Start of the span the baseline was fitted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// End of that span: at the latest, the first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Variance of a bucket's error count relative to binomial noise (1 = binomial), at the
    /// baseline's typical volume. For display: steps are scaled by 1 + (n − 1) × `correlation`.
    #[serde(default)]
    pub dispersion: f64,
    /// Extra-binomial (beta-binomial) correlation of failures within a bucket: how much the
    /// error rate itself wanders. Scales each step to its own bucket's volume.
    #[serde(default)]
    pub correlation: f64,
    /// Error rate per hour of day (UTC), when the history covers at least a day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hourly: Vec<f64>,
    /// Fitted from what the operator recorded of the built-in signal between upgrades (not
    /// observed live, nor read from Prometheus).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recorded: bool,
    /// Running sum of squares of a live observation, for the dispersion.
    #[serde(default)]
    pub sum_sq: f64,
    /// Intervals a live observation has read.
    #[serde(default)]
    pub intervals: i64,
    /// How long a live observation saw the signal, in seconds: reads during an outage (the API
    /// server or the operator unavailable) are not judged, and the baseline is measured on
    /// until this covers `spec.analysis.baseline.observe`.
    #[serde(default)]
    pub observed_seconds: f64,
}
