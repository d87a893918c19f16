//! Finding notifications (issue 11): by the sender's id, lists that say what each item is, and
//! filtered lists read from indexes.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::admin::{admin, call};
use crate::fake_slack::{FakeSlack, Reply};
use crate::helpers::{config, opportunity, spawn_app, spawn_with, TestApp, TOKEN};

fn ids(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["external_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_notification_is_found_by_the_senders_id() {
    let app = spawn_app();
    let mut opp = opportunity("006DLQ1", "UK");
    opp["name"] = json!("Renewal <Acme>");
    app.post(&opp);
    let found = admin(&app, "GET", "/v1/sources/salesforce/notifications/006DLQ1");
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json["external_id"], "006DLQ1");
    assert!(
        found.json["title"]
            .as_str()
            .unwrap()
            .contains("Renewal <Acme>"),
        "{}",
        found.json["title"]
    );
    let missing = admin(&app, "GET", "/v1/sources/salesforce/notifications/006NOPE");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["type"], "not_found");
    // An id with a slash and spaces, as some senders have.
    app.post(&opportunity("A/B 7", "UK"));
    let odd = admin(
        &app,
        "GET",
        "/v1/sources/salesforce/notifications/A%2FB%207",
    );
    assert_eq!(odd.status, 200, "{}", odd.text);
    // A source's own token sees only its own source.
    let other = call(
        &app,
        "GET",
        "/v1/sources/salesforce/notifications/006DLQ1",
        Some(TOKEN),
    );
    assert_eq!(other.status, 404);

    let listed = admin(&app, "GET", "/v1/notifications?external_id=006DLQ1");
    assert_eq!(ids(&listed.json), ["006DLQ1"]);
    let shown = crate::cli::hr(&app, &["notifications", "show", "salesforce/006DLQ1"]).ok();
    assert!(
        shown.stdout.contains("external id  006DLQ1"),
        "{}",
        shown.stdout
    );
    assert!(
        shown
            .stdout
            .contains("title        New opportunity: Renewal <Acme>"),
        "{}",
        shown.stdout
    );
}

