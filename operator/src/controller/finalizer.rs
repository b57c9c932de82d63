//! Act step's companion, needs a client: the finalizer that makes deleting an upgrade an abort.
//! Added before the upgrade's first look (so before it claims anything), removed by the look
//! that finds it ended and its targets released, deleted or not (a deleted one is reverted first:
//! `decide` rolls it back with reason UpgradeDeleted). Both are JSON patches that test the list
//! they change, so that another writer's finalizers are never dropped and ours never doubled.

use crate::constants::{FIELD_MANAGER, FINALIZER};
use crate::crd::MaintenanceUpgrade;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// Whether the upgrade carries the finalizer.
pub fn present(mu: &MaintenanceUpgrade) -> bool {
    mu.finalizers().iter().any(|f| f == FINALIZER)
}

/// Whether a live upgrade needs it: every one but an ended upgrade that has let go of its targets.
pub fn wanted(mu: &MaintenanceUpgrade) -> bool {
    mu.metadata.deletion_timestamp.is_none() && !present(mu) && !mu.status.as_ref().is_some_and(done)
}

/// Whether the upgrade's finalizer can go: it has ended and let go of its targets.
pub fn done(status: &crate::crd::MaintenanceUpgradeStatus) -> bool {
    status.phase.is_terminal() && status.released_at.is_some()
}

/// The patch that adds it to `mu` as read: only if the list is still the one read, so that a
/// stale copy never adds it twice nor drops another's.
pub fn add_patch(mu: &MaintenanceUpgrade) -> serde_json::Value {
    let rv = mu.resource_version().unwrap_or_default();
    match &mu.metadata.finalizers {
        None => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(list) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
    }
}

/// The patch that removes it (every copy) from `mu` as read, if it is there, only if the list is
/// still the one read.
pub fn remove_patch(mu: &MaintenanceUpgrade) -> Option<serde_json::Value> {
    let list = mu.finalizers();
    if !list.iter().any(|f| f == FINALIZER) {
        return None;
    }
    let rest: Vec<&String> = list.iter().filter(|f| *f != FINALIZER).collect();
    Some(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": list},
        {"op": "replace", "path": "/metadata/finalizers", "value": rest},
    ]))
}

pub async fn patch(client: &Client, mu: &MaintenanceUpgrade, patch: serde_json::Value) -> kube::Result<()> {
    let api: Api<MaintenanceUpgrade> = Api::namespaced(client.clone(), &mu.namespace().unwrap_or_default());
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a finalizer patch is a JSON patch");
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(&mu.name_any(), &pp, &Patch::<()>::Json(patch)).await.map(|_| ())
}

#[cfg(test)]
#[path = "finalizer_tests.rs"]
mod tests;
