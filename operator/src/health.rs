//! Act step's side channel: what `/healthz` and `/readyz` answer, from what the running parts
//! report. Ready: the CRD is installed and the pod and Warning Event watches have listed, so a
//! look would read the built-in signal from a full index (a follower is ready too: it keeps the
//! same caches and may lead at any moment). Healthy: no look has run for longer than any look
//! should, and, with leader election, the elector still steps; otherwise the kubelet restarts
//! the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A look taking longer than this is wedged: each look is cut short at `LOOK_LIMIT`.
pub const WEDGED: Duration = Duration::from_secs(300);
/// The longest one look may take (it is then dropped and tried again), well within `WEDGED`.
pub const LOOK_LIMIT: Duration = Duration::from_secs(240);

#[derive(Clone, Default)]
pub struct Health(Arc<Inner>);

#[derive(Default)]
struct Inner {
    crd_installed: AtomicBool,
    /// Whether the pod and Warning Event watches have listed (the index says).
    listed: OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
    /// Looks in flight: upgrade (`namespace/name`) → when it began.
    looks: Mutex<HashMap<String, Instant>>,
    /// With leader election: when the elector last finished a step, and the longest it may
    /// take between two (a few of its periods).
    elector: Mutex<Option<(Instant, Duration)>>,
    leading: AtomicBool,
}

/// One look in flight, until dropped.
pub struct Look(Health, String);

impl Drop for Look {
    fn drop(&mut self) {
        lock(&self.0.0.looks).remove(&self.1);
    }
}

impl Health {
    pub fn crd_installed(&self, installed: bool) {
        self.0.crd_installed.store(installed, Ordering::Relaxed);
    }

    /// How to tell whether the watches the built-in signal reads have listed.
    pub fn watches(&self, listed: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.0.listed.set(Box::new(listed));
    }

    pub fn leading(&self, leading: bool) {
        self.0.leading.store(leading, Ordering::Relaxed);
    }

    /// A look at `upgrade` begins; it ends when the guard is dropped.
    pub fn look(&self, upgrade: String) -> Look {
        lock(&self.0.looks).insert(upgrade.clone(), Instant::now());
        Look(self.clone(), upgrade)
    }

    /// The elector finished a step; the next is due within `within`.
    pub fn elector_stepped(&self, within: Duration) {
        *lock(&self.0.elector) = Some((Instant::now(), within));
    }

    /// `/readyz`: Ok with what this replica is doing, or what it still waits for.
    pub fn ready(&self) -> Result<String, String> {
        let mut waiting = vec![];
        if !self.0.crd_installed.load(Ordering::Relaxed) {
            waiting.push("the MaintenanceUpgrade CRD to be installed");
        }
        if !self.0.listed.get().is_some_and(|listed| listed()) {
            waiting.push("the watches of pods and Warning Events to list");
        }
        if !waiting.is_empty() {
            return Err(format!("not ready: waiting for {}", waiting.join(" and ")));
        }
        Ok(if self.0.leading.load(Ordering::Relaxed) { "ok: leading" } else { "ok: following" }.into())
    }

    /// `/healthz`: Ok, or why the process should be restarted.
    pub fn healthy(&self) -> Result<String, String> {
        healthy(&lock(&self.0.looks), *lock(&self.0.elector), Instant::now())
    }
}

/// The verdict of `/healthz` at `now`.
fn healthy(
    looks: &HashMap<String, Instant>,
    elector: Option<(Instant, Duration)>,
    now: Instant,
) -> Result<String, String> {
    if let Some((upgrade, began)) = looks.iter().min_by_key(|(_, began)| **began)
        && now.duration_since(*began) > WEDGED
    {
        return Err(format!(
            "wedged: the look at MaintenanceUpgrade {upgrade} has run for {}s (at most {}s expected)",
            now.duration_since(*began).as_secs(),
            WEDGED.as_secs()
        ));
    }
    if let Some((last, within)) = elector
        && now.duration_since(last) > within
    {
        return Err(format!(
            "wedged: leader election has not stepped for {}s (at most {}s expected)",
            now.duration_since(last).as_secs(),
            within.as_secs()
        ));
    }
    Ok("ok".into())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
