//! The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) sending to the relay's
//! `alertmanager` source as configured in `examples/alertmanager/hookrelay.toml`: an alert fires,
//! Alertmanager repeats it, then it is resolved.
//!
//! Slack gets the firing message once (Alertmanager's repeats and retries are duplicates), then
//! the resolve: in an incoming-webhook region a follow-up naming the status change, in a
//! bot-token region an edit of the message plus a thread reply. Without the binary the tests
//! print a line and pass, except under CI (`CI` set), where they fail saying what to install.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::binary::{agent, free_port, replace_once, wait_until};
use crate::fake_slack::FakeSlack;
use crate::fake_web_api::{FakeWebApi, BOT_TOKEN};
use crate::helpers::{config, spawn_with, TestApp};

/// Where Debian's package puts it; `HOOKRELAY_ALERTMANAGER` names another.
const DEBIAN_BINARY: &str = "/usr/bin/prometheus-alertmanager";
const CHANNEL: &str = "C0ALERTS";
/// How long Alertmanager may take for anything (it notifies within about 2 s here).
const WAIT: Duration = Duration::from_secs(30);
/// What the resolve says, as a follow-up or a thread reply.
const RESOLVED_TEXT: &str =
    "✅ DiskFull: resolved — changed: Status: firing → resolved, 2 other values changed";

/// The Alertmanager binary, or `None` (after saying so) where a developer has none.
fn alertmanager_binary() -> Option<PathBuf> {
    let path = std::env::var_os("HOOKRELAY_ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBIAN_BINARY));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing: install prometheus-alertmanager (apt-get install prometheus-alertmanager) \
             or set HOOKRELAY_ALERTMANAGER to the binary; CI runs this test against it",
            path.display()
        );
    }
    eprintln!(
        "skipped: {} not found (apt-get install prometheus-alertmanager to run this test)",
        path.display()
    );
    None
}

