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
