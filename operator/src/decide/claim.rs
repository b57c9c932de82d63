//! Decide step, pure: claim every target before anything changes, recording its known-good
//! image in status and on the target; wait for a target another upgrade owns.

use super::{BLOCKED_RETRY, Claim, Decider, Effect};
use crate::constants::reason;
use crate::crd::*;
use crate::target::gitops;
use crate::target::{TargetState, known_good_value, parse_known_good};
use chrono::Duration;

impl Decider<'_> {
    /// Claim every target before anything changes: record its known-good image in status and
    /// on the target, all the claimable ones in one effect. True once all are claimed.
    pub(super) fn claim(&mut self) -> bool {
        if self.st.claimed_at.is_some() {
            return true;
        }
        let spec_components: Vec<(usize, usize, Option<String>)> = self
            .o
            .spec
            .stages
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.components.iter().enumerate().map(move |(ci, c)| (si, ci, c.container.clone()))
            })
            .collect();
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
                let (container, image) = parse_known_good(&claims[first].known_good).unwrap_or_default();
                self.record_claim(si, ci, container.to_string(), image.to_string(), t);
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
            let image = t.image(&container).unwrap_or_default().to_string();
            // The mark of an upgrade deleted before it released its targets, or of an earlier,
            // deleted upgrade of this name (another UID).
            let earlier_life = t.owner.as_deref() == Some(self.o.id.as_str())
                && t.owner_uid.as_deref().is_some_and(|u| u != self.o.uid);
            let stale = t
                .owner
                .as_deref()
                .filter(|o| earlier_life || (*o != self.o.id && !self.o.live_owners.contains(*o)));
            let on_target =
                t.recorded_known_good().filter(|(n, _)| *n == container).map(|(_, i)| i.to_string());
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
                    self.record_claim(si, ci, container, on_target.unwrap_or(image), t);
                }
                // Unclaimed, or marked with this name but no UID (claimed by an older version,
                // or by hand): claimed again, so that it carries the UID every patch tests for.
                _ => {
                    let unmarked_uid =
                        t.owner.as_deref() == Some(self.o.id.as_str()) && t.owner_uid.is_none();
                    let image = on_target.filter(|_| unmarked_uid).unwrap_or(image);
                    // A canary changes the strategy: recorded now, and again, exactly, by the
                    // write that changes it. One recorded already (left by an upgrade deleted
                    // mid-canary, the target still OnDelete) is the one to restore.
                    let original_strategy = if self.canaried(&key) {
                        super::canary::strategy_to_restore(t)
                    } else {
                        t.original_strategy.clone()
                    };
                    let strategy_note = original_strategy
                        .as_deref()
                        .map(|s| format!(", and its rollout settings {s}, which a canary inside it changes"))
                        .unwrap_or_default();
                    claims.push(Claim {
                        target: key.clone(),
                        resource_version: t.resource_version.clone(),
                        owner_uid: self.o.uid.clone(),
                        known_good: known_good_value(&container, &image),
                        original_strategy,
                    });
                    let taken_over = match stale {
                        Some(_) if earlier_life => " (taken over from an earlier MaintenanceUpgrade of this name, which no longer exists)".to_string(),
                        Some(o) => format!(" (taken over from MaintenanceUpgrade {o}, which no longer exists)"),
                        None => String::new(),
                    };
                    recorded.push(format!(
                        "{key}: known-good image {image} of container {container}{taken_over}{strategy_note}"
                    ));
                    self.record_claim(si, ci, container, image, t);
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
                    let index = t?.containers.iter().position(|(n, _)| Some(n) == cs.container.as_ref())?;
                    Some(gitops::advice(cs.managed_by.as_ref()?, &c.target, index, self.canaried(&c.target)))
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

    pub(super) fn record_claim(
        &mut self,
        si: usize,
        ci: usize,
        container: String,
        image: String,
        t: &TargetState,
    ) {
        let digest = t.running_digests.iter().find(|(n, _)| *n == container).map(|(_, d)| d.clone());
        let canary = self.canary_of(si, ci).is_some();
        let cs = &mut self.st.stages[si].components[ci];
        if canary {
            cs.canary.get_or_insert_with(Default::default).original_update_strategy =
                super::canary::strategy_to_restore(t);
        }
        cs.container = Some(container);
        cs.known_good_image = Some(image);
        cs.known_good_digest = digest;
        cs.managed_by = t.managed_by.clone();
        cs.phase = ComponentPhase::Claimed;
    }
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
