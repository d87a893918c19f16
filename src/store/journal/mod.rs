//! The single writer: group commit of every command through the write-ahead log.
//!
//! Requests and workers send commands over a channel; one thread takes every command waiting at
//! that moment, turns them into sled writes (`store/batch/`), appends those as one log record
//! with one `write` and one `fdatasync` ([`super::wal`]), and answers intake at once. The applier
//! thread (`store/applier.rs`) applies the record to sled behind it and answers the commands that
//! must see sled updated first (outcomes, pauses, replays). Under load the batch grows by itself:
//! while one `fdatasync` runs, the next requests queue up and share the next one.
//!
//! This file holds the handle ([`Journal`]) and the commands it sends; `writer.rs` the thread
//! that commits them, `recover.rs` what start-up reads back from the log, `counters.rs` the queue
//! counters and statistics.

mod counters;
mod digest;
mod recover;
mod writer;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use super::applier::{Applier, Stall};
use super::click::{Click, Clicked};
pub use super::commands::{
    target_key, Accepted, DeliveryUpdate, Idempotency, NewNotification, Waker, COALESCE_GRACE_MS,
};
use super::commands::{AcceptReply, Deltas};
use super::disk_sync::DiskSync;
use super::index::{self, ListState};
use super::records::DeliveryState;
use super::space::Space;
use super::wal::segment::SegmentWriter;
use super::wal::{self, tail::Tail};
use super::{encode, keys, Store, StoreError};
pub use counters::JournalStats;
use recover::recover;
use writer::Writer;

enum Command {
    Accept(Box<NewNotification>, AcceptReply),
    /// Fresh deliveries for dead letters; answers the new delivery ids (None: not a dead letter).
    Replay(
        Vec<u64>,
        oneshot::Sender<Result<Vec<Option<u64>>, StoreError>>,
    ),
    /// Keys to insert and remove, already encoded.
    Write(Box<WriteSet>, oneshot::Sender<Result<(), StoreError>>),
    /// A click on an approval request.
    Click(Box<Click>, oneshot::Sender<Result<Clicked, StoreError>>),
    Close,
}

#[derive(Default)]
pub(super) struct WriteSet {
    insert: Vec<(Vec<u8>, Vec<u8>)>,
    remove: Vec<Vec<u8>>,
    /// How the counters change when this is on disk.
    deltas: Deltas,
}

impl WriteSet {
    /// The writes of one delivery outcome, added to this set.
    fn add_update(&mut self, update: &DeliveryUpdate) {
        let d = &update.delivery;
        if let Some(old) = update.previous_due_ms {
            self.remove.push(keys::due(&d.region, old, d.id));
            if d.due_ms().is_none() {
                *self.deltas.pending.entry(d.region.clone()).or_insert(0) -= 1;
            }
        }
        if let Some(due) = d.due_ms() {
            self.insert
                .push((keys::due(&d.region, due, d.id), Vec::new()));
        }
        if matches!(d.state, DeliveryState::Dead { .. }) {
            self.insert.push((keys::dead(d.id).to_vec(), Vec::new()));
            self.deltas.dead += 1;
        }
        // A settled delivery moves from the pending index to its state's.
        let state = ListState::of_delivery(&d.state);
        if update.previous_due_ms.is_some()
            && state != ListState::Pending
            && !update.source.is_empty()
        {
            let nid = d.notification_id;
            self.remove.extend(index::delivery_key(
                &update.source,
                ListState::Pending,
                nid,
                d.id,
            ));
            if let Some(key) = index::delivery_key(&update.source, state, nid, d.id) {
                self.insert.push((key, Vec::new()));
            }
        }
        if let Some(until) = update.pause_region_until_ms {
            self.insert
                .push((keys::pause(&d.region), until.to_be_bytes().to_vec()));
        }
        if let Some(reason) = &update.pause_region_reason {
            self.insert
                .push((keys::manual_pause(&d.region), reason.as_bytes().to_vec()));
        }
        self.insert.push((keys::delivery(d.id).to_vec(), encode(d)));
    }
}

/// Handle to the writer. Clone it freely; every clone feeds the same thread.
#[derive(Clone)]
pub struct Journal {
    /// Where commands go.
    tx: Sender<Command>,
    /// Shared with the writer thread.
    stats: Arc<JournalStats>,
    /// Room on the store's disk; whether writes can be taken.
    space: Arc<Space>,
}

