//! The `maintenance-operator` binary: `run` the controller, print the `crd`, or `replay` a trace
//! through the detector.

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;
use maintenance_operator::{controller, crd::MaintenanceUpgrade, metrics, replay};

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
        /// Name of this instance on the Events it publishes (the pod name in a cluster).
        #[arg(long, env = "POD_NAME")]
        instance: Option<String>,
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Reconcile only the MaintenanceUpgrades of this namespace (default: every namespace).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
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
    let cli = Cli::parse();
    let default = Command::Run {
        instance: std::env::var("POD_NAME").ok(),
        listen: ([127, 0, 0, 1], 8080).into(),
        namespace: std::env::var("WATCH_NAMESPACE").ok(),
    };
    match cli.command.unwrap_or(default) {
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
        Command::Run { instance, listen, namespace } => {
            tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,kube=warn".into()),
                )
                .init();
            let client = kube::Client::try_default().await?;
            tracing::info!("maintenance-operator {} starting", env!("CARGO_PKG_VERSION"));
            let m = metrics::Metrics::default();
            let server = tokio::spawn(metrics::serve(listen, m.clone()));
            // Stopping at once is safe: every step is recognised as done or not when observed
            // again (the e2e tests SIGKILL the operator mid-rollout), so a signal ends the process
            // without waiting for a reconcile in flight.
            tokio::select! {
                _ = controller::run(client, instance, namespace, m) => {}
                res = server => anyhow::bail!("the metrics server stopped: {res:?}"),
                signal = terminated() => tracing::info!("{signal}: stopping"),
            }
        }
    }
    Ok(())
}
