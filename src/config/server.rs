//! `[server]`: the HTTP receiver's address, limits and timeouts, its TLS files, and the proxies
//! whose `X-Forwarded-For` is believed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::raw::RawServer;
use super::values::{self, parse_duration, positive_duration};
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `host:port` to bind; port 0 picks a free port (tests).
    pub listen: String,
    /// Bodies above this are refused with 413 before they are read whole.
    pub max_body_bytes: usize,
    /// How long a stop waits for in-flight requests and Slack posts before giving up on them.
    pub shutdown_timeout: Duration,
    /// A connection's request head must arrive within this of its opening (actix answers 408),
    /// so a client that opens connections and sends nothing cannot hold them.
    pub client_request_timeout: Duration,
    /// A request's whole body must arrive within this once its head is in (else 408 and the
    /// connection is closed): a client that stalls inside its body cannot hold a connection.
    pub client_body_timeout: Duration,
    /// Open connections across all HTTP workers; more wait in the kernel's accept queue. Keeps
    /// the relay below its open-file limit, where `accept` would fail for everyone.
    pub max_connections: usize,
    /// TLS on the listener; `None`: plain HTTP (the default, for `127.0.0.1`).
    pub tls: Option<TlsSettings>,
    /// Reverse proxies in front of the relay: only a request from one of these has its
    /// `X-Forwarded-For` taken as the sender's address (logs, the status page's local check).
    pub trusted_proxies: Vec<IpNet>,
}

/// `server.tls_cert`, `server.tls_key` and `server.tls_client_ca`, as paths: the files are read
/// and checked when the relay starts and whenever they change (`crate::tls`).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// PEM: the certificate first, then its chain (certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1; certbot's `privkey.pem`).
    pub key: PathBuf,
    /// PEM: the CA whose client certificates are required; `None`: none asked for.
    pub client_ca: Option<PathBuf>,
}

