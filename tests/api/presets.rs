//! The presets in `examples/` (Alertmanager, GitHub, Grafana), each as a user would take it: the
//! preset's `hookrelay.toml` pasted into the config, its sample requests posted as the sender
//! sends them, and what the fake Slack received compared with the preset's `slack-*.json`.
//!
//! The `slack-*.json` files are what the real relay sends. After a deliberate change to what the
//! relay sends, `HOOKRELAY_BLESS=1 cargo test presets` writes them anew (then review the diff).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use hookrelay::config::Settings;
use hookrelay::sources::signature::sign_hub;

use crate::binary::replace_once;
use crate::fake_slack::FakeSlack;
use crate::helpers::{config, spawn_with, Answer, TestApp};
use crate::signed::post;

/// The secret the GitHub test webhook is given (GitHub's "Secret" field).
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// Where the GitHub preset reads its secret from; the tests put a temp file there instead.
const GITHUB_SECRET_FILE: &str = "/etc/hookrelay/github-webhook-secret";

fn preset_dir(preset: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(preset)
}

fn read(preset: &str, file: &str) -> String {
    let path = preset_dir(preset).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A preset's `hookrelay.toml`, its secret file (if any) moved to `secret_file`.
fn snippet(preset: &str, secret_file: &Path) -> String {
    let text = read(preset, "hookrelay.toml");
    let text = text.replace(GITHUB_SECRET_FILE, &secret_file.display().to_string());
    format!("\n{text}")
}

/// The relay on the test config (real senders' bodies are larger than its 4 KiB limit, so the
/// shipped 1 MiB is used) with the preset's tables added. The presets post to region UK.
fn spawn_preset(preset: &str) -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let secret = dir.path().join("github-webhook-secret");
    std::fs::write(&secret, format!("{GITHUB_SECRET}\n")).expect("write the secret");
    let text = replace_once(
        &config(&slack, dir.path()),
        "max_body_bytes = 4096",
        "max_body_bytes = 1048576",
    );
    let text = format!("{text}{}", snippet(preset, &secret));
    spawn_with(&text, slack, dir)
}

/// The headers GitHub sends with a delivery (`event`: X-GitHub-Event).
fn github_headers(
    event: &str,
    delivery: &str,
    secret: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("User-Agent", "GitHub-Hookshot/a1b2c3d".into()),
        ("X-GitHub-Event", event.into()),
        ("X-GitHub-Delivery", delivery.into()),
        ("X-GitHub-Hook-ID", "478123456".into()),
        ("X-Hub-Signature-256", sign_hub(secret.as_bytes(), body)),
    ]
}

/// Alertmanager's and Grafana's request headers.
fn alert_headers(user_agent: &str) -> Vec<(&'static str, String)> {
    vec![("User-Agent", user_agent.to_string())]
}

/// Asserts that `got` is the preset's `slack-NAME.json` (or writes it, with `HOOKRELAY_BLESS`).
fn assert_slack(preset: &str, name: &str, got: &Value) {
    let path = preset_dir(preset).join(format!("slack-{name}.json"));
    if std::env::var_os("HOOKRELAY_BLESS").is_some() {
        let text = serde_json::to_string_pretty(got).expect("json") + "\n";
        std::fs::write(&path, text).expect("write the expected payload");
        return;
    }
    let want: Value = serde_json::from_str(&read(preset, &format!("slack-{name}.json")))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        got,
        &want,
        "Slack received, for {preset}/{name}:\n{}\nbut {} says:\n{}",
        serde_json::to_string_pretty(got).unwrap_or_default(),
        path.display(),
        serde_json::to_string_pretty(&want).unwrap_or_default()
    );
}

fn status(answer: &Answer) -> (u16, &str) {
    (answer.status, answer.json["status"].as_str().unwrap_or(""))
}

// ---- Alertmanager ----------------------------------------------------------------------------

