//! Crash and signal tests against the real binary.
//!
//! The relay promises that a 202 means the notification is on disk: a `kill -9` at any moment
//! loses nothing that was acknowledged, and repeats at most the Slack posts that were in flight
//! (one per worker). These tests run `hookrelay serve` as a child process against the
//! in-process fake Slack, load it, kill or stop it, restart it on the same store and config, and
//! check what Slack received. Each child's stdout/stderr go to files in the test's temp dir; the
//! stderr of every run is printed when a test fails.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::binary::{agent, replace_once, Harness, BIN, WORKERS};
use crate::fake_slack::{Received, Reply};

/// Countries the load cycles through, with the fake Slack channel each must reach.
const COUNTRIES: [(&str, &str); 3] = [("UK", "uk"), ("US", "us"), ("EU", "eu")];

/// `c-<thread>-<n>` → the channel of country `COUNTRIES[n % 3]`.
fn channel_of(id: &str) -> &'static str {
    let n: usize = id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected id {id:?}"));
    COUNTRIES[n % COUNTRIES.len()].1
}

fn id_for(prefix: &str, thread: usize, n: usize) -> (String, &'static str) {
    (
        format!("{prefix}-{thread}-{n}"),
        COUNTRIES[n % COUNTRIES.len()].0,
    )
}

/// The channel a request was posted to (`/services/T0/B0/uk` → `uk`).
fn channel(r: &Received) -> &str {
    r.path.rsplit('/').next().unwrap_or("")
}

/// Ids answered 202, shared by the load threads; the main thread waits on the count.
#[derive(Default)]
struct Acks {
    ids: Mutex<Vec<String>>,
    more: Condvar,
}

impl Acks {
    fn push(&self, id: String) {
        self.ids.lock().unwrap().push(id);
        self.more.notify_all();
    }

    fn len(&self) -> usize {
        self.ids.lock().unwrap().len()
    }

    fn wait_for(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut ids = self.ids.lock().unwrap();
        while ids.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} acknowledgements after {timeout:?}",
                ids.len()
            );
            ids = self.more.wait_timeout(ids, left).unwrap().0;
        }
    }
}

/// Every 200 Slack gave, checked to be on the channel of its id's country; returns how many
/// times each id was delivered.
fn deliveries_per_id(received: &[Received]) -> HashMap<String, usize> {
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in received.iter().filter(|r| r.delivered()) {
        let id = r.crm_id().expect("every message names its CRM id");
        assert_eq!(
            channel(r),
            channel_of(&id),
            "{id} was delivered to the wrong channel"
        );
        *per_id.entry(id).or_default() += 1;
    }
    per_id
}

fn all_delivered(received: &[Received], ids: &[String]) -> bool {
    let delivered: HashSet<(&str, String)> = received
        .iter()
        .filter(|r| r.delivered())
        .filter_map(|r| Some((channel(r), r.crm_id()?)))
        .collect();
    ids.iter()
        .all(|id| delivered.contains(&(channel_of(id), id.clone())))
}

#[test]
fn acknowledged_notifications_survive_sigkill() {
    const THREADS: usize = 16;
    const SCRIPT_AFTER: usize = 150;
    const KILL_AFTER: usize = 400;
    const PACE_AFTER: usize = 1500;
    let test_started = Instant::now();
    let mut h = Harness::new(&[("max_attempts = 4", "max_attempts = 10")]);
    let mut first = h.start();

    let acks = Acks::default();
    let stop = AtomicBool::new(false);
    let failed = AtomicUsize::new(0);
    let other: Mutex<HashMap<u16, usize>> = Mutex::default();
    let relay = &first;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (acks, stop, failed, other) = (&acks, &stop, &failed, &other);
            s.spawn(move || {
                let agent = agent(Duration::from_secs(10));
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (id, country) = id_for("c", t, n);
                    n += 1;
                    // Load, not a flood: on a busy 2-core machine (the whole suite at once) an
                    // unpaced flood queues thousands of messages before the kill, and catching
                    // up on them says nothing more about the crash. Past this many, each
                    // thread goes on posting at a steady pace until the kill.
                    if acks.len() >= PACE_AFTER {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    match relay.post(&agent, &id, country) {
                        Ok(202) => acks.push(id),
                        Ok(status) => *other.lock().unwrap().entry(status).or_default() += 1,
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Part-way through, EU's Slack starts failing (500s and dropped connections), so at
            // the kill some deliveries are waiting for a retry, not just queued.
            acks.wait_for(SCRIPT_AFTER, Duration::from_secs(60));
            let scripted_at = h.slack.all().len();
            h.slack.script(
                "eu",
                [
                    Reply::Status(500, "internal_error"),
                    Reply::Drop,
                    Reply::Ok,
                    Reply::Status(503, "service_unavailable"),
                    Reply::Ok,
                    Reply::Status(500, "internal_error"),
                    Reply::Drop,
                    Reply::Ok,
                    Reply::Status(500, "internal_error"),
                ],
            );
            acks.wait_for(KILL_AFTER, Duration::from_secs(60));
            h.slack
                .wait_until(Duration::from_secs(30), "two EU failures", |all| {
                    all[scripted_at.min(all.len())..]
                        .iter()
                        .filter(|r| channel(r) == "eu" && !r.delivered())
                        .count()
                        >= 2
                });
        }));
        // Killed while the load threads keep posting; their requests fail from now on.
        // SAFETY: as in `Relay::signal`.
        unsafe { libc::kill(relay.pid(), libc::SIGKILL) };
        stop.store(true, Ordering::SeqCst);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
    first.child.wait().expect("reap the killed relay");
    let kill_at = Instant::now();
    let acked = acks.ids.into_inner().unwrap();
    let seen_before_restart = h.slack.all();
    let delivered_before = seen_before_restart.iter().filter(|r| r.delivered()).count();
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked_set.len(), acked.len(), "each id is posted once");

    let mut second = h.start();
    let received = h.slack.wait_until(
        Duration::from_secs(120),
        "every acknowledged notification delivered to its channel",
        |all| all_delivered(all, &acked),
    );
    let caught_up = kill_at.elapsed();
    let stop_took = second.terminate(Duration::from_secs(20));

    // Every Slack request, now that no relay runs.
    let received_all = h.slack.all();
    assert!(received_all.len() >= received.len());
    let per_id = deliveries_per_id(&received_all);
    for id in &acked {
        assert!(
            per_id.contains_key(id),
            "{id} was acknowledged but never delivered"
        );
    }
    let duplicates: Vec<(&String, &usize)> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    let extra: usize = duplicates.iter().map(|(_, n)| **n - 1).sum();
    let unacked_delivered = per_id.keys().filter(|id| !acked_set.contains(id)).count();
    let failures = received_all.iter().filter(|r| !r.delivered()).count();
    eprintln!(
        "sigkill: {} acknowledged, {} posts failed, other statuses {:?}; Slack had {} deliveries \
         before the kill, {} in all ({} failed attempts); {} delivered ids were stored but not \
         acknowledged; {} duplicate deliveries {:?}; caught up {caught_up:?} after the kill; \
         SIGTERM stop took {stop_took:?}; test took {:?}",
        acked.len(),
        failed.load(Ordering::Relaxed),
        other.lock().unwrap(),
        delivered_before,
        received_all.iter().filter(|r| r.delivered()).count(),
        failures,
        unacked_delivered,
        extra,
        duplicates,
        test_started.elapsed(),
    );
    assert!(
        extra <= WORKERS,
        "{extra} duplicate deliveries after one kill, more than the {WORKERS} that can be in flight: {duplicates:?}"
    );
}

