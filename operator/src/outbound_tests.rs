//! Unit tests of `outbound.rs`.

use super::*;

fn outbound(prometheus: &[&str], webhooks: &[&str]) -> Outbound {
    let settings = Settings {
        prometheus_addresses: prometheus.iter().map(|s| s.to_string()).collect(),
        webhook_hosts: webhooks.iter().map(|s| s.to_string()).collect(),
        api_server: vec!["10.96.0.1".into(), "api.cluster.example".into()],
    };
    Outbound::new(&settings, Duration::from_secs(1)).unwrap()
}

#[test]
fn prometheus_addresses_are_only_those_the_installer_names() {
    let o = outbound(&["http://prometheus.monitoring:9090/"], &[]);
    assert!(o.prometheus("http://prometheus.monitoring:9090").is_ok());
    assert!(o.prometheus("http://prometheus.monitoring:9090/").is_ok());
    for aimed in [
        "http://prometheus.monitoring:9090.evil.example",
        "http://prometheus.monitoring:9090/../admin",
        "http://169.254.169.254",
        "https://kubernetes.default.svc",
    ] {
        let e = o.prometheus(aimed).err().unwrap();
        assert!(e.contains("prometheusAddresses: http://prometheus.monitoring:9090"), "{e}");
    }
    let none = outbound(&[], &[]);
    assert!(none.prometheus("http://p:9090").err().unwrap().contains("prometheusAddresses: none"));
}

/// Every tenant reads the allowed addresses (a refusal lists them): one with a user or a
/// password in it would hand its credentials to all of them, so it stops the start.
#[test]
fn a_prometheus_address_with_credentials_is_refused_at_start() {
    for with in ["http://ops:hunter2@prometheus:9090", "http://ops@prometheus:9090", "not a url"] {
        let settings =
            Settings { prometheus_addresses: vec![with.into()], webhook_hosts: vec![], api_server: vec![] };
        let Err(e) = Outbound::new(&settings, Duration::from_secs(1)) else {
            panic!("{with} was allowed");
        };
        assert!(e.contains("prometheusAddresses"), "{e}");
        assert!(!e.contains("hunter2"), "the refusal repeats no password: {e}");
    }
}

#[test]
fn star_allows_https_hosts_but_never_loopback_link_local_or_the_api_server() {
    let o = outbound(&[], &["*"]);
    assert!(o.webhook("https://hooks.slack.com/services/T/B/x").is_ok());
    // A public address through NAT64, whichever prefix length the gateway uses.
    assert!(o.webhook("https://[64:ff9b:1::102:304]/x").is_ok());
    assert!(o.webhook("https://[64:ff9b:1:0:1:203:400:0]/x").is_ok());
    assert!(o.webhook("https://alerts.monitoring.svc:8443/hook").is_ok());
    for aimed in [
        "http://hooks.slack.com/services/x",
        "https://127.0.0.1/x",
        "https://localhost:8080/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[fe80::1]/x",
        "https://[::127.0.0.1]/x",
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "https://[fd00:ec2::254]/latest/meta-data",
        "https://100.100.100.200/latest/meta-data",
        "https://[64:ff9b:1::a9fe:a9fe]/latest/meta-data",
        "https://[64:ff9b:1:abcd::7f00:1]/x",
        "https://[64:ff9b:1::]/x",
        "https://[64:ff9b:1:7f00:0:133:102:304]/x",
        "https://[64:ff9b:1:12a9:fe:a9fe:102:304]/latest/meta-data",
        "https://[64:ff9b:1:0:a9:fea9:fe00:0]/latest/meta-data",
        "https://0.0.0.0/x",
        // Loopback written as one number, in hex, or after a user name that looks like a host.
        "https://2130706433/x",
        "https://0x7f.1/x",
        "https://hooks.slack.com@127.0.0.1/x",
        "https://10.96.0.1/api",
        "https://kubernetes.default.svc.cluster.local/api",
        "https://KUBERNETES/api",
        "https://api.cluster.example/api",
    ] {
        let e = o.webhook(aimed).unwrap_err();
        assert!(e.contains("webhookHosts: *"), "{aimed}: {e}");
        assert!(!e.contains("/x") && !e.contains("meta-data"), "the URL's path is a credential: {e}");
    }
}

#[test]
fn named_hosts_are_allowed_on_their_scheme_and_port_whatever_their_address() {
    let o = outbound(&[], &["http://127.0.0.1", "https://hooks.example.com:8443"]);
    assert!(o.webhook("http://127.0.0.1:31337/hook").is_ok());
    assert!(o.webhook("https://127.0.0.1/hook").is_err(), "another scheme");
    assert!(o.webhook("https://hooks.example.com:8443/a").is_ok());
    assert!(o.webhook("https://hooks.example.com/a").is_err(), "another port");
    assert!(
        o.webhook("https://evil.example/a")
            .unwrap_err()
            .contains("http://127.0.0.1, https://hooks.example.com:8443")
    );
    assert!(o.webhook("not a url").unwrap_err().contains("not a URL"));
    // A port written is that port, even the scheme's own (which URLs leave out).
    let o = outbound(&[], &["http://alertmanager.monitoring:80", "https://hooks.example.com:443/"]);
    assert!(o.webhook("http://alertmanager.monitoring/hook").is_ok());
    assert!(o.webhook("http://alertmanager.monitoring:80/hook").is_ok());
    assert!(o.webhook("http://alertmanager.monitoring:9093/hook").is_err(), "another port");
    assert!(o.webhook("https://hooks.example.com/a").is_ok());
    assert!(o.webhook("https://hooks.example.com:8443/a").is_err(), "another port");
    assert!(o.webhook("https://evil.example/a").unwrap_err().contains("http://alertmanager.monitoring:80"));
}

#[test]
fn a_setting_that_cannot_be_read_is_refused_at_start_naming_the_entry() {
    let settings = Settings { webhook_hosts: vec!["hooks.slack.com".into()], ..Default::default() };
    let e = Outbound::new(&settings, Duration::from_secs(1)).err().unwrap();
    assert!(e.contains("\"hooks.slack.com\"") && e.contains("scheme://host"), "{e}");
    // Only scheme://host[:port]: a path, a user, a query, a fragment or a slash too many is not
    // read as something it does not say (`https:///h:8443` would allow every port).
    for entry in [
        "https://h.example/path",
        "https://user:pw@h.example",
        "https://h.example:8443?]",
        "https://h.example:8443#]",
        "https:///h.example:8443",
        "https:h.example",
        "https://\t/h.example:443",
    ] {
        let settings = Settings { webhook_hosts: vec![entry.into()], ..Default::default() };
        assert!(Outbound::new(&settings, Duration::from_secs(1)).is_err(), "{entry}");
    }
    let settings = Settings { webhook_hosts: vec!["HTTPS://H.example:443/".into()], ..Default::default() };
    let o = Outbound::new(&settings, Duration::from_secs(1)).unwrap();
    assert!(o.webhook("https://h.example/hook").is_ok());
    assert!(o.webhook("https://h.example:8443/hook").is_err());
}

#[tokio::test]
async fn the_guarded_resolver_refuses_names_that_resolve_to_loopback() {
    let guard = Guard(Arc::new(Forbidden::default()));
    let e = guard.resolve("localhost".parse().unwrap()).await.err().unwrap();
    assert!(e.to_string().contains("never sends to"), "{e}");
}
