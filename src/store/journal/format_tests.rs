//! Upgrades: a store the first format wrote opens, reads, and takes new writes with fresh ids.

use super::super::{keys, Store, FORMAT_VERSION};
use crate::store::records::{DeliveryState, MessageKind};

/// Records exactly as the first build wrote them, before `earlier`, `count`, `url` and
/// `message` existed: an upgraded relay must read them and deliver what they queued.
#[test]
fn a_store_written_by_the_first_format_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(keys::FORMAT_VERSION, b"1").unwrap();
        let notification = r#"{"id":7,"source":"salesforce","external_id":"0065800000BwzJt","received_at_ms":1700000000000,"kind":"opportunity","raw":"{\"id\":\"0065800000BwzJt\",\"name\":\"Sample02\",\"country\":\"UK\"}","region":"UK"}"#;
        let delivery = r#"{"id":8,"notification_id":7,"region":"UK","created_at_ms":1700000000000,"attempts":1,"state":{"state":"pending","next_at_ms":1700000005000},"history":[{"at_ms":1700000000100,"status":503,"answer":""}]}"#;
        db.insert(keys::notification(7), notification.as_bytes())
            .unwrap();
        db.insert(keys::delivery(8), delivery.as_bytes()).unwrap();
        db.insert(keys::due("UK", 1_700_000_005_000, 8), &[])
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let n = store.notification(7).unwrap().unwrap();
    assert_eq!((n.count, n.earlier.len(), n.url.as_deref()), (1, 0, None));
    let d = store.delivery(8).unwrap().unwrap();
    assert_eq!(d.message, MessageKind::Full);
    assert_eq!(
        d.state,
        DeliveryState::Pending {
            next_at_ms: 1_700_000_005_000
        }
    );
    assert_eq!(store.first_due("UK").unwrap(), Some((1_700_000_005_000, 8)));
    assert_eq!(
        FORMAT_VERSION, 4,
        "a new format needs a migration and a test like this one"
    );
    assert_eq!(
        store
            .db()
            .get(keys::FORMAT_VERSION)
            .unwrap()
            .unwrap()
            .as_ref(),
        b"4"
    );
    // Format 2 keeps queue counters and the id sequence in the store; a format 1 store
    // gets them counted once, and new ids never reuse old ones.
    let (journal, handle) = super::Journal::start(store.clone(), None).unwrap();
    assert_eq!(journal.pending_by_target().get("UK"), Some(&1));
    let accepted = journal
        .accept_blocking(super::NewNotification {
            source: "salesforce".into(),
            ..super::NewNotification::test_opportunity("new", 1_700_000_100_000)
        })
        .unwrap();
    assert!(matches!(accepted, super::Accepted::New(id) if id > 8));
    assert_eq!(journal.pending_by_target().get("UK"), Some(&2));
    // Format 3 has list indexes: the old store gets them built once, the new record
    // brings its own. Lists wait for that build, as this does.
    assert!(store.sync_lists().unwrap());
    assert!(store
        .db()
        .get(crate::store::index::BUILT)
        .unwrap()
        .is_some());
    let listed: Vec<u64> = store
        .db()
        .scan_prefix(crate::store::index::source_range("salesforce"))
        .keys()
        .filter_map(|k| {
            let k = k.unwrap();
            crate::store::index::notification_of(&k, k.len() - 8)
        })
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0], 7, "the old notification is indexed");
    journal.close();
    handle.join().unwrap();
}
