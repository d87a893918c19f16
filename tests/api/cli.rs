//! The operator CLI against a running relay.

use std::process::{Command, Output};

use serde_json::Value;

use crate::binary::{free_port, BIN};
use crate::fake_slack::Reply;
use crate::helpers::{opportunity, spawn_app, TestApp, ADMIN_TOKEN};

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

fn run(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("HOOKRELAY_URL")
        .env_remove("HOOKRELAY_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("the binary runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `hookrelay ARGS` against `app` with the admin token from the environment.
pub fn hr(app: &TestApp, args: &[&str]) -> Run {
    run(
        &[
            ("HOOKRELAY_URL", app.address.as_str()),
            ("HOOKRELAY_TOKEN", ADMIN_TOKEN),
        ],
        args,
    )
}

#[test]
fn status_shows_a_table_of_regions_or_json() {
    let app = spawn_app();
    let table = hr(&app, &["status"]).ok();
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("REGION"), "{}", table.stdout);
    for region in ["UK", "US", "EU"] {
        assert!(
            table.stdout.lines().any(|l| l.starts_with(region)),
            "{region} missing:\n{}",
            table.stdout
        );
    }
    assert!(table.stdout.contains("dead letters 0"), "{}", table.stdout);

    let json = hr(&app, &["status", "--json"]).ok().json();
    let names: Vec<&str> = json["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names.len(), 3, "{json}");
    for region in ["UK", "US", "EU"] {
        assert!(names.contains(&region), "{json}");
    }
}

#[test]
fn notifications_show_and_list_what_the_relay_holds() {
    let app = spawn_app();
    let id = app.post(&opportunity("cli-1", "UK")).json["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.slack.wait_delivered("uk", 1);

    let shown = hr(&app, &["notifications", "show", &id, "--json"])
        .ok()
        .json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["external_id"], "cli-1");
    assert_eq!(shown["source"], "salesforce");

    let table = hr(&app, &["notifications", "show", &id]).ok();
    assert!(table.stdout.contains("cli-1"), "{}", table.stdout);
    assert!(table.stdout.contains("region UK"), "{}", table.stdout);

    let listed = hr(&app, &["notifications", "list", "--source", "salesforce"]).ok();
    assert!(listed.stdout.contains(&id), "{}", listed.stdout);

    let missing = hr(&app, &["notifications", "show", "999999"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("404") && missing.stderr.contains("no notification 999999"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_paused_region_queues_until_resumed_from_the_cli() {
    let app = spawn_app();
    let paused = hr(&app, &["regions", "pause", "US"]).ok();
    assert!(paused.stdout.contains("US"), "{}", paused.stdout);
    app.post(&opportunity("held-cli", "US"));
    app.post(&opportunity("marker-cli", "UK"));
    app.slack.wait_delivered("uk", 1);
    assert!(
        app.slack.received("us").is_empty(),
        "nothing sent while paused"
    );
    let status = hr(&app, &["status", "--json"]).ok().json();
    let us = status["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "US")
        .unwrap()
        .clone();
    assert_eq!(us["paused"], true, "{us}");

    hr(&app, &["regions", "resume", "US"]).ok();
    assert_eq!(
        app.slack.wait_delivered("us", 1)[0].crm_id().as_deref(),
        Some("held-cli")
    );

    let unknown = hr(&app, &["regions", "pause", "MARS"]);
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("MARS"), "{}", unknown.stderr);
}

#[test]
fn dead_letters_are_listed_replayed_and_dropped_from_the_cli() {
    let app = spawn_app();
    app.slack.script(
        "eu",
        [
            Reply::Status(400, "invalid_blocks"),
            Reply::Status(400, "invalid_blocks"),
            Reply::Status(400, "invalid_blocks"),
        ],
    );
    for i in 0..3 {
        app.post(&opportunity(&format!("dl-cli-{i}"), "EU"));
    }
    app.wait_store("three dead letters", |s| {
        (s.dead_letters().unwrap().len() == 3).then_some(())
    });

    let table = hr(&app, &["dead-letters", "list"]).ok();
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.contains("invalid_blocks"))
            .count(),
        3,
        "{}",
        table.stdout
    );
    let listed = hr(&app, &["dead-letters", "list", "--json"]).ok().json();
    let ids: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);

    let one = hr(&app, &["dead-letters", "replay", &ids[0]]).ok();
    assert!(one.stdout.contains(&ids[0]), "{}", one.stdout);
    app.slack.wait_delivered("eu", 1);
    let again = hr(&app, &["dead-letters", "replay", &ids[0]]);
    assert_eq!(again.code, Some(1), "no longer a dead letter");
    assert!(again.stderr.contains("no dead letter"), "{}", again.stderr);

    hr(&app, &["dead-letters", "drop", &ids[1]]).ok();
    assert_eq!(hr(&app, &["dead-letters", "drop", &ids[1]]).code, Some(1));

    // Nothing in another region or for another reason.
    let none = hr(&app, &["dead-letters", "replay", "--all", "--region", "UK"]).ok();
    assert!(none.stdout.contains("No dead letters"), "{}", none.stdout);
    let all = hr(
        &app,
        &[
            "dead-letters",
            "replay",
            "--all",
            "--region",
            "EU",
            "--reason",
            "INVALID_BLOCKS",
        ],
    )
    .ok();
    assert!(all.stderr.contains("replayed 1/1"), "{}", all.stderr);
    assert!(all.stdout.contains("Replayed 1 of 1"), "{}", all.stdout);
    app.slack.wait_delivered("eu", 2);
    let empty = hr(&app, &["dead-letters", "list", "--json"]).ok().json();
    assert!(empty["items"].as_array().unwrap().is_empty(), "{empty}");
}

#[test]
fn replaying_all_with_json_uses_the_bulk_call() {
    let app = spawn_app();
    app.slack.script(
        "eu",
        [
            Reply::Status(400, "invalid_blocks"),
            Reply::Status(400, "invalid_blocks"),
        ],
    );
    for i in 0..2 {
        app.post(&opportunity(&format!("bulk-cli-{i}"), "EU"));
    }
    app.wait_store("two dead letters", |s| {
        (s.dead_letters().unwrap().len() == 2).then_some(())
    });
    let out = hr(&app, &["dead-letters", "replay", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(out["replayed"], 2, "{out}");
    app.slack.wait_delivered("eu", 2);
}

#[test]
fn send_test_posts_a_marked_message() {
    let app = spawn_app();
    let sent = hr(&app, &["send-test", "EU"]).ok();
    assert!(sent.stdout.contains("EU"), "{}", sent.stdout);
    let got = app.slack.wait_delivered("eu", 1);
    assert!(
        got[0].body.to_string().contains("Test message"),
        "{}",
        got[0].body
    );
    let json = hr(&app, &["send-test", "UK", "--json"]).ok().json();
    assert_eq!(json["region"], "UK");
    app.slack.wait_delivered("uk", 1);
}

#[test]
fn export_prints_one_json_line_per_notification() {
    let app = spawn_app();
    app.post(&opportunity("exp-cli-1", "UK"));
    app.post(&opportunity("exp-cli-2", "US"));
    let out = hr(&app, &["export", "--since", "1h"]).ok();
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let ids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["external_id"].as_str())
        .collect();
    assert!(ids.contains(&"exp-cli-1") && ids.contains(&"exp-cli-2"));

    let future = hr(&app, &["export", "--since", "2999-01-01"]).ok();
    assert!(future.stdout.is_empty(), "{}", future.stdout);
    let bad = hr(&app, &["export", "--since", "last tuesday"]);
    assert_eq!(bad.code, Some(2), "a usage error: {}", bad.stderr);
}

#[test]
fn token_trouble_exits_1_and_says_how_to_fix_it_without_showing_the_token() {
    let app = spawn_app();
    let wrong = run(
        &[
            ("HOOKRELAY_URL", app.address.as_str()),
            ("HOOKRELAY_TOKEN", "not-the-token-42"),
        ],
        &["status"],
    );
    assert_eq!(wrong.code, Some(1), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("token"), "{}", wrong.stderr);
    assert!(
        !wrong.stderr.contains("not-the-token-42"),
        "{}",
        wrong.stderr
    );
    assert!(wrong.stdout.is_empty());

    let missing = run(&[("HOOKRELAY_URL", app.address.as_str())], &["status"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("HOOKRELAY_TOKEN") && missing.stderr.contains("--token-file"),
        "{}",
        missing.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let from_file = run(
        &[],
        &[
            "status",
            "--url",
            &app.address,
            "--token-file",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(from_file.stdout.contains("UK"), "{}", from_file.stdout);
}

#[test]
fn an_unreachable_relay_exits_1_naming_the_url() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run(
        &[("HOOKRELAY_TOKEN", ADMIN_TOKEN)],
        &["status", "--url", &url],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains(&url), "{}", out.stderr);
    assert!(out.stderr.contains("--url"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["dead-letters", "replay"][..],
        &["dead-letters", "replay", "7", "--all"],
        &["status", "--token", "secret"],
    ] {
        let out = run(&[("HOOKRELAY_TOKEN", ADMIN_TOKEN)], args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn store_dump_prints_every_key_as_readable_json_once_the_relay_is_stopped() {
    let slack = std::sync::Arc::new(crate::fake_slack::FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = crate::helpers::config(&slack, dir.path());
    let config = dir.path().join("hookrelay.toml");
    std::fs::write(&config, &text).expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let app = crate::helpers::spawn_with(
        &text,
        std::sync::Arc::clone(&slack),
        std::sync::Arc::clone(&dir),
    );
    let id = app.post(&opportunity("006DUMP", "UK")).json["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut partner = opportunity("006PARTNER", "UK");
    partner["type"] = "partner".into();
    assert_eq!(app.post(&partner).status, 202);
    slack.wait_delivered("uk", 1);
    slack.wait_delivered("partners", 1);
    let locked = run(&[], &["store", "dump", "--config", config]);
    assert_eq!(locked.code, Some(1));
    assert!(
        locked.stderr.contains("open in a running relay"),
        "{}",
        locked.stderr
    );
    app.stop();

    let dumped = run(&[], &["store", "dump", "--config", config]).ok();
    let lines: Vec<Value> = dumped
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let find = |key: &str| {
        lines
            .iter()
            .find(|l| l["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in:\n{}", dumped.stdout))
    };
    let n = find(&format!("n/{id}"));
    assert_eq!(n["value"]["external_id"], "006DUMP");
    assert!(n["value"]["raw"].as_str().expect("raw").contains("006DUMP"));
    let delivery = n["value"]["deliveries"][0].as_u64().expect("a delivery");
    assert_eq!(
        find(&format!("d/{delivery}"))["value"]["state"]["state"],
        "delivered"
    );
    assert_eq!(
        find("k/salesforce/006DUMP")["value"].as_u64(),
        id.parse().ok()
    );
    assert_eq!(find("m/format")["value"], "4");
    // A one-off webhook URL is a secret: masked, as everywhere else.
    assert!(
        !dumped.stdout.contains(&slack.url("partners")),
        "{}",
        dumped.stdout
    );
    assert!(dumped.stdout.contains("/***"), "{}", dumped.stdout);

    let only = run(&[], &["store", "dump", "--config", config, "--prefix", "k"]).ok();
    assert_eq!(only.stdout.lines().count(), 2, "{}", only.stdout);
}
