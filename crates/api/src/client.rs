//! Who is asking, and under which name: the client's address (believed from
//! `X-Forwarded-For` only when a trusted proxy sends it), the key rate limits count it under
//! (IPv6 by /64), and the `Host` allow-list that keeps other sites' pages from reaching the
//! API under their own name (DNS rebinding).

use crate::{Api, ApiError};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use starling_config::config::{canonical_ip, ApiConfig, IpNet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most `X-Forwarded-For` entries looked at (from the right).
const MAX_FORWARDED_HOPS: usize = 32;

/// How the API treats the network in front of it (the `[api]` section of the node's
/// configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiOptions {
    /// Proxies whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Host names answered besides IP addresses and `localhost`; `*` answers any.
    pub allowed_hosts: Vec<String>,
}

impl ApiOptions {
    pub fn from_config(c: &ApiConfig) -> Result<Self, String> {
        Ok(Self {
            trusted_proxies: c.proxies()?,
            allowed_hosts: c
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        })
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the connection's peer, or, when the peer is a trusted proxy,
    /// the nearest address in `X-Forwarded-For` that is not one (a proxy appends the address
    /// it was reached from, so entries left of the last untrusted one are the client's word).
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical_ip(peer);
        if !self.trusted(client) {
            return client;
        }
        let mut hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        hops.reverse();
        for hop in hops.into_iter().take(MAX_FORWARDED_HOPS) {
            let Some(ip) = parse_hop(hop.trim()) else {
                // Garbage where a trusted proxy should have written an address: stay with
                // the last address known.
                break;
            };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        client
    }

    /// Whether the API answers to `host` (a `Host` header's value, port and all).
    pub fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        if name.parse::<IpAddr>().is_ok()
            || name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .is_some_and(|n| n.parse::<Ipv6Addr>().is_ok())
        {
            return true;
        }
        name == "localhost"
            || name.ends_with(".localhost")
            || self.allowed_hosts.iter().any(|h| h == "*" || *h == name)
    }
}

/// One `X-Forwarded-For` entry: an address, maybe bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical_ip(ip));
    }
    hop.parse::<SocketAddr>().ok().map(|s| canonical_ip(s.ip()))
}

/// `host` without its `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The key rate limits and stream slots count a client under: its IPv4 address, or the /64
/// its IPv6 address is in (one host usually holds a whole /64).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The client making a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Client {
    /// Its address, as far as this node can tell.
    pub(crate) addr: IpAddr,
}

impl Client {
    pub(crate) fn of(api: &Api, parts: &Parts) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Self {
            addr: api.options.client_addr(peer, &parts.headers),
        }
    }

    /// What rate limits count this client under.
    pub(crate) fn key(&self) -> IpAddr {
        limit_key(self.addr)
    }
}

impl FromRequestParts<Api> for Client {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        Ok(Client::of(api, parts))
    }
}

/// Refuses requests whose `Host` the node does not answer to (requests without one, from
/// programs speaking HTTP/1.0, pass).
pub(crate) async fn check_host(State(api): State<Api>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{0}"))
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host {
        if !api.options.host_allowed(host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_host",
                "this node does not answer to that host name (see api.allowed_hosts)",
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn behind(proxies: &[&str]) -> ApiOptions {
        ApiOptions {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            allowed_hosts: Vec::new(),
        }
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let none = ApiOptions::default();
        let h = xff(&["198.51.100.7"]);
        // Anyone may send the header; only a trusted proxy is believed.
        assert_eq!(none.client_addr(ip("203.0.113.1"), &h), ip("203.0.113.1"));
        let o = behind(&["10.0.0.0/8"]);
        assert_eq!(o.client_addr(ip("203.0.113.1"), &h), ip("203.0.113.1"));
        assert_eq!(o.client_addr(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // What the client wrote itself (left of the last untrusted hop) does not count.
        let h = xff(&["1.2.3.4, 198.51.100.7", "10.0.0.9"]);
        assert_eq!(o.client_addr(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // A trusted proxy with no header, or garbage in it, is the client.
        assert_eq!(
            o.client_addr(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        let h = xff(&["198.51.100.7, not-an-address"]);
        assert_eq!(o.client_addr(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // Ports and brackets, IPv4-mapped peers.
        let h = xff(&["[2001:db8::5]:4711"]);
        assert_eq!(o.client_addr(ip("::ffff:10.0.0.2"), &h), ip("2001:db8::5"));
        let h = xff(&["198.51.100.7:80"]);
        assert_eq!(o.client_addr(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // A chain of trusted proxies only: the farthest one.
        let h = xff(&["10.0.0.5, 10.0.0.6"]);
        assert_eq!(o.client_addr(ip("10.0.0.2"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:3::1")),
            limit_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn hosts_are_ip_literals_localhost_or_allowed() {
        let o = ApiOptions {
            trusted_proxies: Vec::new(),
            allowed_hosts: vec!["starling.example.org".into()],
        };
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "[::1]:8080",
            "[::1]",
            "192.168.1.20:80",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:3000",
            "starling.example.org",
            "Starling.Example.Org.:443",
        ] {
            assert!(o.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "starling.example.org.evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "",
            "[::1",
        ] {
            assert!(!o.host_allowed(bad), "{bad}");
        }
        let any = ApiOptions {
            trusted_proxies: Vec::new(),
            allowed_hosts: vec!["*".into()],
        };
        assert!(any.host_allowed("evil.example"));
    }
}
