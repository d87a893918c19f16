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
use crate::config::generic::{template_parts, template_pointers, TemplatePart};
pub use crate::config::generic::{GenericSettings, OnRepeat, MAX_FIELDS};
pub use message::{render, render_changes, render_line};
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
    let key = fill_key(template, doc);
    if key.chars().count() > KEY_MAX {
        return Err(InvalidRecord(format!(
            "the idempotency key made from {template} is longer than {KEY_MAX} characters"
        )));
    }
    Ok(Some(key))
}

/// Whether a body has any of the values that close its message (`closed_when`).
pub fn closes(doc: &Value, closing: &[(String, String)]) -> bool {
    closing.iter().any(|(pointer, value)| {
        doc.pointer(pointer)
            .and_then(scalar_text)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
    })
}

/// The key a template makes. When the template has text of its own (`"{/a}|{/b}"`), `%` and
/// that text's characters are percent-encoded in the values, so that two different bodies
/// cannot make one key (`a = "x|y", b = "z"` against `a = "x", b = "y|z"`). A one-field key is
/// the value as it is, as before templates.
fn fill_key(template: &str, doc: &Value) -> String {
    let parts = template_parts(template);
    let literal: String = parts
        .iter()
        .filter_map(|part| match part {
            TemplatePart::Text(t) => Some(*t),
            TemplatePart::Pointer(_) => None,
        })
        .collect();
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Pointer(p) => {
                for c in value_at(doc, p).chars() {
                    if !literal.is_empty() && (c == '%' || literal.contains(c)) {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            out.push_str(&format!("%{b:02X}"));
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }
    out
}

/// Replaces every `{/pointer}` with the value found there (empty when absent).
pub fn fill(template: &str, doc: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    for part in template_parts(template) {
        match part {
            TemplatePart::Text(t) => out.push_str(t),
            TemplatePart::Pointer(p) => out.push_str(&value_at(doc, p)),
        }
    }
    out
}

/// The value at a pointer as text, empty when absent or not a scalar.
fn value_at(doc: &Value, pointer: &str) -> String {
    doc.pointer(pointer)
        .and_then(scalar_text)
        .unwrap_or_default()
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
