//! Unit tests of `image.rs`.

use super::*;

#[test]
fn an_image_and_its_pods_image_id_name_the_same_repository() {
    let ours = "registry.example.com/secrets-store/connector";
    assert_eq!(repository("registry.example.com/secrets-store/connector:v1.3.2"), ours);
    assert_eq!(repository(&format!("{ours}@sha256:{}", "a".repeat(64))), ours);
    assert_eq!(repository("nginx:1.25"), "docker.io/library/nginx");
    assert_eq!(repository("docker.io/library/nginx"), "docker.io/library/nginx");
    assert_eq!(repository("bitnami/nginx:1"), "docker.io/bitnami/nginx");
    assert_eq!(repository("localhost:5000/app:2"), "localhost:5000/app");
    assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    assert_ne!(repository("evil.example.com/connector:v1"), repository("connector:v1"));
}
