//! The robustness run: upgrades through a compressed maintenance window on the real control
//! plane, some healthy, some regressing, some deleted mid-soak, under two operator replicas,
//! while a seeded fault schedule (`schedule`) kills and stops them, restarts the API server,
//! compacts etcd and refuses renewals and final status writes. The API server's audit log, the
//! upgrades' ends, the targets and a webhook receiver are then checked (`check`).
//! `make robustness` runs it over many seeds; `make test` runs one short run (s31).

pub mod check;
pub mod schedule;

use crate::proxy::{Mode, Proxy};
use crate::{Env, GOOD, Operator, Receiver, Scenario, eventually, two_stage, webhook_access};
use check::{Class, Lane};
use chrono::{DateTime, Datelike, Timelike, Utc};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::ResourceExt;
use maintenance_operator::crd::Phase;
use schedule::{Fault, Planned};
use std::time::{Duration, Instant};

/// The image a healthy or deleted upgrade sets; a regressing one sets `crate::BAD`.
const NEXT: &str = "registry.example.com/secrets-store/connector:v1.3.3";

/// Each upgrade is a canary on 2 of its DaemonSet's nodes, soaked this long, then the rest: the
/// faults fall on canaries too (their strategy, their pods made again, the hand-over).
const CANARY_SOAK: &str = "20s";

/// One run: its seed, how many faults its schedule holds, and how many upgrades of each class.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub seed: u64,
    pub faults: usize,
    pub per_class: usize,
}

/// What a run injected and what the checker found.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    /// The faults injected, in order (a deletion mid-soak counts as one).
    pub injected: Vec<String>,
    pub violations: Vec<String>,
    pub took: Duration,
}

struct Plan {
    lane: Lane,
    soaking_since: Option<Instant>,
    delete_after: Duration,
    deleted: bool,
}

