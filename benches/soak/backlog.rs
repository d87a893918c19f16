//! The backlog phase of the soak bench (`SOAK_PART=backlog`): memory and restart time with a
//! big queue.
//!
//! Starts the real relay with its three regions on the shipped placeholder webhook URL, so every
//! accepted notification stays pending (as when Slack is unreachable for days), no
//! `max_pending` limit, and the default `store.cache_size` (or `SOAK_CACHE_SIZE`). It reports:
//!
//! - RSS idle (3 s after `/readyz` first answers 200 on an empty store);
//! - RSS with `SOAK_BACKLOG` (default 1,000,000) pending, posted over `SOAK_CONNS` connections,
//!   and the store's bytes per notification;
//! - the restart: SIGTERM, then the time from starting the process again to the first 200 from
//!   `/readyz`, and RSS 5 s after that.
//!
//! Run it against an older build with `HOOKRELAY_BIN=/path/to/hookrelay` for a before/after.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::common::{body, dir_size, free_port, get_ok, Conn};
use super::relay::{self, rss, RelayProcess};
use super::{env_u64, mb};

const PLACEHOLDER: &str =
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

fn config(store: &std::path::Path, port: u16) -> String {
    let cache = match std::env::var("SOAK_CACHE_SIZE") {
        Ok(size) => format!("cache_size = {size:?}\n"),
        Err(_) => String::new(),
    };
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout = "5s"
[store]
path = {store:?}
max_pending = 0
{cache}
[sources.salesforce]
kind = "opportunity"
[regions.UK]
webhook_url = "{PLACEHOLDER}"
countries = ["UK"]
[regions.US]
webhook_url = "{PLACEHOLDER}"
countries = ["US"]
[regions.EU]
webhook_url = "{PLACEHOLDER}"
countries = ["EU"]
"#,
        store = store.display().to_string()
    )
}

/// Starts the relay and returns it with the time to the first 200 from `/readyz`.
fn start(
    dir: &std::path::Path,
    cfg: &std::path::Path,
    addr: SocketAddr,
) -> (RelayProcess, Duration) {
    let started = Instant::now();
    let mut relay = relay::start(dir, cfg);
    loop {
        if get_ok(addr, "/readyz") {
            return (relay, started.elapsed());
        }
        if let Some(status) = relay.exited() {
            panic!("the relay exited ({status}):\n{}", relay.log_tail());
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no 200 from /readyz after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn run() {
    let total = env_u64("SOAK_BACKLOG", 1_000_000);
    let conns = env_u64("SOAK_CONNS", 32);
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let store = dir.path().join("store");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&store, port)).expect("cannot write the config");

    let (mut relay, ready) = start(dir.path(), &cfg, addr);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss(relay.pid()).unwrap_or(0);
    println!(
        "backlog: ready in {ready:?} on an empty store; RSS idle {:.1} MB",
        mb(idle)
    );

    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let fill = Instant::now();
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::thread::scope(|s| {
        for _ in 0..conns {
            s.spawn(|| {
                let mut conn = Conn::open(addr).expect("connect");
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= total {
                        break;
                    }
                    let payload = body(
                        &format!("b-{nonce}-{seq}"),
                        ["UK", "US", "EU"][(seq % 3) as usize],
                    );
                    match conn.post("/hooks/salesforce", &payload) {
                        Ok((202, true)) => {}
                        Ok((status, keep_alive)) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if failed.load(Ordering::Relaxed) < 5 {
                                eprintln!("HTTP {status}");
                            }
                            if !keep_alive {
                                conn = Conn::open(addr).expect("reconnect");
                            }
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("I/O: {e}");
                            conn = Conn::open(addr).expect("reconnect");
                        }
                    }
                    if seq % 100_000 == 0 && seq > 0 {
                        println!(
                            "  {seq} posted in {:.0?}, RSS {:.1} MB",
                            fill.elapsed(),
                            mb(rss(relay.pid()).unwrap_or(0))
                        );
                    }
                }
            });
        }
    });
    let filled = fill.elapsed();
    // Let the applier catch up and a checkpoint run before measuring.
    std::thread::sleep(Duration::from_secs(35));
    let full = rss(relay.pid()).unwrap_or(0);
    let bytes = dir_size(&store);
    println!(
        "backlog: {total} pending in {filled:.1?} ({:.0}/s), {} failed; RSS {:.1} MB; store {:.1} MB = {:.0} B per notification",
        total as f64 / filled.as_secs_f64(),
        failed.load(Ordering::Relaxed),
        mb(full),
        mb(bytes),
        bytes as f64 / total as f64
    );

    let stopping = Instant::now();
    let status = relay.stop().expect("the relay did not stop");
    println!(
        "backlog: SIGTERM stop took {:.1?} ({status})",
        stopping.elapsed()
    );
    let (relay, ready) = start(dir.path(), &cfg, addr);
    std::thread::sleep(Duration::from_secs(5));
    let after = rss(relay.pid()).unwrap_or(0);
    println!(
        "backlog: restart with {total} pending: /readyz 200 after {ready:.2?} (target <= 2 s); RSS 5 s later {:.1} MB",
        mb(after)
    );
    println!(
        "backlog summary: RSS idle {:.1} MB (target <= 64), with {total} pending {:.1} MB (target <= 256), restart-to-ready {ready:.2?}, {:.0} B per notification",
        mb(idle),
        mb(full.max(after)),
        bytes as f64 / total as f64
    );
}
