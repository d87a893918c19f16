//! The single writer: group commit of every command through the write-ahead log.
//!
//! Requests and workers send commands over a channel; one thread takes every command waiting at
//! that moment, turns them into sled writes ([`super::batch`]), appends those as one log record
//! with one `write` and one `fdatasync` ([`super::wal`]), and answers intake at once. The applier
//! thread ([`super::applier`]) applies the record to sled behind it and answers the commands that
//! must see sled updated first (outcomes, pauses, replays). Under load the batch grows by itself:
//! while one `fdatasync` runs, the next requests queue up and share the next one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::applier::{Applier, Stall, ToApplier};
use super::batch::BatchState;
use super::click::{Click, Clicked};
pub use super::commands::{
    target_key, Accepted, DeliveryUpdate, Idempotency, NewNotification, Waker, COALESCE_GRACE_MS,
};
use super::commands::{AcceptReply, Deltas, Reply};
use super::disk_sync::DiskSync;
use super::index::{self, ListState};
use super::overlay::Overlay;
use super::progress::Progress;
use super::records::DeliveryState;
use super::space::{Space, WATCH_INTERVAL};
use super::wal::record::{CommandKind, Effect};
use super::wal::segment::{AppendError, SegmentWriter};
use super::wal::{self, scan, tail::Tail};
use super::{decode, encode, keys, Store, StoreError};

/// Most commands in one batch: bounds the latency of the first request in a very large batch.
const MAX_BATCH: usize = 1024;
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

/// The queue counters as stored under [`keys::COUNTERS`].
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Counters {
    pending: BTreeMap<String, i64>,
    dead: i64,
}

super::codec::json_stored!(Counters);

