//! Transition tests: the built-in signal's canary copy on a DaemonSet canary's nodes.

use crate::decide::test_world::*;

/// The connector on six nodes, a canary on two, a week of the built-in signal recorded (for the
/// whole cluster and for the canary's nodes alike), 600 new pods a minute.
fn world() -> World {
    let mut w = World::new(canary_spec(Portion::Count(2), None));
    // Long enough for a CUSUM capped per bucket to reach its threshold.
    w.obs.spec.stages[0].soak = Duration_("3h");
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    w.recorded_minutes = 7 * 24 * 60;
    w.attempts_per_minute = 600;
    w
}

fn canary_entry(w: &World) -> &SignalStatus {
    let a = w.obs.status.analysis.iter().find(|a| a.name == "pod-start-failures@canary");
    a.unwrap_or_else(|| panic!("no canary entry: {:?}", w.obs.status.analysis))
}

/// Whether the canary's nodes run the new image.
fn canary_upgraded(w: &World) -> bool {
    w.obs.targets[&key("connector")]
        .as_ref()
        .unwrap()
        .pods
        .iter()
        .flatten()
        .any(|p| p.images[0].1 == "connector:2.0")
}

#[test]
fn the_canary_signal_counts_the_nodes_the_canary_will_take_from_its_baseline_on() {
    let mut w = world();
    let listed = |w: &World| w.obs.status.analysis.iter().any(|a| a.name.ends_with("@canary"));
    for _ in 0..5 {
        if !listed(&w) {
            w.step();
        }
    }
    assert!(w.obs.status.changed_at.is_none(), "before any change");
    assert_eq!(w.obs.status.analysis[0].name, "pod-start-failures", "the signal it copies first");
    let a = canary_entry(&w);
    assert_eq!(a.nodes, ["node-1", "node-2"], "the first two by name, before any change");
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    let a = canary_entry(&w);
    assert!(a.nodes.is_empty(), "read no more once the fleet stage runs: {a:?}");
    assert!(a.reason.contains("handed over"), "{}", a.reason);
}

#[test]
fn a_regression_of_the_canarys_nodes_alone_is_reverted_on_its_own_signal() {
    let mut w = world();
    // 2x on the canary's two nodes: 1.33x over the whole cluster, which the cluster-wide
    // signal acts on hours later, if at all (below the 1.7x it looks for).
    w.canary_error_rate = Some(Box::new(|w| if canary_upgraded(w) { 0.02 } else { 0.01 }));
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let r = w.obs.status.rollback.clone().unwrap();
    assert!(r.message.contains("pod-start-failures@canary"), "{}\n{:#?}", r.message, canary_entry(&w));
    assert!(r.message.contains("on the canary's nodes (node-1, node-2)"), "{}", r.message);
}

#[test]
fn a_rise_the_whole_cluster_shares_is_not_the_canarys() {
    let mut w = world();
    // An incident of the whole cluster from the moment the canary runs: 2.5x everywhere. The
    // canary's copy, at its control's level, does not blame the canary for it.
    let bad = |w: &World| if canary_upgraded(w) { 0.025 } else { 0.01 };
    w.error_rate = Box::new(bad);
    w.canary_error_rate = Some(Box::new(bad));
    w.run_until(Duration::hours(6), terminal);
    let a = canary_entry(&w);
    assert_ne!(a.verdict, Verdict::Regression, "{}", a.reason);
    assert!(a.reason.contains("handed over") || a.reason.contains("runs at 2."), "{}", a.reason);
}
