//! The synthetic corpus: seven days of per-minute history and a 72 h soak per trace, with what
//! real error rates do that a before/after comparison must not mistake for a regression: the
//! time of day (of volume and of the rate, each with its own phase), weekends, overdispersion,
//! spikes of minutes, incidents inside the history, traffic shifts and very low volume.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use maintenance_operator::detector::Counts;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use std::fmt::Write as _;

pub const HISTORY_MIN: usize = 7 * 24 * 60;
pub const SOAK_MIN: usize = 72 * 60;
/// The seed of the incident example trace (and of the corpus before it had seed sets).
pub const INCIDENT_SEED: u64 = 20221018;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Healthy,
    TrafficDoubling,
    ShortIncident,
    LowVolume,
    Step,
    RampShort,  // 6–12 h
    RampMedium, // 12–24 h
    RampLong,   // 24–48 h
    Ramp31h,    // the incident's creep
}

pub const FAMILIES: [Family; 9] = [
    Family::Healthy,
    Family::TrafficDoubling,
    Family::ShortIncident,
    Family::LowVolume,
    Family::Step,
    Family::RampShort,
    Family::RampMedium,
    Family::RampLong,
    Family::Ramp31h,
];

impl Family {
    pub fn healthy(self) -> bool {
        matches!(self, Family::Healthy | Family::TrafficDoubling | Family::ShortIncident | Family::LowVolume)
    }
    pub fn ramp(self) -> bool {
        matches!(self, Family::RampShort | Family::RampMedium | Family::RampLong | Family::Ramp31h)
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::Healthy => "healthy",
            Family::TrafficDoubling => "healthy, traffic doubles",
            Family::ShortIncident => "healthy, unrelated 20–40 min incident",
            Family::LowVolume => "healthy, 0.5–5 attempts/min, spikes hours apart",
            Family::Step => "step 2–5x",
            Family::RampShort => "ramp to 2–5x over 6–12 h",
            Family::RampMedium => "ramp to 2–5x over 12–24 h",
            Family::RampLong => "ramp to 2–5x over 24–48 h",
            Family::Ramp31h => "ramp to 3x over 31 h (the incident)",
        }
    }
}

pub struct Trace {
    pub family: Family,
    /// Mean attempts per minute (before seasonality and traffic events).
    pub volume: f64,
    /// Seven days of history, then the soak; `change` is the index of the soak's first row.
    pub rows: Vec<(DateTime<Utc>, Counts)>,
    pub change: usize,
    /// Row the regression starts at; None for healthy soaks.
    pub onset: Option<usize>,
    /// Row the regression first reaches 1.5x: a fixed mark to count delays from as well.
    pub effect_at: Option<usize>,
    /// The final multiple of the regression (1 when healthy).
    pub multiple: f64,
    /// The generator's exact error rate per soak minute without and with the regression, for
    /// the clairvoyant bound.
    pub p_null: Vec<f64>,
    pub p_true: Vec<f64>,
    /// The same without the regression and without the noise (the wander, spikes and
    /// incidents): the daily and weekly rhythm alone, per soak minute (ladder.rs).
    pub p_rhythm: Vec<f64>,
    /// What made the counts, kept only for the concurrent-control experiment (control.rs).
    pub shape: Option<Shape>,
}

/// The generator's expectations for every row, history and soak: attempts per minute, the
/// error rate without the regression, and the regression's multiple.
pub struct Shape {
    pub attempts: Vec<f32>,
    pub p_null: Vec<f32>,
    pub regression: Vec<f32>,
}

impl Trace {
    /// The last `minutes` of history before the change.
    pub fn history(&self, minutes: usize) -> &[(DateTime<Utc>, Counts)] {
        &self.rows[self.change - minutes.min(self.change)..self.change]
    }
    pub fn soak(&self) -> &[(DateTime<Utc>, Counts)] {
        &self.rows[self.change..]
    }
}

fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// `per_family` traces of every family from one seed; `keep_shape` keeps what made them.
pub fn corpus(seed: u64, per_family: usize, keep_shape: bool) -> Vec<Trace> {
    let mut rng = StdRng::seed_from_u64(seed);
    FAMILIES
        .iter()
        .flat_map(|f| std::iter::repeat_n(*f, per_family))
        .map(|f| generate(&mut rng, f, keep_shape))
        .collect()
}

