//! Act, needs a client: carry out one decision: the target change, the Events, and the status
//! write when it is worth writing; then the metrics.

use super::Context;
use crate::constants::{CONTROLLER_NAME, FIELD_MANAGER, reason};
use crate::controller::status_memory::Base;
use crate::crd::{MaintenanceUpgrade, MaintenanceUpgradeStatus, WorkloadKind};
use crate::decide::{self, Decision, Effect, Observed};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, ResultLabel, SignalGauges, SignalLabels, UpgradeLabels};
use crate::target::{self, TargetKey};
use chrono::Utc;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event as EventsV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use std::time::Duration as StdDuration;
use tracing::{info, warn};

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
        let result = apply_effect(ctx, effect, &observed.id, &observed.uid).await;
        // A restore of rollout settings refused is remembered: past a bound, `decide` gives it
        // up rather than hold a deleted upgrade for ever. Any other outcome forgets it.
        if let Effect::SetStrategy { target, .. } = effect {
            match &result {
                Err(Error::PatchTarget(_, e @ kube::Error::Api(s)))
                    if matches!(s.code, 400 | 403 | 422) && !target::changed_since_read(e) =>
                {
                    ctx.refusals.refused(&observed.uid, target, observed.now)
                }
                _ => ctx.refusals.cleared(&observed.uid, target),
            }
        }
        match result {
            Ok(()) => {
                if decision.status.rollback.is_some() && matches!(effect, Effect::SetImage { .. }) {
                    let latency = (Utc::now() - observed.now).to_std().unwrap_or_default();
                    ctx.metrics.revert_latency.observe(latency.as_secs_f64());
                }
            }
            // The target changed since it was observed: look again rather than overwrite.
            Err(Error::PatchTarget(what, e)) if target::changed_since_read(&e) => {
                info!("{what} changed while we looked; observing again");
                return Ok(Action::requeue(StdDuration::from_millis(200)));
            }
            // Said once while it fails the same way (`announce_failure`), retried further apart;
            // a refusal is said in the status too.
            Err(e) => {
                say_refused(ctx, mu, base, &decision, &e).await;
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
    // Whether the API server holds this decision's status now, and whether this look wrote it.
    let mut held = written.is_some_and(|w| *w == decision.status);
    let mut wrote = false;
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
        (held, wrote) = (true, true);
    } else {
        ctx.statuses.decided(mu, written, &decision.status);
    }
    for n in after {
        publish(ctx, mu, n.warning, n.reason, n.action, n.message.clone()).await;
    }
    // Written before it is sent (`worth_writing`): a notification is made once, whatever happens
    // to this process.
    ctx.notifier.recorded(&observed.uid, &observed.deliveries);
    ctx.notifier.send(mu, decide::due_notifications(&decision.status, Utc::now()));
    if decision.status.phase != observed.status.phase {
        info!(phase = ?decision.status.phase, "{}", decision.status.message);
    }
    record_metrics(&ctx.metrics, &observed.id, &observed.status, &decision.status);
    // An upgrade that has ended and let go of its targets (its release, if any, went through
    // above, and so did the status saying so) needs its finalizer no more; a deleted one goes.
    let saved_done = held || written.is_some_and(super::finalizer::done);
    if super::finalizer::done(&decision.status)
        && saved_done
        && let Some(patch) = super::finalizer::remove_patch(mu)
    {
        match super::finalizer::patch(&ctx.client, mu, patch).await {
            Ok(()) if observed.deleting => info!("deleted: its targets are released, the finalizer removed"),
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            // Changed since it was read: soon again, since a change of metadata wakes nothing.
            Err(e) if target::changed_since_read(&e) => {
                return Ok(Action::requeue(StdDuration::from_secs(1)));
            }
            Err(e) => {
                return Err(Error::PatchTarget(format!("the finalizer of MaintenanceUpgrade {name}"), e));
            }
        }
        if observed.deleting {
            super::forget(ctx, mu);
            return Ok(Action::await_change());
        }
    }
    // A look that went through, changing a target or writing the status: failures before it
    // are over (a conflict, looked at again at once, is not one that went through). A look
    // that only waited (for reads to catch up, for a window) proves nothing of them: a failure
    // that comes back the same is not announced again.
    if decision.effect.is_some() || wrote {
        ctx.retries.succeeded(&observed.uid);
    }
    Ok(match decision.requeue_after {
        Some(d) => Action::requeue(d.to_std().unwrap_or_default().max(StdDuration::from_millis(100))),
        None => Action::await_change(),
    })
}

