//! Transition tests: notifications are recorded once per transition and webhook, retried with
//! backoff until delivered, and never made again by a follower deciding from the written status.

use super::super::test_world::*;
use super::{Delivery, backoff, due_notifications};

fn with_webhook(events: Vec<NotificationKind>) -> MaintenanceUpgradeSpec {
    let mut s = spec();
    s.stages[0].soak = Duration_("2h");
    s.notifications = Some(Notifications {
        webhooks: vec![Webhook {
            name: "oncall".into(),
            format: WebhookFormat::Slack,
            url_secret_ref: SecretKeyRef { name: "hook".into(), key: "url".into() },
            events,
        }],
    });
    s
}

fn kinds(w: &World) -> Vec<(String, NotificationKind)> {
    w.obs.status.notifications.iter().map(|n| (n.id.clone(), n.kind)).collect()
}

#[test]
fn a_regression_and_its_revert_are_each_notified_once() {
    let mut w = World::new(with_webhook(vec![]));
    w.error_rate = creeping_after("connector-canary", 0.002);
    w.run_until(Duration::hours(12), |w| w.phase() == Phase::RolledBack);
    let got = kinds(&w);
    assert_eq!(
        got,
        [
            ("oncall/StageStarted/1".to_string(), NotificationKind::StageStarted),
            ("oncall/RegressionSuspected/1".to_string(), NotificationKind::RegressionSuspected),
            ("oncall/RolledBack/1".to_string(), NotificationKind::RolledBack),
        ]
    );
    let rolled = w.obs.status.notifications.last().unwrap();
    assert_eq!(rolled.reason, reason::REGRESSION);
    assert!(rolled.baseline.is_some() && rolled.observed > rolled.baseline, "{rolled:?}");
    assert_eq!(due_notifications(&w.obs.status, w.obs.now).len(), 3, "nothing delivered yet");
}

/// A regression found while automatic rollback is off waits for a human: she is told, once,
/// with why; the rollback she asks for is told as any other.
#[test]
fn a_regression_held_for_a_human_is_notified_once_as_degraded() {
    let mut spec = with_webhook(vec![]);
    spec.rollback.automatic = false;
    let mut w = World::new(spec);
    w.error_rate = creeping_after("connector-canary", 0.002);
    w.run_until(Duration::hours(12), |w| w.phase() == Phase::Degraded);
    let later = w.obs.now + Duration::hours(1);
    w.run_until(Duration::hours(2), |w| w.obs.now >= later);
    let degraded: Vec<_> =
        w.obs.status.notifications.iter().filter(|n| n.kind == NotificationKind::Degraded).collect();
    assert_eq!(degraded.len(), 1, "{:?}", kinds(&w));
    assert_eq!(degraded[0].reason, reason::AUTOMATIC_ROLLBACK_DISABLED);
    assert!(degraded[0].message.contains("spec.rollback.requested"), "{}", degraded[0].message);
    w.obs.spec.rollback.requested = true;
    w.run_until(Duration::hours(2), |w| w.phase() == Phase::RolledBack);
    assert_eq!(kinds(&w).last().unwrap().1, NotificationKind::RolledBack);
}

#[test]
fn only_the_kinds_a_webhook_asks_for() {
    let mut w = World::new(with_webhook(vec![NotificationKind::RolledBack, NotificationKind::Succeeded]));
    w.run_until(Duration::hours(12), |w| w.phase() == Phase::Succeeded);
    assert_eq!(kinds(&w), [("oncall/Succeeded/1".to_string(), NotificationKind::Succeeded)]);
    // No webhook and no default: nothing is recorded.
    let mut quiet = World::new(spec());
    quiet.run_until(Duration::hours(12), |w| w.phase() == Phase::Succeeded);
    assert!(quiet.obs.status.notifications.is_empty());
    // The operator-wide default, when the upgrade names none.
    let mut default = World::new(spec());
    default.obs.default_webhook = true;
    default.run_until(Duration::hours(12), |w| w.phase() == Phase::Succeeded);
    assert!(default.obs.status.notifications.iter().any(|n| n.id == "default/Succeeded/1"));
}