#[test]
fn alertmanager_firing_then_resolved_is_a_message_and_a_follow_up_marked_resolved() {
    let app = spawn_preset("alertmanager");
    let firing = read("alertmanager", "firing.json");
    let resolved = read("alertmanager", "resolved.json");
    let am = alert_headers("Alertmanager/0.25.0");

    let first = post(&app, "alertmanager", firing.as_bytes(), &am);
    assert_eq!(status(&first), (202, "accepted"), "{}", first.text);
    let got = app.slack.wait_delivered("uk", 1);
    assert_slack("alertmanager", "firing", &got[0].body);

    // Alertmanager's repeat (repeat_interval) or retry of the same notification.
    let again = post(&app, "alertmanager", firing.as_bytes(), &am);
    assert_eq!(status(&again), (200, "duplicate"), "{}", again.text);
    assert_eq!(again.json["id"], first.json["id"]);

    let resolve = post(&app, "alertmanager", resolved.as_bytes(), &am);
    assert_eq!(status(&resolve), (202, "updated"), "{}", resolve.text);
    assert_eq!(resolve.json["id"], first.json["id"], "one notification");
    let got = app.slack.wait_delivered("uk", 2);
    assert_slack("alertmanager", "resolved", &got[1].body);

    let retry = post(&app, "alertmanager", resolved.as_bytes(), &am);
    assert_eq!(status(&retry), (200, "duplicate"), "{}", retry.text);
    // Anything else would have been posted by now: every delivery so far went out in order.
    let later = post(
        &app,
        "alertmanager",
        firing.replace("DiskFull", "DiskFullToo").as_bytes(),
        &am,
    );
    assert_eq!(status(&later), (202, "accepted"));
    app.slack.wait_delivered("uk", 3);
    let got = app.slack.received("uk");
    assert_eq!(got.len(), 3, "the duplicates posted nothing: {got:#?}");
    assert!(got[2].body["text"]
        .as_str()
        .unwrap_or("")
        .contains("DiskFullToo"));
}

#[test]
fn a_change_only_in_an_ignored_pointer_is_a_duplicate() {
    let app = spawn_preset("alertmanager");
    let am = alert_headers("Alertmanager/0.25.0");
    let firing: Value =
        serde_json::from_str(&read("alertmanager", "firing.json")).expect("firing.json");
    assert_eq!(
        status(&post(
            &app,
            "alertmanager",
            firing.to_string().as_bytes(),
            &am
        )),
        (202, "accepted")
    );
    // The preset ignores /alerts/*/startsAt and /truncatedAlerts: an alert that fired again.
    let mut refired = firing.clone();
    refired["alerts"][1]["startsAt"] = "2024-05-14T09:30:00.123Z".into();
    refired["truncatedAlerts"] = 1.into();
    let answer = post(&app, "alertmanager", refired.to_string().as_bytes(), &am);
    assert_eq!(status(&answer), (200, "duplicate"), "{}", answer.text);
    // Another pointer changed: a new version, posted as a follow-up naming the change.
    let mut graver = refired.clone();
    graver["commonLabels"]["severity"] = "page".into();
    let answer = post(&app, "alertmanager", graver.to_string().as_bytes(), &am);
    assert_eq!(status(&answer), (202, "updated"), "{}", answer.text);
    let got = app.slack.wait_delivered("uk", 2);
    let text = got[1].body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Severity: critical → page"),
        "the follow-up names the change: {text}"
    );
    assert_eq!(app.slack.received("uk").len(), 2);
}

#[test]
fn a_template_field_missing_from_the_body_is_refused_naming_it() {
    let app = spawn_preset("alertmanager");
    let mut firing: Value =
        serde_json::from_str(&read("alertmanager", "firing.json")).expect("firing.json");
    firing
        .as_object_mut()
        .expect("an object")
        .remove("groupKey");
    let answer = post(&app, "alertmanager", firing.to_string().as_bytes(), &[]);
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json["type"], "invalid_record", "{}", answer.text);
    assert!(
        answer.json["error"]
            .as_str()
            .unwrap_or("")
            .contains("/groupKey"),
        "the error names the field: {}",
        answer.text
    );
    assert!(app.slack.all().is_empty());
}

// ---- GitHub ----------------------------------------------------------------------------------

