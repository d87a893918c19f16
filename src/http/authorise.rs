//! Who may send to a source: a client certificate at all (`server.tls_client_ca`), its subject
//! (`sources.NAME.client_cert_subject`) and the bearer token (`sources.NAME.token`), checked
//! before the body is read.

use actix_web::http::header;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use super::hooks::HookError;
use crate::config::SourceSettings;
use crate::tls::peer::PeerSubject;

/// `client_ca`: whether the relay takes webhooks only from senders with a client certificate
/// (`server.tls_client_ca`).
pub fn authorise(
    req: &HttpRequest,
    settings: &SourceSettings,
    client_ca: bool,
) -> Result<(), HookError> {
    check_client_cert(req, settings, client_ca)?;
    let Some(expected) = &settings.token else {
        return Ok(());
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(HookError::MissingToken)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(HookError::WrongToken)
    }
}

/// The TLS layer has already checked that the certificate chains to `server.tls_client_ca`;
/// this checks that it is the one this source's sender holds, not another client's.
fn check_client_cert(
    req: &HttpRequest,
    settings: &SourceSettings,
    client_ca: bool,
) -> Result<(), HookError> {
    let presented = req.conn_data::<PeerSubject>();
    if client_ca && presented.is_none() {
        return Err(HookError::ClientCert(
            "this relay takes webhooks only from senders presenting a client certificate from its CA (server.tls_client_ca); this connection presented none".into(),
        ));
    }
    let Some(expected) = &settings.client_cert_subject else {
        return Ok(());
    };
    match presented {
        Some(subject) if expected.matches(&subject.0) => Ok(()),
        Some(subject) => Err(HookError::ClientCert(format!(
            "this source takes webhooks only from a client certificate with subject {expected}; this connection presented {subject}"
        ))),
        None => Err(HookError::ClientCert(format!(
            "this source takes webhooks only from a client certificate with subject {expected}; this connection presented none"
        ))),
    }
}
