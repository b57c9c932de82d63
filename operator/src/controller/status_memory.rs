//! Act step's memory of statuses: for each upgrade, what this operator last wrote and what it has
//! decided since without writing (see `decide::worth_writing`). It is also the guard against a
//! stale store: the controller's store can still hold the status from before our last write when
//! a target's change wakes the upgrade, and deciding from it would repeat a step.

use crate::controller::target_cache::not_older;
use crate::crd::{MaintenanceUpgrade, MaintenanceUpgradeStatus};
use kube::ResourceExt;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct StatusMemory(Mutex<HashMap<String, Remembered>>);

struct Remembered {
    /// The status as last written, kept only until the store shows it (then the store's copy is
    /// the same); its hash, to tell our write from someone else's; the version the write made.
    written: Option<MaintenanceUpgradeStatus>,
    written_hash: u64,
    written_rv: String,
    /// The latest decision, written or not.
    current: MaintenanceUpgradeStatus,
}

/// The status to decide from, and the one the API server holds as far as we know.
pub struct Base {
    pub current: MaintenanceUpgradeStatus,
    pub written: Option<MaintenanceUpgradeStatus>,
    /// The upgrade's resourceVersion that `written` is at: a write is refused if it moved on.
    pub resource_version: String,
}

impl StatusMemory {
    /// Our own latest decision while the stored status is still the one we wrote (or older);
    /// the stored status once someone else has written one (another replica, a human).
    pub fn base(&self, mu: &MaintenanceUpgrade) -> Base {
        let stored = mu.status.clone().unwrap_or_default();
        let stored_rv = mu.resource_version().unwrap_or_default();
        let from_store =
            Base { current: stored.clone(), written: mu.status.clone(), resource_version: stored_rv.clone() };
        let mut map = self.lock();
        let Some(r) = map.get_mut(&uid(mu)) else { return from_store };
        if !not_older(&stored_rv, &r.written_rv) {
            // The store has not seen our last write yet.
            return Base {
                current: r.current.clone(),
                written: r.written.clone().or_else(|| mu.status.clone()),
                resource_version: r.written_rv.clone(),
            };
        }
        if r.written_hash != hash(&stored) {
            // Someone else wrote a status since.
            map.remove(&uid(mu));
            return from_store;
        }
        r.written = None;
        let current = r.current.clone();
        if current == stored {
            // The store holds everything we decided: nothing left to remember.
            map.remove(&uid(mu));
        }
        Base { current, ..from_store }
    }

    /// A status was written; the write returned `resource_version`.
    pub fn wrote(
        &self,
        mu: &MaintenanceUpgrade,
        status: &MaintenanceUpgradeStatus,
        resource_version: String,
    ) {
        let r = Remembered {
            written: Some(status.clone()),
            written_hash: hash(status),
            written_rv: resource_version,
            current: status.clone(),
        };
        self.lock().insert(uid(mu), r);
    }

    /// A status was decided and not written: `written` is what the API server still holds.
    pub fn decided(
        &self,
        mu: &MaintenanceUpgrade,
        written: Option<&MaintenanceUpgradeStatus>,
        status: &MaintenanceUpgradeStatus,
    ) {
        let mut map = self.lock();
        let r = map.entry(uid(mu)).or_insert_with(|| Remembered {
            written: None,
            written_hash: hash(&written.cloned().unwrap_or_default()),
            written_rv: mu.resource_version().unwrap_or_default(),
            current: status.clone(),
        });
        r.current = status.clone();
    }

    /// The upgrade is gone.
    pub fn forget(&self, mu: &MaintenanceUpgrade) {
        self.lock().remove(&uid(mu));
    }

    /// Forget every upgrade but these (UIDs): the others are gone.
    pub fn forget_all_but(&self, live: &std::collections::HashSet<String>) {
        self.lock().retain(|uid, _| live.contains(uid));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn hash(status: &MaintenanceUpgradeStatus) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    serde_json::to_vec(status).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn uid(mu: &MaintenanceUpgrade) -> String {
    mu.metadata.uid.clone().unwrap_or_default()
}

#[cfg(test)]
#[path = "status_memory_tests.rs"]
mod tests;
