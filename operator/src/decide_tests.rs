//! Transition tests of the pure decision core. A small simulated world plays the API server's
//! part (targets change when the decision says so, rollouts finish after a while) and the clock
//! is injected, so hours of soak run in microseconds.

use crate::constants::{OWNER_ANNOTATION, condition as ct, reason};
use crate::crd::*;
use crate::decide::{Decision, Effect, Observed, analysis_due, decide};
use crate::detector::Counts;
use crate::target::{Rollout, TargetKey, TargetState};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

const ID: &str = "ops/connector-upgrade";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn key(name: &str) -> TargetKey {
    TargetKey { kind: WorkloadKind::DaemonSet, namespace: "kube-system".into(), name: name.into() }
}

fn component(name: &str, image: &str) -> Component {
    Component { kind: WorkloadKind::DaemonSet, namespace: Some("kube-system".into()), name: name.into(), container: None, image: image.into() }
}

fn stage(name: &str, components: Vec<Component>) -> Stage {
    Stage { name: name.into(), components, soak: Duration_("30m"), progress_deadline: Duration_("10m"), require_approval: false }
}

#[allow(non_snake_case)]
fn Duration_(s: &str) -> crate::crd::Duration {
    crate::crd::Duration(s.into())
}

/// Canary on one connector DaemonSet, then the fleet's; no window; the built-in signal.
fn spec() -> MaintenanceUpgradeSpec {
    MaintenanceUpgradeSpec {
        window: None,
        stages: vec![stage("canary", vec![component("connector-canary", "connector:2.0")]), stage("fleet", vec![component("connector", "connector:2.0")])],
        analysis: Analysis { interval: Duration_("1m"), baseline: BaselineSpec { observe: Duration_("10m"), lookback: Duration_("24h") }, signals: vec![] },
        rollback: RollbackPolicy::default(),
        paused: false,
        approved_stages: vec![],
    }
}

fn daemonset(image: &str) -> TargetState {
    TargetState {
        resource_version: "1".into(),
        containers: vec![("connector".into(), image.into())],
        owner: None,
        owner_uid: None,
        known_good: None,
        rollout: Rollout::Complete,
        running_digests: vec![("connector".into(), "sha256:good".into())],
    }
}

struct World {
    obs: Observed,
    /// Error rate of new pods as a function of the world: what the fault does.
    error_rate: Box<dyn Fn(&World) -> f64>,
    attempts_per_minute: u64,
    /// When each in-flight rollout completes; None = stuck.
    rollouts: BTreeMap<TargetKey, Option<DateTime<Utc>>>,
    stuck: bool,
    effects: Vec<Effect>,
    events: Vec<String>,
    prometheus_down: bool,
}

impl World {
    fn new(spec: MaintenanceUpgradeSpec) -> World {
        let mut targets = BTreeMap::new();
        targets.insert(key("connector-canary"), Some(daemonset("connector:1.0")));
        targets.insert(key("connector"), Some(daemonset("connector:1.0")));
        World {
            obs: Observed {
                id: ID.into(),
                uid: "uid-1".into(),
                namespace: "ops".into(),
                generation: 1,
                spec,
                status: MaintenanceUpgradeStatus::default(),
                targets,
                live_owners: Default::default(),
                samples: BTreeMap::new(),
                history: BTreeMap::new(),
                now: t("2026-11-24T03:00:00Z"),
            },
            error_rate: Box::new(|_| 0.01),
            attempts_per_minute: 100,
            rollouts: BTreeMap::new(),
            stuck: false,
            effects: vec![],
            events: vec![],
            prometheus_down: false,
        }
    }

    fn image(&self, name: &str) -> String {
        self.obs.targets[&key(name)].as_ref().unwrap().containers[0].1.clone()
    }

    fn phase(&self) -> Phase {
        self.obs.status.phase
    }

