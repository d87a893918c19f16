//! A certificate chain and its private key read from PEM files and checked before anything
//! serves them: the key belongs to the first certificate, each certificate was issued by the
//! next, and the first lists the host names clients will ask for.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::TlsError;

/// A pair ready to serve, with what operators are shown of it.
pub struct Pair {
    /// What rustls hands out in handshakes: the chain as read, the key's signer.
    pub certified: Arc<CertifiedKey>,
    /// The first certificate's names and dates, for the status, metrics and check-config.
    pub info: CertInfo,
}

/// What the status page, `/v1/status`, `/metrics` and `check-config` show of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// The first certificate's subject, as `openssl x509 -subject` prints it.
    pub subject: String,
    /// Who signed it: operators tell a test CA from a public one by this.
    pub issuer: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds: what renewal is about.
    pub not_after: i64,
    /// The host names and addresses it is valid for (subjectAltName), which clients check.
    pub names: Vec<String>,
    /// Certificates in the file, the first included: 1 means no intermediates were sent.
    pub chain_len: usize,
}

impl CertInfo {
    /// Seconds left at `now` (negative once expired).
    pub fn seconds_left(&self, now: i64) -> i64 {
        self.not_after - now
    }

    /// `not_after` as an RFC 3339 time.
    pub fn not_after_text(&self) -> String {
        rfc3339(self.not_after)
    }
}

/// Unix seconds as RFC 3339, clamped to the epoch for times before it.
pub fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Reads and checks the pair; nothing is kept from a pair that fails a check.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Pair, TlsError> {
    let cert_pem = read(cert)?;
    let chain = certificates(cert, &cert_pem)?;
    let key_pem = read(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(key.display().to_string()),
        other => TlsError::Pem {
            path: key.display().to_string(),
            why: other.to_string(),
        },
    })?;
    let signer = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| TlsError::BadKey {
            path: key.display().to_string(),
            why: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => {
            return Err(TlsError::KeyMismatch {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
            })
        }
    }
    let info = inspect(cert, &certified.cert)?;
    Ok(Pair {
        certified: Arc::new(certified),
        info,
    })
}

/// Every certificate in a PEM file (a CA bundle or a chain), at least one.
pub fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(path.display().to_string()));
    }
    Ok(chain)
}

/// Reads a file whole; certificates and keys are a few kilobytes.
pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Parses the chain: its order, the first certificate's names and dates.
fn inspect(path: &Path, chain: &[CertificateDer<'_>]) -> Result<CertInfo, TlsError> {
    let parsed = chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, c)| c)
                .map_err(|e| TlsError::BadCert {
                    path: path.display().to_string(),
                    n: i + 1,
                    why: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, pair) in parsed.windows(2).enumerate() {
        if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
            return Err(TlsError::ChainOrder {
                path: path.display().to_string(),
                n: i + 1,
                issuer: pair[0].issuer().to_string(),
                next: pair[1].subject().to_string(),
            });
        }
    }
    let leaf = &parsed[0];
    let names = names(leaf);
    if names.is_empty() {
        return Err(TlsError::NoNames(path.display().to_string()));
    }
    Ok(CertInfo {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
        names,
        chain_len: chain.len(),
    })
}

/// The DNS names and IP addresses of the subjectAltName extension. The subject's CN is not
/// read: browsers and rustls-based clients ignore it.
fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
