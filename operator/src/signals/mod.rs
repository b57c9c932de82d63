//! What an upgrade is judged on: the built-in signal (pods that fail to schedule or start, from
//! one shared watch of pods and Warning Events) and Prometheus. `selector` and `pod_index` are
//! pure; `pod_cache`, `namespaces` and `prometheus` need a client (the API server's watches, or
//! Prometheus's HTTP API).

pub mod namespaces;
pub mod pod_cache;
pub mod pod_index;
pub mod prometheus;
pub mod selector;
