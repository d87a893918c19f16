//! Tray commerce notifications (seed 003). Pure: parse, validate, render; no HTTP, no store.
//!
//! Tray POSTs four parameters (`seller_id`, `scope_id`, `scope_name`, `act`) plus `app_code` and
//! `url_notification`, form-encoded, whenever a record in an enabled scope is inserted, updated or
//! deleted. It retries until it gets a 200, and recommends storing notifications and grouping
//! identical ones before acting: [`TrayNotification::coalesce_key`] is that grouping identity and
//! [`render`] says how many identical notifications one message stands for.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::opportunity::kind_of;
use crate::slack::escape::mrkdwn;

/// Longest `seller_id`, `scope_id` or `app_code` kept: Tray's are short numbers, and the ids are
/// part of a store key.
const MAX_ID_CHARS: usize = 256;
/// Longest `url_notification` kept (it is only echoed back by Tray, never shown or followed).
const MAX_URL_CHARS: usize = 2048;
/// How much of an id is shown in a message; ids are at most [`MAX_ID_CHARS`] before escaping.
const ID_SHOWN_MAX: usize = 300;
/// Slack allows 3,000 characters of section text; this one is a line or two.
const SECTION_MAX: usize = 3000;
/// Context elements share the 3,000 character text limit.
const CONTEXT_MAX: usize = 700;
/// Slack truncates `text` beyond 40,000 characters; the fallback is one line in a notification.
const FALLBACK_MAX: usize = 800;

/// Tray scope names, exactly the documented list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    Product,
    ProductPrice,
    ProductStock,
    Variant,
    VariantPrice,
    VariantStock,
    Order,
    Customer,
}

impl ScopeName {
    /// Every documented scope, in the documentation's order.
    pub const ALL: [ScopeName; 8] = [
        ScopeName::Product,
        ScopeName::ProductPrice,
        ScopeName::ProductStock,
        ScopeName::Variant,
        ScopeName::VariantPrice,
        ScopeName::VariantStock,
        ScopeName::Order,
        ScopeName::Customer,
    ];

    /// The name as Tray sends it, such as `product_price`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeName::Product => "product",
            ScopeName::ProductPrice => "product_price",
            ScopeName::ProductStock => "product_stock",
            ScopeName::Variant => "variant",
            ScopeName::VariantPrice => "variant_price",
            ScopeName::VariantStock => "variant_stock",
            ScopeName::Order => "order",
            ScopeName::Customer => "customer",
        }
    }

    /// The name for people, such as `product price`.
    pub fn label(self) -> &'static str {
        match self {
            ScopeName::Product => "product",
            ScopeName::ProductPrice => "product price",
            ScopeName::ProductStock => "product stock",
            ScopeName::Variant => "variant",
            ScopeName::VariantPrice => "variant price",
            ScopeName::VariantStock => "variant stock",
            ScopeName::Order => "order",
            ScopeName::Customer => "customer",
        }
    }

    /// The scope Tray names `text` (exact, case-sensitive match on the documented names).
    pub fn parse(text: &str) -> Option<ScopeName> {
        ScopeName::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The action Tray reports on a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Insert,
    Update,
    Delete,
}

impl Act {
    /// Every documented action.
    pub const ALL: [Act; 3] = [Act::Insert, Act::Update, Act::Delete];

    /// The action as Tray sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Insert => "insert",
            Act::Update => "update",
            Act::Delete => "delete",
        }
    }

    /// What happened, for a message: "created", "updated", "deleted".
    pub fn past_tense(self) -> &'static str {
        match self {
            Act::Insert => "created",
            Act::Update => "updated",
            Act::Delete => "deleted",
        }
    }

    /// The action Tray names `text` (exact, case-sensitive match on the documented names).
    pub fn parse(text: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// A validated Tray notification. Ids are trimmed; optional fields are `None` when absent,
/// `null` or blank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrayNotification {
    /// The store ("Código do vendedor"); Tray sends a number, kept as the digits it sent.
    pub seller_id: String,
    /// The id of the record in `scope_name` (order id, product id, ...), kept as sent.
    pub scope_id: String,
    pub scope_name: ScopeName,
    pub act: Act,
    /// The Tray application the notification is for.
    #[serde(default)]
    pub app_code: Option<String>,
    /// The notification URL registered with Tray, echoed back; never followed.
    #[serde(default)]
    pub url_notification: Option<String>,
}

