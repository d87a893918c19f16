//! The list indexes: notifications by source, by state (pending, delivered, dead), by both,
//! and by the time they arrived, so a filtered page of `GET /v1/notifications` reads a page of
//! keys instead of every stored notification.
//!
//! They are derived data, kept by the applier: after applying a log record it recomputes the
//! entries of every notification the record touched, from what sled now holds. They are not in
//! the log; a record replayed after a crash recomputes them again, so they always follow the
//! records sled has. A store from before them gets them built once, at start.
//!
//! | prefix | key                                          |
//! |--------|----------------------------------------------|
//! | `i`    | `i` + source + `\0` + id                     |
//! | `S`    | `S` + state + id                             |
//! | `s`    | `s` + source + `\0` + state + id             |
//! | `t`    | `t` + first arrival ms + id                  |
//!
//! Ids are big-endian, so within a prefix the newest notification is the last key.

use std::collections::BTreeSet;

use super::records::{Delivery, DeliveryState, Notification};
use super::wal::record::{Effect, Record};
use super::{decode, keys};

pub const BY_SOURCE: u8 = b'i';
pub const BY_STATE: u8 = b'S';
pub const BY_SOURCE_STATE: u8 = b's';
pub const BY_TIME: u8 = b't';
/// Set once the indexes cover every notification.
pub const BUILT: &[u8] = b"mindexes";

/// A notification's state as lists filter it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// Something still waits to be sent.
    Pending,
    /// Everything went out.
    Delivered,
    /// Nothing waits, and something died.
    Dead,
}

impl ListState {
    pub const ALL: [ListState; 3] = [ListState::Pending, ListState::Delivered, ListState::Dead];

    pub fn parse(text: &str) -> Option<ListState> {
        match text {
            "pending" => Some(ListState::Pending),
            "delivered" => Some(ListState::Delivered),
            "dead" => Some(ListState::Dead),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Pending => "pending",
            ListState::Delivered => "delivered",
            ListState::Dead => "dead",
        }
    }

    fn byte(self) -> u8 {
        match self {
            ListState::Pending => b'p',
            ListState::Delivered => b'v',
            ListState::Dead => b'd',
        }
    }

    /// From the states of a notification's deliveries.
    pub fn of<'a>(states: impl IntoIterator<Item = &'a DeliveryState>) -> ListState {
        let mut dead = false;
        for s in states {
            match s {
                DeliveryState::Pending { .. } => return ListState::Pending,
                DeliveryState::Dead { .. } => dead = true,
                DeliveryState::Delivered { .. } => {}
            }
        }
        if dead {
            ListState::Dead
        } else {
            ListState::Delivered
        }
    }
}

fn source_prefix(prefix: u8, source: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 11);
    key.push(prefix);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key
}

/// Keys of one source, newest last.
pub fn source_range(source: &str) -> Vec<u8> {
    source_prefix(BY_SOURCE, source)
}

/// Keys of one state, newest last.
pub fn state_range(state: ListState) -> Vec<u8> {
    vec![BY_STATE, state.byte()]
}

/// Keys of one source in one state, newest last.
pub fn source_state_range(source: &str, state: ListState) -> Vec<u8> {
    let mut key = source_prefix(BY_SOURCE_STATE, source);
    key.push(state.byte());
    key
}

/// The time index from `ms` on.
pub fn time_from(ms: u64) -> Vec<u8> {
    let mut key = vec![BY_TIME];
    key.extend_from_slice(&ms.to_be_bytes());
    key
}

/// The notification id at the end of any index key.
pub fn id_of(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key.get(tail..)?.try_into().ok()?))
}

fn with_id(mut prefix: Vec<u8>, id: u64) -> Vec<u8> {
    prefix.extend_from_slice(&id.to_be_bytes());
    prefix
}

/// When a notification first arrived (its first version's time).
fn first_arrival(n: &Notification) -> u64 {
    n.earlier
        .first()
        .map_or(n.received_at_ms, |v| v.received_at_ms)
}

/// Every index key a notification can have (for removal).
fn all_keys(n: &Notification) -> Vec<Vec<u8>> {
    let mut out = vec![
        with_id(source_range(&n.source), n.id),
        with_id(time_from(first_arrival(n)), n.id),
    ];
    for s in ListState::ALL {
        out.push(with_id(state_range(s), n.id));
        out.push(with_id(source_state_range(&n.source, s), n.id));
    }
    out
}

