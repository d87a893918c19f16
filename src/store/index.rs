//! The list indexes: notifications by source, by arrival time, and by the deliveries that are
//! pending or dead, so a filtered page of `GET /v1/notifications` reads a page of keys instead
//! of every stored notification.
//!
//! They are written with what they index, in the same log record: a notification's `i` key
//! when the writer stores it, a delivery's state key when it is created (pending) and when its
//! outcome is recorded. So they are as durable and as atomic as the rest. (Deriving them in the
//! applier was tried first: it made the applier slower than intake under load, and outcomes,
//! which wait for it, fell behind.) Each key is a sled
//! insert in the applier, which is most of what a webhook costs, so only what no other order
//! gives is indexed (format 4):
//! - no global state index: the few sources' ranges are merged ([`super::listing`]);
//! - no index of delivered deliveries: delivered is what is neither pending nor dead, so a
//!   list of delivered notifications walks the notifications and skips those the pending and
//!   dead ranges name;
//! - the time index is sparse: ids follow arrival, so one key per minute (the first id the
//!   writer gave once its clock reached that minute) bounds a time range.
//!
//! | prefix | key                                                      |
//! |--------|----------------------------------------------------------|
//! | `i`    | `i` + source + `\0` + notification id                    |
//! | `t`    | `t` + minute (ms) + first notification id of that minute |
//! | `s`    | `s` + source + `\0` + state + notification id + delivery id (pending, dead) |
//!
//! A notification is listed under a state when one of its deliveries is in it; the list checks
//! each candidate's overall state (pending if anything waits, else dead if anything died, else
//! delivered). Ids are big-endian, so within a prefix the newest notification is the last key.
//! A store from before the indexes gets them built once, after its log is replayed at start;
//! a store with format 3's indexes (`S`, delivered `s` keys, a `t` key per notification) has
//! them thinned to these once.

use super::records::{Delivery, DeliveryState, Notification};
use super::{decode, keys};

pub const BY_SOURCE: u8 = b'i';
pub const BY_TIME: u8 = b't';
/// Format 3's global state index, removed by the upgrade.
const OLD_BY_STATE: u8 = b'S';
pub const BY_SOURCE_STATE: u8 = b's';
/// Which indexes the store has: absent (none, built at start), `1` (format 3's), `2` (these).
pub const BUILT: &[u8] = b"mindexes";
const LEAN: &[u8] = b"2";
/// The time index's step: the list reads a time range this much wider on each side and checks
/// each notification's exact time.
pub const MINUTE_MS: u64 = 60_000;

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

/// The range of one source's deliveries in one state.
pub fn source_state_range(source: &str, state: ListState) -> Vec<u8> {
    let mut key = source_prefix(BY_SOURCE_STATE, source);
    key.push(state.byte());
    key
}

/// The minute `ms` falls in, as the time index keys it.
pub fn minute_of(ms: u64) -> u64 {
    ms - ms % MINUTE_MS
}

/// The time index from the minute of `ms` on.
pub fn time_from(ms: u64) -> Vec<u8> {
    let mut key = vec![BY_TIME];
    key.extend_from_slice(&minute_of(ms).to_be_bytes());
    key
}

/// The time index's key for notification `id`, the first the writer stored in `minute`.
pub fn time_key(minute: u64, id: u64) -> Vec<u8> {
    with_ids(time_from(minute), &[id])
}

/// The minute a time-index key names.
pub fn minute_in(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&[BY_TIME])?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

fn with_ids(mut prefix: Vec<u8>, ids: &[u64]) -> Vec<u8> {
    for id in ids {
        prefix.extend_from_slice(&id.to_be_bytes());
    }
    prefix
}

/// A notification's source key (written when it is stored).
pub fn notification_key(source: &str, id: u64) -> Vec<u8> {
    with_ids(source_range(source), &[id])
}

/// A delivery's key for one state: `None` for delivered, which is not indexed.
pub fn delivery_key(
    source: &str,
    state: ListState,
    notification: u64,
    delivery: u64,
) -> Option<Vec<u8>> {
    (state != ListState::Delivered)
        .then(|| with_ids(source_state_range(source, state), &[notification, delivery]))
}

/// Time keys that no longer bound anything: those followed by a key whose id is at or below
/// `oldest` (the oldest notification kept), so every notification of their minute is gone.
pub fn stale_time_keys(db: &sled::Db, oldest: u64) -> sled::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut previous: Option<sled::IVec> = None;
    for entry in db.scan_prefix([BY_TIME]) {
        let (key, _) = entry?;
        let Some(id) = notification_of(&key, 9) else {
            continue;
        };
        if id > oldest {
            break;
        }
        out.extend(previous.replace(key).map(|k| k.to_vec()));
    }
    Ok(out)
}

