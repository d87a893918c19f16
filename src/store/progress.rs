//! How far the log is written and how far sled has caught up with it.
//!
//! The writer raises `durable` after each `fdatasync`; the applier raises `applied` after each
//! record it applies to sled. Readers that must see everything acknowledged so far (a GET right
//! after a 202, the scheduler's first look at the queue after a restart) wait for `applied` to
//! reach the `durable` they saw; when sled keeps up, as it does outside bursts, that is no wait.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::StoreError;

#[derive(Debug, Default)]
pub struct Progress {
    /// The last record on disk in the log.
    durable: AtomicU64,
    /// The last record applied to sled, and why applying stopped if it did.
    applied: Mutex<Applied>,
    /// Signalled whenever `applied` moves or applying stops.
    moved: Condvar,
}

#[derive(Debug, Default)]
struct Applied {
    lsn: u64,
    /// Set when the applier stopped on an error: waiting would never end.
    failed: Option<String>,
    /// From start-up until the applier has brought the list indexes to this release's format
    /// (`index::upgrade`, after the log is replayed): lists read them, so lists wait for it.
    lists_pending: bool,
}

impl Progress {
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub fn set_durable(&self, lsn: u64) {
        self.durable.store(lsn, Ordering::Release);
    }

    pub fn applied(&self) -> u64 {
        self.applied.lock().map(|a| a.lsn).unwrap_or(0)
    }

    /// Both marks at once, at start-up (recovery sets where the log ends and sled stands).
    pub fn reset(&self, applied: u64, durable: u64) {
        if let Ok(mut a) = self.applied.lock() {
            a.lsn = applied;
            a.failed = None;
            a.lists_pending = true;
        }
        self.set_durable(durable);
        self.moved.notify_all();
    }

    pub fn set_applied(&self, lsn: u64) {
        if let Ok(mut a) = self.applied.lock() {
            a.lsn = lsn;
        }
        self.moved.notify_all();
    }

    pub fn fail(&self, why: String) {
        if let Ok(mut a) = self.applied.lock() {
            a.failed = Some(why);
        }
        self.moved.notify_all();
    }

    /// Waits until sled holds every record up to `lsn`.
    pub fn wait_applied(&self, lsn: u64) -> Result<(), StoreError> {
        self.wait(lsn, None).map(|_| ())
    }

    /// [`Progress::catch_up`] for at most `timeout`: whether sled caught up.
    pub fn catch_up_for(&self, timeout: std::time::Duration) -> Result<bool, StoreError> {
        self.wait(self.durable(), Some(std::time::Instant::now() + timeout))
    }

    /// Waits until `applied` reaches `lsn` (true) or the deadline passes (false).
    fn wait(&self, lsn: u64, deadline: Option<std::time::Instant>) -> Result<bool, StoreError> {
        let mut a = self.applied.lock().map_err(|_| poisoned())?;
        loop {
            if a.lsn >= lsn {
                return Ok(true);
            }
            if let Some(why) = &a.failed {
                return Err(StoreError::Sled(why.clone()));
            }
            a = match deadline {
                None => self.moved.wait(a).map_err(|_| poisoned())?,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    self.moved.wait_timeout(a, left).map_err(|_| poisoned())?.0
                }
            };
        }
    }

    /// Waits until sled holds everything acknowledged so far.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        self.wait_applied(self.durable())
    }

    /// [`Progress::catch_up`], but gives up with `DiskFull` as soon as `stalled` is set (the
    /// applier waits for room on the disk): neither a read nor the writer may wait on that.
    pub fn catch_up_unless(&self, stalled: &AtomicBool) -> Result<(), StoreError> {
        let lsn = self.durable();
        let mut a = self.applied.lock().map_err(|_| poisoned())?;
        loop {
            if a.lsn >= lsn {
                return Ok(());
            }
            if let Some(why) = &a.failed {
                return Err(StoreError::Sled(why.clone()));
            }
            if stalled.load(Ordering::SeqCst) {
                return Err(StoreError::DiskFull(
                    "the store waits for room on its disk before it applies the latest writes"
                        .into(),
                ));
            }
            // The applier pokes when it stalls; the timeout is only a safety net.
            a = self
                .moved
                .wait_timeout(a, std::time::Duration::from_millis(500))
                .map_err(|_| poisoned())?
                .0;
        }
    }

    /// The list indexes are in this release's format: lists may read them.
    pub fn set_lists_ready(&self) {
        if let Ok(mut a) = self.applied.lock() {
            a.lists_pending = false;
        }
        self.moved.notify_all();
    }

    /// Waits at most `timeout` until the list indexes are in this release's format (at once
    /// unless an older store is being upgraded at start): whether they are.
    pub fn wait_lists_for(&self, timeout: std::time::Duration) -> Result<bool, StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        let mut a = self.applied.lock().map_err(|_| poisoned())?;
        loop {
            if !a.lists_pending {
                return Ok(true);
            }
            if let Some(why) = &a.failed {
                return Err(StoreError::Sled(why.clone()));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            a = self.moved.wait_timeout(a, left).map_err(|_| poisoned())?.0;
        }
    }

    /// Wakes every waiter to look at its conditions again (the applier stalled).
    pub fn poke(&self) {
        drop(self.applied.lock());
        self.moved.notify_all();
    }
}

fn poisoned() -> StoreError {
    StoreError::Sled("the applier panicked".into())
}
