//! Observe and act, the thin shell around `decide`: needs a client. Reads the MaintenanceUpgrade,
//! its targets and its signals; sends the one target change `decide` asks for; writes the status
//! with server-side apply when it is worth writing; publishes Events.
//!
//! What wakes an upgrade: a change to its spec (not to its status: our own writes wake nothing),
//! a change to a target it claimed (`target_cache`), and the requeue time of its last decision.

use crate::constants::{CONTROLLER_NAME, FIELD_MANAGER, reason};
use crate::crd::{MaintenanceUpgrade, MaintenanceUpgradeStatus, Signal, WorkloadKind};
use crate::crd_presence as crd;
use crate::decide::{self, Decision, Effect, HistoryResult, Observed, SampleResult};
use crate::error::{Error, Result};
use crate::leader::{self, LeaseConfig};
use crate::metrics::{Metrics, ResultLabel, SignalGauges, SignalLabels, UpgradeLabels};
use crate::namespaces::Namespaces;
use crate::pod_cache::{self, SharedPodIndex};
use crate::status_memory::{Base, StatusMemory};
use crate::target::{self, TargetKey, TargetState};
use crate::target_cache::TargetCache;
use crate::{selector, signals};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as EventsV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, GetParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;
use tracing::{error, info, instrument, warn};

/// Upgrades reconciled at once. Each look holds its reads in memory, and the API server is the
/// bottleneck well before this: more only raises the peak memory when many start together.
const CONCURRENT_RECONCILES: u16 = 32;

pub struct Context {
    pub client: Client,
    /// Reporting instance on Events (the pod name in a cluster).
    pub instance: String,
    pub http: reqwest::Client,
    pub metrics: Metrics,
    /// What the built-in signal reads, fed by one watch of pods and one of Warning Events.
    pub pods: SharedPodIndex,
    /// Which namespaces exist, for signals that name them.
    pub namespaces: Namespaces,
    /// The targets upgrades have claimed, watched.
    pub targets: TargetCache,
    /// What was last written for each upgrade and what was decided since.
    pub statuses: StatusMemory,
    /// The one namespace this operator watches (`run --namespace`), or None for all.
    pub scope: Option<String>,
    /// Namespaces whose upgrades may target workloads in other namespaces.
    pub trusted_namespaces: Vec<String>,
}

/// How this operator was asked to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Reporting instance on Events (the pod name in a cluster).
    pub instance: Option<String>,
    /// The one namespace to watch (`run --namespace`), or None for all.
    pub scope: Option<String>,
    /// Namespaces whose upgrades may target workloads in other namespaces (`--trusted-namespaces`).
    pub trusted_namespaces: Vec<String>,
}

impl Context {
    pub fn new(client: Client, opts: Options, metrics: Metrics) -> Self {
        let Options { instance, scope, trusted_namespaces } = opts;
        let pods = pod_cache::start(&client, scope.as_deref());
        let namespaces = Namespaces::start(&client);
        let targets = TargetCache::start(&client, scope.as_deref());
        let http = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(10))
            .build()
            .expect("a default HTTP client builds");
        let instance = instance.unwrap_or_else(|| format!("{CONTROLLER_NAME}-{}", std::process::id()));
        Context {
            instance,
            client,
            http,
            metrics,
            pods,
            namespaces,
            targets,
            statuses: StatusMemory::default(),
            scope,
            trusted_namespaces,
        }
    }
}

