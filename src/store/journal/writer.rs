//! The writer thread: takes every command waiting, commits them as one log record, answers
//! intake and hands the record to the applier.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::counters::Counters;
use super::{Command, JournalStats};
use crate::store::applier::ToApplier;
use crate::store::batch::BatchState;
use crate::store::click;
use crate::store::commands::{Deltas, Reply, Waker};
use crate::store::overlay::Overlay;
use crate::store::progress::Progress;
use crate::store::space::{Space, WATCH_INTERVAL};
use crate::store::wal::record::{CommandKind, Effect};
use crate::store::wal::segment::{AppendError, SegmentWriter};
use crate::store::{encode, keys, Store, StoreError};

/// Most commands in one batch: bounds the latency of the first request in a very large batch.
const MAX_BATCH: usize = 1024;

/// Records above this many bytes waiting for sled make the writer wait for the applier: it
/// bounds the overlay's memory and how much a restart replays before deliveries resume.
const MAX_UNAPPLIED_BYTES: u64 = 64 << 20;

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) log: SegmentWriter,
    pub(super) overlay: Overlay,
    pub(super) next_id: u64,
    /// The last minute the time index has a key for: the next notification of a later minute
    /// adds one.
    pub(super) minute: u64,
    /// The counters as of the last durable record.
    pub(super) counters: Counters,
    pub(super) stats: Arc<JournalStats>,
    pub(super) progress: Arc<Progress>,
    pub(super) to_applier: Sender<ToApplier>,
    /// Room on the disk: intake's reserve, and full or broken after a failed append.
    pub(super) space: Arc<Space>,
    /// Wakes the scheduler once a full store takes writes again.
    pub(super) waker: Option<Waker>,
    /// When free space was last sampled.
    pub(super) last_sample: std::time::Instant,
    /// (lsn, size) of records not applied yet, to bound them.
    pub(super) unapplied: VecDeque<(u64, u64)>,
    pub(super) unapplied_bytes: u64,
}

impl Writer {
    pub(super) fn run(mut self, rx: Receiver<Command>) {
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
                        crate::store::space::human(self.space.reserve_bytes())
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
                Command::Click(click, reply) => match click::click(&mut state, *click) {
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
