//! Unit tests of `status.rs`: what the exit code says of each phase.

use super::*;

#[test]
fn the_exit_code_tells_an_upgrade_waiting_for_someone_from_one_in_progress() {
    assert_eq!(outcome(Phase::Succeeded), exit::OK);
    for ended in [Phase::RolledBack, Phase::Failed] {
        assert_eq!(outcome(ended), exit::NOT_OK);
    }
    for waits in [Phase::AwaitingApproval, Phase::Paused, Phase::Degraded] {
        assert_eq!(outcome(waits), exit::ATTENTION, "{waits:?}");
    }
    for going in
        [Phase::Pending, Phase::WaitingForWindow, Phase::Progressing, Phase::Soaking, Phase::RollingBack]
    {
        assert_eq!(outcome(going), exit::RUNNING, "{going:?}");
    }
}

#[test]
fn a_blocked_upgrade_waits_for_someone() {
    let mu = |status: &str| -> MaintenanceUpgrade {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "maintenance.dev/v1alpha1", "kind": "MaintenanceUpgrade",
            "metadata": {"name": "up", "namespace": "ops"},
            "spec": {"stages": [{"name": "all", "soak": "1h", "components": [{"kind": "DaemonSet", "name": "a", "image": "a:2"}]}]},
            "status": {"phase": "Progressing", "conditions": [{"type": "Blocked", "status": status, "reason": "X",
                "message": "", "lastTransitionTime": "2026-12-07T00:00:00Z"}]}
        }))
        .unwrap()
    };
    assert!(blocked(&mu("True")));
    assert!(!blocked(&mu("False")));
}