/// Run the controller over the upgrades of one namespace or of all of them, as the leader when
/// `lease` is given, until `shutdown` completes; what `shutdown` said, or why it could not run.
pub async fn run(
    client: Client,
    opts: Options,
    metrics: Metrics,
    lease: Option<LeaseConfig>,
    shutdown: impl Future<Output = &'static str>,
) -> std::result::Result<&'static str, String> {
    let api: Api<MaintenanceUpgrade> = match &opts.scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = crd::wait_until_installed(&api) => {}
        signal = &mut shutdown => return Ok(signal),
    }
    let ctx = Arc::new(Context::new(client.clone(), opts, metrics));
    // Said once when the CRD goes away under a running operator, and once when it is back.
    let crd_missing = Arc::new(AtomicBool::new(false));
    let controller = || reconcile_all(api.clone(), ctx.clone(), crd_missing.clone());
    match lease {
        None => Ok(tokio::select! {
            _ = controller() => "the controller stopped",
            signal = &mut shutdown => signal,
        }),
        Some(cfg) => leader::lead_while_holding(client, &cfg, controller, shutdown)
            .await
            .map_err(|e| format!("leader election on Lease {}/{} failed: {e}", cfg.namespace, cfg.name)),
    }
}

/// The Controller itself, until it stops.
async fn reconcile_all(api: Api<MaintenanceUpgrade>, ctx: Arc<Context>, crd_missing: Arc<AtomicBool>) {
    // The store keeps what the decisions read (no managedFields); only spec changes wake an
    // upgrade, so that our own status writes do not.
    let (reader, writer) = reflector::store();
    let upgrades = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|mu: &mut MaintenanceUpgrade| mu.metadata.managed_fields = None)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    Controller::for_stream(upgrades, reader)
        .with_config(controller::Config::default().concurrency(CONCURRENT_RECONCILES))
        .reconcile_on(ctx.targets.wake_ups())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            let crd_missing = crd_missing.clone();
            async move {
                match res {
                    Err(e) if crd::is_missing(&e) => {
                        if !crd_missing.swap(true, Ordering::Relaxed) {
                            error!("{}", crd::missing_line());
                        }
                    }
                    Err(e) => warn!("reconcile failed: {e}"),
                    Ok(_) => {
                        if crd_missing.swap(false, Ordering::Relaxed) {
                            info!("{} is installed again; reconciling", MaintenanceUpgrade::crd_name());
                        }
                    }
                }
            }
        })
        .await;
}

fn error_policy(mu: Arc<MaintenanceUpgrade>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconciles.get_or_create(&ResultLabel { result: err.metric_label().into() }).inc();
    warn!(upgrade = %mu.name_any(), error = %err, label = err.metric_label(), "retrying");
    Action::requeue(StdDuration::from_secs(5))
}

#[instrument(skip_all, fields(upgrade = %format!("{}/{}", mu.namespace().unwrap_or_default(), mu.name_any())))]
pub async fn reconcile(mu: Arc<MaintenanceUpgrade>, ctx: Arc<Context>) -> Result<Action> {
    if mu.meta().deletion_timestamp.is_some() {
        ctx.statuses.forget(&mu);
        return Ok(Action::await_change());
    }
    let base = ctx.statuses.base(&mu);
    let observed = observe(&mu, base.current.clone(), &ctx, Utc::now()).await?;
    let decision = decide::decide(&observed);
    act(&mu, &observed, &base, decision, &ctx).await
}

// ---------------------------------------------------------------------------------------------
// Observe