    fn condition(&self, type_: &str) -> &Condition {
        self.obs.status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    fn target_mut(&mut self, name: &str) -> &mut TargetState {
        self.obs.targets.get_mut(&key(name)).unwrap().as_mut().unwrap()
    }

    /// One reconcile: read the due signals, decide, let the world carry out the effect.
    fn step(&mut self) -> Decision {
        // Rollouts finish on their own.
        let now = self.obs.now;
        for (k, done) in self.rollouts.clone() {
            if done.is_some_and(|d| now >= d) {
                if let Some(Some(t)) = self.obs.targets.get_mut(&k) {
                    t.rollout = Rollout::Complete;
                }
                self.rollouts.remove(&k);
            }
        }
        self.obs.samples.clear();
        for (s, from) in analysis_due(&self.obs.spec, &self.obs.status, now) {
            let minutes = ((now - from).num_seconds() / 60) as u64;
            let attempts = self.attempts_per_minute * minutes;
            let errors = ((self.error_rate)(self) * attempts as f64).round() as u64;
            let r = if self.prometheus_down { Err("connection refused".to_string()) } else { Ok((Counts { attempts, errors }, from, now)) };
            self.obs.samples.insert(s.name, r);
        }
        let d = decide(&self.obs);
        for n in &d.events {
            self.events.push(format!("{}: {}", n.reason, n.message));
        }
        if let Some(e) = &d.effect {
            self.carry_out(e);
            self.effects.push(e.clone());
        }
        self.obs.status = d.status.clone();
        d
    }

    fn carry_out(&mut self, e: &Effect) {
        let now = self.obs.now;
        let stuck = self.stuck;
        match e {
            Effect::Claim { target, known_good, owner_uid, .. } => {
                let t = self.obs.targets.get_mut(target).unwrap().as_mut().unwrap();
                t.owner = Some(ID.into());
                t.owner_uid = Some(owner_uid.clone());
                t.known_good = Some(known_good.clone());
                bump(t);
            }
            Effect::SetImage { target, container, image, resource_version } => {
                let t = self.obs.targets.get_mut(target).unwrap().as_mut().unwrap();
                assert_eq!(&t.resource_version, resource_version, "patches carry the observed resourceVersion");
                t.containers.iter_mut().find(|(n, _)| n == container).unwrap().1 = image.clone();
                t.rollout = Rollout::InProgress("rolling".into());
                bump(t);
                self.rollouts.insert(target.clone(), if stuck { None } else { Some(now + Duration::seconds(40)) });
            }
            Effect::Release { targets } => {
                for k in targets {
                    if let Some(Some(t)) = self.obs.targets.get_mut(k) {
                        t.owner = None;
                        t.owner_uid = None;
                        t.known_good = None;
                        bump(t);
                    }
                }
            }
        }
    }

    /// Step until `done` holds, advancing the clock by each decision's requeue time.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) {
        let end = self.obs.now + limit;
        while !done(self) {
            assert!(self.obs.now < end, "not reached by {end}; phase {:?}: {}", self.phase(), self.obs.status.message);
            let d = self.step();
            let wait = d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
            self.obs.now += wait;
        }
    }

    fn image_sets(&self) -> Vec<(String, String)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::SetImage { target, image, .. } => Some((target.name.clone(), image.clone())),
                _ => None,
            })
            .collect()
    }
}

fn bump(t: &mut TargetState) {
    t.resource_version = (t.resource_version.parse::<u64>().unwrap() + 1).to_string();
}

fn terminal(w: &World) -> bool {
    w.phase().is_terminal()
}

#[test]
fn healthy_two_stage_upgrade_succeeds_and_keeps_the_known_good_record() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    assert_eq!(w.image("connector"), "connector:2.0");
    assert_eq!(w.image_sets(), vec![("connector-canary".into(), "connector:2.0".into()), ("connector".into(), "connector:2.0".into())]);
    let c = &w.obs.status.stages[1].components[0];
    assert_eq!(c.known_good_image.as_deref(), Some("connector:1.0"));
    assert_eq!(c.known_good_digest.as_deref(), Some("sha256:good"));
    assert_eq!(c.container.as_deref(), Some("connector"));
    // Released at the end; the record stays in status.
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()));
    assert_eq!(w.condition(ct::COMPLETE).status, "True");
    assert_eq!(w.condition(ct::HEALTHY).status, "True");
    assert_eq!(w.condition(ct::PROGRESSING).status, "False");
    // The baseline was measured before the first change, over the observe period.
    let a = &w.obs.status.analysis[0];
    let b = a.baseline.as_ref().unwrap();
    assert!(b.to.unwrap() <= w.obs.status.changed_at.unwrap());
    assert_eq!(b.attempts, 1000);
    assert!(w.events.iter().any(|e| e.starts_with(reason::SOAK_PASSED)));
    // Terminal: nothing more to do.
    let d = w.step();
    assert!(d.effect.is_none() && d.requeue_after.is_none());
}

