//! Decide step, pure: when is the maintenance window open? Recurring local-time windows in an
//! IANA time zone (DST-correct), minus exclusions, clipped to notBefore/deadline.

use crate::crd::{self, Weekday};
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A window spec parsed and checked once, ready to answer questions about instants.
#[derive(Clone, Debug)]
pub struct Schedule {
    tz: Tz,
    recurring: Vec<(Vec<chrono::Weekday>, NaiveTime, Duration)>,
    exclusions: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
    not_before: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Open now; `closes_at` is None when it never closes.
    Open { closes_at: Option<DateTime<Utc>> },
    /// Closed now; `opens_at` is None when it never opens again.
    Closed { opens_at: Option<DateTime<Utc>>, why: String },
}

/// How far ahead to look for the next opening. A window that opens less than once in two years
/// is as good as never.
const HORIZON_DAYS: i64 = 731;

impl Schedule {
    /// No window: always open.
    pub fn always() -> Self {
        Schedule {
            tz: chrono_tz::UTC,
            recurring: vec![],
            exclusions: vec![],
            not_before: None,
            deadline: None,
        }
    }

    pub fn parse(spec: Option<&crd::Window>) -> Result<Self, String> {
        let Some(w) = spec else { return Ok(Self::always()) };
        let tz: Tz = w.time_zone.parse().map_err(|_| format!("unknown time zone {:?}", w.time_zone))?;
        let mut recurring = vec![];
        for r in &w.recurring {
            let start = NaiveTime::parse_from_str(&r.start, "%H:%M")
                .map_err(|_| format!("window start {:?} is not HH:MM", r.start))?;
            let days = r.days.iter().map(|d| to_chrono(*d)).collect();
            let length = r.duration.parse()?;
            if length > Duration::weeks(1) {
                return Err(format!(
                    "a recurring window of {} is longer than a week (168h); for a window that is always open, leave spec.window out",
                    r.duration.0
                ));
            }
            recurring.push((days, start, length));
        }
        let mut exclusions = vec![];
        for e in &w.exclusions {
            if e.end <= e.start {
                return Err(format!("exclusion {} ends before it starts", e.name.as_deref().unwrap_or("")));
            }
            exclusions.push((e.start, e.end, e.name.clone().unwrap_or_else(|| "exclusion".into())));
        }
        Ok(Schedule { tz, recurring, exclusions, not_before: w.not_before, deadline: w.deadline })
    }

    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// The longest recurring opening, adjacent openings merged (Sat and Sun 00:00 for 24h is one
    /// opening of 48h), ignoring exclusions; None when there are none (always open).
    pub fn longest_opening(&self) -> Option<Duration> {
        let monday = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single()?;
        self.occurrences(monday).into_iter().filter_map(|(s, e)| Some(e? - s)).max()
    }

    /// Is the window open at `now`, until when, or when does it open next?
    pub fn state_at(&self, now: DateTime<Utc>) -> WindowState {
        if let Some(d) = self.deadline
            && now >= d
        {
            return WindowState::Closed {
                opens_at: None,
                why: format!("the deadline {} has passed", crate::timefmt::at(d)),
            };
        }
        // Walk the open intervals in time order; each is cut by exclusions and the bounds.
        let from = self.not_before.filter(|nb| now < *nb).unwrap_or(now);
        match self.next_open_interval(from) {
            Some((start, end)) if start <= now => WindowState::Open { closes_at: end },
            Some((start, _)) => WindowState::Closed { opens_at: Some(start), why: self.closed_reason(now) },
            None => WindowState::Closed { opens_at: None, why: self.closed_reason(now) },
        }
    }

    fn closed_reason(&self, now: DateTime<Utc>) -> String {
        if let Some(nb) = self.not_before
            && now < nb
        {
            return format!("not before {}", crate::timefmt::at(nb));
        }
        if let Some((_, _, name)) = self.exclusions.iter().find(|(s, e, _)| *s <= now && now < *e) {
            return format!("inside exclusion {name:?}");
        }
        "outside the recurring maintenance window".into()
    }

