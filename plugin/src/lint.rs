//! `lint -f FILE`: what the API server would say (a server-side dry run: the schema, its CEL rules
//! and the tenancy policy) and what the operator would find at runtime (targets that do not
//! exist, containers that must be named, targets another upgrade owns, signal namespaces that do
//! not exist). Changes nothing.

use crate::terminal::safe;
use crate::{Target, exit};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use maintenance_operator::crd::{Component, MaintenanceUpgrade, WorkloadKind};
use maintenance_operator::target::{self, TargetState};
use serde::Deserialize;

pub async fn lint(t: &Target, file: &std::path::Path) -> anyhow::Result<u8> {
    // The file's name and its upgrades' names are printed: escapes in them are shown, not run.
    let shown = safe(&file.display().to_string(), false);
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let (mut problems, mut upgrades) = (0, 0);
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = match serde_yaml::Value::deserialize(doc) {
            Ok(value) => value,
            Err(e) => {
                // The file is read no further: after a syntax error the parser says it again.
                println!("✗ {shown}: not YAML: {}", safe(&e.to_string(), false));
                problems += 1;
                break;
            }
        };
        let (mut mu, written) = match parse(value) {
            Ok(Some(read)) => read,
            Ok(None) => continue,
            Err(e) => {
                println!("✗ {shown}: not a MaintenanceUpgrade: {}", safe(&e, false));
                problems += 1;
                continue;
            }
        };
        upgrades += 1;
        let ns = mu.namespace().unwrap_or_else(|| t.namespace.clone());
        mu.metadata.namespace = Some(ns.clone());
        let id = format!("{ns}/{}", mu.name_any());
        println!("MaintenanceUpgrade {}", safe(&id, false));
        problems += check(&t.client, &mu, &written, &ns, &id).await?;
    }
    if problems == 0 && upgrades == 0 {
        println!("✗ {shown}: no MaintenanceUpgrade in it; nothing was changed");
        Ok(exit::NOT_OK)
    } else if problems == 0 {
        println!("no problems found; nothing was changed");
        Ok(exit::OK)
    } else {
        println!("{problems} problem(s); nothing was changed");
        Ok(exit::NOT_OK)
    }
}

/// One document of the file (`value`): the upgrade as the operator reads it, and the document as written,
/// which goes to the dry run (the typed object drops what it does not know, so a misspelt field
/// or a wrong apiVersion would pass). None for an empty document.
fn parse(mut value: serde_yaml::Value) -> Result<Option<(MaintenanceUpgrade, serde_json::Value)>, String> {
    if value.is_null() {
        return Ok(None);
    }
    // YAML merge keys (<<), as kubectl expands them. One pass leaves the merge keys a merged
    // mapping brought in (a chain of them): pass again until none is left.
    for _ in 0..MERGE_DEPTH {
        if !has_merge_key(&value) {
            break;
        }
        value.apply_merge().map_err(|e| e.to_string())?;
    }
    if has_merge_key(&value) {
        return Err(format!("merge keys (<<) chained more than {MERGE_DEPTH} deep"));
    }
    let written: serde_json::Value = serde_yaml::from_value(value.clone()).map_err(|e| e.to_string())?;
    let mu: MaintenanceUpgrade = serde_yaml::from_value(value).map_err(|e| e.to_string())?;
    if mu.metadata.name.as_deref().unwrap_or_default().is_empty() {
        return Err("it has no metadata.name".into());
    }
    Ok(Some((mu, written)))
}

/// How deep a chain of merge keys `parse` expands.
const MERGE_DEPTH: usize = 16;

fn has_merge_key(value: &serde_yaml::Value) -> bool {
    match value {
        serde_yaml::Value::Mapping(m) => m.contains_key("<<") || m.values().any(has_merge_key),
        serde_yaml::Value::Sequence(s) => s.iter().any(has_merge_key),
        serde_yaml::Value::Tagged(t) => has_merge_key(&t.value),
        _ => false,
    }
}

