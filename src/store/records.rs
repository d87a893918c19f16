//! What the store keeps: its own record types (encoded by `codec.rs`), built from the shared
//! values in `model/`.

use serde::{Deserialize, Serialize};

use crate::model::approval::{Decision, Event};
use crate::model::{Posted, SourceKind};

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
    /// The body exactly as received (the latest version). The parsed fields are not stored beside
    /// it: parsing is deterministic and cheap, and a second copy doubled what sled writes.
    pub raw: String,
    /// Earlier versions of an updated notification, oldest first (`raw` is the newest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Version>,
    /// Its deliveries, oldest first: what retention checks before purging it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<u64>,
    /// How many identical notifications were coalesced into this one (1 when none).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
    /// The delivery target chosen at intake: a region name, or `url.…` for a one-off webhook.
    pub region: String,
    /// The one-off webhook URL when `region` is `url.…`. A secret: never shown unmasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// In a bot-token region: the delivery that posted (or will post) the message that later
    /// versions edit, thread under, react to, pin or delete. `None` for incoming webhooks,
    /// whose messages cannot be changed, and once the message was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<u64>,
    /// Its message was deleted by an `on_status` rule (withdrawn): later versions are not
    /// posted while the status still asks for that.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    /// An approval request's one decision, stored before it is sent anywhere; the first one
    /// stored wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// An approval request's history: every click on it, refused ones too (newest last, at
    /// most [`MAX_EVENTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

/// Clicks kept per request: enough for any real history, bounded against a click storm.
pub const MAX_EVENTS: usize = 50;

/// An earlier version of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// When this version arrived.
    pub received_at_ms: u64,
    /// Its body as received.
    pub raw: String,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Notification {
    /// Version `n` (0 is the first) of the body; the newest is `self.earlier.len()`.
    pub fn version(&self, n: u32) -> Option<&str> {
        let n = n as usize;
        match n.cmp(&self.earlier.len()) {
            std::cmp::Ordering::Less => Some(self.earlier[n].raw.as_str()),
            std::cmp::Ordering::Equal => Some(self.raw.as_str()),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The number of the newest version.
    pub fn latest_version(&self) -> u32 {
        self.earlier.len() as u32
    }
}

/// What a delivery posts about its notification.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
pub enum MessageKind {
    /// The whole notification.
    #[default]
    Full,
    /// A follow-up naming what changed from version `version - 1` to `version`.
    Changes { version: u32 },
    /// A short note that version `version` moved the notification to another region.
    Moved { version: u32, to: String },
    /// Web API: `chat.update` of delivery `of`'s message to version `version`, the changed
    /// fields marked.
    Edit { version: u32, of: u64 },
    /// Web API: a reply in the thread of delivery `of`'s message naming what version `version`
    /// changed (old → new).
    ThreadReply { version: u32, of: u64 },
    /// Web API: `reactions.add` of an emoji to delivery `of`'s message.
    React { of: u64, name: String },
    /// Web API: `pins.add` of delivery `of`'s message.
    Pin { of: u64 },
    /// Web API: `chat.delete` of delivery `of`'s message (the record moved region, or its
    /// status says it was withdrawn).
    Delete { of: u64 },
    /// Approval: the decision, POSTed to the requesting system (the delivery's `url`).
    Decision,
    /// Approval: the message shows the decision as it stands when this is sent (being sent to
    /// the requesting system, unless delivery `decision` has settled already): `chat.update`
    /// of delivery `of`'s message with a bot token, else a `response_url` replace (the
    /// delivery's `url`). Rendered from the current state, so a late retry never shows an
    /// older state than the outcome before it.
    DecisionShown { of: Option<u64>, decision: u64 },
    /// Approval: the message shows the outcome once delivery `after` (the `Decision`) has
    /// settled: sent, or could not be sent.
    DecisionResult { of: Option<u64>, after: u64 },
    /// Approval: ask the clicker why they reject: the message is replaced by a reason input
    /// through the `response_url` (with a bot token a modal is opened at once instead).
    AskReason,
    /// Approval: a note only the clicker sees, through the `response_url`.
    Ephemeral { text: String },
    /// A burst's digest: this delivery's own notification and the posts `members` (delivery
    /// ids, oldest first) in one message; `more` new notifications were still waiting behind
    /// it when it was formed. The members' `digest` points here; they settle with it.
    Digest { members: Vec<u64>, more: u32 },
}

impl MessageKind {
    /// The delivery whose posted message this acts on, for the Web API's actions.
    pub fn acts_on(&self) -> Option<u64> {
        match self {
            MessageKind::Edit { of, .. }
            | MessageKind::ThreadReply { of, .. }
            | MessageKind::React { of, .. }
            | MessageKind::Pin { of }
            | MessageKind::Delete { of } => Some(*of),
            MessageKind::DecisionShown { of, .. } | MessageKind::DecisionResult { of, .. } => *of,
            MessageKind::Full
            | MessageKind::Changes { .. }
            | MessageKind::Moved { .. }
            | MessageKind::Decision
            | MessageKind::AskReason
            | MessageKind::Ephemeral { .. }
            | MessageKind::Digest { .. } => None,
        }
    }

    /// Points an edit, thread reply, reaction or pin at another post (the replay of a dead
    /// first post is the message they must act on).
    pub fn retarget(&mut self, post: u64) {
        match self {
            MessageKind::Edit { of, .. }
            | MessageKind::ThreadReply { of, .. }
            | MessageKind::React { of, .. }
            | MessageKind::Pin { of } => *of = post,
            _ => {}
        }
    }

    /// Another delivery that must settle before this one can be rendered.
    pub fn waits_for(&self) -> Option<u64> {
        match self {
            MessageKind::DecisionResult { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// The decision delivery whose state this message shows, if it shows one.
    pub fn reports_on(&self) -> Option<u64> {
        match self {
            MessageKind::DecisionResult { after, .. } => Some(*after),
            MessageKind::DecisionShown { decision, .. } => Some(*decision),
            _ => None,
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
    /// The one-off webhook URL when `region` is `url.…` (a route's or an event's). A secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What it posts.
    #[serde(default)]
    pub message: MessageKind,
    /// When the delivery was created.
    pub created_at_ms: u64,
    /// Counted attempts (a 429 is not counted: it is Slack pacing us, not a failure).
    pub attempts: u32,
    /// Where it stands.
    pub state: DeliveryState,
    /// The latest attempts, oldest first.
    pub history: Vec<Attempt>,
    /// Where Slack's Web API put the message (`chat.postMessage`'s `channel` and `ts`), kept so
    /// that later edits, replies, reactions, pins and deletes find it, also after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posted: Option<Posted>,
    /// A dead delivery that was replayed: the delivery that took its place. Its death no
    /// longer makes its notification "dead".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_as: Option<u64>,
    /// This post went out (or waits to go out) in a digest: the digest's delivery, whose
    /// message is [`MessageKind::Digest`]. Set on every member, the digest's own first post
    /// too. While set on a pending post, the post is out of the due queue: its digest is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<u64>,
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
