//! Pure: the bits that ran. A tag can be moved after the claim (`v1.3.2` pushed again), so a
//! revert to the tag alone may bring back something that never ran here. The image ID a
//! container status reports at claim time (`registry/repo@sha256:…`, the repository digest)
//! pins the known-good image to exactly what ran: `registry/repo:tag@sha256:…`, which the
//! kubelet pulls by digest.

/// `image` pinned to the digest in `image_id`, when that ID is a repository digest of the same
/// repository; None when it is not (a bare image ID, another repository, a runtime that reports
/// no digest) or when `image` already names a digest.
pub fn pin(image: &str, image_id: &str) -> Option<String> {
    if image.contains('@') {
        return None;
    }
    let id = image_id.strip_prefix("docker-pullable://").unwrap_or(image_id);
    let (repo, digest) = id.split_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    (valid && repository(repo) == repository(image)).then(|| format!("{image}@{digest}"))
}

/// Whether `running` is `known_good`, by tag or pinned to a digest.
pub fn same_image(running: &str, known_good: &str) -> bool {
    running == known_good || running.split_once('@').is_some_and(|(tagged, _)| tagged == known_good)
}

/// An image reference's repository, as the registry names it: without tag or digest, Docker
/// Hub's implicit host and `library/` made explicit.
fn repository(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or_default();
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry's port).
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[slash..].find(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_host = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_host, name.contains('/')) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