impl Journal {
    /// Recovers the log (replaying it into sled happens behind, in the applier) and starts the
    /// writer and applier threads. The handle is the writer's; it returns once both stopped and
    /// the store is checkpointed.
    pub fn start(
        store: Store,
        waker: Option<Waker>,
    ) -> Result<(Journal, JoinHandle<()>), StoreError> {
        let recovered = recover(&store)?;
        let sync = DiskSync::open(store.path())?;
        let dir = wal::dir(store.path());
        let log = SegmentWriter::open(&dir, recovered.last_lsn, store.options.segment_bytes)?;
        let progress = Arc::clone(&store.progress);
        progress.reset(recovered.checkpoint, recovered.last_lsn);

        let stats = Arc::new(JournalStats::default());
        if let Ok(mut pending) = stats.pending.lock() {
            pending.extend(recovered.counters.pending.clone());
        }
        stats.dead.store(recovered.counters.dead, Ordering::Relaxed);

        let (to_applier, applier_rx) = crossbeam_channel::unbounded();
        let applier = Applier {
            store: store.clone(),
            tail: Tail::new(&dir, recovered.checkpoint + 1),
            progress: Arc::clone(&progress),
            sync,
            applied: recovered.checkpoint,
            checkpointed: recovered.checkpoint,
            replay_until: recovered.last_lsn,
            last_checkpoint: std::time::Instant::now(),
            bytes_since_checkpoint: 0,
            waker: waker.clone(),
            stall: Stall::from_env(),
            headroom: super::headroom::Headroom::open(store.path()),
            pending: None,
        };
        let applier = std::thread::Builder::new()
            .name("applier".into())
            .spawn(move || applier.run(applier_rx))?;

        let (tx, rx) = crossbeam_channel::unbounded();
        let space = Arc::clone(&store.space);
        let writer = Writer {
            store,
            log,
            overlay: recovered.overlay,
            next_id: recovered.next_id,
            minute: recovered.minute,
            counters: recovered.counters,
            stats: Arc::clone(&stats),
            progress,
            to_applier,
            space: Arc::clone(&space),
            waker,
            last_sample: std::time::Instant::now(),
            unapplied: VecDeque::new(),
            unapplied_bytes: 0,
        };
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                writer.run(rx);
                if applier.join().is_err() {
                    log::error!("The applier thread panicked; the next start replays the log.");
                }
            })?;
        Ok((Journal { tx, stats, space }, handle))
    }

    /// Stores a notification (or its repeat); resolves once that is on disk.
    pub async fn accept(&self, new: NewNotification) -> Result<Accepted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Accept(Box::new(new), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Journal::accept`] for threads outside an async runtime (benches, tools).
    pub fn accept_blocking(&self, new: NewNotification) -> Result<Accepted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Accept(Box::new(new), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Records a delivery outcome; returns once it is on disk.
    pub fn record(&self, update: DeliveryUpdate) -> Result<(), StoreError> {
        let mut set = WriteSet::default();
        set.add_update(&update);
        self.write(set)
    }

    /// Removes a due-queue entry whose delivery is gone or already settled, so the scheduler
    /// does not hand it out again and again.
    pub fn drop_due(&self, region: &str, due_ms: u64, delivery_id: u64) -> Result<(), StoreError> {
        let set = WriteSet {
            remove: vec![keys::due(region, due_ms, delivery_id)],
            deltas: Deltas {
                pending: HashMap::from([(region.to_string(), -1)]),
                dead: 0,
            },
            ..WriteSet::default()
        };
        self.write(set)
    }

    /// Removes keys (the retention purge); returns once that is on disk.
    pub fn remove(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let dead = keys
            .iter()
            .filter(|k| k.first() == Some(&keys::DEAD))
            .count() as i64;
        let deltas = Deltas {
            pending: HashMap::new(),
            dead: -dead,
        };
        self.write(WriteSet {
            remove: keys,
            deltas,
            ..WriteSet::default()
        })
    }

    /// Deliveries waiting in the queue now, all targets together.
    pub fn pending(&self) -> u64 {
        self.pending_by_target().values().sum()
    }

    /// Deliveries waiting in one target's queue now.
    pub fn pending_of(&self, target: &str) -> u64 {
        match self.stats.pending.lock() {
            Ok(p) => p.get(target).map_or(0, |v| (*v).max(0) as u64),
            Err(_) => 0,
        }
    }

    /// Deliveries waiting per target now.
    pub fn pending_by_target(&self) -> HashMap<String, u64> {
        match self.stats.pending.lock() {
            Ok(p) => p
                .iter()
                .map(|(k, v)| (k.clone(), (*v).max(0) as u64))
                .collect(),
            Err(_) => HashMap::new(),
        }
    }

    /// Pauses a region until `resume`, with a reason shown to the operator.
    pub fn pause(&self, region: &str, reason: &str) -> Result<(), StoreError> {
        let insert = vec![(keys::manual_pause(region), reason.as_bytes().to_vec())];
        self.write(WriteSet {
            insert,
            ..WriteSet::default()
        })
    }

    pub fn resume(&self, region: &str) -> Result<(), StoreError> {
        self.write(WriteSet {
            remove: vec![keys::manual_pause(region)],
            ..WriteSet::default()
        })
    }

    /// Drops a dead letter from the list; its delivery stays in the history.
    pub fn drop_dead(&self, delivery_id: u64) -> Result<(), StoreError> {
        let deltas = Deltas {
            pending: HashMap::new(),
            dead: -1,
        };
        let remove = vec![keys::dead(delivery_id).to_vec()];
        self.write(WriteSet {
            remove,
            deltas,
            ..WriteSet::default()
        })
    }

    /// Replays dead letters: each gets a fresh delivery with a new attempt budget, and leaves
    /// the dead-letter list; the dead delivery stays in the notification's history.
    pub fn replay(&self, delivery_ids: Vec<u64>) -> Result<Vec<Option<u64>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Replay(delivery_ids, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Stores a click on an approval request and what it causes; returns once on disk. Blocking:
    /// the Request URL calls it in `web::block`, Socket Mode from its own thread.
    pub fn click_blocking(&self, click: Click) -> Result<Clicked, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Click(Box::new(click), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Whether the writer still takes commands.
    pub fn is_open(&self) -> bool {
        !self.stats.closed.load(Ordering::SeqCst)
    }

    /// Whether the store refuses writes although it is open (a log write failed).
    pub fn failing(&self) -> bool {
        self.stats.failed.load(Ordering::SeqCst)
    }

    /// Room on the store's disk, and whether it is full or broken.
    pub fn space(&self) -> &Arc<Space> {
        &self.space
    }

    /// Dead letters now.
    pub fn dead_letters(&self) -> u64 {
        self.stats.dead.load(Ordering::Relaxed).max(0) as u64
    }

    /// Asks the writer to commit what is queued and stop; later commands fail with `Closed`.
    pub fn close(&self) {
        let _ = self.tx.send(Command::Close);
    }

    pub fn stats(&self) -> &JournalStats {
        &self.stats
    }

    fn write(&self, set: WriteSet) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Write(Box::new(set), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod format_tests;
