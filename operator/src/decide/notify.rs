//! Decide step, pure: the notifications a decision makes for the upgrade's webhooks (recorded in
//! status before anything is sent, so that each is sent once across restarts), and what the
//! deliveries reported since the last look change in those records.

use super::Decider;
use crate::constants::reason;
use crate::crd::*;
use chrono::{DateTime, Duration, Utc};

/// One delivery attempt, reported by the notifier to the next look at the upgrade.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub at: DateTime<Utc>,
    /// None: delivered.
    pub error: Option<String>,
    /// The error will not go away by retrying (the webhook is no longer configured).
    pub permanent: bool,
}

/// The name the operator-wide default webhook goes by in status.
pub const DEFAULT_WEBHOOK: &str = "default";

/// How long after the `attempts`-th failed delivery the next one is made: 2 s, doubling, at most
/// five minutes. A notification is retried until it is delivered.
pub fn backoff(attempts: u32) -> Duration {
    Duration::seconds((2_i64 << attempts.saturating_sub(1).min(10)).min(300))
}

/// The notifications of `st` waiting to be sent at `now`.
pub fn due_notifications(st: &MaintenanceUpgradeStatus, now: DateTime<Utc>) -> Vec<NotificationStatus> {
    st.notifications
        .iter()
        .filter(|n| n.sent_at.is_none() && !n.abandoned && n.retry_at.is_none_or(|t| t <= now))
        .cloned()
        .collect()
}

