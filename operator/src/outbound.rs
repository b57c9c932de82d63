//! Observe and act shell: every request the operator makes to an address a tenant wrote (a
//! Prometheus signal's address, a webhook URL from a tenant's Secret) goes through here. Only
//! where the installer allows (`prometheusAddresses`, `webhookHosts`), with no redirect followed,
//! no proxy, bounded answers, and errors that say what failed rather than what the far side
//! said, so that the operator cannot be aimed at the cluster's own network or used to map it.
//!
//! The allow-lists and the address checks are pure and unit-tested; the clients need no API.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, Response, Url};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The largest answer to a range query read from Prometheus. One chunk of a history is 10,000
/// points of one series, about 300 KiB; this leaves room for a few series per query. At most
/// two histories are read at once (`controller::HISTORY_READS`).
pub const MAX_RANGE_BODY: usize = 4 << 20;
/// The largest answer to an instant query: a few series of one value each are a few KiB. Every
/// upgrade reads these at once, so the bound is small.
pub const MAX_INSTANT_BODY: usize = 256 << 10;
/// How long a request to Prometheus or a webhook may take, its answer read included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Host names that always mean the API server inside a cluster.
const API_SERVER_NAMES: [&str; 3] = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];

/// What the installer allows, read from the settings ConfigMap (`config/default`, the chart).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Prometheus base URLs a signal may name, exactly (a trailing `/` aside).
    pub prometheus_addresses: Vec<String>,
    /// Webhook destinations: `*` (any https host but loopback, link-local and the API server),
    /// or `scheme://host[:port]` (without a port, any port), allowed whatever its address.
    pub webhook_hosts: Vec<String>,
    /// The API server's host names and addresses, never a webhook's destination.
    pub api_server: Vec<String>,
}

/// One `webhookHosts` entry.
#[derive(Clone, Debug, PartialEq)]
enum HostRule {
    /// Any https host whose addresses are neither loopback, link-local nor the API server's.
    AnyPublicHttps,
    /// This scheme and host, on this port if one is given, whatever its address.
    Exactly { scheme: String, host: String, port: Option<u16> },
}

/// The installer's allow-lists and the two HTTP clients that honour them.
#[derive(Clone)]
pub struct Outbound {
    prometheus: Vec<String>,
    webhooks: Vec<HostRule>,
    forbidden: Arc<Forbidden>,
    /// For destinations the installer named: no redirects, no proxy.
    named: Client,
    /// For `*`: the same, and a resolver that drops the addresses `Forbidden` names.
    guarded: Client,
}

/// What a webhook allowed by `*` may never reach.
#[derive(Debug, Default)]
struct Forbidden {
    names: Vec<String>,
    addresses: Vec<IpAddr>,
}

impl Forbidden {
    /// An IPv6 address that carries an IPv4 one (mapped, compatible, or NAT64's, which a NAT64
    /// gateway forwards to it) is judged as that one too.
    fn address(&self, ip: IpAddr) -> bool {
        let carried = match ip {
            IpAddr::V6(v6) => carried_ipv4(v6),
            IpAddr::V4(_) => vec![],
        };
        std::iter::once(ip).chain(carried.into_iter().map(IpAddr::V4)).any(|ip| self.one_address(ip))
    }

    fn one_address(&self, ip: IpAddr) -> bool {
        let special = match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
                    || v4 == ALIBABA_METADATA
            }
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unspecified() || v6.is_unicast_link_local() || v6 == AWS_METADATA_V6
            }
        };
        special || self.addresses.contains(&ip)
    }

    fn name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "localhost"
            || host.ends_with(".localhost")
            || host.starts_with("kubernetes.default.svc.")
            || API_SERVER_NAMES.contains(&host.as_str())
            || self.names.contains(&host)
    }
}

