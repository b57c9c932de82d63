//! Observe step: read analysis signals. The built-in `kubernetes` provider counts pod start
//! failures from Pods and Events (the counting is pure, below); the Prometheus provider runs
//! PromQL over the HTTP API.

use crate::detector::Counts;
use crate::error::Error;
use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::core::v1::{Event, Pod};
use serde::Deserialize;
use std::collections::HashSet;

/// Event reasons that mean a pod failed to schedule or to start its containers.
pub const FAILURE_EVENT_REASONS: &[&str] =
    &["FailedScheduling", "FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"];
/// Container waiting reasons that mean a container cannot start.
pub const FAILURE_WAITING_REASONS: &[&str] = &[
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
];

/// Pod start failures for the cohort of pods created in `[from - limit, to - limit)`: by the time
/// the span ends every pod in it is at least `limit` old. A pod counts as failed if it was
/// reported unschedulable or unable to mount or start, or is still Pending (which covers stuck
/// in ContainerCreating). Each pod counts once, however many times the scheduler retried it.
pub fn count_pod_failures(
    pods: &[Pod],
    events: &[Event],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: Duration,
) -> Counts {
    let (lo, hi) = (from - limit, to - limit);
    let failed_by_event: HashSet<&str> = events
        .iter()
        .filter(|e| {
            e.reason.as_deref().is_some_and(|r| FAILURE_EVENT_REASONS.contains(&r) || is_config_error(e, r))
        })
        .filter(|e| e.involved_object.kind.as_deref() == Some("Pod"))
        .filter_map(|e| e.involved_object.uid.as_deref())
        .collect();
    let mut c = Counts::default();
    for p in pods {
        let Some(created) = p.metadata.creation_timestamp.as_ref().map(|t| to_chrono(t.0)) else { continue };
        if created < lo || created >= hi {
            continue;
        }
        c.attempts += 1;
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        let status = p.status.as_ref();
        let pending = status.and_then(|s| s.phase.as_deref()) == Some("Pending");
        let waiting_failure = status
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
            .any(|r| FAILURE_WAITING_REASONS.contains(&r));
        if pending || waiting_failure || failed_by_event.contains(uid) {
            c.errors += 1;
        }
    }
    c
}

/// Kubelet reports CreateContainerConfigError (e.g. a missing secret) as a `Failed` Event.
fn is_config_error(e: &Event, reason: &str) -> bool {
    reason == "Failed" && e.message.as_deref().is_some_and(|m| m.contains("CreateContainerConfigError"))
}

