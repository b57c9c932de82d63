//! Decide step, pure: is the soak a regression against the pre-change baseline?
//!
//! A detector consumes per-interval counts one at a time and keeps its running state in
//! `DetectorState`, which lives in the CR status so that a restart resumes it.

use crate::crd::{DetectorState, RegressionRule, Verdict};

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
    pub fn add(self, other: Counts) -> Counts {
        Counts { attempts: self.attempts + other.attempts, errors: self.errors + other.errors }
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
    /// Errors above what the baseline rate predicts, in the span the statistic covers.
    pub excess_errors: f64,
    pub reason: String,
}

pub trait Detector {
    /// Feed one interval's counts; update `state`; say what they mean.
    fn update(&self, state: &mut DetectorState, baseline: Counts, sample: Counts) -> Assessment;
}

/// The first rule: an exponentially weighted error rate over the recent intervals must not
/// exceed the baseline rate by the minimum effect (relative and absolute at once), and the
/// weighted excess must amount to a few failures, so one failure in a quiet minute cannot trip it.
pub struct BaselineRelative {
    pub rule: RegressionRule,
}

/// Weight kept by past intervals at each step: about the last ten intervals count.
const DECAY: f64 = 0.9;
/// Fewer excess failures than this never make a regression.
const MIN_EXCESS_ERRORS: f64 = 3.0;

impl BaselineRelative {
    /// The smallest error rate that counts as a regression for a baseline rate.
    pub fn regression_rate(&self, baseline_rate: f64) -> f64 {
        (baseline_rate * (1.0 + self.rule.min_relative_increase)).max(baseline_rate + self.rule.min_absolute_increase)
    }
}

impl Detector for BaselineRelative {
    fn update(&self, state: &mut DetectorState, baseline: Counts, sample: Counts) -> Assessment {
        state.weighted_attempts = state.weighted_attempts * DECAY + sample.attempts as f64;
        state.weighted_errors = state.weighted_errors * DECAY + sample.errors as f64;
        let p0 = baseline.rate();
        let threshold = self.regression_rate(p0);
        let observed = if state.weighted_attempts > 0.0 { state.weighted_errors / state.weighted_attempts } else { 0.0 };
        let excess = state.weighted_errors - p0 * state.weighted_attempts;
        let mut a = Assessment {
            verdict: Verdict::Inconclusive,
            baseline_rate: p0,
            observed_rate: observed,
            statistic: observed,
            threshold,
            excess_errors: excess,
            reason: String::new(),
        };
        let min = self.rule.min_attempts as f64;
        if baseline.attempts < self.rule.min_attempts.max(0) as u64 {
            a.reason = format!(
                "baseline has {} attempts, fewer than the {} needed for a verdict",
                baseline.attempts, self.rule.min_attempts
            );
        } else if state.weighted_attempts < min {
            a.reason = format!(
                "only {:.0} recent attempts, fewer than the {} needed for a verdict",
                state.weighted_attempts, self.rule.min_attempts
            );
        } else if observed >= threshold && excess >= MIN_EXCESS_ERRORS {
            a.verdict = Verdict::Regression;
            a.reason = format!(
                "error rate {} against a baseline of {}: at or above the regression threshold {} with {:.1} more failures than the baseline predicts",
                pct(observed),
                pct(p0),
                pct(threshold),
                excess
            );
        } else {
            a.verdict = Verdict::Pass;
            a.reason = format!("error rate {} against a baseline of {} (regression at {})", pct(observed), pct(p0), pct(threshold));
        }
        a
    }
}

pub fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detector() -> BaselineRelative {
        BaselineRelative { rule: RegressionRule::default() }
    }

    fn run(samples: &[(u64, u64)]) -> Vec<Verdict> {
        let d = detector();
        let baseline = Counts { attempts: 10_000, errors: 100 }; // 1 %
        let mut state = DetectorState::default();
        samples.iter().map(|&(a, e)| d.update(&mut state, baseline, Counts { attempts: a, errors: e }).verdict).collect()
    }

    #[test]
    fn healthy_soak_passes() {
        assert!(run(&[(100, 1); 50]).iter().all(|v| *v == Verdict::Pass));
    }

    #[test]
    fn doubling_of_the_error_rate_is_a_regression() {
        let v = run(&[(100, 1), (100, 1), (100, 4), (100, 4), (100, 5), (100, 5), (100, 5)]);
        assert_eq!(v.first(), Some(&Verdict::Pass));
        assert_eq!(v.last(), Some(&Verdict::Regression));
    }

    #[test]
    fn one_failure_in_a_quiet_interval_does_not_trip_it() {
        // 25 attempts over the span: the rate jumps to 4 % but the excess is under 3 failures.
        let v = run(&[(5, 0), (5, 0), (5, 0), (5, 0), (5, 1)]);
        assert!(!v.contains(&Verdict::Regression), "{v:?}");
    }

    #[test]
    fn low_volume_is_inconclusive_not_pass() {
        assert_eq!(run(&[(3, 0)]), vec![Verdict::Inconclusive]);
        let d = detector();
        let mut state = DetectorState::default();
        let a = d.update(&mut state, Counts { attempts: 5, errors: 0 }, Counts { attempts: 100, errors: 50 });
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert!(a.reason.contains("baseline"), "{}", a.reason);
    }

    #[test]
    fn threshold_is_the_larger_of_relative_and_absolute_increase() {
        let d = detector();
        assert!((d.regression_rate(0.0) - 0.005).abs() < 1e-12);
        assert!((d.regression_rate(0.02) - 0.04).abs() < 1e-12);
    }
}
