//! Image references, compared by the CRD types (a revert's digest must name the known-good image's repository): a leaf module, so that `crd` needs nothing above it.

/// An image reference's repository, normalised as container runtimes do
/// (`connector:v1` → `docker.io/library/connector`), without its tag or digest: the same
/// repository whether the spec or a pod's image ID names it.
pub fn repository(image: &str) -> String {
    let (name, _) = name_and_tag(image);
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, name.contains('/')) {
        // Docker Hub's official images, however named (`docker.io/nginx`, as Kyverno writes it).
        (true, _) => match name.split_once('/') {
            Some(("docker.io" | "index.docker.io", rest)) if !rest.contains('/') => {
                format!("docker.io/library/{rest}")
            }
            Some(("index.docker.io", rest)) => format!("docker.io/{rest}"),
            _ => name.to_string(),
        },
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
}

/// An image reference's name and tag, without its digest. A tag follows the last ':' after the
/// last '/' (a ':' before it is a registry's port).
fn name_and_tag(image: &str) -> (&str, Option<&str>) {
    let name = image.split('@').next().unwrap_or_default();
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

/// An image reference's tag: `latest` when it names none, as container runtimes take it.
fn tag(image: &str) -> &str {
    name_and_tag(image).1.unwrap_or("latest")
}

/// The longest image reference: a repository of at most 255 characters, a tag of 128 and a
/// digest, with room to spare. A longer string is none, and is not kept (`target::kept_image`).
pub const MAX_REFERENCE_BYTES: usize = 1024;

/// Whether `image` holds only what an image reference may (`registry:5000/team/app:v1@sha256:…`):
/// the API server takes any string, and the known-good record on a target separates its pairs
/// with `;` and `=`, which no reference holds.
pub fn is_reference(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= MAX_REFERENCE_BYTES
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@'))
}

/// Whether a pod or template whose spec names `pod` runs `reference`: the same text, or the
/// same repository and tag pinned to the digest they resolved to, as an admission webhook that
/// pins images writes them (Kyverno's `verifyImages`, `mutateDigest` by default, writes
/// `app:v2` as `docker.io/app:v2@sha256:…`). A reference that names a digest is that digest, in
/// the same repository however named.
pub fn runs(pod: &str, reference: &str) -> bool {
    if pod == reference {
        return true;
    }
    let Some((named, digest)) = pod.split_once('@') else { return false };
    if !digest.starts_with("sha256:") || repository(named) != repository(reference) {
        return false;
    }
    match reference.split_once('@') {
        Some((_, pinned)) => pinned == digest,
        None => tag(named) == tag(reference),
    }
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
