//! The clients: each posts unique opportunities over its own keep-alive connection, waits while
//! the backlog is over its cap, and counts the answers in the [`Load`] they share.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::common::{body, Conn};
use super::sink::SinkCounts;
use super::COUNTRIES;

/// Counters shared by the clients and the monitor.
#[derive(Default)]
pub(super) struct Load {
    /// The next notification number to post.
    pub(super) next: AtomicU64,
    /// Answered 2xx.
    pub(super) posted: AtomicU64,
    /// Answered 202 (stored, to be delivered): what the backlog is measured against.
    pub(super) accepted: AtomicU64,
    /// Non-2xx answers and I/O failures.
    pub(super) errors: AtomicU64,
    /// Connections reopened after a failure or a server close.
    pub(super) reconnects: AtomicU64,
    /// Times a client waited for the backlog to drain.
    pub(super) pauses: AtomicU64,
    /// Status → count of non-2xx answers.
    pub(super) statuses: Mutex<BTreeMap<u16, u64>>,
    pub(super) first_error: Mutex<Option<String>>,
    /// Set to stop the clients early (the relay died).
    pub(super) abort: AtomicBool,
    /// Clients that have finished.
    pub(super) finished: AtomicU64,
}

impl Load {
    pub(super) fn backlog(&self, sink: &SinkCounts) -> u64 {
        self.accepted
            .load(Ordering::Relaxed)
            .saturating_sub(sink.received.load(Ordering::Relaxed))
    }

    fn error(&self, status: Option<u16>, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = status {
            *self.statuses.lock().unwrap().entry(s).or_insert(0) += 1;
        }
        self.first_error.lock().unwrap().get_or_insert(what);
    }
}

pub(super) fn client(
    t: u64,
    addr: SocketAddr,
    total: u64,
    max_backlog: u64,
    nonce: u128,
    load: &Load,
    sink: &SinkCounts,
) {
    let mut conn: Option<Conn> = None;
    let mut opened = false;
    loop {
        if load.abort.load(Ordering::Relaxed) {
            break;
        }
        if load.backlog(sink) > max_backlog {
            load.pauses.fetch_add(1, Ordering::Relaxed);
            while load.backlog(sink) > max_backlog && !load.abort.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            continue;
        }
        let seq = load.next.fetch_add(1, Ordering::Relaxed);
        if seq >= total {
            break;
        }
        let payload = body(
            &format!("soak-{nonce}-{seq}"),
            COUNTRIES[(seq % 3) as usize],
        );
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(addr) {
                Ok(c) => {
                    if opened {
                        load.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    opened = true;
                    conn.insert(c)
                }
                Err(e) => {
                    load.error(None, format!("client {t}: connect: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match c.post("/hooks/salesforce", &payload) {
            Ok((status, keep_alive)) => {
                if (200..300).contains(&status) {
                    load.posted.fetch_add(1, Ordering::Relaxed);
                    if status == 202 {
                        load.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    let answer = String::from_utf8_lossy(&c.body).into_owned();
                    load.error(Some(status), format!("HTTP {status}: {answer}"));
                }
                if !keep_alive {
                    conn = None;
                }
            }
            Err(e) => {
                load.error(None, format!("client {t}: I/O: {e}"));
                conn = None;
            }
        }
    }
    load.finished.fetch_add(1, Ordering::Relaxed);
}
