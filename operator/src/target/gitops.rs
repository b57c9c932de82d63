//! Observe step, pure: whether a target is managed by Argo CD, Flux or Helm, which would put its
//! old image back (self-heal, drift correction, or the next `helm upgrade`), and the setting in
//! that tool that lets the operator's image change stand.

use super::key::TargetKey;
use crate::constants::FIELD_MANAGER;
use crate::crd::{ManagedBy, ManagerTool, WorkloadKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The tool that manages a target, from the marks each tool leaves on what it applies. Flux's
/// HelmRelease before Helm (it leaves both), Argo CD's tracking annotation before a plain Helm
/// release (an Argo CD application can render a chart).
pub fn managed_by(meta: &ObjectMeta) -> Option<ManagedBy> {
    let label = |k: &str| meta.labels.as_ref()?.get(k).cloned();
    // Names of at most 253 characters: a longer annotation names nothing, and is not kept.
    let annotation = |k: &str| meta.annotations.as_ref()?.get(k).filter(|v| v.len() <= 1024).cloned();
    let flux = |tool, prefix: &str| {
        let name = label(&format!("{prefix}/name"))?;
        Some(ManagedBy { tool, name, namespace: label(&format!("{prefix}/namespace")) })
    };
    let managers = meta.managed_fields.iter().flatten().filter_map(|f| f.manager.as_deref());
    let argo_manager = managers.clone().any(|m| m == "argocd-controller");
    flux(ManagerTool::FluxHelmRelease, "helm.toolkit.fluxcd.io")
        .or_else(|| flux(ManagerTool::FluxKustomization, "kustomize.toolkit.fluxcd.io"))
        .or_else(|| {
            // `<app>:<group>/<kind>:<namespace>/<name>`; the app may be `<namespace>_<name>`.
            let app = annotation("argocd.argoproj.io/tracking-id")
                .and_then(|t| t.split_once(':').map(|(a, _)| a.to_string()))
                .or_else(|| argo_manager.then(|| label("app.kubernetes.io/instance").unwrap_or_default()))?;
            let (namespace, name) = match app.split_once('_') {
                Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
                None => (None, app),
            };
            Some(ManagedBy { tool: ManagerTool::ArgoCd, name, namespace })
        })
        .or_else(|| {
            let helm = label("app.kubernetes.io/managed-by").is_some_and(|m| m == "Helm");
            let release = annotation("meta.helm.sh/release-name").filter(|_| helm)?;
            Some(ManagedBy {
                tool: ManagerTool::Helm,
                name: release,
                namespace: annotation("meta.helm.sh/release-namespace"),
            })
        })
}

/// What happens to the operator's change, and the exact setting that prevents it, for `target`
/// whose containers at `indices` the upgrade changes (its own, and its alsoContainers).
/// `canary`: the operator changes the target's rollout settings too (a canary inside it),
/// which the tool would put back as well: a DaemonSet's or StatefulSet's updateStrategy, a
/// Deployment's strategy, minReadySeconds and progressDeadlineSeconds.
pub fn advice(m: &ManagedBy, target: &TargetKey, indices: &[usize], canary: bool) -> String {
    let (kind, ns, name) = (format!("{:?}", target.kind), &target.namespace, &target.name);
    let owner = match &m.namespace {
        Some(n) => format!("{n}/{}", m.name),
        None => m.name.clone(),
    };
    let mut paths: Vec<String> =
        indices.iter().map(|i| format!("\"/spec/template/spec/containers/{i}/image\"")).collect();
    let mut what = "the old image".to_string();
    if canary && target.kind == WorkloadKind::Deployment {
        for field in ["strategy", "minReadySeconds", "progressDeadlineSeconds"] {
            paths.push(format!("\"/spec/{field}\""));
        }
        what.push_str(" and strategy, minReadySeconds and progressDeadlineSeconds (which end the canary)");
    } else if canary {
        paths.push("\"/spec/updateStrategy\"".into());
        what.push_str(" and updateStrategy (which rolls every node, or every replica)");
    }
    let paths = paths.join(", ");
    match m.tool {
        ManagerTool::ArgoCd => format!(
            "{target} is managed by Argo CD application {owner}: self-heal puts {what} back. \
             Add to the Application spec.ignoreDifferences: {{group: apps, kind: {kind}, name: {name}, namespace: {ns}, \
             managedFieldsManagers: [{FIELD_MANAGER}]}}, and to spec.syncPolicy.syncOptions: RespectIgnoreDifferences=true; \
             once the upgrade ends, set in Git the images it ended on (each component's: the new one if it succeeded, the \
             known-good one if it was reverted) and remove that rule (while it stays, the fields the operator \
             wrote last are not synced from Git)"
        ),
        ManagerTool::FluxKustomization => format!(
            "{target} is managed by Flux Kustomization {owner}: drift correction puts {what} back. \
             Add to its spec.driftIgnoreRules: {{paths: [{paths}], target: {{kind: {kind}, name: {name}, namespace: {ns}}}}} \
             (Flux without drift ignore rules: annotate the {kind} in Git with kustomize.toolkit.fluxcd.io/reconcile: disabled \
             for the maintenance)"
        ),
        ManagerTool::FluxHelmRelease => format!(
            "{target} is managed by Flux HelmRelease {owner}: drift detection, when enabled, puts {what} back. \
             Add to its spec.driftDetection.ignore: {{paths: [{paths}], target: {{kind: {kind}, name: {name}, namespace: {ns}}}}}, \
             and set the new image in its values once the upgrade succeeds"
        ),
        ManagerTool::Helm => format!(
            "{target} is managed by Helm release {owner}: the next helm upgrade puts {what} back{}. \
             Once the upgrade succeeds, set the new image in the release's values (helm upgrade --reuse-values --set ...)",
            if canary {
                "; run none until the upgrade ends (Helm 4's server-side apply refuses it without --force-conflicts)"
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
#[path = "gitops_tests.rs"]
mod tests;