impl Counters {
    fn apply(&mut self, d: &Deltas) {
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
        // A settled delivery moves from the pending index to its state's.
        let state = ListState::of_delivery(&d.state);
        if update.previous_due_ms.is_some()
            && state != ListState::Pending
            && !update.source.is_empty()
        {
            let nid = d.notification_id;
            set.remove.extend(index::delivery_key(
                &update.source,
                ListState::Pending,
                nid,
                d.id,
            ));
            if let Some(key) = index::delivery_key(&update.source, state, nid, d.id) {
                set.insert.push((key, Vec::new()));
            }
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

fn abort_for(abort: &mut Option<StoreError>, e: &StoreError) {
    if matches!(e, StoreError::DiskFull(_)) && abort.is_none() {
        *abort = Some(e.clone());
    }
}

/// Answers every command of a batch with an error.
fn refuse(commands: Vec<Command>, e: &StoreError) {
    for command in commands {
        match command {
            Command::Accept(_, reply) => {
                let _ = reply.send(Err(e.clone()));
            }
            Command::Replay(_, reply) => {
                let _ = reply.send(Err(e.clone()));
            }
            Command::Write(_, reply) => {
                let _ = reply.send(Err(e.clone()));
            }
            Command::Click(_, reply) => {
                let _ = reply.send(Err(e.clone()));
            }
            Command::Close => {}
        }
    }
}

/// What start-up learned from the log and sled.
struct Recovered {
    /// The last checkpointed record: the applier replays from the one after it.
    checkpoint: u64,
    /// The last record in the log.
    last_lsn: u64,
    /// Small keys of records sled may not have yet.
    overlay: Overlay,
    next_id: u64,
    /// The last minute the time index has, from the log or sled.
    minute: u64,
    counters: Counters,
}

/// Reads the checkpoint marker and the log after it. A torn tail is cut and logged; damage stops
/// the start with what `hookrelay store check` also reports.
fn recover(store: &Store) -> Result<Recovered, StoreError> {
    let dir = wal::dir(store.path());
    let checkpoint = wal::checkpoint::read(&dir).map_err(StoreError::Damaged)?;
    let mut overlay = Overlay::default();
    let mut next_id = None;
    let mut counters = None;
    let mut minute = 0;
    let summary = scan::scan(&dir, checkpoint, true, |r| {
        overlay.add(r.lsn, &r.effects);
        for e in &r.effects {
            if let Effect::Put(k, v) = e {
                if let Some(m) = index::minute_in(k) {
                    minute = minute.max(index::minute_of(m));
                } else if k.as_slice() == keys::NEXT_ID {
                    next_id = Some(v.clone());
                } else if k.as_slice() == keys::COUNTERS {
                    counters = Some(v.clone());
                }
            }
        }
    })
    .map_err(|d| {
        StoreError::Damaged(format!(
            "{d} Run `hookrelay store check` for a report; the relay does not start over a damaged log because skipping a record would lose webhooks or post them twice."
        ))
    })?;
    if let Some(torn) = &summary.torn {
        log::warn!(
            "The log ended in a half-written record (a crash during a write): {} bytes at byte {} of {} were cut ({}). It was never acknowledged, so nothing is lost.",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.why
        );
    }
    for note in &summary.notes {
        log::warn!("{note} (already in the store, so nothing is lost).");
    }
    wal::segment::delete_before(&dir, checkpoint)?;
    let db = store.db();
    let next_id = match next_id.or(db.get(keys::NEXT_ID)?.map(|v| v.to_vec())) {
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("next id".into()))?,
        ),
        // A store from before the log: sled's generator is past every id it handed out.
        None => db.generate_id()? + 1,
    };
    let counters = match counters.or(db.get(keys::COUNTERS)?.map(|v| v.to_vec())) {
        Some(v) => decode(&v)?,
        None => {
            // A store from before the log, or a new one: count once; every batch stores them.
            let pending = store
                .pending_by_region_unchecked()?
                .into_iter()
                .map(|(k, v)| (k, v as i64))
                .collect();
            let dead = store.dead_letter_count_unchecked()? as i64;
            Counters { pending, dead }
        }
    };
    Ok(Recovered {
        checkpoint,
        last_lsn: summary.last_lsn,
        overlay,
        next_id,
        minute: minute.max(index::minute_of(index::last_minute(db)?)),
        counters,
    })
}

/// Records above this many bytes waiting for sled make the writer wait for the applier: it
/// bounds the overlay's memory and how much a restart replays before deliveries resume.
const MAX_UNAPPLIED_BYTES: u64 = 64 << 20;

/// The writer thread's state.
struct Writer {
    store: Store,
    log: SegmentWriter,
    overlay: Overlay,
    next_id: u64,
    /// The last minute the time index has a key for: the next notification of a later minute
    /// adds one.
    minute: u64,
    /// The counters as of the last durable record.
    counters: Counters,
    stats: Arc<JournalStats>,
    progress: Arc<Progress>,
    to_applier: Sender<ToApplier>,
    /// Room on the disk: intake's reserve, and full or broken after a failed append.
    space: Arc<Space>,
    /// Wakes the scheduler once a full store takes writes again.
    waker: Option<Waker>,
    /// When free space was last sampled.
    last_sample: std::time::Instant,
    /// (lsn, size) of records not applied yet, to bound them.
    unapplied: VecDeque<(u64, u64)>,
    unapplied_bytes: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let first = match rx.recv_timeout(WATCH_INTERVAL) {
                Ok(c) => c,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.watch_space();
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            if self.last_sample.elapsed() >= WATCH_INTERVAL {
                self.watch_space();
            }
            let mut commands = vec![first];
            while commands.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            let closing = commands.iter().any(|c| matches!(c, Command::Close));
            self.commit(commands);
            if closing {
                break;
            }
        }
        // Anything sent after Close is refused: dropping `rx` makes those senders see `Closed`.
        self.stats.closed.store(true, Ordering::SeqCst);
        let _ = self.to_applier.send(ToApplier::Close);
    }

    /// Samples free space (intake's reserve reads it) and, while the store is full, tries an
    /// empty log record whenever there may be room again: intake and delivery resume by
    /// themselves once space is freed.
    fn watch_space(&mut self) {
        self.last_sample = std::time::Instant::now();
        self.space.sample();
        if self.space.is_full() && self.space.has_room_to_resume() {
            let (reply, _answer) = oneshot::channel();
            self.commit(vec![Command::Write(Box::default(), reply)]);
            if !self.space.is_full() {
                // Deliveries held while the store was full may go now.
                if let Some(wake) = &self.waker {
                    wake(Vec::new());
                }
            }
        }
    }

    fn forget_applied(&mut self) {
        let applied = self.progress.applied();
        self.overlay.forget_through(applied);
        while let Some((lsn, size)) = self.unapplied.front() {
            if *lsn > applied {
                break;
            }
            self.unapplied_bytes -= size;
            self.unapplied.pop_front();
        }
    }

