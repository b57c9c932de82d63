//! maintenance-operator: staged image upgrades inside maintenance windows, a long soak watched
//! against a pre-change baseline, and automatic revert to the recorded known-good images.
//!
//! The pipeline: `controller` observes (reads the CR, its targets in `target`, its `signals` and
//! the `history` recorded of them) → `decide` (pure: observed state + clock → next status, one
//! target change, Events; a folder with one file per step of an upgrade) → `controller` acts.
//! Imports run one way: `controller` → `history`, `signals`, `target`, `decide` → `detector` and
//! the helpers at the top (`window`, `replay`, `timeline`, `timefmt`, `constants`, `error`,
//! `metrics`, `outbound`), which import nothing above them.

pub mod constants;
pub mod controller;
pub mod crd;
pub mod decide;
pub mod detector;
pub mod error;
pub mod history;
pub mod metrics;
pub mod outbound;
pub mod replay;
pub mod signals;
pub mod target;
pub mod timefmt;
pub mod timeline;
pub mod window;
