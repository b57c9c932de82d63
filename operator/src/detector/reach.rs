//! What a baseline can tell. A baseline shorter than the daily rhythm it cannot learn (a day of
//! history gives an hour-of-day profile; a live observation never has one) sees only part of
//! the day, and the error rate moves with the time of day by tens of percent: an increase
//! smaller than that rhythm can make cannot be told from it. A profile from a few days has seen
//! each hour only a few times, and maybe no weekend. So the smallest increase acted on grows to
//! what the baseline supports.

use crate::crd::BaselineStatus;
use crate::detector::observed_seconds;
use crate::timefmt::duration;
use chrono::Duration;

/// (shortest span in minutes, smallest relative increase a baseline of that span supports),
/// without an hour-of-day profile and with one. Measured, not guessed: `make
/// bench-detect-floors` finds, for each span, the smallest minimum effect with no false rollback
/// on any of 14,400 soaks from seeds 1–16 (the error rate's daily rhythm up to ±35 %, weekends
/// up to 1.2x, spikes, incidents, low volume); a floor clean on N soaks still lets about one in
/// N through, so N is five times the report's. The report seeds then check them
/// (bench/results.md). The noise of few failures is the baseline margin's part; what sets
/// nearly every floor is an unrelated 20–40 minute incident on a rate the baseline misjudges by
/// the time of day: 30 minutes average only three 10-minute swings of the rate, and a profile
/// from a day or three has seen each hour once or three times, and maybe no weekend. A day
/// with the profile measured 1.15, three days 1.20: the larger serves both (a longer history
/// never needs more), so the table has one row for them. A day without the profile (one
/// observed live) keeps 1.70, measured when fitted days had no profile yet; measured again
/// with today's detector (a 24 h live row in place of the fitted day) it needs 1.65. A week's
/// 0.70 is measured with the threshold and cap a week gets (`Cusum::limits`); the rest with the
/// others.
const UNPROFILED: [(i64, f64); 3] = [(0, 4.40), (120, 3.40), (24 * 60, 1.70)];
const PROFILED: [(i64, f64); 2] = [(24 * 60, 1.20), (7 * 24 * 60, 0.70)];

/// The profiled floors of a canary's own baseline judged at its control's level (a canary's
/// copy of a built-in signal, `detector::level`). The control takes out what sets the floors
/// above, the time of day and the whole cluster's incidents; what it cannot take out is the
/// canary's own, its nodes' wander and a bad node's spike, which nobody else shares, and which
/// weigh more the more failures a canary has. Measured the same way (`make
/// bench-detect-canary-floors`, bench/canary-floors.md): every soak of seeds 1–16 split into a
/// canary and the rest, once with canaries of 5–50 % of the attempts and once of 2 of 20
/// nodes, each floor the first value clean at both, scanned up from the whole signal's. A week
/// needs 1.00, where 0.70 rolled back 2 of 14,400 soaks; a day measured 1.40 and three days
/// 1.65, and the larger serves both. 30 minutes observed live and 2 hours were clean at the
/// whole signal's floors, which they keep, as does a day observed live (not measured here).
const AT_A_CONTROL: [(i64, f64); 2] = [(24 * 60, 1.65), (7 * 24 * 60, 1.00)];

/// How a signal is judged: on its own, or (a canary's copy of a built-in signal) at its
/// control's level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Judged {
    #[default]
    Alone,
    AtAControl,
}

