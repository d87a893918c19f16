//! The Tray.io opportunity webhook: ten fields, three of them required. This file parses it;
//! `message.rs` renders it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::InvalidRecord;

pub mod message;

/// Longest `id` kept: it is part of a store key, and CRM ids are short (Salesforce's are 18).
const MAX_ID_CHARS: usize = 256;

/// A validated opportunity. Optional fields are `None` when absent or `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    /// The CRM's id; with the source name it makes a notification unique.
    pub id: String,
    /// The opportunity's title, shown as the message header.
    pub name: String,
    /// Sales stage, such as "Qualification".
    pub status: Option<String>,
    /// The customer account.
    pub account: Option<String>,
    /// Expected close date as the CRM wrote it (not reinterpreted).
    pub close_date: Option<String>,
    /// "New Business", "Renewal", ...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The region key: `UK`, `US`, `EU` or an ISO code mapped in the config.
    pub country: String,
    /// The sales owner's name.
    pub owner_name: Option<String>,
    /// The sales owner's email, a key the brief names for access control.
    pub owner_email: Option<String>,
    /// Deal value; kept as the JSON number it was so no precision is lost.
    pub amount: Option<Number>,
}

impl Opportunity {
    /// Validates a parsed JSON document as an opportunity.
    pub fn parse(doc: &Value) -> Result<Opportunity, InvalidRecord> {
        let obj = doc.as_object().ok_or_else(|| {
            InvalidRecord(format!(
                "an opportunity must be a JSON object, not {}",
                kind_of(doc)
            ))
        })?;
        let id = required(obj, "id")?;
        if id.chars().count() > MAX_ID_CHARS {
            return Err(InvalidRecord(format!(
                "field `id` is longer than {MAX_ID_CHARS} characters"
            )));
        }
        let amount = match obj.get("amount") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.clone()),
            Some(other) => {
                return Err(InvalidRecord(format!(
                    "field `amount` must be a number, not {}",
                    kind_of(other)
                )))
            }
        };
        Ok(Opportunity {
            id,
            name: required(obj, "name")?,
            status: optional(obj, "status")?,
            account: optional(obj, "account")?,
            close_date: optional(obj, "close_date")?,
            kind: optional(obj, "type")?,
            country: required(obj, "country")?,
            owner_name: optional(obj, "owner_name")?,
            owner_email: optional(obj, "owner_email")?,
            amount,
        })
    }
}

fn required(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidRecord> {
    match optional(obj, field)? {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(InvalidRecord(format!("field `{field}` must not be empty"))),
        None => Err(InvalidRecord(format!("field `{field}` is required"))),
    }
}

fn optional(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InvalidRecord> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(InvalidRecord(format!(
            "field `{field}` must be a string, not {}",
            kind_of(other)
        ))),
    }
}

/// How a JSON value is named in error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "id": "0065800000BwzJt", "name": "Sample02", "status": "Qualification",
            "account": "Andrew Test", "close_date": "2017-03-16", "type": "New Business",
            "country": "UK", "owner_name": "Andrew", "owner_email": "andrew@tray.io", "amount": 4500
        })
    }

    #[test]
    fn the_brief_example_parses_with_all_ten_fields() {
        let o = Opportunity::parse(&sample()).unwrap();
        assert_eq!(o.id, "0065800000BwzJt");
        assert_eq!(o.kind.as_deref(), Some("New Business"));
        assert_eq!(o.amount.unwrap().as_u64(), Some(4500));
        assert_eq!(o.owner_email.as_deref(), Some("andrew@tray.io"));
    }

    #[test]
    fn each_required_field_missing_is_named() {
        for field in ["id", "name", "country"] {
            let mut doc = sample();
            doc.as_object_mut().unwrap().remove(field);
            let err = Opportunity::parse(&doc).unwrap_err().0;
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let mut doc = sample();
        doc["amount"] = json!("4500");
        assert!(Opportunity::parse(&doc).unwrap_err().0.contains("amount"));
        let mut doc = sample();
        doc["id"] = json!(17);
        assert!(Opportunity::parse(&doc).unwrap_err().0.contains("`id`"));
        assert!(Opportunity::parse(&json!([1, 2]))
            .unwrap_err()
            .0
            .contains("array"));
    }

    #[test]
    fn blank_required_fields_and_huge_ids_are_refused() {
        let mut doc = sample();
        doc["name"] = json!("   ");
        assert!(Opportunity::parse(&doc).is_err());
        let mut doc = sample();
        doc["id"] = json!("x".repeat(300));
        assert!(Opportunity::parse(&doc).is_err());
    }

    #[test]
    fn optional_fields_may_be_null_or_absent() {
        let o =
            Opportunity::parse(&json!({"id": "1", "name": "n", "country": "US", "amount": null}))
                .unwrap();
        assert_eq!(o.amount, None);
        assert_eq!(o.account, None);
    }
}
