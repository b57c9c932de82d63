//! An experiment beside the operator's detector: the concurrent control. While only the
//! canary is upgraded, the pods on the nodes it does not touch live through the same time of
//! day, weekends and cluster-wide incidents. Given how many failures both groups had in a
//! bucket, the canary's share of them depends only on how many attempts each group made and on
//! the ratio of their error rates, so the daily rhythm cancels out of the comparison. The test
//! is a one-sided CUSUM on that share: the ratio the groups had before the change (measured
//! while the baseline is observed) against the same ratio raised by the minimum effect.
//!
//! `--control-experiment` splits every soak into a canary and the rest, puts the regression on
//! the canary only (as a canary stage sees it), and compares the test with the CUSUM on
//! cluster-wide counts (what the built-in signal measures today), with the CUSUM on the
//! canary's own counts (a signal scoped to the canary, with a week of history), with that CUSUM
//! at the control's level (what the operator runs, `detector::level`), and with the bound on
//! the canary.

use super::corpus::{Family, HISTORY_MIN, Trace};
use super::floors::smallest_clean;
use super::{Outcomes, Score, earliest, fmt, rivals};
use chrono::{DateTime, Duration, Utc};
use maintenance_operator::crd::{BaselineStatus, ControlLevel, DetectorState, Verdict};
use maintenance_operator::detector::level::{LEVEL_WINDOW, add_control, level};
use maintenance_operator::detector::rate_at;
use maintenance_operator::detector::reach;
use maintenance_operator::detector::{Counts, Cusum, fit_baseline, llr};
use maintenance_operator::replay;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use std::fmt::Write as _;

/// One soak seen as two groups of pods: the canary's nodes and the rest.
pub struct Split {
    pub at: Vec<DateTime<Utc>>,
    pub canary: Vec<Counts>,
    pub control: Vec<Counts>,
    /// The canary's exact error rate per soak minute without and with the regression.
    pub p_null: Vec<f64>,
    pub p_true: Vec<f64>,
}

fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// What is local to one group: its own 10-minute wander of the rate (lognormal σ up to 0.15)
/// and about one spike a day of 2–10 minutes at 3–8x (a bad node).
fn local_noise(rng: &mut StdRng, n: usize) -> Vec<f64> {
    let sigma = rng.random_range(0.0..0.15);
    let noise = LogNormal::new(-sigma * sigma / 2.0, sigma).unwrap();
    let mut m = vec![1.0; n];
    let mut block = 1.0;
    for (i, v) in m.iter_mut().enumerate() {
        if i % 10 == 0 {
            block = noise.sample(rng);
        }
        *v = block;
    }
    for _ in 0..n / 1440 {
        let at = rng.random_range(0..n - 20);
        let k = rng.random_range(3.0..8.0);
        let len = rng.random_range(2..10);
        m[at..at + len].iter_mut().for_each(|v| *v *= k);
    }
    m
}

/// Split a trace (generated with its shape) into the canary (5–50 % of the attempts, or
/// `share` of them, an error rate 0.8–1.25x the rest's) and the rest; the regression, if any,
/// on the canary only.
pub fn split(seed: u64, t: &Trace, share: Option<f64>) -> Split {
    let shape = t.shape.as_ref().expect("the corpus keeps its shape for this experiment");
    let mut rng = StdRng::seed_from_u64(seed);
    let n = shape.attempts.len();
    // The canary's share of the attempts, and its error rate over the rest's: node pools differ.
    let drawn = log_uniform(&mut rng, 0.05, 0.5);
    let share = share.unwrap_or(drawn);
    let mismatch = log_uniform(&mut rng, 0.8, 1.25);
    let (local_canary, local_control) = (local_noise(&mut rng, n), local_noise(&mut rng, n));
    let mut s = Split {
        at: t.rows.iter().map(|r| r.0).collect(),
        canary: Vec::with_capacity(n),
        control: Vec::with_capacity(n),
        p_null: vec![],
        p_true: vec![],
    };
    let draw = |rng: &mut StdRng, attempts: f64, p: f64| {
        let attempts = Poisson::new(attempts.max(0.01)).unwrap().sample(rng) as u64;
        let errors = if attempts == 0 { 0 } else { Binomial::new(attempts, p).unwrap().sample(rng) };
        Counts { attempts, errors }
    };
    for i in 0..n {
        let (v, p) = (shape.attempts[i] as f64, shape.p_null[i] as f64);
        let canary_null = (p * mismatch * local_canary[i]).min(0.95);
        let canary_true = (canary_null * shape.regression[i] as f64).min(0.95);
        if i >= t.change {
            s.p_null.push(canary_null);
            s.p_true.push(canary_true);
        }
        s.canary.push(draw(&mut rng, v * share, canary_true));
        s.control.push(draw(&mut rng, v * (1.0 - share), (p * local_control[i]).min(0.95)));
    }
    s
}

