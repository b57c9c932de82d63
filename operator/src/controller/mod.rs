//! Observe and act, the thin shell around `decide`: needs a client. Reads the MaintenanceUpgrade,
//! its targets and its signals; sends the one target change `decide` asks for; writes the status
//! with server-side apply when it is worth writing; publishes Events.
//!
//! What wakes an upgrade: a change to its spec (not to its status: our own writes wake nothing),
//! a change to a target it claimed (`target_cache`), and the requeue time of its last decision.

use crate::constants::CONTROLLER_NAME;
use crate::controller::notifier::Notifier;
use crate::controller::retries::Retries;
use crate::controller::status_memory::StatusMemory;
use crate::controller::target_cache::TargetCache;
use crate::crd::MaintenanceUpgrade;
use crate::decide::{self};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::history::Recording;
use crate::history::recorder::{Recorder, SharedHistory};
use crate::metrics::{Metrics, ResultLabel};
use crate::outbound::Outbound;
use crate::signals::namespaces::Namespaces;
use crate::signals::pod_cache::{self, SharedPodIndex};
use chrono::Utc;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use leader::{Fence, LeaseConfig};
use node_cache::NodeCache;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::{debug, error, info, instrument, warn};

mod act;
pub mod crd_presence;
pub mod finalizer;
pub mod leader;
pub mod node_cache;
pub mod notifier;
mod observe;
pub mod refusals;
pub mod retries;
pub mod status_memory;
pub mod target_cache;
pub mod wake;
pub use act::act;
pub use observe::observe;

/// Upgrades reconciled at once. Each look holds its reads in memory, and the API server is the
/// bottleneck well before this: more only raises the peak memory when many start together.
const CONCURRENT_RECONCILES: u16 = 32;

/// Upgrades whose Prometheus history is read at once: each may hold up to ten signals of 30,000
/// intervals while it is read.
pub(crate) const HISTORY_READS: usize = 2;

/// Targets read from the API at once, across every look: a tenant's workloads may be 1.5 MiB
/// each, held as the response and then as the object, and one upgrade may name 200 of them,
/// read side by side until claimed. The turns go first come, first served: a look reading its
/// targets one after another (a release after a conflict, those in other namespaces) waits
/// behind every read queued before each of its own.
const TARGET_READS: usize = 16;

pub struct Context {
    pub client: Client,
    /// Reporting instance on Events (the pod name in a cluster).
    pub instance: String,
    /// Where requests a tenant's spec or Secret aims may go, and the clients that go there.
    pub outbound: Outbound,
    pub metrics: Metrics,
    /// What the built-in signal reads, fed by one watch of pods and one of Warning Events.
    pub pods: SharedPodIndex,
    /// Which namespaces exist, for signals that name them.
    pub namespaces: Namespaces,
    /// The nodes' names and labels, for canaries that pick nodes by label.
    pub nodes: NodeCache,
    /// The targets upgrades have claimed, watched.
    pub targets: TargetCache,
    /// What was last written for each upgrade and what was decided since.
    pub statuses: StatusMemory,
    /// The upgrades whose looks keep failing, and how.
    pub retries: Retries,
    /// The restores of rollout settings the API server keeps refusing.
    pub refusals: refusals::Refusals,
    /// The one namespace this operator watches (`run --namespace`), or None for all.
    pub scope: Option<String>,
    /// Namespaces whose upgrades may target workloads in other namespaces.
    pub trusted_namespaces: Vec<String>,
    /// Delivers notifications to webhooks, off the reconcile path.
    pub notifier: Notifier,
    /// Upgrades reading Prometheus history at once (`HISTORY_READS`).
    pub history_reads: tokio::sync::Semaphore,
    /// Targets read from the API at once (`TARGET_READS`).
    pub target_reads: tokio::sync::Semaphore,
    /// What the operator records of the built-in signal between upgrades, and where.
    pub recorder: Option<Recorder>,
    pub history: SharedHistory,
    pub health: Health,
}

