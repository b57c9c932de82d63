//! An experiment, not a detector: where a ramp's delay goes between the clairvoyant bound and
//! the operator's CUSUM (`--bound-ladder`). Each rung knows less than the one above it, and all
//! are scored on the same soaks, so the ratio of two neighbours is the price of one piece of
//! knowledge. The rungs between the bound and the CUSUM know the onset and the regression's
//! multiple of every minute; they differ in the rate they multiply.
//!
//! Each of those rungs gets the lowest threshold with no false rollback on the calibration
//! seeds, as the operator's own threshold was set, and is then scored on the report seeds. A
//! healthy soak has no regression to know, so it is asked about one borrowed from a regressing
//! soak of the same seeds (its onset and multiples): a false rollback is the test favouring
//! that regression on counts that have none.

use super::corpus::{self, Family, Trace};
use super::{CALIBRATION_SEEDS, HISTORIES, Outcomes, Score, fmt, rivals, write_report};
use maintenance_operator::crd::{BaselineStatus, RegressionRule};
use maintenance_operator::detector::{Cusum, baseline_margin, inflation, llr, rate_at};
use maintenance_operator::replay;
use std::fmt::Write as _;
use std::time::Instant;

/// What a rung takes the rate without the regression to be.
#[derive(Clone, Copy)]
pub enum Knows {
    /// The generator's exact rate of every minute, its noise included, minute by minute.
    Exact,
    /// The generator's daily and weekly rhythm, in the operator's buckets: the wander, spikes
    /// and unrelated incidents are noise to it, weighed by the overdispersion the history
    /// shows, and each bucket's step is capped (uncapped, an unrelated half-hour incident in a
    /// healthy soak looks like the first hour of a step).
    Rhythm,
    /// The baseline fitted from the history.
    Fitted,
    /// The fitted baseline with the operator's margin above it.
    Margin,
}

pub const RUNGS: [(Knows, &str); 4] = [
    (Knows::Exact, "the exact rate of every minute (its noise included)"),
    (
        Knows::Rhythm,
        "only the daily and weekly rhythm, in 10-minute buckets, each step capped; the rest is noise, weighed by the overdispersion",
    ),
    (Knows::Fitted, "the baseline fitted from the history instead of the rhythm"),
    (Knows::Margin, "with the operator's margin above that baseline"),
];

/// The regression a rung is told about: that of this soak, the one it was borrowed from.
pub struct Told<'a>(&'a Trace);

impl Told<'_> {
    fn onset(&self) -> usize {
        self.0.onset.map_or(usize::MAX, |o| o - self.0.change)
    }
    fn multiple(&self, i: usize) -> f64 {
        self.0.p_true[i] / self.0.p_null[i]
    }
}

/// What each soak is told: its own regression, or for a healthy soak one borrowed from the
/// regressing soaks in turn.
pub fn told(traces: &[Trace]) -> Vec<Told<'_>> {
    let regressing: Vec<&Trace> = traces.iter().filter(|t| t.onset.is_some()).collect();
    let mut borrowed = regressing.iter().cycle();
    traces.iter().map(|t| Told(if t.onset.is_some() { t } else { borrowed.next().unwrap() })).collect()
}

/// Caps on a bucket's step that a rung may choose from (the operator's are 1.5 and 2).
pub const CAPS: [f64; 6] = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0];