pub fn to_chrono(t: k8s_openapi::jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Prometheus

#[derive(Deserialize)]
struct PromResponse {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<PromData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromData {
    result_type: String,
    result: Vec<PromSeries>,
}

#[derive(Deserialize)]
struct PromSeries {
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// `$interval` in a query becomes the span, in seconds.
pub fn render_query(query: &str, span: Duration) -> String {
    query.replace("$interval", &format!("{}s", span.num_seconds().max(1)))
}

/// Sum of an instant query at `at` (every series, every value). No data is an error, never zero:
/// an empty answer must not pass for a healthy signal.
pub async fn prom_instant(
    http: &reqwest::Client,
    address: &str,
    query: &str,
    at: DateTime<Utc>,
) -> Result<f64, Error> {
    let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let params = [("query", query.to_string()), ("time", at.timestamp().to_string())];
    let data = prom_get(http, &url, &params, query).await?;
    let mut sum = None;
    for s in data.result {
        if let Some((_, v)) = s.value {
            add(&mut sum, &v);
        }
    }
    sum.ok_or_else(|| Error::PromNoData(query.to_string()))
}

/// Points per range query: under Prometheus's limit of 11,000 per series.
const MAX_POINTS: i32 = 10_000;

/// A range query's values per step (summed over series): per-interval counts over a span of
/// history, each labelled with the end of its interval.
pub async fn prom_range(
    http: &reqwest::Client,
    address: &str,
    query: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: Duration,
) -> Result<Vec<(DateTime<Utc>, f64)>, Error> {
    let url = format!("{}/api/v1/query_range", address.trim_end_matches('/'));
    let step = Duration::seconds(step.num_seconds().max(1));
    let mut steps: std::collections::BTreeMap<i64, Option<f64>> = Default::default();
    // Each step's value covers the step before it, so start one step in. Prometheus refuses
    // more than 11,000 points per series, so a long lookback is read in chunks.
    let mut start = from + step;
    while start <= to {
        let end = (start + step * (MAX_POINTS - 1)).min(to);
        let params = [
            ("query", query.to_string()),
            ("start", start.timestamp().to_string()),
            ("end", end.timestamp().to_string()),
            ("step", format!("{}s", step.num_seconds())),
        ];
        let data = prom_get(http, &url, &params, query).await?;
        for s in data.result {
            for (ts, v) in s.values {
                add(steps.entry(ts as i64).or_default(), &v);
            }
        }
        start = end + step;
    }
    let steps: Vec<(DateTime<Utc>, f64)> =
        steps.into_iter().filter_map(|(ts, v)| Some((DateTime::from_timestamp(ts, 0)?, v?))).collect();
    if steps.is_empty() {
        return Err(Error::PromNoData(query.to_string()));
    }
    Ok(steps)
}

fn add(sum: &mut Option<f64>, v: &str) {
    if let Ok(x) = v.parse::<f64>()
        && x.is_finite()
    {
        *sum = Some(sum.unwrap_or(0.0) + x);
    }
}

async fn prom_get(
    http: &reqwest::Client,
    url: &str,
    params: &[(&str, String)],
    query: &str,
) -> Result<PromData, Error> {
    let resp = http
        .get(url)
        .query(params)
        .send()
        .await
        .map_err(|e| Error::Prometheus(url.to_string(), e.to_string()))?;
    let body: PromResponse =
        resp.json().await.map_err(|e| Error::Prometheus(url.to_string(), e.to_string()))?;
    if body.status != "success" {
        return Err(Error::Prometheus(
            url.to_string(),
            format!("{query}: {}", body.error.unwrap_or_default()),
        ));
    }
    let data = body.data.ok_or_else(|| Error::PromNoData(query.to_string()))?;
    if data.result_type != "vector" && data.result_type != "matrix" && data.result_type != "scalar" {
        return Err(Error::Prometheus(
            url.to_string(),
            format!("{query}: unexpected result type {}", data.result_type),
        ));
    }
    Ok(data)
}

/// Counts from summed float results (`increase()` extrapolates, so round).
pub fn counts(attempts: f64, errors: f64) -> Counts {
    let attempts = attempts.max(0.0).round() as u64;
    Counts { attempts, errors: (errors.max(0.0).round() as u64).min(attempts) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn pod(uid: &str, created: &str, phase: &str, waiting: Option<&str>) -> Pod {
        let mut status = json!({"phase": phase});
        if let Some(w) = waiting {
            status["containerStatuses"] = json!([{"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": w}}}]);
        }
        serde_json::from_value(
            json!({"metadata": {"uid": uid, "name": uid, "creationTimestamp": created}, "status": status}),
        )
        .unwrap()
    }

    fn event(uid: &str, reason: &str, message: &str) -> Event {
        serde_json::from_value(
            json!({"metadata": {"name": format!("{uid}.{reason}")}, "reason": reason, "message": message,
            "involvedObject": {"kind": "Pod", "uid": uid}}),
        )
        .unwrap()
    }

    #[test]
    fn counts_each_failed_pod_of_the_cohort_once() {
        let pods = vec![
            pod("ok", "2026-11-24T10:00:10Z", "Running", None),
            pod("stuck", "2026-11-24T10:00:20Z", "Pending", None),
            pod("unsched", "2026-11-24T10:00:30Z", "Running", None),
            pod("config", "2026-11-24T10:00:40Z", "Running", Some("CreateContainerConfigError")),
            pod("mount", "2026-11-24T10:00:50Z", "Running", None),
            pod("too-new", "2026-11-24T10:04:00Z", "Pending", None),
            pod("too-old", "2026-11-24T09:00:00Z", "Pending", None),
        ];
        let events = vec![
            event("unsched", "FailedScheduling", "0/3 nodes are available"),
            event("unsched", "FailedScheduling", "0/3 nodes are available"),
            event("mount", "Failed", "Error: CreateContainerConfigError"),
            event("ok", "Pulled", "pulled"),
        ];
        // Span 10:05–10:06 with a 5 minute limit: the cohort created 10:00–10:01.
        let c = count_pod_failures(
            &pods,
            &events,
            t("2026-11-24T10:05:00Z"),
            t("2026-11-24T10:06:00Z"),
            Duration::minutes(5),
        );
        assert_eq!(c, Counts { attempts: 5, errors: 4 });
    }

    #[test]
    fn prometheus_queries_get_the_span_and_counts_are_rounded() {
        assert_eq!(
            render_query("sum(increase(x[$interval]))", Duration::minutes(2)),
            "sum(increase(x[120s]))"
        );
        assert_eq!(counts(99.6, 3.4), Counts { attempts: 100, errors: 3 });
        assert_eq!(counts(2.0, 5.0), Counts { attempts: 2, errors: 2 });
    }
}