/// A running Alertmanager, killed when dropped (also when the test fails).
struct Alertmanager {
    child: Child,
    /// `http://127.0.0.1:port`.
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with a route that notifies `webhook` within a second of a change and
    /// repeats every two seconds, so a repeat is seen within the test.
    fn start(binary: &Path, webhook: &str) -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hookrelay\n  group_by: ['alertname', 'job']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 2s\n\
                 receivers:\n  - name: hookrelay\n    webhook_configs:\n      - url: {webhook}\n        \
                 send_resolved: true\n"
            ),
        )
        .expect("write alertmanager.yml");
        let port = free_port();
        let log = dir.path().join("alertmanager.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--web.external-url=http://alertmanager.example.com:9093")
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("log file"))
            .stderr(File::create(dir.path().join("alertmanager.err")).expect("log file"))
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let http = agent(Duration::from_secs(2));
        wait_until("Alertmanager ready", WAIT, || {
            http.get(format!("{}/-/ready", am.url))
                .call()
                .is_ok_and(|r| r.status() == 200)
        });
        am
    }

    /// Posts alerts to `/api/v2/alerts`, as Prometheus does.
    fn post_alerts(&self, alerts: &Value) {
        let resp = agent(Duration::from_secs(5))
            .post(format!("{}/api/v2/alerts", self.url))
            .header("Content-Type", "application/json")
            .send(alerts.to_string().as_bytes())
            .expect("alertmanager answers");
        assert_eq!(resp.status(), 200, "{}", self.logs());
    }

    /// Waits until Alertmanager holds no alert group: it has nothing more to send.
    fn wait_no_groups(&self) {
        let http = agent(Duration::from_secs(2));
        wait_until("Alertmanager to drop the resolved group", WAIT, || {
            http.get(format!("{}/api/v2/alerts/groups", self.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
        });
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("alertmanager.err");
        format!(
            "alertmanager's log:\n{}{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The alert as Prometheus would send it; `ends` resolves it.
fn disk_full(starts: SystemTime, ends: Option<SystemTime>) -> Value {
    let mut alert = json!({
        "labels": {"alertname": "DiskFull", "job": "node", "instance": "db1.example.com:9100", "severity": "critical"},
        "annotations": {"summary": "Root filesystem almost full", "description": "Filesystem / on db1.example.com has 5% space left."},
        "startsAt": rfc3339(starts),
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=node_filesystem_avail_bytes",
    });
    if let Some(ends) = ends {
        alert["endsAt"] = json!(rfc3339(ends));
    }
    json!([alert])
}

/// The relay with the preset's `alertmanager` source (region UK); with `bot`, UK posts through
/// the fake Web API instead of an incoming webhook.
fn relay(bot: Option<&FakeWebApi>) -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut text = config(&slack, dir.path());
    if let Some(api) = bot {
        text = replace_once(
            &text,
            &format!("webhook_url = \"{}\"", slack.url("uk")),
            &format!("bot_token = \"{BOT_TOKEN}\"\nchannel = \"{CHANNEL}\""),
        );
        text.push_str(&format!("\n[slack]\napi_url = \"{}\"\n", api.base_url()));
    }
    let preset = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/alertmanager/hookrelay.toml"),
    )
    .expect("the preset's hookrelay.toml");
    text.push('\n');
    text.push_str(&preset);
    spawn_with(&text, slack, dir)
}

/// `hookrelay_received_total{source="alertmanager",outcome=…}` now (0 before the first).
fn received(app: &TestApp, outcome: &str) -> f64 {
    let line = format!("hookrelay_received_total{{source=\"alertmanager\",outcome=\"{outcome}\"}}");
    app.get("/metrics")
        .text
        .lines()
        .find(|l| l.starts_with(&line))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn header(payload: &Value) -> String {
    payload["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn alertmanager_fires_repeats_and_resolves_one_slack_message_and_a_follow_up() {
    let Some(binary) = alertmanager_binary() else {
        return;
    };
    let app = relay(None);
    let am = Alertmanager::start(&binary, &format!("{}/hooks/alertmanager", app.address));
    let started = SystemTime::now();
    am.post_alerts(&disk_full(started, None));

    let firing = app.slack.wait_delivered("uk", 1).remove(0).body;
    assert_eq!(header(&firing), "🔥 DiskFull: firing", "{firing:#}");
    // Alertmanager repeats the notification (repeat_interval 2s): each is a duplicate.
    wait_until("Alertmanager's repeat answered duplicate", WAIT, || {
        received(&app, "duplicate") >= 2.0
    });
    assert_eq!(
        app.slack.received("uk").len(),
        1,
        "a repeat posts nothing: {:#?}",
        app.slack.received("uk")
    );

    am.post_alerts(&disk_full(started, Some(SystemTime::now())));
    let got = app.slack.wait_delivered("uk", 2);
    let resolved = &got[1].body;
    assert_eq!(header(resolved), "✅ DiskFull: resolved", "{resolved:#}");
    // The alert's own status and endsAt changed too: counted, not listed.
    assert_eq!(resolved["text"], RESOLVED_TEXT, "{resolved:#}");
    // Once the resolve is delivered Alertmanager drops the group: it sends nothing more.
    am.wait_no_groups();
    assert_eq!(received(&app, "accepted"), 1.0, "{}", am.logs());
    assert_eq!(
        app.slack.received("uk").len(),
        2,
        "nothing posted twice: {:#?}",
        app.slack.received("uk")
    );
}

#[test]
fn alertmanager_resolve_in_a_bot_region_edits_the_message_and_replies_in_its_thread() {
    let Some(binary) = alertmanager_binary() else {
        return;
    };
    let api = FakeWebApi::start();
    let app = relay(Some(&api));
    let am = Alertmanager::start(&binary, &format!("{}/hooks/alertmanager", app.address));
    let started = SystemTime::now();
    am.post_alerts(&disk_full(started, None));

    let post = api.wait_ok("chat.postMessage", 1).remove(0);
    assert_eq!(post.args["channel"], CHANNEL);
    assert_eq!(header(&post.args), "🔥 DiskFull: firing", "{:#}", post.args);
    wait_until("Alertmanager's repeat answered duplicate", WAIT, || {
        received(&app, "duplicate") >= 2.0
    });
    assert_eq!(api.calls_of("chat.postMessage").len(), 1);

    am.post_alerts(&disk_full(started, Some(SystemTime::now())));
    let update = api.wait_ok("chat.update", 1).remove(0);
    let messages = api.messages(CHANNEL);
    let top: Vec<_> = messages.iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(top.len(), 1, "one message in the channel: {messages:#?}");
    assert_eq!(update.args["ts"], top[0].ts.as_str());
    assert_eq!(
        header(&update.args),
        "✅ DiskFull: resolved",
        "{:#}",
        update.args
    );
    let reply = api.wait_until(WAIT, "the thread reply", |calls| {
        calls
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.ok())
            .count()
            >= 2
    });
    let reply = reply
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.ok())
        .nth(1)
        .expect("a reply");
    assert_eq!(reply.args["thread_ts"], top[0].ts.as_str());
    assert_eq!(reply.args["text"], RESOLVED_TEXT, "{:#}", reply.args);
    am.wait_no_groups();
    assert_eq!(api.calls_of("chat.update").len(), 1);
    assert_eq!(api.calls_of("chat.postMessage").len(), 2, "{}", am.logs());
}
