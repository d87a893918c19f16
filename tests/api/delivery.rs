//! Delivery: retries, 429s, dead letters, rate limits, restarts, and one `deliver_one` step.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookrelay::config::Settings;
use hookrelay::delivery::worker::{Outcome, Worker};
use hookrelay::sources::SourceKind;
use hookrelay::store::journal::{Accepted, Idempotency, Journal, NewNotification};
use hookrelay::store::records::{Delivery, DeliveryState};
use hookrelay::store::Store;

use crate::fake_slack::{FakeSlack, Reply};
use crate::helpers::{config, opportunity, spawn_app, spawn_with};

/// The one delivery of the notification the relay answered with `id`.
fn delivery_of(store: &Store, answer_id: &serde_json::Value) -> Delivery {
    let id: u64 = answer_id.as_str().expect("id").parse().expect("numeric id");
    let mut all = crate::helpers::deliveries_of(store, id);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn settled(store: &Store, answer_id: &serde_json::Value) -> Option<Delivery> {
    let d = delivery_of(store, answer_id);
    (!matches!(d.state, DeliveryState::Pending { .. })).then_some(d)
}

#[test]
fn server_errors_and_dropped_connections_are_retried_until_delivered() {
    let app = spawn_app();
    app.slack.script(
        "uk",
        [
            Reply::Status(500, "rollup_error"),
            Reply::Drop,
            Reply::Status(503, ""),
        ],
    );
    let answer = app.post(&opportunity("r-1", "UK"));
    assert_eq!(answer.status, 202);
    let got = app.slack.wait_delivered("uk", 1);
    assert_eq!(got[0].crm_id().as_deref(), Some("r-1"));
    let d = app.wait_store("delivered state", |s| settled(s, &answer.json["id"]));
    assert!(matches!(d.state, DeliveryState::Delivered { .. }), "{d:?}");
    let statuses: Vec<Option<u16>> = d.history.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), None, Some(503), Some(200)]);
    assert_eq!(app.slack.received("uk").len(), 4);
    // The retries' delays grew: 20ms nominal first, doubling, each at least half the nominal.
    let at: Vec<_> = app.slack.received("uk").iter().map(|r| r.at).collect();
    assert!(at[1] - at[0] >= Duration::from_millis(10));
    assert!(at[2] - at[1] >= Duration::from_millis(20));
}

#[test]
fn a_permanent_error_goes_straight_to_the_dead_letters_with_slacks_reason() {
    let app = spawn_app();
    app.slack
        .script("us", [Reply::Status(400, "invalid_blocks")]);
    let answer = app.post(&opportunity("p-1", "US"));
    assert_eq!(answer.status, 202);
    let d = app.wait_store("dead letter", |s| settled(s, &answer.json["id"]));
    match &d.state {
        DeliveryState::Dead { reason, .. } => {
            assert!(reason.contains("invalid_blocks"), "{reason}")
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    assert_eq!(d.attempts, 1, "no retry of a permanent error");
    let dead = app.store.dead_letters().unwrap();
    assert_eq!(dead.iter().map(|d| d.id).collect::<Vec<_>>(), [d.id]);
    assert_eq!(
        app.store.pending_by_region().unwrap().get("US"),
        None,
        "nothing left queued"
    );
    assert_eq!(app.slack.received("us").len(), 1);
}

#[test]
fn the_attempt_budget_ends_in_a_dead_letter() {
    let app = spawn_app();
    app.slack.script(
        "eu",
        std::iter::repeat_n(Reply::Status(500, "rollup_error"), 4),
    );
    let answer = app.post(&opportunity("b-1", "DE"));
    let d = app.wait_store("dead letter", |s| settled(s, &answer.json["id"]));
    match &d.state {
        DeliveryState::Dead { reason, .. } => {
            assert!(reason.contains("gave up after 4 attempts"), "{reason}")
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    assert_eq!(app.slack.received("eu").len(), 4);
}

#[test]
fn a_429_pauses_that_webhook_for_retry_after_and_no_other() {
    let app = spawn_app();
    app.slack.script("uk", [Reply::RateLimited(1)]);
    assert_eq!(app.post(&opportunity("l-1", "UK")).status, 202);
    let first = app.slack.wait_for("uk", 1)[0].clone();
    assert_eq!(first.reply, "429");
    assert_eq!(app.post(&opportunity("l-2", "UK")).status, 202);
    assert_eq!(app.post(&opportunity("l-3", "US")).status, 202);

    let us = app.slack.wait_delivered("us", 1);
    let uk = app.slack.wait_delivered("uk", 2);
    for r in &uk {
        assert!(
            r.at - first.at >= Duration::from_secs(1),
            "request {:?} after the 429",
            r.at - first.at
        );
    }
    assert!(
        us[0].at - first.at < Duration::from_secs(1),
        "the US region was not held up by the UK pause"
    );
    assert_eq!(
        app.slack.received("uk").len(),
        3,
        "one 429, then each message once"
    );
    let ids: Vec<_> = uk.iter().filter_map(|r| r.crm_id()).collect();
    assert_eq!(ids, ["l-1", "l-2"], "order kept across the pause");
}

#[test]
fn the_rate_limit_is_held() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = config(&slack, dir.path()).replacen(
        "rate = \"100/s\"\nburst = 100",
        "rate = \"10/s\"\nburst = 2",
        1,
    );
    assert!(text.contains("rate = \"10/s\""));
    let app = spawn_with(&text, slack, dir);
    for i in 0..8 {
        assert_eq!(app.post(&opportunity(&format!("rl-{i}"), "UK")).status, 202);
    }
    let got = app.slack.wait_delivered("uk", 8);
    // Measured from the second message: the first one's arrival includes opening the
    // connection, which under load can take longer than the interval itself. From then on the
    // bucket holds at most one token, so message i (i >= 2) comes at least (i - 2) intervals later.
    let tolerance = Duration::from_millis(20);
    for (i, r) in got.iter().enumerate().skip(3) {
        let min = Duration::from_millis(100) * (i as u32 - 2);
        assert!(
            r.at - got[1].at + tolerance >= min,
            "message {i} came {:?} after the second",
            r.at - got[1].at
        );
    }
    assert!(
        got[7].at - got[1].at >= Duration::from_millis(480),
        "the burst was not unlimited"
    );
}

#[test]
fn a_restart_resumes_pending_deliveries() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = config(&slack, dir.path())
        .replace("initial_backoff = \"20ms\"", "initial_backoff = \"1s\"")
        .replace("max_backoff = \"100ms\"", "max_backoff = \"1s\"");
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));
    slack.script("eu", [Reply::Status(503, "")]);
    let answer = app.post(&opportunity("restart-1", "EU"));
    assert_eq!(answer.status, 202);
    slack.wait_for("eu", 1);
    app.wait_store("the failure recorded", |s| {
        (delivery_of(s, &answer.json["id"]).attempts == 1).then_some(())
    });
    app.stop();
    assert!(
        slack.received("eu").iter().all(|r| !r.delivered()),
        "not delivered before the restart"
    );

    let app = spawn_with(&text, Arc::clone(&slack), dir);
    let got = slack.wait_delivered("eu", 1);
    assert_eq!(got[0].crm_id().as_deref(), Some("restart-1"));
    let d = app.wait_store("delivered", |s| settled(s, &answer.json["id"]));
    assert_eq!(d.attempts, 2, "the retry state survived the restart");
    let again = app.post(&opportunity("restart-1", "EU"));
    assert_eq!(
        again.json["status"], "duplicate",
        "idempotency survived the restart"
    );
}

