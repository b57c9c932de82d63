//! Transition tests: claiming targets and recording known-good images.

use super::super::test_world::*;

/// Nothing changed and connector-canary, the target the test broke, not claimed: connector,
/// before it in the order targets are claimed in, may be (its claim only records).
fn untouched(w: &World) {
    assert!(w.image_sets().is_empty(), "{:?}", w.effects);
    assert!(!w.claimed().contains(&"connector-canary".to_string()), "{:?}", w.effects);
    assert!(w.obs.status.claimed_at.is_none());
}

/// A way to break the world, the reason it is reported with, and words the message must hold.
type BrokenTarget = (&'static str, Box<dyn Fn(&mut World)>, &'static str, &'static str);

#[test]
fn known_good_is_recorded_on_the_target_before_any_image_changes() {
    let mut w = World::new(spec());
    w.run_until(Duration::hours(1), |w| !w.effects.is_empty());
    match &w.effects[0] {
        Effect::Claim { claims } => {
            let names: Vec<&str> = claims.iter().map(|c| c.target.name.as_str()).collect();
            assert_eq!(
                names,
                ["connector", "connector-canary"],
                "every target in one claim, in TargetKey order"
            );
            assert!(claims.iter().all(|c| c.known_good == "connector=connector:1.0"));
        }
        other => panic!("first effect must be a claim, got {other:?}"),
    }
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    assert_eq!(w.claimed().len(), 2, "every target is claimed once, before the first image change");
    assert!(matches!(w.effects[1], Effect::SetImage { .. }));
    assert!(w.obs.status.stages.iter().flat_map(|s| &s.components).all(|c| c.known_good_image.is_some()));
}

/// A world whose connector another live upgrade (ops/other) owns, after five looks 30 s apart.
fn with_connector_held_by_another() -> World {
    let mut w = World::new(spec());
    w.target_mut("connector").owner = Some("ops/other".into());
    w.target_mut("connector").owner_uid = Some("uid-other".into());
    w.obs.live_owners.insert(("ops/other".into(), "uid-other".into()));
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    w
}

#[test]
fn target_owned_by_another_upgrade_blocks_without_changes() {
    let mut w = with_connector_held_by_another();
    assert_eq!(w.phase(), Phase::Pending);
    let b = w.condition(ct::BLOCKED);
    assert_eq!((b.status.as_str(), b.reason.as_str()), ("True", reason::TARGET_OWNED));
    assert!(b.message.contains("ops/other"), "{}", b.message);
    assert!(w.image_sets().is_empty());
    assert_eq!(
        w.events.iter().filter(|e| e.starts_with(reason::TARGET_OWNED)).count(),
        1,
        "one Event, not one per look"
    );
    // The other upgrade is deleted without releasing the target: its mark no longer holds it.
    w.obs.live_owners.clear();
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded);
    assert!(
        w.events.iter().any(|e| e.contains("taken over from MaintenanceUpgrade ops/other")),
        "{:?}",
        w.events
    );
}

/// A mark naming an upgrade that exists, but under another UID than the mark's, holds nothing:
/// the upgrade it was written for is gone. So a tenant who writes the name of an upgrade she
/// cannot read into the mark of her own workload learns nothing of whether it exists: her
/// upgrade takes the workload over either way (she cannot know its UID).
#[test]
fn a_mark_naming_a_live_upgrade_under_another_uid_is_taken_over() {
    let mut w = World::new(spec());
    w.target_mut("connector").owner = Some("ops/other".into());
    w.target_mut("connector").owner_uid = Some("guessed".into());
    w.obs.live_owners.insert(("ops/other".into(), "uid-other".into()));
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{:?}", w.events);
    assert!(
        w.events.iter().any(|e| e.contains("taken over from MaintenanceUpgrade ops/other")),
        "{:?}",
        w.events
    );
}

/// A mark without a UID, naming an upgrade that exists, holds nothing either: the operator
/// writes every mark with its owner's UID.
#[test]
fn a_mark_without_a_uid_is_taken_over_even_from_a_live_upgrade() {
    let mut w = World::new(spec());
    w.target_mut("connector").owner = Some("ops/other".into());
    w.target_mut("connector").owner_uid = None;
    w.obs.live_owners.insert(("ops/other".into(), "uid-other".into()));
    w.run_until(Duration::hours(1), |w| !w.claimed().is_empty());
    assert_eq!(w.claimed(), ["connector", "connector-canary"], "{:?}", w.events);
}

