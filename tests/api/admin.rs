//! The admin API (issue 5): access, notifications, dead letters, region pause and self-pause.

use std::sync::Arc;

use hookrelay::clock::{Clock, ManualClock};
use serde_json::Value;

use crate::fake_slack::Reply;
use crate::helpers::{
    opportunity, spawn_app, spawn_app_with_clock, Answer, TestApp, ADMIN_TOKEN, TOKEN,
};

pub fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", app.address);
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match method {
        "GET" => {
            let mut r = agent.get(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        "DELETE" => {
            let mut r = agent.delete(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        }
    }
    .expect("relay answers");
    Answer::read(resp)
}

pub fn admin(app: &TestApp, method: &str, path: &str) -> Answer {
    call(app, method, path, Some(ADMIN_TOKEN))
}

/// Replays one dead letter through the admin API and checks it was taken.
pub fn replay_dead(app: &TestApp, delivery_id: u64) {
    let replayed = admin(
        app,
        "POST",
        &format!("/v1/dead-letters/{delivery_id}/replay"),
    );
    assert_eq!(replayed.status, 200, "{}", replayed.text);
}

#[test]
fn the_admin_api_needs_a_token_and_source_tokens_see_only_their_own() {
    let app = spawn_app();
    let own = app.post_raw(
        "secured",
        Some("application/json"),
        Some(&format!("Bearer {TOKEN}")),
        opportunity("own-1", "UK").to_string().as_bytes(),
    );
    let other = app.post(&opportunity("other-1", "UK"));
    let own_id = own.json["id"].as_str().unwrap().to_string();
    let other_id = other.json["id"].as_str().unwrap().to_string();

    assert_eq!(call(&app, "GET", "/v1/dead-letters", None).status, 401);
    assert_eq!(
        call(
            &app,
            "GET",
            "/v1/dead-letters",
            Some("wrong-token-000000000000")
        )
        .status,
        403
    );
    assert_eq!(
        call(
            &app,
            "GET",
            &format!("/v1/notifications/{own_id}"),
            Some(TOKEN)
        )
        .status,
        200
    );
    assert_eq!(
        call(
            &app,
            "GET",
            &format!("/v1/notifications/{other_id}"),
            Some(TOKEN)
        )
        .status,
        404,
        "not another source's"
    );
    let listed = call(&app, "GET", "/v1/notifications", Some(TOKEN));
    let ids: Vec<&str> = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [own_id.as_str()]);
    assert_eq!(
        call(&app, "GET", "/v1/dead-letters", Some(TOKEN)).status,
        403,
        "a source token is read-only, own only"
    );
    assert_eq!(
        admin(&app, "GET", &format!("/v1/notifications/{other_id}")).status,
        200
    );
}

#[test]
fn a_notification_shows_every_version_and_each_attempt_with_the_target_masked() {
    let app = spawn_app();
    app.slack.script("uk", [Reply::Status(503, "")]);
    let first = app.post(&opportunity("show-1", "UK"));
    let mut changed = opportunity("show-1", "UK");
    changed["amount"] = serde_json::json!(9000);
    app.post(&changed);
    app.slack.wait_delivered("uk", 2);
    let id = first.json["id"].as_str().unwrap();
    app.wait_store("both delivered", |s| {
        let n = s.notification(id.parse().unwrap()).unwrap()?;
        n.deliveries
            .iter()
            .all(|d| {
                s.delivery(*d)
                    .unwrap()
                    .is_some_and(|d| d.due_ms().is_none())
            })
            .then_some(())
    });
    let shown = admin(&app, "GET", &format!("/v1/notifications/{id}"));
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.json["versions"].as_array().unwrap().len(), 2);
    assert_eq!(shown.json["versions"][1]["parsed"]["amount"], 9000);
    let first_delivery = &shown.json["deliveries"][0];
    assert_eq!(first_delivery["target"], "region UK");
    assert_eq!(first_delivery["history"][0]["status"], 503);
    assert_eq!(first_delivery["history"][1]["status"], 200);
    assert!(
        !shown.text.contains("/services/T0/B0/"),
        "no webhook URL in the API"
    );
}

