//! Unit tests of `notifier.rs`.

use super::*;

/// An upgrade of one component in `namespace`.
fn upgrade(namespace: &str) -> MaintenanceUpgrade {
    serde_yaml::from_str(&format!(
        "apiVersion: maintenance.dev/v1alpha1\nkind: MaintenanceUpgrade\nmetadata: {{name: up, namespace: {namespace}, uid: uid-{namespace}}}\n\
         spec: {{stages: [{{name: canary, components: [{{kind: DaemonSet, name: c, image: 'c:2'}}], soak: 1h}}]}}"
    ))
    .unwrap()
}

/// A notification not sent yet, of `kind` to `webhook`, saying `message`.
fn notification(
    webhook: &str,
    kind: NotificationKind,
    phase: Phase,
    reason: &str,
    message: &str,
) -> NotificationStatus {
    NotificationStatus {
        id: format!("{webhook}/{kind:?}/1"),
        webhook: webhook.into(),
        kind,
        phase,
        stage: Some("canary".into()),
        reason: reason.into(),
        message: message.into(),
        baseline: None,
        observed: None,
        created_at: chrono::DateTime::parse_from_rfc3339("2026-11-24T03:00:00Z").unwrap().with_timezone(&Utc),
        sent_at: None,
        attempts: 0,
        last_error: None,
        retry_at: None,
        abandoned: false,
    }
}

#[test]
fn tenant_text_cannot_mention_a_channel_or_forge_a_link_in_slack() {
    let mu = upgrade("team-a");
    let message = "selector <!channel> is invalid; see <https://evil.example|the runbook> & fix";
    let n = NotificationStatus {
        stage: Some("<!here>".into()),
        ..notification("default", NotificationKind::Blocked, Phase::Pending, "InvalidSpec", message)
    };
    let text = payload(&Of::upgrade(&mu), &n, WebhookFormat::Slack)["text"].as_str().unwrap().to_string();
    assert!(!text.contains("<!") && !text.contains("<https"), "{text}");
    assert!(text.contains("selector &lt;!channel&gt; is invalid"), "{text}");
    assert!(text.contains("&lt;https://evil.example|the runbook&gt; &amp; fix"), "{text}");
    assert!(text.contains("stage &lt;!here&gt;"), "{text}");
    assert!(text.starts_with("*Blocked*: MaintenanceUpgrade team-a/up"), "our own markup stays: {text}");
}

#[test]
fn both_payloads_say_what_where_why_and_how_to_look() {
    let mu = upgrade("kube-system");
    let message = "rolled back to the known-good images";
    let n = NotificationStatus {
        baseline: Some(0.0246),
        observed: Some(0.425),
        ..notification(
            "oncall",
            NotificationKind::RolledBack,
            Phase::RolledBack,
            "RegressionDetected",
            message,
        )
    };
    let g = payload(&Of::upgrade(&mu), &n, WebhookFormat::Generic);
    // Unique across upgrades: another's first RolledBack to a webhook of the same name differs.
    assert_eq!(g["id"], "uid-kube-system/oncall/RolledBack/1");
    assert_ne!(payload(&Of::upgrade(&upgrade("team-a")), &n, WebhookFormat::Generic)["id"], g["id"]);
    assert_eq!(g["kind"], "RolledBack");
    assert_eq!(
        (g["upgrade"].as_str(), g["namespace"].as_str(), g["phase"].as_str()),
        (Some("up"), Some("kube-system"), Some("RolledBack"))
    );
    assert_eq!(g["kubectl"], "kubectl maintenance status up -n kube-system");
    assert_eq!(g["baseline"], 0.0246);
    let s = payload(&Of::upgrade(&mu), &n, WebhookFormat::Slack)["text"].as_str().unwrap().to_string();
    assert!(
        s.starts_with("*RolledBack*: MaintenanceUpgrade kube-system/up, stage canary (RegressionDetected"),
        "{s}"
    );
    assert!(s.contains("error rate 42.50% against a baseline of 2.46%"), "{s}");
}

