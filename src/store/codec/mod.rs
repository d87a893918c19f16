//! How stored values are encoded: notifications and deliveries, the values every webhook
//! writes, in a compact binary form; everything else as JSON.
//!
//! The compact form starts with [`COMPACT`], JSON with `{` (or another JSON start), so both
//! decode: a store written before the compact form (format 3) reads as it is, and its values
//! become compact as they are rewritten. Numbers are LEB128 varints and text is
//! length-prefixed, so a raw body is stored as received, not escaped into a JSON string. Fields
//! that are rare or deep (a decision, its events, a Web API message's reference, a message
//! other than the full post) are embedded as JSON: they cost little where they are rare and
//! keep one definition of their shape. `hookrelay store dump` prints either form as JSON.
//!
//! A field added to a record needs a new tag here (the compact form has no field names), with
//! the decoder of the old tag kept.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::records::{Attempt, Delivery, DeliveryState, MessageKind, Notification, Version};
use super::StoreError;
use crate::model::SourceKind;

/// The first byte of a compact value (version 1 of the compact form). JSON never starts with it.
pub const COMPACT: u8 = 0x01;

/// A value the store keeps.
pub trait Stored: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError>;
}

/// Values kept as JSON: small, or written rarely.
macro_rules! json_stored {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::store::codec::Stored for $t {
            fn to_bytes(&self) -> Vec<u8> {
                $crate::store::codec::json_bytes(self)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, $crate::store::StoreError> {
                $crate::store::codec::from_json(bytes)
            }
        }
    )*};
}
pub(crate) use json_stored;

pub fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail: no maps with non-string keys, no I/O.
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

json_stored!(serde_json::Value);

struct Writer(Vec<u8>);

impl Writer {
    fn new(capacity: usize) -> Writer {
        let mut out = Vec::with_capacity(capacity);
        out.push(COMPACT);
        Writer(out)
    }

