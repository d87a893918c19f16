//! Bursts become digests (issue 20): a region whose waiting new notifications cannot be posted
//! one by one within `digest_after` at its rate posts them as digests of up to `digest_max`.
//!
//! Time is the relay's manual clock: the tests move it a second at a time and await each
//! message Slack receives, so "300 at 1/s" is measured in the relay's seconds, not slept.

use std::sync::Arc;
use std::time::Duration;

use hookrelay::clock::ManualClock;
use serde_json::json;

use crate::admin::admin;
use crate::binary::{agent as binary_agent, replace_once, Harness, Relay};
use crate::fake_slack::{FakeSlack, Received, Reply};
use crate::fake_web_api::{FakeWebApi, BOT_TOKEN};
use crate::helpers::{config, opportunity, spawn_with, spawn_with_clock, TestApp};

/// The UK region of the test config at Slack's one message a second (burst 3, the default),
/// with `digest` (its `digest_after`/`digest_max` lines) added.
fn one_per_second(slack: &FakeSlack, dir: &std::path::Path, digest: &str) -> String {
    replace_once(
        &config(slack, dir),
        "rate = \"100/s\"\nburst = 100\n",
        &format!("rate = \"1/s\"\n{digest}\n"),
    )
}

fn spawn_clocked(digest: &str) -> (TestApp, Arc<ManualClock>) {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = one_per_second(&slack, dir.path(), digest);
    let clock = Arc::new(ManualClock::new());
    let app = spawn_with_clock(&text, slack, dir, Arc::clone(&clock) as _);
    (app, clock)
}

/// The test config on the system clock, with UK's rate and burst replaced by `uk`.
fn spawn_real(uk: &str) -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = replace_once(
        &config(&slack, dir.path()),
        "rate = \"100/s\"\nburst = 100\n",
        uk,
    );
    spawn_with(&text, slack, dir)
}

/// The header's text, if the message has one.
fn header(r: &Received) -> String {
    r.body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn is_digest(r: &Received) -> bool {
    header(r).contains(" new opportunit")
}

/// The opportunities a message announces, in its order: a digest's lines (each starts with the
/// name in bold), or a single card's header.
fn announced(r: &Received) -> Vec<String> {
    if !is_digest(r) {
        return vec![header(r)];
    }
    r.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "section")
        .filter_map(|b| {
            let text = b["text"]["text"].as_str()?;
            Some(text.strip_prefix('*')?.split('*').next()?.to_string())
        })
        .collect()
}

/// Everything the channel accepted, in arrival order.
fn delivered(app: &TestApp, channel: &str) -> Vec<Received> {
    app.slack
        .received(channel)
        .into_iter()
        .filter(Received::delivered)
        .collect()
}

/// Moves the clock one second at a time, awaiting a message after each, until the channel has
/// announced `total` opportunities; returns the relay's seconds that took.
fn drain(app: &TestApp, clock: &ManualClock, channel: &str, total: usize) -> u64 {
    let path = FakeSlack::path(channel);
    let mut seconds = 0;
    loop {
        let got = delivered(app, channel);
        if got.iter().map(|r| announced(r).len()).sum::<usize>() >= total {
            return seconds;
        }
        assert!(seconds < 400, "still not drained after {seconds} s");
        let before = app.slack.received(channel).len();
        clock.advance(1000);
        seconds += 1;
        app.slack
            .wait_until(Duration::from_secs(20), "the next message", |all| {
                all.iter().filter(|r| r.path == path).count() > before
            });
    }
}

fn post_burst(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            let id = format!("{prefix}-{i:03}");
            let answer = app.post(&opportunity(&id, "UK"));
            assert_eq!(answer.status, 202, "{}", answer.text);
            format!("Deal {id}")
        })
        .collect()
}

