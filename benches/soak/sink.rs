//! The sink: the shared Slack stand-in (`common/sink.rs`) counting every POST, per path too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::common;

#[derive(Default)]
pub(super) struct SinkCounts {
    /// POSTs answered 200.
    pub(super) received: AtomicU64,
    /// Per path, for the summary.
    pub(super) by_path: Mutex<BTreeMap<String, u64>>,
}

pub(super) fn start_sink() -> (SocketAddr, Arc<SinkCounts>) {
    let counts = Arc::new(SinkCounts::default());
    let shared = Arc::clone(&counts);
    let addr = common::sink::start(
        "sink",
        Arc::new(move |path: &str, _body: &[u8], _at| {
            shared.received.fetch_add(1, Ordering::Relaxed);
            *shared
                .by_path
                .lock()
                .unwrap()
                .entry(path.to_string())
                .or_insert(0) += 1;
        }),
    );
    (addr, counts)
}
