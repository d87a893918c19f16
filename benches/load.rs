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
//!
//! The client threads share the machine with the server under test, so on a small machine the
//! absolute numbers are lower than a separate client would see; the ratio is the useful figure.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use hookrelay::config::Settings;
use hookrelay::sources::opportunity::Opportunity;
use hookrelay::sources::Record;
use serde_json::{json, Value};

#[path = "common/mod.rs"]
mod common;
use common::{body, dir_size, free_port, healthz, Conn};

const COUNTRIES: [&str; 3] = ["UK", "US", "EU"];
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

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
// The load generator.

/// One connection's results.
#[derive(Default)]
struct ConnResult {
    /// Latencies of measured requests, in microseconds.
    latencies_us: Vec<u32>,
    /// Measured requests that failed (non-2xx or I/O).
    errors: u64,
    /// Connections reopened after a failure or a server close.
    reconnects: u64,
    /// Status → count of measured non-2xx answers.
    statuses: BTreeMap<u16, u64>,
    /// The first failure, for the report.
    first_error: Option<String>,
    /// When this connection's last measured request finished.
    last_done: Option<Instant>,
    /// 2xx answers, warm-up included: what the server's CPU was spent on.
    answered: u64,
}

struct Report {
    name: String,
    requests: u64,
    errors: u64,
    reconnects: u64,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    statuses: BTreeMap<u16, u64>,
    first_error: Option<String>,
    extra: Option<String>,
    /// 2xx answers, warm-up included.
    answered: u64,
    /// The server's CPU per answered request (µs), and its split by thread group.
    cpu: Option<(f64, String)>,
}

impl Report {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

fn run_load(
    name: &str,
    addr: SocketAddr,
    conns: u64,
    warmup: Duration,
    measure: Duration,
) -> Report {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let barrier = Arc::new(Barrier::new(conns as usize + 1));
    let start_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let threads: Vec<_> = (0..conns)
        .map(|t| {
            let barrier = Arc::clone(&barrier);
            let start_at = Arc::clone(&start_at);
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || {
                    let mut result = ConnResult::default();
                    let mut conn = Conn::open(addr).ok();
                    barrier.wait();
                    let start = *start_at
                        .get()
                        .expect("the start time is set before the barrier");
                    let measured_from = start + warmup;
                    let end = measured_from + measure;
                    let mut seq: u64 = 0;
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        let measured = now >= measured_from;
                        let id = format!("load-{nonce}-{run}-{t}-{seq}");
                        let country = COUNTRIES[((t + seq) % 3) as usize];
                        seq += 1;
                        let payload = body(&id, country);
                        let c = match conn.as_mut() {
                            Some(c) => c,
                            None => match Conn::open(addr) {
                                Ok(c) => {
                                    result.reconnects += 1;
                                    conn.insert(c)
                                }
                                Err(e) => {
                                    if measured {
                                        result.errors += 1;
                                        result.first_error.get_or_insert(format!("connect: {e}"));
                                    }
                                    std::thread::sleep(Duration::from_millis(10));
                                    continue;
                                }
                            },
                        };
                        let sent = Instant::now();
                        let outcome = c.post("/hooks/salesforce", &payload);
                        let done = Instant::now();
                        match outcome {
                            Ok((status, keep_alive)) => {
                                if (200..300).contains(&status) {
                                    result.answered += 1;
                                }
                                if measured {
                                    let us = (done - sent).as_micros().min(u32::MAX as u128) as u32;
                                    result.latencies_us.push(us);
                                    result.last_done = Some(done);
                                    if !(200..300).contains(&status) {
                                        result.errors += 1;
                                        *result.statuses.entry(status).or_insert(0) += 1;
                                        result.first_error.get_or_insert(format!(
                                            "HTTP {status}: {}",
                                            String::from_utf8_lossy(&c.body)
                                        ));
                                    }
                                }
                                if !keep_alive {
                                    conn = None;
                                }
                            }
                            Err(e) => {
                                if measured {
                                    result.errors += 1;
                                    result.last_done = Some(done);
                                    result.first_error.get_or_insert(format!("I/O: {e}"));
                                }
                                conn = None;
                            }
                        }
                    }
                    result
                })
                .expect("cannot start a load thread")
        })
        .collect();

    start_at
        .set(Instant::now() + Duration::from_millis(50))
        .expect("the start time is set once");
    barrier.wait();
    let started = *start_at.get().expect("the start time was just set");

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut reconnects = 0;
    let mut statuses = BTreeMap::new();
    let mut first_error = None;
    let mut last_done = started + warmup;
    let mut answered = 0;
    for t in threads {
        let r = t.join().expect("a load thread panicked");
        answered += r.answered;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        reconnects += r.reconnects;
        for (s, n) in r.statuses {
            *statuses.entry(s).or_insert(0) += n;
        }
        if first_error.is_none() {
            first_error = r.first_error;
        }
        if let Some(d) = r.last_done {
            last_done = last_done.max(d);
        }
    }
    // Requests that failed at the I/O level have no latency but still count as requests.
    let io_failures = errors - statuses.values().sum::<u64>();
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    Report {
        name: name.to_string(),
        requests: latencies.len() as u64 + io_failures,
        errors,
        reconnects,
        secs: (last_done - (started + warmup)).as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: latencies.last().map_or(f64::NAN, |&u| u as f64 / 1000.0),
        statuses,
        first_error,
        extra: None,
        answered,
        cpu: None,
    }
}

