//! Rainforest QA integration events (seed 004). Pure: parse, validate, render; no HTTP, no store.
//!
//! Rainforest posts `{"event_name", "integrations", "payload"}` to `POST /events`; every `slack`
//! integration in the list carries the incoming-webhook URL to post to in `settings.url`. The URL
//! is a secret: errors name only its host, and [`WebhookUrl`] masks it in `Display`/`Debug`.
//! Only hosts the operator allowed are accepted, so the relay cannot be aimed at arbitrary servers.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::opportunity::kind_of;
use crate::slack::escape::{mrkdwn, plain};
use crate::slack::target::WebhookUrl;

/// The only integration this service offers.
const SLACK_KEY: &str = "slack";
/// Most Slack targets one event may fan out to; more is refused rather than silently dropped.
pub const MAX_TARGETS: usize = 20;
/// Longest run or test id used in an idempotency key (it becomes part of a store key).
const MAX_ID_CHARS: usize = 256;
/// Longest user value echoed back in an error message.
const ECHO_MAX: usize = 64;

/// Slack's limit for a header's plain text.
const HEADER_MAX: usize = 150;
/// Slack's limit for a section's text.
const SECTION_MAX: usize = 3000;
/// Room kept in every failed-test section for the "…and N more" line.
const MORE_RESERVE: usize = 40;
/// Sections used for the failed-test list at most (the rest is counted, not shown).
const LIST_SECTIONS_MAX: usize = 4;
/// Failed tests listed at most; a longer list is counted ("…and N more"), keeping the card
/// readable.
const LISTED_TESTS_MAX: usize = 50;
/// A run's description is cut here: the message is a notification, not a report.
const DESCRIPTION_MAX: usize = 1000;
/// An error text is cut here.
const ERROR_MAX: usize = 1500;
/// A field value (result, state) is cut here; Slack allows 2,000 per field.
const FIELD_VALUE_MAX: usize = 300;
/// A failed test's title in the list.
const TITLE_MAX: usize = 200;
/// An id as shown in a message.
const ID_SHOWN_MAX: usize = 60;
/// The `text` fallback: one line in a notification.
const FALLBACK_MAX: usize = 300;
/// Links longer than this, or with characters that would break `<url|label>`, are not linked.
const LINK_MAX: usize = 2000;

/// The events the seed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    RunCompletion,
    RunError,
    RunWebhookTimeout,
    RunTestFailure,
}

impl EventName {
    pub const ALL: [EventName; 4] = [
        EventName::RunCompletion,
        EventName::RunError,
        EventName::RunWebhookTimeout,
        EventName::RunTestFailure,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventName::RunCompletion => "run_completion",
            EventName::RunError => "run_error",
            EventName::RunWebhookTimeout => "run_webhook_timeout",
            EventName::RunTestFailure => "run_test_failure",
        }
    }

    pub fn parse(text: &str) -> Option<EventName> {
        EventName::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Payload keys the seed documents: run_completion: run, failed_tests; run_error: run;
    /// run_webhook_timeout: run; run_test_failure: run, failed_test.
    pub fn required_keys(&self) -> &'static [&'static str] {
        match self {
            EventName::RunCompletion => &["run", "failed_tests"],
            EventName::RunError | EventName::RunWebhookTimeout => &["run"],
            EventName::RunTestFailure => &["run", "failed_test"],
        }
    }
}

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

