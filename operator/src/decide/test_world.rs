//! Tests only: the world the decision core's transition tests run in. It plays the API server's
//! part (targets change when the decision says so, rollouts finish after a while) and the clock
//! is injected, so hours of soak run in microseconds.

pub(super) use crate::constants::{OWNER_ANNOTATION, condition as ct, reason};
pub(super) use crate::crd::*;
pub(super) use crate::decide::{
    Decision, Effect, NodeFacts, Observed, ReadError, Refused, analysis_due, decide, history_due,
    worth_writing,
};
pub(super) use crate::detector::Counts;
pub(super) use crate::target::{ON_DELETE, PodPlace, Rollout, TargetKey, TargetState};
pub(super) use chrono::{DateTime, Duration, Utc};
pub(super) use std::collections::{BTreeMap, BTreeSet};

pub(super) const ID: &str = "ops/connector-upgrade";

pub(super) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) fn key(name: &str) -> TargetKey {
    TargetKey { kind: WorkloadKind::DaemonSet, namespace: "kube-system".into(), name: name.into() }
}

pub(super) fn component(name: &str, image: &str) -> Component {
    Component {
        kind: WorkloadKind::DaemonSet,
        namespace: Some("kube-system".into()),
        name: name.into(),
        container: None,
        image: image.into(),
        also_containers: vec![],
        canary: None,
    }
}

pub(super) fn stage(name: &str, components: Vec<Component>) -> Stage {
    Stage {
        name: name.into(),
        components,
        soak: Duration_("30m"),
        progress_deadline: Duration_("10m"),
        require_approval: false,
    }
}

#[allow(non_snake_case)]
pub(super) fn Duration_(s: &str) -> crate::crd::Duration {
    crate::crd::Duration(s.into())
}

/// Canary on one connector DaemonSet, then the fleet's; no window; the built-in signal.
pub(super) fn spec() -> MaintenanceUpgradeSpec {
    MaintenanceUpgradeSpec {
        window: None,
        stages: vec![
            stage("canary", vec![component("connector-canary", "connector:2.0")]),
            stage("fleet", vec![component("connector", "connector:2.0")]),
        ],
        analysis: Analysis {
            interval: Duration_("1m"),
            baseline: BaselineSpec { observe: Duration_("10m"), lookback: Duration_("24h") },
            signals: vec![],
        },
        rollback: RollbackPolicy::default(),
        paused: false,
        approved_stages: vec![],
        notifications: None,
    }
}

/// The built-in signal (`pod-start-failures`, the default one's name) counting the pods that
/// `selector` selects: a spec's signals after an edit of it.
pub(super) fn builtin_selecting(selector: &str) -> Vec<Signal> {
    vec![Signal {
        name: DEFAULT_SIGNAL.into(),
        kubernetes: Some(KubernetesSignal { label_selector: Some(selector.into()), ..Default::default() }),
        prometheus: None,
        regression: RegressionRule::default(),
    }]
}

/// The same upgrade judged by a Prometheus signal with a week of history: a baseline that knows
/// the time of day, so the rule's own minimum effect applies (a 10-minute observation acts
/// only on increases of about ten times; see detector::reach).
pub(super) fn spec_with_history() -> MaintenanceUpgradeSpec {
    let mut s = spec();
    s.analysis.baseline.lookback = Duration_("168h");
    s.analysis.signals = vec![Signal {
        name: "scheduling-errors".into(),
        kubernetes: None,
        prometheus: Some(PrometheusSignal {
            address: "http://prometheus:9090".into(),
            errors: "errors".into(),
            attempts: "attempts".into(),
        }),
        regression: RegressionRule::default(),
    }];
    s
}

