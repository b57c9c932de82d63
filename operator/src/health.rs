//! Act step's side channel: what `/healthz` and `/readyz` answer, from what the running parts
//! report. Ready: the CRD is installed and the shared watches have listed (pods and Warning
//! Events, so a look would read the built-in signal from a full index; nodes, so a canary's
//! nodeSelector is matched against every node, and a missing right to watch them shows); a
//! watch resuming after a failure keeps its list (reads wait for it, the replica stays Ready),
//! and a follower is ready too: it keeps the same caches and may lead at any moment. Healthy:
//! no look has run for longer than any look should, and, with leader election, the elector
//! still steps; otherwise the kubelet restarts the process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A look taking longer than this is wedged: each look is cut short at `LOOK_LIMIT`.
pub const WEDGED: Duration = Duration::from_secs(300);
/// The longest one look may take (it is then dropped and tried again), well within `WEDGED`.
pub const LOOK_LIMIT: Duration = Duration::from_secs(240);

#[derive(Clone, Default)]
pub struct Health(Arc<Inner>);

type Listed = Box<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct Inner {
    crd_installed: AtomicBool,
    /// Each shared watch, by what it watches, and whether it has listed.
    watches: Mutex<Vec<(&'static str, Listed)>>,
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

    /// How to tell whether the shared watch of `what` has listed; ready only once each has.
    pub fn watch(&self, what: &'static str, listed: impl Fn() -> bool + Send + Sync + 'static) {
        lock(&self.0.watches).push((what, Box::new(listed)));
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
            waiting.push("the MaintenanceUpgrade CRD to be installed".to_string());
        }
        let watches = lock(&self.0.watches);
        let unlisted: Vec<&str> = watches.iter().filter(|(_, listed)| !listed()).map(|(w, _)| *w).collect();
        if watches.is_empty() {
            waiting.push("the watches to start".into());
        } else if !unlisted.is_empty() {
            waiting.push(format!("the watches of {} to list", unlisted.join(" and of ")));
        }
        drop(watches);
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
