//! An opportunity's Slack messages (Block Kit plus a `text` fallback): the card, the edited card,
//! the follow-up naming what changed, and the note that it moved to another region.

use serde_json::{json, Number, Value};

use super::Opportunity;
use crate::slack::escape::{mrkdwn, plain};

/// Slack's limit for a header's plain text.
const HEADER_MAX: usize = 150;
/// Slack allows 2,000 characters per section field; a field's value is kept far shorter so the
/// card stays readable, and the label is counted in.
const FIELD_VALUE_MAX: usize = 300;
/// Slack truncates `text` beyond 40,000 characters; the fallback is one line in a notification.
const FALLBACK_MAX: usize = 300;
/// Slack's limit for a section's text.
const SECTION_MAX: usize = 3000;
/// Context elements share the 3,000 character text limit.
const CONTEXT_MAX: usize = 500;
/// Shown for an optional field the CRM left out.
const MISSING: &str = "—";

/// The Slack payload for a new opportunity.
pub fn render_opportunity(o: &Opportunity) -> Value {
    opportunity_card(o, &[])
}

/// The message an update puts in place of the posted one (`chat.update`): the new version
/// whole, each changed field marked with its old value, and a line saying it was updated.
pub fn render_edited(old: &Opportunity, new: &Opportunity) -> Value {
    let changed: Vec<(&'static str, String)> = shown_fields(old)
        .into_iter()
        .zip(shown_fields(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((label, a), _)| (label, a))
        .collect();
    opportunity_card(new, &changed)
}

/// The opportunity card; `changed` lists (label, old value) of fields to mark as updated.
fn opportunity_card(o: &Opportunity, changed: &[(&'static str, String)]) -> Value {
    let amount = o.amount.as_ref().map(format_amount);
    let owner = match (&o.owner_name, &o.owner_email) {
        (Some(n), Some(e)) => Some(format!("{n} ({e})")),
        (Some(n), None) => Some(n.clone()),
        (None, Some(e)) => Some(e.clone()),
        (None, None) => None,
    };
    let fields: Vec<Value> = [
        ("Account", o.account.as_deref()),
        ("Amount", amount.as_deref()),
        ("Stage", o.status.as_deref()),
        ("Type", o.kind.as_deref()),
        ("Close date", o.close_date.as_deref()),
        ("Owner", owner.as_deref()),
    ]
    .iter()
    .map(|(label, value)| {
        let shown = value.map_or_else(|| MISSING.to_string(), |v| mrkdwn(v, FIELD_VALUE_MAX));
        let text = match changed.iter().find(|(l, _)| l == label) {
            Some((_, was)) => format!(
                "*{label}* (updated)\n{shown} ~{}~",
                mrkdwn(was, FIELD_VALUE_MAX)
            ),
            None => format!("*{label}*\n{shown}"),
        };
        json!({"type": "mrkdwn", "text": text})
    })
    .collect();

    let mut summary = format!("New opportunity: {}", o.name);
    if let Some(account) = &o.account {
        summary.push_str(&format!(" for {account}"));
    }
    if let Some(a) = &amount {
        summary.push_str(&format!(", {a}"));
    }
    if let Some(stage) = &o.status {
        summary.push_str(&format!(" ({stage})"));
    }

    let mut context = format!("CRM id {} · country {}", o.id, o.country);
    if !changed.is_empty() {
        let labels: Vec<&str> = changed.iter().map(|(l, _)| *l).collect();
        context.push_str(&format!(" · updated: {}", labels.join(", ")));
        summary = format!(
            "Updated opportunity: {}",
            summary.trim_start_matches("New opportunity: ")
        );
    }
    json!({
        "text": mrkdwn(&summary, FALLBACK_MAX),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": plain(&o.name, HEADER_MAX), "emoji": true}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": mrkdwn(&context, CONTEXT_MAX)}
            ]}
        ]
    })
}

/// One line of a digest: the name in bold, then account, amount and stage as in the card's
/// fallback ("*Renewal 2027* for Acme, 4,500 (Qualification)"), escaped and within `max_chars`.
pub fn render_line(o: &Opportunity, max_chars: usize) -> String {
    let mut facts = String::new();
    if let Some(account) = &o.account {
        facts.push_str(&format!(" for {account}"));
    }
    if let Some(a) = &o.amount {
        facts.push_str(&format!(", {}", format_amount(a)));
    }
    if let Some(stage) = &o.status {
        facts.push_str(&format!(" ({stage})"));
    }
    let name = mrkdwn(&o.name, HEADER_MAX);
    let left = max_chars.saturating_sub(name.chars().count() + 2);
    format!("*{name}*{}", mrkdwn(&facts, left))
}

/// The fields a change message compares, with their labels, as shown in the full message.
fn shown_fields(o: &Opportunity) -> Vec<(&'static str, String)> {
    let owner = match (&o.owner_name, &o.owner_email) {
        (Some(n), Some(e)) => format!("{n} ({e})"),
        (Some(n), None) => n.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => MISSING.to_string(),
    };
    let or_missing = |v: &Option<String>| v.clone().unwrap_or_else(|| MISSING.to_string());
    vec![
        ("Name", o.name.clone()),
        ("Account", or_missing(&o.account)),
        (
            "Amount",
            o.amount
                .as_ref()
                .map_or_else(|| MISSING.to_string(), format_amount),
        ),
        ("Stage", or_missing(&o.status)),
        ("Type", or_missing(&o.kind)),
        ("Close date", or_missing(&o.close_date)),
        ("Owner", owner),
        ("Country", o.country.clone()),
    ]
}

