//! Decide step, pure: a concurrent control. While a canary runs, the nodes it has not touched
//! live through the same time of day and the same incidents of the whole cluster. How far
//! their failures run above or below what their baseline expects, lately, is a level the
//! canary's own baseline is multiplied by (`Cusum::advance_at_level`), so that the canary is
//! judged on what is its own. Measured in `make bench-detect-canary`: at 2 of 20 nodes it
//! removes the one false rollback the canary's own CUSUM made in 1,200 healthy soaks.

use crate::crd::ControlLevel;
use chrono::{DateTime, Duration, Utc};

/// Older reads of the control weigh e^(-age / this): a few hours, long enough that the
/// control's own noise does not move the canary's expectation, short enough to follow the
/// time of day. Chosen among 10, 60 and 180 minutes on the calibration seeds (`--tuning`).
pub const LEVEL_WINDOW: Duration = Duration::minutes(180);
/// Pseudo-failures that pull a level measured on few failures towards 1.
pub const LEVEL_PRIOR: f64 = 5.0;

/// The level is held within [1/4, 4]: a cluster-wide incident four times its baseline already
/// pages someone, and a level beyond could hide the canary's own regression in it (nor can a
/// value written into the status do more than this).
pub const MAX_LEVEL: f64 = 4.0;

/// Fold one read of the control into `l`: `failures` in the span ending at `at`, where its
/// baseline expected `expected`; reads older by `window` weigh 1/e (`LEVEL_WINDOW`).
pub fn add_control(l: &mut ControlLevel, at: DateTime<Utc>, failures: f64, expected: f64, window: Duration) {
    // What no read makes (a status written by hand) starts again.
    let sane = |x: f64| x.is_finite() && x >= 0.0;
    if !sane(l.failures) || !sane(l.expected) {
        *l = ControlLevel::default();
    }
    if !sane(failures) || !sane(expected) {
        return;
    }
    let age = l.at.map_or(0.0, |t| (at - t).num_milliseconds().max(0) as f64);
    let keep = (-age / window.num_milliseconds().max(1) as f64).exp();
    l.failures = l.failures * keep + failures;
    l.expected = l.expected * keep + expected;
    l.at = Some(at);
    l.level = (l.failures + LEVEL_PRIOR) / (l.expected + LEVEL_PRIOR);
}

/// The level a control `l` gives (1 before it has been read), within [1/4, 4].
pub fn level(l: Option<&ControlLevel>) -> f64 {
    let level = l.map_or(1.0, |l| if l.level.is_finite() && l.level > 0.0 { l.level } else { 1.0 });
    level.clamp(1.0 / MAX_LEVEL, MAX_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_above_its_baseline_raises_the_level_and_its_past_fades() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut l = ControlLevel::default();
        assert_eq!(level(None), 1.0);
        for m in 0..600 {
            add_control(&mut l, t0 + Duration::minutes(m), 3.0, 1.0, LEVEL_WINDOW);
        }
        assert!((level(Some(&l)) - 3.0).abs() < 0.1, "{}", l.level);
        for m in 600..1800 {
            add_control(&mut l, t0 + Duration::minutes(m), 1.0, 1.0, LEVEL_WINDOW);
        }
        assert!((level(Some(&l)) - 1.0).abs() < 0.05, "back to its baseline: {}", l.level);
    }

    #[test]
    fn a_level_written_by_hand_is_held_within_bounds() {
        let forged = |level: f64| ControlLevel { level, ..Default::default() };
        assert_eq!(level(Some(&forged(1e9))), MAX_LEVEL);
        assert_eq!(level(Some(&forged(1e-9))), 1.0 / MAX_LEVEL);
        assert_eq!(level(Some(&forged(f64::NAN))), 1.0);
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut l = ControlLevel { failures: f64::INFINITY, expected: -3.0, ..Default::default() };
        add_control(&mut l, t0, 1.0, 1.0, LEVEL_WINDOW);
        assert_eq!(l.level, 1.0, "started again: {l:?}");
    }

    #[test]
    fn a_few_failures_move_the_level_little() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut l = ControlLevel::default();
        add_control(&mut l, t0, 2.0, 0.5, LEVEL_WINDOW);
        assert!(l.level < 1.3, "{}", l.level);
    }
}
