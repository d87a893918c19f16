//! The writer end to end: a webhook stored and queued, a repeat in one batch, a newer store.

use super::*;
use crate::store::now_ms;

fn new(id: &str) -> NewNotification {
    NewNotification::test_opportunity(id, now_ms())
}

#[test]
fn an_accepted_notification_is_queued_and_a_repeat_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (journal, handle) = Journal::start(store.clone(), None).unwrap();
    let Accepted::New(id) = journal.accept_blocking(new("a")).unwrap() else {
        panic!()
    };
    assert_eq!(
        journal.accept_blocking(new("a")).unwrap(),
        Accepted::Duplicate(id)
    );
    assert_eq!(store.notification(id).unwrap().unwrap().external_id, "a");
    assert_eq!(store.pending_by_region().unwrap()["UK"], 1);
    journal.close();
    handle.join().unwrap();
    assert_eq!(journal.accept_blocking(new("b")), Err(StoreError::Closed));
}

#[test]
fn concurrent_repeats_in_one_batch_store_one_notification() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (journal, handle) = Journal::start(store.clone(), None).unwrap();
    let results: Vec<Accepted> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|_| s.spawn(|| journal.accept_blocking(new("same")).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Accepted::New(_)))
            .count(),
        1
    );
    assert_eq!(store.pending_by_region().unwrap()["UK"], 1);
    journal.close();
    handle.join().unwrap();
}

#[test]
fn a_store_written_by_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(keys::FORMAT_VERSION, b"99").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}
