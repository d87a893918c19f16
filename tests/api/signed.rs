//! Signed inbound webhooks (issue 11): a source that requires Standard Webhooks signatures (or
//! X-Hub-Signature-256) refuses unsigned, stale, forged and replayed requests with a 401 JSON
//! error and stores nothing.

use std::sync::Arc;

use hookrelay::sources::signature::{sign_hub, sign_standard, standard_key};

use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with, Answer, TestApp};

/// The Standard Webhooks specification's example secret, and a second one being rotated in.
const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_bmV3LXNlY3JldC1mb3Itcm90YXRpb24=";
const HUB: &str = "hub-secret-0123456789";

fn spawn() -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = format!(
        "{}\n[sources.signed]\nkind = \"opportunity\"\nverify = \"standard-webhooks\"\nsigning_secrets = [\"{OLD}\", \"{NEW}\"]\n\
         [sources.hub]\nkind = \"opportunity\"\nverify = \"hub-signature-256\"\nsigning_secrets = [\"{HUB}\"]\n",
        config(&slack, dir.path())
    );
    spawn_with(&text, slack, dir)
}

/// POSTs a JSON body to `/hooks/{source}` with the sender's own headers (its signature).
pub fn post(app: &TestApp, source: &str, body: &[u8], headers: &[(&str, String)]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(format!("{}/hooks/{source}", app.address))
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    Answer::read(req.send(body).expect("relay answers"))
}

fn now() -> u64 {
    hookrelay::store::now_ms() / 1000
}

fn standard(id: &str, ts: u64, body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    let ts = ts.to_string();
    let sig = sign_standard(&standard_key(secret).unwrap(), id, &ts, body);
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ]
}

fn refused(answer: &Answer, kind: &str) {
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(answer.json["type"], kind, "{}", answer.text);
    assert!(answer.json["error"].is_string());
}

#[test]
fn standard_webhooks_signatures_are_required_and_checked() {
    let app = spawn();
    let body = opportunity("006SIG1", "UK").to_string();
    let body = body.as_bytes();

    refused(&post(&app, "signed", body, &[]), "missing_signature");
    refused(
        &post(
            &app,
            "signed",
            body,
            &standard("msg_1", now() - 400, body, OLD),
        ),
        "stale_signature",
    );
    refused(
        &post(
            &app,
            "signed",
            body,
            &standard("msg_1", now(), body, "whsec_b3RoZXI="),
        ),
        "bad_signature",
    );
    let tampered = opportunity("006SIG1", "US").to_string();
    refused(
        &post(
            &app,
            "signed",
            tampered.as_bytes(),
            &standard("msg_1", now(), body, OLD),
        ),
        "bad_signature",
    );
    assert_eq!(
        app.store.find_external("signed", "006SIG1").unwrap(),
        None,
        "nothing stored"
    );

    // Signed with either secret (a rotation under way): taken.
    let ok = post(&app, "signed", body, &standard("msg_1", now(), body, OLD));
    assert_eq!(ok.status, 202, "{}", ok.text);
    let other = opportunity("006SIG2", "UK").to_string();
    let ok = post(
        &app,
        "signed",
        other.as_bytes(),
        &standard("msg_2", now(), other.as_bytes(), NEW),
    );
    assert_eq!(ok.status, 202, "{}", ok.text);

    // The same webhook-id again, freshly signed: a replay.
    let again = opportunity("006SIG3", "UK").to_string();
    refused(
        &post(
            &app,
            "signed",
            again.as_bytes(),
            &standard("msg_1", now(), again.as_bytes(), OLD),
        ),
        "replayed_webhook",
    );
    assert_eq!(app.store.find_external("signed", "006SIG3").unwrap(), None);
    // A request refused for another reason does not burn its id: the sender's retry is taken.
    let bad = opportunity("006SIG4", "ZZ").to_string(); // unroutable: 422
    let answer = post(
        &app,
        "signed",
        bad.as_bytes(),
        &standard("msg_4", now(), bad.as_bytes(), OLD),
    );
    assert_eq!(answer.status, 422, "{}", answer.text);
    let fixed = opportunity("006SIG4", "UK").to_string();
    let answer = post(
        &app,
        "signed",
        fixed.as_bytes(),
        &standard("msg_4", now(), fixed.as_bytes(), OLD),
    );
    assert_eq!(answer.status, 202, "{}", answer.text);
}

#[test]
fn hub_signatures_are_checked_over_the_body() {
    let app = spawn();
    let body = opportunity("006HUB", "UK").to_string();
    refused(
        &post(&app, "hub", body.as_bytes(), &[]),
        "missing_signature",
    );
    let wrong = vec![("X-Hub-Signature-256", sign_hub(b"another", body.as_bytes()))];
    refused(&post(&app, "hub", body.as_bytes(), &wrong), "bad_signature");
    let right = vec![(
        "X-Hub-Signature-256",
        sign_hub(HUB.as_bytes(), body.as_bytes()),
    )];
    assert_eq!(post(&app, "hub", body.as_bytes(), &right).status, 202);
    // Unsigned sources are unchanged.
    assert_eq!(app.post(&opportunity("006PLAIN", "UK")).status, 202);
}