/// Two upgrades applied together that name the same targets each claim in one shared order
/// (`TargetKey`), stopping at the first another holds: neither can take one target and wait
/// for ever for the other's. Here the spec names connector-canary first, but connector comes
/// first in that order and is another upgrade's, so nothing is claimed while it is.
#[test]
fn no_target_is_claimed_while_one_before_it_in_the_shared_order_is_another_upgrades() {
    let mut w = with_connector_held_by_another();
    assert_eq!(w.condition(ct::BLOCKED).reason, reason::TARGET_OWNED);
    assert!(w.claimed().is_empty(), "claimed {:?} while waiting for connector", w.claimed());
    // Once the other lets it go, both are claimed in that order, in one effect.
    w.target_mut("connector").owner = None;
    w.obs.live_owners.clear();
    w.run_until(Duration::hours(1), |w| !w.claimed().is_empty());
    assert_eq!(w.claimed(), ["connector", "connector-canary"]);
    assert_eq!(w.effects.iter().filter(|e| matches!(e, Effect::Claim { .. })).count(), 1);
}

#[test]
fn missing_target_or_container_blocks_with_a_condition() {
    let cases: [BrokenTarget; 3] = [
        (
            "missing target",
            Box::new(|w: &mut World| *w.obs.targets.get_mut(&key("connector")).unwrap() = None),
            reason::TARGET_NOT_FOUND,
            "does not exist",
        ),
        (
            "missing container",
            Box::new(|w: &mut World| w.obs.spec.stages[1].components[0].container = Some("nope".into())),
            reason::CONTAINER_NOT_FOUND,
            "no container \"nope\"",
        ),
        (
            "ambiguous container",
            Box::new(|w: &mut World| {
                w.target_mut("connector").containers.push(("sidecar".into(), "proxy:1".into()))
            }),
            reason::CONTAINER_AMBIGUOUS,
            "2 containers",
        ),
    ];
    for (name, setup, want_reason, want_msg) in cases {
        let mut w = World::new(spec());
        setup(&mut w);
        for _ in 0..5 {
            w.step();
            w.obs.now += Duration::seconds(30);
        }
        let b = w.condition(ct::BLOCKED);
        assert_eq!(b.reason, want_reason, "{name}");
        assert!(b.message.contains(want_msg), "{name}: {}", b.message);
        assert!(w.image_sets().is_empty(), "{name}: nothing changes");
        assert!(w.events.iter().any(|e| e.starts_with(want_reason)), "{name}: an Event says so");
    }
}

#[test]
fn the_mark_of_a_deleted_upgrade_of_the_same_name_is_not_taken_for_our_own() {
    let mut w = World::new(spec());
    // An earlier upgrade of this name claimed the canary and was deleted before it changed it.
    let t = w.target_mut("connector-canary");
    t.owner = Some(ID.into());
    t.owner_uid = Some("uid-0".into());
    t.known_good = Some("connector=connector:1.0".into());
    w.run_until(Duration::hours(1), |w| w.obs.status.claimed_at.is_some());
    assert_eq!(w.obs.status.stages[0].components[0].known_good_image.as_deref(), Some("connector:1.0"));
    assert!(
        w.events.iter().any(|e| e.contains("taken over from an earlier MaintenanceUpgrade of this name")),
        "{:?}",
        w.events
    );
    w.run_until(Duration::hours(3), terminal);
    assert_eq!(w.phase(), Phase::Succeeded, "{}", w.obs.status.message);
}

/// An upgrade deleted mid-soak without its finalizer (removed by hand) leaves its new image and
/// its known-good record on the target. The next upgrade must not record that unproven image as
/// known-good: it is held, and says how to settle it either way.
#[test]
fn an_image_left_by_a_deleted_upgrade_is_not_recorded_as_known_good() {
    let mut w = World::new(spec());
    let t = w.target_mut("connector-canary");
    t.owner = Some("ops/deleted".into());
    t.owner_uid = Some("uid-0".into());
    t.known_good = Some("connector=connector:0.9".into());
    t.containers[0].1 = "connector:1.5".into();
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    assert!(w.obs.status.claimed_at.is_none());
    untouched(&w);
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::UNPROVEN_IMAGE);
    for says in ["runs connector:1.5", "ops/deleted", "connector:0.9", "maintenance.dev/known-good"] {
        assert!(b.message.contains(says), "{says}: {}", b.message);
    }
    // A human sets it back to the record: the claim goes ahead with the record.
    w.target_mut("connector-canary").containers[0].1 = "connector:0.9".into();
    w.run_until(Duration::hours(1), |w| w.obs.status.claimed_at.is_some());
    assert_eq!(w.obs.status.stages[0].components[0].known_good_image.as_deref(), Some("connector:0.9"));
    // Or accepts what runs, by removing the record: that is then the known-good.
    let mut w = World::new(spec());
    let t = w.target_mut("connector-canary");
    t.owner = Some("ops/deleted".into());
    t.owner_uid = Some("uid-0".into());
    t.containers[0].1 = "connector:1.5".into();
    w.run_until(Duration::hours(1), |w| w.obs.status.claimed_at.is_some());
    assert_eq!(w.obs.status.stages[0].components[0].known_good_image.as_deref(), Some("connector:1.5"));
}

