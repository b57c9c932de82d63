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

/// `kubectl explain maintenanceupgrade…` says something on every path: each field of the spec
/// and of the status has a description (list items take their list's), and so does the kind.
#[test]
fn every_field_and_the_kind_are_described() {
    fn undescribed(s: &serde_json::Value, path: String, out: &mut Vec<String>) {
        if s.get("description").is_none() && !path.ends_with("[]") {
            out.push(path.clone());
        }
        for (k, c) in s.get("properties").and_then(|p| p.as_object()).into_iter().flatten() {
            undescribed(c, format!("{path}.{k}"), out);
        }
        if let Some(items) = s.get("items") {
            undescribed(items, format!("{path}[]"), out);
        }
    }
    let crd = serde_json::to_value(MaintenanceUpgrade::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let kind = schema["description"].as_str().unwrap_or_default();
    assert!(!kind.contains("Auto-generated"), "the kind's description: {kind}");
    let mut missing = vec![];
    undescribed(&schema["properties"]["spec"], "spec".into(), &mut missing);
    undescribed(&schema["properties"]["status"], "status".into(), &mut missing);
    assert!(missing.is_empty(), "fields without a description (a doc comment): {missing:?}");
}

/// The README's one example is `config/samples/quickstart.yaml` (which the e2e tests apply with a
/// server-side dry run), shown without its opening comment: never a copy that drifts.
#[test]
fn the_readme_example_is_the_quickstart_sample() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let shown = readme.split("```yaml\n").nth(1).and_then(|r| r.split("```").next()).unwrap_or_default();
    let sample = std::fs::read_to_string(format!("{root}/config/samples/quickstart.yaml")).unwrap();
    let sample: String =
        sample.lines().skip_while(|l| l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    assert!(shown == sample, "README.md's example differs from config/samples/quickstart.yaml:\n{shown}");
}

/// Every `format` is one Kubernetes knows: the API server warns of any other at every install
/// (`Warning: unrecognized format "uint32"`), and ignores it.
#[test]
fn every_format_is_one_kubernetes_knows() {
    // k8s.io/apiextensions-apiserver's supported formats.
    const KNOWN: &[&str] = &[
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "date-time",
        "int32",
        "int64",
        "float",
        "double",
    ];
    fn formats(s: &serde_json::Value, path: String, out: &mut Vec<String>) {
        match s {
            serde_json::Value::Object(m) => {
                if let Some(f) = m.get("format").and_then(|f| f.as_str())
                    && !KNOWN.contains(&f)
                {
                    out.push(format!("{path}: {f}"));
                }
                for (k, v) in m {
                    formats(v, format!("{path}.{k}"), out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| formats(v, path.clone(), out)),
            _ => {}
        }
    }
    let crd = serde_json::to_value(MaintenanceUpgrade::crd()).unwrap();
    let mut unknown = vec![];
    formats(&crd, String::new(), &mut unknown);
    assert!(unknown.is_empty(), "formats Kubernetes does not know: {unknown:?}");
}

/// A `date` column prints the age of its time (`time.Since`), and `<invalid>` for a time to
/// come: only times past are date columns (`nextAction.at` is mostly to come).
#[test]
fn only_times_past_are_date_columns() {
    let crd = serde_json::to_value(MaintenanceUpgrade::crd()).unwrap();
    for c in crd["spec"]["versions"][0]["additionalPrinterColumns"].as_array().unwrap() {
        if c["type"] == "date" {
            assert_eq!(c["jsonPath"], ".metadata.creationTimestamp", "{c}");
        }
    }
}