pub(super) fn daemonset(image: &str) -> TargetState {
    TargetState {
        resource_version: "1".into(),
        containers: vec![("connector".into(), image.into())],
        owner: None,
        owner_uid: None,
        known_good: None,
        known_good_digest: None,
        rollout: Rollout::Complete,
        running_digests: vec![("connector".into(), "sha256:good".into())],
        managed_by: None,
        uid: "ds-uid".into(),
        update_strategy: None,
        original_strategy: None,
        canary_settings_ours: false,
        handed_over: None,
        default_container: None,
        pods: None,
        desired_pods: 0,
        available_pods: 0,
        generation_observed: true,
        paused: false,
    }
}

/// The strategy the DaemonSets of the canary tests start with, as the API server defaults it.
pub(super) const ROLLING: &str =
    r#"{"rollingUpdate":{"maxSurge":0,"maxUnavailable":1},"type":"RollingUpdate"}"#;

/// A DaemonSet on `nodes` nodes (node-1 …), one Ready pod each, rolling one node at a time.
pub(super) fn daemonset_on(image: &str, nodes: usize) -> TargetState {
    let mut t = daemonset(image);
    t.update_strategy = Some(ROLLING.into());
    t.pods = Some((1..=nodes).map(|i| pod(&format!("node-{i}"), 0, image, true)).collect());
    t.desired_pods = nodes as i32;
    t.available_pods = nodes as i32;
    t
}

/// The revision hash a workload's pods of `image` carry: one per template.
pub(super) fn revision_of(image: &str) -> String {
    format!("rev-{}", image.rsplit(':').next().unwrap_or_default().replace('.', "-"))
}

/// An image as the API server admits it: with a webhook that pins images (Kyverno's defaults),
/// in full and pinned to a digest of its own (`docker.io/library/connector:2.0@sha256:…`).
fn admitted(pinning: bool, image: &str) -> String {
    if !pinning || image.contains('@') {
        return image.to_string();
    }
    use std::hash::{Hash, Hasher};
    let digest: String = (0..4u8)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (image, i).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect();
    let full = if image.contains('/') { image.to_string() } else { format!("docker.io/library/{image}") };
    format!("{full}@sha256:{digest}")
}

pub(super) fn pod(node: &str, generation: usize, image: &str, ready: bool) -> PodPlace {
    PodPlace {
        name: format!("connector-{node}-{generation}"),
        uid: format!("uid-{node}-{generation}"),
        node: node.into(),
        images: vec![("connector".into(), image.into())],
        ready,
        deleting: false,
        revision: revision_of(image),
    }
}

/// A Deployment's pod `name`, placed on no node in particular.
pub(super) fn replica(name: &str, image: &str, ready: bool) -> PodPlace {
    PodPlace {
        name: format!("web-{name}"),
        uid: format!("uid-web-{name}"),
        node: "node-1".into(),
        images: vec![("connector".into(), image.into())],
        ready,
        deleting: false,
        revision: revision_of(image),
    }
}

/// The spec's targets with a registrar sidecar, the first upgraded with it
/// (`alsoContainers`): driver and sidecar bumped by one chart release.
pub(super) fn with_sidecar() -> World {
    let mut s = spec();
    for c in s.stages.iter_mut().flat_map(|s| &mut s.components) {
        c.container = Some("connector".into());
    }
    s.stages[0].components[0].also_containers =
        vec![ContainerImage { container: "registrar".into(), image: "registrar:2.0".into() }];
    let mut w = World::new(s);
    for name in ["connector-canary", "connector"] {
        w.target_mut(name).containers.push(("registrar".into(), "registrar:1.0".into()));
    }
    w
}

/// A canary on `first` nodes of the connector DaemonSet, widened to `then`, then all of it.
pub(super) fn canary_spec(first: Portion, then: Option<Portion>) -> MaintenanceUpgradeSpec {
    let mut s = spec();
    let part = |nodes: Portion| Component {
        canary: Some(Canary { nodes: Some(nodes), node_selector: None, replicas: None }),
        ..component("connector", "connector:2.0")
    };
    s.stages = vec![stage("canary", vec![part(first)])];
    if let Some(then) = then {
        s.stages.push(stage("wider", vec![part(then)]));
    }
    s.stages.push(stage("fleet", vec![component("connector", "connector:2.0")]));
    s
}

