//! A canary inside one workload: the part of it a stage changes. Plain data with the schema and
//! CEL rules the API server enforces.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The part of a workload a stage changes. Later stages that name the same workload widen it;
/// the last stage that names it changes all of it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.nodes) || has(self.nodeSelector)) != has(self.replicas)").message("a canary names nodes (nodes and/or nodeSelector: a DaemonSet) or replicas (a StatefulSet or Deployment), one of the two"))]
pub struct Canary {
    /// DaemonSet: on how many of the nodes that run its pods the new image runs in this stage:
    /// a number from 1 to 10000 (`2`) or a percentage of those nodes from 1% to 100% (`"25%"`,
    /// rounded up); with a nodeSelector,
    /// of the nodes it selects; without, all of those. The nodes are taken in name order, so a
    /// later stage widens the same canary. The workload's updateStrategy is set to OnDelete
    /// meanwhile, and its pods on those nodes are replaced no faster than its own maxUnavailable
    /// allows; the strategy is restored exactly when the last stage starts or the upgrade is
    /// reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Portion>,
    /// DaemonSet: the canary's nodes are taken among the nodes with all these labels (a zone, a
    /// node pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Values as the API server checks label values; keys are checked by the operator, before
    // anything changes (a rule over a map's keys exceeds the API server's cost limit).
    #[schemars(extend("minProperties" = 1, "maxProperties" = 16, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": "^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"}))]
    pub node_selector: Option<std::collections::BTreeMap<String, String>>,
    /// StatefulSet: how many of its replicas, the top ordinals, run the new image in this stage:
    /// a number from 1 to 10000 (`1`) or a percentage from 1% to 100% (`"25%"`, rounded up). Set as its rollingUpdate.partition
    /// (replicas minus this), which its own controller follows.
    /// Deployment: how many new replicas run beside all the old ones (a percentage of its
    /// replicas, rounded up): a rolling update that only adds (maxSurge this, maxUnavailable 0)
    /// and whose new pods its controller never counts available (minReadySeconds held), so that
    /// it takes no old pod away. What is changed is recorded and restored exactly when the last
    /// stage starts or the upgrade is reverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Portion>,
}

impl Canary {
    /// How many it takes: `nodes` (or all the nodes it may take), or `replicas`.
    pub fn portion(&self) -> Portion {
        self.nodes
            .clone()
            .or_else(|| self.replicas.clone())
            .unwrap_or_else(|| Portion::Percent("100%".into()))
    }

    /// A nodeSelector key that is not a label key (`[prefix/]name`), if any.
    pub fn bad_selector_key(&self) -> Option<&str> {
        self.node_selector.iter().flatten().map(|(k, _)| k.as_str()).find(|k| !label_key(k))
    }

    /// The nodeSelector as a label selector (`k=v,k2=v2`), the key its nodes are observed by.
    pub fn selector_text(&self) -> Option<String> {
        let s = self.node_selector.as_ref()?;
        Some(s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
    }
}

/// A number of nodes (`2`) or a percentage of them (`"25%"`, rounded up).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(untagged)]
pub enum Portion {
    Count(i32),
    Percent(String),
}

impl JsonSchema for Portion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Portion".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            // A number by its bounds and a string by its pattern: each applies to its own type
            // only. A CEL rule doing both exceeded the cost budget of Kubernetes 1.30, whose
            // estimate knows no size of an int-or-string, so the CRD could not be installed there.
            "minimum": 1,
            "maximum": 10000,
            "maxLength": 4,
            "pattern": "^([1-9][0-9]?|100)%$"
        })
    }
}

impl Portion {
    /// How many of `of` it means: a count as it is, a percentage rounded up, at least one. None
    /// for a malformed percentage (the API server refuses those).
    pub fn of(&self, of: usize) -> Option<usize> {
        match self {
            Portion::Count(n) => usize::try_from(*n).ok().filter(|n| *n >= 1),
            Portion::Percent(p) => {
                let pct: usize = p.strip_suffix('%')?.parse().ok()?;
                Some((of * pct).div_ceil(100).max(1))
            }
        }
    }
}

impl std::fmt::Display for Portion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Portion::Count(n) => write!(f, "{n}"),
            Portion::Percent(p) => write!(f, "{p}"),
        }
    }
}

/// A label key, as the API server judges it: an optional DNS-subdomain prefix and `/`, then a
/// name of 1 to 63 letters, digits, `-`, `_` or `.`, beginning and ending with a letter or digit.
fn label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let name_ok = (1..=63).contains(&name.len())
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || "-_.".contains(c));
    let prefix_ok = prefix.is_none_or(crate::names::is_dns_subdomain);
    name_ok && prefix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        // A prefix's parts may be longer than a DNS label's 63 (the API server's subdomain rule).
        let long_part = format!("{}.example.com/zone", "a".repeat(64));
        for good in
            ["zone", "topology.kubernetes.io/zone", "node.kubernetes.io/instance-type", "a_b.c-d", &long_part]
        {
            assert!(label_key(good), "{good}");
        }
        for bad in ["", "a,zone!=b", "x y", "-a", "Upper.case/zone", "zone/", "/zone", &"a".repeat(64)] {
            assert!(!label_key(bad), "{bad}");
        }
    }
}
