//! Observe step's side channel: upgrades to look at again because something outside the
//! Controller's own watch changed (a claimed target, a notification delivered). Whoever has news
//! sends; the Controller subscribes while it leads (`Controller::reconcile_on`). Sending with no
//! subscriber (a follower) is not an error: nothing needs waking.

use crate::crd::MaintenanceUpgrade;
use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::broadcast;
use tracing::debug;

/// A channel of wake-ups: of upgrades, or of what else names one (`T`).
#[derive(Clone)]
pub struct WakeUps<T = ObjectRef<MaintenanceUpgrade>> {
    tx: broadcast::Sender<T>,
    /// What the wake-ups are about, for the log.
    what: &'static str,
}

impl<T: Clone + Send + 'static> WakeUps<T> {
    /// Up to `buffer` wake-ups wait for the Controller; one that falls further behind misses
    /// some and relies on its requeue times instead.
    pub fn new(what: &'static str, buffer: usize) -> Self {
        WakeUps { tx: broadcast::channel(buffer).0, what }
    }

    pub fn wake(&self, woken: T) {
        let _ = self.tx.send(woken);
    }

    /// The upgrades woken from now on.
    pub fn stream(&self) -> impl Stream<Item = T> + Send + 'static {
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
