//! What the scenarios share: the upgrades they apply and the incident's world they run in.

use crate::{GOOD, Scenario};
use maintenance_operator::crd::{Condition, MaintenanceUpgrade};
use std::time::Duration;

/// The connector's upgrade as one chart release ships it: a canary on the first two nodes of its
/// one DaemonSet (stage `canary`), then all of it (stage `fleet`), judged by the built-in signal
/// over the scenario's email-sync pods.
pub fn two_stage(ns: &str, name: &str, soak: &str, image: &str) -> String {
    staged(
        ns,
        name,
        soak,
        &[
            (
                "canary",
                format!("{{kind: DaemonSet, name: connector, canary: {{nodes: 2}}, image: \"{image}\"}}"),
            ),
            ("fleet", format!("{{kind: DaemonSet, name: connector, image: \"{image}\"}}")),
        ],
    )
}

/// Two different components in order, each a DaemonSet of its own: the secret store's
/// `provider` plugin (stage `provider`), then the `connector` (stage `connector`). For what tests
/// the order between components (`two_component_world`), and for bad input that needs two
/// targets (s06).
pub fn two_components(ns: &str, name: &str, soak: &str, image: &str) -> String {
    staged(
        ns,
        name,
        soak,
        &[
            ("provider", format!("{{kind: DaemonSet, name: provider, image: \"{image}\"}}")),
            ("connector", format!("{{kind: DaemonSet, name: connector, image: \"{image}\"}}")),
        ],
    )
}

/// `two_stage` without its canary: one stage, all of the connector DaemonSet at once.
pub fn fleet_only(ns: &str, name: &str, soak: &str, image: &str) -> String {
    staged(ns, name, soak, &[("fleet", format!("{{kind: DaemonSet, name: connector, image: \"{image}\"}}"))])
}

/// An upgrade of `stages` (each a name and its one component) with the built-in signal over the
/// scenario's email-sync pods.
fn staged(ns: &str, name: &str, soak: &str, stages: &[(&str, String)]) -> String {
    let stages: String = stages
        .iter()
        .map(|(stage, component)| {
            format!("    - name: {stage}\n      components: [{component}]\n      soak: {soak}\n      progressDeadline: 60s\n")
        })
        .collect();
    format!(
        r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {{name: {name}}}
spec:
  stages:
{stages}  analysis:
    interval: 2s
    # 30 s: a baseline of a handful of failures is judged three standard deviations up, so 10 s
    # (about two failures) would leave only the ceiling to act within a one-minute soak; and on
    # a loaded machine 10 s can fall short of the 20 attempts a baseline needs.
    baseline: {{observe: 30s}}
    signals:
      - name: pod-start-failures
        kubernetes: {{namespaces: [{ns}], labelSelector: app=email-sync, pendingLimit: 3s}}
        regression: {{bucket: 2s}}
"#
    )
}

/// The incident's world as a real install has it: the connector, one DaemonSet on every node of
/// the scenario with its registrar sidecar (`node_agent`), and the email-sync workload.
pub async fn incident_world(name: &str) -> Scenario {
    let mut s = Scenario::new(name).await;
    s.node_agent("connector", GOOD).await;
    s.workload(Duration::from_millis(100), Duration::from_secs(20));
    s
}

/// The incident's world with two different components on every node, the secret store's
/// `provider` and the `connector`, each a DaemonSet of its own (`two_components`).
pub async fn two_component_world(name: &str) -> Scenario {
    let mut s = Scenario::new(name).await;
    s.connector("provider", GOOD, false).await;
    s.connector("connector", GOOD, false).await;
    s.workload(Duration::from_millis(100), Duration::from_secs(20));
    s
}

pub fn condition_of<'a>(mu: &'a MaintenanceUpgrade, type_: &str) -> &'a Condition {
    mu.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == type_).unwrap()
}

/// One stage on `ds` with a Prometheus signal over the real scheduler's metrics.
pub fn prometheus_upgrade(name: &str, ds: &str, prom: &str) -> String {
    format!(
        r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {{name: {name}}}
spec:
  stages:
    - name: only
      components: [{{kind: DaemonSet, name: {ds}, image: "registry.example.com/secrets-store/connector:v1.3.3"}}]
      soak: 20s
      progressDeadline: 60s
  analysis:
    interval: 6s
    baseline: {{lookback: 30s}}
    signals:
      - name: scheduling-errors
        prometheus:
          address: {prom}
          errors: sum(increase(scheduler_schedule_attempts_total{{result!="scheduled"}}[$interval]))
          attempts: sum(increase(scheduler_schedule_attempts_total[$interval]))
"#
    )
}

/// The field managers that own the field at `path` of the object of `meta`, by its
/// managedFields (their fieldsV1 keys, such as `["f:spec", "f:updateStrategy"]`).
pub fn managers_of<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    path: &[&str],
) -> Vec<&'a str> {
    let owns = |v: &serde_json::Value| path.iter().try_fold(v, |node, key| node.get(*key)).is_some();
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|f| f.fields_v1.as_ref().is_some_and(|v| owns(&v.0)))
        .filter_map(|f| f.manager.as_deref())
        .collect()
}

/// The field managers that own the image of container `name` of the workload of `meta`.
pub fn image_owners<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    name: &str,
) -> Vec<&'a str> {
    let container = format!("k:{{\"name\":\"{name}\"}}");
    managers_of(meta, &["f:spec", "f:template", "f:spec", "f:containers", &container, "f:image"])
}

/// Poll `check` until it holds; fail saying `what` did not happen within `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} did not happen within {timeout:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// A workload `app` of scenario `scenario`: its selector and pod template (the `connector`
/// container on GOOD, on the scenario's nodes), to merge into a StatefulSet's or Deployment's spec.
pub fn app_spec(scenario: &str, app: &str) -> serde_json::Value {
    serde_json::json!({
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {"app": app}},
            "spec": {"nodeSelector": {crate::SCENARIO_LABEL: scenario}, "containers": [{"name": "connector", "image": crate::GOOD}]}
        }
    })
}

/// A webhook URL in a Secret `webhook` of namespace `ns` (`url`: /generic, `slack`: /slack of
/// a receiver on `port`), which the operator may read by name and no other.
pub fn webhook_access(ns: &str, port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: webhook, namespace: {ns}}}
stringData: {{url: "http://127.0.0.1:{port}/generic", slack: "http://127.0.0.1:{port}/slack"}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: maintenance-operator-webhook, namespace: {ns}}}
rules: [{{apiGroups: [""], resources: [secrets], resourceNames: [webhook], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: maintenance-operator-webhook, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: maintenance-operator-webhook}}
subjects: [{{kind: ServiceAccount, name: maintenance-operator, namespace: maintenance-operator}}]
"#
    )
}
