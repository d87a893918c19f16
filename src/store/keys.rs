//! The byte layout of every key in the sled tree.
//!
//! Everything lives in one tree; a notification, its idempotency index entry, its delivery and its
//! place in the due queue are written by one log record (atomic through the log: a record is
//! replayed whole). The first byte says what a key holds; numbers are big-endian so sled's byte
//! order is numeric order.
//!
//! | prefix | key                                   | value                   |
//! |--------|---------------------------------------|-------------------------|
//! | `m`    | `m` + name (format, next id, counters, indexes) | store metadata |
//! | `n`    | `n` + notification id                 | `Notification` (`codec.rs`) |
//! | `k`    | `k` + source + `\0` + external id     | notification id         |
//! | `d`    | `d` + delivery id                     | `Delivery` (`codec.rs`) |
//! | `q`    | `q` + region + `\0` + due ms + id     | empty: the due queue    |
//! | `x`    | `x` + delivery id                     | empty: dead-letter list |
//! | `p`    | `p` + region                          | paused-until ms         |
//! | `P`    | `P` + region                          | manual or self pause    |
//! | `c`    | `c` + source + `\0` + coalescing key  | notification id         |
//!
//! The list indexes (`i`, `s`, `t`) are `index.rs`'s. A notification is stored as its raw body
//! and its source kind; the parsed record is derived on read (`sources::Record::parse`, the parser
//! intake used). Values other than notifications and deliveries, and every value of a store from
//! before format 4, are JSON; both decode, and `hookrelay store dump` prints any key as JSON.
//!
//! Source and region names are validated to `[A-Za-z0-9_-]`, so the `\0` separator is unambiguous.

pub const FORMAT_VERSION: &[u8] = b"mformat";
/// All metadata keys start with this.
pub const META: &[u8] = b"m";
/// The next id to hand out, written with every batch that used ids: ids come from the log, so
/// a replayed batch gets the same ids it had (sled's `generate_id` is not in the log).
pub const NEXT_ID: &[u8] = b"mnext_id";
/// Pending deliveries per target and dead letters, written with every batch that changes them,
/// so that start-up reads two keys instead of scanning a queue of a million entries.
pub const COUNTERS: &[u8] = b"mcounters";
pub const NOTIFICATION: u8 = b'n';
pub const DELIVERY: u8 = b'd';
pub const DUE: u8 = b'q';
pub const DEAD: u8 = b'x';
pub const PAUSE: u8 = b'p';

fn with_id(prefix: u8, id: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

pub fn notification(id: u64) -> [u8; 9] {
    with_id(NOTIFICATION, id)
}

pub fn delivery(id: u64) -> [u8; 9] {
    with_id(DELIVERY, id)
}

pub fn dead(id: u64) -> [u8; 9] {
    with_id(DEAD, id)
}

pub fn external(source: &str, external_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + source.len() + external_id.len());
    key.push(b'k');
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(external_id.as_bytes());
    key
}

/// The open coalescing notification for identical webhooks of a source.
pub fn coalesce(source: &str, key: &str) -> Vec<u8> {
    let mut k = external(source, key);
    k[0] = b'c';
    k
}

/// All due-queue keys of one region start with this.
pub fn due_prefix(region: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + region.len() + 16);
    key.push(DUE);
    key.extend_from_slice(region.as_bytes());
    key.push(0);
    key
}

pub fn due(region: &str, due_ms: u64, delivery_id: u64) -> Vec<u8> {
    let mut key = due_prefix(region);
    key.extend_from_slice(&due_ms.to_be_bytes());
    key.extend_from_slice(&delivery_id.to_be_bytes());
    key
}

/// Splits a due-queue key into (region, due ms, delivery id).
pub fn parse_due(key: &[u8]) -> Option<(&str, u64, u64)> {
    let rest = key.strip_prefix(&[DUE])?;
    let sep = rest.iter().position(|b| *b == 0)?;
    let region = std::str::from_utf8(&rest[..sep]).ok()?;
    let nums = &rest[sep + 1..];
    if nums.len() != 16 {
        return None;
    }
    let due = u64::from_be_bytes(nums[..8].try_into().ok()?);
    let id = u64::from_be_bytes(nums[8..].try_into().ok()?);
    Some((region, due, id))
}

pub const MANUAL_PAUSE: u8 = b'P';

/// A region paused by an operator or by a "webhook gone" answer: no time limit.
pub fn manual_pause(region: &str) -> Vec<u8> {
    let mut key = vec![MANUAL_PAUSE];
    key.extend_from_slice(region.as_bytes());
    key
}

pub fn pause(region: &str) -> Vec<u8> {
    let mut key = vec![PAUSE];
    key.extend_from_slice(region.as_bytes());
    key
}

pub fn id_from(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_within_a_region() {
        assert!(due("UK", 5, 99) < due("UK", 6, 1));
        assert!(
            due("UK", 300, 1) < due("UK", 70_000, 1),
            "big-endian keeps numeric order"
        );
        assert!(due("UK", u64::MAX, 1).starts_with(&due_prefix("UK")));
        assert!(!due("UKX", 1, 1).starts_with(&due_prefix("UK")));
    }

    #[test]
    fn due_keys_round_trip() {
        let key = due("EU", 1_700_000_000_000, 42);
        assert_eq!(parse_due(&key), Some(("EU", 1_700_000_000_000, 42)));
        assert_eq!(parse_due(b"qEU\0short"), None);
    }
}
