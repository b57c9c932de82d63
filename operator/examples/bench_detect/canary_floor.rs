//! `--calibrate-canary-floors`: the smallest minimum effect a canary's own signal supports when
//! it is judged at its control's level (`detector::level`), per history length of the canary's
//! baseline, measured like the whole signal's floors (floors.rs) on seeds 1–16, never the
//! report's. The control takes out what sets the whole signal's floors (the time of day, an
//! incident of the whole cluster); what it cannot take out is the canary's own: its nodes'
//! wander and a bad node's spike, which nobody else shares, and which weigh more the more
//! failures a canary has. So each floor is searched from the whole signal's floor up: never
//! below what the signal itself acts on, raised until no soak rolls back.
//!
//! Then, on the same seeds and a canary of 2 of 20 nodes with a week of history, what other
//! thresholds and minimum effects would give: how far the target (at most 5 % missed,
//! no false rollback) is from this detector.

use super::control::{CanarySoak, split};
use super::corpus::{self, SOAK_MIN};
use super::floors::{FLOOR_SEEDS, at_effect, of_floor_seeds};
use super::{HISTORIES, write_report};
use chrono::Duration;
use maintenance_operator::crd::RegressionRule;
use maintenance_operator::detector::Cusum;
use maintenance_operator::detector::level::LEVEL_WINDOW;
use maintenance_operator::detector::reach::{self, Judged};
use std::fmt::Write as _;
use std::time::Instant;

/// The canary's shares of the attempts the floors must hold at: drawn per soak from 5–50 %,
/// and 2 of 20 nodes (a larger canary has more failures, so its own wander weighs more).
const SHARES: [Option<f64>; 2] = [None, Some(0.1)];

/// One soak split into a canary and the rest, and the soak row of its regression's onset.
struct CanaryKept {
    soak: CanarySoak,
    onset: Option<usize>,
}

/// The FLOOR_SEEDS soaks split at `share`, the canary's baseline fitted at every history
/// length, on both cores.
fn canary_soaks(per_family: usize, d: &Cusum, share: Option<f64>) -> Vec<CanaryKept> {
    of_floor_seeds(|seed| {
        let traces = corpus::corpus(seed, per_family, true);
        let kept = traces.iter().enumerate().map(|(i, t)| {
            let s = split(seed.rotate_left(32) ^ i as u64, t, share);
            let history = s.rows(&s.canary, 0, t.change);
            let baselines = HISTORIES.iter().map(|h| h.baseline_of(&history, d)).collect();
            CanaryKept {
                soak: CanarySoak::of(d, &s, t.change, baselines),
                onset: t.onset.map(|o| o - t.change),
            }
        });
        kept.collect()
    })
}

