//! Rainforest's unit tests: each event parsed and rendered, the refusals (which never show the
//! webhook secret), the dedupe key, and the message within Slack's limits whatever the payload.

use serde_json::json;

use super::message::{FALLBACK_MAX, LISTED_TESTS_MAX};
use super::*;

const SECRET_URL: &str = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";

fn allowed() -> Vec<String> {
    vec!["hooks.slack.com".to_string()]
}

fn request(event: &str, payload: Value) -> Vec<u8> {
    json!({
        "event_name": event,
        "integrations": [{"key": "slack", "settings": {"url": SECRET_URL}}],
        "payload": payload
    })
    .to_string()
    .into_bytes()
}

fn with_integrations(integrations: Value) -> Vec<u8> {
    json!({
        "event_name": "run_error",
        "integrations": integrations,
        "payload": {"run": {"id": 1}}
    })
    .to_string()
    .into_bytes()
}

fn run() -> Value {
    json!({
        "id": 123, "description": "Nightly checkout suite", "result": "failed",
        "state": "complete", "frontend_url": "https://app.rainforestqa.com/runs/123?a=1&b=2"
    })
}

fn header(msg: &Value) -> &str {
    msg["blocks"][0]["text"]["text"].as_str().unwrap()
}

/// Every text a block holds (section text, fields, context elements).
fn block_texts(msg: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for b in msg["blocks"].as_array().unwrap() {
        if let Some(t) = b["text"]["text"].as_str() {
            out.push(t.to_string());
        }
        for key in ["fields", "elements"] {
            if let Some(list) = b[key].as_array() {
                out.extend(
                    list.iter()
                        .filter_map(|f| f["text"].as_str().map(String::from)),
                );
            }
        }
    }
    out
}

fn assert_within_limits(msg: &Value) {
    let blocks = msg["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    assert!(header(msg).chars().count() <= 150);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            let n = t.chars().count();
            assert!((1..=3000).contains(&n), "block text of {n} chars");
        }
        if let Some(f) = b["fields"].as_array() {
            assert!(f.len() <= 10);
            for x in f {
                assert!(x["text"].as_str().unwrap().chars().count() <= 2000);
            }
        }
    }
    let text = msg["text"].as_str().unwrap();
    assert!(!text.is_empty() && text.chars().count() <= FALLBACK_MAX);
}

fn err(body: &[u8]) -> RainforestError {
    RainforestEvent::parse(body, &allowed()).unwrap_err()
}

#[test]
fn run_completion_parses_and_lists_failed_tests() {
    let failed = json!([{"id": 7, "title": "Log in"}, {"id": 8, "title": "Check out"}]);
    let body = request(
        "run_completion",
        json!({"run": run(), "failed_tests": failed}),
    );
    let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
    assert_eq!(ev.event_name, EventName::RunCompletion);
    assert_eq!(ev.targets.len(), 1);
    assert_eq!(ev.targets[0].expose(), SECRET_URL);
    assert_eq!(ev.dedupe_key().as_deref(), Some("run_completion:123"));

    let msg = render(ev.event_name, &ev.payload);
    assert_eq!(header(&msg), "Run #123 failed");
    let all = block_texts(&msg).join("\n");
    assert!(all.contains("• Log in (#7)\n• Check out (#8)"), "{all}");
    assert!(all.contains("Nightly checkout suite"));
    assert!(
        all.contains("<https://app.rainforestqa.com/runs/123?a=1&amp;b=2|Open run in Rainforest>")
    );
    assert!(msg["text"].as_str().unwrap().contains("Run #123 failed"));
    assert_within_limits(&msg);

    let passed =
        json!({"run": {"id": "9", "result": "passed", "url": "https://x/r/9"}, "failed_tests": []});
    let msg = render(EventName::RunCompletion, &passed);
    assert_eq!(header(&msg), "Run #9 passed");
    assert!(!block_texts(&msg).join("\n").contains("*Failed tests ("));
    assert_within_limits(&msg);
}

#[test]
fn run_error_parses_and_shows_the_error() {
    let mut r = run();
    r["error_message"] = json!("VM <failed> to boot");
    let ev = RainforestEvent::parse(&request("run_error", json!({"run": r})), &allowed()).unwrap();
    assert_eq!(ev.event_name, EventName::RunError);
    let msg = render(ev.event_name, &ev.payload);
    assert_eq!(header(&msg), "Run #123 errored");
    let all = block_texts(&msg).join("\n");
    assert!(all.contains("*Error*\nVM &lt;failed&gt; to boot"), "{all}");
    assert!(all.contains("Open run in Rainforest"));
    assert_within_limits(&msg);
}