/// What `decide` looks at, for the upgrade `mu` with the status to decide from.
pub async fn observe(
    mu: &MaintenanceUpgrade,
    status: MaintenanceUpgradeStatus,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Observed> {
    let ns = mu.namespace().unwrap_or_default();
    let mut targets = BTreeMap::new();
    // An upgrade that has ended reads nothing: the decision keeps its status as it is.
    let ended = status.phase.is_terminal();
    // Running digests are recorded when a target is claimed: read for those not claimed yet.
    let unclaimed_by_us =
        status.claimed_at.is_none().then_some(mu.metadata.uid.as_deref().unwrap_or_default());
    // The targets the spec names and those the status holds (the same, unless the spec was
    // written around its validation: what was changed must still be seen to be reverted).
    let keys = mu.spec.stages.iter().flat_map(|s| &s.components).map(|c| TargetKey {
        kind: c.kind,
        namespace: c.namespace_or(&ns).to_string(),
        name: c.name.clone(),
    });
    let recorded = status.stages.iter().flat_map(|s| &s.components).map(|c| TargetKey {
        kind: c.kind,
        namespace: c.namespace.clone(),
        name: c.name.clone(),
    });
    // The watch of claimed targets has them; those not claimed yet (their running digests are
    // read then too) or outside the watch are read from the API, side by side.
    let mut reads = vec![];
    for key in keys.chain(recorded).filter(|_| !ended) {
        if targets.contains_key(&key) {
            continue;
        }
        match ctx.targets.get(&key) {
            Some(state) if unclaimed_by_us.is_none_or(|uid| state.owner_uid.as_deref() == Some(uid)) => {
                targets.insert(key, Some(state));
            }
            _ => {
                ctx.targets.forget(&key);
                targets.insert(key.clone(), None);
                reads.push(key);
            }
        }
    }
    let read = futures::future::try_join_all(reads.iter().map(|k| read_target(ctx, k, unclaimed_by_us)));
    let states = read.await?;
    for (key, state) in reads.into_iter().zip(states) {
        targets.insert(key, state);
    }
    // Until every target is claimed: do the other upgrades named as owners still exist? A read
    // that fails counts as yes, so that nothing is taken over on a doubt.
    let mut live_owners = std::collections::BTreeSet::new();
    let id = format!("{ns}/{}", mu.name_any());
    if status.claimed_at.is_none() {
        let owners: std::collections::BTreeSet<String> =
            targets.values().flatten().filter_map(|t| t.owner.clone()).filter(|o| *o != id).collect();
        for owner in owners {
            let exists = match owner.split_once('/') {
                Some((ons, oname)) => !matches!(
                    Api::<MaintenanceUpgrade>::namespaced(ctx.client.clone(), ons).get_opt(oname).await,
                    Ok(None)
                ),
                None => true,
            };
            if exists {
                live_owners.insert(owner);
            }
        }
    }
    // What only the cluster can tell is wrong with the spec.
    let mut spec_problems = vec![];
    for s in mu.spec.effective_signals() {
        let Some(k) = &s.kubernetes else { continue };
        let missing = ctx.namespaces.missing(&k.namespaces).await;
        for ns in &k.namespaces {
            if missing.contains(ns) {
                spec_problems.push(format!(
                    "signal {}: namespace {ns} does not exist; create it or remove it from the signal's namespaces",
                    s.name
                ));
            } else if let Some(scope) = ctx.scope.as_ref().filter(|scope| *scope != ns) {
                spec_problems.push(format!(
                    "signal {}: namespace {ns} is outside what this operator watches (run --namespace {scope}); \
                     remove it from the signal's namespaces, or run the operator over every namespace",
                    s.name
                ));
            }
        }
    }
    let pods_watched_since = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner()).watched_since();
    let mut samples = BTreeMap::new();
    for (signal, from) in decide::analysis_due(&mu.spec, &status, now) {
        samples.insert(signal.name.clone(), read_signal(ctx, &signal, from, now).await);
    }
    let mut history = BTreeMap::new();
    for signal in decide::history_due(&mu.spec, &status) {
        history.insert(signal.name.clone(), read_history(ctx, &signal, now, &mu.spec).await);
    }
    Ok(Observed {
        id,
        uid: mu.metadata.uid.clone().unwrap_or_default(),
        namespace: ns,
        generation: mu.metadata.generation.unwrap_or(0),
        spec: mu.spec.clone(),
        status,
        targets,
        live_owners,
        spec_problems,
        trusted_namespaces: ctx.trusted_namespaces.clone(),
        pods_watched_since,
        samples,
        history,
        now,
    })
}

/// One target of kind `K` from the API, None if there is none.
async fn get_target<K>(client: &Client, key: &TargetKey, gp: &GetParams) -> Result<Option<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + serde::de::DeserializeOwned,
    K: std::fmt::Debug,
    K::DynamicType: Default,
{
    match Api::<K>::namespaced(client.clone(), &key.namespace).get_with(&key.name, gp).await {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(None),
        Err(e) => Err(Error::Read(key.to_string(), e)),
    }
}