impl ServerSettings {
    /// Whether `listen` names only this machine (`127.0.0.1`, `[::1]`, `localhost`): where plain
    /// HTTP is fine, since nothing crosses a network.
    /// Whether webhooks from sources need a client certificate (`tls_client_ca` is set).
    pub fn requires_client_cert(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    pub fn listens_on_loopback(&self) -> bool {
        let host = match self.listen.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => self.listen.as_str(),
        };
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether a request from `peer` came through a trusted proxy.
    pub fn trusts_proxy(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// An IPv4 address seen as IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener reports it) is
/// compared as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// `[server]`, checked.
pub(super) fn server_settings(raw: &RawServer) -> Result<ServerSettings, ConfigError> {
    let server = ServerSettings {
        listen: raw.listen.clone(),
        max_body_bytes: values::positive_count(
            "server.max_body_bytes",
            raw.max_body_bytes,
            "bytes",
            "1048576",
        )?,
        shutdown_timeout: parse_duration("server.shutdown_timeout", &raw.shutdown_timeout)?,
        client_request_timeout: positive_duration(
            "server.client_request_timeout",
            &raw.client_request_timeout,
            "\"5s\"",
        )?,
        client_body_timeout: positive_duration(
            "server.client_body_timeout",
            &raw.client_body_timeout,
            "\"10s\"",
        )?,
        max_connections: values::positive_count(
            "server.max_connections",
            raw.max_connections,
            "connections",
            "4096",
        )?,
        tls: tls_settings(raw)?,
        trusted_proxies: trusted_proxies(&raw.trusted_proxies)?,
    };
    if !raw.listen.contains(':') {
        return Err(ConfigError::invalid(
            "server.listen",
            &raw.listen,
            "is not host:port",
            "\"127.0.0.1:8080\"",
        ));
    }
    Ok(server)
}

/// The TLS files: a certificate needs its key and the other way round, and client certificates
/// can only be asked for over TLS.
fn tls_settings(raw: &RawServer) -> Result<Option<TlsSettings>, ConfigError> {
    let path = |key: &str, value: &Option<String>| -> Result<Option<PathBuf>, ConfigError> {
        match value.as_deref().map(str::trim) {
            None => Ok(None),
            Some("") => Err(ConfigError::invalid(
                key,
                "",
                "must name a PEM file",
                "\"/etc/hookrelay/tls/fullchain.pem\"",
            )),
            Some(p) => Ok(Some(PathBuf::from(p))),
        }
    };
    let cert = path("server.tls_cert", &raw.tls_cert)?;
    let key = path("server.tls_key", &raw.tls_key)?;
    let client_ca = path("server.tls_client_ca", &raw.tls_client_ca)?;
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsSettings {
            cert,
            key,
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err(ConfigError::invalid(
            "server.tls_client_ca",
            raw.tls_client_ca.as_deref().unwrap_or(""),
            "asks for client certificates, which needs TLS: set server.tls_cert and server.tls_key",
            "tls_cert = \"/etc/hookrelay/tls/fullchain.pem\"",
        )),
        (Some(_), None) => Err(ConfigError::invalid(
            "server.tls_key",
            "(missing)",
            "is needed with server.tls_cert",
            "\"/etc/hookrelay/tls/privkey.pem\"",
        )),
        (None, Some(_)) => Err(ConfigError::invalid(
            "server.tls_cert",
            "(missing)",
            "is needed with server.tls_key",
            "\"/etc/hookrelay/tls/fullchain.pem\"",
        )),
    }
}

/// `server.trusted_proxies`: addresses (`"127.0.0.1"`, `"::1"`) or networks (`"10.0.0.0/8"`).
fn trusted_proxies(raw: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, text)| {
            let t = text.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                .map(|net| match net {
                    IpNet::V6(v6) if v6.addr().to_ipv4_mapped().is_some() => {
                        IpNet::from(canonical(IpAddr::V6(v6.addr())))
                    }
                    other => other.trunc(),
                })
                .map_err(|_| {
                    ConfigError::invalid(
                        &format!("server.trusted_proxies[{i}]"),
                        text,
                        "is not an IP address or a network",
                        "[\"127.0.0.1\", \"10.0.0.0/8\"]",
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawServer)) -> Result<ServerSettings, ConfigError> {
        let mut r = RawServer::default();
        f(&mut r);
        server_settings(&r)
    }

    #[test]
    fn loopback_addresses_are_told_from_the_rest() {
        for (listen, local) in [
            ("127.0.0.1:8080", true),
            ("localhost:8080", true),
            ("[::1]:8443", true),
            ("0.0.0.0:8443", false),
            ("[::]:8443", false),
            ("192.168.1.10:8443", false),
        ] {
            let s = raw(|r| r.listen = listen.into()).unwrap();
            assert_eq!(s.listens_on_loopback(), local, "{listen}");
        }
    }

    #[test]
    fn tls_needs_both_files_and_client_certificates_need_tls() {
        assert_eq!(raw(|_| {}).unwrap().tls, None);
        let s = raw(|r| {
            r.tls_cert = Some("/etc/hookrelay/tls/fullchain.pem".into());
            r.tls_key = Some("/etc/hookrelay/tls/privkey.pem".into());
        })
        .unwrap();
        assert_eq!(
            s.tls.unwrap().cert,
            PathBuf::from("/etc/hookrelay/tls/fullchain.pem")
        );
        let e = raw(|r| r.tls_cert = Some("/c.pem".into())).unwrap_err();
        assert!(e.to_string().contains("server.tls_key"), "{e}");
        let e = raw(|r| r.tls_client_ca = Some("/ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("needs TLS"), "{e}");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks() {
        let s = raw(|r| {
            r.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into(), "::1".into()]
        })
        .unwrap();
        assert!(s.trusts_proxy("10.1.2.3".parse().unwrap()));
        assert!(s.trusts_proxy("::ffff:127.0.0.1".parse().unwrap()));
        assert!(s.trusts_proxy("::1".parse().unwrap()));
        assert!(!s.trusts_proxy("192.168.0.1".parse().unwrap()));
        let e = raw(|r| r.trusted_proxies = vec!["proxy.lan".into()]).unwrap_err();
        assert!(e.to_string().contains("trusted_proxies[0]"), "{e}");
    }
}
