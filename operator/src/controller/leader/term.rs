//! Decide step of leader election, pure: what this replica does next with the Lease, from what it
//! last read of it, on its own monotonic clock. No replica's wall clock is compared with
//! another's. A follower takes the Lease only once it has seen it unchanged for the Lease's whole
//! duration (as client-go does); the leader's term ends earlier than that by a margin, counted
//! from when its last successful renewal was sent. So a follower never takes over while the
//! leader may still write, whatever the clocks say.

use std::time::{Duration, Instant};

/// What one read of the Lease says.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    /// Who holds it; None once released.
    pub holder: Option<String>,
    /// The Lease's resourceVersion: any renewal changes it.
    pub version: String,
    /// How long it stays held without a renewal, as its holder wrote it.
    pub duration: Duration,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// There is no Lease: create it, held by this replica.
    Create,
    /// This replica holds it: renew it.
    Renew,
    /// It is free, released or expired: take it.
    Take,
    /// Another replica holds it: read it again after this long, at most.
    Wait(Duration),
}

/// The shortest lease duration a replica may run with (`run --lease-duration`): its term, two
/// thirds of it, must outlast a renewal's round trip by far.
pub const MIN_DURATION: Duration = Duration::from_secs(5);

/// The longest lease duration a replica may run with (`run --lease-duration`).
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// The renewal and read interval of a Lease of `duration`: five tries before the term ends.
pub fn period(duration: Duration) -> Duration {
    (duration / 5).max(Duration::from_millis(200))
}

/// How much sooner than a follower may take over the leader stops writing: a third of the
/// duration, for writes already in flight and for clocks that run at slightly different rates.
pub fn margin(duration: Duration) -> Duration {
    duration / 3
}

/// When the term proven by a renewal sent at `sent` ends.
pub fn term_end(sent: Instant, duration: Duration) -> Instant {
    sent + duration - margin(duration)
}

/// Since when the Lease has been seen unchanged: a follower's only measure of its age.
#[derive(Clone, Debug)]
pub struct Sighting {
    seen: Option<(Option<String>, String)>,
    since: Instant,
}

impl Sighting {
    pub fn new(now: Instant) -> Self {
        Sighting { seen: None, since: now }
    }

    /// Record a read at `now`: the clock restarts whenever the holder or the version moved.
    pub fn saw(&mut self, lease: Option<&Held>, now: Instant) {
        let key = lease.map(|l| (l.holder.clone(), l.version.clone()));
        if key != self.seen {
            self.seen = key;
            self.since = now;
        }
    }

    pub fn since(&self) -> Instant {
        self.since
    }
}

/// What `me` does next, having read `lease`, unchanged since `unchanged_since`, at `now`.
///
/// Even a Lease that is free is taken only after a wait, since its last holder may still have
/// writes in flight: one released on the way out, after the margin a term keeps for them; one
/// that is gone (deleted by hand, to force an election), after the whole duration, as one that
/// expired: its holder's renewals may be failing in ways that do not tell it the Lease is gone.
pub fn next(me: &str, lease: Option<&Held>, unchanged_since: Instant, now: Instant, ours: Duration) -> Next {
    let wait = |d: Duration, then: Next| {
        let free_at = unchanged_since + d;
        if now >= free_at { then } else { Next::Wait(free_at - now) }
    };
    let Some(l) = lease else { return wait(ours, Next::Create) };
    match l.holder.as_deref() {
        Some(h) if h == me => Next::Renew,
        None | Some("") => wait(margin(ours), Next::Take),
        // At least this replica's own duration, so that a holder that wrote a short one does not
        // shorten the wait; at most the longest any replica may have (`MAX_DURATION`), so that
        // one written huge by hand cannot hold it for ever.
        Some(_) => wait(l.duration.clamp(ours, MAX_DURATION.max(ours)), Next::Take),
    }
}

#[cfg(test)]
#[path = "term_tests.rs"]
mod tests;
