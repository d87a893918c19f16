//! What rustls asks at each handshake, answered from a slot a reload can replace: the
//! certificate to serve and the CA that client certificates must chain to. A handshake takes
//! what is in the slot as it starts, so a connection already open keeps the pair it began
//! with while the next one gets the renewed pair.

use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The certificate served to every new connection (one per relay: no SNI choice).
#[derive(Debug)]
pub struct CertSlot(RwLock<Arc<CertifiedKey>>);

impl CertSlot {
    pub fn new(key: Arc<CertifiedKey>) -> CertSlot {
        CertSlot(RwLock::new(key))
    }

    pub fn replace(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock only means a panic elsewhere while holding it; the value is whole.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = key;
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// The client-certificate check, with a CA a reload can replace.
#[derive(Debug)]
pub struct VerifierSlot(RwLock<Arc<dyn ClientCertVerifier>>);

impl VerifierSlot {
    pub fn new(verifier: Arc<dyn ClientCertVerifier>) -> VerifierSlot {
        VerifierSlot(RwLock::new(verifier))
    }

    pub fn replace(&self, verifier: Arc<dyn ClientCertVerifier>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = verifier;
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientCertVerifier for VerifierSlot {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// A certificate is asked for and, when presented, must chain to the CA, or the handshake
    /// fails. A connection without one gets through the handshake so that what needs no
    /// certificate still works (Slack's signed Request URL, which cannot present one; health
    /// checks; the token-protected admin API); webhooks from sources on it are refused with a
    /// 403 that says why (`http/authorise.rs`), which a sender's log shows better than an alert.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: they would have to outlive a reload (rustls borrows them from the verifier),
    /// and they only help a client that holds several certificates choose one; senders that
    /// sign their calls hold one.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}
