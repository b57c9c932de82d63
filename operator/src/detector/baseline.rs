//! The pre-change baseline: fitted from history at once, or observed live interval by interval.

use super::Counts;
use crate::crd::BaselineStatus;
use chrono::{DateTime, Duration, Timelike, Utc};

/// History this long or more gets an hour-of-day profile: a day has seen every hour once, and
/// the prior below shrinks an hour seen once towards the pooled rate. Measured on the floor
/// seeds: a day with the profile supports 2.15x, without it 2.7x (`reach`).
const HOURLY_AFTER_DAYS: i64 = 1;
/// History this long or more tells an incident from the median of the same hour on other days;
/// shorter history, from the median of all its hours (an hour is its own only peer on one day).
const PEERS_BY_HOUR_AFTER_DAYS: i64 = 3;
/// Prior weight, in expected errors, pulling each hour's rate towards the pooled rate: an
/// hour's own rate counts only once it rests on more failures than this.
const HOURLY_PRIOR_ERRORS: f64 = 20.0;

/// Fit the baseline from per-interval counts before the change, in time order.
pub fn fit_baseline(history: &[(DateTime<Utc>, Counts)], bucket: Duration) -> BaselineStatus {
    // Each row counts the interval that ends at its timestamp, so the history covers one
    // interval before its first row.
    let step = match history {
        [a, b, ..] => b.0 - a.0,
        _ => Duration::zero(),
    };
    let from = history.first().map(|(t, _)| *t - step);
    let to = history.last().map(|(t, _)| *t);
    let span = match (from, to) {
        (Some(f), Some(t)) => t - f,
        _ => Duration::zero(),
    };
    let by_hour = span >= Duration::days(HOURLY_AFTER_DAYS);
    let peers_by_hour = span >= Duration::days(PEERS_BY_HOUR_AFTER_DAYS);
    // Hourly blocks; a block far above the median of its peers (the same hour of other days
    // when there are enough of them) is an incident, not the baseline.
    let blocks = group(history, Duration::hours(1));
    let key = |t: &DateTime<Utc>| if peers_by_hour { t.hour() as usize } else { 0 };
    // The reference of a block is the median rate of its peers, or their pooled rate if higher:
    // at low volume most hours have no failure at all and the median is 0, which would make
    // every hour with one failure look like an incident.
    let mut reference = [0.0f64; 24];
    for (k, r) in reference.iter_mut().enumerate() {
        let peers: Vec<Counts> =
            blocks.iter().filter(|(t, c)| c.attempts > 0 && key(t) == k).map(|b| b.1).collect();
        let mut rates: Vec<f64> = peers.iter().map(|c| c.rate()).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
        *r = median.max(peers.iter().fold(Counts::default(), |a, c| a + *c).rate());
    }
    // Far above: more than three times the reference, beyond four standard deviations of
    // Poisson noise and two failures of slack (a count of one or two proves nothing).
    let kept: Vec<&(DateTime<Utc>, Counts)> = blocks
        .iter()
        .filter(|(t, c)| {
            let expected = c.attempts as f64 * reference[key(t)];
            c.errors as f64 <= 3.0 * expected + 4.0 * expected.sqrt() + 2.0
        })
        .collect();
    let pooled = kept.iter().fold(Counts::default(), |a, (_, c)| a + *c);
    let total = history.iter().fold(Counts::default(), |a, (_, c)| a + *c);
    let rate = pooled.smoothed_rate();
    let mut hourly = vec![];
    if by_hour {
        let mut per_hour = [Counts::default(); 24];
        for (t, c) in &kept {
            per_hour[t.hour() as usize] = per_hour[t.hour() as usize] + *c;
        }
        hourly = per_hour
            .iter()
            .map(|c| {
                (c.errors as f64 + HOURLY_PRIOR_ERRORS) / (c.attempts as f64 + HOURLY_PRIOR_ERRORS / rate)
            })
            .collect();
    }
    let mut b = BaselineStatus {
        attempts: total.attempts as i64,
        errors: total.errors as i64,
        rate,
        from,
        to,
        dispersion: 1.0,
        hourly,
        ..Default::default()
    };
    // Overdispersion: Pearson chi-square per degree of freedom over the kept buckets.
    let kept_hours: Vec<DateTime<Utc>> = kept.iter().map(|(t, _)| *t).collect();
    let buckets: Vec<(DateTime<Utc>, Counts)> = group(history, bucket)
        .into_iter()
        .filter(|(t, _)| kept_hours.iter().any(|h| *t >= *h && *t < *h + Duration::hours(1)))
        .collect();
    (b.dispersion, b.correlation) = dispersion(&buckets, &b);
    b
}

