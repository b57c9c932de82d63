//! Decide step, pure: what in the status is believed. The status is the operator's memory, not
//! an input: the API server refuses writes to it from anyone else (config/policy), and, in case
//! that policy is not installed, nothing recorded there can aim the operator at a workload.
//!
//! - A recorded component is trusted only if the current spec names its target; one it does not
//!   name is set aside (Conflict, its record kept for a human) and its target is never read or
//!   changed.
//! - A recorded component's desired image is the spec's; its container, known-good image and
//!   known-good digest are those the operator recorded on the target itself when it claimed it,
//!   if that record is there.
//! - A component becomes Applied or Reverted only while its target carries this upgrade's owner
//!   mark and UID (`owns`), and every image patch tests that mark again on the API server.
//! - When a stage started or rolled out, a component was applied, anything was reverted or a
//!   signal was read is never later than now, and a soak ends at most its soak from now: a time
//!   written ahead would put off a deadline measured from it, or stop every read.

use super::Decider;
use crate::constants::reason;
use crate::crd::*;
use crate::target::{TargetKey, TargetState};
use std::collections::BTreeMap;

impl Decider<'_> {
    /// Whether `t` carries this upgrade's owner mark: its `namespace/name` and its UID.
    pub(super) fn owns(&self, t: &TargetState) -> bool {
        t.owner.as_deref() == Some(self.o.id.as_str()) && t.owner_uid.as_deref() == Some(self.o.uid.as_str())
    }

    /// Hold the status to the spec and to the records on the targets; say what was not believed.
    pub(super) fn distrust_status(&mut self) {
        let now = self.now();
        let happened = |at: &mut Option<chrono::DateTime<chrono::Utc>>| *at = at.map(|t| t.min(now));
        for (si, s) in self.st.stages.iter_mut().enumerate() {
            happened(&mut s.started_at);
            happened(&mut s.reverted_at);
            happened(&mut s.rolled_out_at);
            // A soak ends at most its soak from now.
            let soak = self.o.spec.stages.get(si).and_then(|s| s.soak.parse().ok());
            if let (Some(ends), Some(soak)) = (s.soak_ends_at, soak) {
                s.soak_ends_at = Some(ends.min(now + soak));
            }
            for c in &mut s.components {
                happened(&mut c.applied_at);
                happened(&mut c.reverted_at);
            }
        }
        // A read is never of the future: one forged there would stop every read. The span left
        // unjudged after a blind one reaches at most a pending limit past now.
        let pending_limit = (self.o.spec.effective_signals().iter())
            .filter_map(|s| s.kubernetes.as_ref()?.pending_limit.parse().ok())
            .max()
            .unwrap_or_else(chrono::Duration::zero);
        for a in &mut self.st.analysis {
            happened(&mut a.sampled_to);
            happened(&mut a.analysed_at);
            // A bucket begun in the future would never close, so that nothing were judged.
            happened(&mut a.detector.bucket_from);
            happened(&mut a.detector.suspect_since);
            a.unjudged_until = a.unjudged_until.map(|t| t.min(now + pending_limit));
        }
        let ns = self.o.namespace.clone();
        let named: BTreeMap<TargetKey, (String, Vec<ContainerImage>)> = self
            .o
            .spec
            .stages
            .iter()
            .flat_map(|s| &s.components)
            .map(|c| (TargetKey::of(c, &ns), (c.image.clone(), c.also_containers.clone())))
            .collect();
        let mut said = vec![];
        for si in 0..self.st.stages.len() {
            for ci in 0..self.st.stages[si].components.len() {
                let c = self.st.stages[si].components[ci].clone();
                let (key, t) = self.target(&c);
                let Some((desired, also)) = named.get(&key) else {
                    if c.phase == ComponentPhase::Conflict {
                        continue;
                    }
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Conflict;
                    cs.message = Some(format!(
                        "spec.stages does not name {key}: a record only the status holds is not believed, \
                         and the operator never touches that workload"
                    ));
                    said.push((reason::NOT_IN_SPEC, format!(
                        "status.stages names {key}, which spec.stages does not; only the operator writes the \
                         status (see the docs, Tenancy and security), so it is ignored and {key} is left alone"
                    )));
                    continue;
                };
                if c.desired_image != *desired {
                    self.st.stages[si].components[ci].desired_image = desired.clone();
                    said.push((reason::STATUS_CORRECTED, format!(
                        "status.stages recorded {} as the new image of {key}; spec.stages says {desired}, which is kept",
                        c.desired_image
                    )));
                }
                // The other containers it changes are the spec's too.
                let spec_also: Vec<(&str, &str)> =
                    also.iter().map(|a| (a.container.as_str(), a.image.as_str())).collect();
                let status_also: Vec<(&str, &str)> = c
                    .also_containers
                    .iter()
                    .map(|a| (a.container.as_str(), a.desired_image.as_str()))
                    .collect();
                if spec_also != status_also {
                    said.push((reason::STATUS_CORRECTED, format!(
                        "status.stages recorded other containers {status_also:?} for {key}; spec.stages says {spec_also:?}, which is kept"
                    )));
                    self.st.stages[si].components[ci].also_containers = also
                        .iter()
                        .map(|a| ContainerChange {
                            container: a.container.clone(),
                            known_good_image: None,
                            desired_image: a.image.clone(),
                        })
                        .collect();
                }
                // The target's own record of its containers and known-good images, written by
                // the claim: only the operator and whoever may edit the workload can change it.
                let c = self.st.stages[si].components[ci].clone();
                if c.container.is_none() || c.phase == ComponentPhase::Conflict {
                    continue;
                }
                let on_target = t.filter(|t| self.owns(t)).and_then(|t| t.recorded_known_good());
                // In another namespace it may no longer change, only the records the claim left
                // on the target say what to write there, never the status: without them, it is
                // left alone, and said.
                if self.abroad_untrusted(&key)
                    && let Some(t) = t
                {
                    let missing = if on_target.is_none() {
                        Some("no readable known-good record")
                    } else if self.canaried(&key) && super::canary::recorded_on(key.kind, t).is_none() {
                        Some("no readable record of the rollout settings its canary changed")
                    } else {
                        None
                    };
                    if let Some(missing) = missing {
                        let msg = format!(
                            "{key} carries {missing} of this upgrade's claim, and namespace {} may no longer \
                             change it (not in trustedNamespaces); the operator no longer touches it (set its \
                             images and rollout settings back by hand, if they were changed)",
                            self.o.namespace
                        );
                        let cs = &mut self.st.stages[si].components[ci];
                        cs.phase = ComponentPhase::Conflict;
                        cs.message = Some(msg.clone());
                        said.push((reason::STATUS_CORRECTED, msg));
                        continue;
                    }
                }
                let Some(on_target) = on_target else {
                    continue;
                };
                // The digest a revert pins to is the one the claim recorded on the target.
                let digest_on_target = t.and_then(|t| t.known_good_digest.clone());
                if c.known_good_digest != digest_on_target {
                    said.push((reason::STATUS_CORRECTED, format!(
                        "status.stages recorded the known-good digest {:?} for {key}; the record on {key} says {:?}, which is kept",
                        c.known_good_digest, digest_on_target
                    )));
                    self.st.stages[si].components[ci].known_good_digest = digest_on_target;
                }
                let in_status: Vec<(&str, &str)> =
                    c.changes().iter().map(|(n, k, _)| (*n, k.unwrap_or("none"))).collect();
                let names: Vec<&str> = c.changes().iter().map(|(n, _, _)| *n).collect();
                let recorded: Vec<&str> = on_target.iter().map(|(n, _)| *n).collect();
                if names[1..] != recorded[1..] {
                    let msg = format!(
                        "the known-good record on {key} names containers {recorded:?}, not the {names:?} this \
                         upgrade changes; the operator no longer touches it (set the annotation back, or revert by hand)"
                    );
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.phase = ComponentPhase::Conflict;
                    cs.message = Some(msg.clone());
                    said.push((reason::STATUS_CORRECTED, msg));
                    continue;
                }
                let (container, image) = on_target[0];
                let also_on_target =
                    |name: &str| on_target.iter().find(|(n, _)| *n == name).map(|(_, i)| i.to_string());
                if in_status != on_target {
                    said.push((reason::STATUS_CORRECTED, format!(
                        "status.stages recorded containers and known-good images {in_status:?} for {key}; the \
                         record on {key} says {on_target:?}, which is kept"
                    )));
                    let cs = &mut self.st.stages[si].components[ci];
                    cs.container = Some(container.to_string());
                    cs.known_good_image = Some(image.to_string());
                    for a in cs.also_containers.iter_mut() {
                        a.known_good_image = also_on_target(&a.container);
                    }
                }
            }
        }
        for (why, message) in said {
            self.note(true, why, "Observe", message);
        }
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