/// How this operator was asked to run.
#[derive(Clone)]
pub struct Options {
    /// Reporting instance on Events (the pod name in a cluster).
    pub instance: Option<String>,
    /// The one namespace to watch (`run --namespace`), or None for all.
    pub scope: Option<String>,
    /// Namespaces whose upgrades may target workloads in other namespaces (`--trusted-namespaces`).
    pub trusted_namespaces: Vec<String>,
    /// The operator-wide default webhook's Secret (namespace, name), for upgrades that name none.
    pub default_webhook_secret: Option<(String, String)>,
    /// Record the built-in signal between upgrades into the operator's namespace (namespace,
    /// what), unless `--record-history=false`.
    pub history: Option<(String, Recording)>,
    /// The installer's allow-lists for Prometheus addresses and webhook hosts.
    pub outbound: Outbound,
    /// Whether this replica may write now: the one its client was built with (`Fence::client`).
    pub fence: Fence,
    /// What `/healthz` and `/readyz` answer, told by the parts as they run.
    pub health: Health,
}

impl Context {
    pub fn new(client: Client, opts: Options, metrics: Metrics) -> Self {
        let Options {
            instance,
            scope,
            trusted_namespaces,
            default_webhook_secret,
            history,
            outbound,
            fence,
            health,
        } = opts;
        let recorder =
            history.map(|(ns, r)| Recorder::new(ns, scope.as_deref(), r, trusted_namespaces.clone()));
        let pods = pod_cache::start(&client, scope.as_deref(), &metrics.watch_failures);
        let index = pods.clone();
        health.watch("pods and Warning Events", move || {
            index.read().unwrap_or_else(|poisoned| poisoned.into_inner()).listed()
        });
        let namespaces = Namespaces::start(&client, &metrics.watch_failures);
        let nodes = NodeCache::start(&client, &metrics.watch_failures);
        let node_watch = nodes.clone();
        health.watch("nodes", move || node_watch.listed());
        let targets =
            TargetCache::start(&client, scope.as_deref(), &trusted_namespaces, &metrics.watch_failures);
        let notifier =
            Notifier::new(client.clone(), outbound.clone(), metrics.clone(), default_webhook_secret, fence);
        let instance = instance.unwrap_or_else(|| format!("{CONTROLLER_NAME}-{}", std::process::id()));
        Context {
            instance,
            client,
            outbound,
            metrics,
            pods,
            namespaces,
            nodes,
            targets,
            statuses: StatusMemory::default(),
            retries: Retries::default(),
            refusals: Default::default(),
            scope,
            trusted_namespaces,
            notifier,
            recorder,
            history_reads: tokio::sync::Semaphore::new(HISTORY_READS),
            target_reads: tokio::sync::Semaphore::new(TARGET_READS),
            history: SharedHistory::default(),
            health,
        }
    }
}

/// Run the controller over the upgrades of one namespace or of all of them, as the leader when
/// `lease` is given (with the unfenced client its Lease is renewed with), until `shutdown`
/// completes; what `shutdown` said, or why it could not run.
pub async fn run(
    client: Client,
    opts: Options,
    metrics: Metrics,
    lease: Option<(LeaseConfig, Client)>,
    shutdown: impl Future<Output = &'static str>,
) -> std::result::Result<&'static str, String> {
    let api: Api<MaintenanceUpgrade> = match &opts.scope {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = crd_presence::wait_until_installed(&api) => {}
        signal = &mut shutdown => return Ok(signal),
    }
    opts.health.crd_installed(true);
    let (fence, health) = (opts.fence.clone(), opts.health.clone());
    let ctx = Arc::new(Context::new(client, opts, metrics));
    // Said once when the CRD goes away under a running operator, and once when it is back.
    let crd_missing = Arc::new(AtomicBool::new(false));
    let controller = || reconcile_all(api.clone(), ctx.clone(), crd_missing.clone());
    match lease {
        None => Ok(tokio::select! {
            _ = controller() => "the controller stopped",
            signal = &mut shutdown => signal,
        }),
        Some((cfg, lease_client)) => {
            Ok(leader::lead_while_holding(lease_client, &cfg, fence, &health, controller, shutdown).await)
        }
    }
}

