//! End-to-end harness on the real local control plane started by `e2e/scripts/run-e2e.sh`
//! (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK, Prometheus).
//!
//! The incident's world, compressed in time: `ZONES` fake nodes; a workload generator creating
//! pods spread evenly over them (like the email-sync jobs), 2 % of them deliberately
//! unschedulable as a steady background error rate; a secret-store connector DaemonSet; and a
//! fault injector that, while the connector runs a known-bad image, cordons a slowly growing
//! share of the nodes, so the real scheduler fails a slowly growing share of new pods.
//! Everything is deterministic: healthy runs have no noise to roll back on.
//!
//! Scenarios run concurrently: each has its own namespace, its own zone nodes (labelled with its
//! name, so its fault injector cordons only those) and its own operator, which watches only that
//! namespace and listens on a port of its own.

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, PodSpec};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use maintenance_operator::crd::{MaintenanceUpgrade, Phase};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

pub mod audit;
pub mod bench;
pub mod docs;
pub mod fixtures;
pub mod image;
pub mod policy;
pub mod proxy;
pub mod robustness;
pub use fixtures::*;

pub const ZONES: usize = 10;
pub const ZONE_LABEL: &str = "e2e.maintenance.dev/zone";
pub const CANARY_LABEL: &str = "e2e.maintenance.dev/canary";
/// Which scenario a zone node belongs to.
pub const SCENARIO_LABEL: &str = "e2e.maintenance.dev/scenario";
pub const GOOD: &str = "registry.example.com/secrets-store/connector:v1.3.2";
pub const BAD: &str = "registry.example.com/secrets-store/connector:v1.4.0";
/// The sidecar beside the connector in `Scenario::node_agent` (only s20's upgrade bumps it).
pub const REGISTRAR: &str = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.10.0";
pub const OPERATOR_SA: &str = "system:serviceaccount:maintenance-operator:maintenance-operator";
pub const CRD: &str = "maintenanceupgrades.maintenance.dev";

/// The cluster the scripts started, as the environment describes it.
pub struct Env {
    pub root: PathBuf,
    pub kubeconfig: PathBuf,
    pub operator_kubeconfig: PathBuf,
    pub bin: PathBuf,
    pub prometheus_url: String,
    pub prometheus_dir: PathBuf,
    pub logs: PathBuf,
    pub cluster_dir: PathBuf,
}

fn var(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: run the e2e tests through `make e2e`"))
}

static SETUP: OnceCell<()> = OnceCell::const_new();

/// A control-plane component as `cluster-up.sh` started it: name, PID file, command line, and
/// working directory.
type Component = (String, PathBuf, Vec<String>, PathBuf);

/// The components of the cluster, as their PID files and /proc show them.
fn components(env: &Env) -> Result<Vec<Component>> {
    let mut components = vec![];
    for entry in std::fs::read_dir(env.cluster_dir.join("pids"))? {
        let path = entry?.path();
        let pid: i32 = std::fs::read_to_string(&path)?.trim().parse()?;
        let args: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))?
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        components.push((name, path, args, cwd));
    }
    Ok(components)
}

static COMPONENTS: std::sync::Mutex<Vec<Component>> = std::sync::Mutex::new(vec![]);

/// Until when the control plane's components are restarted when they exit (see
/// `Scenario::restart_apiserver_in`), while a supervisor runs.
static SUPERVISING: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