/// The corpora of `seeds`, one after another.
pub fn of_seeds(seeds: &[u64], per_family: usize, keep_shape: bool) -> Vec<Trace> {
    seeds.iter().flat_map(|s| corpus(*s, per_family, keep_shape)).collect()
}

/// Multiplies `v[at..at + len]` (clipped to the end) by `k`.
fn scale(v: &mut [f64], at: usize, len: usize, k: f64) {
    let end = (at + len).min(v.len());
    for m in &mut v[at..end] {
        *m *= k;
    }
}

/// One trace. The change falls at a random minute of a random day of the week.
pub fn generate(rng: &mut StdRng, family: Family, keep_shape: bool) -> Trace {
    let low = family == Family::LowVolume;
    let volume = if low { log_uniform(rng, 0.5, 5.0) } else { log_uniform(rng, 5.0, 500.0) };
    let p0 = if low { log_uniform(rng, 0.001, 0.004) } else { log_uniform(rng, 0.002, 0.03) };
    let vol_amp = rng.random_range(0.2..0.6);
    let rate_amp = rng.random_range(0.10..0.35);
    let (vol_phase, rate_phase) =
        (rng.random_range(0.0..std::f64::consts::TAU), rng.random_range(0.0..std::f64::consts::TAU));
    // Weekends: less traffic, and an error rate up to a fifth higher or lower.
    let weekend_vol = rng.random_range(0.5..1.0);
    let weekend_rate = rng.random_range(0.8..1.2);
    let sigma = rng.random_range(0.0..0.3);
    let noise = LogNormal::new(-sigma * sigma / 2.0, sigma).unwrap();
    let n = HISTORY_MIN + SOAK_MIN;
    let change = HISTORY_MIN;
    let begin = DateTime::parse_from_rfc3339("2026-10-01T00:00:00Z").unwrap().with_timezone(&Utc)
        + Duration::minutes(rng.random_range(0..7 * 1440));
    let mut rate_mult = vec![1.0f64; n];
    let mut vol_mult = vec![1.0f64; n];
    // Overdispersion: the rate wanders in 10-minute blocks.
    let mut block = 1.0;
    for (i, m) in rate_mult.iter_mut().enumerate() {
        if i % 10 == 0 {
            block = noise.sample(rng);
        }
        *m *= block;
    }
    // Spikes of minutes: about one a day at 3–8x; at low volume one every 2–8 hours at 5–15x.
    let spikes = if low { n / (60 * rng.random_range(2..8)) } else { n / 1440 };
    for _ in 0..spikes {
        let at = rng.random_range(0..n - 20);
        let k = if low { rng.random_range(5.0..15.0) } else { rng.random_range(3.0..8.0) };
        scale(&mut rate_mult, at, rng.random_range(2..10), k);
    }
    // Sometimes an incident inside the history: the baseline must not learn it.
    if rng.random::<f64>() < 0.3 {
        let at = rng.random_range(0..HISTORY_MIN - 180);
        scale(&mut rate_mult, at, rng.random_range(60..150), 5.0);
    }
    let mut onset = None;
    let mut multiple = 1.0;
    let mut regression = vec![1.0f64; n];
    match family {
        Family::Healthy | Family::LowVolume => {}
        Family::TrafficDoubling => {
            let at = change + rng.random_range(0..SOAK_MIN / 2);
            scale(&mut vol_mult, at, n, 2.0);
        }
        Family::ShortIncident => {
            let at = change + rng.random_range(60..SOAK_MIN - 60);
            let k = rng.random_range(2.0..4.0);
            scale(&mut rate_mult, at, rng.random_range(20..40), k);
        }
        _ => {
            let at = change + if family == Family::Ramp31h { 0 } else { rng.random_range(0..24 * 60) };
            let (k, ramp_h) = match family {
                Family::Step => (rng.random_range(2.0..5.0), 0.0),
                Family::RampShort => (rng.random_range(2.0..5.0), rng.random_range(6.0..12.0)),
                Family::RampMedium => (rng.random_range(2.0..5.0), rng.random_range(12.0..24.0)),
                Family::RampLong => (rng.random_range(2.0..5.0), rng.random_range(24.0..48.0)),
                _ => (3.0, 31.0),
            };
            for (i, m) in regression[at..].iter_mut().enumerate() {
                let f = if ramp_h == 0.0 { 1.0 } else { (i as f64 / (ramp_h * 60.0)).min(1.0) };
                *m = 1.0 + (k - 1.0) * f;
            }
            onset = Some(at);
            multiple = k;
        }
    }
    let at = |i: usize| begin + Duration::minutes(i as i64 + 1);
    let weekend = |i: usize| matches!(at(i).weekday(), Weekday::Sat | Weekday::Sun);
    let day = |i: usize| (i as f64 / 1440.0) * std::f64::consts::TAU;
    let rhythm = |i: usize| {
        let week = if weekend(i) { weekend_rate } else { 1.0 };
        p0 * (1.0 + rate_amp * (day(i) + rate_phase).sin()) * week
    };
    let p_null: Vec<f64> = (0..n).map(|i| (rhythm(i) * rate_mult[i]).min(0.95)).collect();
    let p_true: Vec<f64> = (0..n).map(|i| (p_null[i] * regression[i]).min(0.95)).collect();
    let expected: Vec<f64> = (0..n)
        .map(|i| {
            let week = if weekend(i) { weekend_vol } else { 1.0 };
            volume * (1.0 + vol_amp * (day(i) + vol_phase).sin()) * week * vol_mult[i]
        })
        .collect();
    let rows = (0..n)
        .map(|i| {
            let attempts = Poisson::new(expected[i].max(0.01)).unwrap().sample(rng) as u64;
            let errors =
                if attempts == 0 { 0 } else { Binomial::new(attempts, p_true[i]).unwrap().sample(rng) };
            (at(i), Counts { attempts, errors })
        })
        .collect();
    let effect_at = onset.and_then(|o| (o..n).find(|&i| regression[i] >= 1.5));
    let f32s = |v: &[f64]| v.iter().map(|x| *x as f32).collect();
    let shape = keep_shape.then(|| Shape {
        attempts: f32s(&expected),
        p_null: f32s(&p_null),
        regression: f32s(&regression),
    });
    Trace {
        family,
        volume,
        rows,
        change,
        onset,
        effect_at,
        multiple,
        p_null: p_null[change..].to_vec(),
        p_true: p_true[change..].to_vec(),
        p_rhythm: (change..n).map(|i| rhythm(i).min(0.95)).collect(),
        shape,
    }
}

