//! The `maintenance-operator` binary: `run` the controller, or print the `crd`.

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;
use maintenance_operator::{controller, crd::MaintenanceUpgrade, metrics};

#[derive(Parser)]
#[command(version, about = "Staged upgrades inside maintenance windows, with a long soak and automatic revert")]
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
    },
    /// Print the CustomResourceDefinition as YAML.
    Crd,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default = Command::Run { instance: std::env::var("POD_NAME").ok(), listen: ([127, 0, 0, 1], 8080).into() };
    match cli.command.unwrap_or(default) {
        Command::Crd => print!("{}", serde_yaml::to_string(&MaintenanceUpgrade::crd())?),
        Command::Run { instance, listen } => {
            tracing_subscriber::fmt()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into()))
                .init();
            let client = kube::Client::try_default().await?;
            tracing::info!("maintenance-operator {} starting", env!("CARGO_PKG_VERSION"));
            let m = metrics::Metrics::default();
            let server = tokio::spawn(metrics::serve(listen, m.clone()));
            tokio::select! {
                _ = controller::run(client, instance, m) => {}
                res = server => anyhow::bail!("the metrics server stopped: {res:?}"),
            }
        }
    }
    Ok(())
}
