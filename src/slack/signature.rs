//! Slack's request signing (`v0`), for what Slack sends to the Request URL: the HMAC-SHA256 of
//! `v0:{timestamp}:{raw body}` with the app's signing secret, hex after `v0=`, in
//! `X-Slack-Signature`, with the time in `X-Slack-Request-Timestamp`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A request older or newer than this is refused, so a captured request cannot be replayed
/// later (Slack's own advice: five minutes).
pub const MAX_SKEW_SECS: u64 = 300;

pub use crate::config::tokens::SigningSecret;

/// Why a request's signature was refused (answered 401, nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Slack-Signature or X-Slack-Request-Timestamp header")]
    Missing,
    #[error("X-Slack-Request-Timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("the request is more than 5 minutes old or ahead (a replay, or a clock far off)")]
    Stale,
    #[error("the signature does not match: not signed with this app's signing secret")]
    Mismatch,
}

impl SigningSecret {
    /// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let digest = self.mac(timestamp, body).finalize();
        let hex: String = digest
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("v0={hex}")
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail; the fallback keeps it panic-free.
        let mut mac = Hmac::<Sha256>::new_from_slice(self.expose().as_bytes())
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac
    }

    /// Checks a request: the timestamp within [`MAX_SKEW_SECS`] of `now_secs`, and the
    /// signature equal to ours, compared in constant time.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_secs: u64,
    ) -> Result<(), SignatureError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(SignatureError::Missing);
        };
        let sent: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        if sent.abs_diff(now_secs) > MAX_SKEW_SECS {
            return Err(SignatureError::Stale);
        }
        let expected = self.sign(timestamp.trim(), body);
        if bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes())) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example in Slack's "Verifying requests from Slack" guide.
    #[test]
    fn slacks_published_example_verifies() {
        let secret = SigningSecret::parse("8f742231b10e8888abcd99yyyzzz85a5").unwrap();
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(secret.sign("1531420618", body), expected);
        assert_eq!(
            secret.verify(Some("1531420618"), Some(expected), body, 1_531_420_618 + 10),
            Ok(())
        );
    }

    #[test]
    fn stale_missing_and_wrong_signatures_are_refused() {
        let secret = SigningSecret::parse("0123456789abcdef0123").unwrap();
        let body = b"payload=%7B%7D";
        let now = 1_700_000_000;
        let good = secret.sign("1700000000", body);
        assert_eq!(
            secret.verify(Some("1700000000"), Some(&good), body, now),
            Ok(())
        );
        assert_eq!(
            secret.verify(Some("1700000000"), Some(&good), body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            secret.verify(Some("1700000000"), Some(&good), b"payload=other", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secret.verify(None, Some(&good), body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            secret.verify(Some("soon"), Some(&good), body, now),
            Err(SignatureError::BadTimestamp)
        );
        let other = SigningSecret::parse("another-secret-of-16+").unwrap();
        assert_eq!(
            other.verify(Some("1700000000"), Some(&good), body, now),
            Err(SignatureError::Mismatch)
        );
        assert!(!format!("{secret:?}").contains("0123"));
    }
}
