//! The list indexes' tests: their keys, and the upgrade (a store this release creates is never
//! upgraded; a store without indexes gets them built once).

use super::*;

#[test]
fn keys_sort_by_notification_and_name_it() {
    let prefix = source_state_range("crm", ListState::Dead);
    let a = delivery_key("crm", ListState::Dead, 7, 8).unwrap();
    let b = delivery_key("crm", ListState::Dead, 300, 2).unwrap();
    assert!(a < b && a.starts_with(&prefix));
    assert_eq!(notification_of(&b, prefix.len()), Some(300));
    let by_source = notification_key("crm2", 1);
    assert!(!by_source.starts_with(&source_range("crm")));
    assert_eq!(
        notification_of(&by_source, source_range("crm2").len()),
        Some(1)
    );
    assert_eq!(delivery_key("crm", ListState::Delivered, 7, 8), None);
}

#[test]
fn time_keys_name_their_minute_and_sort_by_it() {
    let a = time_key(minute_of(1_700_000_039_999), 5);
    let b = time_key(minute_of(1_700_000_040_000), 6);
    assert!(a < b);
    assert_eq!(minute_in(&a), Some(1_699_999_980_000));
    assert_eq!(minute_in(&b), Some(1_700_000_040_000));
    assert!(time_from(1_700_000_039_999) <= a && a < time_from(1_700_000_040_000));
}

fn accept(journal: &crate::store::journal::Journal, id: &str, at_ms: u64) {
    use crate::store::journal::NewNotification;
    journal
        .accept_blocking(NewNotification::test_opportunity(id, at_ms))
        .unwrap();
}

/// A store this release created has nothing to upgrade, at its first start or any later
/// one: the start-up log must not speak of "a store from an older hookrelay".
#[test]
fn a_store_this_release_created_is_never_upgraded() {
    use crate::store::{journal::Journal, Store};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(upgrade(store.db()).unwrap(), Upgrade::Current);
        let (journal, handle) = Journal::start(store.clone(), None).unwrap();
        accept(&journal, "a", 1_700_000_000_000);
        assert!(store.sync_lists().unwrap());
        journal.close();
        handle.join().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(upgrade(store.db()).unwrap(), Upgrade::Current);
    assert_eq!(
        store.db().scan_prefix(source_range("crm")).count(),
        1,
        "the record brought its own index key"
    );
}

/// A store from before the indexes still gets them built, once.
#[test]
fn a_store_without_indexes_gets_them_built_once() {
    use crate::store::{journal::Journal, Store};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let (journal, handle) = Journal::start(store.clone(), None).unwrap();
        accept(&journal, "a", 1_700_000_000_000);
        accept(&journal, "b", 1_700_000_100_000);
        assert!(store.sync_lists().unwrap());
        journal.close();
        handle.join().unwrap();
        // As an older hookrelay left it: the data, no indexes.
        let db = store.db();
        for prefix in [BY_SOURCE, BY_TIME, BY_SOURCE_STATE] {
            for key in db.scan_prefix([prefix]).keys() {
                db.remove(key.unwrap()).unwrap();
            }
        }
        db.remove(BUILT).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(upgrade(store.db()).unwrap(), Upgrade::Built(2));
    assert_eq!(store.db().scan_prefix(source_range("crm")).count(), 2);
    assert_eq!(upgrade(store.db()).unwrap(), Upgrade::Current);
}

#[test]
fn a_minute_is_stale_once_the_next_minute_starts_at_or_below_the_oldest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    for (minute, id) in [(60_000, 10), (120_000, 20), (180_000, 30)] {
        db.insert(time_key(minute, id), &[]).unwrap();
    }
    assert_eq!(
        stale_time_keys(&db, 25).unwrap(),
        vec![time_key(60_000, 10)]
    );
    assert_eq!(stale_time_keys(&db, 9).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(
        stale_time_keys(&db, u64::MAX).unwrap(),
        vec![time_key(60_000, 10), time_key(120_000, 20)],
        "the last minute stays: it bounds what comes next"
    );
}
