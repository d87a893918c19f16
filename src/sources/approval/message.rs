//! An approval's Slack payloads: the request with its buttons, the message after a decision,
//! the reason prompt and modal for a rejection, and ephemeral answers to the clicker.

use serde_json::{json, Value};

use super::{
    block_id, ApprovalRequest, Choice, Decision, Sent, Verdict, ACTIONS_BLOCK, APPROVE, CHOICE,
    HEADER_MAX, MESSAGE_MAX, OPTION_MAX, REASON_BLOCK, REASON_MAX, REJECT, REJECT_MODAL,
    REJECT_REASON,
};
use crate::slack::escape::{mrkdwn, plain};

/// The header and request text shared by every form of the message.
fn request_blocks(r: &ApprovalRequest, title: &str) -> Vec<Value> {
    let mut text = format!("*From:* {}", mrkdwn(&r.requester, 300));
    if let Some(link) = &r.link {
        text.push_str(&format!("\n*Request:* <{link}|{}>", mrkdwn(&r.id, 200)));
    } else {
        text.push_str(&format!("\n*Request:* {}", mrkdwn(&r.id, 200)));
    }
    if !r.message.is_empty() {
        text.push_str(&format!(
            "\n>{}",
            mrkdwn(&r.message, MESSAGE_MAX).replace('\n', "\n>")
        ));
    }
    vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": plain(title, HEADER_MAX), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}),
    ]
}

/// The request as first posted: Approve and Reject, and the menu if there are choices. Its
/// block ids name `version` of the notification ([`block_id`] says why).
pub fn render_request(
    r: &ApprovalRequest,
    title: &str,
    notification_id: u64,
    version: u32,
) -> Value {
    let mut elements = Vec::new();
    if !r.choices.is_empty() {
        let options: Vec<Value> = r.choices.iter().map(option).collect();
        elements.push(json!({
            "type": "static_select", "action_id": CHOICE,
            "placeholder": {"type": "plain_text", "text": "Choose"},
            "options": options, "initial_option": options[0],
        }));
    }
    let value = notification_id.to_string();
    elements.push(
        json!({"type": "button", "action_id": APPROVE, "style": "primary", "value": value,
        "text": {"type": "plain_text", "text": "Approve"}}),
    );
    elements.push(
        json!({"type": "button", "action_id": REJECT, "style": "danger", "value": value,
        "text": {"type": "plain_text", "text": "Reject"}}),
    );
    let mut blocks = request_blocks(r, title);
    blocks.push(json!({"type": "actions", "block_id": block_id(ACTIONS_BLOCK, notification_id, version), "elements": elements}));
    json!({
        "text": mrkdwn(&format!("{title}: {} asks for approval", r.requester), 300),
        "blocks": blocks,
    })
}

fn option(c: &Choice) -> Value {
    json!({"text": {"type": "plain_text", "text": plain(&c.label, OPTION_MAX)}, "value": c.value})
}

/// The message once decided: who, when, the choice or reason, and whether the requesting
/// system has it.
pub fn render_decided(r: &ApprovalRequest, title: &str, d: &Decision, sent: &Sent) -> Value {
    let secs = d.at_ms / 1000;
    let when = format!(
        "<!date^{secs}^{{date_short_pretty}} at {{time}}|{}>",
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
        )
    );
    let verdict = match d.verdict {
        Verdict::Approved => "Approved",
        Verdict::Rejected => "Rejected",
    };
    // ✅/❌ only once the requesting system has it: until then the decision is on its way.
    let (icon, head, status) = match sent {
        Sent::Processing => (
            ":hourglass_flowing_sand:",
            format!("{verdict} by <@{}> {when}: processing", d.by.id),
            "Processing: sending the decision to the requesting system…",
        ),
        Sent::Done => (
            if d.verdict == Verdict::Approved { ":white_check_mark:" } else { ":x:" },
            format!("*{verdict}* by <@{}> {when}", d.by.id),
            "The requesting system has the decision.",
        ),
        Sent::Failed => (
            ":warning:",
            format!("{verdict} by <@{}> {when}, but not delivered", d.by.id),
            "The requesting system has not received this decision; hookrelay's operator sees it in the dead letters.",
        ),
    };
    let mut line = format!("{icon} {head}");
    if let Some(c) = &d.choice {
        line.push_str(&format!(" · {}", mrkdwn(&c.label, OPTION_MAX)));
    }
    if let Some(reason) = &d.reason {
        line.push_str(&format!("\n*Reason:* {}", mrkdwn(reason, REASON_MAX)));
    }
    let mut blocks = request_blocks(r, title);
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": line}}));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": status}]}));
    let word = match sent {
        Sent::Processing => "processing",
        Sent::Done => "done",
        Sent::Failed => "not delivered",
    };
    json!({
        "text": mrkdwn(&format!("{title} from {}: {verdict} by {} ({word})", r.requester, d.by.name), 300),
        "blocks": blocks,
    })
}

/// Without a bot token there is no modal: the message is replaced by one asking for the reason
/// in an input that sends on Enter. Block ids as [`render_request`]'s.
pub fn render_reason_prompt(
    r: &ApprovalRequest,
    title: &str,
    notification_id: u64,
    version: u32,
) -> Value {
    // The request stays as it was (other approvers may still approve); the input is added.
    let mut message = render_request(r, title, notification_id, version);
    if let Some(blocks) = message["blocks"].as_array_mut() {
        blocks.push(json!({
            "type": "input", "block_id": block_id(REASON_BLOCK, notification_id, version),
            "dispatch_action": true,
            "label": {"type": "plain_text", "text": "To reject: why? (required; press Enter to send)"},
            "element": {"type": "plain_text_input", "action_id": REJECT_REASON, "multiline": false,
                "dispatch_action_config": {"trigger_actions_on": ["on_enter_pressed"]}},
        }));
    }
    message["replace_original"] = json!(true);
    message["text"] = json!(format!("{title}: a reason is needed to reject"));
    message
}

/// With a bot token: the modal asking for the reason (`views.open`), for `version` of the
/// notification.
pub fn reject_modal(r: &ApprovalRequest, notification_id: u64, version: u32) -> Value {
    json!({
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "private_metadata": notification_id.to_string(),
        "title": {"type": "plain_text", "text": "Reject request"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("Request {} from {}", mrkdwn(&r.id, 200), mrkdwn(&r.requester, 300))}},
            {"type": "input", "block_id": block_id(REASON_BLOCK, notification_id, version), "label": {"type": "plain_text", "text": "Why is it rejected?"},
             "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": REASON_MAX}},
        ],
    })
}

/// A note only the clicker sees (`response_url`, ephemeral).
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}
