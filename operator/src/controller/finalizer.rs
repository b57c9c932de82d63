//! Act step's companion, needs a client: the finalizer that makes deleting an upgrade an abort.
//! Added before the upgrade's first look (so before it claims anything), removed once a deleted
//! upgrade has ended and released its targets (`decide` reverts it first, as a rollback with
//! reason UpgradeDeleted). Both are JSON patches with `test` ops, so that another writer's
//! finalizers are never dropped.

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
    mu.metadata.deletion_timestamp.is_none()
        && !present(mu)
        && !mu.status.as_ref().is_some_and(|s| s.phase.is_terminal() && s.released_at.is_some())
}

/// The patch that adds it to `mu` as read.
pub fn add_patch(mu: &MaintenanceUpgrade) -> serde_json::Value {
    let rv = mu.resource_version().unwrap_or_default();
    match &mu.metadata.finalizers {
        // The list is created only if it is still absent (the resourceVersion read).
        None => json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(_) => json!([{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]),
    }
}

/// The patch that removes it from `mu` as read, if it is there.
pub fn remove_patch(mu: &MaintenanceUpgrade) -> Option<serde_json::Value> {
    let i = mu.finalizers().iter().position(|f| f == FINALIZER)?;
    let path = format!("/metadata/finalizers/{i}");
    Some(json!([{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]))
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
