//! Pure: which recordings of the built-in signal the operator keeps. One covers its whole scope
//! (every namespace it watches, no selector); the others are the scopes that upgrades' own
//! built-in signals name (some namespaces, a label selector, their own pending limit), so that
//! a team's next upgrade gets a week of its own pods as its baseline, not 30 minutes observed
//! live. A scope is recorded from the first time an upgrade names it until a week after the last
//! time one did (weekly maintenance deletes last week's upgrade before creating the next one),
//! and at most `MAX_SCOPES` are, each at most `SCOPE_ROWS` buckets, so that the ConfigMap stays
//! far below its 1 MiB.

use crate::constants::{condition, reason};
use crate::crd::{KubernetesSignal, MaintenanceUpgrade};
use crate::history::{KEEP, Recorded, Recording};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most this many named scopes.
pub const MAX_SCOPES: usize = 8;
/// Rows kept per named scope: a week of 10-minute buckets, about 36 KB.
pub const SCOPE_ROWS: usize = 1008;
/// Rows kept of the whole scope: a week of 2.5-minute buckets, about 150 KB. With the named
/// ones, under half a MiB.
pub const WHOLE_ROWS: usize = 4 * 1008;

/// What a named recording counts: pods of these namespaces (all of the operator's when empty)
/// matching the selector, judged `pending_limit_seconds` after creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub namespaces: Vec<String>,
    pub label_selector: String,
    pub pending_limit_seconds: i64,
}

impl Scope {
    /// The scope of a built-in signal, written one way whatever order its namespaces come in
    /// (and for an operator watching one namespace, naming it is naming all it watches).
    pub fn of(s: &KubernetesSignal, operator_scope: Option<&str>) -> Result<Scope, String> {
        let limit = s.pending_limit.parse().map_err(|e| format!("pendingLimit: {e}"))?;
        let label_selector = s.label_selector.as_deref().unwrap_or_default().trim().to_string();
        crate::selector::parse(&label_selector)?;
        let mut namespaces = s.namespaces.clone();
        namespaces.sort();
        namespaces.dedup();
        if operator_scope.is_some_and(|ns| namespaces == [ns]) {
            namespaces.clear();
        }
        Ok(Scope { namespaces, label_selector, pending_limit_seconds: limit.num_seconds() })
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
        format!("pods of {ns}{sel}, judged after {}", crate::timefmt::duration(self.pending_limit()))
    }
}

/// The scopes an upgrade keeps recorded: those of its built-in signals that the whole
/// recording does not count, from when it claimed its targets (its spec was valid and allowed
/// then) until it ends, and not while it is blocked as invalid or forbidden.
pub fn named_by(mu: &MaintenanceUpgrade, whole: &Recording, operator_scope: Option<&str>) -> Vec<Scope> {
    let Some(st) = &mu.status else { return vec![] };
    let blocked = st.conditions.iter().any(|c| {
        c.type_ == condition::BLOCKED
            && c.status == "True"
            && [reason::INVALID_SPEC, reason::CROSS_NAMESPACE].contains(&c.reason.as_str())
    });
    if st.claimed_at.is_none() || st.phase.is_terminal() || blocked {
        return vec![];
    }
    mu.spec
        .effective_signals()
        .iter()
        .filter_map(|s| s.kubernetes.as_ref())
        .filter(|k| !whole.covers(k, operator_scope))
        .filter_map(|k| Scope::of(k, operator_scope).ok())
        .collect()
}

