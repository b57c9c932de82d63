//! Unit tests of `refusals.rs`.

use super::*;
use crate::crd::WorkloadKind;

fn key(name: &str) -> TargetKey {
    TargetKey { kind: WorkloadKind::DaemonSet, namespace: "ops".into(), name: name.into() }
}

fn at(m: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + chrono::Duration::minutes(m)
}

/// Each target's refusals are dated from the first in a row, side by side (two targets refused
/// in turn must not restart each other's clock), and forgotten when its write goes through.
#[test]
fn refusals_are_dated_per_target_from_the_first_in_a_row() {
    let r = Refusals::default();
    assert!(r.of("u").is_empty());
    r.refused("u", &key("a"), at(0));
    r.refused("u", &key("b"), at(1));
    r.refused("u", &key("a"), at(5));
    assert_eq!(r.of("u")[&key("a")], Refused { since: at(0), last: at(5) });
    assert_eq!(r.of("u")[&key("b")], Refused { since: at(1), last: at(1) });
    r.cleared("u", &key("a"));
    assert_eq!(r.of("u").keys().collect::<Vec<_>>(), [&key("b")]);
    r.forget_all_but(&HashSet::new());
    assert!(r.of("u").is_empty());
}
