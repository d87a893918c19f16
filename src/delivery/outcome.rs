//! What becomes of an attempt's [`Outcome`] once it is known: recorded in the journal (waiting
//! out a full disk rather than forgetting it) and logged for the operator.

use super::worker::{Outcome, Worker};
use crate::store::journal::DeliveryUpdate;
use crate::store::records::{Delivery, MessageKind};
use crate::store::{now_ms, StoreError};

impl Worker {
    /// Records an attempt's outcome. On a full disk the outcome is kept and recorded once
    /// there is room: the message went out (or Slack's answer is known), and forgetting that
    /// would post it again. The region stays busy meanwhile, so nothing else of it is sent.
    /// A digest's `members` are recorded with it, in the same log record.
    pub(super) fn record_outcome(
        &self,
        update: DeliveryUpdate,
        members: Vec<(Delivery, String)>,
    ) -> Result<(), StoreError> {
        let mut told = false;
        loop {
            let written = if members.is_empty() {
                self.journal.record(update.clone())
            } else {
                self.journal.record_digest(update.clone(), members.clone())
            };
            match written {
                Err(StoreError::DiskFull(why)) if self.journal.is_open() => {
                    if !told {
                        told = true;
                        log::warn!(
                            "The outcome of delivery {} (notification {}, region {}) waits for room on the store's disk ({why}); it is recorded as soon as there is some, and the message is not sent again, unless hookrelay stops before then: then it is sent again after the restart.",
                            update.delivery.id,
                            update.delivery.notification_id,
                            update.delivery.region
                        );
                    }
                    let space = self.journal.space();
                    if !space.wait_writable(RECORD_RETRY) && space.broken().is_some() {
                        return Err(StoreError::DiskFull(why));
                    }
                }
                other => return other,
            }
        }
    }
}

/// How long a worker waits for the store to take writes before trying its outcome again (the
/// disk watcher's probe usually wakes it sooner).
const RECORD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) fn log_outcome(delivery: &Delivery, size: usize, outcome: &Outcome) {
    let region = &delivery.region;
    let attempts = delivery.attempts;
    let what = match &delivery.message {
        MessageKind::Digest { .. } => format!(
            "the digest of {size} notifications starting with notification {}",
            delivery.notification_id
        ),
        _ => format!("notification {}", delivery.notification_id),
    };
    match outcome {
        Outcome::Delivered => log::info!("Delivered {what} to region {region}."),
        Outcome::Retrying { at_ms, reason, .. } => log::warn!(
            "Delivery of {what} to region {region} failed (attempt {attempts}: {reason}); retrying in {} ms.",
            at_ms.saturating_sub(now_ms())
        ),
        Outcome::RateLimited { until_ms } => log::warn!(
            "Slack rate-limited region {region}; pausing it for {} ms.",
            until_ms.saturating_sub(now_ms())
        ),
        Outcome::RegionPaused { reason } => log::error!(
            "Region {region} is paused and keeps its messages queued: {reason}."
        ),
        Outcome::Dead { reason } => log::error!(
            "{} could not be delivered to region {region} and is now a dead letter: {reason}.",
            capitalised(&what)
        ),
        Outcome::Throttled { .. } | Outcome::Waiting { .. } | Outcome::Skipped => {}
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
