//! Names shared by every step: API group, field manager, annotations, condition types and reasons.

/// The operator's version (its Cargo package's): the image's tag, the chart's appVersion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Field manager for every write the operator makes (target patches and status).
pub const FIELD_MANAGER: &str = "maintenance-operator";
/// Reporting controller name on Events.
pub const CONTROLLER_NAME: &str = "maintenance-operator";

/// On a target: which MaintenanceUpgrade (`namespace/name`) owns it until that upgrade ends.
pub const OWNER_ANNOTATION: &str = "maintenance.dev/owner";
/// On a target: the UID of that upgrade, so that a re-created upgrade of the same name does not
/// take an earlier one's mark for its own.
pub const OWNER_UID_ANNOTATION: &str = "maintenance.dev/owner-uid";
/// Label on a target while an upgrade owns it (the value is that upgrade's UID): the operator
/// watches the targets that carry it, so that their changes wake their upgrade.
pub const CLAIMED_LABEL: &str = "maintenance.dev/claimed-by";
/// On a target: the image it ran before the upgrade touched it (`container=image`).
pub const KNOWN_GOOD_ANNOTATION: &str = "maintenance.dev/known-good";
/// On a DaemonSet with a canary inside it: its `spec.updateStrategy` before the canary set it
/// to OnDelete, as JSON, restored exactly when the canary is widened to all or reverted.
/// On a claimed target: the digest (`repository@sha256:…`) its own pods ran when it was claimed,
/// which a revert pins the known-good image to. Only the operator and whoever may edit the
/// workload can change it; the status's copy is held to it.
pub const KNOWN_GOOD_DIGEST_ANNOTATION: &str = "maintenance.dev/known-good-digest";
pub const ORIGINAL_STRATEGY_ANNOTATION: &str = "maintenance.dev/original-update-strategy";
/// On every MaintenanceUpgrade that has not ended and let go of its targets: deleting it reverts
/// what it changed, releases its targets, and only then lets it go.
pub const FINALIZER: &str = "maintenance.dev/revert-and-release";

/// Condition types.
pub mod condition {
    /// True while the upgrade is being applied, soaked or reverted.
    pub const PROGRESSING: &str = "Progressing";
    /// True once every stage has passed its soak.
    pub const COMPLETE: &str = "Complete";
    /// True once the changed components are back on their known-good images.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// The last analysis verdict: True (no regression), False (regression), Unknown (inconclusive).
    pub const HEALTHY: &str = "Healthy";
    /// True when the operator cannot proceed until something outside it changes.
    pub const BLOCKED: &str = "Blocked";
    /// Whether the maintenance window is open now.
    pub const WINDOW_OPEN: &str = "WindowOpen";
    /// True when a claimed target is managed by Argo CD, Flux or Helm: the message says which
    /// setting keeps that tool from putting the old image back.
    pub const MANAGED_BY_GITOPS: &str = "ManagedByGitOps";
}

/// Condition reasons and Event reasons.
pub mod reason {
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The upgrade names workloads outside its namespace, and its namespace is not trusted.
    pub const CROSS_NAMESPACE: &str = "CrossNamespaceNotAllowed";
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    pub const CONTAINER_NOT_FOUND: &str = "ContainerNotFound";
    pub const CONTAINER_AMBIGUOUS: &str = "ContainerAmbiguous";
    /// A target's container runs an image that is no image reference, or its known-good record
    /// holds one: not recorded as known-good.
    pub const IMAGE_NOT_A_REFERENCE: &str = "ImageNotAReference";
    pub const TARGET_OWNED: &str = "TargetOwnedByAnotherUpgrade";
    pub const CHANGED_EXTERNALLY: &str = "ImageChangedExternally";
    /// A target runs an image an upgrade deleted before it ended set, and never proved.
    pub const UNPROVEN_IMAGE: &str = "UnprovenImageLeftByDeletedUpgrade";
    /// The status names a target the spec does not: written by someone other than the operator.
    pub const NOT_IN_SPEC: &str = "StatusNotInSpec";
    /// A record in the status disagreed with the spec or with the target's own record; corrected.
    pub const STATUS_CORRECTED: &str = "StatusCorrected";
    pub const TARGET_DELETED: &str = "TargetDeleted";
    pub const CLAIMED: &str = "TargetsClaimed";
    /// A claimed target is managed by Argo CD, Flux or Helm, which would undo the change.
    pub const MANAGED_BY_GITOPS: &str = "ManagedByGitOps";
    pub const WINDOW_CLOSED: &str = "WindowClosed";
    pub const WINDOW_OPENED: &str = "WindowOpen";
    pub const MEASURING_BASELINE: &str = "MeasuringBaseline";
    pub const BASELINE_LIMIT: &str = "BaselineLimit";
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    pub const PAUSED: &str = "Paused";
    pub const STAGE_STARTED: &str = "StageStarted";
    pub const IMAGE_SET: &str = "ImageSet";
    /// A canary inside a workload took more of its nodes.
    pub const CANARY_WIDENED: &str = "CanaryWidened";
    pub const ROLLED_OUT: &str = "RolledOut";
    pub const SOAK_PASSED: &str = "SoakPassed";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const NO_REGRESSION: &str = "NoRegression";
    pub const REGRESSION: &str = "RegressionDetected";
    pub const INCONCLUSIVE: &str = "AnalysisInconclusive";
    pub const SUSPECTED: &str = "RegressionSuspected";
    pub const SUSPICION_CLEARED: &str = "SuspicionCleared";
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const WINDOW_NEVER_OPENS: &str = "WindowNeverOpens";
    pub const MANUAL_ROLLBACK: &str = "ManualRollback";
    pub const UPGRADE_DELETED: &str = "UpgradeDeleted";
    pub const REVERTED: &str = "Reverted";
    pub const ROLLED_BACK: &str = "RolledBack";
    pub const ROLLBACK_WAITS_FOR_WINDOW: &str = "RollbackWaitsForWindow";
    pub const AUTOMATIC_ROLLBACK_DISABLED: &str = "AutomaticRollbackDisabled";
    pub const ACTION_FAILED: &str = "ActionFailed";
    pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
}
