//! The queue counters: as stored under `mcounters` ([`Counters`]), and as the handle reads them
//! with the group-commit statistics ([`JournalStats`]).
//!
//! Pending deliveries per target and dead letters are counted in every batch and stored with it,
//! so `max_pending`, `/metrics` and `/v1/status` never scan the queue. Ids (notifications and
//! deliveries share one sequence) come from `mnext_id`, written with each record that used some,
//! so a replayed record gets the same ids. A format 1 store gets both from sled once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Mutex;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde::{Deserialize, Serialize};

use crate::store::commands::Deltas;

/// The queue counters as stored under [`keys::COUNTERS`](crate::store::keys::COUNTERS).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Counters {
    pub(super) pending: BTreeMap<String, i64>,
    pub(super) dead: i64,
}

crate::store::codec::json_stored!(Counters);

impl Counters {
    pub(super) fn apply(&mut self, d: &Deltas) {
        for (target, delta) in &d.pending {
            let n = self.pending.entry(target.clone()).or_insert(0);
            *n += delta;
            if *n <= 0 {
                self.pending.remove(target);
            }
        }
        self.dead = (self.dead + d.dead).max(0);
    }
}

/// Counters for benches and metrics: `ops / commits` is the mean group-commit size.
#[derive(Debug)]
pub struct JournalStats {
    /// Flushes to disk.
    pub commits: AtomicU64,
    /// Commands those flushes made durable.
    pub ops: AtomicU64,
    /// Deliveries waiting per target (counted once at start, then kept up to date), for
    /// `store.max_pending` and the metrics: sled's `len()` would scan the tree.
    pub pending: Mutex<HashMap<String, i64>>,
    /// Dead letters, kept the same way.
    pub dead: AtomicI64,
    /// Seconds each log write + fdatasync took.
    pub flush_seconds: Histogram,
    /// Commands per flush: the group-commit batch size.
    pub batch_size: Histogram,
    /// Set when the writer has stopped: nothing more can be stored.
    pub closed: std::sync::atomic::AtomicBool,
    /// Set when a log write or sync failed for a reason other than space: the writer refuses
    /// everything, and the relay stops so that systemd restarts it (`space.rs`).
    pub failed: std::sync::atomic::AtomicBool,
}

impl Default for JournalStats {
    fn default() -> Self {
        JournalStats {
            commits: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            dead: AtomicI64::new(0),
            // 100 µs to about 3 s.
            flush_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            closed: std::sync::atomic::AtomicBool::new(false),
            failed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}
