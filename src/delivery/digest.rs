//! Digests in the worker: making one of the posts the scheduler picked, sending it, and
//! settling every member with it.
//!
//! A digest is the first post of the burst (the head of its region's queue) with its message
//! turned into [`MessageKind::Digest`]; the other members leave the due queue and point at it.
//! It is stored before it is sent, so a failed digest is retried whole, with the same lines,
//! and a crash between Slack's 200 and the record repeats that one digest and nothing else.
//! Its outcome and its members' are one log record (`Journal::record_digest`).

use serde_json::json;

use super::policy::classify;
use super::render_digest::render_digest;
use super::worker::{Step, Worker};
use crate::config::RegionTarget;
use crate::model::SourceKind;
use crate::slack::web_api::Method;
use crate::store::records::{Attempt, Delivery, DeliveryState, MessageKind, Notification};
use crate::store::StoreError;

/// Target keys of one-off webhooks start with this; they have no digest settings.
const ONE_OFF_PREFIX: &str = "url.";

/// Whether a delivery may be listed in a digest: a region's pending first post of a
/// notification, in no digest yet. Follow-ups, moves and Web API actions never are.
pub fn digestable(d: &Delivery) -> bool {
    d.message == MessageKind::Full
        && d.url.is_none()
        && d.digest.is_none()
        && d.due_ms().is_some()
        && !d.region.starts_with(ONE_OFF_PREFIX)
}

/// A digest's members as stored: each post with its notification, oldest first.
pub(super) type Members = Vec<(Delivery, Notification)>;

impl Worker {
    /// Makes pending post `head` the digest of itself and those of `candidates` that may join
    /// (oldest first); `more` were still waiting behind them. Returns how many the digest
    /// lists, or 0 when none joined and `head` goes alone.
    pub fn form_digest(
        &self,
        head: u64,
        candidates: &[u64],
        more: u32,
    ) -> Result<usize, StoreError> {
        // One wait for the applier, then plain reads: a burst is what makes it lag.
        self.store.sync_reads()?;
        let Some(mut digest) = self.store.delivery_as_applied(head)? else {
            return Ok(0);
        };
        if !digestable(&digest) || !self.may_join(digest.notification_id)? {
            return Ok(0);
        }
        let mut members = Vec::new();
        for id in candidates {
            let Some(mut m) = self.store.delivery_as_applied(*id)? else {
                continue;
            };
            if m.id == head
                || m.region != digest.region
                || !digestable(&m)
                || !self.may_join(m.notification_id)?
            {
                continue;
            }
            m.digest = Some(head);
            members.push(m);
        }
        if members.is_empty() {
            return Ok(0);
        }
        digest.digest = Some(head);
        digest.message = MessageKind::Digest {
            members: members.iter().map(|m| m.id).collect(),
            more,
        };
        self.journal.form_digest(&digest, &members)?;
        Ok(members.len() + 1)
    }

    /// An approval request keeps its own message: its buttons act on it.
    fn may_join(&self, notification: u64) -> Result<bool, StoreError> {
        Ok(self
            .store
            .notification_as_applied(notification)?
            .is_some_and(|n| n.kind != SourceKind::Approval))
    }

    /// The members still waiting in digest `d`, with their notifications, oldest first.
    pub(super) fn digest_members(&self, d: &Delivery) -> Result<Members, StoreError> {
        let MessageKind::Digest { members, .. } = &d.message else {
            return Ok(Vec::new());
        };
        self.store.sync_reads()?;
        let mut out = Vec::with_capacity(members.len());
        for id in members {
            let Some(m) = self.store.delivery_as_applied(*id)? else {
                continue;
            };
            if m.digest != Some(d.id) || m.due_ms().is_none() {
                continue;
            }
            if let Some(n) = self.store.notification_as_applied(m.notification_id)? {
                out.push((m, n));
            }
        }
        Ok(out)
    }

    /// Sends digest `d`: its own notification `n` first, then `members`.
    pub(super) fn attempt_digest(
        &self,
        target: &RegionTarget,
        n: &Notification,
        d: &Delivery,
        members: &Members,
    ) -> Step {
        let more = match &d.message {
            MessageKind::Digest { more, .. } => *more,
            _ => 0,
        };
        let mut listed = Vec::with_capacity(members.len() + 1);
        listed.push(n.clone());
        listed.extend(members.iter().map(|(_, n)| n.clone()));
        let mut message = render_digest(&d.region, &listed, more, &self.sources);
        match target {
            RegionTarget::Webhook(url) => {
                let answer = self.transport.send(url, message.to_string().as_bytes());
                Step::Tried {
                    action: classify(&answer),
                    answer: Some(answer),
                    posted: None,
                    note: None,
                }
            }
            // Always the region's channel: the members may name different ones.
            RegionTarget::WebApi(api) => {
                message["channel"] = json!(api.channel);
                self.call_web_api(api, Method::PostMessage, &message, false)
            }
        }
    }
}

impl Worker {
    /// For a follow-up of a notification that went out in a digest: `message` gets a line
    /// naming that digest, since the notification never had a message of its own to refer to.
    pub(super) fn name_its_digest(
        &self,
        n: &Notification,
        message: &mut serde_json::Value,
    ) -> Result<(), StoreError> {
        for id in &n.deliveries {
            let Some(d) = self.store.delivery(*id)? else {
                continue;
            };
            let Some(digest) = d.digest.filter(|_| d.due_ms().is_none()) else {
                continue;
            };
            let size = match self.store.delivery(digest)?.map(|g| g.message) {
                Some(MessageKind::Digest { members, .. }) => members.len() + 1,
                _ => 0,
            };
            let note = if size > 1 {
                format!(
                    "Id {} was first announced in a digest of {size} (digest {digest}).",
                    n.id
                )
            } else {
                format!("Id {} was first announced in digest {digest}.", n.id)
            };
            if let Some(blocks) = message["blocks"].as_array_mut() {
                blocks.push(
                    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}),
                );
            }
            return Ok(());
        }
        Ok(())
    }
}

/// The members settled as their digest `d` now is (delivered, or a dead letter each), with
/// their notifications' sources for the list indexes; none while `d` is still pending.
pub(super) fn settle_members(d: &Delivery, members: Members) -> Vec<(Delivery, String)> {
    let state = match &d.state {
        DeliveryState::Delivered { at_ms } => DeliveryState::Delivered { at_ms: *at_ms },
        DeliveryState::Dead { at_ms, reason } => DeliveryState::Dead {
            at_ms: *at_ms,
            reason: format!("its digest (delivery {}) failed: {reason}", d.id),
        },
        DeliveryState::Pending { .. } => return Vec::new(),
    };
    members
        .into_iter()
        .map(|(mut m, n)| {
            m.state = state.clone();
            m.attempts = d.attempts;
            // In a bot-token region the digest's message is where later replies go.
            m.posted.clone_from(&d.posted);
            if let Some(last) = d.history.last() {
                m.push_attempt(Attempt {
                    answer: format!("in digest {}: {}", d.id, last.answer),
                    ..last.clone()
                });
            }
            (m, n.source)
        })
        .collect()
}