#[test]
fn known_good_is_recorded_on_the_target_before_any_image_changes() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| !w.effects.is_empty());
    match &w.effects[0] {
        Effect::Claim { target, known_good, .. } => {
            assert_eq!(target.name, "connector-canary");
            assert_eq!(known_good, "connector=connector:1.0");
        }
        other => panic!("first effect must be a claim, got {other:?}"),
    }
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    let claims = w.effects.iter().take_while(|e| matches!(e, Effect::Claim { .. })).count();
    assert_eq!(claims, 2, "every target is claimed before the first image change");
    assert!(w.obs.status.stages.iter().flat_map(|s| &s.components).all(|c| c.known_good_image.is_some()));
}

fn creeping_after(component: &'static str, per_minute: f64) -> Box<dyn Fn(&World) -> f64> {
    // A slow ramp once `component` runs the new image: +per_minute of error rate each minute.
    Box::new(move |w: &World| {
        let applied = w.obs.status.stages.iter().flat_map(|s| &s.components).find(|c| c.name == component).and_then(|c| c.applied_at);
        match applied {
            Some(at) if w.image(component) == "connector:2.0" => 0.01 + per_minute * (w.obs.now - at).num_minutes() as f64,
            _ => 0.01,
        }
    })
}

#[test]
fn slow_regression_in_the_canary_soak_reverts_the_canary() {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.001);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage never started");
    assert_eq!(w.image_sets().len(), 2);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::REGRESSION);
    assert!(rb.message.contains("against a baseline of 1.0"), "{}", rb.message);
    assert_eq!(w.condition(ct::ROLLED_BACK).status, "True");
    assert_eq!(w.condition(ct::HEALTHY).status, "False");
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RolledBack);
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    assert!(w.events.iter().any(|e| e.starts_with(reason::REGRESSION)));
    // Never re-applied after a rollback, however long we look.
    let sets = w.image_sets().len();
    for _ in 0..10 {
        w.obs.now += Duration::hours(1);
        w.step();
    }
    assert_eq!(w.image_sets().len(), sets);
}

#[test]
fn regression_only_in_the_fleet_stage_reverts_both_last_first() {
    let mut s = spec();
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector", 0.002);
    w.run_until(Duration::hours(4), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RolledBack);
    assert!(w.obs.status.stages[0].passed_at.is_some(), "the canary passed before the fleet regressed");
    assert_eq!(
        w.image_sets(),
        vec![
            ("connector-canary".into(), "connector:2.0".into()),
            ("connector".into(), "connector:2.0".into()),
            ("connector".into(), "connector:1.0".into()),
            ("connector-canary".into(), "connector:1.0".into()),
        ]
    );
    let fleet = w.obs.status.stages[1].reverted_at.unwrap();
    let canary = w.obs.status.stages[0].reverted_at.unwrap();
    assert!(fleet < canary, "the canary's revert waits for the fleet's to roll out");
}

#[test]
fn stuck_rollout_is_reverted_at_the_progress_deadline() {
    let mut w = World::new(spec());
    w.stuck = true;
    w.run_until(Duration::hours(2), |w| w.obs.status.rollback.is_some());
    let rb = w.obs.status.rollback.clone().unwrap();
    assert_eq!(rb.reason, reason::ROLLOUT_FAILED);
    assert!(rb.message.contains("progress deadline of 10m"), "{}", rb.message);
    let started = w.obs.status.stages[0].started_at.unwrap();
    assert!(rb.started_at >= started + Duration::minutes(10) && rb.started_at < started + Duration::minutes(11));
    w.stuck = false;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn failed_deployment_rollout_is_reverted_at_once() {
    let mut w = World::new(spec());
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Progressing && !w.image_sets().is_empty());
    w.target_mut("connector-canary").rollout = Rollout::Failed("the Deployment's progress deadline was exceeded".into());
    w.step();
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::ROLLOUT_FAILED);
}

