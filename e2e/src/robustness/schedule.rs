//! The fault schedule of a robustness run, pure: the same seed gives the same faults, in the
//! same order, at the same offsets, so that a failing run can be replayed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// One fault the run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the replica that holds the Lease; it is started again after `restart_after`.
    KillLeader,
    KillFollower,
    /// SIGTERM, as the kubelet sends it on a rolling update or a drain.
    TermLeader,
    TermFollower,
    /// SIGKILL the API server; it starts again after `hold`.
    RestartApiServer,
    /// Compact etcd to its current revision: every watch that resumes from an older version
    /// gets 410 Gone and relists.
    CompactEtcd,
    /// The leader's Lease renewals refused by admission for `hold` (its other writes pass).
    RefuseRenewals,
    /// Every status write that stores a final phase refused for `hold`.
    RefuseFinalWrites,
    /// A replica's traffic to the API server slowed (each chunk up to a second late) for `hold`.
    DelayTraffic,
    /// A replica's connections to the API server cut, and refused for `hold`.
    CutTraffic,
    /// The leader's traffic held for `hold` (its renewals and writes hang unanswered), then cut.
    HangLeader,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::TermLeader,
        Fault::TermFollower,
        Fault::RestartApiServer,
        Fault::CompactEtcd,
        Fault::RefuseRenewals,
        Fault::RefuseFinalWrites,
        Fault::DelayTraffic,
        Fault::CutTraffic,
        Fault::HangLeader,
    ];
}

/// A fault, when it comes (from the run's start), and how long it lasts: the time a killed
/// replica stays down, the API server's outage, or how long a policy refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub fault: Fault,
    pub hold: Duration,
}

/// `count` faults, the first at `first`, then one every `gap` (±40 %, so that faults fall at
/// every point of a decision's cycle), each of a kind and a length drawn from `seed`.
pub fn schedule(seed: u64, count: usize, first: Duration, gap: Duration) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut at = first;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let fault = Fault::ALL[rng.random_range(0..Fault::ALL.len())];
        let hold_ms = match fault {
            Fault::KillLeader | Fault::KillFollower | Fault::TermLeader | Fault::TermFollower => {
                rng.random_range(0..4_000)
            }
            Fault::RestartApiServer => rng.random_range(1_000..6_000),
            Fault::CompactEtcd => 0,
            Fault::RefuseRenewals | Fault::RefuseFinalWrites | Fault::DelayTraffic => {
                rng.random_range(4_000..20_000)
            }
            Fault::CutTraffic => rng.random_range(1_000..10_000),
            Fault::HangLeader => rng.random_range(5_000..25_000),
        };
        out.push(Planned { at, fault, hold: Duration::from_millis(hold_ms) });
        let jitter = rng.random_range(0.6..1.4);
        at += gap.mul_f64(jitter);
    }
    out
}

/// `count` waits of up to `max`, drawn from `seed` apart from the schedule's own draws: how
/// long each upgrade deleted mid-soak soaks first.
pub fn delays(seed: u64, count: usize, max: Duration) -> Vec<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.rotate_left(32) ^ 0x5eed);
    (0..count).map(|_| max.mul_f64(rng.random_range(0.0..1.0))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_schedule_and_another_seed_does_not() {
        let a = schedule(7, 30, Duration::from_secs(10), Duration::from_secs(8));
        assert_eq!(a, schedule(7, 30, Duration::from_secs(10), Duration::from_secs(8)));
        assert_ne!(a, schedule(8, 30, Duration::from_secs(10), Duration::from_secs(8)));
        assert_eq!(a[0].at, Duration::from_secs(10));
        assert!(a.windows(2).all(|w| w[1].at > w[0].at), "in order");
    }

    #[test]
    fn a_long_schedule_draws_every_kind_of_fault() {
        let faults = schedule(1, 200, Duration::ZERO, Duration::from_secs(1));
        for kind in Fault::ALL {
            assert!(faults.iter().any(|p| p.fault == kind), "{kind:?} never drawn");
        }
    }
}
