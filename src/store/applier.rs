//! The applier thread: applies durable log records to sled, in order, and checkpoints.
//!
//! It reads each record back from the log (so a backlog of records costs page cache, not
//! memory), applies its effects with plain inserts and removes (no `apply_batch`, no flush), and
//! then answers the commands that must not return before sled shows them: a delivery outcome
//! must be visible to the scheduler before the worker moves on, or the scheduler could hand the
//! same delivery out again. A checkpoint (sled flush + `fdatasync`, then the marker, then deleting
//! old segments) runs every `checkpoint_interval`, or sooner after `checkpoint_bytes` of records.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::disk_sync::DiskSync;
use super::journal::{Reply, Waker};
use super::progress::Progress;
use super::wal::record::{Effect, Record};
use super::wal::{checkpoint, segment, tail::Tail};
use super::{index, keys, Store};

/// What the writer tells the applier.
pub(super) enum ToApplier {
    /// Record `lsn` is durable; answer `replies` and wake the scheduler for `targets` once it
    /// is applied.
    Batch {
        lsn: u64,
        replies: Vec<Reply>,
        targets: Vec<String>,
    },
    /// Apply everything durable, checkpoint, stop.
    Close,
}

/// A test hook (`HOOKRELAY_TEST_STALL_AT`): the crash tests stop the relay at an exact point by
/// having it park there, and kill it once the log shows it got there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Stall {
    None,
    /// Between sled's flush and the checkpoint marker.
    Checkpoint,
    /// Halfway through replaying the log at start-up.
    Replay,
}

impl Stall {
    pub fn from_env() -> Stall {
        match std::env::var("HOOKRELAY_TEST_STALL_AT").as_deref() {
            Ok("checkpoint") => Stall::Checkpoint,
            Ok("replay") => Stall::Replay,
            _ => Stall::None,
        }
    }
}

fn park(what: &str) -> ! {
    log::warn!("Test stall: the relay stops {what} (HOOKRELAY_TEST_STALL_AT).");
    loop {
        std::thread::park();
    }
}

pub(super) struct Applier {
    /// sled and the store's settings.
    pub store: Store,
    /// Where the next record is read from.
    pub tail: Tail,
    /// Shared marks; `applied` is raised here.
    pub progress: Arc<Progress>,
    /// Makes sled's files durable at a checkpoint.
    pub sync: DiskSync,
    /// The last applied record.
    pub applied: u64,
    /// The last checkpointed record.
    pub checkpointed: u64,
    /// The last record found in the log at start: up to there the applier is replaying.
    pub replay_until: u64,
    /// When the last checkpoint was taken.
    pub last_checkpoint: Instant,
    /// Bytes of effects applied since then.
    pub bytes_since_checkpoint: u64,
    /// Called with targets that got new deliveries, once sled shows them.
    pub waker: Option<Waker>,
    pub stall: Stall,
}

