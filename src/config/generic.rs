//! What a `generic` source shows and how it tells versions apart, as configured: its key
//! template, what a repeat of a key is, the pointers whose changes do not count, its title
//! template, marks and fields. Parsing and rendering a body with them is `sources::generic`'s.

use std::collections::BTreeMap;

/// Slack allows at most 10 fields in a section.
pub const MAX_FIELDS: usize = 10;

/// What the same key again with other content is (`on_repeat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRepeat {
    /// A duplicate, whatever it says (a sender's retries and re-sends).
    #[default]
    Duplicate,
    /// A new version of the message: a follow-up (or an edit in a bot-token region) names what
    /// changed, as for opportunities.
    Update,
}

/// What a generic source shows, from its `[sources.NAME]` table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenericSettings {
    /// The idempotency key, a template of `{/pointer}`s (`"{/groupKey}|{/status}"`); a bare
    /// pointer in the config is read as `{pointer}`. `None`: every request is new.
    pub id: Option<String>,
    /// What the same key with other content is.
    pub on_repeat: OnRepeat,
    /// Pointer patterns (`*` = any one key or index) whose changes are not a new version:
    /// timestamps a sender rewrites on every send.
    pub ignore: Vec<String>,
    /// Header template, e.g. `"New order {/order/id}"`.
    pub title: String,
    /// (pointer, value) pairs any of which closes a message (`/status` = `resolved`): the next
    /// version with other content starts a new message, as a new incident should, instead of
    /// editing one far up the channel.
    pub closed_when: Vec<(String, String)>,
    /// Marks put before the title, by the value at a pointer (`/status`: `resolved` → ✅), so
    /// that a channel reader sees the state before reading the words.
    pub marks: Vec<(String, BTreeMap<String, String>)>,
    /// (label, JSON pointer) pairs shown as fields.
    pub fields: Vec<(String, String)>,
}

impl GenericSettings {
    /// Settings that only title a message: for a source no longer configured.
    pub fn titled(title: &str) -> GenericSettings {
        GenericSettings {
            title: title.to_string(),
            ..GenericSettings::default()
        }
    }
}

/// The `{/pointer}`s of a template, in order.
pub fn template_pointers(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{/") {
        match rest[start..].find('}') {
            Some(end) => {
                out.push(&rest[start + 1..start + end]);
                rest = &rest[start + end + 1..];
            }
            None => break,
        }
    }
    out
}
