//! Intake: routing, idempotency, and every error status of `POST /hooks/{source}`.

use serde_json::json;

use crate::fake_slack::FakeSlack;
use crate::helpers::{opportunity, spawn_app, TestApp, TOKEN};

#[test]
fn every_region_and_alias_reaches_its_own_channel() {
    let app = spawn_app();
    let cases = [
        ("uk", "UK"),
        ("uk", "GB"),
        ("uk", "gb"),
        ("us", "US"),
        ("us", "usa"),
        ("eu", "EU"),
        ("eu", "DE"),
        ("eu", "fr"),
    ];
    for (i, (_, country)) in cases.iter().enumerate() {
        let answer = app.post(&opportunity(&format!("opp-{i}"), country));
        assert_eq!(answer.status, 202, "{country}: {}", answer.text);
        assert_eq!(answer.json["status"], "accepted");
        assert!(answer.json["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    for channel in ["uk", "us", "eu"] {
        let expected: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| *c == channel)
            .map(|(i, _)| format!("opp-{i}"))
            .collect();
        let got = app.slack.wait_delivered(channel, expected.len());
        let mut ids: Vec<String> = got.iter().filter_map(|r| r.crm_id()).collect();
        ids.sort();
        assert_eq!(ids, expected, "channel {channel}");
    }
    assert_eq!(
        app.slack.all().len(),
        cases.len(),
        "no message went to a second channel"
    );
}

#[test]
fn the_message_is_block_kit_with_a_text_fallback() {
    let app = spawn_app();
    assert_eq!(app.post(&opportunity("0065800000BwzJt", "UK")).status, 202);
    let msg = &app.slack.wait_delivered("uk", 1)[0].body;
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert_eq!(msg["blocks"][0]["text"]["text"], "Deal 0065800000BwzJt");
    assert!(msg["text"].as_str().unwrap().contains("4,500"));
    let fields = msg["blocks"][1]["fields"].to_string();
    for expected in [
        "Andrew Test",
        "4,500",
        "Qualification",
        "New Business",
        "2017-03-16",
        "andrew@tray.io",
    ] {
        assert!(
            fields.contains(expected),
            "{expected} missing from {fields}"
        );
    }
}

#[test]
fn a_repeat_is_a_duplicate_and_posts_nothing_more() {
    let app = spawn_app();
    let first = app.post(&opportunity("dup-1", "US"));
    assert_eq!(first.status, 202);
    let again = app.post(&opportunity("dup-1", "US"));
    assert_eq!(again.status, 200);
    assert_eq!(again.json["status"], "duplicate");
    assert_eq!(again.json["id"], first.json["id"]);
    // A second, different notification is the marker: once it is delivered, the duplicate would
    // have been delivered before it (same region, one at a time, in due order).
    assert_eq!(app.post(&opportunity("dup-2", "US")).status, 202);
    let got = app.slack.wait_delivered("us", 2);
    let ids: Vec<_> = got.iter().filter_map(|r| r.crm_id()).collect();
    assert_eq!(ids, ["dup-1", "dup-2"]);
}

fn assert_error(answer: &crate::helpers::Answer, status: u16, kind: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["type"], kind, "{}", answer.text);
    assert!(
        answer.json["error"].as_str().is_some_and(|e| e.len() > 10),
        "{}",
        answer.text
    );
}