    /// The first open interval that ends after `from` (start may be before `from`).
    fn next_open_interval(&self, from: DateTime<Utc>) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        if self.recurring.is_empty() {
            return self.first_open(from, vec![(from, None)]);
        }
        // A week of occurrences at a time: a freeze may swallow several weeks of them.
        let mut scan = from;
        let until = self
            .deadline
            .unwrap_or(from + Duration::days(HORIZON_DAYS))
            .min(from + Duration::days(HORIZON_DAYS));
        while scan < until {
            let bases = self.occurrences(scan);
            let last_end = bases.last()?.1;
            if let Some(open) = self.first_open(from, bases) {
                return Some(open);
            }
            scan = last_end?;
        }
        None
    }

    /// The first of `bases` (occurrences in time order) left open by the exclusions and bounds.
    fn first_open(
        &self,
        from: DateTime<Utc>,
        bases: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    ) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        for (start, end) in bases {
            let mut start = start;
            // Cut away exclusions at the start of the interval, repeatedly (they may chain).
            loop {
                let cut = self
                    .exclusions
                    .iter()
                    .filter(|(s, e, _)| *s <= start.max(from) && start.max(from) < *e)
                    .map(|(_, e, _)| *e)
                    .max();
                match cut {
                    Some(e) => start = e,
                    None => break,
                }
                if end.is_some_and(|end| start >= end) {
                    break;
                }
            }
            // Not before notBefore, even inside an opening that began earlier.
            if let Some(nb) = self.not_before {
                start = start.max(nb);
            }
            if end.is_some_and(|end| start >= end) {
                continue;
            }
            // The interval ends at its own end, the next exclusion inside it, or the deadline.
            let mut stop = end;
            let effective_start = start.max(from);
            for (s, _, _) in &self.exclusions {
                if *s > effective_start && stop.is_none_or(|e| *s < e) {
                    stop = Some(*s);
                }
            }
            if let Some(d) = self.deadline {
                if d <= effective_start {
                    return None;
                }
                if stop.is_none_or(|e| d < e) {
                    stop = Some(d);
                }
            }
            return Some((start, stop));
        }
        None
    }

    /// Recurring occurrences (UTC start, UTC end) that end after `from`, in start order, merged
    /// where they overlap; None: one that never ends (openings that cover the week round the
    /// clock, past the horizon).
    fn occurrences(&self, from: DateTime<Utc>) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        let longest = self.recurring.iter().map(|r| r.2).max().unwrap_or(Duration::zero());
        // A day more than the longest opening: across a spring-forward change its local span is
        // an hour longer, and may reach one more midnight.
        let first_day = from.with_timezone(&self.tz).date_naive() - Duration::days(2 + longest.num_days());
        let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = vec![];
        let mut day = first_day;
        let last_day = first_day + Duration::days(HORIZON_DAYS);
        // Stop a week after the first hit: later days cannot start earlier.
        let mut stop_after: Option<NaiveDate> = None;
        while day <= last_day && stop_after.is_none_or(|s| day <= s) {
            for (s, e) in self.on_day(day) {
                if e > from {
                    out.push((s, e));
                    stop_after.get_or_insert(day + Duration::days(7));
                }
            }
            day += Duration::days(1);
        }
        out.sort();
        let mut merged: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = vec![];
        for (s, e) in out {
            match merged.last_mut() {
                Some((_, Some(end))) if s <= *end => *end = (*end).max(e),
                _ => merged.push((s, Some(e))),
            }
        }
        // The last opening found goes on into the days after it while their openings start
        // within it (Sun, Mon and Tue each 24h are one of 72h); one that lasts past the horizon
        // never ends (the week covered round the clock: a change to winter time leaves an hour's
        // gap, since lengths are elapsed time).
        if let Some((_, tail)) = merged.last_mut()
            && let Some(mut end) = *tail
        {
            loop {
                if day > last_day {
                    *tail = None;
                    break;
                }
                // In start order, each against the end so far: one that only the day's earlier
                // opening reaches counts too.
                let mut openings: Vec<_> = self.on_day(day).collect();
                openings.sort();
                for (s, e) in openings {
                    if s <= end {
                        end = end.max(e);
                    }
                }
                *tail = Some(end);
                if end < self.resolve_local(day + Duration::days(1), NaiveTime::MIN) {
                    break;
                }
                day += Duration::days(1);
            }
        }
        merged
    }

    /// The recurring openings that start on local `day`, as (UTC start, UTC end).
    fn on_day(&self, day: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.recurring.iter().filter(move |(days, _, _)| days.contains(&day.weekday())).map(
            move |(_, start, dur)| {
                let s = self.resolve_local(day, *start);
                (s, s + *dur)
            },
        )
    }

    /// A local wall-clock time on a date as an instant. In the autumn overlap the first (earlier)
    /// instant is used; in the spring gap the window opens when the clocks jump forward.
    fn resolve_local(&self, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let mut naive = day.and_time(time);
        loop {
            match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
                // Inside a gap: the first wall-clock minute that exists is the jump itself.
                LocalResult::None => naive += Duration::minutes(1),
            }
        }
    }
}

fn to_chrono(d: Weekday) -> chrono::Weekday {
    match d {
        Weekday::Mon => chrono::Weekday::Mon,
        Weekday::Tue => chrono::Weekday::Tue,
        Weekday::Wed => chrono::Weekday::Wed,
        Weekday::Thu => chrono::Weekday::Thu,
        Weekday::Fri => chrono::Weekday::Fri,
        Weekday::Sat => chrono::Weekday::Sat,
        Weekday::Sun => chrono::Weekday::Sun,
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