impl Applier {
    pub fn run(mut self, rx: Receiver<ToApplier>) {
        let replaying = self.replay_until.saturating_sub(self.applied);
        if replaying > 0 {
            log::info!("Replaying {replaying} log records written after the last checkpoint.");
        }
        let mut waiting: Vec<(u64, Vec<Reply>, Vec<String>)> = Vec::new();
        let interval = self.store.options.checkpoint_interval;
        let mut indexes_checked = false;
        loop {
            if !self.apply_durable() {
                return;
            }
            // Once the log of an older hookrelay is replayed: the indexes its records lack.
            if !indexes_checked && self.applied >= self.replay_until {
                indexes_checked = true;
                match index::build_if_missing(self.store.db()) {
                    Ok(0) => {}
                    Ok(n) => log::info!("Built the list indexes for {n} stored notifications (once, for a store from an older hookrelay)."),
                    Err(e) => log::error!("Building the list indexes failed ({e}); notification lists may miss entries until a restart builds them."),
                }
            }
            self.answer(&mut waiting);
            if self.checkpoint_due() {
                self.checkpoint();
            }
            match rx.recv_timeout(interval) {
                Ok(ToApplier::Batch {
                    lsn,
                    replies,
                    targets,
                }) => waiting.push((lsn, replies, targets)),
                Ok(ToApplier::Close) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if self.apply_durable() {
            self.answer(&mut waiting);
            if self.applied > self.checkpointed {
                self.checkpoint();
            }
        }
    }

    /// Applies every durable record; false when applying failed (logged; reads then fail).
    fn apply_durable(&mut self) -> bool {
        while self.applied < self.progress.durable() {
            let result = self.tail.read_next().and_then(|record| {
                apply(self.store.db(), &record)
                    .map_err(|e| format!("sled refused record {}: {e}", record.lsn))
                    .map(|bytes| (record.lsn, bytes))
            });
            match result {
                Ok((lsn, bytes)) => {
                    self.applied = lsn;
                    self.bytes_since_checkpoint += bytes;
                    self.progress.set_applied(lsn);
                    if self.stall == Stall::Replay
                        && lsn < self.replay_until
                        && lsn >= self.checkpointed + (self.replay_until - self.checkpointed) / 2
                    {
                        park(&format!(
                            "while replaying the log, after record {lsn} of {}",
                            self.replay_until
                        ));
                    }
                }
                Err(why) => {
                    log::error!(
                        "Applying the log to the store stopped: {why}. Webhooks acknowledged so far are safe in the log; restart hookrelay to replay it."
                    );
                    self.progress.fail(why);
                    return false;
                }
            }
        }
        true
    }

    /// Answers the commands whose records are applied, and wakes the scheduler for them.
    fn answer(&mut self, waiting: &mut Vec<(u64, Vec<Reply>, Vec<String>)>) {
        let applied = self.applied;
        let mut targets = std::collections::BTreeSet::new();
        waiting.retain_mut(|(lsn, replies, t)| {
            if *lsn > applied {
                return true;
            }
            for reply in replies.drain(..) {
                reply.send(Ok(()));
            }
            targets.extend(t.drain(..));
            false
        });
        if let (Some(wake), false) = (&self.waker, targets.is_empty()) {
            wake(targets.into_iter().collect());
        }
    }

    fn checkpoint_due(&self) -> bool {
        let options = &self.store.options;
        self.applied > self.checkpointed
            && (self.bytes_since_checkpoint >= options.checkpoint_bytes
                || self.last_checkpoint.elapsed() >= options.checkpoint_interval)
    }

    /// Makes sled durable up to `applied`, records that, and deletes the segments it covers.
    fn checkpoint(&mut self) {
        let lsn = self.applied;
        let started = Instant::now();
        let flushed = self
            .store
            .db()
            .flush()
            .map_err(|e| e.to_string())
            .and_then(|_| self.sync.sync().map_err(|e| e.to_string()));
        if self.stall == Stall::Checkpoint {
            park(&format!(
                "in a checkpoint of record {lsn}, after sled's flush and before the marker"
            ));
        }
        let dir = super::wal::dir(self.store.path());
        let result = flushed
            .and_then(|()| checkpoint::write(&dir, lsn).map_err(|e| e.to_string()))
            .and_then(|()| segment::delete_before(&dir, lsn).map_err(|e| e.to_string()));
        match result {
            Ok(deleted) => {
                log::debug!(
                    "Checkpoint at record {lsn} took {:?}; {deleted} log segments deleted.",
                    started.elapsed()
                );
                self.checkpointed = lsn;
                self.bytes_since_checkpoint = 0;
            }
            Err(e) => log::error!(
                "A checkpoint of the store failed ({e}); the log keeps growing until one succeeds, and nothing acknowledged is lost."
            ),
        }
        self.last_checkpoint = Instant::now();
    }
}

/// Applies one record's effects; returns their size. Due-queue keys go last, so that when the
/// scheduler sees a delivery in the queue its delivery and notification records are there.
pub(super) fn apply(db: &sled::Db, record: &Record) -> sled::Result<u64> {
    let mut bytes = 0u64;
    let is_due = |e: &&Effect| e.key().first() == Some(&keys::DUE);
    let rest = record.effects.iter().filter(|e| !is_due(e));
    for e in rest.chain(record.effects.iter().filter(is_due)) {
        match e {
            Effect::Put(k, v) => {
                bytes += (k.len() + v.len()) as u64;
                db.insert(k.as_slice(), v.as_slice())?;
            }
            Effect::Del(k) => {
                bytes += k.len() as u64;
                db.remove(k.as_slice())?;
            }
        }
    }
    Ok(bytes)
}
