//! Turning one batch of commands into the sled writes it makes (the log record's effects).
//!
//! The writer thread runs this for every group-committed batch. It decides idempotency (a
//! repeat, a new version, a coalesced copy) from three places, newest first: this batch, the
//! [`Overlay`] of keys written by records sled has not applied yet, and sled. Reads that need a
//! whole notification or delivery (an update, a coalesced repeat, a replay) first wait until sled
//! has applied every durable record, which is immediate unless a burst is being applied.
//!
//! Intake says how a repeat is recognised (`Idempotency`): `Dedupe` (generic, Rainforest: the
//! same key is a duplicate), `Versioned` (opportunity: the same content is a duplicate, other
//! content is a new version with `Changes` or `Full` + `Moved` deliveries, or Slack app mode's
//! actions, `app_mode.rs`), `Coalesce` (Tray: repeats within the window only raise the
//! notification's `count`; its one delivery is due when the window closes). A delivery's
//! `message` says what it renders; rendering happens at send time from the stored versions.
//!
//! This file holds the batch's state, its reads and the deliveries it queues (its [`Queue`]);
//! `accept.rs` intake's commands, `replay.rs` dead letters replayed, `window.rs` a coalescing
//! window's stored form.

mod accept;
mod replay;
mod window;

use std::collections::{BTreeSet, HashMap};

use super::commands::Deltas;
use super::index::{self, ListState};
use super::overlay::Overlay;
use super::progress::Progress;
use super::queue::Queue;
use super::records::{Delivery, DeliveryState, MessageKind, Notification};
use super::wal::record::Effect;
use super::{decode, encode, keys, StoreError};
use window::Window;

/// The batch being built, with the notifications it changes so later commands in the same
/// batch see them.
pub(super) struct BatchState<'a> {
    /// sled, for what is neither in this batch nor in the overlay.
    pub db: &'a sled::Db,
    /// Whether a body is a repeat of the stored one (the sources say).
    pub bodies: &'a dyn super::bodies::Bodies,
    /// Keys written by durable records sled has not applied yet.
    pub overlay: &'a Overlay,
    /// To wait for sled to catch up before reading a whole record.
    pub progress: &'a Progress,
    /// The next id to hand out (notifications and deliveries share one sequence).
    pub next_id: &'a mut u64,
    /// The last minute the time index has a key for.
    pub minute: &'a mut u64,
    /// The writes so far, in order.
    pub effects: Vec<Effect>,
    /// Idempotency key → notification id, for keys added in this batch.
    pub keys: HashMap<Vec<u8>, u64>,
    /// Notifications created or changed in this batch, written at its end.
    pub notifications: HashMap<u64, Notification>,
    /// Coalescing entries added in this batch: key → (notification, delivery, window end).
    pub windows: HashMap<Vec<u8>, Window>,
    /// Counter changes this batch makes.
    pub deltas: Deltas,
    /// Targets that got new deliveries (the scheduler is woken for them once applied).
    pub new_targets: BTreeSet<String>,
    /// The source of the notification the current command works on, for the list indexes of
    /// the deliveries it creates.
    pub source: String,
    /// Set while the applier waits for room: reads of sled give up instead of waiting.
    pub stalled: &'a std::sync::atomic::AtomicBool,
}

