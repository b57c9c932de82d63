//! Text from an upgrade's status, made safe to print: the status is input (a tenant writes her
//! upgrade's, without the status policy), and an escape sequence in it could clear or rewrite
//! what an admin running `kubectl maintenance list -A` reads, or add rows of its own.

/// `s` with every control character shown as its escape (`\u{1b}`), and newlines kept only
/// where `lines` says the text is several lines of the plugin's own.
pub fn safe(s: &str, lines: bool) -> String {
    s.chars()
        .map(|c| match c {
            '\n' if lines => "\n".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
#[path = "terminal_tests.rs"]
mod tests;
