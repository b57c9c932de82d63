//! Act step, needs a client: is the MaintenanceUpgrade CRD installed? An operator started before
//! it, or whose CRD is removed, says so once in one line (naming the CRD and how to install it)
//! and waits quietly, instead of logging every failed watch.

use crate::crd::MaintenanceUpgrade;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use std::time::Duration;
use tracing::{error, info, warn};

/// How often to look for a missing CRD: often enough that installing it feels immediate.
const CRD_RETRY: Duration = Duration::from_secs(5);

/// Until the API server serves MaintenanceUpgrades, say once in one line what is missing and how
/// to install it, then look again quietly.
pub async fn wait_until_installed(api: &Api<MaintenanceUpgrade>) {
    let mut said = false;
    loop {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => {
                if said {
                    info!("{} is installed; starting", MaintenanceUpgrade::crd_name());
                }
                return;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                if !said {
                    error!("{}", missing_line());
                }
                said = true;
            }
            Err(e) => {
                if !said {
                    warn!("cannot list MaintenanceUpgrades yet: {e}; retrying every {CRD_RETRY:?}");
                }
                said = true;
            }
        }
        tokio::time::sleep(CRD_RETRY).await;
    }
}

pub fn missing_line() -> String {
    format!(
        "the CustomResourceDefinition {} is not installed; install it with \
         `kubectl apply --server-side -f crds/maintenanceupgrades.yaml` (this repository); \
         waiting for it, retrying every {CRD_RETRY:?}",
        MaintenanceUpgrade::crd_name()
    )
}

/// The Controller's watch of MaintenanceUpgrades answered 404: the CRD is not installed.
pub fn is_missing<E>(e: &kube::runtime::controller::Error<E, watcher::Error>) -> bool {
    use kube::runtime::controller::Error::QueueError;
    use watcher::Error::{InitialListFailed, WatchFailed, WatchStartFailed};
    match e {
        QueueError(InitialListFailed(kube::Error::Api(s)))
        | QueueError(WatchStartFailed(kube::Error::Api(s)))
        | QueueError(WatchFailed(kube::Error::Api(s))) => s.code == 404,
        QueueError(watcher::Error::WatchError(s)) => s.code == 404,
        _ => false,
    }
}