/// The floors of baselines with the daily profile, as the signal is judged.
fn profiled(judged: Judged) -> &'static [(i64, f64)] {
    match judged {
        Judged::Alone => &PROFILED,
        Judged::AtAControl => &AT_A_CONTROL,
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Floor {
    pub span: Duration,
    /// The smallest relative increase acted on (1.0 = twice the baseline).
    pub min_relative: f64,
    /// Longer spans and what each would support.
    pub better: Vec<(Duration, f64)>,
}

/// How much time the baseline covers.
pub fn span(b: &BaselineStatus) -> Duration {
    match (b.from, b.to) {
        (Some(f), Some(t)) => t - f,
        _ => Duration::zero(),
    }
}

/// The floor a baseline of its span (and with or without a daily profile) puts under the
/// minimum effect, as the signal is judged.
pub fn floor(b: &BaselineStatus, judged: Judged) -> Floor {
    let span = span(b);
    let has_profile = b.hourly.len() == 24;
    let profiled_table = profiled(judged);
    let table: &[(i64, f64)] = if has_profile { profiled_table } else { &UNPROFILED };
    let i = table.iter().rposition(|(m, _)| span >= Duration::minutes(*m)).unwrap_or(0);
    // Longer spans as this baseline would get them: history read at once has the profile from
    // a day on; a live observation never does, however long (`words` points it to history).
    let later: Vec<(i64, f64)> = if has_profile {
        profiled_table[i + 1..].to_vec()
    } else if live(b) {
        UNPROFILED[i + 1..].to_vec()
    } else {
        UNPROFILED[i + 1..]
            .iter()
            .filter(|(m, _)| *m < profiled_table[0].0)
            .chain(profiled_table)
            .copied()
            .collect()
    };
    let better = later.into_iter().map(|(m, f)| (Duration::minutes(m), f)).collect();
    Floor { span, min_relative: table[i].1, better }
}

/// A week or more of history, with the daily profile: the detector's sharper defaults apply
/// (`Cusum::limits`), and the floor is the week's.
pub fn knows_the_week(b: &BaselineStatus) -> bool {
    b.hourly.len() == 24 && span(b) >= Duration::minutes(PROFILED[PROFILED.len() - 1].0)
}

/// Observed interval by interval since the upgrade was created, not read from history.
fn live(b: &BaselineStatus) -> bool {
    b.intervals > 0
}

/// To the minute, or to the second under an hour (a compressed demo observes seconds).
fn rounded(d: Duration) -> Duration {
    if d >= Duration::hours(1) {
        Duration::minutes(d.num_minutes())
    } else {
        Duration::seconds(d.num_seconds())
    }
}

/// A multiple of the baseline, to two decimals without trailing zeros: "2x", "2.65x".
pub(crate) fn times(multiple: f64) -> String {
    let m = format!("{multiple:.2}");
    format!("{}x", m.trim_end_matches('0').trim_end_matches('.'))
}

/// In words, when the floor is above the rule's own minimum effect; for status, the Event and
/// the replay summary.
pub fn words(b: &BaselineStatus, rule_relative: f64, judged: Judged) -> Option<String> {
    let f = floor(b, judged);
    let table = profiled(judged);
    let week = table[table.len() - 1];
    // A canary's own noise is no limit of its baseline that a longer one would lift: what a
    // week acts on there is not worth a warning, unless the rule asks for less than even the
    // whole signal's week supports, which warns of its own week too.
    let whole_week = PROFILED[PROFILED.len() - 1].1;
    let rule_relative = match judged {
        Judged::AtAControl if rule_relative >= whole_week => rule_relative.max(week.1),
        _ => rule_relative,
    };
    let noise = match judged {
        Judged::Alone => "time-of-day variation and noise",
        Judged::AtAControl => "the noise of the canary's own nodes",
    };
    if f.min_relative <= rule_relative {
        return None;
    }
    let x = |rel: f64| times(1.0 + rel.max(rule_relative));
    let verb = if live(b) { "observe" } else { "look back" };
    // The longer baselines, up to the first that acts on the rule's own minimum.
    let mut ladder: Vec<String> = vec![];
    for (d, rel) in &f.better {
        let first = ladder.is_empty();
        ladder.push(format!("{} {}on {}", duration(*d), if first { "or more to act " } else { "" }, x(*rel)));
        if *rel <= rule_relative {
            break;
        }
    }
    let mut then = if ladder.is_empty() { String::new() } else { format!("; {verb} {}", ladder.join(", ")) };
    // Observing longer never learns the time of day; history does (a recording of the built-in
    // signal, or a Prometheus lookback).
    let reached = f.better.iter().any(|(_, rel)| *rel <= rule_relative);
    if live(b) && !reached {
        then += &format!("; {} of history acts on {}", duration(Duration::minutes(week.0)), x(week.1));
    }
    Some(format!(
        "baseline from {}: increases below {} cannot be told from {noise}{then}",
        duration(rounded(f.span)),
        x(f.min_relative),
    ))
}

/// The failures a canary's own signal needs to have to go on: a regression as small as the
/// smallest increase acted on must add at least this many over the canary's soak, at its
/// baseline's error rate and traffic, for the canary to be judged on its own. Measured, not
/// guessed (`make bench-detect-canary-floors`, bench/canary-floors.md): on seeds 1–16, a canary
/// of 2 of 20 nodes with a week of history, the least (in steps of one failure) at which the
/// one-sided 95 % upper bound of the operator's miss rate, over the regressions that hit only
/// the canaries at least that busy, is at most 5 % (there 4.5 % of 7,150). Then scored on seeds
/// never tuned on (`make bench-detect-canary`, `make bench-detect-canary-check`). It is a line
/// between cohorts, not a guarantee for one canary: those adding 20–40 still miss about a
/// third. Measured on 72-hour soaks after a week of history; applied to any soak and baseline.
pub const BUSY_ENOUGH: f64 = 22.0;

/// How many of the regressions that hit only the canary the benchmark's 2-node canaries below
/// `BUSY_ENOUGH` missed (report seeds, bench/control-share-10.md), for the words.
const QUIET_MISSED: &str = "71 %";

/// The longest canary soak suggested, in days: beyond it, a longer soak is no remedy.
const LONGEST_SUGGESTED_SOAK: i64 = 14;

/// How many seconds a baseline saw its signal: a live observation the time it read, history
/// its span.
fn seen_seconds(b: &BaselineStatus) -> f64 {
    let observed = observed_seconds(b);
    if observed > 0.0 { observed } else { span(b).num_seconds() as f64 }
}

/// The failures a regression raising the error rate by `increase` (absolute) adds over `soak`,
/// at the baseline's traffic. Infinite when the baseline says nothing of its traffic.
pub fn added_at(b: &BaselineStatus, increase: f64, soak: Duration) -> f64 {
    let seconds = seen_seconds(b);
    if seconds <= 0.0 {
        return f64::INFINITY;
    }
    b.attempts as f64 / seconds * soak.num_seconds() as f64 * increase
}

/// The stage a canary's copy of a built-in signal is first judged in, as `quiet_words` reads
/// it: its name and soak, the canary's nodes, the nodes a canary there may take (those its
/// nodeSelector selects, or all), and the nodes the DaemonSet runs on, whose rest is the
/// control (0 when unknown). The last two bound the larger canary suggested.
pub struct CanaryStage<'a> {
    pub name: &'a str,
    pub soak: Duration,
    pub nodes: usize,
    pub may_take: usize,
    pub runs_on: usize,
}