/// When the connector was upgraded (22:56 EDT on 18 Oct).
pub const INCIDENT_CHANGE: &str = "2022-10-19T02:56:00Z";

/// The incident, reconstructed: a week of normal scheduling (about 120 pod starts a minute,
/// 0.8 % failing, daily seasonality), the connector upgraded at 22:56 EDT on 18 Oct 2022, then
/// failures creeping up over 31 hours, until the manual rollback at 09:25 EDT on 20 Oct.
pub fn incident_trace() -> String {
    incident_trace_of(INCIDENT_SEED)
}

/// The incident's shape with the noise of `seed`: the grid chose the week's threshold and cap
/// partly on `INCIDENT_SEED`'s trace, so only other seeds say what the shape itself gets.
pub fn incident_trace_of(seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let begin = DateTime::parse_from_rfc3339("2022-10-12T02:56:00Z").unwrap().with_timezone(&Utc);
    let change = DateTime::parse_from_rfc3339(INCIDENT_CHANGE).unwrap().with_timezone(&Utc);
    let end = DateTime::parse_from_rfc3339("2022-10-20T13:25:00Z").unwrap().with_timezone(&Utc);
    let noise = LogNormal::new(-0.02, 0.2).unwrap();
    let mut out = String::from("ts,attempts,errors\n");
    let mut t = begin;
    let mut block = 1.0;
    let mut i = 0;
    while t < end {
        t += Duration::minutes(1);
        if i % 10 == 0 {
            block = noise.sample(&mut rng);
        }
        i += 1;
        let day = ((t - begin).num_minutes() as f64 / 1440.0) * std::f64::consts::TAU;
        let volume = 120.0 * (1.0 + 0.4 * day.sin());
        let hours_after = (t - change).num_minutes() as f64 / 60.0;
        let creep = if hours_after > 0.0 { 1.0 + 9.0 * (hours_after / 31.0).min(1.0) } else { 1.0 };
        let p = (0.008 * (1.0 + 0.15 * day.cos()) * block * creep).min(0.9);
        let attempts = Poisson::new(volume).unwrap().sample(&mut rng) as u64;
        let errors = if attempts == 0 { 0 } else { Binomial::new(attempts, p).unwrap().sample(&mut rng) };
        let _ = writeln!(out, "{},{attempts},{errors}", t.to_rfc3339());
    }
    out
}