impl Env {
    pub fn from_env() -> Result<Env> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        std::fs::create_dir_all(root.join("target/e2e/logs"))?;
        // Without symlinks: runc refuses a root filesystem reached through one (a worktree's
        // `target` linked to the main checkout's).
        let state = root.join("target/e2e").canonicalize()?;
        let logs = state.join("logs");
        let kwok = PathBuf::from(var("KWOK_WORKDIR")?);
        Ok(Env {
            kubeconfig: PathBuf::from(var("KUBECONFIG")?),
            operator_kubeconfig: state.join("operator-kubeconfig.yaml"),
            bin: PathBuf::from(var("E2E_BIN")?),
            prometheus_url: var("PROMETHEUS_URL")?,
            prometheus_dir: PathBuf::from(var("PROMETHEUS_DIR")?),
            cluster_dir: kwok.join("clusters").join(var("E2E_CLUSTER")?),
            logs,
            root,
        })
    }

    pub async fn client(&self) -> Result<Client> {
        Ok(Client::try_from(Config::infer().await?)?)
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out =
            Command::new(self.bin.join("kubectl")).args(args).env("KUBECONFIG", &self.kubeconfig).output()?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The API server's host and port, from the admin kubeconfig.
    pub fn api_server(&self) -> Result<(String, String)> {
        let k: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&self.kubeconfig)?)?;
        let server = k["clusters"][0]["cluster"]["server"].as_str().context("kubeconfig names a server")?;
        let (host, port) = server
            .trim_start_matches("https://")
            .rsplit_once(':')
            .with_context(|| format!("the server {server} has a port"))?;
        Ok((host.to_string(), port.to_string()))
    }

    /// Once per process: CRD and RBAC from the repo, and the operator's impersonating kubeconfig.
    pub async fn setup(&self) -> Result<()> {
        SETUP
            .get_or_try_init(|| async {
                self.prepare_operator()?;
                self.install_crd()
            })
            .await?;
        Ok(())
    }

    /// The install of config/default (through e2e/manifests), applied server-side as a user
    /// would, with the local Prometheus among the addresses signals may name (its port is chosen
    /// when the cluster starts), and a kubeconfig that runs the operator under its ServiceAccount.
    pub fn prepare_operator(&self) -> Result<()> {
        let install = self.root.join("e2e/manifests");
        self.kubectl(&["apply", "--server-side", "--force-conflicts", "-k", install.to_str().unwrap()])?;
        // The local Prometheus, and the address config/samples names, as an installer lists its own.
        let prometheus = format!("{},http://prometheus.monitoring:9090", self.prometheus_url);
        self.set_setting("prometheusAddresses", &prometheus)?;
        self.write_operator_kubeconfig()
    }

    /// The installer's settings (the ConfigMap config/default makes), as the kubelet reads them
    /// into the manager's environment: a key that is not there reads as empty.
    pub fn settings(&self) -> Result<std::collections::BTreeMap<String, String>> {
        let cm = self.kubectl(&[
            "get",
            "configmap",
            "-n",
            "maintenance-operator",
            "maintenance-operator-tenancy",
            "-o",
            "jsonpath={.data}",
        ])?;
        Ok(serde_json::from_str(&cm)?)
    }

    /// One of the installer's settings.
    pub fn setting(&self, key: &str) -> Result<String> {
        Ok(self.settings()?.remove(key).unwrap_or_default())
    }

    /// Change one of the installer's settings, as an installer would.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let patch = serde_json::json!({"data": {key: value}}).to_string();
        self.kubectl(&[
            "patch",
            "configmap",
            "-n",
            "maintenance-operator",
            "maintenance-operator-tenancy",
            "--type=merge",
            "-p",
            &patch,
        ])?;
        Ok(())
    }

    /// The CRD of crds/, once the API server serves it.
    pub fn install_crd(&self) -> Result<()> {
        let crd = self.root.join("crds/maintenanceupgrades.yaml");
        self.kubectl(&["apply", "--server-side", "-f", crd.to_str().unwrap()])?;
        // Polled, not `kubectl wait --for=condition=Established`: that fails at once ("accessor
        // error: <nil>") when it reads a new CRD before its status has any condition, and so
        // does a jsonpath filter of the conditions; read whole, the CRD has none yet.
        let established = || -> Result<bool> {
            let crd: serde_json::Value =
                serde_json::from_str(&self.kubectl(&["get", &format!("crd/{CRD}"), "-o", "json"])?)?;
            let conditions = crd["status"]["conditions"].as_array().cloned().unwrap_or_default();
            Ok(conditions.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !established()? {
            if Instant::now() > deadline {
                bail!("crd/{CRD} is not Established 30 s after it was applied");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The admin kubeconfig, impersonating the operator's ServiceAccount: the operator runs
    /// with exactly the RBAC of config/default.
    fn write_operator_kubeconfig(&self) -> Result<()> {
        let mut k: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&self.kubeconfig)?)?;
        for u in k["users"].as_sequence_mut().context("kubeconfig has users")? {
            u["user"]["as"] = OPERATOR_SA.into();
        }
        // Written whole under another name, then renamed: a concurrent reader never sees half.
        let tmp = self.operator_kubeconfig.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_yaml::to_string(&k)?)?;
        std::fs::rename(&tmp, &self.operator_kubeconfig)?;
        Ok(())
    }
}

/// What sets a fault injector off.
enum Trigger {
    /// Any of these DaemonSets' templates runs `BAD`.
    Template(Vec<String>),
    /// More than this many of this DaemonSet's pods run `BAD`.
    Pods(String, usize),
}

/// The name of a scenario's zone node.
pub fn node_name(scenario: &str, zone: usize) -> String {
    format!("{scenario}-zone-{zone}")
}

/// A fake node of `scenario` (KWOK runs its pods).
fn fake_node(scenario: &str, name: &str, zone: &str, canary: bool) -> Result<Node> {
    let mut labels =
        json!({ZONE_LABEL: zone, SCENARIO_LABEL: scenario, "type": "kwok", "kubernetes.io/hostname": name});
    if canary {
        labels[CANARY_LABEL] = json!("true");
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
            "nodeInfo": {"kubeletVersion": "fake", "architecture": "amd64", "operatingSystem": "linux"}
        }
    }))?)
}

