//! A webhook into the batch: a new notification, a duplicate, a new version of a stored one, or
//! a repeat counted into an open coalescing window.

use super::window::Window;
use super::BatchState;
use crate::store::app_mode::{self, status_action, Change};
use crate::store::commands::{Accepted, Idempotency, NewNotification, COALESCE_GRACE_MS};
use crate::store::index;
use crate::store::queue::Queue;
use crate::store::records::{Delivery, MessageKind, Notification, Version};
use crate::store::{decode, keys, StoreError};

impl BatchState<'_> {
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
        let same = self.bodies.same(&n.source, n.kind, &n.raw, &new.raw);
        if same {
            return Ok(Accepted::Duplicate(id));
        }
        if self.bodies.starts_anew(&n.source, n.kind, &n.raw, &new.raw) {
            // The stored message was closed (resolved): this is a new one, and the key now
            // points at it.
            return Ok(Accepted::New(self.create(new, Some(index), 0)?.0));
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
