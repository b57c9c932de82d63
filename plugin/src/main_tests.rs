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
