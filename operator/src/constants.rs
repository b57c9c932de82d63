//! Names shared by every step: API group, field manager, annotations, condition types and reasons.

/// The operator's version (its Cargo package's): the image's tag, the chart's appVersion.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Field manager for every write the operator makes (target patches and status).
pub const FIELD_MANAGER: &str = "maintenance-operator";
/// Reporting controller name on Events.
pub const CONTROLLER_NAME: &str = "maintenance-operator";
/// Objects per page of a watch's list. A page is read whole, as the response and then as
/// objects, before they are made into the few facts kept of each, and six watches list at once
/// at a start: at 50 a page, a tenant's objects of 1 MiB took the operator to 392 MiB, past its
/// 256 MiB limit (`make bench-memory`), and each replica started after it would die the same
/// way. Streaming lists (WatchList) would hold less, but kube-runtime streams from any
/// resourceVersion (a cache behind another API server's), and not every supported release
/// streams.
pub const LIST_PAGE_SIZE: u32 = 10;

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
/// On a claimed target: the digest (`repository@sha256:…`) its own pods ran when it was claimed,
/// which a revert pins the known-good image to. Only the operator and whoever may edit the
/// workload can change it; the status's copy is held to it.
pub const KNOWN_GOOD_DIGEST_ANNOTATION: &str = "maintenance.dev/known-good-digest";
/// On a workload with a canary inside it: its rollout settings before the canary changed them,
/// as JSON, restored exactly when the canary hands the rest to the workload or is reverted.
pub const ORIGINAL_STRATEGY_ANNOTATION: &str = "maintenance.dev/original-update-strategy";
/// On a workload with a canary inside it: which upgrade and stage handed the rest to its own
/// rollout settings (`<upgrade UID>/<stage>`), written with them, so that after a restart
/// before the status says so, the settings restored are known for the operator's own and not
/// for someone else's change.
pub const HANDED_OVER_ANNOTATION: &str = "maintenance.dev/handed-over";
/// On every MaintenanceUpgrade that has not ended and let go of its targets: deleting it reverts
/// what it changed, releases its targets, and only then lets it go.
pub const FINALIZER: &str = "maintenance.dev/revert-and-release";

/// Condition types.
pub mod condition {
    /// True until the upgrade ends (Succeeded, RolledBack or Failed): while it is applied,
    /// soaked or reverted, and while it waits (for the window, an approval, a human).
    pub const PROGRESSING: &str = "Progressing";
    /// True once every stage has passed its soak; False on any other end, so wait for any end with
    /// `kubectl wait --for=condition=Progressing=False`.
    pub const COMPLETE: &str = "Complete";
    /// True once the rollback ended: every changed component it may revert is back on its
    /// known-good image; one someone else changed or deleted, or with no known-good image
    /// recorded, is left as it is and named in the message ("not reverted").
    pub const ROLLED_BACK: &str = "RolledBack";
    /// The last analysis verdict: True (no regression), False (regression), Unknown (inconclusive).
    pub const HEALTHY: &str = "Healthy";
    /// True when the operator cannot proceed until something outside it changes.
    pub const BLOCKED: &str = "Blocked";
    /// Whether the maintenance window is open now; gone once the upgrade has ended.
    pub const WINDOW_OPEN: &str = "WindowOpen";
    /// True when a claimed target is managed by Argo CD, Flux or Helm: the message says which
    /// setting keeps that tool from putting the old image back.
    pub const MANAGED_BY_GITOPS: &str = "ManagedByGitOps";
}