#[test]
fn deliver_one_is_a_single_observable_step() {
    let slack = FakeSlack::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::parse(&config(&slack, dir.path())).unwrap();
    let store = Store::open(&settings.store.path).unwrap();
    let (journal, writer) = Journal::start(store.clone(), None).unwrap();
    let worker = Worker::new(store.clone(), journal.clone(), &settings).unwrap();
    let doc = opportunity("step-1", "GB");
    let Accepted::New(id) = journal
        .accept_blocking(NewNotification {
            source: "salesforce".into(),
            kind: SourceKind::Opportunity,
            idempotency: Idempotency::Versioned("step-1".into()),
            raw: doc.to_string(),
            region: "UK".into(),
            url: None,
            also: Vec::new(),
            web_api: false,
            on_status: None,
            received_at_ms: hookrelay::store::now_ms(),
        })
        .unwrap()
    else {
        panic!("new notification expected")
    };
    let delivery = crate::helpers::deliveries_of(&store, id)[0].id;

    slack.script("uk", [Reply::Status(502, "bad gateway")]);
    assert!(matches!(
        worker.deliver_one(delivery).unwrap(),
        Outcome::Retrying { .. }
    ));
    assert_eq!(worker.deliver_one(delivery).unwrap(), Outcome::Delivered);
    assert_eq!(
        worker.deliver_one(delivery).unwrap(),
        Outcome::Skipped,
        "a delivered message is never sent again"
    );
    assert_eq!(slack.received("uk").len(), 2);
    let regions: BTreeMap<_, _> = store.pending_by_region().unwrap();
    assert!(regions.is_empty(), "{regions:?}");
    journal.close();
    writer.join().unwrap();
}

#[test]
fn a_one_off_webhooks_429_pause_survives_a_restart() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let text = config(&slack, dir.path());
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));
    slack.script("partners", [Reply::RateLimited(3600)]);
    let mut partner = opportunity("pause-1", "UK");
    partner["type"] = serde_json::json!("partner");
    assert_eq!(app.post(&partner).status, 202);
    slack.wait_for("partners", 1);
    app.wait_store("the pause recorded", |s| {
        (!s.pauses().unwrap().is_empty()).then_some(())
    });
    app.stop();

    let app = spawn_with(&text, Arc::clone(&slack), dir);
    // A marker through a region, posted after the restart: once it is delivered, the scheduler
    // has passed over the partners' queue at least once without sending.
    assert_eq!(app.post(&opportunity("marker", "US")).status, 202);
    slack.wait_delivered("us", 1);
    assert_eq!(
        slack.received("partners").len(),
        1,
        "no request before Retry-After, even after a restart"
    );
}
