//! The sender's address, for the logs, the status page and its local check: the connection's
//! peer, or, when that peer is one of `server.trusted_proxies`, the address its
//! `X-Forwarded-For` names.
//!
//! `X-Forwarded-For` is read from right to left (each proxy appends the address it was talked
//! to by, so the right end is the one written by the proxy nearest to the relay): trusted hops
//! are skipped and the first address that is not a trusted proxy is the sender. Everything left
//! of it was written by the sender itself and proves nothing. An entry that is not an address
//! (`unknown`, an obfuscated name, garbage) stops the walk: the last trusted hop is the answer,
//! never a value that could not be read. A peer that is not a trusted proxy is the sender
//! whatever its headers say, so no sender can choose the address it is shown with.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::ServerSettings;

/// The address of whoever sent `req`, as above; `None` only when the connection's peer is not
/// known (never for a real connection).
pub fn sender_addr(req: &HttpRequest, server: &ServerSettings) -> Option<IpAddr> {
    // `IpAddr::to_canonical` is `config::server::canonical` (private to `config`): an IPv4
    // address a dual-stack listener reports as `::ffff:a.b.c.d` is that IPv4 address.
    let peer = req.peer_addr()?.ip().to_canonical();
    if !server.trusts_proxy(peer) {
        return Some(peer);
    }
    let mut nearest_trusted = peer;
    // Several `X-Forwarded-For` headers are one list, in the order they came.
    for value in req.headers().get_all(header::X_FORWARDED_FOR).rev() {
        let Ok(text) = value.to_str() else {
            return Some(nearest_trusted);
        };
        for entry in text.rsplit(',') {
            let Some(hop) = parse_hop(entry) else {
                return Some(nearest_trusted);
            };
            if !server.trusts_proxy(hop) {
                return Some(hop);
            }
            nearest_trusted = hop;
        }
    }
    Some(nearest_trusted)
}

/// One entry of `X-Forwarded-For`: an address, or (as some proxies write it) an address with
/// its port (`192.0.2.1:5000`, `[2001:db8::1]:5000`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    /// `[server]` with these `trusted_proxies` (addresses or networks).
    pub(crate) fn server(proxies: &[&str]) -> ServerSettings {
        let net = |p: &&str| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(ipnet::IpNet::from))
                .expect("a network")
        };
        ServerSettings {
            listen: "127.0.0.1:0".into(),
            max_body_bytes: 4096,
            shutdown_timeout: std::time::Duration::from_secs(1),
            client_request_timeout: std::time::Duration::from_secs(1),
            client_body_timeout: std::time::Duration::from_secs(1),
            max_connections: 16,
            tls: None,
            trusted_proxies: proxies.iter().map(net).collect(),
        }
    }

    /// The sender of a request from `peer` with one `X-Forwarded-For` header per item.
    fn sender(proxies: &[&str], peer: &str, xff: &[&str]) -> Option<IpAddr> {
        let mut req = TestRequest::default().peer_addr(peer.parse().expect("a socket address"));
        for value in xff {
            req = req.append_header((header::X_FORWARDED_FOR, *value));
        }
        sender_addr(&req.to_http_request(), &server(proxies))
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("an address"))
    }

    #[test]
    fn without_trusted_proxies_forwarded_for_is_ignored() {
        assert_eq!(
            sender(&[], "127.0.0.1:4000", &["203.0.113.7"]),
            ip("127.0.0.1")
        );
        assert_eq!(sender(&[], "192.0.2.10:4000", &[]), ip("192.0.2.10"));
    }

    #[test]
    fn a_trusted_proxy_names_its_client() {
        let proxies = ["127.0.0.1/32"];
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // The sender's own claims, left of what the proxy appended, prove nothing.
        assert_eq!(
            sender(
                &proxies,
                "127.0.0.1:4000",
                &["10.9.9.9, 127.0.0.1 , 203.0.113.7"]
            ),
            ip("203.0.113.7")
        );
        // A request straight from the proxy's machine, forwarded by nobody.
        assert_eq!(sender(&proxies, "127.0.0.1:4000", &[]), ip("127.0.0.1"));
    }

    #[test]
    fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        assert_eq!(
            sender(&["10.0.0.0/8"], "198.51.100.2:4000", &["127.0.0.1"]),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop() {
        let proxies = ["127.0.0.1/32", "10.0.0.0/8"];
        assert_eq!(
            sender(
                &proxies,
                "127.0.0.1:4000",
                &["198.51.100.9, 203.0.113.7, 10.1.2.3"]
            ),
            ip("203.0.113.7")
        );
        // Every hop trusted: the leftmost is the sender.
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["10.0.0.5, 10.1.2.3"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn an_entry_that_is_no_address_stops_the_walk_at_the_last_trusted_hop() {
        let proxies = ["127.0.0.1/32", "10.0.0.0/8"];
        assert_eq!(
            sender(
                &proxies,
                "127.0.0.1:4000",
                &["203.0.113.7, unknown, 10.1.2.3"]
            ),
            ip("10.1.2.3")
        );
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["203.0.113.7,,"]),
            ip("127.0.0.1")
        );
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["not an address"]),
            ip("127.0.0.1")
        );
        // With its port, an address is still an address.
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["203.0.113.7:5000"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses_are_compared_as_what_they_are() {
        assert_eq!(
            sender(&["::1"], "[::1]:4000", &["2001:db8::7"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            sender(&["::1"], "[::1]:4000", &["[2001:db8::7]:5000"]),
            ip("2001:db8::7")
        );
        // A dual-stack listener reports an IPv4 proxy as `::ffff:127.0.0.1`.
        assert_eq!(
            sender(
                &["127.0.0.1"],
                "[::ffff:127.0.0.1]:4000",
                &["::ffff:203.0.113.7"]
            ),
            ip("203.0.113.7")
        );
        assert_eq!(
            sender(&[], "[::ffff:192.0.2.1]:4000", &["203.0.113.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn several_forwarded_for_headers_are_one_list() {
        let proxies = ["127.0.0.1/32", "10.0.0.0/8"];
        assert_eq!(
            sender(&proxies, "127.0.0.1:4000", &["203.0.113.7", "10.1.2.3"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            sender(
                &proxies,
                "127.0.0.1:4000",
                &["198.51.100.9, 203.0.113.7", "10.1.2.3, 10.0.0.1"]
            ),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn no_known_peer_no_sender() {
        let req = TestRequest::default().to_http_request();
        assert_eq!(sender_addr(&req, &server(&["127.0.0.1"])), None);
    }
}
