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

/// The multiple of its baseline a signal's reason says it acts on: "regression at" over the
/// baseline raised by its margin.
fn acts_on(reason: &str) -> f64 {
    let after = |mark: &str| -> f64 {
        let rest =
            &reason[reason.find(mark).unwrap_or_else(|| panic!("{mark:?} in {reason}")) + mark.len()..];
        rest[..rest.find('%').unwrap()].parse().unwrap()
    };
    after("regression at ") / (after("against a baseline of ") * (1.0 + after("(±") / 100.0))
}

#[test]
fn the_canarys_copy_acts_on_what_a_canary_judged_at_its_control_supports() {
    let mut w = world();
    w.run_until(Duration::hours(2), |w| {
        canary_entry_opt(w).is_some_and(|a| a.reason.contains("regression at"))
    });
    let whole = w.obs.status.analysis.iter().find(|a| a.name == "pod-start-failures").unwrap();
    assert!((acts_on(&whole.reason) - 1.7).abs() < 0.03, "the rule's 1.7x: {}", whole.reason);
    // Its own nodes' wander, which no control shares, needs 2x (`reach`, measured); a longer
    // baseline would not lift it, so it is no baseline limit to warn of.
    let canary = canary_entry(&w);
    assert!((acts_on(&canary.reason) - 2.0).abs() < 0.03, "{}", canary.reason);
    assert_eq!(canary.baseline_limit, None);
}

#[test]
fn a_canary_too_quiet_to_be_judged_on_its_own_is_said_to_be_before_anything_changes() {
    // Thirty new pods a minute on six nodes at 10 %, a 10-minute soak: the canary's two nodes
    // see ten a minute, so a regression at the 2x it acts on adds 10 failures over its soak.
    let mut w = world();
    w.attempts_per_minute = 30;
    w.error_rate = Box::new(|_| 0.1);
    w.obs.spec.stages[0].soak = Duration_("10m");
    // The window opens tomorrow: the baseline is read before it, and the canary still waits.
    w.obs.spec.window = Some(tue_thu_window());
    let limit = |w: &World| canary_entry_opt(w).and_then(|a| a.baseline_limit.clone());
    w.run_until(Duration::days(2), |w| limit(w).is_some());
    assert!(w.obs.status.changed_at.is_none(), "said while the baseline is measured");
    let said = limit(&w).unwrap();
    assert!(
        said.contains("a regression at 2x would add about 10 failures over stage canary's 10m soak"),
        "{said}"
    );
    assert!(said.contains("nothing is held meanwhile"), "{said}");
    // Four of the six nodes would leave too few for a control: only the soak is suggested.
    assert!(said.contains("whose stage has a soak of 22m would bring it to 22"), "{said}");
    w.run_until(Duration::days(1), |w| w.obs.status.changed_at.is_some());
    w.step();
    let warned = w.events.iter().filter(|e| e.starts_with(reason::BASELINE_LIMIT)).collect::<Vec<_>>();
    assert!(
        warned.len() == 1
            && warned[0].contains("pod-start-failures@canary")
            && warned[0].contains("10 failures"),
        "{:?}",
        w.events
    );
    // Once the canary has handed over, the copy is read no more and says nothing more.
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(canary_entry(&w).baseline_limit, None);
}

/// The quiet world of the test above: thirty new pods a minute on six nodes at 10 %, a canary
/// on two whose stage soaks 10 minutes, a window that opens tomorrow.
fn quiet_world(then: Option<Portion>) -> World {
    let mut w = World::new(canary_spec(Portion::Count(2), then));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    w.recorded_minutes = 7 * 24 * 60;
    w.attempts_per_minute = 30;
    w.error_rate = Box::new(|_| 0.1);
    w.obs.spec.stages[0].soak = Duration_("10m");
    w.obs.spec.window = Some(tue_thu_window());
    w
}

fn quiet_words(w: &World) -> Option<String> {
    canary_entry_opt(w).and_then(|a| a.baseline_limit).filter(|l| l.contains("failures over stage"))
}