impl Split {
    pub fn rows(&self, of: &[Counts], from: usize, to: usize) -> Vec<(DateTime<Utc>, Counts)> {
        (from..to).map(|i| (self.at[i], of[i])).collect()
    }
    /// Both groups together: what a cluster-wide signal counts.
    pub fn cluster(&self, from: usize, to: usize) -> Vec<(DateTime<Utc>, Counts)> {
        (from..to).map(|i| (self.at[i], self.canary[i] + self.control[i])).collect()
    }
}

/// Pseudo-failures, split by the groups' shares of attempts, that pull the measured ratio
/// towards 1 when the observation saw few failures.
const PRIOR_FAILURES: f64 = 2.0;
/// The reference ratio is taken this many standard errors above the measured one. Chosen on the
/// calibration seeds among 1, 2 and 3: at 1, a 72 h soak finds every reference that came out
/// low by chance, and no minimum effect below 5x is free of false rollbacks.
const RATIO_Z: f64 = 2.0;

/// The canary-over-control rate ratio measured before the change: the estimate and the
/// reference taken above it (the estimate is uncertain), and the rest's error rate.
pub struct Ratio {
    pub estimate: f64,
    pub reference: f64,
    pub control_rate: f64,
}

pub fn ratio(canary: Counts, control: Counts) -> Option<Ratio> {
    if canary.attempts == 0 || control.attempts == 0 {
        return None;
    }
    let share = canary.attempts as f64 / (canary.attempts + control.attempts) as f64;
    let xt = canary.errors as f64 + PRIOR_FAILURES * share;
    let xc = control.errors as f64 + PRIOR_FAILURES * (1.0 - share);
    let estimate = (xt / canary.attempts as f64) / (xc / control.attempts as f64);
    let se = (1.0 / xt + 1.0 / xc).sqrt();
    Some(Ratio {
        estimate,
        reference: estimate * (RATIO_Z * se).exp(),
        control_rate: xc / control.attempts as f64,
    })
}

/// The soak minute the control test first rolls back at, or None. `observed` is the
/// observation before the change, per minute; `soak` the soak, per minute; both as
/// (canary, control). The CUSUM's threshold, cap, bucket and excess-failure rule apply.
pub fn first_alarm(
    d: &Cusum,
    relative: f64,
    observed: &[(Counts, Counts)],
    soak: &[(Counts, Counts)],
) -> Option<usize> {
    let sum = |rows: &[(Counts, Counts)]| {
        rows.iter().fold((Counts::default(), Counts::default()), |(a, b), (c, r)| (a + *c, b + *r))
    };
    let (oc, or) = sum(observed);
    let r = ratio(oc, or)?;
    let k0 = r.reference;
    let k1 = (k0 * (1.0 + relative)).max(k0 + d.min_absolute_increase / r.control_rate);
    let bucket = d.bucket.num_minutes().max(1) as usize;
    let (mut statistic, mut excess) = (0.0f64, 0.0f64);
    for (b, rows) in soak.chunks(bucket).enumerate() {
        let (canary, control) = sum(rows);
        let (nt, nc) = (canary.attempts as f64, control.attempts as f64);
        let (xt, xc) = (canary.errors as f64, control.errors as f64);
        if nt == 0.0 || nc == 0.0 {
            continue;
        }
        let q = |k: f64| k * nt / (k * nt + nc);
        let (q0, q1) = (q(k0), q(k1));
        // The canary's share of the bucket's failures: binomial in xt + xc.
        statistic = (statistic + llr(xt + xc, xt, q0, q1).min(d.max_increment)).max(0.0);
        excess += xt - xc * r.estimate * nt / nc;
        if statistic >= d.threshold && excess >= d.min_excess_failures {
            return Some(((b + 1) * bucket - 1).min(soak.len() - 1));
        }
    }
    None
}

