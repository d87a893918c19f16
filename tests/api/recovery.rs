//! Recovery of the write-ahead log: kills at the two moments start-up must survive (during a
//! checkpoint, during replay), a log cut at every byte of its last record, and damage in the
//! middle of the log, which must stop the relay with a clear message instead of skipping it.
//!
//! The stalls come from `HOOKRELAY_TEST_STALL_AT`: the relay logs a line and parks at exactly that
//! point; the test waits for the line and sends SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hookrelay::sources::SourceKind;
use hookrelay::store::journal::{Accepted, Idempotency, Journal, NewNotification};
use hookrelay::store::{Store, StoreOptions};

use crate::binary::{agent, Harness, Relay, BIN};
use crate::helpers::ADMIN_TOKEN;

/// Waits until the relay's stderr contains `text`.
fn wait_for_log(relay: &mut Relay, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if relay.stderr().contains(text) {
            return;
        }
        if let Some(status) = relay.child.try_wait().expect("try_wait") {
            panic!("the relay exited ({status}) before logging {text:?}");
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log after {timeout:?}:\n{}",
            relay.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(relay: &mut Relay) {
    relay.signal(libc::SIGKILL);
    relay.child.wait().expect("reap the killed relay");
}

/// Posts opportunities `prefix-0..n` (countries cycling UK/US/EU); all must get 202.
fn post_all(relay: &Relay, prefix: &str, n: usize) -> Vec<String> {
    let agent = agent(Duration::from_secs(10));
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let country = ["UK", "US", "EU"][i % 3];
            assert_eq!(relay.post(&agent, &id, country).expect("post"), 202);
            id
        })
        .collect()
}

