//! An approval request and its decision as the store keeps them: the canonical request, the
//! one decision, and the history of clicks. Parsing a sender's request and the Slack payloads
//! are the `approval` source's (`sources/approval.rs`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::InvalidRecord;

/// One option of the select menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Sent back to the requesting system.
    pub value: String,
    /// Shown in Slack.
    pub label: String,
}

/// A validated request, as stored (the canonical body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The requesting system's id for it: the idempotency key and what the decision names.
    pub id: String,
    /// Who asks (an email or a name).
    pub requester: String,
    /// What they wrote.
    #[serde(default)]
    pub message: String,
    /// A link to the request in the requesting system (http or https only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The options to pick from (a permission group); empty: no menu.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Where the decision is sent; checked against the source's allowed hosts at intake.
    pub decision_url: String,
}

impl ApprovalRequest {
    /// Reads the stored form back.
    pub fn from_stored(doc: &Value) -> Result<ApprovalRequest, InvalidRecord> {
        serde_json::from_value(doc.clone())
            .map_err(|e| InvalidRecord(format!("the stored approval request is unreadable: {e}")))
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
        }
    }
}

/// A Slack user as an interaction names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackUser {
    /// `U…`: what `<@U…>` mentions and the allow-list may name.
    pub id: String,
    /// Their user name, for logs and the record.
    #[serde(default)]
    pub name: String,
}

/// The one decision of a request, stored before anything is sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The option picked in the menu, if the request had choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Choice>,
    /// A reject's reason (required for a reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who decided.
    pub by: SlackUser,
    /// When the decision was stored (ms since the epoch).
    pub at_ms: u64,
}

/// One line of a request's history: every click, refused or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: u64,
    pub user: SlackUser,
    /// "approved", "asked for a reject reason", "refused: not an approver", …
    pub what: String,
}
