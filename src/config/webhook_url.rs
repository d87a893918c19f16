//! Where a region's messages go, as configured: a Slack incoming-webhook URL, or a local file for
//! trying the relay without a Slack account.
//!
//! The URL is a secret (anyone holding it can post), so this type never shows it whole: `Display`
//! and `Debug` both print the masked form, and only the transport reads the real value.

use std::fmt;
use std::path::PathBuf;

/// A validated delivery target.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookUrl {
    /// An `https://` (or, for local fakes and proxies, `http://`) URL that takes Slack payloads.
    Http(String),
    /// `file://PATH`: each payload is appended as one JSON line. A relative PATH is taken from the
    /// working directory, so `file://outbox/uk.jsonl` works from a checkout.
    File(PathBuf),
}

/// Why a `webhook_url` value was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookUrlError {
    #[error("must start with https://, http:// or file://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    #[error("has no file path after file://")]
    NoPath,
    #[error("contains white space or control characters")]
    BadCharacters,
}

impl WebhookUrl {
    pub fn parse(raw: &str) -> Result<WebhookUrl, WebhookUrlError> {
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(WebhookUrlError::BadCharacters);
        }
        if let Some(path) = raw.strip_prefix("file://") {
            if path.is_empty() {
                return Err(WebhookUrlError::NoPath);
            }
            return Ok(WebhookUrl::File(PathBuf::from(path)));
        }
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
            .ok_or(WebhookUrlError::Scheme)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() {
            return Err(WebhookUrlError::NoHost);
        }
        Ok(WebhookUrl::Http(raw.to_string()))
    }

    /// Whether this is a placeholder from a shipped config rather than a real webhook: Slack's
    /// documented example (`…/T00000000/B00000000/XXXXXXXX…`) or any URL containing `REPLACE_ME`.
    /// A placeholder region queues its messages but sends nothing until it is configured.
    pub fn is_placeholder(&self) -> bool {
        match self {
            WebhookUrl::Http(url) => {
                url.contains("/T00000000/B00000000/") || url.contains("REPLACE_ME")
            }
            WebhookUrl::File(_) => false,
        }
    }

    /// The host name (with port) of an HTTP target; `None` for files.
    pub fn host(&self) -> Option<&str> {
        match self {
            WebhookUrl::Http(url) => {
                let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
                rest.split(['/', '?', '#']).next()
            }
            WebhookUrl::File(_) => None,
        }
    }

    /// The value as configured (`https://…` or `file://…`), for storing a one-off target.
    pub fn original(&self) -> String {
        match self {
            WebhookUrl::Http(url) => url.clone(),
            WebhookUrl::File(path) => format!("file://{}", path.display()),
        }
    }

    /// The real URL, for the transport only.
    pub fn expose(&self) -> &str {
        match self {
            WebhookUrl::Http(url) => url,
            WebhookUrl::File(_) => "",
        }
    }

    /// Scheme, host and the first path segment; the secret part is replaced by `***`.
    /// `https://hooks.slack.com/services/T0/B0/XYZ` shows as `https://hooks.slack.com/services/***`.
    pub fn masked(&self) -> String {
        match self {
            WebhookUrl::File(path) => format!("file://{}", path.display()),
            WebhookUrl::Http(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
                let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (host, tail) = rest.split_at(host_end);
                // Keep the first path segment (`/services`) when there is a path; hide the rest.
                let first = tail
                    .strip_prefix('/')
                    .and_then(|p| p.split(['/', '?', '#']).next())
                    .filter(|seg| !seg.is_empty() && tail.len() > seg.len() + 1);
                match (first, tail.is_empty()) {
                    (Some(seg), _) => format!("{scheme}://{host}/{seg}/***"),
                    (None, true) => format!("{scheme}://{host}/"),
                    (None, false) => format!("{scheme}://{host}/***"),
                }
            }
        }
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";

    #[test]
    fn slack_urls_are_masked_in_display_and_debug() {
        let url = WebhookUrl::parse(SECRET).unwrap();
        assert_eq!(url.to_string(), "https://hooks.slack.com/services/***");
        assert!(!format!("{url:?}").contains("SECRET"));
        assert!(!format!("{url:?}").contains("T000"));
        assert_eq!(url.expose(), SECRET);
        assert_eq!(url.host(), Some("hooks.slack.com"));
    }

    #[test]
    fn a_short_path_is_masked_too() {
        let url = WebhookUrl::parse("http://127.0.0.1:9/token").unwrap();
        assert_eq!(url.masked(), "http://127.0.0.1:9/***");
    }

    #[test]
    fn file_targets_keep_their_path() {
        let url = WebhookUrl::parse("file://outbox/uk.jsonl").unwrap();
        assert_eq!(url, WebhookUrl::File(PathBuf::from("outbox/uk.jsonl")));
        assert_eq!(url.masked(), "file://outbox/uk.jsonl");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        assert_eq!(
            WebhookUrl::parse("hooks.slack.com/x"),
            Err(WebhookUrlError::Scheme)
        );
        assert_eq!(
            WebhookUrl::parse("https:///x"),
            Err(WebhookUrlError::NoHost)
        );
        assert_eq!(WebhookUrl::parse("file://"), Err(WebhookUrlError::NoPath));
        assert_eq!(
            WebhookUrl::parse("https://a b"),
            Err(WebhookUrlError::BadCharacters)
        );
    }

    #[test]
    fn slacks_example_url_is_a_placeholder_and_a_real_one_is_not() {
        let example =
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
        assert!(WebhookUrl::parse(example).unwrap().is_placeholder());
        assert!(
            WebhookUrl::parse("https://hooks.slack.com/services/REPLACE_ME")
                .unwrap()
                .is_placeholder()
        );
        assert!(!WebhookUrl::parse(SECRET).unwrap().is_placeholder());
    }

    #[test]
    fn a_query_or_fragment_is_masked_too() {
        for url in [
            "http://127.0.0.1:1?SECRET5",
            "https://h.example/#SECRET",
            "https://h.example/services?SECRET",
        ] {
            let masked = WebhookUrl::parse(url).unwrap().masked();
            assert!(!masked.contains("SECRET"), "{url} -> {masked}");
        }
        assert_eq!(
            WebhookUrl::parse("https://h.example").unwrap().masked(),
            "https://h.example/"
        );
    }
}