/// The Slack payload for an event (used at send time; takes the stored event name and payload).
/// Reads the payload tolerantly: absent fields are left out of the message.
pub fn render(event_name: EventName, payload: &Value) -> Value {
    let empty = Map::new();
    let run = payload
        .get("run")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let run_id = id_in(run);
    let run_label = match &run_id {
        Some(id) => format!("Run #{id}"),
        None => "Run".to_string(),
    };
    let run_ref = match &run_id {
        Some(id) => format!("run #{id}"),
        None => "a run".to_string(),
    };
    let description = text_in(run, &["description", "title"]);
    let result = text_in(run, &["result"]);
    let state = text_in(run, &["state"]);
    let link = link_in(run, "Open run in Rainforest");

    let header = match event_name {
        EventName::RunCompletion => {
            let outcome = match result.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("passed") => "passed".to_string(),
                Some("failed") => "failed".to_string(),
                Some(_) => format!("finished ({})", result.as_deref().unwrap_or_default()),
                None => "completed".to_string(),
            };
            format!("{run_label} {outcome}")
        }
        EventName::RunError => format!("{run_label} errored"),
        EventName::RunWebhookTimeout => format!("{run_label} timed out waiting for a webhook"),
        EventName::RunTestFailure => format!("Test failed in {run_ref}"),
    };
    let mut summary = header.clone();
    let mut blocks: Vec<Value> = Vec::new();
    blocks.push(json!({
        "type": "header",
        "text": {"type": "plain_text", "text": plain(&header, HEADER_MAX), "emoji": true}
    }));

    if event_name == EventName::RunTestFailure {
        let test = payload
            .get("failed_test")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let title = text_in(test, &["title", "name"]);
        let test_id = id_in(test);
        let mut text = match (&title, &test_id) {
            (Some(t), Some(id)) => format!(
                "*{}*\nTest #{}",
                mrkdwn(t, TITLE_MAX),
                mrkdwn(id, ID_SHOWN_MAX)
            ),
            (Some(t), None) => format!("*{}*", mrkdwn(t, TITLE_MAX)),
            (None, Some(id)) => format!("*Test #{}*", mrkdwn(id, ID_SHOWN_MAX)),
            (None, None) => "*Unnamed test*".to_string(),
        };
        if let Some(l) = link_in(test, "Open test") {
            text.push('\n');
            text.push_str(&l);
        }
        blocks.push(section(text));
        match (&title, &test_id) {
            (Some(t), _) => summary.push_str(&format!(": {t}")),
            (None, Some(id)) => summary.push_str(&format!(": test #{id}")),
            (None, None) => {}
        }
    }

    if let Some(d) = &description {
        let prefix = if event_name == EventName::RunTestFailure {
            "*Run:* "
        } else {
            ""
        };
        blocks.push(section(format!("{prefix}{}", mrkdwn(d, DESCRIPTION_MAX))));
        if event_name != EventName::RunTestFailure {
            summary.push_str(&format!(": {d}"));
        }
    }

    let mut fields = Vec::new();
    if let Some(r) = &result {
        fields.push(field("Result", r));
    }
    if let Some(s) = &state {
        fields.push(field("State", s));
    }
    let failed_tests: &[Value] = payload
        .get("failed_tests")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if event_name == EventName::RunCompletion {
        fields.push(field("Failed tests", &failed_tests.len().to_string()));
        if !failed_tests.is_empty() {
            summary.push_str(&format!(" ({} failed tests)", failed_tests.len()));
        }
    }
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }

    if event_name == EventName::RunError {
        if let Some(e) = run
            .get("error")
            .or_else(|| run.get("error_message"))
            .and_then(error_text)
        {
            blocks.push(section(format!("*Error*\n{}", mrkdwn(&e, ERROR_MAX))));
        }
    }

    if event_name == EventName::RunCompletion && !failed_tests.is_empty() {
        for text in failed_test_sections(failed_tests) {
            blocks.push(section(text));
        }
    }

    if let Some(l) = link {
        blocks.push(section(l));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("Rainforest QA · `{}`", event_name.as_str())}]
    }));

    json!({"text": mrkdwn(&summary, FALLBACK_MAX), "blocks": blocks})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", mrkdwn(value, FIELD_VALUE_MAX))})
}

/// The first [`LISTED_TESTS_MAX`] failed tests as bulleted lines packed into at most
/// [`LIST_SECTIONS_MAX`] sections of at most [`SECTION_MAX`] characters; the rest is counted as
/// "…and N more".
fn failed_test_sections(tests: &[Value]) -> Vec<String> {
    let capacity = SECTION_MAX - MORE_RESERVE;
    let first = format!("*Failed tests ({})*", tests.len());
    let mut sections = vec![(first.chars().count(), first)];
    let mut placed = 0usize;
    for test in tests.iter().take(LISTED_TESTS_MAX) {
        let line = test_line(test);
        let len = line.chars().count();
        let Some((used, text)) = sections.last_mut() else {
            break;
        };
        if *used + 1 + len <= capacity {
            text.push('\n');
            text.push_str(&line);
            *used += 1 + len;
        } else if sections.len() < LIST_SECTIONS_MAX {
            sections.push((len, line));
        } else {
            break;
        }
        placed += 1;
    }
    let mut out: Vec<String> = sections.into_iter().map(|(_, t)| t).collect();
    if placed < tests.len() {
        if let Some(last) = out.last_mut() {
            last.push_str(&format!("\n…and {} more", tests.len() - placed));
        }
    }
    out
}

