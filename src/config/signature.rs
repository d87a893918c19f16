//! A source's required signature scheme and its secrets, as configured (`verify`,
//! `signing_secrets` or `signing_secrets_file`). Checking a request against them is `sources::signature`'s.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::raw::RawSource;
use super::ConfigError;

/// Which scheme a source requires, with its secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum InboundSignature {
    /// Standard Webhooks: the decoded keys.
    StandardWebhooks(Vec<Vec<u8>>),
    /// `X-Hub-Signature-256`: the secrets' bytes.
    HubSha256(Vec<Vec<u8>>),
}

impl fmt::Debug for InboundSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InboundSignature::StandardWebhooks(k) => {
                write!(f, "StandardWebhooks({} secrets, ***)", k.len())
            }
            InboundSignature::HubSha256(k) => write!(f, "HubSha256({} secrets, ***)", k.len()),
        }
    }
}

/// A Standard Webhooks secret: `whsec_` + base64 (the prefix may be left out).
pub fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.trim();
    let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
    BASE64.decode(b64).ok().filter(|k| !k.is_empty())
}

/// `verify` and its secrets (inline or one per line in a file; several allow rotation).
pub(super) fn inbound_signature(
    name: &str,
    s: &RawSource,
) -> Result<Option<InboundSignature>, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let secrets: Vec<String> = match (&s.signing_secrets, &s.signing_secrets_file) {
        (Some(list), None) => list.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                ConfigError::invalid(
                    &key("signing_secrets_file"),
                    path,
                    &format!("cannot be read ({e})"),
                    "a file readable by the hookrelay user only, one secret per line",
                )
            })?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        (None, None) => Vec::new(),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                &key("signing_secrets"),
                "(and signing_secrets_file)",
                "is set twice",
                "one of them",
            ))
        }
    };
    if s.kind == "rainforest" && (s.verify.is_some() || !secrets.is_empty()) {
        return Err(ConfigError::invalid(
            &key("verify"),
            s.verify.as_deref().unwrap_or("(signing_secrets)"),
            "is not available for rainforest, whose events arrive unsigned at /events",
            "a token = \"…\" on the source, or no verify",
        ));
    }
    let scheme = match s.verify.as_deref() {
        None if secrets.is_empty() => return Ok(None),
        None => {
            return Err(ConfigError::invalid(
                &key("signing_secrets"),
                "(hidden)",
                "needs verify = \"standard-webhooks\" or \"hub-signature-256\" to say how requests are signed",
                "verify = \"standard-webhooks\"",
            ))
        }
        Some(v) => v,
    };
    if secrets.is_empty() {
        return Err(ConfigError::invalid(
            &key("signing_secrets"),
            "(none)",
            "must hold at least one secret when verify is set",
            "[\"whsec_…\"]",
        ));
    }
    match scheme {
        "standard-webhooks" => {
            let keys = secrets
                .iter()
                .enumerate()
                .map(|(i, secret)| {
                    standard_key(secret).ok_or_else(|| {
                        ConfigError::invalid(
                            &key(&format!("signing_secrets[{i}]")),
                            "(hidden)",
                            "is not a Standard Webhooks secret (whsec_ + base64)",
                            "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(InboundSignature::StandardWebhooks(keys)))
        }
        "hub-signature-256" => Ok(Some(InboundSignature::HubSha256(
            secrets.into_iter().map(String::into_bytes).collect(),
        ))),
        other => Err(ConfigError::invalid(
            &key("verify"),
            other,
            "is not a known signature scheme",
            "\"standard-webhooks\" or \"hub-signature-256\"",
        )),
    }
}
