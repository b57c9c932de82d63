//! Act step's side channel: Prometheus metrics and health endpoints on one small HTTP server.

use crate::constants::{condition, reason};
use crate::health::Health;
use axum::http::StatusCode;
use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder, text::encode};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// A label value, escaped as the text format needs it: prometheus-client writes values as they
/// are, and a signal's name or a condition's reason is text a tenant may write (the status of
/// her upgrade), where a quote or a newline would break every series of the scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelText(String);

impl<T: Into<String>> From<T> for LabelText {
    fn from(s: T) -> Self {
        LabelText(s.into())
    }
}

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: LabelText,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    pub upgrade: String,
    pub signal: LabelText,
    /// error rate: baseline or observed; detector: statistic or threshold
    pub series: String,
}

/// One gauge per upgrade, signal and series.
pub type SignalGauges = Family<SignalLabels, Gauge<f64, AtomicU64>>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpgradeLabels {
    pub upgrade: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabel {
    pub watch: String,
}

/// Failures of the operator's watches of the API server, by what each watches. One that keeps
/// failing leaves the operator behind: the shared caches of pods, Events and targets are read
/// around meanwhile, but new upgrades and their changes (a pause, an approval, a deletion) wait
/// for the watch of upgrades, and canaries that pick nodes by label for the watch of nodes.
#[derive(Clone, Debug, Default)]
pub struct WatchFailures(Family<WatchLabel, Counter>);

impl WatchFailures {
    /// The watch of `what` runs: its series is exported at 0 until it first fails, so that an
    /// alert on its increase sees the first failure.
    pub fn watching(&self, what: &str) {
        let _ = self.0.get_or_create(&WatchLabel { watch: what.into() });
    }

    /// The watch of `what` failed once (it is retried).
    pub fn failed(&self, what: &str) {
        self.0.get_or_create(&WatchLabel { watch: what.into() }).inc();
    }
}

/// Every reason a rollback starts for (`decide::rollback`), exported at 0 from the start.
const ROLLBACK_REASONS: [&str; 10] = [
    reason::REGRESSION,
    reason::ROLLOUT_FAILED,
    reason::DEADLINE_EXCEEDED,
    reason::WINDOW_NEVER_OPENS,
    reason::MANUAL_ROLLBACK,
    reason::UPGRADE_DELETED,
    reason::TRUST_WITHDRAWN,
    reason::TARGET_DELETED,
    reason::CHANGED_EXTERNALLY,
    reason::REVERTED,
];

/// Every condition type the operator sets (`decide::conditions`): the only ones exported.
const CONDITION_TYPES: [&str; 7] = [
    condition::PROGRESSING,
    condition::COMPLETE,
    condition::ROLLED_BACK,
    condition::HEALTHY,
    condition::BLOCKED,
    condition::WINDOW_OPEN,
    condition::MANAGED_BY_GITOPS,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub upgrade: String,
    pub r#type: LabelText,
    pub status: LabelText,
    pub reason: LabelText,
}

/// What this replica exports of one upgrade besides its phases: its signals, and its condition
/// series (so that a changed or gone one is removed).
#[derive(Default)]
struct Exported {
    signals: std::collections::BTreeSet<String>,
    conditions: Vec<ConditionLabels>,
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ResultLabel, Counter>,
    pub rollbacks: Family<ReasonLabel, Counter>,
    pub signal_rate: SignalGauges,
    pub signal_statistic: SignalGauges,
    pub phase: Family<UpgradeLabels, Gauge>,
    /// 1 for each condition an upgrade has now, with its status and reason.
    pub conditions: Family<ConditionLabels, Gauge>,
    /// Seconds from the look that decided a revert to the revert patch being accepted.
    pub revert_latency: Histogram,
    pub status_writes: Counter,
    /// Notification deliveries, delivered or failed.
    pub notifications: Family<ResultLabel, Counter>,
    /// Writes of the built-in signal's recordings, written or failed.
    pub history_writes: Family<ResultLabel, Counter>,
    /// Scopes recorded besides the operator's whole one.
    pub history_scopes: Gauge,
    /// 1 while this replica leads: it holds the Lease within its term, or runs without leader
    /// election. Only a leader exports the per-upgrade series.
    pub leading: Gauge,
    /// Failures of each watch of the API server.
    pub watch_failures: WatchFailures,
    /// The upgrades (`namespace/name`) this replica exports series of, and what they are.
    exported: Arc<Mutex<std::collections::HashMap<String, Exported>>>,
    registry: Arc<Mutex<Registry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("maintenance_operator");
        let m = Metrics {
            reconciles: Family::default(),
            rollbacks: Family::default(),
            signal_rate: Family::default(),
            signal_statistic: Family::default(),
            phase: Family::default(),
            conditions: Family::default(),
            revert_latency: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
            status_writes: Counter::default(),
            notifications: Family::default(),
            history_writes: Family::default(),
            history_scopes: Gauge::default(),
            leading: Gauge::default(),
            watch_failures: WatchFailures::default(),
            exported: Arc::default(),
            registry: Arc::default(),
        };
        registry.register("reconciles", "Reconciles by result (ok or the error label)", m.reconciles.clone());
        registry.register(
            "rollbacks",
            "Rollbacks started, by reason (every reason exported at 0 from the start)",
            m.rollbacks.clone(),
        );
        registry.register(
            "signal_error_rate",
            "Error rate per signal: the baseline and the last judged bucket",
            m.signal_rate.clone(),
        );
        registry.register(
            "signal_statistic",
            "The detector's statistic per signal, and the threshold at which it reverts",
            m.signal_statistic.clone(),
        );
        registry.register("upgrade_phase", "1 for the current phase of each upgrade", m.phase.clone());
        registry.register(
            "upgrade_condition",
            "1 for each condition each upgrade has now (type, status and reason, as in its status.conditions)",
            m.conditions.clone(),
        );
        registry.register(
            "revert_latency_seconds",
            "From the look that decided to revert a component to the revert patch being accepted",
            m.revert_latency.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes: only when what a user reads changes or a detector bucket closes",
            m.status_writes.clone(),
        );
        registry.register(
            "notifications",
            "Notification deliveries to webhooks, by result (delivered or failed; failures are retried)",
            m.notifications.clone(),
        );
        registry.register(
            "history_writes",
            "Writes of the built-in signal's recordings to ConfigMap maintenance-operator-history, by result (written or failed; failures are retried)",
            m.history_writes.clone(),
        );
        registry.register(
            "history_scopes",
            "Scopes of the built-in signal that upgrades named and the leader records, besides its whole scope",
            m.history_scopes.clone(),
        );
        registry.register(
            "leading",
            "1 while this replica leads (holds the Lease within its term, or runs without leader election); only the leader exports the per-upgrade series",
            m.leading.clone(),
        );
        registry.register(
            "watch_failures",
            "Failures of the operator's watches of the API server, by what each watches (each is retried; every replica watches)",
            m.watch_failures.0.clone(),
        );
        // Every result from the start, at 0: an alert on a rate of failures against successes
        // must see a series that has not moved yet, and the first increase of one.
        for result in ["written", "failed"] {
            let _ = m.history_writes.get_or_create(&ResultLabel { result: result.into() });
        }
        for result in ["delivered", "failed"] {
            let _ = m.notifications.get_or_create(&ResultLabel { result: result.into() });
        }
        for reason in ROLLBACK_REASONS {
            let _ = m.rollbacks.get_or_create(&ReasonLabel { reason: reason.into() });
        }
        *m.registry.lock().unwrap() = registry;
        m
    }
}

