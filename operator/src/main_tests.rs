use super::Cli;

#[path = "../tests/reference/page.rs"]
mod page;

/// docs/src/reference/operator.md: every subcommand and flag of the binary, from clap.
#[test]
fn reference_of_the_operator_flags_is_current() {
    page::check_or_write(
        "operator.md",
        "Operator flags",
        "the binary's clap definitions",
        &page::clap_markdown::<Cli>(),
    );
}
