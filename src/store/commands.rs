//! The commands the writer takes and what they answer: what intake, the workers and the
//! interactivity handler hand to the journal, and the counter changes a batch makes. Apart from
//! `journal.rs`, so that the writer's parts (`batch.rs`, `app_mode.rs`, `click.rs`) and the
//! applier depend on these types and not on the writer.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::records::Delivery;
use super::StoreError;
use crate::model::approval::{Decision, SlackUser, Verdict};
use crate::model::status::StatusRules;
use crate::model::SourceKind;

/// A coalesced message is due this long after its window closes, so that every repeat accepted
/// inside the window is counted before a worker can render it.
pub const COALESCE_GRACE_MS: u64 = 1000;

/// How a repeat of a notification is recognised and what it does.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotency {
    /// No key: every request is a new notification.
    None,
    /// The same key again is a duplicate, whatever its content.
    Dedupe(String),
    /// The same key with the same content is a duplicate; with other content it is a new version,
    /// announced by a follow-up message (opportunities).
    Versioned(String),
    /// The same key within `window_ms` of the first is counted into that notification, whose one
    /// message goes out when the window closes (Tray's identical notifications).
    Coalesce { key: String, window_ms: u64 },
}

/// A webhook that passed validation, to be stored with its first delivery.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The `[sources.NAME]` it came through.
    pub source: String,
    /// Its format, to parse `raw` again later.
    pub kind: SourceKind,
    /// How repeats are recognised.
    pub idempotency: Idempotency,
    /// The body as received (normalised to JSON for form-encoded sources).
    pub raw: String,
    /// The target key: a region name or `url.…` (see [`target_key`]).
    pub region: String,
    /// The one-off webhook URL for `url.…` targets.
    pub url: Option<String>,
    /// Further targets that get the same message (a Rainforest event naming several webhooks),
    /// as (target key, one-off URL). Stored in the same batch, so all or none.
    pub also: Vec<(String, Option<String>)>,
    /// When it arrived, from the relay's clock (tests control it).
    pub received_at_ms: u64,
    /// The target region posts through Slack's Web API: its first post becomes the message
    /// that later versions edit, thread under and act on (see `Notification::anchor`).
    pub web_api: bool,
    /// The source's `on_status` rules: reactions, pins and deletes when the status changes.
    pub on_status: Option<std::sync::Arc<StatusRules>>,
}

/// The target key of a one-off webhook URL: stable, and free of the secret.
pub fn target_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("url.{hex}")
}

/// How an accepted webhook was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now, with a pending delivery.
    New(u64),
    /// Already stored earlier under this key; nothing was written.
    Duplicate(u64),
    /// A new version of a stored notification, with follow-up deliveries.
    Updated(u64),
    /// Counted into a notification whose coalescing window is still open.
    Coalesced(u64),
}

/// A delivery's new state after an attempt, written by a worker.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    /// The delivery as it is now.
    pub delivery: Delivery,
    /// Its due-queue time before the attempt, so that entry can be removed.
    pub previous_due_ms: Option<u64>,
    /// Set after a 429: the region waits until then (ms), and so does it after a restart.
    pub pause_region_until_ms: Option<u64>,
    /// Set when the webhook is gone: the region pauses until an operator resumes it.
    pub pause_region_reason: Option<String>,
    /// The notification's source, for the list indexes.
    pub source: String,
}

/// Changes to the queue counters that a batch makes once it is on disk.
#[derive(Default, Debug)]
pub(super) struct Deltas {
    /// Pending deliveries per target.
    pub pending: HashMap<String, i64>,
    /// Dead letters.
    pub dead: i64,
}

#[cfg(test)]
impl NewNotification {
    /// The store's tests' webhook: a versioned opportunity `id` from source `crm` for region UK,
    /// received at `at_ms`.
    pub fn test_opportunity(id: &str, at_ms: u64) -> NewNotification {
        NewNotification {
            source: "crm".into(),
            kind: crate::model::SourceKind::Opportunity,
            idempotency: Idempotency::Versioned(id.into()),
            raw: format!(r#"{{"id":"{id}","name":"n","country":"UK"}}"#),
            region: "UK".into(),
            url: None,
            also: Vec::new(),
            web_api: false,
            on_status: None,
            received_at_ms: at_ms,
        }
    }
}

impl Deltas {
    pub(super) fn add(&mut self, other: Deltas) {
        for (k, v) in other.pending {
            *self.pending.entry(k).or_insert(0) += v;
        }
        self.dead += other.dead;
    }
}

/// Called after a flush that stored new deliveries, with their target keys, to wake the
/// scheduler (which learns one-off targets this way).
pub type Waker = Arc<dyn Fn(Vec<String>) + Send + Sync>;

pub(super) type AcceptReply = oneshot::Sender<Result<Accepted, StoreError>>;

/// What one command answers once its batch is (or is not) on disk.
pub(super) enum Reply {
    Accept(AcceptReply, Accepted),
    Replay(
        oneshot::Sender<Result<Vec<Option<u64>>, StoreError>>,
        Vec<Option<u64>>,
    ),
    Write(oneshot::Sender<Result<(), StoreError>>),
    Click(oneshot::Sender<Result<Clicked, StoreError>>, Clicked),
}

impl Reply {
    pub(super) fn send(self, result: Result<(), StoreError>) {
        match self {
            Reply::Accept(tx, accepted) => {
                let _ = tx.send(result.map(|()| accepted));
            }
            Reply::Replay(tx, ids) => {
                let _ = tx.send(result.map(|()| ids));
            }
            Reply::Write(tx) => {
                let _ = tx.send(result);
            }
            Reply::Click(tx, clicked) => {
                let _ = tx.send(result.map(|()| clicked));
            }
        }
    }
}

/// Notes a command's failure for want of room: its batch must not be written (see `commit`).
/// What was clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickKind {
    /// Approve, with the option the menu showed (if the request has choices).
    Approve { choice: Option<String> },
    /// Reject without a reason yet: the reason is asked for.
    Reject,
    /// Reject with the reason typed in the modal or the message's input.
    RejectWithReason(String),
}

/// One click, checked (signature, approver list) before it reaches the journal.
#[derive(Debug, Clone)]
pub struct Click {
    /// The request: the `notification id` in the clicked block.
    pub notification_id: u64,
    /// Who clicked.
    pub user: SlackUser,
    pub kind: ClickKind,
    /// Whether the clicker is on the source's approvers list.
    pub approver: Approver,
    /// Where a reply to this click goes (30 minutes, 5 uses); `None` from a modal.
    pub response_url: Option<String>,
    /// For opening the reject modal (3 seconds); used when the region has a bot token.
    pub trigger_id: Option<String>,
    /// The request's region posts through the Web API (bot token): its message is edited with
    /// `chat.update`.
    pub web_api: bool,
    /// The reject modal was opened already (`views.open` must use the trigger within 3
    /// seconds, so it is called before the click is stored); no reason prompt is queued.
    pub modal_opened: bool,
    /// When the click arrived (ms).
    pub at_ms: u64,
}

/// Whether a clicker may decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approver {
    Yes,
    No,
    /// Listed by email, but Slack could not say whose email this is right now.
    Unknown,
}

/// What a click did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clicked {
    /// This click decided the request.
    Decided(Verdict),
    /// Another decision was stored first.
    AlreadyDecided(Decision),
    /// The clicker is not an approver; nothing was decided.
    NotAllowed,
    /// Whether the clicker is an approver could not be checked; nothing was decided.
    Unchecked,
    /// A reject without a reason: the reason is being asked for.
    AskedReason,
    /// No approval request with that id (purged, or not one of ours).
    NotFound,
}