/// Waits until the relay's queue holds `n` deliveries (every other outcome is recorded), from
/// `/metrics`.
fn wait_queue(relay: &Relay, n: usize, timeout: Duration) {
    let agent = agent(Duration::from_secs(5));
    let deadline = Instant::now() + timeout;
    loop {
        let text = agent
            .get(format!("{}/metrics", relay.address))
            .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let depth: f64 = text
            .lines()
            .filter(|l| l.starts_with("hookrelay_queue_depth{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if text.contains("hookrelay_queue_depth") && depth == n as f64 {
            return;
        }
        assert!(Instant::now() < deadline, "the queue did not empty: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The shipped config's placeholder: a region with it keeps its messages queued.
const PLACEHOLDER: &str =
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

/// Holds region UK's messages in the queue (placeholder URL) until [`release_uk`].
fn hold_uk(h: &mut Harness) {
    let url = h.slack.url("uk");
    h.edit_config(&url, PLACEHOLDER);
}

fn release_uk(h: &mut Harness) {
    let url = h.slack.url("uk");
    h.edit_config(PLACEHOLDER, &url);
}

/// Slack's deliveries of each id; panics on an id delivered twice.
fn delivered_once(h: &Harness, ids: &[String], timeout: Duration) {
    h.slack
        .wait_until(timeout, "every acknowledged id delivered", |all| {
            ids.iter().all(|id| {
                all.iter()
                    .any(|r| r.delivered() && r.crm_id().as_deref() == Some(id.as_str()))
            })
        });
    for id in ids {
        let n = h
            .slack
            .all()
            .iter()
            .filter(|r| r.delivered() && r.crm_id().as_deref() == Some(id.as_str()))
            .count();
        assert_eq!(n, 1, "{id} was posted {n} times");
    }
}

#[test]
fn a_kill_during_a_checkpoint_loses_nothing_and_posts_nothing_twice() {
    let mut h = Harness::new(&[("[store]\n", "[store]\ncheckpoint_interval = \"300ms\"\n")]);
    // Nothing is posted before the kill (UK is held, and the stall stops the rest), so every
    // id must arrive exactly once after it.
    hold_uk(&mut h);
    h.env = vec![("HOOKRELAY_TEST_STALL_AT".into(), "checkpoint".into())];
    let mut first = h.start();
    let mut ids = post_all(&first, "ckpt-a", 30);
    wait_for_log(
        &mut first,
        "in a checkpoint of record",
        Duration::from_secs(30),
    );
    // The applier is parked inside the checkpoint; intake still writes the log.
    ids.extend(post_all(&first, "ckpt-b", 30));
    kill(&mut first);
    release_uk(&mut h);

    h.env.clear();
    let mut second = h.start();
    delivered_once(&h, &ids, Duration::from_secs(60));
    let more = post_all(&second, "ckpt-c", 6);
    delivered_once(&h, &more, Duration::from_secs(30));
    second.terminate(Duration::from_secs(20));
}

#[test]
fn a_kill_during_replay_loses_nothing_and_posts_nothing_twice() {
    // No checkpoint in the first run: everything it did is replayed from the log.
    let mut h = Harness::new(&[("[store]\n", "[store]\ncheckpoint_interval = \"1h\"\n")]);
    hold_uk(&mut h);
    let mut first = h.start();
    let ids = post_all(&first, "replay", 30);
    // US and EU are delivered and their outcomes recorded; UK's wait in the queue.
    let sent: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, id)| id.clone())
        .collect();
    delivered_once(&h, &sent, Duration::from_secs(30));
    wait_queue(&first, 10, Duration::from_secs(30));
    kill(&mut first);

    h.env = vec![("HOOKRELAY_TEST_STALL_AT".into(), "replay".into())];
    let mut second = h.start();
    wait_for_log(
        &mut second,
        "while replaying the log",
        Duration::from_secs(30),
    );
    kill(&mut second);

    release_uk(&mut h);
    h.env.clear();
    let mut third = h.start();
    wait_for_log(&mut third, "Replaying", Duration::from_secs(30));
    delivered_once(&h, &ids, Duration::from_secs(60));
    third.terminate(Duration::from_secs(20));
}

fn new(id: &str) -> NewNotification {
    NewNotification {
        source: "salesforce".into(),
        kind: SourceKind::Opportunity,
        idempotency: Idempotency::Versioned(id.into()),
        raw: format!(r#"{{"id":"{id}","name":"Deal {id}","country":"UK"}}"#),
        region: "UK".into(),
        url: None,
        also: Vec::new(),
        web_api: false,
        on_status: None,
        received_at_ms: 1_700_000_000_000,
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

fn segment(store: &Path) -> PathBuf {
    let segments = hookrelay::store::wal::segments(&hookrelay::store::wal::dir(store)).unwrap();
    assert_eq!(segments.len(), 1);
    segments[0].1.clone()
}

#[test]
fn a_log_cut_at_every_byte_of_its_last_record_recovers_every_earlier_record() {
    // A log of three records, copied as the disk had it (a kill would leave the same bytes).
    let source = tempfile::tempdir().unwrap();
    let store = Store::open_with(source.path(), options()).unwrap();
    let (journal, writer) = Journal::start(store, None).unwrap();
    journal.accept_blocking(new("a")).unwrap();
    journal.accept_blocking(new("b")).unwrap();
    let last_start = std::fs::metadata(segment(source.path())).unwrap().len() as usize;
    let Accepted::New(c_id) = journal.accept_blocking(new("c")).unwrap() else {
        panic!("c is new")
    };
    let log = std::fs::read(segment(source.path())).unwrap();
    journal.close();
    writer.join().unwrap();

    for cut in last_start..=log.len() {
        let dir = tempfile::tempdir().unwrap();
        let wal = hookrelay::store::wal::dir(dir.path());
        std::fs::create_dir_all(&wal).unwrap();
        let name = segment(source.path()).file_name().unwrap().to_owned();
        std::fs::write(wal.join(name), &log[..cut]).unwrap();
        // sled as it was before any checkpoint: empty, so everything comes from the log.
        let store = Store::open_with(dir.path(), options()).unwrap();
        let (journal, writer) = Journal::start(store.clone(), None)
            .unwrap_or_else(|e| panic!("start refused a log cut at byte {cut}: {e}"));
        let a = store.find_external("salesforce", "a").unwrap();
        let b = store.find_external("salesforce", "b").unwrap();
        assert!(a.is_some() && b.is_some(), "cut at {cut} lost a or b");
        let c = store.find_external("salesforce", "c").unwrap();
        assert_eq!(c.is_some(), cut == log.len(), "cut at {cut}: c is {c:?}");
        // The relay goes on: a new notification gets a fresh id, never one the log gave out.
        let Accepted::New(d) = journal.accept_blocking(new("d")).unwrap() else {
            panic!("d is new after a cut at {cut}")
        };
        assert!(d > b.unwrap(), "cut at {cut}: id {d} reused");
        assert!(cut < log.len() || d > c_id);
        assert_eq!(
            journal.pending_by_target().get("UK").copied(),
            Some(if c.is_some() { 4 } else { 3 })
        );
        journal.close();
        writer.join().unwrap();
    }
}

#[test]
fn damage_in_the_middle_of_the_log_stops_the_start_and_store_check_says_where() {
    let mut h = Harness::new(&[("[store]\n", "[store]\ncheckpoint_interval = \"1h\"\n")]);
    hold_uk(&mut h);
    let mut first = h.start();
    post_all(&first, "damage", 3);
    kill(&mut first);
    let store = h.dir.path().join("store");
    let path = segment(&store);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff; // inside the first record; the later ones are intact
    std::fs::write(&path, &bytes).unwrap();

    let check = Command::new(BIN)
        .args(["store", "check", "--config"])
        .arg(h.config_path())
        .current_dir(h.dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(
        report.contains("DAMAGED") && report.contains("checksum mismatch"),
        "{report}"
    );
    assert!(report.contains(&path.display().to_string()), "{report}");

    let serve = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(h.config_path())
        .current_dir(h.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        !serve.status.success(),
        "the relay started over damage: {stderr}"
    );
    assert!(
        stderr.contains("is damaged at byte 0") && stderr.contains("hookrelay store check"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the damaged log was changed"
    );
}
