//! The status page at `/`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_slack::{FakeSlack, Reply};
use crate::helpers::{config, opportunity, spawn_app, spawn_with, TestApp, ADMIN_TOKEN, TOKEN};

/// What `/` (or another path) answered.
struct Page {
    status: u16,
    content_type: String,
    text: String,
}

impl Page {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn request(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> Page {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!("{}{path}", app.address);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut resp = if method == "POST" {
        let mut r = agent.post(&url);
        if let Some(a) = &auth {
            r = r.header("Authorization", a);
        }
        r.send_empty()
    } else {
        let mut r = agent.get(&url);
        if let Some(a) = &auth {
            r = r.header("Authorization", a);
        }
        r.call()
    }
    .expect("relay answers");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Page {
        status: resp.status().as_u16(),
        content_type,
        text: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

fn page(app: &TestApp, token: Option<&str>) -> Page {
    request(app, "GET", "/", token)
}

/// Fetches the page as admin until `pred` holds on its HTML (metrics are not in the store).
fn wait_page(app: &TestApp, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = page(app, Some(ADMIN_TOKEN));
        assert_eq!(p.status, 200, "{}", p.text);
        if pred(&p.text) {
            return p.text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `<tr data-region="NAME">` row of the regions table.
fn region_row<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("<tr data-region=\"{name}\">"))
        .unwrap_or_else(|| panic!("no row for region {name}"));
    let end = html[start..].find("</tr>").expect("row ends") + start;
    &html[start..end]
}

#[test]
fn the_status_page_needs_an_admin_token_like_the_admin_api() {
    let app = spawn_app();

    let none = page(&app, None);
    assert_eq!(none.status, 401, "{}", none.text);
    assert!(none.content_type.starts_with("application/json"));
    assert_eq!(none.json()["type"], "missing_token");

    let wrong = page(&app, Some("not-a-token"));
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.json()["type"], "invalid_token");

    let source = page(&app, Some(TOKEN));
    assert_eq!(
        source.status, 403,
        "a source's token does not open the page"
    );
    assert_eq!(source.json()["type"], "forbidden");

    let ok = page(&app, Some(ADMIN_TOKEN));
    assert_eq!(ok.status, 200);
    assert!(
        ok.content_type.starts_with("text/html"),
        "{}",
        ok.content_type
    );
}

#[test]
fn an_idle_relay_renders_every_region_and_empty_lists() {
    let app = spawn_app();
    let html = page(&app, Some(ADMIN_TOKEN)).text;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for region in ["UK", "US", "EU"] {
        let row = region_row(&html, region);
        assert!(row.contains("<td class=\"n queue\">0</td>"), "{row}");
        assert!(row.contains("active"), "{row}");
    }
    assert!(html.contains(env!("CARGO_PKG_VERSION")));
    assert!(html.contains("<b id=\"total-dead\">0</b>"));
    assert!(html.contains("No delivery attempts since the relay started."));
    assert!(!html.contains("<table id=\"dead-letters\""));
    // No external assets: nothing is loaded from anywhere, and no webhook URL is shown in full.
    for external in ["src=", "<link", "href=\"http", "@import", "url(", "<iframe"] {
        assert!(!html.contains(external), "page references {external:?}");
    }
    assert!(
        !html.contains(&app.slack.url("uk")),
        "the webhook URL leaks"
    );
}

#[test]
fn a_paused_region_shows_its_queue_depth_oldest_age_and_reason() {
    let app = spawn_app();
    let paused = request(&app, "POST", "/v1/regions/UK/pause", Some(ADMIN_TOKEN));
    assert_eq!(paused.status, 200, "{}", paused.text);
    for id in ["q-1", "q-2"] {
        assert_eq!(app.post(&opportunity(id, "UK")).status, 202);
    }
    assert_eq!(app.post(&opportunity("us-1", "US")).status, 202);

    let html = wait_page(&app, "the US delivery in the recent list", |h| {
        h.contains("<table id=\"recent\"") && h.contains("salesforce/us-1")
    });
    let uk = region_row(&html, "UK");
    assert!(uk.contains("<td class=\"n queue\">2</td>"), "{uk}");
    assert!(uk.contains("paused by an operator"), "{uk}");
    assert!(uk.contains(">paused<"), "{uk}");
    assert!(
        uk.contains("<td>0s</td>") || uk.contains("<td>1s</td>"),
        "oldest pending age: {uk}"
    );
    let us = region_row(&html, "US");
    assert!(us.contains("ago</time>"), "last success shown: {us}");
    assert!(us.contains(" UTC\""), "UTC time in the tooltip: {us}");
    assert!(html.contains("<b id=\"total-pending\">2</b>"));
    assert!(html.contains(">delivered</span>"));
}

#[test]
fn dead_letters_show_their_reason_and_a_replay_button_and_hostile_ids_are_escaped() {
    let app = spawn_app();
    app.slack
        .script("eu", [Reply::Status(400, "invalid_blocks")]);
    let hostile = "<script>alert('x')</script>&\"";
    assert_eq!(app.post(&opportunity(hostile, "DE")).status, 202);
    let dead = app.wait_store("a dead letter", |s| {
        s.dead_letters().ok().filter(|d| !d.is_empty())
    });
    let id = dead[0].id;

    let html = wait_page(&app, "the dead delivery in the recent list", |h| {
        h.contains(">dead</span>")
    });
    assert!(html.contains("<b id=\"total-dead\">1</b>"));
    let start = html
        .find("<table id=\"dead-letters\"")
        .expect("dead letter table");
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    assert!(table.contains("invalid_blocks"), "reason shown: {table}");
    assert!(table.contains("region EU"), "{table}");
    assert!(
        table.contains(&format!(
            "<button type=\"button\" class=\"replay\" data-id=\"{id}\">Replay</button>"
        )),
        "replay button: {table}"
    );
    // The hostile id is shown escaped, in the dead letters and in the recent list.
    let escaped = "salesforce/&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;";
    assert!(table.contains(escaped), "{table}");
    assert_eq!(html.matches(escaped).count(), 2, "dead letters and recent");
    assert!(
        !html.contains("<script>alert"),
        "unescaped value on the page"
    );
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    let region = region_row(&html, "EU");
    assert!(region.contains("invalid_blocks"), "last error: {region}");

    // What the button calls: the admin replay endpoint with the id the page rendered.
    let replayed = request(
        &app,
        "POST",
        &format!("/v1/dead-letters/{id}/replay"),
        Some(ADMIN_TOKEN),
    );
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    assert!(html.contains("fetch('/v1/dead-letters/'"));
    app.wait_store("the replay delivered", |s| {
        s.dead_letters().ok().filter(|d| d.is_empty())
    });
    let after = page(&app, Some(ADMIN_TOKEN)).text;
    assert!(after.contains("<b id=\"total-dead\">0</b>"));
    assert!(!after.contains("<table id=\"dead-letters\""));
}

#[test]
fn local_status_page_opens_the_page_to_localhost_without_a_token() {
    let slack = std::sync::Arc::new(FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    assert!(text.contains("[admin]\ntokens = ["));
    let text = text.replace(
        "[admin]\ntokens = [",
        "[admin]\nlocal_status_page = true\ntokens = [",
    );
    let app = spawn_with(&text, slack, dir);

    let local = page(&app, None);
    assert_eq!(local.status, 200, "{}", local.text);
    assert!(local.content_type.starts_with("text/html"));
    assert!(local.text.contains("<tr data-region=\"EU\">"));
    // The rest of the admin API still needs the token.
    assert_eq!(request(&app, "GET", "/v1/status", None).status, 401);
    assert_eq!(
        request(&app, "POST", "/v1/dead-letters/1/replay", None).status,
        401
    );
}

#[test]
fn without_admin_tokens_the_page_is_off_unless_local() {
    let slack = std::sync::Arc::new(FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    let off = text.replace(&format!("[admin]\ntokens = [\"{ADMIN_TOKEN}\"]"), "");
    assert_ne!(off, text);
    let app = spawn_with(&off, slack.clone(), dir);
    let p = page(&app, Some(ADMIN_TOKEN));
    assert_eq!(p.status, 404);
    assert_eq!(p.json()["type"], "admin_disabled");

    // A second relay of its own (its own store), with only the local page on.
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let local = config(&slack, dir.path())
        .replace(&format!("[admin]\ntokens = [\"{ADMIN_TOKEN}\"]"), "")
        .replacen(
            "[[routes]]",
            "[admin]\nlocal_status_page = true\n[[routes]]",
            1,
        );
    slack.script("eu", [Reply::Status(400, "invalid_blocks")]);
    let local_app = spawn_with(&local, slack, dir);
    drop(app);
    assert_eq!(local_app.post(&opportunity("no-admin", "FR")).status, 202);
    let dead = local_app.wait_store("a dead letter", |s| {
        s.dead_letters().ok().filter(|d| !d.is_empty())
    });
    let p = page(&local_app, None);
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("Replay needs the admin API"), "{}", p.text);
    assert!(p.text.contains(&format!(
        "class=\"replay\" data-id=\"{}\" disabled>",
        dead[0].id
    )));
}