/// Why a request body is not a Tray notification.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrayError {
    /// A required field is missing or empty, or the body cannot be decoded (answered with 400).
    #[error("{0}")]
    BadRequest(String),
    /// `scope_name` or `act` is not in Tray's documented lists (answered with 400).
    #[error("{0}")]
    Unsupported(String),
    /// The Content-Type is neither form nor JSON (answered with 415).
    #[error("{0}")]
    MediaType(String),
}

/// The body formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
}

impl TrayNotification {
    /// Parses a request body. `content_type` is the request's Content-Type header value (may be
    /// empty). Accepts `application/x-www-form-urlencoded` (Tray's real format) and
    /// `application/json` (same fields as an object; ids may be numbers or strings). Matching is
    /// on the essence before `;`, case-insensitive. An empty content type is sniffed: a body
    /// starting with `{` or `[` is JSON, anything else form.
    pub fn parse(body: &[u8], content_type: &str) -> Result<TrayNotification, TrayError> {
        let fields = match format_of(content_type, body)? {
            Format::Form => form_fields(body)?,
            Format::Json => json_fields(body)?,
        };
        fields.validate()
    }

    /// The identity used to coalesce identical notifications: seller, scope name, scope id and
    /// act, as `seller/scope_name/scope_id/act` (e.g. `391250/order/4375797/update`). The ids are
    /// form-encoded (`/`, `%`, spaces, non-ASCII... escaped) so distinct notifications never share
    /// a key; the key holds no `\0`. It does not include the source name.
    pub fn coalesce_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            encode_key_part(&self.seller_id),
            self.scope_name.as_str(),
            encode_key_part(&self.scope_id),
            self.act.as_str()
        )
    }
}

fn encode_key_part(part: &str) -> String {
    form_urlencoded::byte_serialize(part.as_bytes()).collect()
}

fn format_of(content_type: &str, body: &[u8]) -> Result<Format, TrayError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(Format::Form),
        "application/json" => Ok(Format::Json),
        "" if looks_like_json(body) => Ok(Format::Json),
        "" => Ok(Format::Form),
        other => Err(TrayError::MediaType(format!(
            "unsupported Content-Type `{}`: send application/x-www-form-urlencoded or application/json",
            other.escape_default()
        ))),
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// The fields read from a body, before validation. `Some("")` is kept so blank and missing can
/// be told apart in messages.
#[derive(Default)]
struct RawFields {
    seller_id: Option<String>,
    scope_id: Option<String>,
    scope_name: Option<String>,
    act: Option<String>,
    app_code: Option<String>,
    url_notification: Option<String>,
}

impl RawFields {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "seller_id" => Some(&mut self.seller_id),
            "scope_id" => Some(&mut self.scope_id),
            "scope_name" => Some(&mut self.scope_name),
            "act" => Some(&mut self.act),
            "app_code" => Some(&mut self.app_code),
            "url_notification" => Some(&mut self.url_notification),
            _ => None,
        }
    }

    fn validate(self) -> Result<TrayNotification, TrayError> {
        let seller_id = required("seller_id", self.seller_id)?;
        check_len("seller_id", &seller_id, MAX_ID_CHARS)?;
        let scope_id = required("scope_id", self.scope_id)?;
        check_len("scope_id", &scope_id, MAX_ID_CHARS)?;
        let scope_name_text = required("scope_name", self.scope_name)?;
        let act_text = required("act", self.act)?;
        let scope_name = ScopeName::parse(&scope_name_text).ok_or_else(|| {
            unsupported(
                "scope_name",
                &scope_name_text,
                ScopeName::ALL.map(ScopeName::as_str),
            )
        })?;
        let act = Act::parse(&act_text)
            .ok_or_else(|| unsupported("act", &act_text, Act::ALL.map(Act::as_str)))?;
        let app_code = optional(self.app_code);
        if let Some(code) = &app_code {
            check_len("app_code", code, MAX_ID_CHARS)?;
        }
        let url_notification = optional(self.url_notification);
        if let Some(url) = &url_notification {
            check_len("url_notification", url, MAX_URL_CHARS)?;
        }
        Ok(TrayNotification {
            seller_id,
            scope_id,
            scope_name,
            act,
            app_code,
            url_notification,
        })
    }
}

