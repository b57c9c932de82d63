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

    pub fn len(&self) -> usize {
        self.lock().len()
    }

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
mod tests {
    use super::*;
    use crate::crd::Phase;

    fn upgrade(rv: &str, status: Option<MaintenanceUpgradeStatus>) -> MaintenanceUpgrade {
        let mut mu: MaintenanceUpgrade = serde_json::from_value(serde_json::json!({
            "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
            "metadata": {"name": "up", "namespace": "ops", "uid": "u-1", "resourceVersion": rv},
            "spec": {"stages": [{"name": "all", "components": [{"kind": "Deployment", "name": "web", "image": "web:2"}], "soak": "1h"}]}
        }))
        .unwrap();
        mu.status = status;
        mu
    }

    fn status(phase: Phase, message: &str) -> MaintenanceUpgradeStatus {
        MaintenanceUpgradeStatus { phase, message: message.into(), ..Default::default() }
    }

    #[test]
    fn a_stale_store_does_not_undo_our_last_write() {
        let m = StatusMemory::default();
        let soaking = status(Phase::Soaking, "soaking");
        m.wrote(&upgrade("10", None), &soaking, "12".into());
        // The store still shows the upgrade as it was before the write.
        let stale = upgrade("10", Some(status(Phase::Progressing, "rolling out")));
        assert_eq!(m.base(&stale).current, soaking);
        // Undecided progress since the write is carried while the stored status is ours.
        let mut later = soaking.clone();
        later.message = "soaking, 3 buckets judged".into();
        m.decided(&stale, Some(&soaking), &later);
        let caught_up = upgrade("12", Some(soaking.clone()));
        let base = m.base(&caught_up);
        assert_eq!(base.current, later);
        assert_eq!(base.written, Some(soaking.clone()));
    }

    #[test]
    fn someone_elses_write_wins() {
        let m = StatusMemory::default();
        m.wrote(&upgrade("10", None), &status(Phase::Soaking, "soaking"), "12".into());
        // Another replica took over and wrote a newer status.
        let theirs = status(Phase::RollingBack, "reverting");
        let newer = upgrade("20", Some(theirs.clone()));
        assert_eq!(m.base(&newer).current, theirs);
        assert!(m.is_empty(), "nothing of ours is left to remember");
        // Once the store shows all we decided, nothing is remembered either.
        let done = status(Phase::RolledBack, "done");
        m.wrote(&newer, &done, "21".into());
        assert_eq!(m.base(&upgrade("20", Some(theirs.clone()))).current, done, "the store is behind");
        assert_eq!(m.base(&upgrade("21", Some(done.clone()))).current, done);
        assert!(m.is_empty());
    }
}
