//! What a delivery says: its notification and message kind → the Slack payload (Block Kit with
//! a `text` fallback). Rendering happens at send time from the stored versions, so a message
//! queued behind a pause still shows the version it was made for.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::SourceSettings;
use crate::sources::approval::{self, ApprovalRequest, Sent};
use crate::sources::generic::{self, GenericSettings};
use crate::sources::opportunity::message::{
    render_changes, render_edited, render_moved, render_opportunity,
};
use crate::sources::opportunity::Opportunity;
use crate::sources::InvalidRecord;
use crate::sources::Record;
use crate::sources::{rainforest, tray_commerce};
use crate::store::records::{MessageKind, Notification};

/// The Slack payload a delivery posts, as bytes for an incoming webhook.
pub fn render(
    notification: &Notification,
    message: &MessageKind,
    sources: &BTreeMap<String, SourceSettings>,
    sent: Option<&Sent>,
) -> Result<Vec<u8>, InvalidRecord> {
    Ok(render_value(notification, message, sources, sent)?
        .to_string()
        .into_bytes())
}

/// The Slack payload a delivery posts or (for [`MessageKind::Edit`]) puts in place of the
/// message. Reactions, pins and deletes carry no message; they render as the full one.
/// `sent` is how far an approval's decision got, for [`MessageKind::DecisionResult`].
pub fn render_value(
    notification: &Notification,
    message: &MessageKind,
    sources: &BTreeMap<String, SourceSettings>,
    sent: Option<&Sent>,
) -> Result<Value, InvalidRecord> {
    Ok(
        match (
            Record::parse(notification.kind, notification.raw.as_bytes())?,
            message,
        ) {
            (Record::Approval(r), kind) => {
                let title = sources
                    .get(&notification.source)
                    .and_then(|s| s.approval.as_ref())
                    .map_or("Access request", |a| a.title.as_str());
                render_approval(&r, title, notification, kind, sent)
            }
            (
                Record::Opportunity(latest),
                MessageKind::Changes { version } | MessageKind::ThreadReply { version, .. },
            ) => match versions(notification, *version) {
                (Some(old), Some(new)) => render_changes(&old, &new),
                // An earlier body that no longer parses cannot be compared: send the whole message.
                (_, Some(new)) => render_opportunity(&new),
                _ => render_opportunity(&latest),
            },
            // An edit shows the newest version whichever update queued it, so an old edit sent
            // late (a replayed dead letter) cannot bring back old values.
            (Record::Opportunity(latest), MessageKind::Edit { .. }) => {
                match versions(notification, notification.latest_version()) {
                    (Some(old), Some(new)) => render_edited(&old, &new),
                    (_, Some(new)) => render_opportunity(&new),
                    _ => render_opportunity(&latest),
                }
            }
            (Record::Opportunity(o), MessageKind::Moved { to, .. }) => render_moved(&o, to),
            (Record::Opportunity(o), _) => render_opportunity(&o),
            (Record::TrayCommerce(n), _) => tray_commerce::render(&n, notification.count),
            (
                Record::Rainforest {
                    event_name,
                    payload,
                },
                _,
            ) => rainforest::render(event_name, &payload),
            (Record::Generic(doc), kind) => {
                // A source no longer configured (or the send-test message): its own title if it
                // has one, else "Notification from SOURCE".
                let fallback = GenericSettings::titled("{/title}");
                let settings = sources
                    .get(&notification.source)
                    .and_then(|s| s.generic.as_ref())
                    .unwrap_or(&fallback);
                render_generic(notification, &doc, kind, settings)
            }
        },
    )
}

/// A generic notification's payloads: a follow-up (or thread reply) names what its version
/// changed; an edit and every other message show the newest version.
fn render_generic(
    n: &Notification,
    latest: &Value,
    kind: &MessageKind,
    settings: &GenericSettings,
) -> Value {
    match kind {
        MessageKind::Changes { version } | MessageKind::ThreadReply { version, .. } => {
            match records(n, *version) {
                (Some(Record::Generic(old)), Some(Record::Generic(new))) => {
                    generic::render_changes(&old, &new, settings, &n.source)
                }
                (_, Some(Record::Generic(new))) => generic::render(&new, settings, &n.source),
                _ => generic::render(latest, settings, &n.source),
            }
        }
        _ => generic::render(latest, settings, &n.source),
    }
}

/// An approval request's payloads: the request with its buttons, the decision as shown in
/// Slack and as sent to the requesting system, the reason prompt, a note to the clicker.
fn render_approval(
    r: &ApprovalRequest,
    title: &str,
    n: &Notification,
    kind: &MessageKind,
    sent: Option<&Sent>,
) -> Value {
    match (kind, &n.decision) {
        (MessageKind::Ephemeral { text }, _) => approval::ephemeral(text),
        (MessageKind::AskReason, _) => {
            approval::render_reason_prompt(r, title, n.id, n.latest_version())
        }
        (MessageKind::Decision, Some(d)) => approval::decision_body(r, n.id, d),
        (MessageKind::DecisionShown { .. } | MessageKind::DecisionResult { .. }, Some(d)) => {
            with_replace(approval::render_decided(
                r,
                title,
                d,
                sent.unwrap_or(&Sent::Processing),
            ))
        }
        // The newest body, whichever update queued the message: its version names the ids.
        _ => approval::render_request(r, title, n.id, n.latest_version()),
    }
}

/// A `response_url` payload that rewrites the message the button was on (the Web API ignores
/// the flag).
fn with_replace(mut message: Value) -> Value {
    message["replace_original"] = Value::Bool(true);
    message
}

/// Versions `version - 1` and `version` of a notification, as records: a change is about that
/// pair, whatever came after it.
fn records(n: &Notification, version: u32) -> (Option<Record>, Option<Record>) {
    let parse = |v: u32| {
        n.version(v)
            .and_then(|raw| Record::parse(n.kind, raw.as_bytes()).ok())
    };
    (parse(version.saturating_sub(1)), parse(version))
}

/// [`records`] of an opportunity.
fn versions(n: &Notification, version: u32) -> (Option<Opportunity>, Option<Opportunity>) {
    let opportunity = |r: Option<Record>| match r {
        Some(Record::Opportunity(o)) => Some(o),
        _ => None,
    };
    let (old, new) = records(n, version);
    (opportunity(old), opportunity(new))
}
