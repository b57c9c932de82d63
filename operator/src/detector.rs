//! Decide step, pure: is the soak a regression against the pre-change baseline?
//!
//! The baseline is fitted from per-interval counts before the change: a robust pooled error
//! rate (hours far above the median are treated as incidents and left out), an hour-of-day
//! profile once there are three days of history, and the overdispersion of the counts. The
//! detector is a one-sided binomial CUSUM on buckets of intervals (10 minutes by default)
//! against the smallest regression that matters, p1 = max(p0 × (1 + relative), p0 + absolute),
//! where p0 is taken one standard error above the estimate (the baseline is itself uncertain).
//! Each bucket's log-likelihood ratio is divided by the overdispersion and capped, so a spike
//! of minutes cannot trip it alone; buckets with too few attempts are merged with the next. A
//! separate ceiling reverts fast on catastrophic breakage. The whole running state is plain
//! data kept in the CR status, so a restart resumes it.

use crate::crd::{BaselineStatus, DetectorState, RegressionRule, Sensitivity, Verdict};
use chrono::{DateTime, Duration, Timelike, Utc};

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

// ---------------------------------------------------------------------------------------------
// Baseline

/// History this long or more gets an hour-of-day profile.
const HOURLY_AFTER_DAYS: i64 = 3;
/// Prior weight, in expected errors, pulling each hour's rate towards the pooled rate: an
/// hour's own rate counts only once it rests on more failures than this.
const HOURLY_PRIOR_ERRORS: f64 = 50.0;

