//! The `generic` kind: any JSON object, shown through a configured title template and fields.
//!
//! Templates are plain `{/json/pointer}` substitution, escaped for Slack: no expressions, no code.

use serde_json::{json, Value};

use super::InvalidRecord;
use crate::slack::escape::{mrkdwn, plain};

/// Slack's header limit.
const TITLE_MAX: usize = 150;
/// A field's value is kept short so the card stays readable (Slack allows 2,000).
const FIELD_MAX: usize = 300;
pub use crate::config::generic::{GenericSettings, MAX_FIELDS};

/// Validates a generic body: a JSON object, with its idempotency key if one is configured.
/// Returns the key as a string.
pub fn parse(doc: &Value, settings: &GenericSettings) -> Result<Option<String>, InvalidRecord> {
    if !doc.is_object() {
        return Err(InvalidRecord(format!(
            "the body must be a JSON object, not {}",
            super::opportunity::kind_of(doc)
        )));
    }
    let Some(pointer) = &settings.id_pointer else {
        return Ok(None);
    };
    match doc.pointer(pointer).map(scalar_text) {
        Some(Some(id)) if !id.trim().is_empty() && id.chars().count() <= 256 => Ok(Some(id)),
        Some(Some(_)) => Err(InvalidRecord(format!(
            "the idempotency key at {pointer} must be 1 to 256 characters"
        ))),
        _ => Err(InvalidRecord(format!(
            "the idempotency key at {pointer} is missing or not a string or number"
        ))),
    }
}

/// Replaces every `{/pointer}` with the value found there (empty when absent).
pub fn fill(template: &str, doc: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{/") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                let pointer = &rest[start + 1..start + end];
                out.push_str(
                    &doc.pointer(pointer)
                        .and_then(scalar_text)
                        .unwrap_or_default(),
                );
                rest = &rest[start + end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The Slack payload for a generic notification.
pub fn render(doc: &Value, settings: &GenericSettings, source: &str) -> Value {
    let title = fill(&settings.title, doc);
    let title = if title.trim().is_empty() {
        format!("Notification from {source}")
    } else {
        title
    };
    let fields: Vec<Value> = settings
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(label, pointer)| {
            let value = doc.pointer(pointer).and_then(scalar_text).unwrap_or_else(|| "—".into());
            json!({"type": "mrkdwn", "text": format!("*{}*\n{}", mrkdwn(label, 100), mrkdwn(&value, FIELD_MAX))})
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": plain(&title, TITLE_MAX), "emoji": true}}),
    ];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    json!({"text": mrkdwn(&title, 300), "blocks": blocks})
}

/// Strings as they are, numbers and booleans as text; objects and arrays are not shown.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GenericSettings {
        GenericSettings {
            id_pointer: Some("/order/id".into()),
            title: "New order {/order/id} from {/customer}".into(),
            fields: vec![
                ("Amount".into(), "/amount".into()),
                ("Missing".into(), "/nope".into()),
            ],
        }
    }

    #[test]
    fn templates_substitute_pointers_and_escape_for_slack() {
        let doc = json!({"order": {"id": 42}, "customer": "<!channel> Ltd", "amount": 9.5});
        let msg = render(&doc, &settings(), "shop");
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "New order 42 from <!channel> Ltd"
        );
        assert_eq!(msg["text"], "New order 42 from &lt;!channel&gt; Ltd");
        assert_eq!(msg["blocks"][1]["fields"][0]["text"], "*Amount*\n9.5");
        assert_eq!(msg["blocks"][1]["fields"][1]["text"], "*Missing*\n—");
    }

    #[test]
    fn a_template_is_text_not_code() {
        assert_eq!(
            fill("{/a}{/b} {not a pointer} {/unclosed", &json!({"a": "x"})),
            "x {not a pointer} {/unclosed"
        );
    }

    #[test]
    fn the_idempotency_key_is_required_when_configured() {
        assert_eq!(
            parse(&json!({"order": {"id": 7}}), &settings()).unwrap(),
            Some("7".into())
        );
        assert!(parse(&json!({"order": {}}), &settings()).is_err());
        assert!(parse(&json!([1]), &settings()).is_err());
        let no_key = GenericSettings {
            id_pointer: None,
            ..settings()
        };
        assert_eq!(parse(&json!({}), &no_key).unwrap(), None);
    }
}
