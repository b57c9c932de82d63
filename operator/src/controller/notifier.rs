//! Act step's side channel, needs a client: delivers the notifications `decide` recorded, to
//! each webhook's URL (read from its Secret), off the reconcile path: a slow or failing webhook
//! never blocks or fails a reconcile. Each result goes back to the upgrade's next look, which
//! records it in status (delivered, or retried with backoff) and wakes the upgrade.

use crate::constants::CONTROLLER_NAME;
use crate::controller::leader::Fence;
use crate::controller::wake::WakeUps;
use crate::crd::*;
use crate::decide::{DEFAULT_WEBHOOK, Delivery};
use crate::metrics::{Metrics, ResultLabel};
use crate::outbound::{self, Outbound};
use crate::timefmt;
use chrono::Utc;
use futures::Stream;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;
use tracing::debug;

/// The longest one delivery's POST may take.
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(5);

/// The longest one delivery may take in all, its Secret's read included: it holds one of the
/// `MAX_DELIVERIES` permits meanwhile, and a read the API server never answers must not hold
/// it for ever (the client sets no read timeout of its own).
const DELIVERY_LIMIT: StdDuration = StdDuration::from_secs(15);

/// How many deliveries run at once, whatever is due: each reads a Secret (a tenant may make hers
/// large) and posts to a receiver that may never answer, and after a restart every upgrade's
/// pending notifications are due together.
pub const MAX_DELIVERIES: usize = 8;

/// How many of those one namespace's upgrades may hold (the permits are first come, first
/// served): a namespace whose receiver holds every POST to its limit, or whose Secret reads are
/// slow, takes at most this share of the turns, so that other namespaces' notifications, the
/// default webhook's included, still go out. It takes four such namespaces to hold them all.
pub const MAX_DELIVERIES_PER_NAMESPACE: usize = 2;

/// The longest webhook URL read from a Secret: a longer one is refused, so that no status field
/// or Event repeats a tenant's megabyte.
pub const MAX_URL_BYTES: usize = 2048;

/// The longest delivery error kept (it goes into the status).
const MAX_ERROR_BYTES: usize = 512;

impl Destination {
    /// Whether its Secret's name and key are a Secret's: an upgrade stored before the CRD
    /// refused others may hold any string, and kube puts a name into the request's path as it
    /// is (`x?watch=true` would turn the read into a watch).
    pub fn check(&self) -> Result<(), String> {
        let key_ok = !self.key.is_empty()
            && self.key.len() <= 253
            && self.key.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if crate::names::is_dns_subdomain(&self.secret) && key_ok {
            return Ok(());
        }
        Err(format!(
            "Secret {:?} key {:?} is not a Secret's name and key: fix its urlSecretRef",
            self.secret, self.key
        ))
    }
}

/// The upgrade a notification is of: all that a delivery keeps of it while it waits for its turn
/// (a tenant's upgrade may be megabytes of labels, and each of its 50 notifications may wait).
#[derive(Clone, Debug, PartialEq)]
pub struct Of {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Of {
    pub fn upgrade(mu: &MaintenanceUpgrade) -> Of {
        Of {
            namespace: mu.namespace().unwrap_or_default(),
            name: mu.name_any(),
            uid: mu.uid().unwrap_or_default(),
        }
    }