#[test]
fn manual_rollback_reverts_whatever_was_applied() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::MANUAL_ROLLBACK);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn manual_rollback_before_any_change_ends_without_touching_images() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::MeasuringBaseline);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert!(w.image_sets().is_empty());
    assert!(w.obs.status.message.contains("before any image was changed"), "{}", w.obs.status.message);
    assert!(w.obs.targets.values().all(|t| t.as_ref().unwrap().owner.is_none()), "claims are released");
}

#[test]
fn pause_holds_the_next_stage_but_not_the_rollback() {
    let mut s = spec();
    s.paused = true;
    let mut w = World::new(s);
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Paused);
    assert!(w.image_sets().is_empty());
    assert!(w.obs.status.message.contains("spec.paused"));
    assert!(w.events.iter().any(|e| e.starts_with(reason::PAUSED)), "{:?}", w.events);
    w.obs.spec.paused = false;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.paused = true;
    w.error_rate = Box::new(|_| 0.2);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "a paused upgrade still reverts on a regression");
}

#[test]
fn target_owned_by_another_upgrade_blocks_without_changes() {
    let mut w = World::new(spec());
    w.target_mut("connector").owner = Some("ops/other".into());
    w.obs.live_owners.insert("ops/other".into());
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    assert_eq!(w.phase(), Phase::Pending);
    let b = w.condition(ct::BLOCKED);
    assert_eq!((b.status.as_str(), b.reason.as_str()), ("True", reason::TARGET_OWNED));
    assert!(b.message.contains("ops/other"), "{}", b.message);
    assert!(w.image_sets().is_empty());
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::TARGET_OWNED)).count(), 1, "one Event, not one per look");
    // The other upgrade is deleted without releasing the target: its mark no longer holds it.
    w.obs.live_owners.clear();
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
    assert!(w.events.iter().any(|e| e.contains("taken over from MaintenanceUpgrade ops/other")), "{:?}", w.events);
}

#[test]
fn missing_target_or_container_blocks_with_a_condition() {
    let cases: [(&str, Box<dyn Fn(&mut World)>, &str, &str); 3] = [
        ("missing target", Box::new(|w: &mut World| *w.obs.targets.get_mut(&key("connector")).unwrap() = None), reason::TARGET_NOT_FOUND, "does not exist"),
        (
            "missing container",
            Box::new(|w: &mut World| w.obs.spec.stages[1].components[0].container = Some("nope".into())),
            reason::CONTAINER_NOT_FOUND,
            "no container \"nope\"",
        ),
        (
            "ambiguous container",
            Box::new(|w: &mut World| w.target_mut("connector").containers.push(("sidecar".into(), "proxy:1".into()))),
            reason::CONTAINER_AMBIGUOUS,
            "2 containers",
        ),
    ];
    for (name, setup, want_reason, want_msg) in cases {
        let mut w = World::new(spec());
        setup(&mut w);
        for _ in 0..5 {
            w.step();
            w.obs.now += Duration::seconds(30);
        }
        let b = w.condition(ct::BLOCKED);
        assert_eq!(b.reason, want_reason, "{name}");
        assert!(b.message.contains(want_msg), "{name}: {}", b.message);
        assert!(w.image_sets().is_empty(), "{name}: nothing changes");
        assert!(w.events.iter().any(|e| e.starts_with(want_reason)), "{name}: an Event says so");
    }
}

#[test]
fn target_deleted_after_the_change_reverts_the_others() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(3), |w| w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::Soaking));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = None;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::TARGET_DELETED);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
    assert_eq!(w.obs.status.stages[1].components[0].phase, ComponentPhase::Gone);
    assert!(w.obs.status.message.contains("not reverted"), "{}", w.obs.status.message);
}

#[test]
fn image_changed_by_someone_else_is_left_alone() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let t = w.target_mut("connector-canary");
    t.containers[0].1 = "connector:hotfix".into();
    bump(t);
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Conflict);
    assert!(w.events.iter().any(|e| e.starts_with(reason::CHANGED_EXTERNALLY)));
    let b = w.condition(ct::BLOCKED);
    assert_eq!((b.status.as_str(), b.reason.as_str()), ("True", reason::CHANGED_EXTERNALLY));
    assert!(b.message.contains("connector:hotfix"), "{}", b.message);
    // Held: the soak ends but the fleet stage does not start around the hand-made change.
    w.obs.now += Duration::hours(2);
    w.step();
    assert_eq!(w.obs.status.stages[1].phase, StagePhase::Pending);
    assert_eq!(w.image("connector"), "connector:1.0");
    // A later regression reverts only what is still ours.
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:hotfix", "never fought over");
    assert!(w.obs.status.message.contains("someone else"), "{}", w.obs.status.message);
}

