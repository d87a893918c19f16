//! Certificates made by the test (rcgen), and TLS clients that trust them: ureq for requests,
//! a raw rustls stream where a test must hold a connection open or see the served certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};

/// A certificate authority the test controls.
pub struct Ca {
    /// Its certificate, which clients (or the relay, for client certificates) trust.
    pub cert: rcgen::Certificate,
    /// Signs the certificates it issues.
    key: KeyPair,
}

/// An issued certificate with its key, as PEM.
pub struct Issued {
    /// The certificate's DER, to compare with what a server served.
    pub der: CertificateDer<'static>,
    /// The certificate as PEM (what goes into `tls_cert` or a client's `--cert`).
    pub cert_pem: String,
    /// Its private key as PEM.
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert, key }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self, cn: &str) -> Issued {
        self.issue(cn, &["localhost", "127.0.0.1"], |_| {})
    }

    /// A client certificate with subject `CN=cn, O=org`.
    pub fn client(&self, cn: &str, org: &str) -> Issued {
        self.issue(cn, &[], |p| {
            p.distinguished_name.push(DnType::OrganizationName, org)
        })
    }

    pub fn issue(
        &self,
        cn: &str,
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        edit(&mut params);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("issued certificate");
        Issued {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// Writes a pair where the relay's config points, replacing what is there in one rename each
/// (as certbot's deploy hook and `install` do), key first.
pub fn install(dir: &Path, issued: &Issued) -> (PathBuf, PathBuf) {
    let cert = dir.join("fullchain.pem");
    let key = dir.join("privkey.pem");
    write_atomically(&key, issued.key_pem.as_bytes());
    write_atomically(&cert, issued.cert_pem.as_bytes());
    (cert, key)
}

pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).expect("write the new file");
    std::fs::rename(&tmp, path).expect("rename it into place");
}

/// The `[server]` lines for TLS with the files in `dir`.
pub fn server_lines(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut lines = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    if let Some(ca) = client_ca {
        lines.push_str(&format!("tls_client_ca = \"{}\"\n", ca.display()));
    }
    lines
}

/// A ureq agent trusting only `ca`, presenting `client` if given.
pub fn agent(ca: &Ca, client: Option<&Issued>) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_der(ca.cert.der()).to_owned();
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]));
    if let Some(c) = client {
        let cert = ureq::tls::Certificate::from_pem(c.cert_pem.as_bytes()).expect("client cert");
        let key = ureq::tls::PrivateKey::from_pem(c.key_pem.as_bytes()).expect("client key");
        tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&[cert], key)));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A TLS connection made by hand: it stays open as long as the test holds it, and says which
/// certificate the server served.
pub struct RawTls {
    pub stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl RawTls {
    /// Connects and completes the handshake, trusting `ca`.
    pub fn connect(port: u16, ca: &Ca) -> Result<RawTls, std::io::Error> {
        RawTls::connect_with(port, ca, rustls::DEFAULT_VERSIONS)
    }

    /// As `connect`, offering only `versions`.
    pub fn connect_with(
        port: u16,
        ca: &Ca,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<RawTls, std::io::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).expect("CA into roots");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("name");
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(RawTls { stream })
    }

    /// The certificate the server presented.
    pub fn served(&self) -> Option<CertificateDer<'static>> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send over TLS");
        self.stream.flush().expect("flush");
    }

    /// Reads the answer to one request (the relay closes or the head and body arrive).
    pub fn read_answer(&mut self) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse::<usize>().ok());
                        if len.is_some_and(|n| body.len() >= n) {
                            break;
                        }
                    }
                }
                Err(e) => panic!("reading the answer failed: {e}"),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}
