//! The Slack credentials an office configures: the bot token, the Socket Mode app token and the
//! signing secret. Each is a secret, so `Display` and `Debug` show it masked and only the code
//! that sends or checks a request reads the real value. How they are used is `slack/`'s.

use std::fmt;

/// A bot token (`xoxb-…`). Anyone holding it can post as the app, so `Display` and `Debug`
/// show only `xoxb-***`, and only the transport reads the real value.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

/// Why a `bot_token` value was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BotTokenError {
    #[error("is not a bot token: it must start with xoxb-")]
    Prefix,
    #[error("contains white space or control characters")]
    BadCharacters,
}

impl BotToken {
    pub fn parse(raw: &str) -> Result<BotToken, BotTokenError> {
        let raw = raw.trim();
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BotTokenError::BadCharacters);
        }
        if !raw.starts_with("xoxb-") || raw.len() <= "xoxb-".len() {
            return Err(BotTokenError::Prefix);
        }
        Ok(BotToken(raw.to_string()))
    }

    /// The real token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A shipped config's stand-in (`xoxb-REPLACE_ME`): the region queues but does not send.
    pub fn is_placeholder(&self) -> bool {
        self.0.contains("REPLACE_ME")
    }

    /// A short stable name for the token that does not reveal it: Slack's rate tiers are per
    /// app and workspace, so regions sharing a token share their budget under this key.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("xoxb-***")
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(xoxb-***)")
    }
}

/// An app-level token (`xapp-…`) for Socket Mode; shown as `xapp-***`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppToken(String);

impl AppToken {
    pub fn parse(raw: &str) -> Option<AppToken> {
        let raw = raw.trim();
        (raw.starts_with("xapp-")
            && raw.len() > "xapp-".len()
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| AppToken(raw.to_string()))
    }

    /// The real token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppToken(xapp-***)")
    }
}

/// The app's signing secret; shown as `***` in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl SigningSecret {
    /// A secret of at least 16 characters (Slack's are 32 hex digits).
    pub fn parse(raw: &str) -> Option<SigningSecret> {
        let raw = raw.trim();
        (raw.len() >= 16 && !raw.chars().any(char::is_whitespace))
            .then(|| SigningSecret(raw.to_string()))
    }

    /// The real secret, for computing a signature only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let t = BotToken::parse(" xoxb-123-456-SECRETPART ").unwrap();
        assert_eq!(t.expose(), "xoxb-123-456-SECRETPART");
        assert_eq!(t.to_string(), "xoxb-***");
        assert!(!format!("{t:?}").contains("SECRET"));
        assert!(!t.fingerprint().contains("SECRET"));
        assert_eq!(BotToken::parse("xoxp-1-2"), Err(BotTokenError::Prefix));
        assert_eq!(BotToken::parse("xoxb-"), Err(BotTokenError::Prefix));
        assert_eq!(
            BotToken::parse("xoxb-a b"),
            Err(BotTokenError::BadCharacters)
        );
        assert!(BotToken::parse("xoxb-REPLACE_ME").unwrap().is_placeholder());
    }
}
