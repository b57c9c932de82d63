//! A watch that resumes where it was after a failure, shared by the pod cache and the target
//! cache. kube-runtime's watcher keeps its resourceVersion when a watch fails, so a dropped
//! connection costs no new list: it says nothing when it resumes, and only the API server's 410
//! (its history no longer reaches back that far) makes it list again. Whatever it feeds must
//! therefore not wait for a new list after a failure, only until the watch is seen working
//! again, since the events it missed are still to come.

use crate::metrics::WatchFailures;
use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use std::time::Duration;
use tracing::{info, warn};

/// The longest pause between two attempts to resume a watch.
const MAX_BACKOFF: Duration = Duration::from_secs(16);
/// How long a watch may keep failing before it is started afresh, with a new list.
const RELIST_AFTER: Duration = Duration::from_secs(60);
/// After a failure, how long a watch must stay quiet to count as resumed: the watcher says
/// nothing when it resumes, but an attempt that fails says so, at once or, when it cannot
/// connect, after the client's 30 s connect timeout (so past it: a resume still connecting
/// would otherwise count as working, and what the watch missed be read as nothing).
pub const QUIET: Duration = Duration::from_secs(35);

/// What a watch tells whatever it feeds.
pub trait Fed<K> {
    /// One event of the watch.
    fn apply(&self, event: watcher::Event<K>);
    /// It failed (true) and is resuming, or works again (false): what it fed is behind by what
    /// it missed meanwhile, and its reads must go around it.
    fn behind(&self, behind: bool);
    /// It is started afresh: what it fed is not whole until its new list is complete.
    fn lost(&self);
}

/// Feed `fed` from a watch started by `start`, as long as the process runs: after a failure,
/// what it fed counts as caught up once the watch shows an event or stays `QUIET` that long. A
/// watch that keeps failing for `RELIST_AFTER` is started afresh. Each failure counts in
/// `failures`, under `what`.
pub async fn feed<K, S>(what: &str, start: impl Fn() -> S, fed: impl Fed<K>, failures: WatchFailures)
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    failures.watching(what);
    loop {
        let mut stream = std::pin::pin!(start());
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            let next = match failing_since {
                None => stream.next().await,
                Some(_) => match tokio::time::timeout(QUIET, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        info!("the watch of {what} works again");
                        (failing_since, backoff) = (None, Duration::from_secs(1));
                        fed.behind(false);
                        continue;
                    }
                },
            };
            let Some(event) = next else { break };
            match event {
                Ok(event) => {
                    backoff = Duration::from_secs(1);
                    // The event first: a list begun again (Init) is not trusted for a moment.
                    fed.apply(event);
                    if failing_since.take().is_some() {
                        info!("the watch of {what} works again");
                        fed.behind(false);
                    }
                }
                Err(e) => {
                    failures.failed(what);
                    let since = *failing_since.get_or_insert_with(|| {
                        warn!("the watch of {what} failed: {e}; resuming it where it was (reads go around it meanwhile)");
                        fed.behind(true);
                        tokio::time::Instant::now()
                    });
                    if since.elapsed() >= RELIST_AFTER {
                        warn!(
                            "the watch of {what} has failed for {}s: starting it afresh (reads go around it until its list is complete)",
                            since.elapsed().as_secs()
                        );
                        fed.lost();
                        fed.behind(false);
                        break;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
#[path = "resuming_watch_tests.rs"]
mod tests;
