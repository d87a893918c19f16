//! `server.trusted_proxies`: the sender's address `/v1/status` and the status page show, and
//! the status page's local check, with the relay behind a proxy and without one.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with, Answer, TestApp, ADMIN_TOKEN};

/// The test config, with `extra` lines added to `[server]` and `[admin]`.
fn spawn(server: &str, admin: &str) -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    assert!(text.contains("[server]\n") && text.contains("[admin]\n"));
    let text = text
        .replacen("[server]\n", &format!("[server]\n{server}\n"), 1)
        .replacen("[admin]\n", &format!("[admin]\n{admin}\n"), 1);
    spawn_with(&text, slack, dir)
}

/// A relay behind a proxy on its own machine.
fn behind_a_proxy(admin: &str) -> TestApp {
    spawn("trusted_proxies = [\"127.0.0.1/32\"]", admin)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// POSTs `body` as JSON to `/hooks/salesforce`, as forwarded for `xff` if given.
fn post_hook(app: &TestApp, body: &str, xff: Option<&str>) -> Answer {
    let mut req = agent()
        .post(format!("{}/hooks/salesforce", app.address))
        .header("Content-Type", "application/json");
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    Answer::read(req.send(body).expect("relay answers"))
}

/// GETs `path`, with the admin token if `admin`, and these headers.
fn get(app: &TestApp, path: &str, admin: bool, headers: &[(&str, &str)]) -> Answer {
    let mut req = agent().get(format!("{}{path}", app.address));
    if admin {
        req = req.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Answer::read(req.call().expect("relay answers"))
}

/// `/v1/status`'s `sources.salesforce`.
fn salesforce(app: &TestApp) -> Value {
    let status = get(app, "/v1/status", true, &[]);
    assert_eq!(status.status, 200, "{}", status.text);
    status.json["sources"]["salesforce"].clone()
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_sender_is_shown() {
    let app = behind_a_proxy("");
    let body = opportunity("via-proxy", "UK").to_string();
    assert_eq!(post_hook(&app, &body, Some("203.0.113.7")).status, 202);

    let last = salesforce(&app);
    assert_eq!(last["last_accepted"]["from"], "203.0.113.7", "{last}");
    assert!(last["last_accepted"]["at_ms"].as_u64().is_some(), "{last}");
    assert_eq!(last["last_refused"], Value::Null, "{last}");
    // Sources that sent nothing yet are listed, with nothing to show.
    let status = get(&app, "/v1/status", true, &[]).json;
    assert_eq!(status["sources"]["orders"]["last_accepted"], Value::Null);

    let page = get(&app, "/", true, &[]);
    assert_eq!(page.status, 200);
    let row = page
        .text
        .split("<tr data-source=\"salesforce\">")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no sources row for salesforce: {}", page.text));
    assert!(
        row.contains("<code class=\"from\">203.0.113.7</code>"),
        "{row}"
    );
}

#[test]
fn without_trusted_proxies_forwarded_for_is_not_believed() {
    let app = spawn("", "");
    let body = opportunity("spoofed", "UK").to_string();
    assert_eq!(post_hook(&app, &body, Some("203.0.113.7")).status, 202);
    let last = salesforce(&app);
    assert_eq!(last["last_accepted"]["from"], "127.0.0.1", "{last}");
}

#[test]
fn a_refused_webhook_shows_its_status_and_sender() {
    let app = behind_a_proxy("");
    let refused = post_hook(&app, "{not json", Some("198.51.100.4"));
    assert_eq!(refused.status, 400, "{}", refused.text);

    let last = salesforce(&app);
    assert_eq!(last["last_refused"]["status"], 400, "{last}");
    assert_eq!(last["last_refused"]["from"], "198.51.100.4", "{last}");
    assert_eq!(last["last_accepted"], Value::Null, "{last}");

    let page = get(&app, "/", true, &[]);
    assert!(
        page.text.contains("<span class=\"badge bad\">400</span>"),
        "{}",
        page.text
    );
}

#[test]
fn the_local_status_page_is_not_opened_to_a_browser_the_proxy_forwards() {
    let app = behind_a_proxy("local_status_page = true");
    let forwarded = get(&app, "/", false, &[("X-Forwarded-For", "203.0.113.7")]);
    assert_eq!(forwarded.status, 401, "{}", forwarded.text);
    // The same machine, straight to the relay or through the proxy.
    assert_eq!(get(&app, "/", false, &[]).status, 200);
    let local = get(&app, "/", false, &[("X-Forwarded-For", "127.0.0.1")]);
    assert_eq!(local.status, 200);
}

#[test]
fn a_proxy_the_relay_does_not_trust_makes_no_visitor_local() {
    let app = spawn("", "local_status_page = true");
    assert_eq!(get(&app, "/", false, &[]).status, 200);
    for header in [
        ("X-Forwarded-For", "127.0.0.1"),
        ("Forwarded", "for=203.0.113.7"),
    ] {
        let answer = get(&app, "/", false, &[header]);
        assert_eq!(answer.status, 401, "{header:?}: {}", answer.text);
    }
}
