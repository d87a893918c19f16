//! Load harness: ingest throughput and latency of `POST /hooks/salesforce`, durable vs no storage.
//!
//! Run with `cargo bench --bench load`. Two servers get the same load, one after the other:
//!
//! - **durable**: the real `hookrelay` release binary (`serve --config <temp config>`), with a
//!   temporary store and `file://` regions in a temporary directory, so delivery needs no network.
//! - **no-storage**: an in-process actix-web server whose handler does everything the real one
//!   does (source lookup, content type, body read with the size limit, JSON parse, opportunity
//!   validation, routing, copying the raw body) except storing, and answers the same 202 JSON.
//!
//! The load: `LOAD_CONNS` threads (default 32), each with its own keep-alive HTTP/1.1 connection
//! (a plain `TcpStream`, one request in flight at a time), POST a unique opportunity per request
//! (the brief's example with a unique `id`, country cycling UK/US/EU) for `LOAD_SECS` seconds
//! (default 10) after `LOAD_WARMUP_SECS` (default 1) of unmeasured warm-up. Latency is taken per
//! request from the first byte written to the last byte of the answer read. Non-2xx answers and
//! I/O failures are errors (a failed connection is reopened and counted in `reconnects`).
//!
//! Environment:
//! - `LOAD_SECS`, `LOAD_CONNS`, `LOAD_WARMUP_SECS`: as above.
//! - `HOOKRELAY_BIN`: the binary to run instead of the one cargo built for this bench.
//! - `LOAD_INPROC_DURABLE=1`: also load an in-process `Application` (the same code as the binary,
//!   same settings), which gives the journal's mean group-commit batch size under this load.
//! - `LOAD_ONLY=durable|baseline`: run one server only.
//! - `LOAD_TLS=1`: instead, the durable binary four times: plain HTTP and HTTPS (a certificate
//!   made for the run), each with keep-alive connections and with one request per connection
//!   (`Connection: close`, so every request pays the handshake); prints HTTPS / plain per mode.
//!
//! The client threads share the machine with the server under test, so on a small machine the
//! absolute numbers are lower than a separate client would see; the ratio is the useful figure.

use std::path::Path;
use std::time::Duration;

#[path = "load/baseline.rs"]
mod baseline;
#[path = "common/mod.rs"]
mod common;
#[path = "load/durable.rs"]
mod durable;
#[path = "load/generator.rs"]
mod generator;
#[path = "load/in_process.rs"]
mod in_process;
#[path = "load/tls.rs"]
mod tls;
use baseline::run_baseline;
use durable::{run_durable, run_durable_as};
use in_process::run_inproc_durable;

use common::relay::{env_u64, READY_TIMEOUT};

fn config_text(dir: &Path, port: u16) -> String {
    let store = dir.join("store");
    let outbox = dir.join("outbox");
    let file = |name: &str| format!("file://{}", outbox.join(name).display());
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
shutdown_timeout = "2s"

[store]
path = {store:?}

[sources.salesforce]
kind = "opportunity"

[regions.UK]
webhook_url = {uk:?}
countries = ["UK", "GB"]

[regions.US]
webhook_url = {us:?}
countries = ["US", "USA"]

[regions.EU]
webhook_url = {eu:?}
countries = ["EU", "DE", "FR", "IE", "NL", "ES", "IT"]
"#,
        store = store.display().to_string(),
        uk = file("uk.jsonl"),
        us = file("us.jsonl"),
        eu = file("eu.jsonl"),
    )
}

// ---------------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let secs = env_u64("LOAD_SECS", 10);
    let conns = env_u64("LOAD_CONNS", 32);
    let warmup = Duration::from_secs(env_u64("LOAD_WARMUP_SECS", 1));
    let measure = Duration::from_secs(secs.max(1));
    let only = std::env::var("LOAD_ONLY").unwrap_or_default();
    let inproc = std::env::var("LOAD_INPROC_DURABLE").is_ok_and(|v| v == "1");
    assert!(conns > 0, "LOAD_CONNS must be at least 1");

    println!(
        "hookrelay load: {conns} keep-alive connections, {}s warm-up + {secs}s measured per server, \
         {} CPUs shared by client and server",
        warmup.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut reports = Vec::new();
    let tls = std::env::var("LOAD_TLS").is_ok_and(|v| v == "1");
    if tls {
        for (name, over_tls, close_each) in [
            ("plain keep-alive", false, false),
            ("https keep-alive", true, false),
            ("plain new-conn", false, true),
            ("https new-conn", true, true),
        ] {
            reports.push(run_durable_as(
                name, conns, warmup, measure, over_tls, close_each,
            ));
        }
    } else if only.is_empty() || only == "baseline" {
        reports.push(run_baseline(conns, warmup, measure));
    }
    if !tls && (only.is_empty() || only == "durable") {
        reports.push(run_durable(conns, warmup, measure));
    }
    if inproc {
        reports.push(run_inproc_durable(conns, warmup, measure));
    }

    println!();
    println!(
        "{:<22} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8}",
        "server", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in &reports {
        println!(
            "{:<22} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.1}",
            r.name,
            r.requests,
            r.errors,
            r.rps(),
            r.p50_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    for r in &reports {
        if r.reconnects > 0
            || !r.statuses.is_empty()
            || r.first_error.is_some()
            || r.extra.is_some()
        {
            println!(
                "  {}: reconnects {}, error statuses {:?}{}{}",
                r.name,
                r.reconnects,
                r.statuses,
                r.first_error
                    .as_ref()
                    .map(|e| format!(", first error: {e}"))
                    .unwrap_or_default(),
                r.extra
                    .as_ref()
                    .map(|e| format!("; {e}"))
                    .unwrap_or_default(),
            );
        }
    }
    let find = |prefix: &str| reports.iter().find(|r| r.name.starts_with(prefix));
    if let (Some(d), Some(b)) = (find("durable (binary)"), find("no-storage")) {
        let ratio = d.rps() / b.rps().max(1e-9);
        println!(
            "\ndurable / no-storage req/s = {ratio:.2} (target >= 0.50): {}",
            if ratio >= 0.5 { "met" } else { "NOT met" }
        );
    }
    for mode in ["keep-alive", "new-conn"] {
        if let (Some(t), Some(p)) = (
            find(&format!("https {mode}")),
            find(&format!("plain {mode}")),
        ) {
            println!(
                "\nhttps / plain req/s, {mode} = {:.2} (p99 {:.2} vs {:.2} ms)",
                t.rps() / p.rps().max(1e-9),
                t.p99_ms,
                p.p99_ms
            );
        }
    }
    for r in &reports {
        if let Some((total, split)) = &r.cpu {
            println!(
                "{}: relay CPU {total:.0} µs per webhook ({split}), over {} answered",
                r.name, r.answered
            );
        }
    }
}
