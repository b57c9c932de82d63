//! Leader election's shell, needs a client: reads and writes the coordination.k8s.io Lease as
//! `term` decides, and moves the `Fence` with every renewal that goes through. Every request has
//! a deadline of one period, so a renewal that hangs counts as failed instead of holding the loop.
//! Its client is not fenced: renewing is how the fence opens again.

use super::LeaseConfig;
use super::fence::Fence;
use super::term::{self, Held, Next, Sighting};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use std::future::Future;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    fence: Fence,
    /// The Lease as last read or written; None when it must be read again.
    lease: Option<Lease>,
    sighting: Sighting,
    /// The last renewal failure said, so that a streak of them is said once.
    failing: Option<String>,
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig, fence: Fence) -> Self {
        let api = Api::namespaced(client, &cfg.namespace);
        Elector { api, cfg, fence, lease: None, sighting: Sighting::new(Instant::now()), failing: None }
    }

    fn period(&self) -> Duration {
        term::period(self.cfg.duration)
    }

    /// Try, renew or wait, once; how long to wait before the next step.
    pub async fn step(&mut self) -> Duration {
        if self.lease.as_ref().is_none_or(|l| !self.mine(l)) {
            match self.timed(self.api.get_opt(&self.cfg.name)).await {
                Ok(l) => self.lease = l,
                Err(e) => {
                    self.failed(format!("cannot read Lease {}: {}", self.name(), e.said));
                    return RETRY.min(self.period());
                }
            }
        }
        let held = self.lease.as_ref().map(|l| held(l, self.cfg.duration));
        let now = Instant::now();
        self.sighting.saw(held.as_ref(), now);
        match term::next(&self.cfg.identity, held.as_ref(), self.sighting.since(), now, self.cfg.duration) {
            Next::Wait(d) => {
                if self.fence.allows() {
                    let holder = held.and_then(|h| h.holder).unwrap_or_default();
                    warn!("lost Lease {} to {holder}: no more writes from this replica", self.name());
                }
                self.fence.close();
                d.min(self.period())
            }
            next => {
                let sent = Instant::now();
                let written = match next {
                    Next::Create => {
                        self.timed(self.api.create(&PostParams::default(), &self.lease(None))).await
                    }
                    _ => {
                        let current = self.lease.clone().unwrap_or_default();
                        let replacement = self.lease(Some(&current));
                        self.timed(self.api.replace(&self.cfg.name, &PostParams::default(), &replacement))
                            .await
                    }
                };
                match written {
                    Ok(l) => {
                        if !self.fence.allows() {
                            info!("holding Lease {} as {}", self.name(), self.cfg.identity);
                        }
                        self.fence.extend(term::term_end(sent, self.cfg.duration));
                        self.lease = Some(l);
                        self.failing = None;
                    }
                    Err(e) => {
                        // Someone else wrote it (read it again), or it is gone: either way it
                        // may no longer be ours, and a deleted one is not (`term::next`).
                        if e.conflict || e.gone {
                            self.lease = None;
                        }
                        if e.gone && self.fence.allows() {
                            warn!(
                                "Lease {} was deleted: no more writes from this replica until it holds one again",
                                self.name()
                            );
                            self.fence.close();
                        } else if self.fence.allows() {
                            self.failed(format!(
                                "cannot renew Lease {}: {}; this replica stops writing when its term ends unless a renewal goes through first",
                                self.name(),
                                e.said
                            ));
                        } else {
                            debug!("cannot take Lease {}: {}", self.name(), e.said);
                        }
                        return RETRY.min(self.period());
                    }
                }
                self.period()
            }
        }
    }

    /// Let the Lease go, if this replica holds it, so that the next one need not wait for it to
    /// expire.
    pub async fn release(&mut self) -> bool {
        self.fence.close();
        let Some(mut current) = self.lease.take().filter(|l| self.mine(l)) else { return false };
        // Twice at most: a renewal cut short by the stop may have landed, moving the version on.
        for _ in 0..2 {
            let mut released = current.clone();
            let spec = released.spec.get_or_insert_with(Default::default);
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            match self.timed(self.api.replace(&self.cfg.name, &PostParams::default(), &released)).await {
                Ok(_) => return true,
                Err(e) if e.conflict => match self.timed(self.api.get_opt(&self.cfg.name)).await {
                    Ok(Some(l)) if self.mine(&l) => current = l,
                    _ => return false,
                },
                Err(_) => return false,
            }
        }
        false
    }

    /// The Lease held by this replica: `current` renewed, or taken over, or a new one.
    fn lease(&self, current: Option<&Lease>) -> Lease {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let mut lease = current.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..Default::default()
            },
            spec: None,
        });
        let taking = !current.is_some_and(|l| self.mine(l));
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if taking {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions =
                Some(spec.lease_transitions.unwrap_or(0) + i32::from(spec.holder_identity.is_some()));
        }
        spec.holder_identity = Some(self.cfg.identity.clone());
        spec.lease_duration_seconds = Some(self.cfg.duration.as_secs().clamp(1, i32::MAX as u64) as i32);
        spec.renew_time = Some(now);
        // The resourceVersion read makes this a compare-and-swap: a Lease someone else wrote
        // since is not overwritten.
        lease.metadata.managed_fields = None;
        lease
    }

    fn mine(&self, l: &Lease) -> bool {
        l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.cfg.identity.as_str())
    }

    fn name(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    fn failed(&mut self, what: String) {
        if self.failing.as_deref() != Some(what.as_str()) {
            warn!("{what}");
            self.failing = Some(what);
        }
    }

    /// A request with a deadline of one period.
    async fn timed<T>(&self, req: impl Future<Output = kube::Result<T>>) -> Result<T, Failure> {
        match tokio::time::timeout(self.period(), req).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let code = |c: u16| matches!(&e, kube::Error::Api(s) if s.code == c);
                Err(Failure { said: crate::error::said(&e), conflict: code(409), gone: code(404) })
            }
            Err(_) => Err(Failure {
                said: format!("no answer within {:?}", self.period()),
                conflict: false,
                gone: false,
            }),
        }
    }
}

/// How soon a failed request is tried again: well within the period, so that one slow answer
/// does not cost a term.
const RETRY: Duration = Duration::from_millis(500);

/// Why a Lease request failed.
struct Failure {
    said: String,
    /// Someone else wrote the Lease since it was read.
    conflict: bool,
    /// There is no Lease.
    gone: bool,
}

/// What `term` needs of a Lease.
fn held(l: &Lease, ours: Duration) -> Held {
    let spec = l.spec.clone().unwrap_or_default();
    Held {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        version: l.resource_version().unwrap_or_default(),
        duration: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(ours, Duration::from_secs),
    }
}
