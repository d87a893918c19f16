//! `[slack]`: the Web API's address and the app's interactivity: the signing secret that
//! proves a request to `/slack/interactions` came from Slack, and the app-level token for
//! Socket Mode (no inbound port needed).

use std::path::Path;

use super::raw::RawSlack;
use super::tokens::{AppToken, SigningSecret};
use super::ConfigError;

/// `[slack]`, validated.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// Base URL of Slack's Web API, ending in `/` (the method name is appended); tests point
    /// it at a local fake.
    pub api_url: String,
    /// Verifies `POST /slack/interactions`; without it that route answers 404.
    pub signing_secret: Option<SigningSecret>,
    /// Socket Mode's app-level token; with it the relay opens an outbound WebSocket to Slack.
    pub app_token: Option<AppToken>,
    /// Hosts an interaction's `response_url` may point at: the relay posts there.
    pub response_url_hosts: Vec<String>,
}

impl SlackSettings {
    /// Whether Slack can reach the relay with button clicks at all.
    pub fn interactive(&self) -> bool {
        self.signing_secret.is_some() || self.app_token.is_some()
    }
}

pub fn slack_settings(raw: &RawSlack) -> Result<SlackSettings, ConfigError> {
    let signing_secret = match secret(
        "slack.signing_secret",
        &raw.signing_secret,
        &raw.signing_secret_file,
    )? {
        None => None,
        Some((key, text)) => Some(SigningSecret::parse(&text).ok_or_else(|| {
            ConfigError::invalid(
                &key,
                "(hidden)",
                "is not a signing secret (16+ characters, from the app's Basic Information page)",
                "signing_secret_file = \"/etc/hookrelay/slack-signing-secret\"",
            )
        })?),
    };
    let app_token = match secret("slack.app_token", &raw.app_token, &raw.app_token_file)? {
        None => None,
        Some((key, text)) => Some(AppToken::parse(&text).ok_or_else(|| {
            ConfigError::invalid(
                &key,
                "(hidden)",
                "is not an app-level token: it must start with xapp-",
                "app_token_file = \"/etc/hookrelay/slack-app-token\" holding xapp-… (scope connections:write)",
            )
        })?),
    };
    let response_url_hosts: Vec<String> = raw
        .response_url_hosts
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    if response_url_hosts.iter().any(|h| h.is_empty()) {
        return Err(ConfigError::invalid(
            "slack.response_url_hosts",
            "\"\"",
            "contains an empty host",
            "[\"hooks.slack.com\"]",
        ));
    }
    Ok(SlackSettings {
        api_url: api_url(&raw.api_url)?,
        signing_secret,
        app_token,
        response_url_hosts,
    })
}

/// A secret given inline or in a file (not both): (the key it came from, its text).
pub fn secret(
    key: &str,
    inline: &Option<String>,
    file: &Option<String>,
) -> Result<Option<(String, String)>, ConfigError> {
    match (inline, file) {
        (None, None) => Ok(None),
        (Some(text), None) => Ok(Some((key.to_string(), text.clone()))),
        (None, Some(path)) => {
            let file_key = format!("{key}_file");
            let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                ConfigError::invalid(
                    &file_key,
                    path,
                    &format!("cannot be read ({e})"),
                    "a file readable by the hookrelay user only, holding the secret",
                )
            })?;
            Ok(Some((file_key, text.trim().to_string())))
        }
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key,
            "(and its _file)",
            "is set twice, inline and in a file",
            "one of them",
        )),
    }
}

/// `slack.api_url`, checked and ending in `/`.
fn api_url(raw: &str) -> Result<String, ConfigError> {
    let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
        && !raw.chars().any(char::is_whitespace);
    if !ok {
        return Err(ConfigError::invalid(
            "slack.api_url",
            raw,
            "is not an http(s) URL",
            "\"https://slack.com/api/\"",
        ));
    }
    Ok(if raw.ends_with('/') {
        raw.to_string()
    } else {
        format!("{raw}/")
    })
}
