//! A digest's message: a header saying how many of what for which region ("12 new
//! opportunities for UK"), one line per notification, oldest first (its title, key facts and
//! id, escaped and cut like every message), and how many more are still to follow.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::render::render_value;
use crate::config::SourceSettings;
use crate::model::SourceKind;
use crate::slack::escape::{cut_escaped, mrkdwn, plain};
use crate::sources::generic::{self, GenericSettings};
use crate::sources::opportunity::message::render_line;
use crate::sources::Record;
use crate::store::records::{MessageKind, Notification};

/// A line is one notification: a sentence, not a card (Slack would take 3,000 characters).
const LINE_MAX: usize = 280;
/// Slack's limit for a header's plain text.
const HEADER_MAX: usize = 150;
/// Slack's `text` fallback is one line in a notification.
const FALLBACK_MAX: usize = 300;

/// The digest of `members` (oldest first) for `region`; `more` are still waiting behind it.
pub fn render_digest(
    region: &str,
    members: &[Notification],
    more: u32,
    sources: &BTreeMap<String, SourceSettings>,
) -> Value {
    let header = header(region, members);
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": plain(&header, HEADER_MAX), "emoji": true}}),
    ];
    for n in members {
        let text = format!("{} · id {}", line(n, sources), n.id);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if more > 0 {
        // Counted when the digest was made: more may arrive meanwhile, and they follow too.
        let follow = if more == 1 {
            "1 more is waiting and follows in the next message.".to_string()
        } else {
            format!("{more} more are waiting and follow in the next messages.")
        };
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": follow}]}));
    }
    json!({"text": mrkdwn(&header, FALLBACK_MAX), "blocks": blocks})
}

/// "12 new opportunities for UK"; "3 new notifications from alertmanager for EU"; "5 new
/// notifications for US" when the sources are mixed.
fn header(region: &str, members: &[Notification]) -> String {
    let count = members.len();
    let one = count == 1;
    let same_source = members.windows(2).all(|w| w[0].source == w[1].source);
    let noun = match members.first() {
        Some(n) if same_source => match n.kind {
            SourceKind::Opportunity if one => "opportunity".to_string(),
            SourceKind::Opportunity => "opportunities".to_string(),
            SourceKind::TrayCommerce => format!("shop notification{}", plural(one)),
            SourceKind::Rainforest => format!("Rainforest event{}", plural(one)),
            SourceKind::Generic | SourceKind::Approval => {
                format!("notification{} from {}", plural(one), n.source)
            }
        },
        _ => format!("notification{}", plural(one)),
    };
    format!("{count} new {noun} for {region}")
}

fn plural(one: bool) -> &'static str {
    if one {
        ""
    } else {
        "s"
    }
}

/// One notification's line, escaped: a line of its own for opportunities and generic sources,
/// else the fallback text of its full message, which already says what it is.
pub(super) fn line(n: &Notification, sources: &BTreeMap<String, SourceSettings>) -> String {
    match Record::parse(n.kind, n.raw.as_bytes()) {
        Ok(Record::Opportunity(o)) => render_line(&o, LINE_MAX),
        Ok(Record::Generic(doc)) => {
            let fallback = GenericSettings::titled("{/title}");
            let settings = sources
                .get(&n.source)
                .and_then(|s| s.generic.as_ref())
                .unwrap_or(&fallback);
            generic::render_line(&doc, settings, &n.source, LINE_MAX)
        }
        Ok(_) => match render_value(n, &MessageKind::Full, sources, None) {
            Ok(message) => message["text"]
                .as_str()
                .map(|t| cut_escaped(t, LINE_MAX))
                .unwrap_or_default(),
            Err(_) => "(its stored body cannot be shown)".to_string(),
        },
        Err(_) => "(its stored body cannot be shown)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::render_digest;
    use crate::model::SourceKind;
    use crate::store::records::Notification;

    fn opportunity(id: u64, name: &str) -> Notification {
        Notification {
            id,
            source: "crm".into(),
            external_id: id.to_string(),
            received_at_ms: 0,
            kind: SourceKind::Opportunity,
            raw: serde_json::json!({"id": id.to_string(), "name": name, "country": "UK", "account": "Acme & Sons", "amount": 12000, "status": "Prospecting"}).to_string(),
            earlier: Vec::new(),
            deliveries: Vec::new(),
            count: 1,
            region: "UK".into(),
            url: None,
            anchor: None,
            withdrawn: false,
            decision: None,
            events: Vec::new(),
        }
    }

    #[test]
    fn a_digest_has_a_header_one_escaped_line_each_and_says_how_many_follow() {
        let long = "x".repeat(400);
        let members = [
            opportunity(7, "<!channel> Big <deal>"),
            opportunity(9, &long),
        ];
        let message = render_digest("UK", &members, 12, &BTreeMap::new());
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "2 new opportunities for UK");
        assert_eq!(message["text"], "2 new opportunities for UK");
        let first = blocks[1]["text"]["text"].as_str().unwrap();
        assert_eq!(
            first,
            "*&lt;!channel&gt; Big &lt;deal&gt;* for Acme &amp; Sons, 12,000 (Prospecting) · id 7"
        );
        let second = blocks[2]["text"]["text"].as_str().unwrap();
        assert!(second.chars().count() < 320, "{second}");
        assert!(
            second.contains('…') && second.ends_with("· id 9"),
            "{second}"
        );
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            "12 more are waiting and follow in the next messages."
        );
        assert_eq!(blocks.len(), 4);
    }

    #[test]
    fn the_most_a_digest_lists_stays_within_slacks_50_blocks() {
        let members: Vec<Notification> = (0..48).map(|i| opportunity(i, "n")).collect();
        let message = render_digest("EU", &members, 1, &BTreeMap::new());
        assert_eq!(message["blocks"].as_array().unwrap().len(), 50);
        assert_eq!(
            message["blocks"][49]["elements"][0]["text"],
            "1 more is waiting and follows in the next message."
        );
    }
}
