//! The operator's own lifecycle, as the docs tell an installer to run it: upgrading the operator
//! (the CRD first, Helm's CRD taken over) with an upgrade in flight, then uninstalling it and
//! cleaning up what is left. The commands are read from the docs' pages and run as written, so
//! that the pages cannot drift from what works. The last tests of `make e2e`: uninstalling
//! removes what every other scenario needs.

use e2e::*;
use maintenance_operator::crd::{MaintenanceUpgrade, Phase, StagePhase};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// Upgrading the operator mid-soak: the CRD is applied first, taking over the fields Helm's
/// field manager holds, then a new process starts; the upgrade in flight carries on and ends
/// as it would have, nothing repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s33_the_operator_upgraded_as_the_docs_say_carries_an_upgrade_in_flight_on() {
    let mut s = incident_world("operator-upgrade").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let generation = s.generation("connector").await;
    s.apply(&two_stage(&s.ns, "up", "20s", next)).await;
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    s.operator.terminate(SECS(10)).expect("SIGTERM stops the old operator");

    // As if Helm had installed an older CRD: its field manager holds fields the new one changes.
    let crd = env_crd(&s.env);
    let older = crd.replacen("description: ", "description: Older. ", 1);
    let older_file = s.env.root.join("target/e2e/older-crd.yaml");
    std::fs::write(&older_file, older).unwrap();
    s.env
        .kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=helm",
            "-f",
            older_file.to_str().unwrap(),
        ])
        .unwrap();
    let line = docs::block(&s.env, "operations/upgrading.md", "the chart's CRD")
        .lines()
        .find(|l| l.contains("crds/"))
        .unwrap()
        .replace("maintenance-operator/charts/", "charts/");
    // Without --force-conflicts the API server refuses: the fields are Helm's.
    let plain = docs::run(&s.env, &line.replace(" --force-conflicts", ""));
    assert!(plain.as_ref().is_err_and(|e| e.contains("conflict")), "{plain:?}");
    docs::run(&s.env, &line).expect("the docs' command takes the CRD over");
    let served = s.env.kubectl(&["get", "crd", "maintenanceupgrades.maintenance.dev", "-o", "yaml"]).unwrap();
    assert!(!served.contains("Older."), "the new CRD is served");

    s.operator.restart().unwrap();
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(120)).await;
    assert_eq!(s.image("connector").await, next);
    // The image with the canary's OnDelete, then the strategy handed back: nothing repeated.
    assert_eq!(s.generation("connector").await, generation + 2, "the image set once");
    assert_eq!(mu.status.unwrap().stages.len(), 2);

    // install.yaml applied as the page says keeps the settings the install has now (this
    // cluster's are not the release's defaults), not the defaults the file carries.
    let settings = || s.env.settings().unwrap();
    let before = settings();
    assert_eq!(before.get("trustedNamespaces").map(String::as_str), Some("e2e-tenancy"), "{before:?}");
    let dist = s.env.root.join("dist/install.yaml");
    let block = docs::block(&s.env, "operations/upgrading.md", "install.yaml keeping the settings");
    let block = block
        .replace("curl -fsSL -o install.yaml \\\n", &format!("cp '{}' install.yaml\n#", dist.display()))
        .replace("kubectl -n maintenance-operator rollout status deployment/maintenance-operator", "");
    docs::run(&s.env, &block).expect("the page's upgrade with install.yaml");
    assert_eq!(settings(), before, "the settings kept");
    // The rest of the release applied: its Deployment runs two replicas (this cluster's none).
    let replicas = [
        "get",
        "deployment",
        "-n",
        "maintenance-operator",
        "maintenance-operator",
        "-o",
        "jsonpath={.spec.replicas}",
    ];
    assert_eq!(s.env.kubectl(&replicas).unwrap(), "2", "install.yaml applied");
    // This cluster runs the operator as a process.
    s.env
        .kubectl(&["scale", "-n", "maintenance-operator", "deployment/maintenance-operator", "--replicas=0"])
        .unwrap();
}

fn env_crd(env: &Env) -> String {
    std::fs::read_to_string(env.root.join("charts/maintenance-operator/crds/maintenanceupgrades.yaml"))
        .unwrap()
}

