//! Decide step, pure: whether a decision's status is worth writing. A status write is etcd churn
//! (at 1,000 upgrades, one a minute each is 17 writes/s), so it is written when something a user
//! reads changes, when a detector bucket closes, or when the written analysis is a bucket old;
//! the progress in between is carried in memory and, after a restart, read again from the signal.

use super::Decision;
use crate::crd::*;
use crate::detector::Cusum;
use chrono::Duration;

/// Whether `d.status` should replace `written`, the status last written as far as this operator
/// knows (None: nothing written yet).
pub fn worth_writing(
    spec: &MaintenanceUpgradeSpec,
    written: Option<&MaintenanceUpgradeStatus>,
    d: &Decision,
) -> bool {
    // A change to a target is recognised on the target after a restart, and its Events go out
    // with it; when the next look follows at once, that look writes the status for both (the
    // first write of a new upgrade too: claiming is such a chain).
    // A notification is written before it is sent, so that it is sent once.
    if written.map_or(&[][..], |w| &w.notifications[..]) != d.status.notifications {
        return true;
    }
    // A rollback is written with its first change, so that a follower goes on with it (its
    // reason, and a revert no window holds) instead of starting another for a reverted target.
    if written.and_then(|w| w.rollback.as_ref()) != d.status.rollback.as_ref() {
        return true;
    }
    // So is the first change: a baseline measured live is complete then, and a follower that
    // found the change made could not measure the minutes before it again.
    if d.effect.is_some() && written.is_none_or(|w| w.changed_at.is_none()) && d.status.changed_at.is_some() {
        return true;
    }
    let next_at_once = d.requeue_after.is_some_and(|r| r <= Duration::seconds(1));
    if d.effect.is_some() && next_at_once {
        return false;
    }
    let Some(w) = written else { return true };
    // Reading what the looks missed, piece after piece, the next look at once: written when it
    // has caught up, unless more than the analysis changed (after a restart meanwhile, the
    // pieces are read again).
    let only_analysis =
        |s: &MaintenanceUpgradeStatus| MaintenanceUpgradeStatus { analysis: vec![], ..headline(s) };
    if next_at_once
        && d.effect.is_none()
        && d.events.is_empty()
        && only_analysis(w) == only_analysis(&d.status)
    {
        return false;
    }
    if d.effect.is_some() || !d.events.is_empty() || headline(w) != headline(&d.status) {
        return true;
    }
    let quiet = quiet_limit(spec);
    d.status.analysis.iter().any(|a| match w.analysis.iter().find(|b| b.name == a.name) {
        None => true,
        Some(b) => {
            bucket_closed(&b.detector, &a.detector)
                || match (b.analysed_at, a.analysed_at) {
                    (Some(old), Some(new)) => new - old >= quiet,
                    (old, new) => old != new,
                }
        }
    })
}

/// What a user reads at a glance: everything but the running numbers of the analysis and the
/// condition messages that quote them.
fn headline(s: &MaintenanceUpgradeStatus) -> MaintenanceUpgradeStatus {
    let mut h = s.clone();
    for c in &mut h.conditions {
        c.message.clear();
    }
    h.analysis = s
        .analysis
        .iter()
        .map(|a| SignalStatus {
            name: a.name.clone(),
            verdict: a.verdict,
            unjudged_until: a.unjudged_until,
            unreadable: a.unreadable.clone(),
            definition: a.definition.clone(),
            taken_out_at: a.taken_out_at,
            baseline: a.baseline.as_ref().map(|_| BaselineStatus::default()),
            ..Default::default()
        })
        .collect();
    h
}

/// A bucket was judged (or the suspicion changed): the statistic a user follows moved.
fn bucket_closed(old: &DetectorState, new: &DetectorState) -> bool {
    old.statistic != new.statistic
        || old.last_bucket_rate != new.last_bucket_rate
        || old.last_bucket_baseline != new.last_bucket_baseline
        || old.suspect_since != new.suspect_since
}

/// The longest the written analysis may lag: the shortest detector bucket of the signals.
fn quiet_limit(spec: &MaintenanceUpgradeSpec) -> Duration {
    spec.effective_signals()
        .iter()
        .map(|s| Cusum::from_rule(&s.regression).bucket)
        .min()
        .unwrap_or(Duration::minutes(10))
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