impl Outbound {
    /// The allow-lists of `settings`; an entry that cannot be read is an error naming it.
    pub fn new(settings: &Settings, timeout: Duration) -> Result<Outbound, String> {
        let webhooks = settings.webhook_hosts.iter().map(|e| parse_rule(e)).collect::<Result<_, _>>()?;
        let mut forbidden = Forbidden::default();
        for a in &settings.api_server {
            match a.parse::<IpAddr>() {
                Ok(ip) => forbidden.addresses.push(ip),
                Err(_) => forbidden.names.push(a.trim_end_matches('.').to_ascii_lowercase()),
            }
        }
        let forbidden = Arc::new(forbidden);
        let builder =
            || Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().timeout(timeout);
        let named = builder().build().map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        let guarded = builder()
            .dns_resolver(Arc::new(Guard(forbidden.clone())))
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        for (i, a) in settings.prometheus_addresses.iter().enumerate() {
            prometheus_address(a).map_err(|why| format!("prometheusAddresses entry {}: {why}", i + 1))?;
        }
        let prometheus = settings.prometheus_addresses.iter().map(|a| normal(a).to_string()).collect();
        Ok(Outbound { prometheus, webhooks, forbidden, named, guarded })
    }

    /// The client for a Prometheus signal's address, or why the address is refused.
    pub fn prometheus(&self, address: &str) -> Result<&Client, String> {
        if self.prometheus.iter().any(|a| a == normal(address)) {
            return Ok(&self.named);
        }
        let allowed =
            if self.prometheus.is_empty() { "none".to_string() } else { self.prometheus.join(", ") };
        Err(format!(
            "Prometheus address {address} is not one the installer allows (prometheusAddresses: {allowed}); \
             use one of those, or ask whoever installed maintenance-operator to add it to prometheusAddresses"
        ))
    }

    /// The client for a webhook URL, or why it is refused. The URL is a credential: the reason
    /// names its host only.
    pub fn webhook(&self, url: &str) -> Result<&Client, String> {
        let Ok(u) = Url::parse(url) else {
            return Err("the webhook URL is not a URL such as https://hooks.example.com/…".into());
        };
        let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = u.port_or_known_default();
        for rule in &self.webhooks {
            match rule {
                HostRule::Exactly { scheme, host: h, port: p }
                    if *scheme == u.scheme() && *h == host && p.is_none_or(|p| Some(p) == port) =>
                {
                    return Ok(&self.named);
                }
                HostRule::AnyPublicHttps if u.scheme() == "https" && self.public(&host) => {
                    return Ok(&self.guarded);
                }
                _ => {}
            }
        }
        let allowed: Vec<String> = self.webhooks.iter().map(describe).collect();
        let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
        Err(format!(
            "webhook host {host} ({} URL) is not one the installer allows (webhookHosts: {allowed}); \
             loopback, link-local and API server addresses are never allowed by *; use another \
             destination, or ask whoever installed maintenance-operator to add it to webhookHosts",
            u.scheme()
        ))
    }

    /// A host `*` may reach, as far as its name or literal address tell: names are checked again
    /// on every connection, by the guarded client's resolver.
    fn public(&self, host: &str) -> bool {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(ip) => !self.forbidden.address(ip),
            Err(_) => !host.is_empty() && !self.forbidden.name(host),
        }
    }
}

/// The IPv4 addresses an IPv6 one may carry: mapped (::ffff:a.b.c.d) and compatible (::a.b.c.d)
/// in its last 32 bits; NAT64's well-known prefix (64:ff9b::a.b.c.d) likewise; and in NAT64's
/// local-use prefix (64:ff9b:1::/48, RFC 8215), which is for translation alone, the address
/// each prefix length a gateway may be set up with (/48, /56, /64, /96) would place there, as
/// RFC 6052 lays them out (skipping bits 64–71). Failing closed, this refuses a few public
/// destinations too (through a /64 gateway, one of 256: those ending in .127); list those by
/// name. A network's own prefix elsewhere cannot be told from the address.
fn carried_ipv4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let (s, b) = (v6.segments(), v6.octets());
    let last = Ipv4Addr::new(b[12], b[13], b[14], b[15]);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        let at = |i: [usize; 4]| Ipv4Addr::new(b[i[0]], b[i[1]], b[i[2]], b[i[3]]);
        let shorter = [at([6, 7, 9, 10]), at([7, 9, 10, 11]), at([9, 10, 11, 12])];
        // The zeros of a shorter layout read 0.0.0.0, which says nothing of where it goes.
        let shorter = shorter.into_iter().filter(|a| !a.is_unspecified());
        return shorter.chain([last]).collect();
    }
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0);
    // The standard library reads the mapped and compatible forms.
    v6.to_ipv4().into_iter().chain(nat64.then_some(last)).collect()
}

