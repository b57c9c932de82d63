//! `make demo`: the incident, replayed on the local control plane. A secret-store connector, one
//! DaemonSet with a registrar sidecar as its chart ships it, is upgraded with a canary on two of
//! its nodes first; on the nodes that run it, the new version makes a slowly growing share of new
//! pods fail to mount their secrets, so they never start; the operator compares the soak with
//! the pre-change baseline, detects the creep and reverts the canary's pods to the known-good
//! image, leaving the other nodes' pods untouched. Printed as a timeline; it fails unless the
//! pods made again are exactly the canary's. Time is compressed (2 s intervals and buckets); `make replay-incident` gives the
//! same detector's answer in real time.

use e2e::*;
use maintenance_operator::crd::{MaintenanceUpgrade, Phase, RegressionRule};
use maintenance_operator::replay;
use maintenance_operator::timeline;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const UPGRADE: &str = r#"
apiVersion: maintenance.dev/v1alpha1
kind: MaintenanceUpgrade
metadata: {name: secret-store-connector-1-4}
spec:
  stages:
    - name: canary
      components:
        - {kind: DaemonSet, name: connector, image: "registry.example.com/secrets-store/connector:v1.4.0",
           canary: {nodes: 2}}
      soak: 90s
      progressDeadline: 60s
    - name: fleet
      components: [{kind: DaemonSet, name: connector, image: "registry.example.com/secrets-store/connector:v1.4.0"}]
      soak: 48s
      progressDeadline: 60s
  analysis:
    interval: 2s
    baseline: {observe: 30s}
    signals:
      - name: pod-start-failures
        kubernetes: {namespaces: [e2e-demo], labelSelector: app=email-sync, pendingLimit: 3s}
        regression: {bucket: 2s}   # the 10 minute default, compressed like everything else
"#;

/// Returns (rather than exits) so that the scenario is dropped: its operator process and
/// namespace are cleaned up.
#[tokio::main]
async fn main() -> ExitCode {
    println!("maintenance-operator demo: the secret-store connector incident, time compressed\n");
    println!(
        "  * {} fake nodes, email-sync pods every 50 ms, 2% of them unschedulable as background noise",
        ZONES
    );
    println!("  * one connector DaemonSet, {GOOD} beside a registrar sidecar, on every node;");
    println!("    {BAD} slowly breaks secret mounts on the nodes that run it (a growing");
    println!("    share of the new pods there, all of them after 30 s, never start)");
    println!("  * upgrade: a canary on 2 of its {ZONES} nodes, 90 s soak, then every node, 48 s soak;");
    println!("    automatic rollback");
    println!("  * analysis every 2 s; the CUSUM steps every 2 s (10 minutes in a real cluster)\n");
    let mut s = Scenario::new("demo").await;
    s.node_agent("connector", GOOD).await;
    let before = s.pods_by_node("connector").await;
    s.workload(Duration::from_millis(50), Duration::from_secs(20));
    s.growing_mount_faults("connector", Duration::from_secs(30), 1.0);
    s.apply(UPGRADE).await;
    let t0 = Instant::now();
    let name = "secret-store-connector-1-4";
    println!("{:>6}  {}", "time", timeline::header());
    let mut last_line = String::new();
    let mut seen_events = 0;
    let mut last_print = Instant::now();
    loop {
        let Ok(mu) = s.upgrades().get(name).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let line = timeline::row(mu.status.as_ref(), 90);
        if line != last_line || last_print.elapsed() > Duration::from_secs(4) {
            println!("{:>5}s  {line}", t0.elapsed().as_secs());
            last_line = line;
            last_print = Instant::now();
        }
        let events = s.events(name).await;
        for e in events.iter().skip(seen_events) {
            println!("        event  {e}");
        }
        seen_events = events.len();
        let phase = mu.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if phase.is_terminal() {
            let only_the_canary = summary(&s, &mu, t0, &before).await;
            return if phase == Phase::RolledBack && only_the_canary {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        if t0.elapsed() > Duration::from_secs(400) {
            eprintln!("the demo did not finish in time");
            return ExitCode::FAILURE;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// The same detector on the incident's own trace (what `make replay-incident` prints), so the
/// line never goes stale when the detector changes.
fn incident_replayed() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/incident-2022-10-18.csv");
    let change = chrono::DateTime::parse_from_rfc3339("2022-10-19T02:56:00Z").unwrap().to_utc();
    let outcome = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|text| replay::parse_trace(&text))
        .and_then(|rows| replay::replay(&rows, change, &RegressionRule::default()));
    match outcome {
        Ok(o) => match o.hours_after_change {
            Some(h) => format!(
                "replaying the incident's own trace (`make replay-incident`), the same detector rolls back\n           {h:.1} h after the change; in 2022 the rollback came by hand 34.5 h after it"
            ),
            None => "replaying the incident's own trace, the same detector does not roll back".into(),
        },
        Err(e) => format!("the incident's trace could not be replayed: {e}"),
    }
}

/// Prints what happened; whether the pods made again are exactly the canary's.
async fn summary(
    s: &Scenario,
    mu: &MaintenanceUpgrade,
    t0: Instant,
    before: &std::collections::BTreeMap<String, (String, String)>,
) -> bool {
    let st = mu.status.clone().unwrap_or_default();
    println!("\n==== {:?} after {} s ====", st.phase, t0.elapsed().as_secs());
    if let Some(r) = &st.rollback {
        let changed = st.changed_at.unwrap_or(r.started_at);
        println!("why:       {}", r.message);
        println!(
            "detected:  {} s after the first image change, in compressed time",
            (r.started_at - changed).num_seconds()
        );
        println!("real time: {}", incident_replayed());
    }
    let c = &st.stages[0].components[0];
    println!(
        "target:    {} now runs {} (known-good {})",
        c.name,
        s.image(&c.name).await,
        c.known_good_image.clone().unwrap_or_default()
    );
    s.wait_rolled_out("connector", Duration::from_secs(60)).await;
    let after = s.pods_by_node("connector").await;
    let remade: Vec<&str> = after
        .iter()
        .filter(|(node, (uid, _))| before.get(*node).is_none_or(|b| b.0 != **uid))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut canary: Vec<&str> = c.canary.iter().flat_map(|k| &k.nodes).map(String::as_str).collect();
    canary.sort();
    let only_the_canary = !remade.is_empty() && remade == canary;
    if only_the_canary {
        println!(
            "pods:      made again on {}, the canary's nodes; the other {} nodes' pods never changed",
            remade.join(", "),
            after.len() - remade.len()
        );
    } else {
        println!(
            "pods:      made again on [{}], but the canary took [{}]",
            remade.join(", "),
            canary.join(", ")
        );
    }
    println!(
        "\nkubectl get maintenanceupgrade -n {} -o yaml shows the full status; `kubectl describe` the Events.",
        s.ns
    );
    only_the_canary
}
