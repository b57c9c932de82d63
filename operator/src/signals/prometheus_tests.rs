//! Unit tests of `prometheus.rs`.

use super::*;

#[test]
fn prometheus_queries_get_the_span_and_counts_are_rounded() {
    let q = render_query("sum(increase(x[$interval]))", Duration::minutes(2), None);
    assert_eq!(q.as_deref(), Ok("sum(increase(x[120s]))"));
    assert_eq!(counts(99.6, 3.4), Counts { attempts: 100, errors: 3 });
    assert_eq!(counts(2.0, 5.0), Counts { attempts: 2, errors: 2 });
}

#[test]
fn a_query_gets_the_canarys_nodes_and_revision_as_a_regular_expression_and_nothing_else() {
    let canary = CanaryScope {
        nodes: vec!["ip-10-0-1-2.ec2.internal".into(), "node-b".into(), "\"}) or vector(1) #".into()],
        revisions: vec!["6d4cf56db6".into()],
    };
    let q = r#"sum(increase(kubelet_errors{node=~"$canary_nodes", rev=~"$canary_revision"}[$interval]))"#;
    assert_eq!(
        render_query(q, Duration::minutes(1), Some(&canary)).unwrap(),
        r#"sum(increase(kubelet_errors{node=~"(?:ip-10-0-1-2[.]ec2[.]internal|node-b)", rev=~"(?:6d4cf56db6)"}[60s]))"#,
        "each dot a dot, in any quoting; what no node could be named left out"
    );
    // What follows the placeholder in the string (node exporter's port) applies to every name,
    // not to the last alone: before, `n1|n2:9100` counted n1's series only if it had no port.
    let q = r#"up{instance=~"$canary_nodes:9100"}"#;
    assert_eq!(
        render_query(q, Duration::minutes(1), Some(&canary)).unwrap(),
        r#"up{instance=~"(?:ip-10-0-1-2[.]ec2[.]internal|node-b):9100"}"#
    );
    let none = CanaryScope::default();
    let e = render_query(q, Duration::minutes(1), Some(&none)).unwrap_err();
    assert!(matches!(&e, Unrendered::Waiting(w) if w.contains("waiting for the canary's nodes")), "{e}");
}

/// A Prometheus on this machine that answers every query with `body`.
async fn answering(body: String) -> String {
    serving(axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { body }
    }))
    .await
}

/// `app` served on this machine, at the URL returned.
async fn serving(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// A matrix of one series: `points` values a minute apart, each written long.
fn matrix(points: i64) -> String {
    let values: Vec<String> =
        (0..points).map(|i| format!("[{},\"1.000000000000\"]", 1_700_000_000 + 60 * i)).collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":[{}]}}]}}}}"#,
        values.join(",")
    )
}

#[tokio::test]
async fn a_range_query_may_answer_a_whole_chunk_and_an_instant_one_only_a_little() {
    let http = reqwest::Client::new();
    // 10,000 points (one chunk of a week read every minute), about 300 KiB: read whole.
    let body = matrix(10_000);
    assert!(body.len() > outbound::MAX_INSTANT_BODY, "{} bytes", body.len());
    let url = answering(body).await;
    let to = DateTime::from_timestamp(1_700_000_000 + 60 * 10_000, 0).unwrap();
    let read = prom_range(&http, &url, "q", to - Duration::minutes(9_999), to, Duration::minutes(1)).await;
    assert_eq!(read.map(|r| r.len()).map_err(|e| e.to_string()), Ok(10_000));
    // The same answer to an instant query is cut, and says so.
    let e = prom_instant(&http, &url, "q", to).await.unwrap_err().to_string();
    assert!(e.contains("answered with more than 256 KiB"), "{e}");
}

