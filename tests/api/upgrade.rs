//! A store written by the previous release (format 3, `tests/fixtures/store-format3.tar.gz`,
//! made by `tests/fixtures/make-format3-store.sh`) opens in this one: its log is replayed, its
//! indexes are thinned to format 4's once, and nothing it held is lost, posted again or listed
//! wrong.

use std::sync::Arc;

use serde_json::Value;

use crate::admin::admin;
use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with};

fn external_ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["external_id"].as_str().expect("external_id").to_string())
        .collect();
    ids.sort();
    ids
}

fn unpack_fixture(into: &std::path::Path) {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-format3.tar.gz"
    );
    let status = std::process::Command::new("tar")
        .args(["-xzf", fixture, "--strip-components=1", "-C"])
        .arg(into)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpacking {fixture}");
}

#[test]
fn a_store_of_the_previous_release_is_upgraded_in_place_and_loses_nothing() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    unpack_fixture(dir.path());
    let text = config(&slack, dir.path());
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));

    // The two pending EU messages go out once each; nothing settled is posted again.
    slack.wait_delivered("eu", 2);
    app.wait_store("the queue to empty", |s| {
        (s.pending_by_region().ok()?.values().sum::<usize>() == 0).then_some(())
    });
    let pending = admin(&app, "GET", "/v1/notifications?state=pending");
    assert_eq!(external_ids(&pending.json), Vec::<String>::new());
    let posted: Vec<String> = slack.all().iter().filter_map(|r| r.crm_id()).collect();
    let mut sorted = posted.clone();
    sorted.sort();
    assert_eq!(sorted, ["EU-2", "EU-3"], "only what was pending is posted");

    // Every list the old indexes answered, from the thinned ones.
    let delivered = admin(&app, "GET", "/v1/notifications?state=delivered&limit=500");
    assert_eq!(
        external_ids(&delivered.json),
        ["EU-0", "EU-1", "EU-2", "EU-3", "UK-0", "UK-1", "UK-2", "UK-3", "UK-4", "UK-5", "UK-6"]
    );
    let dead = admin(
        &app,
        "GET",
        "/v1/notifications?source=salesforce&state=dead",
    );
    assert_eq!(external_ids(&dead.json), ["US-0", "US-1"]);
    let all = admin(&app, "GET", "/v1/notifications?since=0&limit=500");
    assert_eq!(all.json["items"].as_array().map(Vec::len), Some(13));
    let updated = admin(&app, "GET", "/v1/sources/salesforce/notifications/UK-0");
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["versions"].as_array().map(Vec::len), Some(2));

    // Idempotency keys and ids carry over: a repeat is a duplicate, a new one is new.
    // The fixture's body, exactly (`make-format3-store.sh`).
    let repeat = serde_json::json!({"id": "UK-3", "name": "Fixture UK-3", "amount": 100,
        "stage": "Prospecting", "country": "UK", "owner_email": "ann@example.com"});
    assert_eq!(app.post(&repeat).status, 200);
    let fresh = app.post(&opportunity("UK-7", "UK"));
    assert_eq!(fresh.status, 202, "{}", fresh.text);
    let fresh_id: u64 = fresh.json["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    assert!(fresh_id > 20, "ids go on after the old store's: {fresh_id}");
    slack.wait_delivered("uk", 1);

    let path = app.store_path.clone();
    app.stop();
    let db = sled::open(&path).expect("the store opens");
    assert_eq!(db.get("mformat").unwrap().as_deref(), Some(&b"4"[..]));
    assert_eq!(db.get("mindexes").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.scan_prefix(b"S").count(), 0, "no global state index");
    let delivered_keys = db
        .scan_prefix(b"s")
        .keys()
        .filter(|k| {
            let k = k.as_ref().unwrap();
            k.iter().position(|b| *b == 0).and_then(|i| k.get(i + 1)) == Some(&b'v')
        })
        .count();
    assert_eq!(delivered_keys, 0, "no index of delivered deliveries");
    let time_keys = db.scan_prefix(b"t").count();
    assert!(
        (1..=3).contains(&time_keys),
        "one time key per minute, not one per notification: {time_keys}"
    );
}

/// The previous release's indexes are thinned once, and the start-up line about "a store from
/// an older hookrelay" has that to report; a second start finds nothing to do.
#[test]
fn the_previous_releases_indexes_are_thinned_once() {
    use hookrelay::store::index::{upgrade, Upgrade};
    let dir = tempfile::tempdir().expect("temp dir");
    unpack_fixture(dir.path());
    let db = sled::open(dir.path()).expect("the fixture opens");
    // Format 3 had a time key per notification: the 10 of the fixture's 13 that sled holds
    // (the others are in its log, replayed at start).
    assert_eq!(upgrade(&db).expect("upgrade"), Upgrade::Thinned(10));
    assert_eq!(upgrade(&db).expect("upgrade"), Upgrade::Current);
}
