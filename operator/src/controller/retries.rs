//! Act step's memory of failures, per upgrade (by UID: one made again under the same name starts
//! afresh): a look that keeps failing the same way (an image an admission policy refuses, a
//! permission missing) is retried further apart each time, up to once a minute (so that a
//! rollback after an API outage waits a minute at most), and announced when it first fails and
//! whenever the failure changes, not with a Warning Event every few seconds forever. A look that
//! goes through (changing a target or writing the status) forgets it; one that only waits does
//! not, but a failure announced an hour ago is said again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first retry after a failure; each next one waits twice as long, up to `MAX_RETRY`.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The pause before retrying after `failures` failures in a row.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// How long a failure announced stays old news: about as long as its Warning Event is kept, so
/// that one that comes back after a long quiet (looks that only waited) is said again.
pub const ANNOUNCED_FOR: Duration = Duration::from_secs(3600);

/// Per upgrade: how many looks in a row failed, how the last one did, and when that was last
/// announced.
#[derive(Default)]
pub struct Retries(Mutex<HashMap<String, Failures>>);

struct Failures {
    count: u32,
    what: String,
    announced: Instant,
}

impl Retries {
    /// Whether failure `what` of upgrade `id` is news: its first, unlike the last one, or the
    /// same announced longer than `ANNOUNCED_FOR` ago.
    pub fn is_news(&self, id: &str, what: &str) -> bool {
        self.is_news_at(id, what, Instant::now())
    }

    fn is_news_at(&self, id: &str, what: &str, now: Instant) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).is_none_or(|f| f.what != what || now.duration_since(f.announced) >= ANNOUNCED_FOR)
    }

    /// Count a failure of `id`; the pause before its retry.
    pub fn failed(&self, id: &str, what: &str) -> Duration {
        let news = self.is_news(id, what);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let f = map.entry(id.to_string()).or_insert_with(|| Failures {
            count: 0,
            what: String::new(),
            announced: Instant::now(),
        });
        f.count = f.count.saturating_add(1);
        if news {
            (f.what, f.announced) = (what.to_string(), Instant::now());
        }
        backoff(f.count)
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