#[tokio::test]
async fn invalid_promql_is_told_from_a_failure_that_may_pass() {
    let http = reqwest::Client::new();
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let bad = answering(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into()).await;
    let e = prom_instant(&http, &bad, "sum(", at).await.unwrap_err();
    assert!(matches!(e, Error::PromQuery(..)), "{e:?}");
    assert!(e.to_string().contains("fix the query in the spec"), "{e}");
    let busy =
        answering(r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#.into()).await;
    let e = prom_instant(&http, &busy, "up", at).await.unwrap_err();
    assert!(matches!(e, Error::Prometheus(..)), "{e:?}");
    // Too much history for one read is the spec's to shorten, not Prometheus's to answer.
    let e =
        prom_range(&http, &busy, "up", at - Duration::days(30), at, Duration::seconds(10)).await.unwrap_err();
    assert!(matches!(e, Error::PromQuery(..)), "{e:?}");
}

/// The canary's nodes come from the status, which a tenant may write: a name with runs of dots
/// (each dot sent as three characters) is none, and a query they would fill past
/// `MAX_RENDERED_QUERY` is not made at all, and says why (hundreds of placeholders times thousands of names
/// made queries of hundreds of megabytes, killing every replica in turn).
#[test]
fn a_query_filled_with_the_canarys_nodes_stays_bounded() {
    let dotted = format!("a{}a", ".".repeat(251));
    let long_label = "n".repeat(64); // a node's name has no label limit, only its 253 in all
    let canary = CanaryScope {
        nodes: vec![dotted, "node-a".into(), "a..b".into(), long_label.clone()],
        revisions: vec![],
    };
    let q = r#"up{n=~"$canary_nodes"}"#;
    let rendered = render_query(q, Duration::minutes(1), Some(&canary)).unwrap();
    assert_eq!(rendered, format!(r#"up{{n=~"(?:node-a|{long_label})"}}"#));
    let many = CanaryScope {
        nodes: (0..600).map(|i| format!("{0}.{0}.{0}.{i:05}", "n".repeat(60))).collect(),
        revisions: vec![],
    };
    let q = r#"up{n=~"$canary_nodes"} or "#.repeat(100);
    let e = render_query(&q, Duration::minutes(1), Some(&many)).unwrap_err();
    assert!(matches!(&e, Unrendered::TooLong(w) if w.contains("more than the 1024 KiB")), "{e}");
    assert!(e.to_string().len() < 1024, "{} bytes", e.to_string().len());
}

/// What Prometheus said of a query is reported with the query's start, not all of it: a long
/// query would make every reason, condition and status write as long.
#[tokio::test]
async fn a_refused_query_is_quoted_short() {
    let http = reqwest::Client::new();
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let bad = answering(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.into()).await;
    let long = format!("sum({})", "x".repeat(100_000));
    let e = prom_instant(&http, &bad, &long, at).await.unwrap_err().to_string();
    assert!(e.len() < 1024, "{} bytes", e.len());
    let empty = answering(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into()).await;
    let e = prom_instant(&http, &empty, &long, at).await.unwrap_err().to_string();
    assert!(e.len() < 1024, "{} bytes", e.len());
}

/// A Prometheus on this machine that answers `body` and keeps each request's form.
async fn answering_and_keeping(body: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = kept.clone();
    let app = axum::Router::new().fallback(move |form: String| {
        let body = body.clone();
        keep.lock().unwrap().push(form);
        async move { body }
    });
    (serving(app).await, kept)
}

/// Prometheus is told when the operator stops waiting, so that a costly query a tenant wrote
/// does not go on running on the shared Prometheus after the operator gave up on it.
#[tokio::test]
async fn each_query_tells_prometheus_when_to_give_up() {
    let http = reqwest::Client::new();
    let (url, kept) = answering_and_keeping(matrix(3)).await;
    let to = DateTime::from_timestamp(1_700_000_180, 0).unwrap();
    prom_range(&http, &url, "q", to - Duration::minutes(2), to, Duration::minutes(1)).await.unwrap();
    let vector =
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}"#;
    let (instant, kept_instant) = answering_and_keeping(vector.into()).await;
    prom_instant(&http, &instant, "q", to).await.unwrap();
    let forms: Vec<String> =
        kept.lock().unwrap().iter().chain(kept_instant.lock().unwrap().iter()).cloned().collect();
    assert_eq!(forms.len(), 2, "{forms:?}");
    let timeout = format!("timeout={}s", outbound::REQUEST_TIMEOUT.as_secs() - 1);
    assert!(forms.iter().all(|f| f.split('&').any(|p| p == timeout)), "{timeout} in {forms:?}");
}

/// A query that is a scalar (`scalar(...)`, a number) is read as its number, not refused as
/// "not a Prometheus API response".
#[tokio::test]
async fn a_scalar_answer_is_read_as_its_number() {
    let http = reqwest::Client::new();
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let scalar =
        answering(r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"5"]}}"#.into())
            .await;
    assert_eq!(prom_instant(&http, &scalar, "scalar(up)", at).await.map_err(|e| e.to_string()), Ok(5.0));
    let text =
        answering(r#"{"status":"success","data":{"resultType":"string","result":[1700000000,"x"]}}"#.into())
            .await;
    let e = prom_instant(&http, &text, r#""x""#, at).await.unwrap_err().to_string();
    assert!(e.contains("a result that is not a vector"), "{e}");
}

/// A Prometheus address that redirects is not followed elsewhere: the installer named that
/// address, not wherever it points.
#[tokio::test]
async fn a_redirect_from_prometheus_is_never_followed() {
    let vector =
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}"#;
    let elsewhere = answering(vector.into()).await;
    let to = format!("{elsewhere}/api/v1/query");
    let address =
        serving(
            axum::Router::new().fallback(move || {
                let to = to.clone();
                async move {
                    (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)], "")
                }
            }),
        )
        .await;
    let settings = crate::outbound::Settings {
        prometheus_addresses: vec![address.clone()],
        webhook_hosts: vec![],
        api_server: vec![],
    };
    let o = crate::outbound::Outbound::new(&settings, std::time::Duration::from_secs(5)).unwrap();
    let http = o.prometheus(&address).unwrap();
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let e = prom_instant(http, &address, "up", at).await.unwrap_err().to_string();
    assert!(e.contains("a redirect, which is never followed"), "{e}");
}
