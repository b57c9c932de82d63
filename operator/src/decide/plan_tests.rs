//! Transition tests: the spec parsed, and specs that cannot be used.

use super::super::test_world::*;

#[test]
fn invalid_spec_reports_a_condition_and_changes_nothing() {
    let mut s = spec();
    s.window = Some(Window { time_zone: "Mars/Olympus".into(), ..tue_thu_window() });
    let mut w = World::new(s);
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(b.message.contains("Mars/Olympus"), "{}", b.message);
    assert!(w.effects.is_empty());
}

#[test]
fn a_progress_deadline_longer_than_every_window_is_an_invalid_spec() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    s.stages[1].progress_deadline = Duration_("5h");
    let mut w = World::new(s);
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(
        b.message.contains("stage fleet: progressDeadline 5h is longer than every maintenance window"),
        "{}",
        b.message
    );
    assert!(w.effects.is_empty());
}

#[test]
fn a_spec_made_unusable_mid_soak_holds_the_upgrade_but_not_the_rollback() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.window = Some(Window { time_zone: "Mars/Olympus".into(), ..tue_thu_window() });
    w.obs.now += Duration::minutes(1);
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    assert!(
        w.condition(ct::BLOCKED)
            .message
            .contains("and automatic rollback go on, without waiting for a window"),
        "{}",
        w.condition(ct::BLOCKED).message
    );
    // Healthy well past the end of the canary's soak: nothing moves forward.
    let until = w.obs.now + Duration::hours(1);
    w.run_until(Duration::hours(2), |w| w.obs.now >= until);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking);
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage did not start");
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn a_weekend_of_two_adjacent_day_windows_fits_a_long_progress_deadline() {
    let mut s = spec();
    s.window = Some(Window {
        time_zone: "UTC".into(),
        recurring: vec![RecurringWindow {
            days: vec![Weekday::Sat, Weekday::Sun],
            start: "00:00".into(),
            duration: Duration_("24h"),
        }],
        ..tue_thu_window()
    });
    s.stages[1].progress_deadline = Duration_("30h");
    let mut w = World::new(s);
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).status, "False", "{}", w.condition(ct::BLOCKED).message);
}

