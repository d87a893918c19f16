//! Turning one batch of commands into the sled writes it makes (the log record's effects).
//!
//! The writer thread runs this for every group-committed batch. It decides idempotency (a
//! repeat, a new version, a coalesced copy) from three places, newest first: this batch, the
//! [`Overlay`] of keys written by records sled has not applied yet, and sled. Reads that need a
//! whole notification or delivery (an update, a coalesced repeat, a replay) first wait until sled
//! has applied every durable record, which is immediate unless a burst is being applied.

use std::collections::{BTreeSet, HashMap};

use super::app_mode::{self, status_action, Change};
use super::commands::{Accepted, Deltas, Idempotency, NewNotification, COALESCE_GRACE_MS};
use super::index::{self, ListState};
use super::overlay::Overlay;
use super::progress::Progress;
use super::queue::Queue;
use super::records::{Delivery, DeliveryState, MessageKind, Notification, Version};
use super::wal::record::Effect;
use super::{decode, encode, keys, StoreError};

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

    pub fn accept(&mut self, new: NewNotification) -> Result<Accepted, StoreError> {
        self.source.clone_from(&new.source);
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
                self.put(ckey.clone(), w.encode().to_vec());
                self.windows.insert(ckey, w);
                Ok(Accepted::New(id))
            }
        }
    }

    pub fn replay(&mut self, ids: &[u64]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let dead_key = keys::dead(*id);
            let Some(v) = self.deep_get(&keys::delivery(*id))? else {
                out.push(None);
                continue;
            };
            let old: Delivery = decode(&v)?;
            if self.deep_get(&dead_key)?.is_none()
                || !matches!(old.state, DeliveryState::Dead { .. })
            {
                out.push(None);
                continue;
            }
            let now = crate::store::now_ms();
            self.source = self.notification(old.notification_id)?.source;
            let mut message = old.message.clone();
            // An action whose post was replayed acts on the replayed post.
            if let Some(anchor) = self.notification(old.notification_id)?.anchor {
                message.retarget(anchor);
            }
            let new_id = self.deliver(
                old.notification_id,
                &old.region,
                old.url.clone(),
                now,
                message,
            )?;
            self.effects.push(Effect::Del(dead_key.to_vec()));
            self.deltas.dead -= 1;
            // The dead one is superseded: it leaves the dead index, and says by which.
            let mut superseded = old.clone();
            superseded.replayed_as = Some(new_id);
            self.put(keys::delivery(*id).to_vec(), encode(&superseded));
            let source = self.source.clone();
            if let Some(key) =
                index::delivery_key(&source, ListState::Dead, old.notification_id, *id)
            {
                self.effects.push(Effect::Del(key));
            }
            let mut n = self.notification(old.notification_id)?;
            n.deliveries.push(new_id);
            // A replayed first post is the message later edits and actions must find.
            if n.anchor == Some(*id) {
                n.anchor = Some(new_id);
            }
            // A replayed decision: the message showed it could not be sent; it shows the
            // outcome of this attempt too, where it showed the last one.
            if old.message == MessageKind::Decision {
                for shown in self.results_of(&n, *id)? {
                    let of = shown.message.acts_on();
                    let result = MessageKind::DecisionResult { of, after: new_id };
                    let d = self.deliver(n.id, &shown.region, shown.url, now, result)?;
                    n.deliveries.push(d);
                }
            }
            self.notifications.insert(old.notification_id, n);
            out.push(Some(new_id));
        }
        Ok(out)
    }

    /// The deliveries that showed the outcome of decision delivery `decision`.
    fn results_of(&self, n: &Notification, decision: u64) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        for id in &n.deliveries {
            let Some(v) = self.deep_get(&keys::delivery(*id))? else {
                continue;
            };
            let d: Delivery = decode(&v)?;
            if matches!(d.message, MessageKind::DecisionResult { after, .. } if after == decision) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The open coalescing window of a key, if any.
    fn window(&self, key: &[u8]) -> Result<Option<Window>, StoreError> {
        if let Some(w) = self.windows.get(key) {
            return Ok(Some(*w));
        }
        Ok(self.get(key)?.and_then(|v| Window::decode(&v)))
    }

    /// Whether a delivery is still pending and was never attempted.
    fn untried(&self, delivery_id: u64) -> Result<bool, StoreError> {
        if self.windows.values().any(|w| w.delivery_id == delivery_id) {
            return Ok(true); // created in this batch
        }
        Ok(match self.deep_get(&keys::delivery(delivery_id))? {
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
        match self.get(key)? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("id index".into()))?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
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

    /// Stores a new notification with its deliveries; returns (notification id, first delivery id).
    fn create(
        &mut self,
        new: NewNotification,
        index: Option<(Vec<u8>, String)>,
        delay_ms: u64,
    ) -> Result<(u64, u64), StoreError> {
        let id = self.new_id();
        self.put(index::notification_key(&new.source, id), Vec::new());
        // The first notification once the clock reached a new minute bounds that minute.
        let minute = index::minute_of(new.received_at_ms);
        if minute > *self.minute {
            *self.minute = minute;
            self.put(index::time_key(minute, id), Vec::new());
        }
        let external_id = match index {
            Some((ext, key)) => {
                self.put(ext.clone(), id.to_be_bytes().to_vec());
                self.keys.insert(ext, id);
                key
            }
            None => id.to_string(),
        };
        let due = new.received_at_ms + delay_ms;
        // A record born withdrawn (its status asks to delete its message) is not posted.
        let withdrawn = new.web_api
            && status_action(new.on_status.as_deref(), &new.raw, None).is_some_and(|a| a.delete);
        let mut deliveries = Vec::new();
        if !withdrawn {
            deliveries.push(self.deliver(
                id,
                &new.region,
                new.url.clone(),
                due,
                MessageKind::Full,
            )?);
            for (region, url) in &new.also {
                deliveries.push(self.deliver(id, region, url.clone(), due, MessageKind::Full)?);
            }
        }
        let first = deliveries.first().copied().unwrap_or(0);
        let mut n = Notification {
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
            anchor: (new.web_api && !withdrawn).then_some(first),
            decision: None,
            events: Vec::new(),
            withdrawn,
        };
        app_mode::act_on_status(self, &mut n, new.on_status.as_deref(), None, due)?;
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
        let same = self.bodies.same(n.kind, &n.raw, &new.raw);
        if same {
            return Ok(Accepted::Duplicate(id));
        }
        let previous = Version {
            received_at_ms: n.received_at_ms,
            raw: std::mem::take(&mut n.raw),
        };
        let old_raw = previous.raw.clone();
        n.earlier.push(previous);
        n.raw = new.raw.clone();
        n.received_at_ms = new.received_at_ms;
        let version = n.latest_version();
        let (old_region, old_url) = (n.region.clone(), n.url.clone());
        n.region = new.region.clone();
        n.url = new.url.clone();
        let now = new.received_at_ms;
        let change = Change {
            version,
            old_region,
            old_url,
            old_raw,
            at_ms: now,
        };
        app_mode::deliver_update(self, &mut n, &new, change)?;
        self.notifications.insert(id, n);
        Ok(Accepted::Updated(id))
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

/// An open coalescing window, as stored under its `c` key.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    notification_id: u64,
    /// The one delivery that posts the count.
    delivery_id: u64,
    /// Repeats received before this (ms) are counted in; fixed when the window opens, so a
    /// later config change does not reopen a window whose message is out.
    ends_ms: u64,
}

impl Window {
    pub fn encode(&self) -> [u8; 24] {
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
