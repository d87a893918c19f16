//! A stored body parsed again into its kind's validated fields: parsing is deterministic and
//! cheap, so the store keeps the body only and everything that shows it parses it here.

use super::approval::ApprovalRequest;
use super::opportunity::Opportunity;
use super::rainforest::EventName;
use super::tray_commerce::TrayNotification;
use super::{InvalidRecord, SourceKind};

/// The parsed form of a notification, by source kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Opportunity(Opportunity),
    TrayCommerce(TrayNotification),
    /// A Rainforest event as stored: its name and payload (the webhook URL is kept apart).
    Rainforest {
        event_name: EventName,
        payload: serde_json::Value,
    },
    Generic(serde_json::Value),
    /// A request to approve or reject, in its canonical stored form.
    Approval(ApprovalRequest),
}

impl Record {
    /// Parses a body of a source kind (the same code intake validates with).
    pub fn parse(kind: SourceKind, body: &[u8]) -> Result<Record, InvalidRecord> {
        let doc: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| InvalidRecord(format!("the body is not valid JSON: {e}")))?;
        match kind {
            SourceKind::Opportunity => Opportunity::parse(&doc).map(Record::Opportunity),
            SourceKind::TrayCommerce => TrayNotification::parse(body, "application/json")
                .map(Record::TrayCommerce)
                .map_err(|e| InvalidRecord(e.to_string())),
            SourceKind::Rainforest => {
                let event_name = doc
                    .get("event_name")
                    .cloned()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .ok_or_else(|| {
                        InvalidRecord("the stored event has no known event_name".into())
                    })?;
                let payload = doc.get("payload").cloned().unwrap_or_default();
                Ok(Record::Rainforest {
                    event_name,
                    payload,
                })
            }
            SourceKind::Generic if doc.is_object() => Ok(Record::Generic(doc)),
            SourceKind::Approval => ApprovalRequest::from_stored(&doc).map(Record::Approval),
            SourceKind::Generic => Err(InvalidRecord("the body is not a JSON object".into())),
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            Record::Opportunity(_) => SourceKind::Opportunity,
            Record::TrayCommerce(_) => SourceKind::TrayCommerce,
            Record::Rainforest { .. } => SourceKind::Rainforest,
            Record::Generic(_) => SourceKind::Generic,
            Record::Approval(_) => SourceKind::Approval,
        }
    }
}