#[test]
fn run_webhook_timeout_parses_and_renders() {
    let body = request("run_webhook_timeout", json!({"run": run()}));
    let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
    let msg = render(ev.event_name, &ev.payload);
    assert_eq!(header(&msg), "Run #123 timed out waiting for a webhook");
    assert_eq!(ev.dedupe_key().as_deref(), Some("run_webhook_timeout:123"));
    assert_within_limits(&msg);
}

#[test]
fn run_test_failure_parses_and_names_the_test() {
    let body = request(
        "run_test_failure",
        json!({"run": run(), "failed_test": {"id": 42, "title": "Add to cart"}}),
    );
    let ev = RainforestEvent::parse(&body, &allowed()).unwrap();
    assert_eq!(ev.dedupe_key().as_deref(), Some("run_test_failure:123:42"));
    let msg = render(ev.event_name, &ev.payload);
    assert_eq!(header(&msg), "Test failed in run #123");
    assert!(block_texts(&msg)
        .join("\n")
        .contains("*Add to cart*\nTest #42"));
    assert!(msg["text"].as_str().unwrap().contains("Add to cart"));
    assert_within_limits(&msg);
}

#[test]
fn dedupe_key_needs_ids_and_escapes_separators() {
    let ev = |name: EventName, payload: Value| RainforestEvent {
        event_name: name,
        payload,
        targets: vec![],
    };
    assert_eq!(
        ev(EventName::RunError, json!({"run": {}})).dedupe_key(),
        None
    );
    assert_eq!(
        ev(
            EventName::RunTestFailure,
            json!({"run": {"id": 1}, "failed_test": {}})
        )
        .dedupe_key(),
        None
    );
    assert_eq!(
        ev(
            EventName::RunTestFailure,
            json!({"run": {"id": "a:b"}, "failed_test": {"id": "c"}})
        )
        .dedupe_key()
        .as_deref(),
        Some("run_test_failure:a%3Ab:c")
    );
    let long = "x".repeat(300);
    assert_eq!(
        ev(EventName::RunError, json!({"run": {"id": long}})).dedupe_key(),
        None
    );
}

#[test]
fn invalid_requests_are_named() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "JSON"),
        (b"[1,2]".to_vec(), "object"),
        (
            request("run_exploded", json!({"run": {}})),
            "unknown event_name `run_exploded`",
        ),
        (
            br#"{"integrations":[{"key":"slack","settings":{"url":"x"}}],"payload":{"run":{}}}"#
                .to_vec(),
            "`event_name`",
        ),
        (
            request("run_completion", json!({"run": run()})),
            "`failed_tests`",
        ),
        (
            request("run_test_failure", json!({"run": run()})),
            "`failed_test`",
        ),
        (request("run_error", json!({})), "`run`"),
        (request("run_error", json!({"run": "123"})), "`run`"),
        (request("run_error", json!([1])), "`payload`"),
        (
            br#"{"event_name":"run_error","payload":{"run":{}}}"#.to_vec(),
            "`integrations`",
        ),
        (with_integrations(json!([])), "at least one"),
        (with_integrations(json!(["slack"])), "integrations[0]"),
        (with_integrations(json!([{"settings": {}}])), "`key`"),
    ];
    for (body, needle) in cases {
        let e = err(&body);
        assert_eq!(e.kind(), "invalid_request", "{e}");
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
    }
}

#[test]
fn other_integrations_are_unsupported() {
    let e = err(&with_integrations(
        json!([{"key": "jira", "settings": {"url": SECRET_URL}}]),
    ));
    assert_eq!(e.kind(), "unsupported_integration");
    assert!(e.to_string().contains("`jira`"));
    // A supported entry before it does not change the answer.
    let e = err(&with_integrations(json!([
        {"key": "slack", "settings": {"url": SECRET_URL}},
        {"key": "jira", "settings": {}}
    ])));
    assert_eq!(e.kind(), "unsupported_integration");
}

#[test]
fn misconfigured_slack_settings_never_show_the_secret() {
    let bad = |settings: Value| {
        err(&with_integrations(
            json!([{"key": "slack", "settings": settings}]),
        ))
    };
    let cases = [
        (bad(json!({})), "`url` is required"),
        (
            err(&with_integrations(json!([{"key": "slack"}]))),
            "`settings`",
        ),
        (bad(json!({"url": 5})), "string"),
        (
            bad(json!({"url": "not a url/SECRET"})),
            "not a valid webhook URL",
        ),
        (
            bad(json!({"url": "hooks.slack.com/services/T0/B0/SECRET"})),
            "not a valid webhook URL",
        ),
        (bad(json!({"url": "file:///tmp/SECRET"})), "https://"),
        (
            bad(json!({"url": "http://hooks.slack.com/services/T0/B0/SECRET"})),
            "https://",
        ),
        (
            bad(json!({"url": "https://evil.example.com/services/T0/B0/SECRET"})),
            "`evil.example.com`",
        ),
        (
            bad(json!({"url": "https://hooks.slack.com.evil.io/services/SECRET"})),
            "not allowed",
        ),
        (
            bad(json!({"url": "https://hooks.slack.com@evil.io/SECRET"})),
            "`evil.io`",
        ),
        (
            bad(json!({"url": "https://user:SECRET@hooks.slack.com/x"})),
            "invalid host",
        ),
    ];
    for (e, needle) in cases {
        assert_eq!(e.kind(), "misconfigured_integration", "{e}");
        let text = e.to_string();
        assert!(text.contains(needle), "{text} lacks {needle}");
        assert!(
            !text.contains("SECRET") && !text.contains("/services"),
            "{text}"
        );
    }
}