/// The log-likelihood ratio summed from the onset, favouring the told regression over the rate
/// `k` names, each bucket's step at most `cap` (not for `Exact`): the first soak row at which it
/// reaches `threshold`, and its peak over the soak.
pub fn walk(
    t: &Trace,
    b: &BaselineStatus,
    d: &Cusum,
    k: Knows,
    cap: f64,
    told: &Told,
    threshold: f64,
) -> (Option<usize>, f64) {
    let margin = if matches!(k, Knows::Margin) { baseline_margin(b) } else { 1.0 };
    let (bucket, min_attempts) =
        if matches!(k, Knows::Exact) { (1, 0.0) } else { (d.bucket.num_minutes(), d.min_attempts as f64) };
    let soak = t.soak();
    let (mut n, mut y, mut e0, mut e1, mut rows) = (0.0, 0.0, 0.0, 0.0, 0);
    let (mut sum, mut peak, mut alarm) = (0.0f64, 0.0f64, None);
    for (i, (at, c)) in soak.iter().enumerate().skip(told.onset()) {
        let q = match k {
            Knows::Exact => t.p_null[i],
            Knows::Rhythm => t.p_rhythm[i],
            Knows::Fitted | Knows::Margin => rate_at(b, *at) * margin,
        };
        n += c.attempts as f64;
        y += c.errors as f64;
        e0 += c.attempts as f64 * q;
        e1 += c.attempts as f64 * (q * told.multiple(i)).min(0.999);
        rows += 1;
        if rows < bucket || n < min_attempts.max(1.0) {
            continue;
        }
        let (p0, p1) = ((e0 / n).clamp(1e-6, 0.999), (e1 / n).clamp(1e-6, 0.999));
        sum += match k {
            Knows::Exact => llr(n, y, p0, p1),
            _ => (llr(n, y, p0, p1) / inflation(b, n)).min(cap),
        };
        peak = peak.max(sum);
        if sum >= threshold && alarm.is_none() {
            alarm = Some(i);
        }
        (n, y, e0, e1, rows) = (0.0, 0.0, 0.0, 0.0, 0);
    }
    (alarm, peak)
}

/// One seed set at one history length: the soaks, their baselines and what each is told.
pub struct Set<'a> {
    pub traces: &'a [Trace],
    pub baselines: &'a [BaselineStatus],
    pub told: &'a [Told<'a>],
}

impl Set<'_> {
    /// Each soak's rollback row under rung `k`.
    pub fn run(&self, d: &Cusum, k: Knows, cap: f64, threshold: f64) -> Outcomes {
        self.each(|t, b, told| walk(t, b, d, k, cap, told, threshold).0)
    }

    /// The lowest threshold with no false rollback here: just above the highest peak on a
    /// healthy soak.
    fn clean_threshold(&self, d: &Cusum, k: Knows, cap: f64) -> f64 {
        let peaks =
            self.each(|t, b, told| t.family.healthy().then(|| walk(t, b, d, k, cap, told, f64::INFINITY).1));
        peaks.into_iter().flatten().fold(0.0f64, f64::max) + 1e-9
    }

    fn each<T>(&self, f: impl Fn(&Trace, &BaselineStatus, &Told) -> T) -> Vec<T> {
        self.traces.iter().zip(self.baselines).zip(self.told).map(|((t, b), told)| f(t, b, told)).collect()
    }
}

/// Rung `k`'s threshold and cap, set on `calibration` as the operator's were: for each cap the
/// lowest threshold with no false rollback, and of those the pair that catches ramps soonest.
pub fn calibrate(calibration: &Set, d: &Cusum, k: Knows) -> (f64, f64) {
    let caps: &[f64] = if matches!(k, Knows::Exact) { &[f64::INFINITY] } else { &CAPS };
    let ramps = |threshold: f64, cap: f64| {
        let o = calibration.run(d, k, cap, threshold);
        Score::of(calibration.traces, &o, |t| t.family.ramp()).median().unwrap_or(f64::INFINITY)
    };
    caps.iter()
        .map(|&cap| (calibration.clean_threshold(d, k, cap), cap))
        .map(|(threshold, cap)| (ramps(threshold, cap), threshold, cap))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, threshold, cap)| (threshold, cap))
        .unwrap()
}