/// One named scope: what it counts, when an upgrade last named it, and its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scoped {
    pub scope: Scope,
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
    /// An upgrade names `scope` at `now`: recorded from now on if it is new and there is room;
    /// the recording so far, or why it is not kept.
    pub fn name(&mut self, prefix: &str, scope: &Scope, now: DateTime<Utc>) -> Result<&Recorded, String> {
        let key = match self.scoped.iter().find(|(_, s)| s.scope == *scope) {
            Some((key, _)) => key.clone(),
            None if self.scoped.len() >= MAX_SCOPES => {
                return Err(format!(
                    "the operator records at most {MAX_SCOPES} scopes of the built-in signal besides its whole one, and upgrades named {MAX_SCOPES} others within the last {}",
                    crate::timefmt::duration(KEEP)
                ));
            }
            None => {
                let key =
                    (1..).map(|n| format!("{prefix}_scope-{n}.csv")).find(|k| !self.scoped.contains_key(k));
                let key = key.unwrap_or_default();
                let s = Scoped { scope: scope.clone(), named_at: now, recorded: Recorded::backfilled(now) };
                self.scoped.insert(key.clone(), s);
                key
            }
        };
        let s = self.scoped.get_mut(&key).expect("just found or inserted");
        s.named_at = s.named_at.max(now);
        Ok(&s.recorded)
    }

    /// Forget the scopes no upgrade named for a week; whether any was.
    pub fn expire(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.scoped.len();
        self.scoped.retain(|_, s| s.named_at > now - KEEP);
        self.scoped.len() != before
    }

    /// What each named scope's recorder counts.
    pub fn recording_of(whole: &Recording, s: &Scoped) -> Recording {
        Recording { bucket: whole.bucket, pending_limit: s.scope.pending_limit() }
    }

    pub fn index(&self) -> Vec<IndexEntry> {
        self.scoped
            .iter()
            .map(|(key, s)| IndexEntry { key: key.clone(), scope: s.scope.clone(), named_at: s.named_at })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn scope(ns: &[&str], selector: &str) -> Scope {
        let s = KubernetesSignal {
            namespaces: ns.iter().map(|n| n.to_string()).collect(),
            label_selector: Some(selector.into()),
            ..Default::default()
        };
        Scope::of(&s, None).unwrap()
    }

    #[test]
    fn a_scope_is_one_key_however_its_namespaces_are_written() {
        let mut r = Recordings::default();
        let now = t("2026-11-24T03:00:00Z");
        r.name("p", &scope(&["b", "a"], " app=x "), now).unwrap();
        r.name("p", &scope(&["a", "b", "a"], "app=x"), now + Duration::hours(1)).unwrap();
        assert_eq!(r.scoped.keys().collect::<Vec<_>>(), ["p_scope-1.csv"]);
        assert_eq!(r.scoped["p_scope-1.csv"].named_at, now + Duration::hours(1));
        r.name("p", &scope(&["a"], "app=x"), now).unwrap();
        assert_eq!(r.scoped.len(), 2, "another namespace set is another scope");
        assert_eq!(scope(&["b", "a"], "app=x").describe(), "pods of a, b matching app=x, judged after 5m");
    }

    #[test]
    fn an_upgrade_names_its_scopes_from_its_claim_until_it_ends_and_not_while_blocked() {
        use crate::crd::{Condition, MaintenanceUpgradeStatus, Phase};
        let whole = Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) };
        let yaml = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: team-a}\nspec:\n  stages: [{name: s, soak: 1h, components: [{kind: DaemonSet, name: c, image: x}]}]\n  analysis:\n    signals:\n      - {name: mine, kubernetes: {namespaces: [team-a], labelSelector: app=x}}\n      - {name: all, kubernetes: {}}\n";
        let mut mu: MaintenanceUpgrade = serde_yaml::from_str(yaml).unwrap();
        assert!(named_by(&mu, &whole, None).is_empty(), "no status yet: not claimed");
        let now = t("2026-11-24T03:00:00Z");
        mu.status = Some(MaintenanceUpgradeStatus { claimed_at: Some(now), ..Default::default() });
        assert_eq!(
            named_by(&mu, &whole, None),
            [scope(&["team-a"], "app=x")],
            "the whole one is recorded anyway"
        );
        let blocked = Condition {
            type_: condition::BLOCKED.into(),
            status: "True".into(),
            reason: reason::CROSS_NAMESPACE.into(),
            message: String::new(),
            last_transition_time: now,
            observed_generation: None,
        };
        mu.status.as_mut().unwrap().conditions = vec![blocked];
        assert!(named_by(&mu, &whole, None).is_empty(), "forbidden: nothing of it is recorded");
        mu.status = Some(MaintenanceUpgradeStatus {
            claimed_at: Some(now),
            phase: Phase::Succeeded,
            ..Default::default()
        });
        assert!(named_by(&mu, &whole, None).is_empty(), "ended");
        // An operator watching team-a records all of team-a anyway; the selector still names one.
        let plain = KubernetesSignal { namespaces: vec!["team-a".into()], ..Default::default() };
        assert_eq!(Scope::of(&plain, Some("team-a")).unwrap().namespaces, Vec::<String>::new());
    }

    #[test]
    fn at_most_max_scopes_and_a_scope_not_named_for_a_week_is_forgotten() {
        let mut r = Recordings::default();
        let now = t("2026-11-24T03:00:00Z");
        for i in 0..MAX_SCOPES {
            r.name("p", &scope(&[&format!("team-{i}")], ""), now).unwrap();
        }
        let e = r.name("p", &scope(&["team-x"], ""), now).unwrap_err();
        assert!(e.contains("at most 8 scopes"), "{e}");
        // team-0 named again later; the others lapse a week after they were last named.
        r.name("p", &scope(&["team-0"], ""), now + Duration::days(3)).unwrap();
        assert!(!r.expire(now + Duration::days(6)));
        assert!(r.expire(now + Duration::days(7)));
        assert_eq!(r.scoped.len(), 1);
        // Its key is free again for the next new scope.
        r.name("p", &scope(&["team-x"], ""), now + Duration::days(7)).unwrap();
        assert_eq!(r.scoped.keys().collect::<Vec<_>>(), ["p_scope-1.csv", "p_scope-2.csv"]);
        let index = serde_json::to_string(&r.index()).unwrap();
        let back: Vec<IndexEntry> = serde_json::from_str(&index).unwrap();
        assert_eq!(back, r.index(), "{index}");
    }
}
