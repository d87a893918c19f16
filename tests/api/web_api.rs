//! Slack app mode (issue 9): a region with a bot token posts through the Web API, then edits,
//! threads under, reacts to, pins and deletes its message, against an in-process fake Web API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::admin::admin;
use crate::fake_slack::FakeSlack;
use crate::fake_web_api::{ApiCall, ApiReply, FakeWebApi, BOT_TOKEN};
use crate::helpers::{config, deliveries_of, opportunity, spawn_with, TestApp};
use hookrelay::store::records::{DeliveryState, MessageKind};

const UK_CHANNEL: &str = "C0SALESUK";

/// The default test config with region UK on the Web API (bot token, channel) and status
/// rules on the salesforce source. `extra_uk` is added to the UK table.
fn app_config(
    slack: &FakeSlack,
    api: &FakeWebApi,
    dir: &std::path::Path,
    extra_uk: &str,
) -> String {
    let text = config(slack, dir);
    let uk = format!("webhook_url = \"{}\"", slack.url("uk"));
    assert!(text.contains(&uk));
    let text = text.replacen(
        &uk,
        &format!("bot_token = \"{BOT_TOKEN}\"\nchannel = \"{UK_CHANNEL}\"\n{extra_uk}"),
        1,
    );
    let text = text.replacen(
        "[sources.salesforce]\nkind = \"opportunity\"\n",
        "[sources.salesforce]\nkind = \"opportunity\"\n\
         [sources.salesforce.on_status]\n\
         \"Closed Won\" = { react = \"tada\", pin = true }\n\
         \"Closed Lost\" = { react = \"x\" }\n\
         \"Withdrawn\" = { delete = true }\n",
        1,
    );
    format!("{text}\n[slack]\napi_url = \"{}\"\n", api.base_url())
}

struct AppMode {
    app: TestApp,
    api: Arc<FakeWebApi>,
}

fn spawn_app_mode(extra_uk: &str) -> AppMode {
    let slack = Arc::new(FakeSlack::start());
    let api = Arc::new(FakeWebApi::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = app_config(&slack, &api, dir.path(), extra_uk);
    AppMode {
        app: spawn_with(&text, slack, dir),
        api,
    }
}

fn posts(calls: &[ApiCall]) -> Vec<&ApiCall> {
    calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.ok())
        .collect()
}

/// The `ts` stored with a notification's first delivery once it is posted.
fn stored_ts(app: &TestApp, id: &Value) -> String {
    let id: u64 = id.as_str().unwrap().parse().unwrap();
    app.wait_store("the post's ts in the store", |store| {
        let n = store.notification(id).ok()??;
        let first = store.delivery(n.anchor?).ok()??;
        first.posted.map(|p| p.ts)
    })
}

