//! Burst harness: how fast a burst to one region reaches Slack, with digests on and off.
//!
//! Run with `cargo bench --bench burst` (about a minute). For each of two runs:
//!
//! - starts an in-process Slack stand-in on `127.0.0.1:0` (`burst/slack.rs`): every POST is
//!   answered `200 ok` and its arrival time and the opportunities it announces are recorded (a
//!   digest's `section` lines begin with `*name*`; a single card's header is the name);
//! - starts the real `hookrelay` release binary on a temporary config and store: the
//!   `salesforce` opportunity source and one region UK pointing at the stand-in with
//!   `rate = BURST_RATE`, `burst = 1` and the run's `digest_after` / `digest_max`;
//! - posts the burst over one keep-alive connection, one request at a time, so arrival order is
//!   the order the opportunities were sent in (`b-0001`, `b-0002`, …); every answer must be 202;
//! - waits until Slack has announced all of them (giving up after `DRAIN_STALL` without a new
//!   message), then `GRACE` longer to catch a repeat, and SIGTERMs the relay.
//!
//! The runs: **digests on** (`BURST_N` opportunities, `digest_after = BURST_DIGEST_AFTER`,
//! `digest_max = BURST_DIGEST_MAX`) and **digests off** (`BURST_N_OFF`, `digest_after = "0s"`;
//! fewer, since each is its own message at the region's rate).
//!
//! Reported per run: messages Slack received and how many were digests; the span from the first
//! message to the last; messages/s and notifications/s over that span; and the time from the
//! burst's last 202 to the last notification in Slack. Each run is checked: every opportunity
//! announced exactly once, in arrival order, each digest's header counting its lines. The
//! process exits 1 if a check fails, a request fails, the burst does not drain or the relay does
//! not exit cleanly.
//!
//! Environment:
//! - `BURST_N` (default 2000), `BURST_N_OFF` (400): the burst with digests on and off;
//! - `BURST_RATE` (default `"20/s"`): the region's `rate`;
//! - `BURST_DIGEST_AFTER` (default `"1s"`), `BURST_DIGEST_MAX` (20): the digest settings of the
//!   run with digests on;
//! - `HOOKRELAY_BIN`: the binary to run instead of the one cargo built for this bench.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;
#[path = "burst/slack.rs"]
mod slack;

use common::relay::{env_u64, RelayProcess};
use common::{free_port, healthz, Conn};

/// Give up waiting for the burst to drain if Slack receives nothing for this long.
const DRAIN_STALL: Duration = Duration::from_secs(30);
/// How long to keep listening once every opportunity was announced, for a repeat.
const GRACE: Duration = Duration::from_secs(1);
/// The region's name, as digest headers say it.
const REGION: &str = "UK";

/// A text setting from the environment, else `default`.
fn env_text(name: &str, default: &str) -> String {
    std::env::var(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| default.to_string())
}

fn config_text(store: &Path, port: u16, slack: SocketAddr, rate: &str, digest: &Digest) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout = "5s"

[store]
path = {store:?}

[sources.salesforce]
kind = "opportunity"

[regions.{REGION}]
webhook_url = "http://{slack}/services/T0/B0/uk"
countries = ["UK"]
rate = {rate:?}
burst = 1
digest_after = {after:?}
digest_max = {max}
"#,
        store = store.display().to_string(),
        after = digest.after,
        max = digest.max,
    )
}

/// A run's digest settings.
struct Digest {
    after: String,
    max: u64,
}

/// One run's figures and what went wrong in it.
struct Run {
    name: String,
    n: usize,
    intake_secs: f64,
    messages: usize,
    digests: usize,
    max_lines: usize,
    announced: usize,
    /// First message to last, in seconds.
    span: f64,
    /// The burst's last 202 to the last notification in Slack, in seconds.
    after_last_202: f64,
    problems: Vec<String>,
}

impl Run {
    fn per_sec(&self, count: usize) -> f64 {
        count as f64 / self.span.max(1e-9)
    }
}

