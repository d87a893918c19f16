//! A generic notification's Slack payloads: the message (marks, title, fields) and the
//! follow-up that names what a new version changed.

use serde_json::{json, Value};

use super::{changes, fill, scalar_text, GenericSettings, MAX_FIELDS};
use crate::slack::escape::{mrkdwn, plain};

/// Slack's header limit.
const TITLE_MAX: usize = 150;
/// A field's value is kept short so the card stays readable (Slack allows 2,000).
const FIELD_MAX: usize = 300;
/// A section's text limit.
const SECTION_MAX: usize = 3000;

/// The title as shown: the marks the values call for, then the filled template.
fn title(doc: &Value, settings: &GenericSettings, source: &str) -> String {
    let filled = fill(&settings.title, doc);
    let filled = if filled.trim().is_empty() {
        format!("Notification from {source}")
    } else {
        filled
    };
    let marks: Vec<&str> = settings
        .marks
        .iter()
        .filter_map(|(pointer, by_value)| {
            let value = doc.pointer(pointer).and_then(scalar_text)?;
            by_value
                .iter()
                .find(|(v, _)| v.eq_ignore_ascii_case(value.trim()))
                .map(|(_, mark)| mark.as_str())
        })
        .collect();
    if marks.is_empty() {
        filled
    } else {
        format!("{} {filled}", marks.join(" "))
    }
}

fn header(title: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": plain(title, TITLE_MAX), "emoji": true}})
}

/// The Slack payload for a generic notification.
pub fn render(doc: &Value, settings: &GenericSettings, source: &str) -> Value {
    let title = title(doc, settings, source);
    let fields: Vec<Value> = settings
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(label, pointer)| {
            let value = doc.pointer(pointer).and_then(scalar_text).unwrap_or_else(|| "—".into());
            json!({"type": "mrkdwn", "text": format!("*{}*\n{}", mrkdwn(label, 100), mrkdwn(&value, FIELD_MAX))})
        })
        .collect();
    let mut blocks = vec![header(&title)];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    json!({"text": mrkdwn(&title, 300), "blocks": blocks})
}

/// The fields a digest's line shows after the title: the first ones configured.
const LINE_FIELDS: usize = 3;

/// One line of a digest: the title (with its marks) in bold, then the first fields as
/// "Label: value", escaped and within `max_chars`.
pub fn render_line(
    doc: &Value,
    settings: &GenericSettings,
    source: &str,
    max_chars: usize,
) -> String {
    let title = mrkdwn(&title(doc, settings, source), TITLE_MAX);
    let facts: Vec<String> = settings
        .fields
        .iter()
        .take(LINE_FIELDS)
        .filter_map(|(label, pointer)| {
            let value = doc.pointer(pointer).and_then(scalar_text)?;
            Some(format!("{label}: {value}"))
        })
        .collect();
    if facts.is_empty() {
        return format!("*{title}*");
    }
    let left = max_chars.saturating_sub(title.chars().count() + 2);
    format!(
        "*{title}*{}",
        mrkdwn(&format!(" · {}", facts.join(" · ")), left)
    )
}

/// The follow-up for a new version: the title as it is now, and what changed since `old`.
pub fn render_changes(old: &Value, new: &Value, settings: &GenericSettings, source: &str) -> Value {
    let title = title(new, settings, source);
    let (changed, others) = changes(old, new, settings);
    let mut summary: Vec<String> = changed
        .iter()
        .map(|c| format!("{}: {} → {}", c.label, c.old, c.new))
        .collect();
    let mut lines: Vec<String> = changed
        .iter()
        .map(|c| {
            format!(
                "• *{}*: {} → {}",
                mrkdwn(&c.label, 100),
                mrkdwn(&c.old, FIELD_MAX),
                mrkdwn(&c.new, FIELD_MAX)
            )
        })
        .collect();
    if others > 0 {
        let more = format!(
            "{others} other value{} changed",
            if others == 1 { "" } else { "s" }
        );
        lines.push(format!("• {more}"));
        summary.push(more);
    }
    let text = format!("{title} — changed: {}", summary.join(", "));
    // Whole lines only, so a cut never falls inside an escape (`&amp;`).
    let mut body = String::from("*Changed*");
    for line in &lines {
        if body.chars().count() + line.chars().count() + 2 > SECTION_MAX {
            body.push_str("\n…");
            break;
        }
        body.push('\n');
        body.push_str(line);
    }
    json!({
        "text": mrkdwn(&text, SECTION_MAX),
        "blocks": [
            header(&title),
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ],
    })
}
