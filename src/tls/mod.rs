//! HTTPS on the listener (`server.tls_cert`, `server.tls_key`, `server.tls_client_ca`): rustls
//! with TLS 1.2 and 1.3 only and its default cipher suites, a certificate that a reload replaces
//! without dropping open connections, and client certificates checked against a CA.
//!
//! - `pair.rs`: reads and checks a PEM certificate chain and its key.
//! - `swap.rs`: the slots rustls reads at each handshake, which a reload replaces.
//! - `watch.rs`: the thread that reloads on SIGHUP and when the files change.
//! - `peer.rs`: the subject of the certificate a client presented, for
//!   `sources.NAME.client_cert_subject`.

pub mod pair;
pub mod peer;
mod swap;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::config::TlsSettings;
pub use pair::CertInfo;
use swap::{CertSlot, VerifierSlot};

/// How long before expiry `check-config` and the start-up log warn: two weeks leaves time to
/// find out why an automatic renewal (certbot renews at 30 days left) did not happen.
pub const EXPIRY_WARNING_SECONDS: i64 = 14 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)")]
    NoCertificate(String),
    #[error("{0} holds no PEM private key (a block starting -----BEGIN PRIVATE KEY-----, -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)")]
    NoKey(String),
    #[error("{path} is not valid PEM: {why}")]
    Pem { path: String, why: String },
    #[error("the private key in {path} cannot be used: {why}")]
    BadKey { path: String, why: String },
    #[error("the private key in {key} does not belong to the certificate in {cert} (the first certificate in the file must be the server's own)")]
    KeyMismatch { cert: String, key: String },
    #[error("certificate {n} in {path} cannot be parsed: {why}")]
    BadCert { path: String, n: usize, why: String },
    #[error("the chain in {path} is out of order: certificate {n} was issued by {issuer}, but the next one is {next}; put the server's certificate first, then each issuer in turn (certbot's fullchain.pem is in this order)")]
    ChainOrder {
        path: String,
        n: usize,
        issuer: String,
        next: String,
    },
    #[error("the certificate in {0} lists no host names (subjectAltName), so clients refuse it")]
    NoNames(String),
    #[error("the certificate in {path} is not valid now: valid from {from} until {until}")]
    NotValidNow {
        path: String,
        from: String,
        until: String,
    },
    #[error("the client CA in {path} cannot be used: {why}")]
    ClientCa { path: String, why: String },
}

/// The TLS state of a running relay: what handshakes are served from, and where it came from.
pub struct Tls {
    /// The files, re-read at each reload.
    settings: TlsSettings,
    /// The certificate the next handshake gets.
    cert: Arc<CertSlot>,
    /// The client CA check, when `tls_client_ca` is set.
    clients: Option<Arc<VerifierSlot>>,
    /// What the status and metrics show: the certificate in use.
    info: RwLock<CertInfo>,
    /// The last reload that was refused (Unix seconds, why), until one succeeds: the status
    /// says it, since an operator who renewed a certificate looks there rather than in the log.
    refused: RwLock<Option<(i64, String)>>,
    /// ring, named rather than taken as the process default: another provider anywhere in the
    /// dependency tree would make the default ambiguous and rustls would refuse to choose.
    provider: Arc<CryptoProvider>,
}

