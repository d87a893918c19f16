//! Plain values every layer shares: what the store keeps that the sources produce and Slack
//! answers (a source's kind, an approval's decision, where a message was posted), and the
//! `on_status` rules. They know nothing of HTTP, the store or delivery, so `store/` can keep
//! them without depending on `sources/` or `slack/`.

pub mod approval;
pub mod status;

use serde::{Deserialize, Serialize};

/// The formats a `[sources.NAME]` table can name in `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A CRM's new-opportunity webhook (seed 000, `../shared/opportunity-webhook.md`).
    Opportunity,
    /// Tray's commerce notification (seed 003), form-encoded or JSON.
    TrayCommerce,
    /// Rainforest's integration events (seed 004), served at `/events`.
    Rainforest,
    /// Any JSON object, shown through a configured title and fields.
    Generic,
    /// A request to approve or reject, with buttons; the decision goes back to the sender.
    Approval,
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Opportunity => "opportunity",
            SourceKind::TrayCommerce => "tray-commerce",
            SourceKind::Rainforest => "rainforest",
            SourceKind::Generic => "generic",
            SourceKind::Approval => "approval",
        }
    }

    pub fn parse(text: &str) -> Option<SourceKind> {
        match text {
            "opportunity" => Some(SourceKind::Opportunity),
            "tray-commerce" => Some(SourceKind::TrayCommerce),
            "rainforest" => Some(SourceKind::Rainforest),
            "generic" => Some(SourceKind::Generic),
            "approval" => Some(SourceKind::Approval),
            _ => None,
        }
    }
}

/// Why a well-formed JSON body is not a valid record of its kind (answered with 422).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRecord(pub String);

/// Where a posted message is, as `chat.postMessage` answered: what every later edit, reply,
/// reaction, pin and delete needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Posted {
    /// The channel id Slack answered with (a `C…` id even if a name was sent).
    pub channel: String,
    /// The message's timestamp: its id within the channel.
    pub ts: String,
}
