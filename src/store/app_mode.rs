//! What a new version of a notification queues, in the writer's batch. For incoming webhooks a
//! follow-up (or, after a move, the whole message and a "moved" note); in Slack app mode (a
//! bot-token region) an edit of the posted message and a reply in its thread, deletes on a
//! move or a withdrawing status, and the `on_status` reactions and pins.
//!
//! Intake marks a notification of a bot-token region `web_api`. Its first `Full` delivery
//! becomes the notification's `anchor`, and the worker stores Slack's `channel` and `ts` in
//! that delivery's `posted` when the post succeeds. A later version in the same region queues
//! `Edit` and `ThreadReply` deliveries naming the anchor (instead of `Changes`); a move queues
//! `Delete` of the anchor in the old region and a `Full` (the new anchor) in the new one;
//! `on_status` (`model/status.rs`) adds `React`, `Pin` or `Delete` when the status value
//! changed. They are ordinary deliveries in the anchor's region queue, so they run after the
//! post, one at a time, each with its own retries.
//!
//! If the anchor is still pending when an action comes up (its post waits for a retry), the
//! worker moves the action behind it (`Outcome::Waiting`, no attempt counted); if the anchor is
//! a dead letter, the action becomes one too, and a replay points it at the replayed post
//! (`MessageKind::retarget`). A withdrawing status deletes the thread replies, then the
//! message, and sets `withdrawn`: nothing is posted until the status changes.

use super::commands::NewNotification;
use super::queue::Queue;
use super::records::{DeliveryState, MessageKind, Notification};
use super::StoreError;
use crate::model::status::{StatusAction, StatusRules};

/// What changed with a new version.
pub(super) struct Change {
    /// The new version's number.
    pub version: u32,
    /// Where the notification went before, and its one-off URL if any.
    pub old_region: String,
    pub old_url: Option<String>,
    /// The previous version's body, to see whether the status changed.
    pub old_raw: String,
    /// When the version arrived: its deliveries are due then.
    pub at_ms: u64,
}

/// The actions of `raw`'s status when it is new or differs from `old_raw`'s (case-insensitive).
pub(super) fn status_action(
    rules: Option<&StatusRules>,
    raw: &str,
    old_raw: Option<&str>,
) -> Option<StatusAction> {
    let rules = rules?;
    let value_of = |raw: &str| {
        serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|doc| rules.value_in(&doc))
    };
    let value = value_of(raw)?;
    if old_raw
        .and_then(value_of)
        .is_some_and(|old| old.eq_ignore_ascii_case(&value))
    {
        return None;
    }
    rules.for_value(&value).cloned()
}

/// Whether `raw`'s status (changed or not) asks for the message to be deleted.
fn asks_delete(rules: Option<&StatusRules>, raw: &str) -> bool {
    status_action(rules, raw, None).is_some_and(|a| a.delete)
}