// ---------------------------------------------------------------------------------------------
// a. The durable server: the release binary.

/// The relay process; SIGKILLed on drop if it was not stopped cleanly.
struct RelayProcess {
    child: Child,
    log: PathBuf,
}

impl RelayProcess {
    fn binary() -> PathBuf {
        if let Ok(bin) = std::env::var("HOOKRELAY_BIN") {
            return PathBuf::from(bin);
        }
        // Cargo builds the package's binaries for benches and says where, in the bench profile
        // (release settings), so this is never stale.
        PathBuf::from(env!("CARGO_BIN_EXE_hookrelay"))
    }

    fn start(dir: &Path, config: &Path) -> RelayProcess {
        let bin = Self::binary();
        assert!(
            bin.is_file(),
            "the relay binary {} is missing; build it with `cargo build --release` or set HOOKRELAY_BIN",
            bin.display()
        );
        let log = dir.join("relay.log");
        let log_file = std::fs::File::create(&log).expect("cannot create the relay's log file");
        let child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .expect("cannot share the relay's log file"),
            )
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        RelayProcess { child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Polls `GET /healthz` until it answers 200, failing early if the process exits.
    fn wait_ready(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the relay exited with {status} before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if healthz(addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the relay was not ready within {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after `STOP_TIMEOUT`).
    fn stop(mut self) -> String {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on a child we started and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        if rc != 0 {
            return format!("SIGTERM failed: {}", std::io::Error::last_os_error());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return format!("exited with {status}"),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return format!("did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed");
                }
                Err(e) => return format!("could not wait for it: {e}"),
            }
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn run_durable(conns: u64, warmup: Duration, measure: Duration) -> Report {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text(dir.path(), port)).expect("cannot write the temp config");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let mut relay = RelayProcess::start(dir.path(), &config);
    relay.wait_ready(addr);
    let pid = relay.child.id();
    let before = common::cpu::by_group(pid);
    let mut report = run_load("durable (binary)", addr, conns, warmup, measure);
    // The work the load left behind (the applier catching up) belongs to those requests.
    common::cpu::settle(pid, Duration::from_secs(10));
    let after = common::cpu::by_group(pid);
    report.cpu = Some(common::cpu::per_request(&before, &after, report.answered));
    let stopped = relay.stop();
    let store_mb = dir_size(&dir.path().join("store")) as f64 / 1e6;
    report.extra = Some(format!("relay {stopped}; store {store_mb:.1} MB"));
    report
}

// ---------------------------------------------------------------------------------------------
// b. The no-storage baseline: the real handler's work, minus the journal.

struct BaselineState {
    settings: Settings,
    next_id: AtomicU64,
}

async fn baseline_receive(
    req: HttpRequest,
    source: web::Path<String>,
    mut payload: web::Payload,
    state: web::Data<BaselineState>,
) -> HttpResponse {
    let settings = &state.settings;
    let source = source.into_inner();
    if !settings.sources.contains_key(&source) {
        return HttpResponse::NotFound().json(json!({"error": "unknown_source"}));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return HttpResponse::UnsupportedMediaType()
            .json(json!({"error": "unsupported_media_type"}));
    }
    let limit = settings.server.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body =
        web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit as u64) as usize);
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return HttpResponse::BadRequest().json(json!({"error": "bad_request"}));
        };
        if body.len() + chunk.len() > limit {
            return HttpResponse::PayloadTooLarge().json(json!({"error": "payload_too_large"}));
        }
        body.extend_from_slice(&chunk);
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().json(json!({"error": "malformed_json"}));
    };
    let Ok(opportunity) = Opportunity::parse(&doc) else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "invalid_record"}));
    };
    let country = doc
        .get(&settings.routing.field)
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(region) = settings.routing.region_for(country).map(str::to_string) else {
        return HttpResponse::UnprocessableEntity().json(json!({"error": "unroutable"}));
    };
    // What the real handler hands to the journal, built and then dropped.
    let raw = String::from_utf8_lossy(&body).into_owned();
    let external_id = opportunity.id.clone();
    std::hint::black_box((
        source,
        external_id,
        raw,
        Record::Opportunity(opportunity),
        region,
    ));
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Accepted().json(json!({"status": "accepted", "id": id.to_string()}))
}

