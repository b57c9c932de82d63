//! An experiment, not the operator's detector: a generalized likelihood ratio over linear ramps
//! of the error rate, beside the CUSUM, with the same beta-binomial steps and baseline. Each
//! hypothesis is a ramp starting at an onset τ (on an hourly grid since the change) with a
//! slope s (the rate doubling in 1 to 64 hours), capped at 5x; the statistic is the largest
//! log-likelihood ratio among the ramps whose multiple at the decision time is at least the
//! minimum effect (a ramp that still predicts less is no regression yet). `--ramp-experiment`
//! compares it with the CUSUM alone, at 7 days of history.

use chrono::{DateTime, Duration, Utc};
use maintenance_operator::crd::BaselineStatus;
use maintenance_operator::detector::{Counts, Cusum, baseline_margin, inflation, llr, rate_at};

/// Hours for the rate to double, one slope each.
const DOUBLING_HOURS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
const CAP: f64 = 5.0;

/// The soak row at which the ramp statistic first reaches `threshold` (with the CUSUM's
/// excess-failure rule), or None.
/// `mixture`: the log of the mean likelihood ratio over those ramps instead of the largest.
pub fn first_alarm(
    d: &Cusum,
    b: &BaselineStatus,
    soak: &[(DateTime<Utc>, Counts)],
    threshold: f64,
    mixture: bool,
) -> Option<usize> {
    let start = soak.first()?.0;
    let relative = d.relative_increase(b);
    let margin = baseline_margin(b);
    let (_, cap) = d.limits(b);
    // Log-likelihood ratio of each ramp, by hourly onset and slope.
    let mut sums = vec![[0.0f64; DOUBLING_HOURS.len()]; 73];
    let (mut n, mut y, mut expected, mut from) = (0.0, 0.0, 0.0, start);
    let (mut soak_errors, mut soak_expected) = (0.0, 0.0);
    for (i, (t, c)) in soak.iter().enumerate() {
        let p0 = rate_at(b, *t);
        n += c.attempts as f64;
        y += c.errors as f64;
        expected += c.attempts as f64 * p0;
        soak_errors += c.errors as f64;
        soak_expected += c.attempts as f64 * p0;
        if *t - from < d.bucket - Duration::seconds(1) || n < d.min_attempts as f64 {
            continue;
        }
        let reference = ((expected / n) * margin).clamp(1e-6, 0.5);
        let phi = inflation(b, n);
        let now = (*t - start).num_seconds() as f64 / 3600.0;
        let mut best = f64::NEG_INFINITY;
        let (mut mix, mut count) = (0.0f64, 0.0f64);
        for (onset, row) in sums.iter_mut().enumerate().take(now.ceil() as usize) {
            for (k, doubling) in DOUBLING_HOURS.iter().enumerate() {
                let m = (1.0 + (now - onset as f64) / doubling).min(CAP);
                row[k] += (llr(n, y, reference, (reference * m).min(0.999)) / phi).min(cap);
                if m >= 1.0 + relative {
                    best = best.max(row[k]);
                    mix += row[k].min(50.0).exp();
                    count += 1.0;
                }
            }
        }
        (n, y, expected, from) = (0.0, 0.0, 0.0, *t);
        let stat = if mixture { (mix / count.max(1.0)).ln() } else { best };
        if stat >= threshold && soak_errors - soak_expected >= d.min_excess_failures {
            return Some(i);
        }
    }
    None
}
