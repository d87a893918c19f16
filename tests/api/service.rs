//! Running as a systemd service (issue 4): readiness and watchdog over a fake notify socket,
//! journald-friendly logs, SIGHUP, and regions left at the shipped placeholder URL.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::binary::Harness;
use crate::fake_slack::FakeSlack;
use crate::helpers::{config, opportunity, spawn_with};

/// Reads notify messages until one contains `want`, or panics at the deadline.
fn wait_for_notify(socket: &UnixDatagram, want: &str, deadline: Duration) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {want:?} from the relay; got {seen:?}");
        socket.set_read_timeout(Some(left)).expect("timeout");
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = msg.contains(want);
            seen.push(msg);
            if found {
                return seen;
            }
        }
    }
}

#[test]
fn the_relay_tells_systemd_it_is_ready_feeds_the_watchdog_and_says_when_it_stops() {
    let mut h = Harness::new(&[]);
    let socket_path = h.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    h.env
        .push(("NOTIFY_SOCKET".into(), socket_path.display().to_string()));
    h.env.push(("WATCHDOG_USEC".into(), "400000".into()));
    let mut relay = h.start();
    let first = wait_for_notify(&socket, "READY=1", Duration::from_secs(20));
    assert!(first.iter().any(|m| m.contains("READY=1")), "{first:?}");
    // Twice, so it is a steady feed and not a one-off.
    wait_for_notify(&socket, "WATCHDOG=1", Duration::from_secs(5));
    wait_for_notify(&socket, "WATCHDOG=1", Duration::from_secs(5));
    relay.signal(libc::SIGTERM);
    wait_for_notify(&socket, "STOPPING=1", Duration::from_secs(20));
    assert!(relay.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn under_journald_lines_carry_a_priority_and_no_timestamp() {
    let mut h = Harness::new(&[]);
    h.env.push(("JOURNAL_STREAM".into(), "8:12345".into()));
    let mut relay = h.start();
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_exit(Duration::from_secs(20)).success());
    let log = relay.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "{line}"
        );
        assert!(!line.contains("[20"), "no timestamp of our own: {line}");
    }
}

#[test]
fn sighup_does_not_stop_the_relay_and_says_a_restart_applies_changes() {
    let mut h = Harness::new(&[]);
    let mut relay = h.start();
    relay.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !relay.stderr().contains("SIGHUP received") {
        assert!(
            Instant::now() < deadline,
            "no SIGHUP message: {}",
            relay.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent = crate::binary::agent(Duration::from_secs(5));
    let status = relay
        .post(&agent, "after-hup", "UK")
        .expect("still serving");
    assert_eq!(status, 202);
    relay.signal(libc::SIGTERM);
    assert!(relay.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn a_region_left_at_the_placeholder_url_queues_without_sending() {
    let slack = Arc::new(FakeSlack::start());
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let placeholder =
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
    let text = config(&slack, dir.path()).replacen(&slack.url("uk"), placeholder, 1);
    let app = spawn_with(&text, Arc::clone(&slack), dir);
    assert_eq!(app.post(&opportunity("held-1", "UK")).status, 202);
    assert_eq!(app.post(&opportunity("marker", "US")).status, 202);
    app.slack.wait_delivered("us", 1);
    // The UK message was due before the US one; it is still queued, and nothing was sent for it.
    assert_eq!(app.store.pending_by_region().unwrap().get("UK"), Some(&1));
    assert_eq!(slack.all().len(), 1);
}
