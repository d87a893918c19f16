//! Space given back: after retention purges a burst, the retention pass asks for a compaction,
//! the next start performs it, and the store keeps everything it still held.

use std::time::Duration;

use crate::binary::{agent, wait_until, Harness};
use crate::fake_slack::Reply;
use crate::helpers::ADMIN_TOKEN;

fn sled_bytes(store: &std::path::Path) -> u64 {
    hookrelay::store::compact::sled_bytes(store).expect("sled's files")
}

#[test]
fn a_purged_burst_gives_its_space_back_at_the_next_start_and_keeps_what_is_left() {
    let mut h = Harness::new(&[(
        "min_free = \"1MiB\"",
        "min_free = \"1MiB\"\nretention = \"2s\"\ndead_letter_retention = \"1h\"\npurge_interval = \"1s\"",
    )]);
    // The test's store is small: any gain of 1 MiB is worth it here (64 MiB in production).
    h.env.push((
        "HOOKRELAY_TEST_COMPACT_MIN_BYTES".into(),
        (1 << 20).to_string(),
    ));
    let store = h.dir.path().join("store");
    // EU refuses for good, so its messages stay as dead letters, kept for an hour.
    h.slack
        .script("eu", (0..5).map(|_| Reply::Status(400, "invalid_payload")));
    let mut relay = h.start();
    let http = agent(Duration::from_secs(10));
    for i in 0..2000 {
        assert_eq!(
            relay
                .post(&http, &format!("BURST-{i}"), "UK")
                .expect("post"),
            202
        );
    }
    for i in 0..5 {
        assert_eq!(
            relay.post(&http, &format!("KEEP-{i}"), "EU").expect("post"),
            202
        );
    }
    h.slack.wait_delivered("uk", 2000);
    let wanted = store.join(hookrelay::store::compact::WANTED);
    wait_until(
        "the retention pass to ask for a compaction",
        Duration::from_secs(60),
        || wanted.exists(),
    );
    relay.terminate(Duration::from_secs(20));
    let before = sled_bytes(&store);

    let relay = h.start();
    assert!(
        relay.stderr().contains("Compacted the store"),
        "{}",
        relay.stderr()
    );
    assert!(!wanted.exists(), "the request is taken back");
    let after = sled_bytes(&store);
    assert!(
        after * 2 < before,
        "sled's files went from {before} to {after} bytes"
    );

    // The dead letters are all there, and the purged burst is gone.
    let text = http
        .get(format!("{}/v1/dead-letters", relay.address))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .expect("dead letters")
        .body_mut()
        .read_to_string()
        .expect("a body");
    let dead: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let items = dead["items"]
        .as_array()
        .or(dead.as_array())
        .expect("a list")
        .len();
    assert_eq!(items, 5, "{dead}");
    let found = http
        .get(format!(
            "{}/v1/sources/salesforce/notifications/KEEP-3",
            relay.address
        ))
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .expect("the kept notification");
    assert_eq!(found.status(), 200);
    // Ids go on after the compacted store's.
    assert_eq!(relay.post(&http, "AFTER-0", "UK").expect("post"), 202);
    h.slack.wait_delivered("uk", 2001);
    assert_eq!(
        h.slack
            .received("uk")
            .iter()
            .filter(|r| r.delivered())
            .count(),
        2001,
        "nothing is posted twice"
    );
}