/// `• Title (#id)`, escaped and cut; a test given as a bare string or number is tolerated.
fn test_line(test: &Value) -> String {
    let (title, id) = match test {
        Value::Object(o) => (text_in(o, &["title", "name"]), id_in(o)),
        other => (scalar_text(other), None),
    };
    match (title, id) {
        (Some(t), Some(id)) => format!(
            "• {} (#{})",
            mrkdwn(&t, TITLE_MAX),
            mrkdwn(&id, ID_SHOWN_MAX)
        ),
        (Some(t), None) => format!("• {}", mrkdwn(&t, TITLE_MAX)),
        (None, Some(id)) => format!("• Test #{}", mrkdwn(&id, ID_SHOWN_MAX)),
        (None, None) => "• (unnamed test)".to_string(),
    }
}

/// A string (non-blank), number or boolean as text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first of `keys` that holds a scalar.
fn text_in(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| obj.get(*k).and_then(scalar_text))
}

fn id_in(obj: &Map<String, Value>) -> Option<String> {
    match obj.get("id")? {
        v @ (Value::String(_) | Value::Number(_)) => scalar_text(v),
        _ => None,
    }
}

fn id_of(v: &Value) -> Option<String> {
    v.as_object().and_then(id_in)
}

/// `run.error` / `run.error_message` as text: a string, an object's `message`, or compact JSON.
fn error_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Object(o) => text_in(o, &["message", "error"]).or_else(|| Some(v.to_string())),
        Value::Array(_) => Some(v.to_string()),
        other => scalar_text(other),
    }
}

/// A mrkdwn link to the object's `frontend_url` (or `url`), only when it is a plain http(s) URL
/// that cannot break out of `<url|label>`.
fn link_in(obj: &Map<String, Value>, label: &str) -> Option<String> {
    let url = ["frontend_url", "url"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))?;
    let safe = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= LINK_MAX
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '|'));
    safe.then(|| format!("<{}|{label}>", url.replace('&', "&amp;")))
}

/// The schema of the one supported integration.
fn slack_schema() -> Value {
    json!({
        "key": SLACK_KEY,
        "title": "Slack",
        "settings": [{"key": "url", "title": "Slack incoming webhook URL", "required": true}]
    })
}

/// GET /integrations body: a JSON list with the one supported schema.
pub fn integrations() -> Value {
    json!([slack_schema()])
}

