//! Pure: which recordings of the built-in signal the operator keeps. One covers its whole scope
//! (every namespace it watches, no selector); the others are the scopes that upgrades' own
//! built-in signals name (some namespaces, a label selector, their own pending limit), so that
//! a team's next upgrade gets a week of its own pods as its baseline, not 30 minutes observed
//! live. A scope is recorded from the first time an upgrade names it until a week after the last
//! time one did (weekly maintenance deletes last week's upgrade before creating the next one),
//! and at most `MAX_SCOPES` are, each at most `SCOPE_ROWS` buckets, so that the ConfigMap stays
//! far below its 1 MiB. The slots are shared fairly between namespaces: one that holds fewer
//! takes a slot from one that holds at least two more, so that no tenant can take them all.

use crate::constants::{condition, reason};
use crate::crd::{KubernetesSignal, MaintenanceUpgrade, NodeScope};
use crate::history::{KEEP, Recorded, Recording};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many named scopes for an operator over every namespace; one watching a single
/// namespace keeps fewer, since several such operators share the ConfigMap.
pub const MAX_SCOPES: usize = 8;
pub const MAX_SCOPES_OF_ONE_NAMESPACE: usize = 2;

pub fn max_scopes(operator_scope: Option<&str>) -> usize {
    if operator_scope.is_some() { MAX_SCOPES_OF_ONE_NAMESPACE } else { MAX_SCOPES }
}
/// Rows kept per named scope: a week of 10-minute buckets, about 36 KB.
pub const SCOPE_ROWS: usize = 1008;
/// Rows kept of the whole scope: a week of 2.5-minute buckets, about 150 KB. With the named
/// ones, under half a MiB.
pub const WHOLE_ROWS: usize = 4 * 1008;

/// A named scope counts the pods of at most this many nodes: a canary's planned first nodes.
/// One planned larger is observed live, so that the ConfigMap stays small whatever a status says.
pub const MAX_SCOPE_NODES: usize = 100;

/// What a named recording counts: pods of these namespaces (all of the operator's when empty)
/// matching the selector, judged `pending_limit_seconds` after creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub label_selector: String,
    pub pending_limit_seconds: i64,
    /// Only the pods bound to these nodes (a DaemonSet canary's, in name order); every pod
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

impl Scope {
    /// The scope of a built-in signal, written one way whatever order its namespaces come in
    /// (and for an operator watching one namespace, naming it is naming all it watches).
    pub fn of(s: &KubernetesSignal, operator_scope: Option<&str>) -> Result<Scope, String> {
        let limit = s.pending_limit.parse().map_err(|e| format!("pendingLimit: {e}"))?;
        // A scope keeps whole seconds: 1500ms would be counted as 1s.
        if limit.subsec_nanos() != 0 {
            return Err("a pendingLimit with a fraction of a second is observed live, not recorded".into());
        }
        if limit > super::KEEP {
            return Err("a pendingLimit longer than the week recorded is observed live, not recorded".into());
        }
        let label_selector = s.label_selector.as_deref().unwrap_or_default().trim().to_string();
        crate::signals::selector::parse(&label_selector)?;
        let mut namespaces = s.namespaces.clone();
        namespaces.sort();
        namespaces.dedup();
        if operator_scope.is_some_and(|ns| namespaces == [ns]) {
            namespaces.clear();
        }
        let nodes = match &s.nodes {
            NodeScope::All => vec![],
            NodeScope::On(nodes) if nodes.len() > MAX_SCOPE_NODES => {
                return Err(format!(
                    "a canary of more than {MAX_SCOPE_NODES} nodes is observed live, not recorded"
                ));
            }
            // The status is input: a name no node can have, of any length, is not recorded.
            NodeScope::On(nodes) if !nodes.iter().all(|n| crate::names::is_dns_subdomain(n)) => {
                return Err("a canary node name is not a node's name: observed live, not recorded".into());
            }
            NodeScope::On(nodes) => nodes.iter().cloned().collect(),
            // A canary's control is judged against the whole signal's baseline: never recorded.
            NodeScope::Off(_) => return Err("a canary's control has no recording of its own".into()),
        };
        Ok(Scope { namespaces, label_selector, pending_limit_seconds: limit.num_seconds(), nodes })
    }

    /// The nodes whose pods it counts.
    pub fn node_scope(&self) -> NodeScope {
        if self.nodes.is_empty() {
            NodeScope::All
        } else {
            NodeScope::On(self.nodes.iter().cloned().collect())
        }
    }