    fn num(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.num(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.text(s);
            }
        }
    }

    fn opt_num(&mut self, n: Option<u64>) {
        match n {
            None => self.0.push(0),
            Some(n) => {
                self.0.push(1);
                self.num(n);
            }
        }
    }

    /// A rare field as JSON, or nothing when it is absent.
    fn opt_json<T: Serialize>(&mut self, value: Option<&T>) {
        match value {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.bytes(&json_bytes(v));
            }
        }
    }
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, why: &str) -> StoreError {
        StoreError::Corrupt(format!("a stored {}: {why}", self.what))
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        let (first, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.corrupt("it ends early"))?;
        self.rest = rest;
        Ok(*first)
    }

    fn num(&mut self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.corrupt("a number is too long"))
    }

    fn small(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.num()?).map_err(|_| self.corrupt("a count is too big"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = usize::try_from(self.num()?).map_err(|_| self.corrupt("a length is too big"))?;
        if len > self.rest.len() {
            return Err(self.corrupt("a length runs past its end"));
        }
        let (b, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(b)
    }

    fn text(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    fn flag(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("a flag is neither 0 nor 1")),
        }
    }

    fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        if self.flag()? {
            self.text().map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_num(&mut self) -> Result<Option<u64>, StoreError> {
        if self.flag()? {
            self.num().map(Some)
        } else {
            Ok(None)
        }
    }

    fn opt_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StoreError> {
        if self.flag()? {
            from_json(self.bytes()?).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A count of items that each take at least one byte: never more than what is left.
    fn count(&mut self) -> Result<usize, StoreError> {
        let n = usize::try_from(self.num()?).map_err(|_| self.corrupt("a count is too big"))?;
        if n > self.rest.len() {
            return Err(self.corrupt("a count runs past its end"));
        }
        Ok(n)
    }

    fn end(self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("bytes are left over"))
        }
    }
}

/// The compact form's reader, or `None` for a JSON value.
fn compact<'a>(bytes: &'a [u8], what: &'static str) -> Option<Reader<'a>> {
    match bytes.split_first() {
        Some((&COMPACT, rest)) => Some(Reader { rest, what }),
        _ => None,
    }
}

impl Stored for Notification {
    fn to_bytes(&self) -> Vec<u8> {
        let old: usize = self.earlier.iter().map(|v| v.raw.len() + 12).sum();
        let mut w = Writer::new(self.raw.len() + old + self.source.len() + 64);
        w.num(self.id);
        w.text(&self.source);
        w.text(&self.external_id);
        w.num(self.received_at_ms);
        w.text(self.kind.as_str());
        w.text(&self.raw);
        w.num(self.earlier.len() as u64);
        for v in &self.earlier {
            w.num(v.received_at_ms);
            w.text(&v.raw);
        }
        w.num(self.deliveries.len() as u64);
        for d in &self.deliveries {
            w.num(*d);
        }
        w.num(u64::from(self.count));
        w.text(&self.region);
        w.opt_text(self.url.as_deref());
        w.opt_num(self.anchor);
        w.0.push(u8::from(self.withdrawn));
        w.opt_json(self.decision.as_ref());
        w.opt_json((!self.events.is_empty()).then_some(&self.events));
        w.0
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let Some(mut r) = compact(bytes, "notification") else {
            return from_json(bytes);
        };
        let id = r.num()?;
        let source = r.text()?;
        let external_id = r.text()?;
        let received_at_ms = r.num()?;
        let kind_name = r.text()?;
        let kind = SourceKind::parse(&kind_name)
            .ok_or_else(|| r.corrupt(&format!("unknown source kind {kind_name:?}")))?;
        let raw = r.text()?;
        let n = r.count()?;
        let mut earlier = Vec::with_capacity(n);
        for _ in 0..n {
            earlier.push(Version {
                received_at_ms: r.num()?,
                raw: r.text()?,
            });
        }
        let n = r.count()?;
        let mut deliveries = Vec::with_capacity(n);
        for _ in 0..n {
            deliveries.push(r.num()?);
        }
        let n = Notification {
            id,
            source,
            external_id,
            received_at_ms,
            kind,
            raw,
            earlier,
            deliveries,
            count: r.small()?,
            region: r.text()?,
            url: r.opt_text()?,
            anchor: r.opt_num()?,
            withdrawn: r.flag()?,
            decision: r.opt_json()?,
            events: r.opt_json()?.unwrap_or_default(),
        };
        r.end()?;
        Ok(n)
    }
}

impl Stored for Delivery {
    fn to_bytes(&self) -> Vec<u8> {
        let answers: usize = self.history.iter().map(|a| a.answer.len() + 12).sum();
        let mut w = Writer::new(self.region.len() + answers + 48);
        w.num(self.id);
        w.num(self.notification_id);
        w.text(&self.region);
        w.opt_text(self.url.as_deref());
        // The full post is nearly every delivery; the other kinds carry their own fields.
        w.opt_json((self.message != MessageKind::Full).then_some(&self.message));
        w.num(self.created_at_ms);
        w.num(u64::from(self.attempts));
        match &self.state {
            DeliveryState::Pending { next_at_ms } => {
                w.0.push(0);
                w.num(*next_at_ms);
            }
            DeliveryState::Delivered { at_ms } => {
                w.0.push(1);
                w.num(*at_ms);
            }
            DeliveryState::Dead { at_ms, reason } => {
                w.0.push(2);
                w.num(*at_ms);
                w.text(reason);
            }
        }
        w.num(self.history.len() as u64);
        for a in &self.history {
            w.num(a.at_ms);
            w.opt_num(a.status.map(u64::from));
            w.text(&a.answer);
        }
        w.opt_json(self.posted.as_ref());
        w.opt_num(self.replayed_as);
        w.0
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let Some(mut r) = compact(bytes, "delivery") else {
            return from_json(bytes);
        };
        let id = r.num()?;
        let notification_id = r.num()?;
        let region = r.text()?;
        let url = r.opt_text()?;
        let message = r.opt_json()?.unwrap_or(MessageKind::Full);
        let created_at_ms = r.num()?;
        let attempts = r.small()?;
        let state = match r.byte()? {
            0 => DeliveryState::Pending {
                next_at_ms: r.num()?,
            },
            1 => DeliveryState::Delivered { at_ms: r.num()? },
            2 => DeliveryState::Dead {
                at_ms: r.num()?,
                reason: r.text()?,
            },
            other => return Err(r.corrupt(&format!("unknown state {other}"))),
        };
        let n = r.count()?;
        let mut history = Vec::with_capacity(n);
        for _ in 0..n {
            let at_ms = r.num()?;
            let status = match r.opt_num()? {
                None => None,
                Some(s) => Some(u16::try_from(s).map_err(|_| r.corrupt("a status is too big"))?),
            };
            history.push(Attempt {
                at_ms,
                status,
                answer: r.text()?,
            });
        }
        let d = Delivery {
            id,
            notification_id,
            region,
            url,
            message,
            created_at_ms,
            attempts,
            state,
            history,
            posted: r.opt_json()?,
            replayed_as: r.opt_num()?,
        };
        r.end()?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RAW: &str =
        r#"{"id":"006A","name":"Renewal \"Acme\" <UK>","country":"UK","amount":4500}"#;

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
}
