//! The load generator: `LOAD_CONNS` keep-alive connections post unique opportunities for the
//! warm-up and the measured time; their latencies and failures make one server's [`Report`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::common::{body, Client, Conn};

const COUNTRIES: [&str; 3] = ["UK", "US", "EU"];

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

pub(super) struct Report {
    pub(super) name: String,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) reconnects: u64,
    pub(super) secs: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    pub(super) statuses: BTreeMap<u16, u64>,
    pub(super) first_error: Option<String>,
    pub(super) extra: Option<String>,
    /// 2xx answers, warm-up included.
    pub(super) answered: u64,
    /// The server's CPU per answered request (µs), and its split by thread group.
    pub(super) cpu: Option<(f64, String)>,
}

impl Report {
    pub(super) fn rps(&self) -> f64 {
        self.requests as f64 / self.secs.max(1e-9)
    }
}

pub(super) fn run_load(
    name: &str,
    addr: SocketAddr,
    conns: u64,
    warmup: Duration,
    measure: Duration,
) -> Report {
    run_load_with(name, addr, conns, warmup, measure, &Client::default())
}

/// `run_load` with connections made as `client` says (TLS, one request per connection).
pub(super) fn run_load_with(
    name: &str,
    addr: SocketAddr,
    conns: u64,
    warmup: Duration,
    measure: Duration,
    client: &Client,
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
            let client = client.clone();
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || {
                    let mut result = ConnResult::default();
                    let mut conn = Conn::open_with(addr, &client).ok();
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
                            None => match Conn::open_with(addr, &client) {
                                Ok(c) => {
                                    // A new connection per request is the load, not a failure.
                                    result.reconnects += u64::from(!client.close_each);
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
