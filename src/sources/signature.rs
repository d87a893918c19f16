//! Signed inbound webhooks: a source may require that each request be signed by the sender.
//!
//! - **Standard Webhooks** (`webhook-id`, `webhook-timestamp`, `webhook-signature`): the
//!   signature is `v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` with the secret
//!   (`whsec_` + base64 key). The header may hold several signatures (space-separated), and a
//!   source may hold several secrets, so a secret can be rotated without a gap.
//! - **`X-Hub-Signature-256`** (GitHub's style): `sha256=` + hex HMAC-SHA256 of the body.
//!
//! Pure: the HTTP layer passes the headers in and maps the error to a 401.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A request signed further from now than this is refused (Standard Webhooks' advice), so a
/// captured request cannot be sent again later.
pub const TOLERANCE_SECS: u64 = 300;

pub use crate::config::signature::{standard_key, InboundSignature};

/// Why a signed request was refused; answered 401, nothing stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundSignatureError {
    #[error("this source requires signed requests: the {0} header is missing")]
    Missing(&'static str),
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes from now (a replay, or a clock far off)")]
    Stale,
    #[error("no signature matches any of this source's secrets")]
    Mismatch,
    #[error("this webhook-id was already received; a replayed request is refused")]
    Replayed,
}

impl InboundSignatureError {
    /// The `type` of the JSON error.
    pub fn kind(&self) -> &'static str {
        match self {
            InboundSignatureError::Missing(_) => "missing_signature",
            InboundSignatureError::BadTimestamp | InboundSignatureError::Stale => "stale_signature",
            InboundSignatureError::Mismatch => "bad_signature",
            InboundSignatureError::Replayed => "replayed_webhook",
        }
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; the fallback only keeps this free of panics.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()))
}

/// `v1,` + base64 signature of a message (what a sender puts in `webhook-signature`).
pub fn sign_standard(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", BASE64.encode(m.finalize().into_bytes()))
}

/// `sha256=` + hex signature of a body (what a sender puts in `X-Hub-Signature-256`).
pub fn sign_hub(secret: &[u8], body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The request's signature headers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    pub webhook_id: Option<&'a str>,
    pub webhook_timestamp: Option<&'a str>,
    pub webhook_signature: Option<&'a str>,
    pub hub_signature_256: Option<&'a str>,
}

