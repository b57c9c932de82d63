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
