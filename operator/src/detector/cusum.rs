//! The one-sided binomial CUSUM against the smallest regression that matters, and the ceiling
//! for catastrophic breakage.

use super::reach::{self, Judged};
use super::{Assessment, Counts, Detector, baseline_margin, inflation, pct, rate_at, rate_lower_bound};
use crate::crd::{BaselineStatus, DetectorState, RegressionRule, Sensitivity, Verdict};
use chrono::{DateTime, Duration, Utc};

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
    /// ... for this many reads in a row (reads of fewer than `CEILING_MIN_ATTEMPTS` pooled).
    pub ceiling_intervals: u32,
    /// Never a regression with fewer excess failures than this since the change.
    pub min_excess_failures: f64,
    /// Raise the minimum effect to what a short baseline supports (see `reach`). Off only
    /// while the benchmark measures those floors.
    pub history_floor: bool,
    /// The threshold and cap against a week of history, when the rule leaves both to the
    /// defaults (None: `threshold` and `max_increment` always).
    pub with_a_week: Option<(f64, f64)>,
    /// On its own, or at a control's level (a canary's copy): the floors differ (`reach`).
    pub judged: Judged,
}

/// The threshold and cap against a baseline shorter than a week. Each bucket adds at most a
/// sixth of the threshold, so no spike and no unrelated half-hour incident trips it alone.
pub const DEFAULT_THRESHOLD: f64 = 12.0;
const DEFAULT_MAX_INCREMENT: f64 = 2.0;
/// Against a week of history, a harder cap (a seventh) at a lower threshold. Measured on the
/// floor and calibration seeds with the incident trace (`make bench-detect-grid`): it lowers
/// the week's floor from 1.85x to 1.70x, catches ramps a little sooner and rolls the incident
/// back 22 minutes sooner, inside its window; steps take at most 0.1 h longer. Against shorter
/// baselines, which misjudge the time of day, it raised the 3-day floor from 2.2x to 2.45x and
/// slowed steps by 0.2-0.3 h, so they keep the pair above.
const WEEK_THRESHOLD: f64 = 10.5;
const WEEK_MAX_INCREMENT: f64 = 1.5;

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
            max_increment: rule.max_increment.unwrap_or(DEFAULT_MAX_INCREMENT),
            bucket: rule.bucket.as_ref().and_then(|b| b.parse().ok()).unwrap_or(Duration::minutes(10)),
            ceiling: rule.ceiling.unwrap_or(10.0),
            ceiling_absolute: 0.10,
            ceiling_intervals: 15,
            min_excess_failures: rule.min_excess_failures.unwrap_or(10.0 * scale),
            history_floor: true,
            with_a_week: (rule.threshold.is_none() && rule.max_increment.is_none())
                .then_some((WEEK_THRESHOLD * scale, WEEK_MAX_INCREMENT)),
            judged: Judged::Alone,
        }
    }

    /// The decision threshold and the cap on a bucket's step against this baseline.
    pub fn limits(&self, b: &BaselineStatus) -> (f64, f64) {
        match self.with_a_week {
            Some(pair) if reach::knows_the_week(b) => pair,
            _ => (self.threshold, self.max_increment),
        }
    }

    /// The smallest relative increase acted on against this baseline: the rule's, or more when
    /// the baseline is too short to know the time of day.
    pub fn relative_increase(&self, b: &BaselineStatus) -> f64 {
        let floor = if self.history_floor { reach::floor(b, self.judged).min_relative } else { 0.0 };
        self.min_relative_increase.max(floor)
    }

    /// How far above this baseline's rate the smallest regression acted on lies (absolute).
    pub fn smallest_increase(&self, b: &BaselineStatus) -> f64 {
        self.regression_rate(b.rate, self.relative_increase(b)) - b.rate
    }

    /// The smallest error rate that counts as a regression for a baseline rate.
    pub fn regression_rate(&self, p0: f64, relative: f64) -> f64 {
        (p0 * (1.0 + relative)).max(p0 + self.min_absolute_increase).min(CERTAIN)
    }

    /// A baseline that leaves no room above it: even from the lowest rate it may plausibly have,
    /// the smallest regression acted on is past every attempt failing, so none could be told
    /// (one measured while the cluster itself failed, or of a signal that always fails this
    /// much). That lowest rate, when so; never for a baseline high only by chance (a few
    /// attempts, a failure or two), whose lowest rate is far lower.
    pub fn no_room(&self, b: &BaselineStatus) -> Option<f64> {
        let low = rate_lower_bound(b);
        (low > 0.0 && self.regression_rate(low, self.relative_increase(b)) >= CERTAIN).then_some(low)
    }

    /// What a baseline can tell, in words, when it is less than the rule asks (`reach::words`,
    /// by its span); for status, the Event and the replay summary. A baseline resting on few
    /// failures is judged from its rate times its margin (`baseline_margin`), so the smallest
    /// regression acted on lies that much further up than its span alone says: the words add
    /// where, once the margin is a quarter or more.
    pub fn baseline_words(&self, b: &BaselineStatus) -> Option<String> {
        let span = reach::words(b, self.min_relative_increase, self.judged)?;
        let margin = baseline_margin(b);
        // Counts no baseline could hold (a status written by hand) say nothing more.
        let counts = b.attempts > 0 && (0..=b.attempts).contains(&b.errors);
        if !(counts && b.rate.is_finite() && b.rate > 0.0 && margin >= 1.25) {
            return Some(span);
        }
        // As a multiple: the rate judged against moves with the hour (a daily profile) and, for a
        // canary's copy, with its control's level; the multiple does not.
        let acted = self.regression_rate((b.rate * margin).min(CERTAIN), self.relative_increase(b));
        let from = if acted >= CERTAIN {
            "only near-total failure can be told".to_string()
        } else {
            format!("a regression is acted on only from {} the rate measured", reach::times(acted / b.rate))
        };
        Some(format!(
            "{span}; with {} of {} attempts failed, the rate itself is uncertain (it may be up to {} what was \
             measured), so {from}",
            b.errors,
            b.attempts,
            reach::times(margin)
        ))
    }

    /// `no_room` in words: what the baseline measured, and why nothing could be told above it.
    pub fn no_room_words(&self, b: &BaselineStatus) -> Option<String> {
        let low = self.no_room(b)?;
        let relative = self.relative_increase(b);
        let step = if low * relative >= self.min_absolute_increase {
            format!("{} that", reach::times(1.0 + relative))
        } else {
            format!("{} more", pct(self.min_absolute_increase))
        };
        Some(format!(
            "its baseline is {} ({} of {} attempts failed; at least {} allowing for chance), and the smallest \
             regression acted on, {}, is past every attempt failing: no regression could be told",
            pct(b.rate),
            b.errors,
            b.attempts,
            pct(low),
            step,
        ))
    }

    fn ceiling_rate(&self, p0: f64) -> f64 {
        (p0 * self.ceiling).max(p0 + self.ceiling_absolute)
    }
}