#[test]
fn a_canary_in_a_later_stage_is_weighed_over_its_own_stages_soak() {
    // Behind a first stage of another DaemonSet that soaks an hour (at its traffic, 60
    // failures: busy enough), the canary's own 10 minutes are what it is weighed over.
    let mut w = quiet_world(None);
    let mut first = stage("first", vec![component("connector-canary", "connector:2.0")]);
    first.soak = Duration_("1h");
    w.obs.spec.stages.insert(0, first);
    w.run_until(Duration::days(2), |w| quiet_words(w).is_some());
    assert!(w.obs.status.changed_at.is_none(), "said before anything changes");
    let said = quiet_words(&w).unwrap();
    assert!(said.contains("would add about 10 failures over stage canary's 10m soak"), "{said}");
    // The Event comes with the first change, the other DaemonSet's, and speaks of the canary's.
    w.run_until(Duration::days(1), |w| w.obs.status.changed_at.is_some());
    w.step();
    let warned: Vec<_> = w.events.iter().filter(|e| e.starts_with(reason::BASELINE_LIMIT)).collect();
    assert!(
        warned.iter().any(|e| e.contains("pod-start-failures@canary") && e.contains("canary's 10m soak")),
        "{warned:?}"
    );
}

#[test]
fn a_widened_canary_is_not_weighed_on_its_first_nodes_traffic() {
    // Two nodes, then four: once the first stage has passed, the wider canary has more traffic
    // than its first nodes' baseline says, and nothing is said of it.
    let mut w = quiet_world(Some(Portion::Count(4)));
    // As short as the first: weighed on the first nodes' traffic, it would be said again.
    w.obs.spec.stages[1].soak = Duration_("10m");
    w.run_until(Duration::days(2), |w| quiet_words(w).is_some());
    w.run_until(Duration::days(1), |w| w.obs.status.stages[1].phase == StagePhase::Soaking);
    w.step();
    let a = canary_entry(&w);
    assert_eq!(a.nodes.len(), 4, "{a:?}");
    assert_eq!(quiet_words(&w), None, "{:?}", a.baseline_limit);
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

#[test]
fn status_canary_names_the_nodes_and_the_revision_a_prometheus_query_follows() {
    let mut w = world();
    w.look();
    assert!(w.obs.status.canary.is_none(), "only for a query that names them");
    let mut w = world();
    w.obs.spec.analysis = spec_with_history().analysis;
    w.obs.spec.analysis.signals[0].prometheus.as_mut().unwrap().errors =
        r#"sum(x{node=~"$canary_nodes", rev=~"$canary_revision"})"#.into();
    let canary = |w: &World| w.obs.status.canary.clone().unwrap_or_default();
    w.run_until(Duration::minutes(30), |w| !canary(w).nodes.is_empty());
    assert!(w.obs.status.changed_at.is_none());
    assert_eq!(canary(&w).nodes, ["node-1", "node-2"], "the nodes it will take");
    assert_eq!(canary(&w).revisions, [revision_of("connector:1.0")], "the revision they run now");
    w.run_until(Duration::hours(1), |w| w.obs.status.stages[0].phase == StagePhase::Soaking);
    assert_eq!(canary(&w).nodes, ["node-1", "node-2"]);
    assert_eq!(canary(&w).revisions, [revision_of("connector:2.0")], "the new revision's");
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(canary(&w).nodes, ["node-1", "node-2"], "a Prometheus query keeps its canary");
}

/// Look until the look that retires the copy, calling `before_each` on the copy still running
/// before every look (with the time of that look): the copy before that look and after it.
fn the_hand_over_look(
    w: &mut World,
    mut before_each: impl FnMut(&mut SignalStatus, DateTime<Utc>),
) -> (SignalStatus, SignalStatus) {
    for _ in 0..2000 {
        let now = w.obs.now;
        if let Some(a) =
            w.obs.status.analysis.iter_mut().find(|a| a.name.ends_with("@canary") && !a.nodes.is_empty())
        {
            before_each(a, now);
        }
        let before = canary_entry_opt(w);
        w.look();
        if let (Some(b), Some(a)) = (before, canary_entry_opt(w))
            && !b.nodes.is_empty()
            && a.nodes.is_empty()
        {
            return (b, a);
        }
    }
    panic!("never handed over: {}", w.obs.status.message);
}

#[test]
fn the_look_that_hands_over_does_not_judge_the_copy_it_retires() {
    let mut w = world();
    // A look whose samples were read while the canary ran, decided as it hands over: every look
    // has a sample of the copy due (an interval of it), the hand-over's included.
    let (b, a) = the_hand_over_look(&mut w, |a, now| {
        if a.sampled_to.is_some() {
            a.sampled_to = Some(now - Duration::minutes(1));
            a.analysed_at = a.sampled_to;
        }
    });
    assert_eq!(a.sampled_to, b.sampled_to, "not judged once retired: {}", a.reason);
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(a.reason.contains("handed over"), "{}", a.reason);
}

#[test]
fn the_look_that_hands_over_clears_what_the_copy_said_of_its_baseline() {
    let mut w = world();
    // Words the copy could still carry into the look that retires it.
    let (_, a) = the_hand_over_look(&mut w, |a, _| {
        a.baseline_limit = Some("a regression at 2x would add about 10 failures".into());
    });
    assert_eq!(a.baseline_limit, None, "nothing said of a copy read no more: {}", a.reason);
}

#[test]
fn a_retired_copy_neither_holds_a_soak_nor_keeps_the_upgrade_from_healthy() {
    let mut w = world();
    w.run_until(Duration::hours(6), |w| canary_entry_opt(w).is_some_and(|a| a.nodes.is_empty()));
    // What a copy retired mid-suspicion would keep: a verdict no look revisits.
    let a = w.obs.status.analysis.iter_mut().find(|a| a.name == "pod-start-failures@canary").unwrap();
    a.verdict = Verdict::Suspect;
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    let healthy = w.obs.status.conditions.iter().find(|c| c.type_ == "Healthy").unwrap();
    assert_eq!(healthy.status, "True", "{}", healthy.message);
}

fn canary_entry_opt(w: &World) -> Option<SignalStatus> {
    w.obs.status.analysis.iter().find(|a| a.name == "pod-start-failures@canary").cloned()
}

#[test]
fn a_daemonset_that_has_handed_over_leaves_the_copy_to_the_canary_still_running() {
    let part = |name: &str, nodes: Option<i32>| Component {
        canary: nodes.map(|n| Canary { nodes: Some(Portion::Count(n)), node_selector: None, replicas: None }),
        ..component(name, "connector:2.0")
    };
    let mut s = spec();
    s.stages = vec![
        stage("canary", vec![part("connector-canary", Some(2)), part("connector", Some(1))]),
        stage("middle", vec![part("connector-canary", None), part("connector", Some(1))]),
        stage("fleet", vec![part("connector", None)]),
    ];
    let mut w = World::new(s);
    for name in ["connector-canary", "connector"] {
        *w.obs.targets.get_mut(&key(name)).unwrap() = Some(daemonset_on("connector:1.0", 6));
    }
    w.recorded_minutes = 7 * 24 * 60;
    w.run_until(Duration::hours(3), |w| soaking(w, 0));
    assert_eq!(canary_entry(&w).nodes, ["node-1", "node-2"], "both canaries' nodes");
    w.run_until(Duration::hours(3), |w| soaking(w, 1));
    assert_eq!(
        canary_entry(&w).nodes,
        ["node-1"],
        "connector-canary runs on every node now: no canary, no control"
    );
}

#[test]
fn a_larger_canary_is_suggested_only_among_the_nodes_it_may_take() {
    // A canary of one node among those its nodeSelector selects: sixty pods a minute at 10 % on
    // six nodes give it ten a minute, 10 failures at 2x over its 10 minutes; three nodes would
    // reach 22. Among the three of zone b it may take three, the other three nodes its control.
    let selecting = |nodes: &[&str]| {
        let mut w = quiet_world(None);
        w.attempts_per_minute = 60;
        w.obs.spec.stages[0].components[0].canary = Some(Canary {
            nodes: Some(Portion::Count(1)),
            node_selector: Some([("zone".to_string(), "b".to_string())].into()),
            replicas: None,
        });
        w.obs.selected_nodes.insert("zone=b".into(), nodes.iter().map(|n| n.to_string()).collect());
        w.run_until(Duration::days(2), |w| quiet_words(w).is_some());
        quiet_words(&w).unwrap()
    };
    let said = selecting(&["node-3", "node-4", "node-5"]);
    assert!(said.contains("would add about 10 failures"), "{said}");
    assert!(
        said.contains("whose stage has about 3 of the 3 nodes a canary may take, or a soak of 22m,"),
        "{said}"
    );
    // Of two nodes it may take, or a single one, no canary large enough: only the soak.
    let said = selecting(&["node-3", "node-4"]);
    assert!(said.contains("whose stage has a soak of 22m would bring it to 22"), "{said}");
    let said = selecting(&["node-3"]);
    assert!(said.contains("whose stage has a soak of 22m would bring it to 22"), "{said}");
}