fn required(field: &str, value: Option<String>) -> Result<String, TrayError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Some(_) => Err(TrayError::BadRequest(format!(
            "field `{field}` must not be empty"
        ))),
        None => Err(TrayError::BadRequest(format!(
            "field `{field}` is required"
        ))),
    }
}

fn optional(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), TrayError> {
    if value.chars().count() > max {
        return Err(TrayError::BadRequest(format!(
            "field `{field}` is longer than {max} characters"
        )));
    }
    Ok(())
}

fn unsupported<const N: usize>(field: &str, value: &str, allowed: [&str; N]) -> TrayError {
    let shown: String = value.chars().take(64).collect();
    let cut = if shown.len() < value.len() { "…" } else { "" };
    TrayError::Unsupported(format!(
        "unsupported {field} `{}{cut}`: expected one of {}",
        shown.escape_default(),
        allowed.join(", ")
    ))
}

fn form_fields(body: &[u8]) -> Result<RawFields, TrayError> {
    if std::str::from_utf8(body).is_err() {
        return Err(TrayError::BadRequest(
            "form body is not valid UTF-8".to_string(),
        ));
    }
    if looks_like_json(body) {
        return Err(TrayError::BadRequest(
            "body looks like JSON but Content-Type says application/x-www-form-urlencoded"
                .to_string(),
        ));
    }
    let mut fields = RawFields::default();
    for (key, value) in form_urlencoded::parse(body) {
        if let Some(slot) = fields.slot(&key) {
            if slot.is_some() {
                continue; // a repeated field: the first one wins
            }
            if value.contains(char::REPLACEMENT_CHARACTER) {
                return Err(TrayError::BadRequest(format!(
                    "field `{key}` is not valid UTF-8 once percent-decoded"
                )));
            }
            *slot = Some(value.into_owned());
        }
    }
    Ok(fields)
}

fn json_fields(body: &[u8]) -> Result<RawFields, TrayError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| TrayError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let obj = doc.as_object().ok_or_else(|| {
        TrayError::BadRequest(format!(
            "a Tray notification must be a JSON object, not {}",
            kind_of(&doc)
        ))
    })?;
    Ok(RawFields {
        seller_id: json_id(obj, "seller_id")?,
        scope_id: json_id(obj, "scope_id")?,
        scope_name: json_string(obj, "scope_name")?,
        act: json_string(obj, "act")?,
        app_code: json_id(obj, "app_code")?,
        url_notification: json_string(obj, "url_notification")?,
    })
}

/// A string, or an integer kept as its digits (Tray's example sends `"seller_id"=>391250`).
fn json_id(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, TrayError> {
    match obj.get(field) {
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::Number(_)) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string or an integer, not a fractional number"
        ))),
        Some(Value::String(_)) | Some(Value::Null) | None => json_string(obj, field),
        Some(other) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string or an integer, not {}",
            kind_of(other)
        ))),
    }
}

