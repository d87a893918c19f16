//! Slack's interaction payloads (a button click, the reject modal submitted) → what the relay
//! acts on. Pure: whatever Slack or anyone else sends, the answer is a value, never a panic.

use serde_json::Value;

use crate::sources::approval::{
    parse_block_id, SlackUser, ACTIONS_BLOCK, APPROVE, CHOICE, REASON_BLOCK, REJECT, REJECT_MODAL,
    REJECT_REASON,
};
use crate::store::click::ClickKind;

/// What a payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// A click (or Enter in the reason input) on one of the relay's approval messages.
    Action {
        notification_id: u64,
        kind: ClickKind,
        user: SlackUser,
        /// Where replies to this click go; `None` if absent.
        response_url: Option<String>,
        /// For a modal; valid for 3 seconds.
        trigger_id: Option<String>,
    },
    /// The reject modal submitted.
    Submission {
        notification_id: u64,
        user: SlackUser,
        reason: String,
    },
    /// A choice picked in the menu: Slack reports it, the relay reads it again at Approve.
    ChoicePicked,
    /// Not something the relay sent or acts on; why, for the log.
    Unknown(String),
}

/// Reads a decoded payload (the `payload` form field, or a Socket Mode envelope's `payload`).
pub fn parse(p: &Value) -> Interaction {
    let user = SlackUser {
        id: text(&p["user"]["id"]).unwrap_or_default(),
        name: text(&p["user"]["username"])
            .or_else(|| text(&p["user"]["name"]))
            .unwrap_or_default(),
    };
    if user.id.is_empty() {
        return Interaction::Unknown("the payload names no user".into());
    }
    match p["type"].as_str() {
        Some("block_actions") => block_action(p, user),
        Some("view_submission") => submission(p, user),
        Some(other) => Interaction::Unknown(format!("a {other} payload")),
        None => Interaction::Unknown("the payload has no type".into()),
    }
}

fn block_action(p: &Value, user: SlackUser) -> Interaction {
    let action = &p["actions"][0];
    let block_id = action["block_id"].as_str().unwrap_or("");
    // `block:id:version`, or `block:id` on a message posted before block ids had versions.
    let Some((block, notification_id)) = parse_block_id(block_id) else {
        return Interaction::Unknown(format!("an action in block {block_id:?}"));
    };
    let action_id = action["action_id"].as_str().unwrap_or("");
    let kind = match (block, action_id) {
        (ACTIONS_BLOCK, CHOICE) => return Interaction::ChoicePicked,
        (ACTIONS_BLOCK, APPROVE) => ClickKind::Approve {
            // The menu's value when the button was clicked, from the message's state.
            choice: text(&p["state"]["values"][block_id][CHOICE]["selected_option"]["value"]),
        },
        (ACTIONS_BLOCK, REJECT) => ClickKind::Reject,
        (REASON_BLOCK, REJECT_REASON) => {
            ClickKind::RejectWithReason(text(&action["value"]).unwrap_or_default())
        }
        _ => return Interaction::Unknown(format!("action {action_id:?} in block {block_id:?}")),
    };
    Interaction::Action {
        notification_id,
        kind,
        user,
        response_url: text(&p["response_url"]),
        trigger_id: text(&p["trigger_id"]),
    }
}

fn submission(p: &Value, user: SlackUser) -> Interaction {
    let view = &p["view"];
    if view["callback_id"].as_str() != Some(REJECT_MODAL) {
        return Interaction::Unknown(format!(
            "a submission of view {:?}",
            view["callback_id"].as_str().unwrap_or("")
        ));
    }
    let Some(notification_id) = view["private_metadata"]
        .as_str()
        .and_then(|m| m.parse::<u64>().ok())
    else {
        return Interaction::Unknown("a reject modal without its request".into());
    };
    Interaction::Submission {
        notification_id,
        user,
        reason: modal_reason(&view["state"]["values"], notification_id).unwrap_or_default(),
    }
}