/// The notification id in a key of `prefix_len` bytes of prefix (`i`, `t`: the id ends the key;
/// `s`: the delivery id follows it).
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

/// The last minute the time index has, from sled: the writer adds a key when its clock passes it.
pub fn last_minute(db: &sled::Db) -> sled::Result<u64> {
    Ok(match db.scan_prefix([BY_TIME]).next_back() {
        Some(entry) => minute_in(&entry?.0).unwrap_or(0),
        None => 0,
    })
}

/// What [`upgrade`] did, so the start-up log speaks of an older store only for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// The indexes were this release's already (a store it created, or upgraded before).
    Current,
    /// A store from before the indexes: built for this many notifications.
    Built(u64),
    /// Format 3's indexes thinned to these; this many notifications were listed in them.
    Thinned(u64),
}

/// Marks a store being created as having this release's indexes: it writes them with its
/// data from the first record on, so there is nothing to build.
pub fn mark_current(db: &sled::Db) -> sled::Result<()> {
    db.insert(BUILT, LEAN)?;
    Ok(())
}

/// Brings the indexes of a store to this release's, once: builds them for a store that has
/// none (from before them), thins format 3's. Runs in the applier once the log is replayed (an
/// older log's records bring older keys); lists wait until it is done
/// ([`super::Store::sync_lists`]).
pub fn upgrade(db: &sled::Db) -> sled::Result<Upgrade> {
    match db.get(BUILT)? {
        Some(v) if v == LEAN => Ok(Upgrade::Current),
        Some(_) => {
            log::info!("Thinning the list indexes of a store from an older hookrelay (once); deliveries resume when it is done.");
            thin(db).map(Upgrade::Thinned)
        }
        None => build(db).map(Upgrade::Built),
    }
}

/// Format 3 → 4: drops the global state index and the delivered keys, keeps the first time
/// key of each minute.
fn thin(db: &sled::Db) -> sled::Result<u64> {
    let mut removed = 0;
    for entry in db.scan_prefix([OLD_BY_STATE]) {
        db.remove(entry?.0)?;
        removed += 1;
    }
    for entry in db.scan_prefix([BY_SOURCE_STATE]) {
        let (key, _) = entry?;
        // `s` + source + `\0` + state byte + ids
        let state = key
            .iter()
            .position(|b| *b == 0)
            .and_then(|sep| key.get(sep + 1));
        if state == Some(&ListState::Delivered.byte()) {
            db.remove(key)?;
            removed += 1;
        }
    }
    let mut minute = None;
    let mut notifications = 0;
    for entry in db.scan_prefix([BY_TIME]) {
        let (key, _) = entry?;
        notifications += 1;
        let (Some(ms), Some(id)) = (minute_in(&key), notification_of(&key, 9)) else {
            db.remove(key)?;
            removed += 1;
            continue;
        };
        let m = minute_of(ms);
        if minute == Some(m) {
            db.remove(key)?;
            removed += 1;
            continue;
        }
        minute = Some(m);
        if m != ms {
            // The first of its minute: rekeyed by the minute (which sorts before it).
            db.remove(&key)?;
            db.insert(time_key(m, id), &[])?;
            removed += 1;
        }
    }
    finish(db)?;
    log::debug!("Thinned the list indexes: {removed} keys rewritten or removed.");
    Ok(notifications)
}

/// A store from before the indexes: every notification gets its keys.
fn build(db: &sled::Db) -> sled::Result<u64> {
    let mut count = 0;
    let mut minute = 0;
    for entry in db.scan_prefix([keys::NOTIFICATION]) {
        let (_, v) = entry?;
        let Ok(n) = decode::<Notification>(&v) else {
            continue;
        };
        db.insert(notification_key(&n.source, n.id), &[])?;
        let m = minute_of(first_arrival(&n));
        if m > minute {
            minute = m;
            db.insert(time_key(m, n.id), &[])?;
        }
        for id in &n.deliveries {
            if let Some(dv) = db.get(keys::delivery(*id))? {
                if let Ok(d) = decode::<Delivery>(&dv) {
                    let state = ListState::of_delivery(&d.state);
                    if let Some(key) = delivery_key(&n.source, state, n.id, d.id) {
                        db.insert(key, &[])?;
                    }
                }
            }
        }
        count += 1;
    }
    finish(db)?;
    Ok(count)
}

/// Marks the indexes done, durably: the upgrade's writes are not in the log, so they reach
/// the disk before the mark says they are there.
fn finish(db: &sled::Db) -> sled::Result<()> {
    db.flush()?;
    db.insert(BUILT, LEAN)?;
    db.flush()?;
    Ok(())
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
