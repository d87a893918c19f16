//! Soak harness: the store stays bounded under steady load when delivered notifications are purged.
//!
//! Run with `cargo bench --bench soak` (1,000,000 notifications; several minutes), or
//! `SOAK_TOTAL=20000 cargo bench --bench soak` for a quick smoke run.
//!
//! What it does:
//!
//! - starts an in-process HTTP sink on `127.0.0.1:0` standing in for Slack: every POST is answered
//!   `200 ok` at once (keep-alive, a thread per connection) and counted;
//! - starts the real `hookrelay` release binary (`serve --config <temp config>`) with the
//!   `salesforce` opportunity source, three regions UK/US/EU pointing at the sink with
//!   `rate = "100000/s"`, `burst = 10000`, `delivery.workers = 8`, a temporary store, and
//!   `store.retention` / `store.dead_letter_retention` = `SOAK_RETENTION` and
//!   `store.purge_interval` = `SOAK_PURGE_INTERVAL`;
//! - posts `SOAK_TOTAL` unique opportunities (country cycling UK/US/EU) over `SOAK_CONNS`
//!   keep-alive connections. Each region delivers one message at a time, so intake can outrun
//!   delivery: whenever the backlog (accepted minus received by the sink) exceeds
//!   `SOAK_MAX_BACKLOG`, the clients pause until it drains below it;
//! - every 10 s prints elapsed time, posted, delivered, backlog, the store's size on disk (all
//!   files under the store directory) and the relay's RSS (`VmRSS` in `/proc/PID/status`);
//! - at the end waits for the backlog to reach 0, then 2 × retention + purge interval so the
//!   background purge catches up, and prints a summary. The store is **bounded** if its size after
//!   that final purge is at most `BOUND_FACTOR` × its size at 10 % of the run (by then the store
//!   has reached its steady state: retention's worth of delivered notifications plus the backlog).
//!   Without purging it would keep growing with the number of notifications, ~10× from 10 % to the
//!   end;
//!   If 10 % is reached before retention + purge interval have passed (a short run, such as the
//!   smoke run), nothing can have been purged by then and the verdict is "inconclusive";
//! - SIGTERMs the relay and reports its exit status (with its last 20 log lines if not 0).
//!
//! The process exits 1 if the store was not bounded (in a conclusive run), a request failed, the
//! backlog did not drain or the relay did not exit cleanly.
//!
//! Environment:
//! - `SOAK_TOTAL` (default 1000000), `SOAK_CONNS` (32), `SOAK_MAX_BACKLOG` (20000);
//! - `SOAK_RETENTION` (default `"20s"`), `SOAK_PURGE_INTERVAL` (default `"5s"`): the relay's
//!   `store.retention` (also used for `dead_letter_retention`) and `store.purge_interval`;
//! - `SOAK_RUST_LOG` (default `warn,hookrelay::store::retention=info`): the relay's `RUST_LOG`
//!   (the summary counts the log lines that mention the purge);
//! - `HOOKRELAY_BIN`: the binary to run instead of the one cargo built for this bench.
//! - `SOAK_PART=backlog`: run the backlog phase instead (RSS idle and with 1,000,000 pending,
//!   restart-to-ready time; see `soak/backlog.rs`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "soak/backlog.rs"]
mod backlog;
#[path = "soak/clients.rs"]
mod clients;
#[path = "common/mod.rs"]
mod common;
#[path = "soak/monitor.rs"]
mod monitor;
#[path = "soak/relay.rs"]
mod relay;
#[path = "soak/sink.rs"]
mod sink;
use clients::{client, Load};
use common::relay::env_u64;
use common::{dir_size, free_port};
use monitor::Monitor;
use sink::start_sink;

const COUNTRIES: [&str; 3] = ["UK", "US", "EU"];
const REGIONS: [(&str, &str); 3] = [("UK", "uk"), ("US", "us"), ("EU", "eu")];
/// How often a progress line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How often the monitor samples store size and RSS.
const TICK: Duration = Duration::from_millis(250);
/// Give up waiting for the backlog to drain if no delivery happens for this long.
const DRAIN_STALL: Duration = Duration::from_secs(120);
/// The store is bounded if, after the final purge, it is at most this many times its size at 10 %.
const BOUND_FACTOR: f64 = 2.0;

/// A duration setting: its text (for the config) and its value (for the harness's waits).
fn env_duration(name: &str, default: &str) -> (String, Duration) {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
    let value = humantime::parse_duration(text.trim())
        .unwrap_or_else(|_| panic!("{name}={text:?} is not a duration like \"20s\""));
    (text.trim().to_string(), value)
}