#[test]
fn github_push_and_issue_events_signed_as_github_signs_them() {
    let app = spawn_preset("github");
    let push = read("github", "push.json");
    let push = push.as_bytes();

    // Signed with another secret, or not at all: refused, nothing posted.
    let forged = post(
        &app,
        "github-push",
        push,
        &github_headers("push", "7c1d0e2a-1", "another secret", push),
    );
    assert_eq!(forged.status, 401, "{}", forged.text);
    assert_eq!(forged.json["type"], "bad_signature", "{}", forged.text);
    let unsigned = post(&app, "github-push", push, &[]);
    assert_eq!(unsigned.status, 401, "{}", unsigned.text);

    let ok = post(
        &app,
        "github-push",
        push,
        &github_headers("push", "7c1d0e2a-1", GITHUB_SECRET, push),
    );
    assert_eq!(status(&ok), (202, "accepted"), "{}", ok.text);
    let got = app.slack.wait_delivered("uk", 1);
    assert_slack("github", "push", &got[0].body);
    // GitHub's "Redeliver" sends the same body again.
    let redelivered = post(
        &app,
        "github-push",
        push,
        &github_headers("push", "7c1d0e2a-1", GITHUB_SECRET, push),
    );
    assert_eq!(
        status(&redelivered),
        (200, "duplicate"),
        "{}",
        redelivered.text
    );

    let opened = read("github", "issues.json");
    let answer = post(
        &app,
        "github-issues",
        opened.as_bytes(),
        &github_headers("issues", "7c1d0e2a-2", GITHUB_SECRET, opened.as_bytes()),
    );
    assert_eq!(status(&answer), (202, "accepted"), "{}", answer.text);
    let got = app.slack.wait_delivered("uk", 2);
    assert_slack("github", "issues", &got[1].body);

    let closed = read("github", "issues-closed.json");
    let answer = post(
        &app,
        "github-issues",
        closed.as_bytes(),
        &github_headers("issues", "7c1d0e2a-3", GITHUB_SECRET, closed.as_bytes()),
    );
    assert_eq!(status(&answer), (202, "updated"), "{}", answer.text);
    let got = app.slack.wait_delivered("uk", 3);
    assert_slack("github", "issues-closed", &got[2].body);
    assert_eq!(app.slack.received("uk").len(), 3);
}

#[test]
fn githubs_ping_has_no_push_fields_and_is_refused_naming_them() {
    let app = spawn_preset("github");
    let ping = read("github", "ping.json");
    let answer = post(
        &app,
        "github-push",
        ping.as_bytes(),
        &github_headers("ping", "7c1d0e2a-0", GITHUB_SECRET, ping.as_bytes()),
    );
    assert_eq!(answer.status, 422, "{}", answer.text);
    assert_eq!(answer.json["type"], "invalid_record", "{}", answer.text);
    assert!(
        answer.json["error"].as_str().unwrap_or("").contains("/ref"),
        "the error names the field: {}",
        answer.text
    );
    assert!(app.slack.all().is_empty());
}

// ---- Grafana ---------------------------------------------------------------------------------

#[test]
fn grafana_firing_repeat_and_resolve_are_one_message_and_a_follow_up() {
    let app = spawn_preset("grafana");
    let grafana = alert_headers("Grafana");
    let firing = read("grafana", "firing.json");
    let answer = post(&app, "grafana", firing.as_bytes(), &grafana);
    assert_eq!(status(&answer), (202, "accepted"), "{}", answer.text);
    let got = app.slack.wait_delivered("uk", 1);
    assert_slack("grafana", "firing", &got[0].body);

    // Grafana's repeat carries newer query values: ignored, so a duplicate.
    let repeat = read("grafana", "firing-repeat.json");
    let answer = post(&app, "grafana", repeat.as_bytes(), &grafana);
    assert_eq!(status(&answer), (200, "duplicate"), "{}", answer.text);

    let resolved = read("grafana", "resolved.json");
    let answer = post(&app, "grafana", resolved.as_bytes(), &grafana);
    assert_eq!(status(&answer), (202, "updated"), "{}", answer.text);
    let got = app.slack.wait_delivered("uk", 2);
    assert_slack("grafana", "resolved", &got[1].body);
    assert_eq!(app.slack.received("uk").len(), 2);
}

// ---- the snippets ----------------------------------------------------------------------------

#[test]
fn each_presets_hookrelay_toml_is_valid_in_the_test_and_the_shipped_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("write the secret");
    let slack = FakeSlack::start();
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"))
            .expect("config.toml");
    for (preset, sources) in [
        ("alertmanager", &["alertmanager"][..]),
        ("github", &["github-push", "github-issues"][..]),
        ("grafana", &["grafana"][..]),
    ] {
        for base in [config(&slack, dir.path()), shipped.clone()] {
            let text = format!("{base}{}", snippet(preset, &secret));
            let settings =
                Settings::parse(&text).unwrap_or_else(|e| panic!("{preset}/hookrelay.toml: {e}"));
            for name in sources {
                let source = settings
                    .sources
                    .get(*name)
                    .unwrap_or_else(|| panic!("{preset} has [sources.{name}]"));
                assert!(source.generic.is_some(), "{name} is a generic source");
                assert_eq!(source.region.as_deref(), Some("UK"));
            }
        }
    }
}
