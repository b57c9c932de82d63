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

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
