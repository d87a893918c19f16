//! Which notification ids a filtered list walks, newest first, from the list indexes.
//!
//! The indexes keep only what no other order gives ([`super::index`]), so some filters are
//! answered by combining ranges: the sources' ranges merged for a state across all sources,
//! and "delivered" as the notifications that neither the pending nor the dead range names.
//! Every walk yields a superset of the answer in id order, each id once; the caller checks each
//! candidate's exact state and time.

use std::iter::Peekable;

use super::index::{self, ListState};
use super::{keys, Store, StoreError};

/// Ids, newest first.
pub type Ids<'a> = Box<dyn Iterator<Item = Result<u64, StoreError>> + 'a>;

/// How long a list waits, at start, for the list indexes of a store from an older hookrelay to
/// be brought to this release's format before it answers 503 and asks to be tried again. Short,
/// because an HTTP worker waits with it; the upgrade takes seconds for a million notifications.
const LISTS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Store {
    /// [`Store::sync_reads`], then waits until the list indexes are in this release's format
    /// (at once, except while an older store is upgraded at start): whether a list may read
    /// them now.
    pub fn sync_lists(&self) -> Result<bool, StoreError> {
        self.sync_reads()?;
        self.progress.wait_lists_for(LISTS_WAIT)
    }
}

/// The first notification id stored once the writer's clock reached the minute of `ms`: no
/// notification that arrived at or after `ms` has a lower id (ids follow arrival). `None` when
/// nothing arrived since.
pub fn first_id_from(db: &sled::Db, ms: u64) -> Result<Option<u64>, StoreError> {
    let start = index::time_from(ms);
    match db.range(start..vec![index::BY_TIME + 1]).next() {
        None => Ok(None),
        Some(entry) => {
            let (key, _) = entry?;
            // `t` + minute + id
            Ok(index::notification_of(&key, 9))
        }
    }
}

/// The candidates for a list of `source`'s (or every source's) notifications in `state` (or
/// any), with ids in `lowest..highest`.
pub fn candidates<'a>(
    db: &'a sled::Db,
    source: Option<&str>,
    state: Option<ListState>,
    lowest: u64,
    highest: u64,
) -> Result<Ids<'a>, StoreError> {
    let all: Ids<'a> = match source {
        Some(s) => ids(db, index::source_range(s), lowest, highest),
        None => ids(db, vec![keys::NOTIFICATION], lowest, highest),
    };
    let Some(state) = state else {
        return Ok(all);
    };
    let sources = match source {
        Some(s) => vec![s.to_string()],
        None => stored_sources(db)?,
    };
    let in_state = |state: ListState| -> Ids<'a> {
        let ranges = sources
            .iter()
            .map(|s| ids(db, index::source_state_range(s, state), lowest, highest))
            .collect();
        merged(ranges)
    };
    Ok(match state {
        ListState::Delivered => {
            let settled_badly = merged(vec![
                in_state(ListState::Pending),
                in_state(ListState::Dead),
            ]);
            Box::new(Excluding {
                all: all.peekable(),
                not: settled_badly.peekable(),
            })
        }
        pending_or_dead => in_state(pending_or_dead),
    })
}

/// The ids in one index range, newest first, each once (a state key names a delivery, and a
/// notification may have several in that state).
fn ids<'a>(db: &'a sled::Db, prefix: Vec<u8>, lowest: u64, highest: u64) -> Ids<'a> {
    let key = |id: u64| {
        let mut k = prefix.clone();
        k.extend_from_slice(&id.to_be_bytes());
        k
    };
    let len = prefix.len();
    let mut last = None;
    Box::new(
        db.range(key(lowest)..key(highest))
            .rev()
            .map(move |entry| {
                let (k, _) = entry?;
                index::notification_of(&k, len)
                    .ok_or_else(|| StoreError::Corrupt("index key".into()))
            })
            .filter(move |id| match id {
                Ok(id) if last == Some(*id) => false,
                Ok(id) => {
                    last = Some(*id);
                    true
                }
                Err(_) => true,
            }),
    )
}

/// Several newest-first id streams as one, each id once.
fn merged(streams: Vec<Ids<'_>>) -> Ids<'_> {
    let mut streams: Vec<_> = streams.into_iter().map(Iterator::peekable).collect();
    if streams.len() == 1 {
        return Box::new(streams.remove(0));
    }
    let mut last = None;
    Box::new(std::iter::from_fn(move || loop {
        // An error comes out first; otherwise the highest head.
        let mut best: Option<(usize, u64)> = None;
        for (i, s) in streams.iter_mut().enumerate() {
            match s.peek() {
                Some(Err(_)) => return s.next(),
                Some(Ok(id)) if best.map_or(true, |(_, b)| *id > b) => best = Some((i, *id)),
                _ => {}
            }
        }
        let (i, id) = best?;
        streams[i].next();
        if last != Some(id) {
            last = Some(id);
            return Some(Ok(id));
        }
    }))
}

/// The ids of `all` that `not` does not hold (both newest first).
struct Excluding<'a> {
    all: Peekable<Ids<'a>>,
    not: Peekable<Ids<'a>>,
}