#[test]
fn restart_after_a_patch_whose_status_was_lost_does_not_patch_again() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::MeasuringBaseline);
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    // Simulate a crash between the patch and the status write: the status is the one before.
    let before_patch = w.image_sets().len();
    let stale = w.obs.status.clone();
    let mut stale = stale;
    stale.stages[0].components[0].phase = ComponentPhase::Claimed;
    stale.stages[0].components[0].applied_at = None;
    w.obs.status = stale;
    w.step();
    assert_eq!(w.image_sets().len(), before_patch, "the image already set is recognised, not set again");
    assert_eq!(w.obs.status.stages[0].components[0].phase, ComponentPhase::Applied);
    // And a restart after a claim whose status was lost reads the record back from the target.
    let mut w = World::new(spec());
    w.step();
    assert!(matches!(w.effects[0], Effect::Claim { .. }));
    w.obs.status = MaintenanceUpgradeStatus::default();
    w.target_mut("connector-canary").containers[0].1 = "connector:1.0".into();
    w.step();
    assert_eq!(w.obs.status.stages[0].components[0].known_good_image.as_deref(), Some("connector:1.0"));
    assert_eq!(w.effects.iter().filter(|e| matches!(e, Effect::Claim { target, .. } if target.name == "connector-canary")).count(), 1);
}

#[test]
fn inconclusive_analysis_neither_promotes_nor_reverts() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.prometheus_down = true;
    let soak_end = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(3), |w| w.obs.now > soak_end + Duration::hours(1));
    assert_eq!(w.phase(), Phase::Soaking);
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking);
    assert!(w.obs.status.rollback.is_none());
    assert!(w.obs.status.message.contains("no conclusive verdict"), "{}", w.obs.status.message);
    assert_eq!(w.condition(ct::HEALTHY).status, "Unknown");
    assert!(w.condition(ct::HEALTHY).message.contains("connection refused"));
    // Back: the missed span is read in one go and the upgrade goes on.
    w.prometheus_down = false;
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn building_evidence_extends_the_soak_until_it_clears() {
    let mut s = spec();
    s.stages[0].soak = Duration_("1h");
    let mut w = World::new(s);
    // The canary runs hot for 50 minutes after its change (not long enough to be a regression),
    // then settles.
    w.error_rate = Box::new(|w: &World| {
        let applied = w.obs.status.stages.first().and_then(|s| s.components[0].applied_at);
        if applied.is_some_and(|at| w.obs.now - at < Duration::minutes(50)) { 0.025 } else { 0.01 }
    });
    w.run_until(Duration::hours(1), |w| w.obs.status.stages.first().is_some_and(|s| s.soak_ends_at.is_some()));
    let soak_end = w.obs.status.stages[0].soak_ends_at.unwrap();
    w.run_until(Duration::hours(2), |w| w.obs.now > soak_end + Duration::minutes(1));
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::Soaking, "not promoted at the end of the soak");
    assert!(w.obs.status.message.contains("extended"), "{}", w.obs.status.message);
    assert_eq!(w.obs.status.analysis[0].verdict, Verdict::Suspect);
    assert_eq!(w.condition(ct::HEALTHY).status, "Unknown");
    assert_eq!(w.condition(ct::HEALTHY).reason, reason::SUSPECTED);
    assert!(w.condition(ct::HEALTHY).message.contains("not promoting until"), "{}", w.condition(ct::HEALTHY).message);
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::SUSPECTED)).count(), 1);
    // The evidence fades: promoted, and the upgrade completes.
    w.run_until(Duration::hours(4), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
    assert!(w.events.iter().any(|e| e.starts_with(reason::SUSPICION_CLEARED)));
}

#[test]
fn regression_without_automatic_rollback_waits_for_a_human() {
    let mut s = spec();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.error_rate = creeping_after("connector-canary", 0.01);
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Degraded);
    assert!(w.obs.status.message.contains("spec.rollback.requested"));
    w.obs.now += Duration::hours(5);
    w.step();
    assert_eq!(w.phase(), Phase::Degraded);
    assert_eq!(w.image("connector-canary"), "connector:2.0");
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
}

