//! Act step's memory of restores refused, per upgrade (by UID) and target: since when the API
//! server has refused to write a target's rollout settings back (400, 403, 422: an admission
//! webhook, a record it finds invalid), and when it last did. `decide` gives such a restore up
//! past a bound, so that a deleted upgrade is not held for ever; it is never the status (a
//! tenant's input). A write of the settings that goes through, or fails otherwise, forgets it.

pub use crate::decide::Refused;
use crate::target::TargetKey;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

#[derive(Default)]
pub struct Refusals(Mutex<HashMap<String, BTreeMap<TargetKey, Refused>>>);

impl Refusals {
    /// The API server refused to write `target`'s rollout settings for upgrade `id` at `now`.
    pub fn refused(&self, id: &str, target: &TargetKey, now: DateTime<Utc>) {
        let mut map = self.lock();
        let targets = map.entry(id.to_string()).or_default();
        let r = targets.entry(target.clone()).or_insert(Refused { since: now, last: now });
        r.last = now;
    }

    /// A write of `target`'s rollout settings went through, or failed for another reason.
    pub fn cleared(&self, id: &str, target: &TargetKey) {
        let mut map = self.lock();
        if let Some(targets) = map.get_mut(id) {
            targets.remove(target);
            if targets.is_empty() {
                map.remove(id);
            }
        }
    }

    /// Upgrade `id`'s targets whose settings are being refused.
    pub fn of(&self, id: &str) -> BTreeMap<TargetKey, Refused> {
        self.lock().get(id).cloned().unwrap_or_default()
    }

    /// Forget every upgrade but these (UIDs): the others are gone.
    pub fn forget_all_but(&self, live: &HashSet<String>) {
        self.lock().retain(|uid, _| live.contains(uid));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<TargetKey, Refused>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
#[path = "refusals_tests.rs"]
mod tests;