/// Run once against the cluster in the environment. Panics only when the world cannot be set
/// up; whatever the operator does wrong is a violation in the report.
pub async fn run(cfg: Config) -> Report {
    let (started, started_at) = (Instant::now(), Utc::now());
    let name = format!("rb{}", cfg.seed);
    let mut s = Scenario::new(&name).await;
    let env = s.env.clone();
    // A policy left by a run that was killed (its guard never dropped) would refuse from the start.
    for kind in ["validatingadmissionpolicybinding", "validatingadmissionpolicy"] {
        for fault in ["renewals", "final"] {
            let name = format!("e2e-refuse-{fault}-{}", s.ns);
            let _ = env.kubectl(&["delete", kind, &name, "--ignore-not-found"]);
        }
    }
    // Each replica reaches the API server through a proxy of its own.
    let upstream = crate::proxy::upstream(&env.operator_kubeconfig).expect("the operator's kubeconfig");
    let proxies = [Proxy::start(upstream.clone()).await, Proxy::start(upstream).await];
    s.operator.through_port = Some(proxies[0].port);
    s.operator.restart().expect("the first replica starts again, through its proxy");
    eventually("the first replica leads", Duration::from_secs(30), || async {
        s.lease_holder().await.as_deref() == Some(name.as_str())
    })
    .await;
    let mut second =
        Operator::start(env.clone(), &format!("{name}-b"), &s.ns).expect("a second replica starts");
    second.through_port = Some(proxies[1].port);
    second.restart().expect("the second replica starts again, through its proxy");
    let instances = [s.operator.instance.clone(), second.instance.clone()];
    let mut receiver = Receiver::down();
    receiver.start().await;
    let access = env.logs.join(format!("{name}-access.yaml"));
    std::fs::write(&access, webhook_access(&s.ns, receiver.port)).unwrap();
    env.kubectl(&["apply", "-f", access.to_str().unwrap()]).expect("the webhook's Secret and Role");
    // A workload no upgrade names, beside the lanes' targets: never written.
    s.connector("decoy", GOOD, false).await;

    let classes: Vec<Class> = [Class::Healthy, Class::Regressing, Class::Deleted]
        .into_iter()
        .flat_map(|c| std::iter::repeat_n(c, cfg.per_class))
        .collect();
    for (i, class) in classes.iter().enumerate() {
        let (target, app) = (format!("agent-{i}"), format!("sync-{i}"));
        s.connector(&target, GOOD, false).await;
        s.workload_of(&app, Duration::from_millis(400), Duration::from_secs(20));
        if *class == Class::Regressing {
            s.mount_faults_of(&target, &app, 2);
        }
    }
    // The window opens at the next whole minute at least 45 s away (the 30 s baseline is
    // measured before it opens) and stays open 6 minutes.
    let open = {
        let t = Utc::now() + chrono::Duration::seconds(105);
        t.with_second(0).unwrap().with_nanosecond(0).unwrap()
    };
    let window = format!(
        "  window:\n    timeZone: UTC\n    recurring: [{{days: [{}], start: \"{:02}:{:02}\", duration: 6m}}]\n  stages:\n",
        open.weekday(),
        open.hour(),
        open.minute()
    );
    // The healthy soak and the deletions stretch with the schedule, so that its faults fall
    // while upgrades are still in flight (about 9 s apart, from 40 s before the window opens).
    let healthy_soak = Duration::from_secs(40 + 5 * cfg.faults as u64);
    let mut delete_after =
        schedule::delays(cfg.seed, classes.len(), Duration::from_secs(15 + 3 * cfg.faults as u64));
    let mut plans = vec![];
    for (i, class) in classes.into_iter().enumerate() {
        let (target, app, upgrade) = (format!("agent-{i}"), format!("sync-{i}"), format!("up-{i}"));
        let desired = if class == Class::Regressing { crate::BAD } else { NEXT };
        let soak =
            if class == Class::Healthy { format!("{}s", healthy_soak.as_secs()) } else { "30m".into() };
        let yaml = two_stage(&s.ns, &upgrade, &soak, desired)
            .replacen(&format!("soak: {soak}\n"), &format!("soak: {CANARY_SOAK}\n"), 1)
            .replace("name: connector,", &format!("name: {target},"))
            .replace("labelSelector: app=email-sync", &format!("labelSelector: app={app}"))
            // A pod pending past 3 s counts as failed in the scenarios; here the API server is
            // killed every minute or so, and the scheduler takes seconds to catch up after each:
            // those pods are an outage of the control plane, not of the lane's image, and at 3 s
            // they made half the baseline (seed 11), hiding the regression to come.
            .replace("pendingLimit: 3s", "pendingLimit: 20s")
            .replacen("  stages:\n", &window, 1)
            + "  notifications:\n    webhooks:\n      - {name: oncall, urlSecretRef: {name: webhook}}\n";
        let strategy_before = s.strategy(&target).await;
        let mu = s.apply(&yaml).await;
        plans.push(Plan {
            lane: Lane {
                owner: format!("{}/{upgrade}", s.ns),
                class,
                target,
                known_good: GOOD.into(),
                desired: desired.into(),
                created_at: mu
                    .creation_timestamp()
                    .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
                    .unwrap_or_else(Utc::now),
                phase: None,
                image: String::new(),
                marks: vec![],
                strategy_before,
                strategy: serde_json::Value::Null,
            },
            soaking_since: None,
            delete_after: delete_after.remove(0),
            deleted: false,
        });
    }

    // The faults run from 40 s before the window opens until every upgrade has ended.
    let t0 = Instant::now();
    let until_open = (open - Utc::now()).to_std().unwrap_or_default();
    let faults = schedule::schedule(
        cfg.seed,
        cfg.faults,
        until_open.saturating_sub(Duration::from_secs(40)),
        Duration::from_secs(9),
    );
    let mut injected: Vec<String> = vec![];
    let mut disrupted: Vec<(DateTime<Utc>, DateTime<Utc>)> = vec![];
    let deadline = Instant::now() + until_open + healthy_soak + Duration::from_secs(300);
    let mut next = 0;
    loop {
        let ended = observe(&s, &mut plans, &mut injected).await;
        if ended || Instant::now() > deadline {
            break;
        }
        if let Some(p) = faults.get(next).filter(|p| t0.elapsed() >= p.at) {
            next += 1;
            let from = Utc::now();
            let (said, leaders_writes) = inject(&mut s, &mut second, &proxies, p).await;
            if leaders_writes {
                disrupted.push((from, Utc::now() + chrono::Duration::seconds(2)));
            }
            eprintln!("robustness seed {}: {:>5.1}s {said}", cfg.seed, t0.elapsed().as_secs_f64());
            injected.push(said);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Both replicas running again, for the checks' last reads and for what is still to end.
    for op in [&mut s.operator, &mut second] {
        if op.pid().is_none() {
            op.restart().expect("the replica starts again");
        }
    }
    // What had not ended by the deadline gets two more minutes, then is reported by its end.
    if Instant::now() > deadline {
        let settle = Instant::now() + Duration::from_secs(120);
        while !observe(&s, &mut plans, &mut injected).await && Instant::now() < settle {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    let mut violations = vec![];
    // A release goes out right after the final status write: give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for p in plans.iter_mut() {
        let ds: DaemonSet = s.daemonsets().get(&p.lane.target).await.expect("the target is there");
        p.lane.strategy = crate::strategy_of(&ds);
        p.lane.image = ds
            .spec
            .and_then(|sp| sp.template.spec)
            .and_then(|sp| sp.containers.into_iter().find(|c| c.name == "connector"))
            .and_then(|c| c.image)
            .unwrap_or_default();
        p.lane.marks = ds
            .metadata
            .labels
            .iter()
            .flatten()
            .chain(ds.metadata.annotations.iter().flatten())
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with("maintenance.dev/"))
            .collect();
    }
    let lanes: Vec<Lane> = plans.iter().map(|p| p.lane.clone()).collect();
    violations.extend(check::ends(&lanes));
    let writes: Vec<crate::audit::Write> = env
        .operator_writes()
        .expect("the API server's audit log is readable")
        .into_iter()
        // This run's: a run of the same seed before it (on the same cluster) used the same names.
        .filter(|w| instances.contains(&w.instance) && w.at >= started_at)
        .collect();
    if !writes.iter().any(|w| w.resource == "maintenanceupgrades/status") {
        violations
            .push("the audit log holds no status write of the run's replicas: nothing was checked".into());
    }
    violations.extend(check::terms(&writes));
    violations.extend(check::pod_deletes(&writes, &s.ns, &lanes));
    violations.extend(check::target_writes(
        &writes,
        &s.ns,
        &lanes,
        (open, open + chrono::Duration::minutes(6)),
    ));
    let decoy = s.daemonsets().get("decoy").await.expect("the decoy is there");
    if decoy.metadata.generation != Some(1)
        || decoy.annotations().keys().any(|k| k.starts_with("maintenance.dev/"))
    {
        violations.push(format!(
            "the decoy was changed: generation {:?}, {:?}",
            decoy.metadata.generation,
            decoy.annotations()
        ));
    }
    let got: Vec<(String, DateTime<Utc>)> = receiver
        .got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, body, at)| {
            Some((format!("{}/{}", body["upgrade"].as_str()?, body["id"].as_str()?), *at))
        })
        .collect();
    violations.extend(check::deliveries(&got, &disrupted));
    for l in lanes.iter().filter(|l| l.class != Class::Deleted) {
        let upgrade = l.owner.rsplit('/').next().unwrap_or_default();
        if !got.iter().any(|(id, _)| id.starts_with(&format!("{upgrade}/"))) {
            violations.push(format!("{} ({:?}): no notification was delivered", l.owner, l.class));
        }
    }
    if !violations.is_empty() {
        s.dump();
        eprintln!("{}", second.log());
    }
    s.stop_background().await;
    Report { seed: cfg.seed, injected, violations, took: started.elapsed() }
}

