//! The rules of the canary tools, as their docs describe them, and the clairvoyant bound. Each
//! returns the soak row of its rollback, or None.

use super::corpus::Trace;
use chrono::{DateTime, Utc};
use maintenance_operator::detector::{Counts, llr};

/// Not a detector: a clairvoyant bound. It knows the onset and the exact error rate of every
/// minute with and without the regression, and sums the Neyman-Pearson log-likelihood ratio
/// from the onset until it reaches ln 100 (at most a 1 % chance per soak of a false rollback,
/// by Wald's inequality). No real detector, which knows neither, can be faster on average.
pub fn oracle(t: &Trace) -> Option<usize> {
    let soak: Vec<Counts> = t.soak().iter().map(|r| r.1).collect();
    oracle_on(&soak, &t.p_null, &t.p_true, t.onset? - t.change)
}

/// The bound on soak counts with their exact rates, from the soak row `onset`.
pub fn oracle_on(soak: &[Counts], p_null: &[f64], p_true: &[f64], onset: usize) -> Option<usize> {
    let mut sum = 0.0;
    (onset..soak.len()).find(|&i| {
        sum += llr(soak[i].attempts as f64, soak[i].errors as f64, p_null[i], p_true[i]);
        sum >= 100f64.ln()
    })
}

/// Argo Rollouts: a measurement every `interval` minutes of the rate over that interval; it
/// fails above `limit`; the run fails once failures exceed failureLimit (a running total).
pub fn argo(t: &Trace, limit: f64, interval: usize, failure_limit: usize) -> Option<usize> {
    let soak = t.soak();
    let mut failures = 0;
    let mut i = interval;
    while i <= soak.len() {
        let c = soak[i - interval..i].iter().fold(Counts::default(), |a, r| a + r.1);
        if c.attempts > 0 && c.rate() > limit {
            failures += 1;
            if failures > failure_limit {
                return Some(i - 1);
            }
        }
        i += interval;
    }
    None
}

/// Flagger: a check every minute of the 1-minute rate against thresholdRange.max; rollback once
/// the failed checks reach `threshold`.
pub fn flagger(t: &Trace, limit: f64, threshold: usize) -> Option<usize> {
    argo(t, limit, 1, threshold - 1)
}

/// Kayenta: every hour, a one-sided Mann-Whitney test of the last hour's per-minute rates
/// against up to three hours before the change (what the history has); rollback when z exceeds
/// `z_limit`.
pub fn kayenta(t: &Trace, history_min: usize, z_limit: f64) -> Option<usize> {
    let rates = |r: &[(DateTime<Utc>, Counts)]| -> Vec<f64> {
        r.iter().filter(|x| x.1.attempts > 0).map(|x| x.1.rate()).collect()
    };
    let base = rates(t.history(history_min.min(180)));
    let soak = t.soak();
    let mut i = 60;
    while i <= soak.len() {
        if mann_whitney_z(&rates(&soak[i - 60..i]), &base) > z_limit {
            return Some(i - 1);
        }
        i += 60;
    }
    None
}

/// z of the Mann-Whitney U statistic for "a is larger than b", with the tie correction.
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut all: Vec<(f64, bool)> =
        a.iter().map(|&x| (x, true)).chain(b.iter().map(|&x| (x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;
    let mut rank_a = 0.0;
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        let k = (j - i) as f64;
        ties += k * k * k - k;
        rank_a += r * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 { 0.0 } else { (u - mean) / var.sqrt() }
}
