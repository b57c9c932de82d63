//! Unit tests of `target_cache.rs`.

use super::*;
use crate::constants::{OWNER_ANNOTATION, OWNER_UID_ANNOTATION};

fn claimed(name: &str, rv: &str) -> (TargetKey, TargetState) {
    let key = TargetKey { kind: WorkloadKind::Deployment, namespace: "apps".into(), name: name.into() };
    (key, target::from_deployment(&deployment(name, rv)))
}

/// A Deployment `apps/name` at resourceVersion `rv`, claimed by `ops/up`.
fn deployment(name: &str, rv: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "apps", "resourceVersion": rv,
            "annotations": {OWNER_ANNOTATION: "ops/up", OWNER_UID_ANNOTATION: "uid-up"}},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
    }))
    .unwrap()
}

type Item = Result<watcher::Event<Deployment>, watcher::Error>;

/// A cache of every namespace, fed by a Deployment watch whose events the test sends.
fn fed_cache() -> (TargetCache, futures::channel::mpsc::UnboundedSender<Item>) {
    let wake = WakeUps::new("target changes", WAKE_BUFFER);
    let (stored, written) = (Shared::default(), Shared::default());
    let watch = Watch {
        kind: WorkloadKind::Deployment,
        wake: wake.clone(),
        stored: Arc::clone(&stored),
        written: Arc::clone(&written),
        trusted: Arc::new(vec![]),
    };
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let rx = Mutex::new(Some(rx));
    let start = move || lock(&rx).take().expect("started once");
    let feeding = watch.feeding(target::from_deployment);
    tokio::spawn(crate::resuming_watch::feed("claimed Deployments", start, feeding, Default::default()));
    (TargetCache { stored, written, wake, scope: None }, tx)
}

fn version(t: Option<TargetState>) -> Option<String> {
    t.map(|t| t.resource_version)
}

/// A watch that failed resumes where it was, with no new list: until it is seen working again,
/// targets are read from the API, and never our last patch in their place (that would show a
/// rollout long done as not yet observed, for ever: a rollback of a healthy upgrade). Once it
/// works again, the store is trusted without waiting for a list that may never come; a new list
/// that no longer shows a target we patched drops our patch of it too.
#[tokio::test(start_paused = true)]
async fn a_failed_watch_is_read_around_until_it_works_again_and_our_old_patch_never_stands_in() {
    let (cache, tx) = fed_cache();
    let key = claimed("web", "5").0;
    let send = |item: Item| tx.unbounded_send(item).unwrap();
    let settle = |d: u64| tokio::time::sleep(std::time::Duration::from_millis(d));
    for e in
        [watcher::Event::Init, watcher::Event::InitApply(deployment("web", "5")), watcher::Event::InitDone]
    {
        send(Ok(e));
    }
    settle(10).await;
    assert_eq!(version(cache.get(&key)), Some("5".into()));
    cache.wrote(&key, claimed("web", "6").1);
    assert_eq!(version(cache.get(&key)), Some("6".into()), "our patch, newer than the store");
    send(Err(watcher::Error::NoResourceVersion));
    settle(10).await;
    assert_eq!(version(cache.get(&key)), None, "read from the API while the watch resumes");
    assert!(!cache.answers_for(&key));
    // Resumed (after a second's backoff): what it missed comes first.
    send(Ok(watcher::Event::Apply(deployment("web", "9"))));
    settle(1_100).await;
    assert_eq!(version(cache.get(&key)), Some("9".into()));
    // Failed again, then quiet: it works again, with no event to say so, but only once a
    // resume that cannot connect would have said so (the client's 30 s connect timeout).
    send(Err(watcher::Error::NoResourceVersion));
    settle(30_000).await;
    assert_eq!(version(cache.get(&key)), None, "a resume may still be connecting");
    settle(8_000).await;
    assert_eq!(
        version(cache.get(&key)),
        Some("9".into()),
        "quiet for 35 s (after a 1 s backoff): works again"
    );
    assert!(cache.answers_for(&key));
    // Listed again (a 410) without web: deleted or released meanwhile, so our patch goes too.
    cache.wrote(&key, claimed("web", "10").1);
    send(Ok(watcher::Event::Init));
    send(Ok(watcher::Event::InitDone));
    settle(10).await;
    assert_eq!(version(cache.get(&key)), None, "not our patch of a target the list lacks");
    assert!(cache.answers_for(&key), "the list says it carries no mark");
}