/// The follow-up for an updated opportunity: what changed, old → new.
/// "Amount: 4,500 → 6,000; Close date: 2017-03-16 → 2017-04-01".
pub fn render_changes(old: &Opportunity, new: &Opportunity) -> Value {
    let changes: Vec<String> = shown_fields(old)
        .into_iter()
        .zip(shown_fields(new))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((label, a), (_, b))| format!("{label}: {a} → {b}"))
        .collect();
    let summary = if changes.is_empty() {
        "no shown field changed".to_string()
    } else {
        changes.join("; ")
    };
    let title = format!("Updated: {}", new.name);
    json!({
        "text": mrkdwn(&format!("{title}. {summary}"), FALLBACK_MAX),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": plain(&title, HEADER_MAX), "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(&summary, SECTION_MAX)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": mrkdwn(&format!("CRM id {} · country {}", new.id, new.country), CONTEXT_MAX)}
            ]}
        ]
    })
}

/// The short note for the region an opportunity left: "Sample02 moved to EU".
pub fn render_moved(o: &Opportunity, to: &str) -> Value {
    let text = format!("{} moved to {to} (country {})", o.name, o.country);
    json!({
        "text": mrkdwn(&text, FALLBACK_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(&text, SECTION_MAX)}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": mrkdwn(&format!("CRM id {}", o.id), CONTEXT_MAX)}
            ]}
        ]
    })
}

/// `4500` → `4,500`; `1234567.5` → `1,234,567.50`; `-12000` → `-12,000`.
pub fn format_amount(n: &Number) -> String {
    let text = if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        if f.fract() == 0.0 && f.abs() < 1e15 {
            format!("{f:.0}")
        } else {
            format!("{f:.2}")
        }
    };
    let (sign, rest) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Opportunity {
        Opportunity::parse(&json!({
            "id": "0065800000BwzJt", "name": "Sample02", "status": "Qualification",
            "account": "Andrew Test", "close_date": "2017-03-16", "type": "New Business",
            "country": "UK", "owner_name": "Andrew", "owner_email": "andrew@tray.io", "amount": 4500
        }))
        .unwrap()
    }

    #[test]
    fn amounts_get_thousands_separators() {
        let n = |v: Value| format_amount(v.as_number().unwrap());
        assert_eq!(n(json!(4500)), "4,500");
        assert_eq!(n(json!(999)), "999");
        assert_eq!(n(json!(1234567)), "1,234,567");
        assert_eq!(n(json!(-12000)), "-12,000");
        assert_eq!(n(json!(1234567.5)), "1,234,567.50");
        assert_eq!(n(json!(4500.0)), "4,500");
    }

    #[test]
    fn the_message_has_header_fields_and_crm_id() {
        let msg = render_opportunity(&sample());
        assert_eq!(msg["blocks"][0]["text"]["text"], "Sample02");
        let fields: Vec<&str> = msg["blocks"][1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Account*\nAndrew Test",
                "*Amount*\n4,500",
                "*Stage*\nQualification",
                "*Type*\nNew Business",
                "*Close date*\n2017-03-16",
                "*Owner*\nAndrew (andrew@tray.io)"
            ]
        );
        assert!(msg["blocks"][2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("0065800000BwzJt"));
        assert!(msg["text"].as_str().unwrap().contains("Sample02"));
    }

    #[test]
    fn hostile_values_are_escaped_and_long_ones_cut() {
        let mut o = sample();
        o.account = Some("<!channel> wins".into());
        o.name = "N".repeat(1000);
        let msg = render_opportunity(&o);
        let text = msg.to_string();
        assert!(!text.contains("<!channel>"));
        assert!(text.contains("&lt;!channel&gt; wins"));
        assert_eq!(
            msg["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
    }

    #[test]
    fn an_edited_message_marks_each_changed_field_with_its_old_value() {
        let old = sample();
        let mut new = sample();
        new.amount = Some(6000.into());
        new.account = Some("<!here> Ltd".into());
        let msg = render_edited(&old, &new);
        let fields = msg["blocks"][1]["fields"].to_string();
        assert!(
            fields.contains("*Amount* (updated)\\n6,000 ~4,500~"),
            "{fields}"
        );
        assert!(fields.contains("&lt;!here&gt; Ltd"), "{fields}");
        assert!(
            fields.contains("*Stage*\\nQualification"),
            "unchanged: {fields}"
        );
        let context = msg["blocks"][2]["elements"][0]["text"].as_str().unwrap();
        assert!(context.ends_with("updated: Account, Amount"), "{context}");
        assert!(msg["text"]
            .as_str()
            .unwrap()
            .starts_with("Updated opportunity: Sample02"));
        // Nothing changed: the plain card.
        assert_eq!(render_edited(&old, &old), render_opportunity(&old));
    }

    #[test]
    fn missing_optional_fields_show_a_dash() {
        let o = Opportunity::parse(&json!({"id": "1", "name": "n", "country": "US"})).unwrap();
        let msg = render_opportunity(&o);
        assert_eq!(msg["blocks"][1]["fields"][1]["text"], "*Amount*\n—");
    }

    #[test]
    fn a_change_message_names_each_changed_field_old_to_new() {
        let old = sample();
        let mut new = sample();
        new.amount = serde_json::from_value(json!(6000)).unwrap();
        new.close_date = Some("2017-04-01".into());
        let msg = render_changes(&old, &new);
        assert_eq!(
            msg["blocks"][1]["text"]["text"],
            "Amount: 4,500 → 6,000; Close date: 2017-03-16 → 2017-04-01"
        );
        assert_eq!(msg["blocks"][0]["text"]["text"], "Updated: Sample02");
    }

    #[test]
    fn a_move_note_names_the_new_region() {
        let msg = render_moved(&sample(), "EU");
        assert!(msg["text"].as_str().unwrap().contains("moved to EU"));
    }
}
