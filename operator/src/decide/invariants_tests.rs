//! Property tests of the decision core: over arbitrary sequences of what can happen between
//! two looks (status writes lost, a restart, someone else's edit or claim, a deleted target,
//! the window edited, time passing, a regression, the upgrade deleted), the decisions never:
//! - change a target this upgrade does not own (claiming aside);
//! - start a stage outside the window (reverts aside);
//! - change more than one target in one decision;
//! - forget a known-good image once recorded;
//! - write an image that is neither the known-good one nor the spec's;
//! - inside one DaemonSet, have more of its pods down at once than its maxUnavailable (1), or
//!   let it go, after a revert or a deletion, with rollout settings other than its own.

use super::test_world::*;
use crate::window::{Schedule, WindowState};
use proptest::prelude::*;

/// What happens before the next look.
#[derive(Clone, Debug)]
enum Event {
    /// The look, its effect carried out and its status written.
    Look,
    /// The look, its effect carried out, its status write lost (a 409, the process gone).
    LoseWrite,
    /// Another replica takes over from the status as written.
    Restart,
    /// Someone else sets target `0` or `1` to an image of their own.
    ExternalEdit(usize),
    /// Target `0` or `1` is deleted.
    DeleteTarget(usize),
    /// Another upgrade, still there, marks target `0` or `1` as its own.
    Steal(usize),
    /// The window is edited: none, Tuesday and Thursday nights, or one with a past deadline.
    Window(usize),
    /// Minutes pass without a look.
    Wait(i64),
    /// New pods start failing ten times as often.
    Regress,
    /// The MaintenanceUpgrade is deleted (its finalizer holds it until it has ended).
    DeleteUpgrade,
    /// Argo CD or Helm puts the DaemonSet's own rollout settings back mid-canary.
    SettingsBack,
    /// A node joins: the DaemonSet makes it a pod from its current template.
    NodeJoins,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        12 => Just(Event::Look),
        2 => Just(Event::LoseWrite),
        1 => Just(Event::Restart),
        1 => (0..2usize).prop_map(Event::ExternalEdit),
        1 => (0..2usize).prop_map(Event::DeleteTarget),
        1 => (0..2usize).prop_map(Event::Steal),
        1 => (0..3usize).prop_map(Event::Window),
        2 => (1..600i64).prop_map(Event::Wait),
        1 => Just(Event::Regress),
        1 => Just(Event::DeleteUpgrade),
        1 => Just(Event::SettingsBack),
        1 => Just(Event::NodeJoins),
    ]
}

const NAMES: [&str; 2] = ["connector-canary", "connector"];
const THEIRS: &str = "someone-else:6.6";

fn window(i: usize) -> Option<Window> {
    match i {
        0 => None,
        1 => Some(tue_thu_window()),
        _ => {
            let mut w = tue_thu_window();
            w.deadline = Some(t("2026-11-20T00:00:00Z"));
            Some(w)
        }
    }
}

/// What the checker remembers across looks.
#[derive(Default)]
struct Seen {
    /// The known-good image first recorded for each target, in any decision's status.
    known_good: BTreeMap<String, String>,
    /// The stages seen begun.
    started: BTreeSet<usize>,
}

/// One look, checked against the invariants; `lose` drops its status write.
fn checked_look(w: &mut World, seen: &mut Seen, lose: bool) -> Result<(), TestCaseError> {
    let before = w.obs.targets.clone();
    let (status, written) = (w.obs.status.clone(), w.written.clone());
    let spec = w.obs.spec.clone();
    let now = w.obs.now;
    // The decision the world takes and carries out (its targets' ownership as before it).
    let d = w.step();
    let owned = |k: &TargetKey| {
        before.get(k).cloned().flatten().is_some_and(|t| {
            t.owner.as_deref() == Some(ID) && t.owner_uid.as_deref() == Some(w.obs.uid.as_str())
        })
    };
    match &d.effect {
        Some(Effect::SetImage { target, image, more, .. }) => {
            prop_assert!(owned(target), "an image written to {target}, which it does not own");
            let desired = spec.stages.iter().flat_map(|s| &s.components).find(|c| c.name == target.name);
            let known = seen.known_good.get(&target.name);
            for image in std::iter::once(image).chain(more.iter().map(|(_, _, m)| m)) {
                let forward = desired.is_some_and(|c| c.image == *image);
                prop_assert!(
                    forward || known == Some(image),
                    "{target} set to {image}: neither the spec's nor its known-good {known:?}"
                );
            }
        }
        Some(Effect::SetStrategy { target, .. }) | Some(Effect::DeletePods { target, .. }) => {
            prop_assert!(owned(target), "{target} changed, which it does not own");
        }
        Some(Effect::Release { targets, .. }) => {
            for (k, _) in targets {
                prop_assert!(owned(k), "{k} released, which it does not own");
            }
        }
        // A claim marks a target; it changes no image.
        Some(Effect::Claim { .. }) | None => {}
    }
    // A stage starts only inside the window (a rollback aside): the first look that has it
    // begun, whatever status writes were lost on the way.
    for (si, stage) in d.status.stages.iter().enumerate() {
        if stage.phase != StagePhase::Pending && d.status.rollback.is_none() && seen.started.insert(si) {
            let open = Schedule::parse(spec.window.as_ref())
                .is_ok_and(|s| matches!(s.state_at(now), WindowState::Open { .. }));
            prop_assert!(open, "stage {si} started at {now}, outside the window");
        }
    }
    // Known-good images, once recorded, stay as they were first recorded.
    for c in d.status.stages.iter().flat_map(|s| &s.components) {
        let Some(k) = &c.known_good_image else { continue };
        let first = seen.known_good.entry(c.name.clone()).or_insert_with(|| k.clone());
        prop_assert_eq!(&*first, k, "the known-good image of {} changed", c.name);
    }
    // A canary's pods are replaced at the DaemonSet's own pace: one down at a time.
    if let Some(Some(t)) =
        w.obs.targets.get(&key("connector")).filter(|_| spec.stages[0].components[0].canary.is_some())
    {
        let down = t.pods.iter().flatten().filter(|p| !p.ready).count();
        prop_assert!(down <= 1, "{down} pods of the DaemonSet down at once: {:?}", t.pods);
    }
    if lose {
        w.obs.status = status;
        w.written = written;
    }
    w.obs.now += d.requeue_after.unwrap_or(Duration::minutes(1)).max(Duration::seconds(1));
    Ok(())
}

