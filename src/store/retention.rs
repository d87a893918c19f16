//! Background purge: settled notifications leave the store after their retention, so a relay
//! that runs for months keeps a bounded store.
//!
//! A notification is purged when every one of its deliveries is settled and old enough:
//! delivered ones `store.retention` after delivery, dead letters `store.dead_letter_retention`
//! after they died. Anything still pending is never touched. The purge reads with ordinary sled
//! reads and deletes through the journal in small batches, so intake is never blocked for long.
//! Once purged, the same CRM id is new again (after 30 days by default).
//!
//! The walk goes oldest first and stops at the first notification younger than the shorter
//! retention. sled keeps its file at its peak size, so after purging the pass also measures the
//! store (once 1,000 were purged since it last looked, when a burst has aged out entirely, or
//! every 6 h) and asks for a compaction at the next start when that is worth it
//! (`compact::worth_it`: a file over twice what it holds, and 64 MiB or more to gain).

use crate::model::SourceKind;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::compact;
use super::index::{self, ListState};
use super::journal::Journal;
use super::records::{DeliveryState, Notification};
use super::{decode, keys, now_ms, Store, StoreError};

/// Notifications removed per journal write: big enough to be cheap, small enough that intake
/// requests sharing the batch are not held up.
const PURGE_BATCH: usize = 256;

/// What one pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub notifications: usize,
    pub deliveries: usize,
}

/// Ages after which settled notifications go.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// After the last delivery.
    pub delivered: Duration,
    /// After a delivery died.
    pub dead: Duration,
}

/// One pass over the store, oldest notifications first.
pub fn purge_once(
    store: &Store,
    journal: &Journal,
    retention: Retention,
    now: u64,
) -> Result<Purged, StoreError> {
    let youngest = retention.delivered.min(retention.dead).as_millis() as u64;
    let mut purged = Purged::default();
    let mut removals: Vec<Vec<u8>> = Vec::new();
    let mut in_batch = 0;
    // The oldest notification that stays: time-index keys of minutes before it can go.
    let mut oldest_kept = None;
    store.sync_reads()?;
    for entry in store.db().scan_prefix([keys::NOTIFICATION]) {
        let (_, value) = entry?;
        let n: Notification = decode(&value)?;
        // Ids grow with time, so from here on everything is younger than any retention.
        if n.received_at_ms.saturating_add(youngest) > now {
            oldest_kept = oldest_kept.or(Some(n.id));
            break;
        }
        let Some(keys_of_n) = removable(store, &n, retention, now)? else {
            oldest_kept = oldest_kept.or(Some(n.id));
            continue;
        };
        purged.notifications += 1;
        purged.deliveries += n.deliveries.len();
        removals.extend(keys_of_n);
        in_batch += 1;
        if in_batch == PURGE_BATCH {
            journal.remove(std::mem::take(&mut removals))?;
            in_batch = 0;
        }
    }
    // Nothing kept: every minute but the last is over (the last bounds what comes next).
    removals.extend(index::stale_time_keys(
        store.db(),
        oldest_kept.unwrap_or(u64::MAX),
    )?);
    if !removals.is_empty() {
        journal.remove(removals)?;
    }
    Ok(purged)
}

/// Every key of a notification that may go now, or `None` if it must stay.
fn removable(
    store: &Store,
    n: &Notification,
    retention: Retention,
    now: u64,
) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
    // An approval request nobody has decided yet is still open: its buttons must keep working.
    if n.kind == SourceKind::Approval && n.decision.is_none() {
        return Ok(None);
    }
    let mut out = vec![keys::notification(n.id).to_vec()];
    // Its list index entries go with it: its source key here, a dead delivery's below (a
    // delivered one has none, and a pending one is never purged).
    out.push(index::notification_key(&n.source, n.id));
    // Nothing was ever sent (a record born withdrawn): it ages from its arrival.
    if n.deliveries.is_empty()
        && n.received_at_ms
            .saturating_add(retention.delivered.as_millis() as u64)
            > now
    {
        return Ok(None);
    }
    for id in &n.deliveries {
        let Some(d) = store.delivery(*id)? else {
            continue;
        };
        let old_enough = match &d.state {
            DeliveryState::Pending { .. } => false,
            DeliveryState::Delivered { at_ms } => {
                at_ms.saturating_add(retention.delivered.as_millis() as u64) <= now
            }
            DeliveryState::Dead { at_ms, .. } => {
                at_ms.saturating_add(retention.dead.as_millis() as u64) <= now
            }
        };
        if !old_enough {
            return Ok(None);
        }
        out.push(keys::delivery(*id).to_vec());
        if matches!(d.state, DeliveryState::Dead { .. }) {
            out.push(keys::dead(*id).to_vec());
            out.extend(index::delivery_key(&n.source, ListState::Dead, n.id, *id));
        }
    }
    // The idempotency and coalescing keys, only where they still point at this notification.
    let ext = keys::external(&n.source, &n.external_id);
    let mut index_keys = vec![ext];
    if let Some(key) = store.bodies().coalesce_key(n.kind, &n.raw) {
        index_keys.push(keys::coalesce(&n.source, &key));
    }
    for key in index_keys {
        if let Some(v) = store.db().get(&key)? {
            if v.get(..8) == Some(&n.id.to_be_bytes()[..]) {
                out.push(key);
            }
        }
    }
    Ok(Some(out))
}

