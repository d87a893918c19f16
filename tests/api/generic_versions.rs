//! Generic sources with keys made of several fields and versions (`on_repeat = "update"`):
//! Alertmanager's firing and resolved notifications of one group are one message and its
//! follow-up, its re-sends are duplicates, and in a bot-token region the resolve edits the
//! message and replies in its thread.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_slack::FakeSlack;
use crate::fake_web_api::{FakeWebApi, BOT_TOKEN};
use crate::helpers::{config, spawn_with, TestApp};

/// The source under test: as `examples/alertmanager/hookrelay.toml` configures it.
const SOURCE: &str = r#"
[sources.am]
kind = "generic"
id = "{/groupKey}"
on_repeat = "update"
ignore = ["/alerts/*/startsAt", "/truncatedAlerts"]
title = "{/commonLabels/alertname}: {/status}"
marks = { "/status" = { firing = "🔥", resolved = "✅" } }
closed_when = { "/status" = "resolved" }
fields = [["Severity", "/commonLabels/severity"], ["Summary", "/commonAnnotations/summary"]]
region = "UK"
[sources.am.on_status]
resolved = { react = "white_check_mark" }
[sources.twofold]
kind = "generic"
id = "{/groupKey}|{/status}"
title = "{/status}"
region = "UK"
"#;

fn alert(status: &str, starts: &str) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "status": status,
        "truncatedAlerts": 0, "receiver": "hookrelay",
        "commonLabels": {"alertname": "HighCPU", "severity": "page"},
        "commonAnnotations": {"summary": "CPU above 90% on db1"},
        "alerts": [{"status": status, "startsAt": starts, "labels": {"instance": "db1"}}]
    })
}

fn spawn(text_edit: impl FnOnce(String) -> String) -> (TestApp, Option<Arc<FakeWebApi>>) {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = text_edit(format!("{}{SOURCE}", config(&slack, dir.path())));
    (spawn_with(&text, slack, dir), None)
}

fn post(app: &TestApp, source: &str, body: &Value) -> crate::helpers::Answer {
    app.post_path(
        &format!("/hooks/{source}"),
        "application/json",
        body.to_string().as_bytes(),
    )
}

#[test]
fn firing_then_resolved_is_one_message_and_a_follow_up_and_re_sends_post_nothing() {
    let (app, _) = spawn(|t| t);
    let first = post(&app, "am", &alert("firing", "2026-12-02T10:00:00Z"));
    assert_eq!(first.status, 202, "{}", first.text);
    let got = app.slack.wait_for("uk", 1);
    assert_eq!(
        got[0].body["blocks"][0]["text"]["text"],
        "🔥 HighCPU: firing"
    );

    // Alertmanager's retry, and its re-send with a rewritten startsAt: duplicates.
    let again = post(&app, "am", &alert("firing", "2026-12-02T10:00:00Z"));
    assert_eq!(
        (again.status, again.json["status"].as_str()),
        (200, Some("duplicate"))
    );
    let churn = post(&app, "am", &alert("firing", "2026-12-02T10:04:00Z"));
    assert_eq!(churn.json["status"], "duplicate", "{}", churn.text);

    let resolved = post(&app, "am", &alert("resolved", "2026-12-02T10:00:00Z"));
    assert_eq!(resolved.json["status"], "updated", "{}", resolved.text);
    assert_eq!(resolved.json["id"], first.json["id"]);
    let got = app.slack.wait_for("uk", 2);
    assert_eq!(
        got[1].body["text"],
        "✅ HighCPU: resolved — changed: Status: firing → resolved, 1 other value changed"
    );
    assert_eq!(
        got[1].body["blocks"][0]["text"]["text"],
        "✅ HighCPU: resolved"
    );
    let dup = post(&app, "am", &alert("resolved", "2026-12-02T10:00:00Z"));
    assert_eq!(dup.json["status"], "duplicate");

    // The group fires again the next day: a new incident, so a new message, not a follow-up
    // to the resolved one far up the channel.
    let again = post(&app, "am", &alert("firing", "2026-12-03T09:00:00Z"));
    assert_eq!(again.json["status"], "accepted", "{}", again.text);
    assert_ne!(again.json["id"], first.json["id"]);
    let got = app.slack.wait_for("uk", 3);
    assert_eq!(
        got[2].body["blocks"][0]["text"]["text"],
        "🔥 HighCPU: firing"
    );
    assert!(
        got[2].body["blocks"][1]["fields"].is_array(),
        "a whole message: {}",
        got[2].body
    );
    // Nothing else is queued or sent: a duplicate is answered without a delivery.
    crate::binary::wait_until("the queue to drain", Duration::from_secs(20), || {
        app.journal.pending() == 0
    });
    assert_eq!(app.slack.received("uk").len(), 3);
    app.stop();
}