fn ended(p: &Plan) -> bool {
    match p.lane.class {
        Class::Deleted => p.deleted && p.lane.phase.is_none(),
        _ => {
            p.lane.phase.is_some_and(|ph| matches!(ph, Phase::Succeeded | Phase::RolledBack | Phase::Failed))
        }
    }
}

/// Read each upgrade's phase; delete a Deleted-class one once it has soaked its seeded while.
/// True when every upgrade has ended.
async fn observe(s: &Scenario, plans: &mut [Plan], injected: &mut Vec<String>) -> bool {
    for p in plans.iter_mut() {
        let name = p.lane.owner.rsplit('/').next().unwrap().to_string();
        let Ok(mu) = s.upgrades().get_opt(&name).await else { continue }; // the API server is down
        p.lane.phase = mu.as_ref().and_then(|mu| mu.status.as_ref()).map(|st| st.phase);
        if mu.is_none() {
            p.lane.phase = None;
        }
        if p.lane.class != Class::Deleted || p.deleted {
            continue;
        }
        if p.lane.phase == Some(Phase::Soaking) {
            let since = *p.soaking_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= p.delete_after
                && s.upgrades().delete(&name, &Default::default()).await.is_ok()
            {
                p.deleted = true;
                injected.push(format!("deleted {} mid-soak", p.lane.owner));
            }
        }
    }
    plans.iter().all(ended)
}