fn config_text(store: &Path, port: u16, sink: SocketAddr, retention: &str, purge: &str) -> String {
    let mut text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout = "5s"

[store]
path = {store:?}
retention = {retention:?}
dead_letter_retention = {retention:?}
purge_interval = {purge:?}

[delivery]
workers = 8

[sources.salesforce]
kind = "opportunity"
"#,
        store = store.display().to_string(),
    );
    for (region, channel) in REGIONS {
        text.push_str(&format!(
            r#"
[regions.{region}]
webhook_url = "http://{sink}/services/T0/B0/{channel}"
countries = ["{region}"]
rate = "100000/s"
burst = 10000
"#
        ));
    }
    text
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    if std::env::var("SOAK_PART").as_deref() == Ok("backlog") {
        backlog::run();
        return;
    }
    let total = env_u64("SOAK_TOTAL", 1_000_000);
    let conns = env_u64("SOAK_CONNS", 32);
    let max_backlog = env_u64("SOAK_MAX_BACKLOG", 20_000);
    let (retention_text, retention) = env_duration("SOAK_RETENTION", "20s");
    let (purge_text, purge_interval) = env_duration("SOAK_PURGE_INTERVAL", "5s");
    assert!(total > 0, "SOAK_TOTAL must be at least 1");
    assert!(conns > 0, "SOAK_CONNS must be at least 1");

    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let store_dir = dir.path().join("store");
    let (sink_addr, sink) = start_sink();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&store_dir, port, sink_addr, &retention_text, &purge_text),
    )
    .expect("cannot write the temp config");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    println!(
        "hookrelay soak: {total} notifications over {conns} keep-alive connections, backlog cap \
         {max_backlog}, retention {retention_text}, purge every {purge_text}, {} CPUs shared by \
         client, sink and relay",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut relay = relay::start(dir.path(), &config);
    relay.wait_ready(|| common::healthz(addr));
    let pid = relay.pid();
    println!(
        "relay pid {pid} on {addr}, sink on {sink_addr}, store {}",
        store_dir.display()
    );

    let load = Arc::new(Load::default());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let start = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|t| {
            let load = Arc::clone(&load);
            let sink = Arc::clone(&sink);
            std::thread::Builder::new()
                .name(format!("soak-{t}"))
                .spawn(move || client(t, addr, total, max_backlog, nonce, &load, &sink))
                .expect("cannot start a client thread")
        })
        .collect();

    let mut mon = Monitor {
        start,
        next_report: start + REPORT_EVERY,
        store: &store_dir,
        pid,
        load: &load,
        sink: &sink,
        max_rss: 0,
        max_store: 0,
    };
    let initial_store = mon.tick("start", true);

    // Intake, with store-size checkpoints at 10 % and 50 % of the notifications posted.
    let mut at10 = None;
    let mut at50 = None;
    let mut relay_died = None;
    while load.finished.load(Ordering::Relaxed) < conns {
        std::thread::sleep(TICK);
        let store = mon.tick("posting", false);
        let done = load.next.load(Ordering::Relaxed).min(total);
        if at10.is_none() && done * 10 >= total {
            at10 = Some((store, start.elapsed()));
        }
        if at50.is_none() && done * 2 >= total {
            at50 = Some((store, start.elapsed()));
        }
        if let Some(status) = relay.exited() {
            relay_died = Some(status);
            load.abort.store(true, Ordering::Relaxed);
        }
    }
    for t in threads {
        t.join().expect("a client thread panicked");
    }
    let post_secs = start.elapsed().as_secs_f64();
    let at100 = (mon.tick("posted", true), start.elapsed());
    let at10 = at10.unwrap_or(at100);
    let at50 = at50.unwrap_or(at100);

    // Delivery catches up.
    let mut drained = false;
    let mut drain_secs = f64::NAN;
    if relay_died.is_none() {
        let mut last = sink.received.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        loop {
            if load.backlog(&sink) == 0 {
                drained = true;
                drain_secs = start.elapsed().as_secs_f64();
                mon.tick("drained", true);
                break;
            }
            if let Some(status) = relay.exited() {
                relay_died = Some(status);
                break;
            }
            let now = sink.received.load(Ordering::Relaxed);
            if now != last {
                last = now;
                last_change = Instant::now();
            } else if last_change.elapsed() >= DRAIN_STALL {
                mon.tick("stalled", true);
                println!("no delivery for {DRAIN_STALL:?}; not waiting any longer");
                break;
            }
            std::thread::sleep(TICK);
            mon.tick("draining", false);
        }
    }

    // The purge catches up.
    let purge_wait = retention * 2 + purge_interval;
    let mut after_purge = at100.0;
    if relay_died.is_none() {
        println!("waiting {purge_wait:?} (2 × retention + purge interval) for the final purge");
        let until = Instant::now() + purge_wait;
        while Instant::now() < until {
            std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
            mon.tick("purging", false);
            if let Some(status) = relay.exited() {
                relay_died = Some(status);
                break;
            }
        }
        after_purge = mon.tick("purged", true);
    }
    let total_secs = start.elapsed().as_secs_f64();

    // Stop the relay.
    let stopped = relay.stop();
    let clean = matches!(&stopped, Ok(s) if s.success());

    // Summary.
    let posted = load.posted.load(Ordering::Relaxed);
    let accepted = load.accepted.load(Ordering::Relaxed);
    let delivered = sink.received.load(Ordering::Relaxed);
    let errors = load.errors.load(Ordering::Relaxed);
    let ratio = after_purge as f64 / (at10.0 as f64).max(1.0);
    let bounded = relay_died.is_none() && ratio <= BOUND_FACTOR;
    // Before retention + one purge interval nothing can have been purged yet, so a store measured
    // earlier is not the steady state and the comparison says nothing.
    let conclusive = at10.1 >= retention + purge_interval;
    println!();
    println!("soak summary");
    println!(
        "  posted      {posted} (accepted 202: {accepted}) of {total}; errors (non-2xx or I/O) \
         {errors}; reconnects {}; backlog pauses {}",
        load.reconnects.load(Ordering::Relaxed),
        load.pauses.load(Ordering::Relaxed)
    );
    println!(
        "  delivered   {delivered} ({:?}){}",
        sink.by_path.lock().unwrap(),
        if drained {
            String::new()
        } else {
            format!("; backlog NOT drained: {}", load.backlog(&sink))
        }
    );
    println!(
        "  duration    intake {post_secs:.1}s ({:.0} req/s); all delivered at {drain_secs:.1}s \
         ({:.0} deliveries/s); run {total_secs:.1}s",
        posted as f64 / post_secs.max(1e-9),
        delivered as f64 / drain_secs.max(1e-9),
    );
    if errors > 0 {
        println!(
            "  error statuses {:?}, first error: {}",
            load.statuses.lock().unwrap(),
            load.first_error.lock().unwrap().as_deref().unwrap_or("-")
        );
    }
    println!(
        "  store       start {:.1} MB; 10% {:.1} MB (at {:.0}s); 50% {:.1} MB (at {:.0}s); \
         100% {:.1} MB (at {:.0}s); after final purge {:.1} MB; max {:.1} MB",
        mb(initial_store),
        mb(at10.0),
        at10.1.as_secs_f64(),
        mb(at50.0),
        at50.1.as_secs_f64(),
        mb(at100.0),
        at100.1.as_secs_f64(),
        mb(after_purge),
        mb(mon.max_store),
    );
    println!("  relay RSS   max {:.1} MB", mb(mon.max_rss));
    let (purge_lines, purged) = relay::purge_log(&relay);
    println!(
        "  purge       {} log lines, {purged} notifications purged{}",
        purge_lines.len(),
        purge_lines
            .last()
            .map(|l| format!("; last: {}", l.trim()))
            .unwrap_or_default()
    );
    match &stopped {
        Ok(status) => println!("  relay       SIGTERM: exited with {status}"),
        Err(why) => println!("  relay       SIGTERM: {why}"),
    }
    if let Some(status) = relay_died {
        println!("  relay       DIED during the run with {status}");
    }
    if !clean || relay_died.is_some() {
        println!("  relay log (last 20 lines):\n{}", relay.log_tail());
    }
    // sled keeps its file at its peak: the retention pass asks for a compaction, which the
    // next start performs. Restart once and measure what the store takes then.
    if clean {
        let asked = store_dir.join(hookrelay::store::compact::WANTED).exists();
        let restarted_at = Instant::now();
        let mut again = relay::start(dir.path(), &config);
        again.wait_ready(|| common::healthz(addr));
        let ready = restarted_at.elapsed();
        let compacted = dir_size(&store_dir);
        println!(
            "  compaction  {}; after a restart ({:.1}s to ready) the store takes {:.1} MB ({:.0}% of its size after the final purge)",
            if asked { "asked for by the retention pass" } else { "NOT asked for" },
            ready.as_secs_f64(),
            mb(compacted),
            100.0 * compacted as f64 / (after_purge as f64).max(1.0)
        );
        let _ = again.stop();
    }
    let verdict = if !conclusive {
        format!(
            "INCONCLUSIVE: 10% was reached at {:.0}s, before retention + purge interval ({:?}) \
             had passed; run more notifications or shorten SOAK_RETENTION",
            at10.1.as_secs_f64(),
            retention + purge_interval
        )
    } else if bounded {
        "BOUNDED".to_string()
    } else {
        "NOT bounded".to_string()
    };
    println!(
        "\nstore after the final purge / at 10% of the run = {ratio:.2} (bounded if <= \
         {BOUND_FACTOR}): {verdict}"
    );
    if !((bounded || !conclusive) && clean && drained && errors == 0) {
        std::process::exit(1);
    }
}