fn tue_thu_window() -> Window {
    Window {
        time_zone: "America/New_York".into(),
        recurring: vec![RecurringWindow { days: vec![Weekday::Tue, Weekday::Thu], start: "22:00".into(), duration: Duration_("4h") }],
        exclusions: vec![],
        not_before: None,
        deadline: None,
        stage_policy: StagePolicy::WaitForNextWindow,
    }
}

#[test]
fn closed_window_waits_and_the_baseline_ends_when_it_opens() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z"); // Tuesday 07:00 New York
    w.run_until(Duration::minutes(1), |w| w.phase() == Phase::WaitingForWindow);
    assert_eq!(w.effects.len(), 2, "the targets are claimed while waiting");
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::WINDOW_CLOSED)).count(), 1, "the wait is announced once");
    let next = w.obs.status.next_action.clone().unwrap();
    assert_eq!(next.at, Some(t("2026-11-25T02:50:00Z")), "baseline starts 10m before the 22:00 EST opening");
    assert_eq!(w.condition(ct::WINDOW_OPEN).status, "False");
    assert!(w.condition(ct::WINDOW_OPEN).message.contains("2026-11-25 03:00:00 UTC"));
    w.run_until(Duration::days(1), |w| !w.image_sets().is_empty());
    assert!(w.obs.status.changed_at.unwrap() >= t("2026-11-25T03:00:00Z"));
    assert!(w.obs.status.changed_at.unwrap() < t("2026-11-25T03:01:00Z"));
}

#[test]
fn exclusion_and_stage_that_does_not_fit_wait_for_the_next_window() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.exclusions.push(Exclusion { name: Some("thanksgiving".into()), start: t("2026-11-26T00:00:00Z"), end: t("2026-11-28T00:00:00Z") });
    s.window = Some(win);
    s.stages[0].soak = Duration_("3h55m"); // the fleet stage would start 5 minutes before closing
    let mut w = World::new(s);
    w.obs.now = t("2026-11-24T12:00:00Z");
    w.run_until(Duration::days(1), |w| w.obs.status.stages.first().is_some_and(|s| s.phase == StagePhase::Passed));
    assert_eq!(w.phase(), Phase::WaitingForWindow);
    assert!(w.obs.status.message.contains("closes at"), "{}", w.obs.status.message);
    // Thursday's window falls inside the exclusion: the next start is the following Tuesday.
    assert_eq!(w.obs.status.next_action.as_ref().unwrap().at, Some(t("2026-12-02T03:00:00Z")));
    w.run_until(Duration::days(10), |w| w.obs.status.stages[1].started_at.is_some());
    assert_eq!(w.obs.status.stages[1].started_at.map(|t| t.date_naive().to_string()), Some("2026-12-02".into()));
}

