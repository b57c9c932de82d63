//! `make bench-scale`: the operator (release build, as its ServiceAccount, cluster-wide, with
//! leader election) at fleet scale on the local control plane. A benchmark, not a test.
//!
//! - Run A: `BENCH_UPGRADES` upgrades (default 1,000) over three Deployments each, spread over
//!   100 namespaces, each signal scoped to its own namespace.
//! - Run B: the default, cluster-wide built-in signal, `BENCH_B_UPGRADES` upgrades (default 300)
//!   over three Deployments each, with `BENCH_PODS` pods (default 3,000) in the cluster.
//!
//! Each run prints the time until every upgrade has claimed its targets and is measuring its
//! baseline (or past it), the operator's peak RSS and CPU seconds, and the API server's own
//! request rate (`apiserver_request_total`) over `BENCH_STEADY` seconds of that steady state
//! (default 600: one detector bucket, so that the writes made once a bucket are counted), against
//! the idle cluster.
//!
//! In run A, `BENCH_REVERTS` of the upgrades (default 100) measure their baseline for a minute and
//! then soak. After the steady state, all of them are asked to roll back at once: the bench prints
//! how long the operator took from each look that decided a revert to the revert patch being
//! accepted (its `revert_latency_seconds` histogram), and until every Deployment was back.

use anyhow::{Context as _, Result, bail};
use e2e::bench::{metrics_text, start_operator, usage};
use e2e::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use maintenance_operator::crd::{MaintenanceUpgrade, Phase};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Creations in flight at once.
const PARALLEL: usize = 16;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let env = Arc::new(Env::from_env()?);
    env.setup().await?;
    let client = env.client().await?;
    let upgrades = count("BENCH_UPGRADES", 1000);
    let reverts = count("BENCH_REVERTS", 100).min(upgrades);
    let steady = Duration::from_secs(count("BENCH_STEADY", 600) as u64);
    let b_upgrades = count("BENCH_B_UPGRADES", 300);
    let pods = count("BENCH_PODS", 3000);
    let empty = request_rate(&env, Duration::from_secs(20)).await?;
    println!("bench-scale: the empty cluster serves {empty:.1} requests/s");
    println!(
        "bench-scale: run A, {upgrades} upgrades over {} Deployments, signals per namespace",
        upgrades * 3
    );
    let a = Run { prefix: "bench-a", upgrades, namespaces: Some(100), pods: 0, reverts };
    let a = a.measure(&env, &client, steady, empty).await?;
    let mut runs =
        vec![(format!("A: {upgrades} upgrades, {} Deployments, per-namespace signals", upgrades * 3), a)];
    // BENCH_B_UPGRADES=0 leaves run B out.
    if b_upgrades > 0 {
        println!(
            "bench-scale: run B, {b_upgrades} upgrades over {} Deployments, the default signal, {pods} pods",
            b_upgrades * 3
        );
        let b = Run { prefix: "bench-b", upgrades: b_upgrades, namespaces: None, pods, reverts: 0 };
        let b = b.measure(&env, &client, steady, empty).await?;
        runs.push((
            format!("B: {b_upgrades} upgrades, {} Deployments, default signal, {pods} pods", b_upgrades * 3),
            b,
        ));
    }
    println!("\n| run | all reconciled | peak RSS | CPU | API load, steady (idle) | status writes |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, r) in runs {
        println!(
            "| {name} | {:.1} s | {:.0} MiB | {:.1} s | {:.1} requests/s ({:.1}) | {:.2}/s |",
            r.reconciled.as_secs_f64(),
            r.peak_rss_mib,
            r.cpu_seconds,
            r.steady_rps,
            r.idle_rps,
            r.status_writes_per_s
        );
        if let Some(rv) = &r.reverts {
            println!("{rv}");
        }
    }
    Ok(())
}

struct Figures {
    reconciled: Duration,
    peak_rss_mib: f64,
    cpu_seconds: f64,
    idle_rps: f64,
    steady_rps: f64,
    status_writes_per_s: f64,
    reverts: Option<String>,
}

/// One run: `upgrades` over three Deployments each, in `namespaces` namespaces (None: 10, with
/// the default cluster-wide signal), `pods` pods, the first `reverts` upgrades rolled back.
struct Run {
    prefix: &'static str,
    upgrades: usize,
    namespaces: Option<usize>,
    pods: usize,
    reverts: usize,
}