/// Read a target from the API; with the running digests of its pods unless `digests_unless_owned_by`
/// is None or the UID it is owned by. The digests come from the shared pod watch where it covers
/// the target's namespace, from a LIST otherwise.
async fn read_target(
    ctx: &Context,
    key: &TargetKey,
    digests_unless_owned_by: Option<&str>,
) -> Result<Option<TargetState>> {
    let (client, ns) = (&ctx.client, key.namespace.as_str());
    let read_err = |e| Error::Read(key.to_string(), e);
    // Before the claim, from the API server's watch cache: cheaper than a read from etcd, and the
    // claim patch carries the resourceVersion read, so a stale read is refused and read again.
    // After it, from etcd: a read older than our own patch could look like a change by hand.
    let gp = if digests_unless_owned_by.is_some() { GetParams::any() } else { GetParams::default() };
    let (mut state, selector) = match key.kind {
        WorkloadKind::Deployment => match get_target::<Deployment>(client, key, &gp).await? {
            None => return Ok(None),
            Some(d) => (target::from_deployment(&d), d.spec.map(|s| s.selector)),
        },
        WorkloadKind::DaemonSet => match get_target::<DaemonSet>(client, key, &gp).await? {
            None => return Ok(None),
            Some(d) => (target::from_daemonset(&d), d.spec.map(|s| s.selector)),
        },
        WorkloadKind::StatefulSet => match get_target::<StatefulSet>(client, key, &gp).await? {
            None => return Ok(None),
            Some(s) => (target::from_statefulset(&s), s.spec.map(|s| s.selector)),
        },
    };
    // The running digest is only recorded when the target is claimed.
    let labels = selector.and_then(|s| s.match_labels).unwrap_or_default();
    let digests = digests_unless_owned_by.is_some_and(|uid| state.owner_uid.as_deref() != Some(uid));
    let watched = ctx.scope.as_deref().is_none_or(|scope| scope == ns);
    let from_watch = (digests && watched && !labels.is_empty())
        .then(|| {
            ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner()).running_digests(ns, &labels)
        })
        .flatten();
    if let Some(from_watch) = from_watch {
        state.running_digests = from_watch;
    } else if digests && !labels.is_empty() {
        let sel = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let pods = Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&sel).limit(20))
            .await
            .map_err(read_err)?;
        for p in pods {
            for cs in p.status.and_then(|s| s.container_statuses).unwrap_or_default() {
                if !cs.image_id.is_empty() && !state.running_digests.iter().any(|(n, _)| *n == cs.name) {
                    state.running_digests.push((cs.name, cs.image_id));
                }
            }
        }
    }
    Ok(Some(state))
}

async fn read_signal(ctx: &Context, signal: &Signal, from: DateTime<Utc>, to: DateTime<Utc>) -> SampleResult {
    let counts = if let Some(k) = &signal.kubernetes {
        let limit = k.pending_limit.parse().map_err(|e| e.to_string())?;
        let selector = selector::parse(k.label_selector.as_deref().unwrap_or_default())?;
        let pods = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !pods.ready() {
            return Err("the watch of pods and their failure Events is still listing them".into());
        }
        pods.counts(&k.namespaces, &selector, from, to, limit)
    } else if let Some(p) = &signal.prometheus {
        let span = to - from;
        let attempts =
            signals::prom_instant(&ctx.http, &p.address, &signals::render_query(&p.attempts, span), to)
                .await
                .map_err(|e| e.to_string())?;
        let errors =
            signals::prom_instant(&ctx.http, &p.address, &signals::render_query(&p.errors, span), to)
                .await
                .map_err(no_errors_hint)?;
        signals::counts(attempts, errors)
    } else {
        return Err("the signal has no provider".into());
    };
    Ok((counts, from, to))
}

