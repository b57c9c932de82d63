//! Unit tests of `image.rs`.

use super::*;

#[test]
fn an_image_and_its_pods_image_id_name_the_same_repository() {
    let ours = "registry.example.com/secrets-store/connector";
    assert_eq!(repository("registry.example.com/secrets-store/connector:v1.3.2"), ours);
    assert_eq!(repository(&format!("{ours}@sha256:{}", "a".repeat(64))), ours);
    assert_eq!(repository("nginx:1.25"), "docker.io/library/nginx");
    assert_eq!(repository("docker.io/library/nginx"), "docker.io/library/nginx");
    assert_eq!(repository("docker.io/nginx:1"), "docker.io/library/nginx");
    assert_eq!(repository("index.docker.io/bitnami/nginx"), "docker.io/bitnami/nginx");
    assert_eq!(repository("bitnami/nginx:1"), "docker.io/bitnami/nginx");
    assert_eq!(repository("localhost:5000/app:2"), "localhost:5000/app");
    assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
    assert_ne!(repository("evil.example.com/connector:v1"), repository("connector:v1"));
}

#[test]
fn only_what_a_reference_may_hold_is_a_reference() {
    assert!(is_reference("registry.example.com:5000/team/app_x:v1.2-rc@sha256:abc"));
    for bad in ["", "a;b", "a=b", "a b", "app:v1\n", "app\u{e9}"] {
        assert!(!is_reference(bad), "{bad:?}");
    }
}

#[test]
fn a_pod_pinned_to_its_digest_runs_the_reference_it_was_pinned_from() {
    let digest = format!("@sha256:{}", "a".repeat(64));
    assert!(runs("connector:2.0", "connector:2.0"));
    assert!(runs(&format!("connector:2.0{digest}"), "connector:2.0"));
    assert!(!runs(&format!("connector:2.0.1{digest}"), "connector:2.0"), "another tag");
    assert!(!runs("connector:2.0", &format!("connector:2.0{digest}")), "a digest the pod does not name");
    assert!(!runs(&format!("connector:2.0@sha256:{}", "b".repeat(64)), &format!("connector:2.0{digest}")));
    // As Kyverno writes them: the repository in full, `latest` where no tag was named.
    assert!(runs(&format!("docker.io/connector:2.0{digest}"), "connector:2.0"));
    assert!(runs(&format!("docker.io/library/nginx:latest{digest}"), "nginx"));
    assert!(runs(&format!("docker.io/nginx:latest{digest}"), "nginx"));
    assert!(runs(&format!("docker.io/team/app:v2{digest}"), "team/app:v2"));
    assert!(runs(&format!("registry.example.com:5000/app:v2{digest}"), "registry.example.com:5000/app:v2"));
    assert!(!runs(&format!("docker.io/team/app:v2{digest}"), "app:v2"), "another repository");
    assert!(!runs(&format!("docker.io/nginx:1.27{digest}"), "nginx"), "another tag than latest");
    assert!(!runs("docker.io/connector:2.0", "connector:2.0"), "not pinned: another text is another image");
    // A reference pinned to a digest, written in full by the webhook.
    assert!(runs(&format!("docker.io/library/connector{digest}"), &format!("connector{digest}")));
    assert!(!runs(&format!("docker.io/library/other{digest}"), &format!("connector{digest}")));
}
