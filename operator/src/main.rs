//! The `maintenance-operator` binary: `run` the controller, print the `crd`, or `replay` a trace
//! through the detector.

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;
use maintenance_operator::{
    Fence, Health, LeaseConfig, Metrics, Options, Outbound, OutboundSettings, REQUEST_TIMEOUT, Recording,
    crd::MaintenanceUpgrade, replay,
};

#[derive(Parser)]
#[command(
    version,
    about = "Staged upgrades inside maintenance windows, with a long soak and automatic revert"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default) against the cluster in KUBECONFIG or in-cluster config.
    Run {
        /// Name of this instance on its Events and its Lease (the pod name in a cluster; by
        /// default the host name and process ID). It must be unique among the processes running
        /// at once: one that finds its own name holding the Lease takes it as its own.
        #[arg(long, env = "POD_NAME")]
        instance: Option<String>,
        /// How log lines are written: text for people, json for log pipelines.
        #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Reconcile only the MaintenanceUpgrades of this namespace (default: every namespace).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Reconcile only while holding a coordination.k8s.io Lease (in --lease-namespace), so
        /// that several replicas can run: one leads, the others keep their caches warm and take
        /// over. Off unless asked for, as kubebuilder's managers do: the manifests in config/
        /// turn it on, and a run from a checkout (`make run`) needs no namespace of its own.
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
        leader_elect: bool,
        /// Namespaces whose upgrades may target workloads in other namespaces, comma-separated
        /// (default: none; an upgrade changes workloads in its own namespace only). The same
        /// setting as the admission policy's in config/default.
        #[arg(long, env = "TRUSTED_NAMESPACES", value_delimiter = ',', default_value = "")]
        trusted_namespaces: Vec<String>,
        /// Prometheus base URLs a signal may name, comma-separated (default: none, so no
        /// Prometheus signal is read until the installer names one). The same setting as the
        /// admission policy's in config/default.
        #[arg(long, env = "PROMETHEUS_ADDRESSES", value_delimiter = ',', default_value = "")]
        prometheus_addresses: Vec<String>,
        /// Where webhooks may be sent, comma-separated: `*` for any https host but loopback,
        /// link-local and the API server, or `scheme://host[:port]` entries (without a port, any
        /// port) allowed whatever their address.
        #[arg(long, env = "WEBHOOK_HOSTS", value_delimiter = ',', default_value = "*")]
        webhook_hosts: Vec<String>,
        /// A Secret in the operator's namespace (POD_NAMESPACE) with the URL (key `url`, and
        /// optionally `format`: Generic or Slack) of the webhook told about every upgrade that
        /// names no webhooks of its own.
        #[arg(long, env = "DEFAULT_WEBHOOK_SECRET")]
        default_webhook_secret: Option<String>,
        /// Namespace of the Lease: the operator's own (in a pod, POD_NAMESPACE).
        #[arg(long, env = "POD_NAMESPACE", default_value = "maintenance-operator")]
        lease_namespace: String,
        /// How long the Lease stays held without a renewal: the longest a takeover waits (at
        /// least 5s, at most 10m). Every replica should run with the same.
        #[arg(long, default_value = "15s", value_parser = lease_duration)]
        lease_duration: std::time::Duration,
        /// Record the built-in signal between upgrades (ConfigMap maintenance-operator-history
        /// in the operator's namespace, a week at most), so that its baseline knows the time of
        /// day instead of resting on a short live observation.
        #[arg(long, env = "RECORD_HISTORY", default_value_t = true, action = clap::ArgAction::Set)]
        record_history: bool,
        /// The recording's bucket.
        #[arg(long, env = "HISTORY_BUCKET", default_value = "10m", value_parser = humantime::parse_duration)]
        history_bucket: std::time::Duration,
        /// How long after creation a pod of the whole recording is judged: signals with this
        /// `pendingLimit` (the default), no selector and every namespace get it as their
        /// baseline. Other built-in signals are recorded in scopes of their own, once an
        /// upgrade names them.
        #[arg(long, env = "HISTORY_PENDING_LIMIT", default_value = "5m", value_parser = humantime::parse_duration)]
        history_pending_limit: std::time::Duration,
    },
    /// Print the CustomResourceDefinition as YAML.
    Crd,
    /// Replay a recorded trace through the detector: would the operator have rolled back, when?
    Replay {
        /// CSV with header ts,attempts,errors (RFC 3339 end of each interval, evenly spaced).
        #[arg(long)]
        trace: std::path::PathBuf,
        /// When the change was made: earlier rows are the baseline, later rows the soak.
        #[arg(long)]
        change_at: String,
        /// A MaintenanceUpgrade whose signal's regression rule to use (default: the defaults).
        #[arg(long)]
        spec: Option<std::path::PathBuf>,
        /// Which signal of --spec (default: the first).
        #[arg(long)]
        signal: Option<String>,
        /// Write a picture of the error rate, baseline, statistic and decision (SVG).
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C), whichever comes first.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        // Without signal handlers the default action (exit) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // No subcommand means `run`, with its flags' defaults and environment.
    let command = match Cli::parse().command {
        Some(c) => c,
        None => Cli::parse_from(["maintenance-operator", "run"]).command.expect("run parses"),
    };
    match command {
        Command::Crd => print!("{}", serde_yaml::to_string(&MaintenanceUpgrade::crd())?),
        Command::Replay { trace, change_at, spec, signal, plot } => {
            let fail = |msg: String| -> anyhow::Error {
                eprintln!("error: {msg}");
                std::process::exit(2)
            };
            let text =
                std::fs::read_to_string(&trace).map_err(|e| fail(format!("{}: {e}", trace.display())))?;
            let rows = replay::parse_trace(&text).map_err(|e| fail(format!("{}: {e}", trace.display())))?;
            let change_at = chrono::DateTime::parse_from_rfc3339(&change_at)
                .map_err(|e| fail(format!("--change-at {change_at:?} is not RFC 3339: {e}")))?
                .with_timezone(&chrono::Utc);
            let rule = match spec {
                Some(p) => {
                    let yaml =
                        std::fs::read_to_string(&p).map_err(|e| fail(format!("{}: {e}", p.display())))?;
                    replay::rule_from_spec(&yaml, signal.as_deref())
                        .map_err(|e| fail(format!("{}: {e}", p.display())))?
                }
                None => Default::default(),
            };
            let outcome = replay::replay(&rows, change_at, &rule).map_err(fail)?;
            print!("{}", replay::summary(&outcome));
            if let Some(p) = plot {
                let step = (maintenance_operator::detector::Cusum::from_rule(&rule).bucket.num_seconds()
                    / (rows.get(1).map(|r| (r.0 - rows[0].0).num_seconds()).unwrap_or(60)).max(1))
                    as usize;
                std::fs::write(&p, replay::plot_svg(&outcome, step))
                    .map_err(|e| fail(format!("{}: {e}", p.display())))?;
                println!("plot:     {}", p.display());
            }
            println!("{}", serde_json::to_string(&outcome)?);
        }
        Command::Run {
            instance,
            log_format,
            listen,
            namespace,
            trusted_namespaces,
            prometheus_addresses,
            webhook_hosts,
            default_webhook_secret,
            leader_elect,
            lease_namespace,
            lease_duration,
            record_history,
            history_bucket,
            history_pending_limit,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into());
            let logs = tracing_subscriber::fmt().with_env_filter(filter);
            match log_format {
                LogFormat::Json => logs.json().init(),
                LogFormat::Text => {
                    logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())).init()
                }
            }
            let config = kube::Config::infer().await?;
            // The API server is never a webhook's destination, by any of its names.
            let mut api_server: Vec<String> =
                config.cluster_url.host().into_iter().map(String::from).collect();
            api_server.extend(std::env::var("KUBERNETES_SERVICE_HOST"));
            if let Some(host) = config.cluster_url.host()
                && let Ok(addrs) = tokio::net::lookup_host((host, 443)).await
            {
                api_server.extend(addrs.map(|a| a.ip().to_string()));
            }
            let listed = |v: Vec<String>| -> Vec<String> {
                v.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
            };
            let settings = OutboundSettings {
                prometheus_addresses: listed(prometheus_addresses),
                webhook_hosts: listed(webhook_hosts),
                api_server,
            };
            let outbound = Outbound::new(&settings, REQUEST_TIMEOUT).map_err(|e| anyhow::anyhow!("{e}"))?;
            // Outside its term a leader writes nothing: every write goes through the fence. The
            // Lease itself is renewed with a client of its own, which the fence does not hold.
            let fence = if leader_elect { Fence::closed() } else { Fence::open() };
            let health = Health::default();
            let lease_client = kube::Client::try_from(config.clone())?;
            let client = fence.client(config)?;
            let identity = instance.unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "maintenance-operator".into());
                format!("{host}-{}", std::process::id())
            });
            let default_webhook_secret =
                default_webhook_secret.filter(|s| !s.is_empty()).map(|s| (lease_namespace.clone(), s));
            let history = record_history.then(|| {
                let d =
                    |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
                let recording = Recording {
                    bucket: d(history_bucket).max(chrono::Duration::seconds(1)),
                    pending_limit: d(history_pending_limit),
                };
                (lease_namespace.clone(), recording)
            });
            // Operators that watch different namespaces do not compete for one Lease.
            let lease = leader_elect.then(|| LeaseConfig {
                namespace: lease_namespace,
                name: namespace
                    .as_ref()
                    .map_or("maintenance-operator".into(), |ns| format!("maintenance-operator-{ns}")),
                identity: identity.clone(),
                duration: lease_duration,
            });
            let lease = lease.map(|l| (l, lease_client));
            let trusted_namespaces = listed(trusted_namespaces);
            let opts = Options {
                instance: Some(identity),
                scope: namespace,
                trusted_namespaces,
                default_webhook_secret,
                history,
                outbound,
                fence,
                health: health.clone(),
            };
            tracing::info!("maintenance-operator {} starting", env!("CARGO_PKG_VERSION"));
            let m = Metrics::default();
            let server = tokio::spawn(maintenance_operator::serve_metrics(listen, m.clone(), health));
            // Stopping at once is safe: every step is recognised as done or not when observed
            // again (the e2e tests SIGKILL the operator mid-rollout), so a signal ends the process
            // without waiting for a reconcile in flight; a leader releases its Lease first.
            tokio::select! {
                stopped = maintenance_operator::run(client, opts, m, lease, terminated()) => match stopped {
                    Ok(signal) => tracing::info!("{signal}: stopping"),
                    Err(e) => anyhow::bail!("{e}"),
                },
                res = server => anyhow::bail!("the metrics server stopped: {res:?}"),
            }
        }
    }
    Ok(())
}

/// `--lease-duration`: a duration the leader's term can work with. Shorter than the minimum, a
/// renewal's round trip eats the term (at 0s it ends as soon as it is sent: a leader that never
/// writes, and no follower takes over); longer than the maximum, a follower could not tell it
/// from a crashed leader's soon enough.
fn lease_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let (min, max) = (maintenance_operator::MIN_LEASE_DURATION, maintenance_operator::MAX_LEASE_DURATION);
    if d < min || d > max {
        return Err(format!(
            "{} is out of bounds: at least {}, at most {}",
            humantime::format_duration(d),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
