//! Replaying dead letters: each gets a fresh delivery and leaves the dead-letter list, and a
//! replayed decision shows the outcome of its new attempt.

use super::BatchState;
use crate::store::index::{self, ListState};
use crate::store::queue::Queue;
use crate::store::records::{Delivery, DeliveryState, MessageKind, Notification};
use crate::store::wal::record::Effect;
use crate::store::{decode, encode, keys, StoreError};

impl BatchState<'_> {
    pub fn replay(&mut self, ids: &[u64]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let dead_key = keys::dead(*id);
            let Some(v) = self.deep_get(&keys::delivery(*id))? else {
                out.push(None);
                continue;
            };
            let old: Delivery = decode(&v)?;
            if self.deep_get(&dead_key)?.is_none()
                || !matches!(old.state, DeliveryState::Dead { .. })
            {
                out.push(None);
                continue;
            }
            let now = crate::store::now_ms();
            self.source = self.notification(old.notification_id)?.source;
            // A dead digest's members are dead letters of their own, replayed one by one: the
            // digest itself comes back as its own notification's post.
            let mut message = match &old.message {
                MessageKind::Digest { .. } => MessageKind::Full,
                other => other.clone(),
            };
            // An action whose post was replayed acts on the replayed post.
            if let Some(anchor) = self.notification(old.notification_id)?.anchor {
                message.retarget(anchor);
            }
            let new_id = self.deliver(
                old.notification_id,
                &old.region,
                old.url.clone(),
                now,
                message,
            )?;
            self.effects.push(Effect::Del(dead_key.to_vec()));
            self.deltas.dead -= 1;
            // The dead one is superseded: it leaves the dead index, and says by which.
            let mut superseded = old.clone();
            superseded.replayed_as = Some(new_id);
            self.put(keys::delivery(*id).to_vec(), encode(&superseded));
            let source = self.source.clone();
            if let Some(key) =
                index::delivery_key(&source, ListState::Dead, old.notification_id, *id)
            {
                self.effects.push(Effect::Del(key));
            }
            let mut n = self.notification(old.notification_id)?;
            n.deliveries.push(new_id);
            // A replayed first post is the message later edits and actions must find.
            if n.anchor == Some(*id) {
                n.anchor = Some(new_id);
            }
            // A replayed decision: the message showed it could not be sent; it shows the
            // outcome of this attempt too, where it showed the last one.
            if old.message == MessageKind::Decision {
                for shown in self.results_of(&n, *id)? {
                    let of = shown.message.acts_on();
                    let result = MessageKind::DecisionResult { of, after: new_id };
                    let d = self.deliver(n.id, &shown.region, shown.url, now, result)?;
                    n.deliveries.push(d);
                }
            }
            self.notifications.insert(old.notification_id, n);
            out.push(Some(new_id));
        }
        Ok(out)
    }

    /// The deliveries that showed the outcome of decision delivery `decision`.
    fn results_of(&self, n: &Notification, decision: u64) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        for id in &n.deliveries {
            let Some(v) = self.deep_get(&keys::delivery(*id))? else {
                continue;
            };
            let d: Delivery = decode(&v)?;
            if matches!(d.message, MessageKind::DecisionResult { after, .. } if after == decision) {
                out.push(d);
            }
        }
        Ok(out)
    }
}