/// Group counts into consecutive spans of `len`, each labelled with its first timestamp.
fn group(history: &[(DateTime<Utc>, Counts)], len: Duration) -> Vec<(DateTime<Utc>, Counts)> {
    let mut out: Vec<(DateTime<Utc>, Counts)> = vec![];
    for (t, c) in history {
        match out.last_mut() {
            Some((start, acc)) if *t < *start + len => *acc = *acc + *c,
            _ => out.push((*t, *c)),
        }
    }
    out
}

/// Beta-binomial overdispersion: a bucket's squared Pearson residual has expectation
/// 1 + (n − 1) ρ. Estimated robustly, so that a few spikes in the history do not pass for noise:
/// the ρ at which the 95 % trimmed mean of r² / (1 + (n − 1) ρ) is that of chi-square(1).
/// Returns (φ at the median volume, ρ).
fn dispersion(buckets: &[(DateTime<Utc>, Counts)], b: &BaselineStatus) -> (f64, f64) {
    // E[X | X < q95] for chi-square(1): P(chi-square(3) < 3.841) / 0.95.
    const CHI2_1_TRIMMED_MEAN: f64 = 0.7207 / 0.95;
    let mut r: Vec<(f64, f64)> = vec![];
    for (t, c) in buckets {
        if c.attempts < 20 {
            continue;
        }
        let p = rate_at(b, *t);
        let n = c.attempts as f64;
        r.push(((c.errors as f64 - n * p).powi(2) / (n * p * (1.0 - p)), n));
    }
    if r.len() < 6 {
        return (1.0, 0.0);
    }
    // Mean of the lowest 95 % of scaled residuals: robust to the few spike buckets, and unlike
    // the median still informative when counts are sparse.
    let keep = ((r.len() as f64) * 0.95).ceil() as usize;
    let trimmed_mean_at = |rho: f64| {
        let mut v: Vec<f64> = r.iter().map(|(r2, n)| r2 / (1.0 + (n - 1.0) * rho)).collect();
        v.sort_by(f64::total_cmp);
        v[..keep].iter().sum::<f64>() / keep as f64
    };
    let rho = if trimmed_mean_at(0.0) <= CHI2_1_TRIMMED_MEAN {
        0.0
    } else {
        let (mut lo, mut hi) = (0.0, 0.5);
        for _ in 0..50 {
            let mid = (lo + hi) / 2.0;
            if trimmed_mean_at(mid) > CHI2_1_TRIMMED_MEAN { lo = mid } else { hi = mid }
        }
        hi
    };
    let mut ns: Vec<f64> = r.iter().map(|(_, n)| *n).collect();
    ns.sort_by(f64::total_cmp);
    (1.0 + (ns[ns.len() / 2] - 1.0) * rho, rho)
}

/// How much more a bucket of `n` attempts varies than binomial noise.
pub fn inflation(b: &BaselineStatus, n: f64) -> f64 {
    if b.correlation > 0.0 { 1.0 + (n - 1.0).max(0.0) * b.correlation } else { b.dispersion.max(1.0) }
}

/// The baseline error rate expected at `t` (hour-of-day aware when the profile exists).
pub fn rate_at(b: &BaselineStatus, t: DateTime<Utc>) -> f64 {
    let p = if b.hourly.len() == 24 { b.hourly[t.hour() as usize] } else { b.rate };
    p.clamp(1e-6, 0.999)
}