/// GET /integrations/{key} body, None for unknown keys.
pub fn integration(key: &str) -> Option<Value> {
    (key == SLACK_KEY).then(slack_schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_URL: &str = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";

    fn allowed() -> Vec<String> {
        vec!["hooks.slack.com".to_string()]
    }

    fn request(event: &str, payload: Value) -> Vec<u8> {
        json!({
            "event_name": event,
            "integrations": [{"key": "slack", "settings": {"url": SECRET_URL}}],
            "payload": payload
        })
        .to_string()
        .into_bytes()
    }

    fn with_integrations(integrations: Value) -> Vec<u8> {
        json!({
            "event_name": "run_error",
            "integrations": integrations,
            "payload": {"run": {"id": 1}}
        })
        .to_string()
        .into_bytes()
    }

    fn run() -> Value {
        json!({
            "id": 123, "description": "Nightly checkout suite", "result": "failed",
            "state": "complete", "frontend_url": "https://app.rainforestqa.com/runs/123?a=1&b=2"
        })
    }

    fn header(msg: &Value) -> &str {
        msg["blocks"][0]["text"]["text"].as_str().unwrap()
    }

    /// Every text a block holds (section text, fields, context elements).
    fn block_texts(msg: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for b in msg["blocks"].as_array().unwrap() {
            if let Some(t) = b["text"]["text"].as_str() {
                out.push(t.to_string());
            }
            for key in ["fields", "elements"] {
                if let Some(list) = b[key].as_array() {
                    out.extend(
                        list.iter()
                            .filter_map(|f| f["text"].as_str().map(String::from)),
                    );
                }
            }
        }
        out
    }

    fn assert_within_limits(msg: &Value) {
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{} blocks", blocks.len());
        assert!(header(msg).chars().count() <= 150);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                let n = t.chars().count();
                assert!((1..=3000).contains(&n), "block text of {n} chars");
            }
            if let Some(f) = b["fields"].as_array() {
                assert!(f.len() <= 10);
                for x in f {
                    assert!(x["text"].as_str().unwrap().chars().count() <= 2000);
                }
            }
        }
        let text = msg["text"].as_str().unwrap();
        assert!(!text.is_empty() && text.chars().count() <= FALLBACK_MAX);
    }

    fn err(body: &[u8]) -> RainforestError {
        RainforestEvent::parse(body, &allowed()).unwrap_err()
    }

    #[test]
    fn run_completion_parses_and_lists_failed_tests() {
        let failed = json!([{"id": 7, "title": "Log in"}, {"id": 8, "title": "Check out"}]);
        let body = request(
            "run_completion",
            json!({"run": run(), "failed_tests": failed}),
        );
        let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
        assert_eq!(ev.event_name, EventName::RunCompletion);
        assert_eq!(ev.targets.len(), 1);
        assert_eq!(ev.targets[0].expose(), SECRET_URL);
        assert_eq!(ev.dedupe_key().as_deref(), Some("run_completion:123"));

        let msg = render(ev.event_name, &ev.payload);
        assert_eq!(header(&msg), "Run #123 failed");
        let all = block_texts(&msg).join("\n");
        assert!(all.contains("• Log in (#7)\n• Check out (#8)"), "{all}");
        assert!(all.contains("Nightly checkout suite"));
        assert!(all.contains(
            "<https://app.rainforestqa.com/runs/123?a=1&amp;b=2|Open run in Rainforest>"
        ));
        assert!(msg["text"].as_str().unwrap().contains("Run #123 failed"));
        assert_within_limits(&msg);

        let passed = json!({"run": {"id": "9", "result": "passed", "url": "https://x/r/9"}, "failed_tests": []});
        let msg = render(EventName::RunCompletion, &passed);
        assert_eq!(header(&msg), "Run #9 passed");
        assert!(!block_texts(&msg).join("\n").contains("*Failed tests ("));
        assert_within_limits(&msg);
    }

    #[test]
    fn run_error_parses_and_shows_the_error() {
        let mut r = run();
        r["error_message"] = json!("VM <failed> to boot");
        let ev =
            RainforestEvent::parse(&request("run_error", json!({"run": r})), &allowed()).unwrap();
        assert_eq!(ev.event_name, EventName::RunError);
        let msg = render(ev.event_name, &ev.payload);
        assert_eq!(header(&msg), "Run #123 errored");
        let all = block_texts(&msg).join("\n");
        assert!(all.contains("*Error*\nVM &lt;failed&gt; to boot"), "{all}");
        assert!(all.contains("Open run in Rainforest"));
        assert_within_limits(&msg);
    }

    #[test]
    fn run_webhook_timeout_parses_and_renders() {
        let body = request("run_webhook_timeout", json!({"run": run()}));
        let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
        let msg = render(ev.event_name, &ev.payload);
        assert_eq!(header(&msg), "Run #123 timed out waiting for a webhook");
        assert_eq!(ev.dedupe_key().as_deref(), Some("run_webhook_timeout:123"));
        assert_within_limits(&msg);
    }

    #[test]
    fn run_test_failure_parses_and_names_the_test() {
        let body = request(
            "run_test_failure",
            json!({"run": run(), "failed_test": {"id": 42, "title": "Add to cart"}}),
        );
        let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
        assert_eq!(ev.dedupe_key().as_deref(), Some("run_test_failure:123:42"));
        let msg = render(ev.event_name, &ev.payload);
        assert_eq!(header(&msg), "Test failed in run #123");
        assert!(block_texts(&msg)
            .join("\n")
            .contains("*Add to cart*\nTest #42"));
        assert!(msg["text"].as_str().unwrap().contains("Add to cart"));
        assert_within_limits(&msg);
    }

    #[test]
    fn dedupe_key_needs_ids_and_escapes_separators() {
        let ev = |name: EventName, payload: Value| RainforestEvent {
            event_name: name,
            payload,
            targets: vec![],
        };
        assert_eq!(
            ev(EventName::RunError, json!({"run": {}})).dedupe_key(),
            None
        );
        assert_eq!(
            ev(
                EventName::RunTestFailure,
                json!({"run": {"id": 1}, "failed_test": {}})
            )
            .dedupe_key(),
            None
        );
        assert_eq!(
            ev(
                EventName::RunTestFailure,
                json!({"run": {"id": "a:b"}, "failed_test": {"id": "c"}})
            )
            .dedupe_key()
            .as_deref(),
            Some("run_test_failure:a%3Ab:c")
        );
        let long = "x".repeat(300);
        assert_eq!(
            ev(EventName::RunError, json!({"run": {"id": long}})).dedupe_key(),
            None
        );
    }

    #[test]
    fn invalid_requests_are_named() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{not json".to_vec(), "JSON"),
            (b"[1,2]".to_vec(), "object"),
            (request("run_exploded", json!({"run": {}})), "unknown event_name `run_exploded`"),
            (
                br#"{"integrations":[{"key":"slack","settings":{"url":"x"}}],"payload":{"run":{}}}"#.to_vec(),
                "`event_name`",
            ),
            (request("run_completion", json!({"run": run()})), "`failed_tests`"),
            (request("run_test_failure", json!({"run": run()})), "`failed_test`"),
            (request("run_error", json!({})), "`run`"),
            (request("run_error", json!({"run": "123"})), "`run`"),
            (request("run_error", json!([1])), "`payload`"),
            (br#"{"event_name":"run_error","payload":{"run":{}}}"#.to_vec(), "`integrations`"),
            (with_integrations(json!([])), "at least one"),
            (with_integrations(json!(["slack"])), "integrations[0]"),
            (with_integrations(json!([{"settings": {}}])), "`key`"),
        ];
        for (body, needle) in cases {
            let e = err(&body);
            assert_eq!(e.kind(), "invalid_request", "{e}");
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
    }

    #[test]
    fn other_integrations_are_unsupported() {
        let e = err(&with_integrations(
            json!([{"key": "jira", "settings": {"url": SECRET_URL}}]),
        ));
        assert_eq!(e.kind(), "unsupported_integration");
        assert!(e.to_string().contains("`jira`"));
        // A supported entry before it does not change the answer.
        let e = err(&with_integrations(json!([
            {"key": "slack", "settings": {"url": SECRET_URL}},
            {"key": "jira", "settings": {}}
        ])));
        assert_eq!(e.kind(), "unsupported_integration");
    }

    #[test]
    fn misconfigured_slack_settings_never_show_the_secret() {
        let bad = |settings: Value| {
            err(&with_integrations(
                json!([{"key": "slack", "settings": settings}]),
            ))
        };
        let cases = [
            (bad(json!({})), "`url` is required"),
            (
                err(&with_integrations(json!([{"key": "slack"}]))),
                "`settings`",
            ),
            (bad(json!({"url": 5})), "string"),
            (
                bad(json!({"url": "not a url/SECRET"})),
                "not a valid webhook URL",
            ),
            (
                bad(json!({"url": "hooks.slack.com/services/T0/B0/SECRET"})),
                "not a valid webhook URL",
            ),
            (bad(json!({"url": "file:///tmp/SECRET"})), "https://"),
            (
                bad(json!({"url": "http://hooks.slack.com/services/T0/B0/SECRET"})),
                "https://",
            ),
            (
                bad(json!({"url": "https://evil.example.com/services/T0/B0/SECRET"})),
                "`evil.example.com`",
            ),
            (
                bad(json!({"url": "https://hooks.slack.com.evil.io/services/SECRET"})),
                "not allowed",
            ),
            (
                bad(json!({"url": "https://hooks.slack.com@evil.io/SECRET"})),
                "`evil.io`",
            ),
            (
                bad(json!({"url": "https://user:SECRET@hooks.slack.com/x"})),
                "invalid host",
            ),
        ];
        for (e, needle) in cases {
            assert_eq!(e.kind(), "misconfigured_integration", "{e}");
            let text = e.to_string();
            assert!(text.contains(needle), "{text} lacks {needle}");
            assert!(
                !text.contains("SECRET") && !text.contains("/services"),
                "{text}"
            );
        }
    }

    #[test]
    fn hosts_match_case_insensitively_and_local_http_needs_allowing() {
        let body =
            |url: &str| with_integrations(json!([{"key": "slack", "settings": {"url": url}}]));
        let ok = RainforestEvent::parse(&body("https://HOOKS.slack.com/services/a"), &allowed());
        assert!(ok.is_ok());
        let local = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        assert!(RainforestEvent::parse(&body("http://127.0.0.1:8080/hook"), &local).is_ok());
        assert!(RainforestEvent::parse(&body("http://localhost:9/hook"), &local).is_ok());
        let e =
            RainforestEvent::parse(&body("http://127.0.0.1:8080/hook"), &allowed()).unwrap_err();
        assert_eq!(e.kind(), "misconfigured_integration");
        let e = RainforestEvent::parse(&body(SECRET_URL), &[]).unwrap_err();
        assert_eq!(e.kind(), "misconfigured_integration");
    }

    #[test]
    fn duplicate_urls_are_kept_once_and_fan_out_is_capped() {
        let slack = json!({"key": "slack", "settings": {"url": SECRET_URL}});
        let other = json!({"key": "slack", "settings": {"url": "https://hooks.slack.com/services/T/B/OTHER"}});
        let ev =
            RainforestEvent::parse(&with_integrations(json!([slack, other, slack])), &allowed())
                .unwrap();
        assert_eq!(ev.targets.len(), 2);
        let many: Vec<Value> = (0..=MAX_TARGETS)
            .map(|i| json!({"key": "slack", "settings": {"url": format!("https://hooks.slack.com/services/T/B/{i}")}}))
            .collect();
        assert_eq!(
            err(&with_integrations(json!(many))).kind(),
            "invalid_request"
        );
    }

    #[test]
    fn five_hundred_failed_tests_stay_within_slack_limits() {
        let tests: Vec<Value> = (0..500)
            .map(|i| json!({"id": i, "title": format!("A rather long test title number {i} {}", "x".repeat(80))}))
            .collect();
        let mut r = run();
        r["description"] = json!("d".repeat(10_000));
        let msg = render(
            EventName::RunCompletion,
            &json!({"run": r, "failed_tests": tests}),
        );
        assert_within_limits(&msg);
        let all = block_texts(&msg).join("\n");
        assert!(all.contains("*Failed tests (500)*"));
        assert!(all.contains("• A rather long test title number 0 "));
        let shown = all.matches("• A rather long").count();
        let more = all.split("…and ").nth(1).expect("an …and N more line");
        let n: usize = more.split(' ').next().unwrap().parse().unwrap();
        assert!(
            shown > 0 && shown <= LISTED_TESTS_MAX && shown + n == 500,
            "{shown} + {n}"
        );
        assert!(more.starts_with(&format!("{n} more")));
    }

    #[test]
    fn mentions_in_user_values_are_escaped() {
        let payload = json!({
            "run": {"id": "<!here>", "description": "<!channel> & friends", "result": "failed"},
            "failed_tests": [{"id": 1, "title": "<@U123> broke it"}]
        });
        let msg = render(EventName::RunCompletion, &payload);
        let all = msg.to_string();
        assert!(
            !all.contains("<!channel>") && !all.contains("<@U123>"),
            "{all}"
        );
        let texts = block_texts(&msg).join("\n");
        assert!(texts.contains("&lt;!channel&gt; &amp; friends"));
        assert!(texts.contains("&lt;@U123&gt; broke it"));
        assert!(msg["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
        // A header is plain text: not parsed for mentions, shown as written.
        assert_eq!(header(&msg), "Run #<!here> failed");
    }

    #[test]
    fn unsafe_links_are_not_linked() {
        let payload = json!({"run": {"id": 1, "frontend_url": "https://x|<!channel>"}});
        let msg = render(EventName::RunWebhookTimeout, &payload);
        assert!(!msg.to_string().contains("<!channel>"));
        assert!(!block_texts(&msg).join("\n").contains("Open run"));
        let msg = render(
            EventName::RunError,
            &json!({"run": {"frontend_url": "javascript:alert(1)"}}),
        );
        assert_eq!(header(&msg), "Run errored");
        assert_within_limits(&msg);
    }

    #[test]
    fn integration_schemas_follow_the_seed() {
        let schema = json!({
            "key": "slack", "title": "Slack",
            "settings": [{"key": "url", "title": "Slack incoming webhook URL", "required": true}]
        });
        assert_eq!(integrations(), json!([schema.clone()]));
        assert_eq!(integration("slack"), Some(schema));
        assert_eq!(integration("jira"), None);
        assert_eq!(integration("Slack"), None);
    }

    #[test]
    fn event_names_round_trip() {
        for e in EventName::ALL {
            assert_eq!(EventName::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
            let back: EventName = serde_json::from_value(json!(e.as_str())).unwrap();
            assert_eq!(back, e);
        }
        assert_eq!(
            RainforestError::InvalidRequest(String::new()).kind(),
            "invalid_request"
        );
    }
}