#[test]
fn a_failed_delivery_is_retried_with_backoff_until_it_lands_and_said_once() {
    let mut w = World::new(with_webhook(vec![NotificationKind::StageStarted]));
    w.run_until(Duration::hours(1), |w| !w.obs.status.notifications.is_empty());
    let id = w.obs.status.notifications[0].id.clone();
    for attempt in 1..=3 {
        let at = w.obs.now;
        w.obs.deliveries =
            vec![Delivery { id: id.clone(), at, error: Some("connection refused".into()), permanent: false }];
        w.step();
        w.obs.deliveries.clear();
        let n = &w.obs.status.notifications[0];
        assert_eq!((n.attempts, n.retry_at), (attempt, Some(at + backoff(attempt))));
        assert!(due_notifications(&w.obs.status, at).is_empty(), "not before its retry");
        assert_eq!(due_notifications(&w.obs.status, at + backoff(attempt)).len(), 1);
        w.obs.now = at + backoff(attempt);
    }
    let failed: Vec<_> = w.events.iter().filter(|e| e.starts_with(reason::NOTIFICATION_FAILED)).collect();
    assert_eq!(failed.len(), 1, "said once, counted in the metric every time: {failed:?}");
    let at = w.obs.now;
    w.obs.deliveries = vec![Delivery { id: id.clone(), at, error: None, permanent: false }];
    w.step();
    assert_eq!(w.obs.status.notifications[0].sent_at, Some(at));
    assert!(due_notifications(&w.obs.status, at + Duration::hours(1)).is_empty());
    assert_eq!(
        (backoff(1), backoff(2), backoff(20)),
        (Duration::seconds(2), Duration::seconds(4), Duration::minutes(5))
    );
}

#[test]
fn an_ended_upgrade_still_records_its_last_deliveries() {
    let mut w = World::new(with_webhook(vec![NotificationKind::Succeeded]));
    w.run_until(Duration::hours(12), |w| w.phase() == Phase::Succeeded);
    let id = w.obs.status.notifications[0].id.clone();
    let at = w.obs.now;
    w.obs.deliveries = vec![Delivery { id, at, error: None, permanent: false }];
    w.step();
    assert_eq!(w.obs.status.notifications[0].sent_at, Some(at));
}

#[test]
fn a_blocked_upgrade_is_notified_once_while_it_stays_blocked() {
    let mut w = World::new(with_webhook(vec![NotificationKind::Blocked, NotificationKind::Failed]));
    w.obs.targets.insert(key("connector"), None);
    for _ in 0..5 {
        w.step();
        w.obs.now += Duration::seconds(30);
    }
    let got = kinds(&w);
    assert_eq!(got, [("oncall/Blocked/1".to_string(), NotificationKind::Blocked)]);
    assert!(
        w.obs.status.notifications[0].message.contains("does not exist"),
        "{:?}",
        w.obs.status.notifications
    );
}

#[test]
fn a_notification_whose_webhook_is_gone_is_abandoned_not_retried_forever() {
    let mut w = World::new(with_webhook(vec![NotificationKind::StageStarted]));
    w.run_until(Duration::hours(1), |w| !w.obs.status.notifications.is_empty());
    let id = w.obs.status.notifications[0].id.clone();
    let gone = Some("webhook oncall is no longer configured".to_string());
    w.obs.deliveries = vec![Delivery { id, at: w.obs.now, error: gone, permanent: true }];
    w.step();
    let n = &w.obs.status.notifications[0];
    assert!(n.abandoned && n.retry_at.is_none(), "{n:?}");
    assert!(due_notifications(&w.obs.status, w.obs.now + Duration::hours(1)).is_empty());
}

