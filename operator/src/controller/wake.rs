//! Observe step's side channel: upgrades to look at again because something outside the
//! Controller's own watch changed (a claimed target, a notification delivered). Whoever has news
//! sends; the Controller subscribes while it leads (`Controller::reconcile_on`). Sending with no
//! subscriber (a follower) is not an error: nothing needs waking.

use crate::crd::MaintenanceUpgrade;
use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::broadcast;
use tracing::debug;

#[derive(Clone)]
pub struct WakeUps {
    tx: broadcast::Sender<ObjectRef<MaintenanceUpgrade>>,
    /// What the wake-ups are about, for the log.
    what: &'static str,
}

impl WakeUps {
    /// Up to `buffer` wake-ups wait for the Controller; one that falls further behind misses
    /// some and relies on its requeue times instead.
    pub fn new(what: &'static str, buffer: usize) -> Self {
        WakeUps { tx: broadcast::channel(buffer).0, what }
    }

    pub fn wake(&self, upgrade: ObjectRef<MaintenanceUpgrade>) {
        let _ = self.tx.send(upgrade);
    }

    /// The upgrades woken from now on.
    pub fn stream(&self) -> impl Stream<Item = ObjectRef<MaintenanceUpgrade>> + Send + 'static {
        let what = self.what;
        futures::stream::unfold(self.tx.subscribe(), move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(r) => return Some((r, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        debug!("{n} wake-ups ({what}) were not passed on; their upgrades look again when due")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}
