//! The `approval` kind: a request someone must approve or reject (access to a data room, say),
//! with a requester, a message, a link and optional choices (a permission group). It is shown
//! in Slack with Approve and Reject buttons; the decision goes back to the requesting system.
//!
//! Intake maps the sender's fields by JSON pointers (as `generic` does) into one canonical
//! document, stored as the notification's body, so everything later reads it without the
//! source's settings. Pure: this file parses a request and builds the decision sent back;
//! `message.rs` builds the Slack payloads.

use serde_json::{json, Value};

use super::InvalidRecord;
pub use crate::config::approval::{RequestFields, MAX_CHOICES};
pub use crate::model::approval::{ApprovalRequest, Choice, Decision, Event, SlackUser, Verdict};

mod message;
pub use message::{ephemeral, reject_modal, render_decided, render_reason_prompt, render_request};

/// A block's `block_id`: `{block}:{notification id}:{version}`. Slack keeps an input's state
/// (the menu's pick, a typed reason) by `block_id` when a message is replaced or edited, so a
/// new version of the request must not reuse the ids of the one before: its pick could be an
/// option the new version no longer offers.
pub fn block_id(block: &str, notification_id: u64, version: u32) -> String {
    format!("{block}:{notification_id}:{version}")
}

/// Reads a `block_id` of [`block_id`]'s form: the block and the notification. The version is
/// optional, so buttons on messages posted before it was added (`{block}:{id}`) still work.
pub fn parse_block_id(block_id: &str) -> Option<(&str, u64)> {
    let (block, rest) = block_id.split_once(':')?;
    let id = match rest.split_once(':') {
        Some((id, version)) => {
            version.parse::<u32>().ok()?;
            id
        }
        None => rest,
    };
    Some((block, id.parse().ok()?))
}

/// Longest request id kept: it is part of a store key.
const MAX_ID_CHARS: usize = 256;
/// Slack's limit for an option's text and value.
const OPTION_MAX: usize = 75;
/// The message text shown, kept well under a section's 3,000 characters.
const MESSAGE_MAX: usize = 2000;
/// Slack's limit for a header.
const HEADER_MAX: usize = 150;
/// A reject reason is sent to the requesting system and shown in the channel.
pub const REASON_MAX: usize = 2000;

/// `block_id` of the buttons block: `hookrelay_approval:{notification id}:{version}` (see
/// [`block_id`]), so a click names its request without any lookup.
pub const ACTIONS_BLOCK: &str = "hookrelay_approval";
/// `block_id` prefix of the reason input shown in place of the buttons (no bot token), and of
/// the reject modal's input.
pub const REASON_BLOCK: &str = "hookrelay_reason";
/// `callback_id` of the reject modal (bot token).
pub const REJECT_MODAL: &str = "hookrelay_reject";
/// `action_id`s of the message's elements.
pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
pub const CHOICE: &str = "choice";
pub const REJECT_REASON: &str = "reject_reason";

impl ApprovalRequest {
    /// Maps a sender's JSON document to a request, or says what is missing.
    pub fn from_document(doc: &Value, f: &RequestFields) -> Result<ApprovalRequest, InvalidRecord> {
        if !doc.is_object() {
            return Err(InvalidRecord(
                "an approval request must be a JSON object".into(),
            ));
        }
        let text = |pointer: &str| -> Option<String> {
            match doc.pointer(pointer)? {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let id = text(&f.id)
            .ok_or_else(|| InvalidRecord(format!("the request has no id at {}", f.id)))?;
        if id.chars().count() > MAX_ID_CHARS {
            return Err(InvalidRecord(format!(
                "the request id is longer than {MAX_ID_CHARS} characters"
            )));
        }
        let requester = text(&f.requester).ok_or_else(|| {
            InvalidRecord(format!("the request has no requester at {}", f.requester))
        })?;
        let link = text(&f.link).filter(|l| safe_link(l));
        let choices = match doc.pointer(&f.choices) {
            None | Some(Value::Null) => f.choice_list.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(choice_of)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    InvalidRecord(format!(
                        "{} must be a list of strings or of {{\"value\", \"label\"}} objects",
                        f.choices
                    ))
                })?,
            Some(_) => {
                return Err(InvalidRecord(format!("{} must be a list", f.choices)));
            }
        };
        if choices.len() > MAX_CHOICES {
            return Err(InvalidRecord(format!(
                "the request has more than Slack's {MAX_CHOICES} choices"
            )));
        }
        let decision_url = match f.decision_url_field.as_deref().and_then(&text) {
            Some(url) => {
                if !host_allowed(&url, &f.allowed_hosts) {
                    return Err(InvalidRecord(format!(
                        "the decision URL's host is not in allowed_decision_hosts ({})",
                        f.allowed_hosts.join(", ")
                    )));
                }
                url
            }
            None => f.decision_url.clone().ok_or_else(|| {
                InvalidRecord("the request names no decision URL and the source has none".into())
            })?,
        };
        Ok(ApprovalRequest {
            id,
            requester,
            message: text(&f.message).unwrap_or_default(),
            link,
            choices,
            decision_url,
        })
    }

    /// The stored form: the canonical fields plus the request as sent, for the record.
    pub fn to_stored(&self, original: &Value) -> String {
        let mut doc = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        doc["request"] = original.clone();
        doc.to_string()
    }
}

fn choice_of(item: &Value) -> Option<Choice> {
    let cut = |s: &str| s.trim().chars().take(OPTION_MAX).collect::<String>();
    match item {
        Value::String(s) if !s.trim().is_empty() => Some(Choice {
            value: cut(s),
            label: cut(s),
        }),
        Value::Object(o) => {
            let value = o.get("value")?.as_str().filter(|v| !v.trim().is_empty())?;
            let label = o.get("label").and_then(Value::as_str).unwrap_or(value);
            Some(Choice {
                value: cut(value),
                label: cut(label),
            })
        }
        _ => None,
    }
}

