//! The single writer: group commit of intake and delivery outcomes.
//!
//! Requests and workers send commands over a channel; one thread takes every command waiting at
//! that moment, checks idempotency, applies them as one atomic sled batch, flushes, `fdatasync`s
//! (see [`DiskSync`]) and only then answers them all. Under load the batch grows by itself: while
//! one flush runs, the next requests queue up and share the next one. sled's `flush_async()` is
//! not used: it deadlocks with many waiters (sled #1308).
//!
//! (A two-stage variant, applying the next batch while the previous one flushed, was measured
//! and dropped: it made batches smaller and cost throughput; see the journal bench.)

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::disk_sync::DiskSync;
use super::records::{Delivery, DeliveryState, MessageKind, Notification, Record, Version};
use super::{decode, encode, keys, Store, StoreError};
use crate::sources::SourceKind;

/// Most commands in one batch: bounds the latency of the first request in a very large batch.
const MAX_BATCH: usize = 1024;
/// A coalesced message is due this long after its window closes, so that every repeat accepted
/// inside the window is counted before a worker can render it.
pub const COALESCE_GRACE_MS: u64 = 1000;

/// How a repeat of a notification is recognised and what it does.
#[derive(Debug, Clone, PartialEq)]
pub enum Idempotency {
    /// No key: every request is a new notification.
    None,
    /// The same key again is a duplicate, whatever its content.
    Dedupe(String),
    /// The same key with the same content is a duplicate; with other content it is a new version,
    /// announced by a follow-up message (opportunities).
    Versioned(String),
    /// The same key within `window_ms` of the first is counted into that notification, whose one
    /// message goes out when the window closes (Tray's identical notifications).
    Coalesce { key: String, window_ms: u64 },
}

/// A webhook that passed validation, to be stored with its first delivery.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The `[sources.NAME]` it came through.
    pub source: String,
    /// Its format, to parse `raw` again later.
    pub kind: SourceKind,
    /// How repeats are recognised.
    pub idempotency: Idempotency,
    /// The body as received (normalised to JSON for form-encoded sources).
    pub raw: String,
    /// The target key: a region name or `url.…` (see [`target_key`]).
    pub region: String,
    /// The one-off webhook URL for `url.…` targets.
    pub url: Option<String>,
    /// Further targets that get the same message (a Rainforest event naming several webhooks),
    /// as (target key, one-off URL). Stored in the same batch, so all or none.
    pub also: Vec<(String, Option<String>)>,
    /// When it arrived, from the relay's clock (tests control it).
    pub received_at_ms: u64,
}

/// The target key of a one-off webhook URL: stable, and free of the secret.
pub fn target_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("url.{hex}")
}

/// How an accepted webhook was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now, with a pending delivery.
    New(u64),
    /// Already stored earlier under this key; nothing was written.
    Duplicate(u64),
    /// A new version of a stored notification, with follow-up deliveries.
    Updated(u64),
    /// Counted into a notification whose coalescing window is still open.
    Coalesced(u64),
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
    /// Set when the webhook is gone: the region pauses until an operator resumes it.
    pub pause_region_reason: Option<String>,
}

enum Command {
    Accept(Box<NewNotification>, AcceptReply),
    /// Fresh deliveries for dead letters; answers the new delivery ids (None: not a dead letter).
    Replay(
        Vec<u64>,
        oneshot::Sender<Result<Vec<Option<u64>>, StoreError>>,
    ),
    /// Keys to insert and remove, already encoded.
    Write(Box<WriteSet>, oneshot::Sender<Result<(), StoreError>>),
    Close,
}

type AcceptReply = oneshot::Sender<Result<Accepted, StoreError>>;

#[derive(Default)]
struct WriteSet {
    insert: Vec<(Vec<u8>, Vec<u8>)>,
    remove: Vec<Vec<u8>>,
    /// How the counters change when this is on disk.
    deltas: Deltas,
}

