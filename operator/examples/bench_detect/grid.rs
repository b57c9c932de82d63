//! `--grid`: other thresholds and caps, each at its own 7-day floor, scored on the calibration
//! seeds and on the incident trace. Writes bench/grid.md.

use super::corpus::{self, Family, Trace};
use super::floors::{FLOOR_FROM, FLOOR_SEEDS, at_effect, clean_on, floor_soaks, smallest_clean};
use super::{CALIBRATION_SEEDS, HISTORIES, Outcomes, Score, fmt, rivals, write_report};
use chrono::{DateTime, Utc};
use maintenance_operator::crd::{BaselineStatus, RegressionRule};
use maintenance_operator::detector::Cusum;
use maintenance_operator::replay;
use std::fmt::Write as _;
use std::time::Instant;

/// (threshold, cap on one bucket's step) pairs `--grid` tries; the first is the default against a
/// week of history, the second the one shorter baselines keep. At threshold ÷ cap = 6, a step is
/// caught an hour after it starts at the earliest.
const GRID: [(f64, f64); 16] = [
    (10.5, 1.5),
    (12.0, 2.0),
    (8.0, 1.0),
    (8.0, 1.33),
    (10.0, 1.25),
    (10.0, 1.67),
    (16.0, 2.0),
    (16.0, 2.67),
    (20.0, 3.33),
    (11.0, 2.0),
    (11.0, 1.83),
    (10.0, 2.0),
    (12.0, 2.4),
    (12.0, 1.71),
    (9.0, 1.29),
    (11.0, 1.57),
];

/// When the detector rolls the incident trace back (`make replay-incident`), as hh:mm UTC.
fn incident_rollback(d: &Cusum) -> String {
    let rows = replay::parse_trace(&corpus::incident_trace()).expect("the incident trace parses");
    let change = DateTime::parse_from_rfc3339(corpus::INCIDENT_CHANGE).unwrap().with_timezone(&Utc);
    let outcome =
        replay::replay_with(&rows, change, d).expect("the incident trace has both sides of its change");
    outcome.decided_at.map_or_else(|| "none".into(), |t| t.format("%H:%M").to_string())
}

/// `--grid`: whether another threshold and cap would serve better. For each pair, the 7-day
/// floor is measured on the floor seeds as `--calibrate-floors` does, and the detector at that
/// floor is scored on the calibration seeds. Writes grid.md.
pub fn grid(per_family: usize, rule: &RegressionRule, out: &str) {
    let started = Instant::now();
    let default = Cusum::from_rule(rule);
    let kept = floor_soaks(per_family, &default);
    let week = HISTORIES.len() - 1;
    // The calibration seeds are among the floor seeds, but the scores need their traces; fitting
    // their week again takes 3 s.
    let traces: Vec<Trace> = corpus::of_seeds(&CALIBRATION_SEEDS, per_family, false);
    let baselines: Vec<BaselineStatus> =
        traces.iter().map(|t| HISTORIES[week].baseline(t, &default)).collect();
    let bound: Outcomes = traces.iter().map(rivals::oracle).collect();
    let bound_ramps = Score::of(&traces, &bound, |t| t.family.ramp()).median().unwrap_or(f64::NAN);
    let mut r = String::new();
    let _ = writeln!(r, "# Threshold and cap (`make bench-detect-grid`)\n");
    let _ = writeln!(
        r,
        "For each pair, the 7-day floor: the smallest minimum effect with no false rollback on the {} soaks of seeds {FLOOR_SEEDS:?}. \
Then the detector at that floor, on the {} soaks of the calibration seeds {CALIBRATION_SEEDS:?} with 7 days of history. The first row is the default against a week of history, the second the pair shorter baselines keep.\n",
        kept.len(),
        traces.len()
    );
    let _ = writeln!(
        r,
        "| threshold | cap | 7-day floor | misses | step median (h) | ramp median (h) | ramps / bound | 31 h ramp (h) | the incident rolled back (UTC; the window closed 06:00) |"
    );
    let _ = writeln!(r, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (threshold, cap) in GRID {
        let d = Cusum { threshold, max_increment: cap, with_a_week: None, ..default.clone() };
        let floor = smallest_clean(FLOOR_FROM, 16.0, |rel| clean_on(&kept, week, &at_effect(&d, rel)));
        let d = at_effect(&d, floor);
        let runs: Outcomes =
            traces.iter().zip(&baselines).map(|(t, b)| replay::run(&d, b, t.soak()).rollback).collect();
        let all = Score::of(&traces, &runs, |_| true);
        let steps = Score::of(&traces, &runs, |t| t.family == Family::Step).median();
        let ramps = Score::of(&traces, &runs, |t| t.family.ramp()).median();
        let incident = Score::of(&traces, &runs, |t| t.family == Family::Ramp31h).median();
        let _ = writeln!(
            r,
            "| {threshold} | {cap} | {:.2}x | {} | {} | {} | {:.2} | {} | {} |",
            1.0 + floor,
            all.misses(),
            fmt(steps),
            fmt(ramps),
            ramps.unwrap_or(f64::NAN) / bound_ramps,
            fmt(incident),
            incident_rollback(&d)
        );
        eprintln!("threshold {threshold}, cap {cap} done at {:.0}s", started.elapsed().as_secs_f64());
    }
    let _ = writeln!(r, "\nTook {:.0} s.", started.elapsed().as_secs_f64());
    write_report(out, "grid.md", &r);
}