/// In words, when a canary's own signal would have too few failures to go on over its stage's
/// soak (`BUSY_ENOUGH`): what a regression at the smallest increase acted on (`increase`,
/// absolute) would add, that nothing is held, and the canary or soak that would bring it to
/// enough, when one is workable. For status and the Event, beside what the baseline can tell
/// (`words`).
pub fn quiet_words(b: &BaselineStatus, increase: f64, stage: &CanaryStage) -> Option<String> {
    // Numbers only: a rate or increase that is not one (a status written by hand) says nothing.
    let rate_ok = b.rate.is_finite() && b.rate >= 0.0;
    if !(rate_ok && increase.is_finite() && increase > 0.0) {
        return None;
    }
    let added = added_at(b, increase, stage.soak);
    if added.is_nan() || added >= BUSY_ENOUGH {
        return None;
    }
    let seen = duration(rounded(Duration::seconds(seen_seconds(b) as i64)));
    let later = "seen only once a later stage widens the upgrade; nothing is held meanwhile";
    if b.attempts <= 0 {
        return Some(format!(
            "the canary's nodes saw no attempts over {seen}: its own signal has nothing to judge, so a regression there is \
             {later}"
        ));
    }
    let regression = if b.rate > 0.0 {
        format!("at {}", times(1.0 + increase / b.rate))
    } else {
        format!("to {:.2} %", 100.0 * increase)
    };
    // Never "about 22" below `BUSY_ENOUGH` (22), nor "about 0".
    let about = if added < 1.0 {
        "fewer than 1".to_string()
    } else {
        format!("about {}", added.round().min(BUSY_ENOUGH - 1.0))
    };
    let mut w = format!(
        "the canary's nodes saw {} attempts over {seen}, {} of them failed: a regression {regression} would add {about} \
         failures over stage {}'s {} soak; below {BUSY_ENOUGH}, the benchmark's 2-node canaries missed {QUIET_MISSED} of \
         the regressions that hit only them, so a regression that small is likely {later}",
        b.attempts,
        b.errors,
        stage.name,
        duration(stage.soak),
    );
    // Traffic grows with the canary's nodes, and failures with the soak. A canary takes only
    // the nodes it may, and one of more than half the DaemonSet's leaves too few for a control.
    let scale = BUSY_ENOUGH / added;
    let mut fixes = vec![];
    let more = (stage.nodes.max(1) as f64 * scale).ceil();
    if added > 0.0 && stage.may_take > 0 && more <= stage.may_take.min(stage.runs_on / 2) as f64 {
        fixes.push(format!("about {more} of the {} nodes a canary may take", stage.may_take));
    }
    let seconds = stage.soak.num_seconds() as f64 * scale;
    if added > 0.0 && seconds <= Duration::days(LONGEST_SUGGESTED_SOAK).num_seconds() as f64 {
        // To the hour from two hours on: a soak is set in hours.
        let longer = if seconds >= 7200.0 {
            Duration::hours((seconds / 3600.0).ceil() as i64)
        } else {
            Duration::seconds(seconds.ceil() as i64)
        };
        fixes.push(format!("a soak of {}", duration(longer)));
    }
    // Stages cannot be changed once the upgrade exists: the remedy is a new one.
    if !fixes.is_empty() {
        let comma = if fixes.len() > 1 { "," } else { "" };
        w += &format!(
            "; a new MaintenanceUpgrade whose stage has {}{comma} would bring it to {BUSY_ENOUGH} (stages cannot be \
             changed once an upgrade exists)",
            fixes.join(", or ")
        );
    }
    Some(w)
}

#[cfg(test)]
#[path = "reach_tests.rs"]
mod tests;