impl Metrics {
    /// Upgrade `id` (`namespace/name`) reads these signals now: the series of the ones it no
    /// longer reads (taken out of its spec, or a canary's copy handed over) go.
    pub fn signals_now(&self, id: &str, now: impl IntoIterator<Item = String>) {
        let now: std::collections::BTreeSet<String> = now.into_iter().collect();
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        let upgrade = exported.entry(id.to_string()).or_default();
        for old in upgrade.signals.difference(&now) {
            self.remove_signal(id, old);
        }
        upgrade.signals = now;
    }

    /// A rollback started for `reason`; one the operator does not start for (a status written
    /// by someone else) counts as `Other`.
    pub fn rollback_started(&self, reason: &str) {
        let reason = ROLLBACK_REASONS.into_iter().find(|r| *r == reason).unwrap_or("Other");
        self.rollbacks.get_or_create(&ReasonLabel { reason: reason.into() }).inc();
    }

    /// Upgrade `id` has these conditions now: `(type, status, reason)`. The series of the ones
    /// it no longer has go. Only the types the operator sets, and a reason that is no word of
    /// at most 64 letters and digits as `Other`: a status written by someone else (without the
    /// status policy) could hold any number of types and reasons of any length.
    pub fn conditions_now(&self, id: &str, now: impl IntoIterator<Item = (String, String, String)>) {
        let word = |r: &str| r.len() <= 64 && !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric());
        let now: Vec<ConditionLabels> = now
            .into_iter()
            .filter(|(r#type, _, _)| CONDITION_TYPES.contains(&r#type.as_str()))
            .map(|(r#type, status, reason)| ConditionLabels {
                upgrade: id.into(),
                r#type: r#type.into(),
                status: if matches!(status.as_str(), "True" | "False") { status } else { "Unknown".into() }
                    .into(),
                reason: if word(&reason) { reason } else { "Other".into() }.into(),
            })
            .collect();
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        let upgrade = exported.entry(id.to_string()).or_default();
        for old in upgrade.conditions.iter().filter(|c| !now.contains(c)) {
            self.conditions.remove(old);
        }
        for c in &now {
            self.conditions.get_or_create(c).set(1);
        }
        upgrade.conditions = now;
    }

    /// Drop the series of every upgrade but these (`namespace/name`): the others are gone.
    pub fn forget_all_but(&self, live: &std::collections::HashSet<String>) {
        let gone: Vec<(String, Vec<String>)> = {
            let exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
            exported
                .iter()
                .filter(|(id, _)| !live.contains(*id))
                .map(|(id, e)| (id.clone(), e.signals.iter().cloned().collect()))
                .collect()
        };
        for (id, signals) in gone {
            self.forget(&id, &signals);
        }
    }

    /// This replica no longer leads: the series of every upgrade go, since the leader exports
    /// them now, and a dashboard summing over replicas would count each twice.
    pub fn not_leading(&self) {
        self.leading.set(0);
        self.phase.clear();
        self.conditions.clear();
        self.signal_rate.clear();
        self.signal_statistic.clear();
        self.exported.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Drop the series of upgrade `id` (`namespace/name`), gone: its phases, and its signals'
    /// rates and statistics (`signals`, the names its status had).
    pub fn forget(&self, id: &str, signals: &[String]) {
        let exported = self.exported.lock().unwrap_or_else(|p| p.into_inner()).remove(id).unwrap_or_default();
        let signals: std::collections::BTreeSet<&String> = signals.iter().chain(&exported.signals).collect();
        for c in &exported.conditions {
            self.conditions.remove(c);
        }
        for phase in crate::crd::Phase::ALL {
            self.phase.remove(&UpgradeLabels { upgrade: id.into(), phase: format!("{phase:?}") });
        }
        for signal in signals {
            self.remove_signal(id, signal);
        }
    }

    /// Drop the series of one signal of upgrade `id`: its rates and statistics.
    fn remove_signal(&self, id: &str, signal: &str) {
        let labels =
            |series: &str| SignalLabels { upgrade: id.into(), signal: signal.into(), series: series.into() };
        for series in ["baseline", "observed"] {
            self.signal_rate.remove(&labels(series));
        }
        for series in ["statistic", "threshold"] {
            self.signal_statistic.remove(&labels(series));
        }
    }

    /// A registry with one made-up series in each per-upgrade family too, so that every
    /// family's labels show: what the metrics reference and the dashboard check read.
    pub fn with_a_series_each() -> Metrics {
        let m = Metrics::default();
        let _ = m.reconciles.get_or_create(&ResultLabel { result: "ok".into() });
        m.watch_failures.watching("upgrades");
        let signal =
            SignalLabels { upgrade: "ns/name".into(), signal: "s".into(), series: "baseline".into() };
        let _ = m.signal_rate.get_or_create(&signal);
        let _ = m.signal_statistic.get_or_create(&signal);
        let _ = m.phase.get_or_create(&UpgradeLabels { upgrade: "ns/name".into(), phase: "Soaking".into() });
        m.conditions_now("ns/name", [("Healthy".into(), "True".into(), "NoRegression".into())]);
        m
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry.lock().unwrap()).expect("writing to a String cannot fail");
        out
    }
}

async fn metrics(State(m): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
}

/// Serve /metrics, /healthz and /readyz until the process ends. A check that fails answers 503
/// with why.
pub async fn serve(addr: std::net::SocketAddr, m: Metrics, health: Health) -> std::io::Result<()> {
    let answer = |verdict: Result<String, String>| match verdict {
        Ok(ok) => (StatusCode::OK, ok),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let (live, ready) = (health.clone(), health);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(move || async move { answer(live.healthy()) }))
        .route("/readyz", get(move || async move { answer(ready.ready()) }))
        .with_state(m);
    axum::serve(listen(addr)?, app).await
}

/// Listen on `addr`. The unspecified IPv6 address (`[::]`, the manifests' default) takes IPv4
/// too, whatever the host's `net.ipv6.bindv6only`, so that probes and scrapes reach it on a
/// single-stack cluster of either family; on a host without IPv6 it falls back to `0.0.0.0`.
pub(crate) fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    let any_v6 = addr.ip() == Ipv6Addr::UNSPECIFIED;
    let open = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if any_v6 && addr.is_ipv6() {
            socket.set_only_v6(false)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    let listener = match open(addr) {
        Err(e) if any_v6 => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::warn!("cannot listen on {addr} ({e}): listening on {v4} instead, IPv4 only");
            open(v4)?
        }
        other => other?,
    };
    tokio::net::TcpListener::from_std(listener)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
