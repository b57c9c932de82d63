//! `pause`, `resume`, `approve STAGE`, `rollback`: each is one merge patch of the upgrade's spec,
//! checked first against what the upgrade shows, so that an impossible request changes nothing
//! and says why, and a request already so changes nothing and is done (a retried pipeline step
//! passes). The plan is pure; `run` reads, patches and prints.

use crate::{Target, exit};
use kube::api::{Api, Patch, PatchParams};
use maintenance_operator::crd::{MaintenanceUpgrade, Phase};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Pause,
    Resume,
    Approve(String),
    Rollback,
}

/// What a request comes to on the upgrade as read.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// This patch, and what it changes, in words.
    Patch(Value, String),
    /// What the request asks already holds: nothing to change, and done.
    AlreadySo(String),
}

/// What carries out `req` on `mu`; or why it cannot be.
pub fn plan(mu: &MaintenanceUpgrade, req: &Request) -> Result<Plan, String> {
    let phase = mu.status.as_ref().map(|s| s.phase).unwrap_or_default();
    if let Request::Approve(stage) = req {
        approvable(mu, stage)?;
    }
    // A retried step may find the upgrade ended by what its first try asked: a rollback that
    // ended rolled back (or failed), a stage approved before the upgrade succeeded.
    let ended = if phase.is_terminal() { format!(" (it has ended: {phase:?})") } else { String::new() };
    match req {
        Request::Rollback if mu.spec.rollback.requested && phase != Phase::Succeeded => {
            return Ok(Plan::AlreadySo(format!("a rollback is already requested{ended}")));
        }
        Request::Approve(stage) if mu.spec.approved_stages.contains(stage) => {
            return Ok(Plan::AlreadySo(format!("stage {stage} is already approved{ended}")));
        }
        _ => {}
    }
    if phase.is_terminal() {
        return Err(format!("it has ended ({phase:?}); nothing is left to {}", verb(req)));
    }
    let spec = &mu.spec;
    // The version it was read at: a change made meanwhile by someone else is refused, not lost.
    let rv = mu.metadata.resource_version.clone();
    let patch = |spec_patch: Value| json!({"metadata": {"resourceVersion": rv}, "spec": spec_patch});
    match req {
        Request::Pause if spec.paused => Ok(Plan::AlreadySo("it is already paused".into())),
        Request::Pause => Ok(Plan::Patch(
            patch(json!({"paused": true})),
            "spec.paused: false -> true. No new stage starts and nothing is promoted; analysis and \
             automatic rollback go on. `kubectl maintenance resume` undoes it."
                .into(),
        )),
        Request::Resume if !spec.paused => Ok(Plan::AlreadySo("it is not paused".into())),
        Request::Resume => Ok(Plan::Patch(
            patch(json!({"paused": false})),
            "spec.paused: true -> false. The upgrade goes on where it stopped.".into(),
        )),
        Request::Approve(stage) => {
            let mut approved = spec.approved_stages.clone();
            approved.push(stage.clone());
            Ok(Plan::Patch(
                patch(json!({"approvedStages": approved})),
                format!(
                    "spec.approvedStages: [{}] -> [{}]. Stage {stage} starts once the stages before it passed their soak.",
                    spec.approved_stages.join(", "),
                    approved.join(", ")
                ),
            ))
        }
        Request::Rollback => Ok(Plan::Patch(
            patch(json!({"rollback": {"requested": true}})),
            "spec.rollback.requested: false -> true. Every changed component goes back to its known-good \
             image, last stage first, even outside the window."
                .into(),
        )),
    }
}

/// Why `stage` cannot be approved, whatever `approvedStages` holds: it does not exist, or needs
/// no approval.
fn approvable(mu: &MaintenanceUpgrade, stage: &str) -> Result<(), String> {
    let stages = &mu.spec.stages;
    let Some(s) = stages.iter().find(|s| s.name == stage) else {
        let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        return Err(format!("it has no stage {stage:?} (stages: {})", names.join(", ")));
    };
    if !s.require_approval {
        return Err(format!(
            "stage {stage} needs no approval: it starts on its own once the one before it passes"
        ));
    }
    Ok(())
}

fn verb(req: &Request) -> &'static str {
    match req {
        Request::Pause => "pause",
        Request::Resume => "resume",
        Request::Approve(_) => "approve",
        Request::Rollback => "roll back",
    }
}

/// The field manager of every change the plugin makes.
const FIELD_MANAGER: &str = "kubectl-maintenance";

/// How often a patch refused because the upgrade changed meanwhile (the operator writes its
/// status often) is planned again from a fresh read.
const ATTEMPTS: usize = 5;

