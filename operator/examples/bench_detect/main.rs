//! `make bench-detect`: a seeded synthetic corpus of healthy and regressing soaks, judged at
//! every history length a user may give the baseline, by our detector and by rules modelled on
//! the canary tools (each tuned to its best case: the lowest threshold with no false rollback on
//! the healthy soaks). Writes bench/results.md and bench/delays.svg. Not a test: it measures.
//!
//! The report runs on seeds never used while tuning (`--seeds report`, the default);
//! `--seeds calibrate` runs the seeds that tuning may look at.
//! `--calibrate-floors` measures, on seeds 1–16 (never the report's), the smallest minimum effect
//! each history length supports (detector::reach; floors.rs).
//! `--grid` measures other thresholds and caps the same way, each at its own 7-day floor (grid.rs).
//! `--ramp-experiment` tries a GLR over ramps beside the CUSUM (ramp.rs).
//! `--seeds A-B` runs further seeds (written to target/ unless `--out` says where).
//! `--control-experiment` tries a concurrent control on canary soaks (control.rs).
//! `--calibrate-canary-floors` measures, on seeds 1–16, the floors of a canary's own signal
//! judged at its control's level (canary_floor.rs).
//! `--bound-ladder` measures where a ramp's delay goes between the bound and the CUSUM (ladder.rs).
//! `--ours-only` skips the other rules (for quick runs while tuning).
//! `--write-incident FILE` instead writes the incident example trace (seeded, deterministic).
//! `--incident-seeds A-B` replays the incident's shape with other noise (incident.rs).

mod canary_floor;
mod control;
mod corpus;
mod floors;
mod grid;
mod incident;
mod ladder;
mod misses;
mod plot;
mod ramp;
mod rivals;

use corpus::{FAMILIES, Family, SOAK_MIN, Trace};
use maintenance_operator::crd::{BaselineSpec, BaselineStatus, RegressionRule, Verdict};
use maintenance_operator::detector::{Counts, Cusum, add_live_interval, fit_baseline};
use maintenance_operator::replay;
use std::fmt::Write as _;
use std::time::Instant;

/// Seeds that tuning may look at, and seeds that only the report runs.
const CALIBRATION_SEEDS: [u64; 2] = [1, 2];
const REPORT_SEEDS: [u64; 3] = [101, 102, 103];

/// How much history the baseline gets before the change.
#[derive(Clone, Copy)]
struct History {
    minutes: usize,
    /// Observed live interval by interval, as the built-in signal is; otherwise fitted from
    /// history read at once, as Prometheus signals are.
    live: bool,
}

const HISTORIES: [History; 5] = [
    History { minutes: 30, live: true },
    History { minutes: 120, live: false },
    History { minutes: 24 * 60, live: false },
    History { minutes: 3 * 24 * 60, live: false },
    History { minutes: 7 * 24 * 60, live: false },
];

impl History {
    fn short(self) -> String {
        match self.minutes {
            m if m < 60 => format!("{m} min"),
            m if m < 48 * 60 => format!("{} h", m / 60),
            m => format!("{} d", m / 1440),
        }
    }
    fn label(self) -> String {
        let default_lookback = BaselineSpec::default().lookback.parse().map(|d| d.num_minutes()).unwrap_or(0);
        let default_observe = BaselineSpec::default().observe.parse().map(|d| d.num_minutes()).unwrap_or(0);
        let mut l = self.short();
        if self.live {
            l += ", observed live";
            if self.minutes as i64 == default_observe {
                l += " (built-in signal's default)";
            }
        } else if self.minutes as i64 == default_lookback {
            l += " (Prometheus default)";
        }
        l
    }
    fn baseline(self, t: &Trace, d: &Cusum) -> BaselineStatus {
        self.baseline_of(t.history(self.minutes), d)
    }
    /// The baseline of the last `minutes` of `history`.
    fn baseline_of(self, history: &[(chrono::DateTime<chrono::Utc>, Counts)], d: &Cusum) -> BaselineStatus {
        let h = &history[history.len() - self.minutes.min(history.len())..];
        if !self.live {
            return fit_baseline(h, d.bucket);
        }
        let mut b = BaselineStatus::default();
        let from = h[0].0 - chrono::Duration::minutes(1);
        for (at, c) in h {
            add_live_interval(&mut b, *at, from, *c);
        }
        b
    }
}