#[test]
fn a_burst_of_300_at_one_per_second_is_in_slack_within_20_seconds_once_each_in_order() {
    let (app, clock) = spawn_clocked("");
    let names = post_burst(&app, "b", 300);
    let seconds = drain(&app, &clock, "uk", 300);
    eprintln!("300 opportunities at 1/s, digests on: {seconds} s");
    assert!(
        seconds <= 20,
        "the burst took {seconds} s of the relay's time"
    );
    let got = delivered(&app, "uk");
    let shown: Vec<String> = got.iter().flat_map(announced).collect();
    assert_eq!(shown, names, "each once, in arrival order");

    let digests: Vec<&Received> = got.iter().filter(|r| is_digest(r)).collect();
    assert!(digests.len() >= 10, "{} messages", got.len());
    for d in &digests {
        let lines = announced(d).len();
        assert!((2..=20).contains(&lines), "{lines} lines");
        assert_eq!(header(d), format!("{lines} new opportunities for UK"));
        // Every line has its facts and its id, escaped like any message.
        let first = d.body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            first.contains("for Andrew Test, 4,500 (Qualification) · id "),
            "{first}"
        );
    }
    let said = digests[0].body.to_string();
    assert!(
        said.contains("more are waiting and follow in the next messages"),
        "{said}"
    );
    let last = digests.last().unwrap().body.to_string();
    assert!(!last.contains("more are waiting"), "{last}");

    // The API says which digest delivered a notification.
    let id = app
        .store
        .find_external("salesforce", "b-300")
        .unwrap()
        .unwrap();
    let shown = admin(&app, "GET", &format!("/v1/notifications/{id}"));
    assert_eq!(shown.status, 200, "{}", shown.text);
    let digest = &shown.json["digest"];
    assert_eq!(shown.json["state"], "delivered", "{}", shown.text);
    assert_eq!(digest["state"], "delivered", "{}", shown.text);
    assert_eq!(
        digest["size"].as_u64(),
        Some(announced(digests.last().unwrap()).len() as u64)
    );
    assert_eq!(digest["position"], digest["size"], "the newest is last");
    // And metrics and the status count them.
    let metrics = app.get("/metrics").text;
    let count = format!(
        "hookrelay_digest_size_count{{region=\"UK\"}} {}",
        digests.len()
    );
    assert!(metrics.contains(&count), "{count} in:\n{metrics}");
    let in_digests: usize = digests.iter().map(|d| announced(d).len()).sum();
    let sum = format!("hookrelay_digest_size_sum{{region=\"UK\"}} {in_digests}.0");
    assert!(metrics.contains(&sum), "{sum} in:\n{metrics}");
    let page = admin(&app, "GET", "/");
    let cell = format!("<td class=\"n digests\">{} <div", digests.len());
    assert!(page.text.contains(&cell), "{cell} in the status page");
    let status = admin(&app, "GET", "/v1/status");
    let regions = status.json["regions"].as_array().expect("regions");
    let uk = regions.iter().find(|r| r["name"] == "UK").expect("UK");
    assert_eq!(uk["digests"], json!(digests.len()), "{uk}");
    assert_eq!(uk["digested"], json!(in_digests), "{uk}");
}

#[test]
fn with_digests_off_the_same_burst_takes_the_five_minutes_it_always_did() {
    let (app, clock) = spawn_clocked("digest_after = \"0s\"");
    let names = post_burst(&app, "off", 300);
    let seconds = drain(&app, &clock, "uk", 300);
    eprintln!("300 opportunities at 1/s, digests off: {seconds} s");
    // Three go at once (the burst), then one a second.
    assert!(seconds >= 295, "{seconds} s");
    let got = delivered(&app, "uk");
    assert_eq!(got.len(), 300, "one message each");
    let shown: Vec<String> = got.iter().flat_map(announced).collect();
    assert_eq!(shown, names);
}

/// A region that keeps up never sees a digest: 30 waiting at 1/s drain within the default 30 s.
#[test]
fn a_queue_the_channel_can_drain_in_time_is_posted_one_by_one() {
    let (app, clock) = spawn_clocked("");
    let names = post_burst(&app, "calm", 30);
    drain(&app, &clock, "uk", 30);
    let got = delivered(&app, "uk");
    assert!(got.iter().all(|r| !is_digest(r)), "no digest");
    assert_eq!(got.iter().flat_map(announced).collect::<Vec<_>>(), names);
}