pub async fn run(t: &Target, name: &str, req: Request) -> anyhow::Result<u8> {
    let api: Api<MaintenanceUpgrade> = Api::namespaced(t.client.clone(), &t.namespace);
    let id = format!("{}/{name}", t.namespace);
    for attempt in 1..=ATTEMPTS {
        let Some(mu) = api.get_opt(name).await? else {
            eprintln!("maintenanceupgrade {id} not found (kubectl maintenance list -n {})", t.namespace);
            return Ok(exit::REFUSED);
        };
        let (patch, what) = match plan(&mu, &req) {
            Ok(Plan::Patch(patch, what)) => (patch, what),
            Ok(Plan::AlreadySo(what)) => {
                let what = crate::terminal::safe(&what, false);
                println!("maintenanceupgrade {id}: {what}; nothing was changed");
                return Ok(exit::OK);
            }
            Err(why) => {
                let why = crate::terminal::safe(&why, false);
                eprintln!("cannot {} maintenanceupgrade {id}: {why}; nothing was changed", verb(&req));
                return Ok(exit::REFUSED);
            }
        };
        // Named, so that managedFields and an audit log tell the plugin's changes from others'.
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {
                println!("maintenanceupgrade {id}: {}", crate::terminal::safe(&what, false));
                return Ok(exit::OK);
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(phase: Phase) -> MaintenanceUpgrade {
        let mut mu: MaintenanceUpgrade = serde_yaml::from_str(
            r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {name: up, namespace: ops, resourceVersion: "7"}
spec:
  stages:
    - {name: canary, components: [{kind: DaemonSet, name: c, image: "c:2"}], soak: 1h}
    - {name: fleet, requireApproval: true, components: [{kind: DaemonSet, name: f, image: "c:2"}], soak: 1h}
"#,
        )
        .unwrap();
        mu.status = Some(Default::default());
        mu.status.as_mut().unwrap().phase = phase;
        mu
    }

    fn patch(p: Result<Plan, String>) -> (Value, String) {
        match p {
            Ok(Plan::Patch(p, said)) => (p, said),
            other => panic!("a patch, not {other:?}"),
        }
    }

    #[test]
    fn each_request_is_one_patch_of_the_spec_at_the_version_read() {
        let mu = upgrade(Phase::Soaking);
        let (p, said) = patch(plan(&mu, &Request::Pause));
        assert_eq!(p, json!({"metadata": {"resourceVersion": "7"}, "spec": {"paused": true}}));
        assert!(said.starts_with("spec.paused: false -> true"), "{said}");
        let (p, _) = patch(plan(&mu, &Request::Approve("fleet".into())));
        assert_eq!(p["spec"], json!({"approvedStages": ["fleet"]}));
        let (p, _) = patch(plan(&mu, &Request::Rollback));
        assert_eq!(p["spec"], json!({"rollback": {"requested": true}}));
    }

    #[test]
    fn an_impossible_request_says_why() {
        let mu = upgrade(Phase::Soaking);
        let err = |mu: &MaintenanceUpgrade, r: Request| plan(mu, &r).unwrap_err();
        assert!(err(&mu, Request::Approve("canary".into())).contains("stage canary needs no approval"));
        assert!(
            err(&mu, Request::Approve("nope".into())).contains("no stage \"nope\" (stages: canary, fleet)")
        );
        let ended = upgrade(Phase::Succeeded);
        assert_eq!(err(&ended, Request::Resume), "it has ended (Succeeded); nothing is left to resume");
        assert_eq!(err(&ended, Request::Pause), "it has ended (Succeeded); nothing is left to pause");
    }

    #[test]
    fn a_request_already_so_changes_nothing_and_is_done() {
        let already = |mu: &MaintenanceUpgrade, r: Request| plan(mu, &r).unwrap();
        let mut mu = upgrade(Phase::Paused);
        assert_eq!(already(&mu, Request::Resume), Plan::AlreadySo("it is not paused".into()));
        mu.spec.paused = true;
        mu.spec.approved_stages = vec!["fleet".into()];
        mu.spec.rollback.requested = true;
        assert_eq!(already(&mu, Request::Pause), Plan::AlreadySo("it is already paused".into()));
        assert_eq!(
            already(&mu, Request::Approve("fleet".into())),
            Plan::AlreadySo("stage fleet is already approved".into())
        );
        assert_eq!(
            already(&mu, Request::Rollback),
            Plan::AlreadySo("a rollback is already requested".into())
        );
        // Retried after the first try ended it: the rollback ended, the approved stage passed.
        mu.status.as_mut().unwrap().phase = Phase::RolledBack;
        assert_eq!(
            already(&mu, Request::Rollback),
            Plan::AlreadySo("a rollback is already requested (it has ended: RolledBack)".into())
        );
        mu.status.as_mut().unwrap().phase = Phase::Succeeded;
        assert!(matches!(already(&mu, Request::Approve("fleet".into())), Plan::AlreadySo(_)));
        // A name approvedStages holds by hand is still checked against the stages.
        mu.spec.approved_stages.push("flet".into());
        assert!(
            plan(&mu, &Request::Approve("flet".into())).unwrap_err().contains("it has no stage \"flet\"")
        );
        // A rollback asked of an upgrade that succeeded did not happen: not already so.
        assert!(plan(&mu, &Request::Rollback).unwrap_err().starts_with("it has ended (Succeeded)"));
    }
}
