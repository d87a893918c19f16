//! What a `generic` source shows and how it tells versions apart, as configured: its key
//! template, what a repeat of a key is, the pointers whose changes do not count, its title
//! template, marks and fields. Parsing and rendering a body with them is `sources::generic`'s.

use std::collections::BTreeMap;

use super::raw::RawSource;
use super::values::json_pointers;
use super::ConfigError;

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

/// A piece of a `{/pointer}` template.
pub enum TemplatePart<'a> {
    /// Text as written.
    Text(&'a str),
    /// A `{/pointer}`, without its braces.
    Pointer(&'a str),
}

/// A template cut into its text and its pointers; an unclosed `{/` and a `{` without `/` are
/// text. The one reader of templates: keys, titles and the config's checks all cut them here.
pub fn template_parts(template: &str) -> Vec<TemplatePart<'_>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{/") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        if start > 0 {
            parts.push(TemplatePart::Text(&rest[..start]));
        }
        parts.push(TemplatePart::Pointer(&rest[start + 1..start + end]));
        rest = &rest[start + end + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    parts
}

/// The `{/pointer}`s of a template, in order.
pub fn template_pointers(template: &str) -> Vec<&str> {
    template_parts(template)
        .into_iter()
        .filter_map(|part| match part {
            TemplatePart::Pointer(p) => Some(p),
            TemplatePart::Text(_) => None,
        })
        .collect()
}

/// `[sources.NAME]` of kind generic → its settings, each bad value named with an example.
pub(super) fn generic_settings(name: &str, s: &RawSource) -> Result<GenericSettings, ConfigError> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let id = match s.id.as_deref().map(str::trim) {
        None => None,
        // A bare pointer, as before templates: the whole key is that one field.
        Some(p) if p.starts_with('/') && !p.contains('{') => Some(format!("{{{p}}}")),
        Some(t) if !template_pointers(t).is_empty() => Some(t.to_string()),
        Some(t) => {
            return Err(ConfigError::invalid(
                &key("id"),
                t,
                "names no field: give a JSON pointer or a template of {/pointer}s",
                "\"/order/id\" or \"{/groupKey}|{/status}\"",
            ))
        }
    };
    let on_repeat = match s.on_repeat.as_deref() {
        None | Some("duplicate") => OnRepeat::Duplicate,
        Some("update") => OnRepeat::Update,
        Some(other) => {
            return Err(ConfigError::invalid(
                &key("on_repeat"),
                other,
                "is neither \"duplicate\" nor \"update\"",
                "\"update\"",
            ))
        }
    };
    if on_repeat == OnRepeat::Update && id.is_none() {
        return Err(ConfigError::invalid(
            &key("on_repeat"),
            "update",
            "needs sources.NAME.id: versions are told apart by their key",
            "id = \"{/groupKey}\"",
        ));
    }
    let ignore = s.ignore.clone().unwrap_or_default();
    if !ignore.is_empty() && on_repeat != OnRepeat::Update {
        return Err(ConfigError::invalid(
            &key("ignore"),
            ignore.join(", "),
            "only matters with on_repeat = \"update\" (a duplicate ignores everything)",
            "on_repeat = \"update\"",
        ));
    }
    if let Some(p) = ignore.iter().find(|p| !p.starts_with('/')) {
        return Err(ConfigError::invalid(
            &key("ignore"),
            p,
            "is not a JSON pointer (`*` stands for any one key or index)",
            "[\"/alerts/*/startsAt\"]",
        ));
    }
    let closed_when: Vec<(String, String)> = s
        .closed_when
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if !closed_when.is_empty() && on_repeat != OnRepeat::Update {
        return Err(ConfigError::invalid(
            &key("closed_when"),
            closed_when
                .iter()
                .map(|(p, v)| format!("{p} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            "only matters with on_repeat = \"update\"",
            "on_repeat = \"update\"",
        ));
    }
    json_pointers(
        &key("closed_when"),
        closed_when.iter().map(|(p, _)| p.as_str()),
        "{ \"/status\" = \"resolved\" }",
    )?;
    let marks: Vec<(String, std::collections::BTreeMap<String, String>)> =
        s.marks.clone().unwrap_or_default().into_iter().collect();
    json_pointers(
        &key("marks"),
        marks.iter().map(|(p, _)| p.as_str()),
        "{ \"/status\" = { firing = \"🔥\", resolved = \"✅\" } }",
    )?;
    let fields = s.fields.clone().unwrap_or_default();
    if fields.len() > MAX_FIELDS {
        return Err(ConfigError::invalid(
            &key("fields"),
            format!("{} fields", fields.len()),
            "has more than Slack's 10 fields per message",
            "[[\"Amount\", \"/amount\"]]",
        ));
    }
    json_pointers(
        &key("fields"),
        fields.iter().map(|(_, p)| p.as_str()),
        "[[\"Amount\", \"/amount\"]]",
    )?;
    Ok(GenericSettings {
        id,
        on_repeat,
        ignore,
        title: s
            .title
            .clone()
            .unwrap_or_else(|| format!("Notification from {name}")),
        closed_when,
        marks,
        fields,
    })
}