/// What one detector did on one soak: the soak row of its rollback.
type Outcomes = Vec<Option<usize>>;

/// Two detectors run side by side: each soak's earlier rollback.
fn earliest(a: &Outcomes, b: &Outcomes) -> Outcomes {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => Some(*x.min(y)),
            _ => x.or(*y),
        })
        .collect()
}

fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

/// The score of one detector on the soaks `keep` selects.
#[derive(Default)]
struct Score {
    healthy: usize,
    /// On healthy soaks, and on regressing ones before the onset (`early`).
    false_rollbacks: usize,
    early: usize,
    regressing: usize,
    misses: usize,
    delays_h: Vec<f64>,
    /// Hours from when the regression reached 1.5x (0 if caught before).
    from_effect_h: Vec<f64>,
}

impl Score {
    fn of(traces: &[Trace], out: &Outcomes, keep: impl Fn(&Trace) -> bool) -> Score {
        Score::of_each(traces, out, |i| keep(&traces[i]))
    }
    /// The same, choosing soaks by their index.
    fn of_each(traces: &[Trace], out: &Outcomes, keep: impl Fn(usize) -> bool) -> Score {
        let mut s = Score::default();
        for (_, (t, at)) in traces.iter().zip(out).enumerate().filter(|(i, _)| keep(*i)) {
            match t.onset.map(|o| o - t.change) {
                None => {
                    s.healthy += 1;
                    s.false_rollbacks += usize::from(at.is_some());
                }
                Some(o) => {
                    s.regressing += 1;
                    match at {
                        Some(a) if *a < o => {
                            s.false_rollbacks += 1;
                            s.early += 1;
                        }
                        Some(a) => {
                            s.delays_h.push((a - o) as f64 / 60.0);
                            let e = t.effect_at.map(|e| e - t.change).unwrap_or(o);
                            s.from_effect_h.push(a.saturating_sub(e) as f64 / 60.0);
                        }
                        None => s.misses += 1,
                    }
                }
            }
        }
        s
    }
    fn median(&self) -> Option<f64> {
        quantile(&mut self.delays_h.clone(), 0.5)
    }
    /// "n of healthy", and the rollbacks before a regression's onset when there are any.
    fn false_rollbacks(&self) -> String {
        let early = if self.early > 0 { format!(" + {} before an onset", self.early) } else { String::new() };
        format!("{} of {}{early}", self.false_rollbacks - self.early, self.healthy)
    }
    fn misses(&self) -> String {
        format!("{} ({:.1} %)", self.misses, 100.0 * self.misses as f64 / self.regressing.max(1) as f64)
    }
}

/// The lowest threshold in `grid` (ascending) with no false rollback on any healthy soak.
fn calibrate(healthy: &[usize], grid: &[f64], run: impl Fn(usize, f64) -> Option<usize>) -> f64 {
    for &g in grid {
        if healthy.iter().all(|&i| run(i, g).is_none()) {
            return g;
        }
    }
    *grid.last().unwrap()
}

