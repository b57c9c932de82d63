//! A diagnostic, not a detector: could any test have caught a miss? For a regression at least
//! as large as the minimum effect a baseline supports, the exact two-sample test of the soak
//! against the baseline, told the onset. Given the failures of both, the soak's share of them
//! depends only on the ratio of their rates (the time of day and volume are in the expected
//! counts), so the baseline's own uncertainty is in the test exactly, with no margin. It takes
//! the best window from an hour on the grid after the onset to the end of the soak, and asks
//! the CUSUM's question of it: do the counts favour the minimum effect over no change by the
//! CUSUM's threshold?

use crate::corpus::Trace;
use chrono::{DateTime, Utc};
use maintenance_operator::crd::BaselineStatus;
use maintenance_operator::detector::{Counts, Cusum, rate_at};

/// The largest log-likelihood ratio, over windows from an hour on the grid after the onset to the
/// end of the soak, of the soak's share of the failures at the minimum effect against the share
/// without a change; scaled by the overdispersion like the CUSUM's steps.
pub fn best_window_llr(d: &Cusum, b: &BaselineStatus, t: &Trace) -> f64 {
    let Some(onset) = t.onset else { return 0.0 };
    best_window_llr_on(d, b, &t.rows, onset)
}

/// The same on any `rows` (a canary's, say), the regression starting at row `onset`.
pub fn best_window_llr_on(
    d: &Cusum,
    b: &BaselineStatus,
    rows: &[(DateTime<Utc>, Counts)],
    onset: usize,
) -> f64 {
    // The baseline's failures outside its incidents (its rate leaves them out).
    let k0 = (b.errors as f64).min(b.rate * b.attempts as f64);
    let relative = d.relative_increase(b);
    let (mut x, mut e, mut attempts) = (0.0, 0.0, 0.0);
    let mut best: f64 = 0.0;
    // From the end backwards, so each hourly start extends the window by an hour.
    for (i, (at, c)) in rows.iter().enumerate().skip(onset).rev() {
        x += c.errors as f64;
        e += c.attempts as f64 * rate_at(b, *at);
        attempts += c.attempts as f64;
        if !(i - onset).is_multiple_of(60) || e <= 0.0 || k0 <= 0.0 {
            continue;
        }
        let p0 = e / attempts;
        let ratio = d.regression_rate(p0, relative) / p0;
        // The soak's share of all the failures without a change, and with the minimum effect.
        let (q0, q1) = (e / (k0 + e), ratio * e / (k0 + ratio * e));
        let llr = x * (q1 / q0).ln() + k0 * ((1.0 - q1) / (1.0 - q0)).ln();
        best = best.max(llr / b.dispersion.max(1.0));
    }
    best
}