impl Tls {
    /// Reads and checks the files. An expired certificate is served (with an ERROR in the log,
    /// from the caller): refusing to start would also stop the plain-text health checks.
    pub fn load(settings: &TlsSettings) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = pair::load(&settings.cert, &settings.key, &provider)?;
        let clients = match &settings.client_ca {
            Some(ca) => Some(Arc::new(VerifierSlot::new(client_verifier(ca, &provider)?))),
            None => None,
        };
        Ok(Tls {
            settings: settings.clone(),
            cert: Arc::new(CertSlot::new(pair.certified)),
            clients,
            info: RwLock::new(pair.info),
            refused: RwLock::new(None),
            provider,
        })
    }

    /// The rustls configuration the listener serves with: TLS 1.2 and 1.3, the provider's
    /// default cipher suites, the certificate and client CA from the slots.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::BadKey {
                path: self.settings.key.display().to_string(),
                why: e.to_string(),
            })?;
        let builder = match &self.clients {
            Some(slot) => builder.with_client_cert_verifier(Arc::clone(slot) as _),
            None => builder.with_no_client_auth(),
        };
        Ok(builder.with_cert_resolver(Arc::clone(&self.cert) as _))
    }

    /// The certificate in use.
    pub fn info(&self) -> CertInfo {
        self.info.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The files a reload reads, for noticing changes.
    pub fn files(&self) -> Vec<PathBuf> {
        let s = &self.settings;
        std::iter::once(s.cert.clone())
            .chain(std::iter::once(s.key.clone()))
            .chain(s.client_ca.clone())
            .collect()
    }

    /// The last refused reload (Unix seconds, why), if none succeeded since.
    pub fn refused(&self) -> Option<(i64, String)> {
        self.refused
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again and, when every one passes, serves them to the next handshake;
    /// otherwise nothing changes but the refusal noted for the status. Returns the new
    /// certificate.
    pub fn reload(&self) -> Result<CertInfo, TlsError> {
        let result = self.try_reload();
        *self.refused.write().unwrap_or_else(|e| e.into_inner()) = match &result {
            Ok(_) => None,
            Err(e) => Some((unix_now(), e.to_string())),
        };
        result
    }

    fn try_reload(&self) -> Result<CertInfo, TlsError> {
        let s = &self.settings;
        let pair = pair::load(&s.cert, &s.key, &self.provider)?;
        let now = unix_now();
        if now < pair.info.not_before || now > pair.info.not_after {
            return Err(TlsError::NotValidNow {
                path: s.cert.display().to_string(),
                from: pair::rfc3339(pair.info.not_before),
                until: pair::rfc3339(pair.info.not_after),
            });
        }
        let verifier = match (&s.client_ca, &self.clients) {
            (Some(ca), Some(_)) => Some(client_verifier(ca, &self.provider)?),
            _ => None,
        };
        if let (Some(verifier), Some(slot)) = (verifier, &self.clients) {
            slot.replace(verifier);
        }
        self.cert.replace(pair.certified);
        *self.info.write().unwrap_or_else(|e| e.into_inner()) = pair.info.clone();
        Ok(pair.info)
    }
}

/// What `check-config` says of the TLS files: the certificate, and warnings about its dates.
pub fn check(settings: &TlsSettings, now: i64) -> Result<(CertInfo, Vec<String>), TlsError> {
    let tls = Tls::load(settings)?;
    let info = tls.info();
    let mut warnings = Vec::new();
    let left = info.seconds_left(now);
    if left < 0 {
        warnings.push(format!(
            "the certificate in {} EXPIRED at {}; clients refuse it until it is renewed",
            settings.cert.display(),
            info.not_after_text()
        ));
    } else if left < EXPIRY_WARNING_SECONDS {
        warnings.push(format!(
            "the certificate in {} expires in {} days ({}); renew it (certbot renew) and reload",
            settings.cert.display(),
            left / 86_400,
            info.not_after_text()
        ));
    }
    if now < info.not_before {
        warnings.push(format!(
            "the certificate in {} is not valid before {}",
            settings.cert.display(),
            pair::rfc3339(info.not_before)
        ));
    }
    Ok((info, warnings))
}

/// A verifier that takes client certificates chaining to the CAs in `path`.
fn client_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let bad = |why: String| TlsError::ClientCa {
        path: path.display().to_string(),
        why,
    };
    let pem = pair::read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in pair::certificates(path, &pem)? {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .allow_unauthenticated()
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// Now in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The start-up part: loads the files when TLS is configured, starts the reload thread, and
/// says in the log what the listener serves.
pub fn start(
    server: &crate::config::ServerSettings,
) -> Result<Option<(Arc<Tls>, watch::Watcher)>, StartError> {
    let Some(settings) = &server.tls else {
        if !server.listens_on_loopback() {
            log::warn!(
                "hookrelay listens on {} with plain HTTP: webhooks and their customer data cross the network unencrypted. Set server.tls_cert and server.tls_key, or listen on 127.0.0.1 behind a TLS proxy.",
                server.listen
            );
        }
        return Ok(None);
    };
    let tls = Arc::new(Tls::load(settings)?);
    let info = tls.info();
    let left = info.seconds_left(unix_now());
    if left < 0 {
        log::error!(
            "The TLS certificate in {} expired at {}; senders refuse to connect until it is renewed (then systemctl reload hookrelay).",
            settings.cert.display(),
            info.not_after_text()
        );
    } else if left < EXPIRY_WARNING_SECONDS {
        log::warn!(
            "The TLS certificate in {} expires in {} days ({}); renew it before then.",
            settings.cert.display(),
            left / 86_400,
            info.not_after_text()
        );
    }
    log::info!(
        "Serving HTTPS with {} for {}, issued by {}, valid until {}{}.",
        info.subject,
        info.names.join(", "),
        info.issuer,
        info.not_after_text(),
        if settings.client_ca.is_some() {
            "; clients must present a certificate from server.tls_client_ca"
        } else {
            ""
        }
    );
    let watcher = watch::Watcher::spawn(Arc::clone(&tls))?;
    Ok(Some((tls, watcher)))
}

/// Why TLS could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Files(#[from] TlsError),
    #[error("cannot start the TLS reload thread: {0}")]
    Thread(#[from] std::io::Error),
}

#[cfg(test)]
mod tests;
