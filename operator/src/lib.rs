//! maintenance-operator: staged image upgrades inside maintenance windows, a long soak watched
//! against a pre-change baseline, and automatic revert to the recorded known-good images.
//!
//! The pipeline: `controller` observes (reads the CR, its targets in `target`, its `signals` and
//! the `history` recorded of them) → `decide` (pure: observed state + clock → next status, one
//! target change, Events; a folder with one file per step of an upgrade) → `controller` acts.
//! Imports run one way: `controller` → `history`, `signals`, `target`, `decide` → `detector` and
//! the helpers at the top (`window`, `replay`, `timeline`, `timefmt`, `names`, `constants`,
//! `error`, `metrics`, `health`, `outbound`, `resuming_watch`), which import nothing above them.

// The public surface: what the binary, the plugin, the e2e tests and the benchmark use. The
// rest is the crate's own.
pub mod constants;
pub mod crd;
pub mod detector;
pub mod image;
pub mod replay;
pub mod target;
pub mod timeline;
pub use controller::leader::term::{MAX_DURATION as MAX_LEASE_DURATION, MIN_DURATION as MIN_LEASE_DURATION};
pub use controller::leader::{Fence, LeaseConfig};
pub use controller::{Options, run};
pub use health::Health;
pub use history::Recording;
pub use metrics::{Metrics, serve as serve_metrics};
pub use outbound::{Outbound, REQUEST_TIMEOUT, Settings as OutboundSettings};

pub(crate) mod controller;
pub(crate) mod decide;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod metrics;
pub(crate) mod names;
pub(crate) mod outbound;
pub(crate) mod resuming_watch;
pub(crate) mod signals;
pub(crate) mod timefmt;
pub(crate) mod window;
