//! Who hears about an upgrade: webhooks named in the spec, and what was sent, in the status, so
//! that each notification is sent once across restarts. Plain data.

use chrono::{DateTime, Utc};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most notifications an upgrade's status keeps: with at most 5 webhooks and 7 kinds, room
/// for the newest of each and 15 more.
pub const MAX_NOTIFICATIONS: usize = 50;

/// Webhooks told about this upgrade. Without `notifications`, the operator-wide default webhook
/// (`run --default-webhook-secret`) is used, if there is one; `webhooks: []` turns it off.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    /// Webhooks told about the upgrade's transitions (at most 5).
    #[serde(default)]
    #[schemars(length(max = 5))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub webhooks: Vec<Webhook>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Names this webhook in status and Events.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `Generic` JSON, or `Slack` (an incoming-webhook message).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The Secret in the upgrade's namespace whose key holds the URL (never the URL itself: it
    /// is a credential). The operator needs `get` on that one Secret: see the docs, Notifications.
    pub url_secret_ref: SecretKeyRef,
    /// Which notifications to send (default: all of them). Not `on`: YAML 1.1 parsers (kubectl's
    /// among them) read that key as `true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationKind>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name, in the upgrade's namespace.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$"))]
    pub name: String,
    /// The key whose value is the URL (default: url).
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

fn default_key() -> String {
    "url".into()
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WebhookFormat {
    #[default]
    Generic,
    Slack,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum NotificationKind {
    StageStarted,
    RegressionSuspected,
    /// A problem was found (a regression, a failed rollout, a target changed or deleted) and
    /// the rollback waits: for a human (automatic rollback is off) or for the window.
    Degraded,
    RolledBack,
    Succeeded,
    Failed,
    Blocked,
}

/// One notification to one webhook: what it says, and whether it was delivered.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    /// Stable across retries and restarts (`<webhook>/<kind>/<n>`). A payload's `id` is this
    /// after the upgrade's UID (`<uid>/<webhook>/<kind>/<n>`), unique across upgrades: receivers
    /// can drop repeats by it.
    pub id: String,
    /// The webhook, as named in spec.notifications.webhooks (or `default`, the operator's).
    pub webhook: String,
    /// StageStarted, RegressionSuspected, Degraded, RolledBack, Succeeded, Failed or Blocked.
    pub kind: NotificationKind,
    /// Phase, stage, reason and message as they were when it was decided.
    pub phase: super::Phase,
    /// The stage it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The reason of the Event or condition it tells of.
    pub reason: String,
    /// What it says.
    pub message: String,
    /// The first signal's baseline and observed error rates then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The first signal's observed error rate then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// When it was decided (before any attempt).
    pub created_at: DateTime<Utc>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Delivery attempts so far.
    #[serde(default)]
    // Kubernetes knows int32 and int64, and warns of "uint32" at every install.
    #[schemars(range(max = 4294967295u32), extend("format" = "int64"))]
    pub attempts: u32,
    /// Why the last attempt failed: what failed, never what the far side said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due after a failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// Not sent and never will be: its webhook is no longer configured.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
}
