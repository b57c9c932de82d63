//! Decide step, pure: a canary inside one Deployment, which stays the user's own object. The
//! first stage that names it sets the new image with a rolling update that may only add pods:
//! `maxSurge` the canary's size, `maxUnavailable: 0`, and a `minReadySeconds` no stage outlasts
//! (with no progress deadline, which the API server wants above it). The new ReplicaSet's pods
//! then never count as available, so the Deployment's controller makes exactly that many and
//! scales no old pod down: the canary runs beside every replica the user had, and is judged
//! against them. A later stage raises `maxSurge`; the last restores the recorded settings, and
//! the Deployment's own rolling update takes the rest. A revert sets the image and the recorded
//! settings back in one write: the old ReplicaSet is the current one again, and the
//! Deployment's controller scales the canary's away, touching no other pod.
//!
//! A Deployment whose owner allows no surge (`maxSurge: 0`) gets no canary: its pod beside the
//! replicas may be unable to run at all (a hostPort, a volume only one pod may mount).
//!
//! Why not `spec.paused`: a paused Deployment makes no new ReplicaSet, so the operator would
//! have to make it itself (a second workload in all but name) or pause it once the controller
//! has begun (a race it can lose); `kubectl rollout undo` refuses a paused Deployment, and
//! Argo CD shows it Suspended.

use super::{Step, same_strategy};
use crate::crd::*;
use crate::decide::{Decider, Effect};
use crate::target::{PodPlace, TargetKey, TargetState};
use serde_json::json;

/// The canary's `minReadySeconds`: longer than any stage (68 years), so its pods never count
/// as available to the Deployment's controller, which then takes no old pod away.
const HOLD_READY_SECONDS: i64 = i32::MAX as i64 - 1;
/// `progressDeadlineSeconds` must exceed `minReadySeconds`; `i32::MAX` also means "none".
const NO_PROGRESS_DEADLINE: i64 = i32::MAX as i64;

/// A Deployment's rollout settings (`target::deployment_settings`) while a canary of `k` pods
/// runs inside it.
pub(super) fn surge_settings(k: usize) -> String {
    json!({
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": k, "maxUnavailable": 0}},
        "minReadySeconds": HOLD_READY_SECONDS,
        "progressDeadlineSeconds": NO_PROGRESS_DEADLINE,
    })
    .to_string()
}

/// The canary's size, if `settings` are a canary's: a rolling update that may only add pods,
/// held from ever counting them available. One that may take a pod away (a chart's rolling
/// update put back beside the held minReadySeconds) is not: the controller would scale an old
/// replica down and grow the canary, unjudged.
pub(in crate::decide) fn surge_of(settings: Option<&str>) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(settings?).ok()?;
    let rolling = &v["strategy"]["rollingUpdate"];
    if v["minReadySeconds"].as_i64() != Some(HOLD_READY_SECONDS)
        || rolling["maxUnavailable"].as_i64() != Some(0)
    {
        return None;
    }
    usize::try_from(rolling["maxSurge"].as_u64()?).ok()
}

/// Whether a Deployment's settings hold the canary's minReadySeconds, under which none of its
/// pods would count as available: left by someone who put back its strategy alone (a chart that
/// does not set minReadySeconds).
pub(super) fn holds_ready(settings: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(settings).unwrap_or_default();
    v["minReadySeconds"].as_i64() == Some(HOLD_READY_SECONDS)
}

/// Whether a Deployment's settings (`target::deployment_settings`) update by Recreate.
fn recreates(settings: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(settings).unwrap_or_default();
    v["strategy"]["type"] == "Recreate"
}

/// What a canary of a Deployment cannot do, beyond what every kind checks. With `changed`
/// (the upgrade changed something already; its stages cannot be edited), the advice is to undo
/// what stands in the way or to revert, not to upgrade it whole.
pub(super) fn surge_problem(
    key: &TargetKey,
    t: &TargetState,
    settings: &str,
    changed: bool,
) -> Option<String> {
    let or_else = super::way_out(changed);
    if recreates(settings) {
        return Some(format!(
            "{key} updates by Recreate: a canary would run the new pods beside the old ones, which \
             Recreate exists to prevent; give it a RollingUpdate strategy, {or_else}"
        ));
    }
    // A percentage rounds up (the Deployment's controller's rule): only 0 and "0%" allow none.
    let v: serde_json::Value = serde_json::from_str(settings).unwrap_or_default();
    let surge = &v["strategy"]["rollingUpdate"]["maxSurge"];
    if surge.as_i64() == Some(0) || surge.as_str().is_some_and(|p| p.trim_end_matches('%').parse() == Ok(0)) {
        return Some(format!(
            "{key} allows no surge (maxSurge {surge}): its owner allows no pod beside its replicas (a \
             hostPort, a volume only one pod may mount), and a canary is new pods beside them; allow a \
             surge, {or_else}"
        ));
    }
    t.paused.then(|| {
        format!("{key} is paused (spec.paused): its controller would make no canary; resume it, {or_else}")
    })
}

