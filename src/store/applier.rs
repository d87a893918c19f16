//! The applier thread: applies durable log records to sled, in order, and checkpoints.
//!
//! It reads each record back from the log (so a backlog of records costs page cache, not
//! memory), applies its effects with plain inserts and removes (no `apply_batch`, no flush), and
//! then answers the commands that must not return before sled shows them: a delivery outcome
//! must be visible to the scheduler before the worker moves on, or the scheduler could hand the
//! same delivery out again. A checkpoint (sled flush + `fdatasync`, then the marker, then deleting
//! old segments) runs every `checkpoint_interval`, or sooner after `checkpoint_bytes` of records.
//!
//! Within a record the due-queue keys are applied last, so a queue entry the scheduler sees has
//! its delivery and notification. A segment is a quarter of `checkpoint_size` (at least 1 MiB),
//! so a checkpoint deletes whole files. A graceful stop applies everything and checkpoints.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::commands::{Reply, Waker};
use super::disk_sync::DiskSync;
use super::headroom::{Headroom, NoRoom};
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
    /// Room allocated ahead of sled's file, so sled never meets a full disk.
    pub headroom: Headroom,
    /// A record read from the log but not applied yet, for want of room.
    pub pending: Option<Record>,
}

/// How far [`Applier::apply_durable`] got.
#[derive(Debug, PartialEq)]
enum Applied {
    /// Everything durable is in sled.
    All,
    /// The disk has no room for sled's writes: applying waits (the record stays unread).
    Waiting,
    /// sled or the log failed; the relay is stopping.
    Failed,
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
            let applied = self.apply_durable();
            if applied == Applied::Failed {
                return;
            }
            // Once the log of an older hookrelay is replayed: the indexes its records lack
            // or have too many of.
            if !indexes_checked && self.applied >= self.replay_until {
                indexes_checked = true;
                let started = Instant::now();
                match index::upgrade(self.store.db()) {
                    Ok(index::Upgrade::Current) => {}
                    Ok(index::Upgrade::Built(n) | index::Upgrade::Thinned(n)) => log::info!("Brought the list indexes of {n} stored notifications to this release's format in {:.1} s (once, for a store from an older hookrelay).", started.elapsed().as_secs_f64()),
                    Err(e) => log::error!("Upgrading the list indexes failed ({e}); notification lists may miss entries until a restart upgrades them."),
                }
                // Lists go ahead even after a failed upgrade (it said so): better a list that may
                // miss entries than none.
                self.progress.set_lists_ready();
            }
            self.answer(&mut waiting);
            if applied == Applied::All && self.checkpoint_due() {
                self.checkpoint();
            }
            // Waiting for room: look again soon, not at the next checkpoint.
            let wait = match applied {
                Applied::Waiting => super::space::WATCH_INTERVAL,
                _ => interval,
            };
            match rx.recv_timeout(wait) {
                Ok(ToApplier::Batch {
                    lsn,
                    replies,
                    targets,
                }) => waiting.push((lsn, replies, targets)),
                Ok(ToApplier::Close) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        // At a stop with a full disk, what is not applied stays in the log for the next start.
        if self.apply_durable() == Applied::All {
            self.answer(&mut waiting);
            if self.applied > self.checkpointed {
                self.checkpoint();
            }
        }
    }

    /// Applies every durable record, as long as sled has room to write them.
    fn apply_durable(&mut self) -> Applied {
        while self.applied < self.progress.durable() {
            let record = match self.pending.take() {
                Some(r) => r,
                None => match self.tail.read_next() {
                    Ok(r) => r,
                    Err(why) => return self.stop(why),
                },
            };
            let (bytes, largest) = record.effects.iter().fold((0u64, 0u64), |(sum, max), e| {
                let n = match e {
                    Effect::Put(k, v) => (k.len() + v.len()) as u64,
                    Effect::Del(k) => k.len() as u64,
                };
                (sum + n, max.max(n))
            });
            match self.headroom.ensure(bytes, largest) {
                Ok(()) => {}
                Err(NoRoom::Full(why)) => {
                    if !self.store.space.set_applier_waiting(true) {
                        log::warn!("Applying the log to the store waits for room on the disk ({why}); acknowledged webhooks are safe in the log, and nothing is accepted or delivered meanwhile.");
                        // Reads and the writer waiting for sled give up now instead of hanging.
                        self.progress.poke();
                    }
                    self.pending = Some(record);
                    return Applied::Waiting;
                }
                Err(NoRoom::Failed(why)) => return self.stop(why),
            }
            if self.store.space.set_applier_waiting(false) {
                log::info!("The store has room again; applying the log resumes.");
            }
            match apply(self.store.db(), &record) {
                Ok(bytes) => {
                    let lsn = record.lsn;
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
                Err(e) => return self.stop(format!("sled refused record {}: {e}", record.lsn)),
            }
        }
        Applied::All
    }

    /// sled or the log failed: reads that wait for sled fail, and the relay stops so that a
    /// restart replays the log (sled keeps an I/O error for as long as it is open).
    fn stop(&mut self, why: String) -> Applied {
        log::error!(
            "Applying the log to the store stopped: {why}. Webhooks acknowledged so far are safe in the log; the restart replays it."
        );
        self.progress.fail(why.clone());
        self.store
            .space
            .fatal(&format!("applying the log failed: {why}"));
        Applied::Failed
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
        // sled's flush writes its open buffers: into the room allocated for it, or not at all.
        match self.headroom.ensure(0, 0) {
            Ok(()) => {}
            Err(NoRoom::Full(why)) => {
                log::warn!("A checkpoint of the store waits for room on the disk ({why}); the log keeps what is not checkpointed.");
                self.last_checkpoint = Instant::now();
                return;
            }
            Err(NoRoom::Failed(why)) => {
                self.stop(why);
                return;
            }
        }
        if let Err(e) = self.store.db().flush() {
            self.stop(format!("sled's flush failed: {e}"));
            return;
        }
        if let Err(e) = self.sync.sync() {
            // A failed fdatasync of sled's files: no later one could vouch for the pages it
            // dropped, so the marker must never move past this point in this process.
            self.stop(format!("fdatasync of sled's files failed: {e}"));
            return;
        }
        if self.stall == Stall::Checkpoint {
            park(&format!(
                "in a checkpoint of record {lsn}, after sled's flush and before the marker"
            ));
        }
        let dir = super::wal::dir(self.store.path());
        // A marker that cannot be written leaves the old one, which is still true.
        let result = checkpoint::write(&dir, lsn)
            .map_err(|e| e.to_string())
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
            Err(e) => log::warn!(
                "A checkpoint of the store could not be recorded ({e}); it is tried again, the log keeps growing until then, and nothing acknowledged is lost."
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
