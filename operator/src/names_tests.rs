use super::*;

#[test]
fn names_are_judged_as_the_api_server_judges_them() {
    for ok in ["a", "node-1", "ip-10-0-0-1.eu-west-1.compute.internal", &"a".repeat(253)] {
        assert!(is_dns_subdomain(ok), "{ok}");
    }
    for bad in ["", "A", "-a", "a-", "a..b", "a/b", "..", "a?b", &"a".repeat(254)] {
        assert!(!is_dns_subdomain(bad), "{bad}");
    }
    assert!(is_dns_label("team-a") && is_dns_label(&"a".repeat(63)));
    for bad in ["", "a.b", "Team", &"a".repeat(64)] {
        assert!(!is_dns_label(bad), "{bad}");
    }
}
