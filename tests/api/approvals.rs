//! Approvals in Slack (issue 10): a request with Approve/Reject buttons, signed interactions
//! (or Socket Mode), a required reason to reject, one decision per request sent to the
//! requesting system with retries, and the message updated after the system's 2xx.

use std::sync::Arc;
use std::time::Duration;

use hookrelay::slack::signature::SigningSecret;
use serde_json::{json, Value};

use crate::admin::admin;
use crate::fake_slack::{FakeSlack, Received, Reply};
use crate::fake_web_api::{FakeWebApi, APP_TOKEN, BOT_TOKEN};
use crate::helpers::{config, spawn_with, Answer, TestApp};

const SECRET: &str = "test-signing-secret-0123456789";
const DECISION_TOKEN: &str = "decision-token-0123456789";
const ALICE: &str = "U0ALICE";
const CAROL: &str = "U0CAROL";
const MALLORY: &str = "U0MALLORY";
const UK_CHANNEL: &str = "C0APPROVALS";

/// The test config plus an approval source routed to UK. `bot`: UK posts through the Web API.
/// `socket`: interactions come over Socket Mode instead of the signed Request URL.
fn approval_config(
    slack: &FakeSlack,
    api: &FakeWebApi,
    dir: &std::path::Path,
    bot: bool,
    socket: bool,
) -> String {
    let mut text = config(slack, dir);
    if bot {
        let uk = format!("webhook_url = \"{}\"", slack.url("uk"));
        text = text.replacen(
            &uk,
            &format!("bot_token = \"{BOT_TOKEN}\"\nchannel = \"{UK_CHANNEL}\""),
            1,
        );
    }
    let interactivity = if socket {
        format!("app_token = \"{APP_TOKEN}\"")
    } else {
        format!("signing_secret = \"{SECRET}\"")
    };
    format!(
        r#"{text}
[sources.dataroom]
kind = "approval"
id = "/request/id"
requester = "/request/email"
message = "/request/message"
link = "/request/url"
choices = "/groups"
decision_url = "{decisions}"
decision_token = "{DECISION_TOKEN}"
approvers = ["{ALICE}", "{CAROL}"{bob}]
region = "UK"
[slack]
api_url = "{api}"
response_url_hosts = ["127.0.0.1"]
{interactivity}
"#,
        decisions = slack.url("decisions"),
        api = api.base_url(),
        // Emails are matched through users.info, which needs the region's bot token.
        bob = if bot { ", \"bob@example.com\"" } else { "" },
    )
}

struct Approvals {
    app: TestApp,
    api: Arc<FakeWebApi>,
}

fn spawn(bot: bool, socket: bool) -> Approvals {
    let slack = Arc::new(FakeSlack::start());
    let api = Arc::new(FakeWebApi::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = approval_config(&slack, &api, dir.path(), bot, socket);
    Approvals {
        app: spawn_with(&text, slack, dir),
        api,
    }
}

fn request(id: &str) -> Value {
    json!({
        "request": {"id": id, "email": "dana@customer.example", "message": "Access to the Q3 data room, please",
            "url": "https://conveyor.example/requests/1"},
        "groups": ["Viewer", {"value": "editor", "label": "Editor"}]
    })
}

fn post_request(app: &TestApp, id: &str) -> u64 {
    let answer = app.post_raw(
        "dataroom",
        Some("application/json"),
        None,
        request(id).to_string().as_bytes(),
    );
    assert_eq!(answer.status, 202, "{}", answer.text);
    answer.json["id"].as_str().unwrap().parse().unwrap()
}

/// A block_actions payload as Slack sends it for a click on request `id`.
fn click(id: u64, action: &str, user: &str, respond_to: &str) -> Value {
    let (block, value) = if action == "reject_reason" {
        (format!("hookrelay_reason:{id}"), None)
    } else {
        (format!("hookrelay_approval:{id}"), Some(id.to_string()))
    };
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "trigger_id": format!("trigger-{user}"),
        "response_url": respond_to,
        "container": {"type": "message", "channel_id": UK_CHANNEL},
        "actions": [{"block_id": block, "action_id": action, "value": value, "type": "button"}],
        "state": {"values": {}},
    })
}