#[test]
fn notifications_are_listed_newest_first_with_filters_and_a_cursor() {
    let app = spawn_app();
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut o = opportunity(&format!("list-{i}"), "US");
        if i % 2 == 0 {
            o["owner_email"] = serde_json::json!("Sam@Example.com");
        }
        ids.push(app.post(&o).json["id"].as_str().unwrap().to_string());
    }
    let page = admin(&app, "GET", "/v1/notifications?limit=2");
    let got: Vec<&str> = page.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let cursor = page.json["next_cursor"].as_str().unwrap();
    let next = admin(
        &app,
        "GET",
        &format!("/v1/notifications?limit=2&cursor={cursor}"),
    );
    assert_eq!(next.json["items"][0]["id"], ids[2].as_str());
    let sam = admin(&app, "GET", "/v1/notifications?owner_email=sam@example.com");
    assert_eq!(sam.json["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        admin(&app, "GET", "/v1/notifications?state=lost").status,
        400
    );
}

#[test]
fn dead_letters_can_be_listed_replayed_and_dropped() {
    let app = spawn_app();
    app.slack.script(
        "eu",
        [
            Reply::Status(400, "invalid_blocks"),
            Reply::Status(400, "invalid_blocks"),
            Reply::Status(400, "invalid_blocks"),
        ],
    );
    for i in 0..3 {
        app.post(&opportunity(&format!("dl-{i}"), "EU"));
    }
    app.wait_store("three dead letters", |s| {
        (s.dead_letters().unwrap().len() == 3).then_some(())
    });
    let listed = admin(&app, "GET", "/v1/dead-letters");
    let items = listed.json["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    assert!(items[0]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid_blocks"));

    let one = items[0]["id"].as_str().unwrap();
    let replayed = admin(&app, "POST", &format!("/v1/dead-letters/{one}/replay"));
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    app.slack.wait_delivered("eu", 1);
    assert_eq!(
        admin(&app, "POST", &format!("/v1/dead-letters/{one}/replay")).status,
        404,
        "no longer a dead letter"
    );

    let two = items[1]["id"].as_str().unwrap();
    assert_eq!(
        admin(&app, "DELETE", &format!("/v1/dead-letters/{two}")).status,
        200
    );
    assert_eq!(
        admin(&app, "DELETE", &format!("/v1/dead-letters/{two}")).status,
        404
    );

    let rest = admin(
        &app,
        "POST",
        "/v1/dead-letters/replay?region=EU&reason=invalid_blocks",
    );
    assert_eq!(rest.json["replayed"], 1);
    app.slack.wait_delivered("eu", 2);
    assert!(admin(&app, "GET", "/v1/dead-letters").json["items"]
        .as_array()
        .unwrap()
        .is_empty());
    // The history is kept: the replayed notification shows its dead delivery and the new one.
    let n = app
        .store
        .notification(
            items[0]["notification_id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(n.deliveries.len(), 2);
}

#[test]
fn a_paused_region_queues_until_resumed() {
    let app = spawn_app();
    assert_eq!(admin(&app, "POST", "/v1/regions/US/pause").status, 200);
    assert_eq!(admin(&app, "POST", "/v1/regions/APAC/pause").status, 404);
    app.post(&opportunity("held-1", "US"));
    app.post(&opportunity("marker", "UK"));
    app.slack.wait_delivered("uk", 1);
    assert!(
        app.slack.received("us").is_empty(),
        "nothing sent while paused"
    );
    assert_eq!(admin(&app, "POST", "/v1/regions/US/resume").status, 200);
    assert_eq!(
        app.slack.wait_delivered("us", 1)[0].crm_id().as_deref(),
        Some("held-1")
    );
}

#[test]
fn a_region_whose_webhook_is_gone_pauses_itself_instead_of_dead_lettering_its_queue() {
    let app = spawn_app();
    app.slack.script("uk", [Reply::Status(404, "no_service")]);
    for i in 0..3 {
        app.post(&opportunity(&format!("gone-{i}"), "UK"));
    }
    let reason = app.wait_store("the region paused", |s| {
        s.manual_pauses().unwrap().get("UK").cloned()
    });
    assert_eq!(
        reason,
        "Slack answered HTTP 404 no_service; fix regions.UK.webhook_url, restart, then resume the region"
    );
    assert!(
        app.store.dead_letters().unwrap().is_empty(),
        "nothing burnt into the dead letters"
    );
    let metrics = app.get("/metrics").text;
    assert!(
        metrics.contains("hookrelay_region_paused{region=\"UK\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookrelay_region_paused{region=\"US\"} 0"),
        "{metrics}"
    );
    assert_eq!(app.store.pending_by_region().unwrap().get("UK"), Some(&3));
    assert_eq!(app.slack.received("uk").len(), 1, "one request told it all");
    // Fixed (the fake now answers ok): resuming sends all three, in order.
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/resume").status, 200);
    let got = app.slack.wait_delivered("uk", 3);
    let ids: Vec<_> = got.iter().filter_map(|r| r.crm_id()).collect();
    assert_eq!(ids, ["gone-0", "gone-1", "gone-2"]);
}

#[test]
fn status_shows_each_region_and_send_test_posts_a_marked_message() {
    let app = spawn_app();
    app.slack.script("eu", [Reply::Status(500, "rollup_error")]);
    let sent = admin(&app, "POST", "/v1/regions/EU/test");
    assert_eq!(sent.status, 202, "{}", sent.text);
    let got = app.slack.wait_delivered("eu", 1);
    assert!(
        got[0]
            .body
            .to_string()
            .contains("Test message from hookrelay for region EU"),
        "{}",
        got[0].body
    );
    assert_eq!(admin(&app, "POST", "/v1/regions/MARS/test").status, 404);

    // Outcomes are noted just after they are recorded: wait for the success to show.
    app.wait_store("the success noted", |_| {
        let s = admin(&app, "GET", "/v1/status");
        s.json["regions"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == "EU")?["last_success_ms"]
            .as_u64()
    });
    let status = admin(&app, "GET", "/v1/status");
    assert_eq!(status.status, 200, "{}", status.text);
    let eu = status.json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "EU")
        .unwrap()
        .clone();
    assert!(eu["last_success_ms"].as_u64().is_some(), "{eu}");
    assert!(
        eu["last_error"].as_str().unwrap().contains("rollup_error"),
        "{eu}"
    );
    assert_eq!(eu["paused"], false);
    assert_eq!(
        eu["webhook"],
        format!(
            "http://{}/services/***",
            app.slack.url("eu").split('/').nth(2).unwrap()
        )
    );
    assert!(status.json["recent"].as_array().unwrap().len() >= 2);
    assert!(
        !status.text.contains("/T0/B0/"),
        "webhook secrets stay masked"
    );
}