/// Fit the baseline from per-interval counts before the change, in time order.
pub fn fit_baseline(history: &[(DateTime<Utc>, Counts)], bucket: Duration) -> BaselineStatus {
    let from = history.first().map(|(t, _)| *t);
    let to = history.last().map(|(t, _)| *t);
    let span_days = match (from, to) {
        (Some(f), Some(t)) => (t - f).num_days(),
        _ => 0,
    };
    let by_hour = span_days >= HOURLY_AFTER_DAYS;
    // Hourly blocks; a block far above the median of its peers (the same hour of day when there
    // is a daily profile to learn) is an incident, not the baseline.
    let blocks = group(history, Duration::hours(1));
    let key = |t: &DateTime<Utc>| if by_hour { t.hour() as usize } else { 0 };
    let mut medians = [0.0f64; 24];
    for (k, m) in medians.iter_mut().enumerate() {
        let mut rates: Vec<f64> =
            blocks.iter().filter(|(t, c)| c.attempts > 0 && key(t) == k).map(|(_, c)| c.rate()).collect();
        rates.sort_by(f64::total_cmp);
        *m = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    }
    let kept: Vec<&(DateTime<Utc>, Counts)> = blocks
        .iter()
        .filter(|(t, c)| {
            let median = medians[key(t)];
            let sd = (median.max(1e-4) * (1.0 - median) / c.attempts.max(1) as f64).sqrt();
            c.rate() <= 3.0 * median + 4.0 * sd + 1e-9
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

/// How far above its estimate the baseline rate may plausibly be: one relative standard error,
/// from the failures it rests on (an hour's share plus the prior when there is a daily profile).
/// The CUSUM judges against the rate this much higher, so a baseline that happens to be
/// underestimated, which is likely when it rests on few failures, does not read as a slow
/// regression over a multi-day soak.
pub fn baseline_margin(b: &BaselineStatus) -> f64 {
    let failures = if b.hourly.len() == 24 {
        b.errors.max(0) as f64 / 24.0 + HOURLY_PRIOR_ERRORS
    } else {
        b.errors.max(0) as f64 + 1.0
    };
    1.0 + 1.0 / failures.sqrt()
}

/// Add one live interval to a baseline being observed (signals without history). The running
/// Pearson sums give the dispersion without keeping every interval.
pub fn observe_baseline(b: &mut BaselineStatus, at: DateTime<Utc>, from: DateTime<Utc>, c: Counts) {
    b.attempts += c.attempts as i64;
    b.errors += c.errors as i64;
    b.from.get_or_insert(from);
    b.to = Some(at);
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

// ---------------------------------------------------------------------------------------------
// CUSUM

/// The detector's parameters: defaults that work without tuning, scaled by `sensitivity`, each
/// overridable in the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Cusum {
    pub min_relative_increase: f64,
    pub min_absolute_increase: f64,
    /// Fewer attempts in a bucket: merged with the next one.
    pub min_attempts: u64,
    /// Decision threshold on the statistic.
    pub threshold: f64,
    /// Cap on one bucket's contribution: a short spike cannot reach the threshold alone.
    pub max_increment: f64,
    pub bucket: Duration,
    /// Catastrophe: rate above max(ceiling × p0, p0 + ceilingAbsolute) ...
    pub ceiling: f64,
    pub ceiling_absolute: f64,
    /// ... for this many intervals in a row.
    pub ceiling_intervals: u32,
    /// Never a regression with fewer excess failures than this since the change.
    pub min_excess_failures: f64,
}

pub const DEFAULT_THRESHOLD: f64 = 12.0;

impl Cusum {
    pub fn from_rule(rule: &RegressionRule) -> Cusum {
        let scale = match rule.sensitivity {
            Sensitivity::Low => 1.5,
            Sensitivity::Medium => 1.0,
            Sensitivity::High => 0.6,
        };
        Cusum {
            min_relative_increase: rule.min_relative_increase,
            min_absolute_increase: rule.min_absolute_increase,
            min_attempts: rule.min_attempts.max(1) as u64,
            threshold: rule.threshold.unwrap_or(DEFAULT_THRESHOLD * scale),
            max_increment: rule.max_increment.unwrap_or(2.0),
            bucket: rule.bucket.as_ref().and_then(|b| b.parse().ok()).unwrap_or(Duration::minutes(10)),
            ceiling: rule.ceiling.unwrap_or(10.0),
            ceiling_absolute: 0.10,
            ceiling_intervals: 15,
            min_excess_failures: rule.min_excess_failures.unwrap_or(10.0 * scale),
        }
    }

    /// The smallest error rate that counts as a regression for a baseline rate.
    pub fn regression_rate(&self, p0: f64) -> f64 {
        (p0 * (1.0 + self.min_relative_increase)).max(p0 + self.min_absolute_increase).min(0.999)
    }

    fn ceiling_rate(&self, p0: f64) -> f64 {
        (p0 * self.ceiling).max(p0 + self.ceiling_absolute)
    }
}

/// Binomial log-likelihood ratio of `y` errors in `n` attempts, p1 against p0.
fn llr(n: f64, y: f64, p0: f64, p1: f64) -> f64 {
    y * (p1 / p0).ln() + (n - y) * ((1.0 - p1) / (1.0 - p0)).ln()
}

impl Detector for Cusum {
    fn update(&self, s: &mut DetectorState, b: &BaselineStatus, at: DateTime<Utc>, c: Counts) -> Assessment {
        let p0 = rate_at(b, at);
        let n = c.attempts as f64;
        s.soak_attempts += c.attempts as i64;
        s.soak_errors += c.errors as i64;
        s.expected_errors += n * p0;
        let excess = s.soak_errors as f64 - s.expected_errors;

        // Catastrophe: a sustained rate far above the baseline acts within minutes.
        let catastrophic = c.attempts >= 5 && c.rate() >= self.ceiling_rate(p0);
        s.ceiling_run = if catastrophic { s.ceiling_run + 1 } else { 0 };

        // Accumulate the bucket; judge it when it is long enough and has enough attempts.
        s.bucket_attempts += c.attempts as i64;
        s.bucket_errors += c.errors as i64;
        s.bucket_expected += n * p0;
        let start = *s.bucket_from.get_or_insert(at);
        if at - start >= self.bucket - Duration::seconds(1) && s.bucket_attempts as u64 >= self.min_attempts {
            let (bn, by) = (s.bucket_attempts as f64, s.bucket_errors as f64);
            let bp0 = (s.bucket_expected / bn).clamp(1e-6, 0.999);
            let reference = (bp0 * baseline_margin(b)).min(0.999);
            let bp1 = self.regression_rate(reference);
            let inc = (llr(bn, by, reference, bp1) / inflation(b, bn)).min(self.max_increment);
            s.statistic = (s.statistic + inc).max(0.0);
            s.last_bucket_rate = by / bn;
            s.last_bucket_baseline = bp0;
            s.bucket_attempts = 0;
            s.bucket_errors = 0;
            s.bucket_expected = 0.0;
            s.bucket_from = None;
        }

        // Suspicion at two thirds of the threshold (measured: a few percent of healthy soaks get
        // there, and it comes about an hour before a rollback), with hysteresis so that a
        // statistic hovering at the mark does not flap.
        if s.statistic >= self.threshold * 2.0 / 3.0 {
            s.suspect_since.get_or_insert(at);
        } else if s.statistic < self.threshold / 3.0 {
            s.suspect_since = None;
        }

        let soak_rate = if s.soak_attempts > 0 { s.soak_errors as f64 / s.soak_attempts as f64 } else { 0.0 };
        let observed = if s.last_bucket_baseline > 0.0 { s.last_bucket_rate } else { soak_rate };
        let baseline = if s.last_bucket_baseline > 0.0 { s.last_bucket_baseline } else { p0 };
        let mut a = Assessment {
            verdict: Verdict::Pass,
            baseline_rate: baseline,
            observed_rate: observed,
            statistic: s.statistic,
            threshold: self.threshold,
            excess_errors: excess,
            reason: String::new(),
        };
        let margin = baseline_margin(b);
        let facts = format!(
            "error rate {} against a baseline of {} (±{:.0}%; regression at {}); CUSUM {:.1} of {:.1}; {:.0} failures above the baseline since the change",
            pct(observed),
            pct(baseline),
            (margin - 1.0) * 100.0,
            pct(self.regression_rate(baseline * margin)),
            s.statistic,
            self.threshold,
            excess
        );
        if s.ceiling_run >= self.ceiling_intervals && excess >= self.min_excess_failures.min(5.0) {
            a.verdict = Verdict::Regression;
            a.observed_rate = c.rate();
            a.baseline_rate = p0;
            a.reason = format!(
                "catastrophic: error rate {} against a baseline of {}, above the ceiling {} for {} intervals in a row; {:.0} failures above the baseline since the change",
                pct(c.rate()),
                pct(p0),
                pct(self.ceiling_rate(p0)),
                s.ceiling_run,
                excess
            );
        } else if s.statistic >= self.threshold && excess >= self.min_excess_failures {
            a.verdict = Verdict::Regression;
            a.reason = format!("regression: {facts}");
        } else if b.attempts < self.min_attempts as i64 {
            a.verdict = Verdict::Inconclusive;
            a.reason = format!(
                "the baseline has {} attempts, fewer than the {} needed for a verdict",
                b.attempts, self.min_attempts
            );
        } else if s.soak_attempts < self.min_attempts as i64 {
            a.verdict = Verdict::Inconclusive;
            a.reason = format!(
                "only {} attempts since the change, fewer than the {} needed for a verdict",
                s.soak_attempts, self.min_attempts
            );
        } else if let Some(since) = s.suspect_since {
            a.verdict = Verdict::Suspect;
            a.reason = format!(
                "suspect since {}: {facts}; not promoting until the statistic falls below {:.1}, reverting if it reaches {:.1}",
                crate::timefmt::at(since),
                self.threshold / 3.0,
                self.threshold
            );
        } else {
            a.reason = facts;
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

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn minutes(n: i64, f: impl Fn(i64) -> (u64, u64)) -> Vec<(DateTime<Utc>, Counts)> {
        (0..n)
            .map(|i| {
                let (a, e) = f(i);
                (t0() + Duration::minutes(i), Counts { attempts: a, errors: e })
            })
            .collect()
    }

    fn detector() -> Cusum {
        Cusum::from_rule(&RegressionRule::default())
    }

    /// Run the soak minute by minute after a baseline; the minute of the first regression.
    fn first_regression(baseline: &BaselineStatus, soak: &[(DateTime<Utc>, Counts)]) -> Option<usize> {
        let d = detector();
        let mut s = DetectorState::default();
        soak.iter().position(|(t, c)| d.update(&mut s, baseline, *t, *c).verdict == Verdict::Regression)
    }

    #[test]
    fn baseline_is_robust_to_an_incident_inside_it() {
        // 1 % for a day, with a 2-hour incident at 30 %.
        let h = minutes(24 * 60, |i| if (600..720).contains(&i) { (100, 30) } else { (100, 1) });
        let b = fit_baseline(&h, Duration::minutes(10));
        assert!((b.rate - 0.01).abs() < 0.001, "{}", b.rate);
        assert!(b.dispersion < 1.5, "{}", b.dispersion);
        assert!(b.hourly.is_empty(), "one day is too little for an hour-of-day profile");
    }

    #[test]
    fn three_days_of_history_give_an_hour_of_day_profile() {
        // 2 % from 12:00 to 18:00, 0.5 % otherwise.
        let h =
            minutes(
                3 * 24 * 60 + 60,
                |i| if (12..18).contains(&((i / 60) % 24)) { (200, 4) } else { (200, 1) },
            );
        let b = fit_baseline(&h, Duration::minutes(10));
        assert_eq!(b.hourly.len(), 24);
        assert!(b.hourly[14] > 0.015 && b.hourly[3] < 0.007, "{:?}", b.hourly);
    }

    #[test]
    fn healthy_soak_never_trips_and_a_step_does() {
        let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
        assert_eq!(first_regression(&b, &minutes(72 * 60, |_| (100, 1))), None);
        let at = first_regression(&b, &minutes(72 * 60, |i| (100, if i >= 600 { 3 } else { 1 })))
            .expect("a 3x step is caught");
        assert!((600..720).contains(&at), "caught after {} min of the step", at - 600);
    }

    #[test]
    fn a_baseline_resting_on_few_failures_is_given_the_benefit_of_the_doubt() {
        // 20 failures in 2,000 attempts: the true rate may well be 30 % higher than 1 %.
        let b = fit_baseline(&minutes(2000, |i| (1, u64::from(i % 100 == 0))), Duration::minutes(10));
        assert!(baseline_margin(&b) > 1.2, "{}", baseline_margin(&b));
        // Much more traffic after the change: 1.3x would add up to a verdict against 1 % taken at
        // face value.
        let soak = |errors: u64| minutes(72 * 60, move |_| (1000, errors));
        assert_eq!(first_regression(&b, &soak(13)), None, "1.3x a thin baseline is not evidence");
        assert!(first_regression(&b, &soak(40)).is_some(), "4x is");
    }

    #[test]
    fn a_spike_of_minutes_cannot_trip_it_alone() {
        let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
        let soak = minutes(24 * 60, |i| if (300..308).contains(&i) { (100, 9) } else { (100, 1) });
        assert_eq!(first_regression(&b, &soak), None);
    }

    #[test]
    fn catastrophe_acts_within_minutes() {
        let b = fit_baseline(&minutes(24 * 60, |_| (100, 1)), Duration::minutes(10));
        let at = first_regression(&b, &minutes(60, |i| if i >= 10 { (100, 60) } else { (100, 1) })).unwrap();
        assert_eq!(at, 24, "fifteen intervals in a row above the ceiling");
    }

    #[test]
    fn low_volume_intervals_are_merged_not_judged_alone() {
        let b =
            fit_baseline(&minutes(24 * 60, |i| (1, if i % 100 == 0 { 1 } else { 0 })), Duration::minutes(10));
        let d = detector();
        let mut s = DetectorState::default();
        for (t, c) in minutes(15, |_| (1, 0)) {
            d.update(&mut s, &b, t, c);
        }
        assert!(s.bucket_attempts > 0, "a bucket waits for enough attempts");
    }

    #[test]
    fn zero_error_baseline_and_inconclusive_volume() {
        let b = fit_baseline(&minutes(60, |_| (100, 0)), Duration::minutes(10));
        assert!(b.rate > 0.0);
        let d = detector();
        let mut s = DetectorState::default();
        let a = d.update(&mut s, &b, t0(), Counts { attempts: 3, errors: 0 });
        assert_eq!(a.verdict, Verdict::Inconclusive);
        let tiny = fit_baseline(&minutes(2, |_| (3, 0)), Duration::minutes(10));
        let a = d.update(&mut DetectorState::default(), &tiny, t0(), Counts { attempts: 100, errors: 0 });
        assert!(a.reason.contains("baseline has 6 attempts"), "{}", a.reason);
    }

    #[test]
    fn live_observation_matches_the_fit() {
        let h = minutes(120, |i| (100, if i % 2 == 0 { 4 } else { 0 }));
        let mut live = BaselineStatus::default();
        for (t, c) in &h {
            observe_baseline(&mut live, *t, h[0].0, *c);
        }
        let fitted = fit_baseline(&h, Duration::minutes(10));
        assert!((live.rate - fitted.rate).abs() < 1e-9);
        assert!(
            live.dispersion > 1.5,
            "alternating 0/4 errors are overdispersed per interval: {}",
            live.dispersion
        );
    }
}