impl Run {
    /// Targets and upgrades first, the idle rate, then the operator.
    async fn measure(
        &self,
        env: &Arc<Env>,
        client: &kube::Client,
        steady: Duration,
        empty: f64,
    ) -> Result<Figures> {
        let Run { prefix, upgrades, namespaces, pods, reverts } = *self;
        let spread = namespaces.unwrap_or(10).min(upgrades.max(1));
        let nss: Vec<String> = (0..spread).map(|i| format!("{prefix}-{i}")).collect();
        let ns_api: Api<Namespace> = Api::all(client.clone());
        for ns in &nss {
            let _ = ns_api
                .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}}))?)
                .await;
        }
        if pods > 0 {
            make_pods(client, prefix, &nss[0], pods).await?;
        }
        let t = Instant::now();
        futures::stream::iter(0..upgrades * 3)
            .map(|i| deployment(client, &nss[(i / 3) % spread], format!("app-{}", i)))
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        println!("  {} Deployments created in {:.0} s", upgrades * 3, t.elapsed().as_secs_f64());
        let per_ns = namespaces.is_some();
        futures::stream::iter(0..upgrades)
            .map(|i| upgrade(client, &nss[i % spread], i, per_ns, i < reverts))
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        println!("  {upgrades} upgrades created");
        settle(env, empty).await?;
        let idle_rps = request_rate(env, Duration::from_secs(30)).await?;
        println!("  idle API load: {idle_rps:.1} requests/s");

        let at_start = requests_by_kind(env)?;
        let (mut op, port) = start_operator(env, prefix)?;
        let started = Instant::now();
        // When it began to lead: a replica takes a Lease no one holds only after a lease
        // duration (it may have been deleted under a holder still writing), so a first start
        // spends that long before its first look.
        let mut leading = None;
        // Read from the operator's own metrics (set once a decision is written), so that the
        // bench does not load the API server with lists of every upgrade while it measures.
        let reconciled = loop {
            // One fetch a poll serves both (0 of each while it does not answer yet).
            let text = metrics_text(port).await.unwrap_or_default();
            if leading.is_none() && metric_in(&text, "maintenance_operator_leading") == Some(1.0) {
                leading = Some(started.elapsed());
            }
            let started_phases = [Phase::MeasuringBaseline, Phase::Progressing, Phase::Soaking];
            let ready = phases_in(&text, prefix, &started_phases);
            if ready >= upgrades {
                break started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(900) {
                bail!("only {ready} of {upgrades} upgrades reached MeasuringBaseline in 15 minutes");
            }
            if let Some(status) = op.try_wait()? {
                bail!("the operator exited ({status})");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        // Polled every half second or so: each figure is an upper bound within about a second.
        let led = match leading {
            Some(at) => format!(
                "leading after {:.1} s, then {:.1} s",
                at.as_secs_f64(),
                (reconciled - at).as_secs_f64()
            ),
            None => "its leading metric not seen".into(),
        };
        println!("  every upgrade measuring its baseline after {:.1} s: {led}", reconciled.as_secs_f64());
        print_requests_since(env, &at_start, upgrades)?;
        // The steady state begins once the fast upgrades soak (their baselines end after a
        // minute) and every upgrade has read its signal once (a minute, the default interval).
        wait_until(port, prefix, reverts, Phase::Soaking, Duration::from_secs(300)).await?;
        tokio::time::sleep(Duration::from_secs(70).saturating_sub(started.elapsed() - reconciled)).await;
        let writes_before = operator_metric(port, "maintenance_operator_status_writes_total").await?;
        let steady_rps = request_rate(env, steady).await?;
        let writes = operator_metric(port, "maintenance_operator_status_writes_total").await? - writes_before;
        let status_writes_per_s = writes / steady.as_secs_f64();
        let (peak_rss_mib, cpu_seconds) = usage(op.id())?;
        println!(
            "  steady API load over {:.0} s: {steady_rps:.1} requests/s ({status_writes_per_s:.2} status writes/s); peak RSS {peak_rss_mib:.0} MiB; CPU {cpu_seconds:.1} s",
            steady.as_secs_f64()
        );
        let reverts =
            if reverts > 0 { Some(roll_back(client, port, prefix, &nss, reverts).await?) } else { None };
        // Gone before the next run measures its idle cluster. The operator still runs: each
        // upgrade's finalizer holds its namespace until the operator has let go of its targets.
        for ns in &nss {
            let _ = env.kubectl(&["delete", "namespace", ns, "--wait=false"]);
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        for ns in &nss {
            while ns_api.get_opt(ns).await?.is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let _ = op.kill();
        let _ = op.wait();
        let _ =
            env.kubectl(&["delete", "nodes", "-l", &format!("{SCENARIO_LABEL}={prefix}"), "--wait=false"]);
        Ok(Figures {
            reconciled,
            peak_rss_mib,
            cpu_seconds,
            idle_rps,
            steady_rps,
            status_writes_per_s,
            reverts,
        })
    }
}

/// Ask the first `n` upgrades (those soaking) to roll back at once; the operator's revert latency
/// and the time until every one of their Deployments is back on its known-good image.
async fn roll_back(
    client: &kube::Client,
    port: u16,
    prefix: &str,
    nss: &[String],
    n: usize,
) -> Result<String> {
    let t = Instant::now();
    let patch = kube::api::Patch::Merge(json!({"spec": {"rollback": {"requested": true}}}));
    futures::stream::iter(0..n)
        .map(|i| {
            let api = Api::<MaintenanceUpgrade>::namespaced(client.clone(), &nss[i % nss.len()]);
            let patch = patch.clone();
            async move { api.patch(&format!("up-{i}"), &Default::default(), &patch).await.map(|_| ()) }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    let requested = t.elapsed();
    wait_until(port, prefix, n, Phase::RolledBack, Duration::from_secs(300)).await?;
    let done = t.elapsed();
    let text = metrics_text(port).await?;
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let (count, sum) = (
        value("maintenance_operator_revert_latency_seconds_count"),
        value("maintenance_operator_revert_latency_seconds_sum"),
    );
    // The smallest bucket bound that holds every revert: an upper bound on the slowest one.
    let max = text
        .lines()
        .filter(|l| l.starts_with("maintenance_operator_revert_latency_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.parse::<f64>().ok()?;
            let c = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            (c >= count).then_some(le)
        })
        .fold(f64::INFINITY, f64::min);
    Ok(format!(
        "  revert: {n} upgrades asked to roll back in {:.1} s; {count:.0} revert patches, decided to accepted: mean {:.0} ms, every one within {max} s; all {} Deployments back after {:.1} s",
        requested.as_secs_f64(),
        1000.0 * sum / count,
        n * 3,
        done.as_secs_f64()
    ))
}

/// Wait until the operator's metrics show `n` upgrades of the run in `phase`.
async fn wait_until(port: u16, prefix: &str, n: usize, phase: Phase, limit: Duration) -> Result<()> {
    let t = Instant::now();
    loop {
        let ok = in_phases(port, prefix, &[phase]).await;
        if ok >= n {
            return Ok(());
        }
        if t.elapsed() > limit {
            bail!("only {ok} of {n} upgrades got to {phase:?} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many upgrades of the run the operator's `upgrade_phase` gauge shows in one of `phases`
/// (0 while it does not answer yet).
async fn in_phases(port: u16, prefix: &str, phases: &[Phase]) -> usize {
    phases_in(&metrics_text(port).await.unwrap_or_default(), prefix, phases)
}

/// How many upgrades of the run metrics `text` shows in one of `phases`.
fn phases_in(text: &str, prefix: &str, phases: &[Phase]) -> usize {
    let wanted: Vec<String> = phases.iter().map(|p| format!("phase=\"{p:?}\"}} 1")).collect();
    text.lines()
        .filter(|l| l.starts_with(&format!("maintenance_operator_upgrade_phase{{upgrade=\"{prefix}-")))
        .filter(|l| wanted.iter().any(|w| l.ends_with(w.as_str())))
        .count()
}

async fn operator_metric(port: u16, name: &str) -> Result<f64> {
    metric_in(&metrics_text(port).await?, name).with_context(|| format!("{name} in the operator's metrics"))
}

/// The value of the first series of metric `name` in metrics `text`.
fn metric_in(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn deployment(client: &kube::Client, ns: &str, name: String) -> Result<()> {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}
        }
    }))?;
    Api::<Deployment>::namespaced(client.clone(), ns).create(&PostParams::default(), &d).await?;
    Ok(())
}

/// An upgrade of three Deployments, window always open, every default kept but the signal's
/// scope: its own namespace (run A) or the whole cluster (run B, the CRD's default).
async fn upgrade(client: &kube::Client, ns: &str, i: usize, per_namespace: bool, fast: bool) -> Result<()> {
    let components: Vec<_> = (i * 3..i * 3 + 3)
        .map(|d| json!({"kind": "Deployment", "name": format!("app-{d}"), "image": "registry.example.com/app:2"}))
        .collect();
    let mut spec = json!({"stages": [{"name": "all", "components": components, "soak": "48h"}]});
    if per_namespace {
        spec["analysis"] = json!({"signals": [{"name": "pods", "kubernetes": {"namespaces": [ns]}}]});
    }
    if fast {
        spec["analysis"]["baseline"] = json!({"observe": "1m"});
    }
    let mu: MaintenanceUpgrade = serde_json::from_value(
        json!({"apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
            "metadata": {"name": format!("up-{i}")}, "spec": spec}),
    )?;
    Api::<MaintenanceUpgrade>::namespaced(client.clone(), ns).create(&PostParams::default(), &mu).await?;
    Ok(())
}

/// `pods` running pods on fake nodes of their own, for the cluster-wide signal to watch.
async fn make_pods(client: &kube::Client, prefix: &str, ns: &str, pods: usize) -> Result<()> {
    create_nodes(client, prefix).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = api.clone();
            async move {
                let p: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("job-{i}"), "labels": {"app": "job"}},
                    "spec": {"nodeSelector": {SCENARIO_LABEL: prefix},
                        "containers": [{"name": "job", "image": "registry.example.com/job:1"}]}
                }))?;
                api.create(&PostParams::default(), &p).await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    println!("  {pods} pods created in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Wait until the cluster's own controllers have caught up with what was just created: the
/// request rate is back near that of the empty cluster (at most 5 minutes).
async fn settle(env: &Arc<Env>, empty: f64) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(300) {
        let rate = request_rate(env, Duration::from_secs(10)).await?;
        if rate < 2.0 * empty + 5.0 {
            println!("  settled after {:.0} s ({rate:.1} requests/s)", t.elapsed().as_secs_f64());
            return Ok(());
        }
    }
    println!("  still busy after 5 minutes; measuring anyway");
    Ok(())
}

/// Requests per second the API server counted over `span` (its own `apiserver_request_total`).
async fn request_rate(env: &Arc<Env>, span: Duration) -> Result<f64> {
    let before = requests(env)?;
    tokio::time::sleep(span).await;
    Ok((requests(env)? - before) / span.as_secs_f64())
}

fn requests(env: &Env) -> Result<f64> {
    let text = env.kubectl(&["get", "--raw", "/metrics"])?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// `apiserver_request_total` per verb and resource.
fn requests_by_kind(env: &Env) -> Result<std::collections::BTreeMap<String, f64>> {
    let text = env.kubectl(&["get", "--raw", "/metrics"])?;
    let mut by = std::collections::BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |k: &str| {
            l.split_once(&format!(",{k}=\""))
                .or_else(|| l.split_once(&format!("{{{k}=\"")))
                .and_then(|(_, r)| r.split_once('"'))
                .map_or("", |(v, _)| v)
                .to_string()
        };
        let n: f64 = l.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *by.entry(format!("{} {}", label("verb"), label("resource"))).or_insert(0.0) += n;
    }
    Ok(by)
}

/// What the API server served since `before`, per upgrade, the busiest kinds first: where the
/// time until all are reconciled goes.
fn print_requests_since(
    env: &Env,
    before: &std::collections::BTreeMap<String, f64>,
    upgrades: usize,
) -> Result<()> {
    let mut diff: Vec<(String, f64)> = requests_by_kind(env)?
        .into_iter()
        .map(|(k, n)| (n - before.get(&k).copied().unwrap_or(0.0), k))
        .filter(|(n, _)| *n >= 1.0)
        .map(|(n, k)| (k, n))
        .collect();
    diff.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<String> =
        diff.iter().take(8).map(|(k, n)| format!("{k} {:.2}", n / upgrades.max(1) as f64)).collect();
    println!("  requests per upgrade until then: {}", top.join(", "));
    Ok(())
}