/// The instance metadata service of Alibaba Cloud, in the shared address space `*` otherwise
/// allows (AWS, Azure, Google Cloud and Oracle Cloud use 169.254.169.254, which is link-local).
const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

/// The instance metadata service of AWS over IPv6 (the IPv4 one, 169.254.169.254, is
/// link-local): a unique local address, which `*` otherwise allows.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// A resolver that never hands the client a forbidden address: a name that resolves to the
/// API server or to loopback now, whatever it resolved to when it was checked, is refused.
struct Guard(Arc<Forbidden>);

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let forbidden = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all.into_iter().filter(|a| !forbidden.address(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to addresses the operator never sends to").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

fn parse_rule(entry: &str) -> Result<HostRule, String> {
    let entry = entry.trim();
    if entry == "*" {
        return Ok(HostRule::AnyPublicHttps);
    }
    let bad = || {
        format!("webhookHosts entry {entry:?} is not * or scheme://host[:port], e.g. https://hooks.slack.com")
    };
    let u = Url::parse(entry).map_err(|_| bad())?;
    let host = u.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    // Nothing but a scheme, a host and a port: a user, a query or a fragment would be dropped
    // silently, and an entry that does not start `scheme://`, or holds a space or a tab (which
    // the URL parser drops), may not be read as written.
    let plain = !entry.chars().any(|c| c.is_whitespace() || c.is_control())
        && u.username().is_empty()
        && u.password().is_none()
        && u.query().is_none()
        && u.fragment().is_none()
        && entry
            .get(u.scheme().len()..)
            .is_some_and(|rest| rest.starts_with("://") && !rest.starts_with(":///"));
    if !plain || !matches!(u.scheme(), "http" | "https") || !matches!(u.path(), "" | "/") {
        return Err(bad());
    }
    // A URL leaves out the scheme's own port (`:80`, `:443`): a port written is that port all the
    // same, and an entry without one allows any.
    let port = u.port().or_else(|| written_port(entry).then(|| u.port_or_known_default()).flatten());
    Ok(HostRule::Exactly { scheme: u.scheme().into(), host: host.to_ascii_lowercase(), port })
}

/// Whether a plain `scheme://host[:port][/]` entry (`parse_rule`) writes a port: a colon after
/// the host, past an IPv6 literal's brackets.
fn written_port(entry: &str) -> bool {
    let authority = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    let after_host = authority.rsplit_once(']').map_or(authority, |(_, rest)| rest);
    after_host.contains(':')
}

fn describe(rule: &HostRule) -> String {
    match rule {
        HostRule::AnyPublicHttps => "*".into(),
        HostRule::Exactly { scheme, host, port: Some(p) } => format!("{scheme}://{host}:{p}"),
        HostRule::Exactly { scheme, host, port: None } => format!("{scheme}://{host}"),
    }
}

/// Why an allowed Prometheus address cannot be one: not an http(s) URL, or one with a user or
/// password, which every tenant could read (a refusal lists the allowed addresses). The address
/// itself is not repeated, so neither is a password.
fn prometheus_address(address: &str) -> Result<(), &'static str> {
    let u = Url::parse(normal(address)).map_err(|_| "not a URL such as http://prometheus.monitoring:9090")?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("not an http or https URL");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "it carries a user or password, which every tenant could read (a refused address is answered with \
             the allowed ones); the operator sends no credentials to Prometheus: allow a proxy that adds them",
        );
    }
    Ok(())
}

/// A base URL as compared: without its trailing slashes.
fn normal(address: &str) -> &str {
    address.trim().trim_end_matches('/')
}

/// Why a request failed, without the URL (a webhook's is a credential) or anything the far side
/// said beyond its status code.
pub fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "answered with a redirect, which is never followed"
    } else {
        "the request failed"
    }
}

/// The body of `resp`, or why it was not read: at most `max` bytes are ever held.
pub async fn read_capped(mut resp: Response, max: usize) -> Result<Vec<u8>, String> {
    let too_big = || match max {
        m if m >= 1 << 20 => format!("answered with more than {} MiB", m >> 20),
        m => format!("answered with more than {} KiB", m >> 10),
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failure(&e).to_string())? {
        if body.len() + chunk.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[path = "outbound_tests.rs"]
mod tests;