    fn object_ref(&self) -> ObjectRef<MaintenanceUpgrade> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

/// Where a webhook's URL is and how it wants its payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub secret_namespace: String,
    pub secret: String,
    pub key: String,
    pub format: WebhookFormat,
}

/// One lock over both, so that a notification is always in one of them between its dispatch and
/// the look that records its result.
#[derive(Default)]
struct State {
    /// Results waiting for the next look at each upgrade, by UID.
    results: HashMap<String, Vec<Delivery>>,
    /// `<uid>/<id>` of the notifications being delivered.
    in_flight: HashSet<String>,
}

#[derive(Clone)]
pub struct Notifier {
    client: Client,
    outbound: Outbound,
    metrics: Metrics,
    /// The operator-wide default webhook: a Secret (namespace, name) with `url` and optional
    /// `format` (Generic or Slack).
    default: Option<(String, String)>,
    state: Arc<Mutex<State>>,
    wake: WakeUps,
    /// No delivery goes out past this replica's term, even one spawned before it ended.
    fence: Fence,
    /// A permit per delivery under way (`MAX_DELIVERIES`).
    deliveries: Arc<tokio::sync::Semaphore>,
    /// Each namespace's share of them (`MAX_DELIVERIES_PER_NAMESPACE`), taken first, while its
    /// upgrades have a delivery waiting or under way.
    shares: Arc<Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>>,
}

impl Notifier {
    pub fn new(
        client: Client,
        outbound: Outbound,
        metrics: Metrics,
        default: Option<(String, String)>,
        fence: Fence,
    ) -> Self {
        let wake = WakeUps::new("notification results", 1024);
        let deliveries = Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES));
        let shares = Arc::default();
        Notifier {
            client,
            outbound,
            metrics,
            default,
            state: Arc::default(),
            wake,
            fence,
            deliveries,
            shares,
        }
    }

    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// The deliveries made since the last look at the upgrade with this UID. They stay until
    /// `recorded` says a decision holding them was kept: a look that ends early (a conflict) must
    /// not lose them, or they would be sent again.
    pub fn results(&self, uid: &str) -> Vec<Delivery> {
        lock(&self.state).results.get(uid).cloned().unwrap_or_default()
    }

    /// A decision holding `deliveries` was written, or kept as decided.
    pub fn recorded(&self, uid: &str, deliveries: &[Delivery]) {
        let mut state = lock(&self.state);
        if let Some(r) = state.results.get_mut(uid) {
            r.retain(|d| !deliveries.contains(d));
            if r.is_empty() {
                state.results.remove(uid);
            }
        }
    }

    /// The upgrade with this UID is gone: its results are dropped. A delivery still in flight
    /// leaves one behind, dropped by the sweep of upgrades that are gone (`forget_all_but`).
    pub fn forget(&self, uid: &str) {
        lock(&self.state).results.remove(uid);
    }

    /// Forget the results of every upgrade but these (UIDs): the others are gone.
    pub fn forget_all_but(&self, live: &HashSet<String>) {
        lock(&self.state).results.retain(|uid, _| live.contains(uid));
    }

    /// Upgrades with a delivery result to record.
    pub fn wake_ups(&self) -> impl Stream<Item = ObjectRef<MaintenanceUpgrade>> + Send + 'static {
        self.wake.stream()
    }

    /// Start delivering `due` notifications of `mu` in the background.
    pub fn send(&self, mu: &MaintenanceUpgrade, due: Vec<NotificationStatus>) {
        let of = Of::upgrade(mu);
        let uid = of.uid.clone();
        for n in due {
            // Delivered (or failed) but not yet recorded: a look that began before the result
            // came still sees it due.
            {
                let mut state = lock(&self.state);
                let reported = state.results.get(&uid).is_some_and(|r| r.iter().any(|d| d.id == n.id));
                if reported || !state.in_flight.insert(format!("{uid}/{}", n.id)) {
                    continue;
                }
            }
            let Some(dest) = self.destination(mu, &n.webhook) else {
                // The webhook left the spec: nothing to deliver to, said once as a failure.
                let why = format!("webhook {} is no longer configured", n.webhook);
                self.report(&of, &n.id, Some(why), true);
                continue;
            };
            if let Err(why) = dest.check() {
                self.report(&of, &n.id, Some(why), true);
                continue;
            }
            let (this, of) = (self.clone(), of.clone());
            let (uid, namespace) = (of.uid.clone(), of.namespace.clone());
            let share = self.share_of(&namespace);
            tokio::spawn(async move {
                // Never closed: a permit always comes, in turn; the namespace's first, so that
                // one tenant's queue never stands in everyone's.
                let own = share.clone().acquire_owned().await;
                let permit = this.deliveries.clone().acquire_owned().await;
                let delivered = tokio::time::timeout(DELIVERY_LIMIT, this.deliver(&of, &n, &dest))
                    .await
                    .unwrap_or_else(|_| {
                        let limit = DELIVERY_LIMIT.as_secs();
                        Some(Err(format!("not delivered within {limit} s (reading its Secret, or posting)")))
                    });
                drop((permit, own, share));
                this.drop_share_if_idle(&namespace);
                let Some(result) = delivered else {
                    // Not sent: still due in the status, for whichever replica leads next.
                    lock(&this.state).in_flight.remove(&format!("{uid}/{}", n.id));
                    return;
                };
                let result = result.err();
                let label = ResultLabel {
                    result: if result.is_some() { "failed".into() } else { "delivered".into() },
                };
                this.metrics.notifications.get_or_create(&label).inc();
                this.report(&of, &n.id, result, false);
            });
        }
    }

    /// `namespace`'s share of the delivery permits, made when it first has a delivery.
    fn share_of(&self, namespace: &str) -> Arc<tokio::sync::Semaphore> {
        let mut shares = lock(&self.shares);
        let share = shares
            .entry(namespace.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES_PER_NAMESPACE)));
        Arc::clone(share)
    }

    /// Forget `namespace`'s share once no delivery of its upgrades waits or runs, so that the
    /// map follows the namespaces with notifications under way, not every one that ever had one.
    fn drop_share_if_idle(&self, namespace: &str) {
        let mut shares = lock(&self.shares);
        if shares.get(namespace).is_some_and(|s| Arc::strong_count(s) == 1) {
            shares.remove(namespace);
        }
    }

    fn report(&self, of: &Of, id: &str, error: Option<String>, permanent: bool) {
        let error = error.map(|e| crate::controller::act::truncate(e, MAX_ERROR_BYTES));
        let uid = &of.uid;
        let mut state = lock(&self.state);
        state.results.entry(uid.to_string()).or_default().push(Delivery {
            id: id.to_string(),
            at: Utc::now(),
            error,
            permanent,
        });
        state.in_flight.remove(&format!("{uid}/{id}"));
        drop(state);
        self.wake.wake(of.object_ref());
    }

    fn destination(&self, mu: &MaintenanceUpgrade, webhook: &str) -> Option<Destination> {
        match &mu.spec.notifications {
            Some(n) => n.webhooks.iter().find(|w| w.name == webhook).map(|w| Destination {
                secret_namespace: mu.namespace().unwrap_or_default(),
                secret: w.url_secret_ref.name.clone(),
                key: w.url_secret_ref.key.clone(),
                format: w.format,
            }),
            None if webhook == DEFAULT_WEBHOOK => self.default.as_ref().map(|(ns, name)| Destination {
                secret_namespace: ns.clone(),
                secret: name.clone(),
                key: "url".into(),
                format: WebhookFormat::Generic,
            }),
            None => None,
        }
    }

    /// Deliver one notification: None when it was not sent because this replica's term ended.
    async fn deliver(
        &self,
        of: &Of,
        n: &NotificationStatus,
        dest: &Destination,
    ) -> Option<Result<(), String>> {
        if !self.fence.allows() {
            return None;
        }
        let request = match self.request(of, n, dest).await {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        // Checked last, just before it goes out: reading the Secret may have outlasted the term.
        if !self.fence.allows() {
            return None;
        }
        let sent = match request.send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("the webhook answered {}", resp.status())),
            Err(e) => Err(format!("POST failed: {}", outbound::failure(&e))),
        };
        Some(sent)
    }

    /// The POST of one notification, ready to go.
    async fn request(
        &self,
        of: &Of,
        n: &NotificationStatus,
        dest: &Destination,
    ) -> Result<reqwest::RequestBuilder, String> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), &dest.secret_namespace)
            .get(&dest.secret)
            .await
            .map_err(|e| format!("cannot read Secret {}/{}: {e}", dest.secret_namespace, dest.secret))?;
        let data = secret.data.unwrap_or_default();
        let url = url_in(&data, dest)?;
        let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
        // The default webhook's Secret may say which format it wants.
        let format = match text("format").as_deref() {
            Some("Slack") if self.default.is_some() && n.webhook == DEFAULT_WEBHOOK => WebhookFormat::Slack,
            _ => dest.format,
        };
        let body = payload(of, n, format);
        debug!(id = %n.id, "notifying");
        let http = self.outbound.webhook(&url)?;
        Ok(http.post(&url).timeout(DELIVERY_TIMEOUT).json(&body))
    }
}