/// The highest rate judged against: every attempt failing, short of the log of zero.
const CERTAIN: f64 = 0.999;

/// The rate a read at `at` is judged against: the baseline's, times a concurrent control's
/// `level` (1 without one).
fn judged_rate(b: &BaselineStatus, at: DateTime<Utc>, level: f64) -> f64 {
    (rate_at(b, at) * level).clamp(1e-6, CERTAIN)
}

/// The fewest attempts the catastrophe ceiling judges at once: a read of 1 to 4 says too little
/// on its own (one failure is already a rate of 25 % or more).
const CEILING_MIN_ATTEMPTS: i64 = 5;

/// Binomial log-likelihood ratio of `y` errors in `n` attempts, p1 against p0.
pub fn llr(n: f64, y: f64, p0: f64, p1: f64) -> f64 {
    y * (p1 / p0).ln() + (n - y) * ((1.0 - p1) / (1.0 - p0)).ln()
}

/// Why `advance` gave its verdict: what `explain` puts in words.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Why {
    Catastrophic,
    Regression,
    FewBaselineAttempts,
    FewSoakAttempts,
    Suspect(DateTime<Utc>),
    Pass,
}

impl Why {
    pub fn verdict(self) -> Verdict {
        match self {
            Why::Catastrophic | Why::Regression => Verdict::Regression,
            Why::FewBaselineAttempts | Why::FewSoakAttempts => Verdict::Inconclusive,
            Why::Suspect(_) => Verdict::Suspect,
            Why::Pass => Verdict::Pass,
        }
    }
}

