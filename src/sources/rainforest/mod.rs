//! Rainforest QA integration events (seed 004). Pure: parse, validate, render; no HTTP, no store.
//!
//! Rainforest posts `{"event_name", "integrations", "payload"}` to `POST /events`; every `slack`
//! integration in the list carries the incoming-webhook URL to post to in `settings.url`. The URL
//! is a secret: errors name only its host, and [`WebhookUrl`] masks it in `Display`/`Debug`.
//! Only hosts the operator allowed are accepted, so the relay cannot be aimed at arbitrary servers.
//!
//! This file parses and validates a `POST /events` body into a [`RainforestEvent`]; `schema.rs`
//! holds the seed's lists (the event names, the integration's schema) and `message.rs` the Slack
//! message.

mod message;
mod schema;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::opportunity::kind_of;
use crate::config::WebhookUrl;
use crate::slack::escape::plain;
use message::id_of;
use schema::SLACK_KEY;

pub use message::render;
pub use schema::{integration, integrations, EventName};

/// Most Slack targets one event may fan out to; more is refused rather than silently dropped.
pub const MAX_TARGETS: usize = 20;
/// Longest run or test id used in an idempotency key (it becomes part of a store key).
const MAX_ID_CHARS: usize = 256;
/// Longest user value echoed back in an error message.
const ECHO_MAX: usize = 64;

/// Why `POST /events` was refused (the seed's 400 with `{"error", "type"}`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RainforestError {
    /// Malformed JSON, not an object, missing/unknown `event_name`, missing or empty
    /// `integrations`, `payload` not an object or without its documented keys.
    #[error("{0}")]
    InvalidRequest(String),
    /// An integration key other than `slack`.
    #[error("{0}")]
    UnsupportedIntegration(String),
    /// Missing or invalid settings: no `url`, not a URL, not https, host not allowed.
    #[error("{0}")]
    MisconfiguredIntegration(String),
}

impl RainforestError {
    /// The seed's `type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            RainforestError::InvalidRequest(_) => "invalid_request",
            RainforestError::UnsupportedIntegration(_) => "unsupported_integration",
            RainforestError::MisconfiguredIntegration(_) => "misconfigured_integration",
        }
    }
}

use RainforestError::{InvalidRequest, MisconfiguredIntegration, UnsupportedIntegration};

/// A validated event: where to post and what.
#[derive(Debug, Clone, PartialEq)]
pub struct RainforestEvent {
    pub event_name: EventName,
    /// The `payload` object as sent (validated to contain its documented keys).
    pub payload: Value,
    /// One Slack incoming-webhook URL per `slack` integration in the request (at least one;
    /// a URL listed twice is kept once).
    pub targets: Vec<WebhookUrl>,
}

impl RainforestEvent {
    /// Validates a `POST /events` body.
    ///
    /// `allowed_hosts`: exact host names (case-insensitive, port ignored unless the entry has one)
    /// a webhook URL may point at, e.g. `["hooks.slack.com"]`. An empty list allows nothing.
    /// URLs must be `https://`; `http://` is accepted only for `localhost`/`127.0.0.1` when that
    /// host is allowed (a local fake Slack in tests).
    pub fn parse(
        body: &[u8],
        allowed_hosts: &[String],
    ) -> Result<RainforestEvent, RainforestError> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| InvalidRequest(format!("the body is not valid JSON: {e}")))?;
        let obj = doc.as_object().ok_or_else(|| {
            InvalidRequest(format!(
                "the body must be a JSON object, not {}",
                kind_of(&doc)
            ))
        })?;

        let event_name = match obj.get("event_name") {
            None | Some(Value::Null) => {
                return Err(InvalidRequest("field `event_name` is required".into()))
            }
            Some(Value::String(s)) => EventName::parse(s).ok_or_else(|| {
                InvalidRequest(format!(
                    "unknown event_name `{}`; expected one of {}",
                    plain(s, ECHO_MAX),
                    EventName::ALL.map(|e| e.as_str()).join(", ")
                ))
            })?,
            Some(other) => {
                return Err(InvalidRequest(format!(
                    "field `event_name` must be a string, not {}",
                    kind_of(other)
                )))
            }
        };

        let integrations = match obj.get("integrations") {
            None | Some(Value::Null) => {
                return Err(InvalidRequest("field `integrations` is required".into()))
            }
            Some(Value::Array(list)) if list.is_empty() => {
                return Err(InvalidRequest(
                    "field `integrations` must list at least one integration".into(),
                ))
            }
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(InvalidRequest(format!(
                    "field `integrations` must be a list, not {}",
                    kind_of(other)
                )))
            }
        };

        let payload = validate_payload(event_name, obj.get("payload"))?;

        let mut targets: Vec<WebhookUrl> = Vec::new();
        for (i, item) in integrations.iter().enumerate() {
            let url = slack_target(i, item, allowed_hosts)?;
            if targets.iter().any(|t| t.expose() == url.expose()) {
                continue;
            }
            if targets.len() == MAX_TARGETS {
                return Err(InvalidRequest(format!(
                    "at most {MAX_TARGETS} distinct Slack integrations per event"
                )));
            }
            targets.push(url);
        }

        Ok(RainforestEvent {
            event_name,
            payload,
            targets,
        })
    }

    /// Idempotency key: event name + run id (+ failed_test id for run_test_failure), or `None`
    /// when the payload has no usable run id (or, for run_test_failure, no test id). Ids are
    /// percent-escaped (`%`, `:`) so the `:`-joined parts cannot be confused.
    pub fn dedupe_key(&self) -> Option<String> {
        let run_id = self.payload.get("run").and_then(id_of)?;
        let mut key = format!("{}:{}", self.event_name.as_str(), key_part(&run_id)?);
        if self.event_name == EventName::RunTestFailure {
            let test_id = self.payload.get("failed_test").and_then(id_of)?;
            key.push(':');
            key.push_str(&key_part(&test_id)?);
        }
        Some(key)
    }
}