/// The checks of one upgrade (`written` is its document as the file has it), printed; how many
/// failed.
async fn check(
    client: &Client,
    mu: &MaintenanceUpgrade,
    written: &serde_json::Value,
    ns: &str,
    id: &str,
) -> anyhow::Result<usize> {
    let mut problems = 0;
    let mut say = |ok: bool, line: String| {
        // What the cluster says (a workload's owner annotation, its images, a policy's message)
        // is input too.
        println!("  {} {}", if ok { "✓" } else { "✗" }, safe(&line, false));
        if !ok {
            problems += 1;
        }
    };
    let api: Api<MaintenanceUpgrade> = Api::namespaced(client.clone(), ns);
    // Strict, as `kubectl apply` is: an unknown field is refused, not dropped.
    let dry_run = PatchParams::apply("kubectl-maintenance-lint").dry_run().force().validation_strict();
    match api.patch(&mu.name_any(), &dry_run, &Patch::Apply(written)).await {
        Ok(_) => say(true, "the API server accepts it (server-side dry run)".into()),
        Err(kube::Error::Api(s)) => say(false, format!("the API server refuses it: {}", s.message)),
        Err(e) => return Err(e.into()),
    }
    for c in mu.spec.stages.iter().flat_map(|s| &s.components) {
        let (line, ok) = component(client, c, ns, id).await?;
        say(ok, line);
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for s in mu.spec.effective_signals() {
        for n in s.kubernetes.iter().flat_map(|k| &k.namespaces) {
            match namespaces.get_opt(n).await {
                Ok(found) => {
                    let exists = found.is_some();
                    let what = if exists { "exists" } else { "does not exist" };
                    say(exists, format!("signal {}: namespace {n} {what}", s.name));
                }
                Err(kube::Error::Api(e)) if e.code == 403 => say(
                    true,
                    format!("signal {}: namespace {n} not checked: you may not read namespaces", s.name),
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(problems)
}

/// What the operator would find when it claims this component's target.
async fn component(client: &Client, c: &Component, ns: &str, id: &str) -> anyhow::Result<(String, bool)> {
    let tns = c.namespace_or(ns);
    let what = format!("{:?} {tns}/{}", c.kind, c.name);
    let state = match c.kind {
        WorkloadKind::Deployment => {
            read::<Deployment>(client, tns, &c.name).await.map(|o| o.map(|d| target::from_deployment(&d)))
        }
        WorkloadKind::DaemonSet => {
            read::<DaemonSet>(client, tns, &c.name).await.map(|o| o.map(|d| target::from_daemonset(&d)))
        }
        WorkloadKind::StatefulSet => {
            read::<StatefulSet>(client, tns, &c.name).await.map(|o| o.map(|s| target::from_statefulset(&s)))
        }
    };
    // A tenant may not read every target: say so and go on (the operator, which can, checks it).
    let state = match state {
        Ok(s) => s,
        Err(kube::Error::Api(e)) if e.code == 403 => {
            return Ok((format!("{what}: not checked: you may not read it"), true));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(state): Option<TargetState> = state else {
        return Ok((format!("{what} does not exist: create it or fix the component"), false));
    };
    let container = match state.resolve_container(c.container.as_deref()) {
        Ok(name) => name,
        Err(e) => return Ok((format!("{what} {e}"), false)),
    };
    if let Some(owner) = state.owner.as_deref().filter(|o| *o != id) {
        return Ok((
            format!(
                "{what} is marked as MaintenanceUpgrade {owner}'s: this one would wait until it ends \
                 (or take it over, if no upgrade of that name holds it under the UID its mark names)"
            ),
            false,
        ));
    }
    let mut said = vec![format!(
        "container {container} runs {}, would become {}",
        state.image(&container).unwrap_or_default(),
        c.image
    )];
    for a in &c.also_containers {
        match state.image(&a.container) {
            Some(_) if a.container == container => {
                return Ok((
                    format!("{what}: alsoContainers names {container}, the component's own container"),
                    false,
                ));
            }
            Some(image) => {
                said.push(format!("container {} runs {image}, would become {}", a.container, a.image))
            }
            None => {
                return Ok((
                    format!(
                        "{what} has no container {:?} (containers: {})",
                        a.container,
                        state.container_names()
                    ),
                    false,
                ));
            }
        }
    }
    Ok((format!("{what}: {}", said.join("; ")), true))
}

async fn read<K>(client: &Client, ns: &str, name: &str) -> kube::Result<Option<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), ns).get_opt(name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Result<Option<(MaintenanceUpgrade, serde_json::Value)>, String> {
        parse(serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn a_document_is_read_as_kubectl_reads_it_and_kept_as_written() {
        let (mu, written) = doc(r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {name: up}
spec:
  stages:
    - &canary {<<: {soak: 1h}, name: canary, components: [{kind: DaemonSet, name: c, image: "c:2"}], requireAproval: true}
    - {<<: *canary, name: fleet}
"#)
        .unwrap()
        .unwrap();
        assert_eq!(mu.spec.stages[1].name, "fleet", "the merge key is expanded");
        assert_eq!(mu.spec.stages[1].components[0].name, "c");
        assert_eq!(written["spec"]["stages"][1]["soak"], "1h");
        assert_eq!(written["spec"]["stages"][0]["requireAproval"], true, "kept for the strict dry run");
        assert!(doc("---\n").unwrap().is_none());
    }

    #[test]
    fn a_document_that_cannot_be_an_upgrade_is_a_problem_not_an_error() {
        let upgrade = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nspec: {stages: []}\n";
        let nameless = format!("{upgrade}metadata: {{namespace: ops}}\n");
        assert_eq!(doc(&nameless).unwrap_err(), "it has no metadata.name");
        let key = format!("{upgrade}metadata: {{name: up}}\n? [a, b]\n: c\n");
        assert!(doc(&key).is_err(), "a key JSON cannot hold");
    }
}