impl Cusum {
    /// Feed the counts of the interval ending at `at`: update the state and decide, without
    /// the words (a replay asks for them only at its last interval).
    pub fn advance(&self, s: &mut DetectorState, b: &BaselineStatus, at: DateTime<Utc>, c: Counts) -> Why {
        self.advance_at_level(s, b, at, c, 1.0)
    }

    /// `advance`, expecting the baseline's rate times `level`: how far a concurrent control
    /// runs above (or below) its own baseline now, which the canary shares (the time of day,
    /// an incident of the whole cluster), so that only what is the canary's own is judged.
    pub fn advance_at_level(
        &self,
        s: &mut DetectorState,
        b: &BaselineStatus,
        at: DateTime<Utc>,
        c: Counts,
        level: f64,
    ) -> Why {
        let p0 = judged_rate(b, at, level);
        let n = c.attempts as f64;
        let (threshold, cap) = self.limits(b);
        s.soak_attempts += c.attempts as i64;
        s.soak_errors += c.errors as i64;
        s.expected_errors += n * p0;
        let excess = s.soak_errors as f64 - s.expected_errors;

        // Catastrophe: a sustained rate far above the baseline acts within minutes. A read with
        // too few attempts to tell (a quiet signal, a small canary's nodes) is pooled with the
        // next ones until they have enough, and neither counts nor breaks the run on its own:
        // otherwise a canary of a few pods a read could never be caught by it. The group a read
        // completes stays in status until the next read, for the words.
        let judged = s.ceiling_attempts >= CEILING_MIN_ATTEMPTS;
        // Counts no read could have left (a status written by hand) would keep a group from
        // ever being judged: they start a new one too.
        let impossible =
            s.ceiling_attempts < 0 || s.ceiling_errors < 0 || s.ceiling_errors > s.ceiling_attempts;
        if judged || impossible {
            (s.ceiling_attempts, s.ceiling_errors) = (0, 0);
        }
        s.ceiling_attempts += c.attempts as i64;
        s.ceiling_errors += c.errors as i64;
        let completes_a_group = s.ceiling_attempts >= CEILING_MIN_ATTEMPTS;
        if completes_a_group {
            let rate = s.ceiling_errors as f64 / s.ceiling_attempts as f64;
            s.ceiling_run = if rate >= self.ceiling_rate(p0) { s.ceiling_run.saturating_add(1) } else { 0 };
        }

        // Accumulate the bucket; judge it when it is long enough and has enough attempts.
        s.bucket_attempts += c.attempts as i64;
        s.bucket_errors += c.errors as i64;
        s.bucket_expected += n * p0;
        let start = *s.bucket_from.get_or_insert(at);
        if at - start >= self.bucket - Duration::seconds(1) && s.bucket_attempts as u64 >= self.min_attempts {
            let (bn, by) = (s.bucket_attempts as f64, s.bucket_errors as f64);
            let bp0 = (s.bucket_expected / bn).clamp(1e-6, CERTAIN);
            let reference = (bp0 * baseline_margin(b)).min(CERTAIN);
            let bp1 = self.regression_rate(reference, self.relative_increase(b));
            let inc = (llr(bn, by, reference, bp1) / inflation(b, bn)).min(cap);
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
        if s.statistic >= threshold * 2.0 / 3.0 {
            s.suspect_since.get_or_insert(at);
        } else if s.statistic < threshold / 3.0 {
            s.suspect_since = None;
        }

        // Said on a read that judged a group, so that the words give the rate that was judged.
        let catastrophic =
            s.ceiling_run >= self.ceiling_intervals && excess >= self.min_excess_failures.min(5.0);
        if completes_a_group && catastrophic {
            Why::Catastrophic
        } else if s.statistic >= threshold && excess >= self.min_excess_failures {
            Why::Regression
        } else if b.attempts < self.min_attempts as i64 {
            Why::FewBaselineAttempts
        } else if s.soak_attempts < self.min_attempts as i64 {
            Why::FewSoakAttempts
        } else if let Some(since) = s.suspect_since {
            Why::Suspect(since)
        } else {
            Why::Pass
        }
    }

    /// The verdict `advance_at_level` just gave for the interval (`at`, `c`) at `level`, with
    /// the facts behind it: the baseline and ceiling named are the ones judged against.
    pub fn explain(
        &self,
        s: &DetectorState,
        b: &BaselineStatus,
        at: DateTime<Utc>,
        c: Counts,
        why: Why,
        level: f64,
    ) -> Assessment {
        let p0 = judged_rate(b, at, level);
        let relative = self.relative_increase(b);
        let (threshold, _) = self.limits(b);
        let excess = s.soak_errors as f64 - s.expected_errors;
        let soak_rate = if s.soak_attempts > 0 { s.soak_errors as f64 / s.soak_attempts as f64 } else { 0.0 };
        let observed = if s.last_bucket_baseline > 0.0 { s.last_bucket_rate } else { soak_rate };
        let baseline = if s.last_bucket_baseline > 0.0 { s.last_bucket_baseline } else { p0 };
        let mut a = Assessment {
            verdict: why.verdict(),
            baseline_rate: baseline,
            observed_rate: observed,
            statistic: s.statistic,
            threshold,
            excess_errors: excess,
            reason: String::new(),
        };
        let margin = baseline_margin(b);
        let facts = || {
            format!(
                "error rate {} against a baseline of {} (±{:.0}%; regression at {}); CUSUM {:.1} of {:.1}; {:.0} failures above the baseline since the change",
                pct(observed),
                pct(baseline),
                (margin - 1.0) * 100.0,
                pct(self.regression_rate(baseline * margin, relative)),
                s.statistic,
                threshold,
                excess
            )
        };
        a.reason = match why {
            Why::Catastrophic => {
                // The group of reads this read completed (`advance` says Catastrophic only then).
                let group = Counts {
                    attempts: s.ceiling_attempts.max(0) as u64,
                    errors: s.ceiling_errors.max(0) as u64,
                };
                a.observed_rate = if group.attempts > 0 { group.rate() } else { c.rate() };
                a.baseline_rate = p0;
                format!(
                    "catastrophic: error rate {} against a baseline of {}, above the ceiling {} for {} reads in a row of at least {CEILING_MIN_ATTEMPTS} attempts (quieter reads pooled); {:.0} failures above the baseline since the change",
                    pct(a.observed_rate),
                    pct(p0),
                    pct(self.ceiling_rate(p0)),
                    s.ceiling_run,
                    excess
                )
            }
            Why::Regression => format!("regression: {}", facts()),
            Why::FewBaselineAttempts => format!(
                "the baseline has {} attempts, fewer than the {} needed for a verdict",
                b.attempts, self.min_attempts
            ),
            Why::FewSoakAttempts => format!(
                "only {} attempts since the change, fewer than the {} needed for a verdict",
                s.soak_attempts, self.min_attempts
            ),
            Why::Suspect(since) => format!(
                "suspect since {}: {}; not promoting until the statistic falls below {:.1}, reverting if it reaches {:.1}",
                crate::timefmt::at(since),
                facts(),
                threshold / 3.0,
                threshold
            ),
            Why::Pass => facts(),
        };
        a
    }
}

impl Cusum {
    /// `update` at a control's `level` (`advance_at_level`).
    pub fn update_at_level(
        &self,
        s: &mut DetectorState,
        b: &BaselineStatus,
        at: DateTime<Utc>,
        c: Counts,
        level: f64,
    ) -> Assessment {
        let why = self.advance_at_level(s, b, at, c, level);
        self.explain(s, b, at, c, why, level)
    }
}

impl Detector for Cusum {
    fn update(&self, s: &mut DetectorState, b: &BaselineStatus, at: DateTime<Utc>, c: Counts) -> Assessment {
        let why = self.advance(s, b, at, c);
        self.explain(s, b, at, c, why, 1.0)
    }
}
