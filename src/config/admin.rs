//! `[admin]`: the admin API's bearer tokens.

use super::ConfigError;

/// An admin token as configured: plain, or `sha256:<hex>` so the file need not hold the token.
#[derive(Clone, PartialEq)]
pub enum AdminToken {
    Plain(String),
    Sha256([u8; 32]),
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    pub fn parse(text: &str) -> Option<AdminToken> {
        match text.strip_prefix("sha256:") {
            Some(hex) => {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| {
                        hex.get(i..i + 2)
                            .and_then(|b| u8::from_str_radix(b, 16).ok())
                    })
                    .collect::<Option<_>>()?;
                Some(AdminToken::Sha256(bytes.try_into().ok()?))
            }
            None if text.len() >= 16 => Some(AdminToken::Plain(text.to_string())),
            None => None,
        }
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        match self {
            AdminToken::Plain(t) => bool::from(t.as_bytes().ct_eq(presented.as_bytes())),
            AdminToken::Sha256(h) => {
                let digest = Sha256::digest(presented.as_bytes());
                bool::from(h.as_slice().ct_eq(digest.as_slice()))
            }
        }
    }
}

/// `admin.tokens`, checked.
pub(super) fn admin_tokens(raw: &[String]) -> Result<Vec<AdminToken>, ConfigError> {
    let admin_tokens = raw
        .iter()
        .enumerate()
        .map(|(i, t)| {
            AdminToken::parse(t).ok_or_else(|| {
                ConfigError::invalid(
                    &format!("admin.tokens[{i}]"),
                    "(hidden)",
                    "is neither a token of 16+ characters nor sha256:<64 hex digits>",
                    "\"sha256:\" + the output of `printf %s TOKEN | sha256sum`",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(admin_tokens)
}
