//! The store's disk failing for real: a small tmpfs that fills up under load and is then cleared,
//! and an `fdatasync` that fails (injected). The real binary, a real filesystem, a fake Slack.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::binary::{agent, wait_until, Harness, Relay, BIN};
use crate::helpers::opportunity;

/// A tmpfs mounted for one test and unmounted when dropped (before its folder is removed).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` (the test is skipped, and says so) where mounting is not allowed (not root).
    fn mount(path: &Path, size_mib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                path: path.to_path_buf(),
            }),
            Ok(o) => skip(&format!(
                "a tmpfs cannot be mounted here ({}); run the tests as root",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => skip(&format!("`mount` cannot run ({e})")),
        }
    }
}

/// Skips a test that needs root, except in CI (which runs as root): there it must run.
fn skip(why: &str) -> Option<Tmpfs> {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test: {why}"
    );
    eprintln!("skipped: {why}");
    None
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes a file until the filesystem says ENOSPC; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![7u8; chunk];
        while f.write_all(&buf).and_then(|()| f.sync_data()).is_ok() {}
    }
    path
}

/// Stops the sender thread when the test ends, by passing or by panicking.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the senders saw.
#[derive(Default)]
struct Seen {
    /// CRM ids answered 202.
    accepted: Vec<String>,
    /// 503 answers with `type: disk_full` and a `Retry-After`.
    disk_full: usize,
    /// Any other answer: (status, body).
    other: Vec<(u16, String)>,
}

/// One webhook; (status, body, Retry-After).
fn post(address: &str, agent: &ureq::Agent, id: &str) -> (u16, String, Option<String>) {
    let mut resp = agent
        .post(format!("{address}/hooks/salesforce"))
        .header("Content-Type", "application/json")
        .send(opportunity(id, "UK").to_string().as_bytes())
        .expect("the relay answers");
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), body, retry)
}

fn get(relay: &Relay, path: &str) -> (u16, String) {
    let mut resp = agent(Duration::from_secs(5))
        .get(format!("{}{path}", relay.address))
        .header(
            "Authorization",
            format!("Bearer {}", crate::helpers::ADMIN_TOKEN),
        )
        .call()
        .expect("the relay answers");
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (resp.status().as_u16(), body)
}

/// A sample's value in Prometheus text (`name value`, not `# HELP name …`); 0 if absent.
fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// How often each CRM id reached Slack.
fn posts_per_id(h: &Harness) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for r in h.slack.received("uk") {
        if let Some(id) = r.crm_id() {
            *n.entry(id).or_insert(0) += 1;
        }
    }
    n
}

/// Waits until every accepted id reached Slack, and checks that none reached it twice; returns
/// how long the wait took.
fn delivered_once_each(h: &Harness, accepted: &[String]) -> Duration {
    let drained = wait_until(
        "every accepted webhook delivered",
        Duration::from_secs(120),
        || {
            let n = posts_per_id(h);
            accepted.iter().all(|id| n.contains_key(id))
        },
    );
    let twice: Vec<_> = posts_per_id(h)
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    drained
}

