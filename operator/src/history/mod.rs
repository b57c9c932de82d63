//! Pure: the built-in signal's counts, recorded between upgrades so that its baseline knows the
//! time of day. A live observation of 30 minutes cannot tell a regression of less than about ten
//! times from the time of day and noise (detector::reach); a week of recorded buckets can. The
//! recording is a `ts,attempts,errors` trace (one row per bucket, stamped with the bucket's
//! end; `replay` reads it where it has no gaps), kept in a ConfigMap so that a restart or a new
//! leader loses nothing, and bounded: rows older than `KEEP` are dropped.

pub mod recorder;
pub mod scopes;

use crate::crd::KubernetesSignal;
use crate::detector::Counts;
use crate::signals::pod_index::KEEP_DELETED;
use chrono::{DateTime, Duration, DurationRound, Utc};

/// How much is kept: a week, enough for an hour-of-day profile and a weekend. At the default
/// 10-minute bucket, 1,008 rows of about 40 bytes.
pub const KEEP: Duration = Duration::days(7);

/// What the recorder counts: pods created in each bucket, over the operator's whole scope,
/// judged `pending_limit` after creation, like a `kubernetes` signal without selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recording {
    pub bucket: Duration,
    pub pending_limit: Duration,
}

impl Recording {
    /// Whether a signal counts exactly what is recorded: all namespaces of the operator's
    /// scope, no selector, the same pending limit.
    pub fn covers(&self, s: &KubernetesSignal, scope: Option<&str>) -> bool {
        let everywhere = s.namespaces.is_empty() || scope.is_some_and(|ns| s.namespaces == [ns]);
        everywhere
            && s.nodes == crate::crd::NodeScope::All
            && s.label_selector.as_deref().is_none_or(|l| l.trim().is_empty())
            && s.pending_limit.parse().ok() == Some(self.pending_limit)
    }
}

/// The recorded rows, oldest first, and the next bucket to record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    pub rows: Vec<(DateTime<Utc>, Counts)>,
    /// Start of the next bucket to record (None: right after the last row, or from now).
    next: Option<DateTime<Utc>>,
    /// Why the recording could not be kept, while it cannot (for the upgrades that would use it).
    pub problem: Option<String>,
}

impl Recorded {
    /// A new recording that counts back as far as the pod index remembers at `now`: a scope
    /// named for the first time gets its last hours at once.
    pub fn backfilled(now: DateTime<Utc>) -> Recorded {
        Recorded { next: Some(now - KEEP_DELETED), ..Default::default() }
    }

    /// Read a recording back: a trace as `replay` reads it, but with gaps.
    pub fn parse(text: &str) -> Result<Recorded, String> {
        Ok(Recorded { rows: crate::replay::parse_rows(text, false)?, next: None, problem: None })
    }

    /// Without the rows that end after `latest` (a clock that ran ahead, or a hand edit).
    pub fn until(mut self, latest: DateTime<Utc>) -> Recorded {
        self.rows.retain(|(t, _)| *t <= latest);
        self.next = self.next.filter(|n| *n <= latest);
        self
    }

    pub fn to_csv(&self) -> String {
        let mut s = String::from("ts,attempts,errors\n");
        for (t, c) in &self.rows {
            s += &format!(
                "{},{},{}\n",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                c.attempts,
                c.errors
            );
        }
        s
    }

    /// The next bucket `[from, to)` of pod creations that can be judged at `now`, if any. A
    /// bucket whose pods the watch may not have seen (it started after the bucket's pods were
    /// created) is skipped, never recorded as zero. While the watches are behind (none: they
    /// failed and resume, or have not listed), nothing is due and nothing skipped: a resumed
    /// watch still brings what it missed, and a new list says since when it sees.
    pub fn due(
        &mut self,
        r: &Recording,
        now: DateTime<Utc>,
        watched_since: Option<DateTime<Utc>>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let watched_since = watched_since?;
        let aligned = |t: DateTime<Utc>| t.duration_trunc(r.bucket).unwrap_or(t);
        let first = aligned(now - r.pending_limit - r.bucket);
        // The pod index forgets deleted pods after KEEP_DELETED: an older bucket (a replica
        // that led long ago and leads again) can no longer be counted whole.
        let oldest = aligned(now - KEEP_DELETED + r.bucket);
        let mut from = self.next.or(self.last_at()).unwrap_or(first).max(oldest.min(first));
        loop {
            let to = from + r.bucket;
            if now < to + r.pending_limit {
                self.next = Some(from);
                return None;
            }
            if watched_since <= from {
                self.next = Some(from);
                return Some((from, to));
            }
            from = to;
        }
    }

    /// Record the bucket ending at `to`, and drop what is older than `KEEP`.
    pub fn push(&mut self, to: DateTime<Utc>, c: Counts) {
        if self.rows.last().is_none_or(|(t, _)| *t < to) {
            self.rows.push((to, c));
        }
        self.next = Some(to);
        let cutoff = to - KEEP;
        self.rows.retain(|(t, _)| *t > cutoff);
    }

    /// When the newest row ends, if there is one.
    pub fn last_at(&self) -> Option<DateTime<Utc>> {
        self.rows.last().map(|r| r.0)
    }

    /// Keep only the newest `max_rows` rows (a short bucket would otherwise outgrow the
    /// ConfigMap within the week).
    pub fn trim(&mut self, max_rows: usize) {
        let over = self.rows.len().saturating_sub(max_rows);
        self.rows.drain(..over);
    }

    /// The rows within `lookback` before `now`.
    pub fn since(&self, now: DateTime<Utc>, lookback: Duration) -> Vec<(DateTime<Utc>, Counts)> {
        self.rows.iter().filter(|(t, _)| *t > now - lookback && *t <= now).copied().collect()
    }
}

#[cfg(test)]
mod tests;