#[test]
fn a_bot_region_posts_edits_threads_reacts_pins_and_deletes_one_message() {
    let AppMode { app, api } = spawn_app_mode("");
    let mut opp = opportunity("006APP1", "UK");
    let first = app.post(&opp);
    assert_eq!(first.status, 202);
    let post = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(post.args["channel"], UK_CHANNEL);
    assert_eq!(post.token.as_deref(), Some(BOT_TOKEN));
    assert!(post.args["blocks"].is_array(), "Block Kit: {:?}", post.args);
    let ts = stored_ts(&app, &first.json["id"]);
    assert!(app.slack.all().is_empty(), "nothing went to a webhook");

    // An update edits that message and says what changed in its thread.
    opp["amount"] = json!(6000);
    opp["close_date"] = json!("2017-04-01");
    assert_eq!(app.post(&opp).json["status"], "updated");
    let update = api.wait_ok("chat.update", 1).remove(0);
    assert_eq!(update.args["ts"], ts.as_str());
    assert_eq!(update.args["channel"], UK_CHANNEL);
    let edited = update.args.to_string();
    assert!(
        edited.contains("6,000") && edited.contains("(updated)"),
        "{edited}"
    );
    let calls = api.wait_until(Duration::from_secs(20), "a thread reply", |c| {
        posts(c).len() == 2
    });
    let reply = posts(&calls)[1].clone();
    assert_eq!(reply.args["thread_ts"], ts.as_str());
    let said = reply.args["text"].as_str().unwrap();
    assert!(
        said.contains("Amount: 4,500 → 6,000")
            && said.contains("Close date: 2017-03-16 → 2017-04-01"),
        "{said}"
    );

    // Closed Won: a reaction and a pin, each its own call on the same message.
    opp["status"] = json!("Closed Won");
    app.post(&opp);
    let react = api.wait_ok("reactions.add", 1).remove(0);
    assert_eq!(react.args["name"], "tada");
    assert_eq!(react.args["timestamp"], ts.as_str());
    api.wait_ok("pins.add", 1);
    let message = api.message(UK_CHANNEL, &ts).expect("the message");
    assert!(message.pinned && message.reactions == ["tada"]);
    assert_eq!(message.edits, 2, "the status change is an edit too");

    // Withdrawn: the thread's replies, then the message are deleted; nothing is edited first.
    let edits_before = api.calls_of("chat.update").len();
    opp["status"] = json!("Withdrawn");
    app.post(&opp);
    let calls = api.wait_until(Duration::from_secs(20), "the message deleted", |c| {
        c.iter()
            .any(|c| c.method == "chat.delete" && c.ok() && c.args["ts"] == ts.as_str())
    });
    let all = api.messages(UK_CHANNEL);
    assert!(
        all.iter().all(|m| m.deleted),
        "replies and message gone: {all:#?}"
    );
    let deletes: Vec<_> = calls.iter().filter(|c| c.method == "chat.delete").collect();
    assert_eq!(
        deletes.last().unwrap().args["ts"],
        ts.as_str(),
        "the parent last"
    );
    assert_eq!(api.calls_of("chat.update").len(), edits_before);
    // One top-level message in all: the rest were edits, thread replies and actions.
    let top: Vec<_> = all.iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(top.len(), 1, "{top:#?}");

    // A withdrawn opportunity stays gone while its status says so, even when it changes...
    opp["amount"] = json!(1);
    assert_eq!(app.post(&opp).json["status"], "updated");
    // ...and comes back as a new message when it is reopened.
    opp["status"] = json!("Qualification");
    app.post(&opp);
    let calls = api.wait_until(Duration::from_secs(20), "the message posted again", |c| {
        posts(c)
            .iter()
            .filter(|p| p.args["thread_ts"].is_null())
            .count()
            == 2
    });
    let reposted = posts(&calls)
        .into_iter()
        .filter(|p| p.args["thread_ts"].is_null())
        .nth(1)
        .unwrap()
        .clone();
    assert!(reposted.args.to_string().contains("Qualification"));
    assert_eq!(
        api.messages(UK_CHANNEL)
            .iter()
            .filter(|m| !m.deleted)
            .count(),
        1,
        "only the reopened message is in the channel"
    );
}

#[test]
fn the_token_never_shows_in_status_or_logs_of_attempts() {
    let AppMode { app, api } = spawn_app_mode("");
    api.script("chat.postMessage", [ApiReply::Error("invalid_blocks")]);
    app.post(&opportunity("006MASK", "UK"));
    app.wait_dead_letters(1);
    for path in ["/v1/status", "/v1/dead-letters", "/metrics"] {
        let answer = admin(&app, "GET", path);
        assert_eq!(answer.status, 200, "{path}");
        assert!(!answer.text.contains(BOT_TOKEN), "{path}: {}", answer.text);
    }
    let status = admin(&app, "GET", "/v1/status");
    let uk = status.json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "UK")
        .cloned()
        .unwrap();
    assert_eq!(
        uk["webhook"],
        format!("channel {UK_CHANNEL} via bot token xoxb-***")
    );
}

