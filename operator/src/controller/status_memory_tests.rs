//! Unit tests of `status_memory.rs`.

use super::*;
use crate::crd::Phase;

fn upgrade(rv: &str, status: Option<MaintenanceUpgradeStatus>) -> MaintenanceUpgrade {
    let mut mu: MaintenanceUpgrade = serde_json::from_value(serde_json::json!({
            "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
            "metadata": {"name": "up", "namespace": "ops", "uid": "u-1", "resourceVersion": rv},
            "spec": {"stages": [{"name": "all", "components": [{"kind": "Deployment", "name": "web", "image": "web:2"}], "soak": "1h"}]}
        }))
        .unwrap();
    mu.status = status;
    mu
}

fn status(phase: Phase, message: &str) -> MaintenanceUpgradeStatus {
    MaintenanceUpgradeStatus { phase, message: message.into(), ..Default::default() }
}

#[test]
fn a_stale_store_does_not_undo_our_last_write() {
    let m = StatusMemory::default();
    let soaking = status(Phase::Soaking, "soaking");
    m.wrote(&upgrade("10", None), &soaking, "12".into());
    // The store still shows the upgrade as it was before the write.
    let stale = upgrade("10", Some(status(Phase::Progressing, "rolling out")));
    assert_eq!(m.base(&stale).current, soaking);
    // Undecided progress since the write is carried while the stored status is ours.
    let mut later = soaking.clone();
    later.message = "soaking, 3 buckets judged".into();
    m.decided(&stale, Some(&soaking), &later);
    let caught_up = upgrade("12", Some(soaking.clone()));
    let base = m.base(&caught_up);
    assert_eq!(base.current, later);
    assert_eq!(base.written, Some(soaking.clone()));
}

#[test]
fn someone_elses_write_wins() {
    let m = StatusMemory::default();
    m.wrote(&upgrade("10", None), &status(Phase::Soaking, "soaking"), "12".into());
    // Another replica took over and wrote a newer status.
    let theirs = status(Phase::RollingBack, "reverting");
    let newer = upgrade("20", Some(theirs.clone()));
    assert_eq!(m.base(&newer).current, theirs);
    assert!(m.is_empty(), "nothing of ours is left to remember");
    // Once the store shows all we decided, nothing is remembered either.
    let done = status(Phase::RolledBack, "done");
    m.wrote(&newer, &done, "21".into());
    assert_eq!(m.base(&upgrade("20", Some(theirs.clone()))).current, done, "the store is behind");
    assert_eq!(m.base(&upgrade("21", Some(done.clone()))).current, done);
    assert!(m.is_empty());
}