#[test]
fn export_lists_notifications_since_a_time_as_json_lines() {
    // The intake clock moves by hand: two posts in the same millisecond would otherwise make
    // "since" ambiguous.
    let clock = Arc::new(ManualClock::new());
    let app = spawn_app_with_clock(Arc::clone(&clock));
    app.post(&opportunity("exp-1", "UK"));
    clock.advance(1_000);
    let since = clock.now_ms();
    app.post(&opportunity("exp-2", "UK"));
    let all = admin(&app, "GET", "/v1/export");
    assert_eq!(all.text.lines().count(), 2, "{}", all.text);
    let recent = admin(&app, "GET", &format!("/v1/export?since={since}"));
    let lines: Vec<Value> = recent
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["external_id"], "exp-2");
}

#[test]
fn query_strings_that_do_not_fit_are_json_400s_naming_the_query() {
    let app = spawn_app();
    for path in [
        "/v1/notifications?limit=-1",
        "/v1/notifications?since=abc",
        "/v1/notifications?cursor=next",
        "/v1/dead-letters?limit=many",
        "/v1/export?since=yesterday",
    ] {
        let answer = admin(&app, "GET", path);
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(
            answer.json["type"], "invalid_query",
            "{path}: {}",
            answer.text
        );
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(error.contains(query), "{path}: {error}");
    }
    // A query that fits still works.
    assert_eq!(admin(&app, "GET", "/v1/notifications?limit=1").status, 200);
}
