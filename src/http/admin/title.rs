//! The one-line title a list item shows (the opportunity's name and account, the Tray scope,
//! the request and its requester): the `text` fallback of the notification's Slack message,
//! so a list says what each item is without a second call.

use std::collections::BTreeMap;

use crate::config::SourceSettings;
use crate::delivery::render::render_value;
use crate::store::records::{MessageKind, Notification};

/// Longest title shown.
const TITLE_MAX: usize = 150;

pub fn title(n: &Notification, sources: &BTreeMap<String, SourceSettings>) -> String {
    let Ok(message) = render_value(n, &MessageKind::Full, sources, None) else {
        return format!("(unreadable {} body)", n.kind.as_str());
    };
    let text = message["text"].as_str().unwrap_or("");
    // The fallback is Slack mrkdwn: shown here as plain text.
    let plain = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let mut out: String = plain.chars().take(TITLE_MAX).collect();
    if plain.chars().count() > TITLE_MAX {
        out.push('…');
    }
    out
}
