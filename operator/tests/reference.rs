//! The reference pages generated from the code (`docs/src/reference/`): the CRD's fields from
//! its OpenAPI schema, the metrics from the registry's HELP text, the conditions and reasons
//! from `constants.rs`, the Helm values from the chart's commented `values.yaml`. Each test
//! fails when its committed page is stale; `make reference` writes them.

#[path = "reference/page.rs"]
mod page;

use kube::CustomResourceExt;
use maintenance_operator::Metrics;
use maintenance_operator::crd::MaintenanceUpgrade;
use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Table cells are one line, and `|` or a `<` would end or open something else: `|` is escaped
/// everywhere (a table wants it so even in code), `<` outside code spans only (inside, `&lt;`
/// would show as it is).
fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    let parts = one_line.split('`').enumerate();
    parts
        .map(|(i, p)| if i % 2 == 0 { p.replace('<', "&lt;") } else { p.to_string() })
        .collect::<Vec<_>>()
        .join("`")
}

/// The id mdBook gives a heading made of `path`.
fn anchor(path: &str) -> String {
    path.chars().filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect::<String>().to_lowercase()
}

#[test]
fn reference_of_the_crd_fields_is_current() {
    let crd = serde_json::to_value(MaintenanceUpgrade::crd()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut out = format!(
        "`{}/{}`, kind `{}` (short name `{}`), namespaced. {}\n\nEach object of the resource has a \
         table below; `kubectl explain maintenanceupgrade.<path>` prints the same descriptions.\n",
        crd["spec"]["group"].as_str().unwrap(),
        version["name"].as_str().unwrap(),
        crd["spec"]["names"]["kind"].as_str().unwrap(),
        crd["spec"]["names"]["shortNames"][0].as_str().unwrap(),
        cell(schema["description"].as_str().unwrap_or_default()),
    );
    for top in ["spec", "status"] {
        object_sections(&schema["properties"][top], top, &mut out);
    }
    page::check_or_write("crd.md", "MaintenanceUpgrade fields", "the CRD's OpenAPI schema", &out);
}

/// A section for the object at `path`, then one for each object below it.
fn object_sections(node: &Value, path: &str, out: &mut String) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
    out.push_str(&format!("\n## {path}\n\n"));
    if let Some(d) = node.get("description").and_then(Value::as_str) {
        out.push_str(&format!("{}\n\n", cell(d)));
    }
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    out.push_str("| Field | Type | Description |\n|---|---|---|\n");
    let mut nested = vec![];
    for (name, field) in props {
        let (child, element) = match field.get("items") {
            Some(items) => (format!("{path}.{name}[]"), items),
            None => (format!("{path}.{name}"), field),
        };
        let is_object = element.get("properties").is_some();
        let mut ty = type_of(field);
        if is_object {
            ty = format!("[{ty}](#{})", anchor(&child));
            nested.push((child, element));
        }
        let req = if required.contains(&name.as_str()) { " (required)" } else { "" };
        out.push_str(&format!("| `{name}`{req} | {ty} | {} |\n", cell(&describe(field))));
    }
    for (child, element) in nested {
        object_sections(element, &child, out);
    }
}

fn type_of(field: &Value) -> String {
    if field.get("x-kubernetes-int-or-string").is_some() {
        return "integer or string".into();
    }
    let ty = field.get("type").and_then(Value::as_str).unwrap_or("any");
    match ty {
        "array" => format!("array of {}", type_of(&field["items"])),
        "object" if field.get("additionalProperties").is_some() => {
            format!("map of {}", type_of(&field["additionalProperties"]))
        }
        "string" if field.get("format").and_then(Value::as_str) == Some("date-time") => {
            "time (RFC 3339)".into()
        }
        _ => ty.into(),
    }
}

