//! maintenance-operator: staged image upgrades inside maintenance windows, a long soak watched
//! against a pre-change baseline, and automatic revert to the recorded known-good images.
//!
//! The pipeline: `controller` observes (reads the CR, its targets and signals) → `decide` (pure:
//! observed state + clock → next status, one target change, Events; a folder with one file per
//! step of an upgrade) → `controller` acts. Below `decide`, and importing nothing above them:
//! `window`, `detector`, `replay`, `pod_index`, `selector` and `timefmt`.

pub mod constants;
pub mod controller;
pub mod crd;
pub mod crd_presence;
pub mod decide;
pub mod detector;
pub mod error;
pub mod gitops;
pub mod history;
pub mod history_recorder;
pub mod history_scopes;
pub mod leader;
pub mod metrics;
pub mod namespaces;
pub mod notifier;
pub mod outbound;
pub mod pod_cache;
pub mod pod_index;
pub mod replay;
pub mod selector;
pub mod signals;
pub mod status_memory;
pub mod target;
pub mod target_cache;
pub mod timefmt;
pub mod timeline;
pub mod wake;
pub mod window;
