//! Compressed request bodies (issue 15): `Content-Encoding: gzip`, `x-gzip` and `deflate` are
//! decoded, `max_body_bytes` holds for the decoded body, and any other encoding is a 415 on
//! every intake route.

use std::io::Write as _;
use std::sync::Arc;

use serde_json::Value;

use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with, Answer, TestApp};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("deflate in memory");
    e.finish().expect("deflate in memory")
}

/// The default test app, with a Slack signing secret so `/slack/interactions` reads bodies.
fn app() -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = format!(
        "{}\n[slack]\nsigning_secret = \"8f742231b10e8888abcd99yyyzzz85a5\"\n",
        config(&slack, dir.path())
    );
    spawn_with(&text, slack, dir)
}

fn post(app: &TestApp, path: &str, content_type: &str, encoding: &str, body: &[u8]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(format!("{}{path}", app.address))
        .header("Content-Type", content_type)
        .header("Content-Encoding", encoding)
        .send(body)
        .expect("relay answers");
    Answer::read(resp)
}

/// The stored body of the notification an answer names.
fn stored(app: &TestApp, answer: &Answer) -> Value {
    let id: u64 = answer.json["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {}", answer.text));
    let n = app
        .store
        .notification(id)
        .expect("store readable")
        .expect("the notification is stored");
    serde_json::from_str(&n.raw).expect("stored as JSON")
}

#[test]
fn gzip_and_deflate_webhooks_are_stored_and_delivered_decoded() {
    let app = app();
    let cases = [
        ("gz-1", "gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("gz-2", "x-gzip", gzip),
        ("gz-3", "GZIP", gzip),
        ("gz-4", "deflate", zlib),
        ("gz-5", "identity", |b: &[u8]| b.to_vec()),
    ];
    for (id, encoding, encode) in cases {
        let doc = opportunity(id, "UK");
        let body = encode(doc.to_string().as_bytes());
        let answer = post(
            &app,
            "/hooks/salesforce",
            "application/json",
            encoding,
            &body,
        );
        assert_eq!(answer.status, 202, "{encoding}: {}", answer.text);
        assert_eq!(stored(&app, &answer), doc, "{encoding}");
    }
    let delivered = app.slack.wait_delivered("uk", cases.len());
    let mut ids: Vec<String> = delivered.iter().filter_map(|r| r.crm_id()).collect();
    ids.sort();
    assert_eq!(ids, ["gz-1", "gz-2", "gz-3", "gz-4", "gz-5"]);
    let text = delivered[0].body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("4,500"),
        "the message shows the decoded fields: {text}"
    );
}

#[test]
fn the_body_limit_holds_for_the_decoded_size() {
    let app = app();
    // About 2 KiB of gzip (under the 4,096-byte limit) that decodes to 2 MiB.
    let mut doc = opportunity("bomb-1", "UK");
    doc["name"] = Value::String("a".repeat(2 << 20));
    let bomb = gzip(doc.to_string().as_bytes());
    assert!(bomb.len() < 4096, "the bomb is {} bytes sent", bomb.len());
    let answer = post(&app, "/hooks/salesforce", "application/json", "gzip", &bomb);
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(answer.json["type"], "payload_too_large");
    // A damaged stream is the sender's mistake, said as such.
    let answer = post(
        &app,
        "/hooks/salesforce",
        "application/json",
        "gzip",
        b"this is not gzip",
    );
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.json["type"], "bad_request");
    assert!(app.store.notification(1).expect("store readable").is_none());
    assert!(app.slack.all().is_empty());
}

#[test]
fn other_encodings_are_415_on_every_intake_route() {
    let app = app();
    let routes = [
        ("/hooks/salesforce", "application/json"),
        ("/hooks/shop", "application/json"),
        ("/events", "application/json"),
        ("/slack/interactions", "application/x-www-form-urlencoded"),
    ];
    for (path, content_type) in routes {
        for encoding in ["br", "compress", "zstd", "foo", "gzip, gzip"] {
            let body = gzip(opportunity("enc-1", "UK").to_string().as_bytes());
            let answer = post(&app, path, content_type, encoding, &body);
            assert_eq!(answer.status, 415, "{path} {encoding}: {}", answer.text);
            assert_eq!(
                answer.json["type"], "unsupported_encoding",
                "{path} {encoding}: {}",
                answer.text
            );
            let error = answer.json["error"].as_str().unwrap_or_default();
            assert!(error.contains(encoding), "{path}: {error}");
        }
    }
    assert!(app.store.notification(1).expect("store readable").is_none());
}