/// What the experiment keeps of one split soak.
struct Judged {
    /// (canary, control) per minute: the longest observation before the change, then the soak.
    pairs: Vec<(Counts, Counts)>,
    cluster: Option<usize>,
    canary: Option<usize>,
    /// The canary's CUSUM against its week, at the control's level now, per `LEVEL_WINDOWS`.
    leveled: Vec<Option<usize>>,
    /// The same against the whole cluster's week, at the operator's window.
    pooled: Option<usize>,
    bound: Option<usize>,
    /// The failures the regression adds on the canary over the whole soak, by the generator's
    /// exact rates: what any detector has to go on.
    excess: f64,
    /// Whether the exact two-sample test of the canary's soak against its own week, told the
    /// onset, reaches the CUSUM's threshold in its best window (`misses::best_window_llr_on`):
    /// could a test with no margin have told, from the canary's own counts?
    tellable: bool,
    /// The failures a regression at the multiple the canary's copy acts on would add over the
    /// soak, at its week's rate and traffic (`reach::added_at`): what the operator can tell
    /// before the soak of how much its canary will have to go on.
    at_floor: f64,
}

/// How long ago a read of the control weighs 1/e in its level (minutes): the operator's
/// `LEVEL_WINDOW` is chosen among these on the calibration seeds.
const LEVEL_WINDOWS: [i64; 3] = [10, 60, 180];

/// The soak minute the canary's CUSUM against its own week of history first rolls back at,
/// expecting each minute its baseline's rate times the control's level, as the operator
/// reads it: the rest's failures over what the whole cluster's week of history expects of
/// them (the operator keeps no separate history of the rest).
/// `pooled`: the canary's expectation is the whole cluster's week instead of its own (its nodes
/// taken to be like the rest, as a canary of nodes picked at random is), with all the cluster's
/// failures behind it (ten times the canary's at a share of 0.1).
pub fn leveled_alarm(d: &Cusum, s: &Split, change: usize, window: i64, pooled: bool) -> Option<usize> {
    let start = change - HISTORY_MIN;
    let canary_b = if pooled {
        fit_baseline(&s.cluster(start, change), d.bucket)
    } else {
        fit_baseline(&s.rows(&s.canary, start, change), d.bucket)
    };
    // The operator's floors for a canary at its control's level were measured against the
    // canary's own week; the pooled variant keeps the whole signal's, as it always had.
    let judged = if pooled { reach::Judged::Alone } else { reach::Judged::AtAControl };
    let d = Cusum { judged, ..d.clone() };
    CanarySoak::of(&d, s, change, vec![canary_b]).alarm(&d, 0, window, usize::MAX)
}

/// One soak as the operator's canary signal reads it: the canary's baselines (one per history
/// length tried), the whole cluster's week (what the control's level is read against), then
/// both groups' counts over the soak.
pub struct CanarySoak {
    pub canary_b: Vec<BaselineStatus>,
    cluster_b: BaselineStatus,
    at: Vec<DateTime<Utc>>,
    canary: Vec<Counts>,
    control: Vec<Counts>,
}

