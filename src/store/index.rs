//! The list indexes: notifications by source, by arrival time, and by the state of their
//! deliveries (pending, delivered, dead), alone and per source, so a filtered page of
//! `GET /v1/notifications` reads a page of keys instead of every stored notification.
//!
//! They are written with what they index, in the same log record: a notification's `i` and
//! `t` keys when the writer stores it, a delivery's state keys when it is created (pending) and
//! when its outcome is recorded. So they are as durable and as atomic as the rest, and cost a
//! few small keys per write instead of work in the applier. A store from before them gets them
//! built once, after its log is replayed at start.
//!
//! | prefix | key                                                      |
//! |--------|----------------------------------------------------------|
//! | `i`    | `i` + source + `\0` + notification id                    |
//! | `t`    | `t` + first arrival ms + notification id                 |
//! | `S`    | `S` + state + notification id + delivery id              |
//! | `s`    | `s` + source + `\0` + state + notification id + delivery id |
//!
//! A notification is listed under a state when one of its deliveries is in it; the list checks
//! each candidate's overall state (pending if anything waits, else dead if anything died, else
//! delivered). Ids are big-endian, so within a prefix the newest notification is the last key.

use super::records::{Delivery, DeliveryState, Notification};
use super::{decode, keys};

pub const BY_SOURCE: u8 = b'i';
pub const BY_TIME: u8 = b't';
pub const BY_STATE: u8 = b'S';
pub const BY_SOURCE_STATE: u8 = b's';
/// Set once the indexes cover every notification.
pub const BUILT: &[u8] = b"mindexes";

/// A state as lists filter it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    Pending,
    Delivered,
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

    pub fn of_delivery(state: &DeliveryState) -> ListState {
        match state {
            DeliveryState::Pending { .. } => ListState::Pending,
            DeliveryState::Delivered { .. } => ListState::Delivered,
            DeliveryState::Dead { .. } => ListState::Dead,
        }
    }

    fn byte(self) -> u8 {
        match self {
            ListState::Pending => b'p',
            ListState::Delivered => b'v',
            ListState::Dead => b'd',
        }
    }
}

fn source_prefix(prefix: u8, source: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 19);
    key.push(prefix);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key
}

/// The range of one source's notifications.
pub fn source_range(source: &str) -> Vec<u8> {
    source_prefix(BY_SOURCE, source)
}

/// The range of the deliveries in one state.
pub fn state_range(state: ListState) -> Vec<u8> {
    vec![BY_STATE, state.byte()]
}

/// The range of one source's deliveries in one state.
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

fn with_ids(mut prefix: Vec<u8>, ids: &[u64]) -> Vec<u8> {
    for id in ids {
        prefix.extend_from_slice(&id.to_be_bytes());
    }
    prefix
}

/// A notification's source and time keys (written when it is stored).
pub fn notification_keys(source: &str, first_arrival_ms: u64, id: u64) -> [Vec<u8>; 2] {
    [
        with_ids(source_range(source), &[id]),
        with_ids(time_from(first_arrival_ms), &[id]),
    ]
}

/// A delivery's keys for one state.
pub fn delivery_keys(
    source: &str,
    state: ListState,
    notification: u64,
    delivery: u64,
) -> [Vec<u8>; 2] {
    [
        with_ids(state_range(state), &[notification, delivery]),
        with_ids(source_state_range(source, state), &[notification, delivery]),
    ]
}

/// Every key of a notification and its deliveries, in any state (for the purge).
pub fn all_keys(n: &Notification) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = notification_keys(&n.source, first_arrival(n), n.id).into();
    for d in &n.deliveries {
        for s in ListState::ALL {
            out.extend(delivery_keys(&n.source, s, n.id, *d));
        }
    }
    out
}

/// The notification id in a key of `prefix_len` bytes of prefix (`i`, `t`: the id ends the key;
/// `S`, `s`: the delivery id follows it).
pub fn notification_of(key: &[u8], prefix_len: usize) -> Option<u64> {
    Some(u64::from_be_bytes(
        key.get(prefix_len..prefix_len + 8)?.try_into().ok()?,
    ))
}

/// When a notification first arrived (its first version's time).
pub fn first_arrival(n: &Notification) -> u64 {
    n.earlier
        .first()
        .map_or(n.received_at_ms, |v| v.received_at_ms)
}

/// Builds the indexes of a store that has none (a store from an older hookrelay), once.
pub fn build_if_missing(db: &sled::Db) -> sled::Result<u64> {
    if db.get(BUILT)?.is_some() {
        return Ok(0);
    }
    let mut count = 0;
    for entry in db.scan_prefix([keys::NOTIFICATION]) {
        let (_, v) = entry?;
        let Ok(n) = decode::<Notification>(&v) else {
            continue;
        };
        for key in notification_keys(&n.source, first_arrival(&n), n.id) {
            db.insert(key, &[])?;
        }
        for id in &n.deliveries {
            if let Some(dv) = db.get(keys::delivery(*id))? {
                if let Ok(d) = decode::<Delivery>(&dv) {
                    let state = ListState::of_delivery(&d.state);
                    for key in delivery_keys(&n.source, state, n.id, d.id) {
                        db.insert(key, &[])?;
                    }
                }
            }
        }
        count += 1;
    }
    db.insert(BUILT, b"1".as_slice())?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_notification_and_name_it() {
        let prefix = source_state_range("crm", ListState::Dead);
        let [_, a] = delivery_keys("crm", ListState::Dead, 7, 8);
        let [_, b] = delivery_keys("crm", ListState::Dead, 300, 2);
        assert!(a < b && a.starts_with(&prefix));
        assert_eq!(notification_of(&b, prefix.len()), Some(300));
        let [by_source, _] = notification_keys("crm2", 0, 1);
        assert!(!by_source.starts_with(&source_range("crm")));
        assert_eq!(
            notification_of(&by_source, source_range("crm2").len()),
            Some(1)
        );
    }
}