fn run(name: &str, n: usize, rate: &str, digest: &Digest) -> Run {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let (slack_addr, received) = slack::start();
    let port = free_port();
    let config = dir.path().join("config.toml");
    let text = config_text(&dir.path().join("store"), port, slack_addr, rate, digest);
    std::fs::write(&config, text).expect("cannot write the temp config");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut relay = RelayProcess::spawn(dir.path(), &config, "warn");
    relay.wait_ready(|| healthz(addr));

    let mut problems = Vec::new();
    let names: Vec<String> = (1..=n).map(|i| format!("Deal b-{i:04}")).collect();
    let mut conn = Conn::open(addr).expect("cannot connect to the relay");
    let started = Instant::now();
    for i in 1..=n {
        let id = format!("b-{i:04}");
        let body = serde_json::json!({
            "id": id,
            "name": format!("Deal {id}"),
            "country": REGION,
            "status": "Qualification",
            "account": "Acme",
            "amount": 4500
        })
        .to_string();
        match conn.post("/hooks/salesforce", &body) {
            Ok((202, _)) => {}
            Ok((status, _)) => problems.push(format!(
                "{id} was answered {status}: {}",
                String::from_utf8_lossy(&conn.body)
            )),
            Err(e) => problems.push(format!("{id} failed: {e}")),
        }
        if !problems.is_empty() {
            break;
        }
    }
    let last_202 = Instant::now();
    let intake_secs = last_202.duration_since(started).as_secs_f64();

    // Delivery catches up.
    if problems.is_empty() {
        let mut last_change = Instant::now();
        let mut seen = 0;
        loop {
            let (announced, _) = received.progress();
            if announced >= n {
                std::thread::sleep(GRACE);
                break;
            }
            if let Some(status) = relay.exited() {
                problems.push(format!("the relay died with {status}"));
                break;
            }
            if announced != seen {
                seen = announced;
                last_change = Instant::now();
            } else if last_change.elapsed() >= DRAIN_STALL {
                problems.push(format!(
                    "only {announced} of {n} announced, nothing new for {DRAIN_STALL:?}"
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    match relay.stop() {
        Ok(status) if status.success() => {}
        Ok(status) => problems.push(format!("the relay exited with {status}")),
        Err(why) => problems.push(format!("the relay: {why}")),
    }
    if !problems.is_empty() {
        problems.push(format!("relay log (last 20 lines):\n{}", relay.log_tail()));
    }
    problems.extend(received.errors.lock().unwrap().iter().cloned());

    let messages = received.messages.lock().unwrap();
    let shown: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.names.iter().map(String::as_str))
        .collect();
    check_once_in_order(&shown, &names, &mut problems);
    for m in messages.iter().filter(|m| m.digest) {
        let want = format!("{} new opportunities for {REGION}", m.names.len());
        if m.header != want {
            problems.push(format!("a digest's header {:?}, not {want:?}", m.header));
        }
    }
    let (first, last) = match (messages.first(), messages.last()) {
        (Some(f), Some(l)) => (f.at, l.at),
        _ => (last_202, last_202),
    };
    let after_last_202 = if last >= last_202 {
        last.duration_since(last_202).as_secs_f64()
    } else {
        -last_202.duration_since(last).as_secs_f64()
    };
    Run {
        name: name.to_string(),
        n,
        intake_secs,
        messages: messages.len(),
        digests: messages.iter().filter(|m| m.digest).count(),
        max_lines: messages.iter().map(|m| m.names.len()).max().unwrap_or(0),
        announced: shown.len(),
        span: last.duration_since(first).as_secs_f64(),
        after_last_202,
        problems,
    }
}

/// Every one of `names` in `shown` exactly once, in the same order.
fn check_once_in_order(shown: &[&str], names: &[String], problems: &mut Vec<String>) {
    let mut counts: std::collections::HashMap<&str, usize> = Default::default();
    for name in shown {
        *counts.entry(name).or_default() += 1;
    }
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !counts.contains_key(n))
        .collect();
    let repeated: Vec<(&str, usize)> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    let unknown = counts
        .keys()
        .filter(|n| !names.iter().any(|m| m == *n))
        .count();
    if !missing.is_empty() {
        problems.push(format!(
            "{} never announced, first {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!(
            "{} announced more than once, e.g. {:?}",
            repeated.len(),
            &repeated[..repeated.len().min(5)]
        ));
    }
    if unknown > 0 {
        problems.push(format!("{unknown} announced names that were never posted"));
    }
    if missing.is_empty() && repeated.is_empty() && unknown == 0 {
        if let Some(i) = (0..names.len()).find(|&i| shown[i] != names[i]) {
            problems.push(format!(
                "out of order at position {i}: {:?} where {:?} was posted",
                shown[i], names[i]
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let n_on = env_u64("BURST_N", 2000) as usize;
    let n_off = env_u64("BURST_N_OFF", 400) as usize;
    let rate = env_text("BURST_RATE", "20/s");
    let on = Digest {
        after: env_text("BURST_DIGEST_AFTER", "1s"),
        max: env_u64("BURST_DIGEST_MAX", 20),
    };
    let off = Digest {
        after: "0s".to_string(),
        max: on.max,
    };
    assert!(
        n_on > 0 && n_off > 0,
        "BURST_N and BURST_N_OFF must be at least 1"
    );
    println!(
        "hookrelay burst: one region at rate {rate:?}, burst 1; digests on: {n_on} opportunities, \
         digest_after {:?}, digest_max {}; digests off: {n_off} opportunities; posted over one \
         keep-alive connection; {} CPUs",
        on.after,
        on.max,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let name_on = format!("on ({}, max {})", on.after, on.max);
    let runs = [
        run(&name_on, n_on, &rate, &on),
        run("off (0s)", n_off, &rate, &off),
    ];

    println!();
    println!(
        "{:<18} {:>6} {:>9} {:>9} {:>8} {:>9} {:>8} {:>8} {:>9} {:>13} {:>10}",
        "digests",
        "N",
        "intake s",
        "messages",
        "digests",
        "max lines",
        "span s",
        "msg/s",
        "notif/s",
        "202→last s",
        "once+order"
    );
    for r in &runs {
        println!(
            "{:<18} {:>6} {:>9.2} {:>9} {:>8} {:>9} {:>8.2} {:>8.1} {:>9.1} {:>13.2} {:>10}",
            r.name,
            r.n,
            r.intake_secs,
            r.messages,
            r.digests,
            r.max_lines,
            r.span,
            r.per_sec(r.messages),
            r.per_sec(r.announced),
            r.after_last_202,
            if r.problems.is_empty() {
                "ok"
            } else {
                "FAILED"
            }
        );
    }
    let [a, b] = &runs;
    println!(
        "\nnotifications/s, digests on / off = {:.1}",
        a.per_sec(a.announced) / b.per_sec(b.announced).max(1e-9)
    );
    let mut failed = false;
    for r in &runs {
        for p in &r.problems {
            println!("  {}: {p}", r.name);
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