struct Method {
    name: String,
    /// Per history length, in the order of HISTORIES.
    outcomes: Vec<Outcomes>,
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = arg(&args, "--write-incident") {
        std::fs::write(path, corpus::incident_trace()).expect("write the incident trace");
        eprintln!("wrote {path}");
        return;
    }
    if let Some(range) = arg(&args, "--incident-seeds") {
        let (a, b) = range.split_once('-').expect("--incident-seeds A-B");
        let seeds: Vec<u64> =
            (a.parse().expect("--incident-seeds A-B")..=b.parse().expect("--incident-seeds A-B")).collect();
        assert!(!seeds.is_empty(), "--incident-seeds A-B with A at most B");
        incident::incident_seeds(&seeds, &RegressionRule::default(), arg(&args, "--out").unwrap_or("bench"));
        return;
    }
    let per_family: usize = arg(&args, "--per-family").map(|v| v.parse().unwrap()).unwrap_or(100);
    let calibrating = arg(&args, "--seeds") == Some("calibrate");
    // bench/ holds the report; other seeds write beside the build unless told where.
    let out = match (arg(&args, "--out"), arg(&args, "--seeds")) {
        (Some(out), _) => out.to_string(),
        (None, Some(seeds)) => format!("target/bench-seeds-{seeds}"),
        (None, None) => "bench".to_string(),
    };
    // `--seeds A-B`: a further check on seeds never tuned on (the report's own are 101-103).
    let range: Option<Vec<u64>> = arg(&args, "--seeds")
        .and_then(|v| v.split_once('-'))
        .map(|(a, b)| (a.parse().expect("--seeds A-B")..=b.parse().expect("--seeds A-B")).collect());
    let seeds: &[u64] = match &range {
        Some(r) => r,
        None if calibrating => &CALIBRATION_SEEDS,
        None => &REPORT_SEEDS,
    };
    let started = Instant::now();
    // Exploration knobs (the report always says which values ran); defaults otherwise.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let mut rule = RegressionRule::default();
    if let Some(v) = env("BENCH_REL") {
        rule.min_relative_increase = v;
    }
    if let Some(v) = env("BENCH_ABS") {
        rule.min_absolute_increase = v;
    }
    rule.threshold = env("BENCH_H");
    rule.max_increment = env("BENCH_CAP");
    rule.min_excess_failures = env("BENCH_EXCESS");
    let knobs: Vec<String> = ["BENCH_REL", "BENCH_ABS", "BENCH_H", "BENCH_CAP", "BENCH_EXCESS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
        .collect();
    if args.iter().any(|a| a == "--grid") {
        grid::grid(per_family, &rule, &out);
        return;
    }
    if args.iter().any(|a| a == "--calibrate-floors") {
        floors::calibrate_floors(per_family, &rule, arg(&args, "--only"), &out);
        return;
    }
    if args.iter().any(|a| a == "--calibrate-canary-floors") {
        canary_floor::calibrate(per_family, &out);
        return;
    }
    if args.iter().any(|a| a == "--control-experiment") {
        let share = arg(&args, "--canary-share").map(|v| match v.parse::<f64>() {
            Ok(s) if s > 0.0 && s < 1.0 => s,
            _ => panic!(
                "--canary-share takes the canary's share of the attempts, above 0 and below 1 \
                 (0.1 for 2 of 20 nodes), not {v}"
            ),
        });
        let tuning = args.iter().any(|a| a == "--tuning");
        let scored = match (&range, tuning) {
            (Some(_), true) => {
                panic!("--tuning scores the calibration seeds; --seeds A-B scores others: not both")
            }
            (Some(further), false) => Scored::Further(further),
            (None, true) => Scored::Tuning,
            (None, false) => Scored::Report,
        };
        control_experiment(per_family, if tuning { "target" } else { &out }, share, scored);
        return;
    }
    if args.iter().any(|a| a == "--ramp-experiment") {
        ramp::experiment(per_family, &out);
        return;
    }
    if args.iter().any(|a| a == "--bound-ladder") {
        assert!(!calibrating, "the ladder is set on the calibration seeds and scored on others");
        ladder::report(per_family, seeds, &out);
        return;
    }
    let traces = corpus::of_seeds(seeds, per_family, false);
    eprintln!("generated {} traces in {:.1}s", traces.len(), started.elapsed().as_secs_f64());

    let cusum = Cusum::from_rule(&rule);
    let healthy: Vec<usize> = (0..traces.len()).filter(|&i| traces[i].family.healthy()).collect();

    let oracle: Outcomes = traces.iter().map(rivals::oracle).collect();
    let mut ours = Method { name: "maintenance-operator (defaults)".into(), outcomes: vec![] };
    let mut argo = Method { name: "Argo-style: 5-min rate > limit, failureLimit 3".into(), outcomes: vec![] };
    let mut flagger =
        Method { name: "Flagger-style: 1-min rate > limit, threshold 5".into(), outcomes: vec![] };
    let mut kayenta =
        Method { name: "Kayenta-style: hourly Mann-Whitney vs up to 3 h before".into(), outcomes: vec![] };
    let mut tuned = vec![];
    // Per history length and soak: the smallest multiple the detector acts on against that
    // baseline (the rule's minimum effect, or the floor of a short baseline).
    let mut acts_on: Vec<Vec<f64>> = vec![];
    let mut suspicion = String::new();
    let mut missed = vec![];
    // Median and p90 (ms) of replaying one soak, and how many were timed.
    let mut replay_ms = (0.0, 0.0, 0);
    for h in HISTORIES {
        let baselines: Vec<BaselineStatus> = traces.iter().map(|t| h.baseline(t, &cusum)).collect();
        let runs: Vec<replay::Run> =
            traces.iter().zip(&baselines).map(|(t, b)| replay::run(&cusum, b, t.soak())).collect();
        ours.outcomes.push(runs.iter().map(|r| r.rollback).collect());
        acts_on.push(baselines.iter().map(|b| 1.0 + cusum.relative_increase(b)).collect());
        missed.push(missed_line(&h, &traces, &baselines, &runs, &cusum));
        if arg(&args, "--explain-false") == Some(&h.short()) {
            for ((t, b), r) in
                traces.iter().zip(&baselines).zip(&runs).filter(|((t, _), _)| t.family.healthy())
            {
                if let Some(j) = r.rollback {
                    eprintln!(
                        "false rollback: {:?} {:.0}/min, {:.1} h into the soak; baseline {:.3}% rho {:.5} hourly {}; {}",
                        t.family,
                        t.volume,
                        j as f64 / 60.0,
                        b.rate * 100.0,
                        b.correlation,
                        b.hourly.len(),
                        r.last.reason
                    );
                }
            }
        }
        if h.minutes == HISTORIES[4].minutes {
            suspicion = suspicion_line(&traces, &runs);
            // Replay speed: each 72 h per-minute soak, the 7-day baseline fit included, timed
            // one by one over all of them (a few seconds), so that the median is not a few
            // tens of milliseconds' worth of a loaded machine.
            let mut each: Vec<f64> = traces
                .iter()
                .map(|t| {
                    let timer = Instant::now();
                    let b = h.baseline(t, &cusum);
                    std::hint::black_box(replay::run(&cusum, &b, t.soak()));
                    timer.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            let mut at = |q: f64| quantile(&mut each, q).unwrap_or(f64::NAN);
            replay_ms = (at(0.5), at(0.9), traces.len());
        }
        if args.iter().any(|a| a == "--ours-only") {
            for m in [&mut argo, &mut flagger, &mut kayenta] {
                m.outcomes.push(vec![None; traces.len()]);
            }
            continue;
        }
        // The canary tools' rules, each at its best case on these very soaks.
        // 1.05x to ~2,800,000x: far enough that a limit above any rate exists, so every rule
        // has one clean limit (at low volume a minute's rate can be 100 %).
        let mult_grid: Vec<f64> = (0..600).map(|i| 1.05 * 1.025f64.powi(i)).collect();
        let p0 = |i: usize| baselines[i].rate;
        let argo_m = calibrate(&healthy, &mult_grid, |i, m| rivals::argo(&traces[i], m * p0(i), 5, 3));
        let flagger_m = calibrate(&healthy, &mult_grid, |i, m| rivals::flagger(&traces[i], m * p0(i), 5));
        let z_grid: Vec<f64> = (0..400).map(|i| 1.0 + i as f64 * 0.05).collect();
        let kayenta_z = calibrate(&healthy, &z_grid, |i, z| rivals::kayenta(&traces[i], h.minutes, z));
        let all = 0..traces.len();
        argo.outcomes.push(all.clone().map(|i| rivals::argo(&traces[i], argo_m * p0(i), 5, 3)).collect());
        flagger
            .outcomes
            .push(all.clone().map(|i| rivals::flagger(&traces[i], flagger_m * p0(i), 5)).collect());
        kayenta.outcomes.push(all.map(|i| rivals::kayenta(&traces[i], h.minutes, kayenta_z)).collect());
        tuned.push(format!(
            "{}: Argo {argo_m:.1}x, Flagger {flagger_m:.1}x, Kayenta z > {kayenta_z:.2}",
            h.short()
        ));
        eprintln!("history {} done at {:.1}s", h.short(), started.elapsed().as_secs_f64());
    }
    let bound = Method {
        name: "Bound: clairvoyant likelihood ratio (not a detector)".into(),
        outcomes: vec![oracle; HISTORIES.len()],
    };
    let methods = [&ours, &argo, &flagger, &kayenta, &bound];

    let mut r = String::new();
    let _ = writeln!(r, "# Slow-regression detection benchmark\n");
    let _ = writeln!(
        r,
        "Seeds {seeds:?} ({}); {per_family} soaks per family and seed, {} in all; each soak is judged at every history length below, over 72 h after the change.{}\n",
        if calibrating {
            "the calibration seeds, which tuning may look at"
        } else if range.is_some() {
            "a further check; tuning looked at seeds 1 and 2, the floors at seeds 1-16"
        } else {
            "the report seeds, never used while tuning; tuning looked at seeds 1 and 2, the floors at seeds 1-16"
        },
        traces.len(),
        if knobs.is_empty() { String::new() } else { format!(" Knobs: {}.", knobs.join(", ")) }
    );
    let _ = writeln!(
        r,
        "The corpus: volume 5–500 attempts/min and base error rate 0.2–3 % (log-uniform); a daily rhythm of the volume (±20–60 %) and of the error rate \
(±10–35 %), each with its own phase; weekends with 50–100 % of the traffic and an error rate 0.8–1.2x; the change at any minute of any day of the week; \
overdispersion (the rate wanders in 10-minute blocks, lognormal σ up to 0.3); about one spike of 2–10 min at 3–8x a day; in 30 % of histories \
a 1–2.5 h incident at 5x. The low-volume family has 0.5–5 attempts/min at 0.1–0.4 % with a 5–15x spike every 2–8 h. \
Regressions multiply the rate the soak would have had and start up to 24 h after the change (the 31 h ramp at the change).\n"
    );
    let _ = writeln!(
        r,
        "The other rules are tuned to their best case on these very soaks: the lowest limit with no false rollback on any healthy soak, per history length \
({}). Ours runs with its defaults. A miss is no rollback within the 72 h soak; a rollback before the onset of a regression counts as false. \
The bound is not a detector: a sequential likelihood-ratio test that knows the onset and the exact rate of every minute with and without \
the regression, stopping at ln 100 (up to a 1 % chance of a false rollback per soak); no real detector can be faster on average.\n",
        tuned.join("; ")
    );
    let _ = writeln!(r, "## By history length\n");
    let _ = writeln!(
        r,
        "| history | detector | false rollbacks | misses | misses it could act on | step median (h) | of the steps it could act on (h) | ramp median (h) | ramp median / bound | 31 h ramp median (h) |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (hi, h) in HISTORIES.iter().enumerate() {
        let bound_ramps = Score::of(&traces, &bound.outcomes[hi], |t| t.family.ramp()).median();
        for m in methods {
            let all = Score::of(&traces, &m.outcomes[hi], |_| true);
            let steps = Score::of(&traces, &m.outcomes[hi], |t| t.family == Family::Step);
            let ramps = Score::of(&traces, &m.outcomes[hi], |t| t.family.ramp());
            let incident = Score::of(&traces, &m.outcomes[hi], |t| t.family == Family::Ramp31h);
            let ratio = match (ramps.median(), bound_ramps) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".into(),
            };
            let bold = |s: String| if std::ptr::eq(m, &ours) { format!("**{s}**") } else { s };
            // Regressions at least as large as what our detector acts on against that baseline.
            let actionable: Vec<bool> =
                traces.iter().zip(&acts_on[hi]).map(|(t, a)| t.onset.is_some() && t.multiple >= *a).collect();
            let within = Score::of_each(&traces, &m.outcomes[hi], |i| actionable[i]);
            let steps_within = Score::of_each(&traces, &m.outcomes[hi], |i| {
                actionable[i] && traces[i].family == Family::Step
            });
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} | {} of {} | {} | {} | {} | {} | {} |",
                h.label(),
                m.name,
                bold(all.false_rollbacks()),
                bold(all.misses()),
                within.misses,
                within.regressing,
                fmt(steps.median()),
                fmt(steps_within.median()),
                fmt(ramps.median()),
                bold(ratio),
                fmt(incident.median())
            );
        }
    }
    let _ = writeln!(r, "\n## The misses it could act on\n");
    let _ = writeln!(
        r,
        "Could any test have caught them? The exact two-sample test of the soak against the baseline (given both failure counts, the soak's share \
depends only on the ratio of the rates, so the baseline's own uncertainty is in it with no margin), told the onset and taking the best window \
after it: do the counts favour the same minimum effect over no change by the CUSUM's threshold (the one it has against that baseline)?\n"
    );
    for line in &missed {
        let _ = writeln!(r, "- {line}");
    }
    let _ = writeln!(r, "\n## Ours by family\n");
    let _ = writeln!(
        r,
        "| history | family | soaks | false rollbacks | misses | median delay (h) | p90 delay (h) | median from 1.5x (h) | bound median (h) |"
    );
    let _ = writeln!(r, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (hi, h) in HISTORIES.iter().enumerate() {
        for f in FAMILIES {
            let s = Score::of(&traces, &ours.outcomes[hi], |t| t.family == f);
            let b = Score::of(&traces, &bound.outcomes[hi], |t| t.family == f);
            let regressing = !f.healthy();
            let dash = || "–".to_string();
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                h.short(),
                f.name(),
                s.healthy + s.regressing,
                s.false_rollbacks,
                if regressing { s.misses() } else { dash() },
                if regressing { fmt(s.median()) } else { dash() },
                if regressing { fmt(quantile(&mut s.delays_h.clone(), 0.9)) } else { dash() },
                if regressing { fmt(quantile(&mut s.from_effect_h.clone(), 0.5)) } else { dash() },
                if regressing { fmt(b.median()) } else { dash() },
            );
        }
    }
    let _ = writeln!(r, "\n{suspicion}");
    let _ = writeln!(
        r,
        "\nReplaying one 72 h per-minute soak (baseline fit over 7 days included): median {:.1} ms, p90 {:.1} ms, over all {} soaks. Whole benchmark: {:.0} s.",
        replay_ms.0,
        replay_ms.1,
        replay_ms.2,
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(format!("{out}/results.md"), &r).unwrap();
    // The plot: every regression family at 7 days of history.
    let labels: Vec<&str> = FAMILIES.iter().filter(|f| !f.healthy()).map(|f| f.name()).collect();
    let rows: Vec<(String, Vec<Option<f64>>)> = methods
        .iter()
        .map(|m| {
            let medians = FAMILIES
                .iter()
                .filter(|f| !f.healthy())
                .map(|f| Score::of(&traces, &m.outcomes[4], |t| t.family == *f).median())
                .collect();
            (m.name.clone(), medians)
        })
        .collect();
    std::fs::write(format!("{out}/delays.svg"), plot::delays_svg(&labels, &rows)).unwrap();
    print!("{r}");
    eprintln!("wrote {out}/results.md and {out}/delays.svg");
}

/// The misses of regressions at least as large as the minimum effect, and how many of them the
/// exact two-sample test, told the onset, could tell (misses.rs).
fn missed_line(
    h: &History,
    traces: &[Trace],
    baselines: &[BaselineStatus],
    runs: &[replay::Run],
    d: &Cusum,
) -> String {
    let mut volume = vec![];
    let mut failures = vec![];
    let (mut actionable, mut told_all, mut told) = (0, 0, 0);
    for ((t, b), run) in traces.iter().zip(baselines).zip(runs) {
        if t.onset.is_none() || t.multiple < 1.0 + d.relative_increase(b) {
            continue;
        }
        let tells = misses::best_window_llr(d, b, t) >= d.limits(b).0;
        actionable += 1;
        told_all += usize::from(tells);
        if run.rollback.is_none() {
            volume.push(t.volume);
            failures.push(b.errors as f64);
            told += usize::from(tells);
        }
    }
    if volume.is_empty() {
        return format!("{}: none missed of {actionable}; the exact test tells {told_all}.", h.short());
    }
    format!(
        "{}: {} missed of {actionable}; the exact test tells {told_all} of the {actionable} and {told} of the missed. \
Median volume of the missed {:.0} attempts/min, median failures behind their baseline {:.0}.",
        h.short(),
        volume.len(),
        quantile(&mut volume, 0.5).unwrap_or(0.0),
        quantile(&mut failures, 0.5).unwrap_or(0.0)
    )
}

/// Suspicion (two thirds of the threshold): how often healthy soaks would have waited for it to
/// clear, and how far ahead of the rollback it warns on regressions.
fn suspicion_line(traces: &[Trace], runs: &[replay::Run]) -> String {
    let (mut ever, mut at_end, mut healthy, mut leads) = (0, 0, 0, vec![]);
    for (t, r) in traces.iter().zip(runs) {
        // The catastrophe ceiling may roll back without a warning first.
        let first = r.first_suspect.or(r.rollback);
        if let (Some(f), Some(j), Some(o)) = (first, r.rollback, t.onset)
            && t.change + f >= o
        {
            leads.push((j - f) as f64 / 60.0);
        }
        if t.family.healthy() {
            healthy += 1;
            ever += usize::from(first.is_some());
            at_end += usize::from(r.last.verdict == Verdict::Suspect);
        }
    }
    format!(
        "Suspicion at 7 days of history (the statistic at two thirds of its threshold; promotion waits until it clears): {ever} of {healthy} healthy soaks \
were suspect at some point, {at_end} still at the end of {} h. On regressions it came a median of {:.1} h before the rollback.",
        SOAK_MIN / 60,
        quantile(&mut leads, 0.5).unwrap_or(0.0)
    )
}

/// The seeds the control experiment scores its methods on.
enum Scored<'a> {
    /// The report seeds (bench/).
    Report,
    /// The calibration seeds, the only ones a choice between methods may look at (`--tuning`,
    /// written to target/).
    Tuning,
    /// Further seeds never tuned on (`--seeds A-B`): a check on the report.
    Further(&'a [u64]),
}

/// The concurrent control on canary soaks: its minimum effects measured on the calibration
/// seeds, then every method scored on the report seeds (or on others, `scored`). Writes
/// bench/control.md.
fn control_experiment(per_family: usize, out: &str, share: Option<f64>, scored: Scored) {
    let started = Instant::now();
    let d = Cusum::from_rule(&RegressionRule::default());
    let further = matches!(scored, Scored::Further(_));
    let (scored, which) = match scored {
        Scored::Report => (&REPORT_SEEDS[..], "report"),
        Scored::Tuning => (&CALIBRATION_SEEDS[..], "calibration"),
        Scored::Further(seeds) => (seeds, "further (never tuned on)"),
    };
    let (calibration, report) =
        (corpus::of_seeds(&CALIBRATION_SEEDS, per_family, true), corpus::of_seeds(scored, per_family, true));
    let table = control::experiment(&calibration, &report, &d, share);
    let mut r = String::new();
    let (size, file) = match share {
        Some(s) => {
            (format!("{:.0} % of the attempts", s * 100.0), format!("control-share-{:.0}.md", s * 100.0))
        }
        None => ("5–50 % of the attempts".into(), "control.md".into()),
    };
    let target = match share {
        None => "bench-detect-control",
        Some(_) if further => "bench-detect-canary-check",
        Some(0.1) => "bench-detect-canary",
        Some(_) => "bench-detect-canary-sizes",
    };
    let mut command = format!("make {target}");
    if let Some(s) = share {
        command += &format!(", --canary-share {s}");
    }
    if further {
        command += &format!(" --seeds {}-{}", scored[0], scored[scored.len() - 1]);
    }
    let _ = writeln!(r, "# A concurrent control on canary soaks (`{command}`)\n");
    let _ = writeln!(
        r,
        "Every soak of the corpus split into a canary ({size}, its nodes' error rate 0.8–1.25x the rest's, each group with its own \
10-minute wander of σ up to 0.15 and about one bad-node spike a day) and the rest; the regression on the canary only, as a canary stage sees it. \
The control test's minimum effect per observation length is the smallest (to 0.05x) with no false rollback on the calibration seeds {CALIBRATION_SEEDS:?}; \
the table is the {which} seeds {scored:?}, {per_family} soaks per family and seed. The CUSUMs run with the defaults. \
\"At the control's level\": the canary's CUSUM expects its own week's rate times how far the rest run above or below theirs, older reads \
fading by e^(-age / window) (`detector::level`, `Cusum::advance_at_level`); `--tuning` scores every method on the calibration seeds, where \
the choice between windows is made. Took {:.0} s.\n",
        started.elapsed().as_secs_f64()
    );
    r += &table;
    write_report(out, &file, &r);
}

/// Writes an experiment's report to `out/file`, and prints it.
fn write_report(out: &str, file: &str, report: &str) {
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(format!("{out}/{file}"), report).unwrap();
    print!("{report}");
    eprintln!("wrote {out}/{file}");
}
