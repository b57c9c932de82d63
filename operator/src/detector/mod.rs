//! Decide step, pure: is the soak a regression against the pre-change baseline?
//!
//! The baseline is fitted from per-interval counts before the change: a robust pooled error
//! rate (hours far above the median are treated as incidents and left out), an hour-of-day
//! profile once there is a day of history, and the overdispersion of the counts. The
//! detector is a one-sided binomial CUSUM on buckets of intervals (10 minutes by default)
//! against the smallest regression that matters, p1 = max(p0 × (1 + relative), p0 + absolute),
//! where p0 is taken three standard deviations above the estimate (the baseline is itself
//! uncertain). Each bucket's log-likelihood ratio is divided by the overdispersion and capped, so
//! a spike of minutes cannot trip it alone; buckets with too few attempts are merged with the next. A
//! separate ceiling reverts fast on catastrophic breakage. The whole running state is plain
//! data kept in the CR status, so a restart resumes it.

mod baseline;
mod cusum;
pub mod level;
pub mod reach;

pub use baseline::{
    add_live_interval, baseline_margin, fit_baseline, inflation, observed_seconds, rate_at, rate_lower_bound,
};
pub use cusum::{Cusum, DEFAULT_THRESHOLD, llr};

use crate::crd::{BaselineStatus, DetectorState, Verdict};
use chrono::{DateTime, Utc};

/// Attempts and errors in one span of time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub errors: u64,
}

impl Counts {
    pub fn rate(self) -> f64 {
        if self.attempts == 0 { 0.0 } else { self.errors as f64 / self.attempts as f64 }
    }
    /// The rate with Jeffreys-style smoothing, for baselines: a zero-error baseline must not make
    /// every later error infinitely surprising.
    pub fn smoothed_rate(self) -> f64 {
        (self.errors as f64 + 0.5) / (self.attempts as f64 + 1.0)
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        // Saturating: a recording edited by hand may hold any count.
        Counts {
            attempts: self.attempts.saturating_add(other.attempts),
            errors: self.errors.saturating_add(other.errors),
        }
    }
}

/// A verdict and the facts behind it, for status and Events.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub baseline_rate: f64,
    pub observed_rate: f64,
    pub statistic: f64,
    pub threshold: f64,
    /// Errors above what the baseline predicts, since the change.
    pub excess_errors: f64,
    pub reason: String,
}

pub trait Detector {
    /// Feed the counts of the interval ending at `at`; update `state`; say what they mean.
    fn update(
        &self,
        state: &mut DetectorState,
        baseline: &BaselineStatus,
        at: DateTime<Utc>,
        sample: Counts,
    ) -> Assessment;
}

pub fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

#[cfg(test)]
mod tests;