/// How far above its estimate the baseline rate may plausibly be: the one-sided upper bound,
/// MARGIN_Z standard deviations up, of the Poisson mean of the failures it rests on, relative to
/// the estimate (Wilson-Hilferty; 1 + 3/√failures for many, and far more for a handful: none in
/// 30 minutes says little). With a daily profile, at least an hour's share plus the prior, and
/// never less than the pooled bound (the profile is shrunk towards the pooled rate, so it is
/// no surer). The CUSUM judges against the rate this much higher, so a baseline that happens to
/// be underestimated, which is likely when it rests on few failures, does not read as a slow
/// regression over a multi-day soak.
pub fn baseline_margin(b: &BaselineStatus) -> f64 {
    let e = b.errors.max(0) as f64;
    let k = e + 1.0;
    let pooled = k * (1.0 - 1.0 / (9.0 * k) + MARGIN_Z / (3.0 * k.sqrt())).powi(3) / (e + 0.5);
    if b.hourly.len() == 24 {
        return pooled.max(1.0 + 1.0 / (e / 24.0 + HOURLY_PRIOR_ERRORS).sqrt());
    }
    pooled
}

/// How low the baseline rate may plausibly be: the one-sided lower bound, MARGIN_Z standard
/// deviations down, of the Poisson mean of the failures it rests on (Wilson-Hilferty), as a
/// share of the estimate. 0 without failures, or for a status that holds no number.
pub fn rate_lower_bound(b: &BaselineStatus) -> f64 {
    let e = b.errors.max(0) as f64;
    if e == 0.0 || !b.rate.is_finite() {
        return 0.0;
    }
    let low = e * (1.0 - 1.0 / (9.0 * e) - MARGIN_Z / (3.0 * e.sqrt())).max(0.0).powi(3);
    (b.rate * low / e).clamp(0.0, 1.0)
}

/// Standard deviations of the margin. Chosen among 1, 2 and 3 on the floor seeds: at 1 and 2
/// the floors (`reach`) were set by baselines of a handful of failures that came out low by
/// chance (3 days, 5 failures: 9.55x at 1, 4.10x at 2); at 3 every floor is set by an
/// unrelated incident during the soak instead, and the floors of short baselines halve.
const MARGIN_Z: f64 = 3.0;

/// How many seconds a live observation has seen (`add_live_interval`), bounded to [0, 1e9]
/// (about 32 years) whatever a status written by hand says: 0 when not a number.
pub fn observed_seconds(b: &BaselineStatus) -> f64 {
    if b.observed_seconds.is_finite() { b.observed_seconds.clamp(0.0, 1e9) } else { 0.0 }
}

/// Add one live interval to a baseline being observed (signals without history). The running
/// Pearson sums give the dispersion without keeping every interval.
pub fn add_live_interval(b: &mut BaselineStatus, at: DateTime<Utc>, from: DateTime<Utc>, c: Counts) {
    b.attempts += c.attempts as i64;
    b.errors += c.errors as i64;
    // A baseline begun by an operator that did not count what it saw: its span, as it was.
    if b.observed_seconds == 0.0
        && let (Some(f), Some(t)) = (b.from, b.to)
    {
        b.observed_seconds = (t - f).as_seconds_f64();
    }
    b.from.get_or_insert(from);
    b.to = Some(at);
    b.observed_seconds += (at - from).as_seconds_f64();
    if c.attempts > 0 {
        b.sum_sq += (c.errors as f64).powi(2) / c.attempts as f64;
        b.intervals += 1;
    }
    b.rate = Counts { attempts: b.attempts.max(0) as u64, errors: b.errors.max(0) as u64 }.smoothed_rate();
    // chi2 = sum((y - n p)^2 / (n p (1-p))) = (sum(y^2/n) - 2 p sum(y) + p^2 sum(n)) / (p (1-p))
    let p = b.rate;
    let chi2 = (b.sum_sq - 2.0 * p * b.errors as f64 + p * p * b.attempts as f64) / (p * (1.0 - p));
    if b.intervals >= 4 {
        let (k, n_minus_1) = (b.intervals as f64, (b.attempts - b.intervals).max(1) as f64);
        b.correlation = ((chi2 - k) / n_minus_1).clamp(0.0, 0.5);
        b.dispersion = 1.0 + (n_minus_1 / k) * b.correlation;
    } else {
        b.dispersion = 1.0;
    }
}
