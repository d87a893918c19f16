//! Issue 3: every seed's webhook, routing rules, updates and coalescing, through the real server.

use std::sync::Arc;

use hookrelay::clock::ManualClock;
use serde_json::{json, Value};

use crate::fake_slack::FakeSlack;
use crate::helpers::{opportunity, spawn_app, spawn_app_with_clock, Answer};

const FORM: &str = "application/x-www-form-urlencoded";
const TRAY_ORDER: &str = "seller_id=391250&scope_id=4375797&scope_name=order&act=update&app_code=718&url_notification=https%3A%2F%2Fexample.com%2Fn";

fn assert_error(answer: &Answer, status: u16, kind: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["type"], kind, "{}", answer.text);
    assert!(
        answer.json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.text
    );
}

fn section_text(msg: &Value) -> String {
    msg["blocks"].as_array().map_or_else(String::new, |blocks| {
        blocks
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

// ---- opportunity: updates -------------------------------------------------------------------

#[test]
fn a_changed_opportunity_posts_one_follow_up_naming_old_and_new_values() {
    let app = spawn_app();
    let first = app.post(&opportunity("upd-1", "UK"));
    assert_eq!(first.status, 202);
    app.slack.wait_delivered("uk", 1);

    let mut changed = opportunity("upd-1", "UK");
    changed["amount"] = json!(6000);
    changed["close_date"] = json!("2017-04-01");
    let answer = app.post(&changed);
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.json["status"], "updated");
    assert_eq!(answer.json["id"], first.json["id"], "the same notification");

    let got = app.slack.wait_delivered("uk", 2);
    let follow_up = section_text(&got[1].body);
    assert!(
        follow_up.contains("Amount: 4,500 → 6,000; Close date: 2017-03-16 → 2017-04-01"),
        "{follow_up}"
    );
    // The same content again is a duplicate and posts nothing.
    let again = app.post(&changed);
    assert_eq!(
        (again.status, again.json["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(app.post(&opportunity("marker", "UK")).status, 202);
    let got = app.slack.wait_delivered("uk", 3);
    assert_eq!(
        got[2].crm_id().as_deref(),
        Some("marker"),
        "no message for the duplicate"
    );

    // Every version is kept, in order; the stored record is the latest.
    let id: u64 = first.json["id"].as_str().unwrap().parse().unwrap();
    let n = app.store.notification(id).unwrap().unwrap();
    assert_eq!(n.latest_version(), 1);
    assert!(n.version(0).unwrap().contains("4500"));
    assert!(n.version(1).unwrap().contains("6000"));
}

#[test]
fn queued_follow_ups_each_name_their_own_change() {
    let app = spawn_app();
    // The first message meets a 1 s pause, so both updates queue behind it.
    app.slack
        .script("uk", [crate::fake_slack::Reply::RateLimited(1)]);
    assert_eq!(app.post(&opportunity("two-1", "UK")).status, 202);
    app.slack.wait_for("uk", 1);
    for amount in [6000, 7000] {
        let mut v = opportunity("two-1", "UK");
        v["amount"] = json!(amount);
        assert_eq!(app.post(&v).json["status"], "updated");
    }
    let got = app.slack.wait_delivered("uk", 3);
    assert!(
        section_text(&got[1].body).contains("Amount: 4,500 → 6,000"),
        "{}",
        got[1].body
    );
    assert!(
        section_text(&got[2].body).contains("Amount: 6,000 → 7,000"),
        "{}",
        got[2].body
    );
}

#[test]
fn a_country_change_sends_the_full_message_to_the_new_region_and_a_note_to_the_old() {
    let app = spawn_app();
    assert_eq!(app.post(&opportunity("move-1", "UK")).status, 202);
    app.slack.wait_delivered("uk", 1);
    assert_eq!(
        app.post(&opportunity("move-1", "DE")).json["status"],
        "updated"
    );
    let eu = app.slack.wait_delivered("eu", 1);
    assert_eq!(
        eu[0].crm_id().as_deref(),
        Some("move-1"),
        "the full message in EU"
    );
    let uk = app.slack.wait_delivered("uk", 2);
    assert!(
        uk[1].body["text"].as_str().unwrap().contains("moved to EU"),
        "{}",
        uk[1].body
    );
}

// ---- routing rules --------------------------------------------------------------------------

#[test]
fn routes_override_the_country_and_can_name_a_one_off_webhook() {
    let app = spawn_app();
    let mut by_owner = opportunity("route-1", "UK");
    by_owner["owner_email"] = json!("route-me@EXAMPLE.com");
    assert_eq!(app.post(&by_owner).status, 202);
    let mut partner = opportunity("route-2", "UK");
    partner["type"] = json!("Partner");
    assert_eq!(app.post(&partner).status, 202);
    assert_eq!(
        app.slack.wait_delivered("eu", 1)[0].crm_id().as_deref(),
        Some("route-1")
    );
    assert_eq!(
        app.slack.wait_delivered("partners", 1)[0]
            .crm_id()
            .as_deref(),
        Some("route-2")
    );
    assert!(
        app.slack.received("uk").is_empty(),
        "nothing went by country"
    );
}

// ---- tray-commerce --------------------------------------------------------------------------

#[test]
fn tray_notifications_are_answered_with_exactly_200_as_form_or_json() {
    let app = spawn_app();
    let form = app.post_path("/hooks/shop", FORM, TRAY_ORDER.as_bytes());
    assert_eq!(form.status, 200, "{}", form.text);
    assert_eq!(form.json["status"], "accepted");
    let json_body =
        json!({"seller_id": 7, "scope_id": 55, "scope_name": "product_stock", "act": "insert"});
    let answer = app.post_path(
        "/hooks/shop",
        "application/json",
        json_body.to_string().as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    // Seller 391250 is mapped to UK; seller 7 falls back to the source's region, EU.
    let uk = app.slack.wait_delivered("uk", 1);
    assert!(
        uk[0].body["text"].as_str().unwrap().contains("4375797"),
        "{}",
        uk[0].body
    );
    let eu = app.slack.wait_delivered("eu", 1);
    assert!(
        eu[0].body["text"].as_str().unwrap().contains("55"),
        "{}",
        eu[0].body
    );
}

#[test]
fn bad_tray_notifications_get_400_json_errors() {
    let app = spawn_app();
    for (body, what) in [
        ("scope_id=1&scope_name=order&act=update", "seller_id"),
        (
            "seller_id=1&scope_id=&scope_name=order&act=update",
            "scope_id",
        ),
        (
            "seller_id=1&scope_id=2&scope_name=coupon&act=update",
            "coupon",
        ),
        (
            "seller_id=1&scope_id=2&scope_name=order&act=archive",
            "archive",
        ),
    ] {
        let answer = app.post_path("/hooks/shop", FORM, body.as_bytes());
        assert_error(&answer, 400, "invalid_request");
        assert!(
            answer.json["error"].as_str().unwrap().contains(what),
            "{what}: {}",
            answer.text
        );
    }
    assert_error(
        &app.post_path("/hooks/shop", "text/csv", b"a,b"),
        415,
        "unsupported_media_type",
    );
}

#[test]
fn identical_tray_notifications_in_the_window_become_one_message_with_the_count() {
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(Arc::clone(&clock));
    let first = app.post_path("/hooks/shop", FORM, TRAY_ORDER.as_bytes());
    assert_eq!(first.json["status"], "accepted");
    for _ in 0..2 {
        clock.advance(300);
        let again = app.post_path("/hooks/shop", FORM, TRAY_ORDER.as_bytes());
        assert_eq!(
            (again.status, again.json["status"].as_str()),
            (200, Some("coalesced"))
        );
        assert_eq!(again.json["id"], first.json["id"]);
    }
    // After the window (1 s) the same notification is news again.
    clock.advance(1000);
    let later = app.post_path("/hooks/shop", FORM, TRAY_ORDER.as_bytes());
    assert_eq!(later.json["status"], "accepted");
    assert_ne!(later.json["id"], first.json["id"]);

    // The messages are due a grace second after their windows close, on the same clock.
    clock.advance(5000);
    let got = app.slack.wait_delivered("uk", 2);
    assert!(
        got[0].body["text"]
            .as_str()
            .unwrap()
            .contains("3 identical notifications"),
        "{}",
        got[0].body
    );
    assert!(
        !got[1].body["text"].as_str().unwrap().contains("identical"),
        "{}",
        got[1].body
    );
}

// ---- rainforest -----------------------------------------------------------------------------

fn rainforest_event(app_slack: &FakeSlack, event: &str, payload: Value) -> Value {
    json!({
        "event_name": event,
        "integrations": [{"key": "slack", "settings": {"url": app_slack.url("qa")}}],
        "payload": payload,
    })
}

fn run() -> Value {
    json!({"id": 4021, "description": "Checkout smoke <!here>", "result": "failed", "frontend_url": "https://app.rainforestqa.com/runs/4021"})
}

#[test]
fn rainforest_lists_its_slack_schema() {
    let app = spawn_app();
    let list = app.get("/integrations");
    assert_eq!(list.status, 200);
    assert_eq!(list.json[0]["key"], "slack");
    assert_eq!(
        list.json[0]["settings"][0],
        json!({"key": "url", "title": "Slack incoming webhook URL", "required": true})
    );
    assert_eq!(app.get("/integrations/slack").json["title"], "Slack");
    assert_eq!(app.get("/integrations/jira").status, 404);
}

#[test]
fn each_rainforest_event_gets_its_own_message() {
    let app = spawn_app();
    let events = [
        (
            "run_completion",
            json!({"run": run(), "failed_tests": [{"id": 1, "title": "Pay with card"}, {"id": 2, "title": "Apply coupon"}]}),
        ),
        ("run_error", json!({"run": run()})),
        ("run_webhook_timeout", json!({"run": run()})),
        (
            "run_test_failure",
            json!({"run": run(), "failed_test": {"id": 9, "title": "Log in"}}),
        ),
    ];
    for (name, payload) in &events {
        let body = rainforest_event(&app.slack, name, payload.clone());
        let answer = app.post_path("/events", "application/json", body.to_string().as_bytes());
        assert_eq!(answer.status, 201, "{name}: {}", answer.text);
        assert_eq!(answer.json, json!({"status": "ok"}));
    }
    let got = app.slack.wait_delivered("qa", 4);
    let all: Vec<String> = got.iter().map(|r| r.body.to_string()).collect();
    assert!(
        all.iter()
            .any(|m| m.contains("Pay with card") && m.contains("Apply coupon")),
        "{all:#?}"
    );
    assert!(all.iter().any(|m| m.contains("Log in")), "{all:#?}");
    assert!(
        all.iter().all(|m| !m.contains("<!here>")),
        "mentions are escaped: {all:#?}"
    );
    // The same event again (same run) is not posted twice: a later event to the same webhook
    // (a marker) arrives as the fifth message, with nothing between.
    let body = rainforest_event(&app.slack, "run_error", json!({"run": run()}));
    let again = app.post_path("/events", "application/json", body.to_string().as_bytes());
    assert_eq!(again.status, 201);
    let mut marker_run = run();
    marker_run["id"] = json!(5000);
    marker_run["description"] = json!("marker");
    let marker = rainforest_event(&app.slack, "run_error", json!({"run": marker_run}));
    let answer = app.post_path("/events", "application/json", marker.to_string().as_bytes());
    assert_eq!(answer.status, 201);
    let got = app.slack.wait_delivered("qa", 5);
    assert!(
        got[4].body.to_string().contains("marker"),
        "{}",
        got[4].body
    );
    assert_eq!(app.slack.received("qa").len(), 5);
}

#[test]
fn rainforest_errors_use_its_types_and_never_show_the_webhook_secret() {
    let app = spawn_app();
    let post =
        |body: &Value| app.post_path("/events", "application/json", body.to_string().as_bytes());
    assert_error(
        &app.post_path("/events", "application/json", b"{nope"),
        400,
        "invalid_request",
    );
    assert_error(
        &post(&rainforest_event(
            &app.slack,
            "run_party",
            json!({"run": run()}),
        )),
        400,
        "invalid_request",
    );
    assert_error(
        &post(&rainforest_event(
            &app.slack,
            "run_completion",
            json!({"run": run()}),
        )),
        400,
        "invalid_request",
    );
    let mut jira = rainforest_event(&app.slack, "run_error", json!({"run": run()}));
    jira["integrations"][0]["key"] = json!("jira");
    assert_error(&post(&jira), 400, "unsupported_integration");
    let mut no_url = rainforest_event(&app.slack, "run_error", json!({"run": run()}));
    no_url["integrations"][0]["settings"] = json!({});
    assert_error(&post(&no_url), 400, "misconfigured_integration");
    let mut internal = rainforest_event(&app.slack, "run_error", json!({"run": run()}));
    internal["integrations"][0]["settings"]["url"] =
        json!("https://169.254.169.254/latest/SECRETPATH");
    let answer = post(&internal);
    assert_error(&answer, 400, "misconfigured_integration");
    assert!(!answer.text.contains("SECRETPATH"), "{}", answer.text);
    assert!(app.slack.all().is_empty(), "nothing was posted");
    let metrics = app.get("/metrics").text;
    assert!(
        metrics.contains(
            r#"hookrelay_received_total{source="rainforest",outcome="invalid_request"} 3"#
        ),
        "refused events are counted: {metrics}"
    );
    assert!(metrics.contains(
        r#"hookrelay_received_total{source="rainforest",outcome="misconfigured_integration"} 2"#
    ));
}

// ---- generic --------------------------------------------------------------------------------

#[test]
fn a_generic_source_shows_its_title_and_fields_and_dedupes_by_its_key() {
    let app = spawn_app();
    let order = json!({"order": {"id": "A-17"}, "customer": "Acme <Ltd>", "amount": 120.5, "status": "paid"});
    let post = |v: &Value| {
        app.post_path(
            "/hooks/orders",
            "application/json",
            v.to_string().as_bytes(),
        )
    };
    assert_eq!(post(&order).status, 202);
    assert_eq!(post(&order).json["status"], "duplicate");
    assert_error(&post(&json!({"customer": "no id"})), 422, "invalid_record");
    assert_error(
        &post(&json!(["not", "an", "object"])),
        422,
        "invalid_record",
    );
    let got = app.slack.wait_delivered("us", 1);
    let msg = &got[0].body;
    assert_eq!(
        msg["blocks"][0]["text"]["text"],
        "Order A-17 from Acme <Ltd>"
    );
    assert_eq!(msg["text"], "Order A-17 from Acme &lt;Ltd&gt;");
    assert_eq!(msg["blocks"][1]["fields"][0]["text"], "*Amount*\n120.5");
}