fn key_part(id: &str) -> Option<String> {
    if id.chars().count() > MAX_ID_CHARS {
        return None;
    }
    Some(id.replace('%', "%25").replace(':', "%3A"))
}

fn validate_payload(event: EventName, payload: Option<&Value>) -> Result<Value, RainforestError> {
    let obj = match payload {
        None | Some(Value::Null) => {
            return Err(InvalidRequest("field `payload` is required".into()))
        }
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(InvalidRequest(format!(
                "field `payload` must be an object, not {}",
                kind_of(other)
            )))
        }
    };
    let name = event.as_str();
    for key in event.required_keys() {
        if !obj.contains_key(*key) {
            return Err(InvalidRequest(format!(
                "the payload of `{name}` must have key `{key}`"
            )));
        }
    }
    let wrong = |key: &str, want: &str, got: &Value| {
        InvalidRequest(format!(
            "payload key `{key}` of `{name}` must be {want}, not {}",
            kind_of(got)
        ))
    };
    match &obj["run"] {
        Value::Object(_) => {}
        other => return Err(wrong("run", "an object", other)),
    }
    match obj.get("failed_test") {
        Some(Value::Object(_)) | None => {}
        Some(other) if event == EventName::RunTestFailure => {
            return Err(wrong("failed_test", "an object", other))
        }
        Some(_) => {}
    }
    match obj.get("failed_tests") {
        Some(Value::Array(_)) | Some(Value::Null) | None => {}
        Some(other) if event == EventName::RunCompletion => {
            return Err(wrong("failed_tests", "a list", other))
        }
        Some(_) => {}
    }
    Ok(Value::Object(obj.clone()))
}

/// Validates one entry of `integrations` and returns its webhook URL.
fn slack_target(i: usize, item: &Value, allowed: &[String]) -> Result<WebhookUrl, RainforestError> {
    let obj = item.as_object().ok_or_else(|| {
        InvalidRequest(format!(
            "integrations[{i}] must be an object, not {}",
            kind_of(item)
        ))
    })?;
    let key = match obj.get("key") {
        Some(Value::String(k)) => k,
        None | Some(Value::Null) => {
            return Err(InvalidRequest(format!(
                "integrations[{i}] must have a `key`"
            )))
        }
        Some(other) => {
            return Err(InvalidRequest(format!(
                "integrations[{i}].key must be a string, not {}",
                kind_of(other)
            )))
        }
    };
    if key != SLACK_KEY {
        return Err(UnsupportedIntegration(format!(
            "integration `{}` is not supported; supported: {SLACK_KEY}",
            plain(key, ECHO_MAX)
        )));
    }
    let at = format!("integrations[{i}] ({SLACK_KEY})");
    let settings = match obj.get("settings") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => {
            return Err(MisconfiguredIntegration(format!(
                "{at} has no `settings`; setting `url` is required"
            )))
        }
        Some(other) => {
            return Err(MisconfiguredIntegration(format!(
                "{at}: `settings` must be an object, not {}",
                kind_of(other)
            )))
        }
    };
    let raw = match settings.get("url") {
        Some(Value::String(s)) if !s.is_empty() => s,
        None | Some(Value::Null) => {
            return Err(MisconfiguredIntegration(format!(
                "{at}: setting `url` is required"
            )))
        }
        Some(Value::String(_)) => {
            return Err(MisconfiguredIntegration(format!(
                "{at}: setting `url` must not be empty"
            )))
        }
        Some(other) => {
            return Err(MisconfiguredIntegration(format!(
                "{at}: setting `url` must be a string, not {}",
                kind_of(other)
            )))
        }
    };
    check_url(raw, allowed)
        .map_err(|why| MisconfiguredIntegration(format!("{at}: setting `url` {why}")))
}

/// Checks a webhook URL against the allowed hosts. The reason returned never contains the URL's
/// path or user info, only its host.
fn check_url(raw: &str, allowed: &[String]) -> Result<WebhookUrl, String> {
    let url = WebhookUrl::parse(raw).map_err(|e| format!("is not a valid webhook URL: it {e}"))?;
    if !matches!(url, WebhookUrl::Http(_)) {
        return Err("must be an https:// URL".into());
    }
    let host = url.host().unwrap_or("");
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let clean_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let clean_port = match port {
        None => true,
        Some(p) => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
    };
    if !clean_name || !clean_port {
        // User info (`user:secret@host`) may be part of the secret: show what follows the last `@`.
        let shown = host.rsplit('@').next().unwrap_or("");
        return Err(format!("has an invalid host `{}`", plain(shown, ECHO_MAX)));
    }
    let allowed_host = allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host));
    if !allowed_host {
        return Err(format!("points at host `{host}`, which is not allowed"));
    }
    if raw.starts_with("http://") {
        let local = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1";
        if !local {
            return Err(format!("must use https:// (host `{host}`)"));
        }
    }
    Ok(url)
}
