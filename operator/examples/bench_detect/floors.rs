//! `--calibrate-floors`: the smallest minimum effect each history length supports, measured on
//! seeds 1–16 (never the report's) for detector::reach. Writes bench/floors.md.

use super::HISTORIES;
use super::corpus::{self, Family};
use maintenance_operator::crd::{BaselineStatus, RegressionRule};
use maintenance_operator::detector::{Counts, Cusum};
use maintenance_operator::replay;
use std::time::Instant;

/// Seeds the floors are measured on: a floor with no false rollback on N soaks still lets about
/// one in N through, so it needs many more soaks than the report has. Never the report seeds.
pub const FLOOR_SEEDS: std::ops::RangeInclusive<u64> = 1..=16;

/// The smallest value on a 0.05 grid from `lo` to `hi` that `clean` accepts (`hi` is assumed
/// clean; a value is clean when no healthy soak rolls back, so cleanliness rises with it).
pub fn smallest_clean(mut lo: f64, mut hi: f64, mut clean: impl FnMut(f64) -> bool) -> f64 {
    if clean(lo) {
        return lo;
    }
    while hi - lo > 0.05 + 1e-9 {
        let mid = ((lo + hi) / 2.0 / 0.05).round() * 0.05;
        if clean(mid) { hi = mid } else { lo = mid }
    }
    hi
}

/// The smallest minimum effect the floor search tries (1.25x): below the rule's default, so
/// that a floor under the default is found too.
pub const FLOOR_FROM: f64 = 0.25;

/// What the floor calibration keeps of one soak: its baselines at every history length and the soak.
pub struct Kept {
    baselines: Vec<BaselineStatus>,
    soak: Vec<replay::Row>,
    onset: Option<usize>,
    family: Family,
    volume: f64,
}

/// What `keep` makes of each of the FLOOR_SEEDS, on two threads (the machine has two cores),
/// each a share of the seeds; in the seeds' order.
pub fn of_floor_seeds<T: Send>(keep: impl Fn(u64) -> Vec<T> + Sync) -> Vec<T> {
    let seeds: Vec<u64> = FLOOR_SEEDS.collect();
    let keep = &keep;
    std::thread::scope(|scope| {
        let jobs: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2))
            .map(|chunk| scope.spawn(move || chunk.iter().flat_map(|seed| keep(*seed)).collect::<Vec<T>>()))
            .collect();
        jobs.into_iter().flat_map(|j| j.join().unwrap()).collect()
    })
}

/// The FLOOR_SEEDS soaks with their baselines fitted once at every history length.
pub fn floor_soaks(per_family: usize, d: &Cusum) -> Vec<Kept> {
    of_floor_seeds(|seed| {
        corpus::corpus(seed, per_family, false)
            .into_iter()
            .map(|t| Kept {
                baselines: HISTORIES.iter().map(|h| h.baseline(&t, d)).collect(),
                soak: t.soak().to_vec(),
                onset: t.onset.map(|o| o - t.change),
                family: t.family,
                volume: t.volume,
            })
            .collect()
    })
}

/// Whether `d` rolls back none of the soaks before a regression, at history length `hi`. On
/// both cores; stops at the first false rollback, so most candidates fail early.
pub fn clean_on(kept: &[Kept], hi: usize, d: &Cusum) -> bool {
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for part in kept.chunks(kept.len().div_ceil(2)) {
            let failed = &failed;
            scope.spawn(move || {
                for k in part {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let rollback = replay::run(d, &k.baselines[hi], &k.soak).rollback;
                    if rollback.is_some_and(|at| k.onset.is_none_or(|o| at < o)) {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    !failed.into_inner()
}

/// The detector with the floor off and the minimum effect `rel`: what the floor search varies.
pub fn at_effect(d: &Cusum, rel: f64) -> Cusum {
    Cusum { min_relative_increase: rel, history_floor: false, ..d.clone() }
}

/// For each history length (`--only` one of them): the smallest minimum effect (to 0.05) with no
/// false rollback at all on the FLOOR_SEEDS soaks, the floor off: for detector::reach, printed
/// and kept in bench/floors.md.
pub fn calibrate_floors(per_family: usize, rule: &RegressionRule, only: Option<&str>, out: &str) {
    let started = Instant::now();
    let mut report = String::new();
    let d = Cusum::from_rule(rule);
    let kept = floor_soaks(per_family, &d);
    eprintln!(
        "{} soaks from seeds {FLOOR_SEEDS:?}, fitted in {:.0}s",
        kept.len(),
        started.elapsed().as_secs_f64()
    );
    for (hi, h) in HISTORIES.iter().enumerate().filter(|(_, h)| only.is_none_or(|o| o == h.short())) {
        let floor = smallest_clean(FLOOR_FROM, 16.0, |rel| clean_on(&kept, hi, &at_effect(&d, rel)));
        // What still rolls back just below the floor: the soaks that set it.
        let lo = (floor - 0.05).max(FLOOR_FROM);
        let below = at_effect(&d, lo);
        let mut setters = vec![];
        for k in &kept {
            let r = replay::run(&below, &k.baselines[hi], &k.soak);
            if r.rollback.is_some_and(|at| k.onset.is_none_or(|o| at < o)) {
                let b = &k.baselines[hi];
                let soak = k.soak.iter().fold(Counts::default(), |a, r| a + r.1);
                setters.push(format!(
                    "at {lo:.2}: {:?} at {:.1}/min, baseline {}/{} ({} hours), soak {}/{}, {:.1} h in: {}",
                    k.family,
                    k.volume,
                    b.errors,
                    b.attempts,
                    b.hourly.len(),
                    soak.errors,
                    soak.attempts,
                    r.rollback.unwrap_or(0) as f64 / 60.0,
                    r.last.reason
                ));
            }
        }
        let line = format!(
            "{}: no false rollback in {} soaks from a minimum relative increase of {floor:.2} ({:.2}x)",
            h.label(),
            kept.len(),
            1.0 + floor
        );
        println!("{line}");
        report += &format!("- {line}; just below it, these roll back:\n");
        for s in &setters {
            eprintln!("  {s}");
            report += &format!("  - {s}\n");
        }
    }
    // A partial run (`--only`) or one with knobs leaves the record of the defaults alone.
    if only.is_none() && *rule == RegressionRule::default() {
        let head = format!(
            "# The floors (`make bench-detect-floors`)\n\nThe smallest minimum effect with no false rollback on any soak of seeds \
{FLOOR_SEEDS:?} (never the report's), per history length, with the defaults; detector::reach keeps them. Took {:.0} s.\n\n",
            started.elapsed().as_secs_f64()
        );
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(format!("{out}/floors.md"), head + &report).unwrap();
        eprintln!("wrote {out}/floors.md");
    }
}