/// Inject one fault, hold it, undo what is to be undone: what was done, said in a line, and
/// whether it could have cost the leader a write (a kill, a cut, an outage, a refusal), the
/// case in which a notification may be delivered again.
async fn inject(
    s: &mut Scenario,
    second: &mut Operator,
    proxies: &[Proxy; 2],
    p: &Planned,
) -> (String, bool) {
    let said = inject_fault(s, second, proxies, p).await;
    let leaders =
        said.contains("(leader)") || matches!(p.fault, Fault::RestartApiServer | Fault::RefuseFinalWrites);
    (said, leaders)
}

async fn inject_fault(s: &mut Scenario, second: &mut Operator, proxies: &[Proxy; 2], p: &Planned) -> String {
    let leader = s.lease_holder().await;
    let first_leads = leader.as_deref() == Some(s.operator.instance.as_str());
    match p.fault {
        Fault::KillLeader | Fault::KillFollower | Fault::TermLeader | Fault::TermFollower => {
            let want_leader = matches!(p.fault, Fault::KillLeader | Fault::TermLeader);
            let op = if first_leads == want_leader { &mut s.operator } else { second };
            let how = if matches!(p.fault, Fault::KillLeader | Fault::KillFollower) {
                op.kill();
                "SIGKILL"
            } else {
                let _ = tokio::task::block_in_place(|| op.terminate(Duration::from_secs(10)));
                "SIGTERM"
            };
            let who = op.instance.clone()
                + if leader.as_deref() == Some(op.instance.as_str()) { " (leader)" } else { "" };
            tokio::time::sleep(p.hold).await;
            if let Err(e) = op.restart() {
                return format!("{how} {who}; it did not start again: {e}");
            }
            format!("{how} {who}, started again {:?} later", p.hold)
        }
        Fault::RestartApiServer => {
            let (env, hold) = (s.env.clone(), p.hold);
            let done = tokio::task::spawn_blocking(move || {
                Scenario::restart_apiserver_in(&env, hold, Duration::from_secs(60))
            })
            .await;
            wait_for_api(s).await;
            format!(
                "API server killed, down {hold:?} ({})",
                if matches!(done, Ok(Ok(()))) { "restarted" } else { "restart failed" }
            )
        }
        Fault::CompactEtcd => match compact_etcd(&s.env).await {
            Ok(rev) => format!("etcd compacted to revision {rev}"),
            Err(e) => format!("etcd compaction failed: {e}"),
        },
        Fault::RefuseRenewals => {
            let Some(holder) = leader.clone() else { return "renewals: no leader to refuse".into() };
            let refused = s.refuse_renewals(&holder).await;
            tokio::time::sleep(p.hold).await;
            drop(refused);
            format!("renewals of {holder} (leader) refused for {:?}", p.hold)
        }
        Fault::DelayTraffic | Fault::CutTraffic => {
            // The leader's or the follower's, as the drawn length's parity says.
            let on_leader = p.hold.as_millis().is_multiple_of(2);
            let (proxy, who) = if first_leads == on_leader {
                (&proxies[0], &s.operator.instance)
            } else {
                (&proxies[1], &second.instance)
            };
            let who = who.clone() + if leader.as_deref() == Some(who.as_str()) { " (leader)" } else { "" };
            let (mode, what) = if p.fault == Fault::CutTraffic {
                (Mode::Cut, "cut".to_string())
            } else {
                // Well within the fence's 5 s margin, TLS handshakes included: a write held
                // longer than that may land late, which the docs say is not guaranteed.
                let each = (p.hold / 40).min(Duration::from_millis(500));
                (Mode::Delay(each), format!("delayed {each:?} a chunk"))
            };
            proxy.set(mode);
            tokio::time::sleep(p.hold).await;
            proxy.set(Mode::Pass);
            format!("traffic of {who} {what} for {:?}", p.hold)
        }
        Fault::HangLeader => {
            let Some(holder) = leader.clone() else { return "hang: no leader to hang".into() };
            let proxy = if first_leads { &proxies[0] } else { &proxies[1] };
            // Held, then cut: a request held past the term and delivered late is what the
            // docs say is not guaranteed; a partition ends with its connections reset.
            proxy.set(Mode::Hang);
            tokio::time::sleep(p.hold).await;
            proxy.set(Mode::Cut);
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.set(Mode::Pass);
            format!("traffic of {holder} (leader) held for {:?}, then cut", p.hold)
        }
        Fault::RefuseFinalWrites => {
            let refused = s.refuse_status_phases(&["Succeeded", "RolledBack", "Failed"]).await;
            tokio::time::sleep(p.hold).await;
            drop(refused);
            format!("final status writes refused for {:?}", p.hold)
        }
    }
}