impl CanarySoak {
    pub fn of(d: &Cusum, s: &Split, change: usize, canary_b: Vec<BaselineStatus>) -> CanarySoak {
        let cluster_b = fit_baseline(&s.cluster(change - HISTORY_MIN, change), d.bucket);
        CanarySoak {
            canary_b,
            cluster_b,
            at: s.at[change..].to_vec(),
            canary: s.canary[change..].to_vec(),
            control: s.control[change..].to_vec(),
        }
    }

    /// The soak minute before `until` that `d` first rolls back at against the canary's
    /// baseline `which`, the control's reads fading over `window` minutes.
    pub fn alarm(&self, d: &Cusum, which: usize, window: i64, until: usize) -> Option<usize> {
        let mut state = DetectorState::default();
        let mut control = ControlLevel::default();
        let canary_b = &self.canary_b[which];
        for (i, at) in self.at.iter().enumerate().take(until) {
            let c = self.control[i];
            let expected = c.attempts as f64 * rate_at(&self.cluster_b, *at);
            add_control(&mut control, *at, c.errors as f64, expected, Duration::minutes(window));
            let why = d.advance_at_level(&mut state, canary_b, *at, self.canary[i], level(Some(&control)));
            if why.verdict() == Verdict::Regression {
                return Some(i);
            }
        }
        None
    }
}

const OBSERVE_MIN: [usize; 4] = [30, 120, 1440, 4320];

fn judge(d: &Cusum, t: &Trace, s: &Split) -> Judged {
    let (start, n) = (t.change - HISTORY_MIN, s.at.len());
    let cusum = |history: Vec<(DateTime<Utc>, Counts)>, soak: Vec<(DateTime<Utc>, Counts)>| {
        replay::run(d, &fit_baseline(&history, d.bucket), &soak).rollback
    };
    let cluster = cusum(s.cluster(start, t.change), s.cluster(t.change, n));
    let canary = cusum(s.rows(&s.canary, start, t.change), s.rows(&s.canary, t.change, n));
    let bound =
        t.onset.and_then(|o| rivals::oracle_on(&s.canary[t.change..], &s.p_null, &s.p_true, o - t.change));
    let from = t.change - OBSERVE_MIN[3];
    let pairs = (from..n).map(|i| (s.canary[i], s.control[i])).collect();
    let leveled = LEVEL_WINDOWS.iter().map(|w| leveled_alarm(d, s, t.change, *w, false)).collect();
    let pooled = leveled_alarm(d, s, t.change, LEVEL_WINDOW.num_minutes(), true);
    let excess = (t.change..n)
        .map(|i| s.canary[i].attempts as f64 * (s.p_true[i - t.change] - s.p_null[i - t.change]))
        .sum();
    let canary_b = fit_baseline(&s.rows(&s.canary, start, t.change), d.bucket);
    let tellable = t.onset.is_some_and(|o| {
        super::misses::best_window_llr_on(d, &canary_b, &s.rows(&s.canary, 0, n), o) >= d.limits(&canary_b).0
    });
    let at_control = Cusum { judged: reach::Judged::AtAControl, ..d.clone() };
    let soak = Duration::minutes((n - t.change) as i64);
    let at_floor = reach::added_at(&canary_b, at_control.smallest_increase(&canary_b), soak);
    Judged { pairs, cluster, canary, leveled, pooled, bound, excess, tellable, at_floor }
}

fn control(d: &Cusum, j: &Judged, observe: usize, relative: f64) -> Option<usize> {
    let change = OBSERVE_MIN[3];
    first_alarm(d, relative, &j.pairs[change - observe..change], &j.pairs[change..])
}

fn judge_all(d: &Cusum, traces: &[Trace], share: Option<f64>) -> Vec<Judged> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| judge(d, t, &split(t.volume.to_bits() ^ i as u64, t, share)))
        .collect()
}

fn run(d: &Cusum, judged: &[Judged], observe: usize, relative: f64) -> Outcomes {
    judged.iter().map(|j| control(d, j, observe, relative)).collect()
}

