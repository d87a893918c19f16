//! Operating it (issue 5, first part): readiness and Prometheus metrics.

use crate::fake_slack::Reply;
use crate::helpers::{opportunity, spawn_app};

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn readyz_says_ready_until_the_store_is_closed() {
    let app = spawn_app();
    let ready = app.get("/readyz");
    assert_eq!(
        (ready.status, ready.json["status"].as_str()),
        (200, Some("ready"))
    );
    app.journal.close();
    app.wait_store("the journal closed", |_| {
        (app.get("/readyz").status == 503).then_some(())
    });
    let not_ready = app.get("/readyz");
    assert!(
        not_ready.json["problems"][0]
            .as_str()
            .unwrap()
            .contains("store is closed"),
        "{}",
        not_ready.text
    );
    assert_eq!(app.get("/healthz").status, 200, "the process still serves");
}

#[test]
fn metrics_count_intake_deliveries_and_dead_letters_in_prometheus_format() {
    let app = spawn_app();
    app.slack.script(
        "us",
        [
            Reply::Status(500, "rollup_error"),
            Reply::Status(400, "invalid_blocks"),
        ],
    );
    assert_eq!(app.post(&opportunity("m-1", "UK")).status, 202);
    assert_eq!(app.post(&opportunity("m-1", "UK")).status, 200);
    assert_eq!(app.post(&opportunity("m-2", "US")).status, 202);
    let mut bad = opportunity("m-3", "UK");
    bad["amount"] = serde_json::json!("lots");
    assert_eq!(app.post(&bad).status, 422);
    app.slack.wait_delivered("uk", 1);
    app.slack.wait_for("us", 2);
    app.wait_store("the dead letter", |s| {
        (s.dead_letters().unwrap().len() == 1).then_some(())
    });

    // The worker counts an outcome just after recording it: wait for the count, not the store.
    let dead = r#"hookrelay_deliveries_total{region="US",outcome="dead"}"#;
    app.wait_store("the dead delivery counted", |_| {
        let text = app.get("/metrics").text;
        metric(&text, dead).is_some().then_some(())
    });
    let text = app.get("/metrics").text;
    let m =
        |prefix: &str| metric(&text, prefix).unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
    assert_eq!(
        m(r#"hookrelay_received_total{source="salesforce",outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        m(r#"hookrelay_received_total{source="salesforce",outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hookrelay_received_total{source="salesforce",outcome="invalid_record"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hookrelay_deliveries_total{region="UK",outcome="delivered"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hookrelay_deliveries_total{region="US",outcome="retry"}"#),
        1.0
    );
    assert_eq!(
        m(r#"hookrelay_deliveries_total{region="US",outcome="dead"}"#),
        1.0
    );
    assert_eq!(m("hookrelay_dead_letters "), 1.0);
    assert_eq!(m(r#"hookrelay_queue_depth{region="UK"}"#), 0.0);
    assert!(m("hookrelay_journal_flush_seconds_count ") >= 3.0);
    assert!(m("hookrelay_journal_batch_size_count ") >= 3.0);
    assert!(m("hookrelay_store_bytes ") > 0.0);
}

#[test]
fn delivered_notifications_are_purged_after_the_retention_and_pending_ones_stay() {
    let slack = std::sync::Arc::new(crate::fake_slack::FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let text = crate::helpers::config(&slack, dir.path()).replacen(
        "[store]\n",
        "[store]\nretention = \"1s\"\ndead_letter_retention = \"1h\"\npurge_interval = \"200ms\"\n",
        1,
    );
    let app = crate::helpers::spawn_with(&text, std::sync::Arc::clone(&slack), dir);
    assert_eq!(
        crate::helpers::TestApp::post(&app, &crate::helpers::opportunity("old-1", "UK")).status,
        202
    );
    slack.script("us", [Reply::Status(400, "invalid_blocks")]);
    assert_eq!(app.post(&opportunity("dead-1", "US")).status, 202);
    app.wait_store("the delivered one purged", |s| {
        (s.find_external("salesforce", "old-1").unwrap().is_none()).then_some(())
    });
    assert!(
        app.store
            .find_external("salesforce", "dead-1")
            .unwrap()
            .is_some(),
        "dead letters are kept longer"
    );
    assert_eq!(app.store.dead_letters().unwrap().len(), 1);
    // Once purged, the same CRM id is news again.
    assert_eq!(app.post(&opportunity("old-1", "UK")).status, 202);
    app.slack.wait_delivered("uk", 2);
}
