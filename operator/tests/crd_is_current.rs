//! `crds/` is generated: fail when it no longer matches the types (run `make crds`).

use kube::CustomResourceExt;
use maintenance_operator::crd::MaintenanceUpgrade;

#[test]
fn committed_crd_matches_the_types() {
    let generated = serde_yaml::to_string(&MaintenanceUpgrade::crd()).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/maintenanceupgrades.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated == committed,
        "crds/maintenanceupgrades.yaml is stale: run `make crds` and commit the result"
    );
}

#[test]
fn samples_parse_as_maintenance_upgrades() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/samples");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // The samples of what goes with an upgrade (RBAC for a webhook's Secret) are not one.
        if !text.contains("kind: MaintenanceUpgrade") {
            continue;
        }
        let mu: MaintenanceUpgrade =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!mu.spec.stages.is_empty(), "{}", path.display());
    }
}