async fn wait_for_api(s: &Scenario) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.upgrades().list(&Default::default()).await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Compact etcd to its current revision through its HTTP gateway (the v3 API as JSON), found
/// on etcd's command line: every watch resuming from an older version then gets 410 Gone.
async fn compact_etcd(env: &Env) -> anyhow::Result<i64> {
    let pid = std::fs::read_to_string(env.cluster_dir.join("pids").join("etcd.pid"))?;
    let args = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))?;
    let args: Vec<String> =
        args.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let url = args
        .iter()
        .zip(args.iter().skip(1))
        .find_map(|(a, b)| {
            a.strip_prefix("--advertise-client-urls=")
                .map(String::from)
                .or_else(|| (a == "--advertise-client-urls").then(|| b.clone()))
        })
        .ok_or_else(|| anyhow::anyhow!("etcd's command line names no client URL"))?;
    let url = url.split(',').next().unwrap_or_default().to_string();
    let http = reqwest::Client::new();
    let range: serde_json::Value = serde_json::from_str(
        &http
            .post(format!("{url}/v3/kv/range"))
            .body(r#"{"key":"Lw==","limit":1}"#)
            .send()
            .await?
            .text()
            .await?,
    )?;
    let rev: i64 = range["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("etcd's answer has no revision: {range}"))?;
    let body = format!(r#"{{"revision":"{rev}","physical":true}}"#);
    let answer = http.post(format!("{url}/v3/kv/compaction")).body(body).send().await?;
    if !answer.status().is_success() {
        anyhow::bail!("etcd refused the compaction: {}", answer.text().await?);
    }
    Ok(rev)
}