/// What `d` does on every soak against the canary's baseline `which`, on both cores: the
/// rollback (only up to the onset when `only_false`, which is all a false rollback needs).
fn outcomes(kept: &[CanaryKept], d: &Cusum, which: usize, only_false: bool) -> Vec<Option<usize>> {
    std::thread::scope(|scope| {
        let jobs: Vec<_> = kept
            .chunks(kept.len().div_ceil(2))
            .map(|part| {
                scope.spawn(move || {
                    let until =
                        |k: &CanaryKept| if only_false { k.onset.unwrap_or(usize::MAX) } else { usize::MAX };
                    part.iter()
                        .map(|k| k.soak.alarm(d, which, LEVEL_WINDOW.num_minutes(), until(k)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        jobs.into_iter().flat_map(|j| j.join().unwrap()).collect()
    })
}

/// False rollbacks (on healthy soaks, and before the onset), misses and regressions.
fn score(kept: &[CanaryKept], out: &[Option<usize>]) -> (usize, usize, usize) {
    score_where(kept, out, |_| true)
}

/// `score` of the soaks `keep` takes (by index).
fn score_where(
    kept: &[CanaryKept],
    out: &[Option<usize>],
    keep: impl Fn(usize) -> bool,
) -> (usize, usize, usize) {
    let taken = || kept.iter().zip(out).enumerate().filter(|(i, _)| keep(*i)).map(|(_, p)| p);
    let false_rollbacks = taken().filter(|(k, a)| a.is_some_and(|a| k.onset.is_none_or(|o| a < o))).count();
    let regressions = taken().filter(|(k, _)| k.onset.is_some()).count();
    let misses = taken().filter(|(k, a)| k.onset.is_some() && a.is_none()).count();
    (false_rollbacks, misses, regressions)
}

/// Writes bench/canary-floors.md: per history length, the smallest minimum effect with no false
/// rollback at either share; then the grid at 2 of 20 nodes.
pub fn calibrate(per_family: usize, out: &str) {
    let started = Instant::now();
    let d = Cusum::from_rule(&RegressionRule::default());
    let shares: Vec<Vec<CanaryKept>> = SHARES.iter().map(|s| canary_soaks(per_family, &d, *s)).collect();
    let soaks: usize = shares.iter().map(Vec::len).sum();
    let (mut floors, mut wholes) = (vec![], vec![]);
    let mut lines = String::new();
    for (which, h) in HISTORIES.iter().enumerate() {
        let of = |judged| {
            let floors = shares[0].iter().map(|k| reach::floor(&k.soak.canary_b[which], judged).min_relative);
            floors.fold(0.0, f64::max)
        };
        let (whole, shipped) = (of(Judged::Alone), of(Judged::AtAControl));
        // Per share, at the minimum effect `rel`.
        let false_rollbacks = |rel: f64| -> Vec<usize> {
            shares
                .iter()
                .map(|kept| score(kept, &outcomes(kept, &at_effect(&d, rel), which, true)).0)
                .collect()
        };
        // Scanned up a step at a time, not bisected: cleanliness need not rise with the minimum
        // effect (a larger one weighs each failure more).
        let at_whole = false_rollbacks(whole);
        let mut floor = whole;
        let mut at_floor = at_whole.clone();
        while at_floor.iter().sum::<usize>() > 0 {
            floor = ((floor + 0.05) / 0.05).round() * 0.05;
            at_floor = false_rollbacks(floor);
        }
        // What `detector::reach` ships may be larger (a longer history never needs more), so it
        // is checked where it is used.
        let at_shipped: usize = false_rollbacks(shipped).iter().sum();
        let line = format!(
            "{}: the first value with no false rollback in {soaks} soaks is {floor:.2} ({:.2}x); at the whole signal's \
floor, {whole:.2} ({:.2}x), {} and {} false rollbacks (5–50 % and 10 %); `detector::reach` ships {shipped:.2} ({:.2}x): \
{at_shipped} false rollbacks",
            h.label(),
            1.0 + floor,
            1.0 + whole,
            at_whole[0],
            at_whole[1],
            1.0 + shipped
        );
        eprintln!("{line} ({:.0} s)", started.elapsed().as_secs_f64());
        let _ = writeln!(lines, "- {line}");
        floors.push(floor);
        wholes.push(whole);
    }
    let (week, kept) = (HISTORIES.len() - 1, &shares[1]);
    let regressions = kept.iter().filter(|k| k.onset.is_some()).count();
    let mut grid = format!(
        "| threshold | minimum effect | false rollbacks ({} soaks) | misses ({regressions} regressions) |\n|---:|---:|---:|---:|\n",
        kept.len()
    );
    for h in [10.5, 9.0, 8.0, 7.0, 6.0] {
        for rel in [wholes[week], floors[week], floors[week] + 0.5] {
            let cap = d.limits(&kept[0].soak.canary_b[week]).1;
            let e = Cusum { with_a_week: Some((h, cap)), ..at_effect(&d, rel) };
            let (f, m, _) = score(kept, &outcomes(kept, &e, week, false));
            let _ = writeln!(
                grid,
                "| {h} | {:.2}x | {f} | {m} ({:.1} %) |",
                1.0 + rel,
                100.0 * m as f64 / regressions as f64
            );
        }
    }
    let busy = busy_enough(kept, &d, week);
    let r = format!(
        "# A canary's floors at its control's level (`make bench-detect-canary-floors`)\n\n\
The first minimum effect (on a 0.05 grid, scanned up from the whole signal's floor, `detector::reach`) with no false \
rollback of a canary's own signal judged at its control's level (`detector::level`), per history length of the canary's baseline. \
On every soak of seeds {FLOOR_SEEDS:?} (never the report's), split into a canary and the rest as in `make bench-detect-canary` twice: \
once with canaries of 5–50 % of the attempts, once of 10 % (2 of 20 nodes); a floor must be clean at both. A false rollback is one on \
a healthy soak or before a regression's onset. The control's level is read against the whole cluster's week. `detector::reach` keeps \
the floors (a longer history never needs more: where a longer one measured more, the shorter takes its value too); each line says \
what the value it ships does. Took {:.0} s.\n\n{lines}\n\
At 2 of 20 nodes with a week of history, on the same seeds, other thresholds and minimum effects (with the cap a week gets): the issue's \
target, at most 5 % of the regressions missed with no false rollback, is out of this detector's reach. No row without a false rollback \
misses less than the shipped floor's, and every lower threshold costs false rollbacks.\n\n{grid}{busy}",
        started.elapsed().as_secs_f64()
    );
    write_report(out, "canary-floors.md", &r);
}

/// How busy a canary must be for the operator not to warn of it (`reach::BUSY_ENOUGH`): the
/// least a regression at the multiple its copy acts on must add over the soak (`reach::added_at`,
/// known before the soak begins), in steps of one failure, for the canaries at least that busy
/// to miss at most 5 % of their regressions. At 2 of 20 nodes with a week of history and the
/// shipped detector, on these seeds (8,000 regressions, never the report's), so that the line is
/// set where the miss rate is steady; the report seeds then say what it does.
fn busy_enough(kept: &[CanaryKept], d: &Cusum, week: usize) -> String {
    let d = Cusum { judged: Judged::AtAControl, ..d.clone() };
    let out = outcomes(kept, &d, week, false);
    let soak = Duration::minutes(SOAK_MIN as i64);
    let at_floor: Vec<f64> = kept
        .iter()
        .map(|k| {
            let b = &k.soak.canary_b[week];
            reach::added_at(b, d.smallest_increase(b), soak)
        })
        .collect();
    // (false rollbacks, misses, regressions, soaks) of the canaries at least `c` busy.
    let of = |c: f64| {
        let (f, m, r) = score_where(kept, &out, |i| at_floor[i] >= c);
        (f, m, r, at_floor.iter().filter(|a| **a >= c).count())
    };
    // A cohort's miss rate, and its one-sided 95 % upper bound (Wilson's): the line is set
    // where even that is at most 5 %, not where these seeds' own count happens to reach it
    // (there, other seeds miss more about as often as less). A cohort of fewer than 100
    // regressions sets no line.
    let wilson = |misses: usize, regressions: usize| {
        let (m, n, z) = (misses as f64, regressions.max(1) as f64, 1.645f64);
        let rate = m / n;
        let spread = z * (rate * (1.0 - rate) / n + z * z / (4.0 * n * n)).sqrt();
        (rate, (rate + z * z / (2.0 * n) + spread) / (1.0 + z * z / n))
    };
    let line = (0..=400).map(f64::from).find(|&c| {
        let (_, misses, regressions, _) = of(c);
        regressions >= 100 && wilson(misses, regressions).1 <= 0.05
    });
    let mut r = format!(
        "\nHow busy a canary must be for the operator not to warn of it (`reach::BUSY_ENOUGH`): at 2 of 20 nodes with a week of \
history and the shipped detector, the canaries by what a regression at the multiple their copy acts on would add over the 72 h soak \
(`reach::added_at`, known before the soak begins), counting those at least that busy. The least value, in steps of one failure, at \
which the one-sided 95 % upper bound (Wilson) of their miss rate is at most 5 %: **{}**; the operator ships {}.\n\n\
| at least | soaks | regressions | missed | upper bound | false rollbacks |\n|---:|---:|---:|---:|---:|---:|\n",
        line.map_or("none up to 400".to_string(), |c| format!("{c}")),
        reach::BUSY_ENOUGH
    );
    let mut rows: Vec<f64> = vec![0.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0];
    rows.extend(line);
    rows.sort_by(f64::total_cmp);
    rows.dedup();
    for c in rows {
        let (false_rollbacks, misses, regressions, soaks) = of(c);
        let (rate, bound) = wilson(misses, regressions);
        let _ = writeln!(
            r,
            "| {c} | {soaks} ({:.1} %) | {regressions} | {misses} ({:.1} %) | {:.1} % | {false_rollbacks} |",
            100.0 * soaks as f64 / kept.len() as f64,
            100.0 * rate,
            100.0 * bound
        );
    }
    r
}
