//! A burst's digest in the log: forming it (its members leave the due queue and point at the
//! digest, whose first post becomes the digest) and settling it together with every member in
//! one record, so "the digest was delivered" and "its members were" can never be apart.

use super::{Journal, WriteSet};
use crate::store::commands::DeliveryUpdate;
use crate::store::index::{self, ListState};
use crate::store::records::{Delivery, DeliveryState};
use crate::store::{encode, keys, StoreError};

impl Journal {
    /// Stores a digest before it is sent: `digest` (a pending post whose message is now the
    /// digest, keeping its place in the queue) and `members` (their `digest` set). The members
    /// leave the due queue, so they are sent with the digest, retried with it, and never alone.
    pub fn form_digest(&self, digest: &Delivery, members: &[Delivery]) -> Result<(), StoreError> {
        let mut set = WriteSet::default();
        set.insert
            .push((keys::delivery(digest.id).to_vec(), encode(digest)));
        for m in members {
            if let Some(due) = m.due_ms() {
                set.remove.push(keys::due(&m.region, due, m.id));
            }
            set.insert.push((keys::delivery(m.id).to_vec(), encode(m)));
        }
        set.deltas
            .pending
            .insert(digest.region.clone(), -(members.len() as i64));
        self.write(set)
    }

    /// Records a digest's outcome with its settled members (each with its notification's
    /// source, for the list indexes) in one log record; returns once it is on disk.
    pub fn record_digest(
        &self,
        update: DeliveryUpdate,
        members: Vec<(Delivery, String)>,
    ) -> Result<(), StoreError> {
        let mut set = WriteSet::default();
        set.add_update(&update);
        for (m, source) in members {
            // Out of the due queue since the digest formed: only the lists and the record change.
            let state = ListState::of_delivery(&m.state);
            if state != ListState::Pending && !source.is_empty() {
                let nid = m.notification_id;
                set.remove
                    .extend(index::delivery_key(&source, ListState::Pending, nid, m.id));
                if let Some(key) = index::delivery_key(&source, state, nid, m.id) {
                    set.insert.push((key, Vec::new()));
                }
            }
            if matches!(m.state, DeliveryState::Dead { .. }) {
                set.insert.push((keys::dead(m.id).to_vec(), Vec::new()));
                set.deltas.dead += 1;
            }
            set.insert.push((keys::delivery(m.id).to_vec(), encode(&m)));
        }
        self.write(set)
    }
}
