//! What the store keeps, as JSON values: readable with any sled dump and tolerant of added fields.

use serde::{Deserialize, Serialize};

use crate::sources::opportunity::Opportunity;
use crate::sources::{InvalidRecord, SourceKind};

/// The parsed form of a notification, by source kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Record {
    Opportunity(Opportunity),
}

/// One accepted webhook, stored before the sender got its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The relay's own id, returned to the sender and used in every other key.
    pub id: u64,
    /// The `[sources.NAME]` it came through.
    pub source: String,
    /// The sender's id for it (the CRM id); with `source` it makes the idempotency key.
    pub external_id: String,
    /// Milliseconds since the Unix epoch when it was accepted.
    pub received_at_ms: u64,
    /// The source kind that validated it, to parse `raw` again.
    pub kind: SourceKind,
    /// The body exactly as received. The parsed fields are not stored beside it: parsing is
    /// deterministic and cheap, and a second copy doubled what sled writes per webhook.
    pub raw: String,
    /// The region chosen at intake.
    pub region: String,
}

impl Notification {
    /// The validated fields, parsed again from the stored body.
    pub fn record(&self) -> Result<Record, InvalidRecord> {
        Record::parse(self.kind, self.raw.as_bytes())
    }
}

impl Record {
    /// Parses a body of a source kind (the same code intake validates with).
    pub fn parse(kind: SourceKind, body: &[u8]) -> Result<Record, InvalidRecord> {
        let doc: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| InvalidRecord(format!("the body is not valid JSON: {e}")))?;
        match kind {
            SourceKind::Opportunity => Opportunity::parse(&doc).map(Record::Opportunity),
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            Record::Opportunity(_) => SourceKind::Opportunity,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting in the due queue until `next_at_ms`.
    Pending { next_at_ms: u64 },
    /// Slack answered 200.
    Delivered { at_ms: u64 },
    /// Given up: a permanent error or the attempt budget spent. Kept in the dead-letter list.
    Dead { at_ms: u64, reason: String },
}

/// One try at posting, kept for the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// When the answer (or the failure) came.
    pub at_ms: u64,
    /// Slack's HTTP status; `None` when there was no answer (timeout, refused connection).
    pub status: Option<u16>,
    /// Slack's answer body or the transport error, shortened.
    pub answer: String,
}

/// The attempts kept per delivery; older ones are dropped so a long 429 spell cannot grow a record
/// without bound.
pub const MAX_HISTORY: usize = 20;

/// Posting one notification to one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// From `generate_id`: unique but not dense (sled jumps ahead after a restart).
    pub id: u64,
    /// The notification this posts.
    pub notification_id: u64,
    /// Whose webhook it goes to; the URL is looked up at send time so a corrected URL applies to
    /// what is already queued, and the secret is not copied into the store.
    pub region: String,
    /// When the delivery was created.
    pub created_at_ms: u64,
    /// Counted attempts (a 429 is not counted: it is Slack pacing us, not a failure).
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
    /// The latest attempts, oldest first.
    pub history: Vec<Attempt>,
}

impl Delivery {
    /// The due-queue time, if the delivery is still pending.
    pub fn due_ms(&self) -> Option<u64> {
        match self.state {
            DeliveryState::Pending { next_at_ms } => Some(next_at_ms),
            _ => None,
        }
    }

    pub fn push_attempt(&mut self, attempt: Attempt) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(attempt);
    }
}