impl Decider<'_> {
    /// The webhooks this upgrade tells, with the kinds each wants (empty: all).
    fn webhooks(&self) -> Vec<(String, Vec<NotificationKind>)> {
        match &self.o.spec.notifications {
            Some(n) => n.webhooks.iter().map(|w| (w.name.clone(), w.events.clone())).collect(),
            None if self.o.default_webhook => vec![(DEFAULT_WEBHOOK.to_string(), vec![])],
            None => vec![],
        }
    }

    /// Record a notification for each webhook that wants what this decision announces; when
    /// the next failed one is to be retried.
    pub(super) fn notify(&mut self) -> Option<DateTime<Utc>> {
        let mut happened: Vec<(NotificationKind, String, String)> = vec![];
        for n in &self.events {
            let kind = match n.reason {
                reason::STAGE_STARTED => NotificationKind::StageStarted,
                reason::SUSPECTED => NotificationKind::RegressionSuspected,
                // Said once, as the phase first becomes Degraded (`note_once`).
                reason::AUTOMATIC_ROLLBACK_DISABLED | reason::ROLLBACK_WAITS_FOR_WINDOW => {
                    NotificationKind::Degraded
                }
                _ if n.action == "Block" => NotificationKind::Blocked,
                _ => continue,
            };
            // Degraded: the phase's message, which says what the rollback waits for.
            let message = if kind == NotificationKind::Degraded { &self.st.message } else { &n.message };
            happened.push((kind, n.reason.to_string(), message.clone()));
        }
        if self.st.phase != self.o.status.phase {
            let kind = match self.st.phase {
                Phase::RolledBack => Some(NotificationKind::RolledBack),
                Phase::Succeeded => Some(NotificationKind::Succeeded),
                Phase::Failed => Some(NotificationKind::Failed),
                _ => None,
            };
            if let Some(kind) = kind {
                let why =
                    self.st.rollback.as_ref().map_or(format!("{:?}", self.st.phase), |r| r.reason.clone());
                happened.push((kind, why, self.st.message.clone()));
            }
        }
        let first = self.st.first_signal();
        let (baseline, observed) = (
            first.and_then(|a| a.baseline.as_ref().map(|b| b.rate)),
            first.and_then(|a| a.last.as_ref().map(|l| l.rate)),
        );
        for (kind, why, message) in happened {
            for (webhook, on) in self.webhooks() {
                if !on.is_empty() && !on.contains(&kind) {
                    continue;
                }
                // Numbered after the newest of its webhook and kind, which trimming always keeps.
                let n = self
                    .st
                    .notifications
                    .iter()
                    .filter(|r| r.webhook == webhook && r.kind == kind)
                    .filter_map(|r| r.id.rsplit('/').next()?.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0);
                self.st.notifications.push(NotificationStatus {
                    id: format!("{webhook}/{kind:?}/{}", n.saturating_add(1)),
                    webhook,
                    kind,
                    phase: self.st.phase,
                    stage: self.st.current_stage.clone(),
                    reason: why.clone(),
                    message: message.clone(),
                    baseline,
                    observed,
                    created_at: self.now(),
                    sent_at: None,
                    attempts: 0,
                    last_error: None,
                    retry_at: None,
                    abandoned: false,
                });
            }
        }
        self.trim_notifications();
        // A retry already due is in the notifier's hands, whose result wakes the upgrade.
        let now = self.now();
        let pending = self.st.notifications.iter().filter(|n| n.sent_at.is_none() && !n.abandoned);
        pending.filter_map(|n| n.retry_at).filter(|t| *t > now).min()
    }

    /// Keep at most `MAX_NOTIFICATIONS`. The newest of each configured webhook and kind stays (the
    /// next one is numbered after it); of the others, the delivered (or abandoned) ones go first,
    /// oldest first. At most 5 webhooks of 7 kinds are configured, so the bound always holds.
    /// One still to deliver to a configured webhook goes only when nothing else can, and that is
    /// said (a Warning Event), never silent.
    fn trim_notifications(&mut self) {
        let configured: Vec<String> = self.webhooks().into_iter().map(|(w, _)| w).collect();
        let list = &mut self.st.notifications;
        let mut dropped = vec![];
        while list.len() > MAX_NOTIFICATIONS {
            let kept = |i: usize| {
                configured.contains(&list[i].webhook)
                    && !list[i + 1..].iter().any(|r| r.webhook == list[i].webhook && r.kind == list[i].kind)
            };
            // Delivered or abandoned first, then those of webhooks no longer configured (they
            // would be abandoned), then the oldest still to deliver.
            let waiting = |i: usize| list[i].sent_at.is_none() && !list[i].abandoned;
            let live = |i: usize| waiting(i) && configured.contains(&list[i].webhook);
            let oldest = (0..list.len())
                .filter(|i| !kept(*i))
                .min_by_key(|i| (live(*i), waiting(*i), *i))
                .unwrap_or(0);
            let live = live(oldest);
            let n = list.remove(oldest);
            if live {
                dropped.push(n);
            }
        }
        for n in dropped {
            let message = format!(
                "webhook {}: the {:?} notification of {} is no longer retried, after {} attempt(s): at most \
                 {MAX_NOTIFICATIONS} notifications are kept, and none of the others could go instead (each is \
                 undelivered, or the newest of its webhook and kind)",
                n.webhook,
                n.kind,
                crate::timefmt::at(n.created_at),
                n.attempts
            );
            self.events.push(super::Note {
                warning: true,
                reason: reason::NOTIFICATION_FAILED,
                action: "Notify",
                message,
            });
        }
    }

    /// What the deliveries since the last look say: delivered, or retried later. The first
    /// failure of each notification is announced; the metric counts every one.
    pub(super) fn record_deliveries(&mut self) {
        for d in &self.o.deliveries {
            let Some(n) = self
                .st
                .notifications
                .iter_mut()
                .find(|n| n.id == d.id && n.sent_at.is_none() && !n.abandoned)
            else {
                continue;
            };
            match &d.error {
                Some(e) if d.permanent => {
                    n.abandoned = true;
                    n.retry_at = None;
                    n.last_error = Some(e.clone());
                    let msg =
                        format!("webhook {}: the {:?} notification is not sent: {e}", n.webhook, n.kind);
                    self.events.push(super::Note {
                        warning: true,
                        reason: reason::NOTIFICATION_FAILED,
                        action: "Notify",
                        message: msg,
                    });
                }
                None => {
                    n.sent_at = Some(d.at);
                    n.retry_at = None;
                }
                Some(e) => {
                    n.attempts = n.attempts.saturating_add(1);
                    n.last_error = Some(e.clone());
                    n.retry_at = Some(d.at + backoff(n.attempts));
                    if n.attempts == 1 {
                        let msg = format!(
                            "webhook {}: the {:?} notification could not be delivered: {e}; retrying, 2 s at first, \
                             then at most every 5 minutes, until it is",
                            n.webhook, n.kind
                        );
                        self.events.push(super::Note {
                            warning: true,
                            reason: reason::NOTIFICATION_FAILED,
                            action: "Notify",
                            message: msg,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