/// Uninstalling with the operator already gone, as the uninstall page says: the finalizers
/// removed by hand, `kubectl delete -k config/default`, then the canary it left mid-soak put
/// back (its known-good image, then its saved strategy) and every mark removed. Nothing of the
/// install is left, and the workload runs as it did before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s34_uninstalled_as_the_docs_say_nothing_is_left() {
    let mut s = incident_world("uninstall").await;
    let original = s.strategy("connector").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    s.apply(&two_stage(&s.ns, "up", "600s", next)).await;
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    s.operator.kill();
    let marked = s.env.kubectl(&["get", "ds", "-n", &s.ns, "connector", "-o", "yaml"]).unwrap();
    assert!(marked.contains("maintenance.dev/owner"), "claimed: {marked}");

    // Its namespace deleted first, say: the tenancy settings are gone, the cluster-wide policies
    // stay. A new upgrade is refused without them; a pause, and step 1, are not.
    let settings = settings_removed(&s.env);
    let mu: MaintenanceUpgrade = serde_yaml::from_str(&two_stage(&s.ns, "another", "600s", next)).unwrap();
    let dry_create = kube::api::PostParams { dry_run: true, ..Default::default() };
    eventually("a new upgrade is refused without the settings", SECS(30), || async {
        s.upgrades().create(&dry_create, &mu).await.is_err()
    })
    .await;
    let pause = serde_json::json!({"spec": {"paused": true}});
    let patched = s.upgrades().patch("up", &Default::default(), &kube::api::Patch::Merge(&pause)).await;
    assert!(patched.is_ok(), "a pause is never refused: {patched:?}");

    // 1. The operator is gone: the finalizers go by hand, and the upgrades with them.
    docs::run(&s.env, &docs::block(&s.env, "operations/uninstall.md", "finalizers")).unwrap();
    let deadline = std::time::Instant::now() + SECS(30);
    while s.upgrades().get_opt("up").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the upgrade goes once its finalizer is removed");
        s.upgrades().delete("up", &Default::default()).await.ok();
        tokio::time::sleep(SECS(1)).await;
    }

    // The settings back, for step 2 to delete with the rest.
    s.env.kubectl(&["create", "-f", settings.to_str().unwrap()]).unwrap();

    // 2. What the install made.
    let delete = docs::block(&s.env, "operations/uninstall.md", "delete the install");
    let line = delete.lines().find(|l| l.contains("delete -k config/default")).unwrap();
    let command = line.trim_start_matches(['#', ' ']).trim_start_matches("or: ");
    docs::run(&s.env, &format!("{command} --wait --timeout=120s")).unwrap();
    for (kind, name) in [
        ("crd", "maintenanceupgrades.maintenance.dev"),
        ("namespace", "maintenance-operator"),
        ("clusterrole", "maintenance-operator"),
        ("validatingadmissionpolicy", "maintenance-operator-tenancy"),
        ("validatingadmissionpolicy", "maintenance-operator-status"),
    ] {
        let left = s.env.kubectl(&["get", kind, name, "--ignore-not-found", "-o", "name"]).unwrap();
        assert!(left.trim().is_empty(), "{kind}/{name} left after the uninstall: {left}");
    }

    // 3. The marks on the workload: the canary left mid-soak is listed and put back as the page
    // says (the known-good image, then its saved strategy), then every mark removed.
    let listed =
        docs::run(&s.env, &docs::block(&s.env, "operations/uninstall.md", "list left canaries")).unwrap();
    assert!(listed.contains(&format!("DaemonSet {}/connector", s.ns)), "{listed}");
    assert_eq!(
        s.strategy("connector").await,
        serde_json::json!({"type": "OnDelete"}),
        "left on the canary's settings"
    );
    let during = s.pods_by_node("connector").await;
    let canary: Vec<&String> =
        during.iter().filter(|(_, (_, image))| image == next).map(|(n, _)| n).collect();
    assert_eq!(canary.len(), 2, "{during:?}");
    let example = "KIND=daemonset NS=team-a NAME=connector";
    // The page's two blocks, read then put back, in one shell as it says.
    let read = docs::block(&s.env, "operations/uninstall.md", "read a canary's marks");
    assert!(read.contains(example), "{read}");
    let read = read.replacen(example, &format!("KIND=daemonset NS={} NAME=connector", s.ns), 1);
    let put_back = docs::block(&s.env, "operations/uninstall.md", "put a canary back");
    let said = docs::run(&s.env, &format!("{read}\n{put_back}")).unwrap();
    assert!(said.contains(&format!("known-good: connector={GOOD}")), "the marks read first: {said}");
    docs::run(&s.env, &docs::block(&s.env, "operations/uninstall.md", "remove the marks")).unwrap();
    assert_eq!(s.strategy("connector").await, original, "put back exactly");
    assert_eq!(s.image("connector").await, GOOD, "on its known-good image");
    // Only the canary's pods were made again: the rest never ran the new image.
    s.wait_rolled_out("connector", SECS(60)).await;
    s.assert_remade_only("connector", &during, |n| canary.iter().any(|c| *c == n), GOOD).await;
    let ds = s.env.kubectl(&["get", "ds", "-n", &s.ns, "connector", "-o", "json"]).unwrap();
    let ds: serde_json::Value = serde_json::from_str(&ds).unwrap();
    for field in ["annotations", "labels"] {
        let keys: Vec<&String> =
            ds["metadata"][field].as_object().into_iter().flatten().map(|(k, _)| k).collect();
        assert!(!keys.iter().any(|k| k.starts_with("maintenance.dev/")), "{field} left: {keys:?}");
    }

    s.stop_background().await;
}

/// Delete the tenancy settings ConfigMap; a file that creates it again.
fn settings_removed(env: &Env) -> std::path::PathBuf {
    let (ns, name) = ("maintenance-operator", "maintenance-operator-tenancy");
    let json = env.kubectl(&["get", "configmap", "-n", ns, name, "-o", "json"]).unwrap();
    let mut cm: serde_json::Value = serde_json::from_str(&json).unwrap();
    cm["metadata"] = serde_json::json!({"name": name, "namespace": ns, "labels": cm["metadata"]["labels"]});
    let file = env.root.join("target/e2e/tenancy-settings.json");
    std::fs::write(&file, cm.to_string()).unwrap();
    env.kubectl(&["delete", "configmap", "-n", ns, name]).unwrap();
    file
}
