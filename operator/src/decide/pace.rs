//! Decide step, pure: whether each stage's progressDeadline leaves its DaemonSets the time to
//! roll out at all, judged before anything changes. A DaemonSet's pods are replaced a few at a
//! time (its maxUnavailable, or maxSurge when it surges; the operator paces a canary's the same
//! way), and no pod is replaced in less than a few seconds (deleted, made again, started, found
//! Ready): a 500-node DaemonSet replaced one at a time needs more than 40 minutes however good
//! its image, and the default deadline of 10 minutes would revert it. Refused before the first
//! change, when making the upgrade again with a longer deadline costs nothing; once something
//! has changed, the stages cannot be edited, so a check then could only hold the upgrade.

use super::{Decider, plan::Plan};
use crate::crd::*;
use crate::target::TargetKey;
use crate::timefmt::duration;
use chrono::Duration;

/// The least time one pod of a DaemonSet takes to be replaced with nothing slow: the old pod
/// deleted and gone, a new one made, bound, started and found Ready. Real node agents take
/// longer (an image to pull, a readiness probe's period).
pub(super) const LEAST_PER_POD: Duration = Duration::seconds(5);

impl Decider<'_> {
    /// The first stage whose DaemonSets cannot roll out within its progressDeadline even at the
    /// least time a pod takes, and what to do about it. Only before anything has changed.
    pub(super) fn pace_problem(&self, plan: &Plan) -> Option<String> {
        if self.st.changed_at.is_some() {
            return None;
        }
        // Per stage: the rounds of replacements its canaries take (one after the other: a look
        // replaces one target's pods), those of the DaemonSets it hands over or upgrades whole
        // (side by side: each one's own controller), and what they are, in words.
        let mut stages: Vec<(i32, i32, Vec<String>)> = vec![(0, 0, vec![]); self.o.spec.stages.len()];
        let ns = &self.o.namespace;
        let mut seen: Vec<TargetKey> = vec![];
        for c in self.o.spec.stages.iter().flat_map(|s| &s.components) {
            let key = TargetKey::of(c, ns);
            if key.kind != WorkloadKind::DaemonSet || seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let Some(Some(t)) = self.o.targets.get(&key) else { continue };
            let total = usize::try_from(t.desired_pods).unwrap_or(0);
            let strategy = t.update_strategy.as_deref();
            // OnDelete rolls nothing by itself (a canary inside it is refused by
            // `canary_problem`); a template on the new image already changes no pod.
            let container = t.resolve_container(c.container.as_deref()).ok();
            let applied =
                container.and_then(|n| t.image(&n)).is_some_and(|i| crate::image::runs(i, &c.image));
            if total == 0 || applied || super::canary::on_delete(strategy) {
                continue;
            }
            // Each stage replaces what the one before left: a canary's size, then the rest.
            let mut before = 0;
            for (si, ci) in self.appearances(&key) {
                let canary = self.canary_of(si, ci);
                let wanted = match canary {
                    Some(canary) => {
                        // Its nodeSelector's nodes not read yet: that stage waits for them, and
                        // is not judged; what it will have taken is at most its share of all.
                        let pool = self.node_pool(si, ci).map(|(eligible, _)| eligible);
                        let Some(eligible) = pool.or(canary.node_selector.is_none().then_some(total)) else {
                            before = before.max(canary.portion().of(total).unwrap_or(total));
                            continue;
                        };
                        canary.portion().of(eligible).unwrap_or(1).clamp(1, eligible.max(1))
                    }
                    None => total,
                };
                let at_once = super::canary::replaced_at_once(strategy, total, canary.is_some());
                let replaced = wanted.saturating_sub(before);
                before = before.max(wanted);
                if replaced > 0 {
                    let rounds = i32::try_from(replaced.div_ceil(at_once)).unwrap_or(i32::MAX);
                    let (paced, own, what) = &mut stages[si];
                    if canary.is_some() {
                        *paced = paced.saturating_add(rounds);
                    } else {
                        *own = (*own).max(rounds);
                    }
                    what.push(format!("{replaced} pods of {key}, at most {at_once} at a time"));
                }
            }
        }
        stages.into_iter().enumerate().find_map(|(si, (paced, own, what))| {
            let least = LEAST_PER_POD * paced.max(own);
            let deadline = plan.progress_deadline(si);
            (least > deadline).then(|| {
                format!(
                    "stage {} replaces {} (its updateStrategy): at {} a pod, the least one takes, that is {}, \
                     longer than its progressDeadline of {}, so it would be reverted at its deadline whatever the \
                     image; give the stage a progressDeadline of {} or more (real pods often take 30 s or longer), \
                     or the DaemonSet a larger maxUnavailable (maxSurge, if it surges)",
                    self.o.spec.stages[si].name,
                    what.join(" and "),
                    duration(LEAST_PER_POD),
                    duration(least),
                    duration(deadline),
                    duration(least)
                )
            })
        })
    }
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod tests;