fn store_check(h: &Harness) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["store", "check", "--config"])
        .arg(h.config_path())
        .current_dir(h.dir.path())
        .output()
        .expect("store check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_full_disk_holds_deliveries_and_the_relay_resumes_by_itself_once_space_is_freed() {
    // UK drains at 20/s, so that deliveries are under way when the disk fills: their outcomes
    // are what must not be lost.
    let mut h = Harness::new(&[
        (
            "min_free = \"1MiB\"",
            // Checkpoints only by size: none while full, so no deleted segment makes room.
            "min_free = \"6MiB\"\ncheckpoint_size = \"4MiB\"\ncheckpoint_interval = \"1h\"",
        ),
        (
            "rate = \"1000/s\"\nburst = 1000\n",
            "rate = \"20/s\"\nburst = 5\n",
        ),
    ]);
    let store_dir = h.dir.path().join("store");
    let Some(disk) = Tmpfs::mount(&store_dir, 64) else {
        return;
    };
    let mut relay = h.start();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let sender = {
        let (address, seen, stop) = (
            relay.address.clone(),
            Arc::clone(&seen),
            Arc::clone(&stop.0),
        );
        std::thread::spawn(move || {
            let agent = agent(Duration::from_secs(10));
            let mut n = 0;
            // Bounded: at most 20,000 requests, whatever happens.
            while !stop.load(Ordering::SeqCst) && n < 20_000 {
                n += 1;
                let id = format!("DISK{n:05}");
                let (status, body, retry) = post(&address, &agent, &id);
                let mut seen = seen.lock().unwrap();
                match status {
                    202 => seen.accepted.push(id),
                    503 if body.contains("\"disk_full\"") && retry.is_some() => seen.disk_full += 1,
                    _ => seen.other.push((status, body)),
                }
                drop(seen);
                if status == 503 {
                    // As a sender honouring Retry-After would, but quicker, to see recovery.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    wait_until("300 webhooks accepted", Duration::from_secs(60), || {
        seen.lock().unwrap().accepted.len() >= 300
    });

    // The disk fills up under load.
    let filler = fill(&disk.path);
    wait_until(
        "intake refusing with disk_full",
        Duration::from_secs(30),
        || seen.lock().unwrap().disk_full >= 20,
    );
    let (status, ready) = get(&relay, "/readyz");
    assert_eq!(status, 503, "{ready}");
    assert!(ready.contains("store's disk"), "{ready}");
    let (_, metrics) = get(&relay, "/metrics");
    let free = gauge(&metrics, "hookrelay_store_free_bytes");
    assert!(
        free < 6 << 20,
        "free space below the reserve: {free}\n{ready}"
    );
    assert_eq!(gauge(&metrics, "hookrelay_store_min_free_bytes"), 6 << 20);
    let (_, status_json) = get(&relay, "/v1/status");
    assert!(
        status_json.contains("\"accepting_webhooks\":false"),
        "{status_json}"
    );
    // While it stays full, messages must not be posted again and again (each post's outcome
    // could not be recorded): watch for a few seconds, as the bug showed itself each second.
    let during = Instant::now();
    while during.elapsed() < Duration::from_secs(3) {
        let twice: Vec<_> = posts_per_id(&h)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(
            twice.is_empty(),
            "posted more than once while full: {twice:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let full_at = seen.lock().unwrap().accepted.len();
    // The outcomes of the posts under way found no room in the log: the store was full, not
    // only below its reserve, and held its deliveries.
    let (_, metrics) = get(&relay, "/metrics");
    let (full_events, held) = (
        gauge(&metrics, "hookrelay_store_full_events_total"),
        gauge(&metrics, "hookrelay_delivery_held_passes_total"),
    );
    assert!(full_events >= 1 && held >= 1, "{metrics}");

    // Space is freed: intake and delivery come back without a restart.
    std::fs::remove_file(&filler).expect("free the disk");
    let freed = Instant::now();
    wait_until("a webhook accepted again", Duration::from_secs(10), || {
        seen.lock().unwrap().accepted.len() > full_at
    });
    let intake_back = freed.elapsed();
    wait_until("/readyz 200 again", Duration::from_secs(10), || {
        get(&relay, "/readyz").0 == 200
    });
    let ready_back = freed.elapsed();
    let sent_before = h.slack.received("uk").len();
    wait_until("deliveries resumed", Duration::from_secs(10), || {
        h.slack.received("uk").len() > sent_before
    });
    let delivery_back = freed.elapsed();
    drop(stop);
    sender.join().unwrap();

    let seen = seen.lock().unwrap();
    assert!(
        seen.other.is_empty(),
        "unexpected answers: {:?}",
        seen.other
    );
    let accepted = seen.accepted.clone();
    let drained = delivered_once_each(&h, &accepted);
    eprintln!(
        "disk full: {} accepted, {} refused with disk_full; after freeing space intake was back in {intake_back:?}, /readyz in {ready_back:?}, delivery in {delivery_back:?}; all delivered {drained:?} later, each once; the store was full {full_events} times and the scheduler held {held} passes",
        accepted.len(),
        seen.disk_full
    );
    drop(seen);

    relay.terminate(Duration::from_secs(30));
    let (code, report) = store_check(&h);
    assert_eq!(code, 0, "{report}");
    drop(disk);
}

#[test]
fn a_failed_fdatasync_stops_the_relay_with_an_error_and_the_restart_delivers_every_202() {
    let mut h = Harness::new(&[]);
    h.env
        .push(("HOOKRELAY_TEST_FAIL_SYNC_AFTER".into(), "30".into()));
    let mut relay = h.start();
    let agent = agent(Duration::from_secs(10));
    let mut accepted = Vec::new();
    for n in 0..100 {
        let id = format!("SYNC{n:03}");
        match relay.post(&agent, &id, "UK") {
            Ok(202) => accepted.push(id),
            Ok(503) | Err(_) => break,
            Ok(other) => panic!("answered {other} to {id}"),
        }
    }
    // Outcomes take syncs too, so fewer than 30 webhooks got theirs before the failure.
    assert!(
        !accepted.is_empty() && accepted.len() <= 30,
        "{} accepted",
        accepted.len()
    );
    let status = relay.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{status}");
    let stderr = relay.stderr();
    assert!(
        stderr.contains("ERROR") && stderr.contains("fdatasync of the log failed"),
        "{stderr}"
    );

    h.env.clear();
    let _relay = h.start();
    h.slack.wait_until(
        Duration::from_secs(30),
        "every acknowledged webhook delivered after the restart",
        |all| {
            accepted.iter().all(|id| {
                all.iter()
                    .any(|r| r.crm_id().as_deref() == Some(id.as_str()))
            })
        },
    );
    // Only a post under way when the log broke can be repeated (its outcome was not
    // recorded): at most one, as the relay sends one message per region at a time.
    let n = posts_per_id(&h);
    let repeated = n.values().filter(|c| **c > 1).count();
    assert!(repeated <= 1 && n.values().all(|c| *c <= 2), "{n:?}");
}

#[test]
fn with_no_room_for_sled_nothing_hangs_nothing_is_sent_and_the_relay_resumes_when_space_returns() {
    // sled's disk fills while the log's (its own tmpfs, at `store/wal`) still has room: the
    // applier must wait, and everything that would wait on it must answer instead.
    let mut h = Harness::new(&[
        (
            "min_free = \"1MiB\"",
            "min_free = \"0\"\ncheckpoint_interval = \"1h\"",
        ),
        (
            "rate = \"1000/s\"\nburst = 1000\n",
            "rate = \"20/s\"\nburst = 5\n",
        ),
    ]);
    // Only what each record needs is allocated ahead of sled's file, so it runs out soon.
    h.env.push(("HOOKRELAY_TEST_SLED_AHEAD".into(), "0".into()));
    let store_dir = h.dir.path().join("store");
    let Some(sled_disk) = Tmpfs::mount(&store_dir, 32) else {
        return;
    };
    let Some(log_disk) = Tmpfs::mount(&store_dir.join("wal"), 64) else {
        return;
    };
    h.slack.script(
        "us",
        [crate::fake_slack::Reply::Status(400, "invalid_payload")],
    );
    let mut relay = h.start();
    let agent = agent(Duration::from_secs(10));
    assert_eq!(post(&relay.address, &agent, "DEAD1").0, 202);
    let us = opportunity("DEADUS", "US").to_string();
    let status = agent
        .post(format!("{}/hooks/salesforce", relay.address))
        .header("Content-Type", "application/json")
        .send(us.as_bytes())
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let mut dead_id = String::new();
    wait_until("a dead letter", Duration::from_secs(20), || {
        let (_, body) = get(&relay, "/v1/dead-letters");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        dead_id = v["items"][0]["id"].as_str().unwrap_or("").to_string();
        !dead_id.is_empty()
    });

    let filler = fill(&sled_disk.path);
    let mut accepted = vec!["DEAD1".to_string()];
    for n in 0..20_000 {
        let id = format!("ROOM{n:05}");
        match post(&relay.address, &agent, &id) {
            (202, _, _) => accepted.push(id),
            (503, body, Some(_)) if body.contains("\"disk_full\"") => break,
            other => panic!("{id} got {other:?}"),
        }
    }
    let (status, ready) = get(&relay, "/readyz");
    assert_eq!(status, 503, "{ready}");
    assert!(ready.contains("before it applies the log"), "{ready}");

    // Nothing waits on the applier: reads and the writer answer at once.
    let started = Instant::now();
    let (status, body) = get(&relay, "/v1/notifications/1");
    assert_eq!(status, 503, "{body}");
    let mut resp = agent
        .post(format!(
            "{}/v1/dead-letters/{dead_id}/replay",
            relay.address
        ))
        .header(
            "Authorization",
            format!("Bearer {}", crate::helpers::ADMIN_TOKEN),
        )
        .send(&[][..])
        .unwrap();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(resp.status().as_u16(), 503, "{body}");
    let answered = started.elapsed();
    assert!(
        answered < Duration::from_secs(3),
        "answered after {answered:?}"
    );
    // The status page, where an operator looks, renders and says why.
    let (status, page) = get(&relay, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("before it applies the log"), "{page}");

    // And nothing is sent whose outcome could not be applied.
    let before = h.slack.received("uk").len();
    let during = Instant::now();
    while during.elapsed() < Duration::from_secs(2) {
        let twice: Vec<_> = posts_per_id(&h)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(twice.is_empty(), "posted more than once: {twice:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = h.slack.received("uk").len() - before;
    assert!(sent <= 1, "{sent} messages went out while sled had no room");

    std::fs::remove_file(&filler).expect("free the disk");
    let back = wait_until("/readyz 200 again", Duration::from_secs(10), || {
        get(&relay, "/readyz").0 == 200
    });
    let drained = delivered_once_each(&h, &accepted);
    eprintln!(
        "no room for sled: {} accepted before intake stopped, reads and a replay answered 503 in {answered:?}; ready {back:?} after freeing space, all delivered {drained:?} later, each once",
        accepted.len()
    );
    relay.terminate(Duration::from_secs(30));
    let (code, report) = store_check(&h);
    assert_eq!(code, 0, "{report}");
    drop(log_disk);
    drop(sled_disk);
}

#[test]
fn a_relay_started_on_a_full_disk_waits_and_starts_by_itself_once_there_is_room() {
    let mut h = Harness::new(&[]);
    let store_dir = h.dir.path().join("store");
    let Some(disk) = Tmpfs::mount(&store_dir, 32) else {
        return;
    };
    let mut relay = h.start();
    let agent = agent(Duration::from_secs(10));
    for id in ["FULL1", "FULL2"] {
        assert_eq!(relay.post(&agent, id, "UK").unwrap(), 202);
    }
    relay.terminate(Duration::from_secs(30));

    // The box restarts with the disk full: sled cannot even write its start-up snapshot.
    let filler = fill(&disk.path);
    let mut relay = Relay::spawn(
        &h.config_path(),
        h.dir.path(),
        2,
        relay.port(),
        &h.env,
        None,
    );
    wait_until(
        "the start waiting for room",
        Duration::from_secs(30),
        || relay.stderr().contains("so the store cannot be opened"),
    );
    assert!(
        relay.child.try_wait().unwrap().is_none(),
        "{}",
        relay.stderr()
    );

    std::fs::remove_file(&filler).expect("free the disk");
    relay
        .wait_ready(Duration::from_secs(30))
        .expect("the relay starts once there is room");
    assert_eq!(relay.post(&agent, "FULL3", "UK").unwrap(), 202);
    h.slack
        .wait_until(Duration::from_secs(30), "all three delivered", |all| {
            ["FULL1", "FULL2", "FULL3"]
                .iter()
                .all(|id| all.iter().any(|r| r.crm_id().as_deref() == Some(*id)))
        });
    relay.terminate(Duration::from_secs(30));
    let (code, report) = store_check(&h);
    assert_eq!(code, 0, "{report}");
    drop(disk);
}
