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

/// KUBECONFIG lists files as kubectl reads them: one that does not exist is skipped (kubectl
/// does, so a list shared between machines works), and so are empty entries; a path given with
/// `--kubeconfig` must exist, and so must one of KUBECONFIG's.
#[test]
fn kubeconfig_files_listed_but_missing_are_skipped_like_kubectl() {
    let dir = std::env::temp_dir().join(format!("kubectl-maintenance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("config");
    std::fs::write(
        &real,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n\
         clusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:6443'}\nusers:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let missing = dir.join("absent");
    let list = std::env::join_paths([missing.clone(), std::path::PathBuf::new(), real]).unwrap();
    let merged = crate::merged_kubeconfig(&list, true).unwrap();
    assert_eq!(merged.current_context.as_deref(), Some("c"));
    let err = crate::merged_kubeconfig(missing.as_os_str(), false).unwrap_err().to_string();
    assert!(err.contains("absent"), "{err}");
    let err = crate::merged_kubeconfig(missing.as_os_str(), true).unwrap_err().to_string();
    assert!(err.contains("none of the files KUBECONFIG lists exists"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