#[test]
fn slacks_errors_pause_the_region_dead_letter_or_count_as_done() {
    let AppMode { app, api } = spawn_app_mode("");
    // A revoked token pauses the region with the reason; nothing becomes a dead letter.
    api.script("chat.postMessage", [ApiReply::Error("token_revoked")]);
    let a = app.post(&opportunity("006ERR1", "UK"));
    let reason = app.wait_store("the region paused", |s| {
        s.manual_pauses().ok()?.get("UK").cloned()
    });
    // One sentence, "answered" once (it used to read "Slack answered chat.postMessage
    // answered token_revoked").
    assert_eq!(
        reason,
        "Slack answered chat.postMessage with token_revoked; fix regions.UK.bot_token or channel, restart, then resume the region"
    );
    assert!(app.store.dead_letters().unwrap().is_empty());
    let resumed = admin(&app, "POST", "/v1/regions/UK/resume");
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    api.wait_ok("chat.postMessage", 1);
    stored_ts(&app, &a.json["id"]);

    // A message Slack refuses as malformed is a dead letter with Slack's word.
    api.script("chat.postMessage", [ApiReply::Error("msg_too_long")]);
    app.post(&opportunity("006ERR2", "UK"));
    let dead = app.wait_dead_letters(1);
    match &dead[0].state {
        DeliveryState::Dead { reason, .. } => {
            assert_eq!(reason, "Slack answered chat.postMessage with msg_too_long")
        }
        other => panic!("{other:?}"),
    }

    // A rate limit waits for Retry-After, then the same message goes.
    api.script("chat.postMessage", [ApiReply::RateLimited(1)]);
    app.post(&opportunity("006ERR3", "UK"));
    let calls = api.wait_ok("chat.postMessage", 2);
    let limited = api
        .calls_of("chat.postMessage")
        .into_iter()
        .find(|c| c.reply == "429")
        .expect("the 429");
    assert!(calls[1].at.duration_since(limited.at) >= Duration::from_millis(950));

    // Already reacted counts as done: no retry, no dead letter.
    let mut won = opportunity("006ERR4", "UK");
    let id = app.post(&won).json["id"].clone();
    stored_ts(&app, &id);
    api.script("reactions.add", [ApiReply::Error("already_reacted")]);
    won["status"] = json!("Closed Lost");
    app.post(&won);
    let id: u64 = id.as_str().unwrap().parse().unwrap();
    let react = app.wait_store("the reaction settled", |s| {
        deliveries_of(s, id)
            .into_iter()
            .find(|d| matches!(d.message, MessageKind::React { .. }) && d.due_ms().is_none())
    });
    assert!(matches!(react.state, DeliveryState::Delivered { .. }));
    assert_eq!(api.calls_of("reactions.add").len(), 1);
    assert_eq!(
        app.store.dead_letters().unwrap().len(),
        1,
        "only msg_too_long"
    );
}

#[test]
fn a_failed_pin_is_retried_on_its_own_and_never_reposts_the_message() {
    let AppMode { app, api } = spawn_app_mode("");
    let mut opp = opportunity("006PIN", "UK");
    let id = app.post(&opp).json["id"].clone();
    let ts = stored_ts(&app, &id);
    api.script("pins.add", [ApiReply::Status(500), ApiReply::Drop]);
    opp["status"] = json!("Closed Won");
    app.post(&opp);
    let pins = api.wait_until(Duration::from_secs(20), "the pin to go through", |c| {
        c.iter().any(|c| c.method == "pins.add" && c.ok())
    });
    assert_eq!(pins.iter().filter(|c| c.method == "pins.add").count(), 3);
    assert!(api.message(UK_CHANNEL, &ts).unwrap().pinned);
    assert_eq!(
        posts(&api.calls()).len(),
        2,
        "the first post and one thread reply"
    );
}

#[test]
fn an_update_sent_before_the_first_post_went_through_is_applied_after_it() {
    let AppMode { app, api } = spawn_app_mode("");
    // The first post fails twice, so it waits for a retry while the update is already due.
    api.script(
        "chat.postMessage",
        [ApiReply::Status(503), ApiReply::Status(503)],
    );
    let mut opp = opportunity("006EARLY", "UK");
    let id = app.post(&opp).json["id"].clone();
    opp["amount"] = json!(9000);
    assert_eq!(app.post(&opp).json["status"], "updated");
    let update = api.wait_ok("chat.update", 1).remove(0);
    let ts = stored_ts(&app, &id);
    assert_eq!(update.args["ts"], ts.as_str());
    let calls = api.calls();
    let first_post = calls
        .iter()
        .position(|c| c.method == "chat.postMessage" && c.ok())
        .unwrap();
    let edit = calls
        .iter()
        .position(|c| c.method == "chat.update")
        .unwrap();
    assert!(first_post < edit, "{calls:#?}");
    let message = api.message(UK_CHANNEL, &ts).unwrap();
    assert!(message.text.contains("9,000"), "{message:?}");
    // Waiting behind the post cost the edit no attempt and no failure in its history.
    let id: u64 = id.as_str().unwrap().parse().unwrap();
    let edit = app.wait_store("the edit settled", |s| {
        deliveries_of(s, id)
            .into_iter()
            .find(|d| matches!(d.message, MessageKind::Edit { .. }) && d.due_ms().is_none())
    });
    assert_eq!(edit.attempts, 1);
    assert_eq!(edit.history.len(), 1, "{:?}", edit.history);
}

