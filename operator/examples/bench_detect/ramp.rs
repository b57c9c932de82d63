//! An experiment, not the operator's detector: a generalized likelihood ratio over linear ramps
//! of the error rate, beside the CUSUM, with the same beta-binomial steps and baseline. Each
//! hypothesis is a ramp starting at an onset τ (on an hourly grid since the change) with a
//! slope s (the rate doubling in 1 to 64 hours), capped at 5x; the statistic is the largest
//! log-likelihood ratio among the ramps whose multiple at the decision time is at least the
//! minimum effect (a ramp that still predicts less is no regression yet). `--ramp-experiment`
//! (`make bench-detect-ramp`) compares it with the CUSUM alone, at 7 days of history, and
//! writes bench/ramp.md.

use super::corpus::{self, Family};
use super::{
    CALIBRATION_SEEDS, HISTORIES, Outcomes, REPORT_SEEDS, Score, earliest, fmt, rivals, write_report,
};
use chrono::{DateTime, Duration, Utc};
use maintenance_operator::crd::{BaselineStatus, RegressionRule};
use maintenance_operator::detector::{Counts, Cusum, baseline_margin, inflation, llr, rate_at};
use maintenance_operator::replay;
use std::fmt::Write as _;
use std::time::Instant;

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

/// The ramp GLR beside the CUSUM at 7 days of history, as the largest ratio over the ramps
/// and as their mixture. Each threshold is the lowest (in steps of 1) with no false rollback
/// of the two together on the calibration seeds; then all are scored on the report seeds and
/// on seeds 17–24 and 25–32 against the CUSUM alone. Writes bench/ramp.md.
pub fn experiment(per_family: usize, out: &str) {
    let started = Instant::now();
    let d = Cusum::from_rule(&RegressionRule::default());
    let h = HISTORIES[4];
    let sets: [Vec<u64>; 4] =
        [CALIBRATION_SEEDS.to_vec(), REPORT_SEEDS.to_vec(), (17..=24).collect(), (25..=32).collect()];
    let mut thresholds: [Option<f64>; 2] = [None, None];
    let mut r = String::new();
    let _ = writeln!(r, "# A drift-aware test beside the CUSUM (`make bench-detect-ramp`)\n");
    let _ = writeln!(
        r,
        "At 7 days of history, defaults. The ramp GLR (ramp.rs): linear ramps with the onset on an hourly grid since the change and the rate \
doubling in 1–64 h, counted once a ramp predicts at least the minimum effect; as the largest ratio, or as the mixture over the ramps. Each \
threshold is the lowest (in steps of 1) with no false rollback of it and the CUSUM together on the calibration seeds {CALIBRATION_SEEDS:?}; \
the other seed sets were never tuned on. {per_family} soaks per family and seed. Took {{took}} s.\n"
    );
    let _ = writeln!(
        r,
        "| seeds | detector | false rollbacks | misses | step median (h) | ramp median (h) | ramps ÷ bound |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---:|---:|");
    for seeds in &sets {
        let traces = corpus::of_seeds(seeds, per_family, false);
        let baselines: Vec<BaselineStatus> = traces.iter().map(|t| h.baseline(t, &d)).collect();
        let cusum: Outcomes =
            traces.iter().zip(&baselines).map(|(t, b)| replay::run(&d, b, t.soak()).rollback).collect();
        let bound: Outcomes = traces.iter().map(rivals::oracle).collect();
        let bound_ramps = Score::of(&traces, &bound, |t| t.family.ramp()).median().unwrap_or(f64::NAN);
        let label = format!("{}–{}", seeds[0], seeds[seeds.len() - 1]);
        let mut row = |name: &str, o: &Outcomes| {
            let all = Score::of(&traces, o, |_| true);
            let steps = Score::of(&traces, o, |t| t.family == Family::Step);
            let ramps = Score::of(&traces, o, |t| t.family.ramp());
            let _ = writeln!(
                r,
                "| {label} | {name} | {} | {} | {} | {} | {:.2} |",
                all.false_rollbacks(),
                all.misses(),
                fmt(steps.median()),
                fmt(ramps.median()),
                ramps.median().unwrap_or(f64::NAN) / bound_ramps
            );
        };
        row("CUSUM alone", &cusum);
        for (mixture, threshold) in [false, true].into_iter().zip(thresholds.iter_mut()) {
            let ramp_at = |threshold: f64| -> Outcomes {
                traces
                    .iter()
                    .zip(&baselines)
                    .map(|(t, b)| first_alarm(&d, b, t.soak(), threshold, mixture))
                    .collect()
            };
            let t = *threshold.get_or_insert_with(|| {
                (4..=60)
                    .map(f64::from)
                    .find(|&t| {
                        Score::of(&traces, &earliest(&cusum, &ramp_at(t)), |_| true).false_rollbacks == 0
                    })
                    .unwrap_or(60.0)
            });
            let name = if mixture { "mixture over the ramps" } else { "ramp GLR" };
            row(&format!("CUSUM or {name} (threshold {t})"), &earliest(&cusum, &ramp_at(t)));
        }
        eprintln!("seeds {label} done at {:.0}s", started.elapsed().as_secs_f64());
    }
    let r = r.replace("{took}", &format!("{:.0}", started.elapsed().as_secs_f64()));
    write_report(out, "ramp.md", &r);
}