/// Whether a URL is http(s) on one of `hosts` (exact, case-insensitive, port ignored).
pub fn host_allowed(url: &str, hosts: &[String]) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false; // user-info can disguise the real host
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_lowercase();
    hosts.contains(&host)
}

/// A link Slack's `<url|text>` can carry: http(s), none of the characters that end it.
fn safe_link(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| matches!(c, '<' | '>' | '|') || c.is_whitespace())
}

/// How far the decision got towards the requesting system, for the message shown after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored, being sent.
    Processing,
    /// The requesting system answered 2xx.
    Done,
    /// It could not be sent (a dead letter; the reason is in the record, not the channel).
    Failed,
}

/// The body POSTed to the requesting system. `decision_id` is the same on every attempt, so a
/// receiver can drop a repeat after a crash between its 2xx and our record of it.
pub fn decision_body(request: &ApprovalRequest, notification_id: u64, d: &Decision) -> Value {
    json!({
        "decision_id": format!("hookrelay-{notification_id}"),
        "request_id": request.id,
        "decision": d.verdict.as_str(),
        "choice": d.choice.as_ref().map(|c| c.value.clone()),
        "reason": d.reason,
        "decided_by": {"slack_user_id": d.by.id, "slack_user_name": d.by.name},
        "decided_at": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(d.at_ms)
        ).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> RequestFields {
        RequestFields {
            id: "/id".into(),
            requester: "/requester".into(),
            message: "/message".into(),
            link: "/link".into(),
            choices: "/groups".into(),
            choice_list: vec![],
            decision_url_field: Some("/callback".into()),
            decision_url: Some("https://conveyor.example/decisions".into()),
            allowed_hosts: vec!["conveyor.example".into()],
        }
    }

    #[test]
    fn a_request_maps_its_fields_and_choices() {
        let doc = json!({"id": "r1", "requester": "ann@example.com", "message": "Please",
            "link": "https://conveyor.example/r/1", "groups": ["Viewer", {"value": "ed", "label": "Editor"}]});
        let r = ApprovalRequest::from_document(&doc, &fields()).unwrap();
        assert_eq!(
            r.choices[1],
            Choice {
                value: "ed".into(),
                label: "Editor".into()
            }
        );
        assert_eq!(r.decision_url, "https://conveyor.example/decisions");
        let stored: Value = serde_json::from_str(&r.to_stored(&doc)).unwrap();
        assert_eq!(ApprovalRequest::from_stored(&stored).unwrap(), r);
        assert_eq!(stored["request"], doc);
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let f = fields();
        let err = |doc: Value| ApprovalRequest::from_document(&doc, &f).unwrap_err().0;
        assert!(err(json!({"requester": "a"})).contains("no id"));
        assert!(err(json!({"id": "1"})).contains("no requester"));
        assert!(err(json!({"id": "1", "requester": "a", "groups": "x"})).contains("must be a list"));
        assert!(
            err(json!({"id": "1", "requester": "a", "groups": [1]})).contains("list of strings")
        );
        let evil =
            json!({"id": "1", "requester": "a", "callback": "http://169.254.169.254/latest"});
        assert!(err(evil).contains("allowed_decision_hosts"));
        let disguised = json!({"id": "1", "requester": "a", "callback": "https://conveyor.example@evil.example/"});
        assert!(err(disguised).contains("allowed_decision_hosts"));
        assert!(err(json!([1])).contains("JSON object"));
    }

    #[test]
    fn the_message_has_buttons_naming_the_request_and_escapes_the_sender() {
        let doc =
            json!({"id": "r1", "requester": "<!channel>", "message": "a\nb", "groups": ["Viewer"]});
        let r = ApprovalRequest::from_document(&doc, &fields()).unwrap();
        let msg = render_request(&r, "Access request", 42, 0);
        let text = msg.to_string();
        assert!(!text.contains("<!channel>") && text.contains("&lt;!channel&gt;"));
        let actions = &msg["blocks"][2];
        assert_eq!(actions["block_id"], "hookrelay_approval:42:0");
        assert_eq!(actions["elements"][0]["initial_option"]["value"], "Viewer");
        assert_eq!(actions["elements"][1]["action_id"], "approve");
        assert_eq!(actions["elements"][2]["action_id"], "reject");
    }

    #[test]
    fn the_decided_message_says_who_when_and_why() {
        let r = ApprovalRequest::from_document(&json!({"id": "r1", "requester": "ann"}), &fields())
            .unwrap();
        let d = Decision {
            verdict: Verdict::Rejected,
            choice: None,
            reason: Some("no NDA <yet>".into()),
            by: SlackUser {
                id: "U1".into(),
                name: "bob".into(),
            },
            at_ms: 1_700_000_000_000,
        };
        let processing = render_decided(&r, "Access request", &d, &Sent::Processing).to_string();
        assert!(
            processing.contains("Processing") && processing.contains("<@U1>"),
            "{processing}"
        );
        assert!(processing.contains("no NDA &lt;yet&gt;"), "{processing}");
        let done = render_decided(&r, "Access request", &d, &Sent::Done).to_string();
        assert!(
            done.contains("Rejected") && !done.contains("Processing"),
            "{done}"
        );
        let body = decision_body(&r, 7, &d);
        assert_eq!(body["decision"], "rejected");
        assert_eq!(body["decision_id"], "hookrelay-7");
        assert_eq!(body["decided_at"], "2023-11-14T22:13:20Z");
    }
}