#[test]
fn a_failed_digest_is_retried_whole_and_later_versions_are_follow_ups() {
    // Real time here: a retry's backoff is the worker's, on the system clock.
    let app = spawn_real("rate = \"10/s\"\nburst = 1\ndigest_after = \"1s\"\ndigest_max = 8\n");
    // Held while the burst arrives, so the digests are made from all of it at once.
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/pause").status, 200);
    let names = post_burst(&app, "r", 20);
    app.slack
        .script("uk", [Reply::Status(500, "internal_error"), Reply::Drop]);
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/resume").status, 200);

    let all = app
        .slack
        .wait_until(Duration::from_secs(20), "the burst delivered", |all| {
            all.iter()
                .filter(|r| r.delivered())
                .map(|r| announced(r).len())
                .sum::<usize>()
                >= 20
        });
    // 500, then a dropped connection, then the same digest, line for line.
    assert_eq!(all[0].reply, "500");
    assert_eq!(all[2].reply, "200");
    assert_eq!(all[0].body, all[2].body, "retried whole");
    assert_eq!(announced(&all[0]).len(), 8);
    assert!(all[0].body.to_string().contains("12 more are waiting"));
    let shown: Vec<String> = all
        .iter()
        .filter(|r| r.delivered())
        .flat_map(announced)
        .collect();
    assert_eq!(shown, names);

    // An update of a notification that went out in a digest is a follow-up naming it.
    let mut changed = opportunity("r-003", "UK");
    changed["amount"] = json!(6000);
    assert_eq!(app.post(&changed).json["status"], "updated");
    let follow_up = app.slack.wait_delivered("uk", 4).pop().unwrap();
    let said = follow_up.body.to_string();
    assert!(
        header(&follow_up) == "Updated: Deal r-003" && said.contains("Amount: 4,500 → 6,000"),
        "{said}"
    );
    assert!(
        said.contains("was first announced in a digest of 8"),
        "{said}"
    );
}

/// UK on the Web API: a bot token, a channel, and the salesforce source's status rules.
fn bot_config(slack: &FakeSlack, api: &FakeWebApi, dir: &std::path::Path) -> String {
    let text = one_per_second(slack, dir, "digest_max = 4");
    let text = replace_once(&text, "rate = \"1/s\"\n", "rate = \"2/s\"\nburst = 1\n");
    let text = replace_once(
        &text,
        &format!("webhook_url = \"{}\"", slack.url("uk")),
        &format!("bot_token = \"{BOT_TOKEN}\"\nchannel = \"{BOT_CHANNEL}\""),
    );
    let text = replace_once(
        &text,
        "[sources.salesforce]\nkind = \"opportunity\"\n",
        "[sources.salesforce]\nkind = \"opportunity\"\n\
         [sources.salesforce.on_status]\n\
         \"Closed Won\" = { react = \"tada\", pin = true }\n\
         \"Withdrawn\" = { delete = true }\n",
    );
    // Digests of whole seconds: the default `digest_after` at 2/s is 60 posts.
    let text = replace_once(
        &text,
        "digest_max = 4",
        "digest_after = \"1s\"\ndigest_max = 4",
    );
    format!("{text}\n[slack]\napi_url = \"{}\"\n", api.base_url())
}

const BOT_CHANNEL: &str = "C0DIGESTUK";