/// `--control-experiment`: on the calibration seeds, the control test's smallest minimum effect
/// with no false rollback (to 0.05) per observation length; then, on the report seeds, every
/// method on canary soaks, the control test at the effects just measured. Returns the report.
/// `share`: every canary that share of the attempts (2 of 20 nodes: 0.1), not 5–50 %.
pub fn experiment(calibration: &[Trace], report: &[Trace], d: &Cusum, share: Option<f64>) -> String {
    let cal = judge_all(d, calibration, share);
    let effects: Vec<f64> = OBSERVE_MIN
        .iter()
        .map(|&observe| {
            smallest_clean(0.0, 4.0, |rel| {
                Score::of(calibration, &run(d, &cal, observe, rel), |_| true).false_rollbacks == 0
            })
        })
        .collect();
    // The operator's own window among those measured.
    let operators = LEVEL_WINDOWS.iter().position(|w| *w == LEVEL_WINDOW.num_minutes()).unwrap();
    drop(cal);
    let traces = report;
    let judged = judge_all(d, traces, share);
    let mut methods: Vec<(String, Outcomes)> = vec![
        ("CUSUM on cluster-wide counts, 7 d history".into(), judged.iter().map(|j| j.cluster).collect()),
        ("CUSUM on the canary's counts, 7 d history".into(), judged.iter().map(|j| j.canary).collect()),
    ];
    for (k, w) in LEVEL_WINDOWS.iter().enumerate() {
        methods.push((
            format!("CUSUM on the canary's counts, 7 d history, at the control's level over {w} min"),
            judged.iter().map(|j| j.leveled[k]).collect(),
        ));
    }
    methods.push((
        "CUSUM on the canary's counts against the whole cluster's 7 d history (its nodes taken to be like the rest), at the control's level".into(),
        judged.iter().map(|j| j.pooled).collect(),
    ));
    for (observe, rel) in OBSERVE_MIN.iter().zip(&effects) {
        let out = run(d, &judged, *observe, *rel);
        let either = earliest(&out, &methods[0].1);
        let label = if *observe < 120 { format!("{observe} min") } else { format!("{} h", observe / 60) };
        methods.push((
            format!("control test, {label} observed before the change, acting on {:.2}x", 1.0 + rel),
            out,
        ));
        methods.push(("the same, or the cluster-wide CUSUM".into(), either));
    }
    let misses_by_excess = by_excess(traces, &judged, &methods[2 + operators].1);
    let misses_by_traffic = by_traffic(traces, &judged, &methods[2 + operators].1);
    let bound: Outcomes = judged.iter().map(|j| j.bound).collect();
    let bound_ramps = Score::of(traces, &bound, |t| t.family.ramp()).median().unwrap_or(f64::NAN);
    methods.push(("bound on the canary (not a detector)".into(), bound));
    let mut r = String::new();
    let _ = writeln!(
        r,
        "| detector | false rollbacks | misses | step median (h) | ramp median (h) | ramp ÷ bound | 31 h ramp median (h) |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---:|---:|---:|");
    for (name, out) in &methods {
        let all = Score::of(traces, out, |_| true);
        let steps = Score::of(traces, out, |t| t.family == Family::Step);
        let ramps = Score::of(traces, out, |t| t.family.ramp());
        let incident = Score::of(traces, out, |t| t.family == Family::Ramp31h);
        let _ = writeln!(
            r,
            "| {name} | {} of {} | {} | {} | {} | {:.2} | {} |",
            all.false_rollbacks,
            all.healthy,
            all.misses(),
            fmt(steps.median()),
            fmt(ramps.median()),
            ramps.median().unwrap_or(f64::NAN) / bound_ramps,
            fmt(incident.median())
        );
    }
    r.push_str(&misses_by_excess);
    r.push_str(&misses_by_traffic);
    r
}

