//! Act step's guard, needs no API: whether this replica may write now. A leader may write until
//! the term its last successful renewal proves ends (`term::term_end`); after that it writes
//! nothing, whatever is still running: every request but a read through its client is refused
//! (`client`), and so is every webhook delivery (`Notifier`). Nothing else is stopped: the
//! caches stay warm, and a renewal that goes through opens the fence again.

use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Term {
    /// No leader election: one replica, which may always write.
    Always,
    /// Leading until then.
    Until(Instant),
    /// Not leading.
    Over,
}

/// Shared by the elector, which moves the term, and everything that writes.
#[derive(Clone, Debug)]
pub struct Fence {
    term: Arc<watch::Sender<Term>>,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
#[error("not written: this replica cannot prove it still holds the Lease (its term has ended)")]
pub struct Fenced;

impl Fence {
    /// For a replica that runs without leader election.
    pub fn open() -> Self {
        Fence { term: Arc::new(watch::channel(Term::Always).0) }
    }

    /// For a replica that has not taken the Lease yet.
    pub fn closed() -> Self {
        Fence { term: Arc::new(watch::channel(Term::Over).0) }
    }

    /// Whether a write may be sent now.
    pub fn allows(&self) -> bool {
        match *self.term.borrow() {
            Term::Always => true,
            Term::Until(end) => Instant::now() < end,
            Term::Over => false,
        }
    }

    /// A renewal proved the term until `end`.
    pub fn extend(&self, end: Instant) {
        self.term.send_if_modified(|t| {
            let moved = matches!(t, Term::Until(e) if *e < end) || *t == Term::Over;
            if moved {
                *t = Term::Until(end);
            }
            moved
        });
    }

    /// Another replica holds the Lease, or this one released it.
    pub fn close(&self) {
        self.term.send_if_modified(|t| {
            let open = matches!(t, Term::Until(_));
            if open {
                *t = Term::Over;
            }
            open
        });
    }

    /// Returns once writes are allowed.
    pub async fn opened(&self) {
        let mut rx = self.term.subscribe();
        while !self.allows() {
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Returns once writes are no longer allowed: the term ran out, or the fence was closed.
    pub async fn lapsed(&self) {
        let mut rx = self.term.subscribe();
        loop {
            let term = *rx.borrow_and_update();
            match term {
                Term::Over => return,
                Term::Until(end) if Instant::now() >= end => return,
                Term::Until(end) => tokio::select! {
                    _ = tokio::time::sleep_until(end.into()) => {}
                    _ = rx.changed() => {}
                },
                Term::Always => {
                    if rx.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// A client whose every request but a read is refused outside the term.
    pub fn client(&self, config: kube::Config) -> kube::Result<kube::Client> {
        let fence = self.clone();
        let layer = tower::filter::FilterLayer::new(move |req: http::Request<kube::client::Body>| {
            if req.method() == http::Method::GET || fence.allows() { Ok(req) } else { Err(Fenced) }
        });
        Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&layer).build())
    }
}

#[cfg(test)]
#[path = "fence_tests.rs"]
mod tests;