/// The most signals of one upgrade whose series are exported: a spec names at most
/// `MAX_SIGNALS`, and each may have a canary's copy.
pub(crate) const EXPORTED_SIGNALS: usize = 2 * crate::crd::MAX_SIGNALS;

fn record_metrics(
    m: &Metrics,
    id: &str,
    before: &MaintenanceUpgradeStatus,
    after: &MaintenanceUpgradeStatus,
) {
    m.reconciles.get_or_create(&ResultLabel { result: "ok".into() }).inc();
    // A signal read no more (taken out of the spec, a canary's copy handed over): its series go.
    // At most as many as a spec may make, named as a spec may name them (63 characters, and a
    // copy's suffix; a status written by a tenant could hold thousands, named at any length).
    let read = || {
        let named = |a: &&crate::crd::SignalStatus| a.name.len() <= 128;
        after.analysis.iter().filter(|a| !a.retired()).filter(named).take(EXPORTED_SIGNALS)
    };
    m.signals_now(id, read().map(|a| a.name.clone()));
    if before.phase != after.phase {
        m.phase
            .get_or_create(&UpgradeLabels { upgrade: id.into(), phase: format!("{:?}", before.phase) })
            .set(0);
    }
    m.phase.get_or_create(&UpgradeLabels { upgrade: id.into(), phase: format!("{:?}", after.phase) }).set(1);
    m.conditions_now(
        id,
        after.conditions.iter().map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone())),
    );
    if let (None, Some(r)) = (&before.rollback, &after.rollback) {
        m.rollback_started(&r.reason);
    }
    for a in read() {
        let set = |family: &SignalGauges, series: &str, v: Option<f64>| {
            if let Some(v) = v {
                family
                    .get_or_create(&SignalLabels {
                        upgrade: id.into(),
                        signal: a.name.as_str().into(),
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

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

async fn apply_effect(ctx: &Context, effect: &Effect, owner: &str, owner_uid: &str) -> Result<()> {
    match effect {
        Effect::Claim { claims } => {
            // One at a time, in the order decided (`TargetKey` order), stopping at the first
            // that fails: an upgrade holds only a first run of its targets in that order, so that two
            // racing for the same ones cannot each hold one the other waits for. The next look
            // finds the ones made so far recorded on their targets.
            for c in claims {
                let patch = target::claim_patch(
                    &c.resource_version,
                    owner,
                    &c.owner_uid,
                    &c.known_good,
                    c.known_good_digest.as_deref(),
                    c.original_strategy.as_deref(),
                );
                patch_target(ctx, &c.target, &Patch::Merge(patch)).await?;
            }
            Ok(())
        }
        Effect::SetImage { target, resource_version, container, index, image, more, strategy } => {
            let images: Vec<(usize, &str, &str)> =
                std::iter::once((*index, container.as_str(), image.as_str()))
                    .chain(more.iter().map(|(i, c, m)| (*i, c.as_str(), m.as_str())))
                    .collect();
            let patch = target::image_patch(
                target.kind,
                resource_version,
                owner,
                owner_uid,
                &images,
                strategy.as_ref().map(|(new, original)| (new.as_str(), original.as_str())),
            );
            json_patch_target(ctx, target, patch).await
        }
        Effect::SetStrategy { target, resource_version, strategy, handed_over } => {
            let patch = target::strategy_patch(
                target.kind,
                resource_version,
                owner,
                owner_uid,
                strategy,
                handed_over.as_deref(),
            );
            json_patch_target(ctx, target, patch).await
        }
        Effect::DeletePods { target, pods } => delete_pods(ctx, target, pods).await,
        Effect::Release { targets, keep_strategy } => {
            for (t, resource_version) in targets {
                let keep = keep_strategy.contains(t);
                let release = |rv: &str| Patch::Merge(target::release_patch(rv, keep));
                match patch_target(ctx, t, &release(resource_version)).await {
                    Err(Error::PatchTarget(_, kube::Error::Api(s))) if s.code == 404 => {}
                    // Its status moved on since it was read (a rollout, node churn): read again,
                    // and released at that version if it is still ours.
                    Err(Error::PatchTarget(_, e)) if is_conflict(&e) => {
                        if let Some(rv) = version_if_ours(ctx, t, owner_uid).await? {
                            match patch_target(ctx, t, &release(&rv)).await {
                                Err(Error::PatchTarget(_, kube::Error::Api(s))) if s.code == 404 => {}
                                other => other?,
                            }
                        }
                    }
                    other => other?,
                }
            }
            Ok(())
        }
    }
}

async fn json_patch_target(ctx: &Context, t: &TargetKey, patch: serde_json::Value) -> Result<()> {
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a target patch is a JSON patch");
    patch_target(ctx, t, &Patch::Json(patch)).await
}

/// The resourceVersion of target `t` as it is now, if it still carries the owner UID `owner_uid`.
async fn version_if_ours(ctx: &Context, t: &TargetKey, owner_uid: &str) -> Result<Option<String>> {
    let now = super::observe::read_target(ctx, t, None).await?;
    Ok(now.filter(|s| s.owner_uid.as_deref() == Some(owner_uid)).map(|s| s.resource_version))
}

/// Delete pods of a target, each only if it is still the pod decided on (its UID): a pod made
/// again since, under the same name, is left alone. One already gone is fine.
async fn delete_pods(ctx: &Context, t: &TargetKey, pods: &[(String, String)]) -> Result<()> {
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &t.namespace);
    for (name, uid) in pods {
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(Error::PatchTarget(format!("{t} pod {name}"), e)),
        }
    }
    Ok(())
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

/// A change the API server refuses (an admission policy, a missing permission: 400, 403 or
/// 422) is said in Blocked, on the status this look decided from (every step in it went
/// through): the decision cannot be written, as what it says was done was not. Once per
/// refusal, not at every retry; a write that fails is left to the next retry. Not on an ended
/// upgrade, whose conditions are never decided again (a refused release is said in the Event).
async fn say_refused(ctx: &Context, mu: &MaintenanceUpgrade, base: &Base, decision: &Decision, e: &Error) {
    let Error::PatchTarget(_, kube::Error::Api(s)) = e else { return };
    if !matches!(s.code, 400 | 403 | 422) || base.current.phase.is_terminal() {
        return;
    }
    let now = Utc::now();
    let generation = mu.metadata.generation;
    let doing = &decision.status.message;
    let Some(st) = decide::refused_status(&base.current, doing, &e.to_string(), now, generation) else {
        return;
    };
    match write_status(&ctx.client, mu, &base.resource_version, &st).await {
        Ok(rv) => {
            ctx.metrics.status_writes.inc();
            ctx.statuses.wrote(mu, &st, rv);
        }
        Err(e) => info!("could not say in the status that a change was refused: {e}"),
    }
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

/// A look that failed (a read, a change to a target, the status write, a look cut short), as a
/// Warning Event: once while it fails the same way, since it is retried further apart each
/// time (`retries`), and the status cannot say it when the failure is its own write. Sent
/// after the look's own time limit, so it has one of its own: an API server that takes the
/// request and never answers must not hold the upgrade's slot for ever.
pub(super) async fn announce_failure(ctx: &Context, mu: &MaintenanceUpgrade, e: &Error) {
    if !ctx.retries.is_news(&mu.uid().unwrap_or_default(), &e.to_string()) {
        return;
    }
    let action = match e {
        Error::PatchTarget(..) => "Act",
        Error::PatchStatus(..) => "WriteStatus",
        Error::LookTimedOut(..) => "Look",
        Error::Read(..) | Error::Prometheus(..) | Error::PromQuery(..) | Error::PromNoData(..) => "Observe",
    };
    let note = format!(
        "{e}; retrying, further apart each time (up to once a minute), without repeating this Event while the failure stays the same"
    );
    let publishing = publish(ctx, mu, true, reason::ACTION_FAILED, action, note);
    if tokio::time::timeout(ANNOUNCE_LIMIT, publishing).await.is_err() {
        warn!("the Event of a failed look was not answered within {}s", ANNOUNCE_LIMIT.as_secs());
    }
}

/// How long the Event of a failed look may take.
const ANNOUNCE_LIMIT: StdDuration = StdDuration::from_secs(10);

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
            name: Some(event_name(&mu.name_any(), now.as_nanosecond())),
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

/// An Event's name, like client-go's: the upgrade's name and the time in hex nanoseconds; the
/// name cut so that the whole stays within the 253 characters of a DNS subdomain (an upgrade may
/// be named with all 253, and each of its Events would be refused), ending in a letter or digit.
fn event_name(upgrade: &str, nanos: i128) -> String {
    let time = format!("{nanos:x}");
    let keep = 253 - 1 - time.len();
    let cut = upgrade.get(..keep.min(upgrade.len())).unwrap_or(upgrade);
    format!("{}.{time}", cut.trim_end_matches(['-', '.']))
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
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
#[path = "act_tests.rs"]
mod tests;
