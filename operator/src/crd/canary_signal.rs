//! The signals that follow a DaemonSet canary: for each built-in signal, its own copy counting
//! only the pods bound to the canary's nodes, judged against its own baseline at the level of
//! its concurrent control (the same signal on every other node). Plain data: which nodes are
//! the canary's is the decide step's to say, in the status entry it writes for each.

use super::{MaintenanceUpgradeSpec, MaintenanceUpgradeStatus, NodeScope, Signal};

/// The status entry of the canary's copy of built-in signal `parent`.
pub fn canary_signal_name(parent: &str) -> String {
    format!("{parent}@canary")
}

/// The sample of its concurrent control.
pub fn control_signal_name(parent: &str) -> String {
    format!("{parent}@control")
}

impl MaintenanceUpgradeSpec {
    /// The canary's copies of the built-in signals: one for each status entry the decide step
    /// wrote for a built-in signal of this spec, with nodes to count (none once the canary has
    /// handed over to the whole workload, or before its nodes are known). Nothing else in the
    /// status is believed: the signal, its scope and its rule are the spec's.
    pub fn canary_signals(&self, status: &MaintenanceUpgradeStatus) -> Vec<Signal> {
        self.effective_signals()
            .into_iter()
            .filter(|s| s.kubernetes.is_some())
            .filter_map(|parent| {
                let name = canary_signal_name(&parent.name);
                let entry = status.analysis.iter().find(|a| a.name == name && !a.nodes.is_empty())?;
                let mut s = parent;
                s.name = name;
                s.kubernetes.as_mut()?.nodes = NodeScope::On(entry.nodes.clone());
                Some(s)
            })
            .collect()
    }
}

impl Signal {
    /// Of a canary's copy of a built-in signal: the built-in signal it follows.
    pub fn canary_parent(&self) -> Option<&str> {
        self.name.strip_suffix("@canary").filter(|_| self.canary_nodes().is_some())
    }

    /// Of a canary's copy of a built-in signal: the canary's nodes.
    pub fn canary_nodes(&self) -> Option<&[String]> {
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
        s.kubernetes.as_mut()?.nodes = NodeScope::Off(self.canary_nodes()?.to_vec());
        Some(s)
    }
}
