//! What a baseline can tell. A baseline shorter than the daily rhythm it cannot learn (three
//! days give an hour-of-day profile) sees only part of the day, and the error rate moves with
//! the time of day by tens of percent: an increase smaller than that rhythm can make cannot be
//! told from it. So the smallest increase acted on grows to what the baseline supports.

use crate::crd::BaselineStatus;
use crate::timefmt::duration;
use chrono::Duration;

/// (shortest span in minutes, smallest relative increase a baseline of that span supports).
/// Measured, not guessed: `make bench-detect-floors` finds, for each span, the smallest minimum
/// effect with no false rollback on any healthy soak of the calibration seeds (the error
/// rate's daily rhythm up to ±35 %, weekends up to 1.2x, spikes, incidents, low volume). The
/// report seeds then check them (bench/results.md).
/// The noise of a short baseline counts as much as the time of day: 30 minutes average only
/// three 10-minute swings of the rate and rest on a handful of failures.
const FLOORS: [(i64, f64); 3] = [(0, 8.85), (120, 4.75), (24 * 60, 1.95)];

/// Span at which the baseline learns the time of day (see `baseline::HOURLY_AFTER_DAYS`).
const PROFILE_AFTER: Duration = Duration::days(3);

#[derive(Clone, Debug, PartialEq)]
pub struct Floor {
    pub span: Duration,
    /// The smallest relative increase acted on (1.0 = twice the baseline).
    pub min_relative: f64,
    /// The longer spans and what each would support (None: the rule's own minimum).
    pub better: Vec<(Duration, Option<f64>)>,
}

/// How much time the baseline covers.
pub fn span(b: &BaselineStatus) -> Duration {
    match (b.from, b.to) {
        (Some(f), Some(t)) => t - f,
        _ => Duration::zero(),
    }
}

/// The floor a baseline without an hour-of-day profile puts under the minimum effect.
pub fn floor(b: &BaselineStatus) -> Option<Floor> {
    if b.hourly.len() == 24 {
        return None;
    }
    let span = span(b);
    let i = FLOORS.iter().rposition(|(m, _)| span >= Duration::minutes(*m)).unwrap_or(0);
    let better = FLOORS[i + 1..]
        .iter()
        .map(|(m, f)| (Duration::minutes(*m), Some(*f)))
        .chain([(PROFILE_AFTER, None)])
        .collect();
    Some(Floor { span, min_relative: FLOORS[i].1, better })
}

/// In words, when the floor is above the rule's own minimum effect; for status, the Event and
/// the replay summary.
pub fn words(b: &BaselineStatus, rule_relative: f64) -> Option<String> {
    let f = floor(b)?;
    if f.min_relative <= rule_relative {
        return None;
    }
    let x = |rel: Option<f64>| format!("{:.1}x", 1.0 + rel.unwrap_or(rule_relative).max(rule_relative));
    let verb = if b.intervals > 0 { "observe" } else { "look back" };
    let ladder: Vec<String> = f
        .better
        .iter()
        .enumerate()
        .map(|(i, (d, rel))| {
            format!("{} {}on {}", duration(*d), if i == 0 { "or more to act " } else { "" }, x(*rel))
        })
        .collect();
    Some(format!(
        "baseline from {}: increases below {} cannot be told from time-of-day variation and noise; {verb} {}",
        duration(Duration::minutes(f.span.num_minutes())),
        x(Some(f.min_relative)),
        ladder.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn baseline(minutes: i64, live: bool) -> BaselineStatus {
        let to = DateTime::parse_from_rfc3339("2026-11-20T02:00:00Z").unwrap().with_timezone(&Utc);
        BaselineStatus {
            from: Some(to - Duration::minutes(minutes)),
            to: Some(to),
            intervals: if live { minutes } else { 0 },
            ..Default::default()
        }
    }

    #[test]
    fn the_floor_falls_as_the_baseline_grows_and_goes_with_the_daily_profile() {
        let rel = |m| floor(&baseline(m, false)).map(|f| f.min_relative);
        assert!(rel(30) >= rel(120) && rel(120) >= rel(24 * 60), "{:?}", [rel(30), rel(120), rel(1440)]);
        let profiled = BaselineStatus { hourly: vec![0.01; 24], ..baseline(7 * 24 * 60, false) };
        assert_eq!(floor(&profiled), None);
    }

    #[test]
    fn it_is_said_in_words_only_when_it_rises_above_the_rule() {
        let w = words(&baseline(30, true), 0.5).unwrap();
        assert!(w.starts_with("baseline from 30m: increases below "), "{w}");
        assert!(
            w.ends_with("cannot be told from time-of-day variation and noise; observe 2h or more to act on 5.8x, 1day on 3.0x, 3days on 1.5x"),
            "{w}"
        );
        let w = words(&baseline(120, false), 0.5).unwrap();
        assert!(w.contains("look back 1day or more to act on 3.0x, 3days on 1.5x"), "{w}");
        assert_eq!(words(&baseline(30, true), 10.0), None, "the rule asks for more than the floor");
    }
}
