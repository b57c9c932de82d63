//! Act step's gate, needs a client: with several replicas, only the holder of one
//! coordination.k8s.io Lease reconciles, and only within the term its last renewal proves
//! (`fence`): a leader that cannot renew stops writing before any other replica may take over.
//! Every replica keeps its caches warm, so a follower that takes the Lease over acts at once. On
//! SIGTERM the leader releases the Lease before it exits, so the next one need not wait for it to
//! expire.

use crate::health::Health;
use kube::Client;
use std::future::Future;
use std::time::Duration;
use tracing::{info, warn};

mod elector;
pub mod fence;
pub mod term;

pub use fence::Fence;

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

/// Run `lead` while this replica's term lasts, stop it when the term ends, and return when
/// `shutdown` completes (releasing the Lease first), with what `shutdown` said. `client` is the
/// unfenced one the Lease is renewed with; `fence` is the one the writers check.
pub async fn lead_while_holding<L, F>(
    client: Client,
    cfg: &LeaseConfig,
    fence: Fence,
    health: &Health,
    lead: L,
    shutdown: impl Future<Output = &'static str>,
) -> &'static str
where
    L: Fn() -> F,
    F: Future<Output = ()>,
{
    let cfg = LeaseConfig { duration: cfg.duration.max(Duration::from_secs(2)), ..cfg.clone() };
    let lease = format!("{}/{}", cfg.namespace, cfg.name);
    // A task of its own, so that busy reconciles never delay a renewal. Told to stop, it
    // releases the Lease (if it holds it) and says whether it did.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let mut elector = elector::Elector::new(client, cfg.clone(), fence.clone());
    let health = health.clone();
    let elect = tokio::spawn(async move {
        loop {
            let wait = tokio::select! {
                _ = &mut stopped => break,
                wait = elector.step() => wait,
            };
            // A step takes three periods at most (two requests and a pause): a whole duration
            // without one means the task is stuck.
            health.elector_stepped(cfg.duration);
            tokio::select! {
                _ = &mut stopped => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        elector.release().await
    });
    let mut shutdown = std::pin::pin!(shutdown);
    let leading = async {
        loop {
            if !fence.allows() {
                info!(
                    "following: waiting for Lease {lease}, held by another replica or not taken yet; caches stay warm"
                );
                fence.opened().await;
            }
            info!("leading: this replica ({}) holds Lease {lease}", cfg.identity);
            tokio::select! {
                _ = lead() => warn!("the controller stopped while leading"),
                _ = fence.lapsed() => warn!(
                    "the term of Lease {lease} ended without a renewal this replica can prove: no more writes from it until it holds the Lease again"
                ),
            }
        }
    };
    let signal = tokio::select! {
        _ = leading => unreachable!("leading runs until shutdown"),
        signal = &mut shutdown => signal,
    };
    // Stopped first, so that no renewal still in flight can reopen the fence; the release closes
    // it before it lets the Lease go.
    let _ = stop.send(());
    let released = tokio::time::timeout(RELEASE_LIMIT, elect).await;
    fence.close();
    match released {
        Ok(Ok(true)) => info!("{signal}: released the Lease"),
        Ok(_) => {}
        Err(_) => {
            warn!("{signal}: the Lease was not released within {RELEASE_LIMIT:?}; it expires on its own")
        }
    }
    signal
}
