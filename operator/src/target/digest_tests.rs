use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn a_repository_digest_of_the_same_repository_pins_the_image() {
    let id = format!("registry.example.com/secrets-store/connector@{D}");
    assert_eq!(
        pin("registry.example.com/secrets-store/connector:v1.3.2", &id),
        Some(format!("registry.example.com/secrets-store/connector:v1.3.2@{D}"))
    );
    // Docker Hub's short names, and dockershim's prefix.
    assert_eq!(pin("nginx:1.27", &format!("docker.io/library/nginx@{D}")), Some(format!("nginx:1.27@{D}")));
    assert_eq!(pin("nginx:1.27", &format!("docker-pullable://nginx@{D}")), Some(format!("nginx:1.27@{D}")));
    // A registry with a port.
    assert_eq!(
        pin("localhost:5000/team/app:2", &format!("localhost:5000/team/app@{D}")),
        Some(format!("localhost:5000/team/app:2@{D}"))
    );
}

#[test]
fn anything_else_is_left_to_the_tag() {
    let image = "registry.example.com/secrets-store/connector:v1.3.2";
    // An image ID that is no repository digest: the config's digest, pullable from nowhere.
    assert_eq!(pin(image, D), None);
    assert_eq!(pin(image, ""), None);
    // Another repository (a mirror, a sibling's pod), a short or odd digest.
    assert_eq!(pin(image, &format!("mirror.example.com/secrets-store/connector@{D}")), None);
    assert_eq!(pin(image, "registry.example.com/secrets-store/connector@sha256:abc"), None);
    assert_eq!(
        pin(image, &format!("registry.example.com/secrets-store/connector@{}", D.to_uppercase())),
        None
    );
    // Already pinned.
    assert_eq!(
        pin(&format!("{image}@{D}"), &format!("registry.example.com/secrets-store/connector@{D}")),
        None
    );
}

#[test]
fn a_pinned_image_is_the_same_known_good_image() {
    let image = "registry.example.com/c:v1";
    assert!(same_image(image, image));
    assert!(same_image(&format!("{image}@{D}"), image));
    assert!(!same_image("registry.example.com/c:v2", image));
    assert!(!same_image(&format!("registry.example.com/c:v2@{D}"), image));
}