/// An error rate of new pods as a function of the world.
pub(super) type Rate = Box<dyn Fn(&World) -> f64>;

pub(super) struct World {
    pub(super) obs: Observed,
    /// Error rate of new pods as a function of the world: what the fault does.
    pub(super) error_rate: Rate,
    /// Error rate of new pods on a DaemonSet canary's nodes, when it differs from the rest's
    /// (a regression of the canary alone). The canary's nodes are a share of six.
    pub(super) canary_error_rate: Option<Rate>,
    pub(super) attempts_per_minute: u64,
    /// When each in-flight rollout completes; None = stuck.
    pub(super) rollouts: BTreeMap<TargetKey, Option<DateTime<Utc>>>,
    pub(super) stuck: bool,
    pub(super) effects: Vec<Effect>,
    pub(super) events: Vec<String>,
    /// The reasons of the Events that were Warnings, in order.
    pub(super) warnings: Vec<String>,
    pub(super) prometheus_down: bool,
    /// Prometheus holds no data of what the looks missed (it was away too).
    pub(super) prometheus_lost_data: bool,
    /// Prometheus refuses the spec's queries as invalid PromQL (bad_data): a permanent failure.
    pub(super) query_refused: bool,
    /// The API server refuses every write of a target's rollout settings (an admission webhook).
    pub(super) refuse_strategy: bool,
    /// How many minutes of the built-in signal the operator recorded before (0: none).
    pub(super) recorded_minutes: i64,
    /// Pods of this image never become Ready (a bad canary).
    pub(super) failing_image: Option<String>,
    /// Pods of this image, once deleted, never go away (a node that stopped answering).
    pub(super) stuck_terminating: Option<String>,
    /// Nodes that stopped answering: their pods are not Ready, and once deleted never go away.
    pub(super) unreachable: BTreeSet<String>,
    /// An admission webhook pins every image written to its digest, on pods and on the
    /// workloads' templates (Kyverno's `verifyImages` with its defaults): `connector:2.0` set by
    /// the operator reads `docker.io/library/connector:2.0@sha256:…`.
    pub(super) pinning: bool,
    /// When each new pod (by UID) becomes Ready.
    pub(super) starting: BTreeMap<String, DateTime<Utc>>,
    /// The status as the API server holds it: decisions are written only when worth writing.
    pub(super) written: Option<MaintenanceUpgradeStatus>,
    pub(super) writes: usize,
}