#[test]
fn soak_and_rollback_go_on_after_the_window_closes() {
    let mut s = spec();
    s.window = Some(tue_thu_window());
    s.stages[0].soak = Duration_("48h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    // Creeps by 0.06 points an hour: caught hours later, after the window has closed.
    w.error_rate = creeping_after("connector-canary", 0.00001);
    w.run_until(Duration::days(3), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert!(w.obs.status.rollback.as_ref().unwrap().started_at > t("2026-11-25T07:00:00Z"), "detected after the window closed");
}

#[test]
fn deadline_passed_before_a_stage_reverts_the_earlier_ones() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.deadline = Some(t("2026-11-25T06:00:00Z"));
    s.window = Some(win);
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::DEADLINE_EXCEEDED);
    assert!(rb.message.contains("stage fleet had not started by the deadline 2026-11-25 06:00:00 UTC"), "{}", rb.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn approval_gates_a_stage() {
    let mut s = spec();
    s.stages[1].require_approval = true;
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::AwaitingApproval);
    assert!(w.obs.status.message.contains("spec.approvedStages"));
    w.obs.now += Duration::hours(3);
    w.step();
    assert_eq!(w.image("connector"), "connector:1.0");
    w.obs.spec.approved_stages.push("fleet".into());
    w.run_until(Duration::hours(2), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

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
fn status_says_what_happens_next() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    w.step();
    let next = w.obs.status.next_action.clone().unwrap();
    assert_eq!(next.summary, "end the soak of stage canary");
    assert_eq!(next.at, w.obs.status.stages[0].soak_ends_at);
    assert!(w.obs.status.message.contains("stage fleet starts"), "{}", w.obs.status.message);
    assert_eq!(w.obs.status.current_stage.as_deref(), Some("canary"));
    assert_eq!(w.obs.status.observed_generation, Some(1));
    let _ = OWNER_ANNOTATION;
}

#[test]
fn a_span_the_operator_could_not_see_is_not_judged() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::Soaking);
    let before = w.obs.status.analysis[0].detector.clone();
    // The API server is down for ten minutes and pods pile up Pending: the first read after it
    // spans the whole gap and would show a burst of failures.
    w.error_rate = Box::new(|_| 0.9);
    w.obs.now += Duration::minutes(10);
    w.step();
    let a = &w.obs.status.analysis[0];
    assert_eq!(a.verdict, Verdict::Inconclusive);
    assert!(a.reason.contains("not judged"), "{}", a.reason);
    assert_eq!(a.detector, before, "the detector did not see the gap");
    assert!(w.obs.status.rollback.is_none());
    // Pods created just before the operator could read again are still in the next cohorts
    // (judged 5 minutes after creation): those reads are not judged either.
    let resume = a.unjudged_until.unwrap();
    w.run_until(Duration::minutes(4), |w| w.obs.now >= resume - Duration::minutes(1));
    assert_eq!(w.obs.status.analysis[0].detector, before);
    assert!(w.obs.status.rollback.is_none());
    // Afterwards the cluster is healthy again and the upgrade goes on.
    w.error_rate = Box::new(|_| 0.01);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
}

#[test]
fn a_stage_started_before_a_lost_status_write_goes_on_whatever_the_gates_say_now() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    // The status write after the canary's patch was lost, and meanwhile someone paused.
    let mut stale = w.obs.status.clone();
    stale.changed_at = None;
    stale.stages[0].phase = StagePhase::Pending;
    stale.stages[0].started_at = None;
    stale.stages[0].components[0].phase = ComponentPhase::Claimed;
    stale.stages[0].components[0].applied_at = None;
    w.obs.status = stale;
    w.obs.spec.paused = true;
    w.step();
    assert_eq!(w.obs.status.stages[0].phase, StagePhase::RollingOut, "{}", w.obs.status.message);
    assert!(w.obs.status.changed_at.is_some(), "the change is watched");
    assert_eq!(w.image_sets().len(), 1, "and not made again");
    // A regression is still reverted.
    w.error_rate = Box::new(|_| 0.3);
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
}

#[test]
fn a_rollback_held_for_a_human_stays_held_and_says_so_once() {
    let mut s = spec();
    s.rollback.automatic = false;
    let mut w = World::new(s);
    w.stuck = true;
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Degraded);
    for _ in 0..20 {
        w.obs.now += Duration::seconds(30);
        w.step();
        assert_eq!(w.phase(), Phase::Degraded, "{}", w.obs.status.message);
    }
    assert!(w.obs.status.message.contains("progress deadline"), "{}", w.obs.status.message);
    assert_eq!(w.events.iter().filter(|e| e.starts_with(reason::AUTOMATIC_ROLLBACK_DISABLED)).count(), 1);
}

