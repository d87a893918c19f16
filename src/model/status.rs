//! `[sources.NAME.on_status]`: a record's status value → what the relay does to its Slack
//! message (react, pin, delete). Only a region with a bot token can act on a posted message;
//! for an incoming webhook there is no message to act on and the rules do nothing.

use std::collections::HashMap;

use serde_json::Value;

/// What one status value asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusAction {
    /// An emoji name (without colons) to add as a reaction.
    pub react: Option<String>,
    /// Pin the message to the channel.
    pub pin: bool,
    /// Delete the message (an opportunity withdrawn or deleted in the CRM).
    pub delete: bool,
}

impl StatusAction {
    pub fn is_empty(&self) -> bool {
        self.react.is_none() && !self.pin && !self.delete
    }
}

/// A source's rules, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRules {
    /// JSON pointer to the status in the record (`/status` unless `status_field` says otherwise).
    pub pointer: String,
    /// Lower-cased status value → actions. Values compare case-insensitively, as routes do.
    pub actions: HashMap<String, StatusAction>,
}

impl StatusRules {
    /// The status value of a record, as text (numbers and booleans too), if it has one.
    pub fn value_in(&self, doc: &Value) -> Option<String> {
        match doc.pointer(&self.pointer)? {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The actions for a status value, if any are configured.
    pub fn for_value(&self, value: &str) -> Option<&StatusAction> {
        self.actions.get(&value.to_lowercase())
    }
}

/// Checks an emoji name for `reactions.add`: colons around it are dropped; Slack's names are
/// lower-case letters, digits, `_`, `+`, `-` and `'` (skin tones as `::skin-tone-2`).
pub fn emoji_name(raw: &str) -> Option<String> {
    let name = raw.trim().trim_matches(':');
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '_' | '+' | '-' | '\'' | ':')
        });
    ok.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_is_found_by_pointer_and_matched_without_case() {
        let rules = StatusRules {
            pointer: "/status".into(),
            actions: HashMap::from([(
                "closed won".to_string(),
                StatusAction {
                    react: Some("tada".into()),
                    pin: true,
                    delete: false,
                },
            )]),
        };
        let v = rules.value_in(&json!({"status": " Closed Won "})).unwrap();
        assert_eq!(rules.for_value(&v).unwrap().react.as_deref(), Some("tada"));
        assert_eq!(rules.value_in(&json!({"status": null})), None);
        assert!(rules.for_value("Qualification").is_none());
    }

    #[test]
    fn emoji_names_lose_their_colons_and_bad_ones_are_refused() {
        assert_eq!(emoji_name(":tada:").as_deref(), Some("tada"));
        assert_eq!(emoji_name("+1").as_deref(), Some("+1"));
        assert_eq!(emoji_name("Tada"), None);
        assert_eq!(emoji_name("a b"), None);
        assert_eq!(emoji_name("::"), None);
    }
}