/// The baseline server on its own thread with its own actix `System`.
struct Baseline {
    handle: ServerHandle,
    thread: std::thread::JoinHandle<()>,
    addr: SocketAddr,
}

impl Baseline {
    fn start(settings: Settings) -> Baseline {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the baseline server");
        let addr = listener
            .local_addr()
            .expect("the baseline listener has no address");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("baseline-server".into())
            .spawn(move || {
                let state = web::Data::new(BaselineState {
                    settings,
                    next_id: AtomicU64::new(1),
                });
                let result = actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .route("/hooks/{source}", web::post().to(baseline_receive))
                            .route(
                                "/healthz",
                                web::get().to(|| async {
                                    HttpResponse::Ok().json(json!({"status": "ok"}))
                                }),
                            )
                    })
                    .listen(listener)?
                    .shutdown_timeout(2)
                    .run();
                    let _ = tx.send(server.handle());
                    server.await
                });
                if let Err(e) = result {
                    eprintln!("the baseline server failed: {e}");
                }
            })
            .expect("cannot start the baseline server thread");
        let handle = rx
            .recv()
            .expect("the baseline server did not start (see the error above)");
        Baseline {
            handle,
            thread,
            addr,
        }
    }

    fn stop(self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        self.thread
            .join()
            .expect("the baseline server thread panicked");
    }
}

fn run_baseline(conns: u64, warmup: Duration, measure: Duration) -> Report {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let settings =
        Settings::parse(&config_text(dir.path(), 0)).expect("the generated config is valid");
    let baseline = Baseline::start(settings);
    let deadline = Instant::now() + READY_TIMEOUT;
    while !healthz(baseline.addr) {
        assert!(
            Instant::now() < deadline,
            "the baseline server never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = run_load(
        "no-storage (in-proc)",
        baseline.addr,
        conns,
        warmup,
        measure,
    );
    baseline.stop();
    report
}

// ---------------------------------------------------------------------------------------------
// Optional: the real Application in process, to read the journal's group-commit statistics.

fn run_inproc_durable(conns: u64, warmup: Duration, measure: Duration) -> Report {
    use hookrelay::startup::Application;

    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let settings =
        Settings::parse(&config_text(dir.path(), 0)).expect("the generated config is valid");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("inproc-relay".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).map_err(|e| e.to_string())?;
                let _ = tx.send((app.port(), app.handle(), app.journal().clone()));
                app.run_until_stopped().await.map_err(|e| e.to_string())
            });
            if let Err(e) = result {
                eprintln!("the in-process relay failed: {e}");
            }
        })
        .expect("cannot start the in-process relay thread");
    let (port, handle, journal) = rx
        .recv()
        .expect("the in-process relay did not start (see the error above)");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + READY_TIMEOUT;
    while !healthz(addr) {
        assert!(
            Instant::now() < deadline,
            "the in-process relay never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = (
        journal.stats().ops.load(Ordering::Relaxed),
        journal.stats().commits.load(Ordering::Relaxed),
    );
    let mut report = run_load("durable (in-proc)", addr, conns, warmup, measure);
    let ops = journal.stats().ops.load(Ordering::Relaxed) - before.0;
    let commits = journal.stats().commits.load(Ordering::Relaxed) - before.1;
    report.extra = Some(format!(
        "{ops} journal ops in {commits} commits: mean batch {:.1}, {:.0} commits/s",
        ops as f64 / commits.max(1) as f64,
        commits as f64 / (warmup + measure).as_secs_f64()
    ));
    actix_web::rt::System::new().block_on(handle.stop(true));
    thread.join().expect("the in-process relay thread panicked");
    report
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
    if only.is_empty() || only == "baseline" {
        reports.push(run_baseline(conns, warmup, measure));
    }
    if only.is_empty() || only == "durable" {
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
    for r in &reports {
        if let Some((total, split)) = &r.cpu {
            println!(
                "{}: relay CPU {total:.0} µs per webhook ({split}), over {} answered",
                r.name, r.answered
            );
        }
    }
}
