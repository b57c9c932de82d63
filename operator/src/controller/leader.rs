//! Act step's gate, needs a client: with several replicas, only the holder of one
//! coordination.k8s.io Lease reconciles. Every replica keeps its caches warm, so a follower that
//! takes the Lease over acts at once. On SIGTERM the leader releases the Lease before it exits,
//! so the next one need not wait for it to expire.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Where the Lease lives and who asks for it.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique among the replicas and stable across a container restart (the pod name).
    pub identity: String,
    /// How long a Lease stays held without a renewal: the longest a takeover waits.
    pub duration: Duration,
}

/// How long the leader may take to release the Lease on its way out.
const RELEASE_LIMIT: Duration = Duration::from_millis(1500);

/// Run `lead` while this replica holds the Lease, stop it when the Lease is lost, and return when
/// `shutdown` completes (releasing the Lease first), with what `shutdown` said.
pub async fn lead_while_holding<L, F>(
    client: Client,
    cfg: &LeaseConfig,
    lead: L,
    shutdown: impl Future<Output = &'static str>,
) -> Result<&'static str, kube_lease_manager::LeaseManagerError>
where
    L: Fn() -> F,
    F: Future<Output = ()>,
{
    let duration = cfg.duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &cfg.name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(duration)
        // Renew a third of the way before expiry: also the clock skew tolerated between nodes.
        .with_grace((duration / 3).max(1))
        .build()
        .await?;
    let (mut holding, task) = manager.watch().await;
    let mut shutdown = std::pin::pin!(shutdown);
    let lease = format!("{}/{}", cfg.namespace, cfg.name);
    loop {
        if !*holding.borrow_and_update() {
            info!(
                "following: waiting for Lease {lease}, held by another replica or not taken yet; caches stay warm"
            );
            tokio::select! {
                changed = wait_for(&mut holding, true) => if changed.is_err() { return Ok("the Lease watch ended") },
                signal = &mut shutdown => return Ok(step_down(holding, task, signal).await),
            }
        }
        info!("leading: this replica ({}) holds Lease {lease}", cfg.identity);
        tokio::select! {
            _ = lead() => warn!("the controller stopped while leading"),
            lost = wait_for(&mut holding, false) => {
                if lost.is_err() {
                    return Ok("the Lease watch ended");
                }
                warn!("lost Lease {lease}: no more reconciles from this replica until it holds it again");
            }
            signal = &mut shutdown => return Ok(step_down(holding, task, signal).await),
        }
    }
}

async fn wait_for(holding: &mut watch::Receiver<bool>, state: bool) -> Result<(), watch::error::RecvError> {
    holding.wait_for(|h| *h == state).await.map(|_| ())
}

/// Closing the channel makes the manager release the Lease; wait for that, briefly.
async fn step_down<T>(
    holding: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<T>,
    signal: &'static str,
) -> &'static str {
    let was_leading = *holding.borrow();
    drop(holding);
    if was_leading {
        match tokio::time::timeout(RELEASE_LIMIT, task).await {
            Ok(_) => info!("{signal}: released the Lease"),
            Err(_) => {
                warn!("{signal}: the Lease was not released within {RELEASE_LIMIT:?}; it expires on its own")
            }
        }
    }
    signal
}
