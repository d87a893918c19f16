//! The small keys written by records sled has not applied yet.
//!
//! Intake decides "is this a repeat?" from the idempotency index (`k`) and coalescing windows
//! (`c`). Between a record's `fdatasync` and its apply those keys are only in the log, so the
//! writer keeps them here, with the record's lsn, and forgets them once sled has them. Only these
//! small keys are kept; reads of whole records wait for sled instead (see [`super::batch`]).
//!
//! Above 64 MiB of unapplied log the writer waits for the applier, which bounds the overlay and
//! what a restart replays; neither waits while the applier waits for disk space (the batch is
//! answered 503 instead, `space.rs`).

use std::collections::{HashMap, VecDeque};

use super::keys;
use super::wal::record::Effect;

#[derive(Debug, Default)]
pub struct Overlay {
    /// Key → (lsn of the record that last wrote it, value; `None` when it deleted it).
    entries: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
    /// The keys each unapplied record wrote, oldest first, to forget them in order.
    by_record: VecDeque<(u64, Vec<Vec<u8>>)>,
}

/// Whether the overlay keeps a key.
fn kept(key: &[u8]) -> bool {
    matches!(key.first(), Some(b'k' | b'c')) || key.starts_with(keys::META)
}

impl Overlay {
    /// The value the log holds for a kept key, if a record newer than sled wrote it.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// Remembers what a durable record wrote.
    pub fn add(&mut self, lsn: u64, effects: &[Effect]) {
        let mut written = Vec::new();
        for e in effects {
            let key = e.key();
            if !kept(key) {
                continue;
            }
            let value = match e {
                Effect::Put(_, v) => Some(v.clone()),
                Effect::Del(_) => None,
            };
            self.entries.insert(key.to_vec(), (lsn, value));
            written.push(key.to_vec());
        }
        if !written.is_empty() {
            self.by_record.push_back((lsn, written));
        }
    }

    /// Forgets what sled now holds (records up to `applied`).
    pub fn forget_through(&mut self, applied: u64) {
        while let Some((lsn, _)) = self.by_record.front() {
            if *lsn > applied {
                break;
            }
            let Some((lsn, written)) = self.by_record.pop_front() else {
                break;
            };
            for key in written {
                if self.entries.get(&key).map(|(l, _)| *l) == Some(lsn) {
                    self.entries.remove(&key);
                }
            }
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_forgotten_only_when_its_latest_write_is_applied() {
        let mut o = Overlay::default();
        o.add(1, &[Effect::Put(b"kcrm\0a".to_vec(), vec![1])]);
        o.add(
            2,
            &[
                Effect::Del(b"kcrm\0a".to_vec()),
                Effect::Put(b"n1".to_vec(), vec![]),
            ],
        );
        assert_eq!(o.get(b"kcrm\0a"), Some(&None));
        assert_eq!(o.get(b"n1"), None, "whole records are not kept");
        o.forget_through(1);
        assert_eq!(
            o.get(b"kcrm\0a"),
            Some(&None),
            "record 2 is not applied yet"
        );
        o.forget_through(2);
        assert!(o.is_empty());
    }
}
