//! The compact layouts of the two values every webhook writes, [`Notification`] and [`Delivery`],
//! field by field; either still decodes from JSON.

use super::primitives::{compact, compact_tagged, Writer};
use super::{from_json, Stored, COMPACT, COMPACT_DIGEST};
use crate::model::SourceKind;
use crate::store::records::{Attempt, Delivery, DeliveryState, MessageKind, Notification, Version};
use crate::store::StoreError;

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
        let tag = if self.digest.is_some() {
            COMPACT_DIGEST
        } else {
            COMPACT
        };
        let mut w = Writer::tagged(self.region.len() + answers + 48, tag);
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
        // Only in the digest layout, so a record without one stays byte for byte what it was.
        if let Some(digest) = self.digest {
            w.num(digest);
        }
        w.0
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let Some((tag, mut r)) = compact_tagged(bytes, "delivery") else {
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
            digest: if tag == COMPACT_DIGEST {
                Some(r.num()?)
            } else {
                None
            },
        };
        r.end()?;
        Ok(d)
    }
}