#[test]
fn after_a_restart_an_update_still_edits_the_message_posted_before_it() {
    let slack = Arc::new(FakeSlack::start());
    let api = Arc::new(FakeWebApi::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = app_config(&slack, &api, dir.path(), "");
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));
    let mut opp = opportunity("006RESTART", "UK");
    let id = app.post(&opp).json["id"].clone();
    let ts = stored_ts(&app, &id);
    app.stop();

    let app = spawn_with(&text, slack, dir);
    opp["account"] = json!("Renamed Ltd");
    assert_eq!(app.post(&opp).json["status"], "updated");
    let update = api.wait_ok("chat.update", 1).remove(0);
    assert_eq!(update.args["ts"], ts.as_str());
    assert_eq!(
        posts(&api.wait_until(
            Duration::from_secs(20),
            "the thread reply",
            |c| posts(c).len() == 2
        ))[1]
            .args["thread_ts"],
        ts.as_str()
    );
}

#[test]
fn moving_to_a_webhook_region_deletes_the_message_and_posts_it_there() {
    let AppMode { app, api } = spawn_app_mode("");
    let mut opp = opportunity("006MOVE", "UK");
    let id = app.post(&opp).json["id"].clone();
    let ts = stored_ts(&app, &id);
    opp["country"] = json!("DE");
    assert_eq!(app.post(&opp).json["status"], "updated");
    let delete = api.wait_ok("chat.delete", 1).remove(0);
    assert_eq!(delete.args["ts"], ts.as_str());
    let eu = app.slack.wait_delivered("eu", 1);
    assert_eq!(eu[0].crm_id().as_deref(), Some("006MOVE"));
    assert!(api.calls_of("chat.update").is_empty());
}

