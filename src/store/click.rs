//! A click on an approval request, decided in the writer thread: the one place that sees every
//! click in order, so the first decision stored wins and a second gets "already decided".
//!
//! The click and what it causes (the decision, the Slack updates, the POST to the requesting
//! system, a note to the clicker) are one log record: after a crash either all of it is there
//! or none, and what is there is sent by the delivery engine with its retries.

use super::batch::BatchState;
use super::journal::target_key;
use super::records::{MessageKind, Notification, MAX_EVENTS};
use super::StoreError;
use crate::model::approval::{ApprovalRequest, Decision, Event, SlackUser, Verdict};
use crate::model::SourceKind;

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

impl BatchState<'_> {
    pub fn click(&mut self, c: Click) -> Result<Clicked, StoreError> {
        let Some(mut n) = self.stored(c.notification_id)? else {
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
        self.source.clone_from(&n.source);
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
                    self.ask_reason(&mut n, &c)?;
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
                    self.decide(&mut n, &c, d, &request.decision_url)?;
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
                    self.decide(&mut n, &c, d, &request.decision_url)?;
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
            let d = self.deliver(
                n.id,
                &target_key(url),
                Some(url.clone()),
                c.at_ms,
                MessageKind::Ephemeral { text },
            )?;
            n.deliveries.push(d);
        }
        self.notifications.insert(n.id, n);
        Ok(outcome)
    }

    /// Stores the decision and queues, in order: the message shows it as processing, the
    /// decision goes to the requesting system, and the message shows the outcome once that
    /// settled.
    fn decide(
        &mut self,
        n: &mut Notification,
        c: &Click,
        d: Decision,
        decision_url: &str,
    ) -> Result<(), StoreError> {
        n.decision = Some(d);
        let at = c.at_ms;
        let decision = self.deliver(
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
            let shown = self.deliver(
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
            let outcome = self.deliver(n.id, &target, url, at, result)?;
            n.deliveries.extend([shown, outcome]);
        }
        Ok(())
    }

    /// Without the modal, the message is replaced by a reason input (through the click's
    /// `response_url`).
    fn ask_reason(&mut self, n: &mut Notification, c: &Click) -> Result<(), StoreError> {
        let (false, Some(url)) = (c.modal_opened, &c.response_url) else {
            return Ok(());
        };
        let d = self.deliver(
            n.id,
            &target_key(url),
            Some(url.clone()),
            c.at_ms,
            MessageKind::AskReason,
        )?;
        n.deliveries.push(d);
        Ok(())
    }

    /// An approval notification as it stands in this batch or in the store.
    fn stored(&mut self, id: u64) -> Result<Option<Notification>, StoreError> {
        Ok(self
            .find_notification(id)?
            .filter(|n| n.kind == SourceKind::Approval))
    }
}