/// The soaks, and the operator's misses and false rollbacks, by what a regression at the
/// multiple the canary's copy acts on would add over the soak, which the operator can tell
/// before the soak (`reach::added_at`); then those either side of the operator's
/// `reach::BUSY_ENOUGH`.
fn by_traffic(traces: &[Trace], judged: &[Judged], out: &Outcomes) -> String {
    const EDGES: [f64; 7] = [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, f64::INFINITY];
    let mut r = String::from(
        "\nThe operator's method by what a regression at the multiple the canary's copy acts on would add over the soak, at its week's rate and traffic (`reach::added_at`: known before the soak begins):\n\n| a regression at the floor adds | soaks | false rollbacks | misses |\n|---|---:|---:|---:|\n",
    );
    let row = |keep: &dyn Fn(usize) -> bool| {
        let s = Score::of_each(traces, out, keep);
        (s.healthy + s.regressing, s.false_rollbacks(), s.misses())
    };
    for w in EDGES.windows(2) {
        let (n, fr, misses) = row(&|i| (w[0]..w[1]).contains(&judged[i].at_floor));
        let _ = writeln!(r, "| {}–{} | {n} | {fr} | {misses} |", w[0], w[1]);
    }
    let ours = reach::BUSY_ENOUGH;
    let (n, fr, misses) = row(&|i| judged[i].at_floor >= ours);
    let (quiet_n, quiet_fr, quiet_misses) = row(&|i| judged[i].at_floor < ours);
    let _ = writeln!(
        r,
        "\nAt the operator's {ours} (`reach::BUSY_ENOUGH`, set at 2 of 20 nodes on seeds 1–16): the canaries at least that busy, {n} soaks, {fr} false rollbacks, {misses} missed; the quieter ones, which it warns of, {quiet_n} soaks, {quiet_fr} false rollbacks, {quiet_misses} missed.",
    );
    r
}

/// The regressions, and the misses of `out`, by how many failures the regression adds on the
/// canary over the whole soak (below the CUSUM's minimum of excess failures, 10, no rollback is
/// allowed at all), each with how many are tellable at all; then the misses among those.
fn by_excess(traces: &[Trace], judged: &[Judged], out: &Outcomes) -> String {
    const EDGES: [f64; 6] = [0.0, 10.0, 20.0, 40.0, 80.0, f64::INFINITY];
    let mut r = String::from(
        "\nThe operator's method (at the control's level over its window) by the failures the regression adds on the canary over the 72 h soak. \"Tellable\": the exact two-sample test of the canary's soak against its own week, told the onset, reaches the CUSUM's threshold in its best window (with no margin for the baseline's uncertainty, and told the onset, which no real detector is):\n\n| added failures | regressions | of them tellable | misses | of them tellable |\n|---|---:|---:|---:|---:|\n",
    );
    let count = |keep: &dyn Fn(usize) -> bool| (0..traces.len()).filter(|&i| keep(i)).count();
    for w in EDGES.windows(2) {
        let keep = |i: usize| traces[i].onset.is_some() && (w[0]..w[1]).contains(&judged[i].excess);
        let missed = |i: usize| keep(i) && out[i].is_none();
        let _ = writeln!(
            r,
            "| {}–{} | {} | {} | {} | {} |",
            w[0],
            w[1],
            count(&keep),
            count(&|i| keep(i) && judged[i].tellable),
            count(&missed),
            count(&|i| missed(i) && judged[i].tellable)
        );
    }
    let regressing = |i: usize| traces[i].onset.is_some();
    let tellable = |i: usize| regressing(i) && judged[i].tellable;
    let (all, told) = (count(&regressing), count(&tellable));
    let missed = count(&|i| tellable(i) && out[i].is_none());
    let caught = count(&|i| regressing(i) && !judged[i].tellable && out[i].is_some());
    let _ = writeln!(
        r,
        "\nOf the {all} regressions, {told} are tellable by that test (at the whole signal's minimum effect, where the canary's copy acts on its own, higher floor); of those, the operator's method misses {missed} ({:.1} %). Of the other {}, it still catches {caught}.",
        100.0 * missed as f64 / told.max(1) as f64,
        all - told
    );
    r
}