#[test]
fn a_channel_field_sends_each_record_to_its_own_channel_with_the_region_as_fallback() {
    let AppMode { app, api } = spawn_app_mode("channel_field = \"/owner_channel\"");
    let mut own = opportunity("006OWN", "UK");
    own["owner_channel"] = json!("C0ANDREW");
    app.post(&own);
    app.post(&opportunity("006NOOWN", "UK"));
    let calls = api.wait_ok("chat.postMessage", 2);
    let channels: Vec<&str> = calls
        .iter()
        .map(|c| c.args["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"C0ANDREW") && channels.contains(&UK_CHANNEL),
        "{channels:?}"
    );

    // A record's channel that Slack does not know is that message's dead letter; the region
    // goes on.
    api.script("chat.postMessage", [ApiReply::Error("channel_not_found")]);
    let mut lost = opportunity("006LOST", "UK");
    lost["owner_channel"] = json!("C0NOWHERE");
    app.post(&lost);
    app.wait_dead_letters(1);
    assert!(app.store.manual_pauses().unwrap().is_empty());
}

/// `hookrelay check-config --online` on a config file, run as an operator would.
fn check_online(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    let out = std::process::Command::new(crate::binary::BIN)
        .args(["check-config", "--online", "--config"])
        .arg(&path)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hookrelay check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn check_config_online_names_the_team_the_bot_and_whether_it_can_post() {
    let slack = FakeSlack::start();
    let api = FakeWebApi::start();
    api.add_channel(UK_CHANNEL, "sales-uk", true);
    let dir = tempfile::tempdir().expect("temp dir");
    let text = app_config(&slack, &api, dir.path(), "");
    let (ok, out) = check_online(&text);
    assert!(ok, "{out}");
    assert!(
        out.contains("team Fake Team, bot user hookrelay (U0BOT)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("the bot can post in #sales-uk ({UK_CHANNEL})")),
        "{out}"
    );
    assert!(out.contains("region US: incoming webhook"), "{out}");
    assert!(!out.contains(BOT_TOKEN), "{out}");
    let auth = api.calls_of("auth.test");
    assert_eq!(auth[0].token.as_deref(), Some(BOT_TOKEN));

    // A token Slack refuses, and a channel it does not know, fail the check with the reason.
    let wrong = text.replace(BOT_TOKEN, "xoxb-wrong-SECRET");
    let (ok, out) = check_online(&wrong);
    assert!(!ok, "{out}");
    assert!(
        out.contains("auth.test refused token xoxb-***: invalid_auth"),
        "{out}"
    );
    assert!(!out.contains("SECRET"), "{out}");
    let missing = text.replace(UK_CHANNEL, "C0GONE");
    let (ok, out) = check_online(&missing);
    assert!(
        !ok && out.contains("cannot use channel C0GONE: channel_not_found"),
        "{out}"
    );
}

#[test]
fn send_test_to_a_bot_region_posts_through_the_web_api() {
    let AppMode { app, api } = spawn_app_mode("");
    let queued = admin(&app, "POST", "/v1/regions/UK/test");
    assert_eq!(queued.status, 202, "{}", queued.text);
    let post = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(post.args["channel"], UK_CHANNEL);
    let text = post.args.to_string();
    assert!(
        text.contains("Test message from hookrelay for region UK"),
        "{text}"
    );
}

#[test]
fn a_replayed_first_post_is_the_message_later_updates_edit() {
    let AppMode { app, api } = spawn_app_mode("");
    api.script("chat.postMessage", [ApiReply::Error("invalid_blocks")]);
    let mut opp = opportunity("006REPLAY", "UK");
    let id = app.post(&opp).json["id"].clone();
    let dead = app.wait_dead_letters(1);
    crate::admin::replay_dead(&app, dead[0].id);
    let ts = stored_ts(&app, &id);
    opp["amount"] = json!(7000);
    app.post(&opp);
    let update = api.wait_ok("chat.update", 1).remove(0);
    assert_eq!(update.args["ts"], ts.as_str());
}

#[test]
fn a_region_switched_back_to_a_webhook_gets_follow_ups_not_silence() {
    let slack = Arc::new(FakeSlack::start());
    let api = Arc::new(FakeWebApi::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let app = spawn_with(
        &app_config(&slack, &api, dir.path(), ""),
        Arc::clone(&slack),
        Arc::clone(&dir),
    );
    let mut opp = opportunity("006SWITCH", "UK");
    let id = app.post(&opp).json["id"].clone();
    stored_ts(&app, &id);
    app.stop();

    // The office drops its Slack app: UK is an incoming webhook again.
    let app = spawn_with(&config(&slack, dir.path()), Arc::clone(&slack), dir);
    opp["amount"] = json!(8000);
    assert_eq!(app.post(&opp).json["status"], "updated");
    let follow_up = app.slack.wait_delivered("uk", 1).remove(0);
    let text = follow_up.body["text"].as_str().unwrap();
    assert!(text.contains("Amount: 4,500 → 8,000"), "{text}");
}

#[test]
fn actions_on_a_dead_post_wait_as_dead_letters_and_follow_it_when_replayed() {
    let AppMode { app, api } = spawn_app_mode("");
    api.script("chat.postMessage", [ApiReply::Error("invalid_blocks")]);
    let mut opp = opportunity("006DEADPOST", "UK");
    let id = app.post(&opp).json["id"].clone();
    app.wait_dead_letters(1);
    opp["status"] = json!("Closed Won");
    app.post(&opp);
    // Edit, thread reply, reaction and pin: none can act on a message that does not exist.
    app.wait_dead_letters(5);
    assert!(api.calls_of("reactions.add").is_empty());

    let replayed = admin(&app, "POST", "/v1/dead-letters/replay");
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    let ts = stored_ts(&app, &id);
    let react = api.wait_ok("reactions.add", 1).remove(0);
    assert_eq!(react.args["timestamp"], ts.as_str());
    let pin = api.wait_ok("pins.add", 1).remove(0);
    assert_eq!(pin.args["timestamp"], ts.as_str());
    let message = api.message(UK_CHANNEL, &ts).unwrap();
    assert!(
        message.text.contains("Closed Won"),
        "the newest version: {message:?}"
    );
}
