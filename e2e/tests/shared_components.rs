//! The scenarios that stop a component every other scenario relies on: Prometheus (whose
//! scheduler metrics also count the other scenarios' pods) and the API server. They run one at a
//! time, after the concurrent ones (`make e2e`).

use e2e::*;
use maintenance_operator::constants::condition;
use maintenance_operator::crd::{Phase, StagePhase};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_prometheus_outage_is_inconclusive_and_the_builtin_signal_needs_no_prometheus() {
    let s = incident_world("prometheus-outage").await;
    tokio::time::sleep(SECS(30)).await; // history for the Prometheus baseline
    s.apply(&prometheus_upgrade("prom", "connector-canary", &s.env.prometheus_url)).await;
    let mu = s.wait_phase("prom", Phase::Soaking, SECS(90)).await;
    let baseline = mu.status.unwrap().analysis[0].baseline.clone().expect("baseline from Prometheus history");
    assert!(baseline.attempts > 0, "{baseline:?}");
    s.prometheus(false).unwrap();
    // The built-in signal goes ahead with Prometheus down.
    let builtin = two_stage(&s.ns, "builtin", "5s", "registry.example.com/secrets-store/connector:v1.3.3")
        .replace("    - name: canary\n      components: [{kind: DaemonSet, name: connector-canary, image: \"registry.example.com/secrets-store/connector:v1.3.3\"}]\n      soak: 5s\n      progressDeadline: 60s\n", "");
    s.apply(&builtin).await;
    // The Prometheus signal: inconclusive, and the soak is not ended on it.
    let mu = s
        .wait_for("prom", SECS(90), "inconclusive past the soak", |mu| {
            mu.status.as_ref().is_some_and(|st| {
                st.phase == Phase::Soaking
                    && st.stages[0]
                        .soak_ends_at
                        .is_some_and(|e| chrono::Utc::now() > e + chrono::Duration::seconds(8))
                    && st.message.contains("no conclusive verdict")
            })
        })
        .await;
    let healthy = condition_of(&mu, condition::HEALTHY);
    assert_eq!(healthy.status, "Unknown");
    assert!(healthy.message.contains("could not read the signal"), "{}", healthy.message);
    assert!(mu.status.as_ref().unwrap().rollback.is_none(), "never reverts on missing data");
    s.wait_phase("builtin", Phase::Succeeded, SECS(120)).await;
    // Prometheus is back: the analysis resumes and the upgrade is promoted.
    s.prometheus(true).unwrap();
    s.wait_phase("prom", Phase::Succeeded, SECS(90)).await;
    assert_eq!(s.image("connector-canary").await, "registry.example.com/secrets-store/connector:v1.3.3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_api_server_restart_mid_soak_loses_and_repeats_nothing() {
    let s = incident_world("apiserver-restart").await;
    let next = "registry.example.com/secrets-store/connector:v1.3.3";
    let (g_canary, g_fleet) = (s.generation("connector-canary").await, s.generation("connector").await);
    // The control plane's own recovery (the scheduler re-listing after the outage) takes real
    // seconds that cannot be compressed, so the pending limit keeps a realistic margin over it
    // here, as the 5 minute default does in a real cluster.
    let yaml = two_stage(&s.ns, "up", "25s", next).replace("pendingLimit: 3s", "pendingLimit: 20s");
    s.apply(&yaml).await;
    s.wait_for("up", SECS(60), "soaking canary", |mu| {
        mu.status.as_ref().is_some_and(|st| st.stages[0].phase == StagePhase::Soaking)
    })
    .await;
    let env = s.env.clone();
    let ns = s.ns.clone();
    tokio::task::spawn_blocking(move || {
        let probe = Scenario::restart_apiserver_in(&env, SECS(20), SECS(120));
        (probe, ns)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    let mu = s.wait_phase("up", Phase::Succeeded, SECS(180)).await;
    assert_eq!(s.image("connector").await, next);
    assert_eq!(s.generation("connector-canary").await, g_canary + 1, "nothing repeated");
    assert_eq!(s.generation("connector").await, g_fleet + 1);
    assert!(mu.status.unwrap().stages.iter().all(|s| s.phase == StagePhase::Passed));
}