    /// Builds, writes and answers one batch.
    fn commit(&mut self, commands: Vec<Command>) {
        self.forget_applied();
        if self.unapplied_bytes > MAX_UNAPPLIED_BYTES {
            // Not while the applier waits for disk space: answer now rather than hang intake.
            match self.progress.catch_up_unless(&self.space.applier_waiting) {
                Ok(()) => self.forget_applied(),
                Err(e @ StoreError::DiskFull(_)) => {
                    refuse(commands, &e);
                    return;
                }
                Err(e) => {
                    // sled stopped applying: more log would only grow the overlay.
                    self.stats.failed.store(true, Ordering::SeqCst);
                    refuse(commands, &e);
                    return;
                }
            }
        }
        // Below the reserve, new webhooks are refused so that outcomes, pauses and
        // checkpoints still find room (`store.min_free`).
        let low = !self.space.accepts_webhooks();
        let first_id = self.next_id;
        let first_minute = self.minute;
        let mut state = BatchState {
            db: self.store.db(),
            bodies: self.store.bodies(),
            overlay: &self.overlay,
            progress: &self.progress,
            next_id: &mut self.next_id,
            minute: &mut self.minute,
            effects: Vec::new(),
            keys: HashMap::new(),
            notifications: HashMap::new(),
            windows: HashMap::new(),
            deltas: Deltas::default(),
            new_targets: Default::default(),
            source: String::new(),
            stalled: &self.space.applier_waiting,
        };
        let mut kinds = Vec::with_capacity(commands.len());
        let mut now = Vec::new();
        let mut later = Vec::new();
        // A command that failed for want of room (its read of sled gave up while the applier
        // waits for disk space) may have put part of its writes in the batch already: then
        // none of the batch is written, and every command in it is answered that way.
        let mut abort: Option<StoreError> = None;
        for command in commands {
            match command {
                Command::Close => {}
                Command::Accept(_, reply) if low => {
                    self.space.refused_writes.inc();
                    let _ = reply.send(Err(StoreError::DiskFull(format!(
                        "less than store.min_free ({}) is free",
                        super::space::human(self.space.reserve_bytes())
                    ))));
                }
                Command::Accept(new, reply) => match state.accept(*new) {
                    Ok(accepted) => {
                        kinds.push(CommandKind::Accept);
                        now.push(Reply::Accept(reply, accepted));
                    }
                    Err(e) => {
                        abort_for(&mut abort, &e);
                        let _ = reply.send(Err(e));
                    }
                },
                // Answered once on disk, like intake: what it queued reaches the workers through
                // the applier's wake-up, as new deliveries do.
                Command::Click(click, reply) => match super::click::click(&mut state, *click) {
                    Ok(clicked) => {
                        kinds.push(CommandKind::Interaction);
                        now.push(Reply::Click(reply, clicked));
                    }
                    Err(e) => {
                        abort_for(&mut abort, &e);
                        let _ = reply.send(Err(e));
                    }
                },
                Command::Replay(ids, reply) => match state.replay(&ids) {
                    Ok(new_ids) => {
                        kinds.push(CommandKind::Replay);
                        later.push(Reply::Replay(reply, new_ids));
                    }
                    Err(e) => {
                        abort_for(&mut abort, &e);
                        let _ = reply.send(Err(e));
                    }
                },
                Command::Write(set, reply) => {
                    state.deltas.add(set.deltas);
                    state
                        .effects
                        .extend(set.remove.into_iter().map(Effect::Del));
                    state
                        .effects
                        .extend(set.insert.into_iter().map(|(k, v)| Effect::Put(k, v)));
                    kinds.push(CommandKind::Write);
                    later.push(Reply::Write(reply));
                }
            }
        }
        if let Some(e) = abort {
            drop(state);
            // Nothing is written, so the ids the batch took are free again, and the minute it
            // indexed is not indexed.
            self.next_id = first_id;
            self.minute = first_minute;
            for reply in now.into_iter().chain(later) {
                reply.send(Err(e.clone()));
            }
            return;
        }
        if kinds.is_empty() {
            return;
        }
        let (mut effects, deltas, targets) = state.finish();
        let mut counters = self.counters.clone();
        counters.apply(&deltas);
        if counters != self.counters {
            effects.push(Effect::Put(keys::COUNTERS.to_vec(), encode(&counters)));
        }
        if self.next_id != first_id {
            effects.push(Effect::Put(
                keys::NEXT_ID.to_vec(),
                self.next_id.to_be_bytes().to_vec(),
            ));
        }
        let started = std::time::Instant::now();
        let written = self.log.append(&kinds, &effects);
        let ops = kinds.len();
        self.stats
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        self.stats.batch_size.observe(ops as f64);
        let (lsn, size) = match written {
            Ok(w) => w,
            Err(why) => {
                let e = match why {
                    // Nothing of it is on disk: the same commands succeed once there is room.
                    AppendError::NoSpace(why) => {
                        self.space.set_full(&why);
                        let webhooks = kinds.iter().filter(|k| **k == CommandKind::Accept).count();
                        self.space.refused_writes.inc_by(webhooks as u64);
                        StoreError::DiskFull(why)
                    }
                    AppendError::Broken(why) => {
                        self.stats.failed.store(true, Ordering::SeqCst);
                        log::error!("A batch of {ops} writes could not be made durable, so none was acknowledged: {why}.");
                        self.space.fatal(&why);
                        StoreError::Io(why)
                    }
                    AppendError::TooLarge(why) => StoreError::Io(why),
                };
                for reply in now.into_iter().chain(later) {
                    reply.send(Err(e.clone()));
                }
                return;
            }
        };
        self.space.set_writable();
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats.ops.fetch_add(ops as u64, Ordering::Relaxed);
        self.progress.set_durable(lsn);
        self.overlay.add(lsn, &effects);
        self.unapplied.push_back((lsn, size as u64));
        self.unapplied_bytes += size as u64;
        self.counters = counters;
        if let Ok(mut pending) = self.stats.pending.lock() {
            for (target, delta) in &deltas.pending {
                let n = pending.entry(target.clone()).or_insert(0);
                *n += delta;
                if *n <= 0 {
                    pending.remove(target);
                }
            }
        }
        self.stats.dead.fetch_add(deltas.dead, Ordering::Relaxed);
        for reply in now {
            reply.send(Ok(()));
        }
        let _ = self.to_applier.send(ToApplier::Batch {
            lsn,
            replies: later,
            targets: targets.into_iter().collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceKind;
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
            web_api: false,
            on_status: None,
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
            FORMAT_VERSION, 4,
            "a new format needs a migration and a test like this one"
        );
        assert_eq!(
            store
                .db()
                .get(keys::FORMAT_VERSION)
                .unwrap()
                .unwrap()
                .as_ref(),
            b"4"
        );
        // Format 2 keeps queue counters and the id sequence in the store; a format 1 store
        // gets them counted once, and new ids never reuse old ones.
        let (journal, handle) = super::Journal::start(store.clone(), None).unwrap();
        assert_eq!(journal.pending_by_target().get("UK"), Some(&1));
        let raw = r#"{"id":"new","name":"n","country":"UK"}"#.to_string();
        let accepted = journal
            .accept_blocking(super::NewNotification {
                source: "salesforce".into(),
                kind: crate::model::SourceKind::Opportunity,
                idempotency: super::Idempotency::Versioned("new".into()),
                raw,
                region: "UK".into(),
                url: None,
                also: Vec::new(),
                web_api: false,
                on_status: None,
                received_at_ms: 1_700_000_100_000,
            })
            .unwrap();
        assert!(matches!(accepted, super::Accepted::New(id) if id > 8));
        assert_eq!(journal.pending_by_target().get("UK"), Some(&2));
        // Format 3 has list indexes: the old store gets them built once, the new record
        // brings its own.
        store.sync_reads().unwrap();
        assert!(store
            .db()
            .get(crate::store::index::BUILT)
            .unwrap()
            .is_some());
        let listed: Vec<u64> = store
            .db()
            .scan_prefix(crate::store::index::source_range("salesforce"))
            .keys()
            .filter_map(|k| {
                let k = k.unwrap();
                crate::store::index::notification_of(&k, k.len() - 8)
            })
            .collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0], 7, "the old notification is indexed");
        journal.close();
        handle.join().unwrap();
    }
}