/// Brings a notification's entries up to date with sled.
pub fn reindex(db: &sled::Db, n: &Notification) -> sled::Result<()> {
    let mut states = Vec::with_capacity(n.deliveries.len());
    for id in &n.deliveries {
        if let Some(v) = db.get(keys::delivery(*id))? {
            if let Ok(d) = decode::<Delivery>(&v) {
                states.push(d.state);
            }
        }
    }
    let state = ListState::of(&states);
    db.insert(with_id(source_range(&n.source), n.id), &[])?;
    db.insert(with_id(time_from(first_arrival(n)), n.id), &[])?;
    for s in ListState::ALL {
        let keys = [
            with_id(state_range(s), n.id),
            with_id(source_state_range(&n.source, s), n.id),
        ];
        for key in keys {
            if s == state {
                db.insert(key, &[])?;
            } else {
                db.remove(key)?;
            }
        }
    }
    Ok(())
}

/// The notifications a record touches, and those it deletes (read before it is applied).
pub struct Touched {
    ids: BTreeSet<u64>,
    deleted: Vec<Notification>,
}

/// Before applying `record`: which notifications it changes, and the ones it removes.
pub fn touched(db: &sled::Db, record: &Record) -> sled::Result<Touched> {
    let mut t = Touched {
        ids: BTreeSet::new(),
        deleted: Vec::new(),
    };
    for e in &record.effects {
        match e {
            Effect::Put(k, _) if k.first() == Some(&keys::NOTIFICATION) => {
                t.ids.extend(keys::id_from(k));
            }
            Effect::Put(k, v) if k.first() == Some(&keys::DELIVERY) => {
                if let Ok(d) = decode::<Delivery>(v) {
                    t.ids.insert(d.notification_id);
                }
            }
            Effect::Del(k) if k.first() == Some(&keys::NOTIFICATION) => {
                if let Some(v) = db.get(k)? {
                    if let Ok(n) = decode::<Notification>(&v) {
                        t.deleted.push(n);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

/// After applying the record: recompute what it touched, drop what it deleted.
pub fn refresh(db: &sled::Db, t: Touched) -> sled::Result<()> {
    for n in &t.deleted {
        for key in all_keys(n) {
            db.remove(key)?;
        }
    }
    for id in t.ids {
        if let Some(v) = db.get(keys::notification(id))? {
            if let Ok(n) = decode::<Notification>(&v) {
                reindex(db, &n)?;
            }
        }
    }
    Ok(())
}

/// Builds the indexes of a store that has none (once; a store from before them).
pub fn build_if_missing(db: &sled::Db) -> sled::Result<u64> {
    if db.get(BUILT)?.is_some() {
        return Ok(0);
    }
    let mut count = 0;
    for entry in db.scan_prefix([keys::NOTIFICATION]) {
        let (_, v) = entry?;
        if let Ok(n) = decode::<Notification>(&v) {
            reindex(db, &n)?;
            count += 1;
        }
    }
    db.insert(BUILT, b"1".as_slice())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_pending_while_anything_waits_then_dead_or_delivered() {
        let pending = DeliveryState::Pending { next_at_ms: 1 };
        let done = DeliveryState::Delivered { at_ms: 1 };
        let dead = DeliveryState::Dead {
            at_ms: 1,
            reason: "x".into(),
        };
        assert_eq!(ListState::of([&done, &pending, &dead]), ListState::Pending);
        assert_eq!(ListState::of([&done, &dead]), ListState::Dead);
        assert_eq!(ListState::of([&done]), ListState::Delivered);
        assert_eq!(ListState::of([]), ListState::Delivered);
    }

    #[test]
    fn index_keys_end_in_the_id_and_sort_by_it() {
        let a = with_id(source_state_range("crm", ListState::Dead), 7);
        let b = with_id(source_state_range("crm", ListState::Dead), 300);
        assert!(a < b);
        assert_eq!(id_of(&b), Some(300));
        assert!(!with_id(source_range("crm2"), 1).starts_with(&source_range("crm")));
    }
}