/// The reason typed in the modal: in its versioned input block, or in the block `reason` of a
/// modal opened before block ids had versions.
fn modal_reason(values: &Value, notification_id: u64) -> Option<String> {
    let block = values.as_object()?.iter().find_map(|(id, block)| {
        let ours = id == "reason" || parse_block_id(id) == Some((REASON_BLOCK, notification_id));
        ours.then_some(block)
    })?;
    text(&block["reason"]["value"])
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn click(block: &str, action: &str, extra: Value) -> Value {
        let mut p = json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "ann"},
            "response_url": "https://hooks.slack.com/actions/T/1/x",
            "trigger_id": "123.456",
            "actions": [{"block_id": block, "action_id": action, "value": "7"}],
        });
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        p
    }

    #[test]
    fn approve_reads_the_menu_from_the_message_state() {
        let state = json!({"state": {"values": {"hookrelay_approval:7": {"choice": {"selected_option": {"value": "editor"}}}}}});
        match parse(&click("hookrelay_approval:7", "approve", state)) {
            Interaction::Action {
                notification_id: 7,
                kind: ClickKind::Approve { choice },
                user,
                response_url: Some(_),
                trigger_id: Some(_),
            } => {
                assert_eq!(choice.as_deref(), Some("editor"));
                assert_eq!(user.name, "ann");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reason_typed_in_the_message_and_a_modal_submission_reject() {
        let mut p = click("hookrelay_reason:7", "reject_reason", json!({}));
        p["actions"][0]["value"] = json!("  no NDA ");
        assert!(matches!(
            parse(&p),
            Interaction::Action { kind: ClickKind::RejectWithReason(r), .. } if r == "no NDA"
        ));
        let modal = json!({"type": "view_submission", "user": {"id": "U2"},
            "view": {"callback_id": "hookrelay_reject", "private_metadata": "7",
                "state": {"values": {"reason": {"reason": {"value": "expired"}}}}}});
        assert_eq!(
            parse(&modal),
            Interaction::Submission {
                notification_id: 7,
                user: SlackUser {
                    id: "U2".into(),
                    name: String::new()
                },
                reason: "expired".into()
            }
        );
    }

    /// Buttons name a version since block ids got one; those on messages posted before (two
    /// parts) must keep working, and both forms name the same request.
    #[test]
    fn clicks_on_old_and_versioned_block_ids_name_the_request() {
        for block in ["hookrelay_approval:7", "hookrelay_approval:7:3"] {
            let state = json!({"state": {"values": {block: {"choice": {"selected_option": {"value": "editor"}}}}}});
            match parse(&click(block, "approve", state)) {
                Interaction::Action {
                    notification_id: 7,
                    kind: ClickKind::Approve { choice },
                    ..
                } => assert_eq!(choice.as_deref(), Some("editor"), "{block}"),
                other => panic!("{block}: {other:?}"),
            }
        }
        for block in ["hookrelay_reason:7", "hookrelay_reason:7:0"] {
            let mut p = click(block, "reject_reason", json!({}));
            p["actions"][0]["value"] = json!("no NDA");
            assert!(
                matches!(parse(&p), Interaction::Action { notification_id: 7, kind: ClickKind::RejectWithReason(r), .. } if r == "no NDA"),
                "{block}"
            );
        }
        // The modal's input names its version too; one opened before still submits.
        for block in ["hookrelay_reason:7:2", "reason"] {
            let modal = json!({"type": "view_submission", "user": {"id": "U2"},
                "view": {"callback_id": "hookrelay_reject", "private_metadata": "7",
                    "state": {"values": {block: {"reason": {"value": "expired"}}}}}});
            assert!(
                matches!(parse(&modal), Interaction::Submission { notification_id: 7, reason, .. } if reason == "expired"),
                "{block}"
            );
        }
    }

    #[test]
    fn anything_else_is_unknown_and_never_panics() {
        for p in [
            json!(null),
            json!([]),
            json!({"type": "block_actions"}),
            click("other_app:7", "approve", json!({})),
            click("hookrelay_approval:x", "approve", json!({})),
            click("hookrelay_approval:7:x", "approve", json!({})),
            click("hookrelay_approval::1", "approve", json!({})),
            click("hookrelay_approval:7", "delete_everything", json!({})),
            json!({"type": "shortcut", "user": {"id": "U1"}}),
            json!({"type": "view_submission", "user": {"id": "U1"}, "view": {"callback_id": "x"}}),
        ] {
            assert!(matches!(parse(&p), Interaction::Unknown(_)), "{p}");
        }
        assert_eq!(
            parse(&click("hookrelay_approval:7", "choice", json!({}))),
            Interaction::ChoicePicked
        );
    }
}
