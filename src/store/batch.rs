//! Turning one batch of commands into the sled writes it makes (the log record's effects).
//!
//! The writer thread runs this for every group-committed batch. It decides idempotency (a
//! repeat, a new version, a coalesced copy) from three places, newest first: this batch, the
//! [`Overlay`] of keys written by records sled has not applied yet, and sled. Reads that need a
//! whole notification or delivery (an update, a coalesced repeat, a replay) first wait until sled
//! has applied every durable record, which is immediate unless a burst is being applied.

use std::collections::{BTreeSet, HashMap};

use super::journal::{Accepted, Deltas, Idempotency, NewNotification, COALESCE_GRACE_MS};
use super::overlay::Overlay;
use super::progress::Progress;
use super::records::{Delivery, DeliveryState, MessageKind, Notification, Record, Version};
use super::wal::record::Effect;
use super::{decode, encode, keys, StoreError};
use crate::sources::status::StatusRules;

/// The batch being built, with the notifications it changes so later commands in the same
/// batch see them.
pub(super) struct BatchState<'a> {
    /// sled, for what is neither in this batch nor in the overlay.
    pub db: &'a sled::Db,
    /// Keys written by durable records sled has not applied yet.
    pub overlay: &'a Overlay,
    /// To wait for sled to catch up before reading a whole record.
    pub progress: &'a Progress,
    /// The next id to hand out (notifications and deliveries share one sequence).
    pub next_id: &'a mut u64,
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
    fn deep_get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.progress.wait_applied(self.progress.durable())?;
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
            let new_id = self.deliver(
                old.notification_id,
                &old.region,
                old.url.clone(),
                now,
                old.message.clone(),
            )?;
            self.effects.push(Effect::Del(dead_key.to_vec()));
            self.deltas.dead -= 1;
            let mut n = self.notification(old.notification_id)?;
            n.deliveries.push(new_id);
            // A replayed first post is the message later edits and actions must find.
            if n.anchor == Some(*id) {
                n.anchor = Some(new_id);
            }
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
        let external_id = match index {
            Some((ext, key)) => {
                self.put(ext.clone(), id.to_be_bytes().to_vec());
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
            anchor: new.web_api.then_some(first),
            decision: None,
            events: Vec::new(),
        };
        self.act_on_status(&mut n, new.on_status.as_ref(), None, due)?;
        self.notifications.insert(id, n);
        Ok((id, first))
    }

    /// Queues the `on_status` actions (react, pin, delete) on the notification's posted message
    /// when its status is new or changed and has actions configured. Without a message that the
    /// Web API can act on (an incoming webhook's) there is nothing to do.
    fn act_on_status(
        &mut self,
        n: &mut Notification,
        rules: Option<&StatusRules>,
        old_raw: Option<&str>,
        due_ms: u64,
    ) -> Result<(), StoreError> {
        let (Some(rules), Some(anchor)) = (rules, n.anchor) else {
            return Ok(());
        };
        let value_of = |raw: &str| {
            serde_json::from_str::<serde_json::Value>(raw)
                .ok()
                .and_then(|doc| rules.value_in(&doc))
        };
        let Some(value) = value_of(&n.raw) else {
            return Ok(());
        };
        if old_raw
            .and_then(value_of)
            .is_some_and(|old| old.eq_ignore_ascii_case(&value))
        {
            return Ok(());
        }
        let Some(action) = rules.for_value(&value).cloned() else {
            return Ok(());
        };
        let region = n.region.clone();
        let mut kinds = Vec::new();
        if let Some(name) = action.react {
            kinds.push(MessageKind::React { of: anchor, name });
        }
        if action.pin {
            kinds.push(MessageKind::Pin { of: anchor });
        }
        if action.delete {
            kinds.push(MessageKind::Delete { of: anchor });
            // Later versions have no message to edit: a new one is posted for them.
            n.anchor = None;
        }
        for kind in kinds {
            let d = self.deliver(n.id, &region, None, due_ms, kind)?;
            n.deliveries.push(d);
        }
        Ok(())
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
        let old_raw = previous.raw.clone();
        n.earlier.push(previous);
        n.raw = new.raw;
        n.received_at_ms = new.received_at_ms;
        let version = n.latest_version();
        let (old_region, old_url) = (n.region.clone(), n.url.clone());
        n.region = new.region.clone();
        n.url = new.url.clone();
        let now = new.received_at_ms;
        let same_region = old_region == new.region;
        let added = match n.anchor {
            // A bot-token region: edit the message in place and say what changed in its thread.
            Some(of) if same_region => vec![
                self.deliver(
                    id,
                    &new.region,
                    None,
                    now,
                    MessageKind::Edit { version, of },
                )?,
                self.deliver(
                    id,
                    &new.region,
                    None,
                    now,
                    MessageKind::ThreadReply { version, of },
                )?,
            ],
            // Moved away from a bot-token region: its message goes, the new region gets it whole.
            Some(of) => {
                let full = self.deliver(id, &new.region, new.url, now, MessageKind::Full)?;
                let delete = MessageKind::Delete { of };
                let gone = self.deliver(id, &old_region, old_url, now, delete)?;
                n.anchor = new.web_api.then_some(full);
                vec![full, gone]
            }
            // A bot-token region without a message to edit (it was deleted): post it anew.
            None if same_region && new.web_api => {
                let full = self.deliver(id, &new.region, None, now, MessageKind::Full)?;
                n.anchor = Some(full);
                vec![full]
            }
            // Incoming webhooks cannot change what they posted: a follow-up names the change.
            None if same_region => {
                let changes = MessageKind::Changes { version };
                vec![self.deliver(id, &new.region, new.url, now, changes)?]
            }
            None => {
                let full = self.deliver(id, &new.region, new.url, now, MessageKind::Full)?;
                let moved = MessageKind::Moved {
                    version,
                    to: new.region.clone(),
                };
                n.anchor = new.web_api.then_some(full);
                vec![full, self.deliver(id, &old_region, old_url, now, moved)?]
            }
        };
        n.deliveries.extend(added);
        self.act_on_status(&mut n, new.on_status.as_ref(), Some(&old_raw), now)?;
        self.notifications.insert(id, n);
        Ok(Accepted::Updated(id))
    }

    pub(super) fn deliver(
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
        };
        self.put(keys::delivery(id).to_vec(), encode(&d));
        self.put(keys::due(region, due_ms, id), Vec::new());
        self.new_targets.insert(region.to_string());
        *self.deltas.pending.entry(region.to_string()).or_insert(0) += 1;
        Ok(id)
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