#[test]
fn a_key_of_several_fields_names_a_missing_one_and_keeps_repeats_apart() {
    let (app, _) = spawn(|t| t);
    let missing = post(&app, "twofold", &json!({"groupKey": "g"}));
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert!(missing.text.contains("/status"), "{}", missing.text);
    assert_eq!(
        post(
            &app,
            "twofold",
            &json!({"groupKey": "g", "status": "firing"})
        )
        .status,
        202
    );
    assert_eq!(
        post(
            &app,
            "twofold",
            &json!({"groupKey": "g", "status": "resolved"})
        )
        .status,
        202
    );
    let again = post(
        &app,
        "twofold",
        &json!({"groupKey": "g", "status": "firing", "x": 1}),
    );
    assert_eq!(
        again.json["status"], "duplicate",
        "a duplicate source ignores content"
    );
    let got = app.slack.wait_for("uk", 2);
    assert_eq!(got[0].body["text"], "firing");
    assert_eq!(got[1].body["text"], "resolved");
    app.stop();
}

#[test]
fn in_a_bot_token_region_the_resolve_edits_the_message_replies_in_its_thread_and_reacts() {
    let api = Arc::new(FakeWebApi::start());
    let base = api.base_url();
    let (app, _) = spawn(|text| {
        let slack_uk = text
            .lines()
            .find(|l| l.starts_with("webhook_url = ") && l.contains("/uk"))
            .expect("the UK webhook line")
            .to_string();
        let text = text.replacen(
            &slack_uk,
            &format!("bot_token = \"{BOT_TOKEN}\"\nchannel = \"C0ALERTS\""),
            1,
        );
        format!("{text}\n[slack]\napi_url = \"{base}\"\n")
    });
    assert_eq!(
        post(&app, "am", &alert("firing", "2026-12-02T10:00:00Z")).status,
        202
    );
    let posted = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(posted.args["channel"], "C0ALERTS");
    assert!(posted.args.to_string().contains("🔥 HighCPU: firing"));
    assert_eq!(
        post(&app, "am", &alert("resolved", "2026-12-02T10:00:00Z")).json["status"],
        "updated"
    );
    let edit = api.wait_ok("chat.update", 1).remove(0);
    assert!(
        edit.args.to_string().contains("✅ HighCPU: resolved"),
        "{}",
        edit.args
    );
    let calls = api.wait_until(Duration::from_secs(20), "the thread reply", |c| {
        c.iter()
            .filter(|c| c.method == "chat.postMessage" && c.ok())
            .count()
            == 2
    });
    let reply = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.ok())
        .nth(1)
        .expect("a reply");
    assert!(reply.args["thread_ts"].is_string());
    assert!(
        reply.args["text"]
            .as_str()
            .unwrap_or("")
            .contains("Status: firing → resolved"),
        "{}",
        reply.args
    );
    let react = api.wait_ok("reactions.add", 1).remove(0);
    assert_eq!(react.args["name"], "white_check_mark");
    assert!(app.slack.all().is_empty(), "nothing went to a webhook");
    app.stop();
}
