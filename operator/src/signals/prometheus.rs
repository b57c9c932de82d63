//! Observe step: the Prometheus provider of analysis signals, PromQL over the HTTP API. (The
//! built-in `kubernetes` provider reads the shared pod index, `pod_index.rs`.)

use crate::crd::{CANARY_NODES, CANARY_REVISION, CanaryScope, MAX_LOOKBACK_INTERVALS};
use crate::detector::Counts;
use crate::error::Error;
use crate::outbound;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromResponse {
    status: String,
    /// Prometheus's own word for what went wrong. Its `error` text is never read: the operator
    /// says what failed, not what the far side answered.
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    data: Option<PromData>,
}

/// The error types the Prometheus HTTP API documents; any other word is not repeated.
const ERROR_TYPES: [&str; 7] =
    ["bad_data", "execution", "timeout", "canceled", "internal", "unavailable", "not_found"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromData {
    result_type: String,
    result: PromResult,
}

/// A vector's or matrix's series, or a scalar's one value (`[time, "value"]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum PromResult {
    Series(Vec<PromSeries>),
    Scalar((f64, String)),
}

impl PromResult {
    fn series(self) -> Vec<PromSeries> {
        match self {
            PromResult::Series(series) => series,
            PromResult::Scalar(value) => vec![PromSeries { value: Some(value), values: vec![] }],
        }
    }
}

#[derive(Deserialize)]
struct PromSeries {
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// The longest query the operator sends with the canary's names filled in: a placeholder for
/// 5,000 nodes of cloud names (about 260 KiB) fits, hundreds of placeholders times thousands of
/// names (from a status a tenant may write) do not.
pub const MAX_RENDERED_QUERY: usize = 1024 * 1024;

/// Why a query cannot be sent as it is.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Unrendered {
    /// What fills a placeholder is not known yet: read again later.
    #[error("{0}")]
    Waiting(String),
    /// Filled in, it would be longer than `MAX_RENDERED_QUERY`: not read while the canary is this
    /// large.
    #[error("{0}")]
    TooLong(String),
}

/// How much of a query a reason quotes: its start, enough to tell which it was.
const QUOTED: usize = 200;

/// `query` as it is quoted in a reason: its first `QUOTED` characters.
fn quoted(query: &str) -> String {
    match query.char_indices().nth(QUOTED) {
        Some((at, _)) => format!("{}… ({} bytes)", &query[..at], query.len()),
        None => query.to_string(),
    }
}

/// `query` as sent: `$interval` the span, in seconds; `$canary_nodes` and `$canary_revision`
/// the canary's node names and revision hashes as one regular expression (`(?:a|b)`, each dot
/// as `[.]`, which means a dot however the string is quoted), for `=~`. An error, read again later, while the canary does not know them yet.
/// Only names a Kubernetes object may have are put in (the status is the operator's to write,
/// but its values are not trusted to be): a query cannot be rewritten through them.
pub fn render_query(query: &str, span: Duration, canary: Option<&CanaryScope>) -> Result<String, Unrendered> {
    let mut out = query.replace("$interval", &format!("{}s", span.num_seconds().max(1)));
    let empty = CanaryScope::default();
    let canary = canary.unwrap_or(&empty);
    for (placeholder, values, what) in [
        (CANARY_NODES, &canary.nodes, "the canary's nodes (read once the DaemonSet's pods are seen)"),
        (CANARY_REVISION, &canary.revisions, "the revision of the canary's pods"),
    ] {
        if !out.contains(placeholder) {
            continue;
        }
        let names: Vec<String> = values
            .iter()
            .filter(|v| crate::names::is_dns_subdomain(v))
            .map(|v| v.replace('.', "[.]"))
            .collect();
        if names.is_empty() {
            return Err(Unrendered::Waiting(format!("waiting for {what} to fill in {placeholder}")));
        }
        // Grouped, so that what follows the placeholder in the string (a port) applies to every
        // name, not to the last alone.
        let filled = format!("(?:{})", names.join("|"));
        let grown = out.len() + out.matches(placeholder).count() * filled.len();
        if grown > MAX_RENDERED_QUERY {
            return Err(Unrendered::TooLong(format!(
                "the query with {placeholder} filled in ({} names) would be {} KiB, more than the {} KiB the operator \
                 sends, so it is not read while the canary is this large: take the signal out of the spec (edited, it \
                 would be another signal, judged no more), or set spec.rollback.requested",
                names.len(),
                grown / 1024,
                MAX_RENDERED_QUERY / 1024
            )));
        }
        out = out.replace(placeholder, &filled);
    }
    Ok(out)
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
    let params = [("query", query.to_string()), ("time", at.timestamp().to_string()), ("timeout", give_up())];
    let data = prom_post(http, address, &url, &params, query, outbound::MAX_INSTANT_BODY).await?;
    let mut sum = None;
    for s in data.result.series() {
        if let Some((_, v)) = s.value {
            add(&mut sum, &v);
        }
    }
    sum.ok_or_else(|| Error::PromNoData(quoted(query)))
}