/// Queues what a new version needs; `n` already holds it.
pub(super) fn deliver_update(
    q: &mut dyn Queue,
    n: &mut Notification,
    new: &NewNotification,
    c: Change,
) -> Result<(), StoreError> {
    let (id, at, version) = (n.id, c.at_ms, c.version);
    let rules = new.on_status.as_deref();
    let action = status_action(rules, &n.raw, Some(&c.old_raw));
    let same_region = c.old_region == new.region;
    let mut added = Vec::new();
    match n.anchor {
        // The message was withdrawn: it comes back only when the status stops asking.
        None if n.withdrawn => {
            if !(new.web_api && asks_delete(rules, &n.raw)) {
                n.withdrawn = false;
                let full = q.deliver(id, &new.region, new.url.clone(), at, MessageKind::Full)?;
                n.anchor = new.web_api.then_some(full);
                added.push(full);
            }
        }
        // A withdrawing status: the message (and its thread) go; nothing is edited first.
        Some(of) if action.as_ref().is_some_and(|a| a.delete) => {
            added.extend(delete_message(q, n, &c.old_region, of, at)?);
            n.anchor = None;
            n.withdrawn = true;
        }
        // Slack app mode: edit the message in place and say what changed in its thread.
        Some(of) if same_region && new.web_api => {
            let edit = MessageKind::Edit { version, of };
            added.push(q.deliver(id, &new.region, None, at, edit)?);
            let reply = MessageKind::ThreadReply { version, of };
            added.push(q.deliver(id, &new.region, None, at, reply)?);
        }
        // Moved away from a bot-token region: its message goes, the new region gets it.
        Some(of) if !same_region => {
            added.extend(delete_message(q, n, &c.old_region, of, at)?);
            let full = q.deliver(id, &new.region, new.url.clone(), at, MessageKind::Full)?;
            n.anchor = new.web_api.then_some(full);
            added.push(full);
        }
        // The region has no bot token any more (or a bot-token region never had this
        // message): a webhook cannot edit, so a follow-up names the change; a bot posts the
        // message anew and edits that from now on.
        Some(_) | None if same_region => {
            if new.web_api {
                let full = q.deliver(id, &new.region, None, at, MessageKind::Full)?;
                n.anchor = Some(full);
                added.push(full);
            } else {
                n.anchor = None;
                let changes = MessageKind::Changes { version };
                added.push(q.deliver(id, &new.region, new.url.clone(), at, changes)?);
            }
        }
        // Incoming webhooks after a move: the whole message there, a note here.
        Some(_) | None => {
            let full = q.deliver(id, &new.region, new.url.clone(), at, MessageKind::Full)?;
            n.anchor = new.web_api.then_some(full);
            let moved = MessageKind::Moved {
                version,
                to: new.region.clone(),
            };
            added.push(full);
            added.push(q.deliver(id, &c.old_region, c.old_url.clone(), at, moved)?);
        }
    }
    n.deliveries.extend(added);
    if !n.withdrawn {
        act_on_status(q, n, rules, Some(&c.old_raw), at)?;
    }
    Ok(())
}

/// Queues the `on_status` reactions, pins and delete on the notification's posted message
/// when its status is new or changed and has actions configured. Without a message that the
/// Web API can act on (an incoming webhook's) there is nothing to do.
pub(super) fn act_on_status(
    q: &mut dyn Queue,
    n: &mut Notification,
    rules: Option<&StatusRules>,
    old_raw: Option<&str>,
    due_ms: u64,
) -> Result<(), StoreError> {
    let Some(anchor) = n.anchor else {
        return Ok(());
    };
    let Some(action) = status_action(rules, &n.raw, old_raw) else {
        return Ok(());
    };
    if action.delete {
        let region = n.region.clone();
        let gone = delete_message(q, n, &region, anchor, due_ms)?;
        n.deliveries.extend(gone);
        n.anchor = None;
        n.withdrawn = true;
        return Ok(());
    }
    let region = n.region.clone();
    let mut kinds = Vec::new();
    if let Some(name) = action.react {
        kinds.push(MessageKind::React { of: anchor, name });
    }
    if action.pin {
        kinds.push(MessageKind::Pin { of: anchor });
    }
    for kind in kinds {
        let d = q.deliver(n.id, &region, None, due_ms, kind)?;
        n.deliveries.push(d);
    }
    Ok(())
}

/// Deletes a posted message: its thread replies first (deleting a parent with replies
/// leaves "This message was deleted." and the thread in the channel), then the message.
/// Returns the new deliveries.
fn delete_message(
    q: &mut dyn Queue,
    n: &Notification,
    region: &str,
    anchor: u64,
    due_ms: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut added = Vec::new();
    for id in &n.deliveries {
        let Some(d) = q.delivery(*id)? else {
            continue;
        };
        let reply = matches!(d.message, MessageKind::ThreadReply { of, .. } if of == anchor);
        if reply && !matches!(d.state, DeliveryState::Dead { .. }) {
            let kind = MessageKind::Delete { of: d.id };
            added.push(q.deliver(n.id, region, None, due_ms, kind)?);
        }
    }
    let kind = MessageKind::Delete { of: anchor };
    added.push(q.deliver(n.id, region, None, due_ms, kind)?);
    Ok(added)
}
