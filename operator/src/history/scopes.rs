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
use crate::crd::{KubernetesSignal, MaintenanceUpgrade};
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
        crate::signals::selector::parse(&label_selector)?;
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
    mu.spec
        .signals_as_read(&ns, trusted.contains(&ns))
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
        r.name("p", MAX_SCOPES, "ops", &scope(&["b", "a"], " app=x "), now).unwrap();
        r.name("p", MAX_SCOPES, "ops", &scope(&["a", "b", "a"], "app=x"), now + Duration::hours(1)).unwrap();
        assert_eq!(r.scoped.keys().collect::<Vec<_>>(), ["p_scope-1.csv"]);
        assert_eq!(r.scoped["p_scope-1.csv"].named_at, now + Duration::hours(1));
        r.name("p", MAX_SCOPES, "ops", &scope(&["a"], "app=x"), now).unwrap();
        assert_eq!(r.scoped.len(), 2, "another namespace set is another scope");
        assert_eq!(scope(&["b", "a"], "app=x").describe(), "pods of a, b matching app=x, judged after 5m");
    }

    #[test]
    fn an_upgrade_names_its_scopes_from_its_claim_until_it_ends_and_not_while_blocked() {
        use crate::crd::{Condition, MaintenanceUpgradeStatus, Phase};
        let whole = Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) };
        let yaml = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: team-a}\nspec:\n  stages: [{name: s, soak: 1h, components: [{kind: DaemonSet, name: c, image: x}]}]\n  analysis:\n    signals:\n      - {name: mine, kubernetes: {namespaces: [team-a], labelSelector: app=x}}\n      - {name: all, kubernetes: {}}\n";
        let mut mu: MaintenanceUpgrade = serde_yaml::from_str(yaml).unwrap();
        let trusted = vec!["team-a".to_string()];
        assert!(named_by(&mu, &whole, None, &trusted).is_empty(), "no status yet: not claimed");
        let now = t("2026-11-24T03:00:00Z");
        mu.metadata.generation = Some(1);
        let claimed = MaintenanceUpgradeStatus {
            claimed_at: Some(now),
            observed_generation: Some(1),
            ..Default::default()
        };
        mu.status = Some(claimed.clone());
        assert_eq!(
            named_by(&mu, &whole, None, &trusted),
            [scope(&["team-a"], "app=x")],
            "the whole one is recorded anyway"
        );
        // Untrusted, team-a's signal over every namespace counts team-a alone: a scope of its own.
        assert_eq!(
            named_by(&mu, &whole, None, &[]),
            [scope(&["team-a"], "app=x"), scope(&["team-a"], "")],
            "an untrusted upgrade's empty namespaces are its own"
        );
        mu.metadata.generation = Some(2);
        assert!(named_by(&mu, &whole, None, &trusted).is_empty(), "an edit not decided yet may be invalid");
        mu.metadata.generation = Some(1);
        let blocked = Condition {
            type_: condition::BLOCKED.into(),
            status: "True".into(),
            reason: String::new(),
            message: String::new(),
            last_transition_time: now,
            observed_generation: None,
        };
        for why in [reason::CROSS_NAMESPACE, reason::INVALID_SPEC] {
            mu.status.as_mut().unwrap().conditions =
                vec![Condition { reason: why.into(), ..blocked.clone() }];
            assert!(named_by(&mu, &whole, None, &trusted).is_empty(), "{why}: nothing of it is recorded");
        }
        mu.status = Some(MaintenanceUpgradeStatus { phase: Phase::Succeeded, ..claimed });
        assert!(named_by(&mu, &whole, None, &trusted).is_empty(), "ended");
        // For an operator watching team-a, a selector over team-a and over all it watches is one scope.
        let over = |ns: &[&str]| KubernetesSignal {
            namespaces: ns.iter().map(|n| n.to_string()).collect(),
            label_selector: Some("app=x".into()),
            ..Default::default()
        };
        assert_eq!(Scope::of(&over(&["team-a"]), Some("team-a")), Scope::of(&over(&[]), Some("team-a")));
        assert_ne!(Scope::of(&over(&["team-a"]), None), Scope::of(&over(&[]), None));
    }

    #[test]
    fn at_most_max_scopes_and_a_scope_not_named_for_a_week_is_forgotten() {
        let mut r = Recordings::default();
        let now = t("2026-11-24T03:00:00Z");
        for i in 0..MAX_SCOPES {
            r.name("p", MAX_SCOPES, "ops", &scope(&[&format!("team-{i}")], ""), now).unwrap();
        }
        let e = r.name("p", MAX_SCOPES, "ops", &scope(&["team-x"], ""), now).unwrap_err();
        assert!(e.contains("at most 8 scopes"), "{e}");
        // team-0 named again later; the others lapse a week after they were last named.
        r.name("p", MAX_SCOPES, "ops", &scope(&["team-0"], ""), now + Duration::days(3)).unwrap();
        assert!(!r.expire(now + Duration::days(6)));
        assert!(r.expire(now + Duration::days(7)));
        assert_eq!(r.scoped.len(), 1);
        // Its key is free again for the next new scope.
        r.name("p", MAX_SCOPES, "ops", &scope(&["team-x"], ""), now + Duration::days(7)).unwrap();
        assert_eq!(r.scoped.keys().collect::<Vec<_>>(), ["p_scope-1.csv", "p_scope-2.csv"]);
        assert!(
            r.name("p", 2, "ops", &scope(&["team-y"], ""), now + Duration::days(7)).is_err(),
            "an operator of one namespace keeps 2"
        );
        let index = serde_json::to_string(&r.index()).unwrap();
        let back: Vec<IndexEntry> = serde_json::from_str(&index).unwrap();
        assert_eq!(back, r.index(), "{index}");
    }

    #[test]
    fn one_namespace_cannot_take_every_slot_from_the_others() {
        let mut r = Recordings::default();
        let now = t("2026-11-24T03:00:00Z");
        // team-a names eight scopes of its own, one an hour: every slot.
        for i in 0..MAX_SCOPES {
            let at = now + Duration::hours(i as i64);
            r.name("p", MAX_SCOPES, "team-a", &scope(&["team-a"], &format!("app=a{i}")), at).unwrap();
        }
        // team-b and team-c each take the least recently named slot of the largest holder.
        let later = now + Duration::days(1);
        r.name("p", MAX_SCOPES, "team-b", &scope(&["team-b"], "app=b"), later).unwrap();
        r.name("p", MAX_SCOPES, "team-c", &scope(&["team-c"], "app=c"), later).unwrap();
        let held = |r: &Recordings, ns: &str| r.scoped.values().filter(|s| s.namespace == ns).count();
        assert_eq!((held(&r, "team-a"), held(&r, "team-b"), held(&r, "team-c")), (6, 1, 1));
        assert!(!r.scoped.values().any(|s| s.scope.label_selector == "app=a0"), "the oldest went first");
        // Slots move until no namespace holds two more than another, and then stay.
        for i in 1..3 {
            r.name("p", MAX_SCOPES, "team-b", &scope(&["team-b"], &format!("app=b{i}")), later).unwrap();
        }
        assert_eq!((held(&r, "team-a"), held(&r, "team-b")), (4, 3));
        let e = r.name("p", MAX_SCOPES, "team-b", &scope(&["team-b"], "app=b9"), later).unwrap_err();
        assert!(e.contains("shared fairly"), "{e}");
        // team-a asking again takes nothing back: it holds the most.
        assert!(r.name("p", MAX_SCOPES, "team-a", &scope(&["team-a"], "app=a9"), later).is_err());
    }

    #[test]
    fn what_earlier_leaders_recorded_is_merged_scope_by_scope() {
        use crate::detector::Counts;
        let now = t("2026-11-24T03:00:00Z");
        let rows = |n: i64| {
            let mut r = Recorded::default();
            for i in 1..=n {
                r.push(now + Duration::minutes(10 * i), Counts { attempts: 10, errors: 0 });
            }
            r
        };
        let entry = |key: &str, ns: &str, named: i64| IndexEntry {
            key: key.into(),
            scope: scope(&[ns], ""),
            named_at: now + Duration::hours(named),
            namespace: "ops".into(),
        };
        // Mine: team-a with fewer rows but named later, under the key the index gives team-b;
        // team-c only I know.
        let mut r = Recordings::default();
        r.scoped.insert(
            "p_scope-2.csv".into(),
            Scoped {
                scope: scope(&["team-a"], ""),
                namespace: "ops".into(),
                named_at: now + Duration::hours(5),
                recorded: rows(2),
            },
        );
        r.scoped.insert(
            "p_scope-9.csv".into(),
            Scoped {
                scope: scope(&["team-c"], ""),
                namespace: "ops".into(),
                named_at: now,
                recorded: rows(1),
            },
        );
        r.merge(
            "p",
            MAX_SCOPES,
            now,
            vec![
                (entry("p_scope-1.csv", "team-a", 1), rows(6)),
                (entry("p_scope-2.csv", "team-b", 1), rows(3)),
            ],
        );
        let a = &r.scoped["p_scope-1.csv"];
        assert_eq!(
            (a.scope.namespaces.as_slice(), a.recorded.rows.len()),
            (&["team-a".to_string()][..], 6),
            "the rows that reach later"
        );
        assert_eq!(a.named_at, now + Duration::hours(5), "and the later naming");
        assert_eq!(r.scoped["p_scope-2.csv"].scope, scope(&["team-b"], ""), "the written key wins");
        assert_eq!(r.scoped["p_scope-3.csv"].scope, scope(&["team-c"], ""), "mine gets a free key");
        // No room: what was written comes first.
        let mut r = Recordings::default();
        r.scoped.insert(
            "p_scope-1.csv".into(),
            Scoped {
                scope: scope(&["team-c"], ""),
                namespace: "ops".into(),
                named_at: now,
                recorded: rows(1),
            },
        );
        r.merge("p", 1, now, vec![(entry("p_scope-1.csv", "team-a", 1), rows(6))]);
        assert_eq!(r.scoped.len(), 1);
        assert_eq!(r.scoped["p_scope-1.csv"].scope, scope(&["team-a"], ""));
        // Over the cap, the most recently named first; not named for a week, left out.
        let written = || {
            vec![
                (entry("p_scope-1.csv", "team-a", 1), rows(6)),
                (entry("p_scope-2.csv", "team-b", 2), rows(1)),
            ]
        };
        let mut r = Recordings::default();
        r.merge("p", 1, now, written());
        assert_eq!(r.scoped.values().map(|s| s.scope.clone()).collect::<Vec<_>>(), [scope(&["team-b"], "")]);
        let mut r = Recordings::default();
        r.merge("p", MAX_SCOPES, now + Duration::days(7) + Duration::minutes(90), written());
        assert_eq!(r.scoped.values().map(|s| s.scope.clone()).collect::<Vec<_>>(), [scope(&["team-b"], "")]);
        // An empty one written does not undo what this replica counted.
        let mut r = Recordings::default();
        r.scoped.insert(
            "p_scope-1.csv".into(),
            Scoped {
                scope: scope(&["team-a"], ""),
                namespace: "ops".into(),
                named_at: now,
                recorded: rows(2),
            },
        );
        r.merge("p", MAX_SCOPES, now, vec![(entry("p_scope-1.csv", "team-a", 1), Recorded::default())]);
        assert_eq!(r.scoped["p_scope-1.csv"].recorded.rows.len(), 2);
    }
}
