//! Pure: which workload a target is (kind, namespace, name). Below `gitops` and the rest of
//! `target`, which both name targets by it.

use crate::crd::{Component, WorkloadKind};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl TargetKey {
    /// The target a spec component names, in an upgrade of namespace `ns`.
    pub fn of(c: &Component, ns: &str) -> TargetKey {
        TargetKey { kind: c.kind, namespace: c.namespace_or(ns).to_string(), name: c.name.clone() }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}/{}", self.kind, self.namespace, self.name)
    }
}
