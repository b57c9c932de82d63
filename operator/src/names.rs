//! Kubernetes object names, as the API server judges them: what a name read from something a
//! tenant wrote (a record in a status, an owner mark) must be before the operator uses it.

/// A DNS subdomain (RFC 1123, lowercase) of at most 253 characters: a Node's or a custom
/// resource's name.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_label_part)
}

/// A DNS label (RFC 1123, lowercase) of at most 63 characters: a namespace's name.
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && is_label_part(name)
}

fn is_label_part(l: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    l.starts_with(alnum) && l.ends_with(alnum) && l.chars().all(|c| alnum(c) || c == '-')
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