#[test]
fn hosts_match_case_insensitively_and_local_http_needs_allowing() {
    let body = |url: &str| with_integrations(json!([{"key": "slack", "settings": {"url": url}}]));
    let ok = RainforestEvent::parse(&body("https://HOOKS.slack.com/services/a"), &allowed());
    assert!(ok.is_ok());
    let local = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    assert!(RainforestEvent::parse(&body("http://127.0.0.1:8080/hook"), &local).is_ok());
    assert!(RainforestEvent::parse(&body("http://localhost:9/hook"), &local).is_ok());
    let e = RainforestEvent::parse(&body("http://127.0.0.1:8080/hook"), &allowed()).unwrap_err();
    assert_eq!(e.kind(), "misconfigured_integration");
    let e = RainforestEvent::parse(&body(SECRET_URL), &[]).unwrap_err();
    assert_eq!(e.kind(), "misconfigured_integration");
}

#[test]
fn duplicate_urls_are_kept_once_and_fan_out_is_capped() {
    let slack = json!({"key": "slack", "settings": {"url": SECRET_URL}});
    let other =
        json!({"key": "slack", "settings": {"url": "https://hooks.slack.com/services/T/B/OTHER"}});
    let ev = RainforestEvent::parse(&with_integrations(json!([slack, other, slack])), &allowed())
        .unwrap();
    assert_eq!(ev.targets.len(), 2);
    let many: Vec<Value> = (0..=MAX_TARGETS)
        .map(|i| json!({"key": "slack", "settings": {"url": format!("https://hooks.slack.com/services/T/B/{i}")}}))
        .collect();
    assert_eq!(
        err(&with_integrations(json!(many))).kind(),
        "invalid_request"
    );
}

#[test]
fn five_hundred_failed_tests_stay_within_slack_limits() {
    let tests: Vec<Value> = (0..500)
        .map(|i| json!({"id": i, "title": format!("A rather long test title number {i} {}", "x".repeat(80))}))
        .collect();
    let mut r = run();
    r["description"] = json!("d".repeat(10_000));
    let msg = render(
        EventName::RunCompletion,
        &json!({"run": r, "failed_tests": tests}),
    );
    assert_within_limits(&msg);
    let all = block_texts(&msg).join("\n");
    assert!(all.contains("*Failed tests (500)*"));
    assert!(all.contains("• A rather long test title number 0 "));
    let shown = all.matches("• A rather long").count();
    let more = all.split("…and ").nth(1).expect("an …and N more line");
    let n: usize = more.split(' ').next().unwrap().parse().unwrap();
    assert!(
        shown > 0 && shown <= LISTED_TESTS_MAX && shown + n == 500,
        "{shown} + {n}"
    );
    assert!(more.starts_with(&format!("{n} more")));
}

#[test]
fn mentions_in_user_values_are_escaped() {
    let payload = json!({
        "run": {"id": "<!here>", "description": "<!channel> & friends", "result": "failed"},
        "failed_tests": [{"id": 1, "title": "<@U123> broke it"}]
    });
    let msg = render(EventName::RunCompletion, &payload);
    let all = msg.to_string();
    assert!(
        !all.contains("<!channel>") && !all.contains("<@U123>"),
        "{all}"
    );
    let texts = block_texts(&msg).join("\n");
    assert!(texts.contains("&lt;!channel&gt; &amp; friends"));
    assert!(texts.contains("&lt;@U123&gt; broke it"));
    assert!(msg["text"].as_str().unwrap().contains("&lt;!channel&gt;"));
    // A header is plain text: not parsed for mentions, shown as written.
    assert_eq!(header(&msg), "Run #<!here> failed");
}

#[test]
fn unsafe_links_are_not_linked() {
    let payload = json!({"run": {"id": 1, "frontend_url": "https://x|<!channel>"}});
    let msg = render(EventName::RunWebhookTimeout, &payload);
    assert!(!msg.to_string().contains("<!channel>"));
    assert!(!block_texts(&msg).join("\n").contains("Open run"));
    let msg = render(
        EventName::RunError,
        &json!({"run": {"frontend_url": "javascript:alert(1)"}}),
    );
    assert_eq!(header(&msg), "Run errored");
    assert_within_limits(&msg);
}