#[test]
fn a_rollback_waiting_for_a_window_that_never_opens_again_goes_ahead() {
    let mut s = spec();
    let mut win = tue_thu_window();
    win.deadline = Some(t("2026-11-25T06:00:00Z"));
    s.window = Some(win);
    s.rollback.outside_window = false;
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::DEADLINE_EXCEEDED);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn stages_left_when_the_window_never_opens_again_are_reverted_not_reported_unchanged() {
    let mut s = spec();
    let mut win = tue_thu_window();
    // A freeze from the first window's end until beyond the two-year horizon.
    win.exclusions.push(Exclusion { name: Some("freeze".into()), start: t("2026-11-25T06:00:00Z"), end: t("2030-01-01T00:00:00Z") });
    s.window = Some(win);
    s.stages[0].soak = Duration_("4h");
    let mut w = World::new(s);
    w.obs.now = t("2026-11-25T02:50:00Z");
    w.run_until(Duration::days(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    let rb = w.obs.status.rollback.as_ref().unwrap();
    assert_eq!(rb.reason, reason::WINDOW_NEVER_OPENS);
    assert!(rb.message.contains("stage fleet cannot start"), "{}", rb.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
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
    assert!(b.message.contains("stage fleet: progressDeadline 5h is longer than every maintenance window"), "{}", b.message);
    assert!(w.effects.is_empty());
}

#[test]
fn a_target_named_twice_with_and_without_its_namespace_is_an_invalid_spec() {
    let mut s = spec();
    s.stages[1].components[0] = Component { namespace: None, ..component("connector-canary", "connector:2.0") };
    let mut w = World::new(s);
    w.obs.namespace = "kube-system".into();
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::INVALID_SPEC);
    assert!(b.message.contains("kube-system/connector-canary is listed twice"), "{}", b.message);
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
    assert!(w.condition(ct::BLOCKED).message.contains("analysis and automatic rollback go on"), "{}", w.condition(ct::BLOCKED).message);
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
fn stages_that_no_longer_match_the_status_hold_the_upgrade_without_a_crash() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    // Written around the API server's rules: the stages reordered.
    w.obs.spec.stages.reverse();
    for _ in 0..5 {
        w.obs.now += Duration::minutes(10);
        w.step();
    }
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    assert!(w.condition(ct::BLOCKED).message.contains("no longer matches"), "{}", w.condition(ct::BLOCKED).message);
    assert_eq!(w.image("connector"), "connector:1.0", "the fleet stage did not start");
    // Fewer stages in the spec than in the status: held, and a rollback still works.
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.obs.spec.stages.truncate(1);
    w.obs.spec.stages[0].name = "only".into();
    for _ in 0..5 {
        w.obs.now += Duration::minutes(10);
        w.step();
    }
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::INVALID_SPEC);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack);
    assert_eq!(w.image("connector-canary"), "connector:1.0");
}

#[test]
fn a_weekend_of_two_adjacent_day_windows_fits_a_long_progress_deadline() {
    let mut s = spec();
    s.window = Some(Window {
        time_zone: "UTC".into(),
        recurring: vec![RecurringWindow { days: vec![Weekday::Sat, Weekday::Sun], start: "00:00".into(), duration: Duration_("24h") }],
        ..tue_thu_window()
    });
    s.stages[1].progress_deadline = Duration_("30h");
    let mut w = World::new(s);
    w.step();
    assert_eq!(w.condition(ct::BLOCKED).status, "False", "{}", w.condition(ct::BLOCKED).message);
}

#[test]
fn the_mark_of_a_deleted_upgrade_of_the_same_name_is_not_taken_for_our_own() {
    let mut w = World::new(spec());
    // An earlier upgrade of this name set the canary to 1.5 and was deleted mid-way.
    let t = w.target_mut("connector-canary");
    t.owner = Some(ID.into());
    t.owner_uid = Some("uid-0".into());
    t.known_good = Some("connector=connector:0.9".into());
    t.containers[0].1 = "connector:1.5".into();
    w.run_until(Duration::hours(1), |w| w.obs.status.claimed_at.is_some());
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.known_good_image.as_deref(), Some("connector:1.5"), "what runs now, not the earlier upgrade's record");
    assert!(w.events.iter().any(|e| e.contains("taken over from an earlier MaintenanceUpgrade of this name")), "{:?}", w.events);
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

#[test]
fn a_changed_target_found_back_on_its_known_good_image_is_reverted_and_the_rest_follows() {
    let mut s = spec();
    s.stages[0].soak = Duration_("5m");
    s.stages[1].soak = Duration_("2h");
    let mut w = World::new(s);
    w.run_until(Duration::hours(2), |w| w.obs.status.stages.get(1).is_some_and(|s| s.phase == StagePhase::Soaking));
    // The fleet's revert was sent, then the status write was lost (or someone reverted it by hand).
    w.target_mut("connector").containers[0].1 = "connector:1.0".into();
    bump(w.target_mut("connector"));
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(w.obs.status.rollback.as_ref().unwrap().reason, reason::REVERTED);
    assert!(!w.obs.status.message.contains("someone else"), "not reported as a foreign change: {}", w.obs.status.message);
    assert_eq!(w.image("connector-canary"), "connector:1.0", "the canary followed");
    assert_eq!(w.image_sets().iter().filter(|(n, i)| n == "connector" && i == "connector:1.0").count(), 0, "nothing sent twice");
}