/// An empty errors answer is never read as zero (a mistyped query would pass for healthy), but
/// the usual cause has a simple fix.
fn no_errors_hint(e: Error) -> String {
    match e {
        Error::PromNoData(_) => format!(
            "{e} (a counter with no failures yet has no series: end the errors query with `or vector(0)`)"
        ),
        e => e.to_string(),
    }
}

async fn read_history(
    ctx: &Context,
    signal: &Signal,
    now: DateTime<Utc>,
    spec: &crate::crd::MaintenanceUpgradeSpec,
) -> HistoryResult {
    let Some(p) = &signal.prometheus else { return Err("the signal has no history".into()) };
    let lookback = spec.analysis.baseline.lookback.parse().map_err(|e| e.to_string())?;
    let step = spec.analysis.interval.parse().map_err(|e| e.to_string())?;
    let from = now - lookback;
    let attempts = signals::prom_range(
        &ctx.http,
        &p.address,
        &signals::render_query(&p.attempts, step),
        from,
        now,
        step,
    )
    .await
    .map_err(|e| e.to_string())?;
    let errors =
        signals::prom_range(&ctx.http, &p.address, &signals::render_query(&p.errors, step), from, now, step)
            .await
            .map_err(no_errors_hint)?;
    let errors: BTreeMap<DateTime<Utc>, f64> = errors.into_iter().collect();
    // A step without an errors value had no errors series yet (no failures so far).
    Ok(attempts
        .into_iter()
        .map(|(t, a)| (t, signals::counts(a, errors.get(&t).copied().unwrap_or(0.0))))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Act

/// Carry out `decision`, taken from `base`.
pub async fn act(
    mu: &MaintenanceUpgrade,
    observed: &Observed,
    base: &Base,
    decision: Decision,
    ctx: &Context,
) -> Result<Action> {
    let name = observed.id.clone();
    if let Some(effect) = &decision.effect {
        match apply_effect(ctx, effect, &observed.id).await {
            Ok(()) => {
                if decision.status.rollback.is_some() && matches!(effect, Effect::SetImage { .. }) {
                    let latency = (Utc::now() - observed.now).to_std().unwrap_or_default();
                    ctx.metrics.revert_latency.observe(latency.as_secs_f64());
                }
            }
            // The target changed since it was observed: look again rather than overwrite.
            Err(Error::PatchTarget(what, kube::Error::Api(s))) if s.code == 409 => {
                info!("{what} changed while we looked; observing again");
                return Ok(Action::requeue(StdDuration::from_millis(200)));
            }
            Err(e) => {
                publish(ctx, mu, true, reason::ACTION_FAILED, "Act", format!("{e}; retrying")).await;
                return Err(e);
            }
        }
    }
    // The Events of a change to a target go out before the status write: if the operator dies
    // before the write, the next decision finds the change already made and says nothing, so
    // announcing late would lose them. Other Events follow the write, so that a failing write
    // cannot repeat them.
    let (first, after) = if decision.effect.is_some() {
        (&decision.events[..], &[][..])
    } else {
        (&[][..], &decision.events[..])
    };
    for n in first {
        publish(ctx, mu, n.warning, n.reason, n.action, n.message.clone()).await;
    }
    let written = base.written.as_ref();
    if decide::worth_writing(&mu.spec, written, &decision) {
        let rv = match write_status(&ctx.client, mu, &base.resource_version, &decision.status).await {
            Ok(rv) => rv,
            // Someone wrote the upgrade since it was read: decide again from what they wrote.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                info!("the upgrade changed while we decided; deciding again");
                return Ok(Action::requeue(StdDuration::from_millis(200)));
            }
            Err(e) => return Err(Error::PatchStatus(name.clone(), e)),
        };
        ctx.metrics.status_writes.inc();
        ctx.statuses.wrote(mu, &decision.status, rv);
    } else {
        ctx.statuses.decided(mu, written, &decision.status);
    }
    for n in after {
        publish(ctx, mu, n.warning, n.reason, n.action, n.message.clone()).await;
    }
    if decision.status.phase != observed.status.phase {
        info!(phase = ?decision.status.phase, "{}", decision.status.message);
    }
    record_metrics(&ctx.metrics, &observed.id, &observed.status, &decision.status);
    Ok(match decision.requeue_after {
        Some(d) => Action::requeue(d.to_std().unwrap_or_default().max(StdDuration::from_millis(100))),
        None => Action::await_change(),
    })
}

fn record_metrics(
    m: &Metrics,
    id: &str,
    before: &MaintenanceUpgradeStatus,
    after: &MaintenanceUpgradeStatus,
) {
    m.reconciles.get_or_create(&ResultLabel { result: "ok".into() }).inc();
    if before.phase != after.phase {
        m.phase
            .get_or_create(&UpgradeLabels { upgrade: id.into(), phase: format!("{:?}", before.phase) })
            .set(0);
    }
    m.phase.get_or_create(&UpgradeLabels { upgrade: id.into(), phase: format!("{:?}", after.phase) }).set(1);
    if let (None, Some(r)) = (&before.rollback, &after.rollback) {
        m.rollbacks.get_or_create(&ResultLabel { result: r.reason.clone() }).inc();
    }
    for a in &after.analysis {
        let set = |family: &SignalGauges, series: &str, v: Option<f64>| {
            if let Some(v) = v {
                family
                    .get_or_create(&SignalLabels {
                        upgrade: id.into(),
                        signal: a.name.clone(),
                        series: series.into(),
                    })
                    .set(v);
            }
        };
        let judged = a.detector.last_bucket_baseline > 0.0;
        set(
            &m.signal_rate,
            "baseline",
            if judged { Some(a.detector.last_bucket_baseline) } else { a.baseline.as_ref().map(|b| b.rate) },
        );
        set(
            &m.signal_rate,
            "observed",
            if judged { Some(a.detector.last_bucket_rate) } else { a.last.as_ref().map(|l| l.rate) },
        );
        set(&m.signal_statistic, "statistic", a.statistic);
        set(&m.signal_statistic, "threshold", a.threshold);
    }
}

async fn apply_effect(ctx: &Context, effect: &Effect, owner: &str) -> Result<()> {
    match effect {
        Effect::Claim { claims } => {
            // Side by side: a claim that fails leaves the rest for the next look, which finds the
            // ones made so far recorded on their targets.
            let patches = claims.iter().map(|c| {
                let patch = target::claim_patch(&c.resource_version, owner, &c.owner_uid, &c.known_good);
                async move { patch_target(ctx, &c.target, &Patch::Merge(patch)).await }
            });
            futures::future::join_all(patches).await.into_iter().collect()
        }
        Effect::SetImage { target, resource_version, container, image } => {
            patch_target(
                ctx,
                target,
                &Patch::Strategic(target::image_patch(resource_version, container, image)),
            )
            .await
        }
        Effect::Release { targets } => {
            for t in targets {
                match patch_target(ctx, t, &Patch::Merge(target::release_patch())).await {
                    Err(Error::PatchTarget(_, kube::Error::Api(s))) if s.code == 404 => {}
                    other => other?,
                }
            }
            Ok(())
        }
    }
}

/// Patch one target, and tell the target cache which version the patch made.
async fn patch_target(ctx: &Context, t: &TargetKey, patch: &Patch<serde_json::Value>) -> Result<()> {
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let err = |e| Error::PatchTarget(t.to_string(), e);
    let ns = t.namespace.as_str();
    let client = ctx.client.clone();
    let patched = match t.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client, ns)
            .patch(&t.name, &pp, patch)
            .await
            .map(|o| target::from_deployment(&o)),
        WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(client, ns)
            .patch(&t.name, &pp, patch)
            .await
            .map(|o| target::from_daemonset(&o)),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client, ns)
            .patch(&t.name, &pp, patch)
            .await
            .map(|o| target::from_statefulset(&o)),
    }
    .map_err(err)?;
    ctx.targets.wrote(t, patched);
    Ok(())
}