/// A notifier whose API server nothing listens on: any delivery it tries fails at the Secret.
fn notifier(fence: Fence) -> Notifier {
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let settings = crate::outbound::Settings {
        prometheus_addresses: vec![],
        webhook_hosts: vec!["*".into()],
        api_server: vec![],
    };
    let outbound = Outbound::new(&settings, StdDuration::from_secs(1)).unwrap();
    Notifier::new(client, outbound, Metrics::default(), None, fence)
}

fn with_webhook(mut mu: MaintenanceUpgrade) -> MaintenanceUpgrade {
    mu.metadata.uid = Some("u1".into());
    mu.spec.notifications = Some(
        serde_yaml::from_str("webhooks: [{name: oncall, urlSecretRef: {name: hook, key: url}}]").unwrap(),
    );
    mu
}

/// Waits up to a second for a delivery result of the upgrade with UID u1.
async fn result_of(n: &Notifier) -> Vec<Delivery> {
    for _ in 0..20 {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        if !n.results("u1").is_empty() {
            break;
        }
    }
    n.results("u1")
}

#[tokio::test]
async fn no_delivery_goes_out_once_the_term_has_ended_and_it_stays_due_for_the_next_leader() {
    let mu = with_webhook(upgrade("team-a"));
    let due = || vec![notification("oncall", NotificationKind::Blocked, Phase::Pending, "InvalidSpec", "x")];
    let fence = Fence::closed();
    let n = notifier(fence.clone());
    n.send(&mu, due());
    assert!(result_of(&n).await.is_empty(), "nothing was tried, so nothing is recorded");
    // Not stuck in flight: inside a term it is tried (and here fails at the Secret).
    fence.extend(std::time::Instant::now() + StdDuration::from_secs(60));
    n.send(&mu, due());
    let got = result_of(&n).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].error.as_deref().is_some_and(|e| e.contains("cannot read Secret")), "{got:?}");
}

/// However many notifications are due at once (an upgrade's 50, or every upgrade's after a
/// restart), at most `MAX_DELIVERIES` are delivered at a time: each reads a Secret a tenant may
/// have made large, and posts to a receiver that may never answer.
#[tokio::test]
async fn at_most_a_few_deliveries_run_at_once() {
    let (client, reading) = api_server_that_never_answers().await;
    let n = Notifier { client, ..notifier(Fence::open()) };
    // Every upgrade's notifications, after a restart: three each, in many namespaces.
    for team in 0..MAX_DELIVERIES {
        n.send(&of_its_own(&format!("team-{team}")), due(3));
    }
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let reading = lock(&reading).len();
    assert!((1..=MAX_DELIVERIES).contains(&reading), "{reading} Secret reads at once");
    // A read never answered fails the delivery at its limit, to be retried, and frees its turn.
    tokio::time::pause();
    tokio::time::advance(DELIVERY_LIMIT).await;
    tokio::time::resume();
    let results = || -> Vec<Delivery> {
        (0..MAX_DELIVERIES).flat_map(|team| n.results(&format!("uid-team-{team}"))).collect()
    };
    let got = until(StdDuration::from_secs(5), || Some(results()).filter(|r| !r.is_empty())).await;
    let got = got.unwrap_or_default();
    assert!(!got.is_empty(), "the stuck deliveries are given up");
    assert!(got[0].error.as_deref().is_some_and(|e| e.contains("not delivered within 15 s")), "{got:?}");
}

/// One namespace's receiver, or its Secret reads, holding every delivery to its limit (15 s
/// each) takes only its share of the turns: another namespace's upgrade still has its turn at
/// once, not after the first of those gives up.
#[tokio::test]
async fn one_namespaces_stuck_deliveries_do_not_hold_up_anothers() {
    let (client, reading) = api_server_that_never_answers().await;
    let n = Notifier { client, ..notifier(Fence::open()) };
    let of = |ns: &str| {
        let path = format!("/namespaces/{ns}/secrets/hook");
        lock(&reading).iter().filter(|r| r.contains(&path)).count()
    };
    n.send(&of_its_own("team-a"), due(3 * MAX_DELIVERIES));
    until(StdDuration::from_secs(5), || (of("team-a") > 0).then_some(())).await;
    n.send(&of_its_own("team-b"), due(1));
    until(StdDuration::from_secs(5), || (of("team-b") > 0).then_some(())).await;
    let seen = lock(&reading).clone();
    assert_eq!(of("team-b"), 1, "team-b's Secret is read within seconds: {seen:?}");
    assert!(of("team-a") <= MAX_DELIVERIES_PER_NAMESPACE, "team-a holds its share only: {seen:?}");
}

