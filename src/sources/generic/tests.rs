//! Keys, versions and messages of the generic kind.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn settings() -> GenericSettings {
    GenericSettings {
        id: Some("{/order/id}".into()),
        title: "New order {/order/id} from {/customer}".into(),
        fields: vec![
            ("Amount".into(), "/amount".into()),
            ("Missing".into(), "/nope".into()),
        ],
        ..GenericSettings::default()
    }
}

/// Alertmanager's shape, as the preset configures it.
fn alerts() -> GenericSettings {
    let marks = BTreeMap::from([
        ("firing".to_string(), "🔥".to_string()),
        ("resolved".to_string(), "✅".to_string()),
    ]);
    GenericSettings {
        id: Some("{/groupKey}".into()),
        on_repeat: OnRepeat::Update,
        ignore: vec!["/alerts/*/startsAt".into(), "/truncatedAlerts".into()],
        title: "{/commonLabels/alertname}: {/status}".into(),
        marks: vec![("/status".into(), marks)],
        closed_when: vec![("/status".into(), "resolved".into())],
        fields: vec![("Severity".into(), "/commonLabels/severity".into())],
    }
}

fn alert(status: &str, starts: &str) -> serde_json::Value {
    json!({
        "groupKey": "{}:{alertname=\"HighCPU\"}", "status": status, "truncatedAlerts": 0,
        "commonLabels": {"alertname": "HighCPU", "severity": "page"},
        "alerts": [{"status": status, "startsAt": starts, "labels": {"instance": "db1"}}]
    })
}

#[test]
fn templates_substitute_pointers_and_escape_for_slack() {
    let doc = json!({"order": {"id": 42}, "customer": "<!channel> Ltd", "amount": 9.5});
    let msg = render(&doc, &settings(), "shop");
    assert_eq!(
        msg["blocks"][0]["text"]["text"],
        "New order 42 from <!channel> Ltd"
    );
    assert_eq!(msg["text"], "New order 42 from &lt;!channel&gt; Ltd");
    assert_eq!(msg["blocks"][1]["fields"][0]["text"], "*Amount*\n9.5");
    assert_eq!(msg["blocks"][1]["fields"][1]["text"], "*Missing*\n—");
}

#[test]
fn a_template_is_text_not_code() {
    assert_eq!(
        fill("{/a}{/b} {not a pointer} {/unclosed", &json!({"a": "x"})),
        "x {not a pointer} {/unclosed"
    );
}

#[test]
fn the_idempotency_key_is_required_when_configured() {
    assert_eq!(
        parse(&json!({"order": {"id": 7}}), &settings()).unwrap(),
        Some("7".into())
    );
    assert!(parse(&json!({"order": {}}), &settings()).is_err());
    assert!(parse(&json!([1]), &settings()).is_err());
    let no_key = GenericSettings {
        id: None,
        ..settings()
    };
    assert_eq!(parse(&json!({}), &no_key).unwrap(), None);
}

#[test]
fn a_key_of_several_fields_names_the_one_that_is_missing() {
    let s = GenericSettings {
        id: Some("{/groupKey}|{/status}".into()),
        ..settings()
    };
    let doc = json!({"groupKey": "g1", "status": "firing"});
    assert_eq!(parse(&doc, &s).unwrap(), Some("g1|firing".into()));
    let err = parse(&json!({"groupKey": "g1"}), &s).unwrap_err();
    assert!(err.0.contains("/status"), "{}", err.0);
    let err = parse(&json!({"groupKey": "", "status": "x"}), &s).unwrap_err();
    assert!(
        err.0.contains("/groupKey") && err.0.contains("empty"),
        "{}",
        err.0
    );
    let long = json!({"groupKey": "g".repeat(300), "status": "x"});
    assert!(parse(&long, &s).is_err());
}

#[test]
fn ignored_pointers_do_not_make_a_new_version() {
    let s = alerts();
    let first = alert("firing", "2026-12-02T10:00:00Z");
    let resent = alert("firing", "2026-12-02T10:05:00Z");
    assert!(same(&first, &resent, &s.ignore), "startsAt is ignored");
    assert!(!same(&first, &resent, &[]), "without ignore it differs");
    let mut more = alert("firing", "2026-12-02T10:00:00Z");
    more["truncatedAlerts"] = json!(3);
    assert!(same(&first, &more, &s.ignore));
    assert!(!same(
        &first,
        &alert("resolved", "2026-12-02T10:00:00Z"),
        &s.ignore
    ));
}

#[test]
fn a_change_names_the_shown_values_and_counts_the_rest() {
    let s = alerts();
    let (changed, others) = changes(&alert("firing", "a"), &alert("resolved", "b"), &s);
    assert_eq!(
        changed,
        vec![Changed {
            label: "Status".into(),
            old: "firing".into(),
            new: "resolved".into()
        }]
    );
    // /alerts/0/status; startsAt is ignored.
    assert_eq!(others, 1);
}

#[test]
fn marks_lead_the_title_and_the_follow_up_names_the_change() {
    let s = alerts();
    let firing = render(&alert("firing", "a"), &s, "am");
    assert_eq!(firing["blocks"][0]["text"]["text"], "🔥 HighCPU: firing");
    let follow_up = render_changes(&alert("firing", "a"), &alert("resolved", "a"), &s, "am");
    assert_eq!(
        follow_up["text"],
        "✅ HighCPU: resolved — changed: Status: firing → resolved, 1 other value changed"
    );
    assert_eq!(
        follow_up["blocks"][0]["text"]["text"],
        "✅ HighCPU: resolved"
    );
    assert_eq!(
        follow_up["blocks"][1]["text"]["text"],
        "*Changed*\n• *Status*: firing → resolved\n• 1 other value changed"
    );
}

#[test]
fn a_follow_up_escapes_what_the_sender_wrote() {
    let s = GenericSettings {
        fields: vec![("Owner".into(), "/owner".into())],
        title: "Ticket".into(),
        ..GenericSettings::default()
    };
    let msg = render_changes(
        &json!({"owner": "a"}),
        &json!({"owner": "<!here> & co"}),
        &s,
        "t",
    );
    assert_eq!(
        msg["blocks"][1]["text"]["text"],
        "*Changed*\n• *Owner*: a → &lt;!here&gt; &amp; co"
    );
}

#[test]
fn a_closing_value_is_found_without_case() {
    let closing = alerts().closed_when;
    assert!(closes(&alert("Resolved", "a"), &closing));
    assert!(!closes(&alert("firing", "a"), &closing));
    assert!(!closes(&json!({}), &closing));
}

#[test]
fn keys_of_several_fields_cannot_collide() {
    let s = GenericSettings {
        id: Some("{/a}|{/b}".into()),
        ..GenericSettings::default()
    };
    let one = parse(&json!({"a": "x|y", "b": "z"}), &s).unwrap();
    let two = parse(&json!({"a": "x", "b": "y|z"}), &s).unwrap();
    assert_ne!(one, two);
    assert_eq!(one.as_deref(), Some("x%7Cy|z"));
    assert_eq!(
        parse(&json!({"a": "50%", "b": 1}), &s).unwrap().as_deref(),
        Some("50%25|1")
    );
    // One field: the value as it is, so keys stored before templates still match.
    let single = GenericSettings {
        id: Some("{/a}".into()),
        ..GenericSettings::default()
    };
    assert_eq!(
        parse(&json!({"a": "50%|x"}), &single).unwrap().as_deref(),
        Some("50%|x")
    );
}
