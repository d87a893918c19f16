//! The single writer: group commit of intake and delivery outcomes.
//!
//! Requests and workers send commands over a channel; one thread takes every command waiting at
//! that moment, applies them as one atomic sled batch, flushes, `fdatasync`s (see
//! [`DiskSync`]) and only then answers them all. Under load the batch grows by itself: while one
//! flush runs, the next requests queue up and share the next one. It avoids sled's
//! `flush_async()`, which deadlocks with many waiters (sled #1308), and its 500 ms background flush.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::disk_sync::DiskSync;
use super::records::{Delivery, DeliveryState, Notification, Record};
use super::{encode, keys, now_ms, Store, StoreError};

/// Most commands in one batch: bounds the latency of the first request in a very large batch.
const MAX_BATCH: usize = 1024;

/// A webhook that passed validation, to be stored with its first delivery.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The `[sources.NAME]` it came through.
    pub source: String,
    /// The sender's id, for idempotency.
    pub external_id: String,
    /// The body as received.
    pub raw: String,
    /// The validated fields.
    pub record: Record,
    /// The region it goes to.
    pub region: String,
}

/// How an accepted webhook was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now, with a pending delivery.
    New(u64),
    /// Already stored earlier under this id; nothing was written.
    Duplicate(u64),
}

/// A delivery's new state after an attempt, written by a worker.
#[derive(Debug, Clone)]
pub struct DeliveryUpdate {
    /// The delivery as it is now.
    pub delivery: Delivery,
    /// Its due-queue time before the attempt, so that entry can be removed.
    pub previous_due_ms: Option<u64>,
    /// Set after a 429: the region waits until then (ms), and so does it after a restart.
    pub pause_region_until_ms: Option<u64>,
}

enum Command {
    Accept(
        Box<NewNotification>,
        oneshot::Sender<Result<Accepted, StoreError>>,
    ),
    Record(Box<DeliveryUpdate>, oneshot::Sender<Result<(), StoreError>>),
    /// Removes one due-queue key that points at nothing pending.
    DropDue(Vec<u8>, oneshot::Sender<Result<(), StoreError>>),
    Close,
}

/// Counters for benches and metrics: `ops / commits` is the mean group-commit size.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Batches flushed to disk.
    pub commits: AtomicU64,
    /// Commands those batches held.
    pub ops: AtomicU64,
}

/// Handle to the writer thread. Clone it freely; every clone feeds the same thread.
#[derive(Clone)]
pub struct Journal {
    /// Where commands go.
    tx: Sender<Command>,
    /// Shared with the writer thread.
    stats: Arc<JournalStats>,
}

/// Called after a batch that stored new notifications, to wake the scheduler.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

impl Journal {
    /// Starts the writer thread on an open store.
    pub fn start(
        store: Store,
        waker: Option<Waker>,
    ) -> Result<(Journal, JoinHandle<()>), StoreError> {
        let sync = DiskSync::open(store.path())?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(JournalStats::default());
        let thread_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || run(store, rx, sync, thread_stats, waker))?;
        Ok((Journal { tx, stats }, handle))
    }

    /// Stores a notification and its first delivery; resolves once they are on disk.
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
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Record(Box::new(update), reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Removes a due-queue entry whose delivery is gone or already settled, so the scheduler
    /// does not hand it out again and again.
    pub fn drop_due(&self, region: &str, due_ms: u64, delivery_id: u64) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let key = keys::due(region, due_ms, delivery_id);
        self.tx
            .send(Command::DropDue(key, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Asks the writer to commit what is queued and stop; later commands fail with `Closed`.
    pub fn close(&self) {
        let _ = self.tx.send(Command::Close);
    }

    pub fn stats(&self) -> &JournalStats {
        &self.stats
    }
}

fn run(
    store: Store,
    rx: Receiver<Command>,
    mut sync: DiskSync,
    stats: Arc<JournalStats>,
    waker: Option<Waker>,
) {
    while let Ok(first) = rx.recv() {
        let mut commands = vec![first];
        while commands.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => commands.push(c),
                Err(_) => break,
            }
        }
        let closing = commands.iter().any(|c| matches!(c, Command::Close));
        let accepted_any = commit(&store, &mut sync, commands, &stats);
        if accepted_any {
            if let Some(wake) = &waker {
                wake();
            }
        }
        if closing {
            break;
        }
    }
    // Anything sent after Close is refused: dropping `rx` makes those senders see `Closed`.
    drop(rx);
    if let Err(e) = store.db().flush() {
        log::error!("The store could not be flushed at shutdown: {e}.");
    }
}

/// What one command will answer once the batch is (or is not) on disk.
enum Pending {
    Accept(
        oneshot::Sender<Result<Accepted, StoreError>>,
        Result<Accepted, StoreError>,
    ),
    Record(oneshot::Sender<Result<(), StoreError>>),
}

