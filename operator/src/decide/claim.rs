//! Decide step, pure: claim every target before anything changes, recording its known-good
//! image in status and on the target; wait for a target another upgrade owns.

use super::{BLOCKED_RETRY, Claim, Decider, Effect};
use crate::constants::{KNOWN_GOOD_ANNOTATION, reason};
use crate::crd::*;
use crate::image::is_reference;
use crate::target::gitops;
use crate::target::{TargetState, known_good_value, parse_known_good};
use chrono::Duration;

impl Decider<'_> {
    /// Claim every target before anything changes: record its known-good image in status and
    /// on the target, all the claimable ones in one effect, in `TargetKey` order, up to the
    /// first that cannot be. True once all are claimed.
    pub(super) fn claim(&mut self) -> bool {
        if self.st.claimed_at.is_some() {
            return true;
        }
        let mut spec_components: Vec<(usize, usize, Option<String>)> = self
            .o
            .spec
            .stages
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.components.iter().enumerate().map(move |(ci, c)| (si, ci, c.container.clone()))
            })
            .collect();
        // In one order every upgrade shares (kind, namespace, name), each claimed only once
        // those before it are, and sent one at a time (act): two upgrades applied together
        // that name the same targets cannot each take one and wait for the other's for ever.
        // Whichever takes the first they share is the only one that can take the rest; the other
        // waits, holding none of those after it.
        spec_components.sort_by_cached_key(|(si, ci, _)| self.target(&self.st.stages[*si].components[*ci]).0);
        let (mut claims, mut recorded) = (vec![], vec![]);
        for (si, ci, wanted) in spec_components {
            let c = self.st.stages[si].components[ci].clone();
            if c.phase != ComponentPhase::Pending {
                continue;
            }
            let (key, t) = self.target(&c);
            // A target named again (a canary widened by a later stage) is claimed once.
            if let Some(first) = claims.iter().position(|cl: &Claim| cl.target == key)
                && let Some(t) = t
            {
                let known_good = owned(parse_known_good(&claims[first].known_good).unwrap_or_default());
                self.record_claim(si, ci, &known_good, t);
                continue;
            }
            // A target that holds the upgrade is reported once those before it are claimed.
            let Some(t) = t else {
                if !claims.is_empty() {
                    break;
                }
                self.hold_before_claim(
                    reason::TARGET_NOT_FOUND,
                    format!("{key} does not exist; create it or fix the component, nothing has been changed"),
                );
                return false;
            };
            let container = match t.resolve_container(wanted.as_deref()) {
                Ok(c) => c,
                Err(_) if !claims.is_empty() => break,
                Err(e) => {
                    let r = if wanted.is_some() {
                        reason::CONTAINER_NOT_FOUND
                    } else {
                        reason::CONTAINER_AMBIGUOUS
                    };
                    self.hold_before_claim(r, format!("{key} {e}; nothing has been changed"));
                    return false;
                }
            };
            // The other containers it changes with it: each in the template, none its own.
            let also: Vec<String> = self.o.spec.stages[si].components[ci]
                .also_containers
                .iter()
                .map(|a| a.container.clone())
                .collect();
            if let Some(bad) = also.iter().find(|a| **a == container || t.image(a).is_none()) {
                if !claims.is_empty() {
                    break;
                }
                let why = if *bad == container {
                    format!(
                        "alsoContainers of {key} names {bad}, the container the component changes already"
                    )
                } else {
                    format!(
                        "alsoContainers of {key} names {bad}, which its pod template does not have ({})",
                        t.container_names()
                    )
                };
                self.hold_before_claim(
                    reason::CONTAINER_NOT_FOUND,
                    format!("{why}; nothing has been changed"),
                );
                return false;
            }
            // The mark of an upgrade deleted before it released its targets, or of an earlier,
            // deleted upgrade of this name (another UID).
            let earlier_life = t.owner.as_deref() == Some(self.o.id.as_str())
                && t.owner_uid.as_deref().is_some_and(|u| u != self.o.uid);
            // Another upgrade's mark holds the target only while that upgrade exists under the
            // UID the mark names: a name alone, which anyone who may edit the workload can
            // write, must not tell whether an upgrade of that name exists elsewhere.
            let held = |o: &str| {
                self.o.live_owners.contains(&(o.to_string(), t.owner_uid.clone().unwrap_or_default()))
            };
            let stale = t.owner.as_deref().filter(|o| earlier_life || (*o != self.o.id && !held(o)));
            // The record on the target, if it is of the same containers.
            let on_target: Option<Vec<(String, String)>> = t
                .recorded_known_good()
                .map(owned)
                .filter(|r| r.iter().map(|(n, _)| n).eq(std::iter::once(&container).chain(&also)));
            let live: Vec<(String, String)> = std::iter::once(&container)
                .chain(&also)
                .map(|n| (n.clone(), t.image(n).unwrap_or_default().to_string()))
                .collect();
            // What is recorded must come back as it was: a string no runtime could pull, which
            // may hold the record's separators, is no known-good, whether the workload runs it
            // or the record on it (taken over below) says it.
            let bad_live =
                live.iter().find(|(_, i)| !is_reference(i)).map(|(c, i)| format!("container {c} runs {i:?}"));
            // Another live upgrade's record is that upgrade's to keep (this one waits for it).
            let others = t.owner.as_deref().is_some_and(|o| o != self.o.id) && stale.is_none();
            let bad_record =
                t.known_good.as_deref().filter(|_| bad_live.is_none() && !others).and_then(|raw| {
                    // A record that does not parse at all is said whole.
                    let bad = match t.recorded_known_good() {
                        Some(pairs) => pairs.into_iter().find(|(_, i)| !is_reference(i)).map(|(_, i)| i),
                        None => Some(raw),
                    };
                    bad.map(|i| format!("annotation {KNOWN_GOOD_ANNOTATION} records {i:?}"))
                });
            if let Some(bad) = bad_live.or(bad_record) {
                if !claims.is_empty() {
                    break;
                }
                self.hold_before_claim(
                    reason::IMAGE_NOT_A_REFERENCE,
                    format!(
                        "{key} {bad}, which is not an image reference (registry/repository:tag or \
                         @sha256:…) and cannot be its known-good image; set an image it can run, \
                         or remove that annotation, nothing has been changed"
                    ),
                );
                return false;
            }
            // An upgrade deleted before it ended (its finalizer removed by hand) may have left its
            // own new image running, never proven: not a known-good. A human settles it.
            // Container by container, whichever containers the record names.
            let unproven = t.recorded_known_good().and_then(|record| {
                record.into_iter().find_map(|(c, good)| {
                    let left = t.image(c)?;
                    (!crate::image::runs(left, good))
                        .then(|| (c.to_string(), left.to_string(), good.to_string()))
                })
            });
            if let (Some(o), Some((c, left, good))) = (stale, unproven) {
                if !claims.is_empty() {
                    break;
                }
                let who = if earlier_life {
                    "an earlier MaintenanceUpgrade of this name, which no longer exists,".to_string()
                } else {
                    format!("MaintenanceUpgrade {o}, which no longer holds it,")
                };
                self.hold_before_claim(
                    reason::UNPROVEN_IMAGE,
                    format!(
                        "{key} container {c} runs {left}, but the known-good record {who} left on it says {good}: \
                         {left} was never proven. Set it back to {good} to keep that record, or remove the annotation {KNOWN_GOOD_ANNOTATION} \
                         from {key} to accept {left} as known-good; nothing has been changed"
                    ),
                );
                return false;
            }
            // Its own container is how the operator tells applied from not, and new pods from old.
            let own_now = on_target.as_ref().unwrap_or(&live)[0].1.clone();
            if !also.is_empty() && crate::image::runs(&own_now, &c.desired_image) {
                if !claims.is_empty() {
                    break;
                }
                self.hold_before_claim(
                    reason::CONTAINER_NOT_FOUND,
                    format!(
                        "{key} container {container} runs {own_now} already: name a container whose image \
                         changes as the component's container, the others in alsoContainers; nothing has been changed"
                    ),
                );
                return false;
            }
            match t.owner.as_deref().filter(|_| stale.is_none()) {
                Some(owner) if owner != self.o.id && !claims.is_empty() => break,
                Some(owner) if owner != self.o.id => {
                    self.hold_before_claim(
                        reason::TARGET_OWNED,
                        format!("{key} belongs to MaintenanceUpgrade {owner}; this upgrade waits until that one ends"),
                    );
                    return false;
                }
                Some(_) if self.owns(t) => {
                    // Claimed before a restart: the annotation holds the record.
                    self.record_claim(si, ci, &on_target.unwrap_or(live), t);
                }
                // Unclaimed, or marked with this name but no UID (claimed by an older version,
                // or by hand): claimed again, so that it carries the UID every patch tests for.
                _ => {
                    let unmarked_uid =
                        t.owner.as_deref() == Some(self.o.id.as_str()) && t.owner_uid.is_none();
                    let known_good = on_target.filter(|_| unmarked_uid).unwrap_or(live);
                    let image = known_good[0].1.clone();
                    // A canary changes the strategy: recorded now, and again, exactly, by the
                    // write that changes it. One recorded already (left by an upgrade deleted
                    // mid-canary, the target still OnDelete) is the one to restore.
                    let original_strategy = if self.canaried(&key) {
                        super::canary::strategy_to_restore(key.kind, t)
                    } else {
                        super::canary::recorded_on(key.kind, t)
                    };
                    let strategy_note = original_strategy
                        .as_deref()
                        .map(|s| format!(", and its rollout settings {s}, which a canary inside it changes"))
                        .unwrap_or_default();
                    claims.push(Claim {
                        target: key.clone(),
                        resource_version: t.resource_version.clone(),
                        owner_uid: self.o.uid.clone(),
                        known_good: known_good_value(
                            &known_good.iter().map(|(c, i)| (c.as_str(), i.as_str())).collect::<Vec<_>>(),
                        ),
                        known_good_digest: running_digest(t, &known_good[0].0),
                        original_strategy,
                    });
                    let taken_over = match stale {
                        Some(_) if earlier_life => " (taken over from an earlier MaintenanceUpgrade of this name, which no longer exists)".to_string(),
                        // It may exist under another UID than its mark names: its name alone says nothing.
                        Some(o) => format!(" (taken over from MaintenanceUpgrade {o}, which no longer holds it)"),
                        None => String::new(),
                    };
                    let others: String =
                        known_good[1..].iter().map(|(c, i)| format!(", {i} of container {c}")).collect();
                    recorded.push(format!(
                        "{key}: known-good image {image} of container {container}{others}{taken_over}{strategy_note}"
                    ));
                    self.record_claim(si, ci, &known_good, t);
                }
            }
        }
        if !claims.is_empty() {
            let managed: Vec<String> = claims
                .iter()
                .filter_map(|c| {
                    let cs = self.components().find(|cs| {
                        cs.kind == c.target.kind
                            && cs.namespace == c.target.namespace
                            && cs.name == c.target.name
                    })?;
                    let (_, t) = self.target(cs);
                    let indices = t?.positions(cs.changes().into_iter().map(|(n, _, _)| n));
                    (!indices.is_empty()).then_some(())?;
                    let canary = self.canaried(&c.target);
                    Some(gitops::advice(cs.managed_by.as_ref()?, &c.target, &indices, canary))
                })
                .collect();
            self.effect = Some(Effect::Claim { claims });
            self.note(false, reason::CLAIMED, "Claim", format!("recorded {}", recorded.join("; ")));
            if !managed.is_empty() {
                self.note(true, reason::MANAGED_BY_GITOPS, "Claim", managed.join("; "));
            }
            self.set_phase(Phase::Pending, "recording the known-good images".into());
            self.requeue_in(Duration::zero());
            return false;
        }
        self.st.claimed_at = Some(self.now());
        true
    }

    /// Something outside the operator must change before the targets can be claimed.
    pub(super) fn hold_before_claim(&mut self, reason: &'static str, message: String) {
        self.set_phase(Phase::Pending, message.clone());
        self.block(reason, message);
        self.next("check the targets again", Some(self.now() + Duration::seconds(BLOCKED_RETRY)));
    }

    /// Record the claim of component `ci` of stage `si`: its containers' known-good images
    /// (`known_good`, its own container first), its digest, and a canary's original settings.
    pub(super) fn record_claim(
        &mut self,
        si: usize,
        ci: usize,
        known_good: &[(String, String)],
        t: &TargetState,
    ) {
        let Some(((container, image), also)) = known_good.split_first() else { return };
        let (container, image) = (container.clone(), image.clone());
        // Claimed before a restart: the digest the claim recorded on the target.
        let digest = if self.owns(t) { t.known_good_digest.clone() } else { running_digest(t, &container) };
        let canary = self.canary_of(si, ci).is_some();
        let cs = &mut self.st.stages[si].components[ci];
        if canary {
            cs.canary.get_or_insert_with(Default::default).original_update_strategy =
                super::canary::strategy_to_restore(cs.kind, t);
        }
        cs.container = Some(container);
        cs.known_good_image = Some(image);
        for a in cs.also_containers.iter_mut() {
            a.known_good_image = also.iter().find(|(c, _)| *c == a.container).map(|(_, i)| i.clone());
        }
        cs.known_good_digest = digest;
        cs.managed_by = t.managed_by.clone();
        cs.phase = ComponentPhase::Claimed;
    }
}

/// The digest the target's own pods run for `container`, read when it is not claimed yet.
fn running_digest(t: &TargetState, container: &str) -> Option<String> {
    t.running_digests.iter().find(|(n, _)| n == container).map(|(_, d)| d.clone())
}

/// A record's pairs, owned.
fn owned(pairs: Vec<(&str, &str)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(c, i)| (c.to_string(), i.to_string())).collect()
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