impl Decider<'_> {
    /// What a revert of Deployment `key` writes with its image: the recorded settings, in the
    /// same write. With two writes, an operator stopped between them would leave the old
    /// ReplicaSet current under the canary's minReadySeconds, which its controller applies to
    /// the current ReplicaSet: none of the Deployment's pods would count as available. Not
    /// once handed over: its settings are its own then, whoever set them since. (Before, any
    /// are restored: someone who put back its strategy mid-canary leaves the canary's
    /// minReadySeconds, under which no pod would ever count as available.)
    pub(in crate::decide) fn settings_with_revert(
        &self,
        key: &TargetKey,
        t: &TargetState,
    ) -> Option<(String, String)> {
        if key.kind != WorkloadKind::Deployment || !self.canaried(key) || self.handed_over_to(key, t) {
            return None;
        }
        let original = self.recorded_strategy(key, t)?;
        (!same_strategy(t.update_strategy.as_deref(), Some(&original))).then(|| (original.clone(), original))
    }

    /// A Deployment's canary: its new pods, made beside the old ones. Raises `maxSurge` when a
    /// later stage asks for more. None once as many new pods as the stage wants are Ready.
    pub(super) fn surge_step(&mut self, step: Step<'_>) -> Option<String> {
        let Step { si, ci, c, key, t, canary, replace } = step;
        // Its size is taken of the replicas it had when the canary began, so that a scale (an
        // autoscaler) neither grows nor shrinks it for good ...
        let replicas = usize::try_from(t.desired_pods).unwrap_or(0);
        let total = self.recorded_total(&key).unwrap_or(replicas).max(1);
        // ... but never more new replicas than the Deployment has now: the status is input, and
        // a total written there by someone else must not grow the canary past the workload.
        let wanted = canary.portion().of(total).unwrap_or(1).clamp(1, total).min(replicas.max(1));
        let Some(pods) = t.pods.as_ref() else {
            return Some(format!("{key}: waiting to see its pods (the pod watch is listing them)"));
        };
        let container = c.container.clone().unwrap_or_default();
        let new: Vec<&PodPlace> =
            pods.iter().filter(|p| !p.deleting && p.runs(&container, &c.desired_image)).collect();
        let ready = new.iter().filter(|p| p.ready).count();
        self.st.stages[si].components[ci].canary = Some(CanaryStatus {
            wanted: wanted as i32,
            total: total as i32,
            pods: new.iter().map(|p| p.name.clone()).collect(),
            original_update_strategy: self.recorded_strategy(&key, t),
            ..Default::default()
        });
        if surge_of(t.update_strategy.as_deref()).is_some_and(|k| k < wanted) {
            // Paused, its controller spends a wider surge on more old replicas (it scales every
            // ReplicaSet in proportion) and makes no new one.
            if t.paused {
                return Some(format!(
                    "{key} was paused (spec.paused) by its owner: the canary widens to {wanted} replicas once it is \
                     resumed (kubectl rollout resume), nothing written meanwhile; not resumed by the stage's \
                     progressDeadline, the upgrade is reverted"
                ));
            }
            if replace && t.generation_observed && self.effect.is_none() {
                self.note(
                    false,
                    crate::constants::reason::CANARY_WIDENED,
                    "SetSurge",
                    format!(
                        "{key}: maxSurge {wanted}, so that {wanted} replicas run {} beside its {total}",
                        c.desired_image
                    ),
                );
                self.effect = Some(Effect::SetStrategy {
                    target: key.clone(),
                    resource_version: t.resource_version.clone(),
                    strategy: surge_settings(wanted),
                    handed_over: None,
                });
            }
            return Some(format!("{key}: widening its canary to {wanted} replicas"));
        }
        (ready < wanted).then(|| format!("{key}: {ready} of {wanted} canary replicas Ready"))
    }
}

#[cfg(test)]
#[path = "surge_tests.rs"]
mod tests;