/// POSTs a form body `payload=<json>` to /slack/interactions, signed at `at` (seconds) with
/// `secret`, or unsigned.
fn interact(app: &TestApp, payload: &Value, signed: Option<(&str, u64)>) -> Answer {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent
        .post(format!("{}/slack/interactions", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded");
    if let Some((secret, at)) = signed {
        let ts = at.to_string();
        let sig = SigningSecret::parse(secret)
            .unwrap()
            .sign(&ts, body.as_bytes());
        req = req
            .header("X-Slack-Request-Timestamp", &ts)
            .header("X-Slack-Signature", &sig);
    }
    Answer::read(req.send(body.as_bytes()).expect("relay answers"))
}

fn now_secs() -> u64 {
    hookrelay::store::now_ms() / 1000
}

fn signed(app: &TestApp, payload: &Value) -> Answer {
    let answer = interact(app, payload, Some((SECRET, now_secs())));
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer
}

fn decision_of(app: &TestApp, id: u64) -> Value {
    admin(app, "GET", &format!("/v1/notifications/{id}")).json["decision"].clone()
}

fn wait_for(
    slack: &FakeSlack,
    path: &str,
    what: &str,
    pred: impl Fn(&Received) -> bool,
) -> Received {
    let path = FakeSlack::path(path);
    slack
        .wait_until(Duration::from_secs(20), what, |all| {
            all.iter().any(|r| r.path == path && pred(r))
        })
        .into_iter()
        .find(|r| r.path == path && pred(r))
        .unwrap()
}

#[test]
fn unsigned_stale_or_forged_interactions_get_401_and_change_nothing() {
    let Approvals { app, .. } = spawn(false, false);
    let id = post_request(&app, "REQ-SIG");
    let approve = click(id, "approve", ALICE, &app.slack.url("resp-sig"));
    for (what, answer) in [
        ("unsigned", interact(&app, &approve, None)),
        (
            "replayed (6 minutes old)",
            interact(&app, &approve, Some((SECRET, now_secs() - 360))),
        ),
        (
            "signed with another secret",
            interact(
                &app,
                &approve,
                Some(("another-secret-0123456789", now_secs())),
            ),
        ),
    ] {
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        assert_eq!(answer.json["type"], "bad_signature", "{what}");
    }
    // A signed request for an action the relay does not know is taken and ignored.
    signed(
        &app,
        &click(id, "delete_everything", ALICE, &app.slack.url("resp-sig")),
    );
    // The click is stored before the 200, so the record already says whether anything happened.
    let record = admin(&app, "GET", &format!("/v1/notifications/{id}"));
    assert!(record.json["decision"].is_null());
    assert_eq!(record.json["events"], json!([]), "no click was taken");
    assert_eq!(
        record.json["deliveries"].as_array().unwrap().len(),
        1,
        "only the request's post"
    );
}

#[test]
fn approve_sends_the_decision_with_retries_and_shows_processing_then_the_outcome() {
    let Approvals { app, .. } = spawn(false, false);
    app.slack.script(
        "decisions",
        [Reply::Status(500, "busy"), Reply::Status(503, "busy")],
    );
    let id = post_request(&app, "REQ-1");
    let posted = app.slack.wait_delivered("uk", 1).remove(0);
    let text = posted.body.to_string();
    assert!(
        text.contains("hookrelay_approval:") && text.contains("Approve") && text.contains("Editor"),
        "{text}"
    );

    // Someone not on the list: told so, nothing decided.
    let respond = app.slack.url("resp-1");
    signed(&app, &click(id, "approve", MALLORY, &respond));
    let note = wait_for(&app.slack, "resp-1", "a not-allowed note", |r| {
        r.body["response_type"] == "ephemeral"
    });
    assert!(note.body["text"]
        .as_str()
        .unwrap()
        .contains("not on this request's approvers list"));
    assert!(decision_of(&app, id).is_null());

    // Alice approves with Editor picked in the menu.
    let mut approve = click(id, "approve", ALICE, &respond);
    approve["state"]["values"][format!("hookrelay_approval:{id}")]["choice"]["selected_option"]
        ["value"] = json!("editor");
    signed(&app, &approve);
    let processing = wait_for(&app.slack, "resp-1", "the processing message", |r| {
        r.body.to_string().contains("Processing")
    });
    assert_eq!(processing.body["replace_original"], true);
    let sent = app.slack.wait_delivered("decisions", 1).remove(0);
    assert_eq!(
        app.slack.received("decisions").len(),
        3,
        "two failures, then the 2xx"
    );
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {DECISION_TOKEN}").as_str())
    );
    assert_eq!(sent.body["request_id"], "REQ-1");
    assert_eq!(sent.body["decision"], "approved");
    assert_eq!(sent.body["choice"], "editor");
    assert_eq!(sent.body["decided_by"]["slack_user_id"], ALICE);
    let done = wait_for(&app.slack, "resp-1", "the outcome", |r| {
        let t = r.body.to_string();
        t.contains("Approved")
            && !t.contains("Processing")
            && r.body["response_type"] != "ephemeral"
    });
    assert!(done.body.to_string().contains(&format!("<@{ALICE}>")));
    // The outcome came after the requesting system's 2xx.
    assert!(done.at >= sent.at);

    // A later click by another approver changes nothing and says who decided.
    signed(&app, &click(id, "reject", CAROL, &app.slack.url("resp-2")));
    let late = wait_for(&app.slack, "resp-2", "already decided", |_| true);
    assert!(
        late.body["text"]
            .as_str()
            .unwrap()
            .contains(&format!("already approved by <@{ALICE}>")),
        "{}",
        late.body
    );
    assert_eq!(
        app.slack
            .received("decisions")
            .iter()
            .filter(|r| r.delivered())
            .count(),
        1
    );

    // The record: the decision and every click.
    let record = admin(&app, "GET", &format!("/v1/notifications/{id}"));
    assert_eq!(record.json["decision"]["verdict"], "approved");
    let events: Vec<String> = record.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "refused: not an approver",
            "approved",
            "clicked after the decision: told it was already decided"
        ]
    );
    assert!(!record.text.contains(DECISION_TOKEN));

    // The same record in the CLI, and the request found by its decision.
    let shown = crate::cli::hr(&app, &["notifications", "show", &id.to_string()]).ok();
    assert!(
        shown
            .stdout
            .contains("decision     approved by u0alice (U0ALICE)"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains(", choice Editor"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("refused: not an approver"),
        "{}",
        shown.stdout
    );
    let listed = crate::cli::hr(&app, &["notifications", "list", "--decision", "approved"]).ok();
    assert!(
        listed.stdout.contains("REQ-1") && listed.stdout.contains("approved"),
        "{}",
        listed.stdout
    );
    let undecided =
        crate::cli::hr(&app, &["notifications", "list", "--decision", "undecided"]).ok();
    assert!(!undecided.stdout.contains("REQ-1"), "{}", undecided.stdout);
}

#[test]
fn reject_without_a_bot_token_asks_for_the_reason_in_the_message_and_needs_one() {
    let Approvals { app, .. } = spawn(false, false);
    let id = post_request(&app, "REQ-2");
    let respond = app.slack.url("resp-3");
    signed(&app, &click(id, "reject", ALICE, &respond));
    let prompt = wait_for(&app.slack, "resp-3", "the reason prompt", |r| {
        r.body["replace_original"] == true
    });
    let input = prompt.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "input")
        .expect("an input block")
        .clone();
    // Named for the request's version (its first, 0), so a later version's input is new to
    // Slack; `click` sends the older two-part ids, which still work.
    assert_eq!(input["block_id"], format!("hookrelay_reason:{id}:0"));
    assert_eq!(input["dispatch_action"], true);
    assert!(
        decision_of(&app, id).is_null(),
        "a reject needs its reason first"
    );

    // Enter on an empty reason: refused, still undecided.
    let mut empty = click(id, "reject_reason", ALICE, &respond);
    empty["actions"][0]["value"] = json!("   ");
    signed(&app, &empty);
    let note = wait_for(&app.slack, "resp-3", "reason required", |r| {
        r.body["response_type"] == "ephemeral"
    });
    assert!(note.body["text"]
        .as_str()
        .unwrap()
        .contains("A reason is required"));
    assert!(decision_of(&app, id).is_null());

    let mut reason = click(id, "reject_reason", ALICE, &respond);
    reason["actions"][0]["value"] = json!("No NDA on file");
    signed(&app, &reason);
    let sent = app.slack.wait_delivered("decisions", 1).remove(0);
    assert_eq!(sent.body["decision"], "rejected");
    assert_eq!(sent.body["reason"], "No NDA on file");
    wait_for(&app.slack, "resp-3", "the rejected message", |r| {
        let t = r.body.to_string();
        t.contains("Rejected") && t.contains("No NDA on file") && !t.contains("Processing")
    });
}