/// The description, then what else the schema says of the field: values, default, bounds and
/// the rules the API server checks.
fn describe(field: &Value) -> String {
    let mut parts = vec![field.get("description").and_then(Value::as_str).unwrap_or_default().to_string()];
    if let Some(values) = field.get("enum").and_then(Value::as_array) {
        let values: Vec<String> =
            values.iter().map(|v| format!("`{}`", v.as_str().unwrap_or_default())).collect();
        parts.push(format!("One of {}.", values.join(", ")));
    }
    if let Some(d) = field.get("default") {
        parts.push(format!("Default: `{}`.", serde_json::to_string(d).unwrap()));
    }
    for (key, words) in [
        ("minimum", "At least"),
        ("maximum", "At most"),
        ("minLength", "At least this many characters:"),
        ("maxLength", "At most this many characters:"),
        ("minItems", "At least this many items:"),
        ("maxItems", "At most this many items:"),
    ] {
        if let Some(n) = field.get(key) {
            // Bounds are whole numbers, however the schema writes them (`1.0`).
            let n = n.as_f64().filter(|f| f.fract() == 0.0).map_or(n.to_string(), |f| format!("{f:.0}"));
            parts.push(format!("{words} {n}."));
        }
    }
    if let Some(p) = field.get("pattern").and_then(Value::as_str) {
        let either = field.get("x-kubernetes-int-or-string").is_some();
        parts.push(format!("{} `{p}`.", if either { "As a string, matches" } else { "Matches" }));
    }
    for rule in field.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
        if let Some(m) = rule.get("message").and_then(Value::as_str) {
            parts.push(format!("Checked: {m}."));
        }
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// Every family of the registry, with its labels.
#[test]
fn reference_of_the_metrics_is_current() {
    let m = Metrics::with_a_series_each();
    let mut out = String::from(
        "Served on `:8080/metrics` (OpenMetrics text) by every replica. Only the leader exports the \
         per-upgrade series (`upgrade` is `namespace/name`); the others export the rest.\n\n\
         | Series | Type | Labels | Help |\n|---|---|---|---|\n",
    );
    for family in families(&m.render()) {
        let labels: Vec<String> = family.labels.iter().map(|l| format!("`{l}`")).collect();
        let series: Vec<String> = family.series.iter().map(|s| format!("`{s}`")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            series.join("<br>"),
            family.kind,
            labels.join(", "),
            cell(&family.help)
        ));
    }
    page::check_or_write("metrics.md", "Metrics", "the operator's metrics registry", &out);
}

struct Family {
    name: String,
    help: String,
    kind: String,
    series: Vec<String>,
    labels: Vec<String>,
}

/// The families of an OpenMetrics text: HELP, TYPE, the names of their series and labels.
fn families(text: &str) -> Vec<Family> {
    let mut out: Vec<Family> = vec![];
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(Family {
                name: name.into(),
                help: help.into(),
                kind: String::new(),
                series: vec![],
                labels: vec![],
            });
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            out.last_mut().unwrap().kind =
                rest.split_once(' ').map(|(_, k)| k.to_string()).unwrap_or_default();
        } else if !line.starts_with('#') {
            let f = out.last_mut().unwrap();
            let name = line.split(['{', ' ']).next().unwrap().to_string();
            assert!(name.starts_with(f.name.as_str()), "{name} after # HELP {}", f.name);
            if !f.series.contains(&name) {
                f.series.push(name);
            }
            let labels =
                line.split_once('{').and_then(|(_, r)| r.split_once('}')).map(|(l, _)| l).unwrap_or("");
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let key = pair.split('=').next().unwrap().to_string();
                if key != "le" && !f.labels.contains(&key) {
                    f.labels.push(key);
                }
            }
        }
    }
    out
}

/// Condition types and reasons, from `constants.rs`: each `pub const` with its doc comment.
#[test]
fn reference_of_the_conditions_and_reasons_is_current() {
    let mut out = String::from(
        "Conditions are keyed on `type` in `status.conditions`; each has a `reason` and a \
         `message` that says what, why and what happens next. `Progressing` and `Complete` \
         carry the phase as their reason (`Soaking`, `Succeeded`…), and `ManagedByGitOps` the tool \
         (`ArgoCd`, `FluxKustomization`, `FluxHelmRelease`, `Helm`). Events carry the same reasons \
         (`kubectl describe mu NAME`).\n",
    );
    for (module, title, column) in [("condition", "Condition types", "Type"), ("reason", "Reasons", "Reason")]
    {
        out.push_str(&format!("\n## {title}\n\n| {column} | Meaning |\n|---|---|\n"));
        for (value, doc) in constants(module) {
            assert!(
                !doc.is_empty(),
                "constants.rs: {module} {value} has no doc comment to say what it means"
            );
            out.push_str(&format!("| `{value}` | {} |\n", cell(&doc)));
        }
    }
    page::check_or_write("conditions.md", "Conditions and reasons", "operator/src/constants.rs", &out);
}

