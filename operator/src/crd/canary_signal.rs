//! The signals that follow a DaemonSet canary: for each built-in signal, its own copy counting
//! only the pods bound to the canary's nodes, judged against its own baseline at the level of
//! its concurrent control (the same signal on every other node). Plain data: which nodes are
//! the canary's is the decide step's to say, in the status entry it writes for each.

use super::{
    MaintenanceUpgradeSpec, MaintenanceUpgradeStatus, NodeScope, Signal, SignalStatus, WorkloadKind,
};
use std::collections::BTreeSet;

/// In a Prometheus query: the canary's nodes, as a regular expression (`node=~"$canary_nodes"`).
pub const CANARY_NODES: &str = "$canary_nodes";
/// In a Prometheus query: the revision hashes of the canary's pods, as a regular expression
/// (`pod_template_hash=~"$canary_revision"`).
pub const CANARY_REVISION: &str = "$canary_revision";

/// A canary's copy counts the pods of at most this many nodes: a canary larger than that is
/// a share of the cluster its signal sees, and no copy follows it (the status stays small).
pub const MAX_COPY_NODES: usize = 500;
/// At most this many revision hashes in `status.canary`.
pub const MAX_REVISIONS: usize = 32;

/// The status entry of the canary's copy of built-in signal `parent`.
pub fn canary_signal_name(parent: &str) -> String {
    format!("{parent}@canary")
}

/// The sample of its concurrent control.
pub fn control_signal_name(parent: &str) -> String {
    format!("{parent}@control")
}

impl MaintenanceUpgradeSpec {
    /// What is wrong with a Prometheus signal's placeholders: one misspelt, one outside a
    /// regular-expression matcher, or one that no stage of this spec fills.
    pub fn placeholder_problem(&self) -> Option<String> {
        let daemonset = self.has_daemonset_canary();
        let any = self.stages.iter().flat_map(|s| &s.components).any(|c| c.canary.is_some());
        self.effective_signals().iter().find_map(|s| {
            let p = s.prometheus.as_ref()?;
            if let Some(why) = misplaced(&p.errors).or_else(|| misplaced(&p.attempts)) {
                return Some(format!("signal {}: {why}", s.name));
            }
            let names = |placeholder: &str| p.names(placeholder);
            if names(CANARY_NODES) && !daemonset {
                return Some(format!(
                    "signal {}: its query names {CANARY_NODES}, but no stage runs a canary inside a DaemonSet \
                     (canary.nodes); remove it, or give the DaemonSet's first stage a canary",
                    s.name
                ));
            }
            (names(CANARY_REVISION) && !any).then(|| {
                format!(
                    "signal {}: its query names {CANARY_REVISION}, but no stage runs a canary; remove it, or \
                     give a stage a canary",
                    s.name
                )
            })
        })
    }

    /// Whether any Prometheus signal's query names `placeholder`.
    pub fn names_placeholder(&self, placeholder: &str) -> bool {
        self.effective_signals().iter().filter_map(|s| s.prometheus.as_ref()).any(|p| p.names(placeholder))
    }

    /// Whether a stage runs a canary inside a DaemonSet, which the built-in signals follow.
    pub fn has_daemonset_canary(&self) -> bool {
        let mut components = self.stages.iter().flat_map(|s| &s.components);
        components.any(|c| c.canary.is_some() && c.kind == WorkloadKind::DaemonSet)
    }

    /// The canary's copies of the built-in signals: one for each status entry the decide step
    /// wrote for a built-in signal of this spec, with nodes to count (none once the canary has
    /// handed over to the whole workload, or before its nodes are known), if the spec runs a
    /// DaemonSet canary. Nothing else in the status is believed: the signal, its scope and its
    /// rule are the spec's, and the nodes are at most `MAX_COPY_NODES`.
    pub fn canary_signals(&self, status: &MaintenanceUpgradeStatus) -> Vec<Signal> {
        if !self.has_daemonset_canary() {
            return vec![];
        }
        self.effective_signals()
            .into_iter()
            .filter(|s| s.kubernetes.is_some())
            .filter_map(|parent| {
                let name = canary_signal_name(&parent.name);
                let entry = status.analysis.iter().find(|a| a.name == name && !a.nodes.is_empty())?;
                if entry.nodes.len() > MAX_COPY_NODES {
                    return None;
                }
                let mut s = parent;
                s.name = name;
                s.kubernetes.as_mut()?.nodes = NodeScope::On(entry.nodes.iter().cloned().collect());
                Some(s)
            })
            .collect()
    }
}

/// The first placeholder of `query` that is not one of the two, or not the start of a string
/// that a regular-expression matcher (`=~` or `!~`) compares with: anywhere else, a list of
/// names as a regular expression would match nothing, silently. What follows it in the string
/// (a port) applies to every name: the names are filled in as one group.
fn misplaced(query: &str) -> Option<String> {
    let mut rest = query;
    while let Some(at) = rest.find("$canary_") {
        let before = &query[..query.len() - rest.len() + at];
        let word: String =
            rest[at + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let placeholder = format!("${word}");
        if placeholder != CANARY_NODES && placeholder != CANARY_REVISION {
            return Some(format!(
                "its query names {placeholder}, which is no placeholder: {CANARY_NODES} or {CANARY_REVISION}"
            ));
        }
        let matcher = ["=~\"", "!~\"", "=~'", "!~'"].iter().any(|m| before.trim_end().ends_with(m));
        if !matcher {
            return Some(format!(
                "its query names {placeholder} where it does not begin a regular expression matched with =~ or !~ \
                 (write label=~\"{placeholder}\"): it stands for several names joined by |"
            ));
        }
        rest = &rest[at + placeholder.len()..];
    }
    None
}

impl super::PrometheusSignal {
    /// Whether its errors or attempts query names `placeholder`.
    fn names(&self, placeholder: &str) -> bool {
        self.errors.contains(placeholder) || self.attempts.contains(placeholder)
    }
}

impl MaintenanceUpgradeStatus {
    /// The first signal still in the spec: the one a timeline, a notification and the plugin's
    /// sparkline follow.
    pub fn first_signal(&self) -> Option<&SignalStatus> {
        self.analysis.iter().find(|a| a.taken_out_at.is_none())
    }
}

impl SignalStatus {
    /// Read no more: a canary's copy whose canary handed over to the whole workload, or a
    /// signal taken out of the spec. Its last verdict holds nothing up and says nothing of the
    /// upgrade's health.
    pub fn retired(&self) -> bool {
        (self.name.ends_with("@canary") && self.nodes.is_empty()) || self.taken_out_at.is_some()
    }
}

impl Signal {
    /// Of a canary's copy of a built-in signal: the built-in signal it follows.
    pub fn canary_parent(&self) -> Option<&str> {
        self.name.strip_suffix("@canary").filter(|_| self.canary_nodes().is_some())
    }

    /// Of a canary's copy of a built-in signal: the canary's nodes.
    pub fn canary_nodes(&self) -> Option<&BTreeSet<String>> {
        match &self.kubernetes.as_ref()?.nodes {
            NodeScope::On(nodes) => Some(nodes),
            _ => None,
        }
    }

    /// Of a canary's copy of a built-in signal: its concurrent control, the same signal on
    /// every other node.
    pub fn control(&self) -> Option<Signal> {
        let parent = self.canary_parent()?;
        let mut s = self.clone();
        s.name = control_signal_name(parent);
        s.kubernetes.as_mut()?.nodes = NodeScope::Off(self.canary_nodes()?.clone());
        Some(s)
    }
}