#[test]
fn dead_letters_and_lists_say_what_each_item_is() {
    let app = spawn_app();
    app.slack
        .script("uk", [Reply::Status(400, "invalid_blocks")]);
    let mut opp = opportunity("006DEAD", "UK");
    opp["name"] = json!("Big Deal");
    app.post(&opp);
    app.wait_dead_letters(1);
    let dead = admin(&app, "GET", "/v1/dead-letters");
    let item = &dead.json["items"][0];
    assert_eq!(item["source"], "salesforce");
    assert_eq!(item["external_id"], "006DEAD");
    assert!(
        item["title"]
            .as_str()
            .unwrap()
            .starts_with("New opportunity: Big Deal"),
        "{item}"
    );
    let table = crate::cli::hr(&app, &["dead-letters", "list"]).ok();
    assert!(
        table.stdout.contains("SENDER ID") && table.stdout.contains("006DEAD"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("New opportunity: Big Deal"),
        "{}",
        table.stdout
    );
    let page = call(&app, "GET", "/", Some(crate::helpers::ADMIN_TOKEN));
    assert!(
        page.text.contains("salesforce/006DEAD") && page.text.contains("New opportunity: Big Deal"),
        "the status page names it too"
    );
}

/// Waits until a list query has `n` items (the outcomes are recorded after Slack answers).
fn wait_list(app: &TestApp, q: &str, n: usize) -> Value {
    app.wait_store(&format!("{n} items for {q}"), |_| {
        let v = admin(app, "GET", &format!("/v1/notifications?{q}")).json;
        (v["items"].as_array().map_or(0, Vec::len) == n).then_some(v)
    })
}

#[test]
fn filtered_lists_come_from_the_indexes_and_page_newest_first() {
    let app = spawn_app();
    // EU fails for good (dead letters), UK delivers, US is paused (pending).
    let paused = admin(&app, "POST", "/v1/regions/US/pause");
    assert_eq!(paused.status, 200);
    app.slack.script(
        "eu",
        std::iter::repeat_n(Reply::Status(400, "invalid_blocks"), 4),
    );
    for i in 0..4 {
        app.post(&opportunity(&format!("UK-{i}"), "UK"));
        app.post(&opportunity(&format!("EU-{i}"), "DE"));
        app.post(&opportunity(&format!("US-{i}"), "US"));
    }
    app.wait_dead_letters(4);
    wait_list(&app, "state=delivered", 4);
    let list = |q: &str| admin(&app, "GET", &format!("/v1/notifications?{q}")).json;
    assert_eq!(ids(&list("state=dead")), ["EU-3", "EU-2", "EU-1", "EU-0"]);
    assert_eq!(
        ids(&list("state=pending&source=salesforce")),
        ["US-3", "US-2", "US-1", "US-0"]
    );
    let delivered = list("state=delivered&limit=3");
    assert_eq!(ids(&delivered), ["UK-3", "UK-2", "UK-1"]);
    let cursor = delivered["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        ids(&list(&format!("state=delivered&limit=3&cursor={cursor}"))),
        ["UK-0"]
    );
    assert!(ids(&list("state=dead&source=shop")).is_empty());
    // Nothing arrived after now: an empty page, read from the time index.
    let later = hookrelay::store::now_ms() + 3_600_000;
    assert!(ids(&list(&format!("since={later}"))).is_empty());
    // Time: only what arrived since a moment.
    let since = hookrelay::store::now_ms();
    app.post(&opportunity("LATE", "US"));
    assert_eq!(ids(&list(&format!("since={since}"))), ["LATE"]);
    assert_eq!(
        ids(&list(&format!("until={since}&state=pending&limit=1"))),
        ["US-3"]
    );
    // A state changes its index entry: resuming US delivers what was pending.
    admin(&app, "POST", "/v1/regions/US/resume");
    app.wait_store("US delivered", |s| {
        (s.first_due("US").ok()?.is_none()).then_some(())
    });
    assert!(ids(&list("state=pending")).is_empty());
    let bad = admin(&app, "GET", "/v1/notifications?state=lost");
    assert_eq!(bad.status, 400);

    // A replayed dead letter that went through: the notification is delivered, not dead.
    let dead = app.store.dead_letters().unwrap();
    let eu0 = dead
        .iter()
        .find(|d| {
            app.store
                .notification(d.notification_id)
                .unwrap()
                .is_some_and(|n| n.external_id == "EU-0")
        })
        .unwrap();
    crate::admin::replay_dead(&app, eu0.id);
    let now_dead = wait_list(&app, "state=dead", 3);
    assert_eq!(ids(&now_dead), ["EU-3", "EU-2", "EU-1"]);
    // The replayed delivery is sent after the replay's answer: wait for it to go through.
    let found = app.wait_store("EU-0 delivered after its replay", |_| {
        let found = admin(&app, "GET", "/v1/sources/salesforce/notifications/EU-0");
        (found.json["state"] != "pending").then_some(found)
    });
    assert_eq!(found.json["state"], "delivered", "{}", found.text);
}

#[test]
fn a_source_without_ids_is_found_by_the_relays_id() {
    let app = spawn_app();
    // Tray's notifications carry no id of the sender's: the relay's id stands in for it.
    let answer = app.post_raw(
        "shop",
        Some("application/json"),
        None,
        br#"{"seller_id": "391250", "scope_id": "4375797", "scope_name": "order", "act": "update"}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let id = answer.json["id"].as_str().unwrap().to_string();
    let found = admin(&app, "GET", &format!("/v1/sources/shop/notifications/{id}"));
    assert_eq!(found.status, 200, "{}", found.text);
    let elsewhere = admin(
        &app,
        "GET",
        &format!("/v1/sources/salesforce/notifications/{id}"),
    );
    assert_eq!(elsewhere.status, 404);
}

#[test]
fn a_store_from_before_the_indexes_gets_them_built_at_start() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));
    for i in 0..3 {
        app.post(&opportunity(&format!("OLD-{i}"), "UK"));
    }
    slack.wait_delivered("uk", 3);
    let path = app.store_path.clone();
    app.stop();
    {
        // Remove the indexes, as a store written by an older hookrelay has none.
        let db = sled::open(&path).expect("the store opens");
        for prefix in [b'i', b'S', b's', b't'] {
            for key in db.scan_prefix([prefix]).keys() {
                db.remove(key.unwrap()).unwrap();
            }
        }
        db.remove("mindexes").unwrap();
        db.flush().unwrap();
    }
    let app = spawn_with(&text, slack, dir);
    let listed = admin(
        &app,
        "GET",
        "/v1/notifications?source=salesforce&state=delivered",
    );
    assert_eq!(ids(&listed.json), ["OLD-2", "OLD-1", "OLD-0"]);
}
