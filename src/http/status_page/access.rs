//! Who may open the status page without a token (`[admin] local_status_page = true`): a
//! sender on this machine, as the module's doc (`status_page`) says.

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::ServerSettings;
use crate::http::sender::sender_addr;

/// Whether the request comes from this machine, as `status_page`'s doc says: its sender is
/// loopback (IPv4-mapped IPv6 addresses included), and no proxy the relay does not trust had a
/// hand in it. `Forwarded` is not read at all, so it is never believed to say "local".
pub(super) fn is_local(req: &HttpRequest, server: &ServerSettings) -> bool {
    let headers = req.headers();
    let trusted_peer = req.peer_addr().is_some_and(|a| server.trusts_proxy(a.ip()));
    let untrusted_proxy = headers.contains_key(header::FORWARDED)
        || (headers.contains_key(header::X_FORWARDED_FOR) && !trusted_peer);
    !untrusted_proxy && sender_addr(req, server).is_some_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a request from `peer` with these headers is local, `proxies` trusted.
    fn local(proxies: &[&str], peer: &str, headers: &[(&str, &str)]) -> bool {
        let mut req = actix_web::test::TestRequest::default()
            .peer_addr(peer.parse().expect("a socket address"));
        for &(name, value) in headers {
            req = req.append_header((name, value));
        }
        is_local(
            &req.to_http_request(),
            &crate::http::sender::tests::server(proxies),
        )
    }

    #[test]
    fn only_senders_on_this_machine_are_local() {
        assert!(local(&[], "127.0.0.1:1", &[]));
        assert!(local(&[], "[::1]:1", &[]));
        assert!(local(&[], "[::ffff:127.0.0.1]:1", &[]));
        assert!(!local(&[], "10.0.0.1:1", &[]));
        assert!(!is_local(
            &actix_web::test::TestRequest::default().to_http_request(),
            &crate::http::sender::tests::server(&[])
        ));
    }

    #[test]
    fn a_trusted_proxy_on_this_machine_is_local_only_for_a_local_browser() {
        let proxies = ["127.0.0.1/32"];
        let xff = |v| [("x-forwarded-for", v)];
        assert!(!local(&proxies, "127.0.0.1:1", &xff("203.0.113.7")));
        assert!(local(&proxies, "127.0.0.1:1", &xff("127.0.0.1")));
        // Straight from this machine, through no proxy.
        assert!(local(&proxies, "127.0.0.1:1", &[]));
        // A remote sender cannot claim to be local.
        assert!(!local(&proxies, "203.0.113.7:1", &xff("127.0.0.1")));
    }

    #[test]
    fn a_proxy_that_is_not_trusted_makes_nothing_local() {
        assert!(!local(
            &[],
            "127.0.0.1:1",
            &[("x-forwarded-for", "127.0.0.1")]
        ));
        assert!(!local(
            &[],
            "127.0.0.1:1",
            &[("forwarded", "for=127.0.0.1")]
        ));
        // `Forwarded` is not read, so not believed even from a trusted proxy.
        assert!(!local(
            &["127.0.0.1"],
            "127.0.0.1:1",
            &[("forwarded", "for=203.0.113.7")]
        ));
    }
}
