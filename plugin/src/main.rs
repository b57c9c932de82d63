//! `kubectl maintenance`: follow, pause, resume, approve and roll back MaintenanceUpgrades from
//! the terminal, and lint one before applying it. Every change is a plain patch of the resource,
//! the same as a `kubectl patch`; the operator does the rest.

mod change;
mod lint;
mod status;
mod terminal;

use clap::{Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::process::ExitCode;

/// Exit codes, so that scripts can tell the outcomes apart.
pub mod exit {
    /// Succeeded (status), done (the other commands).
    pub const OK: u8 = 0;
    /// The upgrade rolled back, failed, or was deleted before it ended (status -w); lint found
    /// problems.
    pub const NOT_OK: u8 = 1;
    /// The request cannot be done (clap's usage errors are 2 too).
    pub const REFUSED: u8 = 2;
    /// Still in progress (status without -w).
    pub const RUNNING: u8 = 3;
    /// The cluster could not be reached or answered with an error.
    pub const API: u8 = 4;
    /// Waits for someone (status without -w): AwaitingApproval, Paused, Degraded (a problem
    /// found, its rollback waiting for a human or the window), or Blocked.
    pub const ATTENTION: u8 = 5;
}

#[derive(Parser)]
#[command(
    name = "kubectl maintenance",
    version,
    about = "Follow and steer MaintenanceUpgrades (maintenance-operator)",
    after_help = "Exit codes: 0 done (or already so) or Succeeded; 1 RolledBack or Failed, deleted before it ended (-w), or lint found problems; \
                  2 refused or bad usage; 3 still in progress (status without -w); 4 API error, or a kubeconfig or file it cannot read; \
                  5 waits for someone: AwaitingApproval, Paused, Degraded or Blocked (status without -w)."
)]
struct Cli {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// The namespace (default: the context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One upgrade: the window, each stage and component, each signal, and what happens next.
    Status {
        name: String,
        /// Watch it and redraw on every change until it ends; the exit code is its outcome.
        #[arg(short, long)]
        watch: bool,
    },
    /// Every upgrade in the namespace, one line each.
    List {
        /// In every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// No new stage starts and nothing is promoted; analysis and automatic rollback go on.
    Pause { name: String },
    /// Undo pause.
    Resume { name: String },
    /// Let a stage that requires approval start.
    Approve { name: String, stage: String },
    /// Revert every changed component to its known-good image now.
    Rollback { name: String },
    /// Check a MaintenanceUpgrade before applying it: a strict server-side dry run of the file as
    /// written, and what the operator checks itself (targets exist, containers named where
    /// needed, ownership). Changes nothing.
    Lint {
        #[arg(short = 'f', long = "filename")]
        file: std::path::PathBuf,
    },
}

/// A client and the namespace to use, from the kubeconfig flags as kubectl reads them.
pub struct Target {
    pub client: kube::Client,
    pub namespace: String,
}

async fn connect(cli: &Cli) -> anyhow::Result<Target> {
    let options = KubeConfigOptions { context: cli.context.clone(), cluster: None, user: None };
    let config = match &cli.kubeconfig {
        // KUBECONFIG may list several files, like kubectl's.
        Some(path) => {
            let from_env = std::env::var_os("KUBECONFIG").is_some_and(|v| v == path.as_os_str());
            kube::Config::from_custom_kubeconfig(merged_kubeconfig(path.as_os_str(), from_env)?, &options)
                .await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    let namespace = cli.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
    Ok(Target { client: kube::Client::try_from(config)?, namespace })
}

/// The kubeconfig files `paths` lists, merged as kubectl merges them: the first to set a field
/// wins. A file KUBECONFIG (`from_env`) lists that does not exist is skipped, like an empty
/// entry, as kubectl skips it (one it may not read is an error); one given with `--kubeconfig`
/// must exist.
fn merged_kubeconfig(paths: &std::ffi::OsStr, from_env: bool) -> anyhow::Result<Kubeconfig> {
    let mut merged: Option<Kubeconfig> = None;
    for p in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
        let absent = matches!(std::fs::metadata(&p), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if from_env && absent {
            continue;
        }
        let read = Kubeconfig::read_from(&p)?;
        merged = Some(match merged {
            Some(m) => m.merge(read)?,
            None => read,
        });
    }
    merged.ok_or_else(|| anyhow::anyhow!("none of the files KUBECONFIG lists exists: {}", paths.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let target = match connect(&cli).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot use the kubeconfig: {}", terminal::safe(&e.to_string(), false));
            return ExitCode::from(exit::API);
        }
    };
    let code = match &cli.command {
        Command::Status { name, watch } => status::status(&target, name, *watch).await,
        Command::List { all_namespaces } => status::list(&target, *all_namespaces).await,
        Command::Pause { name } => change::run(&target, name, change::Request::Pause).await,
        Command::Resume { name } => change::run(&target, name, change::Request::Resume).await,
        Command::Approve { name, stage } => {
            change::run(&target, name, change::Request::Approve(stage.clone())).await
        }
        Command::Rollback { name } => change::run(&target, name, change::Request::Rollback).await,
        Command::Lint { file } => lint::lint(&target, file).await,
    };
    match code {
        Ok(c) => ExitCode::from(c),
        Err(e) => {
            eprintln!("error: {}", terminal::safe(&e.to_string(), false));
            ExitCode::from(exit::API)
        }
    }
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