/// Points per range query: under Prometheus's limit of 11,000 per series. A history of at most
/// `MAX_LOOKBACK_INTERVALS` (the CRD and the plan refuse more) is three range queries at most.
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
    let points = (to - from).num_seconds() / step.num_seconds();
    if points > MAX_LOOKBACK_INTERVALS {
        return Err(Error::PromQuery(
            address.to_string(),
            format!(
                "a history of {points} intervals is more than the {MAX_LOOKBACK_INTERVALS} one read may ask for; \
                 shorten baseline.lookback or lengthen analysis.interval"
            ),
        ));
    }
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
            ("timeout", give_up()),
        ];
        let data = prom_post(http, address, &url, &params, query, outbound::MAX_RANGE_BODY).await?;
        for s in data.result.series() {
            for (ts, v) in s.values {
                add(steps.entry(ts as i64).or_default(), &v);
            }
        }
        start = end + step;
    }
    let steps: Vec<(DateTime<Utc>, f64)> =
        steps.into_iter().filter_map(|(ts, v)| Some((DateTime::from_timestamp(ts, 0)?, v?))).collect();
    if steps.is_empty() {
        return Err(Error::PromNoData(quoted(query)));
    }
    Ok(steps)
}

/// Prometheus's own timeout for a query: a second before the operator stops waiting, so that a
/// costly query (a tenant's) does not go on running on a Prometheus others share.
fn give_up() -> String {
    format!("{}s", outbound::REQUEST_TIMEOUT.as_secs().saturating_sub(1).max(1))
}

fn add(sum: &mut Option<f64>, v: &str) {
    if let Ok(x) = v.parse::<f64>()
        && x.is_finite()
    {
        *sum = Some(sum.unwrap_or(0.0) + x);
    }
}

async fn prom_post(
    http: &reqwest::Client,
    address: &str,
    url: &str,
    params: &[(&str, String)],
    query: &str,
    max_body: usize,
) -> Result<PromData, Error> {
    let failed = |why: String| Error::Prometheus(address.to_string(), why);
    let query = &quoted(query);
    // By POST, as the API allows: a canary's node names make a query longer than a URL may be.
    let resp = http.post(url).form(params).send().await.map_err(|e| failed(outbound::failure(&e).into()))?;
    let code = resp.status();
    if code.is_redirection() {
        return Err(failed(format!("answered HTTP {}, a redirect, which is never followed", code.as_u16())));
    }
    let body = outbound::read_capped(resp, max_body).await.map_err(failed)?;
    let Ok(body) = serde_json::from_slice::<PromResponse>(&body) else {
        return Err(failed(format!(
            "answered HTTP {} with something that is not a Prometheus API response",
            code.as_u16()
        )));
    };
    if body.status != "success" {
        let kind = body.error_type.filter(|t| ERROR_TYPES.contains(&t.as_str()));
        // The one error type that says the query itself is wrong: asking again cannot help.
        if kind.as_deref() == Some("bad_data") {
            return Err(Error::PromQuery(
                address.to_string(),
                format!(
                    "refused the query {query} as invalid PromQL (bad_data, HTTP {}); fix the query in the spec, \
                     trying it in the Prometheus UI to see why",
                    code.as_u16()
                ),
            ));
        }
        return Err(failed(format!(
            "refused the query {query} ({}, HTTP {}); try it in the Prometheus UI to see why",
            kind.as_deref().unwrap_or("no error type"),
            code.as_u16()
        )));
    }
    let data = body.data.ok_or_else(|| Error::PromNoData(query.clone()))?;
    if data.result_type != "vector" && data.result_type != "matrix" && data.result_type != "scalar" {
        return Err(failed(format!("answered the query {query} with a result that is not a vector")));
    }
    Ok(data)
}

/// Counts from summed float results (`increase()` extrapolates, so round).
pub fn counts(attempts: f64, errors: f64) -> Counts {
    let attempts = attempts.max(0.0).round() as u64;
    Counts { attempts, errors: (errors.max(0.0).round() as u64).min(attempts) }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
