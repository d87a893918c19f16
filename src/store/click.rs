//! A click on an approval request, decided in the writer thread: the one place that sees every
//! click in order, so the first decision stored wins and a second gets "already decided".
//!
//! The click and what it causes (the decision, the Slack updates, the POST to the requesting
//! system, a note to the clicker) are one log record: after a crash either all of it is there
//! or none, and what is there is sent by the delivery engine with its retries.
//!
//! A click arrives signed at `/slack/interactions` or over Socket Mode; `interactivity` checks
//! the approver list and sends a `Click` command, and Slack is answered once it is on disk.
//! Deciding it here stores `decision` and an `events` line and queues:
//! - the `Decision` POST (a one-off `url.` target, with the source's bearer token);
//! - a `DecisionShown`, rendered from the decision's state when it is sent ("processing" until
//!   the 2xx, so a late retry never shows an older state);
//! - a `DecisionResult` that waits (`Outcome::Waiting`) until the `Decision` delivery settled.
//!   Replaying a dead `Decision` queues a new `DecisionResult` for the new attempt.
//!
//! Notes to the clicker (`Ephemeral`) and the reason prompt (`AskReason`) always go to the
//! click's `response_url` as one-off targets; the decision's updates go there too without a bot
//! token, and are `chat.update` of the request's anchor with one. Two Slack calls are made
//! before the click is stored, in `interactivity`: `users.info` (an approver listed by email;
//! 1.5 s limit, cached) and the reject modal (`views.open`: its trigger expires in 3 seconds,
//! too soon for a queue; if it fails, the `AskReason` prompt goes through the `response_url`).

use super::commands::target_key;
use super::queue::Queue;
use super::records::{MessageKind, Notification, MAX_EVENTS};
use super::StoreError;
use crate::model::approval::{ApprovalRequest, Decision, Event, Verdict};
use crate::model::SourceKind;

pub use super::commands::{Approver, Click, ClickKind, Clicked};

/// Decides a click on an approval request: its outcome, and what it queues.
pub(super) fn click(q: &mut dyn Queue, c: Click) -> Result<Clicked, StoreError> {
    let Some(mut n) = q
        .find(c.notification_id)?
        .filter(|n| n.kind == SourceKind::Approval)
    else {
        return Ok(Clicked::NotFound);
    };
    // An approval's body is the canonical request (`model::approval`), read without its source.
    let request = match serde_json::from_str::<serde_json::Value>(&n.raw) {
        Ok(doc) if n.kind == SourceKind::Approval => ApprovalRequest::from_stored(&doc).ok(),
        _ => None,
    };
    let Some(request) = request else {
        return Ok(Clicked::NotFound);
    };
    let (outcome, note) = if c.approver == Approver::No {
        let note = "You are not on this request's approvers list, so nothing was decided.";
        (Clicked::NotAllowed, Some(note.to_string()))
    } else if c.approver == Approver::Unknown {
        let note = "hookrelay could not check with Slack whether you may decide, so nothing was decided; please try again in a moment.";
        (Clicked::Unchecked, Some(note.to_string()))
    } else if let Some(d) = n.decision.clone() {
        let note = format!(
            "This request was already {} by <@{}>; your click changed nothing.",
            d.verdict.as_str(),
            d.by.id
        );
        (Clicked::AlreadyDecided(d), Some(note))
    } else {
        match &c.kind {
            ClickKind::Reject => {
                ask_reason(q, &mut n, &c)?;
                (Clicked::AskedReason, None)
            }
            ClickKind::Approve { choice } => {
                // Only an offered option counts; the menu starts on the first.
                let picked = choice
                    .as_ref()
                    .and_then(|v| request.choices.iter().find(|o| o.value == *v))
                    .or(request.choices.first())
                    .cloned();
                let d = Decision {
                    verdict: Verdict::Approved,
                    choice: picked,
                    reason: None,
                    by: c.user.clone(),
                    at_ms: c.at_ms,
                };
                decide(q, &mut n, &c, d, &request.decision_url)?;
                (Clicked::Decided(Verdict::Approved), None)
            }
            ClickKind::RejectWithReason(reason) if reason.trim().is_empty() => {
                let note = "A reason is required to reject; nothing was decided.";
                (Clicked::AskedReason, Some(note.to_string()))
            }
            ClickKind::RejectWithReason(reason) => {
                let d = Decision {
                    verdict: Verdict::Rejected,
                    choice: None,
                    reason: Some(reason.trim().to_string()),
                    by: c.user.clone(),
                    at_ms: c.at_ms,
                };
                decide(q, &mut n, &c, d, &request.decision_url)?;
                (Clicked::Decided(Verdict::Rejected), None)
            }
        }
    };
    let what = match &outcome {
        Clicked::Decided(v) => v.as_str().to_string(),
        Clicked::AlreadyDecided(_) => {
            "clicked after the decision: told it was already decided".into()
        }
        Clicked::NotAllowed => "refused: not an approver".into(),
        Clicked::Unchecked => "refused: approver list could not be checked".into(),
        Clicked::AskedReason if note.is_some() => "rejected without a reason: refused".into(),
        Clicked::AskedReason => "asked for a reject reason".into(),
        Clicked::NotFound => String::new(),
    };
    if n.events.len() >= MAX_EVENTS {
        n.events.remove(0);
    }
    n.events.push(Event {
        at_ms: c.at_ms,
        user: c.user.clone(),
        what,
    });
    if let (Some(text), Some(url)) = (note, &c.response_url) {
        let d = q.deliver(
            n.id,
            &target_key(url),
            Some(url.clone()),
            c.at_ms,
            MessageKind::Ephemeral { text },
        )?;
        n.deliveries.push(d);
    }
    q.keep(n);
    Ok(outcome)
}

/// Stores the decision and queues, in order: the message shows it as processing, the
/// decision goes to the requesting system, and the message shows the outcome once that
/// settled.
fn decide(
    q: &mut dyn Queue,
    n: &mut Notification,
    c: &Click,
    d: Decision,
    decision_url: &str,
) -> Result<(), StoreError> {
    n.decision = Some(d);
    let at = c.at_ms;
    let decision = q.deliver(
        n.id,
        &target_key(decision_url),
        Some(decision_url.to_string()),
        at,
        MessageKind::Decision,
    )?;
    n.deliveries.push(decision);
    // Where the message is changed: in place with the bot token, else through the
    // clicker's response_url (which rewrites the message the button was on).
    let place = match (c.web_api, n.anchor, &c.response_url) {
        (true, Some(anchor), _) => Some((n.region.clone(), None, Some(anchor))),
        (_, _, Some(url)) => Some((target_key(url), Some(url.clone()), None)),
        _ => None,
    };
    if let Some((target, url, of)) = place {
        let shown = q.deliver(
            n.id,
            &target,
            url.clone(),
            at,
            MessageKind::DecisionShown { of, decision },
        )?;
        let result = MessageKind::DecisionResult {
            of,
            after: decision,
        };
        let outcome = q.deliver(n.id, &target, url, at, result)?;
        n.deliveries.extend([shown, outcome]);
    }
    Ok(())
}

/// Without the modal, the message is replaced by a reason input (through the click's
/// `response_url`).
fn ask_reason(q: &mut dyn Queue, n: &mut Notification, c: &Click) -> Result<(), StoreError> {
    let (false, Some(url)) = (c.modal_opened, &c.response_url) else {
        return Ok(());
    };
    let d = q.deliver(
        n.id,
        &target_key(url),
        Some(url.clone()),
        c.at_ms,
        MessageKind::AskReason,
    )?;
    n.deliveries.push(d);
    Ok(())
}