/// Runs `purge_once` every `interval` until `stop` is dropped or sent to.
pub fn spawn(
    store: Store,
    journal: Journal,
    retention: Retention,
    interval: Duration,
    stop: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut last_measured: Option<std::time::Instant> = None;
            let mut purged_since = 0;
            loop {
                match stop.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                match purge_once(&store, &journal, retention, now_ms()) {
                    Ok(p) if p.notifications > 0 => {
                        log::info!(
                            "Retention purged {} settled notifications and {} deliveries.",
                            p.notifications,
                            p.deliveries
                        );
                        // Measuring reads the whole store: once much was purged since the
                        // last time (a burst ages out over several passes), or now and then.
                        purged_since += p.notifications;
                        let due = last_measured.map_or(true, |t| t.elapsed() >= REMEASURE);
                        if purged_since >= BIG_PURGE || due {
                            last_measured = Some(std::time::Instant::now());
                            purged_since = 0;
                            ask_for_compaction(&store);
                        }
                    }
                    // A pass with nothing to purge after passes that purged: a burst has aged
                    // out entirely, and what it leaves is worth a look.
                    Ok(_) if purged_since > 0 => {
                        last_measured = Some(std::time::Instant::now());
                        purged_since = 0;
                        ask_for_compaction(&store);
                    }
                    Ok(_) => {}
                    Err(StoreError::Closed) => return,
                    Err(e @ StoreError::DiskFull(_)) => {
                        log::warn!("The retention purge waits for room on the store's disk: {e}.")
                    }
                    Err(e) => {
                        log::error!("The retention purge failed and will run again later: {e}.")
                    }
                }
            }
        })
}

/// Purged notifications since the last measurement that make the store's space worth measuring.
const BIG_PURGE: usize = 1000;
/// Otherwise the space is measured at most this often (it reads every key).
const REMEASURE: Duration = Duration::from_secs(6 * 3600);

/// Asks for a compaction at the next start when sled's files are much bigger than what they
/// hold (sled never gives space back by itself).
fn ask_for_compaction(store: &Store) {
    let path = store.path();
    if path.join(compact::WANTED).exists() {
        return;
    }
    let Ok(file) = compact::sled_bytes(path) else {
        return;
    };
    // Without the whole store's worth of reading when there cannot be enough to gain.
    if !compact::worth_it(file, 0) {
        return;
    }
    let live = match compact::live_bytes(store.db()) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("Measuring the store's space failed: {e}.");
            return;
        }
    };
    if !compact::worth_it(file, live) {
        return;
    }
    match compact::want(path) {
        Ok(()) => log::info!(
            "sled's files take {} for {} of data since retention purged; the relay gives the difference back at its next start (or now: stop it, run `hookrelay store compact`, start it).",
            super::space::human(file),
            super::space::human(live)
        ),
        Err(e) => log::warn!("Could not ask for a compaction of the store: {e}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::{Accepted, DeliveryUpdate, NewNotification};

    const DAY: u64 = 86_400_000;

    fn accept(journal: &Journal, id: &str) -> u64 {
        let new = NewNotification::test_opportunity(id, now_ms());
        match journal.accept_blocking(new).unwrap() {
            Accepted::New(n) => n,
            other => panic!("{other:?}"),
        }
    }

    fn settle(store: &Store, journal: &Journal, notification: u64, state: DeliveryState) {
        let n = store.notification(notification).unwrap().unwrap();
        let id = n.deliveries[0];
        let mut d = store.delivery(id).unwrap().unwrap();
        let previous = d.due_ms();
        d.state = state;
        journal
            .record(DeliveryUpdate {
                delivery: d,
                previous_due_ms: previous,
                pause_region_until_ms: None,
                pause_region_reason: None,
                source: n.source.clone(),
            })
            .unwrap();
    }

    #[test]
    fn settled_notifications_go_after_their_retention_and_pending_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (journal, writer) = Journal::start(store.clone(), None).unwrap();
        let now = now_ms();
        let delivered = accept(&journal, "delivered");
        let dead = accept(&journal, "dead");
        let pending = accept(&journal, "pending");
        settle(
            &store,
            &journal,
            delivered,
            DeliveryState::Delivered { at_ms: now },
        );
        settle(
            &store,
            &journal,
            dead,
            DeliveryState::Dead {
                at_ms: now,
                reason: "x".into(),
            },
        );
        assert_eq!(journal.pending(), 1);
        let retention = Retention {
            delivered: Duration::from_millis(30 * DAY),
            dead: Duration::from_millis(90 * DAY),
        };

        // Before any retention is over, nothing goes.
        assert_eq!(
            purge_once(&store, &journal, retention, now + DAY).unwrap(),
            Purged::default()
        );
        // After 31 days the delivered one goes, with its idempotency key.
        let p = purge_once(&store, &journal, retention, now + 31 * DAY).unwrap();
        assert_eq!(
            p,
            Purged {
                notifications: 1,
                deliveries: 1
            }
        );
        assert!(store.notification(delivered).unwrap().is_none());
        assert_eq!(store.find_external("crm", "delivered").unwrap(), None);
        assert!(
            store.notification(dead).unwrap().is_some(),
            "dead letters are kept longer"
        );
        // After 91 days the dead letter goes too; the pending one never does.
        purge_once(&store, &journal, retention, now + 91 * DAY).unwrap();
        assert!(store.notification(dead).unwrap().is_none());
        assert!(store.dead_letters().unwrap().is_empty());
        assert!(store.notification(pending).unwrap().is_some());
        assert_eq!(
            store.find_external("crm", "pending").unwrap(),
            Some(pending)
        );
        journal.close();
        writer.join().unwrap();
    }
}