impl World {
    pub(super) fn new(spec: MaintenanceUpgradeSpec) -> World {
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
                deleting: false,
                targets,
                live_owners: Default::default(),
                spec_problems: vec![],
                // The platform team's namespace, trusted to upgrade kube-system.
                trusted_namespaces: vec!["ops".into()],
                default_webhook: false,
                deliveries: vec![],
                pods_watched_since: Some(t("2026-11-23T03:00:00Z")),
                selected_nodes: BTreeMap::new(),
                node_facts: BTreeMap::new(),
                nodes_listed: true,
                samples: BTreeMap::new(),
                history: BTreeMap::new(),
                strategy_refused: BTreeMap::new(),
                now: t("2026-11-24T03:00:00Z"),
            },
            error_rate: Box::new(|_| 0.01),
            canary_error_rate: None,
            attempts_per_minute: 100,
            rollouts: BTreeMap::new(),
            stuck: false,
            effects: vec![],
            events: vec![],
            warnings: vec![],
            prometheus_down: false,
            prometheus_lost_data: false,
            query_refused: false,
            refuse_strategy: false,
            failing_image: None,
            pinning: false,
            stuck_terminating: None,
            unreachable: BTreeSet::new(),
            starting: BTreeMap::new(),
            recorded_minutes: 0,
            written: None,
            writes: 0,
        }
    }

    pub(super) fn image(&self, name: &str) -> String {
        self.obs.targets[&key(name)].as_ref().unwrap().containers[0].1.clone()
    }

    pub(super) fn phase(&self) -> Phase {
        self.obs.status.phase
    }

    pub(super) fn condition(&self, type_: &str) -> &Condition {
        self.obs.status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    pub(super) fn target_mut(&mut self, name: &str) -> &mut TargetState {
        self.obs.targets.get_mut(&key(name)).unwrap().as_mut().unwrap()
    }

    /// One reconcile: read the due signals, decide, let the world carry out the effect.
    pub(super) fn step(&mut self) -> Decision {
        // Rollouts finish on their own.
        let now = self.obs.now;
        for (k, done) in self.rollouts.clone() {
            if done.is_some_and(|d| now >= d) {
                if let Some(Some(t)) = self.obs.targets.get_mut(&k) {
                    t.rollout = Rollout::Complete;
                    let image = t.containers[0].1.clone();
                    if k.kind == WorkloadKind::Deployment {
                        // Its ReplicaSets: the current one's pods kept, made up to its replicas,
                        // every other one's scaled away.
                        let pods = t.pods.get_or_insert_with(Vec::new);
                        pods.retain(|p| p.images[0].1 == image);
                        for i in pods.len()..usize::try_from(t.desired_pods).unwrap() {
                            pods.push(replica(&format!("rolled-{i}"), &image, true));
                        }
                        pods.truncate(usize::try_from(t.desired_pods).unwrap());
                    }
                    // A DaemonSet's own rolling update replaces every pod with the template's.
                    let pinning = self.pinning;
                    for p in
                        t.pods.iter_mut().flatten().filter(|p| !crate::image::runs(&p.images[0].1, &image))
                    {
                        let node = p.node.clone();
                        *p = pod(&node, 9, &admitted(pinning, &image), true);
                    }
                }
                self.rollouts.remove(&k);
            }
        }
        // A Deployment under a canary's surge: its controller makes that many new pods beside
        // the old ones, which it never counts available, so it takes none of the old away.
        for (k, t) in self.obs.targets.iter_mut() {
            let Some(t) = t.as_mut().filter(|_| k.kind == WorkloadKind::Deployment) else { continue };
            let Some(surge) = super::canary::surge_of(t.update_strategy.as_deref()) else { continue };
            let image = t.containers[0].1.clone();
            let pods = t.pods.get_or_insert_with(Vec::new);
            for i in pods.iter().filter(|p| p.images[0].1 == image).count()..surge {
                let p = replica(&format!("new-{i}"), &image, false);
                self.starting.insert(p.uid.clone(), now + Duration::seconds(20));
                pods.push(p);
            }
        }
        // A DaemonSet's pods made again become Ready after a while (a failing image never).
        let failing = self.failing_image.clone();
        for (k, t) in self.obs.targets.iter_mut() {
            let Some(t) = t.as_mut() else { continue };
            for p in t.pods.iter_mut().flatten() {
                let ready_at = self.starting.get(&p.uid).copied();
                if ready_at.is_some_and(|at| now >= at) && failing.as_deref() != Some(p.images[0].1.as_str())
                {
                    p.ready = true;
                }
            }
            let Some(pods) = t.pods.as_ref().filter(|_| k.kind != WorkloadKind::Deployment) else { continue };
            // The DaemonSet's own counts: every node shows its pod in this world.
            t.desired_pods = pods.len() as i32;
            t.available_pods = pods.iter().filter(|p| p.ready && !p.deleting).count() as i32;
            if t.update_strategy.as_deref() == Some(ON_DELETE) {
                let image = t.containers[0].1.clone();
                let done = pods.iter().all(|p| p.ready && p.images[0].1 == image);
                t.rollout = if done { Rollout::Complete } else { Rollout::InProgress("OnDelete".into()) };
            }
        }
        self.obs.samples.clear();
        self.obs.history.clear();
        // The canary's share of the attempts: its nodes of six.
        let canary_share = self
            .obs
            .status
            .analysis
            .iter()
            .find(|a| !a.nodes.is_empty())
            .map_or(0.0, |a| a.nodes.len() as f64 / 6.0);
        // As observe does: a deleted upgrade's look reads no signal and no history.
        let reads = !self.obs.deleting;
        for s in history_due(&self.obs.spec, &self.obs.status, now).into_iter().filter(|_| reads) {
            // A week of the same traffic at the rate of the world before any change, from
            // Prometheus, or as much as the operator recorded of the built-in signal.
            let rate = (self.error_rate)(self);
            let share = if s.canary_nodes().is_some() { canary_share } else { 1.0 };
            let attempts = (self.attempts_per_minute as f64 * share).round() as u64;
            let errors = (rate * attempts as f64).round() as u64;
            let minutes = if s.prometheus.is_some() { 7 * 24 * 60 } else { self.recorded_minutes };
            let points: Vec<_> = (0..minutes)
                .rev()
                .map(|m| (now - Duration::minutes(m), Counts { attempts, errors }))
                .collect();
            let r = if s.prometheus.is_some() && self.query_refused {
                Err(refused())
            } else if s.prometheus.is_some() && self.prometheus_down {
                Err(ReadError::Transient("connection refused".into()))
            } else if s.prometheus.is_none() && minutes == 0 {
                Err(ReadError::Permanent(
                    "the operator does not record the built-in signal (run --record-history)".into(),
                ))
            } else {
                Ok(points)
            };
            self.obs.history.insert(s.name, r);
        }
        let rate = (self.error_rate)(self);
        let canary_rate = self.canary_error_rate.as_ref().map_or(rate, |f| f(self));
        for (s, from, to) in analysis_due(&self.obs.spec, &self.obs.status, now, self.obs.pods_watched_since)
            .into_iter()
            .filter(|_| reads)
        {
            let minutes = ((to - from).num_seconds() / 60) as u64;
            let all = (self.attempts_per_minute * minutes) as f64;
            let count = |attempts: f64, rate: f64| Counts {
                attempts: attempts.round() as u64,
                errors: (rate * attempts).round() as u64,
            };
            let counts = if s.canary_nodes().is_some() {
                let control = count(all * (1.0 - canary_share), rate);
                self.obs.samples.insert(s.control().unwrap().name, Ok((control, from, to)));
                count(all * canary_share, canary_rate)
            } else {
                count(all * (1.0 - canary_share), rate) + count(all * canary_share, canary_rate)
            };
            let r = if self.query_refused {
                Err(refused())
            } else if self.prometheus_down {
                Err(ReadError::Transient("connection refused".into()))
            } else if self.prometheus_lost_data && s.prometheus.is_some() && to < now {
                Err(ReadError::Gap { to, why: "no data".into() })
            } else {
                Ok((counts, from, to))
            };
            self.obs.samples.insert(s.name, r);
        }
        let d = decide(&self.obs);
        // Refused as the act step is: no Event, no status write, the refusal remembered (and
        // forgotten by a write of the settings that goes through).
        if let Some(Effect::SetStrategy { target, .. }) = &d.effect {
            if self.refuse_strategy {
                let r = self
                    .obs
                    .strategy_refused
                    .entry(target.clone())
                    .or_insert(Refused { since: now, last: now });
                r.last = now;
                self.effects.push(d.effect.clone().unwrap());
                return d;
            }
            self.obs.strategy_refused.remove(target);
        }
        for n in &d.events {
            self.events.push(format!("{}: {}", n.reason, n.message));
            if n.warning {
                self.warnings.push(n.reason.to_string());
            }
        }
        if let Some(e) = &d.effect {
            self.carry_out(e);
            self.effects.push(e.clone());
        }
        if worth_writing(&self.obs.spec, self.written.as_ref(), &d) {
            self.written = Some(d.status.clone());
            self.writes += 1;
        }
        self.obs.status = d.status.clone();
        d
    }

    /// Another replica takes over, with warm watches: it decides from the written status.
    pub(super) fn fail_over(&mut self) {
        self.obs.status = self.written.clone().unwrap_or_default();
    }

    pub(super) fn carry_out(&mut self, e: &Effect) {
        let now = self.obs.now;
        let stuck = self.stuck;
        match e {
            Effect::Claim { claims } => {
                for c in claims {
                    let t = self.obs.targets.get_mut(&c.target).unwrap().as_mut().unwrap();
                    t.owner = Some(ID.into());
                    t.owner_uid = Some(c.owner_uid.clone());
                    t.known_good = Some(c.known_good.clone());
                    t.known_good_digest = c.known_good_digest.clone();
                    t.original_strategy = c.original_strategy.clone();
                    bump(t);
                }
            }
            Effect::SetStrategy { target, resource_version, strategy, handed_over } => {
                let t = self.obs.targets.get_mut(target).unwrap().as_mut().unwrap();
                assert_eq!(
                    &t.resource_version, resource_version,
                    "patches carry the observed resourceVersion"
                );
                assert_eq!(t.owner_uid.as_deref(), Some(self.obs.uid.as_str()), "only to targets we own");
                t.update_strategy = Some(strategy.clone());
                t.canary_settings_ours = true;
                if handed_over.is_some() {
                    t.handed_over = handed_over.clone();
                }
                bump(t);
                if strategy != ON_DELETE && super::canary::surge_of(Some(strategy)).is_none() {
                    t.rollout = Rollout::InProgress("rolling".into());
                    self.rollouts
                        .insert(target.clone(), if stuck { None } else { Some(now + Duration::seconds(40)) });
                }
            }
            Effect::DeletePods { target, pods } => {
                let t = self.obs.targets.get_mut(target).unwrap().as_mut().unwrap();
                let image = t.containers[0].1.clone();
                for (name, uid) in pods {
                    let Some(p) = t.pods.iter_mut().flatten().find(|p| p.uid == *uid) else { continue };
                    assert_eq!(&p.name, name);
                    if self.stuck_terminating.as_deref() == Some(p.images[0].1.as_str())
                        || self.unreachable.contains(&p.node)
                    {
                        p.deleting = true;
                        p.ready = false;
                        continue;
                    }
                    // The DaemonSet makes it again at once, from its current template.
                    let generation = p.name.rsplit('-').next().unwrap().parse::<usize>().unwrap() + 1;
                    let node = p.node.clone();
                    *p = pod(&node, generation, &admitted(self.pinning, &image), false);
                    self.starting.insert(p.uid.clone(), now + Duration::seconds(20));
                }
            }
            Effect::SetImage { target, container, index, image, resource_version, more, strategy } => {
                let pinning = self.pinning;
                let t = self.obs.targets.get_mut(target).unwrap().as_mut().unwrap();
                assert_eq!(
                    &t.resource_version, resource_version,
                    "patches carry the observed resourceVersion"
                );
                assert_eq!(
                    (t.owner.as_deref(), t.owner_uid.as_deref()),
                    (Some(ID), Some(self.obs.uid.as_str())),
                    "image patches go only to targets that carry this upgrade's mark (the API server tests it)"
                );
                let images = std::iter::once((*index, container, image))
                    .chain(more.iter().map(|(i, c, m)| (*i, c, m)));
                for (index, container, image) in images {
                    assert!(!image.is_empty(), "no empty image is ever written");
                    assert_eq!(&t.containers[index].0, container, "the index names the container");
                    // Pinned on the workload too: the webhook's rules apply to pod templates.
                    t.containers[index].1 = admitted(pinning, image);
                }
                if let Some((strategy, original)) = strategy {
                    t.update_strategy = Some(strategy.clone());
                    t.canary_settings_ours = true;
                    t.original_strategy = Some(original.clone());
                }
                bump(t);
                // Under OnDelete no pod changes until the operator deletes it; under a canary's
                // surge, the pods are made above.
                let surge = super::canary::surge_of(t.update_strategy.as_deref()).is_some();
                if t.update_strategy.as_deref() != Some(ON_DELETE) && !surge {
                    t.rollout = Rollout::InProgress("rolling".into());
                    self.rollouts
                        .insert(target.clone(), if stuck { None } else { Some(now + Duration::seconds(40)) });
                }
            }
            Effect::Release { targets, keep_strategy } => {
                for (k, _) in targets {
                    if let Some(Some(t)) = self.obs.targets.get_mut(k) {
                        t.owner = None;
                        t.owner_uid = None;
                        t.known_good = None;
                        t.known_good_digest = None;
                        if !keep_strategy.contains(k) {
                            t.original_strategy = None;
                        }
                        bump(t);
                    }
                }
            }
        }
    }

    /// Step until `done` holds, advancing the clock by each decision's requeue time.
    pub(super) fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) {
        self.run(limit, done, false);
    }

    /// `run_until`, with the status write of the look that reaches `done` lost: the process went
    /// away after its effect, before the write.
    pub(super) fn run_until_unwritten(&mut self, limit: Duration, done: impl Fn(&World) -> bool) {
        self.run(limit, done, true);
    }

    fn run(&mut self, limit: Duration, done: impl Fn(&World) -> bool, lose_last_write: bool) {
        let end = self.obs.now + limit;
        while !done(self) {
            assert!(
                self.obs.now < end,
                "not reached by {end}; phase {:?}: {}",
                self.phase(),
                self.obs.status.message
            );
            let written = self.written.clone();
            self.look();
            if lose_last_write && done(self) {
                self.written = written;
            }
        }
    }

    /// One step, then the clock advanced by its requeue time.
    pub(super) fn look(&mut self) {
        let d = self.step();
        self.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
    }

    /// The pods deleted, by name, in order.
    pub(super) fn deleted(&self) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::DeletePods { pods, .. } => Some(pods.iter().map(|(n, _)| n.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The targets claimed, in order.
    pub(super) fn claimed(&self) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Claim { claims } => Some(claims.iter().map(|c| c.target.name.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(super) fn image_sets(&self) -> Vec<(String, String)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::SetImage { target, image, .. } => Some((target.name.clone(), image.clone())),
                _ => None,
            })
            .collect()
    }
}