/// The scenario's own `ZONES` fake nodes, the first two of them canaries, once Ready.
pub async fn create_nodes(client: &Client, scenario: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..ZONES {
        let name = node_name(scenario, i);
        if nodes.get_opt(&name).await?.is_some() {
            continue;
        }
        nodes.create(&PostParams::default(), &fake_node(scenario, &name, &format!("z{i}"), i < 2)?).await?;
    }
    // Wait until kwok reports them Ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = nodes
            .list(&ListParams::default().labels(&format!("{SCENARIO_LABEL}={scenario}")))
            .await?
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready == ZONES {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {ZONES} zone nodes became Ready");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The operator binary, run as a separate process with its ServiceAccount's permissions,
/// watching only its scenario's namespace.
pub struct Operator {
    child: Option<Child>,
    log: PathBuf,
    env: Arc<Env>,
    namespace: String,
    /// Its name on Events and on the Lease, kept across restarts like a pod name.
    pub instance: String,
    /// Its /metrics and /healthz port, kept across restarts.
    port: u16,
    /// `TRUSTED_NAMESPACES` at its next start; None: the installed setting, read as the kubelet
    /// reads the manager's configMapKeyRef.
    pub trusted_namespaces: Option<String>,
    /// More environment at its next start (flags the operator reads from the environment).
    pub extra_env: Vec<(String, String)>,
    /// From its next start, it reaches the API server through a `proxy::Proxy` on this port.
    pub through_port: Option<u16>,
    /// Run from the image (`run_from_image`) rather than the checkout's binary.
    image: Option<Arc<image::Image>>,
}

/// Let the operator's ServiceAccount read and renew Lease `lease` too, as an installer who runs
/// it with `--namespace` does: config/default's Role names only its own (`maintenance-operator`).
/// A Role of its own, so that the installed one stays as config/default has it.
fn allow_lease(env: &Env, lease: &str) -> Result<()> {
    let ns = ["-n", "maintenance-operator"];
    let made = |what: Result<String>| match what {
        Err(e) if !e.to_string().contains("already exists") => Err(e),
        _ => Ok(()),
    };
    let name = format!("e2e-{lease}");
    let resource_name = format!("--resource-name={lease}");
    made(
        env.kubectl(
            &[
                &[
                    "create",
                    "role",
                    &name,
                    "--verb=get,update",
                    "--resource=leases.coordination.k8s.io",
                    &resource_name,
                ][..],
                &ns,
            ]
            .concat(),
        ),
    )?;
    let sa = "--serviceaccount=maintenance-operator:maintenance-operator";
    let role = format!("--role={name}");
    made(env.kubectl(&[&["create", "rolebinding", &name, &role, sa][..], &ns].concat()))
}

impl Operator {
    pub fn start(env: Arc<Env>, name: &str, namespace: &str) -> Result<Operator> {
        Self::start_with(env, name, namespace, None)
    }

    /// Started with `TRUSTED_NAMESPACES` set to `trusted` instead of the installed setting.
    pub fn start_with(env: Arc<Env>, name: &str, namespace: &str, trusted: Option<&str>) -> Result<Operator> {
        allow_lease(&env, &format!("maintenance-operator-{namespace}"))?;
        let log = env.logs.join(format!("{name}.operator.log"));
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        // A fresh log per run: restarts within the run append to it.
        std::fs::write(&log, "")?;
        let mut op = Operator {
            child: None,
            log,
            env,
            namespace: namespace.into(),
            instance: name.into(),
            port,
            trusted_namespaces: trusted.map(String::from),
            extra_env: vec![],
            through_port: None,
            image: None,
        };
        op.spawn()?;
        Ok(op)
    }

    /// The operator's kubeconfig, with this replica's name as the impersonation extra
    /// `instance`, which the API server's audit log records with every request it makes.
    fn kubeconfig(&self) -> Result<PathBuf> {
        let mut k: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&self.env.operator_kubeconfig)?)?;
        for u in k["users"].as_sequence_mut().context("kubeconfig has users")? {
            u["user"]["as-user-extra"] = serde_yaml::to_value(json!({"instance": [self.instance]}))?;
        }
        if let Some(port) = self.through_port {
            for c in k["clusters"].as_sequence_mut().context("kubeconfig has clusters")? {
                c["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
            }
        }
        let path = self.env.logs.join(format!("{}.kubeconfig", self.instance));
        std::fs::write(&path, serde_yaml::to_string(&k)?)?;
        Ok(path)
    }

    /// From now on, run from the image `make image` built, under runc, as its ServiceAccount
    /// (a token the API server issued, not the impersonating kubeconfig): stopped, then started so.
    pub async fn run_from_image(&mut self) -> Result<()> {
        let image = image::Image::unpacked(&self.env).await?;
        // Stopped as a kubelet stops it: its Lease released, so the image's run leads at once.
        if self.child.is_some() {
            self.terminate(Duration::from_secs(10))?;
        }
        self.image = Some(image);
        self.spawn()
    }

    /// The name runc knows its container by, while it runs from the image: one per cluster
    /// (cluster-down.sh removes what is left of them) and replica.
    pub fn container_id(&self) -> Option<String> {
        let cluster = self.env.cluster_dir.file_name()?.to_string_lossy().into_owned();
        self.image.as_ref().map(|_| format!("mo-{cluster}-{}", self.instance))
    }

    /// Where its run from the image keeps its bundle and ServiceAccount files.
    fn bundle(&self) -> PathBuf {
        self.env.logs.join(format!("{}.bundle", self.instance))
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut settings = self.env.settings()?;
        let mut setting = |key: &str| settings.remove(key).unwrap_or_default();
        let trusted = match &self.trusted_namespaces {
            Some(t) => t.clone(),
            None => setting("trustedNamespaces"),
        };
        let args: Vec<String> = [
            "run",
            "--listen",
            &format!("127.0.0.1:{}", self.port),
            "--namespace",
            &self.namespace,
            "--instance",
            &self.instance,
            "--leader-elect=true",
        ]
        .map(String::from)
        .into();
        let mut envs: Vec<(String, String)> = vec![
            ("RUST_LOG".into(), "info,kube=warn".into()),
            ("TRUSTED_NAMESPACES".into(), trusted),
            ("PROMETHEUS_ADDRESSES".into(), setting("prometheusAddresses")),
            ("WEBHOOK_HOSTS".into(), setting("webhookHosts")),
        ];
        for (k, v) in &self.extra_env {
            envs.retain(|(name, _)| name != k);
            envs.push((k.clone(), v.clone()));
        }
        let child = match (&self.image, self.container_id()) {
            (Some(image), Some(id)) => {
                // As a kubelet starts a pod: the API server by the Service variables (its
                // loopback address and port here), its own ServiceAccount's files.
                let server = self.env.api_server()?;
                let port = self.through_port.map_or(server.1, |p| p.to_string());
                envs.push(("KUBERNETES_SERVICE_HOST".into(), server.0));
                envs.push(("KUBERNETES_SERVICE_PORT".into(), port));
                let bundle = self.bundle();
                let secrets = bundle.join("serviceaccount");
                image::service_account_files(&self.env, &secrets, image.uid, image.gid)?;
                image.write_bundle(&bundle, &args, &envs, &secrets)?;
                let _ = Command::new("runc").args(["delete", "--force", &id]).output();
                Command::new("runc")
                    .args(["run", "--bundle"])
                    .arg(&bundle)
                    .arg(&id)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting runc (Debian's runc package)")?
            }
            _ => {
                let bin = self.env.root.join("target/debug/maintenance-operator");
                Command::new(&bin)
                    .args(&args)
                    .env("KUBECONFIG", self.kubeconfig()?)
                    .envs(envs)
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .with_context(|| format!("starting {}", bin.display()))?
            }
        };
        self.child = Some(child);
        // Ready when its HTTP endpoint answers; an operator that exits at start fails here, loudly.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait()? {
                bail!("the operator exited at start ({status}):\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("the operator did not start listening within 20s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as the kubelet sends it: how long the process took to exit, or an error (after a
    /// SIGKILL) when it was still running after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Result<Duration> {
        let Some(mut child) = self.child.take() else { bail!("the operator is not running") };
        let sent = Instant::now();
        match self.container_id() {
            Some(id) => Command::new("runc").args(["kill", &id, "TERM"]).status()?,
            None => Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?,
        };
        while sent.elapsed() < limit {
            if child.try_wait()?.is_some() {
                return Ok(sent.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGKILL, as `kill` sends it (to the container too, when it runs from the image).
        self.child = Some(child);
        self.kill();
        bail!("the operator was still running {limit:?} after SIGTERM:\n{}", self.log())
    }

    /// SIGKILL: no chance to finish anything in flight.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // runc passes on every signal but this one: the container itself is killed.
            if let Some(id) = self.container_id() {
                let _ = Command::new("runc").args(["kill", &id, "KILL"]).status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(id) = self.container_id() {
            let _ = Command::new("runc").args(["delete", "--force", &id]).output();
            // Its token is a credential: gone with the container.
            let _ = std::fs::remove_dir_all(self.bundle().join("serviceaccount"));
        }
    }

    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process ID, while it runs.
    pub fn pid(&mut self) -> Option<u32> {
        let id = self.container_id();
        let child = self.child.as_mut()?;
        let running = child.try_wait().ok().flatten().is_none();
        match id {
            // The operator's own process, not runc's.
            Some(id) => running.then(|| image::container_pid(&id).ok()).flatten(),
            None => running.then(|| child.id()),
        }
    }

    /// What it answers on `path` (`/healthz`, `/readyz`): the HTTP status and the body.
    pub async fn probe(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let resp = reqwest::get(&url).await.expect("the operator serves its probes");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    /// Its Prometheus metrics, as text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        reqwest::get(&url).await.expect("the operator serves /metrics").text().await.unwrap_or_default()
    }
}

/// One body POSTed to a `Receiver`: its path, the body, and when it arrived.
pub type Delivery = (String, serde_json::Value, chrono::DateTime<chrono::Utc>);

/// A webhook receiver on a port of its own: it keeps every body POSTed to it, and can be stopped
/// (connections are refused) and started again on the same port.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<std::sync::Mutex<Vec<Delivery>>>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver not listening yet.
    pub fn down() -> Receiver {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
        Receiver { port, got: Arc::default(), server: None }
    }

    pub async fn start(&mut self) {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("the port is free");
        let got = self.got.clone();
        let app = axum::Router::new().route(
            "/{path}",
            axum::routing::post(
                move |axum::extract::Path(path): axum::extract::Path<String>, body: String| {
                    let got = got.clone();
                    async move {
                        let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                        got.lock().unwrap().push((path, v, chrono::Utc::now()));
                        "ok"
                    }
                },
            ),
        );
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }

    /// The bodies POSTed to /`path`.
    pub fn bodies(&self, path: &str) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, v, _)| v.clone()).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One scenario: its own namespace and operator, the state dumped if it fails, cleaned up after.
pub struct Scenario {
    pub name: String,
    pub ns: String,
    pub env: Arc<Env>,
    pub client: Client,
    pub operator: Operator,
    tasks: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Scenario {
    pub async fn new(name: &str) -> Scenario {
        Self::try_new(name).await.expect("the e2e environment is usable")
    }

    async fn try_new(name: &str) -> Result<Scenario> {
        let env = Arc::new(Env::from_env()?);
        let client = env.client().await?;
        env.setup().await?;
        let ns = format!("e2e-{name}");
        let nss: Api<Namespace> = Api::all(client.clone());
        // A namespace left by an earlier run is deleted first.
        if nss.get_opt(&ns).await?.is_some() {
            let _ = nss.delete(&ns, &DeleteParams::default()).await;
            let deadline = Instant::now() + Duration::from_secs(60);
            while nss.get_opt(&ns).await?.is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}}))?)
            .await?;
        create_nodes(&client, name).await?;
        let operator = Operator::start(env.clone(), name, &ns)?;
        Ok(Scenario {
            name: name.into(),
            ns,
            env,
            client,
            operator,
            tasks: vec![],
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn upgrades(&self) -> Api<MaintenanceUpgrade> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn daemonsets(&self) -> Api<DaemonSet> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A connector DaemonSet on the scenario's canary nodes (`canary: true`) or on all its nodes.
    pub async fn connector(&self, name: &str, image: &str, canary: bool) {
        let mut selector = json!({SCENARIO_LABEL: self.name});
        if canary {
            selector[CANARY_LABEL] = json!("true");
        }
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "updateStrategy": {"rollingUpdate": {"maxUnavailable": "50%"}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"nodeSelector": selector, "containers": [{"name": "connector", "image": image}]}
                }
            }
        }))
        .unwrap();
        self.daemonsets().create(&PostParams::default(), &ds).await.expect("create the connector DaemonSet");
        self.wait_rolled_out(name, Duration::from_secs(60)).await;
    }

    /// A node agent as charts ship it: one DaemonSet on every node of the scenario, its agent
    /// beside a registrar sidecar, the agent named as the pods' default container, rolled one
    /// node at a time.
    pub async fn node_agent(&self, name: &str, image: &str) {
        self.node_agent_on(name, image, ZONES).await
    }

    /// `node_agent` on the scenario's first `zones` zone nodes only (and on any node that joins).
    pub async fn node_agent_on(&self, name: &str, image: &str, zones: usize) {
        let others: Vec<String> = (zones..ZONES).map(|i| format!("z{i}")).collect();
        let affinity = match others.is_empty() {
            true => json!(null),
            false => {
                json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": ZONE_LABEL, "operator": "NotIn", "values": others}]}
                ]}}})
            }
        };
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": {"kubectl.kubernetes.io/default-container": "connector"}},
                    "spec": {"nodeSelector": {SCENARIO_LABEL: self.name}, "affinity": affinity, "containers": [
                        {"name": "registrar", "image": REGISTRAR},
                        {"name": "connector", "image": image}
                    ]}
                }
            }
        }))
        .unwrap();
        self.daemonsets().create(&PostParams::default(), &ds).await.expect("create the node agent DaemonSet");
        self.wait_rolled_out(name, Duration::from_secs(60)).await;
    }

    pub async fn wait_rolled_out(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ds = self.daemonsets().get(name).await.unwrap();
            let st = ds.status.clone().unwrap_or_default();
            if st.desired_number_scheduled > 0
                && st.number_available == Some(st.desired_number_scheduled)
                && st.updated_number_scheduled == Some(st.desired_number_scheduled)
            {
                return;
            }
            assert!(Instant::now() < deadline, "DaemonSet {name} did not roll out: {st:?}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// One more node of the scenario, `{scenario}-{suffix}` (a node that joins mid-upgrade);
    /// None removes it.
    pub async fn extra_node(&self, suffix: &str, present: bool) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let name = format!("{}-{suffix}", self.name);
        if present {
            let node = fake_node(&self.name, &name, "extra", false).unwrap();
            nodes.create(&PostParams::default(), &node).await.expect("create the extra node");
        } else if nodes.get_opt(&name).await.unwrap().is_some() {
            nodes.delete(&name, &DeleteParams::default()).await.expect("delete the extra node");
        }
    }

    /// `spec.updateStrategy` of DaemonSet `ds`, as the API server holds it.
    pub async fn strategy(&self, ds: &str) -> serde_json::Value {
        strategy_of(&self.daemonsets().get(ds).await.unwrap())
    }

    /// Assert that every pod of DaemonSet `ds` runs `image`, and that of the pods `before` (by
    /// node, as `pods_by_node` gives them) exactly those on the nodes `remade` names were made again.
    pub async fn assert_remade_only(
        &self,
        ds: &str,
        before: &std::collections::BTreeMap<String, (String, String)>,
        remade: impl Fn(&str) -> bool,
        image: &str,
    ) {
        for (node, (uid, now)) in &self.pods_by_node(ds).await {
            assert_eq!(now, image, "{node}");
            assert_eq!(uid != &before[node].0, remade(node), "{node}: only the canary's pods made again");
        }
    }

    /// The pods of DaemonSet `ds` by node: (pod UID, image of its `connector` container).
    pub async fn pods_by_node(&self, ds: &str) -> std::collections::BTreeMap<String, (String, String)> {
        let pods = self.live_pods(ds).await;
        pods.into_iter().filter_map(|(_, node, uid, image)| Some((node?, (uid, image)))).collect()
    }

    /// The pods labelled `app={app}` by name: (pod UID, image of its `connector` container).
    pub async fn pods_by_name(&self, app: &str) -> std::collections::BTreeMap<String, (String, String)> {
        let pods = self.live_pods(app).await;
        pods.into_iter().map(|(name, _, uid, image)| (name, (uid, image))).collect()
    }

    /// The pods labelled `app={app}` not being deleted: (name, node, UID, image of its
    /// `connector` container).
    async fn live_pods(&self, app: &str) -> Vec<(String, Option<String>, String, String)> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let listed = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap();
        listed
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let spec = p.spec?;
                let image = spec.containers.iter().find(|c| c.name == "connector")?.image.clone()?;
                Some((p.metadata.name?, spec.node_name, p.metadata.uid?, image))
            })
            .collect()
    }

    /// The image of the DaemonSet's `connector` container.
    pub async fn image(&self, ds: &str) -> String {
        let d = self.daemonsets().get(ds).await.unwrap();
        let containers = d.spec.unwrap().template.spec.unwrap().containers;
        containers.into_iter().find(|c| c.name == "connector").and_then(|c| c.image).unwrap()
    }

    pub async fn generation(&self, ds: &str) -> i64 {
        self.daemonsets().get(ds).await.unwrap().metadata.generation.unwrap()
    }

    /// Pods like the email-sync jobs, one every `every`, spread evenly over the zones; one in
    /// fifty asks for a zone that does not exist (a steady 2 % background error rate). Pods
    /// older than `keep` are deleted.
    pub fn workload(&mut self, every: Duration, keep: Duration) {
        self.workload_of("email-sync", every, keep)
    }

    /// `workload`'s pods, labelled `app={app}` and named after it.
    pub fn workload_of(&mut self, app: &str, every: Duration, keep: Duration) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let app = app.to_string();
        let stop = self.stop.clone();
        let scenario = self.name.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut i: u64 = 0;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_gc = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let zone = if i % 50 == 49 { "nowhere".to_string() } else { format!("z{}", i % ZONES as u64) };
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"generateName": format!("{app}-"), "labels": {"app": app}},
                    "spec": {"nodeSelector": {ZONE_LABEL: zone, SCENARIO_LABEL: scenario}, "restartPolicy": "Never",
                        "containers": [{"name": "sync", "image": "registry.example.com/email-sync:7"}]}
                }))
                .unwrap();
                let _ = pods.create(&PostParams::default(), &pod).await;
                i += 1;
                if last_gc.elapsed() > Duration::from_secs(1) {
                    last_gc = Instant::now();
                    if let Ok(list) = pods.list(&ListParams::default().labels(&format!("app={app}"))).await {
                        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap();
                        for p in list.items {
                            let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0);
                            if created < cutoff.timestamp() {
                                let _ = pods.delete(p.metadata.name.as_deref().unwrap(), &DeleteParams::default().grace_period(0)).await;
                            }
                        }
                    }
                }
            }
        }));
    }

    /// While DaemonSet `ds`'s pod on a node runs `BAD`, one in `every` of the email-sync pods
    /// bound to that node fails to mount its volume, as kubelet reports it (a Warning Event
    /// `FailedMount`): a fault of the canary's nodes alone, as a broken CSI node plugin makes.
    pub fn mount_faults(&mut self, ds: &str, every: usize) {
        self.mount_faults_of(ds, "email-sync", every)
    }

    /// `mount_faults` of the pods labelled `app={app}`.
    pub fn mount_faults_of(&mut self, ds: &str, app: &str, every: usize) {
        self.growing_mount_faults_of(ds, app, Duration::ZERO, 1.0 / every as f64)
    }

    /// `mount_faults` of a share of the email-sync pods on those nodes that grows linearly from 0
    /// to `max_share` over `ramp` from when a node first runs `BAD`: a slow regression of the
    /// canary's nodes alone.
    pub fn growing_mount_faults(&mut self, ds: &str, ramp: Duration, max_share: f64) {
        self.growing_mount_faults_of(ds, "email-sync", ramp, max_share)
    }

    fn growing_mount_faults_of(&mut self, ds: &str, app: &str, ramp: Duration, max_share: f64) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let app = app.to_string();
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let (ds, ns, stop) = (ds.to_string(), self.ns.clone(), self.stop.clone());
        self.tasks.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            // The failures owed so far: a pod fails each time it reaches one.
            let (mut owed, mut bad_since) = (0.0, None::<Instant>);
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let Ok(agents) = pods.list(&ListParams::default().labels(&format!("app={ds}"))).await else {
                    continue;
                };
                let bad: Vec<String> = agents
                    .items
                    .iter()
                    .filter(|p| p.spec.iter().flat_map(|s| &s.containers).any(|c| c.image.as_deref() == Some(BAD)))
                    .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                    .collect();
                if bad.is_empty() {
                    bad_since = None;
                    continue;
                }
                let since = *bad_since.get_or_insert_with(Instant::now);
                let grown = if ramp.is_zero() { 1.0 } else { (since.elapsed().as_secs_f64() / ramp.as_secs_f64()).min(1.0) };
                let Ok(sync) = pods.list(&ListParams::default().labels(&format!("app={app}"))).await else {
                    continue;
                };
                for p in sync.items {
                    let (Some(uid), Some(name)) = (p.metadata.uid.clone(), p.metadata.name.clone()) else { continue };
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
                    if !bad.contains(&node) || !seen.insert(uid.clone()) {
                        continue;
                    }
                    owed += grown * max_share;
                    if owed < 1.0 - 1e-9 {
                        continue;
                    }
                    owed -= 1.0;
                    let event: Event = serde_json::from_value(json!({
                        "metadata": {"generateName": format!("{name}.")},
                        "type": "Warning",
                        "reason": "FailedMount",
                        "message": "MountVolume.SetUp failed for volume \"secrets\": rpc error: code = Unavailable",
                        "involvedObject": {"kind": "Pod", "name": name, "namespace": ns, "uid": uid},
                        "source": {"component": "kubelet", "host": node},
                    }))
                    .unwrap();
                    let _ = events.create(&PostParams::default(), &event).await;
                }
            }
        }));
    }

    /// While any of `watched` runs `BAD`, cordon a share of the scenario's zone nodes that grows linearly
    /// from 0 to `max_share` over `ramp`: a slow regression of the scheduling error rate.
    pub fn fault_injector(&mut self, watched: &[&str], ramp: Duration, max_share: f64) {
        self.cordoning(Trigger::Template(watched.iter().map(|s| s.to_string()).collect()), ramp, max_share)
    }

    /// `fault_injector` of a fault that shows only at scale: while more than `canary` of
    /// DaemonSet `ds`'s pods run `BAD` (its fleet stage, never its canary on `canary` nodes).
    pub fn fault_injector_past(&mut self, ds: &str, canary: usize, ramp: Duration, max_share: f64) {
        self.cordoning(Trigger::Pods(ds.to_string(), canary), ramp, max_share)
    }

    fn cordoning(&mut self, trigger: Trigger, ramp: Duration, max_share: f64) {
        let ds = self.daemonsets();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let nodes: Api<Node> = Api::all(self.client.clone());
        let stop = self.stop.clone();
        let scenario = self.name.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut bad_since: Option<Instant> = None;
            let mut cordoned = usize::MAX; // unknown: set on the first pass
            let runs_bad = |s: Option<&k8s_openapi::api::core::v1::PodSpec>| {
                s.is_some_and(|s| s.containers.iter().any(|c| c.image.as_deref() == Some(BAD)))
            };
            while !stop.load(Ordering::Relaxed) {
                let mut bad = false;
                match &trigger {
                    Trigger::Template(watched) => {
                        for name in watched {
                            if let Ok(d) = ds.get(name).await {
                                bad |= runs_bad(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()));
                            }
                        }
                    }
                    Trigger::Pods(name, canary) => {
                        if let Ok(list) =
                            pods.list(&ListParams::default().labels(&format!("app={name}"))).await
                        {
                            bad = list.items.iter().filter(|p| runs_bad(p.spec.as_ref())).count() > *canary;
                        }
                    }
                }
                let share = match (bad, bad_since) {
                    (true, None) => {
                        bad_since = Some(Instant::now());
                        0.0
                    }
                    (true, Some(t)) => (t.elapsed().as_secs_f64() / ramp.as_secs_f64()).min(1.0) * max_share,
                    (false, _) => {
                        bad_since = None;
                        0.0
                    }
                };
                let want = (share * ZONES as f64).floor() as usize;
                if want != cordoned {
                    for i in 0..ZONES {
                        let patch = json!({"spec": {"unschedulable": i < want}});
                        let _ = nodes
                            .patch(&node_name(&scenario, i), &PatchParams::default(), &Patch::Merge(patch))
                            .await;
                    }
                    cordoned = want;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for i in 0..ZONES {
                let _ = nodes
                    .patch(
                        &node_name(&scenario, i),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"unschedulable": false}})),
                    )
                    .await;
            }
        }));
    }

    /// Every zone node of the scenario cordoned from now until StatefulSet `name` has run `BAD`
    /// and is back on another image, and none of its pods runs `BAD` any more: a pod it makes
    /// meanwhile never schedules, so it never becomes Ready (cordoned first, so that no race
    /// lets it schedule), and only its deletion lets the StatefulSet go on (not a node that opens
    /// while the pending pod is still there, which would schedule it and take the test's point).
    pub async fn cordon_until_reverted(&mut self, name: &str) {
        let sts: Api<StatefulSet> = Api::namespaced(self.client.clone(), &self.ns);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.ns);
        let nodes: Api<Node> = Api::all(self.client.clone());
        let scenario = self.name.clone();
        let runs_bad = |p: &PodSpec| p.containers.iter().any(|c| c.image.as_deref() == Some(BAD));
        let cordon = move |on: bool| {
            let (nodes, scenario) = (nodes.clone(), scenario.clone());
            async move {
                for i in 0..ZONES {
                    let patch = json!({"spec": {"unschedulable": on}});
                    let _ = nodes
                        .patch(&node_name(&scenario, i), &PatchParams::default(), &Patch::Merge(patch))
                        .await;
                }
            }
        };
        cordon(true).await;
        let (stop, name) = (self.stop.clone(), name.to_string());
        self.tasks.push(tokio::spawn(async move {
            let mut was_bad = false;
            while !stop.load(Ordering::Relaxed) {
                let bad = sts
                    .get(&name)
                    .await
                    .ok()
                    .and_then(|s| s.spec)
                    .is_some_and(|s| s.template.spec.as_ref().is_some_and(runs_bad));
                // A list that fails says nothing: the nodes stay cordoned until one succeeds.
                let listed = pods.list(&ListParams::default().labels(&format!("app={name}"))).await;
                let bad_pod_left = listed.map_or(true, |l| {
                    l.items.iter().any(|p| {
                        p.metadata.deletion_timestamp.is_none() && p.spec.as_ref().is_some_and(runs_bad)
                    })
                });
                if was_bad && !bad && !bad_pod_left {
                    break;
                }
                was_bad |= bad;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            cordon(false).await;
        }));
    }

    /// Create a MaintenanceUpgrade from YAML (namespace filled in).
    pub async fn apply(&self, yaml: &str) -> MaintenanceUpgrade {
        let mut mu: MaintenanceUpgrade = serde_yaml::from_str(yaml).expect("scenario YAML parses");
        mu.metadata.namespace = Some(self.ns.clone());
        self.upgrades().create(&PostParams::default(), &mu).await.expect("the API server accepts the upgrade")
    }

    /// Poll until `done` holds for the upgrade; panics with its status after `timeout`.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&MaintenanceUpgrade) -> bool,
    ) -> MaintenanceUpgrade {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mu) = self.upgrades().get(name).await {
                if done(&mu) {
                    return mu;
                }
                if Instant::now() > deadline {
                    panic!(
                        "{name}: not {what} within {timeout:?}; status: {}",
                        serde_yaml::to_string(&mu.status).unwrap_or_default()
                    );
                }
            } else if Instant::now() > deadline {
                panic!("{name}: not {what} within {timeout:?} (could not read it)");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// What Argo CD would show for the upgrade as stored: config/argocd/health.lua run on it
    /// (status, message).
    pub fn argo_health(&self, name: &str) -> (String, String) {
        let obj =
            self.env.kubectl(&["get", "maintenanceupgrade", "-n", &self.ns, name, "-o", "json"]).unwrap();
        let argocd = self.env.root.join("config/argocd");
        let mut lua = Command::new("lua5.4")
            .arg(argocd.join("run.lua"))
            .arg(argocd.join("health.lua"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("lua5.4 runs (make cluster-binaries installs it)");
        use std::io::Write;
        lua.stdin.take().unwrap().write_all(obj.as_bytes()).unwrap();
        let out = lua.wait_with_output().unwrap();
        assert!(out.status.success(), "health.lua: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        let (status, message) = line.split_once('\t').unwrap_or((&line, ""));
        (status.to_string(), message.to_string())
    }

    /// Until the upgrade is in `phase`; a final one with its targets released too (the look
    /// after the one that writes it).
    pub async fn wait_phase(&self, name: &str, phase: Phase, timeout: Duration) -> MaintenanceUpgrade {
        self.wait_for(name, timeout, &format!("{phase:?}"), |mu| {
            mu.status
                .as_ref()
                .is_some_and(|s| s.phase == phase && (!phase.is_terminal() || s.released_at.is_some()))
        })
        .await
    }

    /// Events about one upgrade, as `REASON: message`.
    pub async fn events(&self, name: &str) -> Vec<String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let lp = ListParams::default()
            .fields(&format!("involvedObject.name={name},involvedObject.kind=MaintenanceUpgrade"));
        let mut evs = api.list(&lp).await.map(|l| l.items).unwrap_or_default();
        evs.sort_by_key(|e| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
        evs.into_iter()
            .map(|e| format!("{}: {}", e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }

    pub async fn has_event(&self, name: &str, reason: &str) -> bool {
        with_reason(&self.events(name).await, reason)
    }

    /// The Events about the upgrade once `done` holds of them, or as they stand after 10 s:
    /// Events that follow a status write may land a moment after the status a test waited for.
    pub async fn events_when(&self, name: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events(name).await;
            if done(&events) || Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Whether an Event with `reason` about the upgrade shows up within 10 s.
    pub async fn saw_event(&self, name: &str, reason: &str) -> bool {
        with_reason(&self.events_when(name, |events| with_reason(events, reason)).await, reason)
    }

    /// Stop the generator and the injector (uncordoning every node).
    pub async fn stop_background(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    /// Stop the API server for `down` (SIGKILL, like a crash), then start it again. Like kubelet
    /// on a control-plane node, keep restarting for `supervise` any component that exits
    /// meanwhile: kube-scheduler and kube-controller-manager exit when they lose their leader
    /// lease during the outage.
    pub fn restart_apiserver_in(env: &Env, down: Duration, supervise: Duration) -> Result<()> {
        // Read once, while every component runs: a later call may find one exited (the
        // supervisor restarts it), and its command line does not change.
        let components = {
            let mut known = COMPONENTS.lock().unwrap_or_else(|p| p.into_inner());
            if known.is_empty() {
                *known = components(env)?;
            }
            known.clone()
        };
        let apiserver =
            components.iter().find(|c| c.0 == "kube-apiserver").context("kube-apiserver pid file")?;
        let pid = std::fs::read_to_string(&apiserver.1)?.trim().to_string();
        Command::new("kill").args(["-9", &pid]).status()?;
        while Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(down);
        let logs = env.cluster_dir.join("logs");
        let start = move |(name, pid_file, args, cwd): &Component| -> Result<()> {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(logs.join(format!("{name}.log")))?;
            let child = Command::new(&args[0])
                .args(&args[1..])
                .current_dir(cwd)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            std::fs::write(pid_file, child.id().to_string())?;
            // Reap it when it exits, so that /proc shows it gone; cluster-down stops it.
            std::thread::spawn(move || {
                let mut child = child;
                let _ = child.wait();
            });
            Ok(())
        };
        start(apiserver)?;
        // One supervisor at a time, of the other components only: two would both start a
        // component that exited, and the one that loses its port leaves its PID in the file.
        let until = Instant::now() + supervise;
        let mut running = SUPERVISING.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some_and(|t| t > Instant::now()) {
            *running = Some(until.max(running.unwrap()));
            return Ok(());
        }
        *running = Some(until);
        drop(running);
        let others: Vec<_> = components.into_iter().filter(|c| c.0 != "kube-apiserver").collect();
        std::thread::spawn(move || {
            loop {
                // Whether to stop is decided under the lock, so that a call extending the time
                // meanwhile either finds this supervisor running or starts its own.
                {
                    let mut until = SUPERVISING.lock().unwrap_or_else(|p| p.into_inner());
                    if until.is_none_or(|t| Instant::now() >= t) {
                        *until = None;
                        return;
                    }
                }
                for c in &others {
                    let alive = std::fs::read_to_string(&c.1)
                        .ok()
                        .is_some_and(|p| Path::new(&format!("/proc/{}", p.trim())).exists());
                    if !alive {
                        eprintln!("supervisor: {} exited; restarting it", c.0);
                        let _ = start(c);
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Ok(())
    }

    pub fn prometheus(&self, up: bool) -> Result<()> {
        let dir = self.env.prometheus_dir.to_str().unwrap().to_string();
        let script = self.env.root.join("e2e/scripts/prometheus.sh");
        let status = if up {
            let port = std::fs::read_to_string(self.env.prometheus_dir.join("port"))?;
            Command::new(script).args(["start", &dir, port.trim()]).status()?
        } else {
            Command::new(script).args(["stop", &dir]).status()?
        };
        if !status.success() {
            bail!("prometheus.sh failed");
        }
        Ok(())
    }

    pub fn dump(&self) {
        eprintln!("==== {} failed: cluster state ====", self.name);
        for args in [
            vec!["get", "maintenanceupgrades", "-n", &self.ns, "-o", "yaml"],
            vec!["get", "daemonsets,deployments,statefulsets", "-n", &self.ns, "-o", "wide"],
            vec![
                "get",
                "events",
                "-n",
                &self.ns,
                "--field-selector",
                "involvedObject.kind=MaintenanceUpgrade",
            ],
            vec!["get", "nodes", "-l", &format!("{SCENARIO_LABEL}={}", self.name)],
        ] {
            eprintln!(
                "$ kubectl {}\n{}",
                args.join(" "),
                self.env.kubectl(&args).unwrap_or_else(|e| e.to_string())
            );
        }
        let log = self.operator.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        eprintln!(
            "==== operator log (last 60 lines) ====\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if std::thread::panicking() {
            self.dump();
        }
        self.operator.kill();
        // With no operator left to remove them, the upgrades' finalizers would hold the namespace
        // (and a later deletion of the CRD) for ever: removed by hand, as the docs say.
        let names = self.env.kubectl(&["get", "maintenanceupgrades", "-n", &self.ns, "-o", "name"]);
        for name in names.unwrap_or_default().lines() {
            let _ = self.env.kubectl(&[
                "patch",
                name,
                "-n",
                &self.ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
        let _ = self.env.kubectl(&["delete", "namespace", &self.ns, "--wait=false"]);
        let _ = self.env.kubectl(&[
            "delete",
            "nodes",
            "-l",
            &format!("{SCENARIO_LABEL}={}", self.name),
            "--wait=false",
        ]);
    }
}

/// Peak resident memory of a process (MiB), from /proc.
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    proc_status_mib(pid, "VmHWM:")
}

/// Resident memory of a process now (MiB), from /proc.
pub fn rss_mib(pid: u32) -> Result<f64> {
    proc_status_mib(pid, "VmRSS:")
}

/// A line of /proc/PID/status given in kB, in MiB.
fn proc_status_mib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("{field} in /proc/PID/status"))?;
    Ok(kib / 1024.0)
}

/// The memory limit (MiB) the manager Deployment of config/manager sets: what a real install
/// would OOM-kill the operator at.
pub fn manager_memory_limit_mib(env: &Env) -> Result<f64> {
    let text = std::fs::read_to_string(env.root.join("config/manager/deployment.yaml"))?;
    let d: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let limit = d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        .as_str()
        .context("config/manager/deployment.yaml sets a memory limit")?;
    let mib = limit.strip_suffix("Mi").context("the memory limit is written in Mi")?;
    Ok(mib.parse()?)
}

/// Whether one of `events` (as `Scenario::events` gives them) has `reason`.
fn with_reason(events: &[String], reason: &str) -> bool {
    events.iter().any(|e| e.starts_with(&format!("{reason}:")))
}

/// A DaemonSet's `spec.updateStrategy`, as JSON (null when it has none).
pub fn strategy_of(ds: &DaemonSet) -> serde_json::Value {
    serde_json::to_value(ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref())).unwrap()
}
