//! Observe, needs a client: what `decide` looks at for one upgrade: its targets (from the watch
//! of claimed targets, or read from the API before the claim), whether other owners still exist,
//! what only the cluster can tell is wrong with the spec, and its signals.

use super::{Context, HISTORY_READS};
use crate::constants::LIST_PAGE_SIZE;
use crate::crd::{
    CanaryScope, ComponentPhase, MaintenanceUpgrade, MaintenanceUpgradeStatus, Signal, WorkloadKind,
};
use crate::decide::ReadError::{Permanent, Transient};
use crate::decide::{self, HistoryResult, Observed, ReadError, SampleResult};
use crate::error::{Error, Result};
use crate::history::scopes::{Scope, max_scopes};
use crate::signals::pod_index::PodOwner;
use crate::signals::{prometheus, selector};
use crate::target::{self, TargetKey, TargetState};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, GetParams, ListParams};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;

/// Pages of a target's pods read for the digests they run, when the pod watch cannot tell (it
/// has not listed yet): 100 pods at most, as a single list read them before.
const DIGEST_PAGES: usize = 10;

/// What `decide` looks at, for the upgrade `mu` with the status to decide from.
pub async fn observe(
    mu: &MaintenanceUpgrade,
    status: MaintenanceUpgradeStatus,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Observed> {
    let ns = mu.namespace().unwrap_or_default();
    let mut targets = BTreeMap::new();
    // An upgrade that has ended reads nothing once it has released its targets: the decision
    // keeps its status as it is. A deleted one reads its targets all the same, so that a
    // release written into its status by hand cannot make it go while it still marks them.
    let ended = status.phase.is_terminal()
        && status.released_at.is_some()
        && mu.metadata.deletion_timestamp.is_none();
    // Running digests are recorded when a target is claimed: read for those not claimed yet.
    let unclaimed_by_us =
        status.claimed_at.is_none().then_some(mu.metadata.uid.as_deref().unwrap_or_default());
    // The targets the spec names, and only those: the status is the operator's memory, never a
    // list of what to read or change (decide::trust sets aside a record the spec does not name).
    // Another namespace's only for a trusted upgrade: an untrusted one is blocked unread
    // (decide::tenancy), so that not even whether they exist is told. But one that claimed some
    // while its namespace was trusted (trust withdrawn since) is shown those that still carry its
    // own mark and UID, and no other, so that it reverts and releases them (`trust_withdrawn`):
    // found by their marks, whatever its status says, in the watch of claimed targets. Read from
    // the API (the answer dropped unless ours) only when that watch cannot answer (listing, after
    // a start or a watch error; or an operator watching one namespace) and the status says it
    // claimed them: so that a tenant never trusted costs the API server no read.
    let trusted = ctx.trusted_namespaces.contains(&ns);
    let id = format!("{ns}/{}", mu.name_any());
    let uid = mu.metadata.uid.as_deref().unwrap_or_default();
    let keys = mu.spec.stages.iter().flat_map(|s| &s.components).map(|c| TargetKey::of(c, &ns));
    let (keys, abroad): (Vec<TargetKey>, Vec<TargetKey>) = keys.partition(|k| trusted || k.namespace == ns);
    let claimed_in_status = |key: &TargetKey| {
        status.claimed_at.is_some()
            || status.stages.iter().flat_map(|s| &s.components).any(|c| {
                c.phase != ComponentPhase::Pending
                    && (c.kind, c.namespace.as_str(), c.name.as_str())
                        == (key.kind, key.namespace.as_str(), key.name.as_str())
            })
    };
    for key in abroad.into_iter().filter(|_| !ended) {
        let state = match ctx.targets.get(&key) {
            Some(state) => Some(state),
            None if !ctx.targets.answers_for(&key) && claimed_in_status(&key) => {
                read_target(ctx, &key, None).await?
            }
            None => None,
        };
        let ours =
            |t: &TargetState| t.owner.as_deref() == Some(id.as_str()) && t.owner_uid.as_deref() == Some(uid);
        if let Some(state) = state.filter(ours) {
            targets.insert(key, Some(state));
        }
    }
    // The watch of claimed targets has them; those not claimed yet (their running digests are
    // read then too) or outside the watch are read from the API, side by side.
    let mut reads = vec![];
    for key in keys.into_iter().filter(|_| !ended) {
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
    // A canary inside a workload is judged by its pods: where each runs and what, from the pod
    // watch (which covers the namespaces this operator watches). A StatefulSet's are read with
    // or without a canary once a rollback has begun, if the upgrade changed it: its revert
    // deletes the updated pods that are not Ready. From the status decided from, not the stored
    // one: the look that reverts a template writes no status before the next look.
    let canaried: Vec<TargetKey> = mu
        .spec
        .stages
        .iter()
        .flat_map(|s| &s.components)
        .filter(|c| c.canary.is_some())
        .map(|c| TargetKey::of(c, &ns))
        .collect();
    let rolling_back = if status.rollback.is_some() { &status.stages[..] } else { &[] };
    let reverting: Vec<TargetKey> = rolling_back
        .iter()
        .flat_map(|s| &s.components)
        .filter(|c| c.kind == WorkloadKind::StatefulSet)
        .filter(|c| matches!(c.phase, ComponentPhase::Applied | ComponentPhase::Reverted))
        .map(|c| TargetKey { kind: c.kind, namespace: c.namespace.clone(), name: c.name.clone() })
        .collect();
    for (key, state) in targets.iter_mut() {
        if let Some(t) = state.as_mut().filter(|_| canaried.contains(key) || reverting.contains(key)) {
            let pods = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let owner = match key.kind {
                WorkloadKind::Deployment => PodOwner::Deployment(key.name.clone()),
                _ => PodOwner::Uid(t.uid.clone()),
            };
            t.pods = pods.owned_pods(&key.namespace, &owner);
        }
    }
    // The nodes a canary's nodeSelector selects, from the shared watch of nodes: names only.
    // Until it has listed, that canary waits. Only for a DaemonSet this upgrade may read (its
    // own namespace's, or a trusted upgrade's), and only for label keys.
    let mut selected_nodes = BTreeMap::new();
    for c in mu.spec.stages.iter().flat_map(|s| &s.components).filter(|_| !ended) {
        if targets.get(&TargetKey::of(c, &ns)).is_none_or(|t| t.is_none()) {
            continue;
        }
        let Some(k) = c.canary.as_ref().filter(|k| k.bad_selector_key().is_none()) else { continue };
        let (Some(text), Some(labels)) = (k.selector_text(), k.node_selector.as_ref()) else { continue };
        if let Some(names) = ctx.nodes.selected(labels) {
            selected_nodes.insert(text, names);
        }
    }
    // When the nodes of canaried DaemonSets' pods were created (one created after the first
    // change joined mid-canary), and their zones (a canary's nodes are spread over them).
    let on_nodes = targets
        .iter()
        .filter(|(k, _)| k.kind == WorkloadKind::DaemonSet && canaried.contains(*k))
        .flat_map(|(_, t)| t.iter().flat_map(|t| t.pods.iter().flatten()))
        .map(|p| p.node.as_str())
        .filter(|n| !n.is_empty());
    let node_facts = if ended { BTreeMap::new() } else { ctx.nodes.facts(on_nodes) };
    // Until every target is claimed: which other upgrades named as owners still exist, and
    // under which UID? Each is read once (its metadata), whatever UIDs marks give it. A read
    // that fails counts as each mark's own, so that nothing is taken over on a doubt; a mark
    // that cannot name an upgrade is not read. decide::claim compares the UIDs.
    let mut live_owners = std::collections::BTreeSet::new();
    if status.claimed_at.is_none() {
        let mut marks: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for t in targets.values().flatten() {
            if let Some(owner) = t.owner.as_ref().filter(|o| **o != id) {
                marks.entry(owner.clone()).or_default().insert(t.owner_uid.clone().unwrap_or_default());
            }
        }
        for (owner, uids) in marks {
            let Some((ons, oname)) = target::owner_key(&owner) else { continue };
            match Api::<MaintenanceUpgrade>::namespaced(ctx.client.clone(), ons).get_metadata_opt(oname).await
            {
                Ok(Some(found)) => {
                    live_owners.insert((owner, found.metadata.uid.unwrap_or_default()));
                }
                Ok(None) => {}
                Err(_) => live_owners.extend(uids.into_iter().map(|uid| (owner.clone(), uid))),
            }
        }
    }
    // What only the cluster can tell is wrong with the spec, of the signals as they are read:
    // an untrusted upgrade's count its own namespace (decide::tenancy blocks one that names
    // others), so it neither makes the operator look other namespaces up nor learns which exist.
    let mut spec_problems = vec![];
    for s in mu.spec.signals_as_read(&ns, trusted) {
        let Some(k) = &s.kubernetes else { continue };
        let missing = ctx.namespaces.missing(&k.namespaces).await;
        for ns in &k.namespaces {
            if missing.contains(ns) {
                // Edited after the first change, the signal would be another, judged no more.
                let fix = if status.changed_at.is_some() {
                    "create it again (its baseline counted its pods; the signal edited would be judged no more), \
                     or take the signal out"
                } else {
                    "create it or remove it from the signal's namespaces"
                };
                spec_problems.push(format!("signal {}: namespace {ns} does not exist; {fix}", s.name));
            } else if let Some(scope) = ctx.scope.as_ref().filter(|scope| *scope != ns) {
                spec_problems.push(format!(
                    "signal {}: namespace {ns} is outside what this operator watches (run --namespace {scope}); \
                     remove it from the signal's namespaces, or run the operator over every namespace",
                    s.name
                ));
            }
        }
    }
    for s in mu.spec.effective_signals() {
        if let Some(Err(why)) = s.prometheus.as_ref().map(|p| ctx.outbound.prometheus(&p.address)) {
            spec_problems.push(format!("signal {}: {why}", s.name));
        }
    }
    let pods_watched_since = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner()).watched_since();
    // Read as the tenancy boundary allows: an untrusted upgrade's built-in signals count its own
    // namespace (decide::tenancy blocks one that names others).
    let mut samples = BTreeMap::new();
    // A Prometheus query's `$canary_nodes` and `$canary_revision`, as the decide step last
    // wrote them.
    let canary = status.canary.as_ref();
    // A deleted upgrade is reverted whatever its signals say: its abort waits on no read.
    let deleting = mu.metadata.deletion_timestamp.is_some();
    let analysis_due =
        if deleting { vec![] } else { decide::analysis_due(&mu.spec, &status, now, pods_watched_since) };
    for (signal, from, to) in analysis_due {
        let signal = signal.as_read(&ns, trusted);
        // A canary's copy of a built-in signal is read with its concurrent control.
        // A piece of what the looks missed, or the span up to now.
        let past = to < now;
        if let Some(control) = signal.control() {
            samples.insert(control.name.clone(), read_signal(ctx, &control, canary, from, to, past).await);
        }
        samples.insert(signal.name.clone(), read_signal(ctx, &signal, canary, from, to, past).await);
    }
    let mut history = BTreeMap::new();
    let due = if deleting { vec![] } else { decide::history_due(&mu.spec, &status, now) };
    // A Prometheus history is up to 30,000 points per query and signal: read for two upgrades
    // at once at most, so that many upgrades cannot hold many weeks in memory together. An
    // upgrade that finds no turn free reads it at a later look, never waiting here: a look
    // that waited would hold one of the controller's slots, which rollbacks need.
    let turn = due.iter().any(|s| s.prometheus.is_some()).then(|| ctx.history_reads.try_acquire());
    for signal in due {
        let signal = signal.as_read(&ns, trusted);
        let read = match (&signal.prometheus, &turn) {
            (Some(_), Some(Err(_))) => Err(ReadError::Transient(format!(
                "not read yet: {HISTORY_READS} other upgrades are reading their Prometheus history; \
                 read again at the next look"
            ))),
            _ => read_history(ctx, &signal, now, &mu.spec, canary).await,
        };
        history.insert(signal.name.clone(), read);
    }
    drop(turn);
    Ok(Observed {
        id,
        uid: mu.metadata.uid.clone().unwrap_or_default(),
        namespace: ns,
        generation: mu.metadata.generation.unwrap_or(0),
        spec: mu.spec.clone(),
        status,
        deleting: mu.metadata.deletion_timestamp.is_some(),
        targets,
        live_owners,
        spec_problems,
        trusted_namespaces: ctx.trusted_namespaces.clone(),
        default_webhook: ctx.notifier.has_default(),
        deliveries: ctx.notifier.results(mu.metadata.uid.as_deref().unwrap_or_default()),
        pods_watched_since,
        selected_nodes,
        node_facts,
        nodes_listed: ctx.nodes.listed(),
        samples,
        history,
        strategy_refused: ctx.refusals.of(mu.metadata.uid.as_deref().unwrap_or_default()),
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
pub(super) async fn read_target(
    ctx: &Context,
    key: &TargetKey,
    digests_unless_owned_by: Option<&str>,
) -> Result<Option<TargetState>> {
    // A turn among every look's reads (never closed: the semaphore lives as long as the context).
    let _turn = ctx.target_reads.acquire().await;
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
    // The running digest is only recorded when the target is claimed, from its own pods that
    // run its template (its selector's labels may select a sibling's too).
    let labels = selector.and_then(|s| s.match_labels).unwrap_or_default();
    let digests = digests_unless_owned_by.is_some_and(|uid| state.owner_uid.as_deref() != Some(uid));
    let owner = match key.kind {
        WorkloadKind::Deployment => PodOwner::Deployment(key.name.clone()),
        _ => PodOwner::Uid(state.uid.clone()),
    };
    let watched = ctx.scope.as_deref().is_none_or(|scope| scope == ns);
    let from_watch = (digests && watched)
        .then(|| {
            let pods = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            pods.running_digests(ns, &owner, &state.containers)
        })
        .flatten();
    if let Some(from_watch) = from_watch {
        state.running_digests = from_watch;
    } else if digests && !labels.is_empty() {
        // A page at a time, each let go before the next, at most `DIGEST_PAGES`: a tenant's
        // pods may be 1.5 MiB each, and 16 reads of targets go at once across every look.
        let sel = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let api = Api::<Pod>::namespaced(client.clone(), ns);
        let mut lp = ListParams::default().labels(&sel).limit(LIST_PAGE_SIZE);
        for _ in 0..DIGEST_PAGES {
            let page = api.list(&lp).await.map_err(read_err)?;
            let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
            for p in page.items.into_iter().filter(|p| PodOwner::of(p).as_ref() == Some(&owner)) {
                running_digests_of(&p, &mut state);
            }
            let Some(token) = next else { break };
            lp.continue_token = Some(token);
        }
    }
    Ok(Some(state))
}

async fn read_signal(
    ctx: &Context,
    signal: &Signal,
    canary: Option<&CanaryScope>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    past: bool,
) -> SampleResult {
    let counts = if let Some(k) = &signal.kubernetes {
        let limit = k.pending_limit.parse().map_err(|e: String| Permanent(format!("pendingLimit: {e}")))?;
        let selector = selector::parse(k.label_selector.as_deref().unwrap_or_default()).map_err(Permanent)?;
        let pods = ctx.pods.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !pods.ready() {
            return Err(Transient("the watch of pods and their failure Events is still listing them".into()));
        }
        pods.counts(&k.namespaces, &selector, &k.nodes, from, to, limit)
    } else if let Some(p) = &signal.prometheus {
        let span = to - from;
        let prom = ctx.outbound.prometheus(&p.address).map_err(Permanent)?;
        let attempts = prometheus::render_query(&p.attempts, span, canary).map_err(unrendered)?;
        let errors = prometheus::render_query(&p.errors, span, canary).map_err(unrendered)?;
        // A piece of what the looks missed that Prometheus holds nothing of, for either query
        // (it was away too): passed over, unjudged, so that the catch-up goes on; never read
        // as zero. Only a read up to now says that there is no data.
        let gap = |r: &Result<f64, Error>| {
            let why = "Prometheus has no data for this span of what the looks missed (it was away too, or the series is gone)";
            matches!(r, Err(Error::PromNoData(_)) if past).then(|| ReadError::Gap { to, why: why.into() })
        };
        let attempts = prometheus::prom_instant(prom, &p.address, &attempts, to).await;
        if let Some(g) = gap(&attempts) {
            return Err(g);
        }
        let errors_read = prometheus::prom_instant(prom, &p.address, &errors, to).await;
        if let Some(g) = gap(&errors_read) {
            return Err(g);
        }
        let attempts = attempts.map_err(prom_error)?;
        let errors = errors_read.map_err(no_errors_hint)?;
        prometheus::counts(attempts, errors)
    } else {
        return Err(Permanent("the signal has no provider".into()));
    };
    Ok((counts, from, to))
}

/// What the operator recorded of the built-in signal: its whole scope when the signal counts
/// that, otherwise the signal's own scope, recorded from the first upgrade that named it on.
fn recorded_history(
    ctx: &Context,
    k: &crate::crd::KubernetesSignal,
    now: DateTime<Utc>,
    lookback: chrono::Duration,
) -> HistoryResult {
    let Some(r) = &ctx.recorder else {
        return Err(Permanent(
            "the operator does not record the built-in signal (run --record-history)".into(),
        ));
    };
    let h = ctx.history.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    let recorded = if r.recording.covers(k, ctx.scope.as_deref()) {
        &h.whole
    } else {
        let scope = Scope::of(k, ctx.scope.as_deref()).map_err(Permanent)?;
        // Full for now: a scope not named for a week is dropped.
        match h.lookup(max_scopes(ctx.scope.as_deref()), &scope).map_err(Transient)? {
            Some(recorded) => recorded,
            // The recorder names it within a tick once the upgrade has claimed its targets.
            None => {
                return Err(Transient(format!(
                    "{} are recorded from now on, counted back as far as the pod watch remembers",
                    scope.describe()
                )));
            }
        }
    };
    match &h.whole.problem {
        Some(p) if recorded.rows.is_empty() => Err(Transient(format!("nothing recorded yet: {p}"))),
        _ => Ok(recorded.since(now, lookback)),
    }
}

/// A query Prometheus refuses as invalid fails again until the spec changes; anything else may
/// pass at the next read (no data too: a new metric has no series until it is first written).
fn prom_error(e: Error) -> ReadError {
    match e {
        Error::PromQuery(..) => Permanent(e.to_string()),
        e => Transient(e.to_string()),
    }
}

/// A query that cannot be sent yet waits, and so does one too long while the canary is this
/// large (its reason says what a human can do): held as an invalid spec instead, a stage
/// widening the canary would stop part-way and roll back at its progress deadline.
fn unrendered(e: prometheus::Unrendered) -> ReadError {
    match e {
        prometheus::Unrendered::Waiting(why) | prometheus::Unrendered::TooLong(why) => Transient(why),
    }
}

/// An empty errors answer is never read as zero (a mistyped query would pass for healthy), but
/// the usual cause has a simple fix.
fn no_errors_hint(e: Error) -> ReadError {
    match e {
        Error::PromNoData(_) => Transient(format!(
            "{e} (a counter with no failures yet has no series: end the errors query with `or vector(0)`)"
        )),
        e => prom_error(e),
    }
}

async fn read_history(
    ctx: &Context,
    signal: &Signal,
    now: DateTime<Utc>,
    spec: &crate::crd::MaintenanceUpgradeSpec,
    canary: Option<&CanaryScope>,
) -> HistoryResult {
    let lookback = spec.analysis.baseline.lookback.parse().map_err(Permanent)?;
    if let Some(k) = &signal.kubernetes {
        return recorded_history(ctx, k, now, lookback);
    }
    let Some(p) = &signal.prometheus else { return Err(Permanent("the signal has no history".into())) };
    let step = spec.analysis.interval.parse().map_err(Permanent)?;
    let from = now - lookback;
    let prom = ctx.outbound.prometheus(&p.address).map_err(Permanent)?;
    let attempts = prometheus::render_query(&p.attempts, step, canary).map_err(unrendered)?;
    let errors = prometheus::render_query(&p.errors, step, canary).map_err(unrendered)?;
    let attempts =
        prometheus::prom_range(prom, &p.address, &attempts, from, now, step).await.map_err(prom_error)?;
    let errors =
        prometheus::prom_range(prom, &p.address, &errors, from, now, step).await.map_err(no_errors_hint)?;
    let errors: BTreeMap<DateTime<Utc>, f64> = errors.into_iter().collect();
    // A step without an errors value had no errors series yet (no failures so far).
    Ok(attempts
        .into_iter()
        .map(|(t, a)| (t, prometheus::counts(a, errors.get(&t).copied().unwrap_or(0.0))))
        .collect())
}

/// Add to `state` the image IDs (digests) pod `p` runs of its template's images, one per
/// container name.
fn running_digests_of(p: &Pod, state: &mut TargetState) {
    let images: Vec<(String, String)> = p
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.clone(), crate::target::kept_image(c.image.as_ref())))
        .collect();
    for cs in p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()) {
        let runs_template = images.iter().any(|(n, i)| {
            *n == cs.name && state.containers.iter().any(|(c, t)| c == n && crate::image::runs(i, t))
        });
        if runs_template
            && !cs.image_id.is_empty()
            && !state.running_digests.iter().any(|(n, _)| *n == cs.name)
        {
            state.running_digests.push((cs.name.clone(), cs.image_id.clone()));
        }
    }
}