/// What the observe step reports of a query Prometheus answers with `bad_data`.
pub(super) fn refused() -> ReadError {
    ReadError::Permanent(
        "Prometheus at http://prometheus:9090 refused the query errors as invalid PromQL (bad_data); fix the query in the spec".into(),
    )
}

pub(super) fn bump(t: &mut TargetState) {
    t.resource_version = (t.resource_version.parse::<u64>().unwrap() + 1).to_string();
}

/// Whether stage `stage` soaks.
pub(super) fn soaking(w: &World, stage: usize) -> bool {
    w.obs.status.stages.get(stage).is_some_and(|s| s.phase == StagePhase::Soaking)
}

/// Ended, and its targets released (the look after the final phase).
pub(super) fn terminal(w: &World) -> bool {
    w.phase().is_terminal() && w.obs.status.released_at.is_some()
}

pub(super) fn creeping_after(component: &'static str, per_minute: f64) -> Box<dyn Fn(&World) -> f64> {
    // A slow ramp once `component` runs the new image: +per_minute of error rate each minute.
    Box::new(move |w: &World| {
        let applied = w
            .obs
            .status
            .stages
            .iter()
            .flat_map(|s| &s.components)
            .find(|c| c.name == component)
            .and_then(|c| c.applied_at);
        match applied {
            Some(at) if crate::image::runs(&w.image(component), "connector:2.0") => {
                0.01 + per_minute * (w.obs.now - at).num_minutes() as f64
            }
            _ => 0.01,
        }
    })
}

pub(super) fn tue_thu_window() -> Window {
    Window {
        time_zone: "America/New_York".into(),
        recurring: vec![RecurringWindow {
            days: vec![Weekday::Tue, Weekday::Thu],
            start: "22:00".into(),
            duration: Duration_("4h"),
        }],
        exclusions: vec![],
        not_before: None,
        deadline: None,
        stage_policy: StagePolicy::WaitForNextWindow,
    }
}
