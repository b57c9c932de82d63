//! Unit tests of `timeline.rs`.

use super::*;

fn upgrade() -> MaintenanceUpgrade {
    let yaml = r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {name: up, namespace: kube-system}
spec:
  stages:
    - name: canary
      components: [{kind: DaemonSet, name: connector-canary, image: "connector:1.4"}]
      soak: 48h
status:
  phase: Soaking
  message: "stage canary soaking until 2026-11-26 03:00:00 UTC"
  currentStage: canary
  nextAction: {summary: "pass the soak of stage canary", at: "2026-11-26T03:00:00Z"}
  stages:
    - name: canary
      phase: Soaking
      soakEndsAt: "2026-11-26T03:00:00Z"
      components:
        - {kind: DaemonSet, namespace: kube-system, name: connector-canary, knownGoodImage: "connector:1.3",
           desiredImage: "connector:1.4", phase: Applied, appliedAt: "2026-11-24T03:00:00Z"}
  analysis:
    - name: pod-start-failures
      baseline: {attempts: 1200, errors: 24, rate: 0.02}
      last: {attempts: 100, errors: 3, rate: 0.03}
      verdict: Pass
      statistic: 2.5
      threshold: 12.0
      detector: {statistic: 2.5}
"#;
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn the_view_answers_what_why_and_what_next() {
    let now = DateTime::parse_from_rfc3339("2026-11-24T05:00:00Z").unwrap().with_timezone(&Utc);
    let v = view(&upgrade(), now, &[0.5, 1.0, 2.5]);
    for said in [
        "MaintenanceUpgrade kube-system/up: Soaking",
        "Window:   open (no window: always open)",
        "Next:     pass the soak of stage canary at 2026-11-26 03:00:00 UTC (in 1day 22h)",
        "DaemonSet kube-system/connector-canary",
        "known-good connector:1.3",
        "desired    connector:1.4",
        "applied 2026-11-24 03:00:00 UTC",
        "2.0% of 1200",
        "3.0% of 100",
        "2.5 / 12.0 ▁▂▂",
        "Pass",
    ] {
        assert!(v.contains(said), "{said:?} in\n{v}");
    }
}

#[test]
fn a_row_is_one_line_of_the_timeline() {
    let r = row(upgrade().status.as_ref(), 40);
    assert!(r.starts_with("Soaking            canary       3.0%      2.0%      2.5/12  stage canary"), "{r}");
    assert_eq!(row(None, 40), "waiting for the operator");
    // Nothing counted yet: no rate, not the smoothed baseline's 50 %.
    let mut st = upgrade().status.unwrap();
    st.analysis[0].baseline.as_mut().unwrap().attempts = 0;
    st.analysis[0].baseline.as_mut().unwrap().rate = 0.5;
    st.analysis[0].last.as_mut().unwrap().attempts = 0;
    let r = row(Some(&st), 40);
    assert!(r.starts_with("Soaking            canary          -         -"), "{r}");
}

#[test]
fn the_view_shows_where_a_canary_runs_and_what_the_next_stage_widens_to() {
    let mut mu = upgrade();
    let mut canary = mu.spec.stages[0].components[0].clone();
    canary.canary = Some(Canary { nodes: Some(Portion::Count(2)), node_selector: None, replicas: None });
    mu.spec.stages[0].components[0] = canary.clone();
    let mut wider = mu.spec.stages[0].clone();
    wider.name = "wider".into();
    wider.components[0].canary =
        Some(Canary { nodes: Some(Portion::Percent("25%".into())), node_selector: None, replicas: None });
    mu.spec.stages.push(wider);
    let st = mu.status.as_mut().unwrap();
    st.stages[0].components[0].canary = Some(CanaryStatus {
        wanted: 2,
        total: 10,
        nodes: vec!["zone-0".into(), "zone-1".into()],
        ..Default::default()
    });
    let mut pending = st.stages[0].clone();
    pending.name = "wider".into();
    pending.phase = StagePhase::Pending;
    pending.components[0].canary = None;
    st.stages.push(pending);
    let v = view(&mu, Utc::now(), &[]);
    assert!(
        v.contains(
            "canary     2 of 10 nodes taken for the desired image (this stage wants 2): zone-0, zone-1"
        ),
        "{v}"
    );
    // A node that joined mid-stage is the canary's, but not judged by its signals.
    let mut joined = mu.clone();
    let k = joined.status.as_mut().unwrap().stages[0].components[0].canary.as_mut().unwrap();
    k.nodes.push("zone-9".into());
    k.joined.push("zone-9".into());
    let v = view(&joined, Utc::now(), &[]);
    assert!(
        v.contains("zone-0, zone-1, zone-9; the DaemonSet's own, not judged by its signals: zone-9"),
        "{v}"
    );
    assert!(v.contains("canary     25% of its nodes"), "{v}");
}

/// Once its stage passed, a canary's line says its stage passed, not what this stage wants; the stage
/// that hands the rest over says so; thousands of names are not printed.
#[test]
fn the_view_of_a_canary_that_passed_and_handed_over_and_a_long_one() {
    let mut mu = upgrade();
    mu.spec.stages[0].components[0].canary =
        Some(Canary { nodes: Some(Portion::Count(2)), node_selector: None, replicas: None });
    let mut fleet = mu.spec.stages[0].clone();
    fleet.name = "fleet".into();
    fleet.components[0].canary = None;
    mu.spec.stages.push(fleet);
    let st = mu.status.as_mut().unwrap();
    st.phase = Phase::Succeeded;
    st.stages[0].phase = StagePhase::Passed;
    st.stages[0].components[0].canary = Some(CanaryStatus {
        wanted: 2,
        total: 10,
        nodes: vec!["zone-0".into(), "zone-1".into()],
        ..Default::default()
    });
    let mut passed = st.stages[0].clone();
    passed.name = "fleet".into();
    passed.components[0].canary = None;
    st.stages.push(passed);
    let v = view(&mu, Utc::now(), &[]);
    assert!(!v.contains("this stage wants"), "{v}");
    assert!(
        v.contains("canary     2 of 10 nodes taken for the desired image, its stage passed: zone-0, zone-1"),
        "{v}"
    );
    assert!(v.contains("canary     the rest of its nodes, by its own updateStrategy"), "{v}");
    // A quarter of 6,000 nodes.
    let st = mu.status.as_mut().unwrap();
    st.stages[0].phase = StagePhase::Soaking;
    st.stages[0].components[0].canary = Some(CanaryStatus {
        wanted: 1500,
        total: 6000,
        nodes: (0..1500).map(|i| format!("node-{i:05}")).collect(),
        ..Default::default()
    });
    let v = view(&mu, Utc::now(), &[]);
    let line = v.lines().find(|l| l.contains("nodes taken")).unwrap();
    assert!(line.len() < 200, "{line}");
    assert!(line.ends_with("node-00005 and 1494 more"), "{line}");
}

#[test]
fn the_view_of_a_reverted_canary_says_where_it_ran_not_that_it_runs() {
    let mut mu = upgrade();
    mu.spec.stages[0].components[0].canary =
        Some(Canary { nodes: Some(Portion::Count(2)), node_selector: None, replicas: None });
    let st = mu.status.as_mut().unwrap();
    let c = &mut st.stages[0].components[0];
    c.phase = ComponentPhase::Reverted;
    c.canary = Some(CanaryStatus {
        wanted: 2,
        total: 10,
        nodes: vec!["zone-0".into(), "zone-1".into()],
        ..Default::default()
    });
    let v = view(&mu, Utc::now(), &[]);
    assert!(!v.contains("run the desired image"), "{v}");
    assert!(
        v.contains("canary     reverted: it ran on 2 of 10 nodes (zone-0, zone-1), whose pods were made again from the known-good image"),
        "{v}"
    );
}

#[test]
fn a_deployment_canary_is_a_few_replicas_not_its_top_ones() {
    let mut mu = upgrade();
    let c = &mut mu.spec.stages[0].components[0];
    c.kind = WorkloadKind::Deployment;
    c.canary = Some(Canary { nodes: None, node_selector: None, replicas: Some(Portion::Count(2)) });
    mu.status.as_mut().unwrap().stages[0].components[0].kind = WorkloadKind::Deployment;
    let v = view(&mu, Utc::now(), &[]);
    assert!(v.contains("canary     2 new replicas beside its own"), "{v}");
    mu.spec.stages[0].components[0].canary.as_mut().unwrap().replicas = Some(Portion::Percent("50%".into()));
    let v = view(&mu, Utc::now(), &[]);
    assert!(v.contains("canary     new replicas, 50% of its count, beside its own"), "{v}");
    // Reverted: they ran beside the others, and were scaled away.
    let c = &mut mu.status.as_mut().unwrap().stages[0].components[0];
    c.phase = ComponentPhase::Reverted;
    c.canary = Some(CanaryStatus {
        wanted: 2,
        total: 6,
        pods: vec!["web-a".into(), "web-b".into()],
        ..Default::default()
    });
    let v = view(&mu, Utc::now(), &[]);
    assert!(
        v.contains("canary     reverted: its 2 new replicas (web-a, web-b), beside the 6, were scaled away"),
        "{v}"
    );
}

/// An upgrade the operator has not looked at yet says so, and what to check, instead of
/// reading as Pending with nothing next; a next step whose time has passed is due, not "in 0s".
#[test]
fn the_view_of_an_upgrade_with_no_status_yet_says_so_and_a_late_step_is_due() {
    let mut mu = upgrade();
    mu.status = None;
    let view = view(&mu, Utc::now(), &[]);
    assert!(view.contains("no status yet") && view.contains("kube-system"), "{view}");
    assert!(view.contains("Next:     the operator's first look"), "{view}");
    let late = DateTime::parse_from_rfc3339("2026-11-26T03:05:00.123456Z").unwrap().with_timezone(&Utc);
    let view = super::view(&upgrade(), late, &[]);
    assert!(view.contains("(due 5m ago)"), "to the second: {view}");
}

/// The window line: the time to the next opening to the second (a clock read now has
/// nanoseconds), and a window that never closes is not said to be no window.
#[test]
fn the_window_line_says_the_wait_to_the_second_and_tells_a_window_that_never_closes() {
    let window_of = |yaml: &str| serde_yaml::from_str::<Window>(yaml).unwrap();
    let now = DateTime::parse_from_rfc3339("2026-12-01T09:00:00.123456789Z").unwrap().with_timezone(&Utc);
    let tuesdays = window_of("{timeZone: UTC, recurring: [{days: [Tue], start: '10:00', duration: 2h}]}");
    let line = window(Some(&tuesdays), now);
    assert!(line.ends_with("(in 59m 59s)"), "{line}");
    let not_before = window_of("{timeZone: UTC, notBefore: '2026-11-01T00:00:00Z'}");
    assert_eq!(window(Some(&not_before), now), "open (it does not close)");
    assert_eq!(window(None, now), "open (no window: always open)");
}
