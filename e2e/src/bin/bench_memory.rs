//! `make bench-memory`: the operator's memory when a tenant fills her namespace with the largest
//! objects its watches list. A benchmark, not a test.
//!
//! The tenant creates `BENCH_OBJECTS` (default 100) of each kind the operator watches and she
//! may write: pods, Warning Events about pods, Deployments, StatefulSets and DaemonSets labelled
//! as claimed (the target cache lists those), each about `BENCH_OBJECT_KIB` KiB (default 1,024;
//! etcd takes at most 1.5 MiB a request), and MaintenanceUpgrades with 250 KiB of annotations
//! (the most the API server takes), and `BENCH_READERS` (default none) upgrades each naming the
//! same 200 of her Deployments and StatefulSets (as many as an upgrade may), which the operator
//! reads for each until it has claimed them. None runs anything: the pods select no node, the workloads have no replicas.
//!
//! The release build starts on the empty cluster, then on the full one; each time the bench
//! prints the time until it is ready (its pod and Warning Event watches have listed), its peak
//! RSS from its start until 30 s after that (its first looks included) and its RSS then, against
//! the memory limit `config/manager` sets.

use anyhow::{Result, bail};
use e2e::bench::{start_operator, usage};
use e2e::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NS: &str = "hostile-tenant";
/// Creations in flight at once (each a large request).
const PARALLEL: usize = 4;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let env = Env::from_env()?;
    env.setup().await?;
    let client = env.client().await?;
    let objects = count("BENCH_OBJECTS", 100);
    let kib = count("BENCH_OBJECT_KIB", 1024);
    let readers = count("BENCH_READERS", 0);
    let limit = manager_memory_limit_mib(&env)?;
    let empty = measure(&env, "mem-empty").await?;
    println!("bench-memory: on the empty cluster: {empty}");

    let ns_api: Api<Namespace> = Api::all(client.clone());
    // What a run that failed left is deleted first.
    if ns_api.get_opt(NS).await?.is_some() {
        let _ = env.kubectl(&["delete", "namespace", NS, "--wait=true", "--timeout=300s"]);
    }
    ns_api
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NS}}))?)
        .await?;
    let filler = "x".repeat(kib * 1024);
    let t = Instant::now();
    for (kind, make) in KINDS {
        let (group, version) = match kind.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", kind.api_version),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind.kind);
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NS, &ApiResource::from_gvk_with_plural(&gvk, kind.plural));
        futures::stream::iter(0..objects)
            .map(|i| {
                let (api, filler) = (api.clone(), filler.as_str());
                async move {
                    let mut o = make(&format!("{}-{i}", kind.plural), filler);
                    o["apiVersion"] = kind.api_version.into();
                    o["kind"] = kind.kind.into();
                    api.create(&PostParams::default(), &serde_json::from_value(o)?).await?;
                    Ok::<_, anyhow::Error>(())
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
    }
    // And `BENCH_READERS` upgrades naming as many of her workloads as an upgrade may
    // (10 stages of 20), the same ones: each reads them all until it has claimed them.
    let named: Vec<Value> = ["deployments", "statefulsets"]
        .iter()
        .flat_map(|plural| (0..objects).map(move |i| (plural, i)))
        .take(200)
        .map(|(plural, i)| {
            let kind = if *plural == "deployments" { "Deployment" } else { "StatefulSet" };
            json!({"kind": kind, "name": format!("{plural}-{i}"), "image": BAD})
        })
        .collect();
    let stages: Vec<Value> = named
        .chunks(20)
        .enumerate()
        .map(|(i, c)| json!({"name": format!("s{i}"), "components": c, "soak": "48h"}))
        .collect();
    for r in 0..readers {
        let reads_all = json!({"apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
            "metadata": {"name": format!("reads-all-{r}")}, "spec": {"stages": stages}});
        Api::<maintenance_operator::crd::MaintenanceUpgrade>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &serde_json::from_value(reads_all)?)
            .await?;
    }
    println!(
        "bench-memory: {objects} each of {} created in {:.0} s, about {kib} KiB each (upgrades 250 KiB), and {readers} upgrades naming the same {} of the workloads",
        KINDS.iter().map(|(k, _)| k.plural).collect::<Vec<_>>().join(", "),
        t.elapsed().as_secs_f64(),
        named.len()
    );
    let full = measure(&env, "mem-full").await?;
    println!("bench-memory: with the tenant's objects: {full}");
    println!("\n| cluster | ready after | peak RSS | RSS 30 s after ready | limit |");
    println!("|---|---:|---:|---:|---:|");
    let filled = format!("{objects} of each kind, {kib} KiB each, {readers} upgrades naming 200 of them");
    for (name, m) in [("empty".to_string(), empty), (filled, full)] {
        println!(
            "| {name} | {:.1} s | {:.0} MiB | {:.0} MiB | {limit:.0} MiB |",
            m.ready.as_secs_f64(),
            m.peak_mib,
            m.rss_mib
        );
    }
    let _ = env.kubectl(&["delete", "namespace", NS, "--wait=false"]);
    Ok(())
}

