//! Round trips of every field and of any value, JSON of the previous format, and damaged bytes.

use super::*;
use crate::model::SourceKind;
use crate::store::records::{Attempt, Delivery, DeliveryState, MessageKind, Notification, Version};
use proptest::prelude::*;

const RAW: &str = r#"{"id":"006A","name":"Renewal \"Acme\" <UK>","country":"UK","amount":4500}"#;

fn notification() -> Notification {
    Notification {
        id: 300,
        source: "salesforce".into(),
        external_id: "006A".into(),
        received_at_ms: 1_700_000_000_123,
        kind: SourceKind::Approval,
        raw: RAW.into(),
        earlier: vec![Version {
            received_at_ms: 1_699_999_999_000,
            raw: "{\"id\":\"006A\"}".into(),
        }],
        deliveries: vec![301, 302, 90_000],
        count: 3,
        region: "url.partners".into(),
        url: Some("https://hooks.slack.com/services/T/B/secret".into()),
        anchor: Some(301),
        withdrawn: true,
        decision: Some(
            serde_json::from_str(
                r#"{"verdict":"rejected","reason":"too dear","by":{"id":"U1","name":"ann"},"at_ms":5}"#,
            )
            .unwrap(),
        ),
        events: serde_json::from_str(
            r#"[{"at_ms":4,"user":{"id":"U2","name":"bob"},"what":"clicked approve"}]"#,
        )
        .unwrap(),
    }
}

fn delivery() -> Delivery {
    Delivery {
        id: 302,
        notification_id: 300,
        region: "UK".into(),
        url: Some("https://example.com/decision".into()),
        message: MessageKind::Edit {
            version: 2,
            of: 301,
        },
        created_at_ms: 1_700_000_000_200,
        attempts: 4,
        state: DeliveryState::Dead {
            at_ms: 1_700_000_009_000,
            reason: "HTTP 400 invalid_blocks".into(),
        },
        history: vec![
            Attempt {
                at_ms: 1,
                status: None,
                answer: "connection refused".into(),
            },
            Attempt {
                at_ms: 2,
                status: Some(400),
                answer: "invalid_blocks".into(),
            },
        ],
        posted: Some(serde_json::from_str(r#"{"channel":"C1","ts":"1.2"}"#).unwrap()),
        replayed_as: Some(400),
        digest: Some(301),
    }
}

#[test]
fn every_field_round_trips() {
    let n = notification();
    assert_eq!(Notification::from_bytes(&n.to_bytes()).unwrap(), n);
    let d = delivery();
    assert_eq!(Delivery::from_bytes(&d.to_bytes()).unwrap(), d);
    for state in [
        DeliveryState::Pending { next_at_ms: 7 },
        DeliveryState::Delivered { at_ms: 8 },
    ] {
        let plain = Delivery {
            url: None,
            message: MessageKind::Full,
            state,
            history: Vec::new(),
            posted: None,
            replayed_as: None,
            digest: None,
            ..delivery()
        };
        assert_eq!(Delivery::from_bytes(&plain.to_bytes()).unwrap(), plain);
    }
}

/// A store from before the compact form (format 3) holds JSON: it reads as before.
#[test]
fn json_values_of_the_previous_format_still_decode() {
    let n = notification();
    assert_eq!(Notification::from_bytes(&json_bytes(&n)).unwrap(), n);
    let d = delivery();
    assert_eq!(Delivery::from_bytes(&json_bytes(&d)).unwrap(), d);
}

#[test]
fn a_body_is_stored_as_received_and_smaller_than_as_json() {
    let n = Notification {
        kind: SourceKind::Opportunity,
        earlier: Vec::new(),
        url: None,
        anchor: None,
        withdrawn: false,
        decision: None,
        events: Vec::new(),
        ..notification()
    };
    let compact = n.to_bytes();
    assert!(compact.windows(RAW.len()).any(|w| w == RAW.as_bytes()));
    assert!(
        compact.len() + 60 < json_bytes(&n).len(),
        "{} vs {}",
        compact.len(),
        json_bytes(&n).len()
    );
}

#[test]
fn a_cut_or_damaged_value_is_an_error_never_a_panic() {
    for bytes in [notification().to_bytes(), delivery().to_bytes()] {
        for cut in 0..bytes.len() {
            assert!(Notification::from_bytes(&bytes[..cut]).is_err());
            assert!(Delivery::from_bytes(&bytes[..cut]).is_err());
        }
    }
    let mut long = delivery().to_bytes();
    long.push(0);
    assert!(Delivery::from_bytes(&long).is_err(), "bytes left over");
}

proptest! {
    #[test]
    fn any_notification_round_trips(
        id in any::<u64>(),
        at in any::<u64>(),
        source in "[a-z_-]{1,20}",
        external in any::<String>(),
        raw in any::<String>(),
        deliveries in proptest::collection::vec(any::<u64>(), 0..5),
        count in any::<u32>(),
    ) {
        let n = Notification {
            id, received_at_ms: at, source, external_id: external, raw, deliveries, count,
            ..notification()
        };
        prop_assert_eq!(Notification::from_bytes(&n.to_bytes()).unwrap(), n);
    }

    #[test]
    fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut tagged = vec![COMPACT];
        tagged.extend_from_slice(&bytes);
        let _ = Notification::from_bytes(&tagged);
        let _ = Delivery::from_bytes(&tagged);
    }
}