fn json_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, TrayError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(TrayError::BadRequest(format!(
            "field `{field}` must be a string, not {}",
            kind_of(other)
        ))),
    }
}

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
/// practice, but if it did it would cut at a character boundary and never inside an escape.
fn cut(text: String, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text;
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    if let Some(amp) = out.rfind('&') {
        if !out[amp..].contains(';') {
            out.truncate(amp);
        }
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_FORM: &str = "seller_id=391250&scope_id=4375797&scope_name=order&act=update\
         &app_code=718&url_notification=https%3A%2F%2Fsuaurldenotificacao";
    const FORM: &str = "application/x-www-form-urlencoded";

    fn seed_json() -> Value {
        json!({
            "seller_id": 391250, "scope_id": 4375797, "scope_name": "order", "act": "update",
            "app_code": "718", "url_notification": "https://suaurldenotificacao"
        })
    }

    fn seed() -> TrayNotification {
        TrayNotification::parse(SEED_FORM.as_bytes(), FORM).unwrap()
    }

    fn form_without(field: &str) -> String {
        form_urlencoded::parse(SEED_FORM.as_bytes())
            .filter(|(k, _)| k != field)
            .fold(
                form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(&k, &v);
                    s
                },
            )
            .finish()
    }

    fn bad_request(r: Result<TrayNotification, TrayError>) -> String {
        match r {
            Err(TrayError::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    #[test]
    fn the_seed_example_parses_the_same_as_form_and_as_json() {
        let form = seed();
        assert_eq!(form.seller_id, "391250");
        assert_eq!(form.scope_id, "4375797");
        assert_eq!(form.scope_name, ScopeName::Order);
        assert_eq!(form.act, Act::Update);
        assert_eq!(form.app_code.as_deref(), Some("718"));
        assert_eq!(
            form.url_notification.as_deref(),
            Some("https://suaurldenotificacao")
        );
        let body = seed_json().to_string();
        let json = TrayNotification::parse(body.as_bytes(), "application/json").unwrap();
        assert_eq!(form, json);
        // Ids sent as strings give the same value as ids sent as numbers.
        let mut doc = seed_json();
        doc["seller_id"] = json!("391250");
        doc["scope_id"] = json!("4375797");
        let strings =
            TrayNotification::parse(doc.to_string().as_bytes(), "application/json").unwrap();
        assert_eq!(form, strings);
    }

    #[test]
    fn content_type_matches_on_essence_case_insensitively() {
        let p = |ct: &str| TrayNotification::parse(SEED_FORM.as_bytes(), ct);
        assert_eq!(
            p("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            Ok(seed())
        );
        assert_eq!(p(" application/x-www-form-urlencoded "), Ok(seed()));
        let body = seed_json().to_string();
        assert_eq!(
            TrayNotification::parse(body.as_bytes(), "APPLICATION/JSON;charset=utf-8"),
            Ok(seed())
        );
    }

    #[test]
    fn an_empty_content_type_is_sniffed() {
        assert_eq!(
            TrayNotification::parse(SEED_FORM.as_bytes(), ""),
            Ok(seed())
        );
        let body = seed_json().to_string();
        assert_eq!(TrayNotification::parse(body.as_bytes(), ""), Ok(seed()));
    }

    #[test]
    fn wrong_content_types_are_media_type_errors() {
        for ct in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/xml",
            "json",
        ] {
            match TrayNotification::parse(SEED_FORM.as_bytes(), ct) {
                Err(TrayError::MediaType(m)) => assert!(m.contains("application/json"), "{m}"),
                other => panic!("{ct}: expected MediaType, got {other:?}"),
            }
        }
    }

    #[test]
    fn each_required_field_missing_or_empty_is_named() {
        for field in ["seller_id", "scope_id", "scope_name", "act"] {
            let err = bad_request(TrayNotification::parse(
                form_without(field).as_bytes(),
                FORM,
            ));
            assert!(err.contains(&format!("`{field}`")), "{err}");
            assert!(err.contains("required"), "{err}");

            let body = format!("{}&{field}=%20%20", form_without(field));
            let err = bad_request(TrayNotification::parse(body.as_bytes(), FORM));
            assert!(err.contains(&format!("`{field}`")), "{err}");
            assert!(err.contains("empty"), "{err}");

            let mut doc = seed_json();
            doc.as_object_mut().unwrap().remove(field);
            let err = bad_request(TrayNotification::parse(
                doc.to_string().as_bytes(),
                "application/json",
            ));
            assert!(err.contains(&format!("`{field}`")), "{err}");

            for blank in [json!(""), json!(" "), Value::Null] {
                let mut doc = seed_json();
                doc[field] = blank;
                let err = bad_request(TrayNotification::parse(
                    doc.to_string().as_bytes(),
                    "application/json",
                ));
                assert!(err.contains(&format!("`{field}`")), "{err}");
            }
        }
    }

    #[test]
    fn unknown_scope_names_and_acts_list_the_allowed_values() {
        let body = SEED_FORM.replace("scope_name=order", "scope_name=invoice");
        match TrayNotification::parse(body.as_bytes(), FORM) {
            Err(TrayError::Unsupported(m)) => {
                assert!(m.contains("invoice"), "{m}");
                for s in ScopeName::ALL {
                    assert!(m.contains(s.as_str()), "{m}");
                }
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        let body = SEED_FORM.replace("act=update", "act=upsert");
        match TrayNotification::parse(body.as_bytes(), FORM) {
            Err(TrayError::Unsupported(m)) => {
                assert!(m.contains("upsert"), "{m}");
                assert!(m.contains("insert, update, delete"), "{m}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn every_documented_scope_and_act_is_accepted() {
        for s in ScopeName::ALL {
            for a in Act::ALL {
                let body = SEED_FORM
                    .replace("scope_name=order", &format!("scope_name={}", s.as_str()))
                    .replace("act=update", &format!("act={}", a.as_str()));
                let n = TrayNotification::parse(body.as_bytes(), FORM).unwrap();
                assert_eq!((n.scope_name, n.act), (s, a));
                // serde names match Tray's names.
                assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
                assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
            }
        }
        assert_eq!(ScopeName::ProductPrice.label(), "product price");
    }

    #[test]
    fn extra_fields_are_ignored_and_repeated_form_fields_keep_the_first() {
        let body = format!("foo=bar&{SEED_FORM}&seller_id=999&act=delete");
        assert_eq!(TrayNotification::parse(body.as_bytes(), FORM), Ok(seed()));
        let mut doc = seed_json();
        doc["extra"] = json!({"nested": [1, 2]});
        assert_eq!(
            TrayNotification::parse(doc.to_string().as_bytes(), "application/json"),
            Ok(seed())
        );
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let body = "seller_id=1&scope_id=2&scope_name=customer&act=delete&app_code=";
        let n = TrayNotification::parse(body.as_bytes(), FORM).unwrap();
        assert_eq!(n.app_code, None);
        assert_eq!(n.url_notification, None);
        let mut doc = seed_json();
        doc["app_code"] = json!(718);
        let n = TrayNotification::parse(doc.to_string().as_bytes(), "application/json").unwrap();
        assert_eq!(n.app_code.as_deref(), Some("718"));
    }

    #[test]
    fn undecodable_bodies_are_bad_requests() {
        let json = "application/json";
        assert!(bad_request(TrayNotification::parse(b"{not json", json)).contains("JSON"));
        assert!(bad_request(TrayNotification::parse(b"", json)).contains("JSON"));
        assert!(bad_request(TrayNotification::parse(b"[1, 2]", json)).contains("array"));
        assert!(bad_request(TrayNotification::parse(b"\"x\"", json)).contains("object"));
        let body = seed_json().to_string();
        assert!(bad_request(TrayNotification::parse(body.as_bytes(), FORM)).contains("JSON"));
        assert!(
            bad_request(TrayNotification::parse(b"seller_id=\xff\xfe", FORM)).contains("UTF-8")
        );
        let body = SEED_FORM.replace("seller_id=391250", "seller_id=%FF%FE");
        assert!(bad_request(TrayNotification::parse(body.as_bytes(), FORM)).contains("UTF-8"));
        let mut doc = seed_json();
        doc["scope_id"] = json!(1.5);
        assert!(
            bad_request(TrayNotification::parse(doc.to_string().as_bytes(), json))
                .contains("`scope_id`")
        );
        let mut doc = seed_json();
        doc["act"] = json!(["update"]);
        assert!(
            bad_request(TrayNotification::parse(doc.to_string().as_bytes(), json))
                .contains("`act`")
        );
    }

    #[test]
    fn ids_longer_than_256_characters_are_refused() {
        for field in ["seller_id", "scope_id"] {
            let mut doc = seed_json();
            doc[field] = json!("9".repeat(257));
            let err = bad_request(TrayNotification::parse(
                doc.to_string().as_bytes(),
                "application/json",
            ));
            assert!(err.contains(&format!("`{field}`")), "{err}");
            doc[field] = json!("é".repeat(256));
            assert!(
                TrayNotification::parse(doc.to_string().as_bytes(), "application/json").is_ok()
            );
        }
    }

    #[test]
    fn coalesce_key_is_the_four_part_identity() {
        let a = seed();
        assert_eq!(a.coalesce_key(), "391250/order/4375797/update");
        let mut b = seed();
        b.app_code = None;
        b.url_notification = Some("https://elsewhere".into());
        assert_eq!(a.coalesce_key(), b.coalesce_key());

        let variants: Vec<TrayNotification> = vec![
            TrayNotification {
                seller_id: "391251".into(),
                ..seed()
            },
            TrayNotification {
                scope_id: "4375798".into(),
                ..seed()
            },
            TrayNotification {
                scope_name: ScopeName::Product,
                ..seed()
            },
            TrayNotification {
                act: Act::Delete,
                ..seed()
            },
        ];
        for v in &variants {
            assert_ne!(a.coalesce_key(), v.coalesce_key(), "{v:?}");
        }
        // Separators inside ids cannot make two notifications collide.
        let x = TrayNotification {
            seller_id: "1/order/2".into(),
            scope_id: "3".into(),
            ..seed()
        };
        let y = TrayNotification {
            seller_id: "1".into(),
            scope_id: "2/update/order/3".into(),
            ..seed()
        };
        assert_ne!(x.coalesce_key(), y.coalesce_key());
        assert!(!x.coalesce_key().contains('\0'));
    }

    #[test]
    fn render_a_single_notification() {
        let msg = render(&seed(), 1);
        assert_eq!(msg["text"], "Order 4375797 was updated (seller 391250)");
        assert_eq!(msg["blocks"][0]["type"], "section");
        assert_eq!(msg["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "*Order* 4375797 was updated"
        );
        assert_eq!(msg["blocks"][1]["type"], "context");
        assert_eq!(
            msg["blocks"][1]["elements"][0]["text"],
            "Tray seller 391250 · app 718"
        );
        assert!(!msg.to_string().contains("identical"));
        assert_eq!(render(&seed(), 0), msg);
    }

    #[test]
    fn render_coalesced_notifications_mentions_the_count() {
        let mut n = seed();
        n.scope_name = ScopeName::VariantStock;
        n.act = Act::Insert;
        n.app_code = None;
        let msg = render(&n, 5);
        assert_eq!(
            msg["text"],
            "Variant stock 4375797 was created (seller 391250) — \
             5 identical notifications arrived within the window"
        );
        assert!(msg["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("5 identical notifications arrived within the window"));
        assert_eq!(
            msg["blocks"][1]["elements"][0]["text"],
            "Tray seller 391250"
        );
    }

    #[test]
    fn hostile_values_are_escaped_and_long_ones_cut() {
        let body = SEED_FORM
            .replace("seller_id=391250", "seller_id=%3C%21channel%3E")
            .replace("app_code=718", "app_code=%3C%40U123%3E+%26");
        let n = TrayNotification::parse(body.as_bytes(), FORM).unwrap();
        assert_eq!(n.seller_id, "<!channel>");
        let msg = render(&n, 3);
        let text = msg.to_string();
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(!text.contains("<@U123>"), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(text.contains("&lt;@U123&gt; &amp;"), "{text}");

        let n = TrayNotification {
            seller_id: "<".repeat(256),
            scope_id: "&".repeat(256),
            app_code: Some(">".repeat(256)),
            ..seed()
        };
        let msg = render(&n, u32::MAX);
        let len = |v: &Value| v.as_str().unwrap().chars().count();
        assert!(len(&msg["text"]) <= FALLBACK_MAX);
        assert!(len(&msg["blocks"][0]["text"]["text"]) <= SECTION_MAX);
        assert!(len(&msg["blocks"][1]["elements"][0]["text"]) <= CONTEXT_MAX);
        assert!(!msg.to_string().contains('<'));
    }

    #[test]
    fn cut_never_splits_an_escape() {
        assert_eq!(cut("ab&amp;cd".to_string(), 5), "ab…");
        assert_eq!(cut("abc".to_string(), 5), "abc");
        assert_eq!(cut("&amp;&amp;xyz".to_string(), 11), "&amp;&amp;…");
    }
}
