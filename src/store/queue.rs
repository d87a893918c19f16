//! What the writer's decisions may do with the batch being built: queue a delivery, read a
//! delivery or notification as the batch or the store has it, keep a changed notification.
//! `app_mode.rs` and `click.rs` decide through this alone; `batch.rs` implements it, so they do
//! not depend on the batch and the batch does not reach back into them.

use super::records::{Delivery, MessageKind, Notification};
use super::StoreError;

pub(super) trait Queue {
    /// Queues a delivery of notification `notification` to `region` (or one-off `url`), due at
    /// `due_ms`; returns its id.
    fn deliver(
        &mut self,
        notification: u64,
        region: &str,
        url: Option<String>,
        due_ms: u64,
        message: MessageKind,
    ) -> Result<u64, StoreError>;

    /// A delivery as the store has it, `None` if there is none.
    fn delivery(&self, id: u64) -> Result<Option<Delivery>, StoreError>;

    /// A notification as this batch or the store has it, `None` if there is none. The
    /// deliveries queued after it are indexed under its source.
    fn find(&mut self, id: u64) -> Result<Option<Notification>, StoreError>;

    /// Keeps a changed notification; the batch writes it at its end.
    fn keep(&mut self, n: Notification);
}