#[test]
fn with_a_bot_token_reject_opens_a_modal_and_the_message_is_edited_in_place() {
    let Approvals { app, api } = spawn(true, false);
    let id = post_request(&app, "REQ-3");
    let post = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(post.args["channel"], UK_CHANNEL);
    let ts = app
        .wait_store("the request's ts", |s| {
            s.delivery(s.notification(id).ok()??.anchor?).ok()??.posted
        })
        .ts;

    signed(&app, &click(id, "reject", ALICE, &app.slack.url("resp-4")));
    let open = api.wait_ok("views.open", 1).remove(0);
    assert_eq!(open.args["trigger_id"], format!("trigger-{ALICE}"));
    assert_eq!(open.args["view"]["callback_id"], "hookrelay_reject");
    assert_eq!(open.args["view"]["private_metadata"], id.to_string());

    let submit = |reason: &str| {
        json!({"type": "view_submission", "user": {"id": ALICE, "username": "alice"},
            "view": {"callback_id": "hookrelay_reject", "private_metadata": id.to_string(),
                "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}}}})
    };
    let refused = signed(&app, &submit(" "));
    assert_eq!(refused.json["response_action"], "errors");
    assert!(refused.json["errors"]["reason"]
        .as_str()
        .unwrap()
        .contains("required"));
    assert!(decision_of(&app, id).is_null());

    let accepted = signed(&app, &submit("Expired contract"));
    assert!(
        accepted.text.is_empty(),
        "an empty 200 closes the modal: {}",
        accepted.text
    );
    app.slack.wait_delivered("decisions", 1);
    let edits = api.wait_until(Duration::from_secs(20), "the final edit", |calls| {
        calls.iter().any(|c| {
            c.method == "chat.update"
                && c.ok()
                && c.args.to_string().contains("Rejected")
                && !c.args.to_string().contains("Processing")
        })
    });
    let updates: Vec<_> = edits.iter().filter(|c| c.method == "chat.update").collect();
    assert!(updates.len() >= 2, "processing, then the outcome");
    assert!(updates.iter().all(|c| c.args["ts"] == ts.as_str()));
    assert!(api
        .message(UK_CHANNEL, &ts)
        .unwrap()
        .text
        .contains("Rejected"));

    // A second modal submission after the decision: refused under the field.
    let again = signed(&app, &submit("Changed my mind"));
    assert!(
        again.json["errors"]["reason"]
            .as_str()
            .unwrap()
            .contains("Already rejected"),
        "{}",
        again.text
    );
}

#[test]
fn approvers_listed_by_email_are_recognised_through_users_info() {
    let Approvals { app, api } = spawn(true, false);
    api.add_user("U0BOB", "Bob@Example.com");
    api.add_user("U0EVE", "eve@example.com");
    let id = post_request(&app, "REQ-4");
    api.wait_ok("chat.postMessage", 1);
    signed(
        &app,
        &click(id, "approve", "U0EVE", &app.slack.url("resp-5")),
    );
    wait_for(&app.slack, "resp-5", "a not-allowed note", |r| {
        r.body["response_type"] == "ephemeral"
    });
    assert!(decision_of(&app, id).is_null());
    signed(
        &app,
        &click(id, "approve", "U0BOB", &app.slack.url("resp-6")),
    );
    let sent = app.slack.wait_delivered("decisions", 1).remove(0);
    assert_eq!(sent.body["decided_by"]["slack_user_id"], "U0BOB");
}

#[test]
fn two_approvers_clicking_at_once_make_exactly_one_decision() {
    let Approvals { app, .. } = spawn(false, false);
    let id = post_request(&app, "REQ-RACE");
    let app = Arc::new(app);
    let threads: Vec<_> = [
        (ALICE, "approve", "race-a"),
        (CAROL, "reject_reason", "race-c"),
    ]
    .into_iter()
    .map(|(user, action, resp)| {
        let app = Arc::clone(&app);
        std::thread::spawn(move || {
            let mut p = click(id, action, user, &app.slack.url(resp));
            p["actions"][0]["value"] = json!("Not this quarter");
            signed(&app, &p)
        })
    })
    .collect();
    for t in threads {
        t.join().unwrap();
    }
    app.slack.wait_delivered("decisions", 1);
    let decision = decision_of(&app, id);
    let winner = decision["by"]["id"].as_str().unwrap().to_string();
    let loser_resp = if winner == ALICE { "race-c" } else { "race-a" };
    let note = wait_for(&app.slack, loser_resp, "already decided", |r| {
        r.body["response_type"] == "ephemeral"
    });
    assert!(note.body["text"]
        .as_str()
        .unwrap()
        .contains(&format!("by <@{winner}>")));
    assert_eq!(
        app.slack.received("decisions").len(),
        1,
        "one decision sent"
    );
}

#[test]
fn a_decision_stored_before_a_restart_is_sent_once_after_it() {
    let slack = Arc::new(FakeSlack::start());
    let api = Arc::new(FakeWebApi::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    // The requesting system is down for the first attempts; the relay stops in between.
    let text = approval_config(&slack, &api, dir.path(), false, false)
        .replace("max_attempts = 4", "max_attempts = 50");
    slack.script(
        "decisions",
        [Reply::Status(503, "down"), Reply::Status(503, "down")],
    );
    let app = spawn_with(&text, Arc::clone(&slack), Arc::clone(&dir));
    let id = post_request(&app, "REQ-RESTART");
    signed(&app, &click(id, "approve", ALICE, &slack.url("resp-7")));
    slack.wait_for("decisions", 1);
    app.stop();

    let app = spawn_with(&text, Arc::clone(&slack), dir);
    assert_eq!(decision_of(&app, id)["verdict"], "approved");
    slack.wait_delivered("decisions", 1);
    wait_for(&slack, "resp-7", "the outcome", |r| {
        let t = r.body.to_string();
        t.contains("Approved") && !t.contains("Processing")
    });
    let sent: Vec<_> = slack
        .received("decisions")
        .into_iter()
        .filter(|r| r.delivered())
        .collect();
    assert_eq!(sent.len(), 1, "sent once");
    assert_eq!(sent[0].body["decision_id"], format!("hookrelay-{id}"));
}

/// A Socket Mode endpoint standing in for Slack's: each accepted connection gets `hello`, then
/// the envelopes the test sends; every frame the relay sends back is reported.
struct FakeSocket {
    url: String,
    /// Envelopes to send, one channel per connection in order.
    to_relay: std::sync::mpsc::Sender<Value>,
    /// Frames the relay sent, with the connection number.
    from_relay: std::sync::mpsc::Receiver<(usize, Value)>,
}

impl FakeSocket {
    fn start() -> FakeSocket {
        use tungstenite::Message;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/link", listener.local_addr().unwrap());
        let (to_relay, outbox) = std::sync::mpsc::channel::<Value>();
        let (report, from_relay) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().flatten().enumerate() {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    continue;
                };
                let _ = ws.send(Message::text(
                    json!({"type": "hello", "num_connections": 1}).to_string(),
                ));
                loop {
                    // Send what the test queued, then read the answer to it.
                    let Ok(frame) = outbox.recv() else { return };
                    let disconnect = frame["type"] == "disconnect";
                    if ws.send(Message::text(frame.to_string())).is_err() {
                        break;
                    }
                    if disconnect {
                        break; // the relay opens a new connection
                    }
                    match ws.read() {
                        Ok(Message::Text(t)) => {
                            let _ = report
                                .send((n, serde_json::from_str(t.as_str()).unwrap_or(Value::Null)));
                        }
                        _ => break,
                    }
                }
            }
        });
        FakeSocket {
            url,
            to_relay,
            from_relay,
        }
    }

    /// Sends an envelope and returns the relay's acknowledgement and its connection number.
    fn exchange(&self, envelope: Value) -> (usize, Value) {
        self.to_relay.send(envelope).unwrap();
        self.from_relay
            .recv_timeout(Duration::from_secs(20))
            .expect("the relay acknowledges the envelope")
    }
}

#[test]
fn socket_mode_takes_clicks_without_an_inbound_request_acknowledges_and_reconnects() {
    let socket = FakeSocket::start();
    let Approvals { app, api } = {
        let slack = Arc::new(FakeSlack::start());
        let api = Arc::new(FakeWebApi::start());
        api.set_socket_url(&socket.url);
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let text = approval_config(&slack, &api, dir.path(), false, true);
        Approvals {
            app: spawn_with(&text, slack, dir),
            api,
        }
    };
    let opened = api.wait_ok("apps.connections.open", 1).remove(0);
    assert_eq!(opened.token.as_deref(), Some(APP_TOKEN));
    // The Request URL is off: nothing is accepted there without a signing secret.
    assert_eq!(interact(&app, &json!({}), None).status, 404);

    let id = post_request(&app, "REQ-SOCKET");
    let envelope = |eid: &str, payload: Value| json!({"envelope_id": eid, "type": "interactive", "accepts_response_payload": true, "payload": payload});
    let respond = app.slack.url("resp-socket");
    let (first, ack) = socket.exchange(envelope("env-1", click(id, "reject", MALLORY, &respond)));
    assert_eq!(ack["envelope_id"], "env-1");
    wait_for(&app.slack, "resp-socket", "a not-allowed note", |r| {
        r.body["response_type"] == "ephemeral"
    });

    // Slack refreshes the connection: the relay opens a new one and carries on.
    socket
        .to_relay
        .send(json!({"type": "disconnect", "reason": "refresh_requested"}))
        .unwrap();
    let (second, ack) = socket.exchange(envelope("env-2", click(id, "approve", ALICE, &respond)));
    assert_eq!(ack["envelope_id"], "env-2");
    assert!(second > first, "a new connection");
    assert_eq!(api.calls_of("apps.connections.open").len(), 2);
    let sent = app.slack.wait_delivered("decisions", 1).remove(0);
    assert_eq!(sent.body["decision"], "approved");

    // A modal submission without a reason is refused in the acknowledgement itself.
    let submission = json!({"type": "view_submission", "user": {"id": ALICE},
        "view": {"callback_id": "hookrelay_reject", "private_metadata": id.to_string(),
            "state": {"values": {"reason": {"reason": {"value": ""}}}}}});
    let (_, ack) = socket.exchange(envelope("env-3", submission));
    assert_eq!(ack["payload"]["response_action"], "errors");
}

#[test]
fn when_the_modal_cannot_open_the_reason_is_asked_in_the_message() {
    let Approvals { app, api } = spawn(true, false);
    let id = post_request(&app, "REQ-NOMODAL");
    api.wait_ok("chat.postMessage", 1);
    api.script(
        "views.open",
        [crate::fake_web_api::ApiReply::Error("expired_trigger_id")],
    );
    signed(&app, &click(id, "reject", ALICE, &app.slack.url("resp-8")));
    let prompt = wait_for(&app.slack, "resp-8", "the reason prompt", |r| {
        r.body["replace_original"] == true
    });
    assert!(prompt
        .body
        .to_string()
        .contains(&format!("hookrelay_reason:{id}")));
    assert_eq!(api.calls_of("views.open").len(), 1);
}

/// The text of the last message a response_url path accepted.
fn last_shown(slack: &FakeSlack, path: &str) -> String {
    slack
        .received(path)
        .into_iter()
        .rfind(|r| r.delivered() && r.body["response_type"] != "ephemeral")
        .map(|r| r.body.to_string())
        .unwrap_or_default()
}

#[test]
fn a_retried_processing_update_never_hides_the_outcome() {
    let Approvals { app, .. } = spawn(false, false);
    // The first update of the message fails; its retry comes after the decision went through.
    app.slack
        .script("resp-9", [Reply::Status(500, "rollup_error")]);
    let id = post_request(&app, "REQ-ORDER");
    signed(&app, &click(id, "approve", ALICE, &app.slack.url("resp-9")));
    app.slack.wait_delivered("decisions", 1);
    app.slack.wait_delivered("resp-9", 2);
    let shown = last_shown(&app.slack, "resp-9");
    assert!(
        shown.contains("*Approved*") && !shown.contains("Processing"),
        "{shown}"
    );
}

#[test]
fn a_decision_that_could_not_be_sent_says_so_and_a_replay_shows_the_outcome() {
    let Approvals { app, .. } = spawn(false, false);
    app.slack.script(
        "decisions",
        std::iter::repeat_n(Reply::Status(500, "down"), 4),
    );
    let id = post_request(&app, "REQ-DEAD");
    signed(
        &app,
        &click(id, "approve", ALICE, &app.slack.url("resp-10")),
    );
    wait_for(&app.slack, "resp-10", "the failure shown", |r| {
        r.body.to_string().contains("not delivered")
    });
    let failed = last_shown(&app.slack, "resp-10");
    assert!(
        !failed.contains("white_check_mark") && !failed.contains("down"),
        "{failed}"
    );
    let dead = app.wait_dead_letters(1);
    crate::admin::replay_dead(&app, dead[0].id);
    app.slack.wait_delivered("decisions", 1);
    wait_for(&app.slack, "resp-10", "the outcome after the replay", |r| {
        r.body.to_string().contains("*Approved*")
    });
}

#[test]
fn a_409_for_a_repeated_decision_counts_as_sent() {
    let Approvals { app, .. } = spawn(false, false);
    app.slack
        .script("decisions", [Reply::Status(409, "duplicate decision_id")]);
    let id = post_request(&app, "REQ-409");
    signed(
        &app,
        &click(id, "approve", ALICE, &app.slack.url("resp-11")),
    );
    wait_for(&app.slack, "resp-11", "the outcome", |r| {
        r.body.to_string().contains("*Approved*")
    });
    assert!(app.store.dead_letters().unwrap().is_empty());
}

#[test]
fn when_slack_cannot_say_who_clicked_nothing_is_decided_and_the_clicker_is_told() {
    let Approvals { app, api } = spawn(true, false);
    let id = post_request(&app, "REQ-USERS");
    api.wait_ok("chat.postMessage", 1);
    api.script("users.info", [crate::fake_web_api::ApiReply::Status(503)]);
    signed(
        &app,
        &click(id, "approve", "U0BOB", &app.slack.url("resp-12")),
    );
    let note = wait_for(&app.slack, "resp-12", "a note", |r| {
        r.body["response_type"] == "ephemeral"
    });
    assert!(
        note.body["text"]
            .as_str()
            .unwrap()
            .contains("could not check"),
        "{}",
        note.body
    );
    assert!(decision_of(&app, id).is_null());
}