/// Applies one batch; returns whether it stored a new notification.
fn commit(
    store: &Store,
    sync: &mut DiskSync,
    commands: Vec<Command>,
    stats: &JournalStats,
) -> bool {
    let db = store.db();
    let mut batch = sled::Batch::default();
    let mut replies = Vec::with_capacity(commands.len());
    // Idempotency keys added in this batch, which the tree cannot show yet.
    let mut added: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut accepted_any = false;
    let now = now_ms();

    for command in commands {
        match command {
            Command::Close => {}
            Command::Accept(new, reply) => {
                let result = prepare_accept(db, &mut batch, &mut added, *new, now);
                accepted_any |= matches!(result, Ok(Accepted::New(_)));
                replies.push(Pending::Accept(reply, result));
            }
            Command::Record(update, reply) => {
                prepare_record(&mut batch, &update);
                replies.push(Pending::Record(reply));
            }
            Command::DropDue(key, reply) => {
                batch.remove(key);
                replies.push(Pending::Record(reply));
            }
        }
    }
    if replies.is_empty() {
        return false;
    }

    let written = db
        .apply_batch(batch)
        .and_then(|_| db.flush().map(|_| ()))
        .map_err(StoreError::from)
        .and_then(|_| sync.sync().map_err(StoreError::from));
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.ops.fetch_add(replies.len() as u64, Ordering::Relaxed);
    if let Err(e) = &written {
        log::error!(
            "A batch of {} writes could not be made durable and was refused: {e}.",
            replies.len()
        );
    }

    for pending in replies {
        match pending {
            Pending::Accept(reply, result) => {
                let _ = reply.send(written.clone().and(result));
            }
            Pending::Record(reply) => {
                let _ = reply.send(written.clone());
            }
        }
    }
    accepted_any && written.is_ok()
}

fn prepare_accept(
    db: &sled::Db,
    batch: &mut sled::Batch,
    added: &mut HashMap<Vec<u8>, u64>,
    new: NewNotification,
    now: u64,
) -> Result<Accepted, StoreError> {
    let ext_key = keys::external(&new.source, &new.external_id);
    if let Some(id) = added.get(&ext_key) {
        return Ok(Accepted::Duplicate(*id));
    }
    if let Some(v) = db.get(&ext_key)? {
        let bytes: [u8; 8] = v
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("id index".into()))?;
        return Ok(Accepted::Duplicate(u64::from_be_bytes(bytes)));
    }
    let id = db.generate_id()?;
    let delivery_id = db.generate_id()?;
    let notification = Notification {
        id,
        source: new.source,
        external_id: new.external_id,
        received_at_ms: now,
        raw: new.raw,
        record: new.record,
        region: new.region.clone(),
    };
    let delivery = Delivery {
        id: delivery_id,
        notification_id: id,
        region: new.region.clone(),
        created_at_ms: now,
        attempts: 0,
        state: DeliveryState::Pending { next_at_ms: now },
        history: Vec::new(),
    };
    batch.insert(&keys::notification(id), encode(&notification));
    batch.insert(ext_key.clone(), &id.to_be_bytes());
    batch.insert(&keys::delivery(delivery_id), encode(&delivery));
    batch.insert(keys::due(&new.region, now, delivery_id), &[]);
    added.insert(ext_key, id);
    Ok(Accepted::New(id))
}

fn prepare_record(batch: &mut sled::Batch, update: &DeliveryUpdate) {
    let d = &update.delivery;
    if let Some(old) = update.previous_due_ms {
        batch.remove(keys::due(&d.region, old, d.id));
    }
    if let Some(due) = d.due_ms() {
        batch.insert(keys::due(&d.region, due, d.id), &[]);
    }
    if matches!(d.state, DeliveryState::Dead { .. }) {
        batch.insert(&keys::dead(d.id), &[]);
    }
    if let Some(until) = update.pause_region_until_ms {
        batch.insert(keys::pause(&d.region), &until.to_be_bytes());
    }
    batch.insert(&keys::delivery(d.id), encode(d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::opportunity::Opportunity;

    fn new(id: &str) -> NewNotification {
        let raw = format!(r#"{{"id":"{id}","name":"n","country":"UK"}}"#);
        let doc = serde_json::from_str(&raw).unwrap();
        NewNotification {
            source: "crm".into(),
            external_id: id.into(),
            record: Record::Opportunity(Opportunity::parse(&doc).unwrap()),
            raw,
            region: "UK".into(),
        }
    }

    #[test]
    fn an_accepted_notification_is_queued_and_a_repeat_is_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (journal, handle) = Journal::start(store.clone(), None).unwrap();
        let Accepted::New(id) = journal.accept_blocking(new("a")).unwrap() else {
            panic!()
        };
        assert_eq!(
            journal.accept_blocking(new("a")).unwrap(),
            Accepted::Duplicate(id)
        );
        assert_eq!(store.notification(id).unwrap().unwrap().external_id, "a");
        assert_eq!(store.pending_by_region().unwrap()["UK"], 1);
        journal.close();
        handle.join().unwrap();
        assert_eq!(journal.accept_blocking(new("b")), Err(StoreError::Closed));
    }

    #[test]
    fn concurrent_repeats_in_one_batch_store_one_notification() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (journal, handle) = Journal::start(store.clone(), None).unwrap();
        let results: Vec<Accepted> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..16)
                .map(|_| s.spawn(|| journal.accept_blocking(new("same")).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results
                .iter()
                .filter(|r| matches!(r, Accepted::New(_)))
                .count(),
            1
        );
        assert_eq!(store.pending_by_region().unwrap()["UK"], 1);
        journal.close();
        handle.join().unwrap();
    }

    #[test]
    fn a_store_written_by_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(keys::FORMAT_VERSION, b"99").unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