#[test]
fn a_target_argo_cd_manages_is_claimed_with_the_setting_that_keeps_self_heal_away() {
    let mut w = World::new(spec());
    w.target_mut("connector").managed_by = Some(ManagedBy {
        tool: ManagerTool::ArgoCd,
        name: "platform".into(),
        namespace: Some("argocd".into()),
    });
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    let warned: Vec<_> = w.events.iter().filter(|e| e.starts_with(reason::MANAGED_BY_GITOPS)).collect();
    assert_eq!(warned.len(), 1, "said once, when claimed: {:?}", w.events);
    assert!(
        warned[0]
            .contains("DaemonSet kube-system/connector is managed by Argo CD application argocd/platform")
    );
    let c = w.condition(ct::MANAGED_BY_GITOPS);
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "ArgoCd"));
    assert!(c.message.contains("managedFieldsManagers: [maintenance-operator]"), "{}", c.message);
    // Only the managed one: the canary is not.
    assert!(!c.message.contains("connector-canary"), "{}", c.message);
}

fn images(w: &World, name: &str) -> Vec<(String, String)> {
    w.obs.targets[&key(name)].as_ref().unwrap().containers.clone()
}

#[test]
fn several_containers_are_recorded_changed_and_reverted_together() {
    let mut w = with_sidecar();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    match &w.effects[0] {
        Effect::Claim { claims } => {
            let canary = claims.iter().find(|c| c.target.name == "connector-canary").unwrap();
            assert_eq!(canary.known_good, "connector=connector:1.0;registrar=registrar:1.0")
        }
        other => panic!("first effect must be a claim, got {other:?}"),
    }
    let set = |w: &World, image: &str| -> Vec<Effect> {
        w.effects
            .iter()
            .filter(|e| matches!(e, Effect::SetImage { target, image: i, .. } if target.name == "connector-canary" && i == image))
            .cloned()
            .collect()
    };
    let forward = set(&w, "connector:2.0");
    assert_eq!(forward.len(), 1, "one write");
    assert!(
        matches!(&forward[0], Effect::SetImage { more, .. } if *more == [(1, "registrar".to_string(), "registrar:2.0".to_string())])
    );
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.also_containers[0].known_good_image.as_deref(), Some("registrar:1.0"));
    assert_eq!(
        images(&w, "connector-canary"),
        [("connector".into(), "connector:2.0".into()), ("registrar".into(), "registrar:2.0".into())]
    );
    assert!(
        w.events.iter().any(|e| e.contains("container registrar: registrar:1.0 -> registrar:2.0")),
        "{:?}",
        w.events
    );
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(1), terminal);
    assert_eq!(w.phase(), Phase::RolledBack, "{}", w.obs.status.message);
    assert_eq!(set(&w, "connector:1.0").len(), 1, "reverted in one write");
    assert_eq!(
        images(&w, "connector-canary"),
        [("connector".into(), "connector:1.0".into()), ("registrar".into(), "registrar:1.0".into())]
    );
}

#[test]
fn another_container_the_template_lacks_or_changed_by_someone_else_is_caught() {
    let mut s = spec();
    s.stages[0].components[0].container = Some("connector".into());
    s.stages[0].components[0].also_containers =
        vec![ContainerImage { container: "registar".into(), image: "registrar:2.0".into() }];
    let mut w = World::new(s);
    w.target_mut("connector-canary").containers.push(("registrar".into(), "registrar:1.0".into()));
    // connector is claimed first; connector-canary then holds the upgrade.
    w.step();
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::CONTAINER_NOT_FOUND);
    assert!(
        b.message.contains("names registar, which its pod template does not have (connector, registrar)"),
        "{}",
        b.message
    );
    untouched(&w);
    // Mid-soak, someone sets the sidecar to an image of their own: the operator lets go of it.
    let mut w = with_sidecar();
    w.run_until(Duration::hours(1), |w| w.phase() == Phase::Soaking);
    w.target_mut("connector-canary").containers[1].1 = "registrar:9".into();
    w.step();
    let c = &w.obs.status.stages[0].components[0];
    assert_eq!(c.phase, ComponentPhase::Conflict);
    assert!(
        c.message.as_deref().unwrap().contains("container registrar runs registrar:9"),
        "{:?}",
        c.message
    );
}

