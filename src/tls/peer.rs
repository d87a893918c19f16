//! The subject of the certificate a client presented, read once per connection (at accept) and
//! kept with the connection, so that `sources.NAME.client_cert_subject` can be checked per
//! request without parsing the certificate again.

use std::any::Any;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use x509_parser::objects::{oid2abbrev, oid_registry};

/// The client certificate's subject as (attribute short name, value) pairs: `CN`, `O`, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSubject(pub Vec<(String, String)>);

/// For `HttpServer::on_connect`: stores the presented (and by then verified) certificate's
/// subject in the connection's data. Plain connections and connections without a client
/// certificate store nothing.
pub fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    let Some(tls) = conn.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = tls.get_ref();
    let Some(leaf) = session.peer_certificates().and_then(|c| c.first()) else {
        return;
    };
    // Verified by the handshake already; a subject with no text attributes is still a
    // certificate presented.
    data.insert(subject_of(leaf).unwrap_or(PeerSubject(Vec::new())));
}

/// The subject attributes of a DER certificate; attributes whose value is not text are left out.
pub fn subject_of(der: &[u8]) -> Option<PeerSubject> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let registry = oid_registry();
    let pairs = cert
        .subject()
        .iter_attributes()
        .filter_map(|attr| {
            let name = oid2abbrev(attr.attr_type(), registry)
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            let value = attr.as_str().ok()?;
            Some((name, value.to_string()))
        })
        .collect();
    Some(PeerSubject(pairs))
}

impl std::fmt::Display for PeerSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(a, v)| format!("{a}={v}")).collect();
        f.write_str(&parts.join(", "))
    }
}