/// The chart's values: each key with its default and the comment above it.
#[test]
fn reference_of_the_helm_values_is_current() {
    let text = std::fs::read_to_string(root().join("charts/maintenance-operator/values.yaml")).unwrap();
    let mut out = String::from(
        "The values of `charts/maintenance-operator`: set them with `--set` or `-f`. Everything \
         else the chart installs is rendered from `config/default`.\n\n\
         | Key | Default | Description |\n|---|---|---|\n",
    );
    let mut comment: Vec<&str> = vec![];
    let mut parents: Vec<(usize, String)> = vec![];
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            comment.clear();
        } else if let Some(c) = trimmed.strip_prefix('#') {
            comment.push(c.trim());
        } else if trimmed.starts_with("- ") {
            panic!(
                "values.yaml: a block list ({trimmed}); write it in flow style, [a, b], so the page shows it"
            );
        } else if let Some((key, value)) = trimmed.split_once(':') {
            parents.retain(|(i, _)| *i < indent);
            let path: Vec<String> = parents.iter().map(|(_, k)| k.clone()).chain([key.to_string()]).collect();
            let value = value.trim();
            if value.is_empty() {
                parents.push((indent, key.to_string()));
            }
            let shown = if value.is_empty() { "".into() } else { format!("`{}`", value.replace('|', "\\|")) };
            assert!(!comment.is_empty(), "values.yaml: {key} has no comment above it");
            assert!(!value.contains(" #"), "values.yaml: {key}: put the comment above it, not after");
            out.push_str(&format!("| `{}` | {shown} | {} |\n", path.join("."), cell(&comment.join(" "))));
            comment.clear();
        }
    }
    page::check_or_write("helm-values.md", "Helm values", "charts/maintenance-operator/values.yaml", &out);
}

/// The constants of `constants.rs`'s module `module` (`condition` or `reason`): (value, doc).
fn constants(module: &str) -> Vec<(String, String)> {
    let source = std::fs::read_to_string(root().join("operator/src/constants.rs")).unwrap();
    let body = source.split(&format!("pub mod {module} {{")).nth(1).unwrap().split("\n}").next().unwrap();
    let (mut out, mut doc) = (vec![], vec![]);
    for line in body.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if let Some(c) = line.strip_prefix("pub const ") {
            out.push((c.split('"').nth(1).unwrap().to_string(), doc.join(" ")));
            doc.clear();
        }
    }
    out
}

/// The dashboard and the alerts of `config/monitoring` name only series the registry exports,
/// with labels those series have, and phases, condition types and reasons that exist; so that
/// a metric or label renamed fails here rather than as an empty panel or a silent alert.
#[test]
fn the_dashboard_and_the_alerts_name_only_exported_series_and_labels() {
    let text = Metrics::with_a_series_each().render();
    let families = families(&text);
    let labels_of =
        |series: &str| families.iter().find(|f| f.series.iter().any(|s| s == series)).map(|f| &f.labels);
    let every_label: Vec<&String> = families.iter().flat_map(|f| &f.labels).collect();
    // Added by the scrape, or by PromQL itself.
    let scrape = ["pod", "instance", "job", "namespace", "container", "le"];
    let phases: Vec<String> =
        maintenance_operator::crd::Phase::ALL.iter().map(|p| format!("{p:?}")).collect();
    let known_values = |label: &str| -> Option<Vec<String>> {
        match label {
            "phase" => Some(phases.clone()),
            "type" => Some(constants("condition").into_iter().map(|(v, _)| v).collect()),
            "reason" => Some(constants("reason").into_iter().map(|(v, _)| v).collect()),
            _ => None,
        }
    };
    for file in ["config/monitoring/grafana-dashboard.json", "config/monitoring/prometheus-rule.yaml"] {
        let source = std::fs::read_to_string(root().join(file)).unwrap();
        // JSON escapes the quotes of PromQL's strings.
        let source = source.replace("\\\"", "\"");
        let mut named = 0;
        for (i, _) in source.match_indices("maintenance_operator_") {
            let rest = &source[i..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..end];
            let is_family = families.iter().any(|f| f.name == name);
            let labels = labels_of(name);
            assert!(labels.is_some() || is_family, "{file} names {name}, which the operator does not export");
            named += 1;
            let Some(matchers) =
                rest[end..].strip_prefix('{').and_then(|m| m.split_once('}')).map(|(m, _)| m)
            else {
                continue;
            };
            for matcher in matchers.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                let label = matcher.split(['=', '!', '~']).next().unwrap().trim();
                assert!(
                    labels.unwrap().iter().any(|l| l == label),
                    "{file}: {name} has no label {label} ({matcher})"
                );
                let value = matcher.split('"').nth(1).unwrap_or_default();
                if let Some(known) = known_values(label) {
                    for v in value.split('|').filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric())) {
                        assert!(
                            known.iter().any(|k| k == v),
                            "{file}: {label}=\"{v}\" is no value the operator writes"
                        );
                    }
                }
            }
        }
        assert!(named >= 5, "{file} names only {named} series");
        for (i, _) in source.match_indices(" by (") {
            let grouped = source[i + 5..].split(')').next().unwrap();
            for label in grouped.split(',').map(str::trim) {
                assert!(
                    every_label.iter().any(|l| *l == label) || scrape.contains(&label),
                    "{file}: grouped by {label}, which no series of the operator has"
                );
            }
        }
    }
}
