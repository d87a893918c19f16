//! What start-up reads back: the checkpoint marker, the log after it (a torn tail cut, damage
//! refused), the overlay, the next id, the last indexed minute and the counters.
//!
//! The next id and the counters come from the last record that wrote them (else from sled), so
//! start-up never scans the queue. The applier then replays in the background ("Replaying N log
//! records…") while intake is served at once; reads wait for the replay (`store/progress.rs`),
//! and the scheduler's first look at the queue does too, so an outcome still in the log (a
//! message already posted) is in sled before the queue is read. Damage only in records already
//! checkpointed is a WARN; a damaged checkpoint marker stops the start, since nothing then says
//! which records sled holds.

use super::counters::Counters;
use crate::store::overlay::Overlay;
use crate::store::wal::record::Effect;
use crate::store::wal::{self, scan};
use crate::store::{decode, index, keys, Store, StoreError};

/// What start-up learned from the log and sled.
pub(super) struct Recovered {
    /// The last checkpointed record: the applier replays from the one after it.
    pub(super) checkpoint: u64,
    /// The last record in the log.
    pub(super) last_lsn: u64,
    /// Small keys of records sled may not have yet.
    pub(super) overlay: Overlay,
    pub(super) next_id: u64,
    /// The last minute the time index has, from the log or sled.
    pub(super) minute: u64,
    pub(super) counters: Counters,
}

/// Reads the checkpoint marker and the log after it. A torn tail is cut and logged; damage stops
/// the start with what `hookrelay store check` also reports.
pub(super) fn recover(store: &Store) -> Result<Recovered, StoreError> {
    let dir = wal::dir(store.path());
    let checkpoint = wal::checkpoint::read(&dir).map_err(StoreError::Damaged)?;
    let mut overlay = Overlay::default();
    let mut next_id = None;
    let mut counters = None;
    let mut minute = 0;
    let summary = scan::scan(&dir, checkpoint, true, |r| {
        overlay.add(r.lsn, &r.effects);
        for e in &r.effects {
            if let Effect::Put(k, v) = e {
                if let Some(m) = index::minute_in(k) {
                    minute = minute.max(index::minute_of(m));
                } else if k.as_slice() == keys::NEXT_ID {
                    next_id = Some(v.clone());
                } else if k.as_slice() == keys::COUNTERS {
                    counters = Some(v.clone());
                }
            }
        }
    })
    .map_err(|d| {
        StoreError::Damaged(format!(
            "{d} Run `hookrelay store check` for a report; the relay does not start over a damaged log because skipping a record would lose webhooks or post them twice."
        ))
    })?;
    if let Some(torn) = &summary.torn {
        log::warn!(
            "The log ended in a half-written record (a crash during a write): {} bytes at byte {} of {} were cut ({}). It was never acknowledged, so nothing is lost.",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.why
        );
    }
    for note in &summary.notes {
        log::warn!("{note} (already in the store, so nothing is lost).");
    }
    wal::segment::delete_before(&dir, checkpoint)?;
    let db = store.db();
    let next_id = match next_id.or(db.get(keys::NEXT_ID)?.map(|v| v.to_vec())) {
        Some(v) => u64::from_be_bytes(
            v.as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("next id".into()))?,
        ),
        // A store from before the log: sled's generator is past every id it handed out.
        None => db.generate_id()? + 1,
    };
    let counters = match counters.or(db.get(keys::COUNTERS)?.map(|v| v.to_vec())) {
        Some(v) => decode(&v)?,
        None => {
            // A store from before the log, or a new one: count once; every batch stores them.
            let pending = store
                .pending_by_region_unchecked()?
                .into_iter()
                .map(|(k, v)| (k, v as i64))
                .collect();
            let dead = store.dead_letter_count_unchecked()? as i64;
            Counters { pending, dead }
        }
    };
    Ok(Recovered {
        checkpoint,
        last_lsn: summary.last_lsn,
        overlay,
        next_id,
        minute: minute.max(index::minute_of(index::last_minute(db)?)),
        counters,
    })
}