#[test]
fn client_mistakes_get_json_errors_and_store_nothing() {
    let app = spawn_app();
    let good = opportunity("x-1", "UK").to_string();
    let json = Some("application/json");

    assert_error(
        &app.post_raw("nope", json, None, good.as_bytes()),
        404,
        "unknown_source",
    );
    assert_error(
        &app.post_raw("salesforce", Some("text/plain"), None, good.as_bytes()),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &app.post_raw("salesforce", None, None, good.as_bytes()),
        415,
        "unsupported_media_type",
    );
    assert_error(
        &app.post_raw("salesforce", json, None, b"{\"id\": "),
        400,
        "malformed_json",
    );
    assert_error(
        &app.post_raw("salesforce", json, None, b""),
        400,
        "malformed_json",
    );
    assert_error(
        &app.post_raw("salesforce", json, None, &[b'"'; 5000]),
        413,
        "payload_too_large",
    );
    assert_error(
        &app.post_raw("salesforce", json, None, b"[1,2,3]"),
        422,
        "invalid_record",
    );
    let mut missing = opportunity("x-2", "UK");
    missing.as_object_mut().unwrap().remove("name");
    let answer = app.post(&missing);
    assert_error(&answer, 422, "invalid_record");
    assert!(answer.json["error"].as_str().unwrap().contains("name"));
    let mut wrong_type = opportunity("x-3", "UK");
    wrong_type["amount"] = json!("4500");
    assert_error(&app.post(&wrong_type), 422, "invalid_record");
    let answer = app.post(&opportunity("x-4", "JP"));
    assert_error(&answer, 422, "unroutable");
    assert!(answer.json["error"].as_str().unwrap().contains("JP"));

    // Nothing of the refused requests was kept: the same ids are new when sent correctly.
    for id in ["x-2", "x-3", "x-4"] {
        assert_eq!(app.post(&opportunity(id, "UK")).status, 202, "{id}");
    }
    app.slack.wait_delivered("uk", 3);
    let path = app.store_path.clone();
    app.stop();
    let store = TestApp::open_store(&path);
    assert_eq!(
        store.pending_by_region().unwrap().values().sum::<usize>(),
        0
    );
    assert_eq!(store.find_external("salesforce", "x-1").unwrap(), None);
}

#[test]
fn a_token_protected_source_needs_the_right_bearer_token() {
    let app = spawn_app();
    let body = opportunity("t-1", "EU").to_string();
    let json = Some("application/json");
    let missing = app.post_raw("secured", json, None, body.as_bytes());
    assert_error(&missing, 401, "missing_token");
    assert_error(
        &app.post_raw(
            "secured",
            json,
            Some("Bearer wrong-token-000000"),
            body.as_bytes(),
        ),
        403,
        "invalid_token",
    );
    assert_error(
        &app.post_raw("secured", json, Some(TOKEN), body.as_bytes()),
        401,
        "missing_token",
    );
    let ok = app.post_raw(
        "secured",
        json,
        Some(&format!("Bearer {TOKEN}")),
        body.as_bytes(),
    );
    assert_eq!(ok.status, 202, "{}", ok.text);
    assert!(!missing.text.contains(TOKEN) && !ok.text.contains(TOKEN));
}

#[test]
fn a_store_that_cannot_persist_answers_503_with_retry_after() {
    let app = spawn_app();
    app.journal.close();
    let answer = app.post(&opportunity("s-1", "UK"));
    assert_error(&answer, 503, "store_unavailable");
    assert!(answer.retry_after.is_some());
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app();
    let answer = app.get("/nothing-here");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json["type"], "not_found");
    let answer = app.get("/hooks/salesforce");
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json["type"], "method_not_allowed");
    assert_eq!(app.get("/healthz").status, 200);
    assert!(FakeSlack::path("uk").starts_with("/services"));
}

#[test]
fn a_full_backlog_answers_503_with_retry_after_and_keeps_nothing() {
    let slack = std::sync::Arc::new(FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    // The UK region's webhook is a placeholder: its messages queue, so the backlog fills.
    let placeholder =
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    let text = crate::helpers::config(&slack, dir.path())
        .replacen(&slack.url("uk"), placeholder, 1)
        .replacen("[store]\n", "[store]\nmax_pending = 2\n", 1);
    let app = crate::helpers::spawn_with(&text, slack, dir);
    assert_eq!(app.post(&opportunity("b-1", "UK")).status, 202);
    assert_eq!(app.post(&opportunity("b-2", "UK")).status, 202);
    let full = app.post(&opportunity("b-3", "UK"));
    assert_error(&full, 503, "backlog_full");
    assert_eq!(full.retry_after.as_deref(), Some("60"));
    assert_eq!(
        app.store.find_external("salesforce", "b-3").unwrap(),
        None,
        "nothing of it was kept"
    );
    assert_eq!(app.store.pending_by_region().unwrap().get("UK"), Some(&2));
}
