//! Approval block ids name the notification's version: Slack keeps input state by block id, so
//! a new version (an edit, a re-post) must not reuse the old ids.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::render::render_value;

use crate::interactivity::payload::{parse, Interaction};
use crate::model::SourceKind;
use crate::store::click::ClickKind;
use crate::store::records::{MessageKind, Notification, Version};

fn request(choices: &[&str]) -> String {
    json!({"id": "r1", "requester": "ann", "message": "", "decision_url": "https://conveyor.example/d",
        "choices": choices.iter().map(|c| json!({"value": c, "label": c})).collect::<Vec<_>>()})
    .to_string()
}

fn approval(versions: &[&[&str]]) -> Notification {
    let mut raws: Vec<String> = versions.iter().map(|v| request(v)).collect();
    let raw = raws.pop().unwrap_or_default();
    Notification {
        id: 42,
        source: "access".into(),
        external_id: "r1".into(),
        received_at_ms: 1_700_000_000_000,
        kind: SourceKind::Approval,
        raw,
        earlier: raws
            .into_iter()
            .map(|raw| Version {
                received_at_ms: 1_700_000_000_000,
                raw,
            })
            .collect(),
        deliveries: vec![43],
        count: 1,
        region: "UK".into(),
        url: None,
        anchor: Some(43),
        withdrawn: false,
        decision: None,
        events: Vec::new(),
    }
}

fn block_ids(payload: &Value) -> Vec<String> {
    payload["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["block_id"].as_str().map(str::to_string))
        .collect()
}

/// Slack keeps a menu's pick by block id across `chat.update`: the edit to version 2 must
/// not show version 1's pick (an option it may no longer offer) as chosen.
#[test]
fn a_new_version_of_an_approval_has_new_block_ids() {
    let sources = BTreeMap::new();
    let v1 = approval(&[&["Viewer", "Editor"]]);
    let v2 = approval(&[&["Viewer", "Editor"], &["Viewer"]]);
    for kind in [MessageKind::Full, MessageKind::AskReason] {
        let first = render_value(&v1, &kind, &sources, None).unwrap();
        let edit = match kind {
            MessageKind::Full => MessageKind::Edit { version: 1, of: 43 },
            _ => kind.clone(),
        };
        let second = render_value(&v2, &edit, &sources, None).unwrap();
        let (old, new) = (block_ids(&first), block_ids(&second));
        assert!(!old.is_empty() && old.len() == new.len(), "{old:?} {new:?}");
        for id in &new {
            assert!(!old.contains(id), "{id} is reused: {old:?} → {new:?}");
        }
        assert_eq!(new[0], "hookrelay_approval:42:1");
    }
    // The reason prompt replaces the request of the same version: the pick stays.
    let asked = render_value(&v2, &MessageKind::AskReason, &sources, None).unwrap();
    assert_eq!(
        block_ids(&asked),
        ["hookrelay_approval:42:1", "hookrelay_reason:42:1"]
    );
}

/// A click on the buttons as sent comes back to the request they were sent for.
#[test]
fn a_click_on_the_versioned_buttons_names_the_request() {
    let sent = render_value(
        &approval(&[&["Viewer"], &["Editor"]]),
        &MessageKind::Full,
        &BTreeMap::new(),
        None,
    )
    .unwrap();
    let block = block_ids(&sent)[0].clone();
    let click = json!({"type": "block_actions", "user": {"id": "U1"},
        "actions": [{"block_id": block, "action_id": "approve", "value": "42"}],
        "state": {"values": {block.clone(): {"choice": {"selected_option": {"value": "Editor"}}}}}});
    match parse(&click) {
        Interaction::Action {
            notification_id: 42,
            kind: ClickKind::Approve { choice },
            ..
        } => assert_eq!(choice.as_deref(), Some("Editor")),
        other => panic!("{other:?}"),
    }
}
