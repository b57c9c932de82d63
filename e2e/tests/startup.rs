//! Runs first, alone, because it removes the CRD: an operator started before its CRD exists says
//! so once and waits quietly; once the CRD is installed it starts; SIGTERM stops it in either state.
//! (`e2e/tests/scenarios.rs` stops one mid-soak.)

use e2e::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough to tell a hang from a slow exit; the time taken is printed, not asserted.
const STOP_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s00_started_before_its_crd_it_waits_quietly_and_sigterm_stops_it() {
    let env = Arc::new(Env::from_env().unwrap());
    env.prepare_operator().unwrap();
    env.kubectl(&["delete", "crd", CRD, "--ignore-not-found", "--wait=true"]).unwrap();
    let ns = "e2e-startup";
    let _ = env.kubectl(&["create", "namespace", ns]);
    let mut op = Operator::start(env.clone(), "startup", ns).unwrap();
    // Three retries' worth: the missing CRD is said once, then nothing more.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let log = op.log();
    let said: Vec<&str> = log.lines().filter(|l| l.contains(CRD)).collect();
    assert_eq!(said.len(), 1, "the missing CRD is said once:\n{log}");
    assert!(said[0].contains("kubectl apply --server-side -f crds/maintenanceupgrades.yaml"), "{}", said[0]);
    assert!(!log.contains("404 page not found"), "no raw 404s:\n{log}");
    assert!(log.lines().count() <= 2, "quiet while it waits (a start line and that one):\n{log}");
    let (code, why) = op.probe("/readyz").await;
    assert_eq!(code, 503, "not ready without its CRD: {why}");
    assert!(why.contains("the MaintenanceUpgrade CRD to be installed"), "{why}");
    assert_eq!(op.probe("/healthz").await.0, 200, "alive all the same: a restart would not help");
    let stopped = op.terminate(STOP_LIMIT).expect("SIGTERM stops an operator waiting for its CRD");
    eprintln!("s00: waiting for its CRD, the operator exited {stopped:?} after SIGTERM");

    // Started again, it goes ahead as soon as the CRD is installed.
    op.restart().unwrap();
    wait_for_log(&op, "saying the CRD is missing again", |log| log.matches(CRD).count() == 2).await;
    env.install_crd().unwrap();
    wait_for_log(&op, "starting once the CRD is installed", |log| {
        log.contains(&format!("{CRD} is installed; starting"))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = op.probe("/readyz").await;
        if code == 200 {
            assert!(body.starts_with("ok: "), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready once its CRD is there: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stopped = op.terminate(STOP_LIMIT).expect("SIGTERM stops a running operator");
    eprintln!("s00: running, the operator exited {stopped:?} after SIGTERM");
    assert!(op.log().contains("SIGTERM: stopping"), "{}", op.log());
    let _ = env.kubectl(&["delete", "namespace", ns, "--wait=false"]);
}

async fn wait_for_log(op: &Operator, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&op.log()) {
        assert!(Instant::now() < deadline, "the operator is not {what}:\n{}", op.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