/// What `check` gives once it gives something, polled until `limit`: a CI machine may be slow.
async fn until<T>(limit: StdDuration, check: impl Fn() -> Option<T>) -> Option<T> {
    let end = std::time::Instant::now() + limit;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if std::time::Instant::now() > end {
            return None;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// An upgrade in `namespace` with the webhook `oncall`, and a UID of its own.
fn of_its_own(namespace: &str) -> MaintenanceUpgrade {
    let mut mu = with_webhook(upgrade(namespace));
    mu.metadata.uid = Some(format!("uid-{namespace}"));
    mu
}

/// `count` notifications due to the webhook `oncall`.
fn due(count: usize) -> Vec<NotificationStatus> {
    (0..count)
        .map(|i| NotificationStatus {
            id: format!("oncall/Blocked/{i}"),
            ..notification("oncall", NotificationKind::Blocked, Phase::Pending, "InvalidSpec", "x")
        })
        .collect()
}

/// A client of an API server that takes every connection and never answers, and the first line
/// of each request it was sent.
async fn api_server_that_never_answers() -> (kube::Client, Arc<Mutex<Vec<String>>>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(vec![]));
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = vec![0; 1024];
                let read = socket.read(&mut head).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..read]).lines().next().unwrap_or("").to_string();
                lock(&seen).push(line);
                // Held open, unanswered, until the test ends.
                let _ = socket.read(&mut head).await;
                std::future::pending::<()>().await;
            });
        }
    });
    let client =
        kube::Client::try_from(kube::Config::new(format!("http://{address}").parse().unwrap())).unwrap();
    (client, requests)
}

/// A URL is at most `MAX_URL_BYTES`: a longer one (a tenant's megabyte of host name) is refused
/// before it reaches the allow-list, whose refusal would repeat the host in the status.
#[test]
fn a_url_longer_than_any_webhooks_is_refused_without_repeating_it() {
    let dest = Destination {
        secret_namespace: "team-a".into(),
        secret: "hook".into(),
        key: "url".into(),
        format: WebhookFormat::Generic,
    };
    let data = |url: String| BTreeMap::from([("url".to_string(), ByteString(url.into_bytes()))]);
    assert_eq!(
        url_in(&data(" https://hooks.example.com/x\n".into()), &dest).unwrap(),
        "https://hooks.example.com/x"
    );
    let long = format!("https://{}.example.com/", "a".repeat(1 << 20));
    let e = url_in(&data(long), &dest).unwrap_err();
    assert!(e.len() < 200 && e.contains("Secret team-a/hook key url is 1048597 bytes long"), "{e}");
    assert!(url_in(&BTreeMap::new(), &dest).unwrap_err().contains("has no key url"));
}

/// A Secret name or key that is none (an upgrade stored before the CRD refused them) is never
/// read: kube would put it into the request's path as it is.
#[test]
fn a_webhook_secret_that_is_no_secret_name_is_not_read() {
    let dest = |secret: &str, key: &str| Destination {
        secret_namespace: "team-a".into(),
        secret: secret.into(),
        key: key.into(),
        format: WebhookFormat::Generic,
    };
    assert_eq!(dest("webhook", "url").check(), Ok(()));
    assert_eq!(dest("hooks.team-a", "slack_url-2").check(), Ok(()));
    for (secret, key) in
        [("x?watch=true", "url"), ("a/../b", "url"), ("webhook", "a/b"), ("webhook", ""), ("", "url")]
    {
        assert!(dest(secret, key).check().is_err(), "{secret:?} {key:?}");
    }
}
