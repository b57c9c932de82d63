use super::Cli;

#[path = "../../operator/tests/reference/page.rs"]
mod page;

/// docs/src/reference/kubectl-maintenance.md: every command and flag of the plugin, from clap.
#[test]
fn reference_of_the_plugin_commands_is_current() {
    page::check_or_write(
        "kubectl-maintenance.md",
        "kubectl maintenance",
        "the plugin's clap definitions",
        &page::clap_markdown::<Cli>(),
    );
}

/// `status -w` stops, with the API exit code, on a watch error that watching again cannot mend:
/// the CRD is not installed (404) or the user may not list or watch upgrades (403). Others
/// (a dropped connection, a 500) are watched through.
#[test]
fn a_watch_that_can_never_work_ends_the_status_watch() {
    use kube::core::Status;
    use kube::runtime::watcher::Error;
    let api = |code| kube::Error::Api(Box::new(Status::failure("no", "No").with_code(code)));
    assert!(crate::status::lasting(&Error::InitialListFailed(api(404))));
    assert!(crate::status::lasting(&Error::WatchStartFailed(api(403))));
    assert!(crate::status::lasting(&Error::WatchError(Box::new(Status::failure("no", "No").with_code(403)))));
    assert!(!crate::status::lasting(&Error::InitialListFailed(api(500))));
    assert!(!crate::status::lasting(&Error::WatchError(Box::new(
        Status::failure("gone", "Gone").with_code(410)
    ))));
    assert!(!crate::status::lasting(&Error::NoResourceVersion));
}
