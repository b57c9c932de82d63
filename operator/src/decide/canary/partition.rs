//! Decide step, pure: a canary inside one StatefulSet, its top ordinals, by its own
//! `rollingUpdate.partition`, which its controller follows: the first stage that names it sets
//! the image and the partition (replicas minus the canary) in one write; a later stage lowers
//! the partition; the last restores the recorded strategy exactly. A revert sets the image
//! back, deletes the updated pods that are not Ready (an OrderedReady StatefulSet stays stuck on
//! them, kubernetes#67250; `Decider::unstick`, canary or not), then restores the strategy
//! (`canary::unwind`).

use super::Step;
use crate::crd::*;
use crate::decide::{Decider, Effect};
use crate::target::TargetKey;

/// A StatefulSet's rollingUpdate.partition (0 when none).
pub(super) fn partition_of(strategy: Option<&str>) -> usize {
    let v: serde_json::Value = strategy.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    v["rollingUpdate"]["partition"].as_u64().and_then(|p| usize::try_from(p).ok()).unwrap_or(0)
}

/// `strategy` (JSON) as a RollingUpdate with `partition`, everything else kept.
pub(super) fn with_partition(strategy: Option<&str>, partition: usize) -> String {
    let mut v: serde_json::Value =
        strategy.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_else(|| serde_json::json!({}));
    v["type"] = "RollingUpdate".into();
    if !v["rollingUpdate"].is_object() {
        v["rollingUpdate"] = serde_json::json!({});
    }
    v["rollingUpdate"]["partition"] = partition.into();
    v.to_string()
}

/// What a canary of a StatefulSet of `replicas` cannot do, beyond what every kind checks.
pub(super) fn partition_problem(
    stage: &str,
    key: &TargetKey,
    canary: &Canary,
    replicas: usize,
    strategy: Option<&str>,
    sizes: bool,
) -> Option<String> {
    // Partition 0 holds nothing back: that is the last stage's change, not a canary.
    if sizes && canary.portion().of(replicas) == Some(replicas) {
        return Some(format!(
            "canary.replicas of {key} in stage {stage} takes all {replicas} of its replicas: a partition \
             of 0 holds none back; ask for fewer, or name it without canary"
        ));
    }
    // A partition of its own would be lowered by the canary and restored by the revert with
    // pods below it still on the new image.
    (partition_of(strategy) > 0).then(|| {
        format!(
            "{key} has a rollingUpdate.partition of its own: a canary inside it cannot promise to \
             restore it; set it to 0, {}",
            super::way_out(!sizes)
        )
    })
}

impl Decider<'_> {
    /// A StatefulSet's canary: its top ordinals, by its rollingUpdate.partition, which its own
    /// controller follows. A later stage lowers the partition. None once the controller has
    /// updated those replicas and they are Ready.
    pub(super) fn partition_step(&mut self, step: Step<'_>) -> Option<String> {
        let Step { si, ci, c, key, t, canary, replace } = step;
        let replicas = usize::try_from(t.desired_pods).unwrap_or(0);
        // The replicas the canary was measured against, when it began: a scale since would move
        // what a partition means (a scale-up puts the new replicas above it, on the new image).
        let measured = self.recorded_total(&key);
        if replicas == 0 || measured.is_some_and(|m| m != replicas) {
            return Some(format!(
                "{key} was scaled from {} to {replicas} replicas during its canary; the canary is held \
                 (scale it back, or set spec.rollback.requested)",
                measured.unwrap_or(replicas)
            ));
        }
        let wanted = canary.portion().of(replicas).unwrap_or(1).clamp(1, replicas);
        let partition = replicas - wanted;
        let current = partition_of(t.update_strategy.as_deref());
        let container = c.container.clone().unwrap_or_default();
        let running: Vec<String> = t
            .pods
            .iter()
            .flatten()
            .filter(|p| p.runs(&container, &c.desired_image) && !p.deleting)
            .map(|p| p.name.clone())
            .collect();
        self.st.stages[si].components[ci].canary = Some(CanaryStatus {
            wanted: wanted as i32,
            total: replicas as i32,
            pods: running,
            original_update_strategy: self.recorded_strategy(&key, t),
            ..Default::default()
        });
        if current > partition {
            if replace && t.generation_observed && self.effect.is_none() {
                let strategy = with_partition(t.update_strategy.as_deref(), partition);
                self.note(
                    false,
                    crate::constants::reason::CANARY_WIDENED,
                    "SetPartition",
                    format!("{key}: partition {partition}, so that its top {wanted} of {replicas} replicas run {}", c.desired_image),
                );
                self.effect = Some(Effect::SetStrategy {
                    target: key.clone(),
                    resource_version: t.resource_version.clone(),
                    strategy,
                    handed_over: None,
                });
            }
            return Some(format!("{key}: lowering its partition to {partition}"));
        }
        // Judged by its own replicas: one below the partition that is not Ready (resyncing, its
        // node down) keeps the StatefulSet's rollout from complete, but is not the canary's.
        let ready = t
            .pods
            .iter()
            .flatten()
            .filter(|p| p.runs(&container, &c.desired_image) && !p.deleting && p.ready);
        let ready = ready.count();
        match &t.rollout {
            crate::target::Rollout::Failed(why) => {
                Some(format!("{key}: {why} (its top {wanted} of {replicas} replicas)"))
            }
            _ if ready >= wanted => None,
            crate::target::Rollout::InProgress(why) => Some(format!(
                "{key}: {ready} of its top {wanted} of {replicas} replicas run {} and are Ready ({why})",
                c.desired_image
            )),
            crate::target::Rollout::Complete => Some(format!(
                "{key}: {ready} of its top {wanted} of {replicas} replicas run {} and are Ready",
                c.desired_image
            )),
        }
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
