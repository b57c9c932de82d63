//! A page of `docs/src/reference/`, generated from the code: the test that makes it fails when the
//! committed page differs, and writes it instead when `MO_WRITE_REFERENCE` is set (`make
//! reference`). Shared by the operator's and the plugin's tests (`#[path]`).

/// Compare `body` with `docs/src/reference/<name>` (under a heading and a note saying where it
/// comes from), or write it there.
pub fn check_or_write(name: &str, title: &str, source: &str, body: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("docs/src/reference").join(name);
    let page = format!(
        "# {title}\n\n<!-- Generated from {source} by `make reference`: edit the code, not this page. -->\n\n{}\n",
        body.trim_end()
    );
    if std::env::var_os("MO_WRITE_REFERENCE").is_some() {
        std::fs::write(&path, page).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == page,
        "docs/src/reference/{name} is stale: run `make reference` and commit the result"
    );
}

/// The Markdown of a clap command, each subcommand and flag with its help, without
/// clap-markdown's own title and opening sentence (the page has its own). Only the binaries'
/// tests use it.
#[allow(dead_code)]
pub fn clap_markdown<C: clap::CommandFactory>() -> String {
    // No table of contents: its links keep the spaces of "kubectl maintenance status", which
    // no heading id has.
    let options = clap_markdown::MarkdownOptions::new()
        .title(String::new())
        .show_footer(false)
        .show_table_of_contents(false);
    clap_markdown::help_markdown_custom::<C>(&options)
        .lines()
        .skip_while(|l| l.trim() == "#" || l.is_empty() || l.starts_with("This document contains"))
        .collect::<Vec<_>>()
        .join("\n")
}