impl Iterator for Excluding<'_> {
    type Item = Result<u64, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let id = match self.all.next()? {
                Ok(id) => id,
                Err(e) => return Some(Err(e)),
            };
            loop {
                match self.not.peek() {
                    Some(Ok(skip)) if *skip > id => {
                        self.not.next();
                    }
                    Some(Err(_)) => return self.not.next(),
                    _ => break,
                }
            }
            match self.not.peek() {
                Some(Ok(skip)) if *skip == id => continue,
                _ => return Some(Ok(id)),
            }
        }
    }
}

/// The sources that have notifications in the store (a removed source's stay listed until
/// retention purges them), found by seeking from one source's range to the next.
pub fn stored_sources(db: &sled::Db) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut from = vec![index::BY_SOURCE];
    while let Some(entry) = db.range(from.clone()..vec![index::BY_SOURCE + 1]).next() {
        let (key, _) = entry?;
        let rest = &key[1..];
        let Some(sep) = rest.iter().position(|b| *b == 0) else {
            return Err(StoreError::Corrupt("source index key".into()));
        };
        out.push(String::from_utf8_lossy(&rest[..sep]).into_owned());
        from = key[..=sep].to_vec();
        // Past every key of this source: its name, then the byte after the separator.
        from.push(1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(db: &sled::Db, source: Option<&str>, state: Option<ListState>) -> Vec<u64> {
        candidates(db, source, state, 0, u64::MAX)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Notifications 1..=6 over two sources, with deliveries pending, dead and delivered.
    fn a_store() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let put = |k: Vec<u8>| {
            db.insert(k, &[]).unwrap();
        };
        for (n, source) in [
            (1, "crm"),
            (2, "shop"),
            (3, "crm"),
            (4, "crm"),
            (5, "shop"),
            (6, "crm"),
        ] {
            put(keys::notification(n).to_vec());
            put(index::notification_key(source, n));
        }
        // 1: delivered; 2: dead; 3: pending (two deliveries); 4: delivered and dead;
        // 5: delivered; 6: pending.
        for (source, state, n, d) in [
            ("shop", ListState::Dead, 2, 20),
            ("crm", ListState::Pending, 3, 30),
            ("crm", ListState::Pending, 3, 31),
            ("crm", ListState::Dead, 4, 41),
            ("crm", ListState::Pending, 6, 60),
        ] {
            put(index::delivery_key(source, state, n, d).unwrap());
        }
        (dir, db)
    }

    #[test]
    fn delivered_is_what_is_neither_pending_nor_dead() {
        let (_dir, db) = a_store();
        assert_eq!(listed(&db, None, Some(ListState::Delivered)), vec![5, 1]);
        assert_eq!(
            listed(&db, Some("crm"), Some(ListState::Delivered)),
            vec![1]
        );
        assert_eq!(
            listed(&db, Some("shop"), Some(ListState::Delivered)),
            vec![5]
        );
    }

    #[test]
    fn a_state_across_sources_merges_their_ranges_newest_first_each_once() {
        let (_dir, db) = a_store();
        assert_eq!(listed(&db, None, Some(ListState::Pending)), vec![6, 3]);
        assert_eq!(listed(&db, None, Some(ListState::Dead)), vec![4, 2]);
        assert_eq!(listed(&db, None, None), vec![6, 5, 4, 3, 2, 1]);
        assert_eq!(listed(&db, Some("shop"), None), vec![5, 2]);
        assert_eq!(stored_sources(&db).unwrap(), vec!["crm", "shop"]);
    }

    #[test]
    fn an_id_range_bounds_every_walk() {
        let (_dir, db) = a_store();
        let ids: Vec<u64> = candidates(&db, None, Some(ListState::Delivered), 2, 6)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids, vec![5]);
    }

    #[test]
    fn the_time_index_bounds_ids_by_minute() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        db.insert(index::time_key(60_000, 10), &[]).unwrap();
        db.insert(index::time_key(180_000, 25), &[]).unwrap();
        assert_eq!(first_id_from(&db, 0).unwrap(), Some(10));
        assert_eq!(first_id_from(&db, 119_999).unwrap(), Some(10));
        assert_eq!(first_id_from(&db, 120_000).unwrap(), Some(25));
        assert_eq!(first_id_from(&db, 180_001).unwrap(), Some(25));
        assert_eq!(first_id_from(&db, 240_000).unwrap(), None);
    }
}