#[test]
fn in_a_bot_region_updates_reply_in_the_digests_thread_and_never_change_the_digest() {
    let slack = Arc::new(FakeSlack::start());
    let api = FakeWebApi::start();
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = bot_config(&slack, &api, dir.path());
    let app = spawn_with(&text, slack, dir);
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/pause").status, 200);
    post_burst(&app, "bot", 4);
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/resume").status, 200);
    let digest = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(digest.args["channel"], BOT_CHANNEL);
    let said = digest.args.to_string();
    assert!(said.contains("4 new opportunities for UK"), "{said}");
    let top: Vec<_> = api
        .messages(BOT_CHANNEL)
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect();
    assert_eq!(top.len(), 1, "one message for the four: {top:#?}");
    let ts = top[0].ts.clone();

    // An update: a reply in the digest's thread naming what changed; no edit of the digest.
    let mut opp = opportunity("bot-002", "UK");
    opp["amount"] = json!(6000);
    assert_eq!(app.post(&opp).json["status"], "updated");
    // Won: a reaction and a pin would say nothing about which of the four won.
    opp["status"] = json!("Closed Won");
    assert_eq!(app.post(&opp).json["status"], "updated");
    let id = app
        .store
        .find_external("salesforce", "bot-002")
        .unwrap()
        .unwrap();
    let settled = app.wait_store("the updates settled", |store| {
        let ds = crate::helpers::deliveries_of(store, id);
        (ds.len() >= 5 && ds.iter().all(|d| d.due_ms().is_none())).then_some(ds)
    });
    let replies: Vec<_> = api
        .calls_of("chat.postMessage")
        .into_iter()
        .filter(|c| c.ok() && c.args["thread_ts"] == ts.as_str())
        .collect();
    assert_eq!(replies.len(), 2, "{replies:#?}");
    let first = replies[0].args["text"].as_str().unwrap();
    assert!(first.contains("Amount: 4,500 → 6,000"), "{first}");
    let named = replies[0].args.to_string();
    assert!(
        named.contains("was first announced in a digest of 4"),
        "{named}"
    );
    let second = replies[1].args["text"].as_str().unwrap();
    assert!(
        second.contains("Stage: Qualification → Closed Won"),
        "{second}"
    );
    assert!(
        api.calls_of("chat.update").is_empty(),
        "the digest is never edited"
    );
    assert!(api.calls_of("reactions.add").is_empty());
    assert!(api.calls_of("pins.add").is_empty());
    let message = api.message(BOT_CHANNEL, &ts).expect("the digest");
    assert!(message.reactions.is_empty() && !message.pinned && message.edits == 0);
    // The skipped actions say why in their history.
    let skipped = settled
        .iter()
        .filter(|d| {
            d.history
                .last()
                .is_some_and(|a| a.answer.contains("went out in digest"))
        })
        .count();
    assert_eq!(skipped, 4, "edit, edit, reaction and pin: {settled:#?}");

    // Withdrawn: its own replies go, the digest stays, and a note in its thread says so.
    opp["status"] = json!("Withdrawn");
    assert_eq!(app.post(&opp).json["status"], "updated");
    app.wait_store("the withdrawal settled", |store| {
        let ds = crate::helpers::deliveries_of(store, id);
        (ds.len() > settled.len() && ds.iter().all(|d| d.due_ms().is_none())).then_some(())
    });
    let digest = api.message(BOT_CHANNEL, &ts).expect("the digest");
    assert!(!digest.deleted, "the other three are still in it");
    let thread: Vec<_> = api
        .messages(BOT_CHANNEL)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(ts.as_str()) && !m.deleted)
        .collect();
    assert_eq!(thread.len(), 1, "its update replies deleted: {thread:#?}");
    assert!(
        thread[0].text.starts_with("*Deal bot-002* for Andrew Test")
            && thread[0]
                .text
                .ends_with("was withdrawn: its line above no longer stands."),
        "{}",
        thread[0].text
    );
}

/// The names a channel received and how often, checked for at most one repeated digest.
fn at_most_one_digest_repeated(messages: &[Vec<String>]) -> usize {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for name in messages.iter().flatten() {
        *counts.entry(name).or_default() += 1;
    }
    let repeated: std::collections::BTreeSet<&str> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(name, n)| {
            assert_eq!(*n, 2, "{name} was posted {n} times");
            *name
        })
        .collect();
    if !repeated.is_empty() {
        let same = |m: &Vec<String>| {
            m.iter()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>()
                == repeated
        };
        assert_eq!(
            messages.iter().filter(|m| same(m)).count(),
            2,
            "the repeats {repeated:?} are one digest sent twice: {messages:#?}"
        );
    }
    repeated.len()
}

/// The real binary with UK at 4/s and digests of up to 10 after 1 s, Slack answering UK by
/// `script`, and `n` opportunities accepted; their names in arrival order.
fn binary_burst(prefix: &str, n: usize, script: Vec<Reply>) -> (Harness, Relay, Vec<String>) {
    let mut h = Harness::new(&[(
        "rate = \"1000/s\"\nburst = 1000\n",
        "rate = \"4/s\"\nburst = 1\ndigest_after = \"1s\"\ndigest_max = 10\n",
    )]);
    h.slack.script("uk", script);
    let relay = h.start();
    let agent = binary_agent(Duration::from_secs(10));
    let names = (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i:03}");
            assert_eq!(relay.post(&agent, &id, "UK").expect("relay answers"), 202);
            format!("Deal {id}")
        })
        .collect();
    (h, relay, names)
}