#[test]
fn a_notification_is_written_before_it_is_sent_even_mid_chain() {
    // StageStarted comes with the image change, whose next look follows at once: that chain is
    // otherwise written at its end.
    let mut w = World::new(with_webhook(vec![NotificationKind::StageStarted]));
    w.run_until(Duration::hours(1), |w| !w.obs.status.notifications.is_empty());
    let written = w.written.as_ref().map(|s| s.notifications.clone()).unwrap_or_default();
    assert_eq!(written, w.obs.status.notifications, "written in the decision that made it");
}

#[test]
fn the_status_keeps_at_most_fifty_notifications_and_the_newest_of_each_kind() {
    let mut w = World::new(with_webhook(vec![]));
    let now = w.obs.now;
    let sent = |kind: NotificationKind, n: u64, delivered: bool| NotificationStatus {
        id: format!("oncall/{kind:?}/{n}"),
        webhook: "oncall".into(),
        kind,
        phase: Phase::Pending,
        stage: None,
        reason: "Blocked".into(),
        message: "<!channel>".into(),
        baseline: None,
        observed: None,
        created_at: now,
        sent_at: delivered.then_some(now),
        attempts: 1,
        last_error: None,
        retry_at: None,
        abandoned: false,
    };
    // One old notification not delivered yet, then a flood of delivered ones (a status written
    // by someone else, or an upgrade blocked and unblocked all night).
    let mut flood = vec![sent(NotificationKind::Failed, 1, false)];
    flood.extend((1..=80).map(|n| sent(NotificationKind::Blocked, n, true)));
    w.obs.status.notifications = flood;
    w.step();
    let ids: Vec<&str> = w.obs.status.notifications.iter().map(|n| n.id.as_str()).collect();
    assert!(ids.len() <= MAX_NOTIFICATIONS, "{} kept", ids.len());
    assert!(ids.contains(&"oncall/Failed/1"), "the undelivered one is kept: {ids:?}");
    assert!(ids.contains(&"oncall/Blocked/80"), "the newest of its kind is kept: {ids:?}");
    assert!(!ids.contains(&"oncall/Blocked/1"), "the oldest delivered go first: {ids:?}");
    // Webhooks renamed over and over leave notifications of names no longer configured: the
    // newest of each of those is not kept for numbering, so the bound holds.
    w.obs.status.notifications = (0..80)
        .map(|n| NotificationStatus {
            webhook: format!("gone-{n}"),
            ..sent(NotificationKind::Blocked, 1, true)
        })
        .collect();
    w.step();
    assert!(w.obs.status.notifications.len() <= MAX_NOTIFICATIONS, "{}", w.obs.status.notifications.len());
    // One still to deliver goes only when nothing else can, and that is said; one of a webhook
    // no longer configured goes first, unsaid (it would be abandoned anyway).
    w.events.clear();
    let mut waiting: Vec<_> = (1..=60).map(|n| sent(NotificationKind::Blocked, n, false)).collect();
    waiting.push(NotificationStatus { webhook: "gone".into(), ..sent(NotificationKind::Failed, 1, false) });
    let before: Vec<String> = waiting.iter().map(|n| n.id.clone()).collect();
    w.obs.status.notifications = waiting;
    w.step();
    let list = &w.obs.status.notifications;
    assert_eq!(list.len(), MAX_NOTIFICATIONS);
    assert!(!list.iter().any(|n| n.webhook == "gone"));
    // Whatever this look made (a stage starting) is kept, as the newest of its kind.
    let made = list.iter().filter(|n| !before.contains(&n.id)).count();
    let before = before.len();
    let said: Vec<&String> = w.events.iter().filter(|e| e.contains("is no longer retried")).collect();
    assert_eq!(said.len(), before + made - 1 - MAX_NOTIFICATIONS, "{:?}", w.events);
    assert!(
        said[0].starts_with("NotificationFailed: webhook oncall: the Blocked notification of"),
        "{}",
        said[0]
    );
}
