//! Slow clients against the real binary (issue 15): with systemd's default open-file limit
//! (soft 1,024), 1,100 connections stalled inside their bodies used to make `accept` fail and
//! every real sender time out. Now the relay raises its soft limit at start, and a body must
//! arrive within `server.client_body_timeout` (408 JSON, connection closed, nothing stored).
//!
//! Everything is on loopback; the stalled sockets are closed when the test ends and the
//! harness kills the child.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{agent, wait_until, Harness, Relay};
use crate::helpers::ADMIN_TOKEN;

/// More than systemd's default soft limit of 1,024 open files.
const STALLED: usize = 1_100;
/// Real senders posting while the stalled connections are held.
const SENDERS: usize = 20;
/// What each real sender must get its 202 within.
const PROMPT: Duration = Duration::from_secs(1);
/// systemd's default `LimitNOFILE=` for services: soft 1,024, hard 524,288.
const SYSTEMD_SOFT: libc::rlim_t = 1024;
const SYSTEMD_HARD: libc::rlim_t = 524_288;

/// Raises this test process's own open-file limit (it holds the stalled sockets, the child's
/// pipes and the fake Slack's connections) and returns the hard limit the child may get.
fn raise_own_open_file_limit() -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct only.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    // Root may raise the hard limit to systemd's; anyone else keeps theirs.
    let hard = limit.rlim_max.max(SYSTEMD_HARD);
    let raised = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return hard;
    }
    let own = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &own) }, 0);
    assert!(
        limit.rlim_max as usize > 2 * STALLED + 256,
        "this test needs a hard open-file limit above {}; it is {}",
        2 * STALLED + 256,
        limit.rlim_max
    );
    limit.rlim_max
}

/// The harness with the test's `[server]` settings, the child under systemd's default limit.
fn harness(server: &str) -> Harness {
    let hard = raise_own_open_file_limit();
    let mut h = Harness::new(&[(
        "shutdown_timeout = \"5s\"",
        &format!("shutdown_timeout = \"5s\"\n{server}"),
    )]);
    h.open_files = Some((SYSTEMD_SOFT, hard));
    h
}

/// A connection that sent a complete head announcing a 1,000-byte body, then only part of it.
fn stall(port: u16, n: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the relay");
    let head = format!(
        "POST /hooks/salesforce HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"id\": \"stalled-{n}\", \"name\": \"Deal stalled-{n}\", \"country\": \"UK\", "
    );
    s.write_all(head.as_bytes())
        .expect("send head and part of the body");
    s
}

/// Files the relay has open now.
fn open_files(pid: libc::pid_t) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Connections to `port` the relay holds a file for: its accepted connections (the sockets
/// among its open files, matched by inode with `/proc/PID/net/tcp`, listener left out).
fn accepted(pid: libc::pid_t, port: u16) -> usize {
    let sockets: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1].ends_with(&local) && f[3] != "0A")
        .filter(|f| sockets.contains(f[9]))
        .count()
}

/// The relay's soft open-file limit, as `/proc/PID/limits` shows it.
fn soft_limit(pid: libc::pid_t) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("?")
        .to_string()
}

/// What the relay sent on `s` before closing the connection.
struct Answered {
    /// The raw HTTP/1.1 answer.
    text: String,
    /// When its first byte came.
    first: Instant,
    /// When the relay closed the connection.
    closed: Instant,
}

/// Everything the relay sends on `s` until it closes the connection; panics if it neither
/// answers nor closes within `timeout`.
fn read_to_close(s: &mut TcpStream, timeout: Duration) -> Answered {
    s.set_read_timeout(Some(timeout)).expect("read timeout");
    let mut answer = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first.get_or_insert_with(Instant::now);
                answer.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "no answer and no close within {timeout:?} ({e}); got so far: {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    Answered {
        text: String::from_utf8_lossy(&answer).into_owned(),
        first: first.expect("the relay answered before closing"),
        closed: Instant::now(),
    }
}