    pub fn pending_limit(&self) -> Duration {
        Duration::seconds(self.pending_limit_seconds)
    }

    /// In words, for status and logs.
    pub fn describe(&self) -> String {
        let ns =
            if self.namespaces.is_empty() { "every namespace".into() } else { self.namespaces.join(", ") };
        let sel = if self.label_selector.is_empty() {
            String::new()
        } else {
            format!(" matching {}", self.label_selector)
        };
        let on = if self.nodes.is_empty() {
            String::new()
        } else {
            format!(" on nodes {}", self.nodes.join(", "))
        };
        format!("pods of {ns}{sel}{on}, judged after {}", crate::timefmt::duration(self.pending_limit()))
    }
}

/// The scopes an upgrade keeps recorded: those of its built-in signals that the whole
/// recording does not count, from when it claimed its targets (its spec was valid and allowed
/// then) until it ends, and not while it is blocked as invalid or forbidden, nor while its
/// spec has changed since it was last decided (an edit is checked before it is recorded).
pub fn named_by(
    mu: &MaintenanceUpgrade,
    whole: &Recording,
    operator_scope: Option<&str>,
    trusted: &[String],
) -> Vec<Scope> {
    let Some(st) = &mu.status else { return vec![] };
    let blocked = st.conditions.iter().any(|c| {
        c.type_ == condition::BLOCKED
            && c.status == "True"
            && [reason::INVALID_SPEC, reason::CROSS_NAMESPACE].contains(&c.reason.as_str())
    });
    let decided = st.observed_generation.is_some() && st.observed_generation == mu.metadata.generation;
    if st.claimed_at.is_none() || st.phase.is_terminal() || blocked || !decided {
        return vec![];
    }
    let ns = mu.metadata.namespace.clone().unwrap_or_default();
    let trusted = trusted.contains(&ns);
    // A canary's nodes are named before the first change, when its baseline is read: the
    // nodes a later stage widens it to were never its baseline.
    let canary = mu.spec.canary_signals(st).into_iter().filter(|_| st.changed_at.is_none());
    let canary = canary.map(|s| s.as_read(&ns, trusted));
    mu.spec
        .signals_as_read(&ns, trusted)
        .into_iter()
        .chain(canary)
        .collect::<Vec<_>>()
        .iter()
        .filter_map(|s| s.kubernetes.as_ref())
        .filter(|k| !whole.covers(k, operator_scope))
        .filter_map(|k| Scope::of(k, operator_scope).ok())
        .collect()
}

/// Whether a scope last named at `named_at` is still recorded at `now`: for a week.
fn still_named(named_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    named_at > now - KEEP
}

fn full(max: usize) -> String {
    format!(
        "the operator records at most {max} scopes of the built-in signal besides its whole one, and upgrades named {max} others within the last {} (shared fairly: no namespace holds two more than this one's)",
        crate::timefmt::duration(KEEP)
    )
}

/// One named scope: what it counts, when an upgrade last named it, and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scoped {
    pub scope: Scope,
    /// The namespace of the upgrade that first named it: whose share it counts in.
    pub namespace: String,
    pub named_at: DateTime<Utc>,
    pub recorded: Recorded,
}

/// The index kept beside the rows, so that a restart knows which key holds which scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub key: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub named_at: DateTime<Utc>,
    /// Whose share it counts in (empty in an index written before shares were kept).
    #[serde(default)]
    pub namespace: String,
}

impl IndexEntry {
    /// Whether it names a scope this operator (keys starting `prefix`) may have recorded: a key
    /// `free_key` makes, and a pending limit a recording can use (a longer one than the week
    /// kept records nothing, and one far longer would overflow the next count).
    pub fn sane(&self, prefix: &str) -> bool {
        let n = self.key.strip_prefix(prefix).and_then(|k| k.strip_prefix("_scope-")?.strip_suffix(".csv"));
        let numbered =
            n.is_some_and(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()));
        numbered && (0..=super::KEEP.num_seconds()).contains(&self.scope.pending_limit_seconds)
    }
}

/// Every recording of the built-in signal this operator keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recordings {
    /// The operator's whole scope.
    pub whole: Recorded,
    /// Named scopes by the key their rows are kept under (`<prefix>_scope-N.csv`: no namespace has an `_`, so
    /// never the whole key of an operator scoped to one).
    pub scoped: BTreeMap<String, Scoped>,
}

