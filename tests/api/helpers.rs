//! `spawn_app()`: the real `Application` on port 0, its store in a temp dir, Slack faked.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use std::sync::Arc;

use hookrelay::clock::{Clock, ManualClock, SystemClock};
use hookrelay::config::Settings;
use hookrelay::startup::Application;
use hookrelay::store::journal::Journal;
use hookrelay::store::Store;
use serde_json::{json, Value};

use crate::fake_slack::FakeSlack;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

/// The config every API test starts from: three regions on the fake Slack, fast retries, a
/// generous rate limit (tests of the limit set their own), and one token-protected source.
pub fn config(slack: &FakeSlack, store: &Path) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 4096
shutdown_timeout = "5s"
[store]
path = "{store}"
min_free = "1MiB"
[delivery]
workers = 4
max_attempts = 4
initial_backoff = "20ms"
max_backoff = "100ms"
timeout = "2s"
[sources.salesforce]
kind = "opportunity"
[sources.secured]
kind = "opportunity"
token = "{TOKEN}"
[regions.UK]
webhook_url = "{uk}"
countries = ["UK", "GB"]
rate = "100/s"
burst = 100
[regions.US]
webhook_url = "{us}"
countries = ["US", "USA"]
rate = "100/s"
burst = 100
[regions.EU]
webhook_url = "{eu}"
countries = ["EU", "DE", "FR"]
rate = "100/s"
burst = 100
[sources.shop]
kind = "tray-commerce"
sellers = {{ "391250" = "UK" }}
region = "EU"
coalesce_window = "1s"
[sources.rainforest]
kind = "rainforest"
allowed_webhook_hosts = ["127.0.0.1"]
[sources.orders]
kind = "generic"
id = "/order/id"
title = "Order {{/order/id}} from {{/customer}}"
fields = [["Amount", "/amount"], ["Status", "/status"]]
region = "US"
[admin]
tokens = ["{ADMIN_TOKEN}"]
[[routes]]
source = "salesforce"
match = {{ "/owner_email" = "Route-Me@example.com" }}
region = "EU"
[[routes]]
match = {{ "/type" = "partner" }}
webhook_url = "{partners}"
"#,
        store = store.display(),
        uk = slack.url("uk"),
        us = slack.url("us"),
        eu = slack.url("eu"),
        partners = slack.url("partners"),
        ADMIN_TOKEN = ADMIN_TOKEN,
    )
}

pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub address: String,
    /// The fake Slack the regions post to.
    pub slack: std::sync::Arc<FakeSlack>,
    /// The store directory, kept so a restart can reuse it.
    pub store_path: PathBuf,
    /// Removed when the last app using it is gone.
    pub _store_dir: Option<std::sync::Arc<tempfile::TempDir>>,
    /// The writer, so tests can close it and see 503s.
    pub journal: Journal,
    /// Live read access to the app's store.
    pub store: Store,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    agent: ureq::Agent,
}

pub fn spawn_app() -> TestApp {
    let slack = std::sync::Arc::new(FakeSlack::start());
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    spawn_with(&text, slack, dir)
}

/// Starts an app on a config text, sharing `slack` and the store dir with earlier apps.
pub fn spawn_with(
    text: &str,
    slack: std::sync::Arc<FakeSlack>,
    dir: std::sync::Arc<tempfile::TempDir>,
) -> TestApp {
    spawn_with_clock(text, slack, dir, Arc::new(SystemClock))
}

/// A default app whose intake clock the test moves by hand.
pub fn spawn_app_with_clock(clock: Arc<ManualClock>) -> TestApp {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let text = config(&slack, dir.path());
    spawn_with_clock(&text, slack, dir, clock)
}

pub fn spawn_with_clock(
    text: &str,
    slack: std::sync::Arc<FakeSlack>,
    dir: std::sync::Arc<tempfile::TempDir>,
    clock: Arc<dyn Clock>,
) -> TestApp {
    let settings = Settings::parse(text).expect("test config is valid");
    let store_path = settings.store.path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build_with_clock(settings, clock).expect("application builds");
            tx.send((
                app.port(),
                app.handle(),
                app.journal().clone(),
                app.store().clone(),
            ))
            .expect("test waits");
            app.run_until_stopped().await
        })
    });
    let (port, handle, journal, store) = rx.recv().expect("application started");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        slack,
        store_path,
        _store_dir: Some(dir),
        journal,
        store,
        handle,
        thread: Some(thread),
        agent,
    }
}

impl TestApp {
    /// POSTs a body to `/hooks/{source}` with a content type; returns status, headers of interest
    /// and the JSON body.
    pub fn post_raw(
        &self,
        source: &str,
        content_type: Option<&str>,
        auth: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let mut req = self.agent.post(format!("{}/hooks/{source}", self.address));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        Answer::read(req.send(body).expect("relay answers"))
    }

    /// POSTs a JSON opportunity to the open `salesforce` source.
    pub fn post(&self, body: &Value) -> Answer {
        self.post_raw(
            "salesforce",
            Some("application/json"),
            None,
            body.to_string().as_bytes(),
        )
    }

    /// POSTs a body to any path.
    pub fn post_path(&self, path: &str, content_type: &str, body: &[u8]) -> Answer {
        let req = self
            .agent
            .post(format!("{}{path}", self.address))
            .header("Content-Type", content_type);
        Answer::read(req.send(body).expect("relay answers"))
    }

    pub fn get(&self, path: &str) -> Answer {
        let resp = self.agent.get(format!("{}{path}", self.address)).call();
        Answer::read(resp.expect("relay answers"))
    }

    /// Stops gracefully and waits until the store is closed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            actix_web::rt::System::new().block_on(self.handle.stop(true));
            let _ = thread.join();
        }
    }

    /// A fresh read handle on the store; only valid after `stop` (sled locks the directory).
    pub fn open_store(path: &Path) -> Store {
        Store::open(path).expect("store reopens")
    }

    /// Waits until the store holds exactly `n` dead letters, and returns them.
    pub fn wait_dead_letters(&self, n: usize) -> Vec<hookrelay::store::records::Delivery> {
        self.wait_store(&format!("{n} dead letters"), |s| {
            s.dead_letters().ok().filter(|d| d.len() == n)
        })
    }

    /// Waits until `pred` holds on the live store, checking every few milliseconds.
    pub fn wait_store<T>(&self, what: &str, pred: impl Fn(&Store) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = pred(&self.store) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What the relay answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: Value,
    pub text: String,
    pub retry_after: Option<String>,
}

impl Answer {
    /// Status, `Retry-After`, and the body as text and (when it is JSON) as JSON.
    pub fn read(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            json,
            text,
            retry_after,
        }
    }
}

/// The brief's example opportunity with a chosen id and country.
pub fn opportunity(id: &str, country: &str) -> Value {
    json!({
        "id": id, "name": format!("Deal {id}"), "status": "Qualification", "account": "Andrew Test",
        "close_date": "2017-03-16", "type": "New Business", "country": country,
        "owner_name": "Andrew", "owner_email": "andrew@tray.io", "amount": 4500
    })
}

/// A notification's deliveries, read the way the admin API reads them (its own list).
pub fn deliveries_of(
    store: &Store,
    notification_id: u64,
) -> Vec<hookrelay::store::records::Delivery> {
    let n = store.notification(notification_id).expect("store readable");
    n.map(|n| n.deliveries)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| store.delivery(id).expect("store readable"))
        .collect()
}