#[test]
fn the_store_holds_what_the_watch_shows_once_it_has_listed() {
    let mut s = Stored::default();
    let (web, db) = (claimed("web", "5"), claimed("db", "6"));
    s.apply(WorkloadKind::Deployment, watcher::Event::Init);
    s.apply(WorkloadKind::Deployment, watcher::Event::InitApply(web.clone()));
    assert_eq!(s.get(&web.0), None, "not before the list is complete");
    s.apply(WorkloadKind::Deployment, watcher::Event::InitDone);
    assert_eq!(s.get(&web.0), Some(&web.1));
    assert_eq!(owner_of(&web.0, &web.1, &["ops".into()]), Some(ObjectRef::new("up").within("ops")));
    s.apply(WorkloadKind::Deployment, watcher::Event::Apply(db.clone()));
    // Listed again after a break: web was released meanwhile, db still claimed.
    s.apply(WorkloadKind::Deployment, watcher::Event::Init);
    s.apply(WorkloadKind::Deployment, watcher::Event::InitApply(db.clone()));
    assert_eq!(s.get(&db.0), None, "not trusted while it lists again: read from the API");
    s.apply(WorkloadKind::Deployment, watcher::Event::InitDone);
    assert_eq!(s.get(&web.0), None);
    assert_eq!(s.get(&db.0), Some(&db.1));
    s.apply(WorkloadKind::Deployment, watcher::Event::Delete(db.clone()));
    assert_eq!(s.get(&db.0), None);
    let ds = TargetKey { kind: WorkloadKind::DaemonSet, ..db.0 };
    assert_eq!(s.get(&ds), None, "the DaemonSet watch has not listed");
}

#[test]
fn the_store_is_trusted_once_it_shows_our_last_patch() {
    assert!(not_older("42", "41"));
    assert!(not_older("41", "41"));
    assert!(!not_older("40", "41"));
    assert!(!not_older("abc", "41"));
    assert!(not_older("abc", "abc"));
    assert!(!not_older("41", ""), "a patch without a version distrusts the store");
}

/// A workload's owner mark wakes its upgrade only where that upgrade may own it: in its own
/// namespace, or anywhere for a trusted namespace's. Anyone who may edit a workload may write
/// the mark, and a tenant must not wake another namespace's upgrade at will.
#[test]
fn a_mark_naming_an_upgrade_of_another_untrusted_namespace_wakes_nothing() {
    let (key, t) = claimed("web", "5");
    assert_eq!(owner_of(&key, &t, &[]), None, "ops/up may not own apps/web");
    assert_eq!(owner_of(&key, &t, &["ops".into()]), Some(ObjectRef::new("up").within("ops")));
    let mine = TargetState { owner: Some("apps/up".into()), ..t };
    assert_eq!(owner_of(&key, &mine, &[]), Some(ObjectRef::new("up").within("apps")));
}

/// An upgrade in the store: `ns/name`, whose one stage changes `components` (each a kind,
/// an optional namespace and a name), and whether it has ended and released its targets.
fn upgrade(
    ns: &str,
    name: &str,
    components: &[(&str, Option<&str>, &str)],
    released: bool,
) -> MaintenanceUpgrade {
    let components: Vec<_> = components
        .iter()
        .map(|(kind, ns, name)| serde_json::json!({"kind": kind, "namespace": ns, "name": name, "image": "app:2"}))
        .collect();
    let mut mu: MaintenanceUpgrade = serde_json::from_value(serde_json::json!({
        "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"stages": [{"name": "s", "soak": "1h", "components": components}]}
    }))
    .unwrap();
    if released {
        let released_at = Some(chrono::Utc::now());
        mu.status = Some(crate::crd::MaintenanceUpgradeStatus { released_at, ..Default::default() });
    }
    mu
}

fn store_of(upgrades: Vec<MaintenanceUpgrade>) -> Store<MaintenanceUpgrade> {
    let (reader, mut writer) = kube::runtime::reflector::store::<MaintenanceUpgrade>();
    for mu in upgrades {
        writer.apply_watcher_event(&watcher::Event::Apply(mu));
    }
    reader
}