/// The JSON body of a raw HTTP/1.1 answer.
fn json_body(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// The notifications the relay holds, as `GET /v1/notifications` lists them.
fn listed(relay: &Relay) -> Vec<Value> {
    let resp = agent(Duration::from_secs(5))
        .get(format!("{}/v1/notifications?limit=500", relay.address))
        .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .expect("admin API answers");
    let v = crate::helpers::Answer::read(resp).json;
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn real_senders_get_their_202_within_a_second_past_1100_stalled_bodies() {
    // Long enough that every stalled body is still pending while the real senders post.
    let body_timeout = Duration::from_secs(30);
    let mut h = harness("client_body_timeout = \"30s\"");
    let relay = h.start();
    let pid = relay.pid();
    let port = relay.port();
    // It started under systemd's default and raised its own soft limit.
    assert!(
        relay
            .stderr()
            .contains("Raised the open-file limit from 1024 to"),
        "{}",
        relay.stderr()
    );

    let opened = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..STALLED).map(|n| stall(port, n)).collect();
    wait_until(
        "the relay to accept every stalled connection",
        Duration::from_secs(30),
        || accepted(pid, port) >= STALLED,
    );
    eprintln!(
        "{STALLED} stalled connections accepted in {:?}; the relay holds {} files (soft limit {})",
        opened.elapsed(),
        open_files(pid),
        soft_limit(pid)
    );

    let mut took = Vec::new();
    for i in 0..SENDERS {
        // A fresh agent each time: a new connection, which the relay must accept.
        let agent = agent(Duration::from_secs(10));
        let started = Instant::now();
        let status = relay.post(&agent, &format!("real-{i}"), "UK");
        let elapsed = started.elapsed();
        assert!(
            matches!(status, Ok(202)),
            "real sender {i} got {status:?} after {elapsed:?} with {STALLED} stalled connections open"
        );
        took.push(elapsed);
    }
    took.sort();
    eprintln!(
        "time to 202 for {SENDERS} real senders: fastest {:?}, median {:?}, slowest {:?}",
        took[0],
        took[SENDERS / 2],
        took[SENDERS - 1]
    );
    // Each within a second; one of them may take longer (an fdatasync on a 2-core box that
    // runs the rest of the suite too), but not more than a few seconds.
    let late = took.iter().filter(|t| **t >= PROMPT).count();
    assert!(
        late <= 1,
        "{late} real senders waited a second or more: {took:?}"
    );
    assert!(
        took[SENDERS - 1] < PROMPT * 3,
        "a real sender waited {:?}",
        took[SENDERS - 1]
    );

    // The stalled connections were really held all along: none was answered yet.
    assert!(
        opened.elapsed() < body_timeout,
        "the test ran past client_body_timeout and proves nothing about held connections"
    );
    for s in &mut stalled {
        s.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("a stalled connection was answered or closed early: {other:?}"),
        }
    }

    h.slack.wait_delivered("uk", SENDERS);
    let items = listed(&relay);
    assert_eq!(
        items.len(),
        SENDERS,
        "only the real senders' webhooks are kept"
    );
    assert!(items.iter().all(|i| i["external_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("real-"))));
}

#[test]
fn a_stalled_body_gets_a_json_408_after_client_body_timeout_and_is_closed() {
    let body_timeout = Duration::from_secs(2);
    let head_timeout = Duration::from_secs(1);
    let mut h = harness("client_body_timeout = \"2s\"\nclient_request_timeout = \"1s\"");
    let relay = h.start();
    let port = relay.port();

    let mut bodies: Vec<(TcpStream, Instant)> = (0..5)
        .map(|n| {
            // Timed from before the connection: the relay's clock starts later, never sooner.
            let sent = Instant::now();
            (stall(port, n), sent)
        })
        .collect();
    // A head that never ends: actix's own timer answers it, counted from the connection's
    // start by a clock it updates every 500 ms (so up to that much early).
    let head_opened = Instant::now();
    let mut head = TcpStream::connect(("127.0.0.1", port)).expect("connect to the relay");
    head.write_all(b"POST /hooks/salesforce HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        .expect("send part of a head");

    // Meanwhile a real sender is not held up.
    let started = Instant::now();
    let status = relay.post(&agent(Duration::from_secs(10)), "real-1", "UK");
    assert!(matches!(status, Ok(202)), "{status:?}");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());

    // Each connection is read on its own thread, so each answer is timed as it comes.
    let wait = body_timeout + Duration::from_secs(10);
    let (bodies, head) = std::thread::scope(|scope| {
        let bodies: Vec<_> = bodies
            .iter_mut()
            .map(|(s, sent)| scope.spawn(move || (read_to_close(s, wait), *sent)))
            .collect();
        let head = scope.spawn(|| read_to_close(&mut head, wait));
        let bodies: Vec<_> = bodies
            .into_iter()
            .map(|t| t.join().expect("reader thread"))
            .collect();
        (bodies, head.join().expect("reader thread"))
    });

    let bound = body_timeout + Duration::from_secs(2);
    for (answer, sent) in &bodies {
        let (after, closed) = (answer.first - *sent, answer.closed - *sent);
        eprintln!("stalled body answered after {after:?}, closed after {closed:?}");
        assert!(
            after >= body_timeout && after < bound,
            "answered after {after:?}, not at client_body_timeout ({body_timeout:?})"
        );
        // actix lingers a moment (client_disconnect_timeout, 1 s) before it closes, so that the
        // client reads the answer rather than a reset.
        assert!(
            closed < bound + Duration::from_secs(1),
            "closed after {closed:?}"
        );
        let text = &answer.text;
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{text}"
        );
        let json = json_body(text);
        assert_eq!(json["type"], "request_timeout", "{text}");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("client_body_timeout")),
            "{text}"
        );
    }

    let after = head.first - head_opened;
    eprintln!("stalled head answered after {after:?}: {:?}", head.text);
    assert!(head.text.starts_with("HTTP/1.1 408"), "{}", head.text);
    assert!(
        after >= head_timeout - Duration::from_millis(500)
            && after < head_timeout + Duration::from_secs(2),
        "{after:?}"
    );

    let items = listed(&relay);
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i["external_id"].as_str())
        .collect();
    assert_eq!(ids, ["real-1"], "nothing of the stalled bodies is kept");
}

