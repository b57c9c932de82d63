//! The crate's one error type: a variant per failing operation, with a short label used for
//! metrics and Event reasons.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {0}: {1}")]
    Read(String, #[source] kube::Error),
    #[error("failed to patch {0}: {1}")]
    PatchTarget(String, #[source] kube::Error),
    #[error("failed to write the status of MaintenanceUpgrade {0}: {1}")]
    PatchStatus(String, #[source] kube::Error),
    #[error("Prometheus at {0}: {1}")]
    Prometheus(String, String),
    #[error("Prometheus query returned no data: {0}")]
    PromNoData(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read(..) => "read",
            Error::PatchTarget(..) => "patch_target",
            Error::PatchStatus(..) => "patch_status",
            Error::Prometheus(..) => "prometheus",
            Error::PromNoData(..) => "prometheus_no_data",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