#[test]
fn a_signal_naming_a_namespace_that_does_not_exist_blocks_before_anything_changes() {
    let mut w = World::new(spec());
    w.obs.spec_problems = vec![
        "signal pods: namespace jobs does not exist; create it or remove it from the signal's namespaces"
            .into(),
    ];
    w.run_until(Duration::minutes(30), |w| {
        w.obs.status.conditions.iter().any(|c| c.type_ == ct::BLOCKED && c.status == "True")
    });
    let blocked = w.condition(ct::BLOCKED);
    assert_eq!(blocked.reason, reason::INVALID_SPEC);
    assert!(blocked.message.contains("namespace jobs does not exist"), "{}", blocked.message);
    assert!(w.effects.is_empty(), "nothing is claimed or changed: {:?}", w.effects);
    assert!(w.events.iter().any(|e| e.starts_with(reason::INVALID_SPEC)), "{:?}", w.events);
    // Once the namespace exists, the upgrade goes ahead.
    w.obs.spec_problems.clear();
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

#[test]
fn a_lookback_past_a_week_or_too_many_prometheus_intervals_is_an_invalid_spec() {
    // Written around the API server's rules, which refuse both.
    for (lookback, interval, says) in [
        ("8760h", "1m", "longer than 168h"),
        ("168h", "1s", "at most 30000 intervals and 168h / 1s is 604800"),
        (
            "168h",
            "1h",
            "analysis.interval 1h is longer than signal scheduling-errors's regression.bucket (10m)",
        ),
    ] {
        let mut s = spec_with_history();
        s.analysis.baseline.lookback = Duration_(lookback);
        s.analysis.interval = Duration_(interval);
        let mut w = World::new(s);
        w.step();
        let b = w.condition(ct::BLOCKED);
        assert_eq!(b.reason, reason::INVALID_SPEC);
        assert!(b.message.contains(says), "{}", b.message);
        assert!(w.effects.is_empty());
    }
}

#[test]
fn an_upgrade_in_flight_over_the_limits_is_still_judged_and_rolled_back() {
    let mut w = World::new(spec_with_history());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    // Written around the API server's rules mid-soak: the next stage waits, the analysis goes on.
    w.obs.spec.analysis.baseline.lookback = Duration_("8760h");
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn a_canary_placeholder_no_stage_can_fill_is_an_invalid_spec() {
    let mut s = spec_with_history();
    s.analysis.signals[0].prometheus.as_mut().unwrap().errors =
        r#"sum(increase(mount_errors{node=~"$canary_nodes"}[$interval]))"#.into();
    let mut w = World::new(s);
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(
        b.message.contains("names $canary_nodes, but no stage runs a canary inside a DaemonSet"),
        "{}",
        b.message
    );
    assert!(w.effects.is_empty());
}

#[test]
fn a_placeholder_misspelt_or_outside_a_regex_matcher_is_an_invalid_spec() {
    let mut s = canary_spec(Portion::Count(2), None);
    s.analysis = spec_with_history().analysis;
    let problem = |s: &MaintenanceUpgradeSpec, q: &str| {
        let mut s = s.clone();
        s.analysis.signals[0].prometheus.as_mut().unwrap().errors = q.into();
        s.placeholder_problem().unwrap_or_default()
    };
    assert_eq!(problem(&s, r#"sum(x{node=~"$canary_nodes", rev!~'$canary_revision'})"#), "");
    assert_eq!(problem(&s, r#"up{instance=~"$canary_nodes:9100"}"#), "", "a port after the names");
    let e = problem(&s, r#"sum(x{rev=~"$canary_revisions"})"#);
    assert!(e.contains("$canary_revisions, which is no placeholder"), "{e}");
    let e = problem(&s, r#"sum(x{node="$canary_nodes"})"#);
    assert!(e.contains("does not begin a regular expression matched with =~ or !~"), "{e}");
    let e = problem(&s, r#"sum(x{node=~"ip-$canary_nodes"})"#);
    assert!(e.contains("does not begin a regular expression"), "{e}");
}

#[test]
fn a_placeholder_edited_in_mid_soak_holds_the_upgrade_but_not_its_rollback() {
    let mut s = spec_with_history();
    s.stages[0].soak = Duration_("4h");
    let mounts = Signal { name: "mounts".into(), ..s.analysis.signals[0].clone() };
    s.analysis.signals.push(mounts);
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.01);
    w.run_until(Duration::hours(2), |w| soaking(w, 0));
    // The other signal, edited: the first still judges, and reverts.
    w.obs.spec.analysis.signals[1].prometheus.as_mut().unwrap().errors =
        r#"sum(increase(mount_errors{node=~"$canary_nodes"}[$interval]))"#.into();
    w.obs.generation += 1;
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    w.run_until(Duration::hours(6), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
}

/// A signal edited mid-soak into one that cannot be read (a label selector that does not parse)
/// leaves the others judged, and a rollback still reverts: here, the upgrade deleted.
#[test]
fn a_signal_made_unreadable_mid_soak_holds_the_upgrade_but_not_the_revert() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.analysis.signals = builtin_selecting("app in (x");
    w.obs.now += Duration::minutes(1);
    w.step();
    let blocked = w.condition(ct::BLOCKED).clone();
    assert_eq!(blocked.reason, reason::INVALID_SPEC);
    assert!(blocked.message.contains("signal pod-start-failures"), "{}", blocked.message);
    assert!(blocked.message.contains("automatic rollback go on"), "{}", blocked.message);
    deleted_it_reverts_and_releases(&mut w);
}

#[test]
fn every_problem_of_a_spec_is_named_not_only_the_first() {
    let mut s = spec();
    s.window = Some(Window { time_zone: "Mars/Olympus".into(), ..tue_thu_window() });
    s.stages[0].soak = Duration_("soon");
    s.analysis.signals = vec![Signal {
        name: "pod-start-failures".into(),
        kubernetes: Some(KubernetesSignal { label_selector: Some("app in (x".into()), ..Default::default() }),
        prometheus: None,
        regression: RegressionRule::default(),
    }];
    let mut w = World::new(s);
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    for named in ["Mars/Olympus", "stage canary: soak", "signal pod-start-failures"] {
        assert!(b.message.contains(named), "{named:?} in {}", b.message);
    }
    assert!(w.effects.is_empty());
}

#[test]
fn a_signal_made_unreadable_while_a_rollback_waits_for_a_human_is_said() {
    let mut s = spec();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Degraded);
    w.obs.spec.analysis.signals = builtin_selecting("app in (x");
    w.obs.now += Duration::minutes(1);
    w.step();
    assert_eq!(w.phase(), Phase::Degraded, "still held: {}", w.obs.status.message);
    assert!(w.obs.status.message.contains("Automatic rollback is off"), "{}", w.obs.status.message);
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(b.message.contains("signal pod-start-failures"), "{}", b.message);
}

#[test]
fn a_spec_made_unusable_after_a_change_whose_status_was_lost_still_reverts_on_deletion() {
    // The leader sets the canary's image and stops before writing that it did (the next look
    // would have followed at once); then the window is edited into one that cannot be read.
    let mut w = World::new(spec());
    w.run_until_unwritten(Duration::hours(1), |w| w.image("connector-canary") == "connector:2.0");
    w.fail_over();
    assert!(w.obs.status.claimed_at.is_some() && w.obs.status.changed_at.is_none());
    w.obs.spec.window = Some(Window { time_zone: "Mars/Olympus".into(), ..tue_thu_window() });
    w.obs.now += Duration::seconds(5);
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    assert!(w.obs.status.changed_at.is_some(), "the change found: {}", w.obs.status.message);
    deleted_it_reverts_and_releases(&mut w);
}

#[test]
fn a_signal_fixed_to_another_than_it_was_is_judged_again_only_once_put_back() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| soaking(w, 0));
    let default = w.obs.spec.analysis.signals.clone();
    w.obs.spec.analysis.signals = builtin_selecting("app in (x");
    w.obs.now += Duration::minutes(1);
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    // "Fixed" to something other than what it counted before the change: its baseline says
    // nothing of it, so it is not judged, and the next stage waits.
    w.obs.spec.analysis.signals = builtin_selecting("app notin (x)");
    let until = w.obs.now + Duration::hours(2);
    w.run_until(Duration::hours(3), |w| w.obs.now >= until);
    assert_eq!(w.image("connector"), "connector:1.0", "{}", w.obs.status.message);
    let a = &w.obs.status.analysis[0];
    assert!(a.reason.contains("were changed after the first change"), "{}", a.reason);
    // Put back as it was, it is judged again, and the upgrade goes on.
    w.obs.spec.analysis.signals = default;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

/// The upgrade deleted: the canary's change goes back, and every target is let go of.
fn deleted_it_reverts_and_releases(w: &mut World) {
    w.obs.deleting = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0", "reverted");
    assert!(w.obs.targets.values().flatten().all(|t| t.owner.is_none()), "released");
}
