//! The `generic` kind: any JSON object, keyed by a template of its fields and shown through a
//! configured title template, marks and fields.
//!
//! Templates are plain `{/json/pointer}` substitution, escaped for Slack: no expressions, no code.
//! - `versions.rs`: whether a repeat of a key is a new version (`ignore`), and what changed;
//! - `message.rs`: the Slack payloads, the first post and the follow-up naming a change.

mod message;
mod versions;

use serde_json::Value;

use super::InvalidRecord;
use crate::config::generic::template_pointers;
pub use crate::config::generic::{GenericSettings, OnRepeat, MAX_FIELDS};
pub use message::{render, render_changes};
pub use versions::{changes, same, Changed};

/// The longest key kept: a key is an index entry, not a document.
const KEY_MAX: usize = 256;

/// Validates a generic body: a JSON object, with its idempotency key if one is configured.
/// Returns the key (the `id` template filled in).
pub fn parse(doc: &Value, settings: &GenericSettings) -> Result<Option<String>, InvalidRecord> {
    if !doc.is_object() {
        return Err(InvalidRecord(format!(
            "the body must be a JSON object, not {}",
            super::opportunity::kind_of(doc)
        )));
    }
    let Some(template) = &settings.id else {
        return Ok(None);
    };
    for pointer in template_pointers(template) {
        match doc.pointer(pointer).map(scalar_text) {
            Some(Some(v)) if !v.trim().is_empty() => {}
            Some(Some(_)) => {
                return Err(InvalidRecord(format!(
                    "the idempotency key needs the field {pointer}, which is empty"
                )))
            }
            _ => {
                return Err(InvalidRecord(format!(
                    "the idempotency key needs the field {pointer}, which is missing or not a string or number"
                )))
            }
        }
    }
    let key = fill(template, doc);
    if key.chars().count() > KEY_MAX {
        return Err(InvalidRecord(format!(
            "the idempotency key made from {template} is longer than {KEY_MAX} characters"
        )));
    }
    Ok(Some(key))
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
mod tests;
