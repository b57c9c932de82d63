//! `status NAME [-w]` and `list`: read-only. `-w` follows one upgrade through a watch (not by
//! polling), redrawing the view and adding a timeline row on every change, until it ends.

use crate::terminal::{escaped, safe};
use crate::{Target, exit};
use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use maintenance_operator::constants::condition;
use maintenance_operator::crd::{MaintenanceUpgrade, Phase};
use maintenance_operator::timeline;
use std::io::IsTerminal;

/// Whether a watch error will not go away by watching again: the API server says upgrades do
/// not exist (the CRD is not installed) or that this user may not list or watch them.
pub(crate) fn lasting(e: &watcher::Error) -> bool {
    let code = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s.code,
        watcher::Error::WatchError(s) => s.code,
        _ => return false,
    };
    matches!(code, 403 | 404)
}

/// What the exit code says about an upgrade in `phase`.
fn outcome(phase: Phase) -> u8 {
    match phase {
        Phase::Succeeded => exit::OK,
        Phase::RolledBack | Phase::Failed => exit::NOT_OK,
        Phase::AwaitingApproval | Phase::Paused | Phase::Degraded => exit::ATTENTION,
        _ => exit::RUNNING,
    }
}

pub async fn status(t: &Target, name: &str, watch: bool) -> anyhow::Result<u8> {
    let api: Api<MaintenanceUpgrade> = Api::namespaced(t.client.clone(), &t.namespace);
    if !watch {
        let Some(mu) = api.get_opt(name).await? else { return Ok(not_found(t, name)) };
        println!("{}", safe(&timeline::view(&escaped(&mu), chrono::Utc::now(), &[]), true));
        return Ok(match outcome(phase_of(&mu)) {
            exit::RUNNING if blocked(&mu) => exit::ATTENTION,
            code => code,
        });
    }
    let terminal = std::io::stdout().is_terminal();
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut changes = std::pin::pin!(watcher(api.clone(), config).default_backoff());
    let (mut rows, mut statistics, mut last_row) = (Rows::default(), vec![], String::new());
    let started = std::time::Instant::now();
    // Whether the upgrade was ever seen, and whether the list the watch is making (after a
    // start or a break) has shown it: one that does not was deleted meanwhile.
    let (mut seen, mut listed_it) = (false, false);
    loop {
        let mu = match changes.next().await {
            Some(Ok(watcher::Event::Apply(mu) | watcher::Event::InitApply(mu))) => {
                listed_it = true;
                mu
            }
            Some(Ok(watcher::Event::Init)) => {
                listed_it = false;
                continue;
            }
            Some(Ok(watcher::Event::InitDone)) if listed_it => continue,
            Some(Ok(watcher::Event::InitDone)) if !seen => return Ok(not_found(t, name)),
            Some(Ok(watcher::Event::InitDone | watcher::Event::Delete(_))) => return Ok(deleted(t, name)),
            Some(Err(e)) if lasting(&e) => {
                eprintln!("error: {}", safe(&e.to_string(), false));
                return Ok(exit::API);
            }
            Some(Err(e)) => {
                eprintln!("watch: {}; watching again", safe(&e.to_string(), false));
                continue;
            }
            None => return Ok(exit::API),
        };
        seen = true;
        let st = mu.status.as_ref();
        if let Some(s) = st.and_then(|s| s.first_signal()).and_then(|a| a.statistic)
            && statistics.last() != Some(&s)
        {
            statistics.push(s);
        }
        let row = safe(&timeline::row(st, 90), false);
        if row != last_row {
            rows.push(format!("{:>5}s  {row}", started.elapsed().as_secs()));
            last_row = row;
        }
        if terminal {
            print!("\x1b[2J\x1b[H");
        } else {
            println!("----");
        }
        println!("{}\n", safe(&timeline::view(&escaped(&mu), chrono::Utc::now(), &statistics), true));
        println!("{:>6}  {}", "time", timeline::header());
        rows.print();
        let phase = phase_of(&mu);
        if phase.is_terminal() {
            return Ok(outcome(phase));
        }
    }
}

pub async fn list(t: &Target, all: bool) -> anyhow::Result<u8> {
    let api: Api<MaintenanceUpgrade> =
        if all { Api::all(t.client.clone()) } else { Api::namespaced(t.client.clone(), &t.namespace) };
    let upgrades = api.list(&ListParams::default()).await?;
    if upgrades.items.is_empty() {
        let scope = if all { "any namespace".to_string() } else { format!("namespace {}", t.namespace) };
        println!("No MaintenanceUpgrades in {scope}.");
        return Ok(exit::OK);
    }
    println!("{:<16} {:<32} {:<18} {:<10} {:<8} next", "NAMESPACE", "NAME", "PHASE", "STAGE", "HEALTHY");
    for mu in &upgrades.items {
        let st = mu.status.clone().unwrap_or_default();
        let healthy =
            st.conditions.iter().find(|c| c.type_ == condition::HEALTHY).map_or("-", |c| c.status.as_str());
        let healthy = safe(healthy, false);
        let next = safe(&st.next_action.as_ref().map_or(String::new(), |n| n.summary.clone()), false);
        println!(
            "{:<16} {:<32} {:<18} {:<10} {:<8} {next}",
            mu.metadata.namespace.as_deref().unwrap_or(""),
            mu.metadata.name.as_deref().unwrap_or(""),
            format!("{:?}", st.phase),
            safe(&st.current_stage.unwrap_or_default(), false),
            healthy,
        );
    }
    Ok(exit::OK)
}

/// Whether the upgrade is Blocked: it takes no step forward until someone changes something.
fn blocked(mu: &MaintenanceUpgrade) -> bool {
    let mut conditions = mu.status.iter().flat_map(|s| &s.conditions);
    conditions.any(|c| c.type_ == condition::BLOCKED && c.status == "True")
}

fn phase_of(mu: &MaintenanceUpgrade) -> Phase {
    mu.status.as_ref().map(|s| s.phase).unwrap_or_default()
}

/// The timeline's rows: the last `Rows::SHOWN`, so that a redraw (a long soak, its output
/// piped to a log) does not print every row seen so far again.
#[derive(Default)]
struct Rows {
    rows: std::collections::VecDeque<String>,
    earlier: usize,
}

impl Rows {
    const SHOWN: usize = 40;

    fn push(&mut self, row: String) {
        self.rows.push_back(row);
        if self.rows.len() > Self::SHOWN {
            self.rows.pop_front();
            self.earlier += 1;
        }
    }

    fn print(&self) {
        if self.earlier > 0 {
            println!("{:>6}  ({} earlier rows)", "", self.earlier);
        }
        for r in &self.rows {
            println!("{r}");
        }
    }
}

fn deleted(t: &Target, name: &str) -> u8 {
    eprintln!("maintenanceupgrade {}/{name} was deleted before it ended", t.namespace);
    exit::NOT_OK
}

fn not_found(t: &Target, name: &str) -> u8 {
    eprintln!(
        "maintenanceupgrade {}/{name} not found (kubectl maintenance list -n {})",
        t.namespace, t.namespace
    );
    exit::REFUSED
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
