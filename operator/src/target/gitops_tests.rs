//! Unit tests of `gitops.rs`.

use super::*;
use crate::crd::WorkloadKind;
use serde_json::json;

fn meta(v: serde_json::Value) -> ObjectMeta {
    serde_json::from_value(v).unwrap()
}

#[test]
fn each_tool_is_told_apart_by_its_marks() {
    let cases = [
        (
            json!({"annotations": {"argocd.argoproj.io/tracking-id": "argocd_secrets:apps/DaemonSet:kube-system/connector"}}),
            Some((ManagerTool::ArgoCd, "secrets", Some("argocd"))),
        ),
        (
            json!({"annotations": {"argocd.argoproj.io/tracking-id": "secrets:apps/DaemonSet:kube-system/connector"}}),
            Some((ManagerTool::ArgoCd, "secrets", None)),
        ),
        (
            json!({"labels": {"app.kubernetes.io/instance": "secrets"}, "managedFields": [{"manager": "argocd-controller"}]}),
            Some((ManagerTool::ArgoCd, "secrets", None)),
        ),
        (
            json!({"labels": {"kustomize.toolkit.fluxcd.io/name": "infra", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}),
            Some((ManagerTool::FluxKustomization, "infra", Some("flux-system"))),
        ),
        (
            json!({"labels": {"helm.toolkit.fluxcd.io/name": "csi", "helm.toolkit.fluxcd.io/namespace": "flux-system",
                    "app.kubernetes.io/managed-by": "Helm"}, "annotations": {"meta.helm.sh/release-name": "csi"}}),
            Some((ManagerTool::FluxHelmRelease, "csi", Some("flux-system"))),
        ),
        (
            json!({"labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {"meta.helm.sh/release-name": "csi", "meta.helm.sh/release-namespace": "kube-system"}}),
            Some((ManagerTool::Helm, "csi", Some("kube-system"))),
        ),
        // An instance label alone is what many charts set: not a sign of Argo CD.
        (json!({"labels": {"app.kubernetes.io/instance": "secrets"}}), None),
        (json!({}), None),
    ];
    for (m, want) in cases {
        let got = managed_by(&meta(m.clone()));
        let got = got.as_ref().map(|g| (g.tool, g.name.as_str(), g.namespace.as_deref()));
        assert_eq!(got, want, "{m}");
    }
}

#[test]
fn the_advice_names_the_exact_setting() {
    let key = TargetKey {
        kind: WorkloadKind::DaemonSet,
        namespace: "kube-system".into(),
        name: "connector".into(),
    };
    let argo =
        ManagedBy { tool: ManagerTool::ArgoCd, name: "secrets".into(), namespace: Some("argocd".into()) };
    let a = advice(&argo, &key, &[0], false);
    assert!(a.contains("Argo CD application argocd/secrets"), "{a}");
    assert!(a.contains("managedFieldsManagers: [maintenance-operator]"), "{a}");
    assert!(a.contains("RespectIgnoreDifferences=true"), "{a}");
    let flux = ManagedBy { tool: ManagerTool::FluxKustomization, name: "infra".into(), namespace: None };
    let f = advice(&flux, &key, &[1], false);
    assert!(f.contains("driftIgnoreRules: {paths: [\"/spec/template/spec/containers/1/image\"]"), "{f}");
    // A canary inside the target changes its updateStrategy too: every field is named.
    let f = advice(&flux, &key, &[1], true);
    assert!(
        f.contains("paths: [\"/spec/template/spec/containers/1/image\", \"/spec/updateStrategy\"]"),
        "{f}"
    );
    assert!(
        f.contains("puts the old image and updateStrategy (which rolls every node, or every replica) back"),
        "{f}"
    );
    // A Deployment's canary changes three fields of its spec.
    let web = TargetKey { kind: WorkloadKind::Deployment, ..key.clone() };
    let f = advice(&flux, &web, &[0], true);
    assert!(
        f.contains(
            "paths: [\"/spec/template/spec/containers/0/image\", \"/spec/strategy\", \"/spec/minReadySeconds\", \"/spec/progressDeadlineSeconds\"]"
        ),
        "{f}"
    );
}
