//! Tray commerce notifications (seed 003). Pure: parse, validate, render; no HTTP, no store.
//!
//! Tray POSTs four parameters (`seller_id`, `scope_id`, `scope_name`, `act`) plus `app_code` and
//! `url_notification`, form-encoded, whenever a record in an enabled scope is inserted, updated or
//! deleted. It retries until it gets a 200, and recommends storing notifications and grouping
//! identical ones before acting: [`TrayNotification::coalesce_key`] is that grouping identity and
//! [`render`] says how many identical notifications one message stands for.
//!
//! This file parses and validates a request body into a [`TrayNotification`]; `lists.rs` holds
//! Tray's scope names and actions and `message.rs` the Slack message.

mod lists;
mod message;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::opportunity::kind_of;

pub use lists::{Act, ScopeName};
pub use message::render;

/// Longest `seller_id`, `scope_id` or `app_code` kept: Tray's are short numbers, and the ids are
/// part of a store key.
const MAX_ID_CHARS: usize = 256;
/// Longest `url_notification` kept (it is only echoed back by Tray, never shown or followed).
const MAX_URL_CHARS: usize = 2048;

/// A validated Tray notification. Ids are trimmed; optional fields are `None` when absent,
/// `null` or blank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrayNotification {
    /// The store ("Código do vendedor"); Tray sends a number, kept as the digits it sent.
    pub seller_id: String,
    /// The id of the record in `scope_name` (order id, product id, ...), kept as sent.
    pub scope_id: String,
    pub scope_name: ScopeName,
    pub act: Act,
    /// The Tray application the notification is for.
    #[serde(default)]
    pub app_code: Option<String>,
    /// The notification URL registered with Tray, echoed back; never followed.
    #[serde(default)]
    pub url_notification: Option<String>,
}

/// Why a request body is not a Tray notification.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrayError {
    /// A required field is missing or empty, or the body cannot be decoded (answered with 400).
    #[error("{0}")]
    BadRequest(String),
    /// `scope_name` or `act` is not in Tray's documented lists (answered with 400).
    #[error("{0}")]
    Unsupported(String),
    /// The Content-Type is neither form nor JSON (answered with 415).
    #[error("{0}")]
    MediaType(String),
}

/// The body formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
}

impl TrayNotification {
    /// Parses a request body. `content_type` is the request's Content-Type header value (may be
    /// empty). Accepts `application/x-www-form-urlencoded` (Tray's real format) and
    /// `application/json` (same fields as an object; ids may be numbers or strings). Matching is
    /// on the essence before `;`, case-insensitive. An empty content type is sniffed: a body
    /// starting with `{` or `[` is JSON, anything else form.
    pub fn parse(body: &[u8], content_type: &str) -> Result<TrayNotification, TrayError> {
        let fields = match format_of(content_type, body)? {
            Format::Form => form_fields(body)?,
            Format::Json => json_fields(body)?,
        };
        fields.validate()
    }

    /// The identity used to coalesce identical notifications: seller, scope name, scope id and
    /// act, as `seller/scope_name/scope_id/act` (e.g. `391250/order/4375797/update`). The ids are
    /// form-encoded (`/`, `%`, spaces, non-ASCII... escaped) so distinct notifications never share
    /// a key; the key holds no `\0`. It does not include the source name.
    pub fn coalesce_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            encode_key_part(&self.seller_id),
            self.scope_name.as_str(),
            encode_key_part(&self.scope_id),
            self.act.as_str()
        )
    }
}

fn encode_key_part(part: &str) -> String {
    form_urlencoded::byte_serialize(part.as_bytes()).collect()
}

fn format_of(content_type: &str, body: &[u8]) -> Result<Format, TrayError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(Format::Form),
        "application/json" => Ok(Format::Json),
        "" if looks_like_json(body) => Ok(Format::Json),
        "" => Ok(Format::Form),
        other => Err(TrayError::MediaType(format!(
            "unsupported Content-Type `{}`: send application/x-www-form-urlencoded or application/json",
            other.escape_default()
        ))),
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// The fields read from a body, before validation. `Some("")` is kept so blank and missing can
/// be told apart in messages.
#[derive(Default)]
struct RawFields {
    seller_id: Option<String>,
    scope_id: Option<String>,
    scope_name: Option<String>,
    act: Option<String>,
    app_code: Option<String>,
    url_notification: Option<String>,
}