/// Changes to the queue counters that a batch makes once it is on disk.
#[derive(Default, Debug)]
struct Deltas {
    /// Pending deliveries per target.
    pending: HashMap<String, i64>,
    /// Dead letters.
    dead: i64,
}

impl Deltas {
    fn add(&mut self, other: Deltas) {
        for (k, v) in other.pending {
            *self.pending.entry(k).or_insert(0) += v;
        }
        self.dead += other.dead;
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
    /// Seconds each flush + fdatasync took.
    pub flush_seconds: Histogram,
    /// Commands per flush: the group-commit batch size.
    pub batch_size: Histogram,
    /// Set when the writer has stopped: nothing more can be stored.
    pub closed: std::sync::atomic::AtomicBool,
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
        }
    }
}

/// Handle to the writer. Clone it freely; every clone feeds the same thread.
#[derive(Clone)]
pub struct Journal {
    /// Where commands go.
    tx: Sender<Command>,
    /// Shared with the writer thread.
    stats: Arc<JournalStats>,
}

/// Called after a flush that stored new deliveries, with their target keys, to wake the
/// scheduler (which learns one-off targets this way).
pub type Waker = Arc<dyn Fn(Vec<String>) + Send + Sync>;

impl Journal {
    /// Starts the writer thread on an open store.
    pub fn start(
        store: Store,
        waker: Option<Waker>,
    ) -> Result<(Journal, JoinHandle<()>), StoreError> {
        let sync = DiskSync::open(store.path())?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(JournalStats::default());
        if let Ok(mut pending) = stats.pending.lock() {
            for (region, n) in store.pending_by_region()? {
                pending.insert(region, n as i64);
            }
        }
        stats
            .dead
            .store(store.dead_letter_count()? as i64, Ordering::Relaxed);
        let writer_stats = Arc::clone(&stats);
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer(store, rx, sync, writer_stats, waker))?;
        Ok((Journal { tx, stats }, handle))
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
        let d = &update.delivery;
        let mut set = WriteSet::default();
        if let Some(old) = update.previous_due_ms {
            set.remove.push(keys::due(&d.region, old, d.id));
            if d.due_ms().is_none() {
                set.deltas.pending.insert(d.region.clone(), -1);
            }
        }
        if let Some(due) = d.due_ms() {
            set.insert
                .push((keys::due(&d.region, due, d.id), Vec::new()));
        }
        if matches!(d.state, DeliveryState::Dead { .. }) {
            set.insert.push((keys::dead(d.id).to_vec(), Vec::new()));
            set.deltas.dead = 1;
        }
        if let Some(until) = update.pause_region_until_ms {
            set.insert
                .push((keys::pause(&d.region), until.to_be_bytes().to_vec()));
        }
        if let Some(reason) = &update.pause_region_reason {
            set.insert
                .push((keys::manual_pause(&d.region), reason.as_bytes().to_vec()));
        }
        set.insert.push((keys::delivery(d.id).to_vec(), encode(d)));
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