/// Two DaemonSets, a canary one and the fleet's; or one DaemonSet on six nodes, a canary on
/// two of them first, then a third, then the rest.
fn world(inside: bool) -> World {
    if !inside {
        let mut w = World::new(spec());
        w.obs.spec.stages[0].soak = Duration_("2h");
        return w;
    }
    let mut w = World::new(canary_spec(Portion::Count(2), Some(Portion::Count(3))));
    *w.obs.targets.get_mut(&key("connector")).unwrap() = Some(daemonset_on("connector:1.0", 6));
    w
}

fn run(inside: bool, events: Vec<Event>) -> Result<(), TestCaseError> {
    let mut w = world(inside);
    let mut seen = Seen::default();
    for e in events {
        match e {
            Event::Look => checked_look(&mut w, &mut seen, false)?,
            Event::LoseWrite => checked_look(&mut w, &mut seen, true)?,
            Event::Restart => w.fail_over(),
            Event::ExternalEdit(i) => {
                if let Some(Some(t)) = w.obs.targets.get_mut(&key(NAMES[i])) {
                    t.containers[0].1 = THEIRS.into();
                    bump(t);
                }
            }
            Event::DeleteTarget(i) => {
                w.obs.targets.insert(key(NAMES[i]), None);
            }
            Event::Steal(i) => {
                if let Some(Some(t)) = w.obs.targets.get_mut(&key(NAMES[i])) {
                    t.owner = Some("ops/other".into());
                    t.owner_uid = Some("uid-other".into());
                    bump(t);
                }
                w.obs.live_owners.insert(("ops/other".into(), "uid-other".into()));
            }
            Event::Window(i) => {
                w.obs.spec.window = window(i);
                w.obs.generation += 1;
            }
            Event::Wait(m) => w.obs.now += Duration::minutes(m),
            Event::Regress => w.error_rate = Box::new(|_| 0.1),
            Event::DeleteUpgrade => w.obs.deleting = true,
            Event::SettingsBack => {
                if let Some(Some(t)) = w.obs.targets.get_mut(&key("connector")) {
                    t.update_strategy = Some(ROLLING.into());
                    t.canary_settings_ours = false;
                    bump(t);
                }
            }
            Event::NodeJoins => {
                if let Some(Some(t)) = w.obs.targets.get_mut(&key("connector")) {
                    let image = t.containers[0].1.clone();
                    let pods = t.pods.get_or_insert_with(Vec::new);
                    let node = format!("node-{}", pods.len() + 1);
                    if !pods.iter().any(|p| p.node == node) {
                        pods.push(pod(&node, 0, &image, true));
                    }
                }
            }
        }
    }
    // Then left alone for 1,000 looks (a day or so): it ends or waits for a human, and each target is on its known-good image, on
    // the spec's, or on someone else's, never a third.
    for _ in 0..1000 {
        if terminal(&w) {
            break;
        }
        checked_look(&mut w, &mut seen, false)?;
    }
    // A deleted upgrade always ends, whatever it waited for, and one deleted before it succeeded
    // leaves each target it still held on its known-good image.
    prop_assert!(!w.obs.deleting || terminal(&w), "deleted, yet never ended: {}", w.obs.status.message);
    for (i, name) in NAMES.iter().enumerate() {
        let Some(Some(t)) = w.obs.targets.get(&key(name)) else { continue };
        let image = &t.containers[0].1;
        let known = seen.known_good.get(*name).map_or("connector:1.0", String::as_str);
        prop_assert!(
            [known, "connector:2.0", THEIRS].contains(&image.as_str()),
            "target {i} ends on {image}"
        );
        if w.obs.deleting && w.phase() != Phase::Succeeded && t.owner.is_none() && image != THEIRS {
            prop_assert_eq!(image, known, "target {} was left on the new image by a deleted upgrade", i);
        }
        // Inside one DaemonSet: reverted (or deleted) and let go of, on its known-good image, it
        // has its own rollout settings back, exactly.
        let reverted = w.phase() == Phase::RolledBack || (w.obs.deleting && w.phase() != Phase::Succeeded);
        if inside && *name == "connector" && terminal(&w) && reverted && t.owner.is_none() && image == known {
            prop_assert_eq!(
                t.update_strategy.as_deref(),
                Some(ROLLING),
                "released after a revert on other settings: {}",
                w.obs.status.message
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_faults_breaks_the_invariants(events in proptest::collection::vec(event(), 1..80)) {
        run(false, events)?;
    }

    #[test]
    fn nor_inside_one_daemonset(events in proptest::collection::vec(event(), 1..80)) {
        run(true, events)?;
    }
}