/// Sends one whole webhook on `s` and reads the answer's head and body; returns the head.
fn whole_request(s: &mut TcpStream, port: u16, id: &str) -> String {
    let body = crate::helpers::opportunity(id, "UK").to_string();
    let request = format!(
        "POST /hooks/salesforce HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send a webhook");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).expect("read the answer");
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if rest.len() >= length {
                return head.to_ascii_lowercase();
            }
        }
    }
}

#[test]
fn past_half_the_connection_limit_answers_close_their_connection_so_no_next_head_goes_untimed() {
    // actix times only a connection's first head: a client could send one webhook, then
    // trickle the next head for ever. Past half of max_connections, answers close instead.
    let mut h = harness("max_connections = 20\nclient_request_timeout = \"1s\"");
    let relay = h.start();
    let port = relay.port();
    let mut kept = Vec::new();
    for n in 1..=12 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the relay");
        let head = whole_request(&mut s, port, &format!("keep-{n}"));
        assert!(head.starts_with("http/1.1 202"), "{head}");
        let closes = head.contains("connection: close");
        assert_eq!(
            closes,
            n > 10,
            "answer {n} of 12 with a limit of 20:\n{head}"
        );
        kept.push(s);
    }
    // The ten kept alive now trickle their next head, and are held (actix's limit) ...
    for s in &mut kept[..10] {
        s.write_all(b"POST /hooks/salesforce HTTP/1.1\r\nHost: 127.0.0")
            .expect("part of a second head");
    }
    // ... yet a real sender is served at once, and its connection is not kept either.
    let started = Instant::now();
    let mut real = TcpStream::connect(("127.0.0.1", port)).expect("connect to the relay");
    let head = whole_request(&mut real, port, "real-after-crowd");
    assert!(head.starts_with("http/1.1 202"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    h.slack
        .wait_until(Duration::from_secs(20), "the webhooks delivered", |all| {
            all.iter()
                .any(|r| r.crm_id().as_deref() == Some("real-after-crowd"))
        });
}