/// From the bound to the CUSUM, one piece of knowledge taken away per rung, at every history
/// length: each rung's threshold set on the calibration seeds, the table on the report seeds.
/// Writes bench/ladder.md.
pub fn report(per_family: usize, seeds: &[u64], out: &str) {
    let started = Instant::now();
    let (calibration, report) =
        (corpus::of_seeds(&CALIBRATION_SEEDS, per_family, false), corpus::of_seeds(seeds, per_family, false));
    let d = Cusum::from_rule(&RegressionRule::default());
    let (told_calibration, told_report) = (told(&calibration), told(&report));
    let mut r = String::new();
    let _ = writeln!(r, "# Where a ramp's delay goes (`make bench-detect-ladder`)\n");
    let _ = writeln!(
        r,
        "From the clairvoyant bound to the operator's CUSUM, each rung knowing less than the one above it. The rungs in between know the onset and \
the regression's multiple of every minute, and differ in the rate they multiply. Each gets the lowest threshold with no false rollback on the \
calibration seeds {CALIBRATION_SEEDS:?} (a healthy soak is asked about a regression borrowed from a regressing soak), as the operator's threshold \
was, and the cap on a bucket's step (of {:?}) that then catches their ramps soonest; the table is seeds {seeds:?}, {} soaks. \"÷ above\" is the price of what that rung no longer knows. The CUSUM runs with \
the defaults. Took {{took}} s.\n",
        CAPS,
        report.len()
    );
    let _ = writeln!(
        r,
        "| history | the rate it knows | threshold, cap | false rollbacks | misses | step median (h) | ramp median (h) | ÷ bound | ÷ above |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let bound: Outcomes = report.iter().map(rivals::oracle).collect();
    let ramps = |o: &Outcomes| Score::of(&report, o, |t| t.family.ramp()).median().unwrap_or(f64::NAN);
    let bound_ramps = ramps(&bound);
    for h in HISTORIES {
        let fitted =
            |traces: &[Trace]| -> Vec<BaselineStatus> { traces.iter().map(|t| h.baseline(t, &d)).collect() };
        let (b_calibration, b_report) = (fitted(&calibration), fitted(&report));
        let mut rows: Vec<(String, String, Outcomes)> = vec![(
            "the bound: the exact rate of every minute, stopping at ln 100".into(),
            format!("{:.1}", 100f64.ln()),
            bound.clone(),
        )];
        let set = |traces, baselines, told| Set { traces, baselines, told };
        let (calibrating, reporting) =
            (set(&calibration, &b_calibration, &told_calibration), set(&report, &b_report, &told_report));
        for (k, name) in RUNGS {
            let (threshold, cap) = calibrate(&calibrating, &d, k);
            let outcomes = reporting.run(&d, k, cap, threshold);
            let cap = if cap.is_finite() { format!(", cap {cap}") } else { String::new() };
            rows.push((name.into(), format!("{threshold:.1}{cap}"), outcomes));
        }
        let (threshold, cap) = b_report.first().map(|b| d.limits(b)).unwrap_or_default();
        rows.push((
            "the operator's CUSUM: neither the onset nor the multiple known, judged against its minimum effect".into(),
            format!("{threshold}, cap {cap}"),
            report.iter().zip(&b_report).map(|(t, b)| replay::run(&d, b, t.soak()).rollback).collect(),
        ));
        let mut above = bound_ramps;
        for (name, threshold, o) in &rows {
            let all = Score::of(&report, o, |_| true);
            let steps = Score::of(&report, o, |t| t.family == Family::Step);
            let _ = writeln!(
                r,
                "| {} | {name} | {threshold} | {} | {} | {} | {:.1} | {:.2} | {:.2} |",
                h.short(),
                all.false_rollbacks(),
                all.misses(),
                fmt(steps.median()),
                ramps(o),
                ramps(o) / bound_ramps,
                ramps(o) / above
            );
            above = ramps(o);
        }
        eprintln!("history {} done at {:.1}s", h.short(), started.elapsed().as_secs_f64());
    }
    let r = r.replace("{took}", &format!("{:.0}", started.elapsed().as_secs_f64()));
    write_report(out, "ladder.md", &r);
}
