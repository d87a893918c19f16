//! The Slack message for a Rainforest event, built at send time from the stored event name and
//! payload: a header, the run's fields, the failed tests packed within Slack's limits, a link.

use serde_json::{json, Map, Value};

use super::EventName;
use crate::slack::escape::{mrkdwn, plain};

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
pub(super) const LISTED_TESTS_MAX: usize = 50;
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
pub(super) const FALLBACK_MAX: usize = 300;
/// Links longer than this, or with characters that would break `<url|label>`, are not linked.
const LINK_MAX: usize = 2000;

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

pub(super) fn id_of(v: &Value) -> Option<String> {
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
