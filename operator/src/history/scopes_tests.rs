//! Unit tests of `scopes.rs`.

use super::*;
use crate::crd::{DEFAULT_SIGNAL, MaintenanceUpgradeStatus, SignalStatus, canary_signal_name};

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
        mu.status.as_mut().unwrap().conditions = vec![Condition { reason: why.into(), ..blocked.clone() }];
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
        Scoped { scope: scope(&["team-c"], ""), namespace: "ops".into(), named_at: now, recorded: rows(1) },
    );
    r.merge(
        "p",
        MAX_SCOPES,
        now,
        vec![(entry("p_scope-1.csv", "team-a", 1), rows(6)), (entry("p_scope-2.csv", "team-b", 1), rows(3))],
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
        Scoped { scope: scope(&["team-c"], ""), namespace: "ops".into(), named_at: now, recorded: rows(1) },
    );
    r.merge("p", 1, now, vec![(entry("p_scope-1.csv", "team-a", 1), rows(6))]);
    assert_eq!(r.scoped.len(), 1);
    assert_eq!(r.scoped["p_scope-1.csv"].scope, scope(&["team-a"], ""));
    // Over the cap, the most recently named first; not named for a week, left out.
    let written = || {
        vec![(entry("p_scope-1.csv", "team-a", 1), rows(6)), (entry("p_scope-2.csv", "team-b", 2), rows(1))]
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
        Scoped { scope: scope(&["team-a"], ""), namespace: "ops".into(), named_at: now, recorded: rows(2) },
    );
    r.merge("p", MAX_SCOPES, now, vec![(entry("p_scope-1.csv", "team-a", 1), Recorded::default())]);
    assert_eq!(r.scoped["p_scope-1.csv"].recorded.rows.len(), 2);
}

/// The upgrade of `yaml`, claimed at `now`, its status naming the built-in signal's canary copy
/// on `nodes`.
fn claimed_with_canary_copy(yaml: &str, now: DateTime<Utc>, nodes: Vec<String>) -> MaintenanceUpgrade {
    let mut mu: MaintenanceUpgrade = serde_yaml::from_str(yaml).unwrap();
    let canary = SignalStatus { name: canary_signal_name(DEFAULT_SIGNAL), nodes, ..Default::default() };
    mu.status = Some(MaintenanceUpgradeStatus {
        claimed_at: Some(now),
        observed_generation: Some(1),
        analysis: vec![canary],
        ..Default::default()
    });
    mu
}

#[test]
fn a_daemonset_canarys_nodes_are_recorded_from_before_its_first_change() {
    let whole = Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) };
    let yaml = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: ops, generation: 1}\nspec:\n  stages:\n  - {name: canary, soak: 1h, components: [{kind: DaemonSet, name: c, image: x, canary: {nodes: 2}}]}\n  - {name: fleet, soak: 1h, components: [{kind: DaemonSet, name: c, image: x}]}\n";
    let now = t("2026-11-24T03:00:00Z");
    let mut mu = claimed_with_canary_copy(yaml, now, vec!["node-2".into(), "node-1".into()]);
    let on_canary = Scope {
        namespaces: vec![],
        label_selector: String::new(),
        pending_limit_seconds: 300,
        nodes: vec!["node-1".into(), "node-2".into()],
    };
    assert_eq!(named_by(&mu, &whole, None, &["ops".into()]), std::slice::from_ref(&on_canary));
    assert!(on_canary.describe().contains("on nodes node-1, node-2"), "{}", on_canary.describe());
    // Once the canary runs, the nodes it widens to were never its baseline.
    mu.status.as_mut().unwrap().changed_at = Some(now);
    assert!(named_by(&mu, &whole, None, &["ops".into()]).is_empty());
}

#[test]
fn a_status_cannot_make_the_operator_record_nodes_no_canary_takes() {
    let whole = Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) };
    let canaried = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: ops, generation: 1}\nspec:\n  stages:\n  - {name: canary, soak: 1h, components: [{kind: DaemonSet, name: c, image: x, canary: {nodes: 2}}]}\n  - {name: fleet, soak: 1h, components: [{kind: DaemonSet, name: c, image: x}]}\n";
    let plain = "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {name: up, namespace: ops, generation: 1}\nspec:\n  stages:\n  - {name: all, soak: 1h, components: [{kind: DaemonSet, name: c, image: x}]}\n";
    let now = t("2026-11-24T03:00:00Z");
    let forged = |yaml: &str, nodes: usize| {
        let mu = claimed_with_canary_copy(yaml, now, (0..nodes).map(|i| format!("node-{i:0>60}")).collect());
        named_by(&mu, &whole, None, &["ops".into()])
    };
    // A copy written into the status of an upgrade that runs no DaemonSet canary.
    assert!(forged(plain, 2).is_empty());
    // More nodes than a recording keeps: observed live instead, the ConfigMap kept small.
    assert!(forged(canaried, MAX_SCOPE_NODES + 1).is_empty());
    assert_eq!(forged(canaried, MAX_SCOPE_NODES).len(), 1);
    // Names no node can have: a hundred of 11 KB each would grow the recording's index past
    // what a ConfigMap holds, and no save of any scope would go through again.
    for name in ["n".repeat(254), "Node_1".into(), "-node".into(), "a..b".into(), String::new()] {
        let mu = claimed_with_canary_copy(canaried, now, vec![name.clone(), "node-1".into()]);
        assert!(named_by(&mu, &whole, None, &["ops".into()]).is_empty(), "{:.20}", name);
    }
}

/// A pending limit with a fraction of a second is observed live, not recorded: its scope would
/// keep whole seconds, and be counted with another limit than the signal's (1500ms as 1s).
#[test]
fn a_pending_limit_of_a_fraction_of_a_second_is_not_recorded() {
    let with = |limit: &str| KubernetesSignal {
        pending_limit: crate::crd::Duration(limit.into()),
        ..Default::default()
    };
    assert!(Scope::of(&with("1500ms"), None).is_err());
    assert!(Scope::of(&with("500ms"), None).is_err());
    assert_eq!(Scope::of(&with("90s"), None).unwrap().pending_limit_seconds, 90);
    assert!(Scope::of(&with("200h"), None).is_err(), "longer than the week kept: never due");
}