#[test]
fn sigterm_stops_gracefully_and_loses_nothing() {
    let test_started = Instant::now();
    // Long backoff: EU's failed first attempt is still waiting for its retry at the SIGTERM.
    let mut h = Harness::new(&[
        ("initial_backoff = \"20ms\"", "initial_backoff = \"1s\""),
        ("max_backoff = \"100ms\"", "max_backoff = \"2s\""),
    ]);
    h.slack.script("eu", [Reply::Status(500, "internal_error")]);
    let mut first = h.start();
    let agent = agent(Duration::from_secs(10));
    let ids: Vec<String> = (0..12)
        .map(|n| {
            let (id, country) = id_for("t", 0, n);
            let status = first.post(&agent, &id, country).expect("relay answers");
            assert_eq!(status, 202, "{id}");
            id
        })
        .collect();
    h.slack
        .wait_until(Duration::from_secs(20), "EU's failed attempt", |all| {
            all.iter().any(|r| channel(r) == "eu" && !r.delivered())
        });
    let first_stop = first.terminate(Duration::from_secs(20));
    let delivered_before = h.slack.all().iter().filter(|r| r.delivered()).count();

    let mut second = h.start();
    h.slack.wait_until(
        Duration::from_secs(30),
        "every acknowledged notification delivered to its channel",
        |all| all_delivered(all, &ids),
    );
    let second_stop = second.terminate(Duration::from_secs(20));

    let per_id = deliveries_per_id(&h.slack.all());
    for id in &ids {
        assert_eq!(
            per_id.get(id),
            Some(&1),
            "{id} delivered once across both runs"
        );
    }
    assert_eq!(per_id.len(), ids.len(), "nothing else was delivered");
    // The failed attempt and the retry were logged, without the webhook URL's secret part.
    for log in [first.stderr(), second.stderr()] {
        assert!(
            !log.contains("/services/T0/B0/"),
            "a webhook URL leaked into the log:\n{log}"
        );
    }
    assert!(
        first.stderr().contains("region EU"),
        "the failure was logged:\n{}",
        first.stderr()
    );
    eprintln!(
        "sigterm: {} acknowledged, {delivered_before} delivered before the stop; stops took \
         {first_stop:?} and {second_stop:?}; test took {:?}",
        ids.len(),
        test_started.elapsed()
    );
}

fn check_config(path: &Path) -> std::process::Output {
    let cwd = tempfile::tempdir().expect("temp dir");
    Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(path)
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .expect("run hookrelay check-config")
}

#[test]
fn check_config_rejects_a_bad_file_naming_key_and_value() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let out = check_config(&shipped);
    assert!(
        out.status.success(),
        "the shipped config is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(&shipped).expect("read config.toml");
    let dir = tempfile::tempdir().expect("temp dir");

    let bad_timeout = dir.path().join("bad-timeout.toml");
    std::fs::write(
        &bad_timeout,
        // At a line's start: `client_body_timeout = "10s"` in [server] ends the same way.
        replace_once(&text, "\ntimeout = \"10s\"", "\ntimeout = \"ten seconds\""),
    )
    .unwrap();
    let out = check_config(&bad_timeout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad timeout is accepted: {stderr}");
    assert!(
        stderr.contains("delivery.timeout") && stderr.contains("ten seconds"),
        "the error does not name the key and the value: {stderr}"
    );

    let unknown_key = dir.path().join("unknown-key.toml");
    std::fs::write(
        &unknown_key,
        replace_once(&text, "[delivery]\n", "[delivery]\nmax_attemps = 3\n"),
    )
    .unwrap();
    let out = check_config(&unknown_key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an unknown key is accepted: {stderr}"
    );
    assert!(
        stderr.contains("max_attemps"),
        "the error does not name the unknown key: {stderr}"
    );
}