/// A trusted namespace's upgrade may own targets anywhere, so a tenant could mark her own
/// workload with its name, and even the UID she read off a workload of hers it once claimed,
/// and wake it at will. A wake-up reaches an upgrade only for a target its spec names.
#[test]
fn a_mark_wakes_an_upgrade_only_for_a_target_its_spec_names() {
    let (key, claim) = claimed("web", "5");
    let trusted = ["ops".to_string()];
    let store = store_of(vec![
        upgrade("ops", "up", &[("Deployment", Some("apps"), "web")], false),
        // A component that names no namespace names one in its upgrade's.
        upgrade("apps", "own", &[("Deployment", None, "web")], false),
    ]);
    let woken = |target: &TargetKey, owner: &str| {
        let t = TargetState { owner: Some(owner.into()), ..claim.clone() };
        let w = TargetWakeUp { target: target.clone(), owner: owner_of(target, &t, &trusted), left: false };
        to_wake(&store, &trusted, &w)
    };
    assert_eq!(woken(&key, "ops/up"), [ObjectRef::new("up").within("ops")], "the target its spec names");
    assert!(
        woken(&TargetKey { name: "mine".into(), ..key.clone() }, "ops/up").is_empty(),
        "her own workload"
    );
    let ds = TargetKey { kind: WorkloadKind::DaemonSet, ..key.clone() };
    assert!(woken(&ds, "ops/up").is_empty(), "another kind of the same name");
    assert_eq!(woken(&key, "apps/own"), [ObjectRef::new("own").within("apps")]);
}

/// A target its owner releases (or that is deleted) leaves the watch: that wakes the owner, and
/// the upgrade that has waited longest to claim it (only one can), so that it starts at once
/// instead of at its next retry; not one that has ended, nor one of a namespace that may not
/// own it. A target that leaves with no owner's mark was never claimed, and wakes nobody.
#[test]
fn a_released_target_wakes_the_upgrade_that_waited_longest_to_claim_it() {
    let (key, claim) = claimed("web", "5");
    let web = [("Deployment", Some("apps"), "web")];
    let created = |mut mu: MaintenanceUpgrade, at: &str| {
        mu.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at.parse().unwrap()));
        mu
    };
    let store = store_of(vec![
        created(upgrade("ops", "up", &web, false), "2026-12-01T00:00:00Z"),
        created(upgrade("apps", "next", &web, false), "2026-12-02T00:00:00Z"),
        created(upgrade("apps", "later", &web, false), "2026-12-03T00:00:00Z"),
        created(upgrade("apps", "done", &web, true), "2026-11-01T00:00:00Z"),
        created(upgrade("elsewhere", "blocked", &web, false), "2026-11-01T00:00:00Z"),
        created(
            upgrade("apps", "other", &[("Deployment", Some("apps"), "db")], false),
            "2026-11-01T00:00:00Z",
        ),
    ]);
    let trusted = ["ops".to_string()];
    let left = TargetWakeUp { target: key.clone(), owner: owner_of(&key, &claim, &trusted), left: true };
    let up = ObjectRef::new("up").within("ops");
    assert_eq!(to_wake(&store, &trusted, &left), [up.clone(), ObjectRef::new("next").within("apps")]);
    let changed = TargetWakeUp { left: false, ..left.clone() };
    assert_eq!(to_wake(&store, &trusted, &changed), [up], "a change wakes its owner alone");
    let unmarked = TargetWakeUp { owner: None, ..left };
    assert!(to_wake(&store, &trusted, &unmarked).is_empty(), "never claimed: nobody waits for it");
}

/// A target that leaves the watch is forgotten whatever mark it leaves with (none, or one naming
/// an upgrade that may not own it): our last patch of it no longer stands in for it, so the
/// next look reads it from the API instead of patching, for ever, a version long gone.
#[test]
fn a_target_that_leaves_with_a_mark_no_upgrade_may_hold_is_forgotten() {
    let (key, ours) = claimed("web", "100");
    let watch = Watch {
        kind: WorkloadKind::Deployment,
        wake: WakeUps::new("test", 4),
        stored: Shared::default(),
        written: Shared::default(),
        trusted: Arc::new(vec![]),
    };
    for mark in [None, Some("elsewhere/x".to_string())] {
        lock(&watch.written).insert(key.clone(), ours.clone());
        let left = TargetState { owner: mark, resource_version: "101".into(), ..ours.clone() };
        watch.woken_by(&key, &left, true);
        assert!(!lock(&watch.written).contains_key(&key), "{:?}", left.owner);
    }
}