/// Condition reasons and Event reasons.
pub mod reason {
    /// The spec, or a signal read at runtime, cannot be used (a selector the API server refuses, a
    /// namespace that does not exist, PromQL Prometheus refuses, an address not allowed): the message
    /// says what to fix. Nothing is changed or promoted meanwhile; analysis and rollback go on.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The upgrade names workloads outside its namespace, and its namespace is not trusted.
    pub const CROSS_NAMESPACE: &str = "CrossNamespaceNotAllowed";
    /// A target named in the spec does not exist (before anything changed): create it or fix the
    /// name.
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    /// The named container is not in the target's pod template.
    pub const CONTAINER_NOT_FOUND: &str = "ContainerNotFound";
    /// The pod template has several containers, names no `kubectl.kubernetes.io/default-container`,
    /// and the component names none: set `container`.
    pub const CONTAINER_AMBIGUOUS: &str = "ContainerAmbiguous";
    /// A target's container runs an image that is no image reference, or its known-good record
    /// holds one: not recorded as known-good.
    pub const IMAGE_NOT_A_REFERENCE: &str = "ImageNotAReference";
    /// Another upgrade that has not ended owns the target; this one waits until it ends or is
    /// deleted.
    pub const TARGET_OWNED: &str = "TargetOwnedByAnotherUpgrade";
    /// Someone else changed a target's image mid-upgrade: the operator stops touching it and holds
    /// every forward step until a human rolls back or deletes the upgrade.
    pub const CHANGED_EXTERNALLY: &str = "ImageChangedExternally";
    /// A target runs an image an upgrade deleted before it ended set, and never proved.
    pub const UNPROVEN_IMAGE: &str = "UnprovenImageLeftByDeletedUpgrade";
    /// The status names a target the spec does not: written by someone other than the operator.
    pub const NOT_IN_SPEC: &str = "StatusNotInSpec";
    /// A record in the status disagreed with the spec or with the target's own record; corrected.
    pub const STATUS_CORRECTED: &str = "StatusCorrected";
    /// A changed target was deleted: the rest of the upgrade is reverted.
    pub const TARGET_DELETED: &str = "TargetDeleted";
    /// Every target's known-good image is recorded and the targets are marked as owned.
    pub const CLAIMED: &str = "TargetsClaimed";
    /// A claimed target is managed by Argo CD, Flux or Helm, which would undo the change.
    pub const MANAGED_BY_GITOPS: &str = "ManagedByGitOps";
    /// The maintenance window is closed: the message says when it opens.
    pub const WINDOW_CLOSED: &str = "WindowClosed";
    /// The maintenance window is open: the message says when it closes.
    pub const WINDOW_OPENED: &str = "WindowOpen";
    /// The signals are observed before any change, to learn their baseline.
    pub const MEASURING_BASELINE: &str = "MeasuringBaseline";
    /// The baseline is too short to know the time of day: the message says the smallest increase it
    /// acts on, and how much history would act on the rule's own. Or a canary's nodes are too
    /// quiet to judge it on its own over its soak: the message says what would.
    pub const BASELINE_LIMIT: &str = "BaselineLimit";
    /// The baseline's error rate is so high that no regression could be told above it (measured
    /// while the cluster itself failed, or of a signal that always fails this much): nothing
    /// changes on it. The upgrade is Blocked meanwhile: one observed live is measured again, one
    /// from history read again until it leaves room.
    pub const BASELINE_NO_ROOM: &str = "BaselineLeavesNoRoom";
    /// The next stage has `requireApproval`: add its name to `spec.approvedStages`.
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    /// `spec.paused` is true: no stage starts or is promoted; analysis and automatic rollback go on.
    pub const PAUSED: &str = "Paused";
    /// A stage's images were set.
    pub const STAGE_STARTED: &str = "StageStarted";
    /// A target's image was set to the new one.
    pub const IMAGE_SET: &str = "ImageSet";
    /// A canary inside a workload took more of its nodes.
    pub const CANARY_WIDENED: &str = "CanaryWidened";
    /// Every component of the stage has rolled out; its soak begins.
    pub const ROLLED_OUT: &str = "RolledOut";
    /// The stage soaked for its whole `soak` and every signal passed.
    pub const SOAK_PASSED: &str = "SoakPassed";
    /// Every stage passed its soak: the upgrade ended Succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The signals show no regression against their baseline.
    pub const NO_REGRESSION: &str = "NoRegression";
    /// A signal's statistic reached its threshold with enough excess failures: the upgrade rolls back
    /// (or waits for a human when automatic rollback is off).
    pub const REGRESSION: &str = "RegressionDetected";
    /// Not enough data for a verdict (too few attempts, Prometheus unreachable or empty, pods not
    /// seen during an outage): nothing is promoted or reverted until the signal can be read.
    pub const INCONCLUSIVE: &str = "AnalysisInconclusive";
    /// Evidence of a regression is building (the statistic passed two thirds of its threshold): a
    /// soak that ends now is extended.
    pub const SUSPECTED: &str = "RegressionSuspected";
    /// The statistic fell below a third of its threshold again.
    pub const SUSPICION_CLEARED: &str = "SuspicionCleared";
    /// A stage did not roll out within its `progressDeadline` (or its pods failed): it is reverted.
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    /// `spec.window.deadline` passed with stages left: what changed is reverted.
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    /// The window will not open again while stages are left: what changed is reverted.
    pub const WINDOW_NEVER_OPENS: &str = "WindowNeverOpens";
    /// `spec.rollback.requested` is true: what changed is reverted.
    pub const MANUAL_ROLLBACK: &str = "ManualRollback";
    /// The upgrade was deleted before it ended: what changed is reverted, then its targets are
    /// released and it goes.
    pub const UPGRADE_DELETED: &str = "UpgradeDeleted";
    /// Its namespace was taken off trustedNamespaces while it held workloads in other
    /// namespaces: what it changed is reverted, whatever its rollback settings, then its targets
    /// are released.
    pub const TRUST_WITHDRAWN: &str = "TrustWithdrawn";
    /// A target is back on its known-good image.
    pub const REVERTED: &str = "Reverted";
    /// A workload gets back the rollout settings a canary left on it (OnDelete, a partition, a
    /// surge), from the record on the workload: in a rollback, or before an ended upgrade lets
    /// go of it.
    pub const CANARY_SETTINGS_RESTORED: &str = "CanarySettingsRestored";
    /// An ended upgrade let go of a workload still on a canary's rollout settings, with the record
    /// of its own, for a reason the message gives: restoring them would roll pods onto an image
    /// no one judged, its pods did not show in time whether it would, someone else set them
    /// last, or the upgrade may no longer change that namespace. The message says what to put
    /// back; the next upgrade of it does so too.
    pub const CANARY_SETTINGS_KEPT: &str = "CanarySettingsKept";
    /// Every changed component it may revert is back on its known-good image: the upgrade ended
    /// RolledBack (a Warning when the message names components not reverted).
    pub const ROLLED_BACK: &str = "RolledBack";
    /// A rollback is due but `rollback.outsideWindow` is false: it waits for the window.
    pub const ROLLBACK_WAITS_FOR_WINDOW: &str = "RollbackWaitsForWindow";
    /// A rollback is due but `rollback.automatic` is false: set `spec.rollback.requested` to revert.
    pub const AUTOMATIC_ROLLBACK_DISABLED: &str = "AutomaticRollbackDisabled";
    /// Blocked is False: nothing blocks the upgrade.
    pub const NOT_BLOCKED: &str = "NotBlocked";
    /// RolledBack is False: no rollback has been asked for or decided.
    pub const NOT_REQUESTED: &str = "NotRequested";
    /// A look keeps failing: the API server refuses a change to a target or the upgrade's status
    /// write (an admission policy, a missing permission), a read fails, or a look runs too long.
    /// The Event's action says which (`Act`, `WriteStatus`, `Observe`, `Look`); retried 5 s,
    /// 10 s, 20 s … up to once a minute, and said again only when the failure changes or an hour
    /// after it was said. A change to a target the API server refuses (400, 403, 422) before
    /// the upgrade ends is also the reason of `Blocked`: what the operator was doing and what
    /// the API server said, until the change goes through.
    pub const ACTION_FAILED: &str = "ActionFailed";
    /// A webhook delivery failed (the first failure of each notification): retried with backoff, see
    /// `status.notifications`. Or one still to deliver is no longer retried: only 50 are kept.
    pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
}