struct Kind {
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
}

/// Each kind the tenant fills, and an object of it named `name` about as large as `filler`.
type Make = fn(&str, &str) -> Value;

const KINDS: &[(Kind, Make)] = &[
    (Kind { api_version: "v1", kind: "Pod", plural: "pods" }, |name, filler| {
        json!({"metadata": {"name": name}, "spec": {"nodeSelector": {"bench/none": "none"},
            "containers": [{"name": "c", "image": GOOD, "args": [filler]}]}})
    }),
    (Kind { api_version: "v1", kind: "Event", plural: "events" }, |name, filler| {
        json!({"metadata": {"name": name}, "type": "Warning", "reason": "Failed", "message": filler,
            "involvedObject": {"kind": "Pod", "namespace": NS, "name": name, "apiVersion": "v1"}})
    }),
    (Kind { api_version: "apps/v1", kind: "Deployment", plural: "deployments" }, |name, filler| {
        json!({"metadata": claimed(name), "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": template(name, filler)}})
    }),
    (Kind { api_version: "apps/v1", kind: "StatefulSet", plural: "statefulsets" }, |name, filler| {
        json!({"metadata": claimed(name), "spec": {"replicas": 0, "serviceName": name,
            "selector": {"matchLabels": {"app": name}}, "template": template(name, filler)}})
    }),
    (Kind { api_version: "apps/v1", kind: "DaemonSet", plural: "daemonsets" }, |name, filler| {
        let mut t = template(name, filler);
        t["spec"]["nodeSelector"] = json!({"bench/none": "none"});
        json!({"metadata": claimed(name), "spec": {"selector": {"matchLabels": {"app": name}}, "template": t}})
    }),
    (
        Kind {
            api_version: "maintenance.dev/v1alpha1",
            kind: "MaintenanceUpgrade",
            plural: "maintenanceupgrades",
        },
        |name, _| {
            json!({"metadata": {"name": name, "annotations": {"bench/filler": "x".repeat(250 * 1024)}},
                "spec": {"stages": [{"name": "all", "components": [
                    {"kind": "Deployment", "name": "absent", "image": GOOD}], "soak": "48h"}]}})
        },
    ),
];

/// A workload's metadata, labelled as an upgrade's claim (by an upgrade that does not exist).
fn claimed(name: &str) -> Value {
    json!({"name": name, "labels": {"maintenance.dev/claimed-by": "nobody"}})
}

fn template(name: &str, filler: &str) -> Value {
    json!({"metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "c", "image": GOOD, "env": [{"name": "FILLER", "value": filler}]}]}})
}

struct Measured {
    ready: Duration,
    peak_mib: f64,
    rss_mib: f64,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ready after {:.1} s; peak RSS {:.0} MiB; RSS {:.0} MiB 30 s later",
            self.ready.as_secs_f64(),
            self.peak_mib,
            self.rss_mib
        )
    }
}

/// The operator started as `name`: until ready, then 30 s more; then stopped as the kubelet
/// stops it (SIGTERM), so that it gives up its Lease for the next.
async fn measure(env: &Env, name: &str) -> Result<Measured> {
    let (mut op, port) = start_operator(env, name)?;
    let started = Instant::now();
    let ready = loop {
        let ok = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break started.elapsed();
        }
        if let Some(status) = op.try_wait()? {
            bail!("the operator exited ({status}) before it was ready");
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the operator was not ready in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(30)).await;
    if let Some(status) = op.try_wait()? {
        bail!("the operator exited ({status}) after it was ready");
    }
    let (peak_mib, _) = usage(op.id())?;
    let rss_mib = rss_mib(op.id())?;
    let _ = std::process::Command::new("kill").args(["-TERM", &op.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while op.try_wait()?.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = op.kill();
    let _ = op.wait();
    Ok(Measured { ready, peak_mib, rss_mib })
}