#[test]
fn a_component_whose_own_container_does_not_change_is_held() {
    let mut w = with_sidecar();
    // Only the sidecar changes: the component's own container already runs its image.
    w.target_mut("connector-canary").containers[0].1 = "connector:2.0".into();
    // connector is claimed first; connector-canary then holds the upgrade.
    w.step();
    w.step();
    let b = w.condition(ct::BLOCKED);
    assert!(
        b.message.contains("runs connector:2.0 already: name a container whose image changes"),
        "{}",
        b.message
    );
    untouched(&w);
}

/// The record left names other containers than this upgrade changes (the deleted one also
/// changed a sidecar): each container it names is still compared.
#[test]
fn an_image_left_in_a_container_this_upgrade_does_not_change_is_still_caught() {
    let mut w = World::new(spec());
    let t = w.target_mut("connector-canary");
    t.containers.push(("sidecar".into(), "proxy:1.5".into()));
    t.owner = Some("ops/deleted".into());
    t.owner_uid = Some("uid-0".into());
    t.known_good = Some("connector=connector:1.0;sidecar=proxy:1.0".into());
    w.obs.spec.stages[0].components[0].container = Some("connector".into());
    for _ in 0..3 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    assert!(w.obs.status.claimed_at.is_none());
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::UNPROVEN_IMAGE);
    assert!(b.message.contains("container sidecar runs proxy:1.5"), "{}", b.message);
}

/// The API server takes any string as a container's image. One that holds the record's
/// separators (`;`, `=`) or a space is no reference a runtime can pull, and recorded as the
/// known-good it would come back as other containers' images: it is not claimed.
#[test]
fn a_live_image_that_is_no_reference_is_not_recorded_as_known_good() {
    for live in ["connector:1.0;sidecar=evil:1", "connector:1.0 x", "a=b", ""] {
        let mut w = World::new(spec());
        w.target_mut("connector").containers[0].1 = live.into();
        for _ in 0..5 {
            w.step();
            w.obs.now += Duration::seconds(30);
        }
        let b = w.condition(ct::BLOCKED);
        assert_eq!(b.reason, reason::IMAGE_NOT_A_REFERENCE, "{live:?}: {}", b.message);
        assert!(b.message.contains("not an image reference"), "{live:?}: {}", b.message);
        assert!(!w.claimed().contains(&"connector".to_string()), "{live:?}: not claimed: {:?}", w.claimed());
        assert!(w.image_sets().is_empty(), "{live:?}");
    }
}

/// The record a claim would take over from the target's own annotation (its own, before a
/// restart, or one left without a UID) is held to the same rule: `connector=a=b` parses as the
/// image `a=b`, which must not become the image a revert writes.
#[test]
fn a_known_good_record_that_is_no_reference_is_not_taken_over() {
    let mut w = World::new(spec());
    let t = w.target_mut("connector");
    t.owner = Some(ID.into());
    t.owner_uid = None;
    t.known_good = Some("connector=a=b".into());
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    let b = w.condition(ct::BLOCKED);
    assert_eq!(b.reason, reason::IMAGE_NOT_A_REFERENCE, "{}", b.message);
    assert!(
        b.message.contains(crate::constants::KNOWN_GOOD_ANNOTATION),
        "says which annotation: {}",
        b.message
    );
    assert!(!w.claimed().contains(&"connector".to_string()), "{:?}", w.claimed());
    assert!(w.image_sets().is_empty());
}

#[test]
fn flux_is_told_to_leave_every_container_the_upgrade_changes() {
    // Driver and sidecar bumped together: drift correction would put either back.
    let mut w = with_sidecar();
    w.target_mut("connector-canary").managed_by =
        Some(ManagedBy { tool: ManagerTool::FluxKustomization, name: "infra".into(), namespace: None });
    w.run_until(Duration::hours(1), |w| !w.image_sets().is_empty());
    let c = w.condition(ct::MANAGED_BY_GITOPS);
    assert!(
        c.message.contains(
            "paths: [\"/spec/template/spec/containers/0/image\", \"/spec/template/spec/containers/1/image\"]"
        ),
        "{}",
        c.message
    );
    let warned: Vec<_> = w.events.iter().filter(|e| e.starts_with(reason::MANAGED_BY_GITOPS)).collect();
    assert!(warned.len() == 1 && warned[0].contains("containers/1/image"), "{warned:?}");
}
