//! Act step's memory of failures, per upgrade (by UID: one made again under the same name starts
//! afresh): a look that keeps failing the same way (an image an admission policy refuses, a
//! permission missing) is retried further apart each time, up to once a minute (so that a
//! rollback after an API outage waits a minute at most), and announced when it first fails and
//! whenever the failure changes, not with a Warning Event every few seconds forever. A look that
//! goes through (changing a target or writing the status) forgets it; one that only waits does
//! not.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry after a failure; each next one waits twice as long, up to `MAX_RETRY`.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The pause before retrying after `failures` failures in a row.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Per upgrade: how many looks in a row failed, and how the last one did.
#[derive(Default)]
pub struct Retries(Mutex<HashMap<String, (u32, String)>>);

impl Retries {
    /// Whether failure `what` of upgrade `id` is news: its first, or unlike the last one.
    pub fn is_news(&self, id: &str, what: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(id).is_none_or(|(_, last)| last != what)
    }

    /// Count a failure of `id`; the pause before its retry.
    pub fn failed(&self, id: &str, what: &str) -> Duration {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(id.to_string()).or_insert((0, String::new()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = what.to_string();
        backoff(entry.0)
    }

    /// A look of `id` went through (or the upgrade is gone): its failures are forgotten.
    pub fn succeeded(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Forget every upgrade but these (UIDs): the others are gone.
    pub fn forget_all_but(&self, live: &std::collections::HashSet<String>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).retain(|uid, _| live.contains(uid));
    }
}

#[cfg(test)]
#[path = "retries_tests.rs"]
mod tests;
