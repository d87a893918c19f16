//! The Slack message for a Tray notification, or for identical ones coalesced within one window:
//! what happened to which record, for which seller, and how many notifications it stands for.

use serde_json::{json, Value};

use super::TrayNotification;
use crate::slack::escape::{cut_escaped, mrkdwn};

/// How much of an id is shown in a message; ids are at most [`MAX_ID_CHARS`](super::MAX_ID_CHARS)
/// before escaping.
const ID_SHOWN_MAX: usize = 300;
/// Slack allows 3,000 characters of section text; this one is a line or two.
pub(super) const SECTION_MAX: usize = 3000;
/// Context elements share the 3,000 character text limit.
pub(super) const CONTEXT_MAX: usize = 700;
/// Slack truncates `text` beyond 40,000 characters; the fallback is one line in a notification.
pub(super) const FALLBACK_MAX: usize = 800;

/// The Slack payload for `count` identical notifications that arrived within one coalescing
/// window (a `count` of 0 is treated as 1). Text like "Order 4375797 was updated (seller
/// 391250)", plus "— 3 identical notifications arrived within the window" when `count > 1`.
/// Blocks: a mrkdwn section and a context line with the seller id and app code. Every value is
/// escaped and cut to fit Slack's limits.
pub fn render(n: &TrayNotification, count: u32) -> Value {
    let count = count.max(1);
    let scope = capitalised(n.scope_name.label());
    let scope_id = mrkdwn(&n.scope_id, ID_SHOWN_MAX);
    let seller_id = mrkdwn(&n.seller_id, ID_SHOWN_MAX);
    let act = n.act.past_tense();
    let repeats =
        (count > 1).then(|| format!("{count} identical notifications arrived within the window"));

    let mut fallback = format!("{scope} {scope_id} was {act} (seller {seller_id})");
    let mut section = format!("*{scope}* {scope_id} was {act}");
    if let Some(r) = &repeats {
        fallback.push_str(&format!(" — {r}"));
        section.push_str(&format!("\n_{r}_"));
    }
    let mut context = format!("Tray seller {seller_id}");
    if let Some(code) = &n.app_code {
        context.push_str(&format!(" · app {}", mrkdwn(code, ID_SHOWN_MAX)));
    }

    json!({
        "text": cut(fallback, FALLBACK_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(section, SECTION_MAX)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": cut(context, CONTEXT_MAX)}
            ]}
        ]
    })
}

fn capitalised(label: &str) -> String {
    let mut chars = label.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A guard on text already escaped piece by piece: the pieces are bounded so this never cuts in
/// practice.
pub(super) fn cut(text: String, max_chars: usize) -> String {
    cut_escaped(&text, max_chars)
}