/// The webhook URL in a Secret's `data`, at `dest`'s key, or why there is none to use.
fn url_in(data: &BTreeMap<String, ByteString>, dest: &Destination) -> Result<String, String> {
    let secret = format!("Secret {}/{}", dest.secret_namespace, dest.secret);
    let value = data.get(&dest.key).ok_or_else(|| format!("{secret} has no key {}", dest.key))?;
    if value.0.len() > MAX_URL_BYTES {
        return Err(format!(
            "the URL in {secret} key {} is {} bytes long; at most {MAX_URL_BYTES} are read",
            dest.key,
            value.0.len()
        ));
    }
    Ok(String::from_utf8_lossy(&value.0).trim().to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a receiver gets: a generic JSON object, or a Slack-compatible message.
pub fn payload(of: &Of, n: &NotificationStatus, format: WebhookFormat) -> Value {
    let (ns, name) = (&of.namespace, &of.name);
    let phase = n.phase;
    let kubectl = format!("kubectl maintenance status {name} -n {ns}");
    match format {
        WebhookFormat::Generic => json!({
            // Unique across upgrades, and across one deleted and made again under its name.
            "id": format!("{}/{}", of.uid, n.id),
            "kind": n.kind,
            "upgrade": name,
            "namespace": ns,
            "phase": phase,
            "stage": n.stage,
            "reason": n.reason,
            "message": n.message,
            "baseline": n.baseline,
            "observed": n.observed,
            "time": n.created_at,
            "kubectl": kubectl,
            "source": CONTROLLER_NAME,
        }),
        WebhookFormat::Slack => {
            let rates = match (n.baseline, n.observed) {
                (Some(b), Some(o)) => {
                    format!("\nerror rate {:.2}% against a baseline of {:.2}%", o * 100.0, b * 100.0)
                }
                _ => String::new(),
            };
            // Slack reads <…> as a mention or a link and & as an entity: every piece of text a
            // tenant can write is escaped, so that none can page a channel or forge a link.
            let stage = n.stage.as_ref().map(|s| format!(", stage {}", slack_escape(s))).unwrap_or_default();
            json!({
                "text": format!(
                    "*{:?}*: MaintenanceUpgrade {}/{}{stage} ({}, {})\n{}{rates}\n`{}`",
                    n.kind,
                    slack_escape(ns),
                    slack_escape(name),
                    slack_escape(&n.reason),
                    timefmt::at(n.created_at),
                    slack_escape(&n.message),
                    slack_escape(&kubectl)
                ),
            })
        }
    }
}

/// Text as Slack shows it literally: `&`, `<` and `>` as the entities Slack documents.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
#[path = "notifier_tests.rs"]
mod tests;