impl RawFields {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "seller_id" => Some(&mut self.seller_id),
            "scope_id" => Some(&mut self.scope_id),
            "scope_name" => Some(&mut self.scope_name),
            "act" => Some(&mut self.act),
            "app_code" => Some(&mut self.app_code),
            "url_notification" => Some(&mut self.url_notification),
            _ => None,
        }
    }

    fn validate(self) -> Result<TrayNotification, TrayError> {
        let seller_id = required("seller_id", self.seller_id)?;
        check_len("seller_id", &seller_id, MAX_ID_CHARS)?;
        let scope_id = required("scope_id", self.scope_id)?;
        check_len("scope_id", &scope_id, MAX_ID_CHARS)?;
        let scope_name_text = required("scope_name", self.scope_name)?;
        let act_text = required("act", self.act)?;
        let scope_name = ScopeName::parse(&scope_name_text).ok_or_else(|| {
            unsupported(
                "scope_name",
                &scope_name_text,
                ScopeName::ALL.map(ScopeName::as_str),
            )
        })?;
        let act = Act::parse(&act_text)
            .ok_or_else(|| unsupported("act", &act_text, Act::ALL.map(Act::as_str)))?;
        let app_code = optional(self.app_code);
        if let Some(code) = &app_code {
            check_len("app_code", code, MAX_ID_CHARS)?;
        }
        let url_notification = optional(self.url_notification);
        if let Some(url) = &url_notification {
            check_len("url_notification", url, MAX_URL_CHARS)?;
        }
        Ok(TrayNotification {
            seller_id,
            scope_id,
            scope_name,
            act,
            app_code,
            url_notification,
        })
    }
}

fn required(field: &str, value: Option<String>) -> Result<String, TrayError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Some(_) => Err(TrayError::BadRequest(format!(
            "field `{field}` must not be empty"
        ))),
        None => Err(TrayError::BadRequest(format!(
            "field `{field}` is required"
        ))),
    }
}

fn optional(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), TrayError> {
    if value.chars().count() > max {
        return Err(TrayError::BadRequest(format!(
            "field `{field}` is longer than {max} characters"
        )));
    }
    Ok(())
}

fn unsupported<const N: usize>(field: &str, value: &str, allowed: [&str; N]) -> TrayError {
    let shown: String = value.chars().take(64).collect();
    let cut = if shown.len() < value.len() { "…" } else { "" };
    TrayError::Unsupported(format!(
        "unsupported {field} `{}{cut}`: expected one of {}",
        shown.escape_default(),
        allowed.join(", ")
    ))
}

fn form_fields(body: &[u8]) -> Result<RawFields, TrayError> {
    if std::str::from_utf8(body).is_err() {
        return Err(TrayError::BadRequest(
            "form body is not valid UTF-8".to_string(),
        ));
    }
    if looks_like_json(body) {
        return Err(TrayError::BadRequest(
            "body looks like JSON but Content-Type says application/x-www-form-urlencoded"
                .to_string(),
        ));
    }
    let mut fields = RawFields::default();
    for (key, value) in form_urlencoded::parse(body) {
        if let Some(slot) = fields.slot(&key) {
            if slot.is_some() {
                continue; // a repeated field: the first one wins
            }
            if value.contains(char::REPLACEMENT_CHARACTER) {
                return Err(TrayError::BadRequest(format!(
                    "field `{key}` is not valid UTF-8 once percent-decoded"
                )));
            }
            *slot = Some(value.into_owned());
        }
    }
    Ok(fields)
}

fn json_fields(body: &[u8]) -> Result<RawFields, TrayError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| TrayError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let obj = doc.as_object().ok_or_else(|| {
        TrayError::BadRequest(format!(
            "a Tray notification must be a JSON object, not {}",
            kind_of(&doc)
        ))
    })?;
    Ok(RawFields {
        seller_id: json_id(obj, "seller_id")?,
        scope_id: json_id(obj, "scope_id")?,
        scope_name: json_string(obj, "scope_name")?,
        act: json_string(obj, "act")?,
        app_code: json_id(obj, "app_code")?,
        url_notification: json_string(obj, "url_notification")?,
    })
}

/// A string, or an integer kept as its digits (Tray's example sends `"seller_id"=>391250`).
fn json_id(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, TrayError> {
    match obj.get(field) {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::Number(_)) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string or an integer, not a fractional number"
        ))),
        Some(Value::String(_)) | Some(Value::Null) | None => json_string(obj, field),
        Some(other) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string or an integer, not {}",
            kind_of(other)
        ))),
    }
}

fn json_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, TrayError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string, not {}",
            kind_of(other)
        ))),
    }
}