impl BatchState<'_> {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.effects.push(Effect::Put(key, value));
    }

    /// A small key (idempotency index, coalescing window) as the log has it.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.overlay.get(key) {
            return Ok(v.clone());
        }
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    /// A key the overlay does not keep: read from sled once it has applied the whole log.
    pub(super) fn deep_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        // Not while the applier waits for disk space: the writer would hang with it, and
        // intake and the workers behind it.
        self.progress.catch_up_unless(self.stalled)?;
        Ok(self.db.get(key)?)
    }

    fn new_id(&mut self) -> u64 {
        let id = *self.next_id;
        *self.next_id += 1;
        id
    }

    /// Writes the notifications the batch changed; returns its effects.
    pub fn finish(mut self) -> (Vec<Effect>, Deltas, BTreeSet<String>) {
        let mut ids: Vec<u64> = self.notifications.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(n) = self.notifications.get(&id) {
                let value = encode(n);
                self.effects
                    .push(Effect::Put(keys::notification(id).to_vec(), value));
            }
        }
        (self.effects, self.deltas, self.new_targets)
    }

    pub(super) fn notification(&self, id: u64) -> Result<Notification, StoreError> {
        if let Some(n) = self.notifications.get(&id) {
            return Ok(n.clone());
        }
        match self.deep_get(&keys::notification(id))? {
            Some(v) => decode(&v),
            None => Err(StoreError::Corrupt(format!(
                "notification {id} is indexed but missing"
            ))),
        }
    }

    /// A notification as this batch or the store has it, `None` if there is none.
    pub(super) fn find_notification(&self, id: u64) -> Result<Option<Notification>, StoreError> {
        if let Some(n) = self.notifications.get(&id) {
            return Ok(Some(n.clone()));
        }
        self.deep_get(&keys::notification(id))?
            .map(|v| decode(&v))
            .transpose()
    }
}

impl Queue for BatchState<'_> {
    /// A new pending delivery: its record, its place in the due queue and its list index key.
    fn deliver(
        &mut self,
        notification_id: u64,
        region: &str,
        url: Option<String>,
        due_ms: u64,
        message: MessageKind,
    ) -> Result<u64, StoreError> {
        let id = self.new_id();
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
            posted: None,
            replayed_as: None,
            digest: None,
        };
        self.put(keys::delivery(id).to_vec(), encode(&d));
        self.put(keys::due(region, due_ms, id), Vec::new());
        if let Some(key) =
            index::delivery_key(&self.source, ListState::Pending, notification_id, id)
        {
            self.put(key, Vec::new());
        }
        self.new_targets.insert(region.to_string());
        *self.deltas.pending.entry(region.to_string()).or_insert(0) += 1;
        Ok(id)
    }

    fn delivery(&self, id: u64) -> Result<Option<Delivery>, StoreError> {
        self.deep_get(&keys::delivery(id))?
            .map(|v| decode(&v))
            .transpose()
    }

    fn find(&mut self, id: u64) -> Result<Option<Notification>, StoreError> {
        let n = self.find_notification(id)?;
        if let Some(n) = &n {
            self.source.clone_from(&n.source);
        }
        Ok(n)
    }

    fn keep(&mut self, n: Notification) {
        self.notifications.insert(n.id, n);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// While the applier waits for disk space, a command that must read sled gives up with
    /// `DiskFull` at once instead of holding the writer (and intake behind it) until there is
    /// room; the writer then drops the whole batch (`Writer::commit`).
    #[test]
    fn a_read_of_sled_gives_up_while_the_applier_waits_for_room() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let progress = Progress::default();
        // Record 2 is durable, sled has only record 1.
        progress.reset(1, 2);
        let overlay = Overlay::default();
        let stalled = AtomicBool::new(true);
        let mut next_id = 10;
        let mut minute = 0;
        let state = BatchState {
            db: &db,
            bodies: &super::super::bodies::Plain,
            overlay: &overlay,
            progress: &progress,
            next_id: &mut next_id,
            minute: &mut minute,
            effects: Vec::new(),
            keys: HashMap::new(),
            notifications: HashMap::new(),
            windows: HashMap::new(),
            deltas: Deltas::default(),
            new_targets: BTreeSet::new(),
            source: String::new(),
            stalled: &stalled,
        };
        let started = std::time::Instant::now();
        let err = state.notification(7).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull(_)), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Once sled caught up, the read goes through (and finds nothing here).
        stalled.store(false, std::sync::atomic::Ordering::SeqCst);
        progress.set_applied(2);
        assert!(matches!(state.notification(7), Err(StoreError::Corrupt(_))));
    }
}
