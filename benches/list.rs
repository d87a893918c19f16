//! Filtered notification lists on a big store: `GET /v1/notifications?…` with 1,000,000 stored
//! notifications (`LIST_BENCH_N` to change it). Target: a filtered page in under 50 ms.
//!
//! The store is filled through the journal, as intake and the workers fill it: notifications
//! over three sources (each through `accept_blocking`, from 16 threads), then their outcomes
//! (`Journal::record`): 98% delivered, 1% dead letters, 1% left pending. The relay is then
//! started on that store (its regions on Slack's placeholder URL, so nothing is sent) and each
//! query is asked `ROUNDS` times over HTTP, as the CLI and the status page ask. The median and
//! the slowest answer are printed per query.
//!
//! `cargo bench --bench list` (about two minutes for the fill on 2 cores).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrelay::config::Settings;
use hookrelay::sources::SourceKind;
use hookrelay::startup::Application;
use hookrelay::store::journal::{Accepted, DeliveryUpdate, Idempotency, Journal, NewNotification};
use hookrelay::store::records::{Delivery, DeliveryState, MessageKind};
use hookrelay::store::Store;

const SOURCES: [&str; 3] = ["salesforce", "crm_eu", "crm_us"];
const THREADS: u64 = 16;
const ROUNDS: usize = 25;
const TOKEN: &str = "list-bench-admin-token-0123456789";
const PLACEHOLDER: &str =
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
const EXAMPLE: &str = r#"{"id":"ID","name":"Deal ID","status":"Qualification","account":"Andrew Test","close_date":"2017-03-16","type":"New Business","country":"UK","owner_name":"Andrew","owner_email":"andrew@tray.io","amount":4500}"#;

fn config(store: &std::path::Path) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = {:?}\nmax_pending = 0\n[admin]\ntokens = [\"{TOKEN}\"]\n",
        store.display().to_string()
    );
    for s in SOURCES {
        text.push_str(&format!("[sources.{s}]\nkind = \"opportunity\"\n"));
    }
    text.push_str(&format!(
        "[regions.UK]\nwebhook_url = \"{PLACEHOLDER}\"\ncountries = [\"UK\"]\n"
    ));
    text
}

/// What notification `i` becomes: most delivered, every hundredth dead, the next one pending.
fn fate(i: u64) -> Option<DeliveryState> {
    match i % 100 {
        0 => Some(DeliveryState::Dead {
            at_ms: hookrelay::store::now_ms(),
            reason: "HTTP 400 invalid_blocks".into(),
        }),
        1 => None,
        _ => Some(DeliveryState::Delivered {
            at_ms: hookrelay::store::now_ms(),
        }),
    }
}

fn fill(journal: &Journal, total: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (journal, next) = (journal.clone(), Arc::clone(&next));
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let ext = format!("006B{i:08}");
                let received = hookrelay::store::now_ms();
                let new = NewNotification {
                    source: SOURCES[(i % 3) as usize].into(),
                    kind: SourceKind::Opportunity,
                    idempotency: Idempotency::Versioned(ext.clone()),
                    raw: EXAMPLE.replace("ID", &ext),
                    region: "UK".into(),
                    url: None,
                    also: Vec::new(),
                    received_at_ms: received,
                    web_api: false,
                    on_status: None,
                };
                let Ok(Accepted::New(id)) = journal.accept_blocking(new) else {
                    panic!("notification {i} was not stored as new");
                };
                let Some(state) = fate(i) else { continue };
                // The notification's first delivery has the next id.
                let delivery = Delivery {
                    id: id + 1,
                    notification_id: id,
                    region: "UK".into(),
                    url: None,
                    message: MessageKind::Full,
                    created_at_ms: received,
                    attempts: 1,
                    state,
                    history: Vec::new(),
                    posted: None,
                    replayed_as: None,
                    digest: None,
                };
                journal
                    .record(DeliveryUpdate {
                        delivery,
                        previous_due_ms: Some(received),
                        pause_region_until_ms: None,
                        pause_region_reason: None,
                        source: SOURCES[(i % 3) as usize].into(),
                    })
                    .expect("outcome recorded");
                if i % 100_000 == 0 {
                    eprintln!("  {i} stored after {:?}", started.elapsed());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("filler thread");
    }
    eprintln!(
        "filled {total} notifications with outcomes in {:?}",
        started.elapsed()
    );
}

fn main() {
    let total: u64 = std::env::var("LIST_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("store");
    let text = config(&store_path);
    {
        let settings = Settings::parse(&text).expect("bench config");
        let store = Store::open_with(&store_path, settings.store.options.clone()).expect("store");
        let (journal, writer) = Journal::start(store, None).expect("journal");
        fill(&journal, total);
        journal.close();
        writer.join().expect("journal thread");
    }
    let since = hookrelay::store::now_ms().saturating_sub(60_000);
    let settings = Settings::parse(&text).expect("bench config");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).expect("relay starts");
            tx.send((app.port(), app.handle())).expect("bench waits");
            app.run_until_stopped().await
        })
    });
    let (port, handle) = rx.recv().expect("relay started");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let middle = total / 2;
    let queries = [
        "limit=50".to_string(),
        "source=crm_eu&limit=50".to_string(),
        "state=dead&limit=50".to_string(),
        "state=pending&source=crm_us&limit=50".to_string(),
        "state=delivered&source=salesforce&limit=50".to_string(),
        // Across sources: the sources' ranges merged, and delivered as neither pending nor dead.
        "state=pending&limit=50".to_string(),
        "state=delivered&limit=50".to_string(),
        format!("external_id=006B{middle:08}"),
        format!("since={since}&state=dead&limit=50"),
        format!("state=dead&limit=50&cursor={}", total), // a later page
    ];
    println!("{total} stored notifications; {ROUNDS} requests per query (median / slowest):");
    for q in &queries {
        let url = format!("http://127.0.0.1:{port}/v1/notifications?{q}");
        let mut times = Vec::with_capacity(ROUNDS);
        let mut items = 0;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let mut resp = agent
                .get(&url)
                .header("Authorization", format!("Bearer {TOKEN}"))
                .call()
                .expect("list answers");
            let text = resp.body_mut().read_to_string().expect("body");
            let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            times.push(started.elapsed());
            items = body["items"].as_array().map_or(0, Vec::len);
        }
        times.sort();
        println!(
            "  {q:<45} {items:>3} items  median {:>7.2} ms  slowest {:>7.2} ms",
            times[ROUNDS / 2].as_secs_f64() * 1000.0,
            times[ROUNDS - 1].as_secs_f64() * 1000.0
        );
    }
    actix_web::rt::System::new().block_on(handle.stop(true));
}