/// What a leader runs: the recording of the built-in signal and the sweep of what is kept about
/// upgrades that are gone, beside the Controller.
async fn reconcile_all(api: Api<MaintenanceUpgrade>, ctx: Arc<Context>, crd_missing: Arc<AtomicBool>) {
    let _leading = Leading::new(&ctx.metrics, &ctx.health);
    // The store keeps what the decisions read (no managedFields); the recorder reads which
    // scopes the upgrades in progress name from it.
    let (reader, writer) = reflector::store();
    // What earlier leaders recorded is there before the first upgrade is looked at.
    let loaded = match &ctx.recorder {
        Some(recorder) => recorder.load(ctx.client.clone(), &ctx.history).await,
        None => false,
    };
    let recording = async {
        match ctx.recorder.clone() {
            Some(r) => {
                r.record(
                    ctx.client.clone(),
                    ctx.pods.clone(),
                    ctx.history.clone(),
                    reader.clone(),
                    loaded,
                    ctx.metrics.clone(),
                )
                .await
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = controller_loop(api, ctx.clone(), crd_missing, reader.clone(), writer) => {}
        _ = recording => {}
        _ = sweep(reader.clone(), ctx.clone()) => {}
    }
}

/// While a replica leads: its `leading` gauge is 1 and `/readyz` says so; when it stops, the
/// per-upgrade series go (the next leader exports them).
struct Leading(Metrics, Health);

impl Leading {
    fn new(metrics: &Metrics, health: &Health) -> Self {
        metrics.leading.set(1);
        health.leading(true);
        Leading(metrics.clone(), health.clone())
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.0.not_leading();
        self.1.leading(false);
    }
}

/// How often what is kept about upgrades that are gone is dropped.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Forget, every few minutes, what this replica keeps about upgrades that are no longer there
/// (status memory, retries, delivery results, metric series): one deleted past its finalizer (a
/// finalizer removed by hand) is never looked at again, so nothing else would.
async fn sweep(reader: reflector::Store<MaintenanceUpgrade>, ctx: Arc<Context>) {
    if reader.wait_until_ready().await.is_err() {
        return std::future::pending().await;
    }
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        let live = reader.state();
        let uids: HashSet<String> = live.iter().filter_map(|mu| mu.uid()).collect();
        let ids: HashSet<String> = live
            .iter()
            .map(|mu| format!("{}/{}", mu.namespace().unwrap_or_default(), mu.name_any()))
            .collect();
        ctx.statuses.forget_all_but(&uids);
        ctx.retries.forget_all_but(&uids);
        ctx.refusals.forget_all_but(&uids);
        ctx.notifier.forget_all_but(&uids);
        ctx.metrics.forget_all_but(&ids);
    }
}

/// The Controller itself, until it stops.
async fn controller_loop(
    api: Api<MaintenanceUpgrade>,
    ctx: Arc<Context>,
    crd_missing: Arc<AtomicBool>,
    reader: reflector::Store<MaintenanceUpgrade>,
    writer: reflector::store::Writer<MaintenanceUpgrade>,
) {
    // Only spec changes wake an upgrade, so that our own status writes do not.
    // Nothing reads an upgrade's labels, annotations or managedFields: a tenant's 256 KiB of
    // annotations, or over a megabyte of tiny labels (no bound but the object's size, and each
    // a map entry), on each of hers would otherwise be kept in the store of every replica.
    let upgrades = watcher(api, watcher::Config::default().page_size(crate::constants::LIST_PAGE_SIZE))
        .default_backoff()
        .modify(|mu: &mut MaintenanceUpgrade| {
            mu.metadata.managed_fields = None;
            mu.metadata.annotations = None;
            mu.metadata.labels = None;
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let (health, failures) = (ctx.health.clone(), ctx.metrics.watch_failures.clone());
    failures.watching("upgrades");
    let (store, trusted) = (reader.clone(), ctx.trusted_namespaces.clone());
    let targets = ctx
        .targets
        .wake_ups()
        .flat_map(move |woken| futures::stream::iter(target_cache::to_wake(&store, &trusted, &woken)));
    Controller::for_stream(upgrades, reader)
        .with_config(controller::Config::default().concurrency(CONCURRENT_RECONCILES))
        .reconcile_on(futures::stream::select(targets, ctx.notifier.wake_ups()))
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            let (crd_missing, health) = (crd_missing.clone(), health.clone());
            // The watch of upgrades failed: it resumes with backoff. Not counted while the CRD
            // is missing, which /readyz and the log say already.
            if let Err(e @ kube::runtime::controller::Error::QueueError(_)) = &res
                && !crd_presence::is_missing(e)
            {
                failures.failed("upgrades");
            }
            async move {
                match res {
                    Err(e) if crd_presence::is_missing(&e) => {
                        health.crd_installed(false);
                        if !crd_missing.swap(true, Ordering::Relaxed) {
                            error!("{}", crd_presence::missing_line());
                        }
                    }
                    // A look's own failure is logged by `error_policy`, once while it lasts.
                    Err(e @ kube::runtime::controller::Error::ReconcilerFailed(..)) => debug!("{e}"),
                    Err(e) => warn!("reconcile failed: {e}"),
                    Ok(_) => {
                        health.crd_installed(true);
                        if crd_missing.swap(false, Ordering::Relaxed) {
                            info!("{} is installed again; reconciling", MaintenanceUpgrade::crd_name());
                        }
                    }
                }
            }
        })
        .await;
}

/// Drop what this replica keeps about an upgrade that is gone: its status memory, retries,
/// delivery results and metric series.
fn forget(ctx: &Context, mu: &MaintenanceUpgrade) {
    let uid = mu.uid().unwrap_or_default();
    ctx.statuses.forget(mu);
    ctx.retries.succeeded(&uid);
    ctx.notifier.forget(&uid);
    let signals: Vec<String> = mu.status.iter().flat_map(|s| &s.analysis).map(|a| a.name.clone()).collect();
    ctx.metrics.forget(&format!("{}/{}", mu.namespace().unwrap_or_default(), mu.name_any()), &signals);
}

/// A failed look is retried further apart each time; logged at warn when it is news (as its
/// Event is, `act::announce_failure`), else at debug, so that a failure that lasts does not
/// fill the log with one line per retry.
fn error_policy(mu: Arc<MaintenanceUpgrade>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconciles.get_or_create(&ResultLabel { result: err.metric_label().into() }).inc();
    let (uid, what) = (mu.uid().unwrap_or_default(), err.to_string());
    let news = ctx.retries.is_news(&uid, &what);
    let after = ctx.retries.failed(&uid, &what);
    let (upgrade, label, secs) = (mu.name_any(), err.metric_label(), after.as_secs());
    if news {
        warn!(%upgrade, error = %err, label, "retrying in {secs}s (said again only if it changes, or after an hour)");
    } else {
        debug!(%upgrade, error = %err, label, "retrying in {secs}s");
    }
    Action::requeue(after)
}

/// One look, cut short at `LOOK_LIMIT`, so that no look runs long enough for `/healthz` to call
/// the process wedged.
/// A look that fails is said in a Warning Event (`act::announce_failure`) and retried.
pub async fn reconcile(mu: Arc<MaintenanceUpgrade>, ctx: Arc<Context>) -> Result<Action> {
    let done = match tokio::time::timeout(crate::health::LOOK_LIMIT, look(mu.clone(), ctx.clone())).await {
        Ok(done) => done,
        Err(_) => Err(Error::LookTimedOut(crate::health::LOOK_LIMIT.as_secs())),
    };
    if let Err(e) = &done {
        act::announce_failure(&ctx, &mu, e).await;
    }
    done
}

#[instrument(skip_all, fields(upgrade = %format!("{}/{}", mu.namespace().unwrap_or_default(), mu.name_any())))]
async fn look(mu: Arc<MaintenanceUpgrade>, ctx: Arc<Context>) -> Result<Action> {
    if mu.meta().deletion_timestamp.is_some() && !finalizer::present(&mu) {
        forget(&ctx, &mu);
        return Ok(Action::await_change());
    }
    // Before the first look, so before anything is claimed: a deletion from then on reverts.
    if finalizer::wanted(&mu) {
        let id = format!(
            "the finalizer of MaintenanceUpgrade {}/{}",
            mu.namespace().unwrap_or_default(),
            mu.name_any()
        );
        match finalizer::patch(&ctx.client, &mu, finalizer::add_patch(&mu)).await {
            Ok(()) => {}
            // Changed since it was read: look again.
            Err(e) if crate::target::changed_since_read(&e) => {}
            Err(e) => return Err(Error::PatchTarget(id, e)),
        }
        return Ok(Action::requeue(std::time::Duration::from_millis(100)));
    }
    let _look = ctx.health.look(format!("{}/{}", mu.namespace().unwrap_or_default(), mu.name_any()));
    let base = ctx.statuses.base(&mu);
    let mut observed = observe(&mu, base.current.clone(), &ctx, Utc::now()).await?;
    let decision = decide::decide(&observed);
    // What was read is in the decision now; a week of history need not wait for the writes.
    observed.history.clear();
    observed.samples.clear();
    act(&mu, &observed, &base, decision, &ctx).await
}
