//! Transition tests: an upgrade that names workloads outside its namespace changes nothing unless
//! its namespace is trusted.

use super::super::test_world::*;

#[test]
fn an_untrusted_namespace_cannot_change_another_namespace() {
    let mut w = World::new(spec());
    w.obs.trusted_namespaces = vec!["platform".into()];
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::minutes(1);
    }
    assert!(w.effects.is_empty(), "nothing claimed or changed: {:?}", w.effects);
    let blocked = w.obs.status.conditions.iter().find(|c| c.type_ == ct::BLOCKED).unwrap();
    assert_eq!((blocked.status.as_str(), blocked.reason.as_str()), ("True", reason::CROSS_NAMESPACE));
    assert!(blocked.message.contains("kube-system/connector-canary"), "{}", blocked.message);
    assert!(blocked.message.contains("only upgrades created in platform"), "{}", blocked.message);
    let announced: Vec<_> = w.events.iter().filter(|e| e.starts_with(reason::CROSS_NAMESPACE)).collect();
    assert_eq!(announced.len(), 1, "one Event, not one per look: {:?}", w.events);
    // Trusting the namespace lets it go on.
    w.obs.trusted_namespaces.push("ops".into());
    w.step();
    assert!(matches!(w.effects.first(), Some(Effect::Claim { .. })), "{:?}", w.effects);
}

#[test]
fn its_own_namespace_needs_no_trust() {
    let mut s = spec();
    for c in s.stages.iter_mut().flat_map(|s| s.components.iter_mut()) {
        c.namespace = None;
    }
    let mut w = World::new(s);
    w.obs.namespace = "kube-system".into();
    w.obs.trusted_namespaces = vec![];
    w.step();
    assert!(matches!(w.effects.first(), Some(Effect::Claim { .. })), "{:?}", w.effects);
}

#[test]
fn trust_withdrawn_mid_upgrade_reverts_and_releases_what_it_holds_elsewhere() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    // The installer takes the platform namespace off trustedNamespaces, and restarts the
    // operator. Rollback settings the spec chose do not hold its foreign changes in place.
    w.obs.spec.rollback.automatic = false;
    w.obs.trusted_namespaces = vec![];
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let rollback = w.obs.status.rollback.clone().unwrap();
    assert_eq!(rollback.reason, reason::TRUST_WITHDRAWN);
    for said in ["namespace ops is no longer trusted", "kube-system/connector-canary", "trustedNamespaces"] {
        assert!(rollback.message.contains(said), "{said:?} in {}", rollback.message);
    }
    assert_eq!(w.image("connector-canary"), "connector:1.0", "reverted");
    assert_eq!(w.image("connector"), "connector:1.0", "the second stage never started");
    let marked: Vec<_> = w.obs.targets.iter().filter(|(_, t)| t.as_ref().unwrap().owner.is_some()).collect();
    assert!(marked.is_empty(), "every target released: {marked:?}");
    assert!(!w.events.iter().any(|e| e.starts_with(reason::TARGET_DELETED)), "{:?}", w.events);
}

#[test]
fn trust_withdrawn_from_an_upgrade_that_only_claimed_releases_its_targets() {
    let mut w = World::new(spec());
    w.step();
    w.obs.now += Duration::seconds(1);
    w.step();
    assert!(w.obs.status.claimed_at.is_some(), "{:?}", w.effects);
    assert!(w.image_sets().is_empty(), "{:?}", w.effects);
    w.obs.trusted_namespaces = vec![];
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert!(w.image_sets().is_empty(), "nothing set: {:?}", w.effects);
    assert!(w.obs.targets.values().flatten().all(|t| t.owner.is_none()), "released");
}

/// After trust is withdrawn, a target in another namespace is observed only while it carries
/// this upgrade's mark (observe leaves any other out, unread): one that no longer does is not
/// taken for deleted, nor touched, and the upgrade still ends.
#[test]
fn trust_withdrawn_a_foreign_target_no_longer_marked_is_left_alone_not_taken_for_deleted() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    w.obs.trusted_namespaces = vec![];
    w.obs.targets.clear();
    let before = w.effects.len();
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::TRUST_WITHDRAWN);
    assert!(w.effects[before..].is_empty(), "nothing sent: {:?}", &w.effects[before..]);
    assert!(!w.events.iter().any(|e| e.starts_with(reason::TARGET_DELETED)), "{:?}", w.events);
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict);
    let said = c.message.clone().unwrap();
    assert!(said.contains("no longer carries this upgrade's owner mark"), "{said}");
    assert!(w.obs.status.message.contains("not reverted"), "{}", w.obs.status.message);
}

/// Claimed, but the status that said so was lost (or never written: the claim stopped at a
/// target another upgrade held): the targets' marks are what count.
#[test]
fn trust_withdrawn_targets_marked_but_not_in_the_status_are_released() {
    let mut w = World::new(spec());
    w.step();
    assert_eq!(w.claimed(), ["connector", "connector-canary"], "{:?}", w.effects);
    w.obs.status = MaintenanceUpgradeStatus::default();
    w.written = None;
    w.obs.trusted_namespaces = vec![];
    w.obs.now += Duration::seconds(1);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::TRUST_WITHDRAWN);
    assert!(w.obs.targets.values().flatten().all(|t| t.owner.is_none()), "released");
    assert!(w.image_sets().is_empty(), "{:?}", w.effects);
}

/// What is written to a workload the upgrade may no longer change comes from the records the
/// operator left on it, never from the status: without them, it is left alone and said.
#[test]
fn trust_withdrawn_a_foreign_target_without_its_known_good_record_is_not_reverted_from_the_status() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    w.obs.trusted_namespaces = vec![];
    w.target_mut("connector-canary").known_good = None;
    let before = w.effects.len();
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let images: Vec<_> = w.effects[before..]
        .iter()
        .filter(|e| matches!(e, Effect::SetImage { .. } | Effect::SetStrategy { .. }))
        .collect();
    assert!(images.is_empty(), "nothing written from the status: {images:?}");
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict, "{:?}", c.message);
    assert!(c.message.as_deref().unwrap().contains("no readable known-good record"), "{:?}", c.message);
}

/// An untrusted upgrade whose spec cannot be used is told it may not read other namespaces,
/// not which of them exist: what observe found of namespaces it may not name is never said
/// (with names to guess and a bad selector, the message told the names that exist).
#[test]
fn an_unusable_spec_from_an_untrusted_namespace_says_nothing_of_other_namespaces() {
    let mut s = spec();
    for c in s.stages.iter_mut().flat_map(|s| s.components.iter_mut()) {
        c.namespace = None;
    }
    s.analysis.signals = builtin_selecting("(");
    s.analysis.signals[0].kubernetes.as_mut().unwrap().namespaces = vec!["guess-1".into(), "guess-2".into()];
    let mut w = World::new(s);
    w.obs.namespace = "team-a".into();
    w.obs.trusted_namespaces = vec![];
    w.obs.spec_problems =
        vec!["signal pod-start-failures: namespace guess-1 does not exist; create it".into()];
    w.step();
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(blocked.reason, reason::CROSS_NAMESPACE, "{}", blocked.message);
    assert!(!blocked.message.contains("guess-1 does not exist"), "{}", blocked.message);
    assert!(w.effects.is_empty(), "{:?}", w.effects);
}
