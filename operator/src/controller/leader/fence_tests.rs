//! Unit tests of `fence.rs`. The client is exercised against an address nothing listens on: a
//! refused write never gets as far as connecting.

use super::*;
use std::time::Duration;

#[test]
fn a_term_allows_writes_until_it_ends_and_a_closed_fence_none() {
    let f = Fence::closed();
    assert!(!f.allows());
    f.extend(Instant::now() + Duration::from_secs(60));
    assert!(f.allows());
    f.close();
    assert!(!f.allows());
    f.extend(Instant::now() - Duration::from_millis(1));
    assert!(!f.allows(), "a term already over");
    assert!(Fence::open().allows());
}

#[tokio::test]
async fn lapsed_returns_when_the_term_runs_out_without_anyone_saying_so() {
    let f = Fence::closed();
    f.extend(Instant::now() + Duration::from_millis(100));
    tokio::time::timeout(Duration::from_secs(5), f.lapsed()).await.expect("the term ran out");
    assert!(!f.allows());
}

#[tokio::test]
async fn outside_its_term_the_client_refuses_writes_but_not_reads() {
    let f = Fence::closed();
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = f.client(config).unwrap();
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "x");
    let write = api.delete("y", &Default::default()).await.unwrap_err();
    assert!(write.to_string().contains("cannot prove it still holds the Lease"), "{write}");
    let read = api.get("y").await.unwrap_err();
    assert!(!read.to_string().contains("Lease"), "a read goes out: {read}");
    f.extend(Instant::now() + Duration::from_secs(60));
    let write = api.delete("y", &Default::default()).await.unwrap_err();
    assert!(!write.to_string().contains("Lease"), "inside the term a write goes out: {write}");
}