impl InboundSignature {
    /// Checks a request; `Ok` with the `webhook-id` (for the replay check) when it is signed
    /// with one of the secrets.
    pub fn verify<'a>(
        &self,
        h: &Headers<'a>,
        body: &[u8],
        now_secs: u64,
    ) -> Result<Option<&'a str>, InboundSignatureError> {
        match self {
            InboundSignature::StandardWebhooks(keys) => {
                let id = h
                    .webhook_id
                    .ok_or(InboundSignatureError::Missing("webhook-id"))?;
                let ts = h
                    .webhook_timestamp
                    .ok_or(InboundSignatureError::Missing("webhook-timestamp"))?;
                let signatures = h
                    .webhook_signature
                    .ok_or(InboundSignatureError::Missing("webhook-signature"))?;
                let sent: u64 = ts
                    .trim()
                    .parse()
                    .map_err(|_| InboundSignatureError::BadTimestamp)?;
                if sent.abs_diff(now_secs) > TOLERANCE_SECS {
                    return Err(InboundSignatureError::Stale);
                }
                let expected: Vec<String> = keys
                    .iter()
                    .map(|k| sign_standard(k, id, ts.trim(), body))
                    .collect();
                // Only `v1,` signatures count; others (future versions) are skipped.
                let matched = signatures
                    .split_whitespace()
                    .filter(|s| s.starts_with("v1,"))
                    .any(|given| expected.iter().any(|e| ct_eq(e, given)));
                if matched {
                    Ok(Some(id))
                } else {
                    Err(InboundSignatureError::Mismatch)
                }
            }
            InboundSignature::HubSha256(secrets) => {
                let given = h
                    .hub_signature_256
                    .ok_or(InboundSignatureError::Missing("X-Hub-Signature-256"))?
                    .trim()
                    .to_ascii_lowercase();
                if secrets.iter().any(|s| ct_eq(&sign_hub(s, body), &given)) {
                    Ok(None)
                } else {
                    Err(InboundSignatureError::Mismatch)
                }
            }
        }
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn standard(secrets: &[&str]) -> InboundSignature {
        InboundSignature::StandardWebhooks(
            secrets.iter().map(|s| standard_key(s).unwrap()).collect(),
        )
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Headers<'a> {
        Headers {
            webhook_id: Some(id),
            webhook_timestamp: Some(ts),
            webhook_signature: Some(sig),
            hub_signature_256: None,
        }
    }

    #[test]
    fn the_published_test_vector_signs_and_verifies() {
        let key = standard_key(SECRET).unwrap();
        assert_eq!(sign_standard(&key, ID, TS, BODY), SIGNATURE);
        let now = 1_614_265_330;
        assert_eq!(
            standard(&[SECRET]).verify(&headers(ID, TS, SIGNATURE), BODY, now),
            Ok(Some(ID))
        );
        // The key without its prefix is the same key.
        assert_eq!(standard_key(&SECRET[6..]), Some(key));
    }

    #[test]
    fn several_signatures_and_secrets_allow_rotation() {
        let now = 1_614_265_330;
        let both = format!("v1,bm9wZQ== v2,whatever {SIGNATURE}");
        assert!(standard(&[SECRET])
            .verify(&headers(ID, TS, &both), BODY, now)
            .is_ok());
        let old_and_new = standard(&["whsec_bm90IHRoZSBrZXk=", SECRET]);
        assert!(old_and_new
            .verify(&headers(ID, TS, SIGNATURE), BODY, now)
            .is_ok());
    }

    #[test]
    fn tampering_stale_or_missing_parts_are_refused() {
        let now = 1_614_265_330;
        let s = standard(&[SECRET]);
        let err = |h: Headers, body: &[u8], now: u64| s.verify(&h, body, now).unwrap_err();
        assert_eq!(
            err(headers(ID, TS, SIGNATURE), br#"{"test": 2432232315}"#, now),
            InboundSignatureError::Mismatch
        );
        assert_eq!(
            err(headers("msg_other", TS, SIGNATURE), BODY, now),
            InboundSignatureError::Mismatch
        );
        assert_eq!(
            err(
                headers(ID, TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE"),
                BODY,
                now
            ),
            InboundSignatureError::Mismatch
        );
        assert_eq!(
            err(headers(ID, TS, &SIGNATURE.replace("v1,", "v2,")), BODY, now),
            InboundSignatureError::Mismatch
        );
        assert_eq!(
            err(headers(ID, TS, SIGNATURE), BODY, now + 301),
            InboundSignatureError::Stale
        );
        assert_eq!(
            err(headers(ID, TS, SIGNATURE), BODY, now - 301),
            InboundSignatureError::Stale
        );
        assert_eq!(
            err(headers(ID, "1614265330.5", SIGNATURE), BODY, now),
            InboundSignatureError::BadTimestamp
        );
        let mut missing = headers(ID, TS, SIGNATURE);
        missing.webhook_id = None;
        assert_eq!(
            err(missing, BODY, now),
            InboundSignatureError::Missing("webhook-id")
        );
        let other = standard(&["whsec_bm90IHRoZSBrZXk="]);
        assert_eq!(
            other.verify(&headers(ID, TS, SIGNATURE), BODY, now),
            Err(InboundSignatureError::Mismatch)
        );
        assert!(!format!("{s:?}").contains("MfKQ"));
    }

    #[test]
    fn hub_signatures_are_hex_of_the_body() {
        let secret = b"It's a Secret to Everybody".to_vec();
        // GitHub's documented example.
        assert_eq!(
            sign_hub(&secret, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let hub = InboundSignature::HubSha256(vec![b"old".to_vec(), secret.clone()]);
        let h = Headers {
            hub_signature_256: Some(
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            ..Headers::default()
        };
        assert_eq!(hub.verify(&h, b"Hello, World!", 0), Ok(None));
        let upper = Headers {
            hub_signature_256: Some(
                "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
            ),
            ..Headers::default()
        };
        assert_eq!(
            hub.verify(&upper, b"Hello, World!", 0),
            Ok(None),
            "hex in any case"
        );
        assert_eq!(
            hub.verify(&h, b"Hello, World?", 0),
            Err(InboundSignatureError::Mismatch)
        );
        assert_eq!(
            hub.verify(&Headers::default(), b"x", 0),
            Err(InboundSignatureError::Missing("X-Hub-Signature-256"))
        );
    }
}
