//! What a `generic` source shows, as configured: its idempotency pointer, title template and
//! fields. Parsing and rendering a body with them is `sources::generic`'s.

/// Slack allows at most 10 fields in a section.
pub const MAX_FIELDS: usize = 10;

/// What a generic source shows, from its `[sources.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericSettings {
    /// JSON pointer to the idempotency key; `None`: every request is new.
    pub id_pointer: Option<String>,
    /// Header template, e.g. `"New order {/order/id}"`.
    pub title: String,
    /// (label, JSON pointer) pairs shown as fields.
    pub fields: Vec<(String, String)>,
}