    /// Whether the writer still takes commands.
    pub fn is_open(&self) -> bool {
        !self.stats.closed.load(Ordering::SeqCst)
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

/// What one command answers once its batch is (or is not) on disk.
enum Reply {
    Accept(AcceptReply, Accepted),
    Replay(
        oneshot::Sender<Result<Vec<Option<u64>>, StoreError>>,
        Vec<Option<u64>>,
    ),
    Write(oneshot::Sender<Result<(), StoreError>>),
}

impl Reply {
    fn send(self, result: Result<(), StoreError>) {
        match self {
            Reply::Accept(tx, accepted) => {
                let _ = tx.send(result.map(|()| accepted));
            }
            Reply::Replay(tx, ids) => {
                let _ = tx.send(result.map(|()| ids));
            }
            Reply::Write(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

fn writer(
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
        if let Some(applied) = apply(&store, commands) {
            let targets: Vec<String> = applied.new_targets.iter().cloned().collect();
            if flush(&store, &mut sync, applied, &stats) && !targets.is_empty() {
                if let Some(wake) = &waker {
                    wake(targets);
                }
            }
        }
        if closing {
            break;
        }
    }
    // Anything sent after Close is refused: dropping `rx` makes those senders see `Closed`.
    stats.closed.store(true, Ordering::SeqCst);
}

/// One applied batch, waiting for its flush.
struct Applied {
    replies: Vec<Reply>,
    /// Counter changes once it is on disk.
    deltas: Deltas,
    /// Targets that got new deliveries (the scheduler is woken for them after the flush).
    new_targets: BTreeSet<String>,
}

/// The batch being built, with the notifications it changes so later commands in the same
/// batch see them (the tree shows them only after `apply_batch`).
struct BatchState<'a> {
    db: &'a sled::Db,
    batch: sled::Batch,
    /// Idempotency key → notification id, for keys added in this batch.
    keys: HashMap<Vec<u8>, u64>,
    /// Notifications created or changed in this batch, written at its end.
    notifications: HashMap<u64, Notification>,
    /// Coalescing entries added in this batch: key → (notification, delivery, window end).
    windows: HashMap<Vec<u8>, Window>,
    /// Counter changes this batch makes.
    deltas: Deltas,
    new_targets: BTreeSet<String>,
}

/// Applies one batch; `None` when it held nothing to answer (only Close) or when it failed (its
/// commands are answered with the error at once, since nothing was applied).
fn apply(store: &Store, commands: Vec<Command>) -> Option<Applied> {
    let mut state = BatchState {
        db: store.db(),
        batch: sled::Batch::default(),
        keys: HashMap::new(),
        notifications: HashMap::new(),
        windows: HashMap::new(),
        deltas: Deltas::default(),
        new_targets: BTreeSet::new(),
    };
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        match command {
            Command::Close => {}
            Command::Accept(new, reply) => match state.accept(*new) {
                Ok(accepted) => replies.push(Reply::Accept(reply, accepted)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Replay(ids, reply) => match state.replay(&ids) {
                Ok(new_ids) => replies.push(Reply::Replay(reply, new_ids)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Write(set, reply) => {
                state.deltas.add(set.deltas);
                for k in set.remove {
                    state.batch.remove(k);
                }
                for (k, v) in set.insert {
                    state.batch.insert(k, v);
                }
                replies.push(Reply::Write(reply));
            }
        }
    }
    if replies.is_empty() {
        return None;
    }
    let BatchState {
        db,
        mut batch,
        notifications,
        new_targets,
        deltas,
        ..
    } = state;
    for (id, n) in &notifications {
        batch.insert(&keys::notification(*id), encode(n));
    }
    if let Err(e) = db.apply_batch(batch) {
        let e = StoreError::from(e);
        log::error!(
            "A batch of {} writes could not be applied and was refused: {e}.",
            replies.len()
        );
        for r in replies {
            r.send(Err(e.clone()));
        }
        return None;
    }
    Some(Applied {
        replies,
        deltas,
        new_targets,
    })
}

impl BatchState<'_> {
    fn accept(&mut self, new: NewNotification) -> Result<Accepted, StoreError> {
        match new.idempotency.clone() {
            Idempotency::None => Ok(Accepted::New(self.create(new, None, 0)?.0)),
            Idempotency::Dedupe(key) => {
                let ext = keys::external(&new.source, &key);
                match self.lookup(&ext)? {
                    Some(id) => Ok(Accepted::Duplicate(id)),
                    None => Ok(Accepted::New(self.create(new, Some((ext, key)), 0)?.0)),
                }
            }
            Idempotency::Versioned(key) => {
                let ext = keys::external(&new.source, &key);
                match self.lookup(&ext)? {
                    None => Ok(Accepted::New(self.create(new, Some((ext, key)), 0)?.0)),
                    Some(id) => self.update(id, (ext, key), new),
                }
            }
            Idempotency::Coalesce { key, window_ms } => {
                let ckey = keys::coalesce(&new.source, &key);
                if let Some(w) = self.window(&ckey)? {
                    // Only into a message no worker has tried yet: once it is out, a repeat is news.
                    if new.received_at_ms < w.ends_ms && self.untried(w.delivery_id)? {
                        let mut n = self.notification(w.notification_id)?;
                        n.count = n.count.saturating_add(1);
                        self.notifications.insert(w.notification_id, n);
                        return Ok(Accepted::Coalesced(w.notification_id));
                    }
                }
                let ends_ms = new.received_at_ms.saturating_add(window_ms);
                let (id, delivery_id) = self.create(new, None, window_ms + COALESCE_GRACE_MS)?;
                let w = Window {
                    notification_id: id,
                    delivery_id,
                    ends_ms,
                };
                self.batch.insert(ckey.clone(), w.encode().to_vec());
                self.windows.insert(ckey, w);
                Ok(Accepted::New(id))
            }
        }
    }

    fn replay(&mut self, ids: &[u64]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let dead_key = keys::dead(*id);
            let Some(v) = self.db.get(keys::delivery(*id))? else {
                out.push(None);
                continue;
            };
            let old: Delivery = decode(&v)?;
            if self.db.get(dead_key)?.is_none() || !matches!(old.state, DeliveryState::Dead { .. })
            {
                out.push(None);
                continue;
            }
            let now = crate::store::now_ms();
            let new_id = self.deliver(
                old.notification_id,
                &old.region,
                old.url.clone(),
                now,
                old.message.clone(),
            )?;
            self.batch.remove(&dead_key);
            self.deltas.dead -= 1;
            let mut n = self.notification(old.notification_id)?;
            n.deliveries.push(new_id);
            self.notifications.insert(old.notification_id, n);
            out.push(Some(new_id));
        }
        Ok(out)
    }

    /// The open coalescing window of a key, if any.
    fn window(&self, key: &[u8]) -> Result<Option<Window>, StoreError> {
        if let Some(w) = self.windows.get(key) {
            return Ok(Some(*w));
        }
        Ok(self.db.get(key)?.and_then(|v| Window::decode(&v)))
    }

    /// Whether a delivery is still pending and was never attempted.
    fn untried(&self, delivery_id: u64) -> Result<bool, StoreError> {
        if self.windows.values().any(|w| w.delivery_id == delivery_id) {
            return Ok(true); // created in this batch
        }
        Ok(match self.db.get(keys::delivery(delivery_id))? {
            Some(v) => {
                let d: Delivery = decode(&v)?;
                d.due_ms().is_some() && d.history.is_empty()
            }
            None => false,
        })
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        if let Some(id) = self.keys.get(key) {
            return Ok(Some(*id));
        }
        match self.db.get(key)? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("id index".into()))?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    fn notification(&self, id: u64) -> Result<Notification, StoreError> {
        if let Some(n) = self.notifications.get(&id) {
            return Ok(n.clone());
        }
        match self.db.get(keys::notification(id))? {
            Some(v) => decode(&v),
            None => Err(StoreError::Corrupt(format!(
                "notification {id} is indexed but missing"
            ))),
        }
    }

    /// Stores a new notification with its deliveries; returns (notification id, first delivery id).
    fn create(
        &mut self,
        new: NewNotification,
        index: Option<(Vec<u8>, String)>,
        delay_ms: u64,
    ) -> Result<(u64, u64), StoreError> {
        let id = self.db.generate_id()?;
        let external_id = match index {
            Some((ext, key)) => {
                self.batch.insert(ext.clone(), &id.to_be_bytes());
                self.keys.insert(ext, id);
                key
            }
            None => id.to_string(),
        };
        let due = new.received_at_ms + delay_ms;
        let first = self.deliver(id, &new.region, new.url.clone(), due, MessageKind::Full)?;
        let mut deliveries = vec![first];
        for (region, url) in &new.also {
            deliveries.push(self.deliver(id, region, url.clone(), due, MessageKind::Full)?);
        }
        let n = Notification {
            id,
            source: new.source,
            external_id,
            received_at_ms: new.received_at_ms,
            kind: new.kind,
            raw: new.raw,
            earlier: Vec::new(),
            deliveries,
            count: 1,
            region: new.region,
            url: new.url,
        };
        self.notifications.insert(id, n);
        Ok((id, first))
    }

    fn update(
        &mut self,
        id: u64,
        index: (Vec<u8>, String),
        new: NewNotification,
    ) -> Result<Accepted, StoreError> {
        let mut n = self.notification(id)?;
        if n.kind != new.kind {
            // The source changed kind in the config: versions of different formats cannot be
            // compared, so this is a new notification and the key now points at it.
            return Ok(Accepted::New(self.create(new, Some(index), 0)?.0));
        }
        let same = match (n.record(), Record::parse(new.kind, new.raw.as_bytes())) {
            (Ok(old), Ok(fresh)) => old == fresh,
            _ => n.raw == new.raw,
        };
        if same {
            return Ok(Accepted::Duplicate(id));
        }
        let previous = Version {
            received_at_ms: n.received_at_ms,
            raw: std::mem::take(&mut n.raw),
        };
        n.earlier.push(previous);
        n.raw = new.raw;
        n.received_at_ms = new.received_at_ms;
        let version = n.latest_version();
        let (old_region, old_url) = (n.region.clone(), n.url.clone());
        n.region = new.region.clone();
        n.url = new.url.clone();
        self.notifications.insert(id, n);
        let now = new.received_at_ms;
        let added = if old_region == new.region {
            let changes = MessageKind::Changes { version };
            vec![self.deliver(id, &new.region, new.url, now, changes)?]
        } else {
            let full = self.deliver(id, &new.region, new.url, now, MessageKind::Full)?;
            let moved = MessageKind::Moved {
                version,
                to: new.region.clone(),
            };
            vec![full, self.deliver(id, &old_region, old_url, now, moved)?]
        };
        if let Some(n) = self.notifications.get_mut(&id) {
            n.deliveries.extend(added);
        }
        Ok(Accepted::Updated(id))
    }

    fn deliver(
        &mut self,
        notification_id: u64,
        region: &str,
        url: Option<String>,
        due_ms: u64,
        message: MessageKind,
    ) -> Result<u64, StoreError> {
        let id = self.db.generate_id()?;
        let d = Delivery {
            id,
            notification_id,
            region: region.to_string(),
            url,
            message,
            created_at_ms: due_ms,
            attempts: 0,
            state: DeliveryState::Pending { next_at_ms: due_ms },
            history: Vec::new(),
        };
        self.batch.insert(&keys::delivery(id), encode(&d));
        self.batch.insert(keys::due(region, due_ms, id), &[]);
        self.new_targets.insert(region.to_string());
        *self.deltas.pending.entry(region.to_string()).or_insert(0) += 1;
        Ok(id)
    }
}

/// An open coalescing window, as stored under its `c` key.
#[derive(Debug, Clone, Copy)]
struct Window {
    notification_id: u64,
    /// The one delivery that posts the count.
    delivery_id: u64,
    /// Repeats received before this (ms) are counted in; fixed when the window opens, so a
    /// later config change does not reopen a window whose message is out.
    ends_ms: u64,
}

impl Window {
    fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.notification_id.to_be_bytes());
        out[8..16].copy_from_slice(&self.delivery_id.to_be_bytes());
        out[16..].copy_from_slice(&self.ends_ms.to_be_bytes());
        out
    }

    fn decode(v: &[u8]) -> Option<Window> {
        let n = |r: std::ops::Range<usize>| {
            v.get(r)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
        };
        Some(Window {
            notification_id: n(0..8)?,
            delivery_id: n(8..16)?,
            ends_ms: n(16..24)?,
        })
    }
}

/// Makes an applied batch durable and answers it; returns whether that succeeded.
fn flush(store: &Store, sync: &mut DiskSync, applied: Applied, stats: &JournalStats) -> bool {
    let started = std::time::Instant::now();
    let result = store
        .db()
        .flush()
        .map(|_| ())
        .map_err(StoreError::from)
        .and_then(|()| sync.sync().map_err(StoreError::from));
    let ops = applied.replies.len();
    stats.flush_seconds.observe(started.elapsed().as_secs_f64());
    stats.batch_size.observe(ops as f64);
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.ops.fetch_add(ops as u64, Ordering::Relaxed);
    if let Err(e) = &result {
        log::error!("A flush of {ops} writes failed, so they were not acknowledged: {e}.");
    }
    let ok = result.is_ok();
    if ok {
        if let Ok(mut pending) = stats.pending.lock() {
            for (target, delta) in &applied.deltas.pending {
                let n = pending.entry(target.clone()).or_insert(0);
                *n += delta;
                if *n <= 0 {
                    pending.remove(target);
                }
            }
        }
        stats.dead.fetch_add(applied.deltas.dead, Ordering::Relaxed);
    }
    for reply in applied.replies {
        reply.send(result.clone());
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;

    fn new(id: &str) -> NewNotification {
        let raw = format!(r#"{{"id":"{id}","name":"n","country":"UK"}}"#);
        NewNotification {
            source: "crm".into(),
            kind: SourceKind::Opportunity,
            idempotency: Idempotency::Versioned(id.into()),
            raw,
            region: "UK".into(),
            url: None,
            also: Vec::new(),
            received_at_ms: now_ms(),
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

#[cfg(test)]
mod format_tests {
    use super::super::{keys, Store, FORMAT_VERSION};
    use crate::store::records::{DeliveryState, MessageKind};

    /// Records exactly as the first build wrote them, before `earlier`, `count`, `url` and
    /// `message` existed: an upgraded relay must read them and deliver what they queued.
    #[test]
    fn a_store_written_by_the_first_format_opens_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(keys::FORMAT_VERSION, b"1").unwrap();
            let notification = r#"{"id":7,"source":"salesforce","external_id":"0065800000BwzJt","received_at_ms":1700000000000,"kind":"opportunity","raw":"{\"id\":\"0065800000BwzJt\",\"name\":\"Sample02\",\"country\":\"UK\"}","region":"UK"}"#;
            let delivery = r#"{"id":8,"notification_id":7,"region":"UK","created_at_ms":1700000000000,"attempts":1,"state":{"state":"pending","next_at_ms":1700000005000},"history":[{"at_ms":1700000000100,"status":503,"answer":""}]}"#;
            db.insert(keys::notification(7), notification.as_bytes())
                .unwrap();
            db.insert(keys::delivery(8), delivery.as_bytes()).unwrap();
            db.insert(keys::due("UK", 1_700_000_005_000, 8), &[])
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let n = store.notification(7).unwrap().unwrap();
        assert_eq!((n.count, n.earlier.len(), n.url.as_deref()), (1, 0, None));
        assert!(n.record().is_ok());
        let d = store.delivery(8).unwrap().unwrap();
        assert_eq!(d.message, MessageKind::Full);
        assert_eq!(
            d.state,
            DeliveryState::Pending {
                next_at_ms: 1_700_000_005_000
            }
        );
        assert_eq!(store.first_due("UK").unwrap(), Some((1_700_000_005_000, 8)));
        assert_eq!(
            FORMAT_VERSION, 1,
            "a new format needs a migration and a test like this one"
        );
    }
}