/// Waits until UK's channel announced `n` different opportunities; returns what it received.
fn wait_announced(h: &Harness, n: usize) -> Vec<Received> {
    let uk = FakeSlack::path("uk");
    h.slack
        .wait_until(Duration::from_secs(60), "every one announced", |all| {
            let seen: std::collections::BTreeSet<String> = all
                .iter()
                .filter(|r| r.path == uk && r.delivered())
                .flat_map(announced)
                .collect();
            seen.len() == n
        })
        .into_iter()
        .filter(|r| r.path == uk)
        .collect()
}

/// Each name once, sorted.
fn distinct(messages: &[Vec<String>]) -> Vec<String> {
    let mut seen = messages.concat();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn sigkill_while_digests_go_out_loses_nothing_and_repeats_at_most_one_digest() {
    let (mut h, relay, names) = binary_burst("k", 200, Vec::new());
    h.slack
        .wait_until(Duration::from_secs(30), "three digests", |all| {
            all.iter().filter(|r| r.delivered() && is_digest(r)).count() >= 3
        });
    relay.signal(libc::SIGKILL);
    drop(relay);
    let sent_before = h.slack.received("uk").len();
    let _relay = h.start();
    let all = wait_announced(&h, 200);
    let messages: Vec<Vec<String>> = all
        .iter()
        .filter(|r| r.delivered())
        .map(announced)
        .collect();
    let repeated = at_most_one_digest_repeated(&messages);
    assert!(repeated <= 10, "{repeated}");
    assert_eq!(distinct(&messages), names, "nothing lost");
    assert!(sent_before < all.len(), "the restart sent the rest");
}

#[test]
fn a_crash_between_slacks_200_and_the_record_repeats_that_one_digest_and_nothing_else() {
    // Slack takes the third message but the relay never hears back before it is killed.
    let (mut h, relay, names) = binary_burst("w", 60, vec![Reply::Ok, Reply::Ok, Reply::Hold]);
    let held = h
        .slack
        .wait_until(Duration::from_secs(30), "the third message", |all| {
            all.len() >= 3
        })
        .remove(2);
    assert!(
        is_digest(&held),
        "the held message is a digest: {}",
        held.body
    );
    relay.signal(libc::SIGKILL);
    drop(relay);
    h.slack.release();
    let _relay = h.start();
    let mine = wait_announced(&h, 60);
    let messages: Vec<Vec<String>> = mine.iter().map(announced).collect();
    assert_eq!(
        at_most_one_digest_repeated(&messages),
        announced(&held).len(),
        "the held digest, and only it, was sent again"
    );
    assert_eq!(mine[3].body, held.body, "sent again first, line for line");
    assert_eq!(distinct(&messages), names, "nothing lost");
}

#[test]
fn a_digest_slack_refuses_makes_each_notification_a_dead_letter_replayed_once() {
    let app = spawn_real("rate = \"10/s\"\nburst = 1\ndigest_after = \"1s\"\ndigest_max = 12\n");
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/pause").status, 200);
    let names = post_burst(&app, "d", 12);
    app.slack
        .script("uk", [Reply::Status(400, "invalid_blocks")]);
    assert_eq!(admin(&app, "POST", "/v1/regions/UK/resume").status, 200);
    // One dead letter per notification, each saying its digest was refused.
    let dead = app.wait_dead_letters(12);
    for d in &dead {
        let reason = match &d.state {
            hookrelay::store::records::DeliveryState::Dead { reason, .. } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("invalid_blocks"), "{reason}");
    }
    assert_eq!(app.slack.received("uk").len(), 1, "one refused digest");
    for d in &dead {
        crate::admin::replay_dead(&app, d.id);
    }
    app.slack
        .wait_until(Duration::from_secs(20), "the replays delivered", |all| {
            all.iter()
                .filter(|r| r.delivered())
                .map(|r| announced(r).len())
                .sum::<usize>()
                >= 12
        });
    let shown: Vec<String> = delivered(&app, "uk").iter().flat_map(announced).collect();
    let mut sorted = shown.clone();
    sorted.sort();
    assert_eq!(sorted, names, "each once: {shown:?}");
    assert!(app.wait_dead_letters(0).is_empty());
}
