//! Image references, compared by the CRD types (a revert's digest must name the known-good image's repository): a leaf module, so that `crd` needs nothing above it.

/// An image reference's repository, normalised as container runtimes do
/// (`connector:v1` → `docker.io/library/connector`), without its tag or digest: the same
/// repository whether the spec or a pod's image ID names it.
pub fn repository(image: &str) -> String {
    let name = image.split('@').next().unwrap_or_default();
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry's port).
    let name = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    };
    let first = name.split('/').next().unwrap_or_default();
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, name.contains('/')) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
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

/// Whether a pod whose spec names `pod` runs `reference`: the same text, or the reference with
/// the digest it resolved to after it (`app:v2@sha256:…`), as an admission webhook that pins
/// images to their digest writes a pod (Kyverno's `verifyImages`, `mutateDigest` by default).
pub fn runs(pod: &str, reference: &str) -> bool {
    pod == reference
        || (!reference.contains('@')
            && pod.strip_prefix(reference).is_some_and(|d| d.starts_with("@sha256:")))
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
