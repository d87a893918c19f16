//! Tray's unit tests: the seed's example as form and as JSON, each refusal and its message, the
//! coalescing key, and the message escaped and within Slack's limits.

use serde_json::json;

use super::message::{cut, CONTEXT_MAX, FALLBACK_MAX, SECTION_MAX};
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
    let strings = TrayNotification::parse(doc.to_string().as_bytes(), "application/json").unwrap();
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
    assert!(bad_request(TrayNotification::parse(b"seller_id=\xff\xfe", FORM)).contains("UTF-8"));
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
        bad_request(TrayNotification::parse(doc.to_string().as_bytes(), json)).contains("`act`")
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
        assert!(TrayNotification::parse(doc.to_string().as_bytes(), "application/json").is_ok());
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