impl Recordings {
    /// An upgrade in `namespace` names `scope` at `now`: recorded from now on if it is new and
    /// there is room, or a slot of a namespace that holds at least two more than this one (its
    /// least recently named); kept for a week from now if it is not new; or why it cannot be.
    pub fn name(
        &mut self,
        prefix: &str,
        max: usize,
        namespace: &str,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        if let Some(s) = self.scoped.values_mut().find(|s| s.scope == *scope) {
            s.named_at = s.named_at.max(now);
            return Ok(());
        }
        if self.scoped.len() >= max {
            let held = |ns: &str| self.scoped.values().filter(|s| s.namespace == ns).count();
            let mine = held(namespace);
            let taken = self
                .scoped
                .iter()
                .filter(|(_, s)| held(&s.namespace) > mine + 1)
                .max_by_key(|(_, s)| (held(&s.namespace), std::cmp::Reverse(s.named_at)))
                .map(|(k, _)| k.clone());
            match taken {
                Some(key) => self.scoped.remove(&key),
                None => return Err(full(max)),
            };
        }
        let s = Scoped {
            scope: scope.clone(),
            namespace: namespace.to_string(),
            named_at: now,
            recorded: Recorded::backfilled(now),
        };
        self.scoped.insert(self.free_key(prefix), s);
        Ok(())
    }

    /// The recording of `scope` if it is kept (None: not named yet), or why it cannot be.
    pub fn lookup(&self, max: usize, scope: &Scope) -> Result<Option<&Recorded>, String> {
        match self.scoped.values().find(|s| s.scope == *scope) {
            Some(s) => Ok(Some(&s.recorded)),
            None if self.scoped.len() >= max => Err(full(max)),
            None => Ok(None),
        }
    }

    fn free_key(&self, prefix: &str) -> String {
        (1..)
            .map(|n| format!("{prefix}_scope-{n}.csv"))
            .find(|k| !self.scoped.contains_key(k))
            .unwrap_or_default()
    }

    /// Take in what earlier leaders recorded (the index with each key's rows) over what this
    /// replica has: per scope, the rows that reach later and the later naming; a scope only
    /// this replica knows keeps a key of its own while there is room.
    /// Scopes not named for a week are left out, and the most recently named come first.
    pub fn merge(
        &mut self,
        prefix: &str,
        max: usize,
        now: DateTime<Utc>,
        mut loaded: Vec<(IndexEntry, Recorded)>,
    ) {
        let mine = std::mem::take(&mut self.scoped);
        loaded.retain(|(e, _)| still_named(e.named_at, now));
        loaded.sort_by_key(|(e, _)| std::cmp::Reverse(e.named_at));
        for (e, recorded) in loaded {
            if self.scoped.len() < max && !self.scoped.values().any(|s| s.scope == e.scope) {
                let s = Scoped { scope: e.scope, namespace: e.namespace, named_at: e.named_at, recorded };
                self.scoped.insert(e.key, s);
            }
        }
        for s in mine.into_values() {
            let room = self.scoped.len() < max;
            match self.scoped.values_mut().find(|l| l.scope == s.scope) {
                Some(l) => {
                    l.named_at = l.named_at.max(s.named_at);
                    // An empty one written (or unreadable) does not undo what this replica counted back.
                    let later = s.recorded.last_at() > l.recorded.last_at();
                    if later || l.recorded.rows.is_empty() {
                        l.recorded = s.recorded;
                    }
                }
                None if room => {
                    let key = self.free_key(prefix);
                    self.scoped.insert(key, s);
                }
                // Its upgrade names it again, and is told there is no room.
                None => {}
            }
        }
    }

    /// Forget the scopes no upgrade named for a week; whether any was.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.scoped.len();
        self.scoped.retain(|_, s| still_named(s.named_at, now));
        self.scoped.len() != before
    }

    /// What each named scope's recorder counts.
    pub fn recording_of(whole: &Recording, s: &Scoped) -> Recording {
        Recording { bucket: whole.bucket, pending_limit: s.scope.pending_limit() }
    }

    pub fn index(&self) -> Vec<IndexEntry> {
        self.scoped
            .iter()
            .map(|(key, s)| IndexEntry {
                key: key.clone(),
                scope: s.scope.clone(),
                named_at: s.named_at,
                namespace: s.namespace.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "scopes_tests.rs"]
mod tests;
