//! Decide step, pure: the tenancy boundary. An upgrade changes workloads, and counts pods, in its
//! own namespace only, unless it was created in a namespace the installer trusts: the same rules
//! the admission policy in config/policy enforces, checked again here in case that policy is not
//! installed.

use super::Decider;
use crate::crd::ComponentPhase;
use crate::target::TargetKey;
use std::collections::BTreeSet;

impl Decider<'_> {
    /// Whether this upgrade was created in a namespace the installer trusts: it may then change
    /// workloads, and count pods, in other namespaces.
    pub(super) fn trusted(&self) -> bool {
        self.o.trusted_namespaces.contains(&self.o.namespace)
    }

    /// Why this upgrade may not touch the targets it names, saying what to do instead.
    pub(super) fn tenancy_problem(&self) -> Option<String> {
        if self.trusted() {
            return None;
        }
        let ns = &self.o.namespace;
        let foreign: Vec<String> = self
            .o
            .spec
            .stages
            .iter()
            .flat_map(|s| &s.components)
            .filter(|c| c.namespace_or(ns) != ns)
            .map(|c| format!("{}/{}", c.namespace_or(ns), c.name))
            .collect();
        let who = if self.o.trusted_namespaces.is_empty() {
            "no namespace may target others in this cluster".to_string()
        } else {
            format!(
                "only upgrades created in {} may target other namespaces",
                self.o.trusted_namespaces.join(", ")
            )
        };
        if !foreign.is_empty() {
            return Some(format!(
                "an upgrade in namespace {ns} may only change workloads in {ns}, and this one names {}; {who}: \
                 create it there, or ask whoever installed maintenance-operator to add {ns} to trustedNamespaces",
                foreign.join(", ")
            ));
        }
        // Its signals may not count other teams' pods either.
        let reading: Vec<String> = self
            .o
            .spec
            .effective_signals()
            .into_iter()
            .filter(|s| s.kubernetes.as_ref().is_some_and(|k| k.namespaces.iter().any(|n| n != ns)))
            .map(|s| s.name)
            .collect();
        (!reading.is_empty()).then(|| {
            format!(
                "an upgrade in namespace {ns} may only count pods of {ns}, and its signals {} name other \
                 namespaces; {who}: remove them from kubernetes.namespaces (an empty list means {ns} alone), \
                 or ask whoever installed maintenance-operator to add {ns} to trustedNamespaces",
                reading.join(", ")
            )
        })
    }

    /// Whether `key` is in another namespace than this upgrade's, which is not trusted: what
    /// this upgrade may still do there is give back what it claimed (`trust_withdrawn`), from
    /// the records the operator left on the target, never from the status.
    pub(super) fn abroad_untrusted(&self, key: &TargetKey) -> bool {
        key.namespace != self.o.namespace && !self.trusted()
    }

    /// Why this upgrade must give back what it holds in other namespaces: its namespace was
    /// taken off trustedNamespaces after it claimed some. Observe shows it a target there only
    /// while the target carries its mark and UID, which only the operator wrote, when it was
    /// trusted, and a revert there takes the images and settings recorded on the target; so this
    /// reverts nothing a tenant chose. Nothing may move those targets forward any more, so the
    /// rollback does not wait for a human or a window. The status's word that it claimed one
    /// (a target no longer marked) rolls back only this upgrade's own namespace's changes.
    pub(super) fn trust_withdrawn(&self) -> Option<String> {
        if self.trusted() {
            return None;
        }
        let ns = &self.o.namespace;
        let marked = self
            .o
            .targets
            .iter()
            .filter(|(k, t)| k.namespace != *ns && t.as_ref().is_some_and(|t| self.owns(t)))
            .map(|(k, _)| k.clone());
        let named: BTreeSet<TargetKey> =
            self.o.spec.stages.iter().flat_map(|s| &s.components).map(|c| TargetKey::of(c, ns)).collect();
        let recorded = self
            .components()
            .filter(|c| c.namespace != *ns && c.phase != ComponentPhase::Pending)
            .map(|c| self.target(c).0)
            .filter(|k| named.contains(k));
        let held: BTreeSet<TargetKey> = marked.chain(recorded).collect();
        (!held.is_empty()).then(|| {
            format!(
                "namespace {ns} is no longer trusted to change workloads in other namespaces (it is not in \
                 trustedNamespaces), and this upgrade claimed {}: what it changed goes back to the known-good images \
                 and its targets are released; to upgrade them, create the upgrade in a trusted namespace",
                held.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

#[cfg(test)]
#[path = "tenancy_tests.rs"]
mod tests;
