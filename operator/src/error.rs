//! The crate's one error type: a variant per failing operation, with a short label used for
//! metrics and Event reasons.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read {0}: {said}", said = said(.1))]
    Read(String, #[source] kube::Error),
    #[error("failed to patch {0}: {said}", said = said(.1))]
    PatchTarget(String, #[source] kube::Error),
    #[error("failed to write the status of MaintenanceUpgrade {0}: {said}", said = said(.1))]
    PatchStatus(String, #[source] kube::Error),
    /// Prometheus answered, but not usefully: a timeout, a refused connection, an error answer.
    #[error("Prometheus at {0}: {1}")]
    Prometheus(String, String),
    /// The query as the spec writes it cannot be answered, however often it is asked: invalid
    /// PromQL (`bad_data`), or more history than one read may ask for.
    #[error("Prometheus at {0}: {1}")]
    PromQuery(String, String),
    #[error("Prometheus query returned no data: {0}")]
    PromNoData(String),
    /// A look ran past its deadline (a Prometheus answering slowly to many queries, a request
    /// the API server never answers): dropped, and tried again. Every step is recognised as
    /// done or not when observed again, so a look cut short repeats nothing.
    #[error("the look took longer than {0}s and was cut short")]
    LookTimedOut(u64),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Read(..) => "read",
            Error::PatchTarget(..) => "patch_target",
            Error::PatchStatus(..) => "patch_status",
            Error::Prometheus(..) => "prometheus",
            Error::PromQuery(..) => "prometheus_query",
            Error::PromNoData(..) => "prometheus_no_data",
            Error::LookTimedOut(..) => "look_timed_out",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the API server said, as a person reads it (its message and code, not the client's
/// debug form of the whole Status); any other failure as the client says it.
pub(crate) fn said(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => format!("{} (HTTP {})", s.message, s.code),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_refusal_reads_as_the_api_server_said_it() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": 422, "reason": "Invalid",
            "message": "daemonsets.apps \"connector\" is forbidden: v1.4.0 is not allowed here"
        }))
        .unwrap();
        let e = Error::PatchTarget("DaemonSet ops/connector".into(), kube::Error::Api(status.into()));
        assert_eq!(
            e.to_string(),
            "failed to patch DaemonSet ops/connector: daemonsets.apps \"connector\" is forbidden: v1.4.0 is not allowed here (HTTP 422)"
        );
    }
}