/// Write the status; the resourceVersion the write made.
async fn write_status(
    client: &Client,
    mu: &MaintenanceUpgrade,
    resource_version: &str,
    status: &MaintenanceUpgradeStatus,
) -> std::result::Result<String, kube::Error> {
    let api: Api<MaintenanceUpgrade> = Api::namespaced(client.clone(), &mu.namespace().unwrap_or_default());
    // The UID is a precondition: a decision about an upgrade that was deleted meanwhile must not
    // land on a new one of the same name. So is the version it was decided from: a decision from
    // a status someone else has replaced since (another replica, during a hand-over) is refused.
    let mut metadata = serde_json::json!({"uid": mu.metadata.uid});
    if !resource_version.is_empty() {
        metadata["resourceVersion"] = resource_version.into();
    }
    let body = serde_json::json!({
        "apiVersion": MaintenanceUpgrade::api_version(&()),
        "kind": MaintenanceUpgrade::kind(&()),
        "metadata": metadata,
        "status": status,
    });
    let written = api
        .patch_status(&mu.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body))
        .await?;
    Ok(written.resource_version().unwrap_or_default())
}

/// Publish one Event about the upgrade. Created directly rather than through kube's Recorder,
/// which folds Events with the same reason into one series and would hide "stage fleet started"
/// behind "stage canary started"; the decide step already emits each transition once.
async fn publish(
    ctx: &Context,
    mu: &MaintenanceUpgrade,
    warning: bool,
    reason: &str,
    action: &str,
    note: String,
) {
    let ns = mu.namespace().unwrap_or_default();
    let now = k8s_openapi::jiff::Timestamp::now();
    let ev = EventsV1 {
        // Named like client-go's: the object's name and the time in hex nanoseconds.
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", mu.name_any(), now.as_nanosecond())),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(if warning { "Warning" } else { "Normal" }.into()),
        reason: Some(reason.into()),
        action: Some(action.into()),
        note: Some(truncate(note, 1000)),
        regarding: Some(mu.object_ref(&())),
        reporting_controller: Some(CONTROLLER_NAME.into()),
        reporting_instance: Some(ctx.instance.clone()),
        ..Default::default()
    };
    if let Err(e) =
        Api::<EventsV1>::namespaced(ctx.client.clone(), &ns).create(&PostParams::default(), &ev).await
    {
        warn!("failed to publish an Event: {e}");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{DetectorState, Phase, SignalStatus};

    #[test]
    fn metrics_say_which_number_is_a_rate_and_which_the_statistic() {
        let m = Metrics::default();
        let mut after = MaintenanceUpgradeStatus { phase: Phase::Soaking, ..Default::default() };
        after.analysis.push(SignalStatus {
            name: "pods".into(),
            statistic: Some(7.5),
            threshold: Some(12.0),
            detector: DetectorState {
                last_bucket_rate: 0.03,
                last_bucket_baseline: 0.01,
                ..Default::default()
            },
            ..Default::default()
        });
        record_metrics(&m, "ops/up", &MaintenanceUpgradeStatus::default(), &after);
        let text = m.render();
        for line in [
            r#"maintenance_operator_signal_error_rate{upgrade="ops/up",signal="pods",series="observed"} 0.03"#,
            r#"maintenance_operator_signal_error_rate{upgrade="ops/up",signal="pods",series="baseline"} 0.01"#,
            r#"maintenance_operator_signal_statistic{upgrade="ops/up",signal="pods",series="statistic"} 7.5"#,
            r#"maintenance_operator_signal_statistic{upgrade="ops/up",signal="pods",series="threshold"} 12.0"#,
            r#"maintenance_operator_upgrade_phase{upgrade="ops/up",phase="Soaking"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
